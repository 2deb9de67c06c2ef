"""The lesson's event-time playground, proven on Spark: fixtures of the lab's own queries.

The lesson's playground (``src/lib/playground/`` in the site) simulates the customer
features in TypeScript. This module runs the real thing on the same logs and records what
Spark did, micro-batch by micro-batch, so a TypeScript test can require exact equality:

* the input: only change events of ``inventory.orders`` (what :func:`parse_order_events`
  turns into events; tombstones and ``order_items`` records are left out), written into a
  watched folder ``batch_size`` events per file, read with ``maxFilesPerTrigger=1`` and no
  no-data batches — one micro-batch per file;
* the lab's query: ``parse_order_events`` → ``compute_customer_features`` → a
  :class:`~cdc_features.stores.memory.MemoryStore`; per micro-batch the watermark it ran
  with (the progress' ``eventTime.watermark``), the rows its state operator dropped as late
  (``numRowsDroppedByWatermark``), the tile rows it emitted, and the features read through
  the store (``core/definitions.py``) at every read time ``T`` of the log, for every customer
  seen so far;
* the naive query of the lesson (:func:`~cdc_features.lab.pitfalls.naive_customer_counts`,
  a 30-day tumbling window) on the same events — on ``order_date``, or, for the processing
  time pitfall, on the commit time ``source.ts_ms``: its watermark, drops and window rows.

Each fixture also holds the engine's input log: the typed events as the lab's parser
produced them, in arrival order. ``python -m cdc_features.lab.playground --write``
(``npm run playground:fixtures``) regenerates ``playground_fixtures/``;
``tests/test_playground.py`` re-runs a small one and fails when it drifts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from cdc_features import LAB_DIR
from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import compute_customer_features
from cdc_features.core.spec import CUSTOMER, FUTURE_TOLERANCE, RECENCY_HORIZON_DAYS
from cdc_features.lab.generator import generate_log
from cdc_features.lab.pitfalls import (
    double_count_story,
    naive_customer_counts,
    processing_time_story,
    tumbling_window_story,
    typo_date_story,
)
from cdc_features.lab.stories import feature_stories, utc
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import FileStream, raw_frame

FIXTURE_DIR = LAB_DIR / "playground_fixtures"
FORMAT_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NAIVE_WATERMARK_DAYS = 30  # the literal of naive_customer_counts (the lesson's wrong code)
# The parser's event-time guard has no off switch: a tolerance of a century lets every date of
# these logs through (the typo story's 2099 is 73 years ahead), i.e. an unguarded pipeline.
UNGUARDED = timedelta(days=36_500)

# ---------------------------------------------------------------------------
# The logs: the lesson's stories and generated logs.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaygroundLog:
    """One log of the playground: records, micro-batch size, read times, naive event time."""

    name: str
    title: str  # Russian: the preset's name in the playground
    records: list[Record]
    batch_size: int
    read_at: list[datetime]
    naive_time: str = "order_date"  # or "commit": the processing-time pitfall
    guard: bool = True  # the parser's event-time guard (False: what an unguarded pipeline does)
    preset: bool = True  # shown as a preset in the lesson (generated logs are not)
    # Features of every customer seen so far after each micro-batch (False: only of those the
    # micro-batch names, and of all after the last one — keeps a long log's fixture small).
    read_all: bool = True


def tumbling_window_log() -> PlaygroundLog:
    """Pitfall (a): the story of ``tumbling_window_demo``, two orders per micro-batch."""
    return PlaygroundLog(
        "tumbling_window",
        "30-дневное tumbling-окно",
        tumbling_window_story().records,
        batch_size=2,
        read_at=[utc("2026-03-10T12:00:00"), utc("2026-04-20T12:00:00")],
    )


def double_count_log() -> PlaygroundLog:
    """Pitfall (b): the story of ``double_count_demo`` (redelivery, update, cancel, delete)."""
    return PlaygroundLog(
        "double_count",
        "Двойной счёт изменений",
        double_count_story().records,
        batch_size=3,
        read_at=[utc("2026-03-06T12:00:00")],
    )


def processing_time_log() -> PlaygroundLog:
    """Pitfall (d): the snapshot of ``processing_time_demo``; the naive query runs on the
    commit time (for a snapshot read, the snapshot time)."""
    return PlaygroundLog(
        "processing_time",
        "Время обработки вместо времени события",
        processing_time_story().records,
        batch_size=3,
        read_at=[utc("2026-03-01T12:00:00")],
        naive_time="commit",
    )


def typo_date_log(year: int = 2099, *, guard: bool = True) -> PlaygroundLog:
    """Pitfall (e): the story of ``typo_date_demo``, one event per micro-batch. The lab's
    parser does not let the 2099 version count (event-time guard); an unguarded pipeline's
    watermark jumps to 2099 minus the delay and the events after it are dropped as late (from
    the second micro-batch after the typo: Spark filters late rows with the previous batch's
    watermark). ``year=2026`` is the story with the typo corrected (the edit test)."""
    name, title = "typo_date", "Опечатка в дате: 2099 год"
    if year != 2099:
        name, title = "typo_date_fixed", "Опечатка исправлена"
    elif not guard:
        name, title = "typo_date_unguarded", "Опечатка в дате без защиты"
    return PlaygroundLog(
        name,
        title,
        typo_date_story(year).records,
        batch_size=1,
        read_at=[utc("2026-03-10T12:00:00")],
        preset=name == "typo_date",
        guard=guard,
    )


def feature_stories_log() -> PlaygroundLog:
    """Every feature story of the lesson (create, update, cancel, delete, move, late, too
    late, overlapping snapshot, duplicates, silence), four events per micro-batch."""
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    return PlaygroundLog(
        "feature_stories",
        "Все истории урока",
        feature_stories().records,
        batch_size=4,
        read_at=[now, now + timedelta(days=31)],
    )


def generated_log(seed: int, n_orders: int, batch_size: int) -> PlaygroundLog:
    """A generated shop log (``lab/generator.py``) cut to its first ``n_orders`` order events."""
    records: list[Record] = []
    raw = generate_log(seed, 4 * n_orders, days=60.0)
    records = [r for r in raw if is_order_event(r)][:n_orders]
    if len(records) < n_orders:
        raise ValueError(f"seed {seed}: only {len(records)} order events, {n_orders} wanted")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    return PlaygroundLog(
        f"generated_seed{seed}",
        f"Сгенерированный журнал (seed {seed})",
        records,
        batch_size=batch_size,
        read_at=[start + timedelta(days=d, hours=12) for d in (10, 40, 75)],
        preset=False,
        read_all=False,
    )


def all_logs() -> list[PlaygroundLog]:
    """The presets of the lesson's playground, then the generated logs."""
    return [
        tumbling_window_log(),
        double_count_log(),
        processing_time_log(),
        typo_date_log(),
        typo_date_log(guard=False),
        typo_date_log(2026),
        feature_stories_log(),
        generated_log(7, 1_000, 40),
        generated_log(2026, 1_200, 75),
    ]


# ---------------------------------------------------------------------------
# The input log of the engine: the parser's typed events, in arrival order.
# ---------------------------------------------------------------------------


def is_order_event(record: Mapping[str, Any]) -> bool:
    """A change event of ``inventory.orders`` (not a tombstone, not an item)."""
    return record.get("value") is not None and str(record.get("topic", "")).endswith(".orders")


def _us(ts: datetime | None) -> int | None:
    if ts is None:
        return None
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return (aware - EPOCH) // ONE_US


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _identity(record: Mapping[str, Any]) -> tuple[int, int, str]:
    """``(order id, lsn, op)`` of a raw order record (duplicates are identical messages)."""
    message = json.loads(str(record["value"]))
    payload = message["payload"] if isinstance(message.get("payload"), dict) else message
    image = payload.get("after") or payload.get("before")
    return int(image["id"]), int(payload["source"]["lsn"]), str(payload["op"])


def _image(row: Row, prefix: str) -> dict[str, Any] | None:
    if row[f"{prefix}customer_id"] is None and row[f"{prefix}order_ts"] is None:
        return None
    return {
        "customer": row[f"{prefix}customer_id"],
        "date": _us(row[f"{prefix}order_ts"]),
        "status": row[f"{prefix}status"],
        "amount": _money(row[f"{prefix}amount"]),
    }


def engine_events(spark: SparkSession, records: Sequence[Record]) -> list[dict[str, Any]]:
    """The typed events ``parse_order_events`` makes of ``records``, in arrival order, as the
    engine's input: ``op, order, lsn, commit`` (µs), ``after`` and ``before`` images
    (``customer, date`` µs, ``status, amount`` text; ``null`` where the event has none)."""
    # Unguarded: the engine applies the event-time guard itself, from the typed dates.
    raw = raw_frame(spark, records)
    parsed = parse_order_events(raw, future_tolerance=UNGUARDED).events.collect()
    typed: dict[tuple[int, int, str], Row] = {}
    for row in parsed:
        typed[(row["order_id"], row["lsn"], row["op"])] = row
    out = []
    for record in records:
        row = typed[_identity(record)]
        out.append(
            {
                "op": row["op"],
                "order": row["order_id"],
                "lsn": row["lsn"],
                "commit": _us(row["commit_ts"]),
                "after": _image(row, "") if row["op"] != "d" else None,
                "before": _image(row, "before_") if row["op"] in ("u", "d") else None,
            }
        )
    return out


# ---------------------------------------------------------------------------
# The Spark runs.
# ---------------------------------------------------------------------------


def _watermark_ms(progress: Mapping[str, Any]) -> int:
    text = (progress.get("eventTime") or {}).get("watermark")
    if text is None:
        raise ValueError(f"no eventTime.watermark in batch {progress.get('batchId')}")
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (ts - EPOCH) // timedelta(milliseconds=1)


def _dropped(progress: Mapping[str, Any]) -> int:
    return sum(int(op.get("numRowsDroppedByWatermark", 0)) for op in progress["stateOperators"])


def _day(value: date) -> str:
    return value.isoformat()


def _features_row(f: CustomerFeatures) -> list[Any]:
    return [
        f.customer_id,
        f.order_count_30d,
        _money(f.total_spend_30d),
        _us(f.last_order_ts),
        f.days_since_last_order,
    ]


class _Collector:
    """foreachBatch sinks that keep each micro-batch's rows by batch id."""

    def __init__(self) -> None:
        self.tiles: dict[int, list[list[Any]]] = {}
        self.naive: dict[int, list[list[Any]]] = {}
        self.store = MemoryStore()

    def write_tiles(self, batch_df: DataFrame, batch_id: int) -> None:
        rows = batch_df.collect()
        self.store.apply_tiles(r.asDict() for r in rows)
        self.tiles[batch_id] = sorted(
            [
                r["customer_id"],
                _day(r["day"]),
                r["order_count"],
                _money(r["total_spend"]),
                _us(r["last_order_ts"]),
            ]
            for r in rows
        )

    def write_naive(self, batch_df: DataFrame, batch_id: int) -> None:
        rows = batch_df.collect()
        self.naive[batch_id] = sorted(
            (
                [
                    r["customer_id"],
                    _day(r["window"]["start"].date()),
                    _day(r["window"]["end"].date()),
                    r["order_count_30d"],
                ]
                for r in rows
            ),
            key=lambda row: (row[0] is not None, row[0] or 0, row[1]),
        )


def _progress_by_batch(stream: FileStream, name: str) -> dict[int, Mapping[str, Any]]:
    return {int(p["batchId"]): p for p in stream.queries[name].recentProgress}


def run_log(spark: SparkSession, log: PlaygroundLog, work: Path) -> dict[str, Any]:
    """Run the lab's query and the naive one over ``log``, one micro-batch per
    ``batch_size`` events; return the fixture (input log + per-batch results)."""
    records = [r for r in log.records if is_order_event(r)]
    batches = [records[i : i + log.batch_size] for i in range(0, len(records), log.batch_size)]
    sinks = _Collector()
    seen: list[int] = []
    results: list[dict[str, Any]] = []
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", str(len(batches) + 10))
    with FileStream(spark, work) as stream:
        tolerance = FUTURE_TOLERANCE if log.guard else UNGUARDED
        events = parse_order_events(stream.source(), future_tolerance=tolerance).events
        naive_input = (
            events.withColumn("order_ts", F.col("commit_ts"))
            if log.naive_time == "commit"
            else events
        )
        stream.start(
            "lab", compute_customer_features(events), sinks.write_tiles, no_data_batches=False
        )
        stream.start(
            "naive", naive_customer_counts(naive_input), sinks.write_naive, no_data_batches=False
        )
        typed = engine_events(spark, records)
        position = 0
        for index, batch in enumerate(batches):
            stream.add(batch)
            stream.process()
            named: list[int] = []
            for event in typed[position : position + len(batch)]:
                for image in (event["after"], event["before"]):
                    if image is not None and image["customer"] not in named:
                        named.append(image["customer"])
            seen += [c for c in named if c not in seen]
            position += len(batch)
            # Every customer seen so far on a story and after the last micro-batch; on a long
            # generated log, the customers this micro-batch named (keeps the fixture small).
            shown = seen if log.read_all or index == len(batches) - 1 else named
            lab = _progress_by_batch(stream, "lab")[index]
            naive = _progress_by_batch(stream, "naive")[index]
            features = []
            for at in log.read_at:
                read = sinks.store.customer_features(shown, at)
                features.append([_features_row(read[c]) for c in sorted(shown)])
            results.append(
                {
                    "batch": index,
                    "events": len(batch),
                    "watermark": _watermark_ms(lab),
                    "dropped": _dropped(lab),
                    "tiles": sinks.tiles.get(index, []),
                    "naiveWatermark": _watermark_ms(naive),
                    "naiveDropped": _dropped(naive),
                    "naive": sinks.naive.get(index, []),
                    "features": features,
                }
            )
    return {
        "format": FORMAT_VERSION,
        "name": log.name,
        "title": log.title,
        "preset": log.preset,
        "readAll": log.read_all,
        "semantics": semantics(log),
        "batchSize": log.batch_size,
        "readAt": [_us(at) for at in log.read_at],
        "events": typed,
        "batches": results,
    }


def semantics(log: PlaygroundLog) -> dict[str, Any]:
    """The lab's semantics the fixture was produced with (the engine takes them as options)."""
    tolerance = FUTURE_TOLERANCE if log.guard else UNGUARDED
    return {
        "watermarkDelayDays": CUSTOMER.lookback_days,
        "windowDays": CUSTOMER.window_days,
        "recencyDays": RECENCY_HORIZON_DAYS,
        "guardToleranceUs": tolerance // ONE_US,
        "naiveWindowDays": 30,
        "naiveWatermarkDays": NAIVE_WATERMARK_DAYS,
        "naiveTime": log.naive_time,
    }


# ---------------------------------------------------------------------------
# Writing the fixtures.
# ---------------------------------------------------------------------------


def dumps(fixture: Mapping[str, Any]) -> str:
    """A fixture as stable JSON text: one micro-batch / one event per line."""
    head = {k: v for k, v in fixture.items() if k not in ("events", "batches")}
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    events = ",\n".join(json.dumps(e, separators=(",", ":")) for e in fixture["events"])
    batches = ",\n".join(
        json.dumps(b, ensure_ascii=False, separators=(",", ":")) for b in fixture["batches"]
    )
    return f'{text},\n"events":[\n{events}],\n"batches":[\n{batches}]}}\n'


def render(spark: SparkSession, log: PlaygroundLog) -> str:
    with tempfile.TemporaryDirectory(prefix=f"playground-{log.name}-") as tmp:
        return dumps(run_log(spark, log, Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdc_features.lab.playground",
        description="Spark fixtures of the lesson's event-time playground",
    )
    parser.add_argument("--write", action="store_true", help=f"write them to {FIXTURE_DIR}")
    parser.add_argument("--only", nargs="*", help="log names (default: all)")
    args = parser.parse_args(argv)
    from cdc_features.job.spark import get_spark

    spark = get_spark("cdc-features-playground")
    logs: Callable[[], list[PlaygroundLog]] = all_logs
    try:
        for log in logs():
            if args.only and log.name not in args.only:
                continue
            text = render(spark, log)
            if args.write:
                FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
                (FIXTURE_DIR / f"{log.name}.json").write_text(text, encoding="utf-8")
                print(f"wrote {FIXTURE_DIR / (log.name + '.json')}")
            else:
                sys.stdout.write(text)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
