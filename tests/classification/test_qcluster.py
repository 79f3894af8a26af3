"""A real `manage.py qcluster` process runs the jobs: submit from the wizard's POST, watch the
job finish; SIGKILL the worker mid-job and resume. Runs on SQLite + the ORM broker, and on
PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set (scripts/test.sh sets them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.http import QueryDict

from catalog import selection as selection_service
from catalog.models import DataRow, Dataset
from classification.models import BulkClassificationJob, Notification
from projects.models import Answer, AnswerOption, Project, Question
from projects.services import create_project

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def broker_async(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests run tasks inline; here they must go through the real broker."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)


def start_cluster(chunk_size: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "curio.settings",
        "DATABASE_URL": _database_url(),
        "CURIO_Q_WORKERS": str(workers),
        "CURIO_JOB_CHUNK_SIZE": str(chunk_size),
        "CURIO_Q_NAME": str(settings.Q_CLUSTER["name"]),
    }
    # Own process group, so SIGKILL reaches the cluster's worker processes too.
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.fixture
def cluster_factory() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            # SIGTERM to the cluster's master only: it stops its workers itself (with the
            # whole group signalled at once, django-q2's master waits for ever).
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the group still there


def wait_for(predicate, timeout: float = 90, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_catalog(n: int) -> list[int]:
    ds = Dataset.objects.create(name="cluster")
    DataRow.objects.bulk_create(
        DataRow(
            dataset=ds,
            global_key=f"c/{i:05d}.png",
            file=f"o/{i}.png",
            thumbnail=f"t/{i}.jpg",
            width=1,
            height=1,
            format="PNG",
            byte_size=1,
            content_hash=f"{i:064x}",
            metadata={"folder": "c"},
        )
        for i in range(n)
    )
    return list(DataRow.objects.filter(dataset=ds).values_list("pk", flat=True))


def wizard_post(client, project: Project, *, batch: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    q = {x.name: x for x in Question.objects.filter(ontology=project.ontology)}
    opt = {(o.question.name, o.value): o.pk for x in q.values() for o in x.options.all()}
    data = {
        "project": str(project.pk),
        f"q{q['Subject'].pk}": str(opt[("Subject", "animal")]),
        f"q{q['Species'].pk}": str(opt[("Species", "cat")]),
        f"q{q['Qualities'].pk}": [str(opt[("Qualities", "sharp")]), str(opt[("Qualities", "bright")])],
        f"q{q['Notes'].pk}": "from the cluster test",
        "step": "done",
        "mode": "overwrite",
        "batch_name": batch,
        "priority": "2",
    }
    response = client.post("/classification/wizard/submit/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content.decode()[-2000:]
    assert "jobStarted" in response["HX-Trigger"]
    return data


def answers_of(project: Project) -> set[tuple[str, str, str, str]]:
    out = set()
    for a in Answer.objects.filter(project=project).select_related("data_row", "question"):
        opts = ",".join(sorted(AnswerOption.objects.filter(answer=a).values_list("option__value", flat=True)))
        out.add((a.data_row.global_key, a.question.name, a.kind, opts or a.text))
    return out


def test_real_qcluster_runs_a_wizard_job(client_in, curator, demo_project, broker_async, cluster_factory):
    ids = make_catalog(300)
    for row_id in ids:
        selection_service.set_row_selected(curator, DataRow(pk=row_id), selected=True)
    cluster_factory.append(start_cluster(chunk_size=100))
    wizard_post(client_in, demo_project, batch="cluster-batch")
    job = BulkClassificationJob.objects.get()
    # While the worker writes, the catalog keeps answering (no "database is locked").
    while BulkClassificationJob.objects.filter(pk=job.pk, status__in=["queued", "running"]).exists():
        assert client_in.get("/").status_code == 200
        assert client_in.get("/classification/notifications/", HTTP_HX_REQUEST="true").status_code in (200, 286)
        assert cluster_factory[0].poll() is None, cluster_factory[0].stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.counts["added"] == 300 and job.processed_rows == 300 and job.total_rows == 300
    assert Answer.objects.filter(project=demo_project, kind="label").count() == 300 * 4
    assert answers_of(demo_project) >= {("c/00007.png", "Qualities", "label", "bright,sharp")}
    note = Notification.objects.get(user=curator, job=job, level="success")
    assert "300 added" in note.text


def test_sigkill_mid_job_then_resume_equals_a_clean_run(client_in, curator, demo_project, broker_async, cluster_factory):
    ids = make_catalog(4000)
    selection_service.select_all(curator, QueryDict("f=folder&op=eq&v=c"))
    cluster = start_cluster(chunk_size=40)
    cluster_factory.append(cluster)
    wizard_post(client_in, demo_project, batch="killed")
    job = BulkClassificationJob.objects.get()
    wait_for(
        lambda: BulkClassificationJob.objects.filter(pk=job.pk, processed_rows__gte=400).exists(),
        what="the job to be part-way",
    )
    os.killpg(cluster.pid, signal.SIGKILL)
    cluster.wait(timeout=10)
    job.refresh_from_db()
    assert 0 < job.processed_rows < 4000, "the kill must land mid-job"
    assert job.status == "running"

    call_command("resume_job", str(job.pk))
    job.refresh_from_db()
    assert job.status == "succeeded" and job.processed_rows == 4000

    # The same job, run clean (inline) into a copy of the project.
    clean_project = create_project(curator, name="Clean run", ontology=demo_project.ontology)
    from django_q.conf import Conf

    Conf.SYNC = True
    try:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            wizard_post(client_in, clean_project, batch="killed")
    finally:
        Conf.SYNC = False
    clean = BulkClassificationJob.objects.get(project=clean_project)
    assert clean.status == "succeeded"
    assert answers_of(demo_project) == answers_of(clean_project)
    assert len(answers_of(demo_project)) == 4000 * 4
    assert job.counts == clean.counts
    assert Answer.objects.filter(project=demo_project).count() == Answer.objects.filter(project=clean_project).count()
    assert len(ids) == 4000


def test_two_jobs_on_the_same_rows_at_once_never_leave_a_half_applied_row(
    client_in, curator, demo_project, broker_async, cluster_factory
):  # type: ignore[no-untyped-def]
    """Two workers run two jobs over the same 2,000 rows in interleaved chunks: A answers
    Subject = animal with Species = cat (plus Qualities and Notes), B answers Subject = person,
    which replaces Subject and the Species nested under it. Whichever chunk lands last, a row
    holds one job's answer to Subject whole: animal with its cat, or person with no Species."""
    make_catalog(2000)
    selection_service.select_all(curator, QueryDict("f=folder&op=eq&v=c"))
    wizard_post(client_in, demo_project, batch="job-a")
    q = {x.name: x for x in Question.objects.filter(ontology=demo_project.ontology)}
    person = q["Subject"].options.get(value="person")
    data = {"project": str(demo_project.pk), f"q{q['Subject'].pk}": str(person.pk), "step": "done", "mode": "overwrite"}
    response = client_in.post(
        "/classification/wizard/submit/", {**data, "batch_name": "job-b", "priority": "3"}, HTTP_HX_REQUEST="true"
    )
    assert "jobStarted" in response["HX-Trigger"]
    cluster_factory.append(start_cluster(chunk_size=50, workers=2))
    wait_for(
        lambda: BulkClassificationJob.objects.filter(status__in=["succeeded", "failed"]).count() == 2,
        timeout=180,
        what="both jobs to finish",
    )
    jobs = {job.batch_name: job for job in BulkClassificationJob.objects.all()}
    assert {name: job.status for name, job in jobs.items()} == {"job-a": "succeeded", "job-b": "succeeded"}
    assert jobs["job-a"].processed_rows == jobs["job-b"].processed_rows == 2000

    labels = Answer.objects.filter(project=demo_project, kind="label")
    subject = dict(
        AnswerOption.objects.filter(answer__in=labels.filter(question=q["Subject"])).values_list("data_row_id", "option__value")
    )
    species = dict(
        AnswerOption.objects.filter(answer__in=labels.filter(question=q["Species"])).values_list("data_row_id", "option__value")
    )
    assert len(subject) == 2000 and set(subject.values()) <= {"animal", "person"}
    animals = {row for row, value in subject.items() if value == "animal"}
    assert set(species) == animals and set(species.values()) <= {"cat"}
    # Each row's Subject and its Species come from the same job.
    assert not labels.filter(question=q["Species"]).exclude(job=jobs["job-a"]).exists()
    assert set(labels.filter(question=q["Subject"], data_row_id__in=animals).values_list("job__batch_name", flat=True)) <= {
        "job-a"
    }
    # B answered only Subject: A's other answers stay on every row.
    assert labels.filter(question=q["Qualities"]).count() == labels.filter(question=q["Notes"]).count() == 2000
