"""Vector search on custom embeddings with known geometry (no CLIP needed)."""

from __future__ import annotations

import numpy as np
import pytest
from django.http import QueryDict

from catalog.embedding_service import store_vectors
from catalog.filters import CatalogFilter
from catalog.models import DataRow, EmbeddingSpace
from catalog.vector_search import SearchError, search, search_similar, text_query_vector

# Unit directions are easy to reason about: the cosine of two rows is their dot product
# after normalization.
GEOMETRY = {
    "cat/1": [1, 0, 0, 0],
    "cat/2": [0.9, 0.1, 0, 0],
    "cat/3": [1, 0.5, 0, 0],
    "cat/4": [1, 0, 0.6, 0],
    "dog/1": [0, 1, 0, 0],
    "dog/2": [0.2, 1, 0, 0],
    "car/1": [0, 0, 0, 1],
}


def cos(a: list[float], b: list[float]) -> float:
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    return float(a_ @ b_ / np.linalg.norm(a_) / np.linalg.norm(b_))


@pytest.fixture
def space(make_rows):
    rows = make_rows("pets", list(GEOMETRY))
    space = EmbeddingSpace.objects.create(key="custom:toy", kind=EmbeddingSpace.Kind.CUSTOM, model_name="toy", dim=4)
    store_vectors(space, [r.pk for r in rows], np.asarray(list(GEOMETRY.values()), dtype=np.float32))
    return space


def ids(*keys: str) -> list[int]:
    by_key = dict(DataRow.objects.values_list("global_key", "id"))
    return [by_key[k] for k in keys]


def keys(row_ids: list[int]) -> list[str]:
    by_id = dict(DataRow.objects.values_list("id", "global_key"))
    return [by_id[i] for i in row_ids]


def test_rows_are_ranked_by_cosine_similarity_with_scores(space):
    result = search(space, np.array([1, 0, 0, 0], dtype=np.float32), k=4)
    assert keys(result.row_ids) == ["cat/1", "cat/2", "cat/3", "cat/4"]
    expected = [cos([1, 0, 0, 0], GEOMETRY[k]) for k in ["cat/1", "cat/2", "cat/3", "cat/4"]]
    assert result.scores == pytest.approx(expected, abs=1e-6)


def test_search_ranks_inside_the_current_filter(space):
    # The filter narrows first: the best dog for a "cat" query is still found with k=1,
    # instead of a global top-1 (cat/1) filtered away to nothing.
    flt = CatalogFilter.from_querydict(QueryDict("f=folder&op=eq&v=dog"))
    result = search(space, np.array([1, 0, 0, 0], dtype=np.float32), rows=flt.queryset(), k=1)
    assert keys(result.row_ids) == ["dog/2"]


def test_threshold_returns_every_row_at_or_above_the_score(space):
    result = search(space, np.array([1, 0, 0, 0], dtype=np.float32), threshold=0.85)
    assert keys(result.row_ids) == ["cat/1", "cat/2", "cat/3", "cat/4"]
    assert min(result.scores) >= 0.85
    assert len(search(space, np.array([1, 0, 0, 0], dtype=np.float32), threshold=0.99)) == 2


def test_negative_anchors_push_rows_like_them_down_and_out(space):
    plain = search_similar(space, anchor_ids=ids("cat/1"), k=10)
    assert keys(plain.row_ids).index("cat/3") < keys(plain.row_ids).index("cat/4")
    unlike_dogs = search_similar(space, anchor_ids=ids("cat/1"), negative_ids=ids("dog/1"), k=10)
    ranked = keys(unlike_dogs.row_ids)
    # cat/3 leans towards dogs, cat/4 does not: with "less like dog/1" they swap.
    assert ranked.index("cat/4") < ranked.index("cat/3")
    assert "dog/1" not in ranked
    assert ranked[-1] == "dog/2"


def test_several_anchors_search_around_their_mean(space):
    result = search_similar(space, anchor_ids=ids("cat/1", "dog/1"), k=3)
    # Halfway between cats and dogs, cat/3 ([1, .5]) is the closest row to [1, 1].
    assert keys(result.row_ids)[0] == "cat/3"


def test_anchor_without_vector_is_reported_and_all_missing_is_an_error(space, make_rows):
    (bare,) = make_rows("pets", ["cat/new"])
    result = search_similar(space, anchor_ids=[*ids("cat/1"), bare.pk], k=2)
    assert result.missing_anchor_ids == [bare.pk]
    with pytest.raises(SearchError, match="None of the 1 anchor rows has a vector"):
        search_similar(space, anchor_ids=[bare.pk], k=2)


def test_new_vectors_are_seen_without_restart(space, make_rows):
    query = np.array([0, 0, 1, 0], dtype=np.float32)
    assert keys(search(space, query, k=1).row_ids) == ["cat/4"]
    (plane,) = make_rows("pets", ["plane/1"])
    store_vectors(space, [plane.pk], np.array([[0, 0, 1, 0]], dtype=np.float32))
    assert keys(search(space, query, k=1).row_ids) == ["plane/1"]


def test_deleted_rows_never_come_back(space):
    DataRow.objects.filter(global_key="cat/1").delete()
    result = search(space, np.array([1, 0, 0, 0], dtype=np.float32), k=2)
    assert keys(result.row_ids) == ["cat/2", "cat/3"]


def test_text_search_needs_a_clip_space(space):
    with pytest.raises(SearchError, match="Text search needs a CLIP space"):
        text_query_vector(space, "a cat")


def test_wrong_query_dimensions_are_refused(space):
    with pytest.raises(SearchError, match="3 dimensions; the space custom:toy has 4"):
        search(space, np.ones(3, dtype=np.float32))


def test_quantized_scan_finds_the_exact_top_rows(make_rows, settings):
    """The 8-bit path used for large spaces agrees with the exact ranking at the top,
    with and without a filter."""
    rng = np.random.default_rng(7)
    n, dim = 3000, 64
    rows = make_rows("many", [f"set{i % 10}/{i}" for i in range(n)])
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    space = EmbeddingSpace.objects.create(key="custom:many", kind=EmbeddingSpace.Kind.CUSTOM, dim=dim)
    store_vectors(space, [r.pk for r in rows], vectors)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row_ids = np.array([r.pk for r in rows])
    settings.CURIO_VECTOR_EXACT_LIMIT = 100
    for q in rng.standard_normal((5, dim)).astype(np.float32):
        exact = row_ids[np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]]
        assert search(space, q, k=10).row_ids == exact.tolist()
        in_set3 = np.array([r.global_key.startswith("set3/") for r in rows])
        exact_f = row_ids[in_set3][np.argsort(-(unit[in_set3] @ (q / np.linalg.norm(q))))[:10]]
        flt = CatalogFilter.from_querydict(QueryDict("f=folder&op=eq&v=set3"))
        assert search(space, q, rows=flt.queryset(), k=10).row_ids == exact_f.tolist()
