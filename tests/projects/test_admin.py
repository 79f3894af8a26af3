"""Ontology setup through the admin's real nested forms, the tree preview and JSON import/export."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from projects.models import Ontology, Question
from projects.services import dump_ontology_json, export_ontology_json, import_ontology_json

from .test_ontology_json import LABELBOX_SAMPLE


@pytest.fixture
def admin_client_in(db: Any) -> Client:
    user = User.objects.create_superuser("admin", "admin@example.com", "admin-pass")
    client = Client()
    client.force_login(user)
    return client


def _management(data: dict[str, str], prefix: str, total: int) -> None:
    data.update({f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0"})
    data[f"{prefix}-MAX_NUM_FORMS"] = "1000"


def _questions(data: dict[str, str], prefix: str, questions: list[dict[str, Any]]) -> None:
    """Fill the POST data the nested admin page sends for a list of questions, each with its
    options and their sub-questions (every formset carries its management form)."""
    _management(data, prefix, len(questions))
    for i, q in enumerate(questions):
        qp = f"{prefix}-{i}"
        data.update({f"{qp}-name": q["name"], f"{qp}-kind": q["kind"], f"{qp}-instructions": "", f"{qp}-position": str(i)})
        if q.get("required"):
            data[f"{qp}-required"] = "on"
        options = q.get("options", [])
        _management(data, f"{qp}-options", len(options))
        for j, opt in enumerate(options):
            op = f"{qp}-options-{j}"
            data.update({f"{op}-label": opt["label"], f"{op}-value": opt["value"], f"{op}-position": str(j)})
            _questions(data, f"{op}-sub_questions", opt.get("sub", []))


THREE_LEVELS = [
    {
        "name": "Vehicle",
        "kind": "radio",
        "required": True,
        "options": [
            {
                "label": "Car",
                "value": "car",
                "sub": [
                    {
                        "name": "Car features",
                        "kind": "checklist",
                        "options": [
                            {
                                "label": "Wheels",
                                "value": "wheels",
                                "sub": [{"name": "Wheel count", "kind": "text", "required": True}],
                            },
                            {"label": "Lights", "value": "lights"},
                        ],
                    }
                ],
            },
            {"label": "None", "value": "none"},
        ],
    },
    {"name": "Caption", "kind": "text"},
]


def _post(client: Client, name: str, questions: list[dict[str, Any]]) -> Any:
    data = {"name": name, "_save": "Save"}
    _questions(data, "questions", questions)
    return client.post("/admin/projects/ontology/add/", data)


def test_admin_creates_a_three_level_ontology_through_nested_forms(admin_client_in: Client) -> None:
    page = admin_client_in.get("/admin/projects/ontology/add/")
    assert page.status_code == 200
    assert b"questions-empty-options-empty-sub_questions-TOTAL_FORMS" in page.content
    response = _post(admin_client_in, "Vehicles", THREE_LEVELS)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    ontology = Ontology.objects.get(name="Vehicles")
    wheel_count = Question.objects.get(name="Wheel count")
    assert wheel_count.ontology == ontology
    assert wheel_count.parent_option.value == "wheels"
    assert wheel_count.parent_option.question.parent_option.value == "car"
    # The admin-built ontology is the same tree as the Labelbox sample (modulo ids).
    sample = import_ontology_json(LABELBOX_SAMPLE, name="Sample")
    doc, sample_doc = export_ontology_json(ontology), export_ontology_json(sample)
    for d in (doc, sample_doc):  # the form posted empty instructions
        _blank_instructions(d["classifications"])
    assert dump_ontology_json(doc) == dump_ontology_json(sample_doc)


def _blank_instructions(items: list[dict[str, Any]]) -> None:
    for item in items:
        item["instructions"] = ""
        for opt in item["options"]:
            _blank_instructions(opt["options"])


def test_change_page_shows_global_questions_at_top_and_the_tree_preview(admin_client_in: Client) -> None:
    ontology = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    Question.objects.filter(name="Caption").update(name="<b>Caption</b>")
    page = admin_client_in.get(f"/admin/projects/ontology/{ontology.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'class="ontology-tree"' in text
    assert "&lt;b&gt;Caption&lt;/b&gt;" in text and "<b>Caption</b>" not in text
    # Only the two global questions sit in the top-level formset.
    assert 'name="questions-TOTAL_FORMS" value="2"' in text


@pytest.mark.parametrize(
    ("questions", "message"),
    [
        ([{"name": "Vehicle", "kind": "radio"}], "a radio question needs at least one option"),
        ([{"name": "Tags", "kind": "checklist"}], "a checklist question needs at least one option"),
        ([{"name": "Notes", "kind": "text", "options": [{"label": "x", "value": "x"}]}], "a text question has no options"),
        ([{"name": "A", "kind": "text"}, {"name": "A", "kind": "text"}], 'Question name "A" is used twice at this level'),
        (
            [{"name": "A", "kind": "radio", "options": [{"label": "x", "value": "x"}, {"label": "y", "value": "x"}]}],
            # Django's own formset check of the unique (question, value) constraint.
            "Please correct the duplicate data for value",
        ),
        (
            [
                {
                    "name": "A",
                    "kind": "radio",
                    "options": [
                        {"label": "x", "value": "x", "sub": [{"name": "B", "kind": "text"}, {"name": "B", "kind": "text"}]}
                    ],
                }
            ],
            'Question name "B" is used twice at this level',
        ),
    ],
)
def test_admin_refuses_invalid_ontologies_with_a_form_error(admin_client_in: Client, questions: Any, message: str) -> None:
    response = _post(admin_client_in, "Bad", questions)
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert not Ontology.objects.filter(name="Bad").exists()


def test_admin_export_action_downloads_labelbox_json(admin_client_in: Client) -> None:
    ontology = import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    response = admin_client_in.post(
        "/admin/projects/ontology/", {"action": "export_json", "_selected_action": [ontology.pk], "index": "0"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content.decode() == dump_ontology_json(export_ontology_json(ontology))


def test_admin_import_creates_an_ontology_or_lists_every_problem(admin_client_in: Client) -> None:
    assert b"Import JSON" in admin_client_in.get("/admin/projects/ontology/").content
    upload = SimpleUploadedFile("v.json", json.dumps(LABELBOX_SAMPLE).encode(), content_type="application/json")
    response = admin_client_in.post("/admin/projects/ontology/import-json/", {"name": "Vehicles", "file": upload})
    assert response.status_code == 302
    assert Question.objects.filter(ontology__name="Vehicles").count() == 4
    bad = dict(LABELBOX_SAMPLE, classifications=[{"type": "radio", "name": "X", "options": []}])
    upload = SimpleUploadedFile("b.json", json.dumps(bad).encode(), content_type="application/json")
    response = admin_client_in.post("/admin/projects/ontology/import-json/", {"name": "Broken", "file": upload})
    assert response.status_code == 200
    assert "a radio question needs at least one option" in html.unescape(response.content.decode())
    assert not Ontology.objects.filter(name="Broken").exists()


def test_admin_lists_search_and_filter(admin_client_in: Client) -> None:
    import_ontology_json(LABELBOX_SAMPLE, name="Vehicles")
    assert b"Vehicles" in admin_client_in.get("/admin/projects/ontology/?q=Vehic").content
    assert b"Vehicles" not in admin_client_in.get("/admin/projects/ontology/?q=zzz").content
    assert admin_client_in.get("/admin/projects/question/?kind__exact=radio").status_code == 200
    assert admin_client_in.get("/admin/projects/project/").status_code == 200
