"""The engine outside any test transaction, as a worker runs it: on SQLite it writes with the
per-row foreign-key checks off and verifies each chunk's parents itself, so these tests look
at the database the way SQLite's own checker does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from catalog import selection as selection_service
from classification import services
from classification.models import BulkClassificationJob
from projects.models import Answer, AnswerOption, Option, Project, Question

pytestmark = pytest.mark.django_db(transaction=True)


def dangling_references() -> list[tuple[Any, ...]]:
    """Rows whose foreign keys point at nothing (SQLite's checker; PostgreSQL enforces its
    constraints on every insert, so there the answer is always none)."""
    if connection.vendor != "sqlite":
        return []
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_key_check")
        return list(cursor.fetchall())


def foreign_keys_enforced() -> bool:
    if connection.vendor != "sqlite":
        return True
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        return bool(cursor.fetchone()[0])


@pytest.fixture
def subject(demo_project: Project) -> tuple[Question, Option]:
    question = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    return question, question.options.get(value="person")  # no required sub-question


def submit(user: Any, project: Project, question: Question, option: Option) -> BulkClassificationJob:
    # Outside a test transaction the job is queued at commit and django-q2 (sync in tests)
    # runs it at once, in autocommit mode like a worker.
    job = services.submit_bulk_classification(
        user,
        project,
        answers={str(question.pk): {"options": [option.pk]}},
        step="done",
        on_existing="overwrite",
        batch_name="integrity",
        priority=3,
    )
    job.refresh_from_db()
    return job


def test_a_worker_run_leaves_no_dangling_reference_and_checks_back_on(curator, make_rows, demo_project, subject, settings):  # type: ignore[no-untyped-def]
    settings.CURIO_JOB_CHUNK_SIZE = 3
    rows = make_rows("ds", [f"{i}.png" for i in range(8)])
    selection_service.select_all(curator, _dataset_filter(rows))
    job = submit(curator, demo_project, *subject)
    assert job.status == BulkClassificationJob.Status.SUCCEEDED
    assert Answer.objects.filter(job=job).count() == 8
    assert AnswerOption.objects.filter(answer__job=job, option=subject[1]).count() == 8
    assert dangling_references() == []
    assert foreign_keys_enforced()  # the worker's connection is left as it was found


@pytest.fixture
def delete_option_after_first_chunk(subject: tuple[Question, Option]) -> Iterator[Callable[[], int]]:
    """Deletes the job's chosen option (through the ORM, as the admin would) right after the
    first chunk recorded its progress, inside that chunk's transaction."""
    state = {"deleted": 0, "busy": False}

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        result = execute(sql, params, many, context)
        progress_saved = sql.startswith('UPDATE "classification_bulkclassificationjob" SET "cursor"')
        if progress_saved and not state["busy"] and not state["deleted"]:
            state["busy"] = True
            state["deleted"] = Option.objects.filter(pk=subject[1].pk).delete()[0]
            state["busy"] = False
        return result

    with connection.execute_wrapper(wrapper):
        yield lambda: int(state["deleted"])


def test_an_option_deleted_while_the_job_runs_fails_it_clearly_and_writes_nothing_dangling(
    curator, make_rows, demo_project, subject, settings, delete_option_after_first_chunk
):  # type: ignore[no-untyped-def]
    settings.CURIO_JOB_CHUNK_SIZE = 3
    rows = make_rows("ds", [f"{i}.png" for i in range(8)])
    selection_service.select_all(curator, _dataset_filter(rows))
    job = submit(curator, demo_project, *subject)
    assert delete_option_after_first_chunk() > 0
    assert job.status == BulkClassificationJob.Status.FAILED
    assert "an option this job chooses was deleted while the job ran" in job.error
    # The first chunk stands (its size depends on where the row ids start: chunks walk
    # id windows); nothing after it was written.
    assert 0 < job.processed_rows <= 3
    assert Answer.objects.filter(job=job).count() == job.processed_rows
    assert not AnswerOption.objects.filter(answer__job=job).exists()  # went with the option
    assert dangling_references() == []
    assert foreign_keys_enforced()


def _dataset_filter(rows: list[Any]) -> Any:
    from django.http import QueryDict

    return QueryDict(f"dataset={rows[0].dataset_id}")
