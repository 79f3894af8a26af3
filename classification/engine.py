"""The bulk-classification engine: applies one job to its frozen selection.

Exactly-once by construction: the rows are walked in id order in chunks; each chunk's writes
(project rows, answers) and the job's progress (cursor, counts) commit in one transaction.
A crash rolls back the chunk in flight; a resumed run starts after the cursor. A second
runner of the same job cannot interleave: every chunk re-checks the runner token inside
its transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from projects.models import Answer, AnswerOption, Batch, Option, Project, ProjectDataRow, Question

from .models import BulkClassificationJob, JobSkippedRow, Notification
from .services import _Ontology, included_ids, job_rows, replaced_question_ids

logger = logging.getLogger(__name__)

# A running job whose heartbeat is older than this is considered dead and may be taken over.
STALE_AFTER = timedelta(minutes=10)
OUTCOMES = ("added", "overwritten", "already_in_project", "skipped_labeled", "skipped_benchmark")


# A list of ids as one query parameter, expanded to rows by the database.
_ID_SOURCE = {
    "sqlite": "json_each(%s) AS ids",
    "postgresql": "unnest(%s::bigint[]) AS ids(value)",
}


def _id_list(ids: list[int]) -> str | list[int]:
    return json.dumps(ids) if connection.vendor == "sqlite" else ids


class MissingParent(Exception):
    """Something the job writes against was deleted while it ran."""


class Superseded(Exception):
    """Another runner took the job over; this one stops without writing."""


def _claim(job_id: int, token: str, *, force: bool) -> BulkClassificationJob | None:
    """Take the job for this runner: queued or failed jobs, or running ones whose runner has
    gone quiet (force: a resume command run by an operator who knows the worker is dead)."""
    Status = BulkClassificationJob.Status
    now = timezone.now()
    claimable = BulkClassificationJob.objects.filter(pk=job_id)
    if force:
        claimable = claimable.exclude(status=Status.SUCCEEDED)
    else:
        claimable = claimable.filter(status__in=[Status.QUEUED, Status.FAILED]) | claimable.filter(
            status=Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
        )
    taken = claimable.update(status=Status.RUNNING, runner=token, heartbeat_at=now, attempts=F("attempts") + 1, error="")
    if not taken:
        return None
    job = BulkClassificationJob.objects.select_related("project", "created_by").get(pk=job_id)
    if job.started_at is None:
        BulkClassificationJob.objects.filter(pk=job_id).update(started_at=now)
    return job


def run_bulk_classification(job_id: int, *, force: bool = False) -> BulkClassificationJob | None:
    """Apply the job. Returns the finished job, or None if another runner holds it."""
    token = uuid.uuid4().hex
    job = _claim(job_id, token, force=force)
    if job is None:
        logger.info("job %s not claimable (finished or held by another runner)", job_id)
        return None
    try:
        _run(job, token)
    except Superseded:
        return None
    except Exception as exc:
        logger.exception("bulk classification job %s failed", job_id)
        _finish(job, token, status=BulkClassificationJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    job.refresh_from_db()
    return job


def _run(job: BulkClassificationJob, token: str) -> None:
    rows = job_rows(job)
    if not job.total_rows:
        total = rows.count()
        BulkClassificationJob.objects.filter(pk=job.pk, runner=token).update(total_rows=total)
        job.total_rows = total
    plan = _Plan(job)
    chunk = settings.CURIO_JOB_CHUNK_SIZE
    # Walk the id space in bounded windows: with only a lower bound the database collected
    # and sorted every remaining row for each chunk (quadratic over a 1M-row job).
    window = chunk * 4
    last_id = max(job.max_row_id, *included_ids(job), 0)
    low = job.cursor
    # SQLite re-checks every foreign key of every inserted row (13 parent lookups per data
    # row, a third of a job's time), although each chunk reads its rows and verifies its
    # few other parents itself inside the same write transaction (apply_chunk). PostgreSQL
    # keeps its checks; so does a run inside an outer transaction (SQLite cannot switch
    # them off there).
    with connection.constraint_checks_disabled():
        while low < last_id:
            high = low + window
            with transaction.atomic():
                # Resolved inside the write transaction: no row can vanish before it is written.
                ids = list(rows.filter(id__gt=low, id__lte=high).order_by("id").values_list("id", flat=True)[:chunk])
                if not ids:
                    low = high  # nothing selected in this window; nothing to record either
                    continue
                counts = plan.apply_chunk(ids)
                updated = BulkClassificationJob.objects.filter(pk=job.pk, runner=token).update(
                    cursor=ids[-1],
                    processed_rows=F("processed_rows") + len(ids),
                    counts=_merge(job.counts, counts),
                    batch_names=plan.batch_names,
                    heartbeat_at=timezone.now(),
                )
                if not updated:
                    raise Superseded  # rolls this chunk back
            low = ids[-1]
            job.cursor = ids[-1]
            job.counts = _merge(job.counts, counts)
    _finish(job, token, status=BulkClassificationJob.Status.SUCCEEDED)


def _merge(old: dict[str, int], new: Counter[str]) -> dict[str, int]:
    merged = {key: int(old.get(key, 0)) for key in OUTCOMES}
    for key, value in new.items():
        merged[key] = merged.get(key, 0) + value
    return merged


def _finish(job: BulkClassificationJob, token: str, *, status: str, error: str = "") -> None:
    """Write the final status and the user's notification together (the job's own word on
    how it ended; django-q2 hooks can be lost)."""
    with transaction.atomic():
        done = BulkClassificationJob.objects.filter(pk=job.pk, runner=token).update(
            status=status, error=error, finished_at=timezone.now(), runner=""
        )
        if not done:
            return
        job.refresh_from_db()
        counts = job.counts or {}
        if status == BulkClassificationJob.Status.SUCCEEDED:
            skipped = counts.get("skipped_labeled", 0) + counts.get("skipped_benchmark", 0)
            text = (
                f"Classified {counts.get('added', 0) + counts.get('already_in_project', 0):,} rows into “{job.project.name}”"
                f" ({counts.get('added', 0):,} added, {counts.get('overwritten', 0):,} overwritten, {skipped:,} skipped)."
            )
            level = Notification.Level.SUCCESS
        else:
            text = (
                f"Bulk classification into “{job.project.name}” failed after {job.processed_rows:,} rows: {error}."
                " Resume it from the panel."
            )
            level = Notification.Level.ERROR
        Notification.objects.create(user=job.created_by, job=job, level=level, text=text)


class _Plan:
    """What the job writes per row, prepared once: answer rows, delete scope, batches."""

    def __init__(self, job: BulkClassificationJob) -> None:
        self.job = job
        self.project: Project = job.project
        self.kind = job.answer_kind
        onto = _Ontology(self.project)
        self.answers: list[tuple[Question, list[int], str]] = []
        for qid, answer in job.answers.items():
            question = onto.by_id[int(qid)]
            self.answers.append((question, list(answer.get("options", [])), answer.get("text", "")))
        self.replace_question_ids = replaced_question_ids(onto, job.answers)
        self.batch_names: list[str] = list(job.batch_names)
        self.added_so_far = int(job.counts.get("added", 0))
        self.limit = settings.CURIO_JOB_ROW_LIMIT
        self._batches: dict[str, Batch] = {}
        # Table names come from model metadata, never from user input (hence the noqa S608).
        q = connection.ops.quote_name
        pdr, ans, opt = (m._meta.db_table for m in (ProjectDataRow, Answer, AnswerOption))
        self.sql_project_row = (
            f"INSERT INTO {q(pdr)} (project_id, data_row_id, batch_id, step, benchmark, added_at)"  # noqa: S608
            f" SELECT %s, ids.value, %s, %s, %s, %s FROM {_ID_SOURCE[connection.vendor]}"
        )
        self.sql_answer = (
            f"INSERT INTO {q(ans)} (project_id, data_row_id, question_id, kind, text, set_by_id, set_at, job_id)"  # noqa: S608
            f" SELECT %s, ids.value, %s, %s, %s, %s, %s, %s FROM {_ID_SOURCE[connection.vendor]}"
        )
        # Chosen options of the answers this chunk just wrote (this job, this question, this
        # chunk's id range: chunks are disjoint and each commits whole). The unique index
        # (project, data_row, question, kind) serves the range.
        self.sql_answer_option = (
            f"INSERT INTO {q(opt)} (answer_id, option_id, project_id, data_row_id, question_id, kind)"  # noqa: S608
            f" SELECT id, %s, project_id, data_row_id, question_id, kind FROM {q(ans)}"
            " WHERE project_id = %s AND question_id = %s AND kind = %s AND data_row_id BETWEEN %s AND %s AND job_id = %s"
        )

    def _batch_for(self, index: int) -> Batch:
        """Batch of the index-th added row: a new batch every CURIO_JOB_ROW_LIMIT rows."""
        part = index // self.limit
        while len(self.batch_names) <= part:
            base = self.job.batch_name if not self.batch_names else f"{self.job.batch_name}_{len(self.batch_names) + 1}"
            name, n = base, 1
            while Batch.objects.filter(project=self.project, name=name).exists() and name not in self.batch_names:
                n += 1
                name = f"{base}-{n}"
            Batch.objects.get_or_create(
                project=self.project, name=name, defaults={"priority": self.job.priority, "created_by": self.job.created_by}
            )
            self.batch_names.append(name)
        name = self.batch_names[part]
        if name not in self._batches:
            self._batches[name] = Batch.objects.get(project=self.project, name=name)
        return self._batches[name]

    def _check_parents(self, by_batch: dict[int, list[int]]) -> None:
        """The parents every answer of this chunk points at still exist (a question, option
        or batch deleted in the admin while the job ran): checked once per chunk, inside its
        transaction, instead of once per inserted row. The rows themselves were read in the
        same transaction."""
        question_ids = {question.pk for question, _, _ in self.answers}
        option_ids = {option_id for _, options, _ in self.answers for option_id in options}
        missing = []
        if Question.objects.filter(pk__in=question_ids).count() != len(question_ids):
            missing.append("a question this job answers")
        if option_ids and Option.objects.filter(pk__in=option_ids).count() != len(option_ids):
            missing.append("an option this job chooses")
        if by_batch and Batch.objects.filter(pk__in=by_batch).count() != len(by_batch):
            missing.append("this job's batch")
        if missing:
            raise MissingParent(f"{' and '.join(missing)} was deleted while the job ran; nothing of this chunk was written")

    def _rows_answered(self, span: tuple[int, int], kind: str, question_ids: set[int] | None = None) -> set[int]:
        """Rows in the id span with an answer of this kind in the project (to these questions)."""
        answers = Answer.objects.filter(project=self.project, kind=kind, data_row__pk__range=span)
        if question_ids is not None:
            answers = answers.filter(question_id__in=question_ids)
        return set(answers.values_list("data_row_id", flat=True))

    def apply_chunk(self, ids: list[int]) -> Counter[str]:
        """1. classify each row (benchmark, labeled, in project); 2. add new rows to batches;
        3. move rows to the step; 4. replace answers. Runs inside the caller's transaction."""
        counts: Counter[str] = Counter()
        # Chunks are contiguous id ranges in id order: range scans on the (project, data_row)
        # indexes instead of thousands of IN parameters. Rows in the range that are not in the
        # selection are looked up too and simply not used.
        span = (ids[0], ids[-1])
        # Serialises jobs on the same project chunk by chunk (PostgreSQL); SQLite's
        # IMMEDIATE transactions already serialise writers.
        if not Project.objects.select_for_update().filter(pk=self.project.pk).exists():
            raise MissingParent(f"the project “{self.project.name}” was deleted")
        in_project = dict(
            ProjectDataRow.objects.filter(project=self.project, data_row__pk__range=span).values_list("data_row_id", "benchmark")
        )
        # Set operations over the chunk (a per-row Python loop was a fifth of a job's time).
        benchmark = {row_id for row_id, flagged in in_project.items() if flagged}
        skip_benchmark = [row_id for row_id in ids if row_id in benchmark] if benchmark else []
        skip_labeled: list[int] = []
        if self.job.mode == BulkClassificationJob.Mode.EXCLUDE and in_project:
            labeled = self._rows_answered(span, Answer.Kind.LABEL)
            skip_labeled = [row_id for row_id in ids if row_id in labeled and row_id not in benchmark]
        skip = set(skip_benchmark) | set(skip_labeled)
        targets = [row_id for row_id in ids if row_id not in skip] if skip else ids
        existing = [row_id for row_id in targets if row_id in in_project] if in_project else []
        new_rows = [row_id for row_id in targets if row_id not in in_project] if in_project else targets
        counts["skipped_benchmark"] = len(skip_benchmark)
        counts["skipped_labeled"] = len(skip_labeled)
        counts["already_in_project"] = len(existing)
        if existing:
            # Rows holding an answer this job replaces (its kind, its questions), as the preview counts them.
            replaced = self._rows_answered(span, self.kind, self.replace_question_ids)
            counts["overwritten"] = sum(1 for row_id in existing if row_id in replaced)
        counts["added"] = len(new_rows)
        skipped = [
            JobSkippedRow(job=self.job, data_row_id=row_id, reason=JobSkippedRow.Reason.BENCHMARK) for row_id in skip_benchmark
        ] + [JobSkippedRow(job=self.job, data_row_id=row_id, reason=JobSkippedRow.Reason.LABELED) for row_id in skip_labeled]

        # New rows go to the job's batch (split at the per-job limit); rows already in the
        # project keep their batch and move to the chosen step.
        JobSkippedRow.objects.bulk_create(skipped, batch_size=1000)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        by_batch: dict[int, list[int]] = {}
        placed = 0
        while placed < len(new_rows):
            batch = self._batch_for(self.added_so_far)
            room = self.limit - self.added_so_far % self.limit
            part = new_rows[placed : placed + room]
            by_batch.setdefault(batch.pk, []).extend(part)
            placed += len(part)
            self.added_so_far += len(part)
        self._check_parents(by_batch)
        if existing:
            ProjectDataRow.objects.filter(project=self.project, data_row_id__in=existing).update(step=self.job.step)
            AnswerOption.objects.filter(
                project=self.project, kind=self.kind, data_row_id__in=existing, question_id__in=self.replace_question_ids
            ).delete()
            Answer.objects.filter(
                project=self.project, kind=self.kind, data_row_id__in=existing, question_id__in=self.replace_question_ids
            ).delete()

        # Hot path: set-based INSERT … SELECT over the chunk's id list passed as one parameter
        # (the ORM's per-object cost was 90% of a job; per-row parameters most of the rest).
        # The unique constraints still guard every row.
        with connection.cursor() as cursor:
            target_list = _id_list(targets)
            for batch_id, row_ids in by_batch.items():
                # Usually one batch holding every target: its id list is already encoded.
                batch_list = target_list if row_ids == targets else _id_list(row_ids)
                cursor.execute(self.sql_project_row, [self.project.pk, batch_id, self.job.step, False, now, batch_list])
            if targets:
                for question, option_ids, text in self.answers:
                    cursor.execute(
                        self.sql_answer,
                        [self.project.pk, question.pk, self.kind, text, self.job.created_by_id, now, self.job.pk, target_list],
                    )
                    for option_id in option_ids:
                        cursor.execute(
                            self.sql_answer_option,
                            [option_id, self.project.pk, question.pk, self.kind, ids[0], ids[-1], self.job.pk],
                        )
        return counts


def describe_counts(counts: dict[str, Any]) -> list[tuple[str, int]]:
    labels = {
        "added": "added to the project",
        "already_in_project": "already in the project",
        "overwritten": "answers overwritten",
        "skipped_labeled": "skipped: already labeled",
        "skipped_benchmark": "skipped: benchmark",
    }
    return [(labels[key], int(counts.get(key, 0))) for key in OUTCOMES]
