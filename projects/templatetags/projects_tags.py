from __future__ import annotations

from django import template

from catalog.models import DataRow

from ..models import Answer, Project
from ..views import row_answer_groups

register = template.Library()


@register.simple_tag
def row_answers(row: DataRow) -> list[tuple[Project, list[Answer]]]:
    """The data-row page's labels and pre-labels in every project (the catalog's template
    includes projects/_row_labels.html with only `row` in its context)."""
    return row_answer_groups(row)


@register.filter
def answer_value(answer: Answer) -> str:
    """An answer as a curator reads it: the text, or the chosen options' labels."""
    if answer.question.kind == "text":
        return answer.text
    return ", ".join(c.option.label for c in sorted(answer.chosen.all(), key=lambda c: (c.option.position, c.option_id)))
