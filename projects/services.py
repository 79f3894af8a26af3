"""Project services: every state change of the projects app goes through here.

Views, the admin, management commands and the bulk-classification engine call these, so
the rules (ontology validation, one answer per question and kind, nested answers only under
a chosen option) live in one place.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from catalog.models import DataRow

from .models import Answer, AnswerOption, Batch, Ontology, Option, Project, ProjectDataRow, Question

KINDS = {k.value for k in Question.Kind}
# Deeper than any real ontology; stops a hostile JSON file from exhausting the stack.
MAX_DEPTH = 20


class OntologyError(ValueError):
    """An ontology (in the database or as JSON) breaks a rule. `errors` names each problem."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class AnswerError(ValueError):
    """An answer does not fit its question (unknown option, wrong shape, orphan sub-answer)."""


def _user_or_none(user: AbstractBaseUser | AnonymousUser | None) -> User | None:
    """The user to record as creator or setter (None for anonymous callers such as tasks)."""
    return cast(User, user) if user is not None and user.is_authenticated else None


# --- Ontology tree ------------------------------------------------------------------------


@dataclass
class _Node:
    """An in-memory question with its options and their sub-questions (two queries for a
    whole ontology, whatever its depth)."""

    question: Question
    options: list[tuple[Option, list[_Node]]] = field(default_factory=list)


def ontology_tree(ontology: Ontology) -> list[_Node]:
    """The ontology's global questions, each with options and nested sub-questions, in order."""
    questions = list(ontology.questions.order_by("position", "id"))
    options = list(Option.objects.filter(question__ontology=ontology).order_by("position", "id"))
    nodes = {q.pk: _Node(q) for q in questions}
    subs: dict[int, list[_Node]] = defaultdict(list)
    for q in questions:
        if q.parent_option_id is not None:
            subs[q.parent_option_id].append(nodes[q.pk])
    for opt in options:
        nodes[opt.question_id].options.append((opt, subs[opt.pk]))
    return [nodes[q.pk] for q in questions if q.parent_option_id is None]


def validate_ontology(ontology: Ontology) -> list[str]:
    """Every rule an ontology in the database must meet; an empty list means valid.

    1. radio and checklist questions have at least one option, text questions none;
    2. option values are unique within their question;
    3. question names are unique among siblings (same parent option, or both global);
    4. a sub-question's parent option belongs to the same ontology;
    5. no cycles: following parent options upwards always reaches a global question.
    """
    errors: list[str] = []
    questions = {q.pk: q for q in ontology.questions.all()}
    options = {o.pk: o for o in Option.objects.filter(question__ontology=ontology)}
    by_question: dict[int, list[Option]] = defaultdict(list)
    for opt in options.values():
        by_question[opt.question_id].append(opt)
    siblings: dict[int | None, list[Question]] = defaultdict(list)
    for q in questions.values():
        opts = by_question[q.pk]
        if q.has_options and not opts:
            errors.append(f'Question "{q.name}": a {q.kind} question needs at least one option.')
        if q.kind == Question.Kind.TEXT and opts:
            errors.append(f'Question "{q.name}": a text question has no options (found {len(opts)}).')
        values = [o.value for o in opts]
        for value in sorted({v for v in values if values.count(v) > 1}):
            errors.append(f'Question "{q.name}": option value "{value}" is used more than once.')
        if q.parent_option_id is not None and q.parent_option_id not in options:
            errors.append(f'Question "{q.name}": its parent option belongs to another ontology.')
        siblings[q.parent_option_id].append(q)
    for group in siblings.values():
        names = [q.name for q in group]
        for name in sorted({n for n in names if names.count(n) > 1}):
            errors.append(f'Question name "{name}" is used by more than one question at the same level.')
    for q in questions.values():
        seen = {q.pk}
        current = q
        while current.parent_option_id is not None and current.parent_option_id in options:
            parent = questions.get(options[current.parent_option_id].question_id)
            if parent is None:
                break
            if parent.pk in seen:
                errors.append(f'Question "{q.name}": nesting forms a cycle (a question sits under its own option).')
                break
            seen.add(parent.pk)
            current = parent
    return errors


def validate_ontology_json(data: Any) -> list[str]:
    """Problems with a Labelbox-shaped ontology document, each naming where it is."""
    errors: list[str] = []
    if not isinstance(data, dict):
        return ['The ontology JSON must be an object with a "classifications" list.']
    tools = data.get("tools", [])
    if not isinstance(tools, list):
        errors.append('"tools" must be a list.')
    elif tools:
        errors.append(f'"tools": Curio supports classifications only; remove the {len(tools)} tool(s).')
    classifications = data.get("classifications")
    if not isinstance(classifications, list):
        errors.append('"classifications" must be a list.')
        return errors
    _validate_json_questions(classifications, "classifications", errors, depth=0)
    return errors


def _validate_json_questions(items: list[Any], path: str, errors: list[str], *, depth: int) -> None:
    if depth > MAX_DEPTH:
        errors.append(f"{path}: nested deeper than {MAX_DEPTH} levels.")
        return
    names: list[str] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object.")
            continue
        name = item.get("name") or item.get("instructions")
        where_named = f'{where} "{name}"' if isinstance(name, str) else where
        if not isinstance(name, str) or not name.strip():
            errors.append(f'{where}: "name" is missing or empty.')
        elif name in names:
            errors.append(f"{where_named}: the name repeats a sibling question's name.")
        else:
            names.append(name)
        kind = item.get("type")
        if kind not in KINDS:
            errors.append(f'{where_named}: "type" must be one of radio, checklist, text (got {kind!r}).')
        if depth == 0 and item.get("scope", "global") != "global":
            errors.append(f'{where_named}: only "scope": "global" classifications are supported (got {item.get("scope")!r}).')
        if not isinstance(item.get("required", False), bool):
            errors.append(f'{where_named}: "required" must be true or false.')
        if not isinstance(item.get("instructions", ""), str):
            errors.append(f'{where_named}: "instructions" must be text.')
        options = item.get("options", [])
        if not isinstance(options, list):
            errors.append(f'{where_named}: "options" must be a list.')
            continue
        if kind in ("radio", "checklist") and not options:
            errors.append(f"{where_named}: a {kind} question needs at least one option.")
        if kind == "text" and options:
            errors.append(f"{where_named}: a text question has no options (found {len(options)}).")
        values: list[str] = []
        for j, opt in enumerate(options):
            opt_where = f"{where}.options[{j}]"
            if not isinstance(opt, dict):
                errors.append(f"{opt_where}: must be an object.")
                continue
            value = opt.get("value")
            if not isinstance(value, str) or not value.strip():
                errors.append(f'{opt_where}: "value" is missing or empty.')
            elif value in values:
                errors.append(f'{opt_where}: value "{value}" repeats another option of the same question.')
            else:
                values.append(value)
            label = opt.get("label", value)
            if not isinstance(label, str) or not label.strip():
                errors.append(f'{opt_where}: "label" must be non-empty text.')
            nested = opt.get("options", [])
            if not isinstance(nested, list):
                errors.append(f'{opt_where}: "options" (its sub-questions) must be a list.')
            else:
                _validate_json_questions(nested, f"{opt_where}.options", errors, depth=depth + 1)


@transaction.atomic
def import_ontology_json(data: Any, *, name: str) -> Ontology:
    """Create an ontology from Labelbox-shaped JSON. All or nothing: any problem raises
    OntologyError listing every problem found, and nothing is created."""
    errors = validate_ontology_json(data)
    name = (name or "").strip()
    if not name:
        errors.insert(0, "Ontology name: must not be empty.")
    elif Ontology.objects.filter(name=name).exists():
        errors.insert(0, f'Ontology name: an ontology named "{name}" already exists.')
    if errors:
        raise OntologyError(errors)
    ontology = Ontology.objects.create(name=name)
    _create_questions(ontology, data["classifications"], parent_option=None)
    return ontology


def _create_questions(ontology: Ontology, items: list[dict[str, Any]], *, parent_option: Option | None) -> None:
    for position, item in enumerate(items):
        question = Question.objects.create(
            ontology=ontology,
            parent_option=parent_option,
            kind=item["type"],
            name=item.get("name") or item["instructions"],
            instructions=item.get("instructions", ""),
            required=item.get("required", False),
            position=position,
        )
        for opt_position, opt in enumerate(item.get("options", [])):
            option = Option.objects.create(
                question=question, label=opt.get("label", opt["value"]), value=opt["value"], position=opt_position
            )
            _create_questions(ontology, opt.get("options", []), parent_option=option)


def export_ontology_json(ontology: Ontology) -> dict[str, Any]:
    """The ontology in Labelbox's shape (no ids, so export → import → export is identical)."""
    return {"tools": [], "classifications": [_node_json(node, top=True) for node in ontology_tree(ontology)]}


def _node_json(node: _Node, *, top: bool = False) -> dict[str, Any]:
    q = node.question
    out: dict[str, Any] = {"type": q.kind, "name": q.name, "instructions": q.instructions, "required": q.required}
    if top:
        out["scope"] = "global"
    out["options"] = [
        {"label": opt.label, "value": opt.value, "options": [_node_json(sub) for sub in subs]} for opt, subs in node.options
    ]
    return out


def dump_ontology_json(document: dict[str, Any]) -> str:
    """The one text form of an exported ontology: stable key order and indentation, so two
    exports of the same ontology are byte-identical."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- Projects, batches and rows --------------------------------------------------------------


def create_project(
    user: AbstractBaseUser | AnonymousUser | None,
    *,
    name: str,
    ontology: Ontology,
    description: str = "",
    consensus: bool = False,
) -> Project:
    return Project.objects.create(
        name=name.strip(), ontology=ontology, description=description, consensus=consensus, created_by=_user_or_none(user)
    )


def add_rows_to_project(
    user: AbstractBaseUser | AnonymousUser | None,
    project: Project,
    rows: Iterable[DataRow | int],
    *,
    batch_name: str,
    priority: int = 5,
    step: str = ProjectDataRow.Step.INITIAL_LABELING,
    benchmark: bool = False,
) -> Batch:
    """Put rows in a batch of the project (creating the batch if new) at a workflow step.
    Rows already in the project move to this batch and step."""
    if not 1 <= priority <= 5:
        raise ValueError(f"Batch priority: must be 1 (highest) to 5 (lowest), got {priority}.")
    if step not in ProjectDataRow.Step.values:
        raise ValueError(f"Workflow step: unknown step {step!r}.")
    row_ids = [r if isinstance(r, int) else r.pk for r in rows]
    with transaction.atomic():
        batch, _ = Batch.objects.get_or_create(
            project=project, name=batch_name, defaults={"priority": priority, "created_by": _user_or_none(user)}
        )
        ProjectDataRow.objects.bulk_create(
            [ProjectDataRow(project=project, data_row_id=i, batch=batch, step=step, benchmark=benchmark) for i in row_ids],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["project", "data_row"],
            update_fields=["batch", "step", "benchmark"],
        )
    return batch


# --- Answers ---------------------------------------------------------------------------------


def set_answers(
    user: AbstractBaseUser | AnonymousUser | None,
    project: Project,
    data_row: DataRow,
    answers: Mapping[Question, str | Sequence[str] | None],
    *,
    kind: str = Answer.Kind.LABEL,
) -> list[Answer]:
    """Store one data row's answers in a project as labels or pre-labels.

    1. Each answer is checked against its question: radio takes one option value, checklist a
       list of option values, text a string; the question must be in the project's ontology.
    2. A sub-question may be answered only when its parent option is chosen (in this call or
       already stored for the same kind).
    3. Each answered question's previous answer of this kind is replaced (upsert on the
       unique constraint); None or an empty value removes it. Sub-answers under options no
       longer chosen are removed with it, so no orphan answers remain.
    """
    if kind not in Answer.Kind.values:
        raise AnswerError(f"Answer kind: must be label or prelabel, got {kind!r}.")
    if not ProjectDataRow.objects.filter(project=project, data_row=data_row).exists():
        raise AnswerError(f'Data row "{data_row.global_key}" is not in project "{project.name}".')
    chosen: dict[Question, list[Option]] = {}
    texts: dict[Question, str] = {}
    cleared: list[Question] = []
    for question, value in answers.items():
        if question.ontology_id != project.ontology_id:
            raise AnswerError(f'Question "{question.name}" is not in the ontology of project "{project.name}".')
        if value is None or value == "" or value == []:
            cleared.append(question)
        elif question.kind == Question.Kind.TEXT:
            if not isinstance(value, str):
                raise AnswerError(f'Question "{question.name}": a text answer must be a string.')
            texts[question] = value
        else:
            values = [value] if isinstance(value, str) else list(value)
            if question.kind == Question.Kind.RADIO and len(values) != 1:
                raise AnswerError(f'Question "{question.name}": a radio answer takes exactly one option, got {len(values)}.')
            by_value = {o.value: o for o in question.options.all()}
            unknown = [v for v in values if v not in by_value]
            if unknown:
                raise AnswerError(f'Question "{question.name}": unknown option value(s) {", ".join(map(repr, unknown))}.')
            chosen[question] = [by_value[v] for v in dict.fromkeys(values)]

    with transaction.atomic():
        stored_option_ids = set(
            AnswerOption.objects.filter(project=project, data_row=data_row, kind=kind)
            .exclude(question__in=list(chosen) + cleared)
            .values_list("option_id", flat=True)
        )
        now_chosen = stored_option_ids | {o.pk for opts in chosen.values() for o in opts}
        for question in [*chosen, *texts]:
            if question.parent_option_id is not None and question.parent_option_id not in now_chosen:
                raise AnswerError(f'Question "{question.name}" is a sub-question of an option that is not chosen.')
        stored: list[Answer] = []
        now = timezone.now()
        setter = _user_or_none(user)
        for question in [*chosen, *texts]:
            answer, _ = Answer.objects.update_or_create(
                project=project,
                data_row=data_row,
                question=question,
                kind=kind,
                defaults={"text": texts.get(question, ""), "set_by": setter, "set_at": now},
            )
            if question in chosen:
                AnswerOption.objects.filter(answer=answer).exclude(option__in=chosen[question]).delete()
                AnswerOption.objects.bulk_create(
                    [
                        AnswerOption(answer=answer, option=o, project=project, data_row=data_row, question=question, kind=kind)
                        for o in chosen[question]
                    ],
                    ignore_conflicts=True,
                )
            stored.append(answer)
        Answer.objects.filter(project=project, data_row=data_row, kind=kind, question__in=cleared).delete()
        remove_orphan_answers(project, data_row, kind=kind)
    return stored


def remove_orphan_answers(project: Project, data_row: DataRow | int, *, kind: str) -> int:
    """Delete sub-answers whose parent option is no longer chosen (repeated until none are
    left, so a whole branch goes at once). Returns how many answers were removed."""
    row_id = data_row if isinstance(data_row, int) else data_row.pk
    removed = 0
    while True:
        chosen = AnswerOption.objects.filter(project=project, data_row_id=row_id, kind=kind).values("option_id")
        orphans = Answer.objects.filter(
            project=project, data_row_id=row_id, kind=kind, question__parent_option__isnull=False
        ).exclude(question__parent_option__in=chosen)
        count, _ = orphans.delete()
        if not count:
            return removed
        removed += count


# --- Streamed label exports -------------------------------------------------------------------

EXPORT_CHUNK_ROWS = 500


@dataclass
class _Ontology:
    """Lookup tables of an ontology for the exporters (a few hundred entries at most)."""

    questions: dict[int, Question]
    options: dict[int, Option]
    subs_of_option: dict[int, list[int]]

    @classmethod
    def load(cls, ontology: Ontology) -> _Ontology:
        questions = {q.pk: q for q in ontology.questions.order_by("position", "id")}
        options = {o.pk: o for o in Option.objects.filter(question__ontology=ontology).order_by("position", "id")}
        subs: dict[int, list[int]] = defaultdict(list)
        for q in questions.values():
            if q.parent_option_id is not None:
                subs[q.parent_option_id].append(q.pk)
        return cls(questions, options, subs)

    def path(self, question_id: int) -> str:
        """ "Subject > Animal > Species": where a question sits, for the CSV export."""
        parts: list[str] = []
        q: Question | None = self.questions[question_id]
        while q is not None:
            parts.append(q.name)
            opt = self.options.get(q.parent_option_id) if q.parent_option_id else None
            if opt is None:
                break
            parts.append(opt.value)
            q = self.questions.get(opt.question_id)
        return " > ".join(reversed(parts))


@dataclass
class _RowAnswer:
    question_id: int
    text: str
    option_ids: list[int]
    set_by: str
    set_at: Any


def _iter_row_chunks(
    project: Project, kind: str, chunk_rows: int
) -> Iterator[tuple[dict[int, str], dict[int, dict[int, _RowAnswer]]]]:
    """Walk the project's answers of one kind by data row id (keyset, never OFFSET), a chunk of
    rows at a time, so memory stays flat however many answers there are."""
    last = 0
    while True:
        row_ids = list(
            Answer.objects.filter(project=project, kind=kind, data_row_id__gt=last)
            .order_by("data_row_id")
            .values_list("data_row_id", flat=True)
            .distinct()[:chunk_rows]
        )
        if not row_ids:
            return
        last = row_ids[-1]
        keys = dict(DataRow.objects.filter(id__in=row_ids).values_list("id", "global_key"))
        by_row: dict[int, dict[int, _RowAnswer]] = defaultdict(dict)
        answers = Answer.objects.filter(project=project, kind=kind, data_row_id__in=row_ids).values_list(
            "id", "data_row_id", "question_id", "text", "set_by__username", "set_at"
        )
        by_id: dict[int, _RowAnswer] = {}
        for answer_id, row_id, question_id, text, username, set_at in answers:
            ra = _RowAnswer(question_id, text, [], username or "", set_at)
            by_row[row_id][question_id] = ra
            by_id[answer_id] = ra
        chosen = AnswerOption.objects.filter(answer_id__in=list(by_id)).values_list("answer_id", "option_id")
        for answer_id, option_id in chosen:
            by_id[answer_id].option_ids.append(option_id)
        yield keys, by_row


def _answer_value(onto: _Ontology, row: dict[int, _RowAnswer], ra: _RowAnswer) -> Any:
    """Labelbox's answer for one question: {"name"} for radio, [{"name"}, ...] for checklist,
    a string for text; answered sub-questions of a chosen option go in its "classifications"."""
    question = onto.questions[ra.question_id]
    if question.kind == Question.Kind.TEXT:
        return ra.text
    items = []
    for option_id in sorted(ra.option_ids, key=lambda i: (onto.options[i].position, i)):
        item: dict[str, Any] = {"name": onto.options[option_id].value}
        nested = [
            {"name": onto.questions[q_id].name, "answer": _answer_value(onto, row, row[q_id])}
            for q_id in onto.subs_of_option.get(option_id, [])
            if q_id in row
        ]
        if nested:
            item["classifications"] = nested
        items.append(item)
    if question.kind == Question.Kind.RADIO:
        return items[0] if items else None
    return items


def iter_label_ndjson(project: Project, *, kind: str = Answer.Kind.LABEL, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[str]:
    """The project's answers in Labelbox's annotation-import NDJSON, one line per answer to a
    global question, nested answers inside their parent option's "classifications"."""
    onto = _Ontology.load(project.ontology)
    for keys, by_row in _iter_row_chunks(project, kind, chunk_rows):
        for row_id in sorted(by_row):
            row = by_row[row_id]
            for question_id, ra in sorted(row.items(), key=lambda item: (onto.questions[item[0]].position, item[0])):
                if onto.questions[question_id].parent_option_id is not None:
                    continue
                value = _answer_value(onto, row, ra)
                if value is None:
                    continue
                line = {"name": onto.questions[question_id].name, "answer": value, "dataRow": {"globalKey": keys[row_id]}}
                yield json.dumps(line, ensure_ascii=False) + "\n"


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


CSV_HEADER = ["global_key", "question", "kind", "answer", "set_by", "set_at"]
# A cell a spreadsheet would read as a formula ("=HYPERLINK(...)", "@SUM(...)", ...): file
# names, ontology names and free-text answers come from users.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Text for a CSV cell, with a leading apostrophe where a spreadsheet would see a formula
    (OWASP's advice for CSV injection); the apostrophe shows, the formula does not run."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def iter_label_csv(project: Project, *, kind: str = Answer.Kind.LABEL, chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[str]:
    """The project's answers as CSV, one line per answer (sub-questions included, with the path
    of parent questions and options); checklist options are joined with "; "."""
    onto = _Ontology.load(project.ontology)
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for keys, by_row in _iter_row_chunks(project, kind, chunk_rows):
        for row_id in sorted(by_row):
            for question_id, ra in sorted(by_row[row_id].items(), key=lambda item: (onto.questions[item[0]].position, item[0])):
                question = onto.questions[question_id]
                if question.kind == Question.Kind.TEXT:
                    answer = ra.text
                else:
                    answer = "; ".join(
                        onto.options[i].value for i in sorted(ra.option_ids, key=lambda i: onto.options[i].position)
                    )
                yield writer.writerow(
                    [
                        _cell(keys[row_id]),
                        _cell(onto.path(question_id)),
                        kind,
                        _cell(answer),
                        _cell(ra.set_by),
                        ra.set_at.isoformat() if ra.set_at else "",
                    ]
                )
