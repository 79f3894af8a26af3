"""Hand-edited URLs get a clear message or a 404, never a server error or a runaway page."""

from __future__ import annotations

import html

import pytest

from catalog import selection as selection_service
from catalog.models import MetadataField

HUGE = "99999999999999999999999"


@pytest.fixture
def rows(make_rows):
    return make_rows(
        "ds", ["a/one.png", "a/two.png"], [{"when": "2024-01-02T00:00:00Z"}] * 2, {"when": MetadataField.Kind.DATETIME}
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"/?dataset={HUGE}", "is not a dataset id"),
        (f"/count/?dataset={HUGE}", None),
        (f"/?similar={HUGE}", "is not a row id"),
        ("/?after=WyJhIl0", "Page cursor"),  # base64 of ["a"]
        ("/?sort=key&after=WyJ4IiwgImEiXQ", "Page cursor"),  # ["x", "a"]
        ("/?f=when&op=range&v=2020-13-45&v2=notadate", "is a date/time"),
        ("/?f=when&op=eq&v=0000-00-00", "is a date/time"),
        (f"/?ap={HUGE}&aop=labeled", "is not a project id"),
    ],
)
def test_bad_query_strings_are_explained(client_in, rows, url, message):
    response = client_in.get(url)
    assert response.status_code == 200
    if message:
        assert message in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [f"/rows/{HUGE}/", f"/projects/{HUGE}/", f"/classification/jobs/{HUGE}/skipped/", "/rows/999999999/"],
)
def test_absurd_ids_in_paths_are_not_found(client_in, rows, url):
    assert client_in.get(url).status_code == 404


def test_posted_absurd_row_id_is_not_found(client_in, rows):
    assert client_in.post("/selection/toggle/", {"row": HUGE}, HTTP_HX_REQUEST="true").status_code == 404


def test_condition_rows_are_capped(client_in, rows):
    body = client_in.get("/?conditions=999999").content.decode()
    assert body.count('name="f"') <= 21


@pytest.fixture
def scored_rows(make_rows):
    return make_rows("scored", ["s/one.png", "s/two.png"], [{"score": 1}, {"score": 2}], {"score": MetadataField.Kind.NUMBER})


NOT_FINITE = ["NaN", "nan", "inf", "-inf", "1e999", "9" * 400]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("query", ["op=eq&v={v}", "op=in&v={v}", "op=range&v={v}&v2={v}", "op=range&v=0&v2={v}"])
def test_a_number_that_is_not_finite_is_explained_on_the_grid_and_the_count(client_in, scored_rows, query, value):
    url = "?f=score&" + query.format(v=value)
    grid = client_in.get("/" + url)
    assert grid.status_code == 200
    assert html.escape(f"Field 'score' is a number; '{value}' is not a finite number.") in grid.content.decode()
    assert client_in.get("/count/" + url).status_code == 200


def test_select_all_on_a_filter_with_an_infinite_number_selects_what_the_grid_shows(client_in, curator, scored_rows):
    # The broken condition is reported and left out (like any condition with an error), so
    # Select all takes what the grid shows: both rows of the dataset.
    params = {"dataset": scored_rows[0].dataset_id, "f": "score", "op": "eq", "v": "inf"}
    assert client_in.post("/selection/all/", params, HTTP_HX_REQUEST="true").status_code == 200
    assert selection_service.selected_rows(selection_service.get_selection(curator)).count() == 2


def test_an_absurd_project_page_cursor_starts_from_the_top(client_in, curator, rows):
    from projects.demo import create_demo_project

    project = create_demo_project(curator)
    for after in ["9223372036854775808", HUGE, "-3", "abc"]:
        assert client_in.get(f"/projects/{project.pk}/", {"after": after}).status_code == 200
