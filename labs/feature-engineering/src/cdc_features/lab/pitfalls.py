"""Five pitfalls of naive CDC feature pipelines, each run next to the lab's answer.

Every demo builds a tiny Debezium event log (:class:`~cdc_features.lab.stories.StoryLog`),
runs the naive code (kept in named regions so the lesson can show it) and the lab's code on
the same log, and renders both results. ``python -m cdc_features.lab.lesson_outputs --write``
stores the renderings in ``lesson_outputs/``; the tests re-run them and fail when a committed
output drifts.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import (
    CustomerFeatures,
    Tile,
    customer_features_from_tiles,
    recency_of_tiles,
)
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import compute_customer_features
from cdc_features.lab.stories import StoryLog, order, utc
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import FileStream, raw_frame

# ---------------------------------------------------------------------------
# Shared helpers: raw DataFrame, the lab's features at a read time.
# ---------------------------------------------------------------------------


def lab_tiles(spark: SparkSession, records: list[Record]) -> dict[int, list[Tile]]:
    """The lab's streaming part on a static log: parse → daily tiles, per customer."""
    events = parse_order_events(raw_frame(spark, records)).events
    tiles: dict[int, list[Tile]] = {}
    for row in compute_customer_features(events).collect():
        tiles.setdefault(row["customer_id"], []).append(
            Tile(
                day=row["day"],
                order_count=row["order_count"],
                total_spend=row["total_spend"],
                last_order_ts=_aware(row["last_order_ts"]),
            )
        )
    return tiles


def lab_features(
    spark: SparkSession, records: list[Record], at: datetime
) -> dict[int, CustomerFeatures]:
    """The lab's answer: parse → daily tiles → 30-day features read at ``at``."""
    return {
        cid: customer_features_from_tiles(cid, ts, recency_of_tiles(ts), at)
        for cid, ts in lab_tiles(spark, records).items()
    }


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
        order_events.withWatermark("order_ts", "30 days")
        .groupBy("customer_id", F.window("order_ts", "30 days"))
        .agg(F.count("order_id").alias("order_count_30d"))
    )


# endregion


def tumbling_window_story() -> StoryLog:
    """Customer 1001 orders on both sides of a 30-day bucket edge; 1002 falls silent."""
    log = StoryLog()
    for oid, day in [(1, "2026-02-20"), (2, "2026-02-27"), (3, "2026-03-05"), (4, "2026-03-09")]:
        log.create(order(oid, 1001, f"{day}T10:00:00", "40.00"))
    for oid, day in [(5, "2026-02-10"), (6, "2026-02-12"), (7, "2026-02-15")]:
        log.create(order(oid, 1002, f"{day}T10:00:00", "25.00"))
    return log


def tumbling_window_demo(spark: SparkSession) -> str:
    log = tumbling_window_story()
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
        lines.append(
            f"  customer {row['customer_id']}  window [{start}, {end})"
            f"  order_count_30d = {row['order_count_30d']}"
        )
        stored[row["customer_id"]] = row["order_count_30d"]

    lines += [
        "",
        "Read at T: naive = the value stored per customer; "
        "ours = daily tiles summed over the 30 UTC days ending with T's day",
    ]
    tiles = lab_tiles(spark, log.records)
    for at, cid in [
        (utc("2026-03-10T12:00:00"), 1001),
        (utc("2026-03-10T12:00:00"), 1002),
        (utc("2026-04-20T12:00:00"), 1002),
    ]:
        ours = customer_features_from_tiles(cid, tiles[cid], recency_of_tiles(tiles[cid]), at)
        lines.append(
            f"  T = {_fmt_ts(at)}  customer {cid}:  naive {stored[cid]}"
            f"   ours {ours.order_count_30d}"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# (b) Counting change events instead of orders.
# ---------------------------------------------------------------------------


# region naive_double_count
def naive_spend(order_events: DataFrame) -> DataFrame:
    """WRONG: every change event counted as an order, every after-image summed."""
    return (
        order_events.where(F.col("op") != "d")
        .groupBy("customer_id")
        .agg(F.count("*").alias("order_count_30d"), F.sum("amount").alias("total_spend_30d"))
    )


# endregion


def double_count_story() -> StoryLog:
    """Customer 2001: a redelivery, an update, a cancellation and a delete."""
    log = StoryLog()
    o21 = order(21, 2001, "2026-03-02T09:00:00", "100.00")
    log.create(o21)
    log.redeliver_last()
    o21 = log.change(o21, at="2026-03-02T09:05:00", total_amount="120.00")
    log.change(o21, at="2026-03-03T08:00:00", status="shipped")
    o22 = order(22, 2001, "2026-03-04T12:00:00", "50.00")
    log.create(o22)
    log.change(o22, at="2026-03-04T12:30:00", status="cancelled")
    o23 = order(23, 2001, "2026-03-05T18:00:00", "30.00")
    log.create(o23)
    log.delete(o23, at="2026-03-05T18:10:00")
    return log


def double_count_demo(spark: SparkSession) -> str:
    log = double_count_story()
    at = utc("2026-03-06T12:00:00")
    naive = naive_spend(parse_order_events(raw_frame(spark, log.records)).events).collect()[0]
    ours = lab_features(spark, log.records, at)[2001]
    return (
        "\n".join(
            [
                "Pitfall (b): counting change events instead of orders",
                "",
                "Events of customer 2001:",
                "  order 21 created 100.00, delivered twice; amount updated to 120.00; "
                "status -> shipped",
                "  order 22 created 50.00; status -> cancelled",
                "  order 23 created 30.00; deleted (+ tombstone)",
                "",
                f"Read at T = {_fmt_ts(at)}:",
                f"  naive: order_count_30d = {naive['order_count_30d']}"
                f"   total_spend_30d = {_money(naive['total_spend_30d'])}",
                f"  ours:  order_count_30d = {ours.order_count_30d}"
                f"   total_spend_30d = {_money(ours.total_spend_30d)}"
                f"   avg_order_value_30d = {_money(ours.avg_order_value_30d)}",
            ]
        )
        + "\n"
    )


# ---------------------------------------------------------------------------
# (c) Base64 decimals (decimal.handling.mode=precise) cast like strings.
# ---------------------------------------------------------------------------


# region naive_decimal_cast
def naive_amounts(raw: DataFrame) -> DataFrame:
    """WRONG: the JSON value of a DECIMAL column taken for a number."""
    amount = F.get_json_object("value", "$.payload.after.total_amount")
    return raw.select(
        amount.alias("total_amount_json"), amount.cast("decimal(10,2)").alias("amount")
    )


# endregion


def base64_decimal_demo(spark: SparkSession) -> str:
    log = StoryLog(schemas=True)
    for oid, amount in [(31, "1.56"), (32, "1234.50"), (33, "99.99")]:
        log.create(order(oid, 3001, "2026-03-02T09:00:00", amount))
    raw = raw_frame(spark, log.records)

    lines = [
        "Pitfall (c): DECIMAL(10,2) arrives as base64 (decimal.handling.mode=precise)",
        "",
        "Naive cast under Spark 4's ANSI mode:",
    ]
    try:
        naive_amounts(raw).collect()
        lines.append("  no error")
    except PySparkException as error:
        lines.append(f"  error {error.getCondition()}")

    lines.append("Naive cast with try_cast (no error, silent nulls):")
    tried = raw.select(
        F.get_json_object("value", "$.payload.after.total_amount").alias("json"),
        F.get_json_object("value", "$.payload.after.total_amount")
        .try_cast("decimal(10,2)")
        .alias("amount"),
    ).collect()
    for row in tried:
        lines.append(f'  "{row["json"]}" -> {_money(row["amount"])}')
    total = raw.select(
        F.sum(
            F.get_json_object("value", "$.payload.after.total_amount").try_cast("decimal(10,2)")
        ).alias("s")
    ).collect()[0]["s"]
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
    processed = F.timestamp_millis(F.get_json_object("value", "$.payload.ts_ms").cast("long"))
    return (
        raw.where(F.col("value").isNotNull())
        .groupBy(F.window(processed, "1 day").start.cast("date").alias("day"))
        .agg(F.count("*").alias("orders"))
    )


# endregion


SNAPSHOT_AT = "2026-03-01T09:00:00"
SNAPSHOT_DAYS = ["2026-01-15", "2026-01-28", "2026-02-10", "2026-02-20", "2026-02-25", "2026-02-28"]


def processing_time_story() -> StoryLog:
    """An initial snapshot of six older orders of customer 4001."""
    log = StoryLog()
    for offset, day in enumerate(SNAPSHOT_DAYS):
        log.snapshot(order(41 + offset, 4001, f"{day}T10:00:00", "20.00"), at=SNAPSHOT_AT)
    return log


def processing_time_demo(spark: SparkSession) -> str:
    log = processing_time_story()
    snapshot_at, days = SNAPSHOT_AT, SNAPSHOT_DAYS
    at = utc("2026-03-01T12:00:00")
    raw = raw_frame(spark, log.records)
    naive_days = naive_daily_orders(raw).orderBy("day").collect()
    ours = lab_features(spark, log.records, at)[4001]
    naive_count = sum(
        row["orders"] for row in naive_days if row["day"] > at.date() - timedelta(days=30)
    )
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
        compute_customer_features(parse_order_events(raw).events).orderBy("day").collect()
    )
    lines.append("Ours, orders per day (by order_date, daily tiles; month-day count):")
    lines.append(
        "  " + ", ".join(f"{row['day']:%m-%d} {row['order_count']}" for row in tiles_by_day)
    )
    lines += [
        "",
        f"Read at T = {_fmt_ts(at)}:",
        f"  naive: order_count_30d = {naive_count}   days_since_last_order = {naive_days_since}",
        f"  ours:  order_count_30d = {ours.order_count_30d}"
        f"   days_since_last_order = {ours.days_since_last_order}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# (e) A typo date (year 2099) trusted as event time.
# ---------------------------------------------------------------------------

NO_GUARD = timedelta(days=100_000)  # every order_date trusted, as a naive pipeline does


# region naive_typo_date
def naive_tiles(raw: DataFrame) -> DataFrame:
    """WRONG: every order_date trusted — one typo moves the watermark by 73 years."""
    events = parse_order_events(raw, future_tolerance=NO_GUARD).events  # no event-time guard
    return compute_customer_features(events)


# endregion


def _watermark(query: Any) -> str:
    mark = (query.lastProgress or {}).get("eventTime", {}).get("watermark", "")
    return mark[:10] or "none"


def typo_date_story(year: int = 2099) -> StoryLog:
    """Customer 5001: order 53 typed with ``year`` (2099: the typo; 2026: corrected), then more
    orders, an amount correction and a cancellation."""
    log = StoryLog()
    o51 = order(51, 5001, "2026-03-05T10:00:00", "40.00")
    o52 = order(52, 5001, "2026-03-07T10:00:00", "25.00")
    log.create(o51)
    log.create(o52)
    log.create(order(53, 5001, f"{year}-03-09T10:00:00", "60.00"), at="2026-03-09T10:01:00")
    log.create(order(54, 5001, "2026-03-09T11:00:00", "30.00"))
    log.create(order(55, 5001, "2026-03-10T09:00:00", "15.00"))
    log.change(o51, at="2026-03-10T09:30:00", total_amount="45.00")
    log.change(o52, at="2026-03-10T10:00:00", status="cancelled")
    return log


def typo_date_demo(spark: SparkSession) -> str:
    log = typo_date_story()
    at = utc("2026-03-10T12:00:00")

    stores = {"naive": MemoryStore(), "lab": MemoryStore()}
    with (
        tempfile.TemporaryDirectory(prefix="pitfall-typo-") as tmp,
        FileStream(spark, Path(tmp)) as stream,
    ):
        for record in log.records:
            stream.add([record])  # one event per micro-batch: the watermark moves between them
        raw = stream.source()
        queries = {
            "naive": stream.start(
                "naive_typo",
                naive_tiles(raw),
                stores["naive"].write_tiles,
                available_now=True,
                no_data_batches=False,
            ),
            "lab": stream.start(
                "lab_typo",
                compute_customer_features(parse_order_events(raw).events),
                stores["lab"].write_tiles,
                available_now=True,
                no_data_batches=False,
            ),
        }
        for query in queries.values():
            query.awaitTermination()
        dropped = {"naive": stream.dropped("naive_typo"), "lab": stream.dropped("lab_typo")}
        marks = {name: _watermark(q) for name, q in queries.items()}
    letters = parse_order_events(raw_frame(spark, log.records)).dead_letters.collect()
    letter = next(r for r in letters if r["reason"] != "tombstone")
    key = json.loads(letter["key"])["payload"]

    def features(name: str) -> str:
        f = stores[name].customer_features([5001], at)[5001]
        return (
            f"order_count_30d = {f.order_count_30d}   total_spend_30d = "
            f"{_money(f.total_spend_30d)}   last_order_ts = "
            f"{'null' if f.last_order_ts is None else _fmt_ts(f.last_order_ts)}"
        )

    return (
        "\n".join(
            [
                "Pitfall (e): an order_date typed as 2099, committed on 2026-03-09",
                "",
                "Events of customer 5001, one micro-batch each:",
                "  order 51 created 2026-03-05 40.00; order 52 created 2026-03-07 25.00",
                "  order 53 created with order_date 2099-03-09 (a typo) 60.00",
                "  then: orders 54 (30.00) and 55 (15.00) created, order 51 corrected to 45.00,"
                " order 52 cancelled",
                "",
                f"Naive (every order_date trusted): watermark {marks['naive']}, "
                f"{dropped['naive']} rows of the later events dropped as late",
                f"  at T = {_fmt_ts(at)}: {features('naive')}",
                f"Ours (event-time guard, 1 day): watermark {marks['lab']}, "
                f"{dropped['lab']} rows dropped",
                f"  dead letter {letter['reason']}, key id {key['id']}",
                f"  at T = {_fmt_ts(at)}: {features('lab')}",
            ]
        )
        + "\n"
    )


DEMOS: dict[str, Callable[[SparkSession], str]] = {
    "pitfall_tumbling_window": tumbling_window_demo,
    "pitfall_double_count": double_count_demo,
    "pitfall_base64_decimal": base64_decimal_demo,
    "pitfall_processing_time": processing_time_demo,
    "pitfall_typo_date": typo_date_demo,
}
