"""Bulk classification end to end: a real qcluster worker applies a Select-all job of N rows
while the catalog is being browsed.

    python bench/bulk_classify.py --rows 100000

Uses the database DATABASE_URL names, or a throw-away SQLite file when unset. Prints figures
and, as its last line, a JSON object: rows, job_seconds (submit → final status),
job_rows_per_s, raw_rows_per_s (plain sqlite3 executemany of the same number of answer rows,
in the same run), ratio (job_rows_per_s / raw_rows_per_s) and catalog_p95_ms_during_job.
The job answers one radio question per row, so it writes one answer row (plus its chosen
option and the row's place in the project) per data row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raw_insert_rate(n_answers: int, folder: Path, *, repeat: int = 3) -> float:
    """Plain sqlite3: executemany of n answer rows (same columns and unique key as ours),
    into a fresh file each time; the median rate of `repeat` runs (one run swings ±30 %
    on a shared 2-core machine)."""
    rates = []
    for i in range(repeat):
        rates.append(_raw_insert_once(n_answers, folder / f"raw-{i}.sqlite3"))
    return statistics.median(rates)


def _raw_insert_once(n_answers: int, path: Path) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE answer (id INTEGER PRIMARY KEY, project_id INT, data_row_id INT, question_id INT, kind TEXT,"
        " text TEXT, set_by_id INT, set_at TEXT, job_id INT, UNIQUE (project_id, data_row_id, question_id, kind))"
    )
    rows = [(1, i // 2, i % 2, "label", "", 1, "2026-01-01T00:00:00Z", 1) for i in range(n_answers)]
    started = time.perf_counter()
    with db:
        db.executemany(
            "INSERT INTO answer (project_id, data_row_id, question_id, kind, text, set_by_id, set_at, job_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    elapsed = time.perf_counter() - started
    db.close()
    return n_answers / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="curio-bench-bulk-"))
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ["CURIO_VAR_DIR"] = str(work)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curio.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.http import QueryDict
    from django.test import RequestFactory
    from django.utils import timezone
    from django_htmx.middleware import HtmxDetails
    from tqdm import tqdm

    from catalog import selection as selection_service
    from catalog import views
    from catalog.models import DataRow, Dataset
    from classification import services
    from classification.models import BulkClassificationJob
    from projects.demo import create_demo_project
    from projects.models import Answer, AnswerOption, Question

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench")
    dataset = Dataset.objects.create(name=f"bulk-{time.time_ns()}")
    project = create_demo_project(user)

    # 1. N data rows, database only --------------------------------------------------------
    table = DataRow._meta.db_table
    cols = "dataset_id, global_key, file, thumbnail, width, height, format, byte_size, content_hash, metadata, created_at"
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * 11)})"
    now = timezone.now()
    with tqdm(total=args.rows, desc="creating rows", unit="row") as bar:
        for start in range(0, args.rows, 20_000):
            values = [
                (dataset.pk, f"{dataset.name}/{i:07d}.png", f"o/{i}.png", f"t/{i}.jpg", 64, 64, "PNG", 1, f"{i:064x}",
                 json.dumps({"folder": "bulk"}), now)
                for i in range(start, min(start + 20_000, args.rows))
            ]  # fmt: skip
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, values)
            bar.update(len(values))

    q = {x.name: x for x in Question.objects.filter(ontology=project.ontology)}
    opt = {(o.question.name, o.value): o.pk for x in q.values() for o in x.options.all()}
    # One radio answer per row, as in the seed's "classify these as X": one answer row per
    # data row, so the raw baseline inserts exactly as many answer rows as there are rows.
    answers = {str(q["Subject"].pk): {"options": [opt[("Subject", "person")]]}}
    selection_service.select_all(user, QueryDict(f"dataset={dataset.pk}"))

    # 2. a real worker, started (and warm) before the submit -------------------------------
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "curio.settings", "CURIO_Q_WORKERS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(4)

    factory = RequestFactory()
    latencies: list[float] = []
    try:
        started = time.perf_counter()
        job = services.submit_bulk_classification(
            user, project, answers=answers, step="done", on_existing="overwrite", batch_name=f"bench-{time.time_ns()}", priority=3
        )
        submit_ms = (time.perf_counter() - started) * 1000
        bar = tqdm(total=args.rows, desc="job", unit="row")
        while True:
            state = BulkClassificationJob.objects.values("status", "processed_rows").get(pk=job.pk)
            if state["processed_rows"] != bar.n:
                bar.update(state["processed_rows"] - bar.n)
            if state["status"] in ("succeeded", "failed"):
                break
            request = factory.get(f"/?dataset={dataset.pk}")
            request.user = user
            request.htmx = HtmxDetails(request)
            t0 = time.perf_counter()
            response = views.browse(request)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
            time.sleep(0.05)
        job_seconds = time.perf_counter() - started
        bar.close()
    finally:
        # SIGTERM to the cluster's master only: it stops its workers itself (with the whole
        # group signalled at once, django-q2's master waits for ever).
        worker.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)

    job.refresh_from_db()
    n_answers = Answer.objects.filter(job=job).count()
    n_options = AnswerOption.objects.filter(answer__job=job).count()
    raw_rate = raw_insert_rate(n_answers, work)
    job_rate = args.rows / job_seconds
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else (latencies[0] if latencies else 0.0)
    result = {
        "rows": args.rows,
        "database": connection.vendor,
        "status": job.status,
        "submit_ms": round(submit_ms, 1),
        "job_seconds": round(job_seconds, 2),
        # where the time went: waiting for the worker to pick the job up, then the engine
        "queue_wait_s": round((job.started_at - job.created_at).total_seconds(), 2),
        "engine_s": round((job.finished_at - job.started_at).total_seconds(), 2),
        "job_rows_per_s": round(job_rate),
        "answer_rows_written": n_answers,
        "answer_option_rows_written": n_options,
        "raw_rows_per_s": round(raw_rate),
        "ratio": round(job_rate / raw_rate, 3),
        # Context, not the target: the job stores three rows per data row (its place in the
        # project, the answer, the chosen option), each table with its query indexes.
        "all_rows_written_per_s": round((args.rows + n_answers + n_options) / job_seconds),
        "catalog_requests_during_job": len(latencies),
        "catalog_p95_ms_during_job": round(p95, 1),
    }
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
