"""Curator pages: project list (full page and HTMX fragment), New project, project page with
its keyset-paginated rows, exports, and the data-row page's labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from projects.models import Project
from projects.services import add_rows_to_project, create_project, set_answers


def test_list_needs_login(db: Any) -> None:
    response = Client().get(reverse("projects:list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_is_newest_first_and_searchable(client_in: Client, demo_project: Project, curator: Any, htmx_headers: Any) -> None:
    create_project(curator, name="Zebra <crossings>", ontology=demo_project.ontology)
    page = client_in.get(reverse("projects:list")).content.decode()
    assert "<html" in page
    assert page.index("Zebra &lt;crossings&gt;") < page.index("Demo photos")
    fragment = client_in.get(reverse("projects:list"), {"q": "demo"}, HTTP_HX_TARGET="project-results", **htmx_headers)
    text = fragment.content.decode()
    assert "<html" not in text and 'id="project-results"' in text
    assert "Demo photos" in text and "Zebra" not in text
    assert "No project name contains" in client_in.get(reverse("projects:list"), {"q": "nothing"}).content.decode()


def test_new_project_creates_it_and_reports_bad_input(client_in: Client, demo_project: Project, curator: Any) -> None:
    url = reverse("projects:new")
    assert client_in.get(url).status_code == 200
    response = client_in.post(url, {"name": "Birds", "ontology": demo_project.ontology.pk, "consensus": "on"})
    project = Project.objects.get(name="Birds")
    assert response.status_code == 302 and response["Location"] == reverse("projects:detail", args=[project.pk])
    assert project.consensus and project.created_by == curator
    again = client_in.post(url, {"name": "Birds", "ontology": demo_project.ontology.pk}).content.decode()
    assert "Name: Project with this Name already exists." in again
    missing = client_in.post(url, {"name": "X"}).content.decode()
    assert "Ontology: This field is required." in missing


@pytest.fixture
def filled(demo_project: Project, make_rows: Any, curator: Any) -> Project:
    rows = make_rows("photos", [f"things/{i:02}.png" for i in range(5)])
    add_rows_to_project(curator, demo_project, rows[:3], batch_name="urgent", priority=1, step="initial_review")
    add_rows_to_project(curator, demo_project, rows[3:], batch_name="later", priority=4)
    subject = demo_project.ontology.questions.get(name="Subject")
    set_answers(curator, demo_project, rows[0], {subject: "person"})
    set_answers(curator, demo_project, rows[3], {subject: "scene"}, kind="prelabel")
    return demo_project


def test_project_page_shows_step_counts_batches_and_rows(client_in: Client, filled: Project) -> None:
    page = client_in.get(reverse("projects:detail", args=[filled.pk])).content.decode()
    assert 'data-step="Initial review">3<' in page and 'data-step="Initial labeling">2<' in page
    assert 'data-step="Done">0<' in page
    assert "urgent</td><td>P1 (highest)</td><td>3</td>" in page
    assert "later</td><td>P4</td><td>2</td>" in page
    assert "things/00.png" in page and "Subject: Person" in page and "Pre-label" in page


@override_settings(CURIO_PAGE_SIZE=2)
def test_project_rows_are_keyset_paginated_with_htmx_fragment(client_in: Client, filled: Project, htmx_headers: Any) -> None:
    url = reverse("projects:detail", args=[filled.pk])
    first = client_in.get(url).content.decode()
    assert "things/00.png" in first and "things/01.png" in first and "things/02.png" not in first
    seen = ["things/00.png", "things/01.png"]
    after = first.split("?after=")[1].split('"')[0]
    while after:
        fragment = client_in.get(url, {"after": after}, **htmx_headers).content.decode()
        assert "<html" not in fragment and "<h1>" not in fragment
        seen += [f"things/{i:02}.png" for i in range(5) if f"things/{i:02}.png" in fragment]
        after = fragment.split("?after=")[1].split('"')[0] if "?after=" in fragment else ""
    assert seen == [f"things/{i:02}.png" for i in range(5)]


def test_exports_stream_ndjson_and_csv(client_in: Client, filled: Project) -> None:
    response = client_in.get(reverse("projects:export", args=[filled.pk, "ndjson"]))
    assert response.streaming and response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in b"".join(response.streaming_content).decode().splitlines()]
    assert lines == [{"name": "Subject", "answer": {"name": "person"}, "dataRow": {"globalKey": "things/00.png"}}]
    pre = client_in.get(reverse("projects:export", args=[filled.pk, "ndjson"]), {"kind": "prelabel"})
    assert b'"scene"' in b"".join(pre.streaming_content)
    csv_response = client_in.get(reverse("projects:export", args=[filled.pk, "csv"]))
    body = b"".join(csv_response.streaming_content).decode()
    assert body.splitlines()[0] == "global_key,question,kind,answer,set_by,set_at"
    assert "things/00.png,Subject,label,person,curator," in body
    assert client_in.get(f"/projects/{filled.pk}/export.xml").status_code == 404
    assert client_in.get(reverse("projects:export", args=[99999, "csv"])).status_code == 404


def test_data_row_page_lists_labels_and_prelabels_in_every_project(
    client_in: Client, filled: Project, curator: Any, make_rows: Any
) -> None:
    row = filled.project_rows.order_by("data_row_id").first().data_row
    other = create_project(curator, name="Second <look>", ontology=filled.ontology)
    add_rows_to_project(curator, other, [row], batch_name="b")
    qualities = filled.ontology.questions.get(name="Qualities")
    set_answers(curator, other, row, {qualities: ["dark", "sharp"]}, kind="prelabel")
    page = client_in.get(reverse("catalog:row", args=[row.pk])).content.decode()
    assert "Demo photos" in page and "Second &lt;look&gt;" in page
    assert "Person" in page and "Sharp, Dark" in page
    assert "Pre-label" in page and "curator" in page
    (lonely,) = make_rows("photos", ["nowhere.png"])
    lonely_page = client_in.get(reverse("catalog:row", args=[lonely.pk])).content.decode()
    assert "No labels or pre-labels in any project yet." in lonely_page


def test_project_page_counts_answers_per_export_kind(client_in, curator, demo_project, make_rows):
    from projects.models import Answer, Question
    from projects.services import add_rows_to_project, set_answers

    (row,) = make_rows("ds", ["x.png"])
    add_rows_to_project(curator, demo_project, [row], batch_name="b")
    subject = Question.objects.get(ontology=demo_project.ontology, name="Subject")
    set_answers(curator, demo_project, row, {subject: "person"}, kind=Answer.Kind.PRELABEL)
    body = client_in.get(f"/projects/{demo_project.pk}/").content.decode()
    assert "Labels: <strong>0</strong> answers" in body
    assert "answers sent at “Initial labeling” are pre-labels" in body
    assert "Pre-labels: <strong>1</strong> answer" in body
    assert f"/projects/{demo_project.pk}/export.csv?kind=prelabel" in body
