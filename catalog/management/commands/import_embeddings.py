"""python manage.py import_embeddings FILE --name NAME: vectors from any network, keyed by global key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.embedding_service import EmbeddingFileError, import_embeddings


class Command(BaseCommand):
    help = (
        "Import custom embeddings into the space custom:NAME. FILE is .npy (with a sibling FILE.ids.txt / FILE.txt "
        "holding one global key per line, or --ids), .csv (global_key, then 'vector' or one column per dimension) or "
        ".jsonl ({'global_key': ..., 'vector': [...]}). Up to 2048 dimensions. Bad rows are reported and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--name", required=True, help="name of the embedding space (custom:NAME)")
        parser.add_argument("--ids", help="global keys for an .npy file (one per line, or a JSON list)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = import_embeddings(options["file"], name=options["name"], ids_path=options["ids"])
        except EmbeddingFileError as exc:
            raise CommandError(str(exc)) from exc
        for label, problem in report.errors:
            self.stderr.write(f"{options['file']}: {label}: {problem}")
        self.stdout.write(report.summary())
        if report.imported == 0 and report.errors:
            raise CommandError("No vector was imported.")
