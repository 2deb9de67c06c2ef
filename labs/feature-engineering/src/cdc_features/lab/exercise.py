"""The checker of the lesson's exercise «Customer Features Pipeline».

The student implements two functions in ``starter/customer_features.py``:

- ``build_customer_tiles(order_events)`` — the streaming part: daily tiles per customer;
- ``customer_features_at(tiles, at)`` — the read part: ``order_count_30d``,
  ``total_spend_30d`` and ``avg_order_value_30d`` at read time ``at``.

The checker first reads a few hand-made tiles through ``customer_features_at`` (the read
window and the rounding), then replays the exercise's Debezium log
(``starter/exercise_log.jsonl``, told by :func:`cdc_features.lab.stories.exercise_log`) as a
stream, one delivery per micro-batch, through ``parse_order_events`` and the student's
``build_customer_tiles``. It keeps the emitted tiles as a feature store would (absolute
upserts) and, after every micro-batch and at several read times, compares the student's
features with the batch reference (``core.reference.reference_customer_features``).

When something differs it names the mistake: from the tiles themselves (their types, their
days, their event times, the rows the watermark dropped) and else from the story of the
first customer that differs (``EXERCISE_STORIES``: one story per customer). The classic
wrong solutions and the mistake each must be named as are in
:mod:`cdc_features.lab.exercise_mutations` (run by ``tests/test_exercise_mutations.py``).

``--solution`` checks ``solution/customer_features.py``; ``--write-log`` rewrites the log file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import reduce
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, StructType

from cdc_features import LAB_DIR
from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import compute_customer_features
from cdc_features.core.reference import reference_customer_features
from cdc_features.core.spec import CUSTOMER
from cdc_features.lab.stories import EXERCISE_STORIES, exercise_log
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import FileStream

STARTER_FILE = LAB_DIR / "starter" / "customer_features.py"
SOLUTION_FILE = LAB_DIR / "solution" / "customer_features.py"
LOG_FILE = LAB_DIR / "starter" / "exercise_log.jsonl"
FEATURES = ("order_count_30d", "total_spend_30d", "avg_order_value_30d")
TILE_COLUMNS = ("customer_id", "day", "order_count", "total_spend", "last_order_ts")
TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp"
)
WINDOW_DAYS = 30
DAY = timedelta(days=1)

# Read times checked after the whole log, besides the check after every micro-batch.
READ_TIMES = [
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 6, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 15, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 31, 23, 59, tzinfo=UTC),
    datetime(2026, 4, 5, 12, 0, tzinfo=UTC),
    datetime(2026, 4, 30, 12, 0, tzinfo=UTC),
]


@dataclass(frozen=True)
class Mistake:
    """A classic mistake the checker can name, and what to do instead."""

    title: str
    hint: str


MISTAKES: dict[str, Mistake] = {
    "read_window": Mistake(
        "the read sums tiles outside the 30-day window",
        "customer_features_at keeps only the tiles of the 30 UTC days day(T) - 29 .. day(T), "
        "both ends included (TODO 4).",
    ),
    "rounding": Mistake(
        "the average is rounded half-up",
        "round avg_order_value_30d half-even to 2 places: F.bround, not F.round (TODO 4).",
    ),
    "money_as_float": Mistake(
        "decimals parsed as numbers: money summed as floating point",
        "keep amounts decimal end to end — total_spend decimal(12,2), never double (TODO 3).",
    ),
    "tumbling_window": Mistake(
        "a 30-day tumbling window instead of daily tiles",
        'window("order_ts", "30 days") is a fixed bucket aligned to 1970-01-01, not the last '
        '30 days: group by window("order_ts", "1 day") and sum 30 tiles at read time (TODO 2).',
    ),
    "processing_time": Mistake(
        "processing time used as event time",
        "the event time is order_date (order_ts; before_order_ts for a retraction); "
        "commit_ts is when the change arrived: a snapshot or a back-dated order lands "
        "on the wrong day (TODO 1).",
    ),
    "no_watermark": Mistake(
        "no watermark: the event behind the watermark was aggregated",
        "without withWatermark the state keeps every day forever; declare it on order_ts "
        "before the aggregation (TODO 2).",
    ),
    "short_watermark": Mistake(
        "a watermark shorter than the 30-day window",
        "changes of days still inside the window were dropped as late; the delay must be "
        "at least the window (TODO 2).",
    ),
    "events_not_orders": Mistake(
        "change events counted instead of orders",
        "an update is a new version of the same order: keep the newest version of each "
        "order (max lsn) and count those (TODO 3).",
    ),
    "cancellation_ignored": Mistake(
        "a cancelled order is still counted",
        "a version whose status is 'cancelled' is not active (TODO 1).",
    ),
    "emptied_tile": Mistake(
        "an emptied tile is not written",
        "a tile whose orders were all cancelled or deleted must still be emitted, with "
        "order_count 0 and total_spend 0.00, so the store forgets its old value (TODO 3).",
    ),
    "no_retraction": Mistake(
        "no retraction for a moved order",
        "an update that moves an order to another customer or UTC day must also emit an "
        "inactive version (a retraction) at its before image: before_customer_id, "
        "before_order_ts (TODO 1).",
    ),
    "duplicates_counted": Mistake(
        "a duplicate delivery counted twice",
        "Debezium delivers at least once: the same event twice is an identical version — "
        "F.array_distinct removes it (TODO 3).",
    ),
    "late_event_counted": Mistake(
        "an event behind the watermark changed a feature",
        "the order dated 2025-03-01 arrived on 2026-04-04, far behind the watermark: Spark "
        "drops it when the event time is order_ts (TODO 1, TODO 2).",
    ),
    "back_dated_lost": Mistake(
        "a back-dated order inside the window was lost",
        "an order dated ten days before its commit still counts on its own day: check the "
        "event time and the watermark delay (TODO 1, TODO 2).",
    ),
}

# Which mistake the story of each customer of the log points to (EXERCISE_STORIES).
STORY_MISTAKES: dict[int, str] = {
    101: "events_not_orders",
    102: "cancellation_ignored",
    103: "emptied_tile",
    104: "no_retraction",
    105: "no_retraction",
    106: "duplicates_counted",
    107: "late_event_counted",
    108: "back_dated_lost",
}


class NotImplementedYet(Exception):
    """The student's function still raises NotImplementedError."""


class Implementation(Protocol):
    def build_customer_tiles(self, order_events: DataFrame) -> DataFrame: ...

    def customer_features_at(self, tiles: DataFrame, at: datetime) -> DataFrame: ...


# ---------------------------------------------------------------------------
# The lab's own implementation behind the exercise interface.
# ---------------------------------------------------------------------------


class LabPipeline:
    """The lab's core (``compute_customer_features`` + the read-time definitions) through
    the exercise interface: the lesson's console output is printed with it."""

    def build_customer_tiles(self, order_events: DataFrame) -> DataFrame:
        return compute_customer_features(order_events).select(*TILE_COLUMNS)

    def customer_features_at(self, tiles: DataFrame, at: datetime) -> DataFrame:
        store = MemoryStore()  # the tiles as the lab's stores hold them, read at ``at``
        store.apply_tiles(r.asDict() for r in tiles.collect())
        rows = store.customer_features(store.customer_ids(), at).values()
        schema = (
            "customer_id long, order_count_30d int, total_spend_30d decimal(12,2), "
            "avg_order_value_30d decimal(12,2)"
        )
        return tiles.sparkSession.createDataFrame(
            [
                (f.customer_id, f.order_count_30d, f.total_spend_30d, f.avg_order_value_30d)
                for f in rows
            ],
            schema,
        )


def load_starter(path: Path = STARTER_FILE) -> ModuleType:
    """Import the student's file by path (the starter is not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"exercise_{Path(path).stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# The log: a committed file the student can read, told by stories.exercise_log().
# ---------------------------------------------------------------------------


def log_lines(deliveries: Sequence[Sequence[Record]]) -> str:
    """The log file's text: one JSON object per message, with its delivery number."""
    return "".join(
        json.dumps({"delivery": index + 1, **record}, ensure_ascii=False) + "\n"
        for index, delivery in enumerate(deliveries)
        for record in delivery
    )


def load_exercise_log(path: Path = LOG_FILE) -> list[list[Record]]:
    """The deliveries of the committed log file (``delivery`` 1, 2, … in file order)."""
    deliveries: list[list[Record]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            message = json.loads(line)
            number = message.pop("delivery")
            if number == len(deliveries) + 1:
                deliveries.append([])
            elif number != len(deliveries):
                raise ValueError(f"{path}: deliveries must be numbered 1, 2, … in order")
            deliveries[-1].append(message)
    return deliveries


# ---------------------------------------------------------------------------
# Running the student's functions as a stream, comparing with the reference.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One feature value that differs from the reference."""

    label: str
    at: datetime
    customer_id: int
    feature: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        def text(value: Any) -> str:
            return "null" if value is None else str(value)

        return (
            f"{self.label}, T={self.at:%Y-%m-%dT%H:%MZ}, customer {self.customer_id}: "
            f"expected {text(self.expected)}, got {text(self.got)}"
        )


@dataclass(frozen=True)
class Finding:
    """A named mistake and the evidence for it."""

    mistake: str
    evidence: str


@dataclass
class Report:
    """Per-feature results, the first differences and the mistakes found."""

    checked: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FEATURES})
    failures: dict[str, list[Difference]] = field(default_factory=lambda: {f: [] for f in FEATURES})
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.findings and not any(self.failures.values())

    @property
    def mistakes(self) -> list[str]:
        """The keys of the mistakes found, most likely first, without repeats."""
        return list(dict.fromkeys(f.mistake for f in self.findings))


def _call(name: str, fn: Callable[..., DataFrame], *args: Any) -> DataFrame:
    try:
        return fn(*args)
    except NotImplementedError as error:
        raise NotImplementedYet(f"{name} is not implemented yet: {error}") from error


def _features_by_customer(df: DataFrame) -> dict[int, dict[str, Any]]:
    missing = [c for c in ("customer_id", *FEATURES) if c not in df.columns]
    if missing:
        raise ValueError(
            f"customer_features_at must return columns {('customer_id', *FEATURES)}; "
            f"missing {missing} (got {df.columns})"
        )
    return {row["customer_id"]: row.asDict() for row in df.collect()}


def _read_many(
    impl: Implementation, tiles: DataFrame, times: Sequence[datetime]
) -> list[dict[int, dict[str, Any]]]:
    """``customer_features_at`` at several read times, collected in one Spark job."""
    frames = []
    for index, at in enumerate(times):
        df = _call("customer_features_at", impl.customer_features_at, tiles, at)
        _features_by_customer(df.limit(0))  # the columns, named in the error when missing
        frames.append(df.select("customer_id", *FEATURES).withColumn("_read", F.lit(index)))
    rows = reduce(DataFrame.unionByName, frames).collect()
    out: list[dict[int, dict[str, Any]]] = [{} for _ in times]
    for row in rows:
        values = row.asDict()
        out[values.pop("_read")][values["customer_id"]] = values
    return out


def _payload(record: Record) -> dict[str, Any]:
    value = json.loads(record["value"] or "null")
    return value.get("payload", value) if "schema" in value else value


def commit_time(record: Record) -> datetime:
    """``source.ts_ms`` of a raw message, the replay clock of the check."""
    return datetime.fromtimestamp(_payload(record)["source"]["ts_ms"] / 1000, UTC)


def _event_times(records: Iterable[Record]) -> tuple[set[datetime], set[datetime]]:
    """Every ``order_date`` of the log's images and every commit time (naive UTC)."""
    dates: set[datetime] = set()
    commits: set[datetime] = set()
    for record in records:
        if record["value"] is None:
            continue
        payload = _payload(record)
        commits.add(commit_time(record).replace(tzinfo=None))
        for image in ("before", "after"):
            row = payload.get(image) or {}
            if row.get("order_date") is not None:
                us = int(row["order_date"])
                dates.add(datetime(1970, 1, 1) + timedelta(microseconds=us))
    return dates, commits


def _version_times(record: Record) -> list[datetime]:
    """The event times of the versions one message can write into tiles: its after image,
    and its before image for an update or delete (naive UTC)."""
    if record["value"] is None:
        return []
    payload = _payload(record)
    images = ["after"] + (["before"] if payload["op"] in ("u", "d") else [])
    out = []
    for image in images:
        row = payload.get(image) or {}
        if row.get("order_date") is not None:
            out.append(datetime(1970, 1, 1) + timedelta(microseconds=int(row["order_date"])))
    return out


def late_versions(deliveries: Sequence[Sequence[Record]], delay: timedelta) -> int:
    """How many versions arrive behind a watermark of ``delay``. Spark computes the watermark
    at the end of a micro-batch (newest event time − ``delay``) and filters late rows with the
    one the previous micro-batch used: delivery ``i`` is checked against the newest event time
    of deliveries ``0 .. i-2``. A daily tile is late once its day ends at or before it."""
    newest: list[datetime] = []  # newest event time after each delivery
    late = 0
    for index, delivery in enumerate(deliveries):
        times = [t for r in delivery for t in _version_times(r)]
        if index >= 2:
            watermark = newest[index - 2] - delay
            day_ends = (datetime.combine(t.date(), datetime.min.time()) + DAY for t in times)
            late += sum(end <= watermark for end in day_ends)
        newest.append(max([*newest[-1:], *times]))
    return late


def _as_decimal(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


_ZERO: dict[str, Any] = {
    "order_count_30d": 0,
    "total_spend_30d": Decimal("0.00"),
    "avg_order_value_30d": None,
}


def compare(
    report: Report,
    label: str,
    at: datetime,
    expected: dict[int, CustomerFeatures],
    got: dict[int, dict[str, Any]],
) -> None:
    """Compare at one read time; a customer absent from ``got`` reads as zero orders."""
    for cid in sorted(set(expected) | set(got)):
        want = expected.get(cid)
        row = got.get(cid, _ZERO)
        for feature in FEATURES:
            want_value = getattr(want, feature) if want is not None else _ZERO[feature]
            got_value = row.get(feature)
            if feature != "order_count_30d":
                got_value = _as_decimal(got_value)
            report.checked[feature] += 1
            if got_value != want_value:
                report.failures[feature].append(
                    Difference(label, at, cid, feature, want_value, got_value)
                )


def _decimal_fields(schema: StructType, names: Sequence[str], where: str) -> list[Finding]:
    out = []
    for name in names:
        if name in schema.fieldNames():
            kind = schema[name].dataType
            if not isinstance(kind, DecimalType):
                out.append(Finding("money_as_float", f"{where}: {name} is {kind.simpleString()}"))
    return out


# The read probe: hand-made tiles of one customer around T = 2026-03-31 12:00 UTC.
PROBE_AT = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
PROBE_TILES = [
    (901, date(2026, 3, 1), 5, Decimal("500.00"), datetime(2026, 3, 1, 9, 0)),  # day(T) - 30
    (901, date(2026, 3, 2), 1, Decimal("0.01"), datetime(2026, 3, 2, 9, 0)),  # day(T) - 29
    (901, date(2026, 3, 31), 1, Decimal("0.04"), datetime(2026, 3, 31, 9, 0)),  # day(T)
]


def probe_read(spark: SparkSession, impl: Implementation) -> list[Finding]:
    """``customer_features_at`` on three hand-made tiles: the window holds the last two
    (2 orders, 0.05), and 0.05 / 2 = 0.025 rounds half-even to 0.02."""
    tiles = spark.createDataFrame(PROBE_TILES, TILE_SCHEMA)
    result = _call("customer_features_at", impl.customer_features_at, tiles, PROBE_AT)
    findings = _decimal_fields(
        result.schema, ("total_spend_30d", "avg_order_value_30d"), "customer_features_at"
    )
    row = _features_by_customer(result).get(901, _ZERO)
    count, total = row["order_count_30d"], _as_decimal(row["total_spend_30d"])
    if (count, total) != (2, Decimal("0.05")):
        findings.append(
            Finding(
                "read_window",
                f"tiles of 2026-03-01 (5 orders), 2026-03-02 (1) and 2026-03-31 (1) read at "
                f"T=2026-03-31T12:00Z: expected 2 orders / 0.05, got {count} / {total}",
            )
        )
    elif _as_decimal(row["avg_order_value_30d"]) != Decimal("0.02"):
        findings.append(
            Finding(
                "rounding",
                f"0.05 / 2 = 0.025: expected 0.02 (half-even), got {row['avg_order_value_30d']}",
            )
        )
    return findings


def diagnose_tiles(
    emitted: Sequence[dict[str, Any]],
    schema: StructType,
    records: Sequence[Record],
    dropped: int,
    deliveries: Sequence[Sequence[Record]],
) -> list[Finding]:
    """Mistakes visible in the tiles themselves, before any feature is compared."""
    findings = _decimal_fields(schema, ("total_spend",), "build_customer_tiles")
    dates, commits = _event_times(records)
    for row in emitted:
        last, day = row["last_order_ts"], row["day"]  # naive UTC (the session time zone)
        if last is not None and last.date() != day:
            findings.append(
                Finding(
                    "tumbling_window",
                    f"tile (customer {row['customer_id']}, day {day}) holds an order "
                    f"of {last:%Y-%m-%d %H:%M}: a tile is not one UTC day",
                )
            )
            break
    for row in emitted:
        last = row["last_order_ts"]
        if last is not None and last not in dates:
            where = "a commit time" if last in commits else "no order_date of the log"
            findings.append(
                Finding(
                    "processing_time",
                    f"tile (customer {row['customer_id']}, day {row['day']}): last_order_ts "
                    f"{last:%Y-%m-%d %H:%M} is {where}",
                )
            )
            break
    least = late_versions(deliveries, timedelta(days=CUSTOMER.lookback_days))
    most = late_versions(deliveries, timedelta(days=WINDOW_DAYS))
    if dropped == 0 and least > 0:
        findings.append(
            Finding(
                "no_watermark",
                f"0 rows dropped as late; the log has {least} behind any watermark delay "
                f"between {WINDOW_DAYS} and {CUSTOMER.lookback_days} days",
            )
        )
    elif dropped > most:
        findings.append(
            Finding(
                "short_watermark",
                f"{dropped} rows dropped as late; a {WINDOW_DAYS}-day watermark drops {most}",
            )
        )
    return findings


def diagnose_stories(report: Report) -> list[Finding]:
    """The story of each customer that differs, in the order of ``STORY_MISTAKES``."""
    differing: dict[int, Difference] = {}
    for failures in report.failures.values():
        for d in failures:
            differing.setdefault(d.customer_id, d)
    return [
        Finding(mistake, f"customer {cid} ({EXERCISE_STORIES[cid]}): {differing[cid]}")
        for cid, mistake in STORY_MISTAKES.items()
        if cid in differing
    ]


def run_check(
    spark: SparkSession,
    impl: Implementation,
    workdir: Path,
    deliveries: Sequence[Sequence[Record]] | None = None,
) -> Report:
    """Replay the exercise log as a stream through ``impl`` and compare with the reference."""
    report = Report()
    deliveries = load_exercise_log() if deliveries is None else deliveries
    tiles: dict[tuple[int, Any], tuple[Any, ...]] = {}
    emitted: list[dict[str, Any]] = []
    seen: list[Record] = []
    errors: list[BaseException] = []

    def on_batch(batch_df: DataFrame, batch_id: int) -> None:
        try:
            rows = batch_df.select(*TILE_COLUMNS).collect()
            for row in rows:
                tiles[(row["customer_id"], row["day"])] = tuple(row)
            emitted.extend(row.asDict() for row in rows)
            seen.extend(deliveries[batch_id])
            at = max(commit_time(r) for r in deliveries[batch_id] if r["value"] is not None)
            current = spark.createDataFrame(
                list(tiles.values()), batch_df.select(*TILE_COLUMNS).schema
            )
            got = _features_by_customer(
                _call("customer_features_at", impl.customer_features_at, current, at)
            )
            expected = reference_customer_features(list(seen), at)
            compare(report, f"after delivery {batch_id + 1}", at, expected, got)
        except BaseException as error:  # surfaced after the query stops
            errors.append(error)
            raise

    with FileStream(spark, workdir) as stream:
        for delivery in deliveries:
            stream.add(delivery)
        events = parse_order_events(stream.source()).events
        tiles_stream = _call("build_customer_tiles", impl.build_customer_tiles, events)
        missing = [c for c in TILE_COLUMNS if c not in tiles_stream.columns]
        if missing:
            raise ValueError(
                f"build_customer_tiles must return columns {TILE_COLUMNS}; "
                f"missing {missing} (got {tiles_stream.columns})"
            )
        report.findings += probe_read(spark, impl)
        if report.findings:  # the read part is wrong: every comparison would differ
            return report
        # One micro-batch per delivery: no extra no-data batches (they only evict state).
        query = stream.start(
            "exercise", tiles_stream, on_batch, available_now=True, no_data_batches=False
        )
        try:
            query.awaitTermination()
        except Exception:
            if not errors:
                raise
        dropped = stream.dropped("exercise")
    if errors:
        raise errors[0]
    everything = [r for d in deliveries for r in d]
    schema = tiles_stream.select(*TILE_COLUMNS).schema
    final = spark.createDataFrame(list(tiles.values()), schema)
    for at, got in zip(READ_TIMES, _read_many(impl, final, READ_TIMES), strict=True):
        expected = reference_customer_features(everything, at)
        compare(report, "after the whole log", at, expected, got)
    report.findings += diagnose_tiles(emitted, schema, everything, dropped, deliveries)
    if not report.findings:  # nothing structural: the stories say what went wrong
        report.findings += diagnose_stories(report)
    return report


def format_report(report: Report, label: str) -> str:
    lines = [f"Exercise check: {label}"]
    if report.error is not None:
        lines += [f"  FAIL  {report.error}"]
        return "\n".join(lines) + "\n"
    for feature in FEATURES:
        failures = report.failures[feature]
        if not report.checked[feature]:
            continue
        status = "PASS" if not failures else "FAIL"
        lines.append(
            f"  {status}  {feature}: {report.checked[feature] - len(failures)}"
            f"/{report.checked[feature]} values match the reference"
        )
        lines += [f"        {d}" for d in failures[:1]]
        if len(failures) > 1:
            lines.append(f"        … and {len(failures) - 1} more")
    for position, key in enumerate(report.mistakes):
        mistake = MISTAKES[key]
        evidence = [f.evidence for f in report.findings if f.mistake == key]
        lines.append(f"{'Mistake' if position == 0 else 'Also'}: {mistake.title}")
        lines += [f"  {e}" for e in evidence[:2]]
        lines.append(f"  Fix: {mistake.hint}")
    lines.append(
        "Result: " + ("all features match the reference" if report.ok else "the check failed")
    )
    return "\n".join(lines) + "\n"


def check(
    spark: SparkSession,
    impl: Implementation,
    label: str,
    deliveries: Sequence[Sequence[Record]] | None = None,
) -> tuple[Report, str]:
    """Run the check, turning a not-implemented function into a clear failure."""
    workdir = Path(tempfile.mkdtemp(prefix="exercise-check-"))
    try:
        report = run_check(spark, impl, workdir, deliveries)
    except NotImplementedYet as error:
        report = Report(
            error=f"{error} — open {STARTER_FILE.relative_to(LAB_DIR)} and replace the TODOs"
        )
    except Exception as error:  # noqa: BLE001 - the student's code failed: show why, fail
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        report = Report(error=f"the pipeline failed: {detail}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report, format_report(report, label)


def console_output(spark: SparkSession, starter: Path = STARTER_FILE) -> str:
    """What the exercise pipeline prints with the lab's pipeline (the lesson's expected output)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        load_starter(starter).run_console(spark, LabPipeline())
    return buffer.getvalue()


def _label(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(LAB_DIR) if resolved.is_relative_to(LAB_DIR) else path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the «Customer Features Pipeline» exercise.")
    parser.add_argument(
        "--solution",
        action="store_true",
        help=f"check {SOLUTION_FILE.relative_to(LAB_DIR)} instead of the starter",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="run the exercise pipeline and print the features per micro-batch",
    )
    parser.add_argument(
        "--starter",
        type=Path,
        default=STARTER_FILE,
        help="the student's file (default: %(default)s)",
    )
    parser.add_argument(
        "--write-log",
        action="store_true",
        help=f"rewrite {LOG_FILE.relative_to(LAB_DIR)} from stories.exercise_log() and exit",
    )
    args = parser.parse_args(argv)
    if args.write_log:
        LOG_FILE.write_text(log_lines(exercise_log()), encoding="utf-8")
        print(f"wrote {LOG_FILE}")
        return 0
    from cdc_features.job.spark import get_spark

    spark = get_spark("exercise-check")
    path = SOLUTION_FILE if args.solution else args.starter
    impl: Implementation = load_starter(path)
    if args.console:
        try:
            load_starter(STARTER_FILE).run_console(spark, impl)
        except NotImplementedError as error:
            print(f"Not implemented yet: {error}. Fill in the TODOs, then run the check again.")
            return 1
        return 0
    report, text = check(spark, impl, _label(path))
    sys.stdout.write(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
