"""The projector page: the map of an embedding space for the catalog's filter, colors, and
box / lasso selection through the view into the curator's selection."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from catalog import selection as svc
from catalog.models import DataRow
from tests.vectors import cluster_space


@pytest.fixture
def zoo(make_rows):
    return cluster_space(make_rows, per_cluster=10, seed=7)


def folder_ids(name: str) -> set[int]:
    return set(DataRow.objects.filter(metadata__folder=name).values_list("id", flat=True))


def points(client: Client, query: str = "") -> dict:
    response = client.get(reverse("catalog:projector_points") + "?" + query)
    assert response.status_code == 200
    return response.json()


def cluster_box(data: dict, ids: set[int], pad: float = 0.02) -> dict[str, str]:
    xs = [x for i, x in zip(data["ids"], data["x"], strict=True) if i in ids]
    ys = [y for i, y in zip(data["ids"], data["y"], strict=True) if i in ids]
    return {"x0": str(max(xs) + pad), "y0": str(max(ys) + pad), "x1": str(min(xs) - pad), "y1": str(min(ys) - pad)}


def test_catalog_links_to_the_projector_with_its_filter(client_in, zoo):
    html = client_in.get(reverse("catalog:browse") + "?f=folder&op=in&v=cat,dog").content.decode()
    assert 'id="open-projector" href="/projector/?f=folder&amp;op=in&amp;v=cat%2Cdog' in html


def test_projector_page_has_canvas_noscript_note_and_the_selection_bar(client_in, zoo):
    response = client_in.get(reverse("catalog:projector") + "?f=folder&op=in&v=cat,dog")
    html = response.content.decode()
    assert response.status_code == 200 and "<canvas" in html and 'id="selection-bar"' in html
    assert "<noscript>" in html and "The map needs JavaScript" in html
    assert "custom:zoo (Custom, 16-D)" in html and "folder equals" not in html
    assert 'name="f" value="folder"' in html  # the filter rides along when the space changes
    assert "js/projector.js" in html


def test_points_cover_the_filter_in_the_unit_square_colored_by_a_metadata_field(client_in, zoo):
    data = points(client_in, f"f=folder&op=in&v=cat,dog&map_space={zoo.pk}&color=field:folder")
    assert data["status"] == "ready" and data["space"] == "custom:zoo"
    assert set(data["ids"]) == folder_ids("cat") | folder_ids("dog")
    assert min(data["x"] + data["y"]) >= 0 and max(data["x"] + data["y"]) <= 1
    assert sorted(entry["label"] for entry in data["legend"]) == ["cat", "dog"]
    by_id = dict(zip(data["ids"], data["c"], strict=True))
    cat_colors = {by_id[i] for i in folder_ids("cat")}
    dog_colors = {by_id[i] for i in folder_ids("dog")}
    assert len(cat_colors) == len(dog_colors) == 1 and cat_colors != dog_colors


def test_points_colored_by_a_project_answer(client_in, curator, zoo, demo_project):
    from projects.models import Question
    from projects.services import add_rows_to_project, set_answers

    question = Question.objects.filter(ontology=demo_project.ontology, parent_option__isnull=True, kind="radio").first()
    option = question.options.order_by("position", "id").first()
    cat = sorted(folder_ids("cat"))
    add_rows_to_project(curator, demo_project, cat[:4], batch_name="colors")
    for row_id in cat[:4]:
        set_answers(curator, demo_project, DataRow.objects.get(pk=row_id), {question: option.value})
    data = points(client_in, f"color=answer:{demo_project.pk}:{question.pk}")
    assert [entry["label"] for entry in data["legend"]] == [option.label]
    colored = {i for i, c in zip(data["ids"], data["c"], strict=True) if c == 0}
    assert colored == set(cat[:4])


def test_box_selection_through_the_view_adds_exactly_the_cluster(client_in, curator, zoo, htmx_headers):
    data = points(client_in)
    box = cluster_box(data, folder_ids("dog"))
    response = client_in.post(
        reverse("catalog:projector_select"), {"shape": "box", "filter_qs": "", "map_space": zoo.pk, **box}, **htmx_headers
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert json.loads(response["HX-Trigger-After-Swap"])["selectionChanged"] == {
        "action": "add",
        "added": 10,
        "inside": 10,
        "count": 10,
    }
    assert "(10) selected" in response.content.decode()
    assert set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True)) == folder_ids("dog")


def test_lasso_selection_adds_to_what_is_already_selected(client_in, curator, zoo, htmx_headers):
    first_cat = min(folder_ids("cat"))
    svc.set_row_selected(curator, DataRow.objects.get(pk=first_cat), selected=True)
    data = points(client_in)
    b = {k: float(v) for k, v in cluster_box(data, folder_ids("car")).items()}
    # A diamond around the car cluster's box.
    cx, cy = (b["x0"] + b["x1"]) / 2, (b["y0"] + b["y1"]) / 2
    r = abs(b["x0"] - b["x1"]) + abs(b["y0"] - b["y1"])
    polygon = [[cx - r, cy], [cx, cy + r], [cx + r, cy], [cx, cy - r]]
    response = client_in.post(
        reverse("catalog:projector_select"),
        {"shape": "lasso", "points": json.dumps(polygon), "filter_qs": "", "map_space": zoo.pk},
        **htmx_headers,
    )
    inside = json.loads(response["HX-Trigger-After-Swap"])["selectionChanged"]
    selected = set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True))
    assert folder_ids("car") <= selected and first_cat in selected
    assert inside["count"] == len(selected) == 1 + inside["added"]


def test_selection_on_the_map_stays_inside_the_filter(client_in, curator, zoo, htmx_headers):
    # The whole unit square, but the map only holds the filter's rows.
    everything = {"x0": "-1", "y0": "-1", "x1": "2", "y1": "2"}
    client_in.post(
        reverse("catalog:projector_select"),
        {"shape": "box", "filter_qs": "f=folder&op=eq&v=cat", "map_space": zoo.pk, **everything},
        **htmx_headers,
    )
    assert set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True)) == folder_ids("cat")


def test_plain_post_redirects_back_to_the_projector(client_in, curator, zoo):
    everything = {"x0": "0", "y0": "0", "x1": "1", "y1": "1"}
    response = client_in.post(
        reverse("catalog:projector_select"), {"shape": "box", "filter_qs": "f=folder&op=eq&v=dog", **everything}
    )
    assert response.status_code == 302 and response["Location"].startswith("/projector/?f=folder")
    assert svc.selection_count(svc.get_selection(curator)) == 10


def test_bad_shape_is_named_and_escaped_and_selects_nothing(client_in, curator, zoo, htmx_headers):
    response = client_in.post(
        reverse("catalog:projector_select"), {"shape": "<b>star</b>", "filter_qs": "", "map_space": zoo.pk}, **htmx_headers
    )
    message = json.loads(response["HX-Trigger-After-Swap"])["curioError"]["message"]
    assert message == "Unknown selection shape '<b>star</b>': use box or lasso."  # JSON; htmx shows it as text
    response = client_in.post(
        reverse("catalog:projector_select"),
        {"shape": "lasso", "points": "[[0, 0], [1]]", "filter_qs": "", "map_space": zoo.pk},
        **htmx_headers,
    )
    assert "A lasso needs" in json.loads(response["HX-Trigger-After-Swap"])["curioError"]["message"]
    assert svc.selection_count(svc.get_selection(curator)) == 0


@pytest.mark.parametrize(
    "shape",
    [
        {"shape": "lasso", "points": "[[1e999, 0], [1, 0], [1, 1]]"},
        {"shape": "lasso", "points": "[[-Infinity, -Infinity], [Infinity, -Infinity], [Infinity, Infinity]]"},
        {"shape": "box", "x0": "-inf", "y0": "-inf", "x1": "inf", "y1": "inf"},
        {"shape": "box", "x0": "nan", "y0": "0", "x1": "1", "y1": "1"},
    ],
)
def test_shapes_with_infinite_coordinates_are_refused_not_drawn_around_everything(client_in, curator, zoo, htmx_headers, shape):
    response = client_in.post(
        reverse("catalog:projector_select"), {**shape, "filter_qs": "", "map_space": zoo.pk}, **htmx_headers
    )
    assert "finite" in json.loads(response["HX-Trigger-After-Swap"])["curioError"]["message"]
    assert svc.selection_count(svc.get_selection(curator)) == 0


def test_large_maps_are_computed_in_a_background_job_and_cached(client_in, zoo, settings, tmp_path):
    settings.CURIO_PROJECTOR_SYNC_LIMIT = 10
    settings.CURIO_PROJECTOR_CACHE_DIR = str(tmp_path)
    # django-q2 runs in sync mode in tests: the job finishes before the first answer returns,
    # which still says "computing"; the next request reads the cached map.
    first = points(client_in, f"map_space={zoo.pk}")
    assert first == {"status": "computing", "points": 30}
    assert list(tmp_path.glob("*.npz"))
    second = points(client_in, f"map_space={zoo.pk}")
    assert second["status"] == "ready" and sorted(second["ids"]) == sorted(DataRow.objects.values_list("id", flat=True))
    # Selection on a cached map uses the same coordinates the browser drew.
    settings.CURIO_PROJECTOR_SYNC_LIMIT = 1000
    assert points(client_in, f"map_space={zoo.pk}")["x"] == second["x"]


def test_no_space_yet_says_how_to_make_one(client_in, db):
    html = client_in.get(reverse("catalog:projector")).content.decode()
    assert "There is no embedding space yet" in html and "import_embeddings" in html
    assert points(client_in)["status"] == "error"


def test_projector_needs_login_and_csrf(curator, zoo):
    anonymous = Client()
    for url in (reverse("catalog:projector"), reverse("catalog:projector_points")):
        assert anonymous.get(url).status_code == 302
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    response = client.post(reverse("catalog:projector_select"), {"shape": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1})
    assert response.status_code == 403 and svc.selection_count(svc.get_selection(curator)) == 0


def test_map_selection_changes_only_the_curators_own_selection(client_in, curator, other_curator, zoo, htmx_headers):
    everything = {"x0": "0", "y0": "0", "x1": "1", "y1": "1"}
    client_in.post(reverse("catalog:projector_select"), {"shape": "box", "filter_qs": "", **everything}, **htmx_headers)
    assert svc.selection_count(svc.get_selection(curator)) == 30
    assert svc.selection_count(svc.get_selection(other_curator)) == 0


def test_thumbnail_by_row_id_redirects_to_the_thumbnail(client_in, zoo):
    row = DataRow.objects.first()
    response = client_in.get(reverse("catalog:row_thumbnail", args=[row.pk]))
    assert response.status_code == 302 and response["Location"] == row.thumbnail.url
