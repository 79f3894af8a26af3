"""Selection services: every change to a curator's selection goes through here.

The browser never ships a list of ids for "Select all": the server keeps the frozen filter
plus per-row exclusions and inclusions (see models.Selection), and resolves it on demand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.http import QueryDict

from .filters import CatalogFilter, FilterError
from .models import DataRow, Selection, SelectionItem


def get_selection(user: User) -> Selection:
    selection, _ = Selection.objects.get_or_create(user=user)
    return selection


def frozen_filter(selection: Selection) -> CatalogFilter:
    return CatalogFilter.from_querydict(QueryDict(selection.filter_query))


def resolve_rows(
    *, select_all: bool, filter_query: str, max_row_id: int | None, included: Any, excluded: Any
) -> QuerySet[DataRow]:
    """Rows of a selection: (filter ∧ id ≤ max_row_id ∖ excluded) ∪ included.

    `included` / `excluded` are subqueries of data-row ids (`included` None when there are
    none), so a selection of any size is resolved by the database, never as a list in Python. Used for the live selection and
    for a job's frozen copy of it.
    """
    if not select_all:
        return DataRow.objects.filter(id__in=included)
    base = CatalogFilter.from_querydict(QueryDict(filter_query)).q() & Q(id__lte=max_row_id or 0)
    if included is None:
        # No hand-ticked extras: without the OR the database can walk the id index in
        # order and stop at a LIMIT (the job engine's chunks rely on it).
        return DataRow.objects.filter(base & ~Q(id__in=excluded))
    return DataRow.objects.filter((base & ~Q(id__in=excluded)) | Q(id__in=included))


def _base_q(selection: Selection) -> Q | None:
    """Rows covered by the frozen Select all (before exclusions), or None without one."""
    if not selection.select_all:
        return None
    q = frozen_filter(selection).q()
    return q & Q(id__lte=selection.max_row_id or 0)


def selected_rows(selection: Selection) -> QuerySet[DataRow]:
    """Every selected data row, resolved on the server."""
    items = SelectionItem.objects.filter(selection=selection)
    return resolve_rows(
        select_all=selection.select_all,
        filter_query=selection.filter_query,
        max_row_id=selection.max_row_id,
        included=items.filter(kind=SelectionItem.Kind.INCLUDE).values("data_row_id"),
        excluded=items.filter(kind=SelectionItem.Kind.EXCLUDE).values("data_row_id"),
    )


def selection_count(selection: Selection) -> int:
    """The exact count, as kept by the services (no query)."""
    return selection.row_count


def recount_selection(selection: Selection) -> int:
    """Count the selection in the database (Select all, and after the catalog changed)."""
    selection.row_count = selected_rows(selection).count()
    selection.save(update_fields=["row_count"])
    return selection.row_count


def selected_ids_among(selection: Selection, row_ids: Iterable[int]) -> set[int]:
    """Which of these (visible) rows are selected: used to render the grid's checkboxes."""
    ids = list(row_ids)
    if not ids:
        return set()
    return set(selected_rows(selection).filter(id__in=ids).values_list("id", flat=True))


def _in_base(selection: Selection, row_ids: list[int]) -> set[int]:
    base = _base_q(selection)
    if base is None:
        return set()
    return set(DataRow.objects.filter(base, id__in=row_ids).values_list("id", flat=True))


def _set_rows(selection: Selection, row_ids: list[int], *, selected: bool) -> None:
    """Mark rows selected or not, keeping the include/exclude items minimal and the count
    exact. Works in slices so a shift-click over 100k rows stays under SQLite's limit on
    query parameters."""
    delta = 0
    for start in range(0, len(row_ids), 5000):
        chunk = row_ids[start : start + 5000]
        before = selected_ids_among(selection, chunk)
        delta += (len(set(chunk)) - len(before)) if selected else -len(before)
        in_base = _in_base(selection, chunk)
        SelectionItem.objects.filter(selection=selection, data_row_id__in=chunk).delete()
        if selected:
            wanted = [i for i in chunk if i not in in_base]
            kind = SelectionItem.Kind.INCLUDE
        else:
            wanted = [i for i in chunk if i in in_base]
            kind = SelectionItem.Kind.EXCLUDE
        SelectionItem.objects.bulk_create(
            [SelectionItem(selection=selection, data_row_id=i, kind=kind) for i in wanted],
            batch_size=5000,
            ignore_conflicts=True,
        )
    selection.row_count = max(0, selection.row_count + delta)
    selection.save(update_fields=["row_count"])


def set_row_selected(user: User, row: DataRow, *, selected: bool) -> Selection:
    """Tick or un-tick one row; it becomes the anchor of the next shift-click."""
    with transaction.atomic():
        selection = get_selection(user)
        _set_rows(selection, [row.pk], selected=selected)
        selection.anchor_row_id = row.pk
        selection.save(update_fields=["anchor_row_id", "updated_at"])
    return selection


def select_range(
    user: User, target: DataRow, params: QueryDict, *, selected: bool = True, anchor_id: int | None = None
) -> Selection:
    """Shift-click: every row between the anchor (the last clicked row, as the browser saw
    it, else as the server recorded it) and `target` in the order and filter the curator is
    looking at, including rows not loaded in the browser yet."""
    flt = CatalogFilter.from_querydict(params)
    with transaction.atomic():
        selection = get_selection(user)
        anchor_id = anchor_id or selection.anchor_row_id
        anchor = DataRow.objects.filter(pk=anchor_id).first() if anchor_id else None
        if anchor is None:
            ids = [target.pk]
        else:
            ids = list(flt.queryset().filter(flt.between_q(anchor, target)).values_list("id", flat=True))
            if target.pk not in ids:
                ids.append(target.pk)
        _set_rows(selection, ids, selected=selected)
        selection.anchor_row_id = target.pk
        selection.save(update_fields=["anchor_row_id", "updated_at"])
    return selection


def select_all(user: User, params: QueryDict) -> Selection:
    """Select every row matching the filter, now: the filter is frozen together with the
    newest row id, so rows imported later are not swept in. A search is frozen as its
    ranked ids (CatalogFilter.frozen), so the selection is exactly the results shown, even
    if vectors change before the wizard resolves it."""
    flt = CatalogFilter.from_querydict(params)
    flt.q()  # validates conditions and runs the search, if any
    if flt.errors:
        raise FilterError("Fix the filter before selecting all: " + " ".join(flt.errors))
    with transaction.atomic():
        selection = get_selection(user)
        SelectionItem.objects.filter(selection=selection).delete()
        selection.select_all = True
        selection.filter_query = flt.frozen().to_querystring()
        selection.max_row_id = DataRow.objects.aggregate(m=Max("id"))["m"] or 0
        selection.anchor_row_id = None
        selection.save()
        recount_selection(selection)
    return selection


def add_rows_to_selection(user: User, row_ids: Iterable[int]) -> tuple[Selection, int]:
    """Add rows (a box or lasso on the projector) to the selection, keeping what is already
    selected. Returns the selection and how many of the rows were not selected before.
    Ids of rows that do not exist are ignored."""
    wanted = sorted({int(i) for i in row_ids})
    with transaction.atomic():
        selection = get_selection(user)
        added = 0
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start : start + 5000]
            existing = list(DataRow.objects.filter(id__in=chunk).values_list("id", flat=True))
            added += len(existing) - len(selected_ids_among(selection, existing))
            _set_rows(selection, existing, selected=True)
        selection.save(update_fields=["updated_at"])
    return selection, added


def clear_selection(user: User) -> Selection:
    with transaction.atomic():
        selection = get_selection(user)
        SelectionItem.objects.filter(selection=selection).delete()
        selection.select_all = False
        selection.filter_query = ""
        selection.max_row_id = None
        selection.anchor_row_id = None
        selection.row_count = 0
        selection.save()
    return selection
