"""django-q2 entry points for the catalog: ids in, a service call, the service records the outcome."""

from __future__ import annotations

from .embedding_service import run_embedding_job as _run_embedding_job
from .models import EmbeddingJob


def run_embedding_job(job_id: int) -> str:
    job = EmbeddingJob.objects.get(pk=job_id)
    return _run_embedding_job(job).status


def compute_projector_map(space_id: int, filter_query: str, method: str) -> int:
    from .projector import compute_map

    return compute_map(space_id=space_id, filter_query=filter_query, method=method)
