"""Benchmark of the Feast layer (``.venv/bin/python bench/bench_feast.py``; not part of the tests).

Measures, in one run against one private redis-server on a loopback port:

1. online read latency, p50 / p99, for 1 and for 100 customers:
   ``FeatureStore.get_online_features`` (4 stored features + the on-demand
   ``days_since_last_order``) next to the lab's direct Redis read
   (``redis_sink.read_customer_features``: 30 tile keys per customer, pipelined; 100
   customers = 100 such reads, one after the other);
2. push throughput from ``foreachBatch`` (rows/s): ``feast_sink.push_to_feast`` on one
   micro-batch of ``--batch-rows`` customer tiles (distinct customers) — lab Redis tiles,
   the read-back at the stream clock, the Feast push online + offline — and, separately,
   ``FeatureStore.push`` alone of the same rows, online only and online + offline.

Results are printed and written to ``bench/results/feast.md``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from cdc_features.stores import feast_store as fs
from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig
from cdc_features.stores.redis_store import (
    RedisConfig,
    read_customer_features,
    write_tile,
    write_to_feature_store,
)
from cdc_features.testing import RedisServer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "feast.md"
AT = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp, commit_ts timestamp"
)


def tiles_for(customers: int, seed: int) -> list[dict[str, Any]]:
    """A few daily tiles per customer inside the 30-day window ending with AT."""
    rng = random.Random(seed)
    rows = []
    for cid in range(1, customers + 1):
        for back in rng.sample(range(30), 4):
            day = AT.date() - timedelta(days=back)
            count = rng.randint(1, 3)
            rows.append(
                {
                    "customer_id": cid,
                    "day": day,
                    "order_count": count,
                    "total_spend": Decimal(rng.randint(500, 50_000)) / 100 * count,
                    "last_order_ts": datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                    + timedelta(seconds=rng.randint(0, 86_399)),
                }
            )
    return rows


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(fn: Any, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--batch-rows", type=int, default=2_000)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench_feast_"))
    server = RedisServer(workdir / "redis").start()
    url = server.url
    lines: list[str] = []
    try:
        client = redis.Redis.from_url(url)
        store = fs.prepare_repo(workdir / "repo", url)

        # --- data: lab tiles + the same customers' features in Feast --------------
        pipe = client.pipeline(transaction=False)
        config = RedisConfig(url)
        for row in tiles_for(args.customers, seed=7):
            write_tile(pipe, row, time.time(), config)
        pipe.execute()
        features = [read_customer_features(client, cid, AT) for cid in range(1, args.customers + 1)]
        fs.push(store, fs.CUSTOMER_PUSH, fs.customer_push_frame(features, AT), offline=False)
        check = fs.online_customer_features(store, [1, 2], AT)
        assert check[1] == features[0] and check[2] == features[1], "Feast read != lab read"

        rng = random.Random(1)
        one = lambda: [rng.randint(1, args.customers)]  # noqa: E731
        hundred = lambda: rng.sample(range(1, args.customers + 1), 100)  # noqa: E731
        read_rows = []
        for label, ids_fn, repeats in (
            ("1 customer", one, args.repeats),
            ("100 customers", hundred, max(30, args.repeats // 5)),
        ):
            feast = percentiles(
                timed(
                    lambda ids_fn=ids_fn: fs.online_customer_features(store, ids_fn(), AT), repeats
                )
            )
            lab = percentiles(
                timed(
                    lambda ids_fn=ids_fn: [read_customer_features(client, c, AT) for c in ids_fn()],
                    repeats,
                )
            )
            read_rows.append((label, repeats, feast, lab))

        # --- push throughput ----------------------------------------------------------
        from cdc_features.job.spark import get_spark

        spark = get_spark("bench-feast")
        n = args.batch_rows
        base = args.customers + 1
        commit = AT + timedelta(minutes=1)
        batch = [(base + i, AT.date(), 1, Decimal("10.00"), AT, commit) for i in range(n)]
        df = spark.createDataFrame(batch, TILE_SCHEMA).repartition(2)
        feast_sink = FeastSink(FeastSinkConfig(workdir / "repo", config, max_entities=n))
        feast_sink.push_to_feast(df, 0)  # warm-up (JIT, registry cache, Spark plan)

        df.persist()
        df.count()
        t0 = time.perf_counter()
        write_to_feature_store(df, 1, store=config)
        tiles_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        feast_sink.push_to_feast(df, 1)  # same rows again: a replayed batch
        sink_s = time.perf_counter() - t0

        frame = fs.customer_push_frame(features[:n], AT + timedelta(hours=1))
        t0 = time.perf_counter()
        fs.push(store, fs.CUSTOMER_PUSH, frame, offline=False)
        online_s = time.perf_counter() - t0
        frame = fs.customer_push_frame(features[:n], AT + timedelta(hours=2))
        t0 = time.perf_counter()
        fs.push(store, fs.CUSTOMER_PUSH, frame, offline=True)
        both_s = time.perf_counter() - t0
        offline_rows = fs.pq.read_table(
            workdir / "repo" / "data" / "customer_features.parquet"
        ).num_rows
        spark.stop()

        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        cmd = "cd labs/feature-engineering && .venv/bin/python bench/bench_feast.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        lines += [
            "# Feast benchmark: online reads and pushes",
            "",
            f"Run: `{cmd.strip()}` — {now}; feast 0.67.0, redis-py 7.4.1, local redis-server "
            f"(loopback), Spark local[2]; {args.customers} customers with 4 daily tiles each. "
            f"2-core machine shared with other work: 1-minute load average {load_before:.1f} "
            f"at the start, {os.getloadavg()[0]:.1f} at the end — absolute numbers are noisy, "
            "the ratios of one run are the point.",
            "",
            "## Online read latency (ms)",
            "",
            "| read | samples | Feast `get_online_features` p50 | p99 | lab Redis read p50 | p99 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, repeats, feast, lab in read_rows:
            lines.append(
                f"| {label} | {repeats} | {feast[0]:.2f} | {feast[1]:.2f} | "
                f"{lab[0]:.2f} | {lab[1]:.2f} |"
            )
        lines += [
            "",
            "Feast: one `HMGET` per customer in one pipeline, protobuf decoding, the on-demand "
            "`days_since_last_order`. Lab read: 30 `HGETALL` of daily tiles in one pipeline per "
            "customer, then `definitions.py` (100 customers = 100 sequential round trips).",
            "",
            f"## Push throughput ({n} customers in one micro-batch)",
            "",
            "| path | seconds | rows/s |",
            "|---|---:|---:|",
            f"| `push_to_feast` in foreachBatch (lab tiles + read-back + Feast online and "
            f"offline) | {sink_s:.2f} | {n / sink_s:,.0f} |",
            f"| of which: lab tiles alone (`write_to_feature_store`, same cached batch) | "
            f"{tiles_s:.2f} | {n / tiles_s:,.0f} |",
            f"| `FeatureStore.push`, ONLINE | {online_s:.2f} | {n / online_s:,.0f} |",
            f"| `FeatureStore.push`, ONLINE_AND_OFFLINE | {both_s:.2f} | {n / both_s:,.0f} |",
            "",
            f"The file offline store rewrites its whole Parquet file on every push (read, "
            f"concatenate, write; {offline_rows} rows at the end of this run), so the offline "
            "part slows down as history grows; a production offline store appends.",
        ]
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
