"""Real Chromium: similarity search from a data row, Select all results, the wizard with that
count; and a box drawn on the projector's canvas adding rows to the selection."""

from __future__ import annotations

import pytest

from catalog import selection as svc
from tests.vectors import toy_space

from .conftest import screenshot, wait_for_every_box

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def toy(make_rows):
    return toy_space(make_rows)


def test_find_similar_select_all_results_and_open_the_wizard(page, live_server, curator, toy):
    _space, rows = toy
    page.goto(live_server.url + f"/rows/{rows[0].pk}/")
    page.get_by_role("link", name="Find similar").click()
    page.wait_for_selector("#ranked-note")
    assert page.locator("#grid .tile").count() == 10

    # Narrow to the top 4 in the search box: HTMX swaps the results and pushes the URL.
    page.locator("#f-top-k").fill("4")
    page.locator("#f-top-k").press("Enter")
    page.wait_for_url("**top_k=4*")
    page.wait_for_function("document.querySelectorAll('#grid .tile').length === 4")
    expected = [rows[i].pk for i in (0, 2, 4, 6)]  # angles 0°, 10°, 20°, 30°
    assert [int(t.get_attribute("data-row-id")) for t in page.locator("#grid .tile").all()] == expected
    assert page.locator("#grid .score").first.inner_text() == "1.000"

    page.get_by_role("button", name="Select all results").click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '4'")
    assert page.locator("#selection-bar .selection-count").inner_text() == "(4) selected"
    wait_for_every_box(page, checked=True)
    assert page.locator("#grid .select-row").count() == 4
    assert set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True)) == set(expected)
    screenshot(page, "search-select-all")

    page.locator("#add-classification").click()
    page.wait_for_url("**/classification/**")
    assert page.locator("#wizard-selected").inner_text() == "4"


def test_box_on_the_projector_canvas_adds_rows_to_the_selection(page, live_server, curator, toy):
    space, rows = toy
    page.goto(live_server.url + f"/projector/?f=folder&op=eq&v=odd&map_space={space.pk}")
    page.wait_for_selector("#projector[data-ready='1']")
    assert "5 points in custom:toy" in page.locator("#map-status").inner_text()
    box = page.locator("#map-canvas").bounding_box()
    # Drag across the whole canvas: every point of the filtered map is inside.
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=4)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '5'")
    selected = set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True))
    assert selected == {r.pk for i, r in enumerate(rows) if i % 2 == 1}
    screenshot(page, "projector-box")
