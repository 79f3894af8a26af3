"""Catalog pages: the thumbnail grid with its filters and search, a data row, the selection
bar, and the projector (a 2-D map of an embedding space)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from curio.ids import parse_id

from . import projector
from . import selection as selection_service
from .filters import (
    DEFAULT_TOP_K,
    KEY_OPERATORS,
    LABEL_OPERATORS,
    MAX_ANCHORS,
    MAX_TOP_K,
    OPERATORS,
    SORTS,
    CatalogFilter,
    FilterError,
)
from .models import DataRow, Dataset, Embedding, EmbeddingSpace, Selection

# Condition rows the filter form may show (each is a row of inputs).
MAX_CONDITION_ROWS = 20


def _filter_params(request: HtmxHttpRequest) -> QueryDict:
    """The filter part of a request: GET for pages, the POST body for selection actions
    (which carry the filter the curator is looking at)."""
    return request.GET if request.method == "GET" else request.POST


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django-htmx's middleware


def _user(request: HtmxHttpRequest) -> User:
    # LoginRequiredMiddleware guarantees an authenticated user on every view here.
    return request.user  # type: ignore[return-value]


TILE_FIELDS = ("id", "global_key", "thumbnail", "width", "height", "dataset_id")


def _page(flt: CatalogFilter, after: str = "") -> tuple[list[DataRow], str]:
    """One grid page by keyset pagination: rows after the cursor, never an OFFSET.

    A ranked search pages by rank position in its result, which is in memory anyway: the
    database only fetches the page's rows by id."""
    if flt.ranked:
        ids = flt.search_result().row_ids
        start = flt.rank_position(after) if after else 0
        page_ids = ids[start : start + settings.CURIO_PAGE_SIZE]
        found = DataRow.objects.only(*TILE_FIELDS).in_bulk(page_ids)
        rows = [found[i] for i in page_ids if i in found]
        end = start + settings.CURIO_PAGE_SIZE
        return rows, flt.rank_cursor(end) if end < len(ids) else ""
    qs = flt.queryset().only(*TILE_FIELDS)
    if after:
        qs = qs.filter(flt.after_q(after))
    rows = list(qs.order_by(*flt.ordering)[: settings.CURIO_PAGE_SIZE + 1])
    next_cursor = ""
    if len(rows) > settings.CURIO_PAGE_SIZE:
        rows = rows[: settings.CURIO_PAGE_SIZE]
        next_cursor = flt.cursor_for(rows[-1])
    return rows, next_cursor


def _selection_context(selection: Selection, filter_qs: str = "") -> dict[str, object]:
    frozen = selection_service.frozen_filter(selection) if selection.select_all else None
    return {
        "selection": selection,
        "selection_count": selection_service.selection_count(selection),
        "selection_filter": frozen.describe() if frozen else "",
        # "Find similar to selected" searches inside the filter the curator is looking at.
        "bar_filter_qs": filter_qs,
    }


def _spaces() -> list[EmbeddingSpace]:
    return list(EmbeddingSpace.objects.order_by("kind", "key"))


@require_GET
def browse(request: HtmxHttpRequest) -> HttpResponse:
    flt = CatalogFilter.from_querydict(request.GET)
    after = request.GET.get("after", "")
    try:
        flt.q()
        rows, next_cursor = _page(flt, after)
    except FilterError as exc:
        flt.errors.append(str(exc))
        rows, next_cursor = [], ""
    scores = flt.scores
    for row in rows:
        row.score = scores.get(row.pk)  # type: ignore[attr-defined]
    selection = selection_service.get_selection(_user(request))
    filter_qs = flt.to_querystring()
    try:
        # Capped: the form renders one row per condition, and a URL must not ask for a million.
        extra_conditions = min(MAX_CONDITION_ROWS, max(0, int(request.GET.get("conditions", "0"))))
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
        "clear_similar_qs": _without(request.GET, "similar", "unlike", "after"),
        "spaces": _spaces(),
        "default_top_k": DEFAULT_TOP_K,
        "max_top_k": MAX_TOP_K,
        "less_like_qs": _without_search_paging(request.GET),
        **_selection_context(selection, filter_qs),
    }
    template = "catalog/browse.html"
    if request.htmx and after:
        template += "#grid_page"  # "Load more" / infinite scroll appends one page
    elif request.htmx and request.htmx.target == "results":
        template += "#results"
    return render(request, template, context)


def _label_projects() -> list[Any]:
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


def _without_search_paging(params: QueryDict) -> str:
    """The current query string without the page cursor: tiles of a similarity search append
    `&unlike=<id>` to it ("less like this")."""
    return _without(params, "after")


def _without(params: QueryDict, *names: str) -> str:
    qd = params.copy()
    for name in names:
        qd.pop(name, None)
    return qd.urlencode()


def _with_param(params: QueryDict, name: str, value: str) -> str:
    qd = params.copy()
    qd[name] = value
    qd.pop("after", None)
    return qd.urlencode()


@require_GET
def count(request: HtmxHttpRequest) -> HttpResponse:
    """The number of rows matching the filter, loaded after the grid so that a slow count
    never delays the first page."""
    flt = CatalogFilter.from_querydict(request.GET)
    matching = flt.queryset().count()
    return render(request, "catalog/browse.html#count", {"matching": matching, "filter": flt})


@require_GET
def row_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(DataRow.objects.select_related("dataset"), pk=pk)
    fields = dict(row.dataset.fields.values_list("name", "kind"))
    metadata = [(name, value, fields.get(name, "string")) for name, value in sorted(row.metadata.items())]
    # "Find similar" in every space that holds this row's vector.
    spaces = EmbeddingSpace.objects.filter(embeddings__data_row=row).order_by("kind", "key")
    return render(request, "catalog/row_detail.html", {"row": row, "metadata": metadata, "similar_spaces": spaces})


@require_GET
def row_thumbnail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A row's thumbnail by row id (the projector's hover preview knows only ids)."""
    row = get_object_or_404(DataRow.objects.only("thumbnail"), pk=pk)
    return redirect(row.thumbnail.url)


@require_GET
def dataset_list(request: HtmxHttpRequest) -> HttpResponse:
    datasets = Dataset.objects.annotate(row_count=Count("rows")).order_by("name")
    return render(request, "catalog/datasets.html", {"datasets": datasets})


def _selection_response(request: HtmxHttpRequest, selection: Selection, event: dict[str, object]) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse("catalog:browse") + "?" + request.POST.get("filter_qs", ""))
    context = _selection_context(selection, request.POST.get("filter_qs", ""))
    response = render(request, "catalog/browse.html#selection_bar", context)
    event["count"] = context["selection_count"]
    # After the swap, so the event reaches <body> even when the element that sent the request
    # was swapped out meanwhile (Select all inside a grid that a filter request replaced).
    return trigger_client_event(response, "selectionChanged", event, after="swap")


def _row_from_post(request: HtmxHttpRequest) -> DataRow:
    row_id = parse_id(request.POST.get("row", ""))
    if row_id is None:
        raise Http404("No such data row.")
    return get_object_or_404(DataRow, pk=row_id)


@require_POST
def selection_toggle(request: HtmxHttpRequest) -> HttpResponse:
    row = _row_from_post(request)
    selected = request.POST.get("selected", "1") == "1"
    selection = selection_service.set_row_selected(_user(request), row, selected=selected)
    return _selection_response(request, selection, {"action": "toggle", "row": row.pk, "selected": selected})


@require_POST
def selection_range(request: HtmxHttpRequest) -> HttpResponse:
    row = _row_from_post(request)
    selected = request.POST.get("selected", "1") == "1"
    params = QueryDict(request.POST.get("filter_qs", ""))
    anchor = request.POST.get("anchor", "")
    anchor_id = parse_id(anchor)
    selection = selection_service.select_range(_user(request), row, params, selected=selected, anchor_id=anchor_id)
    return _selection_response(request, selection, {"action": "range", "row": row.pk, "selected": selected})


@require_POST
def selection_all(request: HtmxHttpRequest) -> HttpResponse:
    params = QueryDict(request.POST.get("filter_qs", ""))
    try:
        selection = selection_service.select_all(_user(request), params)
    except FilterError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
        selection = selection_service.get_selection(_user(request))
        response = _selection_response(request, selection, {"action": "error"})
        if request.htmx:
            response = trigger_client_event(response, "curioError", {"message": str(exc)}, after="swap")
        return response
    return _selection_response(request, selection, {"action": "all"})


@require_GET
def similar_to_selection(request: HtmxHttpRequest) -> HttpResponse:
    """ "Find similar to selected": a similarity search whose anchors are the selected rows
    (the newest MAX_ANCHORS of them), inside the filter the curator was looking at."""
    selection = selection_service.get_selection(_user(request))
    anchors = list(selection_service.selected_rows(selection).order_by("-id").values_list("id", flat=True)[:MAX_ANCHORS])
    if not anchors:
        messages.error(request, "Nothing is selected: tick rows first, then Find similar.")
        return redirect("catalog:browse")
    selected = selection_service.selection_count(selection)
    if selected > len(anchors):
        # Say so: a curator who selected 300 rows should not think all 300 were used.
        messages.info(request, f"Find similar used the {len(anchors)} newest of your {selected:,} selected rows as examples.")
    flt = CatalogFilter.from_querydict(request.GET)
    flt.search_text, flt.similar_ids, flt.unlike_ids, flt.frozen_ids = "", anchors, [], None
    return redirect(reverse("catalog:browse") + "?" + flt.to_querystring())


@require_POST
def selection_clear(request: HtmxHttpRequest) -> HttpResponse:
    selection = selection_service.clear_selection(_user(request))
    return _selection_response(request, selection, {"action": "clear"})


@require_GET
def media(request: HtmxHttpRequest, path: str) -> HttpResponseBase:
    """Media files behind the login like every page (the embedded default has no separate
    file server; a scale-out deployment serves them from object storage instead)."""
    response = serve(request, path, document_root=str(Path(settings.MEDIA_ROOT)))
    # Content-addressed names never change content: let the browser keep them.
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --- projector -------------------------------------------------------------------------------------
# Colors for the map's categories (Okabe–Ito, readable by color-blind curators), then grey for "other".
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
OTHER_COLOR = "#9aa0a6"


def _map_space(request: HtmxHttpRequest, flt: CatalogFilter) -> EmbeddingSpace | None:
    """The space to draw: `map_space`, else the search's space, else the configured CLIP
    model's, else the first space."""
    from .embedding_service import current_clip_space

    params = _filter_params(request)
    chosen = params.get("map_space", "").strip()
    if chosen:
        space_id = parse_id(chosen)
        if space_id is None:
            raise Http404(f"Embedding space '{chosen}' is not a space id.")
        return get_object_or_404(EmbeddingSpace, pk=space_id)
    if flt.space_id:
        return EmbeddingSpace.objects.filter(pk=flt.space_id).first()
    return current_clip_space() or EmbeddingSpace.objects.order_by("kind", "key").first()


def _color_choices(flt: CatalogFilter) -> list[tuple[str, str]]:
    """("field:NAME", label) per metadata field and ("answer:PROJECT:QUESTION", label) per
    option question of a recent project."""
    choices = [(f"field:{name}", f"{name} ({kind})") for name, kind in sorted(flt.field_kinds.items())]
    for project in _label_projects():
        for question in project.filter_questions:  # type: ignore[attr-defined]
            choices.append((f"answer:{project.pk}:{question.pk}", f"{project.name} › {question.name}"))
    return choices


def _point_colors(row_ids: list[int], color: str) -> tuple[list[int], list[dict[str, str]]]:
    """Per point, an index into the legend (the most frequent values get their own colors,
    the rest are "other"); -1 for rows without a value."""
    values: dict[int, str] = {}
    if color.startswith("field:"):
        name = color.removeprefix("field:")
        lookup = "metadata__folder" if name == "folder" else f"metadata__{name}"
        for start in range(0, len(row_ids), 5000):
            chunk = row_ids[start : start + 5000]
            for pk, value in DataRow.objects.filter(id__in=chunk).values_list("id", lookup):
                if value not in (None, ""):
                    values[pk] = str(value)
    elif color.startswith("answer:"):
        from projects.models import AnswerOption

        _, project_id, question_id = [*color.split(":"), "", ""][:3]
        if parse_id(project_id) is not None and parse_id(question_id) is not None:
            wanted = set(row_ids)
            chosen = AnswerOption.objects.filter(project_id=int(project_id), question_id=int(question_id))
            # Labels win over pre-labels: they are what a reviewer accepted.
            for pk, label, kind in chosen.order_by("kind").values_list("data_row_id", "option__label", "kind"):
                if pk in wanted and (pk not in values or kind == "label"):
                    values[pk] = label
    counts: dict[str, int] = {}
    for value in values.values():
        counts[value] = counts.get(value, 0) + 1
    top = sorted(counts, key=lambda v: (-counts[v], v))[: len(PALETTE)]
    legend = [{"label": v, "color": PALETTE[i], "count": str(counts[v])} for i, v in enumerate(top)]
    index = {v: i for i, v in enumerate(top)}
    if len(counts) > len(top):
        legend.append({"label": "other", "color": OTHER_COLOR, "count": str(sum(counts[v] for v in counts if v not in index))})
    other = len(top)
    return [index.get(values[pk], other) if pk in values else -1 for pk in row_ids], legend


class _MapPending(Exception):
    def __init__(self, state: dict[str, object]) -> None:
        super().__init__("The map is still being computed.")
        self.state = state


def _projection(space: EmbeddingSpace, flt: CatalogFilter) -> projector.Projection:
    """The map for (space, filter): computed here when small, else from the background
    job's cache (starting the job when needed: raises _MapPending until it is done)."""
    filter_query = flt.to_querystring()
    rows = None if flt.is_empty else flt.queryset()
    size = Embedding.objects.filter(space=space).count() if rows is None else rows.count()
    if size <= projector.background_limit():
        return projector.project(space, rows=rows)
    key = projector.map_key(space, filter_query, "pca")
    cached = projector.cached_map(key)
    if cached is not None:
        return cached
    state = projector.map_job_state(key)
    if state and state.get("status") == "failed":
        raise projector.ProjectorError(f"Computing the map failed: {state.get('message')}")
    projector.start_map_job(space, filter_query, "pca")
    raise _MapPending({"status": "computing", "points": size})


@require_GET
def projector_page(request: HtmxHttpRequest) -> HttpResponse:
    flt = CatalogFilter.from_querydict(request.GET)
    space = _map_space(request, flt)
    selection = selection_service.get_selection(_user(request))
    filter_qs = flt.to_querystring()
    color = request.GET.get("color", "")
    points = QueryDict(filter_qs, mutable=True)
    if space is not None:
        points["map_space"] = str(space.pk)
    if color:
        points["color"] = color
    context = {
        "filter": flt,
        "filter_qs": filter_qs,
        "space": space,
        "spaces": _spaces(),
        "color": color,
        "color_choices": _color_choices(flt),
        # The catalog filter rides along as hidden fields when the space or colors change.
        "filter_params": [(k, v) for k, values in QueryDict(filter_qs).lists() for v in values],
        "points_qs": points.urlencode(),
        **_selection_context(selection, filter_qs),
    }
    return render(request, "catalog/projector.html", context)


@require_GET
def projector_points(request: HtmxHttpRequest) -> JsonResponse:
    """The map as JSON for projector.js: {"status": "ready", "ids", "x", "y", "c", "legend"},
    or {"status": "computing"} while a background job works on it, or an error message."""
    flt = CatalogFilter.from_querydict(request.GET)
    space = _map_space(request, flt)
    if space is None:
        message = "There is no embedding space yet: embed images or import custom vectors."
        return JsonResponse({"status": "error", "message": message})
    flt.q()
    if flt.errors:
        return JsonResponse({"status": "error", "message": " ".join(flt.errors)})
    try:
        projection = _projection(space, flt)
    except _MapPending as pending:
        return JsonResponse(pending.state)
    except projector.ProjectorError as exc:
        return JsonResponse({"status": "error", "message": str(exc)})
    ids = projection.row_ids.tolist()
    colors, legend = _point_colors(ids, request.GET.get("color", ""))
    coords = np.round(projection.coords.astype(np.float64), 5)
    return JsonResponse(
        {
            "status": "ready",
            "space": space.key,
            "ids": ids,
            "x": coords[:, 0].tolist(),
            "y": coords[:, 1].tolist(),
            "c": colors,
            "legend": legend,
        }
    )


def _finite(value: object) -> float:
    """A coordinate: a finite number (an infinite corner would draw around every row)."""
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _shape_ids(request: HtmxHttpRequest, projection: projector.Projection) -> list[int]:
    """Row ids inside the posted box (x0, y0, x1, y1) or lasso (`points`: [[x, y], ...]), in
    the map's [0, 1] frame."""
    shape = request.POST.get("shape", "")
    if shape == "box":
        try:
            corners = {name: _finite(request.POST.get(name, "")) for name in ("x0", "y0", "x1", "y1")}
        except ValueError as exc:
            raise projector.ProjectorError("A box needs finite numeric corners x0, y0, x1, y1.") from exc
        return projector.select_box(projection, **corners)
    if shape == "lasso":
        try:
            polygon = json.loads(request.POST.get("points", ""))
            points = [(_finite(x), _finite(y)) for x, y in polygon]
        except (ValueError, TypeError) as exc:
            raise projector.ProjectorError("A lasso needs `points` as a JSON list of finite [x, y] pairs.") from exc
        return projector.select_lasso(projection, points)
    raise projector.ProjectorError(f"Unknown selection shape '{shape}': use box or lasso.")


@require_POST
def projector_select(request: HtmxHttpRequest) -> HttpResponse:
    """Box or lasso on the map: the rows inside are added to the selection. The shape is
    resolved on the server against the same map, so the browser never ships ids."""
    flt = CatalogFilter.from_querydict(QueryDict(request.POST.get("filter_qs", "")))
    space = _map_space(request, flt)
    try:
        if space is None:
            raise projector.ProjectorError("There is no embedding space to select from.")
        flt.q()
        if flt.errors:
            raise projector.ProjectorError(" ".join(flt.errors))
        ids = _shape_ids(request, _projection(space, flt))
    except (projector.ProjectorError, _MapPending) as exc:
        if not request.htmx:
            messages.error(request, str(exc))
            return redirect(reverse("catalog:projector") + "?" + request.POST.get("filter_qs", ""))
        selection = selection_service.get_selection(_user(request))
        response = _selection_response(request, selection, {"action": "error"})
        return trigger_client_event(response, "curioError", {"message": str(exc)}, after="swap")
    selection, added = selection_service.add_rows_to_selection(_user(request), ids)
    if not request.htmx:
        messages.success(request, f"Added {added} row(s) to the selection.")
        return redirect(reverse("catalog:projector") + "?" + request.POST.get("filter_qs", ""))
    return _selection_response(request, selection, {"action": "add", "added": added, "inside": len(ids)})
