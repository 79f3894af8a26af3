"""The import page in real headless Chromium: htmx sends the chosen files as multipart and
swaps in the report; a hostile file name is shown as text, never run."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.models import DataRow
from tests.catalog.awkward import PIXEL_LIMIT_FOR_TESTS, build_awkward

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def low_pixel_limit(settings: Any) -> None:
    settings.CURIO_MAX_IMAGE_PIXELS = PIXEL_LIMIT_FOR_TESTS


def test_upload_many_files_from_the_browser_shows_the_report(page, live_server, tmp_path):
    root = build_awkward(tmp_path / "awkward")
    chosen = [
        root / "colour/cmyk.jpg",
        root / "orientation/rotated.jpg",
        root / "names/<script>alert('x') & co.png",
        root / "bad/notes.txt",
        root / "bad/iphone.heic",
    ]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(live_server.url + "/datasets/")
    page.get_by_role("link", name="Import images").click()
    page.get_by_label("Dataset").fill("From the browser")
    page.get_by_label("Images").set_input_files([str(p) for p in chosen])
    page.get_by_role("button", name="Import").click()

    report = page.locator(".import-report")
    report.wait_for()
    assert page.url == live_server.url + "/datasets/import/"
    counts = report.locator(".import-counts").inner_text()
    assert "3 imported" in counts and "0 already present" in counts and "2 failed" in counts
    failures = report.locator(".import-failures tbody").inner_text()
    assert "notes.txt" in failures and "not an image" in failures
    assert "iphone.heic" in failures and "HEIC/HEIF images are not supported" in failures
    assert dialogs == []
    assert set(DataRow.objects.filter(dataset__name="From the browser").values_list("global_key", flat=True)) == {
        "cmyk.jpg",
        "rotated.jpg",
        "<script>alert('x') & co.png",
    }

    # The new dataset links to its catalog view, where the hostile name is plain text.
    report.get_by_role("link", name="Open “From the browser” in the catalog").click()
    page.get_by_text("<script>alert('x') & co.png").first.wait_for()
    assert dialogs == []
    assert "dataset=" in page.url
