"""Selection: ticks, shift-click ranges, Select all with exclusions, per-user isolation."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from catalog import selection as svc


@pytest.fixture
def rows(make_rows):
    keys = [f"{'animals' if i % 2 else 'food'}/img-{i:02d}.png" for i in range(12)]
    return make_rows("sel", keys)


def selected_keys(user) -> set[str]:
    return set(svc.selected_rows(svc.get_selection(user)).values_list("global_key", flat=True))


def post(client: Client, url: str, data: dict, htmx: bool = True):
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, data, **extra)


def test_tick_and_untick_update_the_count_bar(client_in, curator, rows):
    response = post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1"})
    body = response.content.decode()
    assert "(1) selected" in body and "<html" not in body
    assert json.loads(response["HX-Trigger-After-Swap"])["selectionChanged"]["count"] == 1
    post(client_in, "/selection/toggle/", {"row": rows[3].pk, "selected": "1"})
    response = post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "0"})
    assert "(1) selected" in response.content.decode()
    assert selected_keys(curator) == {rows[3].global_key}


def test_plain_post_redirects_back_to_the_catalog(client_in, rows):
    response = post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1", "filter_qs": "key=food"}, htmx=False)
    assert response.status_code == 302
    assert response["Location"] == "/?key=food"


def test_shift_click_selects_the_range_in_the_current_order(client_in, curator, rows):
    # Newest first: rows[9] ... rows[4] are between the two clicks.
    post(client_in, "/selection/toggle/", {"row": rows[9].pk, "selected": "1"})
    response = post(client_in, "/selection/range/", {"row": rows[4].pk, "selected": "1", "filter_qs": ""})
    assert "(6) selected" in response.content.decode()
    assert selected_keys(curator) == {r.global_key for r in rows[4:10]}


def test_shift_click_respects_filter_and_key_order(client_in, curator, rows):
    qs = "key=food/&key_op=startswith&sort=key"
    food = sorted((r for r in rows if r.global_key.startswith("food/")), key=lambda r: r.global_key)
    post(client_in, "/selection/toggle/", {"row": food[1].pk, "selected": "1"})
    post(client_in, "/selection/range/", {"row": food[4].pk, "selected": "1", "filter_qs": qs})
    # Only the food rows between the two clicks; the animals rows interleaved by id are not.
    assert selected_keys(curator) == {r.global_key for r in food[1:5]}


def test_shift_click_can_unselect_a_range(client_in, curator, rows):
    post(client_in, "/selection/all/", {"filter_qs": ""})
    post(client_in, "/selection/toggle/", {"row": rows[2].pk, "selected": "0"})
    post(client_in, "/selection/range/", {"row": rows[5].pk, "selected": "0", "filter_qs": ""})
    assert len(selected_keys(curator)) == 12 - 4


def test_select_all_then_untick_keeps_the_rest(client_in, curator, rows):
    response = post(client_in, "/selection/all/", {"filter_qs": "f=folder&op=eq&v=animals"})
    assert "(6) selected" in response.content.decode()
    assert json.loads(response["HX-Trigger-After-Swap"])["selectionChanged"]["action"] == "all"
    post(client_in, "/selection/toggle/", {"row": rows[1].pk, "selected": "0"})
    post(client_in, "/selection/toggle/", {"row": rows[3].pk, "selected": "0"})
    response = post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1"})  # a food row, added by hand
    assert "(5) selected" in response.content.decode()
    assert selected_keys(curator) == {rows[i].global_key for i in (0, 5, 7, 9, 11)}


def test_select_all_is_frozen_against_filter_changes_and_new_rows(client_in, curator, rows, make_rows):
    post(client_in, "/selection/all/", {"filter_qs": "f=folder&op=eq&v=animals"})
    # The curator moves on to another filter: the selection does not follow it.
    page = client_in.get("/?f=folder&op=eq&v=food").content.decode()
    assert "(6) selected" in page
    assert "folder equals “animals”" in page
    # Rows imported after Select all are not swept in, even if they match.
    make_rows(rows[0].dataset, ["animals/late.png"])
    assert "animals/late.png" not in selected_keys(curator)
    assert len(selected_keys(curator)) == 6


def test_select_all_refuses_a_broken_filter(client_in, curator, rows, make_rows):
    make_rows(rows[0].dataset, ["x.png"], [{"weight": 1}], {"weight": "number"})
    response = post(client_in, "/selection/all/", {"filter_qs": "f=weight&op=range&v=abc"})
    assert "(0) selected" in response.content.decode()
    assert "curioError" in json.loads(response["HX-Trigger-After-Swap"])


def test_clear_empties_the_selection(client_in, curator, rows):
    post(client_in, "/selection/all/", {"filter_qs": ""})
    response = post(client_in, "/selection/clear/", {})
    assert "(0) selected" in response.content.decode()
    assert selected_keys(curator) == set()


def test_selection_survives_reload_and_paging(client_in, curator, rows, settings):
    settings.CURIO_PAGE_SIZE = 5
    post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1"})  # the oldest: on the last page
    first = client_in.get("/").content.decode()
    assert "(1) selected" in first
    cursor = first.split("after=")[1].split('"')[0].replace("&amp;", "&")
    second = client_in.get("/?after=" + cursor, HTTP_HX_REQUEST="true").content.decode()
    third_cursor = second.split("after=")[1].split('"')[0]
    third = client_in.get("/?after=" + third_cursor, HTTP_HX_REQUEST="true").content.decode()
    assert f'id="sel-{rows[0].pk}" value="{rows[0].pk}" checked' in third
    assert "<html" not in third


def test_selections_are_per_user(client_in, curator, other_curator, rows):
    post(client_in, "/selection/all/", {"filter_qs": ""})
    other = Client()
    other.force_login(other_curator)
    assert "(0) selected" in other.get("/").content.decode()
    post(other, "/selection/clear/", {})
    assert len(selected_keys(curator)) == 12


def test_selection_posts_need_csrf(curator, rows):
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    response = client.post("/selection/all/", {"filter_qs": ""})
    assert response.status_code == 403
    assert selected_keys(curator) == set()


def test_unknown_row_is_404(client_in, rows):
    assert post(client_in, "/selection/toggle/", {"row": "999999"}).status_code == 404
    assert post(client_in, "/selection/toggle/", {"row": "abc"}).status_code == 404


def test_kept_count_matches_a_recount_through_mixed_actions(client_in, curator, rows):
    post(client_in, "/selection/all/", {"filter_qs": "f=folder&op=eq&v=animals"})
    post(client_in, "/selection/toggle/", {"row": rows[1].pk, "selected": "0"})
    post(client_in, "/selection/toggle/", {"row": rows[1].pk, "selected": "0"})  # double un-tick
    post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1"})
    post(client_in, "/selection/toggle/", {"row": rows[0].pk, "selected": "1"})  # double tick
    post(client_in, "/selection/range/", {"row": rows[6].pk, "anchor": rows[2].pk, "selected": "1", "filter_qs": ""})
    selection = svc.get_selection(curator)
    kept = svc.selection_count(selection)
    assert kept == svc.recount_selection(selection) == len(selected_keys(curator))


def test_shift_click_over_more_rows_than_sqlite_allows_parameters(client_in, curator):
    from catalog.models import DataRow, Dataset

    ds = Dataset.objects.create(name="big")
    DataRow.objects.bulk_create(
        DataRow(dataset=ds, global_key=f"big/{i:06d}.png", file="o.png", thumbnail="t.jpg", width=1, height=1, format="PNG",
                byte_size=1, content_hash="0", metadata={"folder": "big"})
        for i in range(40_000)
    )  # fmt: skip
    first, last = DataRow.objects.order_by("id").first(), DataRow.objects.order_by("id").last()
    response = post(client_in, "/selection/range/", {"row": first.pk, "anchor": last.pk, "selected": "1", "filter_qs": ""})
    assert "(40,000) selected" in response.content.decode()
    assert svc.recount_selection(svc.get_selection(curator)) == 40_000
