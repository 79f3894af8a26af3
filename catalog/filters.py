"""The catalog filter: parsed from the URL's query string, applied as one Q object.

The whole filter state lives in the URL so that a link reproduces a view, Back works, and a
"Select all" can freeze the exact filter it was pressed under (see Selection).

Query-string parameters:
    dataset      dataset id (always ANDed: it scopes the view)
    key, key_op  global key `contains` / `startswith`
    f, op, v, v2 repeated, aligned: metadata field, operator (eq, contains, in, range), value(s)
    combine      `and` (default) / `or` between the key, metadata and label conditions
    sort         `newest` (default) / `key`
    ap, aop, aq, ao  label condition: in project `ap`, `aop` is `in` / `not_in` (answer to
                 question `aq` is / is not one of options `ao`, repeated), `labeled` or
                 `unlabeled` (has / has no label in the project)

Search narrows the filter above (only rows matching it are ranked, best score first):
    q            natural-language text (needs a CLIP space)
    similar      anchor row ids, repeated ("Find similar"; at most MAX_ANCHORS)
    unlike       negative anchor row ids ("less like these"), repeated or comma-separated
    space        embedding space id (default: the configured CLIP model's space, else a
                 space holding the anchors' vectors)
    top_k        how many results (default DEFAULT_TOP_K); with min_score it is a cap
    min_score    keep only rows scoring at least this (cosine similarity)
    ids          a ranked result frozen by Select all (comma-separated row ids): the
                 selection re-resolves exactly these rows instead of searching again, so
                 new vectors or a changed model never change what was selected
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from curio.ids import parse_id

from .models import DataRow, Dataset, MetadataField

OPERATORS = {
    "eq": "equals",
    "contains": "contains",
    "in": "is any of",
    "range": "between",
}
KEY_OPERATORS = {"contains": "contains", "startswith": "starts with"}
LABEL_OPERATORS = {
    "in": "answer is one of",
    "not_in": "answer is not one of",
    "labeled": "has a label",
    "unlabeled": "has no label",
}
SORTS = {"newest": "Newest first", "key": "Global key A→Z"}
# Parameters that are not part of the filter itself (paging, UI state).
NON_FILTER_PARAMS = {"after", "page_size", "conditions"}

DEFAULT_TOP_K = 100
# A threshold search, or an explicit top_k, returns at most this many rows: a list a curator
# can still page through, and a frozen Select all that stays a modest id list.
MAX_TOP_K = 10_000
# "Find similar" averages at most this many anchors (the first ones selected).
MAX_ANCHORS = 50

BUILTIN_FIELDS = {"folder": MetadataField.Kind.STRING}


class FilterError(ValueError):
    pass


@dataclass
class Condition:
    field: str
    op: str
    value: str
    value2: str = ""
    error: str = ""


@dataclass
class CatalogFilter:
    dataset_id: int | None = None
    key: str = ""
    key_op: str = "contains"
    conditions: list[Condition] = field(default_factory=list)
    combine: str = "and"
    sort: str = "newest"
    label_project: int | None = None
    label_op: str = ""
    label_question: int | None = None
    label_options: list[int] = field(default_factory=list)
    # Search (see the module docstring); `search_text` is the `q` parameter.
    search_text: str = ""
    similar_ids: list[int] = field(default_factory=list)
    unlike_ids: list[int] = field(default_factory=list)
    space_id: int | None = None
    top_k: int | None = None
    min_score: float | None = None
    frozen_ids: list[int] | None = None
    errors: list[str] = field(default_factory=list)
    # The ranked result, computed once per filter object (q() is called several times per
    # request: page, count, selection); None until searched or when the search failed.
    _result: Any = field(default=None, init=False, repr=False, compare=False)
    _searched: bool = field(default=False, init=False, repr=False, compare=False)
    search_error: str = field(default="", init=False, compare=False)
    result_space: Any = field(default=None, init=False, repr=False, compare=False)

    # 1. parse ----------------------------------------------------------------------------
    @classmethod
    def from_querydict(cls, params: QueryDict) -> CatalogFilter:
        flt = cls()
        dataset = params.get("dataset", "").strip()
        if dataset:
            flt.dataset_id = parse_id(dataset)
            if flt.dataset_id is None:
                flt.errors.append(f"Dataset '{dataset}' is not a dataset id.")
        flt.key = params.get("key", "").strip()
        flt.key_op = params.get("key_op", "contains")
        if flt.key_op not in KEY_OPERATORS:
            flt.errors.append(f"Unknown global-key operator '{flt.key_op}'.")
            flt.key_op = "contains"
        flt.combine = "or" if params.get("combine") == "or" else "and"
        flt.sort = params.get("sort", "newest")
        if flt.sort not in SORTS:
            flt.errors.append(f"Unknown sort '{flt.sort}'.")
            flt.sort = "newest"
        project = params.get("ap", "").strip()
        if parse_id(project) is not None:
            flt.label_project = parse_id(project)
            flt.label_op = params.get("aop", "labeled")
            if flt.label_op not in LABEL_OPERATORS:
                flt.errors.append(f"Unknown label operator '{flt.label_op}'.")
                flt.label_project = None
            question = params.get("aq", "").strip()
            flt.label_question = parse_id(question)
            flt.label_options = [o for o in (parse_id(v) for v in params.getlist("ao")) if o is not None]
        elif project:
            flt.errors.append(f"Project '{project}' is not a project id.")
        flt._parse_search(params)
        fields, ops, values, values2 = (params.getlist(n) for n in ("f", "op", "v", "v2"))
        for i, name in enumerate(fields):
            name = name.strip()
            op = ops[i] if i < len(ops) else "eq"
            value = (values[i] if i < len(values) else "").strip()
            value2 = (values2[i] if i < len(values2) else "").strip()
            if not name or (not value and not value2):
                continue  # an empty condition row in the form
            cond = Condition(name, op, value, value2)
            if op not in OPERATORS:
                cond.error = f"Unknown operator '{op}' for field '{name}'."
            flt.conditions.append(cond)
        return flt

    def _parse_search(self, params: QueryDict) -> None:
        self.search_text = params.get("q", "").strip()
        self.similar_ids = _ids(params.getlist("similar"), "similar", self.errors)
        if len(self.similar_ids) > MAX_ANCHORS:
            self.errors.append(f"Find similar uses at most {MAX_ANCHORS} anchor rows; the first {MAX_ANCHORS} were kept.")
            self.similar_ids = self.similar_ids[:MAX_ANCHORS]
        self.unlike_ids = _ids(params.getlist("unlike"), "less like these", self.errors)[:MAX_ANCHORS]
        space = params.get("space", "").strip()
        if parse_id(space) is not None:
            self.space_id = parse_id(space)
        elif space:
            self.errors.append(f"Embedding space '{space}' is not a space id.")
        top_k = params.get("top_k", "").strip()
        if top_k:
            if top_k.isdigit() and 1 <= int(top_k) <= MAX_TOP_K:
                self.top_k = int(top_k)
            else:
                self.errors.append(f"Top k '{top_k}' must be a whole number from 1 to {MAX_TOP_K}.")
        min_score = params.get("min_score", "").strip()
        if min_score:
            try:
                self.min_score = float(min_score)
                if not -1 <= self.min_score <= 1:
                    raise ValueError
            except ValueError:
                self.errors.append(f"Minimum score '{min_score}' must be a number from -1 to 1 (cosine similarity).")
                self.min_score = None
        frozen = params.get("ids", None)
        if frozen is not None:
            self.frozen_ids = _ids([frozen], "ids", self.errors)

    @property
    def is_search(self) -> bool:
        """A live search (text or similar rows); a frozen result is not searched again."""
        return self.frozen_ids is None and bool(self.search_text or self.similar_ids)

    @property
    def ranked(self) -> bool:
        """Whether the rows are shown in score order (a search that ran)."""
        return self.is_search and self.search_result() is not None

    @property
    def field_kinds(self) -> dict[str, str]:
        kinds: dict[str, str] = dict(BUILTIN_FIELDS)
        qs = MetadataField.objects.all()
        if self.dataset_id:
            qs = qs.filter(dataset_id=self.dataset_id)
        for name, kind in qs.values_list("name", "kind"):
            kinds.setdefault(name, kind)
        return kinds

    # 2. apply ----------------------------------------------------------------------------
    def q(self) -> Q:
        """The rows this filter matches, as one Q (conditions with errors are left out and
        reported in `errors`).

        With a search, the ranked result as `id__in` of its ids: the search ran inside the
        filter, so those ids are exactly the rows to show, count and select. A search that
        cannot run (weights absent, no vectors ...) matches no rows and its message is reported
        in `errors`; clearing the search brings the filter's rows back."""
        base = self.filter_q()
        if self.frozen_ids is not None:
            return base & Q(id__in=self.frozen_ids)
        if self.is_search:
            result = self.search_result(base)
            # A search that cannot run matches nothing: showing the whole filter under a
            # search box would read as "these are the results".
            return Q(id__in=result.row_ids) if result is not None else Q(pk__in=[])
        return base

    def filter_q(self) -> Q:
        """The filter without the search."""
        kinds = self.field_kinds
        parts: list[Q] = []
        if self.key:
            lookup = "global_key__startswith" if self.key_op == "startswith" else "global_key__icontains"
            parts.append(Q(**{lookup: self.key}))
        for cond in self.conditions:
            if cond.error:
                continue
            if cond.field not in kinds:
                cond.error = f"Unknown metadata field '{cond.field}'."
                continue
            try:
                parts.append(condition_q(cond, kinds.get(cond.field, MetadataField.Kind.STRING)))
            except FilterError as exc:
                cond.error = str(exc)
        self.errors.extend(c.error for c in self.conditions if c.error)
        if self.label_project:
            try:
                parts.append(self._label_q())
            except FilterError as exc:
                self.errors.append(str(exc))
        combined = Q()
        for part in parts:
            combined = (combined | part) if (self.combine == "or" and combined) else (combined & part)
        if self.dataset_id:
            combined = Q(dataset_id=self.dataset_id) & combined
        return combined

    def _label_q(self) -> Q:
        """Rows by their labels in a project (the projects app's indexed id subqueries)."""
        from projects.models import Project, Question
        from projects.querying import rows_answer_in, rows_with_label

        project = Project.objects.filter(pk=self.label_project or 0).first()
        if project is None:
            raise FilterError(f"Project {self.label_project} does not exist.")
        if self.label_op == "labeled":
            return Q(id__in=rows_with_label(project))
        if self.label_op == "unlabeled":
            return ~Q(id__in=rows_with_label(project))
        question = Question.objects.filter(pk=self.label_question or 0, ontology_id=project.ontology_id).first()
        if question is None:
            raise FilterError(f"Choose a question of project “{project.name}” for the label filter.")
        if not self.label_options:
            raise FilterError(f"Choose at least one option of “{question.name}” for the label filter.")
        try:
            matching = Q(id__in=rows_answer_in(project, question, self.label_options))
        except ValueError as exc:
            raise FilterError(str(exc)) from exc
        # "is not one of" keeps rows outside the project too: they are the work still to do
        # when a curator chunks a catalog by hand (filter, select all, classify, repeat).
        return matching if self.label_op == "in" else ~matching

    def queryset(self) -> QuerySet[DataRow]:
        return DataRow.objects.filter(self.q())

    # 2b. search --------------------------------------------------------------------------
    def search_space(self) -> Any:
        """The embedding space to search in: the chosen one, else the configured CLIP
        model's (text), else the space holding most of the anchors' vectors (similar)."""
        from .clip import ClipUnavailable, clip_status
        from .embedding_service import current_clip_space
        from .models import EmbeddingSpace
        from .vector_search import SearchError

        if self.space_id:
            space = EmbeddingSpace.objects.filter(pk=self.space_id).first()
            if space is None:
                raise SearchError(f"Embedding space {self.space_id} does not exist; pick one from the list.")
            return space
        if self.search_text:
            available, message = clip_status()
            if not available:
                raise ClipUnavailable(message)
            space = current_clip_space()
            if space is None:
                raise SearchError(
                    "No image has a vector from the configured CLIP model yet: run `python manage.py embed` "
                    "(or import images, which queues an embedding job), then search again."
                )
            return space
        space = (
            EmbeddingSpace.objects.filter(embeddings__data_row_id__in=self.similar_ids)
            .annotate(anchors=Count("embeddings"))
            .order_by("-anchors", "key")
            .first()
        )
        if space is None:
            raise SearchError(
                f"None of the {len(self.similar_ids)} anchor row(s) has a vector in any embedding space: embed them "
                "(`python manage.py embed`) or import custom vectors (`python manage.py import_embeddings`)."
            )
        return space

    def search_result(self, base: Q | None = None) -> Any:
        """The ranked result (vector_search.SearchResult) inside the filter, or None when the
        search cannot run (its message is in `search_error` and `errors`). Computed once."""
        if self._searched:
            return self._result
        self._searched = True
        from .clip import ClipUnavailable
        from .vector_search import NEGATIVE_WEIGHT, SearchError, _normalize, search, similar_query_vector, text_query_vector

        if base is None:
            base = self.filter_q()
        try:
            if self.search_text and self.similar_ids:
                raise SearchError("Search by text or find similar rows, not both: clear one of them.")
            space = self.search_space()
            missing: list[int] = []
            if self.search_text:
                query = text_query_vector(space, self.search_text)
                if self.unlike_ids:
                    negative, missing = similar_query_vector(space, anchor_ids=self.unlike_ids)
                    query = _normalize(_normalize(query) - NEGATIVE_WEIGHT * negative)
            else:
                query, missing = similar_query_vector(space, anchor_ids=self.similar_ids, negative_ids=self.unlike_ids)
            options: dict[str, Any] = {"rows": DataRow.objects.filter(base) if base else None}
            if self.min_score is not None:
                options |= {"threshold": self.min_score, "max_results": self.top_k or MAX_TOP_K}
            else:
                options["k"] = self.top_k or DEFAULT_TOP_K
            # Rows the curator said are unlike what they want never come back as results.
            result = search(space, query, exclude_ids=self.unlike_ids, **options)
        except (ClipUnavailable, SearchError) as exc:
            self.search_error = str(exc)
            self.errors.append(self.search_error)
            return None
        if missing:
            shown = ", ".join(str(i) for i in missing[:10])
            self.errors.append(f"Row(s) {shown} have no vector in {space.key} and were left out of the search.")
        self.result_space = space
        self._result = result
        return result

    @property
    def scores(self) -> dict[int, float]:
        result = self.search_result() if self.is_search else None
        return dict(zip(result.row_ids, result.scores, strict=True)) if result is not None else {}

    def frozen(self) -> CatalogFilter:
        """This filter with a live search replaced by its result (Select all stores this), so
        re-resolving it later gives exactly the rows ranked now."""
        result = self.search_result() if self.is_search else None
        if result is None:
            return self
        flt = CatalogFilter.from_querydict(QueryDict(self.to_querystring()))
        flt.frozen_ids = sorted(result.row_ids)
        return flt

    # Keyset paging over a ranked list: the cursor is a rank position in the in-memory result.
    def rank_cursor(self, position: int) -> str:
        return base64.urlsafe_b64encode(json.dumps(["rank", position]).encode()).decode().rstrip("=")

    def rank_position(self, cursor: str) -> int:
        payload = _decode_cursor(cursor)
        if not (isinstance(payload, list) and len(payload) == 2 and payload[0] == "rank" and isinstance(payload[1], int)):
            raise FilterError(f"Page cursor '{cursor}' is not valid for a ranked search.")
        return max(0, payload[1])

    @property
    def ordering(self) -> list[str]:
        return ["global_key", "id"] if self.sort == "key" else ["-id"]

    # 3. keyset pagination ----------------------------------------------------------------
    def cursor_for(self, row: DataRow) -> str:
        payload = [row.global_key, row.pk] if self.sort == "key" else [row.pk]
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    def after_q(self, cursor: str) -> Q:
        """Rows strictly after `cursor` in this filter's order (keyset: no OFFSET)."""
        payload = _decode_cursor(cursor)
        if self.sort == "key":
            if not (isinstance(payload, list) and len(payload) == 2):
                raise FilterError(f"Page cursor '{cursor}' is not valid.")
            key, pk = str(payload[0]), _cursor_id(payload[1], cursor)
            # The redundant `global_key >= key` gives the planner an index range on
            # (global_key, id); the OR alone made PostgreSQL scan (0.5 s at 1M rows).
            return Q(global_key__gte=key) & (Q(global_key__gt=key) | Q(global_key=key, id__gt=pk))
        if not (isinstance(payload, list) and len(payload) == 1):
            raise FilterError(f"Page cursor '{cursor}' is not valid.")
        return Q(id__lt=_cursor_id(payload[0], cursor))

    def between_q(self, first: DataRow, second: DataRow) -> Q:
        """Rows from `first` to `second` inclusive in this filter's order (shift-click)."""
        if self.ranked:
            ids = self.search_result().row_ids
            if first.pk not in ids or second.pk not in ids:
                return Q(id=second.pk)
            lo, hi = sorted([ids.index(first.pk), ids.index(second.pk)])
            return Q(id__in=ids[lo : hi + 1])
        if self.sort == "key":
            lo, hi = sorted([(first.global_key, first.pk), (second.global_key, second.pk)])
            after_lo = Q(global_key__gte=lo[0]) & (Q(global_key__gt=lo[0]) | Q(global_key=lo[0], id__gte=lo[1]))
            before_hi = Q(global_key__lte=hi[0]) & (Q(global_key__lt=hi[0]) | Q(global_key=hi[0], id__lte=hi[1]))
            return after_lo & before_hi
        lo_id, hi_id = sorted([first.pk, second.pk])
        return Q(id__gte=lo_id, id__lte=hi_id)

    # 4. serialize ------------------------------------------------------------------------
    def to_querystring(self) -> str:
        qd = QueryDict(mutable=True)
        if self.dataset_id:
            qd["dataset"] = str(self.dataset_id)
        if self.key:
            qd["key"] = self.key
            qd["key_op"] = self.key_op
        for cond in self.conditions:
            qd.appendlist("f", cond.field)
            qd.appendlist("op", cond.op)
            qd.appendlist("v", cond.value)
            qd.appendlist("v2", cond.value2)
        if self.label_project:
            qd["ap"] = str(self.label_project)
            qd["aop"] = self.label_op
            if self.label_question:
                qd["aq"] = str(self.label_question)
            for option in self.label_options:
                qd.appendlist("ao", str(option))
        if self.combine != "and":
            qd["combine"] = self.combine
        if self.sort != "newest":
            qd["sort"] = self.sort
        if self.search_text:
            qd["q"] = self.search_text
        for row_id in self.similar_ids:
            qd.appendlist("similar", str(row_id))
        for row_id in self.unlike_ids:
            qd.appendlist("unlike", str(row_id))
        if self.space_id:
            qd["space"] = str(self.space_id)
        if self.top_k:
            qd["top_k"] = str(self.top_k)
        if self.min_score is not None:
            qd["min_score"] = f"{self.min_score:g}"
        if self.frozen_ids is not None:
            qd["ids"] = ",".join(str(i) for i in self.frozen_ids)
        return qd.urlencode()

    def describe(self) -> str:
        """A short human sentence of the filter, for the selection bar and job history."""
        parts = []
        if self.key:
            parts.append(f"global key {KEY_OPERATORS[self.key_op]} “{self.key}”")
        for c in self.conditions:
            if c.op == "range":
                parts.append(f"{c.field} between {c.value or '…'} and {c.value2 or '…'}")
            else:
                parts.append(f"{c.field} {OPERATORS.get(c.op, c.op)} “{c.value}”")
        if self.label_project:
            parts.append(self._describe_label())
        text = f" {self.combine.upper()} ".join(parts) if parts else "all rows"
        if self.dataset_id:
            name = Dataset.objects.filter(pk=self.dataset_id).values_list("name", flat=True).first()
            text = f"{text} in dataset {name or self.dataset_id}"
        search = self._describe_search()
        return f"{search} among {text}" if search else text

    def _describe_search(self) -> str:
        if not (self.search_text or self.similar_ids):
            return ""
        from .models import EmbeddingSpace

        what = f"text “{self.search_text}”" if self.search_text else f"similar to {_rows(len(self.similar_ids))}"
        if self.unlike_ids:
            what += f", less like {_rows(len(self.unlike_ids))}"
        if self.space_id:
            key = EmbeddingSpace.objects.filter(pk=self.space_id).values_list("key", flat=True).first()
            what += f" in {key or self.space_id}"
        if self.min_score is not None:
            what += f", score ≥ {self.min_score:g}"
        else:
            what += f", top {self.top_k or DEFAULT_TOP_K}"
        if self.frozen_ids is not None:
            what += f" ({_rows(len(self.frozen_ids))} frozen at Select all)"
        return "Search " + what

    def _describe_label(self) -> str:
        from projects.models import Option, Project, Question

        project = Project.objects.filter(pk=self.label_project or 0).values_list("name", flat=True).first() or self.label_project
        if self.label_op in ("labeled", "unlabeled"):
            return f"{LABEL_OPERATORS[self.label_op]} in {project}"
        question = Question.objects.filter(pk=self.label_question or 0).values_list("name", flat=True).first() or "?"
        options = ", ".join(Option.objects.filter(pk__in=self.label_options).values_list("label", flat=True))
        verb = "is one of" if self.label_op == "in" else "is not one of"
        return f"in {project}, {question} {verb} {options}"

    @property
    def is_empty(self) -> bool:
        return not (
            self.dataset_id
            or self.key
            or self.conditions
            or self.label_project
            or self.search_text
            or self.similar_ids
            or self.frozen_ids is not None
        )


def _rows(n: int) -> str:
    return f"{n} row{'s' if n != 1 else ''}"


def _ids(values: list[str], name: str, errors: list[str]) -> list[int]:
    """Row ids from repeated and/or comma- or space-separated values, in order, no repeats."""
    ids: list[int] = []
    seen: set[int] = set()
    for value in values:
        for token in value.replace(",", " ").split():
            row_id = parse_id(token)
            if row_id is not None:
                if row_id not in seen:
                    seen.add(row_id)
                    ids.append(row_id)
            else:
                errors.append(f"'{token}' in {name} is not a row id.")
    return ids


def _decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise FilterError(f"Page cursor '{cursor}' is not valid.") from exc


def _cursor_id(value: object, cursor: str) -> int:
    row_id = parse_id(str(value)) if isinstance(value, int | str) else None
    if row_id is None:
        raise FilterError(f"Page cursor '{cursor}' is not valid.")
    return row_id


def parse_number(value: str, field_name: str) -> float:
    """A finite number: stored metadata never holds NaN or infinity (the importer refuses
    them), and JSON, the database's comparison, has no spelling for them."""
    try:
        number = float(value)
    except ValueError as exc:
        raise FilterError(f"Field '{field_name}' is a number; '{value}' is not.") from exc
    if not math.isfinite(number):
        raise FilterError(f"Field '{field_name}' is a number; '{value}' is not a finite number.")
    return number


def normalize_datetime(value: str, field_name: str = "") -> str:
    """ISO text → the canonical UTC form stored in metadata ("2024-05-01T10:00:00Z"), so
    that string comparison in the database orders datetimes correctly."""
    parsed: datetime | None = None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            if day is not None:
                parsed = datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())
    except ValueError:  # well-formed but impossible, e.g. 2020-13-45 or 0000-00-00
        parsed = None
    if parsed is None:
        raise FilterError(f"Field '{field_name}' is a date/time; '{value}' is not (use e.g. 2024-05-01 or 2024-05-01T10:00).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _typed(value: str, kind: str, field_name: str) -> Any:
    if kind == MetadataField.Kind.NUMBER:
        return parse_number(value, field_name)
    if kind == MetadataField.Kind.DATETIME:
        return normalize_datetime(value, field_name)
    return value


def condition_q(cond: Condition, kind: str) -> Q:
    key = f"metadata__{cond.field}"
    if cond.op == "contains":
        return Q(**{f"{key}__icontains": cond.value})
    if cond.op == "in":
        values = [v.strip() for v in cond.value.split(",") if v.strip()]
        if not values:
            raise FilterError(f"Give at least one value for '{cond.field}' is any of.")
        return Q(**{f"{key}__in": [_typed(v, kind, cond.field) for v in values]})
    if cond.op == "range":
        if kind not in (MetadataField.Kind.NUMBER, MetadataField.Kind.DATETIME):
            raise FilterError(f"Field '{cond.field}' is a {kind}; a range needs a number or date/time field.")
        q = Q()
        if cond.value:
            q &= Q(**{f"{key}__gte": _typed(cond.value, kind, cond.field)})
        if cond.value2:
            q &= Q(**{f"{key}__lte": _typed(cond.value2, kind, cond.field)})
        return q
    return Q(**{key: _typed(cond.value, kind, cond.field)})
