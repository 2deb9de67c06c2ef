"""The customer tiles' Redis layout, before and after, in one run (``bash scripts/bench.sh
layout``; not part of the tests).

Before: a hash per customer and day (``cf:{id}:{yyyymmdd}``, fields ``order_count``,
``total_spend``, ``last_order_ts_us``; ``HSET`` + ``EXPIREAT`` per tile), read as 30 ``HGETALL``
per customer. After (``stores/layout.py``): one hash per customer, a field per day, written by
the function ``cdc_put_tile`` and read by ``cdc_read_customers`` (one call for many
customers). The recency sets are the same in both. The "before" writer and reader live here,
as the baseline; everything else is the lab's code.

Measured against one private redis-server on a loopback port, the same tile rows, the same
process:

1. writes: every tile row written through the executor-side writer
   (``redis_store._write_partition``: one pipeline, flushed every 500 rows), each layout
   twice, alternating; rows/s (the better of the two) and the Redis server's CPU time per
   row (``INFO cpu``, main thread);
2. reads of 1 and 100 customers at T: p50 / p95 / p99 wall time, interleaved on the same
   random ids, with the client's CPU and Redis's time per read; "before" in one pipeline for
   all the customers (what the lab's ``RedisFeatureReader`` did) and one pipeline per customer
   (what ``read_customer_features`` did, called once per customer). Both layouts' features
   are checked equal for every customer first.

Results are printed and written to ``bench/results/layout.md``.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import redis

from cdc_features.core.definitions import (
    CustomerFeatures,
    Recency,
    Tile,
    customer_features_from_tiles,
    window_days,
)
from cdc_features.core.spec import CUSTOMER
from cdc_features.stores import redis_store as rs
from cdc_features.stores.layout import (
    decode_recency,
    expire_at,
    from_micros,
    recency_key,
    recency_score_range,
    to_micros,
)
from cdc_features.testing import RedisServer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "layout.md"
AT = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


# --- the layout before: a hash per customer and day (the baseline) -------------------------
def old_key(customer_id: int, day: date) -> str:
    return f"cf:{customer_id}:{day:%Y%m%d}"


def old_write_tile(pipe: Any, row: Any, now: float, config: rs.RedisConfig) -> None:
    """The tile writer before: recency as now, then ``HSET`` of three fields + ``EXPIREAT``
    (``DEL`` of an emptied tile)."""
    key = old_key(row["customer_id"], row["day"])
    rs.write_recency(pipe, row, now, config)
    if not row["order_count"]:
        pipe.delete(key)
        return
    last = row["last_order_ts"]
    pipe.hset(
        key,
        mapping={
            "order_count": int(row["order_count"]),
            "total_spend": format(Decimal(row["total_spend"]).quantize(Decimal("0.01")), "f"),
            "last_order_ts_us": to_micros(last) if last is not None else "",
        },
    )
    pipe.expireat(key, expire_at(row["day"], CUSTOMER.ttl_days, now, config.min_ttl_seconds))


def _old_tile(day: date, fields: dict[bytes, bytes]) -> Tile | None:
    if not fields:
        return None
    last = fields.get(b"last_order_ts_us", b"")
    return Tile(
        day,
        int(fields[b"order_count"]),
        Decimal(fields[b"total_spend"].decode()),
        from_micros(int(last)) if last else None,
    )


def old_read_many(
    client: redis.Redis, customer_ids: Sequence[int], at: datetime
) -> list[CustomerFeatures]:
    """The read before: the 30 day keys of each customer's window and its newest recency
    day, every customer in one pipeline."""
    first, _ = window_days(at, CUSTOMER.window_days)
    days = [first + timedelta(days=i) for i in range(CUSTOMER.window_days)]
    low, high = recency_score_range(at)
    pipe = client.pipeline(transaction=False)
    for cid in customer_ids:
        for day in days:
            pipe.hgetall(old_key(cid, day))
        pipe.zrevrangebyscore(recency_key(cid), high, low, start=0, num=1, withscores=True)
    replies = iter(pipe.execute())
    out = []
    for cid in customer_ids:
        tiles = [_old_tile(day, next(replies)) for day in days]
        recency: list[Recency] = [decode_recency(m, s) for m, s in next(replies)]
        out.append(customer_features_from_tiles(cid, [t for t in tiles if t], recency, at))
    return out


# --- measurement ---------------------------------------------------------------------------
def tile_rows(customers: range, days: int, seed: int) -> list[dict[str, Any]]:
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


def server_usec(client: redis.Redis) -> int:
    """CPU time of the Redis server's main thread so far, µs (``INFO cpu``: user + system;
    a function's inner commands are in it once)."""
    cpu = cast(dict[str, Any], client.info("cpu"))
    return round(
        (float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])) * 1e6
    )


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in ms (nearest rank)."""
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return statistics.median(ordered) * 1000, rank(0.95), rank(0.99)


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # ms
    server: list[float] = field(default_factory=list)  # ms


Reader = Callable[[Sequence[int]], Any]


def interleaved(
    client: redis.Redis, readers: dict[str, Reader], ids_fn: Callable[[], list[int]], repeats: int
) -> dict[str, Samples]:
    """Time each reader on the same ids, ``repeats`` times, alternating which goes first."""
    names = list(readers)
    for name in names:
        readers[name](ids_fn())  # warm-up
    out = {name: Samples() for name in names}
    for i in range(repeats):
        ids = ids_fn()
        for name in names if i % 2 == 0 else list(reversed(names)):
            before = server_usec(client)
            c0 = time.process_time()
            t0 = time.perf_counter()
            readers[name](ids)
            out[name].wall.append(time.perf_counter() - t0)
            out[name].cpu.append((time.process_time() - c0) * 1000)
            out[name].server.append((server_usec(client) - before) / 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000, help="per data shape")
    parser.add_argument("--repeats", type=int, default=1_000, help="samples of a 1-customer read")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench_layout_"))
    server = RedisServer(workdir / "redis").start()
    lines: list[str] = []
    try:
        client = redis.Redis.from_url(server.url)
        config = rs.RedisConfig(server.url)
        few = range(1, args.customers + 1)
        full = range(args.customers + 1, 2 * args.customers + 1)
        rows = tile_rows(few, 4, seed=7) + tile_rows(full, 30, seed=8)
        random.Random(3).shuffle(rows)  # micro-batches hold the tiles of many customers

        # --- writes ---------------------------------------------------------------------
        writers: dict[str, tuple[Any, bool]] = {
            "before": (old_write_tile, False),
            "after": (rs.write_tile, True),
        }
        writes: dict[str, list[tuple[float, float]]] = {name: [] for name in writers}
        for _ in range(2):
            for name, (write_row, functions) in writers.items():
                client.flushall()
                cpu_before = server_usec(client)
                started = time.perf_counter()
                rs._write_partition(
                    iter(rows), config=config, write_row=write_row, functions=functions
                )
                seconds = time.perf_counter() - started
                writes[name].append((seconds, (server_usec(client) - cpu_before) / len(rows)))
        load_writes = os.getloadavg()[0]

        # --- both layouts side by side (the recency sets are shared) ---------------------
        client.flushall()
        rs.load_functions(client)
        pipe = client.pipeline(transaction=False)
        for row in rows:
            old_write_tile(pipe, row, time.time(), config)
            rs.write_tile(pipe, row, time.time(), config)
        pipe.execute()
        everyone = list(few) + list(full)
        after = rs.read_customer_features_many(client, everyone, AT)
        before = old_read_many(client, everyone, AT)
        assert after == before, "the two layouts read different features"
        assert all(f.order_count_30d > 0 for f in after)

        rng = random.Random(1)
        readers: dict[str, Reader] = {
            "before_batched": lambda ids: old_read_many(client, ids, AT),
            "before_single": lambda ids: [old_read_many(client, [c], AT) for c in ids],
            "after_batched": lambda ids: rs.read_customer_features_many(client, ids, AT),
        }
        reads = []
        for shape, pool in (("4 tiles", few), ("30 tiles", full)):
            ids_pool = list(pool)
            for n, repeats in ((1, args.repeats), (100, max(30, args.repeats // 3))):
                chosen = dict(readers)
                if n == 1:
                    del chosen["before_single"]  # the same read as batched for one customer

                def draw(ids_pool: list[int] = ids_pool, n: int = n) -> list[int]:
                    return rng.sample(ids_pool, n)

                samples = interleaved(client, chosen, draw, repeats)
                reads.append((shape, n, repeats, samples, os.getloadavg()[0]))

        # --- report -----------------------------------------------------------------------
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        version = cast(dict[str, Any], client.info("server"))["redis_version"]
        cmd = "bash labs/feature-engineering/scripts/bench.sh layout " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        lines += [
            "# Customer tiles in Redis: a hash per customer and day vs one hash per customer",
            "",
            f"Run: `{cmd.strip()}` — {now}; redis-server {version} (loopback), redis-py "
            f"{redis.__version__}; {args.customers} customers with 4 daily tiles and "
            f"{args.customers} with 30 ({len(rows):,} tile rows). 2-core machine shared with "
            f"other work: 1-minute load average {load_start:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end — compare within a table, not across runs.",
            "",
            "## Writes (the executor-side writer, one pipeline flushed every 500 rows)",
            "",
            "| layout | rows/s (better of 2 runs) | Redis server CPU per row (µs) |",
            "|---|---:|---:|",
        ]
        label = {
            "before": "before: `HSET` + `EXPIREAT` of `cf:{id}:{yyyymmdd}`",
            "after": "after: `FCALL cdc_put_tile` on `cf:{id}` (field per day, trim)",
        }
        for name, runs in writes.items():
            seconds, usec = min(runs)
            lines.append(f"| {label[name]} | {len(rows) / seconds:,.0f} | {usec:.1f} |")
        lines += [
            "",
            f"Both include the tile's recency-set commands. Load after the writes: "
            f"{load_writes:.1f}.",
            "",
            "## Reads at T (ms)",
            "",
            "| customers | tiles per customer | samples | before, one pipeline for all p50 / p95 / "
            "p99 | before, one pipeline per customer p50 / p95 / p99 | after, "
            "`read_customer_features_many` p50 / p95 / p99 | load after |",
            "|---:|---|---:|---|---|---|---:|",
        ]
        names = ("before_batched", "before_single", "after_batched")
        for shape, count, repeats, samples, load in reads:
            cells = [
                " / ".join(f"{v:.2f}" for v in percentiles(samples[name].wall))
                if name in samples
                else "—"
                for name in names
            ]
            lines.append(f"| {count} | {shape} | {repeats} | {' | '.join(cells)} | {load:.1f} |")
        lines += [
            "",
            "Means per read (ms): the client's CPU time / the Redis server's CPU time (`INFO cpu`).",
            "",
            "| customers | tiles per customer | before, one pipeline for all | before, one "
            "pipeline per customer | after |",
            "|---:|---|---|---|---|",
        ]
        for shape, count, _, samples, _ in reads:
            cells = [
                f"{statistics.fmean(samples[name].cpu):.2f} / "
                f"{statistics.fmean(samples[name].server):.3f}"
                if name in samples
                else "—"
                for name in names
            ]
            lines.append(f"| {count} | {shape} | {' | '.join(cells)} |")
        lines += [
            "",
            "Before: 30 `HGETALL` + 1 `ZREVRANGEBYSCORE` per customer, decoded and summed in "
            "Python. After: one `FCALL_RO cdc_read_customers` (the window's tiles summed on "
            "the server, the newest recency day), the features in Python. Both layouts' "
            f"features were equal for all {len(everyone):,} customers before timing.",
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
