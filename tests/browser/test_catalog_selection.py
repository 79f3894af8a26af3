"""What only a browser shows: shift-click ranges, Select all + un-tick, the live count."""

from __future__ import annotations

import pytest

from catalog import selection as svc

from .conftest import screenshot, wait_for_every_box

pytestmark = pytest.mark.django_db(transaction=True)


def count_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#selection-bar .selection-count").inner_text()


def test_shift_click_select_all_and_untick(page, live_server, curator, make_rows, settings):
    settings.CURIO_PAGE_SIZE = 12
    rows = make_rows("browser", [f"{'animals' if i % 2 else 'food'}/img-{i:02d}.png" for i in range(20)])
    newest_first = list(reversed(rows))
    page.set_viewport_size({"width": 1100, "height": 500})  # the second page starts below the fold
    page.goto(live_server.url + "/")
    tiles = page.locator("#grid .tile")
    assert tiles.count() == 12

    # Click the 2nd tile, shift-click the 6th: five rows selected, in the browser and on the server.
    page.locator(f"#sel-{newest_first[1].pk}").click()
    page.locator(f"#sel-{newest_first[5].pk}").click(modifiers=["Shift"])
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '5'")
    assert count_text(page) == "(5) selected"
    checked = [t.get_attribute("data-row-id") for t in tiles.all() if t.locator(".select-row").is_checked()]
    assert checked == [str(r.pk) for r in newest_first[1:6]]

    # A range across rows loaded by scrolling: scroll down (infinite scroll loads the next
    # page), shift-click a row on it.
    page.locator("#load-more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#grid .tile').length === 20")
    page.locator(f"#sel-{newest_first[15].pk}").click(modifiers=["Shift"])
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '15'")
    selected = set(svc.selected_rows(svc.get_selection(curator)).values_list("pk", flat=True))
    assert selected == {r.pk for r in newest_first[1:16]}
    checked = [t.get_attribute("data-row-id") for t in tiles.all() if t.locator(".select-row").is_checked()]
    assert checked == [str(r.pk) for r in newest_first[1:16]]
    screenshot(page, "catalog-shift-click")

    # Filter to one folder, Select all, un-tick two: the exact count, including unloaded rows.
    page.locator("#f-key-op").select_option("startswith")
    page.locator("#f-key").fill("animals/")
    page.locator("#f-key").press("Enter")
    page.wait_for_url("**key=animals*")
    page.wait_for_selector("#match-count:has-text('10 rows match')")
    page.locator("#select-all").click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '10'")
    wait_for_every_box(page, checked=True)
    animals = [r for r in newest_first if r.global_key.startswith("animals/")]
    page.locator(f"#sel-{animals[0].pk}").click()
    page.locator(f"#sel-{animals[2].pk}").click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '8'")
    assert count_text(page) == "(8) selected"
    selected = set(svc.selected_rows(svc.get_selection(curator)).values_list("pk", flat=True))
    assert selected == {r.pk for r in animals} - {animals[0].pk, animals[2].pk}

    # Reload: the selection is kept on the server.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.reload()
    assert count_text(page) == "(8) selected"
    assert not page.locator(f"#sel-{animals[0].pk}").is_checked()
    assert page.locator(f"#sel-{animals[1].pk}").is_checked()
    screenshot(page, "catalog")

    # Clear.
    page.locator("#clear-selection").click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '0'")
    wait_for_every_box(page, checked=False)


def test_a_grid_that_was_loading_when_select_all_landed_does_not_untick_the_boxes(page, live_server, curator, make_rows):
    """The filter's response is rendered by the server, then held back by the browser's
    network layer until Select all (on the grid still on screen) has finished: that grid was
    drawn with the old selection. The boxes must end up ticked, as the server holds them."""
    rows = make_rows("held", [f"{'animals' if i % 2 else 'food'}/img-{i:02d}.png" for i in range(10)])
    page.goto(live_server.url + "/")
    page.wait_for_selector("#match-count:has-text('10 rows match')")
    held = []

    def hold(route):  # type: ignore[no-untyped-def]
        # Only the first: a later one (the refetch) goes through.
        if route.request.headers.get("hx-target") == "results" and "key=animals" in route.request.url and not held:
            held.append((route, route.fetch()))  # rendered now, before Select all
        else:
            route.continue_()

    page.route("**/*", hold)
    # One request only (typing would add the text box's own delayed one, which would then
    # land after Select all and hide the race).
    page.evaluate("document.getElementById('f-key').value = 'animals'; document.getElementById('filter-form').requestSubmit()")
    for _ in range(100):  # the handler runs as Playwright dispatches events
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the filter's request was not seen"
    page.locator("#select-all").click()
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '10'")
    route, response = held[0]
    route.fulfill(response=response)
    page.wait_for_selector("#match-count:has-text('5 rows match')")
    wait_for_every_box(page, checked=True)
    assert page.locator("#grid .select-row").count() == 5
    assert svc.selection_count(svc.get_selection(curator)) == len(rows)
    page.unroute("**/*")


def test_select_all_answered_after_its_grid_was_replaced_still_ticks_the_new_grid(page, live_server, curator, make_rows):
    """Select all is sent from a grid that a filter response then replaces before Select
    all's own response arrives: its event must still reach the page and tick the new tiles
    (which the server drew before Select all)."""
    rows = make_rows("swapped", [f"{'animals' if i % 2 else 'food'}/img-{i:02d}.png" for i in range(10)])
    page.goto(live_server.url + "/")
    page.wait_for_selector("#match-count:has-text('10 rows match')")
    held: dict[str, tuple] = {}

    def hold(route):  # type: ignore[no-untyped-def]
        request = route.request
        if request.headers.get("hx-target") == "results" and "key=animals" in request.url and "grid" not in held:
            held["grid"] = (route, route.fetch())
        elif request.url.endswith("/selection/all/") and "all" not in held:
            held["all"] = (route, route.fetch())
        else:
            route.continue_()

    def wait_held(name: str) -> None:
        for _ in range(100):
            if name in held:
                return
            page.wait_for_timeout(50)
        raise AssertionError(f"the {name} request was not seen")

    page.route("**/*", hold)
    page.evaluate("document.getElementById('f-key').value = 'animals'; document.getElementById('filter-form').requestSubmit()")
    wait_held("grid")  # drawn with nothing selected
    page.locator("#select-all").click()
    wait_held("all")  # the selection is stored; its answer waits
    route, response = held["grid"]
    route.fulfill(response=response)  # the stale grid replaces the one Select all came from
    page.wait_for_selector("#match-count:has-text('5 rows match')")
    route, response = held["all"]
    route.fulfill(response=response)
    page.wait_for_function("document.querySelector('#selection-bar .selection-count').dataset.count === '10'")
    wait_for_every_box(page, checked=True)
    assert svc.selection_count(svc.get_selection(curator)) == len(rows)
