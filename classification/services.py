"""Bulk classification: the wizard's services, job submission, preview, resume and notifications.

Views, tasks, commands and tests all call these functions; the engine that applies a job
lives in classification.engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from catalog import selection as selection_service
from catalog.models import DataRow, SelectionItem
from projects.models import Answer, Batch, Option, Project, ProjectDataRow, Question

from .models import BulkClassificationJob, JobSelectionItem, Notification, answer_kind_for

CONSENSUS_REASON = "Consensus projects need several labelers per row; bulk classification writes one answer per row."


class WizardValidationError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- Project picker ------------------------------------------------------------------------


def eligible_projects(*, search: str = "") -> QuerySet[Project]:
    """Projects whose ontology has at least one global classification question, newest first.
    Consensus projects are included (the picker shows them disabled, with the reason)."""
    has_global = Question.objects.filter(ontology_id=OuterRef("ontology_id"), parent_option__isnull=True)
    projects = Project.objects.filter(Exists(has_global)).select_related("ontology").order_by("-created_at", "-id")
    if search.strip():
        projects = projects.filter(name__icontains=search.strip())
    return projects


# --- Answers ------------------------------------------------------------------------------


@dataclass
class QuestionNode:
    question: Question
    depth: int
    options: list[Option]
    chosen_option_ids: set[int] = field(default_factory=set)
    text: str = ""
    children: list[QuestionNode] = field(default_factory=list)

    def walk(self) -> list[QuestionNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


class _Ontology:
    """The whole ontology in memory: questions by parent option, options by question."""

    def __init__(self, project: Project) -> None:
        self.questions = list(Question.objects.filter(ontology_id=project.ontology_id).order_by("position", "id"))
        self.by_id = {q.pk: q for q in self.questions}
        self.options: dict[int, list[Option]] = {q.pk: [] for q in self.questions}
        for option in Option.objects.filter(question__ontology_id=project.ontology_id).order_by("position", "id"):
            self.options[option.question_id].append(option)
        self.children: dict[int | None, list[Question]] = {}
        for q in self.questions:
            self.children.setdefault(q.parent_option_id, []).append(q)

    def descendants(self, question_id: int) -> set[int]:
        """Sub-questions (any depth) under any option of the question."""
        found: set[int] = set()
        stack = [question_id]
        while stack:
            qid = stack.pop()
            for option in self.options.get(qid, []):
                for sub in self.children.get(option.pk, []):
                    if sub.pk not in found:
                        found.add(sub.pk)
                        stack.append(sub.pk)
        return found


def replaced_question_ids(onto: _Ontology, answers: dict[str, Any]) -> set[int]:
    """What a job's answers replace on a row already in the project: the answered questions
    and everything nested under them, of the job's own kind; other answers stay."""
    replaced: set[int] = set()
    for qid in answers:
        replaced |= {int(qid)} | onto.descendants(int(qid))
    return replaced


def question_tree(project: Project, answers: dict[str, Any]) -> list[QuestionNode]:
    """The questions to show: global ones, plus sub-questions under options that are chosen."""
    onto = _Ontology(project)

    def build(parent_option_id: int | None, depth: int) -> list[QuestionNode]:
        nodes = []
        for q in onto.children.get(parent_option_id, []):
            answer = answers.get(str(q.pk), {})
            node = QuestionNode(q, depth, onto.options[q.pk], set(answer.get("options", [])), answer.get("text", ""))
            for option in node.options:
                if option.pk in node.chosen_option_ids:
                    node.children.extend(build(option.pk, depth + 1))
            nodes.append(node)
        return nodes

    return build(None, 0)


def parse_answers(project: Project, data: QueryDict) -> dict[str, Any]:
    """Form fields `q<question id>` → {"<qid>": {"options": [...]} | {"text": "..."}}.

    Only questions that are visible (global, or under a chosen option) are kept, so
    un-choosing a parent option drops its sub-answers with it.
    """
    onto = _Ontology(project)
    raw: dict[str, Any] = {}
    for q in onto.questions:
        values = [v for v in data.getlist(f"q{q.pk}") if v.strip()]
        if not values:
            continue
        if q.kind == Question.Kind.TEXT:
            raw[str(q.pk)] = {"text": values[0].strip()}
            continue
        valid = {o.pk for o in onto.options[q.pk]}
        ids = [int(v) for v in values if v.isdigit() and int(v) in valid]
        if q.kind == Question.Kind.RADIO:
            ids = ids[:1]
        if ids:
            raw[str(q.pk)] = {"options": list(dict.fromkeys(ids))}
    visible = {node.question.pk for top in question_tree(project, raw) for node in top.walk()}
    return {qid: answer for qid, answer in raw.items() if int(qid) in visible}


# A free-text answer's limit (the input's maxlength says the same to the browser).
TEXT_ANSWER_MAX = 2000


def validate_answers(project: Project, answers: dict[str, Any]) -> dict[str, str]:
    """Every required question, and every required sub-question under a chosen option, must be
    answered; at least one answer must be given at all."""
    errors: dict[str, str] = {}
    for top in question_tree(project, answers):
        for node in top.walk():
            if node.question.required and str(node.question.pk) not in answers:
                errors[f"q{node.question.pk}"] = f"“{node.question.name}” is required."
            text = answers.get(str(node.question.pk), {}).get("text", "")
            if len(text) > TEXT_ANSWER_MAX:
                errors[f"q{node.question.pk}"] = (
                    f"“{node.question.name}”: at most {TEXT_ANSWER_MAX:,} characters (this answer has {len(text):,})."
                )
    if not answers and not errors:
        errors["answers"] = "Answer at least one question."
    return errors


# --- Batch ------------------------------------------------------------------------------------


def default_batch_name(user: User) -> str:
    return f"bulk-{timezone.localtime():%Y-%m-%d-%H%M%S}"


# Batch.name holds 200 characters: this leaves room for the suffix of a split ("_12") and
# of a clash met while the job runs ("-3").
BATCH_NAME_MAX = 180


def batch_name_taken(project: Project, name: str) -> bool:
    return Batch.objects.filter(project=project, name=name.strip()).exists()


def batch_name_error(project: Project, name: str) -> str | None:
    """Why this batch name cannot be used in the project, or None: the one rule for the live
    check, the preview and the submit."""
    name = name.strip()
    if not name:
        return "Give the batch a name."
    if len(name) > BATCH_NAME_MAX:
        return f"Batch names are at most {BATCH_NAME_MAX} characters."
    if batch_name_taken(project, name):
        return f"Project “{project.name}” already has a batch named “{name}”."
    return None


# --- Preview ------------------------------------------------------------------------------


@dataclass
class Preview:
    selected: int
    to_add: int
    to_overwrite: int
    skipped_labeled: int
    skipped_benchmark: int
    already_in_project: int
    batch_names: list[str]

    @property
    def to_write(self) -> int:
        return self.selected - self.skipped_labeled - self.skipped_benchmark


def batch_names_for(name: str, rows: int) -> list[str]:
    """A job above the per-job limit is split into batches name, name_2, name_3, …"""
    limit = settings.CURIO_JOB_ROW_LIMIT
    parts = max(1, -(-rows // limit))
    return [name if i == 0 else f"{name}_{i + 1}" for i in range(parts)]


def preview_bulk_classification(
    user: User, project: Project, *, step: str, mode: str, answers: dict[str, Any], batch_name: str = "bulk"
) -> Preview:
    """Exact counts of what submitting now would do, computed on the server from the
    user's selection (the same rules the engine applies). "Overwritten" counts the rows that
    hold an answer this job replaces: of the job's kind (a pre-label job never touches
    labels), to an answered question or one nested under it."""
    rows = selection_service.selected_rows(selection_service.get_selection(user))
    in_project = ProjectDataRow.objects.filter(project=project, data_row_id=OuterRef("pk"))
    labeled = Answer.objects.filter(project=project, kind=Answer.Kind.LABEL, data_row_id=OuterRef("pk"))
    replaced = Answer.objects.filter(
        project=project,
        kind=answer_kind_for(step),
        question_id__in=replaced_question_ids(_Ontology(project), answers),
        data_row_id=OuterRef("pk"),
    )
    agg = rows.annotate(
        is_in_project=Exists(in_project),
        is_labeled=Exists(labeled),
        is_replaced=Exists(replaced),
        is_benchmark=Exists(in_project.filter(benchmark=True)),
    )
    excluding = mode == BulkClassificationJob.Mode.EXCLUDE
    # In exclude mode the labeled rows are skipped: neither "already in" nor overwritten.
    written = Q(is_benchmark=False) & (Q(is_labeled=False) if excluding else Q())
    counts = agg.aggregate(
        selected=Count("pk"),
        benchmark=Count("pk", filter=Q(is_benchmark=True)),
        in_project=Count("pk", filter=Q(is_in_project=True, is_benchmark=False)),
        labeled=Count("pk", filter=Q(is_labeled=True, is_benchmark=False)),
        already=Count("pk", filter=written & Q(is_in_project=True)),
        replaced=Count("pk", filter=written & Q(is_replaced=True)),
    )
    skipped_labeled = counts["labeled"] if excluding else 0
    to_add = counts["selected"] - counts["in_project"] - counts["benchmark"]
    return Preview(
        selected=counts["selected"],
        to_add=to_add,
        to_overwrite=counts["replaced"],
        skipped_labeled=skipped_labeled,
        skipped_benchmark=counts["benchmark"],
        already_in_project=counts["already"],
        batch_names=batch_names_for(batch_name, to_add),
    )


# --- Submit ---------------------------------------------------------------------------------


def submit_bulk_classification(
    user: User,
    project: Project,
    *,
    answers: dict[str, Any],
    step: str,
    on_existing: str,
    batch_name: str,
    priority: int,
    submission_key: str = "",
) -> BulkClassificationJob:
    """Create a job from the user's current selection and queue it; returns at once.

    0. A submission key seen before (a double click, a re-sent form) returns that job.

    1. Validate: project eligible and not consensus, answers complete, step/mode known, batch
       name free, priority 1–5, a non-empty selection.
    2. Freeze the selection (filter, newest row id, ticked/un-ticked rows) into the job.
    3. Queue the engine once the transaction commits (the worker must see the job row).
    """
    submission_key = submission_key.strip()[:64]
    if submission_key:
        earlier = BulkClassificationJob.objects.filter(created_by=user, submission_key=submission_key).first()
        if earlier is not None:
            return earlier
    errors: dict[str, str] = {}
    if project.consensus:
        errors["project"] = CONSENSUS_REASON
    elif not eligible_projects().filter(pk=project.pk).exists():
        errors["project"] = f"Project “{project.name}” has no global classification question to answer."
    errors.update(validate_answers(project, answers))
    if step not in ProjectDataRow.Step.values:
        errors["step"] = f"Unknown workflow step “{step}”."
    if on_existing not in BulkClassificationJob.Mode.values:
        errors["mode"] = f"Unknown choice for existing labels “{on_existing}”."
    batch_name = batch_name.strip()
    batch_problem = batch_name_error(project, batch_name)
    if batch_problem:
        errors["batch_name"] = batch_problem
    if not (isinstance(priority, int) and 1 <= priority <= 5):
        errors["priority"] = "Priority is 1 (highest) to 5 (lowest)."
    selection = selection_service.get_selection(user)
    if not errors and not selection_service.selected_rows(selection).exists():
        errors["selection"] = "Nothing is selected: select rows in the catalog first."
    if errors:
        raise WizardValidationError(errors)

    try:
        return _create_job(user, project, selection, answers, step, on_existing, batch_name, priority, submission_key)
    except IntegrityError:
        # Two requests with the same key raced: the other one made the job.
        earlier = BulkClassificationJob.objects.filter(created_by=user, submission_key=submission_key).first()
        if submission_key and earlier is not None:
            return earlier
        raise


def _create_job(
    user: User,
    project: Project,
    selection: Any,
    answers: dict[str, Any],
    step: str,
    on_existing: str,
    batch_name: str,
    priority: int,
    submission_key: str,
) -> BulkClassificationJob:
    with transaction.atomic():
        max_row = DataRow.objects.order_by("-id").values_list("id", flat=True).first() or 0
        job = BulkClassificationJob.objects.create(
            created_by=user,
            project=project,
            select_all=selection.select_all,
            filter_query=selection.filter_query,
            # Rows created after submit are never included: cap the frozen filter at the
            # newest row now (Select all already capped it at its own time).
            max_row_id=min(selection.max_row_id or max_row, max_row),
            selection_description=_describe_selection(selection),
            answers=answers,
            step=step,
            mode=on_existing,
            batch_name=batch_name,
            priority=priority,
            submission_key=submission_key,
        )
        items = SelectionItem.objects.filter(selection=selection).values_list("data_row_id", "kind")
        JobSelectionItem.objects.bulk_create(
            (JobSelectionItem(job=job, data_row_id=row_id, kind=kind) for row_id, kind in items.iterator(chunk_size=5000)),
            batch_size=5000,
        )
        # No "queued" notification: the panel shows the running job itself; notifications
        # (and the unread count) are for outcomes.
        transaction.on_commit(lambda: enqueue_job(job.pk))
    return job


def _describe_selection(selection: Any) -> str:
    if selection.select_all:
        return "Select all: " + selection_service.frozen_filter(selection).describe()
    return "Rows picked by hand"


def enqueue_job(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("classification.tasks.run_bulk_classification", job_id, task_name=f"bulk-classification-{job_id}")


def job_rows(job: BulkClassificationJob) -> QuerySet[DataRow]:
    """The job's frozen selection, resolved by the database."""
    items = JobSelectionItem.objects.filter(job=job)
    included = items.filter(kind=JobSelectionItem.Kind.INCLUDE)
    return selection_service.resolve_rows(
        select_all=job.select_all,
        filter_query=job.filter_query,
        max_row_id=job.max_row_id,
        included=included.values("data_row_id") if included.exists() or not job.select_all else None,
        excluded=items.filter(kind=JobSelectionItem.Kind.EXCLUDE).values("data_row_id"),
    )


def included_ids(job: BulkClassificationJob) -> list[int]:
    """The rows ticked by hand (beyond any Select all), newest last; the engine's id walk
    must reach the highest of them."""
    return list(
        JobSelectionItem.objects.filter(job=job, kind=JobSelectionItem.Kind.INCLUDE)
        .order_by("-data_row_id")
        .values_list("data_row_id", flat=True)[:1]
    )


def user_job(user: User, job_id: int) -> BulkClassificationJob:
    """A job of this user, or DoesNotExist (views turn it into a 404)."""
    return BulkClassificationJob.objects.select_related("project").get(pk=job_id, created_by=user)


def resume_job(user: User, job: BulkClassificationJob) -> BulkClassificationJob:
    """Queue a failed or stalled job again; the engine continues after its last chunk."""
    if job.created_by_id != user.pk:
        raise BulkClassificationJob.DoesNotExist
    if job.status == BulkClassificationJob.Status.SUCCEEDED:
        return job
    BulkClassificationJob.objects.filter(pk=job.pk).exclude(status=BulkClassificationJob.Status.SUCCEEDED).update(
        status=BulkClassificationJob.Status.QUEUED, runner="", error=""
    )
    transaction.on_commit(lambda: enqueue_job(job.pk))
    job.refresh_from_db()
    return job


# --- Notifications ------------------------------------------------------------------------------


def notification_state(user: User) -> dict[str, Any]:
    jobs = list(BulkClassificationJob.objects.filter(created_by=user).select_related("project")[:10])
    return {
        "unread": Notification.objects.filter(user=user, read=False).count(),
        "jobs": jobs,
        "any_active": BulkClassificationJob.objects.filter(
            created_by=user, status__in=[BulkClassificationJob.Status.QUEUED, BulkClassificationJob.Status.RUNNING]
        ).exists(),
    }


def take_popups(user: User) -> list[Notification]:
    """Finished-job notifications not shown yet; each is returned exactly once."""
    with transaction.atomic():
        pending = list(Notification.objects.filter(user=user, popped=False).select_related("job", "job__project"))
        if pending:
            # Only the rows this call flipped count as taken, so two tabs never both pop it.
            taken = Notification.objects.filter(pk__in=[n.pk for n in pending], popped=False).update(popped=True)
            if taken != len(pending):
                pending = []
    return pending


def mark_notifications_read(user: User, *, ids: list[int] | None = None) -> int:
    notifications = Notification.objects.filter(user=user, read=False)
    if ids is not None:
        notifications = notifications.filter(pk__in=ids)
    return notifications.update(read=True)
