"""Ontology JSON in Labelbox's shape: validation of every rule, import, export and round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.core.management import call_command

from projects.models import Ontology, Option, Question
from projects.services import (
    OntologyError,
    dump_ontology_json,
    export_ontology_json,
    import_ontology_json,
    validate_ontology,
    validate_ontology_json,
)

# A three-level sample as Labelbox exports it, ids and colours included (which Curio ignores).
LABELBOX_SAMPLE: dict[str, Any] = {
    "tools": [],
    "classifications": [
        {
            "type": "radio",
            "name": "Vehicle",
            "instructions": "Is there a vehicle?",
            "required": True,
            "scope": "global",
            "featureSchemaId": "ckq1",
            "schemaNodeId": "ckq2",
            "options": [
                {
                    "label": "Car",
                    "value": "car",
                    "featureSchemaId": "ckq3",
                    "options": [
                        {
                            "type": "checklist",
                            "name": "Car features",
                            "instructions": "Which features are visible?",
                            "required": False,
                            "options": [
                                {
                                    "label": "Wheels",
                                    "value": "wheels",
                                    "options": [
                                        {
                                            "type": "text",
                                            "name": "Wheel count",
                                            "instructions": "",
                                            "required": True,
                                            "options": [],
                                        }
                                    ],
                                },
                                {"label": "Lights", "value": "lights", "options": []},
                            ],
                        }
                    ],
                },
                {"label": "None", "value": "none", "options": []},
            ],
        },
        {
            "type": "text",
            "name": "Caption",
            "instructions": "Describe the image",
            "required": False,
            "scope": "global",
            "options": [],
        },
    ],
}


def test_export_import_export_is_byte_identical(db: Any) -> None:
    first = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    exported = dump_ontology_json(export_ontology_json(first))
    second = import_ontology_json(json.loads(exported), name="Vehicles again")
    assert dump_ontology_json(export_ontology_json(second)) == exported
    # Three levels arrived: Vehicle → Car → Car features → Wheels → Wheel count.
    wheel_count = Question.objects.get(ontology=second, name="Wheel count")
    assert wheel_count.parent_option.value == "wheels"
    assert wheel_count.parent_option.question.parent_option.value == "car"
    assert wheel_count.required is True


def test_export_keeps_labelbox_shape_without_ids(db: Any) -> None:
    ontology = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    doc = export_ontology_json(ontology)
    assert doc["tools"] == []
    vehicle = doc["classifications"][0]
    assert vehicle == {
        "type": "radio",
        "name": "Vehicle",
        "instructions": "Is there a vehicle?",
        "required": True,
        "scope": "global",
        "options": vehicle["options"],
    }
    nested = vehicle["options"][0]["options"][0]
    assert nested["type"] == "checklist" and "scope" not in nested
    assert [o["value"] for o in nested["options"]] == ["wheels", "lights"]
    assert "featureSchemaId" not in json.dumps(doc)


def _bad(mutate: Any) -> list[str]:
    doc = copy.deepcopy(LABELBOX_SAMPLE)
    mutate(doc)
    return validate_ontology_json(doc)


def test_sample_is_valid() -> None:
    assert validate_ontology_json(LABELBOX_SAMPLE) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["classifications"][0].update(options=[]), "a radio question needs at least one option"),
        (
            lambda d: d["classifications"][0]["options"][0]["options"][0].update(options=[]),
            "a checklist question needs at least one option",
        ),
        (
            lambda d: d["classifications"][1].update(options=[{"label": "x", "value": "x", "options": []}]),
            "a text question has no options",
        ),
        (
            lambda d: d["classifications"][0]["options"][1].update(value="car"),
            'value "car" repeats another option',
        ),
        (lambda d: d["classifications"][1].update(name="Vehicle"), "repeats a sibling question's name"),
        (lambda d: d["classifications"][0].update(type="polygon"), '"type" must be one of radio, checklist, text'),
        (lambda d: d["classifications"][0].update(scope="index"), 'only "scope": "global"'),
        (lambda d: d["classifications"][0].update(required="yes"), '"required" must be true or false'),
        (lambda d: d.update(tools=[{"tool": "bbox", "name": "Box"}]), "supports classifications only"),
        (lambda d: d["classifications"][0]["options"][0].update(value=""), '"value" is missing or empty'),
        (lambda d: d.pop("classifications"), '"classifications" must be a list'),
    ],
)
def test_json_validation_names_the_problem(mutate: Any, expected: str) -> None:
    errors = _bad(mutate)
    assert any(expected in e for e in errors), errors


def test_nested_sibling_names_may_repeat_across_levels() -> None:
    # "Car features" under Car and a global "Car features" are not siblings.
    doc = copy.deepcopy(LABELBOX_SAMPLE)
    doc["classifications"][1]["name"] = "Car features"
    assert validate_ontology_json(doc) == []


def test_import_refuses_bad_json_and_creates_nothing(db: Any) -> None:
    doc = copy.deepcopy(LABELBOX_SAMPLE)
    doc["classifications"][0]["options"] = []
    doc["classifications"][1]["type"] = "nope"
    with pytest.raises(OntologyError) as exc:
        import_ontology_json(doc, name="Broken")
    assert len(exc.value.errors) == 2
    assert not Ontology.objects.filter(name="Broken").exists()
    assert Question.objects.count() == 0


def test_import_refuses_a_taken_name(db: Any) -> None:
    import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    with pytest.raises(OntologyError, match='an ontology named "Vehicles" already exists'):
        import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")


def test_validate_ontology_finds_each_rule_broken_in_the_database(db: Any) -> None:
    ontology = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    assert validate_ontology(ontology) == []
    vehicle = Question.objects.get(ontology=ontology, name="Vehicle")
    caption = Question.objects.get(ontology=ontology, name="Caption")
    features = Question.objects.get(ontology=ontology, name="Car features")
    # radio without options / text with options
    vehicle_options = list(vehicle.options.all())
    Question.objects.filter(pk=vehicle.pk).update(kind="checklist")
    Option.objects.create(question=caption, label="x", value="x")
    errors = validate_ontology(ontology)
    assert any('"Caption": a text question has no options' in e for e in errors)
    # a cycle: Vehicle nested under an option of its own sub-question
    Question.objects.filter(pk=vehicle.pk).update(parent_option=features.options.get(value="lights"))
    errors = validate_ontology(ontology)
    assert any("nesting forms a cycle" in e for e in errors), errors
    # a parent option from another ontology
    other = import_ontology_json(LABELBOX_SAMPLE, name="Other")
    Question.objects.filter(pk=caption.pk).update(parent_option=Option.objects.get(question__ontology=other, value="car"))
    assert any('"Caption": its parent option belongs to another ontology' in e for e in validate_ontology(ontology))
    # a radio or checklist without options
    Question.objects.filter(pk=vehicle.pk).update(parent_option=None)
    Option.objects.filter(pk__in=[o.pk for o in vehicle_options]).delete()
    assert any('"Vehicle": a checklist question needs at least one option' in e for e in validate_ontology(ontology))


def test_model_clean_refuses_a_cycle_and_a_foreign_parent(db: Any) -> None:
    from django.core.exceptions import ValidationError

    ontology = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    vehicle = Question.objects.get(ontology=ontology, name="Vehicle")
    vehicle.parent_option = Option.objects.get(question__ontology=ontology, value="wheels")
    with pytest.raises(ValidationError, match="cannot be nested under its own option"):
        vehicle.full_clean()
    other = import_ontology_json(LABELBOX_SAMPLE, name="Other")
    vehicle.parent_option = Option.objects.get(question__ontology=other, value="none")
    with pytest.raises(ValidationError, match="belongs to another ontology"):
        vehicle.full_clean()


def test_management_commands_import_and_export(db: Any, tmp_path: Any) -> None:
    source = tmp_path / "vehicles.json"
    source.write_text(json.dumps(LABELBOX_SAMPLE), encoding="utf-8")
    call_command("import_ontology", str(source), "--name", "Vehicles")
    target = tmp_path / "out.json"
    call_command("export_ontology", "Vehicles", "-o", str(target))
    assert target.read_text(encoding="utf-8") == dump_ontology_json(export_ontology_json(Ontology.objects.get(name="Vehicles")))


def test_import_command_reports_every_problem(db: Any, tmp_path: Any) -> None:
    from django.core.management.base import CommandError

    doc = copy.deepcopy(LABELBOX_SAMPLE)
    doc["classifications"][0]["options"] = []
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CommandError, match="a radio question needs at least one option"):
        call_command("import_ontology", str(source), "--name", "Bad")
    source.write_text("{not json", encoding="utf-8")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_ontology", str(source), "--name", "Bad")
