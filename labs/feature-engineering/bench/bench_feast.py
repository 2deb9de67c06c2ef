"""Benchmark of the online reads and of the Feast layer (``bash scripts/bench.sh feast``; not
part of the tests).

Measures, in one run against one private redis-server on a loopback port:

1. online read latency, p50 / p95 / p99, for 1 and for 100 customers, on the same customers:
   ``FeatureStore.get_online_features`` (4 stored features + the on-demand
   ``days_since_last_order``; all entity rows in one call) next to the lab's batched Redis
   read (``redis_store.read_customer_features_many``: one round trip for all the customers)
   and, for 100 customers, the lab's single read called once per customer. Two data shapes:
   customers with 4 daily tiles, and customers with a tile on every day of the window (the
   largest tile hash a read meets). The reads of one sample size are interleaved (Feast,
   lab, lab, Feast, ...) on the same random ids, so a change of the machine's load hits both;
   the 1-minute load average is sampled after each block;
2. push throughput from ``foreachBatch`` (rows/s): ``feast_sink.push_to_feast`` on one
   micro-batch of ``--batch-rows`` customer tiles (distinct customers) — lab Redis tiles,
   the read-back at the stream clock, the Feast push online + offline — and, separately,
   ``FeatureStore.push`` alone of the same rows, online only and online + offline.

Results are printed and written to ``bench/results/feast.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import redis

from cdc_features.stores import feast_store as fs
from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig
from cdc_features.stores.redis_store import (
    RedisConfig,
    load_functions,
    read_customer_features,
    read_customer_features_many,
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


def tiles_for(customers: range, days: int, seed: int) -> list[dict[str, Any]]:
    """``days`` daily tiles per customer inside the 30-day window ending with AT."""
    rng = random.Random(seed)
    rows = []
    for cid in customers:
        for back in rng.sample(range(30), days):
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


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in ms (nearest rank)."""
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return statistics.median(ordered) * 1000, rank(0.95), rank(0.99)


def server_usec(client: redis.Redis) -> int:
    """CPU time of the Redis server's main thread so far, µs (``INFO cpu``: user + system;
    a function's inner commands are in it once)."""
    cpu = cast(dict[str, Any], client.info("cpu"))
    return round(
        (float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])) * 1e6
    )


@dataclass
class Samples:
    """One reader's samples: wall seconds per read, and means of the client's CPU and of
    the Redis server's execution time per read (ms; load-independent costs)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)


def interleaved(
    client: redis.Redis, readers: dict[str, Any], ids_fn: Any, repeats: int
) -> dict[str, Samples]:
    """Time each reader on the same ids, ``repeats`` times, alternating which goes first."""
    names = list(readers)
    for name in names:  # warm-up
        readers[name](ids_fn())
    out = {name: Samples() for name in names}
    for i in range(repeats):
        ids = ids_fn()
        for name in names if i % 2 == 0 else reversed(names):
            before = server_usec(client)
            c0 = time.process_time()
            t0 = time.perf_counter()
            readers[name](ids)
            out[name].wall.append(time.perf_counter() - t0)
            out[name].cpu.append((time.process_time() - c0) * 1000)
            out[name].server.append((server_usec(client) - before) / 1000)
    return out


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
    parser.add_argument("--repeats", type=int, default=1000, help="samples of a 1-customer read")
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
        # customers 1..N: 4 tiles each; N+1..2N: a tile on every day of the window
        few, full = range(1, args.customers + 1), range(args.customers + 1, 2 * args.customers + 1)
        load_functions(client)
        pipe = client.pipeline(transaction=False)
        config = RedisConfig(url)
        for row in tiles_for(few, 4, seed=7) + tiles_for(full, 30, seed=8):
            write_tile(pipe, row, time.time(), config)
        pipe.execute()
        everyone = list(few) + list(full)
        features = read_customer_features_many(client, everyone, AT)
        assert features == [read_customer_features(client, cid, AT) for cid in everyone]
        assert all(f.order_count_30d > 0 for f in features)
        fs.push(store, fs.CUSTOMER_PUSH, fs.customer_push_frame(features, AT), offline=False)
        check = fs.online_customer_features(store, everyone, AT)
        assert [check[cid] for cid in everyone] == features, "Feast read != lab read"
        fields = [client.hlen(f"cf:{cid}") for cid in (few[0], full[0])]
        server_version = cast(dict[str, Any], client.info("server"))["redis_version"]
        feast_version = importlib.metadata.version("feast")

        rng = random.Random(1)
        readers = {
            "feast": lambda ids: fs.online_customer_features(store, ids, AT),
            "lab": lambda ids: read_customer_features_many(client, ids, AT),
            "lab_single": lambda ids: [read_customer_features(client, c, AT) for c in ids],
        }
        read_rows = []
        for shape, pool in (("4 tiles", few), ("30 tiles", full)):
            for n, repeats in ((1, args.repeats), (100, max(30, args.repeats // 3))):
                chosen = (
                    readers if n > 1 else {k: v for k, v in readers.items() if k != "lab_single"}
                )
                samples = interleaved(
                    client, chosen, lambda pool=pool, n=n: rng.sample(list(pool), n), repeats
                )
                read_rows.append((shape, n, repeats, samples, os.getloadavg()[0]))

        # --- push throughput ----------------------------------------------------------
        from cdc_features.job.spark import get_spark

        spark = get_spark("bench-feast")
        n = args.batch_rows
        base = 2 * args.customers + 1
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
        cmd = "bash labs/feature-engineering/scripts/bench.sh feast " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        lines += [
            "# Feast benchmark: online reads and pushes",
            "",
            f"Run: `{cmd.strip()}` — {now}; feast {feast_version}, redis-py {redis.__version__}, "
            f"redis-server {server_version} (loopback), Spark local[2]; {args.customers} "
            f"customers with 4 daily tiles and {args.customers} with 30. "
            f"2-core machine shared with other work: 1-minute load average {load_before:.1f} "
            f"at the start, {os.getloadavg()[0]:.1f} at the end — absolute numbers are noisy, "
            "the ratios of one run are the point.",
            "",
            "## Online read latency (ms)",
            "",
            "Same customers in both stores; each row's reads interleaved on the same random ids "
            f"(tile hashes: {fields[0]} fields for a 4-tile customer, {fields[1]} for a "
            "30-tile one).",
            "",
            "| customers read | tiles per customer | samples | Feast `get_online_features` "
            "p50 / p95 / p99 | lab `read_customer_features_many` p50 / p95 / p99 | "
            "lab single read per customer p50 / p95 / p99 | load after |",
            "|---:|---|---:|---|---|---|---:|",
        ]
        names = ("feast", "lab", "lab_single")
        for shape, count, repeats, samples, load in read_rows:
            cells = [
                " / ".join(f"{v:.2f}" for v in percentiles(samples[name].wall))
                if name in samples
                else "—"
                for name in names
            ]
            lines.append(f"| {count} | {shape} | {repeats} | {' | '.join(cells)} | {load:.1f} |")
        lines += [
            "",
            "What a read costs, whatever the load (means per read, ms): the client's CPU time "
            "(Python) and the Redis server's CPU time (main thread, `INFO cpu`).",
            "",
            "| customers read | tiles per customer | Feast client CPU / Redis | "
            "lab batched client CPU / Redis | lab single reads client CPU / Redis |",
            "|---:|---|---|---|---|",
        ]
        for shape, count, _, samples, _ in read_rows:
            cells = [
                f"{statistics.fmean(samples[name].cpu):.2f} / "
                f"{statistics.fmean(samples[name].server):.3f}"
                if name in samples
                else "—"
                for name in names
            ]
            lines.append(f"| {count} | {shape} | {' | '.join(cells)} |")
        worst = {
            size: max(percentiles(smp["lab"].wall)[2] for _, m, _, smp, _ in read_rows if m == size)
            for size in (1, 100)
        }
        lines += [
            "",
            f"Goals (loopback): 100 customers p99 ≤ 10 ms — lab {worst[100]:.2f} ms "
            f"({'met' if worst[100] <= 10 else 'not met'}); 1 customer p99 ≤ 1 ms — lab "
            f"{worst[1]:.2f} ms ({'met' if worst[1] <= 1 else 'not met'}) (the worse of the "
            "two data shapes).",
            "",
            "Feast: one `HMGET` per customer in one pipeline, protobuf decoding, the on-demand "
            "`days_since_last_order` (pandas). Lab: one `FCALL_RO cdc_read_customers` for up to "
            "500 customers (on the server: each customer's tiles of the window summed, count "
            "and cents, and its newest recency day), then `definitions.py` in Python; the "
            "single read is the same call for one customer, one round trip each.",
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
