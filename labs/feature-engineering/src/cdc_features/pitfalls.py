"""Four pitfalls of naive CDC feature pipelines, each run next to the lab's answer.

Every demo builds a tiny Debezium event log, runs the naive code (kept in named regions
so the lesson can show it) and the lab's code on the same log, and renders both results.
``python -m cdc_features.pitfalls --write`` stores the renderings in ``lesson_outputs/``;
the tests re-run them and fail when a committed output drifts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdc_features.debezium_json import ORDERS, Op, OrderRow, order_event, tombstone_record
from cdc_features.definitions import CustomerFeatures, Tile, customer_features_from_tiles
from cdc_features.envelope import parse_order_events
from cdc_features.features import compute_customer_features

OUTPUT_DIR = Path(__file__).resolve().parents[2] / "lesson_outputs"

Record = dict[str, str | None]


# ---------------------------------------------------------------------------
# Hand-written stories on top of the Debezium message builders.
# ---------------------------------------------------------------------------

def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class OrderLog:
    """A story of ``inventory.orders`` changes, told as raw Debezium records.

    Each method appends the message(s) the connector would write; LSNs grow with every
    event. ``commit`` is the database commit time (``source.ts_ms``); times are UTC.
    """

    def __init__(self, *, schemas: bool = True, start_lsn: int = 24_000_000) -> None:
        self.schemas = schemas
        self.lsn = start_lsn
        self.records: list[Record] = []

    def _emit(self, op: Op, before: OrderRow | None, after: OrderRow | None, *,
              commit: str, processed: str | None = None) -> Record:
        self.lsn += 16
        record = order_event(op, before=before, after=after, lsn=self.lsn,
                             commit_ts=_utc(commit), schemas=self.schemas,
                             processed_ts=_utc(processed) if processed else None)
        self.records.append(record)
        return record

    def create(self, order_id: int, customer_id: int, order_date: str, amount: str, *,
               status: str = "pending", commit: str | None = None) -> OrderRow:
        row = OrderRow(order_id, customer_id, _utc(order_date), status, Decimal(amount))
        self._emit("c", None, row, commit=commit or order_date)
        return row

    def snapshot(self, order_id: int, customer_id: int, order_date: str, amount: str, *,
                 at: str, status: str = "pending") -> OrderRow:
        row = OrderRow(order_id, customer_id, _utc(order_date), status, Decimal(amount))
        self._emit("r", None, row, commit=at, processed=at)
        return row

    def update(self, old: OrderRow, commit: str, **changes: Any) -> OrderRow:
        if "total_amount" in changes:
            changes["total_amount"] = Decimal(changes["total_amount"])
        if "order_date" in changes:
            changes["order_date"] = _utc(changes["order_date"])
        row = replace(old, **changes)
        self._emit("u", old, row, commit=commit)
        return row

    def delete(self, old: OrderRow, commit: str) -> None:
        self._emit("d", old, None, commit=commit)
        self.records.append(tombstone_record(ORDERS, old.id, schemas=self.schemas))

    def redeliver_last(self) -> None:
        """The newest message delivered a second time (at-least-once delivery)."""
        self.records.append(dict(self.records[-1]))


# ---------------------------------------------------------------------------
# Shared helpers: raw DataFrame, the lab's features at a read time.
# ---------------------------------------------------------------------------

def raw_frame(spark: SparkSession, records: Iterable[Record]) -> DataFrame:
    """The raw input of the lab: ``topic``, ``key``, ``value`` strings, as from Kafka."""
    rows = [(r["topic"], r["key"], r["value"]) for r in records]
    return spark.createDataFrame(rows, "topic string, key string, value string")


def lab_tiles(spark: SparkSession, records: list[Record]) -> dict[int, list[Tile]]:
    """The lab's streaming part on a static log: parse → daily tiles, per customer."""
    events = parse_order_events(raw_frame(spark, records)).events
    tiles: dict[int, list[Tile]] = {}
    for row in compute_customer_features(events).collect():
        tiles.setdefault(row["customer_id"], []).append(
            Tile(day=row["day"], order_count=row["order_count"],
                 total_spend=row["total_spend"], last_order_ts=_aware(row["last_order_ts"])))
    return tiles


def lab_features(spark: SparkSession, records: list[Record],
                 at: datetime) -> dict[int, CustomerFeatures]:
    """The lab's answer: parse → daily tiles → 30-day features read at ``at``."""
    return {cid: customer_features_from_tiles(cid, ts, at)
            for cid, ts in lab_tiles(spark, records).items()}


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=UTC)


def _fmt_ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%MZ")


def _money(value: Decimal | None) -> str:
    return "null" if value is None else f"{value:.2f}"


# ---------------------------------------------------------------------------
# (a) A 30-day tumbling window sold as "the last 30 days".
# ---------------------------------------------------------------------------

# region naive_tumbling_window
def naive_customer_counts(order_events: DataFrame) -> DataFrame:
    """WRONG: a 30-day *tumbling* window, upserted per customer as order_count_30d."""
    return (
        order_events
        .withWatermark("order_ts", "30 days")
        .groupBy("customer_id", F.window("order_ts", "30 days"))
        .agg(F.count("order_id").alias("order_count_30d"))
    )
# endregion


def tumbling_window_demo(spark: SparkSession) -> str:
    log = OrderLog()
    for oid, day in [(1, "2026-02-20"), (2, "2026-02-27"), (3, "2026-03-05"), (4, "2026-03-09")]:
        log.create(oid, 1001, f"{day}T10:00:00", "40.00")
    for oid, day in [(5, "2026-02-10"), (6, "2026-02-12"), (7, "2026-02-15")]:
        log.create(oid, 1002, f"{day}T10:00:00", "25.00")

    events = parse_order_events(raw_frame(spark, log.records)).events
    windows = naive_customer_counts(events).orderBy("customer_id", "window.start").collect()
    # The store keeps, per customer, the last row the Update-mode query upserted:
    # the window of that customer's newest event.
    stored: dict[int, int] = {}
    lines = [
        'Pitfall (a): window("order_ts", "30 days") used as "the last 30 days"',
        "",
        "Orders (order_date, UTC):",
        "  customer 1001: 2026-02-20, 2026-02-27, 2026-03-05, 2026-03-09",
        "  customer 1002: 2026-02-10, 2026-02-12, 2026-02-15 (then silence)",
        "",
        "Naive rows (tumbling windows are aligned to 1970-01-01, not to the read time):",
    ]
    for row in windows:
        start, end = row["window"]["start"].date(), row["window"]["end"].date()
        lines.append(f"  customer {row['customer_id']}  window [{start}, {end})"
                     f"  order_count_30d = {row['order_count_30d']}")
        stored[row["customer_id"]] = row["order_count_30d"]

    lines += ["", "Read at T: naive = the value stored per customer; "
                  "ours = daily tiles summed over the 30 UTC days ending with T's day"]
    tiles = lab_tiles(spark, log.records)
    for at, cid in [(_utc("2026-03-10T12:00:00"), 1001), (_utc("2026-03-10T12:00:00"), 1002),
                    (_utc("2026-04-20T12:00:00"), 1002)]:
        ours = customer_features_from_tiles(cid, tiles[cid], at)
        lines.append(f"  T = {_fmt_ts(at)}  customer {cid}:  naive {stored[cid]}"
                     f"   ours {ours.order_count_30d}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# (b) Counting change events instead of orders.
# ---------------------------------------------------------------------------

# region naive_double_count
def naive_spend(order_events: DataFrame) -> DataFrame:
    """WRONG: every change event counted as an order, every after-image summed."""
    return (
        order_events
        .where(F.col("op") != "d")
        .groupBy("customer_id")
        .agg(F.count("*").alias("order_count_30d"),
             F.sum("amount").alias("total_spend_30d"))
    )
# endregion


def double_count_demo(spark: SparkSession) -> str:
    log = OrderLog()
    o21 = log.create(21, 2001, "2026-03-02T09:00:00", "100.00")
    log.redeliver_last()
    o21b = log.update(o21, "2026-03-02T09:05:00", total_amount="120.00")
    log.update(o21b, "2026-03-03T08:00:00", status="shipped")
    o22 = log.create(22, 2001, "2026-03-04T12:00:00", "50.00")
    log.update(o22, "2026-03-04T12:30:00", status="cancelled")
    o23 = log.create(23, 2001, "2026-03-05T18:00:00", "30.00")
    log.delete(o23, "2026-03-05T18:10:00")

    at = _utc("2026-03-06T12:00:00")
    naive = naive_spend(parse_order_events(raw_frame(spark, log.records)).events).collect()[0]
    ours = lab_features(spark, log.records, at)[2001]
    return "\n".join([
        "Pitfall (b): counting change events instead of orders",
        "",
        "Events of customer 2001:",
        "  order 21 created 100.00, delivered twice; amount updated to 120.00; status -> shipped",
        "  order 22 created 50.00; status -> cancelled",
        "  order 23 created 30.00; deleted (+ tombstone)",
        "",
        f"Read at T = {_fmt_ts(at)}:",
        f"  naive: order_count_30d = {naive['order_count_30d']}"
        f"   total_spend_30d = {_money(naive['total_spend_30d'])}",
        f"  ours:  order_count_30d = {ours.order_count_30d}"
        f"   total_spend_30d = {_money(ours.total_spend_30d)}"
        f"   avg_order_value_30d = {_money(ours.avg_order_value_30d)}",
    ]) + "\n"


# ---------------------------------------------------------------------------
# (c) Base64 decimals (decimal.handling.mode=precise) cast like strings.
# ---------------------------------------------------------------------------

# region naive_decimal_cast
def naive_amounts(raw: DataFrame) -> DataFrame:
    """WRONG: the JSON value of a DECIMAL column taken for a number."""
    amount = F.get_json_object("value", "$.payload.after.total_amount")
    return raw.select(amount.alias("total_amount_json"),
                      amount.cast("decimal(10,2)").alias("amount"))
# endregion


def base64_decimal_demo(spark: SparkSession) -> str:
    log = OrderLog(schemas=True)
    for oid, amount in [(31, "1.56"), (32, "1234.50"), (33, "99.99")]:
        log.create(oid, 3001, "2026-03-02T09:00:00", amount)
    raw = raw_frame(spark, log.records)

    lines = ["Pitfall (c): DECIMAL(10,2) arrives as base64 (decimal.handling.mode=precise)", "",
             "Naive cast under Spark 4's ANSI mode:"]
    try:
        naive_amounts(raw).collect()
        lines.append("  no error")
    except PySparkException as error:
        lines.append(f"  error {error.getCondition()}")

    lines.append("Naive cast with try_cast (no error, silent nulls):")
    tried = raw.select(
        F.get_json_object("value", "$.payload.after.total_amount").alias("json"),
        F.get_json_object("value", "$.payload.after.total_amount")
        .try_cast("decimal(10,2)").alias("amount"),
    ).collect()
    for row in tried:
        lines.append(f'  "{row["json"]}" -> {_money(row["amount"])}')
    total = raw.select(F.sum(F.get_json_object("value", "$.payload.after.total_amount")
                             .try_cast("decimal(10,2)")).alias("s")).collect()[0]["s"]
    lines.append(f"  total_spend = {_money(total)}")

    lines.append("Ours (parse_order_events: unscaled big-endian integer, scale from the schema):")
    parsed = parse_order_events(raw).events.orderBy("order_id").collect()
    for record, row in zip(log.records, parsed, strict=True):
        text = json.loads(record["value"] or "{}")["payload"]["after"]["total_amount"]
        lines.append(f'  "{text}" -> {_money(row["amount"])}')
    lines.append(f"  total_spend = {_money(sum((r['amount'] for r in parsed), Decimal('0.00')))}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# (d) Processing time (payload.ts_ms) used as event time.
# ---------------------------------------------------------------------------

# region naive_processing_time
def naive_daily_orders(raw: DataFrame) -> DataFrame:
    """WRONG: the connector's processing time taken as the time of the order."""
    processed = F.timestamp_millis(
        F.get_json_object("value", "$.payload.ts_ms").cast("long"))
    return (
        raw.where(F.col("value").isNotNull())
        .groupBy(F.window(processed, "1 day").start.cast("date").alias("day"))
        .agg(F.count("*").alias("orders"))
    )
# endregion


def processing_time_demo(spark: SparkSession) -> str:
    log = OrderLog()
    snapshot_at = "2026-03-01T09:00:00"
    days = ["2026-01-15", "2026-01-28", "2026-02-10", "2026-02-20", "2026-02-25", "2026-02-28"]
    for offset, day in enumerate(days):
        log.snapshot(41 + offset, 4001, f"{day}T10:00:00", "20.00", at=snapshot_at)

    at = _utc("2026-03-01T12:00:00")
    raw = raw_frame(spark, log.records)
    naive_days = naive_daily_orders(raw).orderBy("day").collect()
    ours = lab_features(spark, log.records, at)[4001]
    naive_count = sum(row["orders"] for row in naive_days
                      if row["day"] > at.date() - timedelta(days=30))
    naive_last = max(row["day"] for row in naive_days)
    naive_days_since = (at.date() - naive_last).days

    lines = [
        "Pitfall (d): payload.ts_ms (processing time) used as event time",
        "",
        f"Initial snapshot at {snapshot_at}Z of 6 existing orders of customer 4001,",
        "order_date: " + ", ".join(days),
        "",
        "Naive orders per day (by payload.ts_ms):",
    ]
    lines += [f"  {row['day']}  {row['orders']}" for row in naive_days]
    tiles_by_day = (
        compute_customer_features(parse_order_events(raw).events)
        .orderBy("day").collect()
    )
    lines.append("Ours, orders per day (by order_date, daily tiles):")
    lines += [f"  {row['day']}  {row['order_count']}" for row in tiles_by_day]
    lines += [
        "",
        f"Read at T = {_fmt_ts(at)}:",
        f"  naive: order_count_30d = {naive_count}   days_since_last_order = {naive_days_since}",
        f"  ours:  order_count_30d = {ours.order_count_30d}"
        f"   days_since_last_order = {ours.days_since_last_order}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# A monitoring sample: the lab's listener, sink observation, PSI and alerts on a real stream.
# ---------------------------------------------------------------------------

def _order_amounts(records: Iterable[Record]) -> list[float]:
    amounts = []
    for record in records:
        if record["value"] is None or not str(record["topic"]).endswith(".orders"):
            continue
        try:
            value = json.loads(record["value"])
        except json.JSONDecodeError:
            continue  # the generator's malformed messages
        payload = value.get("payload", value) if isinstance(value, dict) else None
        after = payload.get("after") if isinstance(payload, dict) else None
        if isinstance(after, dict) and after.get("total_amount") is not None:
            amounts.append(float(after["total_amount"]))
    return amounts


def monitoring_demo(spark: SparkSession) -> str:
    """The exercise log replayed as a stream with the lab's monitoring attached.

    The registry's clock is fixed, so freshness, end-to-end lag and the alerts are exact;
    Spark's own timings (rates, durations) vary by machine and are not printed.
    """
    import logging
    import tempfile

    from cdc_features.exercise_check import RAW_SCHEMA, exercise_log, write_log_files
    from cdc_features.generator import generate_log
    from cdc_features.monitoring.alerts import AlertEngine
    from cdc_features.monitoring.drift import psi, psi_level
    from cdc_features.monitoring.listener import FeatureListener
    from cdc_features.monitoring.observe import observe_written_batch
    from cdc_features.monitoring.registry import MetricsRegistry

    write_clock = _utc("2026-04-04T09:05:30")
    registry = MetricsRegistry(clock=lambda: write_clock)
    deliveries = exercise_log()
    late = OrderLog(start_lsn=25_000_000)
    late.create(15, 102, "2026-01-10T12:00:00", "75.00", commit="2026-04-04T09:04:00")
    late.create(16, 101, "2026-04-04T09:05:00", "12.50")
    deliveries.append(late.records)

    listener = FeatureListener(registry)
    spark.streams.addListener(listener)
    try:
        with tempfile.TemporaryDirectory(prefix="monitoring-sample-") as tmp:
            write_log_files(deliveries, Path(tmp) / "input")
            raw = (spark.readStream.schema(RAW_SCHEMA).option("maxFilesPerTrigger", 1)
                   .json(str(Path(tmp) / "input")))
            tiles = compute_customer_features(parse_order_events(raw).events)

            def sink(batch_df: DataFrame, batch_id: int) -> None:
                observe_written_batch(batch_df, batch_id, query="customer_features",
                                      event_time_col="last_order_ts", registry=registry)

            key = "spark.sql.streaming.noDataMicroBatches.enabled"
            previous = spark.conf.get(key)
            spark.conf.set(key, "false")
            try:
                query = (tiles.writeStream.queryName("customer_features").outputMode("update")
                         .option("checkpointLocation", str(Path(tmp) / "checkpoint"))
                         .foreachBatch(sink).trigger(availableNow=True).start())
            finally:
                spark.conf.set(key, previous)
            query.awaitTermination()
            registry.wait_for_batch("customer_features", len(deliveries) - 1)
    finally:
        spark.streams.removeListener(listener)

    baseline = _order_amounts(generate_log(1, 3000, decimal_mode="string"))
    same_kind = _order_amounts(generate_log(2, 3000, decimal_mode="string"))
    unscaled = [a * 100 for a in same_kind]  # a consumer that ignored the decimal scale
    stable_psi, drifted_psi = psi(baseline, same_kind), psi(baseline, unscaled)
    registry.set_psi("order_amount", drifted_psi)

    alerts: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            alerts.append(record.getMessage())

    logger = logging.getLogger("cdc_features.monitoring.lesson_sample")
    logger.propagate = False
    logger.addHandler(_Collect())
    now = _utc("2026-04-04T09:15:30")
    AlertEngine(registry, logger=logger).evaluate(now)

    stats = registry.query("customer_features")
    write = stats.last_write
    assert write is not None and write.lag_p99_seconds is not None
    lines = [
        "Monitoring sample: the exercise log replayed as a stream (5 deliveries, the last",
        "one with an order dated 2026-01-10, older than the 30-day watermark)",
        "",
        f"customer_features: {stats.batches} batches, {stats.input_rows_total} input rows, "
        f"{stats.rows_dropped_total} dropped by watermark, {stats.rows_written_total} tiles written",
        f"  newest event in the store {stats.newest_event_ts:%Y-%m-%d %H:%M:%S} UTC; "
        f"last batch written {write_clock:%H:%M:%S}, lag p99 {write.lag_p99_seconds:.0f}s",
        f"  at {now:%H:%M:%S}: freshness {stats.freshness_seconds(now):.0f}s",
        f"PSI order_amount, a second generated log vs baseline: {stable_psi:.3f} ({psi_level(stable_psi)})",
        f"PSI order_amount, same log read without the scale: {drifted_psi:.3f} ({psi_level(drifted_psi)})",
        "",
        "Alerts:",
    ]
    lines += [f"  {line}" for line in alerts]
    return "\n".join(lines) + "\n"


DEMOS: dict[str, Callable[[SparkSession], str]] = {
    "pitfall_tumbling_window": tumbling_window_demo,
    "pitfall_double_count": double_count_demo,
    "pitfall_base64_decimal": base64_decimal_demo,
    "pitfall_processing_time": processing_time_demo,
    "monitoring_sample": monitoring_demo,
}


def render_all(spark: SparkSession) -> dict[str, str]:
    """Run every demo; ``{output name: text}``."""
    return {name: demo(spark) for name, demo in DEMOS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help=f"write the outputs to {OUTPUT_DIR} instead of printing them")
    args = parser.parse_args(argv)
    from cdc_features.spark import get_spark

    from cdc_features.exercise_check import console_output

    spark = get_spark("cdc-features-pitfalls")
    outputs = render_all(spark)
    outputs["lab_console"] = console_output(spark)
    for name, text in outputs.items():
        if args.write:
            OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
            (OUTPUT_DIR / f"{name}.txt").write_text(text, encoding="utf-8")
            print(f"wrote {OUTPUT_DIR / (name + '.txt')}")
        else:
            sys.stdout.write(f"== {name}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
