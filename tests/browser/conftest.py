"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CURIO_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CURIO_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "var" / "screenshots"))

# Playwright's sync API runs an event loop in the test thread; the ORM calls made by the test
# itself are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run ./scripts/bootstrap.sh (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, curator):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("curator")
    page.get_by_label("Password").fill("curator-pass")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/")
    yield page
    context.close()


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def wait_for_every_box(page, *, checked: bool) -> None:  # type: ignore[no-untyped-def]
    """Wait until every tile's box in the grid is ticked (or none is). The selection bar and
    the tiles update from the same response but not in the same instant, so asserting the
    boxes right after the bar's count races; waiting still fails if they never change."""
    test = "box.checked" if checked else "!box.checked"
    page.wait_for_function(f"[...document.querySelectorAll('#grid .select-row')].every((box) => {test})")
