"""The lab's parser and features on messages captured from a real PostgreSQL → Debezium →
Kafka stack (fixtures/debezium, scenario in its README), in all five connector variants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pyspark.sql import SparkSession

from cdc_features.core.definitions import CustomerFeatures as CF
from cdc_features.core.definitions import ProductFeatures as PF
from cdc_features.core.envelope import parse_item_events, parse_order_events
from cdc_features.core.reference import reference_customer_features, reference_product_features
from cdc_features.testing import all_customers, all_products, raw_frame, static_store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "debezium"
VARIANTS = [
    "schemas-precise",
    "schemas-string",
    "noschemas-precise",
    "noschemas-string",
    "noschemas-double",
]
T = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def load(variant: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / f"{variant}.jsonl").read_text().splitlines()]


def ts(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us)


O1 = (1, ts(2026, 11, 20, 9, 15), "pending", Decimal("120.50"))
O2 = (2, ts(2026, 11, 21, 14, 0, 0, 123456), "shipped", Decimal("75.00"))
O3 = (1, ts(2026, 11, 22, 10, 30), "pending", Decimal("310.99"))
O4 = (3, ts(2026, 11, 22, 11, 0), "pending", Decimal("99999999.99"))
NONE4 = (None, None, None, None)
# (order_id, after..., before..., op, is_snapshot) in LSN order
EXPECTED_ORDERS = [
    (1, *O1, *NONE4, "r", True),
    (2, *O2, *NONE4, "r", True),
    (3, *O3, *NONE4, "c", False),
    (4, *O4, *NONE4, "c", False),
    (2, 2, O2[1], "shipped", Decimal("99.90"), *O2, "u", False),
    (3, 1, O3[1], "cancelled", Decimal("310.99"), *O3, "u", False),
    (4, *NONE4, *O4, "d", False),
    (1, 1, ts(2026, 11, 19, 8, 0), "pending", Decimal("120.50"), *O1, "u", False),
]
I5 = (4, 2, 1, Decimal("25.00"))
I6 = (4, 3, 1, Decimal("-10.00"))
EXPECTED_ITEMS = [
    (1, 1, 1, 2, Decimal("40.25"), *NONE4, "r", True),
    (2, 1, 2, 1, Decimal("40.00"), *NONE4, "r", True),
    (3, 2, 3, 3, Decimal("25.00"), *NONE4, "r", True),
    (4, 3, 1, 1, Decimal("310.99"), *NONE4, "c", False),
    (5, *I5, *NONE4, "c", False),
    (6, *I6, *NONE4, "c", False),
    (5, *NONE4, *I5, "d", False),
    (6, *NONE4, *I6, "d", False),
    (1, 1, 1, 3, Decimal("40.25"), 1, 1, 2, Decimal("40.25"), "u", False),
]
EXPECTED_CUSTOMERS = {
    1: CF(
        1,
        1,
        Decimal("120.50"),
        Decimal("120.50"),
        datetime(2026, 11, 19, 8, tzinfo=UTC),
        3,
    ),
    2: CF(
        2,
        1,
        Decimal("99.90"),
        Decimal("99.90"),
        datetime(2026, 11, 21, 14, 0, 0, 123456, tzinfo=UTC),
        0,
    ),
    3: CF(3, 0, Decimal("0.00"), None, None, None),
}
EXPECTED_PRODUCTS = {
    1: PF(1, 3, Decimal("120.75"), 1),  # line 1 (now 3 x 40.25); line 4's order is cancelled
    2: PF(2, 1, Decimal("40.00"), 1),  # line 5 was deleted with order 4
    3: PF(3, 3, Decimal("75.00"), 1),  # line 6 (the -10.00 discount) was deleted too
}


def test_every_variant_decodes_to_the_scenario(spark: SparkSession) -> None:
    records = [r for v in VARIANTS for r in load(v)]
    raw = raw_frame(spark, records)
    orders = parse_order_events(raw)
    items = parse_item_events(raw)
    # One job per output: all five variants together; each must decode to the same events.
    # Each variant is a separate capture run: sorted by commit time they come in blocks.
    got_orders = [tuple(r) for r in orders.events.orderBy("commit_ts", "lsn", "order_id").collect()]
    got_items = [tuple(r) for r in items.events.orderBy("commit_ts", "lsn", "item_id").collect()]
    strip = lambda row: row[:-4] + row[-4:-3] + row[-1:]  # drop lsn and commit_ts  # noqa: E731
    assert (len(got_orders), len(got_items)) == (8 * len(VARIANTS), 9 * len(VARIANTS))
    for n in range(len(VARIANTS)):
        o = got_orders[n * 8 : (n + 1) * 8]
        i = got_items[n * 9 : (n + 1) * 9]
        assert [strip(r) for r in o] == EXPECTED_ORDERS, f"capture block {n}"
        assert [strip(r) for r in i] == EXPECTED_ITEMS, f"capture block {n}"
        assert len({r[-3] for r in o[:2]}) == 1  # the snapshot rows share one LSN
        assert [r[-3] for r in o[2:]] == sorted(r[-3] for r in o[2:])
    dead = orders.dead_letters.unionByName(items.dead_letters).collect()
    keys = [json.loads(r["raw"]) for r in dead]  # a tombstone's raw is its key
    assert sorted(
        (r["reason"], k.get("payload", k)["id"]) for r, k in zip(dead, keys, strict=True)
    ) == sorted([("tombstone", 4), ("tombstone", 5), ("tombstone", 6)] * len(VARIANTS))


def test_features_of_the_captured_log(spark: SparkSession) -> None:
    for variant in VARIANTS:
        log = load(variant)
        assert reference_customer_features(log, T) == EXPECTED_CUSTOMERS, variant
        assert reference_product_features(log, T) == EXPECTED_PRODUCTS, variant
    store = static_store(spark, load("schemas-precise"))
    assert all_customers(store, T, EXPECTED_CUSTOMERS) == EXPECTED_CUSTOMERS
    assert all_products(store, T, EXPECTED_PRODUCTS) == EXPECTED_PRODUCTS
