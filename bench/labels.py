"""Labels at scale: the catalog filter's "is not one of" and "no label in project" queries on
N answers, and the peak memory of streaming the NDJSON export of all of them.

    python bench/labels.py --answers 1000000

Fills the database DATABASE_URL names (default: a throw-away SQLite file) with the demo
ontology, one project, N/4 labelled data rows with 4 answers each (radio, checklist, text,
and a nested radio or a pre-label) plus 10% rows without labels, using bulk inserts. The
export runs in a fresh child process so its peak RSS is not the filler's; a second child that
only starts Django gives the baseline; both run with DEBUG off (DEBUG keeps a log of the
last 9,000 SQL statements). On SQLite the difference includes the page cache that
settings allow to grow to 64 MB; with `PRAGMA cache_size=-2000` the same export peaks about
4 MiB above the baseline. Prints figures and, as its last line, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PROJECT_NAME = "bench-labels"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curio.settings")
    import django

    django.setup()


def _child(mode: str) -> None:
    """Run in a fresh process: stream the export (or do nothing, for the baseline) and print
    the peak RSS in MiB and the figures."""
    _setup_django()
    from projects.models import Project
    from projects.services import iter_label_ndjson

    lines = size = 0
    started = time.perf_counter()
    if mode == "export":
        project = Project.objects.get(name=PROJECT_NAME)
        for line in iter_label_ndjson(project):
            lines += 1
            size += len(line)
    seconds = time.perf_counter() - started
    # VmHWM, not getrusage's ru_maxrss: the latter carries the parent's peak across fork+exec.
    status = Path("/proc/self/status").read_text()
    peak_kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    peak_mib = peak_kib / 1024 or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": round(peak_mib, 1), "lines": lines, "bytes": size, "seconds": round(seconds, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions per query (median reported)")
    parser.add_argument("--child", choices=["export", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return

    if not os.environ.get("DATABASE_URL"):
        os.environ["CURIO_VAR_DIR"] = tempfile.mkdtemp(prefix="curio-bench-labels-")
    _setup_django()
    import django.utils.timezone
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Max

    from catalog.models import DataRow, Dataset
    from projects.demo import DEMO_ONTOLOGY, DEMO_ONTOLOGY_NAME
    from projects.models import Answer, AnswerOption, Batch, Ontology, Option, Project, ProjectDataRow, Question
    from projects.querying import rows_answer_not_in, rows_without_label
    from projects.services import create_project, import_ontology_json

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-curator")
    ontology = Ontology.objects.filter(name=DEMO_ONTOLOGY_NAME).first() or import_ontology_json(
        DEMO_ONTOLOGY, name=DEMO_ONTOLOGY_NAME
    )
    project = Project.objects.filter(name=PROJECT_NAME).first() or create_project(user, name=PROJECT_NAME, ontology=ontology)
    batch, _ = Batch.objects.get_or_create(project=project, name="bench", defaults={"priority": 3})
    q = {x.name: x for x in Question.objects.filter(ontology=ontology)}
    opt = {
        (o.question.name, o.value): o.pk for o in Option.objects.filter(question__ontology=ontology).select_related("question")
    }
    subjects = ["animal", "person", "object", "scene"]
    species = ["cat", "dog", "horse", "bird"]
    qualities = ["sharp", "blurry", "bright", "dark"]

    labelled_rows = args.answers // 4
    total_rows = labelled_rows + labelled_rows // 10
    dataset, _ = Dataset.objects.get_or_create(name="bench-labels")
    now = django.utils.timezone.now()
    started = time.perf_counter()
    have = Answer.objects.filter(project=project).count()
    if have < args.answers:
        Answer.objects.filter(project=project).delete()
        ProjectDataRow.objects.filter(project=project).delete()
        DataRow.objects.filter(dataset=dataset).delete()
        row_sql = (
            f"INSERT INTO {DataRow._meta.db_table} (id, dataset_id, global_key, file, thumbnail, width, height, format, "
            "byte_size, content_hash, metadata, created_at) VALUES (%s, %s, %s, %s, %s, 640, 480, 'PNG', 1000, %s, '{}', %s)"
        )
        pdr_sql = (
            f"INSERT INTO {ProjectDataRow._meta.db_table} (project_id, data_row_id, batch_id, step, benchmark, added_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        )
        ans_sql = (
            f"INSERT INTO {Answer._meta.db_table} (id, project_id, data_row_id, question_id, kind, text, set_by_id, set_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
        ao_sql = (
            f"INSERT INTO {AnswerOption._meta.db_table} (answer_id, option_id, project_id, data_row_id, question_id, kind) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        )
        first_row = (DataRow.objects.aggregate(m=Max("id"))["m"] or 0) + 1
        next_answer = (Answer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
        chunk = 20_000
        for start in range(0, total_rows, chunk):
            rows, pdrs, answers, chosen = [], [], [], []
            for i in range(start, min(start + chunk, total_rows)):
                rid = first_row + i
                rows.append(
                    (rid, dataset.pk, f"bench-labels/{i:07d}.png", f"originals/{i}.png", f"thumbnails/{i}.jpg", f"{i:064x}", now)
                )
                pdrs.append((project.pk, rid, batch.pk, "initial_review", False, now))
                if i >= labelled_rows:
                    continue  # the unlabelled tenth
                subject = subjects[i % 4]

                def add(
                    question: str,
                    kind: str,
                    text: str,
                    values: list[str],
                    rid: int = rid,
                    answers: list = answers,
                    chosen: list = chosen,
                ) -> None:
                    nonlocal next_answer
                    answers.append((next_answer, project.pk, rid, q[question].pk, kind, text, user.pk, now))
                    for v in values:
                        chosen.append((next_answer, opt[(question, v)], project.pk, rid, q[question].pk, kind))
                    next_answer += 1

                add("Subject", "label", "", [subject])
                add("Qualities", "label", "", [qualities[i % 4], qualities[(i + 1) % 4]])
                add("Notes", "label", f"note {i}", [])
                if subject == "animal":
                    add("Species", "label", "", [species[(i // 4) % 4]])
                else:
                    add("Subject", "prelabel", "", [subjects[(i + 1) % 4]])
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(row_sql, rows)
                cursor.executemany(pdr_sql, pdrs)
                cursor.executemany(ans_sql, answers)
                cursor.executemany(ao_sql, chosen)
            print(f"  filled {min(start + chunk, total_rows):,}/{total_rows:,} rows", file=sys.stderr, end="\r")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        if connection.vendor == "postgresql":
            # Keep PostgreSQL's id sequences ahead of the explicit ids inserted above.
            with connection.cursor() as cursor:
                for model in (DataRow, Answer):
                    table = model._meta.db_table
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    fill_s = time.perf_counter() - started
    n_answers = Answer.objects.filter(project=project).count()
    n_options = AnswerOption.objects.filter(project=project).count()
    print(f"\n{n_answers:,} answers ({n_options:,} chosen options) on {total_rows:,} rows; fill {fill_s:.1f} s")

    def timed(label: str, qs: object) -> tuple[float, int]:
        times, count = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            count = DataRow.objects.filter(id__in=qs).count()
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        print(f"{label}: {count:,} rows, median {median * 1000:.1f} ms over {args.repeat}")
        return median, count

    animal_or_person = [opt[("Subject", "animal")], opt[("Subject", "person")]]
    not_in_s, not_in_count = timed(
        "Subject is not one of (animal, person)", rows_answer_not_in(project, q["Subject"], animal_or_person)
    )
    no_label_s, no_label_count = timed("no label in project", rows_without_label(project))
    expected_not_in = labelled_rows // 2 + (total_rows - labelled_rows)
    assert not_in_count == expected_not_in, (not_in_count, expected_not_in)
    assert no_label_count == total_rows - labelled_rows, no_label_count

    def child(mode: str) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "CURIO_DEBUG": "0"},
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    baseline = child("baseline")
    export = child("export")
    print(
        f"NDJSON export: {export['lines']:,} lines, {export['bytes'] / 2**20:.0f} MiB in {export['seconds']:.1f} s; "
        f"peak RSS {export['peak_rss_mib']:.0f} MiB vs {baseline['peak_rss_mib']:.0f} MiB for Django alone "
        f"(+{export['peak_rss_mib'] - baseline['peak_rss_mib']:.0f} MiB, export is {export['bytes'] / 2**20:.0f} MiB)"
    )
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "answers": n_answers,
                "answer_options": n_options,
                "rows": total_rows,
                "fill_s": round(fill_s, 1),
                "is_not_one_of_ms": round(not_in_s * 1000, 1),
                "is_not_one_of_count": not_in_count,
                "no_label_ms": round(no_label_s * 1000, 1),
                "no_label_count": no_label_count,
                "export_lines": export["lines"],
                "export_mib": round(export["bytes"] / 2**20, 1),
                "export_s": export["seconds"],
                "export_peak_rss_mib": export["peak_rss_mib"],
                "baseline_rss_mib": baseline["peak_rss_mib"],
                "export_rss_over_baseline_mib": round(export["peak_rss_mib"] - baseline["peak_rss_mib"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
