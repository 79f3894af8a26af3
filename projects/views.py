"""Curator pages for projects: the list, "New project", a project's page and its exports."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.middleware import HtmxDetails

from catalog.models import DataRow
from curio.ids import parse_id

from . import services
from .forms import ProjectForm
from .models import Answer, Project, ProjectDataRow


class HtmxHttpRequest(HttpRequest):
    """HttpRequest as django-htmx's middleware leaves it (for the type checker)."""

    htmx: HtmxDetails


def _project(pk: int) -> Project:
    """Projects are shared by all curators (no private data in them), so any logged-in user
    may see one; a missing id is a 404."""
    return get_object_or_404(Project.objects.select_related("ontology", "created_by"), pk=pk)


@require_GET
def project_list(request: HtmxHttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    projects = Project.objects.select_related("ontology", "created_by").order_by("-created_at", "-id")
    if query:
        projects = projects.filter(name__icontains=query)
    context = {"projects": projects[:200], "query": query}
    template = "projects/project_list.html"
    if request.htmx and request.htmx.target == "project-results":
        template += "#results"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.create_project(
            request.user,
            name=form.cleaned_data["name"],
            ontology=form.cleaned_data["ontology"],
            description=form.cleaned_data["description"],
            consensus=form.cleaned_data["consensus"],
        )
        return redirect("projects:detail", pk=project.pk)
    return render(request, "projects/project_new.html", {"form": form})


def _rows_page(project: Project, after: int) -> tuple[list[ProjectDataRow], int | None]:
    """One page of the project's rows by keyset on data_row_id (served by the unique
    (project, data_row) index), never an OFFSET."""
    size = settings.CURIO_PAGE_SIZE
    rows = list(
        ProjectDataRow.objects.filter(project=project, data_row_id__gt=after)
        .select_related("data_row", "batch")
        .order_by("data_row_id")[: size + 1]
    )
    next_after = rows[size - 1].data_row_id if len(rows) > size else None
    rows = rows[:size]
    answers = (
        Answer.objects.filter(project=project, data_row_id__in=[r.data_row_id for r in rows])
        .select_related("question")
        .prefetch_related("chosen__option")
        .order_by("question__position", "question_id")
    )
    by_row: dict[int, list[Answer]] = {}
    for answer in answers:
        by_row.setdefault(answer.data_row_id, []).append(answer)
    for row in rows:
        row.answer_list = by_row.get(row.data_row_id, [])  # type: ignore[attr-defined]
    return rows, next_after


@require_GET
def project_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    project = _project(pk)
    # A cursor that is not an id (text, negative, beyond 64 bits) starts from the top.
    after = parse_id(request.GET.get("after", "")) or 0
    rows, next_after = _rows_page(project, after)
    context = {"project": project, "rows": rows, "next_after": next_after}
    if request.htmx and after:
        return render(request, "projects/project_detail.html#rows_page", context)
    step_counts = dict(
        ProjectDataRow.objects.filter(project=project).values_list("step").annotate(n=Count("id")).values_list("step", "n")
    )
    context["steps"] = [(label, step_counts.get(value, 0)) for value, label in ProjectDataRow.Step.choices]
    context["total_rows"] = sum(step_counts.values())
    context["batches"] = project.batches.annotate(size=Count("project_rows")).order_by("priority", "created_at", "id")
    # Answer counts by kind, so the export buttons can say what each file will hold (jobs at
    # "Initial labeling" write pre-labels: a label export alone would look empty).
    kinds = dict(Answer.objects.filter(project=project).values_list("kind").annotate(n=Count("id")).order_by())
    context["exports"] = [
        (Answer.Kind.LABEL, "Labels", kinds.get(Answer.Kind.LABEL, 0)),
        (Answer.Kind.PRELABEL, "Pre-labels", kinds.get(Answer.Kind.PRELABEL, 0)),
    ]
    return render(request, "projects/project_detail.html", context)


@require_GET
def project_export(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    """Labels (or ?kind=prelabel pre-labels) streamed as NDJSON or CSV, so a million answers
    never sit in memory at once."""
    if fmt not in ("ndjson", "csv"):
        raise Http404("Exports are .ndjson or .csv.")
    project = _project(pk)
    kind = request.GET.get("kind", Answer.Kind.LABEL)
    if kind not in Answer.Kind.values:
        kind = Answer.Kind.LABEL
    if fmt == "ndjson":
        response = StreamingHttpResponse(services.iter_label_ndjson(project, kind=kind), content_type="application/x-ndjson")
    else:
        response = StreamingHttpResponse(services.iter_label_csv(project, kind=kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-{kind}s.{fmt}"'
    return response


def row_answer_groups(row: DataRow) -> list[tuple[Project, list[Answer]]]:
    """This data row's answers in every project, grouped by project (for the data-row page)."""
    answers = (
        Answer.objects.filter(data_row=row)
        .select_related("project", "question", "set_by", "job")
        .prefetch_related("chosen__option")
        .order_by("project__name", "kind", "question__position", "question_id")
    )
    groups: dict[int, tuple[Project, list[Answer]]] = {}
    for answer in answers:
        groups.setdefault(answer.project_id, (answer.project, []))[1].append(answer)
    return list(groups.values())
