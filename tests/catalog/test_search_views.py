"""Search in the catalog page: text / "Find similar" / "less like these" inside the current
filter, ranked with scores, paged by rank, and Select all that selects exactly the results.

Custom vectors with known geometry: row i lies at angle ANGLES[i] (degrees) in a plane of a
4-D space, so its cosine similarity to row 0 is cos(ANGLES[i]). Ids and ranks deliberately
disagree (rank by angle: r0, r2, r4, r6, r8, r1, r3, ...), so an id-ordered shortcut fails.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from catalog import selection as svc
from catalog.embedding_service import store_vectors
from catalog.models import DataRow
from tests.vectors import ANGLES, toy_space

ABSENT = "/nonexistent/curio-test/no-such-checkpoint.pt"


@pytest.fixture
def toy(make_rows):
    return toy_space(make_rows)


def by_angle(rows: list[DataRow], anchor: int = 0, only=None) -> list[int]:
    """Row ids in the order cosine similarity to row `anchor` ranks them."""
    chosen = [i for i in range(len(rows)) if only is None or only(i)]
    return [rows[i].pk for i in sorted(chosen, key=lambda i: (abs(ANGLES[i] - ANGLES[anchor]), rows[i].pk))]


def tile_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'class="tile[^"]*" data-row-id="(\d+)"', html)]


def scores(html: str) -> list[float]:
    return [float(x) for x in re.findall(r'<span class="score"[^>]*>([-\d.]+)</span>', html)]


def browse(client: Client, query: str, **extra: str):
    return client.get(reverse("catalog:browse") + "?" + query, **extra)


# --- ranking and the filter --------------------------------------------------------------------
def test_find_similar_ranks_rows_by_cosine_with_a_score_on_each_tile(client_in, toy):
    space, rows = toy
    response = browse(client_in, f"similar={rows[0].pk}&space={space.pk}")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert tile_ids(html) == by_angle(rows)
    expected = [round(math.cos(math.radians(ANGLES[i])), 3) for i in sorted(range(10), key=lambda i: ANGLES[i])]
    assert scores(html) == pytest.approx(expected, abs=1e-3)
    assert "Ranked by similarity in <code>custom:toy</code>" in html
    assert "Select all results" in html


def test_search_ranks_only_rows_matching_the_filter(client_in, toy):
    _space, rows = toy
    # The anchor itself (an even row) is outside the filter, so it is not a result either.
    response = browse(client_in, f"f=folder&op=eq&v=odd&similar={rows[0].pk}")
    assert tile_ids(response.content.decode()) == by_angle(rows, only=lambda i: i % 2 == 1)


def test_top_k_and_score_threshold(client_in, toy):
    _space, rows = toy
    assert tile_ids(browse(client_in, f"similar={rows[0].pk}&top_k=3").content.decode()) == by_angle(rows)[:3]
    # cos 0° = 1, cos 10° = .985, cos 20° = .940 ≥ 0.9 > cos 30° = .866
    html = browse(client_in, f"similar={rows[0].pk}&min_score=0.9").content.decode()
    assert tile_ids(html) == [rows[0].pk, rows[2].pk, rows[4].pk]
    assert min(scores(html)) >= 0.9


def test_less_like_these_drops_negative_anchors_and_pushes_their_side_down(client_in, toy):
    _space, rows = toy
    plain = tile_ids(browse(client_in, f"similar={rows[4].pk}").content.decode())
    html = browse(client_in, f"similar={rows[4].pk}&unlike={rows[9].pk}").content.decode()
    ranked = tile_ids(html)
    assert rows[9].pk not in ranked and len(ranked) == 9
    # Query = unit(20°) − ½·unit(90°) points at about −9.5°: rows 0 (0°) and 2 (10°) now lead,
    # ahead of the anchor itself (20°), which led the plain search.
    assert plain[0] == rows[4].pk
    assert ranked[:3] == [rows[0].pk, rows[2].pk, rows[4].pk]
    assert f"unlike={rows[9].pk}" in html  # kept in the URL state (links, Back, Select all)


def test_ranked_results_page_by_rank_position_and_htmx_returns_only_the_page(client_in, toy, settings, htmx_headers):
    _space, rows = toy
    settings.CURIO_PAGE_SIZE = 4
    first = browse(client_in, f"similar={rows[0].pk}").content.decode()
    assert tile_ids(first) == by_angle(rows)[:4]
    after = re.search(r'hx-get="[^"]*after=([\w-]+)"', first).group(1)
    second = browse(client_in, f"similar={rows[0].pk}&after={after}", **htmx_headers)
    html = second.content.decode()
    assert "<html" not in html and tile_ids(html) == by_angle(rows)[4:8]
    after = re.search(r'hx-get="[^"]*after=([\w-]+)"', html).group(1)
    last = browse(client_in, f"similar={rows[0].pk}&after={after}", **htmx_headers).content.decode()
    assert tile_ids(last) == by_angle(rows)[8:] and "load-more" not in last


def test_filter_form_htmx_request_renders_the_results_region_only(client_in, toy, htmx_headers):
    _space, rows = toy
    response = browse(client_in, f"similar={rows[0].pk}&top_k=2", HTTP_HX_TARGET="results", **htmx_headers)
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<div id="results"')
    assert tile_ids(html) == by_angle(rows)[:2]


def test_count_endpoint_counts_the_ranked_results(client_in, toy):
    _space, rows = toy
    response = client_in.get(reverse("catalog:count") + f"?similar={rows[0].pk}&top_k=7")
    assert "7 rows match the filter" in response.content.decode()


# --- selection -------------------------------------------------------------------------------------
def test_select_all_selects_exactly_the_ranked_results_and_stays_frozen(client_in, curator, toy, htmx_headers, make_rows):
    space, rows = toy
    filter_qs = f"f=folder&op=eq&v=odd&similar={rows[0].pk}&top_k=3"
    response = client_in.post(reverse("catalog:selection_all"), {"filter_qs": filter_qs}, **htmx_headers)
    assert response.status_code == 200 and "<html" not in response.content.decode()
    trigger = json.loads(response["HX-Trigger-After-Swap"])
    assert trigger["selectionChanged"] == {"action": "all", "count": 3}
    expected = set(by_angle(rows, only=lambda i: i % 2 == 1)[:3])
    selection = svc.get_selection(curator)
    assert set(svc.selected_rows(selection).values_list("id", flat=True)) == expected
    assert "3 rows frozen at Select all" in response.content.decode()

    # A new row that would now rank first, in the filter: the frozen selection does not move.
    newcomer = make_rows("toy", ["odd/newcomer"])[0]
    store_vectors(space, [newcomer.pk], np.array([[1, 0, 0, 0]], dtype=np.float32))
    assert set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True)) == expected


def test_shift_click_in_results_follows_the_rank_order_not_ids(client_in, curator, toy, htmx_headers):
    _space, rows = toy
    ranked = by_angle(rows)
    filter_qs = f"similar={rows[0].pk}"
    client_in.post(reverse("catalog:selection_toggle"), {"row": ranked[1]}, **htmx_headers)
    client_in.post(
        reverse("catalog:selection_range"), {"row": ranked[4], "anchor": ranked[1], "filter_qs": filter_qs}, **htmx_headers
    )
    selected = set(svc.selected_rows(svc.get_selection(curator)).values_list("id", flat=True))
    assert selected == set(ranked[1:5])  # rows 2, 4, 6, 8 — not the odd ids between them


def test_find_similar_to_selected_searches_inside_the_filter_on_screen(client_in, curator, toy, htmx_headers):
    _space, rows = toy
    response = client_in.post(
        reverse("catalog:selection_toggle"), {"row": rows[9].pk, "filter_qs": "f=folder&op=eq&v=even"}, **htmx_headers
    )
    html = response.content.decode()
    link = re.search(r'id="find-similar" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    response = client_in.get(link)
    assert response.status_code == 302
    assert f"similar={rows[9].pk}" in response["Location"] and "v=even" in response["Location"]
    ranked = tile_ids(client_in.get(response["Location"]).content.decode())
    assert ranked == by_angle(rows, anchor=9, only=lambda i: i % 2 == 0)


def test_find_similar_with_nothing_selected_says_so(client_in, toy):
    response = client_in.get(reverse("catalog:similar_to_selection"), follow=True)
    assert "Nothing is selected" in response.content.decode()


def test_data_row_page_offers_find_similar_in_its_spaces(client_in, toy):
    space, rows = toy
    html = client_in.get(reverse("catalog:row", args=[rows[3].pk])).content.decode()
    assert f"?similar={rows[3].pk}&amp;space={space.pk}" in html and "custom:toy" in html


# --- errors -----------------------------------------------------------------------------------------
def test_bad_search_input_is_named_escaped_and_the_page_keeps_working(client_in, toy):
    _space, _rows = toy
    html = browse(client_in, "similar=<script>alert(1)</script>&top_k=0").content.decode()
    assert "&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27; in similar is not a row id." in html
    assert "<script>alert(1)" not in html
    assert "Top k &#x27;0&#x27; must be a whole number from 1 to 10000." in html
    assert len(tile_ids(html)) == 10  # the rest of the filter still shows rows
    assert re.search(r'id="select-all"\s+disabled', html)


def test_anchor_without_any_vector_is_explained(client_in, toy, make_rows):
    lonely = make_rows("toy", ["even/lonely"])[0]
    html = browse(client_in, f"similar={lonely.pk}").content.decode()
    assert "has a vector in any embedding space" in html and "import_embeddings" in html


def test_text_search_in_a_custom_space_asks_for_a_clip_space(client_in, toy):
    space, _rows = toy
    html = browse(client_in, f"q=a+cat&space={space.pk}").content.decode()
    assert "Text search needs a CLIP space" in html


def test_text_search_without_clip_weights_shows_what_to_set_and_the_rest_works(client_in, toy, settings):
    settings.CURIO_CLIP_PRETRAINED = ABSENT
    _space, rows = toy
    response = browse(client_in, "q=a+cat+on+a+sofa&f=folder&op=eq&v=odd")
    html = response.content.decode()
    assert response.status_code == 200
    message = re.search(r'<p class="error search-error" role="alert">([^<]+)</p>', html).group(1)
    assert "CLIP is unavailable" in message and "CURIO_CLIP_PRETRAINED" in message and "open_clip.create_model" in message
    assert ABSENT in message
    # The search box still renders with the text, the space picker lists the custom space;
    # no rows pretend to be results, and Select all is off so nothing unintended is selected.
    assert 'value="a cat on a sofa"' in html and "custom:toy (Custom, 4-D)" in html
    assert tile_ids(html) == []
    # Clearing the search brings the filter's rows back.
    assert sorted(tile_ids(browse(client_in, "f=folder&op=eq&v=odd").content.decode())) == sorted(
        r.pk for i, r in enumerate(rows) if i % 2 == 1
    )
    assert re.search(r'id="select-all"\s+disabled', html) and 'class="score"' not in html
    # Similarity search in the custom space works without CLIP.
    assert tile_ids(browse(client_in, f"similar={rows[0].pk}&top_k=2").content.decode()) == by_angle(rows)[:2]


def test_select_all_refuses_a_search_that_cannot_run(client_in, curator, toy, settings, htmx_headers):
    settings.CURIO_CLIP_PRETRAINED = ABSENT
    response = client_in.post(reverse("catalog:selection_all"), {"filter_qs": "q=cat"}, **htmx_headers)
    assert "CLIP is unavailable" in json.loads(response["HX-Trigger-After-Swap"])["curioError"]["message"]
    assert svc.selection_count(svc.get_selection(curator)) == 0


def test_import_command_says_images_were_not_embedded_without_weights(db, photos_dir, settings, capsys):
    settings.CURIO_CLIP_PRETRAINED = ABSENT
    call_command("import_images", str(photos_dir / "people"), dataset="people", no_progress=True)
    out = capsys.readouterr().out
    assert "3 image(s) were not embedded for search: CLIP weights are absent" in out
    assert "CURIO_CLIP_PRETRAINED" in out and "manage.py embed" in out


# --- access -----------------------------------------------------------------------------------------
def test_search_pages_need_login(toy):
    _space, rows = toy
    anonymous = Client()
    for url in (reverse("catalog:browse") + f"?similar={rows[0].pk}", reverse("catalog:similar_to_selection")):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_select_all_of_results_needs_csrf(curator, toy):
    _space, rows = toy
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    response = client.post(reverse("catalog:selection_all"), {"filter_qs": f"similar={rows[0].pk}"})
    assert response.status_code == 403
    assert svc.selection_count(svc.get_selection(curator)) == 0
