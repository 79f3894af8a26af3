"""python manage.py embed [--dataset NAME] [--reembed]: embed rows with the configured CLIP model."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.clip import ClipUnavailable, resolve_weights
from catalog.embedding_service import EmbedOutcome, run_embedding_job
from catalog.models import Dataset, EmbeddingJob


class Command(BaseCommand):
    help = (
        "Embed data rows with the CLIP model of CURIO_CLIP_MODEL / CURIO_CLIP_PRETRAINED. Resumes where a previous run "
        "stopped (rows that already have a vector are skipped); --reembed recomputes them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="only rows of this dataset (by name)")
        parser.add_argument("--reembed", action="store_true", help="recompute vectors that already exist in this model's space")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"--dataset: no dataset named {options['dataset']!r}.")
        try:
            # Checked before anything is recorded: a missing model is a setup problem, not a job.
            resolve_weights()
        except ClipUnavailable as exc:
            raise CommandError(str(exc)) from exc
        job = EmbeddingJob.objects.create(dataset=dataset, reembed=options["reembed"])
        bar = tqdm(total=0, unit="img", desc="embedding", file=self.stderr._out, disable=options["verbosity"] == 0)

        def on_batch(outcome: EmbedOutcome, count: int) -> None:
            if bar.total != job.total:
                bar.reset(total=job.total)
                bar.update(job.done + job.failed - count)
            bar.update(count)

        try:
            run_embedding_job(job, on_batch=on_batch)
        finally:
            bar.close()
        job.refresh_from_db()
        for error in job.errors:
            self.stderr.write(error)
        if job.status != EmbeddingJob.Status.DONE:
            raise CommandError(job.message)
        self.stdout.write(job.message)
