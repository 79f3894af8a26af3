"""The curator's whole journey in real headless Chromium, against a live server and a real
django-q2 worker process: log in, import a folder of real images from the browser, filter,
select (click, shift-click, Select all, un-tick), search by similarity, Add classification
into a project with a nested ontology, watch the job in the notification panel, see the labels
on the project page, hide the labelled rows with "is not one of", export NDJSON.

Every step asserts what the curator sees on the page. The suite's screenshots of the main pages
(var/screenshots, or $CURIO_SCREENSHOT_DIR) come from here; docs/screenshots holds a copy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from classification.models import BulkClassificationJob
from projects.models import Question

# The real-worker helpers of the qcluster integration test, reused rather than copied.
from tests.classification.test_qcluster import broker_async, cluster_factory, start_cluster  # noqa: F401

from .conftest import screenshot, wait_for_every_box

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

CLIPART = Path("/usr/share/openclipart/png")
# What the curator uploads: clip art from Debian's openclipart-png and scikit-image's photos,
# with the category each one belongs to (the manifest's enum field).
UPLOAD = {
    "animals": [
        "animals/mammals/a_simple_pig_01.png",
        "animals/mammals/bunny_01.png",
        "animals/mammals/camel_head_01.png",
        "animals/mammals/cartoon_cat_gerald_g._01.png",
        "animals/mammals/deer_matt_todd_01.png",
        "animals/mammals/dog_01_drawn_with_strai_01.png",
        "photo:chelsea",
        "photo:horse",
    ],
    "food": [
        "food/apple_bitten_dan_gerhard_01.png",
        "food/bowl_of_steaming_soup_01.png",
        "food/burrito_ganson.png",
        "food/cake_and_candle_anton_fr_01.png",
    ],
    "transportation": [
        "transportation/airplane.png",
        "transportation/bicycle_philippe_colin_01.png",
        "transportation/big_truck_01.png",
        "transportation/bus1_jarno_vasamaa_01.png",
        "photo:rocket",
    ],
    "people": ["photo:astronaut", "photo:camera"],
    "objects": ["photo:coffee", "photo:coins"],
}
TOTAL = sum(len(v) for v in UPLOAD.values())
ANIMALS = len(UPLOAD["animals"])


def upload_files(photos_dir: Path) -> dict[Path, str]:
    """Each file to upload → its category."""
    if not CLIPART.is_dir():
        pytest.fail(f"Debian's openclipart-png is not installed ({CLIPART} is missing): run ./scripts/bootstrap.sh")
    photos = {p.stem: p for p in photos_dir.rglob("*") if p.is_file()}
    files = {}
    for category, names in UPLOAD.items():
        for name in names:
            files[photos[name.removeprefix("photo:")] if name.startswith("photo:") else CLIPART / name] = category
    return files


def colour_histograms(files: list[Path], out: Path) -> Path:
    """Custom embeddings from the real pixels (a 4×4×4 RGB histogram over white), keyed by
    global key, in the JSONL form `manage.py import_embeddings` reads: any network's vectors
    work the same way, and no CLIP weights can be had here."""
    with out.open("w") as fh:
        for path in files:
            with Image.open(path) as im:
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, "white")
                rgb = np.asarray(Image.alpha_composite(white, rgba).convert("RGB").resize((64, 64))) // 64
            bins = np.bincount((rgb[..., 0] * 16 + rgb[..., 1] * 4 + rgb[..., 2]).ravel(), minlength=64).astype(float)
            fh.write(json.dumps({"global_key": path.name, "vector": (bins / bins.sum()).tolist()}) + "\n")
    return out


def selection_count(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#selection-bar .selection-count").inner_text()


def wait_for_count(page, n: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(f"document.querySelector('#selection-bar .selection-count')?.dataset.count === '{n}'")


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until no htmx request is in flight (htmx marks the element that sent one)."""
    page.wait_for_function("!document.querySelector('.htmx-request')")


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A screenshot of the page at rest: no request in flight, the bell's count loaded."""
    settle(page)
    page.wait_for_function("!/…/.test(document.querySelector('#bell-count')?.textContent || '')")
    screenshot(page, name)


def test_curator_journey(browser, live_server, curator, demo_project, photos_dir, tmp_path, broker_async, cluster_factory):  # noqa: F811
    files = upload_files(photos_dir)
    assert len(files) == TOTAL
    subject = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    species = Question.objects.get(ontology=demo_project.ontology, name="Species")
    qualities = Question.objects.get(ontology=demo_project.ontology, name="Qualities")
    animal = subject.options.get(value="animal")

    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    dialogs: list[str] = []

    def refuse(dialog) -> None:  # type: ignore[no-untyped-def]
        dialogs.append(dialog.message)  # user text is escaped: no page may open a dialog
        dialog.dismiss()

    page.on("dialog", refuse)
    try:
        # 1. Log in: every page needs it, so the catalog sends the curator to the login form.
        page.goto(live_server.url + "/")
        page.wait_for_url("**/accounts/login/**")
        screenshot(page, "01-login")
        page.get_by_label("Username").fill("curator")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        assert "username and password didn't match" in page.get_by_role("alert").inner_text()
        page.get_by_label("Username").fill("curator")
        page.get_by_label("Password").fill("curator-pass")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/")
        assert "The catalog is empty." in page.locator("#results").inner_text()

        # 2. Import the folder from the browser, with a manifest typing each file's category.
        manifest = tmp_path / "manifest.csv"
        manifest.write_text(
            "path,category:enum,source:enum\n"
            + "".join(f"{p.name},{cat},{'clipart' if CLIPART in p.parents else 'photo'}\n" for p, cat in files.items())
        )
        page.get_by_role("link", name="Import images").first.click()
        page.wait_for_url("**/datasets/**")
        if "/datasets/import/" not in page.url:
            page.get_by_role("link", name="Import images").first.click()
        page.get_by_label("Dataset").fill("Journey")
        page.get_by_label("Images").set_input_files([str(p) for p in files])
        page.get_by_label("Manifest (optional)").set_input_files(str(manifest))
        page.get_by_role("button", name="Import").click()
        report = page.locator(".import-report")
        report.wait_for()
        counts = report.locator(".import-counts").inner_text()
        assert f"{TOTAL} imported" in counts and "0 already present" in counts and "0 failed" in counts
        shot(page, "02-import")

        # Custom embeddings for the similarity search (the command a curator runs for vectors
        # from their own network).
        call_command("import_embeddings", str(colour_histograms(list(files), tmp_path / "vectors.jsonl")), "--name", "colour")

        report.get_by_role("link", name="Open “Journey” in the catalog").click()
        page.wait_for_url("**dataset=*")
        page.wait_for_selector(f"#match-count:has-text('{TOTAL} rows match the filter')")

        # 3. Filter by a metadata field: category equals animals.
        page.locator("#f-field-1").select_option(label="category (enum)")
        page.locator("#f-v-1").fill("animals")
        page.locator("#f-v-1").press("Enter")
        page.wait_for_selector(f"#match-count:has-text('{ANIMALS} rows match the filter')")
        assert page.locator("#grid .tile").count() == ANIMALS
        shown = set(page.locator("#grid .tile .caption").all_inner_texts())
        assert shown == {p.name for p, cat in files.items() if cat == "animals"}
        tiles = [t.get_attribute("data-row-id") for t in page.locator("#grid .tile").all()]

        # 4. Shift-click a range: the 2nd tile, then shift + the 5th.
        page.locator(f"#sel-{tiles[1]}").click()
        page.locator(f"#sel-{tiles[4]}").click(modifiers=["Shift"])
        wait_for_count(page, 4)
        assert selection_count(page) == "(4) selected"
        ticked = [t for t in tiles if page.locator(f"#sel-{t}").is_checked()]
        assert ticked == tiles[1:5]

        # 5. Select all matching, then un-tick the first and the last. The page's loading
        # indicator shows for this request too, though the button names no indicator itself.
        page.evaluate(
            """() => {
              const box = document.getElementById("htmx-indicator");
              window.indicated = false;
              new MutationObserver(() => { if (box.classList.contains("htmx-request")) window.indicated = true; })
                .observe(box, {attributes: true});
            }"""
        )
        page.locator("#select-all").click()
        wait_for_count(page, ANIMALS)
        wait_for_every_box(page, checked=True)
        assert page.evaluate("window.indicated") is True
        page.locator("#htmx-indicator").wait_for(state="hidden")  # and it goes away again
        page.locator(f"#sel-{tiles[0]}").click()
        page.locator(f"#sel-{tiles[-1]}").click()
        wait_for_count(page, ANIMALS - 2)
        assert selection_count(page) == f"({ANIMALS - 2}) selected"
        shot(page, "03-catalog")
        chosen = set(tiles[1:-1])
        unticked = {tiles[0], tiles[-1]}

        # 6. Search: "Find similar to selected" ranks the filtered rows by similarity to the
        # selection (custom vectors); the selection itself stays as it was.
        page.get_by_role("link", name="Find similar to selected").click()
        page.wait_for_selector("#ranked-note")
        assert "Ranked by similarity in custom:colour" in page.locator("#ranked-note").inner_text()
        scores = [float(s) for s in page.locator("#grid .tile .score").all_inner_texts()]
        assert len(scores) == ANIMALS and scores == sorted(scores, reverse=True)
        assert selection_count(page) == f"({ANIMALS - 2}) selected"
        assert {t.get_attribute("data-row-id") for t in page.locator("#grid .tile.selected").all()} == chosen
        shot(page, "04-similar")
        if page.locator("#open-projector").count():
            page.locator("#open-projector").click()
            page.wait_for_url("**/projector/**")
            page.wait_for_selector("#map-canvas")
            page.wait_for_function("!/Loading/.test(document.querySelector('#map-status')?.textContent || '')")
            shot(page, "05-projector")
            page.go_back()
            page.wait_for_selector("#ranked-note")

        # 7. Add classification: the project with the nested ontology, Animal → Species.
        page.get_by_role("link", name="Add classification").click()
        page.wait_for_url("**/classification/wizard/")
        assert page.locator("#wizard-selected").inner_text() == str(ANIMALS - 2)
        page.get_by_label("Demo photos").check()
        page.wait_for_selector(f"#question-{subject.pk}")
        assert page.locator(f"#question-{species.pk}").count() == 0
        page.locator(f"#q{subject.pk}-o{animal.pk}").check()
        page.wait_for_selector(f"#question-{species.pk}")
        # Each tick re-renders the answers; wait for that before typing into a field it replaces.
        page.locator(f"#question-{species.pk}").get_by_label("Dog").check()
        settle(page)
        page.locator(f"#question-{qualities.pk}").get_by_label("Sharp").check()
        settle(page)
        page.get_by_label("Notes").fill("from the journey")
        page.locator("#step-initial_review").check()
        page.locator("#mode-overwrite").check()
        page.locator("#batch-name").fill("journey-animals")
        page.locator(".advanced summary").click()
        page.locator("#priority").select_option("2")
        shot(page, "06-wizard-answers")

        # 8. Preview counts.
        page.get_by_role("button", name="Preview").click()
        page.wait_for_selector("#preview table")
        preview = {
            key: page.locator(f'#preview [data-count="{key}"]').inner_text()
            for key in ("selected", "to_add", "to_overwrite", "skipped_labeled", "skipped_benchmark", "already_in_project")
        }
        assert preview == {
            "selected": str(ANIMALS - 2),
            "to_add": str(ANIMALS - 2),
            "to_overwrite": "0",
            "skipped_labeled": "0",
            "skipped_benchmark": "0",
            "already_in_project": "0",
        }
        page.locator("#preview").scroll_into_view_if_needed()
        shot(page, "07-wizard-preview")

        # 9. Submit: the job is queued (no worker yet), the panel shows it and polls.
        page.get_by_role("button", name="Submit").click()
        submitted = page.locator("#submitted")
        submitted.wait_for()
        assert "Classification job started" in submitted.inner_text()
        assert "journey-animals" in submitted.inner_text() and "Demo photos" in submitted.inner_text()
        job = BulkClassificationJob.objects.get()
        page.locator("#bell summary").click()
        row = page.locator(f"#job-{job.pk}")
        row.wait_for()
        assert "journey-animals" in row.inner_text() and "Queued" in row.locator(".status").inner_text()
        assert "Waiting for a worker to pick it up" in row.inner_text()
        assert page.locator("#notification-panel").get_attribute("data-polling") == "on"
        shot(page, "08-notifications-queued")

        # 10. A real worker runs it; the panel follows the progress to the end and stops
        # polling, and the pop-up says what happened.
        cluster_factory.append(start_cluster(chunk_size=2))
        page.wait_for_selector(f"#job-{job.pk} .status:has-text('Done')", timeout=90_000)
        progress = page.locator(f"#job-{job.pk} progress")
        assert progress.get_attribute("value") == progress.get_attribute("max") == str(ANIMALS - 2)
        assert f"{ANIMALS - 2} / {ANIMALS - 2} rows · 100%" in page.locator(f"#job-{job.pk}").inner_text()
        page.wait_for_selector("#notification-panel[data-polling='off']")
        toast = page.locator("#toasts .toast").first
        toast.wait_for()
        assert f"Classified {ANIMALS - 2} rows into “Demo photos”" in toast.inner_text()
        shot(page, "09-notifications-done")
        page.locator("#bell summary").click()  # close the panel
        toast.get_by_role("button", name="Dismiss").click()

        # 11. The project page: the rows in the chosen step and batch, with their labels.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
        page.get_by_role("link", name="Demo photos").click()
        page.wait_for_selector("h1:has-text('Demo photos')")
        assert page.locator('[data-step="Initial review"]').inner_text() == str(ANIMALS - 2)
        assert page.locator('[data-step="Initial labeling"]').inner_text() == "0"
        batch_row = page.locator("table.batches tbody tr")
        assert batch_row.count() == 1
        assert batch_row.locator("td").all_inner_texts()[:3] == ["journey-animals", "P2", str(ANIMALS - 2)]
        project_rows = page.locator("table.project-rows tbody tr")
        assert project_rows.count() == ANIMALS - 2
        for tr in project_rows.all():
            cells = tr.locator("td").all_inner_texts()
            assert cells[2] == "Initial review" and cells[3] == "journey-animals (P2)"
            assert "Subject: Animal" in cells[4] and "Species: Dog" in cells[4] and "Qualities: Sharp" in cells[4]
            assert "Notes: from the journey" in cells[4] and "Pre-label" not in cells[4]
        labelled_keys = set(page.locator("table.project-rows tbody tr td:nth-child(2) a").all_inner_texts())
        assert len(labelled_keys) == ANIMALS - 2
        shot(page, "10-project")

        # 12. Export NDJSON: one line per answered global question, the nested answer inside.
        with page.expect_download() as download:
            page.get_by_role("link", name="Export labels (NDJSON)").click()
        lines = [json.loads(x) for x in Path(download.value.path()).read_text().splitlines()]
        assert len(lines) == 3 * (ANIMALS - 2)
        by_key: dict[str, dict[str, object]] = {}
        for line in lines:
            by_key.setdefault(line["dataRow"]["globalKey"], {})[line["name"]] = line["answer"]
        assert set(by_key) == labelled_keys
        for answers in by_key.values():
            assert answers == {
                "Subject": {"name": "animal", "classifications": [{"name": "Species", "answer": {"name": "dog"}}]},
                "Qualities": [{"name": "sharp"}],
                "Notes": "from the journey",
            }

        # 13. A data row's page lists its labels, and the job that set them.
        page.locator("table.project-rows tbody tr").first.locator("td:nth-child(2) a").click()
        page.wait_for_selector("h1.row-title")
        labels = page.locator("table.row-labels")
        assert "Demo photos" in labels.locator("caption").inner_text()
        assert "Dog" in labels.inner_text() and "Label" in labels.inner_text()
        shot(page, "11-data-row")

        # 14. The catalog's "is not one of" filter hides the labelled rows; the two un-ticked
        # animals and every other row stay.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
        page.locator("#f-ap").select_option(label="Demo photos")
        page.locator("#f-aop").select_option("not_in")
        page.locator("#f-aq").select_option(label="Subject")
        page.locator("#f-ao").select_option(label="Animal")
        page.wait_for_selector(f"#match-count:has-text('{TOTAL - (ANIMALS - 2)} rows match the filter')")
        visible = {t.get_attribute("data-row-id") for t in page.locator("#grid .tile").all()}
        assert len(visible) == TOTAL - (ANIMALS - 2)
        assert not visible & chosen and unticked <= visible
        assert labelled_keys.isdisjoint(page.locator("#grid .tile .caption").all_inner_texts())
        shot(page, "12-catalog-not-one-of")

        # A request that fails says so and what to do; the page stays usable.
        page.route("**/selection/toggle/", lambda route: route.fulfill(status=500, body="Server Error"))
        page.locator(f"#sel-{tiles[0]}").click()
        error = page.locator("#toasts .toast-error").first
        error.wait_for()
        assert "HTTP 500" in error.inner_text() and "Reload the page and try again" in error.inner_text()
        assert error.get_attribute("role") == "alert"
        page.unroute("**/selection/toggle/")
        page.reload()
        assert selection_count(page) == f"({ANIMALS - 2}) selected"

        # 15. Tablet width: the same pages still lay out (screenshots for a person to look at).
        page.set_viewport_size({"width": 768, "height": 1024})
        shot(page, "tablet-catalog")
        page.goto(live_server.url + "/classification/wizard/")
        page.get_by_label("Demo photos").check()
        page.wait_for_selector(f"#question-{subject.pk}")
        shot(page, "tablet-wizard")
        page.goto(live_server.url + f"/projects/{demo_project.pk}/")
        shot(page, "tablet-project")
        assert dialogs == []
    finally:
        context.close()
