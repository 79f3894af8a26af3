"""Set up the demo: a curator, the real scikit-image photos (and some openclipart drawings
when Debian's openclipart-png is installed) as datasets, and a sample project.

Idempotent: a second run imports nothing twice and only resets the curator's password.
"""

from __future__ import annotations

import csv
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser
from PIL import Image

from catalog.importer import import_folder

# Photos bundled in the scikit-image wheel (no download); subject and a few facts for the manifest.
PHOTOS: dict[str, dict[str, str]] = {
    "astronaut": {"subject": "person", "scene": "studio", "taken": "1984-02-07"},
    "camera": {"subject": "person", "scene": "outdoor", "taken": "1978-01-01"},
    "chelsea": {"subject": "animal", "scene": "indoor", "taken": "2012-03-15"},
    "coffee": {"subject": "food", "scene": "indoor", "taken": "2014-05-02"},
    "rocket": {"subject": "vehicle", "scene": "outdoor", "taken": "2011-05-16"},
    "horse": {"subject": "animal", "scene": "drawing", "taken": "2008-01-01"},
    "coins": {"subject": "object", "scene": "studio", "taken": "2000-01-01"},
    "moon": {"subject": "space", "scene": "sky", "taken": "1999-01-01"},
    "hubble_deep_field": {"subject": "space", "scene": "sky", "taken": "1995-12-18"},
    "page": {"subject": "text", "scene": "document", "taken": "2004-01-01"},
    "text": {"subject": "text", "scene": "outdoor", "taken": "2004-01-01"},
    "retina": {"subject": "medical", "scene": "studio", "taken": "2010-01-01"},
    "immunohistochemistry": {"subject": "medical", "scene": "microscope", "taken": "2010-01-01"},
    "cat": {"subject": "animal", "scene": "indoor", "taken": "2016-08-01"},
    "clock": {"subject": "object", "scene": "studio", "taken": "2000-01-01"},
    "grass": {"subject": "texture", "scene": "outdoor", "taken": "2000-01-01"},
    "gravel": {"subject": "texture", "scene": "outdoor", "taken": "2000-01-01"},
    "brick": {"subject": "texture", "scene": "outdoor", "taken": "2000-01-01"},
}
CLIPART_ROOT = Path("/usr/share/openclipart/png")


class Command(BaseCommand):
    help = "Create the demo curator, import the demo images and create the sample project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="curator")
        parser.add_argument("--clipart", type=int, default=60, help="openclipart drawings per category (0: none)")
        parser.add_argument("--port", type=int, default=8000, help="the port the demo server will listen on (for the login URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        # 1. the curator (staff, so the admin's ontology editor works too)
        user, _ = User.objects.get_or_create(username=options["username"])
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()

        # 2. openclipart drawings (when Debian's package is installed): folders become metadata
        if options["clipart"] and CLIPART_ROOT.is_dir():
            clip = Path(settings.VAR_DIR) / "demo" / "clipart"
            self._link_clipart(clip / "openclipart", options["clipart"])
            report = import_folder(clip, dataset_name="openclipart", user=user)
            self.stdout.write(f"openclipart: {report.summary()}")

        # 3. the scikit-image photos, with a typed manifest: imported last, so the catalog
        # (newest first) opens on them
        # Keys start with the source's name ("scikit-image/animal/chelsea.png") so the two
        # demo datasets never claim the same global key.
        root = Path(settings.VAR_DIR) / "demo" / "photos"
        self._write_photos(root / "scikit-image")
        report = import_folder(root, dataset_name="scikit-image photos", manifest_path=root / "manifest.csv", user=user)
        self.stdout.write(f"scikit-image photos: {report.summary()}")

        # 4. a project with a nested ontology, ready for the bulk-classification wizard
        from projects.demo import create_demo_project

        project = create_demo_project(user)
        self.stdout.write(f"project: {project.name}")
        self.stdout.write(
            self.style.SUCCESS(f"\nLog in at http://127.0.0.1:{options['port']}/  user: {user.username}  password: {password}\n")
        )

    def _write_photos(self, folder: Path) -> Path:
        from skimage import data

        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, facts in PHOTOS.items():
            loader = getattr(data, name, None)
            if loader is None:
                continue
            target = folder / facts["subject"] / f"{name}.png"
            if not target.exists():
                try:
                    array = np.asarray(loader())
                except Exception as exc:  # some skimage.data images need a download: skip those offline
                    self.stderr.write(f"skipped scikit-image '{name}': {exc}")
                    continue
                if array.dtype != np.uint8:
                    array = array.astype(np.float64)  # horse() is boolean
                    span = float(array.max() - array.min()) or 1.0
                    array = (255 * (array - array.min()) / span).astype(np.uint8)
                target.parent.mkdir(exist_ok=True)
                Image.fromarray(array).save(target)
            rows.append({"path": f"{folder.name}/{facts['subject']}/{name}.png", **facts})
        with (folder.parent / "manifest.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "subject:enum", "scene:enum", "taken:datetime"])
            for row in rows:
                writer.writerow([row["path"], row["subject"], row["scene"], row["taken"]])
        return folder

    def _link_clipart(self, folder: Path, per_category: int) -> Path:
        """A small slice of openclipart (symlinks, no copies) so the demo imports quickly."""
        for category in ("animals", "food", "transportation", "people", "plants"):
            source = CLIPART_ROOT / category
            if not source.is_dir():
                continue
            target = folder / category
            target.mkdir(parents=True, exist_ok=True)
            # Small files only: the demo should import in seconds (the importer itself
            # handles huge ones, refusing those over CURIO_MAX_IMAGE_PIXELS).
            small = [p for p in sorted(source.rglob("*.png")) if p.stat().st_size < 1_000_000]
            for png in small[:per_category]:
                link = target / png.name
                if not link.exists():
                    link.symlink_to(png)
        return folder
