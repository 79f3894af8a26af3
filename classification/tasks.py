"""django-q2 entry points: ids in, the engine does the work and writes the job's status."""

from __future__ import annotations


def run_bulk_classification(job_id: int) -> str:
    from .engine import run_bulk_classification as run

    job = run(job_id)
    return job.status if job else "not claimed"
