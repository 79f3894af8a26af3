"""The "Add classification" wizard in real Chromium: select rows, answer a nested question with
the keyboard, preview, submit, then the panel's progress and the one-time pop-up."""

from __future__ import annotations

import pytest

from catalog.importer import import_folder
from classification.models import BulkClassificationJob
from projects.models import Answer, AnswerOption, Question

from .conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_select_classify_nested_preview_submit_and_pop_up(page, live_server, curator, demo_project, photos_dir):  # type: ignore[no-untyped-def]
    import_folder(photos_dir, dataset_name="photos", user=curator)
    subject = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    species = Question.objects.get(ontology=demo_project.ontology, name="Species")
    animal = subject.options.get(value="animal")
    person = subject.options.get(value="person")
    cat = species.options.get(value="cat")

    # Select three rows in the catalog; the selection bar offers "Add classification".
    page.goto(live_server.url + "/")
    boxes = page.locator("#grid .select-row")
    for i in range(3):
        boxes.nth(i).click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '3'")
    page.get_by_role("link", name="Add classification").click()
    page.wait_for_url("**/classification/wizard/")
    assert page.locator("#wizard-selected").inner_text() == "3"

    # Choose the project; its questions load, sub-questions not yet.
    page.get_by_label("Demo photos").check()
    page.wait_for_selector(f"#question-{subject.pk}")
    assert page.locator(f"#question-{species.pk}").count() == 0

    # Keyboard: focus "Animal", press Space. Species appears and focus stays on "Animal".
    page.locator(f"#q{subject.pk}-o{animal.pk}").focus()
    page.keyboard.press("Space")
    page.wait_for_selector(f"#question-{species.pk}")
    assert page.evaluate("document.activeElement.id") == f"q{subject.pk}-o{animal.pk}"
    # Un-choosing the parent option removes the sub-question; choosing it again brings it back.
    page.locator(f"#q{subject.pk}-o{person.pk}").check()
    page.wait_for_selector(f"#question-{species.pk}", state="detached")
    page.locator(f"#q{subject.pk}-o{animal.pk}").check()
    page.wait_for_selector(f"#question-{species.pk}")

    # Submitting without the required sub-answer puts the error next to Species and focus on it.
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector(f"#q{species.pk}-error")
    assert "“Species” is required." in page.locator(f"#q{species.pk}-error").inner_text()
    # Focus moves once htmx has settled the swap (a moment after the error is in the DOM).
    page.wait_for_function(f"document.activeElement && document.activeElement.name === 'q{species.pk}'")
    page.locator(f"#q{species.pk}-o{cat.pk}").check()
    page.wait_for_selector(f"#q{species.pk}-error", state="detached")

    page.get_by_label("Done").check()
    page.locator("#batch-name").fill("cats-batch")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview table")
    assert page.locator('#preview [data-count="selected"]').inner_text() == "3"
    assert page.locator('#preview [data-count="to_add"]').inner_text() == "3"
    screenshot(page, "wizard-preview")

    # Submit: the form becomes the "submitted" card, the panel wakes up (jobStarted) and the
    # finished job's pop-up appears once (django-q2 runs sync in tests: the job is done).
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("#submitted")
    toast = page.locator("#toasts .toast")
    toast.first.wait_for()
    assert "Classified 3 rows" in toast.first.inner_text()
    assert int(page.locator("#bell-count").inner_text().split()[0]) >= 1
    job = BulkClassificationJob.objects.get()
    assert job.status == BulkClassificationJob.Status.SUCCEEDED
    assert AnswerOption.objects.filter(option=cat, kind=Answer.Kind.LABEL).count() == 3

    page.locator("#bell summary").click()
    progress = page.locator(f"#job-{job.pk} progress")
    progress.wait_for()
    assert progress.get_attribute("value") == progress.get_attribute("max") == "3"
    assert page.locator("#notification-panel").get_attribute("data-polling") == "off"
    screenshot(page, "wizard-submitted-panel")

    # Another page: the pop-up does not come back; Mark all read empties the badge.
    page.goto(live_server.url + "/datasets/")
    page.locator("#bell summary").click()
    page.wait_for_selector(f"#job-{job.pk}")
    assert page.locator("#toasts .toast").count() == 0
    page.get_by_role("button", name="Mark all read").click()
    page.wait_for_function("document.querySelector('#bell-count').textContent.trim().startsWith('0')")

    # The catalog's label filter: "in Demo photos, Subject is not one of Animal" hides exactly
    # the three classified rows (the seed's chunking loop: filter, select all, classify, repeat).
    classified = set(Answer.objects.filter(job=job, question=subject).values_list("data_row__global_key", flat=True))
    page.goto(live_server.url + "/")
    page.wait_for_selector("#match-count:has-text('match')")
    total = int(page.locator("#match-count").inner_text().split()[0])
    page.locator("#f-ap").select_option(label="Demo photos")
    page.locator("#f-aop").select_option("not_in")
    page.locator("#f-aq").select_option(label="Subject")
    page.locator("#f-ao").select_option(label="Animal")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**aop=not_in**")
    page.wait_for_selector(f"#match-count:has-text('{total - 3} row')")
    shown = set(page.locator("#grid .tile .caption").all_inner_texts())
    assert shown and not (shown & classified)
    screenshot(page, "catalog-is-not-one-of")
