"""Test settings: only what tests need differs from curio.settings."""

import os
import tempfile
from pathlib import Path

from curio.settings import *  # noqa: F403
from curio.settings import Q_CLUSTER

# Each test run writes originals and thumbnails to a throw-away folder.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="curio-test-media-"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Unit tests run django-q2 tasks inline; the integration tests start a real qcluster.
# A queue of this run's own, so a worker started by another test run on the same Redis
# never takes this run's jobs (tests/classification/test_qcluster.py passes it on).
Q_CLUSTER = {**Q_CLUSTER, "sync": True, "name": f"curio-test-{os.getpid()}"}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not :memory:, so a real qcluster process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.mkdtemp(prefix="curio-test-db-")) / "test.sqlite3")}  # noqa: F405
else:
    # Several test runs may share one PostgreSQL server (developers' machines, CI's two
    # passes): a per-process test database keeps them from dropping each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_curio_{os.getpid()}"}  # noqa: F405
