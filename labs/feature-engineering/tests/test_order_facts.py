"""The Real-Time Mode path without Kafka: the query's records (its exact transformation on a
static DataFrame) applied by the fact store's Lua script, read back, equal to the batch
reference; replays, late facts, pruning and expiry of the store."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features.core.definitions import can_count
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.reference import reference_customer_features
from cdc_features.core.spec import CUSTOMER, ORDER_FACTS_TOPIC, REALTIME_DEAD_LETTER_TOPIC
from cdc_features.job.realtime import RealtimeConfig, realtime_records
from cdc_features.lab.generator import generate_log
from cdc_features.lab.stories import feature_stories
from cdc_features.stores.layout import decode_order_facts, order_facts_key, to_micros
from cdc_features.stores.order_facts import (
    BadFact,
    FactRecord,
    OrderFactsReader,
    OrderFactStore,
    decode_fact,
)
from cdc_features.testing import newest_time, raw_frame

CONFIG = RealtimeConfig(bootstrap_servers="unused:9092", checkpoint_dir="unused")
HORIZON = CUSTOMER.lookback_days  # 365: recency's horizon bounds what the store keeps
LATER = (timedelta(0), timedelta(days=10), timedelta(days=31))
DAY_US = 86_400_000_000


def records_of(spark: SparkSession, log: list) -> tuple[list[FactRecord], list[dict]]:
    """The Kafka records the Real-Time Mode query writes for ``log``: facts (in the order of
    the input) and dead letters."""
    rows = realtime_records(raw_frame(spark, log), CONFIG).collect()
    facts = [decode_fact(r["value"]) for r in rows if r["topic"] == ORDER_FACTS_TOPIC]
    dead = [json.loads(r["value"]) for r in rows if r["topic"] == REALTIME_DEAD_LETTER_TOPIC]
    assert len(facts) + len(dead) == len(rows)
    return facts, dead


def assert_equal_to_reference(client: redis.Redis, log: list) -> None:
    reader = OrderFactsReader(client)
    end = newest_time(log)
    for later in LATER:
        at = end + later
        want = reference_customer_features(log, at)
        got = reader.customer_features(set(want) | reader.customer_ids(), at)
        diff = {c: (got[c], want.get(c)) for c in got if got[c] != want.get(c)}
        assert not diff, f"T = end + {later}: {len(diff)} differ, e.g. {next(iter(diff.items()))}"
        if later == timedelta(0):
            assert sum(1 for f in want.values() if f.order_count_30d) > 50


def test_generated_log_equals_the_reference(spark: SparkSession, redis_client: redis.Redis) -> None:
    log = generate_log(7, 10_000, schemas=True, decimal_mode="precise", malformed_rate=0.01)
    facts, dead = records_of(spark, log)
    store = OrderFactStore(redis_client)
    results: Counter[str] = Counter()
    for start in range(0, len(facts), 500):  # as the writer does: one pipeline per poll
        results += store.apply(facts[start : start + 500])
    assert_equal_to_reference(redis_client, log)
    assert results["applied"] > 3_000 and results["superseded"] > 0
    assert dead and all(d["reason"] for d in dead)


def test_dead_letters_are_the_parsers(spark: SparkSession) -> None:
    log = generate_log(3, 2_000, schemas=False, decimal_mode="string", malformed_rate=0.05)
    orders_only = [r for r in log if r["topic"].endswith(".orders")]
    _, dead = records_of(spark, orders_only)
    parsed = parse_order_events(raw_frame(spark, orders_only)).dead_letters.collect()
    assert Counter(d["reason"] for d in dead) == Counter(r["reason"] for r in parsed)
    assert {"tombstone", "not_json"} <= {d["reason"] for d in dead}


def test_stories_and_every_replay_order_equal_the_reference(
    spark: SparkSession, redis_client: redis.Redis
) -> None:
    """The stories (moves, cancellations, deletes, a too-late order, duplicates) applied,
    then re-delivered: a prefix again, everything again, and a shuffled copy (a replay
    after a restart of the query or of the writer), every time equal to the reference."""
    log = feature_stories().records
    facts, _ = records_of(spark, log)
    store = OrderFactStore(redis_client)
    store.apply(facts)
    assert_equal_to_reference_small(redis_client, log)
    before = snapshot(redis_client)
    again = store.apply(facts[: len(facts) // 2]) + store.apply(facts)
    assert again == Counter({"superseded": len(facts) // 2 + len(facts)})
    shuffled = facts[:]
    random.Random(5).shuffle(shuffled)
    store.apply(shuffled)
    assert snapshot(redis_client) == before


def assert_equal_to_reference_small(client: redis.Redis, log: list) -> None:
    reader = OrderFactsReader(client)
    end = newest_time(log)
    for later in LATER:
        want = reference_customer_features(log, end + later)
        got = reader.customer_features(set(want) | reader.customer_ids(), end + later)
        assert got == {c: want[c] for c in got}
        assert set(want) <= set(got)
    assert any(f.order_count_30d for f in reader.customer_features(set(want), end).values())


def stored(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    return cast(dict[bytes, bytes], client.hgetall(key))


def snapshot(client: redis.Redis) -> dict[str, dict[bytes, bytes]]:
    return {k.decode(): client.hgetall(k) for k in client.scan_iter("co:*")}  # type: ignore[misc]


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def fact(
    order_id: int,
    lsn: int,
    when: datetime,
    *,
    rank: int = 1,
    active: bool = True,
    amount: str | None = "10.00",
    customer_id: int = 1,
) -> FactRecord:
    return FactRecord(
        customer_id, order_id, lsn, rank, active, amount if active else None, to_micros(when), None
    )


def features(client: redis.Redis, at: datetime = NOW) -> tuple[int, Decimal]:
    f = OrderFactsReader(client).customer_features([1], at)[1]
    return f.order_count_30d, f.total_spend_30d


def test_lsn_guard_newer_wins_whatever_the_order(redis_client: redis.Redis) -> None:
    store = OrderFactStore(redis_client)
    v1 = fact(10, 100, NOW - timedelta(days=1), amount="10.00")
    v2 = fact(10, 200, NOW - timedelta(days=1), amount="25.50")
    assert store.apply([v2]) == Counter({"applied": 1})
    assert store.apply([v1, v2]) == Counter({"superseded": 2})
    assert features(redis_client) == (1, Decimal("25.50"))
    # the same LSN: the after image (rank 1) beats the retraction (rank 0) and not vice versa
    retraction = fact(10, 200, NOW - timedelta(days=1), rank=0, active=False)
    assert store.apply([retraction]) == Counter({"superseded": 1})
    assert features(redis_client) == (1, Decimal("25.50"))
    # LSNs compare as numbers, not as text ("1000" > "999")
    store.apply([fact(11, 999, NOW), fact(11, 1000, NOW, amount="1.00"), fact(11, 999, NOW)])
    assert features(redis_client) == (2, Decimal("26.50"))


def test_a_late_fact_is_stored_inactive_and_still_supersedes(redis_client: redis.Redis) -> None:
    store = OrderFactStore(redis_client)
    newest = NOW
    recent = fact(1, 100, newest - timedelta(days=2))
    store.apply([fact(2, 50, newest), recent])
    # order 1 moved back 400 days (same customer): too late to count even for recency (365
    # days), yet it must leave the window
    moved = fact(1, 300, newest - timedelta(days=400))
    assert not can_count((newest - timedelta(days=400)).date(), newest.date(), HORIZON)
    assert store.apply([moved]) == Counter({"late": 1})
    assert features(redis_client) == (1, Decimal("10.00"))
    # the boundary: 364 days before the newest day can count (recency), 365 cannot
    edge_in, edge_out = newest - timedelta(days=364), newest - timedelta(days=365)
    assert can_count(edge_in.date(), newest.date(), HORIZON)
    assert store.apply([fact(3, 400, edge_in), fact(4, 401, edge_out)]) == Counter(
        {"applied": 1, "late": 1}
    )
    assert features(redis_client) == (1, Decimal("10.00"))  # order 3: outside the 30 days
    got = OrderFactsReader(redis_client).customer_features([1], newest)[1]
    assert got.last_order_ts == newest  # recency: order 2


def test_recency_falls_back_to_an_older_order_when_the_newest_stops_counting(
    redis_client: redis.Redis,
) -> None:
    store = OrderFactStore(redis_client)
    old = NOW - timedelta(days=100)
    store.apply([fact(1, 10, old), fact(2, 20, NOW - timedelta(days=1))])
    reader = OrderFactsReader(redis_client)
    assert reader.customer_features([1], NOW)[1].last_order_ts == NOW - timedelta(days=1)
    store.apply([fact(2, 30, NOW - timedelta(days=1), active=False)])  # cancelled
    got = reader.customer_features([1], NOW)[1]
    assert (got.order_count_30d, got.last_order_ts, got.days_since_last_order) == (0, old, 100)


def test_a_version_without_a_plausible_date_stops_the_order_counting(
    redis_client: redis.Redis,
) -> None:
    """The parser's event-time guard nulls an order_date far in the future: the fact has no
    time, is inactive, supersedes the previous version and moves no clock."""
    store = OrderFactStore(redis_client)
    store.apply([fact(1, 10, NOW - timedelta(days=1))])
    typo = FactRecord(1, 1, 20, 1, False, "10.00", None, None)
    assert store.apply([typo]) == Counter({"applied": 1})
    assert features(redis_client) == (0, Decimal("0.00"))
    assert (
        stored(redis_client, order_facts_key(1))[b"_newest_us"]
        == str(to_micros(NOW - timedelta(days=1))).encode()
    )
    store.apply([fact(1, 30, NOW - timedelta(days=2), amount="7.00")])  # the correction
    assert features(redis_client) == (1, Decimal("7.00"))


def test_old_fields_are_pruned_and_the_key_expires(redis_client: redis.Redis) -> None:
    store = OrderFactStore(redis_client)
    # real dates: Redis expires keys by its own clock
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=380)
    store.apply([fact(1, 1, start), fact(2, 2, start + timedelta(days=5))])
    key = order_facts_key(1)
    assert {f.order_id for f in decode_order_facts(stored(redis_client, key))} == {1, 2}
    # 368 days later order 1 is outside every lookback a read at or after it can use; 2 not
    later = start + timedelta(days=368)
    store.apply([fact(3, 3, later)])
    assert {f.order_id for f in decode_order_facts(stored(redis_client, key))} == {2, 3}
    # a replay of order 1's fact is late now and stays out
    assert store.apply([fact(1, 1, start)]) == Counter({"late": 1})
    assert features(redis_client, later) == (1, Decimal("10.00"))
    # expiry: the newest day's end + 366 days
    newest_day_end = datetime.combine(later.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert redis_client.expiretime(key) == int(newest_day_end.timestamp()) + 366 * 86_400
    # a key whose days are all past (old history replayed): it lives one day from the write
    store.apply([fact(5, 5, NOW - timedelta(days=500), customer_id=2)], now=1_900_000_000)
    assert redis_client.expiretime(order_facts_key(2)) == 1_900_000_000 + 86_400


def test_a_record_that_is_not_a_fact_is_rejected_with_a_reason() -> None:
    with pytest.raises(BadFact, match="not_a_fact"):
        decode_fact(b'{"customer_id": 1}')
    with pytest.raises(BadFact, match="not_a_fact"):
        decode_fact(b"not json")
