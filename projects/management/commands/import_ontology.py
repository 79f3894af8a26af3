"""Create an ontology from a Labelbox-shaped JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projects.services import OntologyError, import_ontology_json


class Command(BaseCommand):
    help = "Import an ontology from Labelbox-shaped JSON ({'tools': [], 'classifications': [...]})."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path of the JSON file")
        parser.add_argument("--name", required=True, help="name of the new ontology")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{path}: cannot read the file ({exc.strerror}).") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON ({exc}).") from exc
        try:
            ontology = import_ontology_json(data, name=options["name"])
        except OntologyError as exc:
            raise CommandError(f"{path}: nothing imported.\n  " + "\n  ".join(exc.errors)) from exc
        count = ontology.questions.count()
        self.stdout.write(self.style.SUCCESS(f'Imported ontology "{ontology.name}" with {count} question(s).'))
