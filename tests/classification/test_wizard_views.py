"""The "Add classification" wizard's views: full page and HTMX partials, through the real
services and the engine (django-q2 sync)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from catalog import selection as selection_service
from classification.models import BulkClassificationJob
from projects.models import Answer, AnswerOption, Batch, Project, ProjectDataRow, Question
from projects.services import add_rows_to_project, create_project, set_answers

WIZARD = reverse("classification:wizard")


@pytest.fixture
def onto(demo_project: Project) -> dict[str, Any]:
    """Ids of the demo ontology by name: q["Subject"], opt[("Subject", "animal")]."""
    q = {x.name: x for x in Question.objects.filter(ontology=demo_project.ontology)}
    opt = {(o.question.name, o.value): o.pk for x in q.values() for o in x.options.all()}
    return {"project": demo_project, "q": q, "opt": opt}


@pytest.fixture
def selected(curator: User, make_rows: Any) -> list[Any]:
    rows = make_rows("photos", [f"things/{i}.png" for i in range(5)])
    for row in rows:
        selection_service.set_row_selected(curator, row, selected=True)
    return rows


def form_data(onto: dict[str, Any], **extra: Any) -> dict[str, Any]:
    q, opt = onto["q"], onto["opt"]
    data = {
        "project": str(onto["project"].pk),
        f"q{q['Subject'].pk}": str(opt[("Subject", "animal")]),
        f"q{q['Species'].pk}": str(opt[("Species", "cat")]),
        "step": ProjectDataRow.Step.DONE,
        "mode": "overwrite",
        "batch_name": "cats-1",
        "priority": "2",
    }
    data.update(extra)
    return data


def test_wizard_page_lists_eligible_projects_newest_first_and_disables_consensus(
    client_in: Client, curator: User, demo_project: Project, selected: list[Any]
) -> None:
    create_project(curator, name="Consensus photos", ontology=demo_project.ontology, consensus=True)
    newest = create_project(curator, name="Newest photos", ontology=demo_project.ontology)
    from projects.models import Ontology

    create_project(curator, name="No questions", ontology=Ontology.objects.create(name="empty"))
    html = client_in.get(WIZARD).content.decode()
    assert "<html" in html
    assert "5</strong> data rows selected" in html
    assert html.index("Newest photos") < html.index("Consensus photos") < html.index("Demo photos")
    assert "No questions" not in html
    consensus_radio = html[html.index("Consensus photos") - 400 : html.index("Consensus photos")]
    assert "disabled" in consensus_radio
    assert "Consensus projects need several labelers per row" in html
    assert f'id="project-{newest.pk}"' in html


def test_project_search_returns_only_the_list_fragment(client_in: Client, curator: User, demo_project: Project) -> None:
    create_project(curator, name="Birds 2024", ontology=demo_project.ontology)
    response = client_in.get(reverse("classification:projects"), {"project_search": "bird"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="project-list"' in html
    assert "Birds 2024" in html and "Demo photos" not in html


def test_choosing_a_consensus_project_is_refused_with_the_reason(client_in: Client, curator: User, demo_project: Project) -> None:
    consensus = create_project(curator, name="Consensus photos", ontology=demo_project.ontology, consensus=True)
    html = client_in.get(
        reverse("classification:project_body"), {"project": consensus.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="answers"' not in html
    html = client_in.get(WIZARD, {"project": consensus.pk}).content.decode()
    assert "several labelers per row" in html and 'id="answers"' not in html


def test_choosing_a_project_shows_its_global_questions_by_kind_and_a_default_batch_name(
    client_in: Client, onto: dict[str, Any]
) -> None:
    response = client_in.get(reverse("classification:project_body"), {"project": onto["project"].pk}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    q = onto["q"]
    assert "<html" not in html
    assert f'type="radio" name="q{q["Subject"].pk}"' in html
    assert f'type="checkbox" name="q{q["Qualities"].pk}"' in html
    assert f'type="text" name="q{q["Notes"].pk}"' in html
    assert "Species" not in html  # a sub-question waits for its parent option
    assert 'name="batch_name" value="bulk-' in html
    assert "<summary>Advanced</summary>" in html


def test_sub_question_appears_when_its_option_is_chosen_and_leaves_with_its_answer(
    client_in: Client, onto: dict[str, Any]
) -> None:
    q, opt = onto["q"], onto["opt"]
    url = reverse("classification:answers")
    chosen = {"project": onto["project"].pk, f"q{q['Subject'].pk}": opt[("Subject", "animal")]}
    html = client_in.post(url, chosen, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="answers"')
    assert f'name="q{q["Species"].pk}"' in html
    # Un-choose Animal (pick Person) while Cat is still posted: Species and its answer go.
    switched = {**chosen, f"q{q['Subject'].pk}": opt[("Subject", "person")], f"q{q['Species'].pk}": opt[("Species", "cat")]}
    html = client_in.post(url, switched, HTTP_HX_REQUEST="true").content.decode()
    # Species left the form, so its answer is no longer sent with the next request.
    assert "Species" not in html and f'name="q{q["Species"].pk}"' not in html


def test_find_box_hides_other_questions_but_keeps_their_answers_in_the_form(client_in: Client, onto: dict[str, Any]) -> None:
    q, opt = onto["q"], onto["opt"]
    data = {"project": onto["project"].pk, f"q{q['Subject'].pk}": opt[("Subject", "object")], "question_find": "qual"}
    html = client_in.post(reverse("classification:answers"), data, HTTP_HX_REQUEST="true").content.decode()
    subject = html[html.index(f'id="question-{q["Subject"].pk}"') :][:300]
    qualities = html[html.index(f'id="question-{q["Qualities"].pk}"') :][:300]
    assert "hidden" in subject.split(">")[0]
    assert "hidden" not in qualities.split(">")[0]
    assert f'value="{opt[("Subject", "object")]}" checked' in html  # still submitted with the form


def test_batch_name_clash_is_reported_before_submit(
    client_in: Client, curator: User, onto: dict[str, Any], make_rows: Any
) -> None:
    Batch.objects.create(project=onto["project"], name="taken")
    url = reverse("classification:batch_check")
    html = client_in.get(url, {"project": onto["project"].pk, "batch_name": "taken"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "already has a batch with this name" in html
    html = client_in.get(url, {"project": onto["project"].pk, "batch_name": "free"}, HTTP_HX_REQUEST="true").content.decode()
    assert "already has a batch" not in html


def test_preview_counts_come_from_the_server_side_selection(
    client_in: Client, curator: User, onto: dict[str, Any], selected: list[Any]
) -> None:
    project = onto["project"]
    add_rows_to_project(curator, project, selected[:1], batch_name="old")
    add_rows_to_project(curator, project, selected[1:2], batch_name="bench", benchmark=True)
    prdr = ProjectDataRow.objects.get(project=project, data_row=selected[0])
    # A label to the question the form answers: skipped in exclude mode, overwritten otherwise.
    set_answers(curator, project, prdr.data_row, {onto["q"]["Subject"]: "person"}, kind=Answer.Kind.LABEL)
    url = reverse("classification:preview")
    html = client_in.post(url, form_data(onto, mode="exclude"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and html.lstrip().startswith('<section id="preview"')

    def count(name: str) -> str:
        return html.split(f'data-count="{name}">')[1].split("<")[0]

    assert count("selected") == "5"
    assert count("to_add") == "3"
    assert count("skipped_labeled") == "1"
    assert count("skipped_benchmark") == "1"
    html = client_in.post(url, form_data(onto, mode="overwrite")).content.decode()
    assert "<html" in html  # plain POST: the whole page with the preview in it
    assert 'data-count="to_overwrite">1<' in html


def test_submit_with_missing_required_answers_shows_errors_next_to_the_fields(
    client_in: Client, onto: dict[str, Any], selected: list[Any]
) -> None:
    q = onto["q"]
    data = form_data(onto)
    del data[f"q{q['Species'].pk}"]
    response = client_in.post(reverse("classification:submit"), data, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert "<html" not in html and html.lstrip().startswith('<form id="wizard-form"')
    species = q["Species"].pk
    assert f'id="q{species}-error"' in html and "“Species” is required." in html
    assert f'aria-describedby="q{species}-error"' in html
    assert f'id="q{q["Notes"].pk}-error"' not in html  # optional questions may stay empty
    assert not BulkClassificationJob.objects.exists()


def test_submit_with_a_taken_batch_name_and_bad_priority_names_each_input(
    client_in: Client, onto: dict[str, Any], selected: list[Any]
) -> None:
    Batch.objects.create(project=onto["project"], name="cats-1")
    html = client_in.post(reverse("classification:submit"), form_data(onto), HTTP_HX_REQUEST="true").content.decode()
    assert "already has a batch named “cats-1”" in html
    html = client_in.post(
        reverse("classification:submit"), form_data(onto, priority="9"), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="priority-error"' in html and "Priority" in html
    assert '<details class="advanced" open>' in html
    assert not BulkClassificationJob.objects.exists()


def test_htmx_submit_creates_the_job_renders_submitted_and_triggers_job_started(
    client_in: Client, curator: User, onto: dict[str, Any], selected: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(reverse("classification:submit"), form_data(onto), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'id="submitted"' in html
    job = BulkClassificationJob.objects.get()
    assert json.loads(response["HX-Trigger"]) == {"jobStarted": {"job": job.pk}}
    assert job.created_by == curator and job.batch_name == "cats-1" and job.priority == 2 and job.step == "done"
    # django-q2 runs sync in tests: the rows are labeled Animal → Cat.
    job.refresh_from_db()
    assert job.status == BulkClassificationJob.Status.SUCCEEDED
    cats = AnswerOption.objects.filter(project=onto["project"], option_id=onto["opt"][("Species", "cat")], kind=Answer.Kind.LABEL)
    assert cats.count() == 5
    assert reverse("projects:detail", args=[onto["project"].pk]) in html


def test_plain_submit_redirects_to_the_catalog_with_a_message(
    client_in: Client, onto: dict[str, Any], selected: list[Any]
) -> None:
    response = client_in.post(reverse("classification:submit"), form_data(onto), follow=True)
    assert response.redirect_chain[0][0] == reverse("catalog:browse")
    assert "Classification job started: cats-1" in response.content.decode()
    assert BulkClassificationJob.objects.count() == 1


def test_submit_with_nothing_selected_says_so(client_in: Client, onto: dict[str, Any]) -> None:
    html = client_in.post(reverse("classification:submit"), form_data(onto), HTTP_HX_REQUEST="true").content.decode()
    assert "Nothing is selected" in html
    assert not BulkClassificationJob.objects.exists()


def test_unknown_project_id_is_named_in_the_error(client_in: Client, onto: dict[str, Any], selected: list[Any]) -> None:
    html = client_in.post(
        reverse("classification:submit"), form_data(onto, project="abc"), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Project: &#x27;abc&#x27; is not a project id." in html
    html = client_in.post(
        reverse("classification:submit"), form_data(onto, project="999999"), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "this project does not exist" in html


def test_wizard_needs_login_and_csrf(onto: dict[str, Any], curator: User) -> None:
    anonymous = Client()
    response = anonymous.get(WIZARD)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(curator)
    assert strict.post(reverse("classification:submit"), form_data(onto)).status_code == 403
    assert strict.post(reverse("classification:answers"), form_data(onto)).status_code == 403


def test_user_text_is_escaped(client_in: Client, curator: User, demo_project: Project) -> None:
    create_project(curator, name="<script>alert(1)</script>", ontology=demo_project.ontology)
    html = client_in.get(WIZARD, {"project_search": "<b>"}).content.decode()
    html += client_in.get(WIZARD).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html


def test_catalog_selection_bar_offers_add_classification_only_with_a_selection(
    client_in: Client, curator: User, make_rows: Any
) -> None:
    rows = make_rows("photos", ["things/a.png"])
    assert "Add classification" not in client_in.get(reverse("catalog:browse")).content.decode()
    selection_service.set_row_selected(curator, rows[0], selected=True)
    html = client_in.get(reverse("catalog:browse")).content.decode()
    assert f'href="{WIZARD}"' in html and "Add classification" in html


def test_data_row_page_shows_which_job_set_each_answer_by_whom_and_when(
    client_in: Client, onto: dict[str, Any], selected: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        client_in.post(reverse("classification:submit"), form_data(onto), HTTP_HX_REQUEST="true")
    job = BulkClassificationJob.objects.get()
    html = client_in.get(reverse("catalog:row", args=[selected[0].pk])).content.decode()
    species_row = html[html.index("↳ Species") :].split("</tr>")[0]
    assert f"Job #{job.pk} · batch “cats-1”" in species_row
    assert "<td>curator</td>" in species_row and "<time datetime=" in species_row


def test_without_javascript_the_answers_endpoint_renders_the_whole_page(client_in: Client, onto: dict[str, Any]) -> None:
    q, opt = onto["q"], onto["opt"]
    data = {"project": onto["project"].pk, f"q{q['Subject'].pk}": opt[("Subject", "animal")], "batch_name": "mine"}
    html = client_in.post(reverse("classification:answers"), data).content.decode()
    assert "<html" in html and f'name="q{q["Species"].pk}"' in html
    assert 'value="mine"' in html  # what the curator typed survives the round trip


def test_a_replayed_submit_returns_the_same_job(client_in: Client, onto: dict[str, Any], selected: list[Any]) -> None:
    page = client_in.get("/classification/wizard/").content.decode()
    key = page.split('name="submission_key" value="')[1].split('"')[0]
    assert len(key) == 32
    data = form_data(onto, submission_key=key)
    for _ in range(3):  # a double click, then the browser's "re-send form"
        response = client_in.post("/classification/wizard/submit/", data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "jobStarted" in response["HX-Trigger"]
    assert BulkClassificationJob.objects.count() == 1
    # A new wizard page is a new submission.
    fresh = client_in.get("/classification/wizard/").content.decode()
    assert key not in fresh


def test_preview_checks_required_answers_before_counting(client_in: Client, onto: dict[str, Any], selected: list[Any]) -> None:
    q = onto["q"]
    data = form_data(onto)
    del data[f"q{q['Subject'].pk}"], data[f"q{q['Species'].pk}"]
    body = client_in.post("/classification/wizard/preview/", data, HTTP_HX_REQUEST="true").content.decode()
    assert "Answer the required questions first" in body and "“Subject” is required." in body
    assert 'data-count="to_add"' not in body


@pytest.mark.parametrize(
    ("batch_name", "message"),
    [
        ("", "Batch name"),
        ("x" * 181, "at most 180 characters"),
        ("x" * 10_000, "at most 180 characters"),
        ("taken", "already has a batch named “taken”"),
    ],
)
def test_one_batch_name_rule_in_the_live_check_the_preview_and_the_submit(
    client_in: Client, onto: dict[str, Any], selected: list[Any], batch_name: str, message: str
) -> None:
    Batch.objects.create(project=onto["project"], name="taken")
    check = client_in.get(
        reverse("classification:batch_check"), {"project": onto["project"].pk, "batch_name": batch_name}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "error" in check
    preview = client_in.post(reverse("classification:preview"), form_data(onto, batch_name=batch_name), HTTP_HX_REQUEST="true")
    assert message in preview.content.decode()
    client_in.post(reverse("classification:submit"), form_data(onto, batch_name=batch_name), HTTP_HX_REQUEST="true")
    assert not BulkClassificationJob.objects.exists()


def test_a_free_text_answer_over_the_limit_is_refused_next_to_its_field(
    client_in: Client, onto: dict[str, Any], selected: list[Any]
) -> None:
    notes = onto["q"]["Notes"]
    data = form_data(onto, **{f"q{notes.pk}": "n" * 2001})
    html = client_in.post(reverse("classification:submit"), data, HTTP_HX_REQUEST="true").content.decode()
    assert "“Notes”: at most 2,000 characters (this answer has 2,001)." in html
    assert not BulkClassificationJob.objects.exists()
    data = form_data(onto, **{f"q{notes.pk}": "n" * 2000})
    client_in.post(reverse("classification:submit"), data, HTTP_HX_REQUEST="true")
    assert BulkClassificationJob.objects.get().answers[str(notes.pk)] == {"text": "n" * 2000}
