"""Projector: 2-D PCA map of an embedding space for the current filter; box and lasso selection."""

from __future__ import annotations

import numpy as np
import pytest
from django.http import QueryDict

from catalog.filters import CatalogFilter
from catalog.models import DataRow
from catalog.projector import Projection, ProjectorError, project, select_box, select_lasso
from tests.vectors import cluster_space


@pytest.fixture
def clusters(make_rows):
    return cluster_space(make_rows, per_cluster=20, seed=3)


def folder_ids(name: str) -> set[int]:
    return set(DataRow.objects.filter(metadata__folder=name).values_list("id", flat=True))


def bounds(projection: Projection, ids: set[int]) -> tuple[float, float, float, float]:
    mask = np.isin(projection.row_ids, list(ids))
    pts = projection.coords[mask]
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def test_pca_map_separates_clusters_and_a_box_selects_one(clusters):
    projection = project(clusters)
    assert projection.method == "pca" and projection.coords.shape == (60, 2)
    assert projection.coords.min() >= 0 and projection.coords.max() <= 1
    x0, y0, x1, y1 = bounds(projection, folder_ids("cat"))
    pad = 0.01
    assert set(select_box(projection, x0=x1 + pad, y0=y1 + pad, x1=x0 - pad, y1=y0 - pad)) == folder_ids("cat")


def test_map_covers_only_the_current_filter(clusters):
    flt = CatalogFilter.from_querydict(QueryDict("f=folder&op=in&v=dog,car"))
    projection = project(clusters, rows=flt.queryset())
    assert set(projection.row_ids.tolist()) == folder_ids("dog") | folder_ids("car")


def test_pca_map_is_deterministic(clusters):
    np.testing.assert_array_equal(project(clusters).coords, project(clusters).coords)


def test_lasso_uses_the_polygon_not_its_bounding_box():
    # An L-shaped lasso: (0.8, 0.8) lies in its bounding box but outside the L.
    projection = Projection(
        "pca", np.array([1, 2, 3, 4]), np.array([[0.1, 0.1], [0.1, 0.8], [0.8, 0.1], [0.8, 0.8]], dtype=np.float32)
    )
    lasso = [(0, 0), (1, 0), (1, 0.5), (0.5, 0.5), (0.5, 1), (0, 1)]
    assert sorted(select_lasso(projection, lasso)) == [1, 2, 3]
    assert sorted(select_box(projection, x0=0, y0=0, x1=1, y1=1)) == [1, 2, 3, 4]
    assert select_box(projection, x0=0.5, y0=0.5, x1=0.6, y1=0.6) == []


def test_lasso_around_a_cluster_selects_exactly_it(clusters):
    projection = project(clusters)
    x0, y0, x1, y1 = bounds(projection, folder_ids("dog"))
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) / 2 + 0.02
    circle = [(cx + r * 1.5 * np.cos(t), cy + r * 1.5 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 24, endpoint=False)]
    assert set(select_lasso(projection, circle)) == folder_ids("dog")


def test_bad_projector_input_is_named(clusters):
    with pytest.raises(ProjectorError, match="Unknown projection method 'tsne'"):
        project(clusters, method="tsne")
    with pytest.raises(ProjectorError, match="at least 3 points"):
        select_lasso(project(clusters), [(0, 0), (1, 1)])
