"""The "Add classification" wizard and the notification panel.

One page per screen (`wizard.html`, `notifications.html`); HTMX requests get one of their named
partials. The views only read the request and render: every state change (submitting a job,
resuming it, marking notifications read, taking pop-ups) is a call into `services`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from catalog import selection as selection_service
from catalog.models import DataRow
from curio.ids import parse_id
from projects.models import Project, ProjectDataRow

from . import services
from .engine import STALE_AFTER, describe_counts
from .forms import MODE_HELP, PRIORITY_CHOICES, STEP_HELP, BatchOptionsForm
from .models import BulkClassificationJob, JobSkippedRow

# The picker lists this many projects; the search box finds the others.
PICKER_LIMIT = 50

CONSENSUS_REASON = services.CONSENSUS_REASON


# --- helpers ---------------------------------------------------------------------------------


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django-htmx's middleware


def _user(request: HtmxHttpRequest) -> User:
    # LoginRequiredMiddleware guarantees an authenticated user on every view below.
    return request.user  # type: ignore[return-value]


def _own_job(request: HtmxHttpRequest, pk: int) -> BulkClassificationJob:
    """A job of the requesting user, or 404: another user's job id must reveal nothing."""
    return get_object_or_404(BulkClassificationJob, pk=pk, created_by=_user(request))


def _project_from(params: QueryDict, errors: dict[str, str]) -> Project | None:
    """The chosen project if it may be chosen; otherwise None, with the reason in errors."""
    raw = params.get("project", "").strip()
    if not raw:
        return None
    project_id = parse_id(raw)
    if project_id is None:
        errors["project"] = f"Project: {raw!r} is not a project id."
        return None
    project = services.eligible_projects().filter(pk=project_id).select_related("ontology").first()
    if project is None:
        errors["project"] = "Project: this project does not exist or its ontology has no global classification question."
        return None
    if project.consensus:
        errors["project"] = f"Project {project.name}: {CONSENSUS_REASON}"
        return None
    return project


def _project_url(project: Project) -> str:
    # The projects app adds its detail page later; until then the list is the best link.
    try:
        return reverse("projects:detail", args=[project.pk])
    except NoReverseMatch:
        return reverse("projects:list")


def _decorate(nodes: list[services.QuestionNode], *, term: str, errors: dict[str, str]) -> bool:
    """Give each question node its error and mark it `shown` when its name (or a
    sub-question's) contains the find box's term. Hidden questions stay in the form, so
    their answers are kept. Returns whether any question is shown."""
    term = term.strip().casefold()

    def visit(node: Any) -> bool:
        below = [visit(child) for child in node.children]
        node.error = errors.get(f"q{node.question.pk}", "")
        node.shown = not term or term in node.question.name.casefold() or any(below)
        return bool(node.shown)

    return any([visit(node) for node in nodes])


def _wizard_context(
    request: HtmxHttpRequest,
    *,
    params: QueryDict,
    errors: dict[str, str] | None = None,
    validate: bool = False,
    preview: Any = None,
) -> dict[str, Any]:
    """Everything the wizard page and its partials show, from the request's fields.

    1. The selection (resolved on the server; the browser never sends ids).
    2. The project picker, filtered by the search box.
    3. For a chosen project: answers (as a tree with only chosen branches), their errors when
       asked to validate, and the step / mode / batch fields with the default batch name.
    """
    user = _user(request)
    errors = dict(errors or {})
    selection = selection_service.get_selection(user)
    search = params.get("project_search", "").strip()
    projects = list(services.eligible_projects(search=search)[: PICKER_LIMIT + 1])
    project = _project_from(params, errors)
    context: dict[str, Any] = {
        "selection_count": selection_service.selection_count(selection),
        "project_search": search,
        "projects": projects[:PICKER_LIMIT],
        "more_projects": len(projects) > PICKER_LIMIT,
        "consensus_reason": CONSENSUS_REASON,
        "project": project,
        "errors": errors,
        "preview": preview,
        "show_errors": validate,
        # Kept across the wizard's re-renders; a fresh page load gets a fresh key.
        "submission_key": params.get("submission_key", "")[:64] or uuid.uuid4().hex,
    }
    if project is None:
        return context
    answers = services.parse_answers(project, params)
    if validate:
        for key, message in services.validate_answers(project, answers).items():
            errors.setdefault(key, message)
    nodes = services.question_tree(project, answers)
    question_find = params.get("question_find", "")
    any_shown = _decorate(nodes, term=question_find, errors=errors)
    if project not in context["projects"]:
        # The search box may hide the chosen project; keep it in the list so it stays chosen.
        context["projects"].insert(0, project)
    if "batch_name" in params:
        form = BatchOptionsForm(params)
    else:
        form = BatchOptionsForm(initial={"batch_name": services.default_batch_name(user)})
    if validate and not form.is_valid():
        for name, field_errors in form.errors.items():
            errors.setdefault(name, f"{form.fields[name].label}: {' '.join(str(e) for e in field_errors)}")
    context.update(
        {
            "nodes": nodes,
            "any_shown": any_shown,
            "question_find": question_find,
            "values": {name: form.value(name) for name in form.fields},
            "step_choices": [(value, label, STEP_HELP[value]) for value, label in ProjectDataRow.Step.choices],
            "mode_choices": [(value, label, MODE_HELP[value]) for value, label in BulkClassificationJob.Mode.choices],
            "priority_choices": PRIORITY_CHOICES,
            "batch_taken": "batch_name" not in errors and _batch_taken(project, str(form.value("batch_name"))),
            "project_url": _project_url(project),
        }
    )
    return context


def _batch_taken(project: Project, name: str) -> bool:
    return bool(name.strip()) and services.batch_name_taken(project, name.strip())


# --- wizard ----------------------------------------------------------------------------------


@require_GET
def wizard(request: HtmxHttpRequest) -> HttpResponse:
    """The whole wizard; `?project=` preselects a project (also the no-JS way to choose one)."""
    context = _wizard_context(request, params=request.GET)
    template = "classification/wizard.html#wizard_form" if request.htmx else "classification/wizard.html"
    return render(request, template, context)


@require_GET
def project_list(request: HtmxHttpRequest) -> HttpResponse:
    """The picker's list, filtered by the search box as the curator types."""
    if not request.htmx:
        return redirect(reverse("classification:wizard") + "?" + request.GET.urlencode())
    return render(request, "classification/wizard.html#project_list", _wizard_context(request, params=request.GET))


@require_GET
def project_body(request: HtmxHttpRequest) -> HttpResponse:
    """Answers, step / mode / batch and preview for the project just chosen."""
    if not request.htmx:
        return redirect(reverse("classification:wizard") + "?" + request.GET.urlencode())
    return render(request, "classification/wizard.html#project_body", _wizard_context(request, params=request.GET))


@require_POST
def answers(request: HtmxHttpRequest) -> HttpResponse:
    """Re-render the questions after an option is chosen or un-chosen (sub-questions appear or
    disappear with their answers) or after the find box changes."""
    validate = request.POST.get("show_errors") == "1"
    context = _wizard_context(request, params=request.POST, validate=validate)
    if not request.htmx:
        return render(request, "classification/wizard.html", context)
    return render(request, "classification/wizard.html#answers", context)


@require_GET
def batch_name_check(request: HtmxHttpRequest) -> HttpResponse:
    """Says, before submit, whether the batch name is already used in the project."""
    errors: dict[str, str] = {}
    project = _project_from(request.GET, errors)
    name = request.GET.get("batch_name", "").strip()
    taken = project is not None and _batch_taken(project, name)
    context: dict[str, Any] = {"project": project, "batch_taken": taken, "errors": {}}
    if not name:
        context["errors"] = {"batch_name": "Batch name: enter a name."}
    elif project is not None and not taken:
        problem = services.batch_name_error(project, name)
        context["errors"] = {"batch_name": problem} if problem else {}
    if not request.htmx:
        return redirect(reverse("classification:wizard") + "?" + request.GET.urlencode())
    return render(request, "classification/wizard.html#batch_check", context)


def _options_or_errors(request: HtmxHttpRequest, project: Project | None, errors: dict[str, str]) -> dict[str, Any] | None:
    """Step, mode, batch name and priority from the POST, or None with errors filled in."""
    form = BatchOptionsForm(request.POST)
    if not form.is_valid():
        for name, field_errors in form.errors.items():
            errors[name] = f"{form.fields[name].label}: {' '.join(str(e) for e in field_errors)}"
        return None
    return form.cleaned_data if project is not None else None


@require_POST
def preview(request: HtmxHttpRequest) -> HttpResponse:
    """Exact counts of what a submit would do, computed on the server from the selection."""
    errors: dict[str, str] = {}
    project = _project_from(request.POST, errors)
    options = _options_or_errors(request, project, errors)
    result = None
    answers: dict[str, Any] = {}
    if project is None and "project" not in errors:
        errors["project"] = "Project: choose a project first."
    if project is not None:
        # The preview counts what a submit would do, so it checks the answers a submit needs.
        answers = services.parse_answers(project, request.POST)
        missing = services.validate_answers(project, answers)
        if missing:
            errors["answers"] = "Answer the required questions first: " + " ".join(missing.values())
    if project is not None and options is not None:
        # Counts still come with a bad batch name: the name is fixed in a moment, the
        # counts are what the curator came for.
        batch_problem = services.batch_name_error(project, options["batch_name"])
        if batch_problem:
            errors["batch_name"] = batch_problem
    if project is not None and options is not None and "answers" not in errors:
        result = services.preview_bulk_classification(
            _user(request), project, step=options["step"], mode=options["mode"], answers=answers, batch_name=options["batch_name"]
        )
    if request.htmx:
        return render(request, "classification/wizard.html#preview", {"preview": result, "errors": errors, "fragment": True})
    context = _wizard_context(request, params=request.POST, errors=errors, preview=result)
    return render(request, "classification/wizard.html", context)


@require_POST
def submit(request: HtmxHttpRequest) -> HttpResponse:
    """Create the job and return at once; the engine runs it in the background.

    HTMX: the form is replaced by the `submitted` partial and `jobStarted` wakes the
    notification panel. Plain POST: back to the catalog with a message. Errors re-render the
    form with each message next to its field."""
    errors: dict[str, str] = {}
    project = _project_from(request.POST, errors)
    if project is None and "project" not in errors:
        errors["project"] = "Project: choose a project."
    options = _options_or_errors(request, project, errors)
    job = None
    if project is not None and options is not None:
        answers = services.parse_answers(project, request.POST)
        try:
            job = services.submit_bulk_classification(
                _user(request),
                project,
                answers=answers,
                step=options["step"],
                on_existing=options["mode"],
                batch_name=options["batch_name"],
                priority=options["priority"],
                submission_key=request.POST.get("submission_key", ""),
            )
        except services.WizardValidationError as exc:
            errors.update(exc.errors)
    if job is None:
        context = _wizard_context(request, params=request.POST, errors=errors, validate=True)
        template = "classification/wizard.html#wizard_form" if request.htmx else "classification/wizard.html"
        return render(request, template, context)
    if not request.htmx:
        messages.success(request, f"Classification job started: {job.batch_name} → {project}. Follow it under the bell.")
        return redirect("catalog:browse")
    context = {"job": job, "project": project, "project_url": _project_url(project)}  # type: ignore[arg-type]
    response = render(request, "classification/wizard.html#submitted", context)
    return trigger_client_event(response, "jobStarted", {"job": job.pk})


# --- notifications ----------------------------------------------------------------------------


def _panel_context(request: HtmxHttpRequest) -> dict[str, Any]:
    user = _user(request)
    state = services.notification_state(user)
    jobs = list(state["jobs"])
    stale_before = timezone.now() - STALE_AFTER
    for job in jobs:
        job.project_url = _project_url(job.project)
        job.outcomes = describe_counts(job.counts or {})
        job.skipped_count = int((job.counts or {}).get("skipped_labeled", 0)) + int(
            (job.counts or {}).get("skipped_benchmark", 0)
        )
        # A running job whose worker went quiet can be resumed from the panel too.
        job.is_stalled = job.status == job.Status.RUNNING and (job.heartbeat_at is None or job.heartbeat_at < stale_before)
    return {
        "unread": state["unread"],
        "jobs": jobs,
        "any_active": state["any_active"],
        # Taken (and marked popped) only here, where they are sure to be shown.
        "popups": services.take_popups(user),
    }


@require_GET
def notification_panel(request: HtmxHttpRequest) -> HttpResponse:
    """The bell's panel: recent jobs with progress; polls itself only while a job runs.
    HTMX gets the panel plus out-of-band badge and pop-ups; a plain GET a full page."""
    context = _panel_context(request)
    if request.htmx:
        return render(request, "classification/notifications.html#panel_response", context)
    for note in context.pop("popups"):
        level = messages.ERROR if note.level == note.Level.ERROR else messages.SUCCESS
        messages.add_message(request, level, note.text)
    return render(request, "classification/notifications.html", context)


@require_POST
def mark_read(request: HtmxHttpRequest) -> HttpResponse:
    """Mark all of the user's notifications read, or only the ids posted."""
    raw_ids = request.POST.getlist("id")
    bad = [raw for raw in raw_ids if parse_id(raw) is None]
    if bad:
        raise Http404(f"Notification id {bad[0]!r} is not a number.")
    ids = [int(raw) for raw in raw_ids] or None
    services.mark_notifications_read(_user(request), ids=ids)
    if not request.htmx:
        return redirect("classification:panel")
    return render(request, "classification/notifications.html#panel_response", _panel_context(request))


@require_POST
def resume(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Re-queue a failed or stalled job of this user; it continues from its last chunk."""
    job = _own_job(request, pk)
    if job.status == BulkClassificationJob.Status.SUCCEEDED:
        # A stale panel (another tab) may still offer it: say so rather than pretend.
        text = f"Job “{job.batch_name}” already finished: there is nothing to resume."
        if not request.htmx:
            messages.info(request, text)
            return redirect("classification:panel")
        response = render(request, "classification/notifications.html#panel_response", _panel_context(request))
        return trigger_client_event(response, "curioError", {"message": text})
    services.resume_job(_user(request), job)
    if not request.htmx:
        messages.success(request, f"Job {job.batch_name} resumed.")
        return redirect("classification:panel")
    response = render(request, "classification/notifications.html#panel_response", _panel_context(request))
    return trigger_client_event(response, "jobStarted", {"job": job.pk})


# Enough thumbnails to see what was skipped; the count above the grid gives the full number.
SKIPPED_PAGE = 200


@require_GET
def skipped_rows(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The rows the job skipped, with the reason, as the engine recorded them."""
    job = _own_job(request, pk)
    reasons = JobSkippedRow.objects.filter(job=job, data_row_id=OuterRef("pk")).values("reason")[:1]
    skipped_qs = (
        DataRow.objects.filter(id__in=JobSkippedRow.objects.filter(job=job).values("data_row_id"))
        .annotate(skip_reason=Subquery(reasons))
        .order_by("id")
    )
    context = {
        "job": job,
        "project_url": _project_url(job.project),
        "rows": list(skipped_qs[:SKIPPED_PAGE]),
        "total": skipped_qs.count(),
        "page_size": SKIPPED_PAGE,
    }
    return render(request, "classification/skipped.html", context)
