"""The notification bell and panel: progress, polling only while a job runs, pop-ups once,
mark read, resume, and privacy between users."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from catalog import selection as selection_service
from classification.models import BulkClassificationJob, Notification
from projects.models import Project, ProjectDataRow, Question
from projects.services import add_rows_to_project

PANEL = reverse("classification:panel")
Status = BulkClassificationJob.Status


def make_job(user: User, project: Project, *, status: str = Status.RUNNING, **fields: Any) -> BulkClassificationJob:
    subject = Question.objects.get(ontology=project.ontology, name="Subject")
    defaults: dict[str, Any] = {
        "answers": {str(subject.pk): {"options": [subject.options.first().pk]}},  # type: ignore[union-attr]
        "step": ProjectDataRow.Step.DONE,
        "batch_name": "cats",
        "total_rows": 200,
        "processed_rows": 50,
    }
    defaults.update(fields)
    return BulkClassificationJob.objects.create(created_by=user, project=project, status=status, **defaults)


def test_bell_is_on_every_page_and_loads_the_panel_lazily(client_in: Client) -> None:
    html = client_in.get(reverse("catalog:browse")).content.decode()
    assert 'id="bell"' in html and 'id="bell-count"' in html
    assert f'hx-get="{PANEL}" hx-trigger="load, jobStarted from:body"' in html


def test_panel_polls_while_a_job_runs_and_shows_progress(client_in: Client, curator: User, demo_project: Project) -> None:
    job = make_job(curator, demo_project)
    html = client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html
    assert 'hx-trigger="every 1s, jobStarted from:body"' in html
    assert '<progress max="200" value="50"' in html and "25%" in html
    assert reverse("projects:detail", args=[demo_project.pk]) in html
    assert f'id="job-{job.pk}"' in html


def test_polling_stops_once_no_job_runs(client_in: Client, curator: User, demo_project: Project) -> None:
    make_job(
        curator,
        demo_project,
        status=Status.SUCCEEDED,
        processed_rows=200,
        counts={"added": 150, "skipped_benchmark": 30, "skipped_labeled": 20, "overwritten": 0, "already_in_project": 0},
    )
    html = client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert "every 1s" not in html and 'hx-trigger="jobStarted from:body"' in html
    assert "150 added to the project" in html and "30 skipped: benchmark" in html
    assert "Show the 50 skipped rows" in html


def test_finished_job_pops_up_once_with_the_unread_badge(client_in: Client, curator: User, demo_project: Project) -> None:
    job = make_job(curator, demo_project, status=Status.SUCCEEDED)
    Notification.objects.create(
        user=curator, job=job, level=Notification.Level.SUCCESS, text="Classified 200 rows into “Demo photos”"
    )
    first = client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-swap-oob="beforeend:#toasts"' in first and "Classified 200 rows" in first
    assert '<span id="bell-count" class="bell-badge" hx-swap-oob="true">1<' in first
    second = client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert "#toasts" not in second  # the pop-up appears once, on whichever page asked first


def test_full_page_panel_shows_pop_ups_as_messages(client_in: Client, curator: User, demo_project: Project) -> None:
    job = make_job(curator, demo_project, status=Status.FAILED, error="disk full")
    Notification.objects.create(
        user=curator, job=job, level=Notification.Level.ERROR, text="Bulk classification failed: disk full"
    )
    html = client_in.get(PANEL).content.decode()
    assert "<html" in html and html.count('id="notification-panel"') == 1
    assert "Bulk classification failed: disk full" in html and "msg-error" in html
    assert f'id="resume-{job.pk}"' in html


def test_mark_all_read_clears_the_badge(client_in: Client, curator: User, other_curator: User, demo_project: Project) -> None:
    job = make_job(curator, demo_project, status=Status.SUCCEEDED)
    Notification.objects.create(user=curator, job=job, text="done", popped=True)
    theirs = Notification.objects.create(user=other_curator, text="theirs")
    assert "Mark all read" in client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    html = client_in.post(reverse("classification:mark_read"), HTTP_HX_REQUEST="true").content.decode()
    assert '<span id="bell-count" class="bell-badge zero" hx-swap-oob="true">0<' in html and "Mark all read" not in html
    assert not Notification.objects.filter(user=curator, read=False).exists()
    theirs.refresh_from_db()
    assert theirs.read is False
    response = client_in.post(reverse("classification:mark_read"), {"id": "x"})
    assert response.status_code == 404


def test_mark_read_by_id_only_touches_own_notifications(client_in: Client, curator: User, other_curator: User) -> None:
    mine = Notification.objects.create(user=curator, text="mine")
    theirs = Notification.objects.create(user=other_curator, text="theirs")
    response = client_in.post(reverse("classification:mark_read"), {"id": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.read and not theirs.read


def test_resume_requeues_a_failed_job_and_triggers_job_started(
    client_in: Client, curator: User, demo_project: Project, make_rows: Any, django_capture_on_commit_callbacks: Any
) -> None:
    rows = make_rows("photos", ["things/a.png", "things/b.png"])
    for row in rows:
        selection_service.set_row_selected(curator, row, selected=True)
    job = make_job(curator, demo_project, status=Status.FAILED, error="worker killed", total_rows=0, processed_rows=0)
    job.included_ids = []
    job.save()
    from classification.models import JobSelectionItem

    JobSelectionItem.objects.bulk_create([JobSelectionItem(job=job, data_row_id=r.pk, kind="include") for r in rows])
    with django_capture_on_commit_callbacks(execute=True):
        response = client_in.post(reverse("classification:resume", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert json.loads(response["HX-Trigger"]) == {"jobStarted": {"job": job.pk}}
    job.refresh_from_db()
    # django-q2 sync: the resumed job ran to the end.
    assert job.status == Status.SUCCEEDED and job.processed_rows == 2


def test_resuming_a_finished_job_says_there_is_nothing_to_resume(
    client_in: Client, curator: User, demo_project: Project, django_capture_on_commit_callbacks: Any
) -> None:
    job = make_job(curator, demo_project, status=Status.SUCCEEDED, batch_name="done-batch")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_in.post(reverse("classification:resume", args=[job.pk]), HTTP_HX_REQUEST="true")
    message = json.loads(response["HX-Trigger"])["curioError"]["message"]
    assert message == "Job “done-batch” already finished: there is nothing to resume."
    assert not callbacks  # nothing queued
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED


def test_another_user_cannot_see_or_resume_my_job(
    client_in: Client, curator: User, other_curator: User, demo_project: Project
) -> None:
    job = make_job(curator, demo_project, status=Status.FAILED, batch_name="private-batch")
    other = Client()
    other.force_login(other_curator)
    assert "private-batch" not in other.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert other.post(reverse("classification:resume", args=[job.pk])).status_code == 404
    assert other.get(reverse("classification:skipped", args=[job.pk])).status_code == 404
    job.refresh_from_db()
    assert job.status == Status.FAILED


def test_skipped_rows_page_lists_benchmark_rows_of_the_job(
    client_in: Client, curator: User, demo_project: Project, make_rows: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from classification import services

    rows = make_rows("photos", ["things/a.png", "things/b.png", "things/c.png"])
    add_rows_to_project(curator, demo_project, rows[:1], batch_name="bench", benchmark=True)
    for row in rows:
        selection_service.set_row_selected(curator, row, selected=True)
    subject = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    person = subject.options.get(value="person")
    with django_capture_on_commit_callbacks(execute=True):
        job = services.submit_bulk_classification(
            curator,
            demo_project,
            answers={str(subject.pk): {"options": [person.pk]}},
            step="done",
            on_existing="overwrite",
            batch_name="people",
            priority=3,
        )
    html = client_in.get(reverse("classification:skipped", args=[job.pk])).content.decode()
    assert "things/a.png" in html and "things/b.png" not in html
    assert "<strong>1</strong> row" in html


def test_panel_and_actions_need_login_and_csrf(curator: User, demo_project: Project) -> None:
    job = make_job(curator, demo_project, status=Status.FAILED)
    assert Client().get(PANEL).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(curator)
    assert strict.post(reverse("classification:mark_read")).status_code == 403
    assert strict.post(reverse("classification:resume", args=[job.pk])).status_code == 403


@pytest.mark.parametrize("method", ["get", "put"])
def test_actions_refuse_other_methods(client_in: Client, method: str) -> None:
    assert getattr(client_in, method)(reverse("classification:mark_read")).status_code == 405


def test_a_job_that_added_no_rows_says_no_batch_was_created(
    client_in: Client, curator: User, demo_project: Project, make_rows: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from classification import services

    rows = make_rows("photos", ["things/a.png", "things/b.png"])
    add_rows_to_project(curator, demo_project, rows, batch_name="earlier")
    for row in rows:
        selection_service.set_row_selected(curator, row, selected=True)
    subject = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    with django_capture_on_commit_callbacks(execute=True):
        job = services.submit_bulk_classification(
            curator,
            demo_project,
            answers={str(subject.pk): {"options": [subject.options.get(value="person").pk]}},
            step="done",
            on_existing="overwrite",
            batch_name="never-made",
            priority=3,
        )
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.counts["already_in_project"] == 2
    assert not demo_project.batches.filter(name="never-made").exists()
    html = client_in.get(PANEL, HTTP_HX_REQUEST="true").content.decode()
    assert "No new rows, so no batch “never-made” was created" in html
