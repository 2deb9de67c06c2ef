"""Stories with exact expected features, on a static DataFrame and on a stream fed step by step.

Read time T = 2026-03-10 18:00 UTC: the customer window is 2026-02-09 … 2026-03-10, the
recency horizon 2025-03-11 … 2026-03-10, the product window 2026-03-04 … 2026-03-10.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cdc_features.core.definitions import CustomerFeatures as CF
from cdc_features.core.definitions import ProductFeatures as PF
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.reference import reference_customer_features, reference_product_features
from cdc_features.core.spec import CUSTOMER, PRODUCT
from cdc_features.lab.stories import TYPO_DATE, feature_stories, guard_and_recency_stories, utc
from cdc_features.testing import (
    FeatureStream,
    all_customers,
    all_products,
    newest_time,
    raw_frame,
    static_store,
)

T = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


EXPECTED_CUSTOMERS = {
    1: CF(1, 1, Decimal("10.00"), Decimal("10.00"), at(10), 0),  # create
    2: CF(2, 1, Decimal("25.50"), Decimal("25.50"), at(8), 2),  # amount update
    3: CF(3, 1, Decimal("10.00"), Decimal("10.00"), at(10), 0),  # one of two cancelled
    4: CF(4, 1, Decimal("10.00"), Decimal("10.00"), at(9), 1),  # one of two deleted
    5: CF(5, 0, Decimal("0.00"), None, None, None),  # its order moved away
    6: CF(6, 1, Decimal("7.00"), Decimal("7.00"), at(7), 3),  # ... to here, 3 days back
    7: CF(
        7, 1, Decimal("70.00"), Decimal("70.00"), datetime(2026, 2, 25, 12, tzinfo=UTC), 13
    ),  # late, within 30 days
    8: CF(8, 0, Decimal("0.00"), None, None, None),  # too late: behind the recency horizon
    9: CF(9, 2, Decimal("15.00"), Decimal("7.50"), at(9), 1),  # snapshot overlap
    10: CF(10, 1, Decimal("8.00"), Decimal("8.00"), at(10), 0),  # delivered twice
    11: CF(11, 1, Decimal("11.00"), Decimal("11.00"), at(8), 2),  # before the silence
}
EXPECTED_PRODUCTS = {
    1: PF(1, 4, Decimal("19.00"), 3),  # orders 101, 201, 501 (moved); 302 cancelled, 402 deleted
    2: PF(2, 2, Decimal("6.00"), 1),  # item moved from order 301 to 401 with quantity 2
    3: PF(3, 0, Decimal("0.00"), 0),  # item deleted
}


@pytest.fixture(scope="module")
def log() -> list:
    return feature_stories().records


def test_reference_tells_the_stories(log: list) -> None:
    assert reference_customer_features(log, T) == EXPECTED_CUSTOMERS
    assert reference_product_features(log, T) == EXPECTED_PRODUCTS


def test_static_features_tell_the_stories(spark: SparkSession, log: list) -> None:
    store = static_store(spark, log)
    assert all_customers(store, T, EXPECTED_CUSTOMERS) == EXPECTED_CUSTOMERS
    assert store.customer_ids() == set(EXPECTED_CUSTOMERS) - {5}  # 5's only tile emptied
    assert all_products(store, T, EXPECTED_PRODUCTS) == EXPECTED_PRODUCTS
    # Silence: 31 days after customer 11's only order, nothing new arrived, and it reads 0 —
    # while recency still knows the order (a churn model needs "31 days since the last order").
    silent = all_customers(store, datetime(2026, 4, 8, 12, tzinfo=UTC))[11]
    assert silent == CF(11, 0, Decimal("0.00"), None, at(8), 31)
    # 365 days after it, the order leaves the recency horizon too.
    gone = all_customers(store, datetime(2027, 3, 8, 0, 0, tzinfo=UTC))[11]
    assert gone == CF(11, 0, Decimal("0.00"), None, None, None)
    assert all_customers(store, datetime(2027, 3, 7, 23, 59, tzinfo=UTC))[11].last_order_ts == at(8)
    # Its day 03-08 is the first day of the window up to 04-06, and left it at 04-07 00:00.
    assert all_customers(store, datetime(2026, 4, 6, 23, 59, tzinfo=UTC))[11].order_count_30d == 1
    assert all_customers(store, datetime(2026, 4, 7, 0, 0, tzinfo=UTC))[11].order_count_30d == 0
    # Products decay the same way: nothing counts 7 days later.
    assert all(p.units_sold_7d == 0 for p in all_products(store, T + timedelta(days=7)).values())


def test_streaming_features_equal_the_reference_after_every_step(
    spark: SparkSession, log: list, tmp_path: Path
) -> None:
    size = -(-len(log) // 4)
    seen: list = []
    with FeatureStream(spark, tmp_path) as run:
        for start in range(0, len(log), size):
            step = log[start : start + size]
            run.step(step)
            seen += step
            now = newest_time(seen)
            want_c = reference_customer_features(seen, now)
            want_p = reference_product_features(seen, now)
            assert all_customers(run.store, now, want_c) == want_c, f"after {len(seen)} events"
            assert all_products(run.store, now, want_p) == want_p, f"after {len(seen)} events"
        dropped = run.dropped
    assert all_customers(run.store, T, EXPECTED_CUSTOMERS) == EXPECTED_CUSTOMERS
    assert all_products(run.store, T, EXPECTED_PRODUCTS) == EXPECTED_PRODUCTS
    for later in (timedelta(days=10), timedelta(days=31), timedelta(days=366)):
        want = reference_customer_features(log, newest_time(log) + later)
        assert all_customers(run.store, newest_time(log) + later, want) == want
    # The too-late order (400 days back) was dropped by the 365-day watermark, and counted.
    assert dropped["customers"] == 1
    assert (8, datetime(2025, 2, 3).date()) not in run.store.tiles
    # the product query's event time is the commit time: every story was committed within
    # minutes, so nothing is late there (customer 7's order, 13 days back, is simply outside
    # the 7-day window when read)
    assert dropped["products"] == 0


# -- the event-time guard and recency, streamed one event per micro-batch -------------------

GUARD_T = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
EXPECTED_GUARD = {
    # the typo (2099) among normal traffic: the order after it, the amount correction and
    # the cancellation after it all count; the typo counts once corrected (2026-03-09 14:00)
    12: CF(12, 3, Decimal("164.00"), Decimal("54.67"), utc("2026-03-09T14:00:00"), 1),
    13: CF(13, 0, Decimal("0.00"), None, utc("2026-01-24T12:00:00"), 45),  # silent 45 days
    14: CF(14, 0, Decimal("0.00"), None, None, None),  # silent 400 days: behind the horizon
    # the newest order cancelled / deleted: the previous one (40 / 20 days back) is the newest
    15: CF(15, 0, Decimal("0.00"), None, utc("2026-01-29T12:00:00"), 40),
    16: CF(16, 1, Decimal("16.00"), Decimal("16.00"), utc("2026-02-18T12:00:00"), 20),
}
EXPECTED_GUARD_PRODUCTS = {12: PF(12, 3, Decimal("109.00"), 1)}  # 2 x 5.00 + the fixed 99.00


def _watermark(query) -> datetime | None:
    mark = (query.lastProgress or {}).get("eventTime", {}).get("watermark")
    return None if mark is None else datetime.fromisoformat(mark.replace("Z", "+00:00"))


def test_guard_and_recency_stories_streamed_one_event_per_micro_batch(
    spark: SparkSession, tmp_path: Path
) -> None:
    log = guard_and_recency_stories().records
    assert reference_customer_features(log, GUARD_T) == EXPECTED_GUARD
    assert reference_product_features(log, GUARD_T) == EXPECTED_GUARD_PRODUCTS
    seen: list = []
    with FeatureStream(spark, tmp_path) as run:
        for record in log:
            run.step([record])
            seen.append(record)
            now = newest_time(seen)
            want_c = reference_customer_features(seen, now)
            want_p = reference_product_features(seen, now)
            assert all_customers(run.store, now, want_c) == want_c, f"after {len(seen)} events"
            assert all_products(run.store, now, want_p) == want_p, f"after {len(seen)} events"
            # the typo never reaches a watermark: each stays behind the newest plausible time
            customers = _watermark(run.files.queries["customers"])
            products = _watermark(run.files.queries["products"])
            assert customers is None or customers <= now - timedelta(days=CUSTOMER.lookback_days)
            assert products is None or products <= now - timedelta(days=PRODUCT.window_days)
        dropped = run.dropped
    assert len(seen) == 18  # 18 micro-batches of one event each
    assert all_customers(run.store, GUARD_T, EXPECTED_GUARD) == EXPECTED_GUARD
    assert all_products(run.store, GUARD_T, EXPECTED_GUARD_PRODUCTS) == EXPECTED_GUARD_PRODUCTS
    assert dropped == {"customers": 0, "products": 0}  # nothing after the typo was late
    # a year later everything has left the horizon; recency is null, not stale
    later = GUARD_T + timedelta(days=365)
    assert all(
        f == CF(c, 0, Decimal("0.00"), None, None, None)
        for c, f in all_customers(run.store, later, EXPECTED_GUARD).items()
    )
    # the typo was reported with its row's key, once
    letters = parse_order_events(raw_frame(spark, log)).dead_letters.collect()
    assert [(r["reason"], json_id(r["key"])) for r in letters if r["reason"] != "tombstone"] == [
        ("future_event_time:after.order_date", 1202)
    ]
    assert TYPO_DATE.startswith("2099")


def json_id(key: str) -> int:
    value = json.loads(key)
    return int(value.get("payload", value)["id"])
