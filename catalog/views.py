"""Catalog pages: the thumbnail grid with its filters, a data row, and the selection bar."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve
from django_htmx.http import trigger_client_event

from . import selection as selection_service
from .filters import KEY_OPERATORS, LABEL_OPERATORS, OPERATORS, SORTS, CatalogFilter, FilterError
from .models import DataRow, Dataset, Selection


def _filter_params(request: HttpRequest) -> QueryDict:
    """The filter part of a request: GET for pages, the POST body for selection actions
    (which carry the filter the curator is looking at)."""
    return request.GET if request.method == "GET" else request.POST


def _page(flt: CatalogFilter, after: str = "") -> tuple[list[DataRow], str]:
    """One grid page by keyset pagination: rows after the cursor, never an OFFSET."""
    qs = flt.queryset().only("id", "global_key", "thumbnail", "width", "height", "dataset_id")
    if after:
        qs = qs.filter(flt.after_q(after))
    rows = list(qs.order_by(*flt.ordering)[: settings.CURIO_PAGE_SIZE + 1])
    next_cursor = ""
    if len(rows) > settings.CURIO_PAGE_SIZE:
        rows = rows[: settings.CURIO_PAGE_SIZE]
        next_cursor = flt.cursor_for(rows[-1])
    return rows, next_cursor


def _selection_context(selection: Selection) -> dict[str, object]:
    frozen = selection_service.frozen_filter(selection) if selection.select_all else None
    return {
        "selection": selection,
        "selection_count": selection_service.selection_count(selection),
        "selection_filter": frozen.describe() if frozen else "",
    }


@require_GET
def browse(request: HttpRequest) -> HttpResponse:
    flt = CatalogFilter.from_querydict(request.GET)
    after = request.GET.get("after", "")
    try:
        flt.q()
        rows, next_cursor = _page(flt, after)
    except FilterError as exc:
        flt.errors.append(str(exc))
        rows, next_cursor = [], ""
    selection = selection_service.get_selection(request.user)
    filter_qs = flt.to_querystring()
    try:
        extra_conditions = max(0, int(request.GET.get("conditions", "0")))
    except ValueError:
        extra_conditions = 0
    context = {
        "filter": flt,
        "filter_qs": filter_qs,
        "rows": rows,
        "selected_ids": selection_service.selected_ids_among(selection, [r.pk for r in rows]),
        "next_cursor": next_cursor,
        "datasets": Dataset.objects.all(),
        "field_kinds": sorted(flt.field_kinds.items()),
        "operators": OPERATORS,
        "key_operators": KEY_OPERATORS,
        "sorts": SORTS,
        "condition_rows": flt.conditions + [None] * max(1, extra_conditions),
        "more_conditions_qs": _with_param(request.GET, "conditions", str(extra_conditions + 1)),
        "any_rows": DataRow.objects.exists(),
        "label_projects": _label_projects(),
        "label_operators": LABEL_OPERATORS,
        **_selection_context(selection),
    }
    template = "catalog/browse.html"
    if request.htmx and after:
        template += "#grid_page"  # "Load more" / infinite scroll appends one page
    elif request.htmx and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


def _label_projects() -> list[object]:
    """Projects with their option questions, for the filter form's label condition."""
    from projects.models import Project, Question

    questions = Question.objects.exclude(kind=Question.Kind.TEXT).prefetch_related("options").order_by("position", "id")
    projects = list(Project.objects.select_related("ontology").order_by("-created_at")[:50])
    by_ontology: dict[int, list[Question]] = {}
    for q in questions.filter(ontology_id__in={p.ontology_id for p in projects}):
        by_ontology.setdefault(q.ontology_id, []).append(q)
    for project in projects:
        project.filter_questions = by_ontology.get(project.ontology_id, [])  # type: ignore[attr-defined]
    return list(projects)


def _with_param(params: QueryDict, name: str, value: str) -> str:
    qd = params.copy()
    qd[name] = value
    qd.pop("after", None)
    return qd.urlencode()


@require_GET
def count(request: HttpRequest) -> HttpResponse:
    """The number of rows matching the filter, loaded after the grid so that a slow count
    never delays the first page."""
    flt = CatalogFilter.from_querydict(request.GET)
    matching = flt.queryset().count()
    return render(request, "catalog/browse.html#count", {"matching": matching, "filter": flt})


@require_GET
def row_detail(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(DataRow.objects.select_related("dataset"), pk=pk)
    fields = dict(row.dataset.fields.values_list("name", "kind"))
    metadata = [(name, value, fields.get(name, "string")) for name, value in sorted(row.metadata.items())]
    return render(request, "catalog/row_detail.html", {"row": row, "metadata": metadata})


@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    datasets = Dataset.objects.annotate(row_count=Count("rows")).order_by("name")
    return render(request, "catalog/datasets.html", {"datasets": datasets})


def _selection_response(request: HttpRequest, selection: Selection, event: dict[str, object]) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse("catalog:browse") + "?" + request.POST.get("filter_qs", ""))
    context = _selection_context(selection)
    response = render(request, "catalog/browse.html#selection_bar", context)
    event["count"] = context["selection_count"]
    return trigger_client_event(response, "selectionChanged", event)


def _row_from_post(request: HttpRequest) -> DataRow:
    row_id = request.POST.get("row", "")
    if not row_id.isdigit():
        raise Http404("No such data row.")
    return get_object_or_404(DataRow, pk=int(row_id))


@require_POST
def selection_toggle(request: HttpRequest) -> HttpResponse:
    row = _row_from_post(request)
    selected = request.POST.get("selected", "1") == "1"
    selection = selection_service.set_row_selected(request.user, row, selected=selected)
    return _selection_response(request, selection, {"action": "toggle", "row": row.pk, "selected": selected})


@require_POST
def selection_range(request: HttpRequest) -> HttpResponse:
    row = _row_from_post(request)
    selected = request.POST.get("selected", "1") == "1"
    params = QueryDict(request.POST.get("filter_qs", ""))
    anchor = request.POST.get("anchor", "")
    anchor_id = int(anchor) if anchor.isdigit() else None
    selection = selection_service.select_range(request.user, row, params, selected=selected, anchor_id=anchor_id)
    return _selection_response(request, selection, {"action": "range", "row": row.pk, "selected": selected})


@require_POST
def selection_all(request: HttpRequest) -> HttpResponse:
    params = QueryDict(request.POST.get("filter_qs", ""))
    try:
        selection = selection_service.select_all(request.user, params)
    except FilterError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
        selection = selection_service.get_selection(request.user)
        response = _selection_response(request, selection, {"action": "error"})
        if request.htmx:
            response = trigger_client_event(response, "curioError", {"message": str(exc)})
        return response
    return _selection_response(request, selection, {"action": "all"})


@require_POST
def selection_clear(request: HttpRequest) -> HttpResponse:
    selection = selection_service.clear_selection(request.user)
    return _selection_response(request, selection, {"action": "clear"})


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponse:
    """Media files behind the login like every page (the embedded default has no separate
    file server; a scale-out deployment serves them from object storage instead)."""
    response = serve(request, path, document_root=Path(settings.MEDIA_ROOT))
    # Content-addressed names never change content: let the browser keep them.
    response["Cache-Control"] = "private, max-age=86400"
    return response
