"""Database-level rules of the projects app: the database itself refuses what Python might miss."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from projects.models import Answer, AnswerOption, Batch, Ontology, Option, Project, ProjectDataRow, Question


@pytest.fixture
def setup(make_rows: Any, curator: Any) -> dict[str, Any]:
    ontology = Ontology.objects.create(name="Photos")
    subject = Question.objects.create(ontology=ontology, kind=Question.Kind.RADIO, name="Subject")
    animal = Option.objects.create(question=subject, label="Animal", value="animal")
    project = Project.objects.create(name="P", ontology=ontology, created_by=curator)
    batch = Batch.objects.create(project=project, name="b1", priority=1)
    (row,) = make_rows("ds", ["things/cat.png"])
    ProjectDataRow.objects.create(project=project, data_row=row, batch=batch)
    return {"ontology": ontology, "subject": subject, "animal": animal, "project": project, "batch": batch, "row": row}


def test_database_refuses_a_second_answer_for_same_question_and_kind(setup: dict[str, Any]) -> None:
    s = setup
    Answer.objects.create(project=s["project"], data_row=s["row"], question=s["subject"], kind=Answer.Kind.LABEL)
    # A pre-label beside the label is fine: the constraint is per kind.
    Answer.objects.create(project=s["project"], data_row=s["row"], question=s["subject"], kind=Answer.Kind.PRELABEL)
    with pytest.raises(IntegrityError), transaction.atomic():
        # bulk_create skips Python validation: only the database can refuse this.
        Answer.objects.bulk_create(
            [Answer(project=s["project"], data_row=s["row"], question=s["subject"], kind=Answer.Kind.LABEL)]
        )
    assert Answer.objects.filter(question=s["subject"], kind=Answer.Kind.LABEL).count() == 1


def test_database_refuses_the_same_option_twice_in_one_answer(setup: dict[str, Any]) -> None:
    s = setup
    answer = Answer.objects.create(project=s["project"], data_row=s["row"], question=s["subject"], kind=Answer.Kind.LABEL)
    fields = {"answer": answer, "option": s["animal"], "project": s["project"], "data_row": s["row"], "question": s["subject"]}
    AnswerOption.objects.create(kind="label", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        AnswerOption.objects.bulk_create([AnswerOption(kind="label", **fields)])


def test_database_refuses_a_data_row_twice_in_one_project(setup: dict[str, Any]) -> None:
    s = setup
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectDataRow.objects.bulk_create([ProjectDataRow(project=s["project"], data_row=s["row"], batch=s["batch"])])


@pytest.mark.parametrize("priority", [0, 6])
def test_database_refuses_batch_priority_outside_1_to_5(setup: dict[str, Any], priority: int) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Batch.objects.bulk_create([Batch(project=setup["project"], name="bad", priority=priority)])


def test_database_refuses_duplicate_batch_name_in_a_project(setup: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Batch.objects.bulk_create([Batch(project=setup["project"], name="b1", priority=2)])


def test_database_refuses_sibling_questions_with_one_name(setup: dict[str, Any]) -> None:
    s = setup
    with pytest.raises(IntegrityError), transaction.atomic():
        Question.objects.bulk_create([Question(ontology=s["ontology"], kind="text", name="Subject")])
    Question.objects.create(ontology=s["ontology"], parent_option=s["animal"], kind="text", name="Species")
    with pytest.raises(IntegrityError), transaction.atomic():
        Question.objects.bulk_create([Question(ontology=s["ontology"], parent_option=s["animal"], kind="text", name="Species")])
    # The same name under a different parent is a different sibling group.
    Question.objects.create(ontology=s["ontology"], kind="text", name="Species")


def test_database_refuses_duplicate_option_value_in_a_question(setup: dict[str, Any]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Option.objects.bulk_create([Option(question=setup["subject"], label="Other animal", value="animal")])


def test_sub_question_takes_its_parents_ontology(setup: dict[str, Any]) -> None:
    sub = Question(parent_option=setup["animal"], kind="text", name="Breed")
    sub.save()
    assert sub.ontology_id == setup["ontology"].pk
