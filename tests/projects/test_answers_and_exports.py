"""Answers (labels and pre-labels), the catalog filter's querysets and the streamed exports."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from catalog.models import DataRow
from projects.models import Answer, AnswerOption, Project, Question
from projects.querying import rows_answer_in, rows_answer_not_in, rows_with_label, rows_without_label
from projects.services import AnswerError, add_rows_to_project, iter_label_csv, iter_label_ndjson, set_answers


@pytest.fixture
def labelled(demo_project: Project, make_rows: Any, curator: Any) -> dict[str, Any]:
    rows = make_rows("photos", ["things/chelsea.png", "people/astronaut.png", "things/coffee.png", "things/horse.png"])
    add_rows_to_project(curator, demo_project, rows, batch_name="first", priority=2, step="initial_review")
    q = {question.name: question for question in demo_project.ontology.questions.all()}
    cat, astronaut, coffee, _horse = rows
    set_answers(curator, demo_project, cat, {q["Subject"]: "animal", q["Species"]: "cat", q["Qualities"]: ["sharp", "bright"]})
    set_answers(curator, demo_project, astronaut, {q["Subject"]: "person", q["Notes"]: 'Says "hi", twice'})
    set_answers(curator, demo_project, coffee, {q["Subject"]: "object"}, kind="prelabel")
    return {"project": demo_project, "q": q, "rows": rows}


def _ndjson(project: Project, **kwargs: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in "".join(iter_label_ndjson(project, **kwargs)).splitlines()]


def test_ndjson_exports_each_answer_kind_with_nested_answers(labelled: dict[str, Any]) -> None:
    lines = _ndjson(labelled["project"])
    assert lines == [
        {
            "name": "Subject",
            "answer": {"name": "animal", "classifications": [{"name": "Species", "answer": {"name": "cat"}}]},
            "dataRow": {"globalKey": "things/chelsea.png"},
        },
        {"name": "Qualities", "answer": [{"name": "sharp"}, {"name": "bright"}], "dataRow": {"globalKey": "things/chelsea.png"}},
        {"name": "Subject", "answer": {"name": "person"}, "dataRow": {"globalKey": "people/astronaut.png"}},
        {"name": "Notes", "answer": 'Says "hi", twice', "dataRow": {"globalKey": "people/astronaut.png"}},
    ]


def test_ndjson_of_prelabels_holds_only_prelabels(labelled: dict[str, Any]) -> None:
    assert _ndjson(labelled["project"], kind="prelabel") == [
        {"name": "Subject", "answer": {"name": "object"}, "dataRow": {"globalKey": "things/coffee.png"}}
    ]


def test_ndjson_nests_sub_answers_under_checklist_options(demo_project: Project, make_rows: Any, curator: Any) -> None:
    qualities = demo_project.ontology.questions.get(name="Qualities")
    blurry = qualities.options.get(value="blurry")
    cause = Question.objects.create(ontology=demo_project.ontology, parent_option=blurry, kind="text", name="Cause")
    (row,) = make_rows("photos", ["things/moon.png"])
    add_rows_to_project(curator, demo_project, [row], batch_name="b")
    set_answers(curator, demo_project, row, {qualities: ["blurry", "dark"], cause: "motion"})
    (line,) = _ndjson(demo_project)
    assert line["answer"] == [{"name": "blurry", "classifications": [{"name": "Cause", "answer": "motion"}]}, {"name": "dark"}]


def test_export_streams_in_chunks_across_many_rows(labelled: dict[str, Any]) -> None:
    # chunk_rows=1 walks the keyset one data row at a time: nothing lost or repeated.
    assert _ndjson(labelled["project"], chunk_rows=1) == _ndjson(labelled["project"])


def test_csv_export_has_one_line_per_answer_with_the_question_path(labelled: dict[str, Any]) -> None:
    text = "".join(iter_label_csv(labelled["project"]))
    records = list(csv.DictReader(io.StringIO(text)))
    got = {(r["global_key"], r["question"]): r["answer"] for r in records}
    assert got == {
        ("things/chelsea.png", "Subject"): "animal",
        ("things/chelsea.png", "Subject > animal > Species"): "cat",
        ("things/chelsea.png", "Qualities"): "sharp; bright",
        ("people/astronaut.png", "Subject"): "person",
        ("people/astronaut.png", "Notes"): 'Says "hi", twice',
    }
    assert {r["set_by"] for r in records} == {"curator"}
    assert {r["kind"] for r in records} == {"label"}


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(
    demo_project: Project, make_rows: Any, curator: Any
) -> None:
    (row,) = make_rows("photos", ["=HYPERLINK(1).png"])
    add_rows_to_project(curator, demo_project, [row], batch_name="b", step="done")
    q = {question.name: question for question in demo_project.ontology.questions.all()}
    set_answers(curator, demo_project, row, {q["Subject"]: "person", q["Notes"]: '=cmd|" /C calc"!A0'})
    records = list(csv.DictReader(io.StringIO("".join(iter_label_csv(demo_project)))))
    assert {r["global_key"] for r in records} == {"'=HYPERLINK(1).png"}
    notes = next(r for r in records if r["question"] == "Notes")
    assert notes["answer"] == '\'=cmd|" /C calc"!A0'
    for record in records:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in record.values())


def test_setting_an_answer_again_replaces_it(labelled: dict[str, Any], curator: Any) -> None:
    project, q, rows = labelled["project"], labelled["q"], labelled["rows"]
    set_answers(curator, project, rows[0], {q["Qualities"]: ["dark"]})
    answer = Answer.objects.get(project=project, data_row=rows[0], question=q["Qualities"], kind="label")
    assert list(answer.chosen.values_list("option__value", flat=True)) == ["dark"]
    assert Answer.objects.filter(project=project, data_row=rows[0], kind="label").count() == 3


def test_changing_the_parent_option_removes_the_sub_answer(labelled: dict[str, Any], curator: Any) -> None:
    project, q, rows = labelled["project"], labelled["q"], labelled["rows"]
    set_answers(curator, project, rows[0], {q["Subject"]: "scene"})
    assert not Answer.objects.filter(data_row=rows[0], question=q["Species"]).exists()
    assert not AnswerOption.objects.filter(data_row=rows[0], question=q["Species"]).exists()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"Subject": ["animal", "person"]}, "a radio answer takes exactly one option"),
        ({"Subject": "unicorn"}, "unknown option value(s) 'unicorn'"),
        ({"Notes": ["a"]}, "a text answer must be a string"),
        ({"Subject": "person", "Species": "cat"}, "sub-question of an option that is not chosen"),
    ],
)
def test_bad_answers_are_refused_with_the_question_named(
    labelled: dict[str, Any], curator: Any, answers: dict[str, Any], message: str
) -> None:
    project, q, rows = labelled["project"], labelled["q"], labelled["rows"]
    before = Answer.objects.count()
    with pytest.raises(AnswerError) as exc:
        set_answers(curator, project, rows[3], {q[name]: value for name, value in answers.items()})
    assert message in str(exc.value)
    assert Answer.objects.count() == before


def test_answers_only_for_rows_in_the_project(demo_project: Project, make_rows: Any, curator: Any) -> None:
    (row,) = make_rows("photos", ["outside.png"])
    subject = demo_project.ontology.questions.get(name="Subject")
    with pytest.raises(AnswerError, match="is not in project"):
        set_answers(curator, demo_project, row, {subject: "animal"})


def test_filter_querysets_select_the_right_rows(labelled: dict[str, Any]) -> None:
    project, q, rows = labelled["project"], labelled["q"], labelled["rows"]
    cat, astronaut, coffee, horse = rows
    subject = q["Subject"]
    animal_or_person = list(subject.options.filter(value__in=["animal", "person"]))

    def keys(ids: Any) -> set[str]:
        return set(DataRow.objects.filter(id__in=ids).values_list("global_key", flat=True))

    assert keys(rows_answer_in(project, subject, animal_or_person)) == {cat.global_key, astronaut.global_key}
    # coffee has only a pre-label and horse no answer: both are "not one of" for labels.
    assert keys(rows_answer_not_in(project, subject, animal_or_person)) == {coffee.global_key, horse.global_key}
    assert keys(rows_answer_in(project, subject, subject.options.filter(value="object"), kind="prelabel")) == {coffee.global_key}
    assert keys(rows_with_label(project)) == {cat.global_key, astronaut.global_key}
    assert keys(rows_without_label(project)) == {coffee.global_key, horse.global_key}
    with pytest.raises(ValueError, match="are not options of question"):
        rows_answer_in(project, subject, q["Qualities"].options.all())
