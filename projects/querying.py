"""Querysets of data-row ids for the catalog's annotation filter.

Each returns ids usable as `DataRow.objects.filter(id__in=...)` (a subquery, never a list in
Python), and each is served by an index named in projects.models:

- rows_answer_in       AnswerOption "answeroption_filter" (project, kind, option, data_row)
- rows_answer_not_in   the same index, anti-joined against ProjectDataRow's unique (project, data_row)
- rows_with_label      Answer "answer_one_per_question_kind" (project, kind, data_row, question)
- rows_without_label   the same index, anti-joined against ProjectDataRow
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Answer, AnswerOption, Option, Project, ProjectDataRow, Question


def _option_ids(question: Question, options: Iterable[Option | int]) -> list[int]:
    ids = [o if isinstance(o, int) else o.pk for o in options]
    foreign = set(ids) - set(Option.objects.filter(question=question, pk__in=ids).values_list("pk", flat=True))
    if foreign:
        raise ValueError(f'Options {sorted(foreign)} are not options of question "{question.name}".')
    return ids


def rows_answer_in(
    project: Project, question: Question, options: Iterable[Option | int], *, kind: str = Answer.Kind.LABEL
) -> QuerySet[AnswerOption, int]:
    """Rows of the project whose answer (of `kind`) to the question is one of the options
    (for a checklist: at least one of them is chosen)."""
    ids = _option_ids(question, options)
    # option implies question, so the index's (project, kind, option) prefix is enough.
    return (
        AnswerOption.objects.filter(project=project, kind=kind, option_id__in=ids)
        .values_list("data_row_id", flat=True)
        .distinct()
    )


def rows_answer_not_in(
    project: Project, question: Question, options: Iterable[Option | int], *, kind: str = Answer.Kind.LABEL
) -> QuerySet[ProjectDataRow, int]:
    """Rows of the project whose answer to the question is not one of the options. Rows with
    no answer to the question count as "not one of" (the catalog shows them too)."""
    ids = _option_ids(question, options)
    matching = AnswerOption.objects.filter(project=project, kind=kind, option_id__in=ids).values("data_row_id")
    return ProjectDataRow.objects.filter(project=project).exclude(data_row_id__in=matching).values_list("data_row_id", flat=True)


def rows_with_label(project: Project, *, kind: str = Answer.Kind.LABEL) -> QuerySet[Answer, int]:
    """Rows that have at least one answer of `kind` in the project."""
    return Answer.objects.filter(project=project, kind=kind).values_list("data_row_id", flat=True).distinct()


def rows_without_label(project: Project, *, kind: str = Answer.Kind.LABEL) -> QuerySet[ProjectDataRow, int]:
    """Rows in the project with no answer of `kind` at all."""
    labelled = Answer.objects.filter(project=project, kind=kind).values("data_row_id")
    return ProjectDataRow.objects.filter(project=project).exclude(data_row_id__in=labelled).values_list("data_row_id", flat=True)
