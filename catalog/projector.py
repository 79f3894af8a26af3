"""Projector backend: a 2-D map of an embedding space for the current filter, and the
selection math for a box or a lasso drawn on it.

PCA (numpy SVD) by default; UMAP when the `umap-learn` package is installed and asked for.
Coordinates are scaled into [0, 1] × [0, 1] so the canvas and the selection share one frame.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from .models import DataRow, EmbeddingSpace
from .vector_search import _row_ids, load_space

METHODS = ("pca", "umap")
# Sets larger than this are sampled (evenly, by id) for fitting PCA; every row is still projected.
PCA_FIT_SAMPLE = 50_000


class ProjectorError(ValueError):
    pass


@dataclass
class Projection:
    method: str
    row_ids: np.ndarray  # int64, ascending
    coords: np.ndarray  # float32 (n, 2) in [0, 1]

    def as_points(self) -> list[dict[str, float | int]]:
        return [
            {"id": int(i), "x": round(float(x), 5), "y": round(float(y), 5)}
            for i, (x, y) in zip(self.row_ids, self.coords, strict=True)
        ]


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def _scale_unit(coords: np.ndarray) -> np.ndarray:
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.where(hi - lo == 0, 1, hi - lo)
    return ((coords - lo) / span).astype(np.float32)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components (signs fixed so the map does not flip between runs)."""
    if len(vectors) == 0:
        return np.empty((0, 2), dtype=np.float32)
    data = vectors.astype(np.float64)
    fit = data if len(data) <= PCA_FIT_SAMPLE else data[np.linspace(0, len(data) - 1, PCA_FIT_SAMPLE).astype(np.int64)]
    mean = fit.mean(axis=0)
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:  # one row or one dimension: pad with a zero axis
        components = np.vstack([components, np.zeros((2 - components.shape[0], data.shape[1]))])
    # Deterministic orientation: the largest-magnitude loading of each axis is positive.
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1, signs)[:, None]
    return ((data - mean) @ components.T).astype(np.float32)


def project(
    space: EmbeddingSpace, *, rows: QuerySet[DataRow] | Iterable[int] | None = None, method: str = "pca", seed: int = 0
) -> Projection:
    """2-D coordinates of the filter's rows that have a vector in `space`."""
    if method not in METHODS:
        raise ProjectorError(f"Unknown projection method {method!r}; use one of {', '.join(METHODS)}.")
    if method == "umap" and not umap_available():
        raise ProjectorError("UMAP is not installed (pip install umap-learn); PCA works without it.")
    sv = load_space(space)
    ids = _row_ids(rows)
    positions = np.arange(len(sv)) if ids is None else sv.positions_of(ids)
    vectors = sv.vectors[positions]
    if method == "umap" and len(vectors) > 2:
        import umap

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(vectors) - 1))
        coords = np.asarray(reducer.fit_transform(vectors), dtype=np.float32)
    else:
        coords = pca_2d(vectors)
    return Projection(method, sv.row_ids[positions], _scale_unit(coords) if len(coords) else coords)


# --- selection on the map ---------------------------------------------------------------------------
def select_box(projection: Projection, *, x0: float, y0: float, x1: float, y1: float) -> list[int]:
    """Row ids inside the rectangle spanned by two corners (any order, edges included)."""
    xs, ys = projection.coords[:, 0], projection.coords[:, 1]
    lo_x, hi_x = sorted((x0, x1))
    lo_y, hi_y = sorted((y0, y1))
    inside = (xs >= lo_x) & (xs <= hi_x) & (ys >= lo_y) & (ys <= hi_y)
    return projection.row_ids[inside].tolist()


def points_in_polygon(points: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule (ray casting to +x), vectorised over the points: a self-crossing lasso
    selects what a curator sees enclosed, like canvas's own `isPointInPath` default."""
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise ProjectorError("A lasso needs at least 3 points (x, y).")
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    inside = np.zeros(len(points), dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < x_at)
        xj, yj = xi, yi
    return inside


def select_lasso(projection: Projection, polygon: Sequence[tuple[float, float]]) -> list[int]:
    """Row ids whose point lies inside the lasso polygon."""
    return projection.row_ids[points_in_polygon(projection.coords, polygon)].tolist()


# --- maps for the projector page: computed once per space + filter, cached on disk ----------------
# The page asks for the map of (space, filter); small maps are computed in the request, larger
# ones by a django-q2 job whose result is cached in a file every web worker can read (the job
# runs in another process, so a per-process cache would never see it).
def background_limit() -> int:
    """Maps of more points than this are computed in a background job."""
    return int(getattr(settings, "CURIO_PROJECTOR_SYNC_LIMIT", 20_000))


def _map_dir() -> Path:
    return Path(getattr(settings, "CURIO_PROJECTOR_CACHE_DIR", "") or Path(settings.VAR_DIR) / "projector")


def map_key(space: EmbeddingSpace, filter_query: str, method: str) -> str:
    """Changes whenever the space's vectors do (vectors_version), so a cached map is never stale
    with respect to the vectors; the filter is part of the key as its canonical query string."""
    version = EmbeddingSpace.objects.filter(pk=space.pk).values_list("vectors_version", flat=True).first()
    raw = f"{space.pk}|{space.key}|{space.created_at.isoformat()}|{version}|{method}|{filter_query}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _rows_for(filter_query: str) -> QuerySet[DataRow] | None:
    from django.http import QueryDict

    from .filters import CatalogFilter

    flt = CatalogFilter.from_querydict(QueryDict(filter_query))
    return None if flt.is_empty else flt.queryset()


def cached_map(key: str) -> Projection | None:
    path = _map_dir() / f"{key}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return Projection(str(data["method"]), data["row_ids"], data["coords"])


def map_job_state(key: str) -> dict[str, Any] | None:
    """{"status": "computing" | "failed", "message", "started"} of the map's job, if one ran."""
    path = _map_dir() / f"{key}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _write_state(key: str, state: dict[str, Any]) -> None:
    _map_dir().mkdir(parents=True, exist_ok=True)
    tmp = _map_dir() / f"{key}.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, _map_dir() / f"{key}.json")


def compute_map(*, space_id: int, filter_query: str, method: str = "pca") -> int:
    """Compute the map of (space, filter) and cache it; the task behind start_map_job.
    Records its own failure (hooks can be lost), returns the number of points."""
    space = EmbeddingSpace.objects.get(pk=space_id)
    key = map_key(space, filter_query, method)
    try:
        projection = project(space, rows=_rows_for(filter_query), method=method)
    except Exception as exc:
        _write_state(key, {"status": "failed", "message": f"{type(exc).__name__}: {exc}", "started": time.time()})
        raise
    _map_dir().mkdir(parents=True, exist_ok=True)
    tmp = _map_dir() / f"{key}.tmp.npz"
    np.savez(tmp, method=np.array(projection.method), row_ids=projection.row_ids, coords=projection.coords)
    os.replace(tmp, _map_dir() / f"{key}.npz")  # atomic: a reader sees the whole map or none
    (_map_dir() / f"{key}.json").unlink(missing_ok=True)
    return len(projection.row_ids)


def start_map_job(space: EmbeddingSpace, filter_query: str, method: str = "pca") -> str:
    """Queue the map's computation unless a job for it is already running (or died long ago)."""
    from django_q.tasks import async_task

    key = map_key(space, filter_query, method)
    state = map_job_state(key)
    if state and state.get("status") == "computing" and time.time() - float(state.get("started", 0)) < 3600:
        return key
    _write_state(key, {"status": "computing", "started": time.time()})
    async_task("catalog.tasks.compute_projector_map", space.pk, filter_query, method, task_name=f"projector-{key[:12]}")
    return key
