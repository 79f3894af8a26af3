"""Resume a crashed, killed or failed bulk-classification job after its last committed chunk."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classification.engine import run_bulk_classification
from classification.models import BulkClassificationJob


class Command(BaseCommand):
    help = "Resume a bulk-classification job (runs it here, now). Use --all for every unfinished job."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_ids", nargs="*", type=int)
        parser.add_argument("--all", action="store_true", help="every queued, running or failed job")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(options["job_ids"])
        if options["all"]:
            ids += list(
                BulkClassificationJob.objects.exclude(status=BulkClassificationJob.Status.SUCCEEDED).values_list("pk", flat=True)
            )
        if not ids:
            raise CommandError("Name a job id, or pass --all.")
        failed = False
        for job_id in ids:
            if not BulkClassificationJob.objects.filter(pk=job_id).exists():
                self.stderr.write(f"job {job_id}: no such job")
                failed = True
                continue
            # force: the operator says the worker that held it is gone.
            job = run_bulk_classification(job_id, force=True)
            if job is None:
                self.stdout.write(f"job {job_id}: already finished")
                continue
            self.stdout.write(f"job {job_id}: {job.status} — {job.processed_rows:,}/{job.total_rows:,} rows, {job.counts}")
            failed |= job.status != BulkClassificationJob.Status.SUCCEEDED
        if failed:
            raise CommandError("Some jobs did not finish.")
