"""The checker of the lesson's exercise «Customer Features Pipeline».

The student implements two functions in ``starter/customer_features.py``:

- ``build_customer_tiles(order_events)`` — the streaming part: daily tiles per customer;
- ``customer_features_at(tiles, at)`` — the read part: ``order_count_30d``,
  ``total_spend_30d`` and ``avg_order_value_30d`` at read time ``at``.

The checker replays a known Debezium log (``exercise_log``) as a stream, one file per
micro-batch, through ``parse_order_events`` and the student's ``build_customer_tiles``,
keeps the emitted tiles as a feature store would (absolute upserts), and after every
micro-batch and at several read times compares the student's features with the batch
reference (``core.reference.reference_customer_features``). It prints pass/fail per feature
with the expected and the received values, and exits non-zero on any difference.

``--solution`` checks the lab's own implementation through the same interface.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession

from cdc_features import LAB_DIR
from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import compute_customer_features
from cdc_features.core.reference import reference_customer_features
from cdc_features.lab.stories import exercise_log
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import FileStream

STARTER_FILE = LAB_DIR / "starter" / "customer_features.py"
FEATURES = ("order_count_30d", "total_spend_30d", "avg_order_value_30d")
TILE_COLUMNS = ("customer_id", "day", "order_count", "total_spend", "last_order_ts")

# Read times checked after the whole log, besides the check after every micro-batch.
READ_TIMES = [
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 6, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 15, 12, 0, tzinfo=UTC),
    datetime(2026, 3, 31, 23, 59, tzinfo=UTC),
    datetime(2026, 4, 5, 12, 0, tzinfo=UTC),
    datetime(2026, 4, 30, 12, 0, tzinfo=UTC),
]


class NotImplementedYet(Exception):
    """The student's function still raises NotImplementedError."""


class Implementation(Protocol):
    def build_customer_tiles(self, order_events: DataFrame) -> DataFrame: ...

    def customer_features_at(self, tiles: DataFrame, at: datetime) -> DataFrame: ...


# ---------------------------------------------------------------------------
# The lab's own implementation behind the exercise interface.
# ---------------------------------------------------------------------------


class Solution:
    """The lab's answer through the exercise interface (for ``--solution``)."""

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
    spec = importlib.util.spec_from_file_location("starter_customer_features", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Running the student's functions as a stream, comparing with the reference.
# ---------------------------------------------------------------------------


@dataclass
class Report:
    """Per-feature results: how many comparisons passed and the first differences."""

    checked: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FEATURES})
    failures: dict[str, list[str]] = field(default_factory=lambda: {f: [] for f in FEATURES})
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not any(self.failures.values())


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


def commit_time(record: Record) -> datetime:
    """``source.ts_ms`` of a raw message, the replay clock of the check."""
    value = json.loads(record["value"] or "null")
    payload = value.get("payload", value) if "schema" in value else value
    return datetime.fromtimestamp(payload["source"]["ts_ms"] / 1000, UTC)


def _expected(records: Iterable[Record], at: datetime) -> dict[int, CustomerFeatures]:
    return reference_customer_features(list(records), at)


def _as_decimal(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


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
        row = got.get(
            cid,
            {"order_count_30d": 0, "total_spend_30d": Decimal("0.00"), "avg_order_value_30d": None},
        )
        for feature in FEATURES:
            want_value = (
                getattr(want, feature)
                if want is not None
                else {
                    "order_count_30d": 0,
                    "total_spend_30d": Decimal("0.00"),
                    "avg_order_value_30d": None,
                }[feature]
            )
            got_value = row.get(feature)
            if feature != "order_count_30d":
                got_value = _as_decimal(got_value)
            report.checked[feature] += 1
            if got_value != want_value:
                report.failures[feature].append(
                    f"{label}, T={at:%Y-%m-%dT%H:%MZ}, customer {cid}: "
                    f"expected {want_value}, got {got_value}"
                )


def run_check(spark: SparkSession, impl: Implementation, workdir: Path) -> Report:
    """Replay the exercise log as a stream through ``impl`` and compare with the reference."""
    report = Report()
    deliveries = exercise_log()
    tiles: dict[tuple[int, Any], tuple[Any, ...]] = {}
    seen: list[Record] = []
    errors: list[BaseException] = []

    def on_batch(batch_df: DataFrame, batch_id: int) -> None:
        try:
            for row in batch_df.select(*TILE_COLUMNS).collect():
                tiles[(row["customer_id"], row["day"])] = tuple(row)
            seen.extend(deliveries[batch_id])
            at = max(commit_time(r) for r in deliveries[batch_id] if r["value"] is not None)
            current = spark.createDataFrame(
                list(tiles.values()), batch_df.select(*TILE_COLUMNS).schema
            )
            got = _features_by_customer(
                _call("customer_features_at", impl.customer_features_at, current, at)
            )
            compare(report, f"after delivery {batch_id + 1}", at, _expected(seen, at), got)
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
        # One micro-batch per delivery: no extra no-data batches (they only evict state).
        query = stream.start(
            "exercise", tiles_stream, on_batch, available_now=True, no_data_batches=False
        )
        try:
            query.awaitTermination()
        except Exception:
            if not errors:
                raise
    if errors:
        raise errors[0]
    final = spark.createDataFrame(
        list(tiles.values()),
        "customer_id long, day date, order_count int, "
        "total_spend decimal(12,2), last_order_ts timestamp",
    )
    everything = [r for d in deliveries for r in d]
    for at in READ_TIMES:
        got = _features_by_customer(
            _call("customer_features_at", impl.customer_features_at, final, at)
        )
        compare(report, "after the whole log", at, _expected(everything, at), got)
    return report


def format_report(report: Report, label: str) -> str:
    lines = [f"Exercise check: {label}"]
    if report.error is not None:
        lines += [f"  FAIL  {report.error}"]
        return "\n".join(lines) + "\n"
    for feature in FEATURES:
        failures = report.failures[feature]
        status = "PASS" if not failures else "FAIL"
        lines.append(
            f"  {status}  {feature}: {report.checked[feature] - len(failures)}"
            f"/{report.checked[feature]} values match the reference"
        )
        lines += [f"        {line}" for line in failures[:5]]
        if len(failures) > 5:
            lines.append(f"        … and {len(failures) - 5} more")
    lines.append(
        "Result: "
        + (
            "all features match the reference"
            if report.ok
            else "some features differ from the reference"
        )
    )
    return "\n".join(lines) + "\n"


def check(spark: SparkSession, impl: Implementation, label: str) -> tuple[Report, str]:
    """Run the check, turning a not-implemented function into a clear failure."""
    workdir = Path(tempfile.mkdtemp(prefix="exercise-check-"))
    try:
        report = run_check(spark, impl, workdir)
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
    """What the exercise pipeline prints with the lab's solution (the lesson's expected output)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        load_starter(starter).run_console(spark, Solution())
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the «Customer Features Pipeline» exercise.")
    parser.add_argument(
        "--solution",
        action="store_true",
        help="use the lab's own implementation instead of the starter's functions",
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
    args = parser.parse_args(argv)
    from cdc_features.job.spark import get_spark

    spark = get_spark("exercise-check")
    starter = load_starter(args.starter)
    impl: Implementation = Solution() if args.solution else starter
    if args.console:
        try:
            starter.run_console(spark, impl)
        except NotImplementedError as error:
            print(f"Not implemented yet: {error}. Fill in the TODOs, then run the check again.")
            return 1
        return 0
    label = (
        "lab solution (cdc_features.core.features + definitions)"
        if args.solution
        else str(
            args.starter.resolve().relative_to(LAB_DIR)
            if args.starter.resolve().is_relative_to(LAB_DIR)
            else args.starter
        )
    )
    report, text = check(spark, impl, label)
    sys.stdout.write(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
