"""Checks shared by the end-to-end scenarios: Kafka caught up with the database, and the
feature store equal to the batch reference and to the SQL truth."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import redis

from stackctl import (
    Stack,
    database_state,
    kafka_messages,
    replay,
    sql_customer_truth,
    sql_product_truth,
)

PREFIX = "dbserver1"
TOPICS = [f"{PREFIX}.inventory.orders", f"{PREFIX}.inventory.order_items"]
CATCH_UP_SECONDS = 180
#: Prometheus in the test: scrape and evaluate every second, every `for` 5 s, freshness alert
#: above 60 s (production: 15 s intervals, `for` 2m-30m, freshness above 300 s)
PROMETHEUS_INTERVAL = "1s"
TEST_FOR = "5s"
TEST_FRESHNESS_SECONDS = 60


def wait_for_kafka(
    spark: Any, stack: Stack, raise_if_failed: Callable[[], None] = lambda: None
) -> list[dict[str, Any]]:
    """Wait until the change log on Kafka replays to the database's current rows.

    Returns every message on the topics. (The workload has finished, so the database no
    longer changes; Debezium is caught up exactly when the replayed log equals it.)
    ``raise_if_failed`` is called on every poll (a failed job fails the wait at once).
    """
    bootstrap = stack.env()["KAFKA_BOOTSTRAP"]
    truth = database_state(stack)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        raise_if_failed()
        messages = kafka_messages(spark, bootstrap, TOPICS)
        state = replay(messages, PREFIX)
        if state == truth:
            return messages
        if time.monotonic() > deadline:
            diff = {t: len(set(state[t].items()) ^ set(truth[t].items())) for t in truth}
            raise AssertionError(
                f"Kafka's change log does not replay to the database after {CATCH_UP_SECONDS}s "
                f"(differing rows: {diff}); see {stack.run_dir / 'logs/connect.log'}"
            )
        time.sleep(1)


def check_store(
    stack: Stack,
    store: redis.Redis,
    messages: list[dict[str, Any]],
    *,
    reader: Any = None,
    products: bool = True,
) -> dict[str, int]:
    """Redis features at T = now equal the batch reference and the SQL truth.

    ``reader``: the store's FeatureReader (default: the micro-batch layout's); ``products``:
    check the product features too (the Real-Time Mode path has customer features only)."""
    from cdc_features.core.reference import reference_customer_features, reference_product_features
    from cdc_features.stores.redis_store import RedisFeatureReader

    at = datetime.now(UTC)
    raw = [{"topic": m["topic"], "key": m["key"], "value": m["value"]} for m in messages]
    ref_customers = reference_customer_features(raw, at)
    ref_products = reference_product_features(raw, at)
    sql_customers = sql_customer_truth(stack, at)
    sql_products = sql_product_truth(stack, at)

    customer_ids = set(ref_customers) | set(sql_customers)
    product_ids = set(ref_products) | set(sql_products) if products else set()
    reader = reader if reader is not None else RedisFeatureReader(store)
    got_customers = reader.customer_features(customer_ids, at)
    got_products = reader.product_features(product_ids, at)

    counted = [c for c in ref_customers.values() if c.order_count_30d > 0]
    assert len(counted) >= 10, f"too few customers with orders to be a meaningful check: {counted}"
    for cid in sorted(customer_ids):
        got = got_customers[cid]
        if cid in ref_customers:
            assert got == ref_customers[cid], (
                f"customer {cid}: Redis {got} != reference {ref_customers[cid]}"
            )
        truth = sql_customers.get(cid)
        assert got.order_count_30d == (truth.order_count_30d if truth else 0), (cid, got, truth)
        assert got.total_spend_30d == (truth.total_spend_30d if truth else Decimal("0.00")), (
            cid,
            got,
            truth,
        )
        assert got.last_order_ts == (truth.last_order_ts if truth else None), (cid, got, truth)
    for pid in sorted(product_ids):
        got = got_products[pid]
        if pid in ref_products:
            assert got == ref_products[pid], (
                f"product {pid}: Redis {got} != reference {ref_products[pid]}"
            )
        truth = sql_products.get(pid)
        assert got.units_sold_7d == (truth.units_sold_7d if truth else 0), (pid, got, truth)
        assert got.revenue_7d == (truth.revenue_7d if truth else Decimal("0.00")), (pid, got, truth)
        assert got.unique_customers_7d == (truth.unique_customers_7d if truth else 0), (
            pid,
            got,
            truth,
        )
    return {"customers": len(customer_ids), "products": len(product_ids), "messages": len(messages)}
