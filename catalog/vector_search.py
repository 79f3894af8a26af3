"""Vector search over one embedding space, combined with the catalog filter in one pass.

Every space's vectors are held in process memory (float32, L2-normalized, ordered by row
id) and reloaded only when `EmbeddingSpace.vectors_version` moves, which every writer in
embedding_service bumps. The current filter arrives as a DataRow queryset (or ids); it
becomes the set of positions to scan, so the search ranks *inside* the filter instead of
filtering a global top-k afterwards (which would come back short).

Small candidate sets (≤ CURIO_VECTOR_EXACT_LIMIT) are scanned exactly. Larger ones use
faiss's 8-bit scalar-quantized flat scan, split into one shard per core and searched in
parallel, over a shortlist several times the requested size, which is then re-ranked with
the exact float32 vectors: a quarter of the memory traffic of a float32 scan, with the
exact ordering at the top (bench/search.py prints the recall against exact search).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from .clip import get_encoder
from .models import DataRow, Embedding, EmbeddingSpace

# Shortlist for the 8-bit scan = max(SHORTLIST_FACTOR * wanted, SHORTLIST_MIN), then exact re-rank.
SHORTLIST_FACTOR = 4
SHORTLIST_MIN = 200
# A threshold search returns at most this many rows (a list a curator can still page through).
DEFAULT_MAX_RESULTS = 10_000
# Weight of the "less like these" anchors against the positive ones (Rocchio-style query).
NEGATIVE_WEIGHT = 0.5


class SearchError(ValueError):
    """A search that cannot run as asked (wrong space, anchors without vectors ...)."""


@dataclass
class SearchResult:
    row_ids: list[int]
    scores: list[float]
    # Anchors given by the caller that have no vector in this space (reported, not fatal).
    missing_anchor_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_ids)


def _normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


class SpaceVectors:
    """One space's vectors in memory, plus the lazily built quantized shards."""

    def __init__(self, space_id: int, version: tuple[int, str, str], row_ids: np.ndarray, vectors: np.ndarray) -> None:
        self.space_id = space_id
        self.version = version
        self.row_ids = row_ids  # int64, ascending
        self.vectors = vectors  # float32 (n, dim), unit length
        self._shards: list[tuple[int, int, Any]] | None = None
        self._shard_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.row_ids)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the given row ids that have a vector (ids without one are dropped)."""
        if not len(self.row_ids) or not len(ids):
            return np.empty(0, dtype=np.int64)
        pos = np.searchsorted(self.row_ids, ids)
        pos = np.clip(pos, 0, len(self.row_ids) - 1)
        return np.unique(pos[self.row_ids[pos] == ids])

    def shards(self) -> list[tuple[int, int, Any]]:
        """(start, end, faiss 8-bit index) per core; bounds are multiples of 8 so one packed
        bitmap of the filter can be sliced per shard."""
        with self._shard_lock:
            if self._shards is None:
                import faiss

                n, dim = self.vectors.shape
                count = max(1, min(os.cpu_count() or 1, n // 10_000 or 1))
                step = -(-n // count)
                step += -step % 8
                sample = self.vectors[np.linspace(0, n - 1, min(n, 100_000)).astype(np.int64)]
                shards = []
                for start in range(0, n, step):
                    end = min(n, start + step)
                    index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
                    index.train(sample)
                    index.add(self.vectors[start:end])
                    shards.append((start, end, index))
                self._shards = shards
            return self._shards


_cache: dict[int, SpaceVectors] = {}
_cache_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _search_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        import faiss

        # One OpenMP thread per shard search (set per worker thread; OpenMP's thread count is
        # per calling thread), so the shards run side by side instead of oversubscribing cores.
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, initializer=faiss.omp_set_num_threads, initargs=(1,))
    return _pool


def load_space(space: EmbeddingSpace) -> SpaceVectors:
    """The space's vectors, from the cache unless they changed since it was filled."""
    found = EmbeddingSpace.objects.filter(pk=space.pk).values_list("vectors_version", "key", "created_at").first()
    if found is None:
        raise SearchError(f"The embedding space {space.key!r} no longer exists.")
    # Key and creation time too: a deleted space's id can be reused by a new one.
    version = (found[0], found[1], found[2].isoformat())
    with _cache_lock:
        cached = _cache.get(space.pk)
        if cached is not None and cached.version == version:
            return cached
        # The version is read before the rows: a write racing this load leaves a newer
        # version in the database, so the next search reloads.
        ids: list[int] = []
        chunks: list[bytes] = []
        rows = Embedding.objects.filter(space_id=space.pk).order_by("data_row_id").values_list("data_row_id", "vector")
        for row_id, vector in rows.iterator(chunk_size=10_000):
            ids.append(row_id)
            chunks.append(bytes(vector))
        matrix = (
            np.frombuffer(b"".join(chunks), dtype=np.float32).reshape(len(ids), space.dim) if ids else np.empty((0, space.dim))
        )
        loaded = SpaceVectors(space.pk, version, np.asarray(ids, dtype=np.int64), _normalize(matrix))
        _cache[space.pk] = loaded
        return loaded


def forget_space(space_id: int) -> None:
    with _cache_lock:
        _cache.pop(space_id, None)


def _row_ids(rows: QuerySet[DataRow] | Iterable[int] | None) -> np.ndarray | None:
    if rows is None:
        return None
    if isinstance(rows, QuerySet):
        rows = rows.values_list("id", flat=True)
    return np.sort(np.fromiter(rows, dtype=np.int64))


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` best scores, best first (ties: lower index first)."""
    if count >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, count - 1)[:count]
    return part[np.argsort(-scores[part], kind="stable")]


def rank(
    sv: SpaceVectors, query: np.ndarray, *, positions: np.ndarray | None, limit: int, threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, scores) of the best `limit` vectors among `positions` (None: all), best
    first, keeping only scores ≥ threshold when one is given."""
    q = _normalize(np.asarray(query, dtype=np.float32).reshape(-1))
    candidates = len(sv) if positions is None else len(positions)
    if candidates == 0 or limit <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if candidates <= int(settings.CURIO_VECTOR_EXACT_LIMIT):
        pos = np.arange(len(sv)) if positions is None else positions
        scores = sv.vectors[pos] @ q
        order = _top(scores, limit)
        pos, scores = pos[order], scores[order]
    else:
        pos, scores = _quantized_rank(sv, q, positions=positions, limit=limit)
    if threshold is not None:
        keep = scores >= threshold
        pos, scores = pos[keep], scores[keep]
    return pos, scores


def _quantized_rank(
    sv: SpaceVectors, q: np.ndarray, *, positions: np.ndarray | None, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    shortlist = max(SHORTLIST_FACTOR * limit, SHORTLIST_MIN)
    bitmap = None
    if positions is not None:
        mask = np.zeros(len(sv), dtype=bool)
        mask[positions] = True
        bitmap = np.packbits(mask, bitorder="little")
    query = q.reshape(1, -1)

    def search_shard(shard: tuple[int, int, Any]) -> np.ndarray:
        start, end, index = shard
        params = None
        if bitmap is not None:
            local = np.ascontiguousarray(bitmap[start // 8 : -(-end // 8)])
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(end - start, faiss.swig_ptr(local)))  # type: ignore[call-arg]
            _, found = index.search(query, min(shortlist, end - start), params=params)
        else:
            _, found = index.search(query, min(shortlist, end - start))
        found = found[0]
        return found[found >= 0] + start

    found = np.concatenate(list(_search_pool().map(search_shard, sv.shards())))
    scores = sv.vectors[found] @ q  # exact re-rank of the shortlist
    order = _top(scores, limit)
    return found[order], scores[order]


def search(
    space: EmbeddingSpace,
    query: np.ndarray,
    *,
    rows: QuerySet[DataRow] | Iterable[int] | None = None,
    k: int = 100,
    threshold: float | None = None,
    max_results: int = DEFAULT_MAX_RESULTS,
    exclude_ids: Sequence[int] = (),
) -> SearchResult:
    """Rows of `rows` (the current filter; None: every row with a vector) ranked by cosine
    similarity to `query`: the top `k`, or with `threshold` every row scoring at least that
    (at most `max_results`)."""
    if query.shape[-1] != space.dim:
        raise SearchError(f"The query has {query.shape[-1]} dimensions; the space {space.key} has {space.dim}.")
    for _attempt in range(2):
        sv = load_space(space)
        ids = _row_ids(rows)
        positions = None if ids is None else sv.positions_of(ids)
        if len(exclude_ids):
            drop = sv.positions_of(np.sort(np.asarray(exclude_ids, dtype=np.int64)))
            base = np.arange(len(sv)) if positions is None else positions
            positions = np.setdiff1d(base, drop, assume_unique=True)
        limit = k if threshold is None else max_results
        pos, scores = rank(sv, query, positions=positions, limit=limit, threshold=threshold)
        result_ids = sv.row_ids[pos].tolist()
        # A deleted row takes its vectors with it (cascade) without bumping the version:
        # drop it here and reload, so a result never names a row that is gone.
        alive = set(DataRow.objects.filter(id__in=result_ids).values_list("id", flat=True))
        if len(alive) == len(result_ids):
            return SearchResult(result_ids, [float(s) for s in scores])
        forget_space(space.pk)
    keep = [i for i, rid in enumerate(result_ids) if rid in alive]
    return SearchResult([result_ids[i] for i in keep], [float(scores[i]) for i in keep])


# --- query vectors ------------------------------------------------------------------------------
def text_query_vector(space: EmbeddingSpace, text: str) -> np.ndarray:
    """CLIP text vector for `text`, in `space` (which must be the configured CLIP model's).

    Raises ClipUnavailable (weights missing) or SearchError (a custom space, or vectors made
    with another CLIP model than the one configured now)."""
    if not text.strip():
        raise SearchError("The search text is empty.")
    if space.kind != EmbeddingSpace.Kind.CLIP:
        raise SearchError(f"Text search needs a CLIP space; {space.key} holds custom vectors. Use “Find similar” there.")
    encoder = get_encoder()
    if encoder.space_key != space.key:
        raise SearchError(
            f"The vectors of {space.key} were made by another model than the configured one ({encoder.space_key}); "
            "embed the catalog with the configured model or set CURIO_CLIP_MODEL / CURIO_CLIP_PRETRAINED back."
        )
    return encoder.encode_text([text])[0]


def similar_query_vector(
    space: EmbeddingSpace, *, anchor_ids: Sequence[int], negative_ids: Sequence[int] = ()
) -> tuple[np.ndarray, list[int]]:
    """Query for "more like these (less like those)": the mean direction of the anchors minus
    NEGATIVE_WEIGHT times the mean direction of the negative anchors. Returns the query and
    the anchor ids that have no vector in this space."""
    sv = load_space(space)

    def vectors_of(ids: Sequence[int]) -> tuple[np.ndarray, list[int]]:
        wanted = np.asarray(sorted(set(ids)), dtype=np.int64)
        pos = sv.positions_of(wanted)
        present = set(sv.row_ids[pos].tolist())
        return sv.vectors[pos], [int(i) for i in wanted if int(i) not in present]

    positive, missing = vectors_of(anchor_ids)
    if not len(positive):
        raise SearchError(f"None of the {len(set(anchor_ids))} anchor rows has a vector in {space.key}; embed them first.")
    query = _normalize(positive.mean(axis=0))
    if negative_ids:
        negative, missing_neg = vectors_of(negative_ids)
        missing += missing_neg
        if len(negative):
            query = query - NEGATIVE_WEIGHT * _normalize(negative.mean(axis=0))
    return _normalize(query), missing


def search_text(space: EmbeddingSpace, text: str, **options: Any) -> SearchResult:
    return search(space, text_query_vector(space, text), **options)


def search_similar(
    space: EmbeddingSpace, *, anchor_ids: Sequence[int], negative_ids: Sequence[int] = (), **options: Any
) -> SearchResult:
    """Rows like the anchors (and unlike the negative anchors, which are left out of the result)."""
    query, missing = similar_query_vector(space, anchor_ids=anchor_ids, negative_ids=negative_ids)
    exclude = list(options.pop("exclude_ids", ())) + list(negative_ids)
    result = search(space, query, exclude_ids=exclude, **options)
    result.missing_anchor_ids = missing
    return result
