"""The demo command (what `scripts/demo.sh` runs before it starts the server and worker):
a catalog of the real scikit-image photos that a curator logs into with the printed
password, and a project whose ontology has a nested sub-question."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from catalog.models import DataRow
from classification.management.commands.demo import CLIPART_ROOT
from projects.models import Project, Question

pytestmark = pytest.mark.django_db


def run_demo(**options: Any) -> tuple[str, str]:
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO(), **options)
    found = re.search(r"user: (\S+)\s+password: (\S+)", out.getvalue())
    assert found, out.getvalue()
    return found.group(1), found.group(2)


def log_in(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, "the printed login was refused"
    return client


def test_the_demo_opens_on_the_real_photos_with_the_printed_login(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    username, password = run_demo(clipart=3)
    photos = DataRow.objects.filter(dataset__name="scikit-image photos")
    assert photos.count() >= 15  # every bundled photo that loads without a network
    chelsea = photos.get(global_key="scikit-image/animal/chelsea.png")
    assert (chelsea.width, chelsea.height) == (451, 300) and chelsea.metadata["subject"] == "animal"

    html = log_in(username, password).get("/").content.decode()
    captions = re.findall(r'<span class="caption" title="([^"]+)"', html)
    # Newest first: the catalog opens on the photos, ahead of the drawings imported before them.
    assert captions and captions[0].startswith("scikit-image/")
    assert "scikit-image/animal/chelsea.png" in captions
    if CLIPART_ROOT.is_dir():
        assert any(key.startswith("openclipart/") for key in captions)

    project = Project.objects.get(name="Demo photos")
    species = Question.objects.get(ontology=project.ontology, name="Species")
    assert species.parent_option is not None and species.parent_option.value == "animal"


def test_a_second_run_imports_nothing_twice_and_only_the_new_password_works(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    username, first = run_demo(clipart=0)
    rows = DataRow.objects.count()
    _, second = run_demo(clipart=0)
    assert DataRow.objects.count() == rows
    assert first != second
    assert not Client().login(username=username, password=first)
    log_in(username, second)
