"""Generated hostile input (Hypothesis, ``tests/hostile.py``): the parser, the features and the
watermarks against the plain-Python batch reference.

For every example (a batch of shop histories delivered with duplicates, re-deliveries, swapped
neighbours, late snapshot rows, mixed converter shapes and decimal modes, typo dates and broken
messages), in one Spark job per example:

* the parsers never fail the job, and each message becomes exactly one event or one dead letter
  with a known reason code — the same as the reference's — except a ``future_event_time``
  message, which is both (its version does not count, and the operator is told);
* the events carry exactly the reference's typed values;
* the features read at several T equal the reference on the same log (batch, and streamed in
  micro-batches);
* no watermark moves past the event-time guard: each stays behind the newest plausible event
  time minus its horizon.

Examples are derandomized (a fixed sequence, the same on every run and in CI); set
``HYPOTHESIS_PROFILE=explore`` for random, more numerous examples. The example count and the
time are printed. Shrinking a failure re-runs Spark many times, so it is off unless
``HYPOTHESIS_SHRINK=1``.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from tests.hostile import KNOWN_REASONS, Example, batches, hostile_logs, interleaved

from cdc_features.core import reference
from cdc_features.core.debezium_json import Record
from cdc_features.core.envelope import parse_item_events, parse_order_events
from cdc_features.core.spec import CUSTOMER, PRODUCT
from cdc_features.testing import (
    FeatureStream,
    all_customers,
    all_products,
    newest_time,
    raw_frame,
    static_store,
)

PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + (
    [Phase.shrink] if os.environ.get("HYPOTHESIS_SHRINK") == "1" else []
)
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "explore", deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EXAMPLES_PER_BATCH = 40
BATCH_RUNS = 4
STREAM_RUNS = 2
LATER = (timedelta(0), timedelta(days=10), timedelta(days=31), timedelta(days=366))


class Tally:
    """What the examples covered (printed at the end of each test)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0
        self.histories = 0
        self.messages = 0
        self.reasons: Counter[str] = Counter()
        self.started = self.finished = time.monotonic()

    def add(self, examples: Sequence[Example], reasons: Counter[str]) -> None:
        self.runs += 1
        self.histories += len(examples)
        self.messages += sum(len(e.records) for e in examples)
        self.reasons.update(reasons)
        self.finished = time.monotonic()

    def report(self) -> str:
        seconds = self.finished - self.started  # first example's start to last one's end
        codes = ", ".join(f"{code} {n}" for code, n in sorted(self.reasons.items()))
        return (
            f"[hypothesis] {self.name}: {self.runs} examples ({self.histories} shop histories, "
            f"{self.messages} messages) in {seconds:.1f} s"
            + (f"; reason codes seen: {codes}" if codes else "")
        )


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[dict[str, Tally]]:
    tallies: dict[str, Tally] = {}
    yield tallies
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # past pytest's capture: CI logs show them
        for t in tallies.values():
            print("\n" + t.report())


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=UTC)


def _expected(records: Sequence[Record]) -> tuple[Counter[Any], Counter[Any], Counter[Any]]:
    """The reference's view: dead letters ``(key, reason)``, order events, item events."""
    letters: Counter[Any] = Counter()
    orders: Counter[Any] = Counter()
    items: Counter[Any] = Counter()
    for record in records:
        try:
            c = reference.parse_change(record)
        except reference.Rejected as rejected:
            letters[(record["key"], rejected.reason)] += 1
            continue
        a, b = c.after or {}, c.before or {}
        if c.table == "orders":
            if reference.future_event_time(c):
                letters[(record["key"], "future_event_time:after.order_date")] += 1
            orders[
                (
                    c.op,
                    c.row_id,
                    a.get("customer_id"),
                    None if c.future_after else a.get("order_date"),
                    a.get("status"),
                    a.get("total_amount"),
                    b.get("customer_id"),
                    None if c.future_before else b.get("order_date"),
                    b.get("status"),
                    b.get("total_amount"),
                    c.lsn,
                    c.commit,
                )
            ] += 1
        else:
            items[
                (
                    c.op,
                    c.row_id,
                    a.get("order_id"),
                    a.get("product_id"),
                    a.get("quantity"),
                    a.get("unit_price"),
                    b.get("order_id"),
                    b.get("product_id"),
                    b.get("quantity"),
                    b.get("unit_price"),
                    c.lsn,
                    c.commit,
                )
            ] += 1
    return letters, orders, items


def check_parsers(spark: SparkSession, records: Sequence[Record]) -> Counter[str]:
    """One Spark job over every message: the parsers against the reference; returns the
    reason codes seen."""
    raw = raw_frame(spark, records)
    order_parse, item_parse = parse_order_events(raw), parse_item_events(raw)
    letters = Counter(
        (r["key"], r["reason"])
        for r in order_parse.dead_letters.unionByName(item_parse.dead_letters).collect()
    )
    orders = Counter(
        (
            r.op,
            r.order_id,
            r.customer_id,
            _aware(r.order_ts),
            r.status,
            r.amount,
            r.before_customer_id,
            _aware(r.before_order_ts),
            r.before_status,
            r.before_amount,
            r.lsn,
            _aware(r.commit_ts),
        )
        for r in order_parse.events.collect()
    )
    items = Counter(
        (
            r.op,
            r.item_id,
            r.order_id,
            r.product_id,
            r.quantity,
            r.unit_price,
            r.before_order_id,
            r.before_product_id,
            r.before_quantity,
            r.before_unit_price,
            r.lsn,
            _aware(r.commit_ts),
        )
        for r in item_parse.events.collect()
    )
    want_letters, want_orders, want_items = _expected(records)
    by_key = {record["key"]: record for record in records}
    differ = {key for key, _ in (letters - want_letters) + (want_letters - letters)}
    assert letters == want_letters, (
        f"dead letters differ: stream-only {dict(letters - want_letters)}, "
        f"reference-only {dict(want_letters - letters)}; messages "
        f"{[by_key[k] for k in sorted(differ)][:3]}"
    )
    assert orders == want_orders, (
        f"order events differ: stream-only {list(orders - want_orders)[:3]}, "
        f"reference-only {list(want_orders - orders)[:3]}"
    )
    assert items == want_items, (
        f"item events differ: stream-only {list(items - want_items)[:3]}, "
        f"reference-only {list(want_items - items)[:3]}"
    )
    # exactly one event or one dead letter per message; a future_event_time message is both
    keys = Counter(record["key"] for record in records)
    flagged = sum(1 for _, reason in letters if reason.startswith("future_event_time"))
    assert sum(letters.values()) + sum(orders.values()) + sum(items.values()) == (
        sum(keys.values()) + flagged
    )
    codes = Counter(reason.split(":", 1)[0] for _, reason in letters.elements())
    assert set(codes) <= KNOWN_REASONS, set(codes) - KNOWN_REASONS
    return codes


def _keep(records: Sequence[Record]) -> str:
    """Write a failing log where it can be replayed (the failure message names the file)."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="hostile-", suffix=".jsonl", delete=False, encoding="utf-8"
    ) as out:
        out.writelines(json.dumps(r) + "\n" for r in records)
    return out.name


def assert_features_equal(reader: Any, records: Sequence[Record], label: str) -> None:
    end = newest_time(records)
    for later in LATER:
        at = end + later
        want_c = reference.reference_customer_features(records, at)
        want_p = reference.reference_product_features(records, at)
        got_c = all_customers(reader, at, want_c)
        got_p = all_products(reader, at, want_p)
        diff_c = {c: (got_c[c], want_c.get(c)) for c in got_c if got_c[c] != want_c.get(c)}
        diff_p = {p: (got_p[p], want_p.get(p)) for p in got_p if got_p[p] != want_p.get(p)}
        if diff_c or diff_p:
            raise AssertionError(
                f"{label}, T = end + {later}: customers differ {list(diff_c.items())[:2]}, "
                f"products differ {list(diff_p.items())[:2]}; log kept in {_keep(records)}"
            )


def _flat(examples: Sequence[Example]) -> list[Record]:
    return [record for example in examples for record in example.records]


@settings(max_examples=BATCH_RUNS)
@given(examples=batches(EXAMPLES_PER_BATCH))
def test_parsers_and_batch_features_equal_the_reference(
    spark: SparkSession, tally: dict[str, Tally], examples: list[Example]
) -> None:
    t = tally.setdefault("parsers + batch features", Tally("parsers + batch features"))
    records = _flat(examples)
    codes = check_parsers(spark, records)
    assert_features_equal(static_store(spark, records), records, "batch")
    t.add(examples, codes)


def _watermark(query: Any) -> datetime | None:
    progress = query.lastProgress
    mark = (progress or {}).get("eventTime", {}).get("watermark")
    return None if mark is None else datetime.fromisoformat(mark.replace("Z", "+00:00"))


@settings(max_examples=STREAM_RUNS)
@given(examples=batches(EXAMPLES_PER_BATCH), cuts=st.lists(st.floats(0, 1), min_size=3, max_size=5))
def test_streamed_features_and_watermarks(
    spark: SparkSession,
    tally: dict[str, Tally],
    tmp_path_factory: pytest.TempPathFactory,
    examples: list[Example],
    cuts: list[float],
) -> None:
    t = tally.setdefault("streamed, watermarks", Tally("streamed, watermarks"))
    records = interleaved(examples)
    bounds = sorted({0, len(records), *(int(c * len(records)) for c in cuts)})
    seen: list[Record] = []
    with FeatureStream(spark, tmp_path_factory.mktemp("hostile")) as run:
        for lo, hi in itertools.pairwise(bounds):
            run.step(records[lo:hi])
            seen += records[lo:hi]
            newest = newest_time(seen)
            for name, days in (
                ("customers", CUSTOMER.lookback_days),
                ("products", PRODUCT.window_days),
            ):
                mark = _watermark(run.files.queries[name])
                assert mark is None or mark <= newest - timedelta(days=days), (
                    f"{name} watermark {mark} moved past the newest plausible event time {newest}"
                )
    assert_features_equal(run.store, records, "streamed")
    t.add(examples, Counter())


@settings(max_examples=150)
@given(example=hostile_logs(0))
def test_the_reference_parser_only_rejects(example: Example) -> None:
    """Pure Python, many examples: the reference never fails on hostile input either."""
    for record in example.records:
        try:
            reference.parse_change(record)
        except reference.Rejected as rejected:
            assert rejected.reason.split(":", 1)[0] in KNOWN_REASONS
