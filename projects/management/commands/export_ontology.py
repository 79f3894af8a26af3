"""Write an ontology as Labelbox-shaped JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from projects.models import Ontology
from projects.services import dump_ontology_json, export_ontology_json


class Command(BaseCommand):
    help = "Export an ontology as Labelbox-shaped JSON to a file or standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="name of the ontology")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        ontology = Ontology.objects.filter(name=options["name"]).first()
        if ontology is None:
            raise CommandError(f'No ontology named "{options["name"]}".')
        text = dump_ontology_json(export_ontology_json(ontology))
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")
