"""Embedding services: every write of vectors goes through here.

Writers bump `EmbeddingSpace.vectors_version` in the same transaction, which is what the
in-process search cache (vector_search) watches to know its copy is stale.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .clip import ClipEncoder, ClipUnavailable, decode_image, get_encoder, resolve_weights
from .models import DataRow, Dataset, Embedding, EmbeddingJob, EmbeddingSpace

logger = logging.getLogger(__name__)

MAX_DIM = 2048
# Per-row errors kept on a job: enough to act on, bounded so a broken folder cannot bloat the row.
MAX_JOB_ERRORS = 200


# --- spaces and vectors -------------------------------------------------------------------
def get_or_create_clip_space(encoder: ClipEncoder) -> EmbeddingSpace:
    space, _ = EmbeddingSpace.objects.get_or_create(
        key=encoder.space_key,
        defaults={
            "kind": EmbeddingSpace.Kind.CLIP,
            "model_name": encoder.config.model_name,
            "pretrained": encoder.config.pretrained,
            "dim": encoder.dim,
        },
    )
    return space


def current_clip_space() -> EmbeddingSpace | None:
    """The space of the configured CLIP model, if any vectors were made with it (no model load)."""
    try:
        key = resolve_weights().space_key
    except ClipUnavailable:
        return None
    return EmbeddingSpace.objects.filter(key=key).first()


def store_vectors(space: EmbeddingSpace, row_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Upsert one vector per row (float32) and mark the space's vectors as changed."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != space.dim or len(row_ids) != vectors.shape[0]:
        raise ValueError(f"Expected {len(row_ids)} vectors of {space.dim} dimensions, got shape {vectors.shape}.")
    objs = [Embedding(space=space, data_row_id=rid, vector=vec.tobytes()) for rid, vec in zip(row_ids, vectors, strict=True)]
    with transaction.atomic():
        Embedding.objects.bulk_create(
            objs,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["space", "data_row"],
            update_fields=["vector"],
        )
        EmbeddingSpace.objects.filter(pk=space.pk).update(vectors_version=F("vectors_version") + 1)
    return len(objs)


def delete_vectors(space: EmbeddingSpace, rows: QuerySet[DataRow] | None = None) -> int:
    with transaction.atomic():
        qs = Embedding.objects.filter(space=space)
        if rows is not None:
            qs = qs.filter(data_row__in=rows.values("id"))
        deleted, _ = qs.delete()
        EmbeddingSpace.objects.filter(pk=space.pk).update(vectors_version=F("vectors_version") + 1)
    return deleted


def rows_missing_vectors(space: EmbeddingSpace, *, dataset: Dataset | None = None) -> QuerySet[DataRow]:
    """Rows that still need a vector in `space`: what makes every embedding run resumable."""
    rows = DataRow.objects.exclude(id__in=Embedding.objects.filter(space=space).values("data_row_id"))
    if dataset is not None:
        rows = rows.filter(dataset=dataset)
    return rows.order_by("id")


# --- the embedding pipeline -----------------------------------------------------------------
@dataclass
class EmbedOutcome:
    embedded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    row_ids: list[int]
    tensors: list[Any]
    errors: list[str]


def _open_row_image(row: tuple[int, str, str], draft_size: int | None) -> Any:
    _, name, _ = row
    try:
        path = default_storage.path(name)
    except NotImplementedError:  # object storage: no local path, read through the storage
        with default_storage.open(name, "rb") as fh:
            return decode_image(fh, draft_size=draft_size)  # type: ignore[arg-type]
    return decode_image(path, draft_size=draft_size)


def _prepare(encoder: ClipEncoder, rows: list[tuple[int, str, str]], draft_size: int | None) -> _Batch:
    """Decode + preprocess one batch (runs in a worker thread, overlapping inference)."""
    batch = _Batch([], [], [])
    for row in rows:
        try:
            batch.tensors.append(encoder.preprocess(_open_row_image(row, draft_size)))
            batch.row_ids.append(row[0])
        except Exception as exc:  # one unreadable file must not stop the job
            batch.errors.append(f"{row[2]}: cannot be embedded ({type(exc).__name__}: {exc})")
    return batch


def _chunks(rows: QuerySet[DataRow], size: int) -> Iterator[list[tuple[int, str, str]]]:
    """Keyset-paged (id, file name, global key) lists: no OFFSET, no huge result in memory."""
    last = 0
    while True:
        chunk = list(rows.filter(id__gt=last).order_by("id").values_list("id", "file", "global_key")[:size])
        if not chunk:
            return
        last = chunk[-1][0]
        yield chunk


def embed_rows(
    space: EmbeddingSpace,
    rows: QuerySet[DataRow],
    *,
    encoder: ClipEncoder,
    batch_size: int | None = None,
    decode_workers: int | None = None,
    on_batch: Callable[[EmbedOutcome, int], None] | None = None,
) -> EmbedOutcome:
    """Embed `rows` into `space`.

    1. Page through the rows by id, one batch at a time.
    2. Worker threads decode (Pillow draft mode) and preprocess the next batches while the
       current one runs through the model: decoding is hidden behind inference.
    3. Each batch's vectors are stored (upsert) before the next, so a crash loses one batch.
    4. `on_batch(outcome_so_far, rows_in_batch)` reports progress.
    """
    batch_size = batch_size or int(settings.CURIO_EMBED_BATCH_SIZE)
    workers = decode_workers or int(settings.CURIO_EMBED_DECODE_WORKERS)
    draft_size = encoder.image_size if settings.CURIO_CLIP_DRAFT_DECODE else None
    outcome = EmbedOutcome()
    import torch

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="curio-decode") as pool:
        pending: deque[tuple[Future[_Batch], int]] = deque()
        chunks = _chunks(rows, batch_size)

        def refill() -> None:
            # workers + 1 batches in flight: every decoder busy while the model runs.
            while len(pending) < workers + 1:
                chunk = next(chunks, None)
                if chunk is None:
                    return
                pending.append((pool.submit(_prepare, encoder, chunk, draft_size), len(chunk)))

        refill()
        while pending:
            future, count = pending.popleft()
            batch = future.result()
            refill()
            if batch.tensors:
                vectors = encoder.encode_tensors(torch.stack(batch.tensors))
                store_vectors(space, batch.row_ids, vectors)
            outcome.embedded += len(batch.row_ids)
            outcome.failed += len(batch.errors)
            outcome.errors.extend(batch.errors[: max(0, MAX_JOB_ERRORS - len(outcome.errors))])
            if on_batch is not None:
                on_batch(outcome, count)
    return outcome


# --- jobs -----------------------------------------------------------------------------------
def start_embedding_job(user: User | None, *, dataset: Dataset | None = None, reembed: bool = False) -> EmbeddingJob:
    """Queue a background job embedding the rows (of `dataset`, or all) that lack a vector in
    the configured CLIP space. Raises ClipUnavailable before queueing anything when the
    weights are missing, so the caller can show that message instead of a failed job."""
    from django_q.tasks import async_task

    resolve_weights()
    job = EmbeddingJob.objects.create(user=user, dataset=dataset, reembed=reembed)
    transaction.on_commit(lambda: async_task("catalog.tasks.run_embedding_job", job.pk, task_name=f"embed-{job.pk}"))
    return job


def run_embedding_job(job: EmbeddingJob, *, on_batch: Callable[[EmbedOutcome, int], None] | None = None) -> EmbeddingJob:
    """Run a job to the end, writing its own status and progress (a re-run resumes).

    1. Load the configured CLIP model; missing weights fail the job with the full message.
    2. With `reembed`, drop the space's vectors of the rows first (then it is a plain run).
    3. Embed the rows missing a vector, recording progress after every batch.
    4. Write the final status.
    """
    claimed = EmbeddingJob.objects.filter(pk=job.pk, status__in=[EmbeddingJob.Status.QUEUED, EmbeddingJob.Status.RUNNING]).update(
        status=EmbeddingJob.Status.RUNNING
    )
    if not claimed:
        job.refresh_from_db()
        return job  # already finished: a retried task changes nothing
    try:
        encoder = get_encoder()
    except ClipUnavailable as exc:
        _finish(job, EmbeddingJob.Status.FAILED, message=str(exc))
        return job
    space = get_or_create_clip_space(encoder)
    rows = DataRow.objects.filter(dataset=job.dataset) if job.dataset_id else DataRow.objects.all()
    if job.reembed and job.space_id is None:
        delete_vectors(space, rows)
    todo = rows_missing_vectors(space, dataset=job.dataset)
    job.space = space
    job.total = job.done + job.failed + todo.count()
    job.save(update_fields=["space", "total", "updated_at"])
    start_done, start_failed = job.done, job.failed

    def progress(outcome: EmbedOutcome, count: int) -> None:
        job.done = start_done + outcome.embedded
        job.failed = start_failed + outcome.failed
        job.errors = (job.errors + outcome.errors)[:MAX_JOB_ERRORS] if outcome.errors else job.errors
        outcome.errors.clear()
        job.save(update_fields=["done", "failed", "errors", "updated_at"])
        if on_batch is not None:
            on_batch(outcome, count)

    try:
        outcome = embed_rows(space, todo, encoder=encoder, on_batch=progress)
    except Exception as exc:
        logger.exception("embedding job %s failed", job.pk)
        _finish(job, EmbeddingJob.Status.FAILED, message=f"Embedding stopped: {type(exc).__name__}: {exc}")
        raise
    summary = f"Embedded {outcome.embedded} rows into {space.key}."
    if job.failed:
        summary += f" {job.failed} rows could not be embedded (see errors)."
    _finish(job, EmbeddingJob.Status.DONE, message=summary)
    return job


def _finish(job: EmbeddingJob, status: str, *, message: str) -> None:
    job.status = status
    job.message = message
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "message", "finished_at", "updated_at"])


# --- custom embeddings ------------------------------------------------------------------------
@dataclass
class ImportEmbeddingsReport:
    space: EmbeddingSpace | None = None
    imported: int = 0
    # (row label, problem): "line 7" / "item 3 (key)" and what is wrong with it.
    errors: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        where = f" into {self.space.key}" if self.space else ""
        return f"Imported {self.imported} vectors{where}; {len(self.errors)} rows skipped."


class EmbeddingFileError(ValueError):
    """The file as a whole cannot be read (not one bad row)."""


def _read_vector_rows(path: Path, ids_path: Path | None) -> Iterator[tuple[str, str, Any]]:
    """(label, global key, raw vector) for each row of an NPY+ids, CSV or JSONL file."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if ids_path is None:
            candidates = [
                path.with_suffix(".ids.txt"),
                path.with_suffix(".txt"),
                path.with_suffix(".ids.json"),
                path.with_suffix(".json"),
            ]
            ids_path = next((c for c in candidates if c.is_file()), None)
            if ids_path is None:
                names = ", ".join(c.name for c in candidates)
                raise EmbeddingFileError(f"{path.name}: an NPY file needs its global keys beside it ({names}) or --ids FILE.")
        try:
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise EmbeddingFileError(f"{path.name}: not a readable NPY array ({exc}).") from exc
        text = ids_path.read_text(encoding="utf-8")
        keys = (
            [str(k) for k in json.loads(text)]
            if ids_path.suffix == ".json"
            else [k.strip() for k in text.splitlines() if k.strip()]
        )
        if matrix.ndim != 2:
            raise EmbeddingFileError(f"{path.name}: expected a 2-D array (rows × dimensions), got shape {matrix.shape}.")
        if len(keys) != matrix.shape[0]:
            raise EmbeddingFileError(f"{path.name} has {matrix.shape[0]} vectors but {ids_path.name} has {len(keys)} keys.")
        for i, key in enumerate(keys):
            yield f"row {i + 1} ({key})", key, matrix[i]
    elif suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"line {lineno}", "", ValueError(f"not valid JSON ({exc.msg})")
                    continue
                if not isinstance(item, dict):
                    yield f"line {lineno}", "", ValueError('expected an object {"global_key": ..., "vector": [...]}')
                    continue
                yield f"line {lineno}", str(item.get("global_key", "")), item.get("vector")
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0].strip() != "global_key":
                raise EmbeddingFileError(
                    f"{path.name}: the first column must be 'global_key' (then 'vector' or one column per dimension)."
                )
            packed = len(header) == 2 and header[1].strip() == "vector"
            for lineno, cells in enumerate(reader, 2):
                if not cells:
                    continue
                key = cells[0].strip()
                if packed:
                    raw = (cells[1] if len(cells) > 1 else "").strip()
                    value: Any = json.loads(raw) if raw.startswith("[") else raw.replace(",", " ").split()
                else:
                    value = cells[1:]
                yield f"line {lineno}", key, value
    else:
        raise EmbeddingFileError(f"{path.name}: unsupported format; use .npy (+ ids file), .csv or .jsonl.")


def _parse_vector(raw: Any, dim: int | None) -> np.ndarray:
    if isinstance(raw, Exception):
        raise raw
    if raw is None:
        raise ValueError("no vector")
    try:
        vec = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("the vector holds a value that is not a number") from exc
    if vec.ndim != 1 or vec.size == 0:
        raise ValueError("the vector must be a flat list of numbers")
    if vec.size > MAX_DIM:
        raise ValueError(f"{vec.size} dimensions; at most {MAX_DIM} are supported")
    if dim is not None and vec.size != dim:
        raise ValueError(f"{vec.size} dimensions; this space has {dim}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("the vector contains NaN or infinity")
    if not np.any(vec):
        raise ValueError("the vector is all zeros (it has no direction to compare)")
    return vec.astype(np.float32)


def import_embeddings(
    path: str | Path, *, name: str, ids_path: str | Path | None = None, chunk_size: int = 2000
) -> ImportEmbeddingsReport:
    """Store vectors from any network under the space "custom:NAME", keyed by global key.

    1. Read rows one at a time (NPY is memory-mapped): a bad row is reported and skipped.
    2. The space's dimension is the existing space's, else the first good row's.
    3. Keys are resolved and vectors upserted chunk by chunk.
    """
    path = Path(path)
    if not name.strip():
        raise EmbeddingFileError("--name must not be empty.")
    if not path.is_file():
        raise EmbeddingFileError(f"{path}: no such file.")
    report = ImportEmbeddingsReport()
    space = EmbeddingSpace.objects.filter(key=f"custom:{name}").first()
    if space is not None and space.kind != EmbeddingSpace.Kind.CUSTOM:
        raise EmbeddingFileError(f"The space custom:{name} exists and is not a custom space.")
    dim = space.dim if space else None
    pending: dict[str, tuple[str, np.ndarray]] = {}

    def flush() -> None:
        nonlocal space
        if not pending:
            return
        found = dict(DataRow.objects.filter(global_key__in=list(pending)).values_list("global_key", "id"))
        ids, vecs = [], []
        for key, (label, vec) in pending.items():
            if key in found:
                ids.append(found[key])
                vecs.append(vec)
            else:
                report.errors.append((label, f"unknown global key {key!r}"))
        if ids:
            if space is None:
                space, _ = EmbeddingSpace.objects.get_or_create(
                    key=f"custom:{name}", defaults={"kind": EmbeddingSpace.Kind.CUSTOM, "model_name": name, "dim": len(vecs[0])}
                )
            report.imported += store_vectors(space, ids, np.stack(vecs))
        pending.clear()

    for label, key, raw in _read_vector_rows(path, Path(ids_path) if ids_path else None):
        if isinstance(raw, Exception):  # the row could not even be parsed
            report.errors.append((label, str(raw)))
            continue
        if not key:
            report.errors.append((label, "no global key"))
            continue
        try:
            vec = _parse_vector(raw, dim)
        except ValueError as exc:
            report.errors.append((label, str(exc)))
            continue
        dim = vec.size
        if key in pending:
            report.errors.append(
                (pending[key][0], f"global key {key!r} appears again later in the file; the later vector is kept")
            )
        pending[key] = (label, vec)
        if len(pending) >= chunk_size:
            flush()
    flush()
    report.space = space
    return report
