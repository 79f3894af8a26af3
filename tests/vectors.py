"""Custom embeddings with known geometry, shared by the search and projector tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from catalog.embedding_service import store_vectors
from catalog.models import DataRow, EmbeddingSpace

# Unit vectors at these angles (degrees): rank order differs from id order on purpose.
ANGLES = [0, 50, 10, 60, 20, 70, 30, 80, 40, 90]


def toy_space(make_rows: Callable[..., list[DataRow]]) -> tuple[EmbeddingSpace, list[DataRow]]:
    """10 rows "even/rN" / "odd/rN" with unit vectors at ANGLES, in space custom:toy."""
    rows = make_rows("toy", [f"{'even' if i % 2 == 0 else 'odd'}/r{i}" for i in range(len(ANGLES))])
    vectors = np.array([[math.cos(math.radians(a)), math.sin(math.radians(a)), 0, 0] for a in ANGLES], dtype=np.float32)
    space = EmbeddingSpace.objects.create(key="custom:toy", kind=EmbeddingSpace.Kind.CUSTOM, dim=4)
    store_vectors(space, [r.pk for r in rows], vectors)
    return space, rows


def cluster_space(make_rows: Callable[..., list[DataRow]], *, per_cluster: int, seed: int) -> Any:
    """Three tight clusters in 16-D: cat, dog and car folders, `per_cluster` rows each."""
    rng = np.random.default_rng(seed)
    centers = {"cat": np.eye(16)[0] * 5, "dog": np.eye(16)[1] * 5, "car": np.eye(16)[2] * 5}
    keys = [f"{name}/{i}" for name in centers for i in range(per_cluster)]
    rows = make_rows("zoo", keys)
    vectors = np.stack([centers[k.split("/")[0]] + 0.1 * rng.standard_normal(16) for k in keys]).astype(np.float32)
    space = EmbeddingSpace.objects.create(key="custom:zoo", kind=EmbeddingSpace.Kind.CUSTOM, dim=16)
    store_vectors(space, [r.pk for r in rows], vectors)
    return space
