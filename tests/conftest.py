"""Shared fixtures: curators, real photos on disk, and a factory for catalog rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from catalog.models import DataRow, Dataset, MetadataField

# scikit-image photos that ship inside the wheel (no network needed).
SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "horse", "page", "hubble_deep_field"]


@pytest.fixture
def curator(db: Any) -> User:
    return User.objects.create_user("curator", "curator@example.com", "curator-pass")


@pytest.fixture
def other_curator(db: Any) -> User:
    return User.objects.create_user("other", "other@example.com", "other-pass")


@pytest.fixture
def client_in(curator: User) -> Client:
    client = Client()
    client.force_login(curator)
    return client


@pytest.fixture
def htmx_headers() -> dict[str, str]:
    return {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="session")
def photos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real photos from scikit-image, in two sub-folders."""
    import numpy as np
    from PIL import Image
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for i, name in enumerate(SKIMAGE_PHOTOS):
        array = getattr(data, name)()
        if array.dtype != np.uint8:
            array = array.astype(np.float64)  # horse() is boolean: no subtraction on bools
            array = (255 * (array - array.min()) / max(1e-9, float(array.max() - array.min()))).astype(np.uint8)
        folder = root / ("people" if name in {"astronaut", "camera", "page"} else "things")
        folder.mkdir(exist_ok=True)
        ext = "jpg" if i % 2 else "png"
        Image.fromarray(array).save(folder / f"{name}.{ext}")
    return root


@pytest.fixture
def make_rows(db: Any) -> Callable[..., list[DataRow]]:
    """Create data rows directly in the database (for filter/selection logic that does not
    need image files). Metadata kinds are declared as the importer would."""

    def factory(
        dataset: str | Dataset, keys: list[str], metadata: list[dict[str, Any]] | None = None, kinds: dict[str, str] | None = None
    ) -> list[DataRow]:
        ds = dataset if isinstance(dataset, Dataset) else Dataset.objects.get_or_create(name=dataset)[0]
        for name, kind in (kinds or {}).items():
            MetadataField.objects.update_or_create(dataset=ds, name=name, defaults={"kind": kind})
        rows = []
        for i, key in enumerate(keys):
            meta = dict(metadata[i]) if metadata else {}
            meta.setdefault("folder", key.rsplit("/", 2)[-2] if "/" in key else "")
            rows.append(
                DataRow.objects.create(
                    dataset=ds,
                    global_key=key,
                    file=f"originals/{i}.png",
                    thumbnail=f"thumbnails/{i}.jpg",
                    width=10,
                    height=10,
                    format="PNG",
                    byte_size=100,
                    content_hash=f"{i:064x}",
                    metadata=meta,
                )
            )
        return rows

    return factory


@pytest.fixture
def demo_project(curator: User) -> Any:
    """The demo's project: ontology Subject (radio) → Animal → Species (radio), Qualities
    (checklist), Notes (text). Created through projects.demo like the demo command does."""
    from projects.demo import create_demo_project

    return create_demo_project(curator)
