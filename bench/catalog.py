"""Catalog at scale: grid pages, a filtered count and Select all on N data rows.

    python bench/catalog.py --rows 1000000

Creates N data rows (database only, no image files) in the database DATABASE_URL names, or
in a throw-away SQLite file when it is unset, then times the real views in-process (server
time: query + template). Prints figures and, as its last line, a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per figure (median reported)")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL"):
        os.environ["CURIO_VAR_DIR"] = tempfile.mkdtemp(prefix="curio-bench-catalog-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curio.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.http import QueryDict
    from django.test import RequestFactory
    from django_htmx.middleware import HtmxDetails
    from tqdm import tqdm

    from catalog import views
    from catalog.models import DataRow, Dataset, MetadataField, Selection

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-curator")
    dataset, _ = Dataset.objects.get_or_create(name="bench-catalog")
    MetadataField.objects.get_or_create(dataset=dataset, name="parity", defaults={"kind": MetadataField.Kind.ENUM})
    MetadataField.objects.get_or_create(dataset=dataset, name="score", defaults={"kind": MetadataField.Kind.NUMBER})

    # 1. fill ----------------------------------------------------------------------------
    have = DataRow.objects.filter(dataset=dataset).count()
    table = DataRow._meta.db_table
    cols = "dataset_id, global_key, file, thumbnail, width, height, format, byte_size, content_hash, metadata, created_at"
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * 11)})"
    chunk = 20_000
    now = django.utils.timezone.now()
    started = time.perf_counter()
    with tqdm(total=args.rows, initial=have, desc="creating rows", unit="row") as bar:
        for start in range(have, args.rows, chunk):
            values = []
            for i in range(start, min(start + chunk, args.rows)):
                meta = json.dumps({"folder": f"f{i % 100:02d}", "parity": "even" if i % 2 == 0 else "odd", "score": i % 1000})
                values.append(
                    (dataset.pk, f"bench/f{i % 100:02d}/img-{i:07d}.png", f"originals/{i}.png", f"thumbnails/{i}.jpg",
                     640, 480, "PNG", 1000, f"{i:064x}", meta, now)
                )  # fmt: skip
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(sql, values)
            bar.update(len(values))
    fill_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = DataRow.objects.count()

    # 2. time the real views ---------------------------------------------------------------
    factory = RequestFactory()

    def timed(build_request, view) -> float:  # type: ignore[no-untyped-def]
        samples = []
        for _ in range(args.repeat):
            request = build_request()
            request.user = user
            request.htmx = HtmxDetails(request)
            request.session = {}
            request._messages = None
            t0 = time.perf_counter()
            response = view(request)
            response.render() if hasattr(response, "render") and not response.is_rendered else None
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code in (200, 302), response.status_code
        return statistics.median(samples)

    first_page_ms = timed(lambda: factory.get("/"), views.browse)
    filter_first_ms = timed(lambda: factory.get(f"/?dataset={dataset.pk}"), views.browse)

    page_size = settings.CURIO_PAGE_SIZE
    depth_pages = min(5000, max(1, total // page_size - 1))  # 5,000 pages deep at 1M rows
    depth_row = DataRow.objects.order_by("-id").values_list("id", flat=True)[
        depth_pages * page_size : depth_pages * page_size + 1
    ]
    from catalog.filters import CatalogFilter

    flt = CatalogFilter.from_querydict(QueryDict(""))
    deep_cursor = flt.cursor_for(DataRow(pk=depth_row[0])) if depth_row else ""
    deep_page_ms = timed(lambda: factory.get(f"/?after={deep_cursor}"), views.browse)
    key_flt = CatalogFilter.from_querydict(QueryDict("sort=key"))
    key_row = DataRow.objects.order_by("global_key", "id")[depth_pages * page_size]
    deep_key_cursor = key_flt.cursor_for(key_row)
    deep_key_page_ms = timed(lambda: factory.get(f"/?sort=key&after={deep_key_cursor}"), views.browse)

    half = "f=parity&op=eq&v=even"
    filtered_count_ms = timed(lambda: factory.get(f"/count/?{half}"), views.count)

    # The grid's button is an HTMX POST answered with the selection bar and its exact count.
    select_all_ms = timed(
        lambda: factory.post("/selection/all/", {"filter_qs": half}, HTTP_HX_REQUEST="true"), views.selection_all
    )
    selection = Selection.objects.get(user=user)
    from catalog.selection import selection_count

    selected = selection_count(selection)

    result = {
        "rows": total,
        "database": connection.vendor,
        "fill_s": round(fill_s, 1),
        "first_page_ms": round(first_page_ms, 2),
        "first_page_dataset_filter_ms": round(filter_first_ms, 2),
        "deep_page_ms": round(deep_page_ms, 2),
        "deep_page_by_key_ms": round(deep_key_page_ms, 2),
        "deep_over_first_ratio": round(deep_page_ms / first_page_ms, 2),
        "filtered_count_ms": round(filtered_count_ms, 2),
        "select_all_ms": round(select_all_ms, 2),
        "select_all_selected": selected,
        "page_size": page_size,
        "depth_pages": depth_pages,
    }
    for key, value in result.items():
        print(f"{key:>30}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
