"""Parse each message once for all feature queries, or once per query? (``bash scripts/bench.sh
parse_once``; not part of ``npm test``). Results are printed and written to
``bench/results/parse_once.md``.

The job runs three queries over the same log and each parses the messages it needs: the
orders are parsed three times (customer, product, dead letters), the items twice. The
alternative measured here puts one stateless query in front: it parses every message once and
appends the typed order and item events to a Parquet file table (Spark's streaming file sink,
exactly once through its ``_spark_metadata`` log); the customer and product queries read that
table instead of the raw log. Same functions (``parse_*_events``, ``compute_*_features``), one
more hop. In one run on Spark ``local[2]``:

1. throughput over a generated log (``--events``, ``availableNow``, ``noop`` sinks): the bare
   parse (the machine's ceiling: read + ``from_json`` + count), the job as it is, and the
   parse-once design — its parse stage, then its feature queries (a live job runs them side by
   side; on two cores the sum is what the machine has to do). The parse stage writes the
   events only: a parser that also returns its dead letters from the same pass would make the
   dead-letter query unnecessary, so the design is reported with the job's dead-letter query
   (as it can run today) and without it (with such a parser);
2. freshness: ``--files`` files of ``--events-per-file`` Debezium messages (JSON with schemas,
   as the connector writes by default) dropped into the watched folder every ``--interval``
   seconds, every query at a ``--trigger`` trigger: how long after its file landed a
   customer tile / product line reached the sink (p50/p95/p99), both designs; at the end the
   features of each design are compared with the batch reference.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StructField, StructType

from cdc_features.core.envelope import (
    ITEM_EVENT_SCHEMA,
    ORDER_EVENT_SCHEMA,
    parse_item_events,
    parse_order_events,
)
from cdc_features.core.features import compute_customer_features, compute_product_features
from cdc_features.core.spec import CUSTOMER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig
from cdc_features.job.dead_letters import DeadLetterCounter
from cdc_features.job.pipeline import start_pipeline
from cdc_features.job.queries import (
    start_customer_query,
    start_dead_letter_query,
    start_product_query,
    streaming_writer,
)
from cdc_features.job.sinks import SinkSet, fan_out, write_noop
from cdc_features.job.sources import read_raw_events
from cdc_features.job.spark import get_spark
from cdc_features.lab.generator import LogOptions, iter_log
from cdc_features.lab.replay import newest_order_time
from cdc_features.stores.base import differences_from_reference
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import ORDERED_MTIME_BASE, write_file, write_log
from common import start_bare_parse  # bench/common.py (this script's folder)

RESULTS = Path(__file__).resolve().parent / "results" / "parse_once.md"
PARSE_QUERY = "parse_once"
# The typed events table: which table an event is of, then the order and the item columns.
TYPED_SCHEMA = StructType(
    [
        StructField("kind", ORDER_EVENT_SCHEMA["op"].dataType),
        *ORDER_EVENT_SCHEMA.fields,
        *[f for f in ITEM_EVENT_SCHEMA.fields if f.name not in ORDER_EVENT_SCHEMA.names],
    ]
)


def typed_events(raw: DataFrame, default_scale: int) -> DataFrame:
    """Every order and item message of the raw log as one typed event row (``kind``)."""
    orders = parse_order_events(raw, default_scale=default_scale).events
    items = parse_item_events(raw, default_scale=default_scale).events
    return (
        orders.withColumn("kind", F.lit("order"))
        .unionByName(items.withColumn("kind", F.lit("item")), allowMissingColumns=True)
        .select(*TYPED_SCHEMA.names)
    )


def start_parse_stage(spark: SparkSession, config: PipelineConfig, table: Path) -> StreamingQuery:
    """Raw log → typed events appended to the Parquet table (a file sink: exactly once)."""
    events = typed_events(read_raw_events(spark, config), config.default_scale)
    return (
        streaming_writer(events, PARSE_QUERY, "append", config)
        .format("parquet")
        .option("path", str(table))
        .start()
    )


def read_typed(spark: SparkSession, table: Path) -> tuple[DataFrame, DataFrame]:
    """The order and the item events of the typed table, as the parsers return them."""
    events = spark.readStream.schema(TYPED_SCHEMA).parquet(str(table))
    orders = events.where(F.col("kind") == "order").select(*ORDER_EVENT_SCHEMA.names)
    items = events.where(F.col("kind") == "item").select(*ITEM_EVENT_SCHEMA.names)
    return orders, items


def start_feature_stage(
    spark: SparkSession, config: PipelineConfig, table: Path, sinks: SinkSet
) -> dict[str, StreamingQuery]:
    """The customer and product queries of the job, over the typed table."""
    orders, items = read_typed(spark, table)
    customer = streaming_writer(
        compute_customer_features(orders), f"pc_{CUSTOMER_QUERY}", "update", config
    )
    product = streaming_writer(
        compute_product_features(orders, items), f"pc_{PRODUCT_QUERY}", "update", config
    )
    return {
        CUSTOMER_QUERY: customer.foreachBatch(fan_out(sinks.customers)).start(),
        PRODUCT_QUERY: product.foreachBatch(fan_out(sinks.products)).start(),
    }


def config_for(
    work: Path, input_dir: Path, trigger: str | None, max_files: int | None
) -> PipelineConfig:
    return PipelineConfig(
        checkpoint_dir=work / "checkpoints",
        input_dir=input_dir,
        sinks=("noop",),
        trigger=trigger,
        max_files_per_trigger=max_files,
        dead_letter_dir=work / "dead",
        progress=False,
        out=io.StringIO(),
    )


def _await_all(queries: list[StreamingQuery]) -> None:
    for query in queries:
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(f"{query.name} failed: {query.exception()}")


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


# ------------------------------------------------------------------ throughput
def throughput(
    spark: SparkSession, input_dir: Path, work: Path, max_files: int
) -> dict[str, float]:
    """Seconds of each run over the whole log (same JVM, one after the other)."""
    noop = SinkSet(customers=[write_noop], products=[write_noop])
    seconds: dict[str, float] = {}

    def fresh(name: str) -> Path:
        directory = work / name
        shutil.rmtree(directory, ignore_errors=True)
        return directory

    counts: list[int] = []
    config = config_for(fresh("bare"), input_dir, "available-now", max_files)
    seconds["bare"] = _timed(lambda: _await_all([start_bare_parse(spark, config, counts)]))

    config = config_for(fresh("job"), input_dir, "available-now", max_files)

    def job() -> None:
        pipeline = start_pipeline(spark, config)
        try:
            _await_all(list(pipeline.queries.values()))
        finally:
            pipeline.stop()

    seconds["job"] = _timed(job)

    directory = fresh("once")
    config = config_for(directory, input_dir, "available-now", max_files)
    table = directory / "typed"
    seconds["parse"] = _timed(lambda: _await_all([start_parse_stage(spark, config, table)]))
    seconds["features"] = _timed(
        lambda: _await_all(list(start_feature_stage(spark, config, table, noop).values()))
    )
    dead = start_dead_letter_query(spark, config, DeadLetterCounter(None))
    seconds["dead_letters"] = _timed(lambda: _await_all([dead]))
    seconds["messages"] = float(sum(counts))
    return seconds


# ------------------------------------------------------------------- freshness
class Recorder:
    """A foreachBatch function noting when each micro-batch reached the sink and the newest
    commit time (``source.ts_ms``) among its rows."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int]] = []  # (wall time, newest commit ms)
        self.lock = threading.Lock()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        row = batch_df.agg(F.max(F.unix_millis("commit_ts"))).first()
        if row is not None and row[0] is not None:
            with self.lock:
                self.seen.append((time.time(), int(row[0])))


def _commit_ms(record: dict[str, Any]) -> int | None:
    try:
        value = json.loads(record["value"])
        payload = value.get("payload", value)
        return int(payload["source"]["ts_ms"])
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def delays(
    files: list[tuple[float, list[dict[str, Any]]]], recorder: Recorder, topic_suffix: str
) -> list[float]:
    """Seconds from each file's landing to the first sink batch holding its newest change.

    Commit times grow along the log except for re-sent and snapshot messages, so a file is
    timed only when its newest commit time is newer than every earlier file's (then a batch
    holding that time holds the file)."""
    out: list[float] = []
    newest = -1
    for landed, records in files:
        times = [
            t
            for r in records
            if r["topic"].endswith(topic_suffix) and (t := _commit_ms(r)) is not None
        ]
        if not times or max(times) <= newest:
            continue
        newest = max(times)
        reached = [wall for wall, ms in recorder.seen if ms >= newest]
        if reached:
            out.append(min(reached) - landed)
    return out


def freshness(
    spark: SparkSession,
    work: Path,
    design: str,
    records: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Replay the files at a steady pace into one design; delays per sink and the check."""
    directory = work / f"fresh-{design}"
    shutil.rmtree(directory, ignore_errors=True)
    input_dir = directory / "input"
    input_dir.mkdir(parents=True)
    config = config_for(directory, input_dir, args.trigger, None)
    store = MemoryStore()
    customers, products = Recorder(), Recorder()
    sinks = SinkSet(
        customers=[customers, store.write_tiles], products=[products, store.write_lines]
    )
    queries: list[StreamingQuery] = []
    if design == "job":
        queries += [
            start_customer_query(spark, config, sinks),
            start_product_query(spark, config, sinks),
        ]
    else:
        table = directory / "typed"
        table.mkdir()
        queries.append(start_parse_stage(spark, config, table))
        queries += list(start_feature_stage(spark, config, table, sinks).values())
    dead_config = config_for(directory, input_dir, config.effective_dead_letter_trigger, None)
    queries.append(start_dead_letter_query(spark, dead_config, DeadLetterCounter(None)))
    landed: list[tuple[float, list[dict[str, Any]]]] = []
    try:
        time.sleep(5)  # the queries' first (empty) micro-batches
        chunk = args.events_per_file
        for index in range(args.files):
            part = records[index * chunk : (index + 1) * chunk]
            write_file(part, input_dir / f"{index:05d}.json", mtime=ORDERED_MTIME_BASE + index)
            landed.append((time.time(), part))
            time.sleep(args.interval)
        for query in queries:
            query.processAllAvailable()
    finally:
        for query in queries:
            query.stop()
    replayed = [r for _, part in landed for r in part]
    return {
        "customer": delays(landed, customers, ".orders"),
        "product": delays(landed, products, ""),
        "differences": differences_from_reference(store, replayed, newest_order_time(replayed)),
    }


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return "—"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"{q[49]:.2f} / {q[94]:.2f} / {q[98]:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=400_000, help="throughput log size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--log-events-per-file", type=int, default=50_000)
    ap.add_argument("--max-files-per-trigger", type=int, default=2)
    ap.add_argument("--files", type=int, default=120, help="freshness: files dropped")
    ap.add_argument("--events-per-file", type=int, default=30, help="freshness: file size")
    ap.add_argument("--interval", type=float, default=0.5, help="freshness: seconds between files")
    ap.add_argument("--trigger", default="500 milliseconds", help="freshness: trigger interval")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-freshness", action="store_true")
    args = ap.parse_args(argv)
    command = "bash scripts/bench.sh parse_once " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    started_at = datetime.now(UTC)
    load_start = _load()
    work = Path(tempfile.mkdtemp(prefix="bench-parse-once-"))
    lines = [
        "# Parse once for all feature queries, or once per query",
        "",
        f"- Command: `{command.strip()}` (`labs/feature-engineering/bench/bench_parse_once.py`)",
        f"- Date: {started_at:%Y-%m-%d %H:%M} UTC; Spark `local[2]`, shuffle partitions 2; "
        f"the machine has 2 cores shared with other work (load average at the start: {load_start}).",
        "",
    ]
    try:
        spark = get_spark("cdc-features-parse-once")
        if not args.skip_throughput:
            input_dir = work / "input"
            print(f"generating {args.events:,} events ...", flush=True)
            write_log(
                iter_log(
                    args.seed,
                    args.events,
                    LogOptions(schemas=False, days=60.0, malformed_rate=0.001),
                ),
                input_dir,
                events_per_file=args.log_events_per_file,
            )
            warm = work / "warm-input"
            warm.mkdir()
            first = sorted(input_dir.glob("*.jsonl"))[0]
            shutil.copy(first, warm / first.name)
            print("warm-up ...", flush=True)
            throughput(spark, warm, work / "warm", args.max_files_per_trigger)
            print("throughput ...", flush=True)
            s = throughput(spark, input_dir, work / "run", args.max_files_per_trigger)
            if int(s["messages"]) != args.events:
                raise RuntimeError(f"the bare parse counted {s['messages']:,.0f} messages")
            once_all = s["parse"] + s["features"] + s["dead_letters"]
            once = s["parse"] + s["features"]
            rows = [
                ("bare parse (the ceiling)", s["bare"]),
                ("the job: three queries, each parsing (side by side)", s["job"]),
                ("parse once: the parse stage (raw → typed Parquet table)", s["parse"]),
                (
                    "parse once: customer + product queries over the table (side by side)",
                    s["features"],
                ),
                ("parse once: the dead-letter query over the raw log", s["dead_letters"]),
                ("**parse once, with the dead-letter query** (sum of the three)", once_all),
                ("**parse once, dead letters from the parse stage** (sum of the two)", once),
            ]
            lines += [
                "## Throughput",
                "",
                f"{args.events:,} generated change events (seed {args.seed}, `schemas.enable=false`), "
                f"`availableNow`, {args.max_files_per_trigger} files of {args.log_events_per_file:,} "
                "events per micro-batch, `noop` sinks; after a warm-up over the first file in the "
                "same JVM.",
                "",
                "| Run | Wall time | Events/s | Fraction of the bare-parse ceiling |",
                "|---|---|---|---|",
                *[
                    f"| {name} | {sec:.1f} s | {args.events / sec:,.0f} | {s['bare'] / sec:.0%} |"
                    for name, sec in rows
                ],
                "",
            ]
            print("\n".join(lines[-len(rows) - 3 :]), flush=True)
        if not args.skip_freshness:
            records = list(
                iter_log(
                    args.seed + 1,
                    args.files * args.events_per_file,
                    LogOptions(schemas=True, days=10.0),
                )
            )
            results = {}
            for design in ("job", "once"):
                print(f"freshness: {design} ...", flush=True)
                results[design] = freshness(spark, work, design, records, args)
            lines += [
                "## Freshness: the extra hop",
                "",
                f"{args.files} files of {args.events_per_file} Debezium messages (JSON with schemas) "
                f"landing every {args.interval} s in the watched folder, every feature query (and the "
                f"parse stage) at a `{args.trigger}` trigger, dead letters every 10 s: seconds from a "
                "file landing to the first sink batch holding its newest change (p50 / p95 / p99).",
                "",
                "| Design | Customer tiles | Product lines | Files timed | Features equal to the reference |",
                "|---|---|---|---|---|",
            ]
            for design, name in (
                ("job", "the job (each query parses)"),
                ("once", "parse once (one more hop)"),
            ):
                r = results[design]
                lines.append(
                    f"| {name} | {quantiles(r['customer'])} | {quantiles(r['product'])} | "
                    f"{len(r['customer'])} / {len(r['product'])} | "
                    f"{'yes' if not r['differences'] else 'NO: ' + '; '.join(r['differences'][:3])} |"
                )
            lines.append("")
            print("\n".join(lines[-5:]), flush=True)
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines.append(f"Load average at the end: {_load()}.")
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")
    return 0


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
