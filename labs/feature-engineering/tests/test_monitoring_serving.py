"""Missing features and stale keys, read from a real Redis filled by the sink's own tile writer."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import redis
from pyspark.sql import Row

from cdc_features.core.spec import CUSTOMER
from cdc_features.monitoring import ConsoleAlerts, MetricsRegistry, check_missing, check_stale
from cdc_features.monitoring.serving import entities_present, newest_customer_order
from cdc_features.stores.redis_store import RedisConfig, load_functions, write_tile

AT = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)


def put_tile(
    client: redis.Redis, customer_id: int, day: date, count: int, last: datetime | None
) -> None:
    load_functions(client)
    pipe = client.pipeline(transaction=False)
    row = Row(
        customer_id=customer_id,
        day=day,
        order_count=count,
        total_spend=Decimal("10.00") * count,
        last_order_ts=last,
    )
    # the real time as 'now': the sink keeps a replayed old tile for at least a day
    write_tile(pipe, row, time.time(), RedisConfig("unused"))
    pipe.execute()


def test_missing_share_counts_entities_without_tiles_in_the_30_day_horizon(
    redis_client: redis.Redis,
) -> None:
    put_tile(redis_client, 1, date(2026, 3, 31), 1, AT - timedelta(hours=2))  # today
    put_tile(redis_client, 2, date(2026, 3, 2), 2, datetime(2026, 3, 2, 9, tzinfo=UTC))
    put_tile(redis_client, 3, date(2026, 3, 1), 1, datetime(2026, 3, 1, 9, tzinfo=UTC))
    # customer 3's only tile is 1 March: outside [2 March, 31 March]; customer 4 never ordered
    present = entities_present(redis_client, CUSTOMER, [1, 2, 3, 4], AT)
    assert present == {1: True, 2: True, 3: False, 4: False}
    registry = MetricsRegistry(clock=lambda: AT)
    found = {k: (True if v else None) for k, v in present.items()}
    assert check_missing("customer", [1, 2, 3, 4], found, registry) == 0.5
    [alert] = ConsoleAlerts(registry).evaluate()
    assert (alert.name, alert.subject, alert.value) == ("MissingFeatures", "customer", 0.5)


def test_stale_check_uses_the_newest_stored_order_of_each_key(redis_client: redis.Redis) -> None:
    put_tile(redis_client, 1, date(2026, 3, 31), 1, AT - timedelta(minutes=20))
    put_tile(redis_client, 1, date(2026, 3, 30), 3, datetime(2026, 3, 30, 23, tzinfo=UTC))
    put_tile(redis_client, 2, date(2026, 3, 29), 1, datetime(2026, 3, 29, 8, tzinfo=UTC))
    newest = newest_customer_order(redis_client, [1, 2, 3], AT)
    assert newest == {
        1: AT - timedelta(minutes=20),
        2: datetime(2026, 3, 29, 8, tzinfo=UTC),
        3: None,
    }
    registry = MetricsRegistry(clock=lambda: AT)
    stale = check_stale("customer", newest, now=AT, max_age=timedelta(hours=1), registry=registry)
    assert stale == {
        2: (AT - datetime(2026, 3, 29, 8, tzinfo=UTC)).total_seconds(),
        3: None,
    }
    assert registry.stale_keys() == {"customer": 2}
    assert [a.name for a in ConsoleAlerts(registry).evaluate()] == ["StaleFeatureKeys"]
