"""Vector search benchmark: query latency of catalog.vector_search at catalog scale.

    python bench/search.py --vectors 1000000 --dim 512

Synthetic unit vectors shaped like image embeddings (clusters of near-duplicates around
many centres, not isotropic noise), queries near random rows. Times the product's ranking
(catalog.vector_search.rank: sharded 8-bit faiss scan + exact re-rank) without a filter and
with a filter matching ~10 % of rows (the filter is given as row ids, so the figure is the
vector work, not the database query that produces them), and the exact float32 numpy scan
for comparison. recall_at_10 is measured against that exact scan. The JSON last line
carries every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "curio.settings")
import django

django.setup()

from catalog.vector_search import SpaceVectors, rank  # noqa: E402


def make_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centers = rng.standard_normal((max(1, n // 200), dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunked: keeps the peak near the final array's size
        end = min(n, start + 100_000)
        block = centers[rng.integers(0, len(centers), end - start)] + 0.8 * rng.standard_normal(
            (end - start, dim), dtype=np.float32
        )
        out[start:end] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    vectors = make_vectors(args.vectors, args.dim, rng)
    sv = SpaceVectors(0, (0, "bench", ""), np.arange(1, args.vectors + 1, dtype=np.int64), vectors)
    started = time.perf_counter()
    sv.shards()
    build_s = time.perf_counter() - started

    queries = vectors[rng.integers(0, args.vectors, args.queries)] + 0.5 * rng.standard_normal(
        (args.queries, args.dim), dtype=np.float32
    )
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    filtered = np.flatnonzero(rng.random(args.vectors) < 0.10)

    def timed(fn) -> tuple[float, list]:
        fn(queries[0])  # warm-up
        times, outs = [], []
        for q in queries:
            t0 = time.perf_counter()
            outs.append(fn(q))
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), outs

    query_ms, found = timed(lambda q: rank(sv, q, positions=None, limit=args.k)[0])
    filtered_ms, found_f = timed(lambda q: rank(sv, q, positions=filtered, limit=args.k)[0])
    exact_ms, exact = timed(lambda q: np.argsort(-(vectors @ q))[: args.k])
    exact_f = [filtered[np.argsort(-(vectors[filtered] @ q))[: args.k]] for q in queries]

    def recall(got: list, want: list) -> float:
        return float(np.mean([len(set(g.tolist()) & set(w.tolist())) / args.k for g, w in zip(got, want, strict=True)]))

    in_filter = all(np.isin(f, filtered).all() for f in found_f)
    figures = {
        "vectors": args.vectors,
        "dim": args.dim,
        "k": args.k,
        "cores": os.cpu_count(),
        "data": "synthetic clustered unit vectors (n/200 centres), queries near random rows",
        "index_build_s": round(build_s, 2),
        "query_ms": round(query_ms, 1),
        "filtered_query_ms": round(filtered_ms, 1),
        "filter_fraction": round(len(filtered) / args.vectors, 3),
        "filtered_results_inside_filter": in_filter,
        "exact_numpy_query_ms": round(exact_ms, 1),
        "speedup_vs_exact": round(exact_ms / query_ms, 2),
        "recall_at_10": round(recall(found, exact), 3),
        "filtered_recall_at_10": round(recall(found_f, exact_f), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    for key, value in figures.items():
        print(f"{key:32} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
