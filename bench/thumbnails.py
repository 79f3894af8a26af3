"""Import + thumbnail throughput on a folder of real images.

    .venv/bin/python bench/thumbnails.py /usr/share/openclipart/png/animals [--limit N]

Runs the real import service (read, hash, validate, decode, thumbnail, store original and
thumbnail, write the row) into a throw-away SQLite database and media folder, single process.
Also times decode + thumbnail alone on the same files, so the share of storage and database
work is visible. Prints figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="folder of images (walked recursively)")
    parser.add_argument("--limit", type=int, default=0, help="import at most N files (0: all)")
    args = parser.parse_args()
    if not args.path.exists():
        parser.error(f"{args.path}: no such folder")

    scratch = Path(tempfile.mkdtemp(prefix="curio-bench-thumbs-"))
    # Before django.setup(): a throw-away SQLite database and media root, whatever the
    # environment says, so the benchmark never writes into a real catalog.
    os.environ.pop("DATABASE_URL", None)
    os.environ["CURIO_VAR_DIR"] = str(scratch)
    os.environ["CURIO_MEDIA_ROOT"] = str(scratch / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "curio.settings"
    sys.path.insert(0, str(REPO))

    import django

    django.setup()
    from django.core.management import call_command

    from catalog.importer import ImportFailure, collect_files, decode_image, import_paths
    from catalog.models import Dataset

    call_command("migrate", verbosity=0)
    files = collect_files(args.path)
    if args.limit:
        files = files[: args.limit]
    total_bytes = sum(p.stat().st_size for p, _ in files)
    print(f"{len(files)} files, {total_bytes / 1e6:.1f} MB, from {args.path}")

    # 1. Decode + thumbnail alone (bytes already in memory).
    blobs = [p.read_bytes() for p, _ in files]
    start = time.perf_counter()
    for data in blobs:
        with contextlib.suppress(ImportFailure):  # failures are counted by the import below
            decode_image(data)
    decode_s = time.perf_counter() - start

    # 2. The whole import, as `manage.py import_images` runs it.
    dataset = Dataset.objects.create(name="bench")
    start, cpu_start = time.perf_counter(), time.process_time()
    report = import_paths(files, dataset=dataset)
    import_s, import_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

    result = {
        "files": len(files),
        "imported": len(report.imported),
        "failed": len(report.failed),
        "megabytes": round(total_bytes / 1e6, 2),
        "import_seconds": round(import_s, 3),
        "images_per_s": round(len(files) / import_s, 1),
        # The machine is shared: images per CPU-second moves less with other people's load.
        "images_per_cpu_s": round(len(files) / import_cpu_s, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "decode_thumbnail_per_s": round(len(files) / decode_s, 1),
        "thumbnail_share_of_import": round(decode_s / import_s, 2),
    }
    print(f"import + thumbnail: {result['images_per_s']} images/s ({import_s:.2f} s wall, {import_cpu_s:.2f} s CPU)")
    print(f"decode + thumbnail alone: {result['decode_thumbnail_per_s']} images/s ({decode_s:.2f} s)")
    print(f"decode + thumbnail is {result['thumbnail_share_of_import']:.0%} of the import time")
    for failure in report.failed[:10]:
        print(f"  failed: {failure.path}: {failure.reason}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
