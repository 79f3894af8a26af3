"""The browser import page: many files uploaded into a dataset, validated like the command, a
report with escaped file names; plain POST (redirect + report once) and HTMX (fragment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import DataRow, Dataset, MetadataField

from .awkward import BAD, PIXEL_LIMIT_FOR_TESTS, build_awkward

URL = "/datasets/import/"
HOSTILE = "<img src=x onerror=alert(1)>.txt"


@pytest.fixture(scope="module")
def awkward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_awkward(tmp_path_factory.mktemp("awkward-upload"))


@pytest.fixture(autouse=True)
def low_pixel_limit(settings: Any) -> None:
    settings.CURIO_MAX_IMAGE_PIXELS = PIXEL_LIMIT_FOR_TESTS


def uploads(root: Path, rel_paths: list[str]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(Path(rel).name, (root / rel).read_bytes()) for rel in rel_paths]


GOOD_UPLOADS = ["colour/cmyk.jpg", "colour/deep16.png", "orientation/rotated.jpg", "names/<script>alert('x') & co.png"]


def test_import_page_requires_login(db):
    response = Client().get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = Client().post(URL, {"dataset": "x"})
    assert response.status_code == 302 and not Dataset.objects.exists()


def test_import_page_offers_existing_datasets_and_a_multi_file_input(client_in):
    Dataset.objects.create(name="<b>birds</b>")
    body = client_in.get(URL).content.decode()
    assert 'type="file" name="images"' in body and " multiple " in body
    assert 'enctype="multipart/form-data"' in body and "csrfmiddlewaretoken" in body
    assert '<option value="&lt;b&gt;birds&lt;/b&gt;">' in body
    assert "<b>birds</b>" not in body


def test_datasets_page_links_to_the_import_page(client_in):
    assert 'href="/datasets/import/"' in client_in.get("/datasets/").content.decode()


def test_plain_post_imports_redirects_and_shows_the_report_once_with_escaped_names(client_in, curator, awkward_dir):
    files = uploads(awkward_dir, GOOD_UPLOADS + list(BAD))
    files.append(SimpleUploadedFile(HOSTILE, b"plain words, no pixels"))
    response = client_in.post(URL, {"dataset": "uploads", "images": files})
    assert response.status_code == 302 and response["Location"] == URL

    dataset = Dataset.objects.get(name="uploads")
    assert dataset.created_by == curator
    assert set(DataRow.objects.values_list("global_key", flat=True)) == {Path(p).name for p in GOOD_UPLOADS}
    rotated = DataRow.objects.get(global_key="rotated.jpg")
    assert (rotated.width, rotated.height) == (120, 300)

    body = client_in.get(URL).content.decode()
    assert '<strong data-count="imported">4</strong> imported' in body
    assert f'<strong data-count="failed">{len(BAD) + 1}</strong> failed' in body
    for rel, reason in BAD.items():
        assert f"<td><code>{Path(rel).name}</code></td><td>{reason}</td>" in body
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in body
    assert "<img src=x" not in body
    assert f'href="/?dataset={dataset.pk}"' in body
    # Shown once: a reload is a fresh form.
    assert "data-count" not in client_in.get(URL).content.decode()


def test_htmx_post_returns_the_report_fragment(client_in, htmx_headers, awkward_dir):
    files = uploads(awkward_dir, ["colour/palette.png", "bad/drawing.svg", "names/<script>alert('x') & co.png"])
    files.append(SimpleUploadedFile("<script>alert('x') & co.txt", b"words, not pixels"))
    response = client_in.post(URL, {"dataset": "fragment", "images": files}, **htmx_headers)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="import-panel"' in body
    assert '<strong data-count="imported">2</strong> imported' in body
    assert "drawing.svg</code></td><td>unsupported format</td>" in body
    assert "rsvg-convert" in body
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;) &amp; co.txt" in body


def test_upload_again_imports_nothing_new(client_in, htmx_headers, awkward_dir):
    client_in.post(URL, {"dataset": "again", "images": uploads(awkward_dir, GOOD_UPLOADS)}, **htmx_headers)
    body = client_in.post(
        URL, {"dataset": "again", "images": uploads(awkward_dir, GOOD_UPLOADS)}, **htmx_headers
    ).content.decode()
    assert '<strong data-count="imported">0</strong> imported' in body
    assert '<strong data-count="present">4</strong> already present' in body
    assert DataRow.objects.count() == 4


def test_upload_into_an_existing_dataset_by_name(client_in, htmx_headers, awkward_dir):
    existing = Dataset.objects.create(name="shared")
    client_in.post(URL, {"dataset": " shared ", "images": uploads(awkward_dir, ["tiny/one.png"])}, **htmx_headers)
    assert list(existing.rows.values_list("global_key", flat=True)) == ["one.png"]
    assert Dataset.objects.count() == 1


def test_upload_with_a_manifest_gives_typed_metadata_and_reports_bad_values(client_in, htmx_headers, awkward_dir):
    manifest = SimpleUploadedFile("meta.csv", b"path,weight:number,kind:enum\none.png,4,dot\nlong.png,wide,line\n")
    files = uploads(awkward_dir, ["tiny/one.png", "tiny/long.png"])
    body = client_in.post(URL, {"dataset": "typed", "images": files, "manifest": manifest}, **htmx_headers).content.decode()
    assert DataRow.objects.get(global_key="one.png").metadata == {"folder": "", "weight": 4, "kind": "dot"}
    assert not DataRow.objects.filter(global_key="long.png").exists()
    assert "field &#x27;weight&#x27; is a number; &#x27;wide&#x27; is not." in body
    assert MetadataField.objects.get(name="kind").choices == ["dot"]


def test_unusable_manifest_is_a_form_error_and_imports_nothing(client_in, htmx_headers, awkward_dir):
    manifest = SimpleUploadedFile("meta.csv", b"path,bad__name\none.png,1\n")
    response = client_in.post(
        URL, {"dataset": "refused", "images": uploads(awkward_dir, ["tiny/one.png"]), "manifest": manifest}, **htmx_headers
    )
    body = response.content.decode()
    assert "field name &#x27;bad__name&#x27; is not allowed" in body
    assert not DataRow.objects.exists() and not Dataset.objects.exists()


def test_missing_files_or_dataset_name_are_named_errors(client_in):
    response = client_in.post(URL, {"dataset": ""})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body
    assert "Give the dataset a name" in body
    assert "Choose at least one image file to upload." in body
    assert not Dataset.objects.exists()


def test_quotes_escaped_by_the_browser_are_restored_in_the_key():
    from catalog.importer import upload_name

    # What Chromium sends for a file named: semi;colon ' " quote.png
    assert upload_name("semi;colon ' %22 quote.png") == "semi;colon ' \" quote.png"
    assert upload_name("plain.png") == "plain.png"
