"""`python manage.py import_images PATH --dataset NAME [--manifest FILE]`

Imports every file under PATH (recursively) with a progress bar, prints a summary (imported,
already present, failed by reason, each failure with its path and reason) and exits non-zero
when any file failed, so scripts and CI notice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.import_views import queue_embedding
from catalog.importer import FileResult, ImportRefused, ManifestError, import_folder, printable


class Command(BaseCommand):
    help = "Import images from a folder (recursively) into a dataset, with thumbnails and metadata."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Folder (or single file) to import; global keys are paths relative to it.")
        parser.add_argument("--dataset", required=True, help="Dataset name (created when it does not exist).")
        parser.add_argument(
            "--manifest",
            type=Path,
            help="CSV or JSONL with per-file metadata, keyed by 'path' (relative to PATH) and/or 'global_key'; "
            "columns may be typed: weight:number, species:enum, taken:datetime, note:string.",
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not draw the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        show = not options["no_progress"] and options["verbosity"] > 0
        bar = _Bar(cast(TextIO, self.stderr._out)) if show else None
        try:
            report = import_folder(
                options["path"], dataset_name=options["dataset"], manifest_path=options["manifest"], progress=bar
            )
        except (FileNotFoundError, ImportRefused, ManifestError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar is not None:
                bar.close()
        queue_embedding(report)  # or a warning line saying why the images were not embedded
        self.stdout.write(report.summary())
        if report.failed:
            raise CommandError(f"{len(report.failed)} file(s) failed; each is listed above with its reason.")


class _Bar:
    """The importer's progress hooks drawn as a tqdm bar on stderr, so that the summary on
    stdout stays clean for scripts."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: tqdm[Any] | None = None

    def start(self, total: int) -> None:
        self.bar = tqdm(total=total, unit="img", desc="Importing", dynamic_ncols=True, file=self.stream)

    def advance(self, result: FileResult) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{result.status}: {printable(result.path)[-40:]}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
