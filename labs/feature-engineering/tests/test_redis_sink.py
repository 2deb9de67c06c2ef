"""The Redis feature store sink: exact layout, idempotent replays, TTLs and reads at T."""

from __future__ import annotations

import socket
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
import redis
from pyspark.sql import DataFrame, SparkSession

from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.stores import redis_store as rs
from cdc_features.stores.layout import to_micros
from cdc_features.stores.memory import MemoryStore
from cdc_features.stores.redis_store import RedisConfig, RedisFeatureReader
from cdc_features.testing import all_customers, all_products

TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp, commit_ts timestamp"
)
LINE_SCHEMA = (
    "product_id long, day date, order_id long, item_id long, customer_id long, "
    "units int, revenue decimal(12,2), active boolean, lsn long, commit_ts timestamp"
)
TODAY = datetime.now(UTC).date()


def ts(d: date, hh: int, mm: int = 0, us: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, 0, us)


def day_end_plus(d: date, days: int) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) + (1 + days) * 86_400


@pytest.fixture()
def store(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture()
def config(redis_url: str) -> RedisConfig:
    return RedisConfig(redis_url)


def tiles(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, TILE_SCHEMA).repartition(2)


def lines(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, LINE_SCHEMA).repartition(2)


D1 = TODAY - timedelta(days=3)
D2 = TODAY - timedelta(days=1)
OLD = TODAY - timedelta(days=200)


def test_tiles_are_stored_as_exact_hashes_with_expireat(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    batch = tiles(
        spark,
        [
            (42, D1, 2, Decimal("35.50"), ts(D1, 14, 5, 123456), ts(D1, 14, 6)),
            (42, D2, 1, Decimal("9.99"), ts(D2, 8), ts(D2, 8, 1)),
            (7, D2, 3, Decimal("120.00"), ts(D2, 23, 59), ts(D2, 23, 59)),
        ],
    )
    rs.write_to_feature_store(batch, 0, store=config)
    # one hash per customer, a field per day: order_count|total_spend|last_order_ts_us
    assert store.hgetall("cf:42") == {
        f"{D1:%Y%m%d}".encode(): f"2|35.50|{to_micros(ts(D1, 14, 5, 123456))}".encode(),
        f"{D2:%Y%m%d}".encode(): f"1|9.99|{to_micros(ts(D2, 8))}".encode(),
    }
    assert rs.dump_store(store) == {
        "cf:42": {
            f"{D1:%Y%m%d}": f"2|35.50|{to_micros(ts(D1, 14, 5, 123456))}",
            f"{D2:%Y%m%d}": f"1|9.99|{to_micros(ts(D2, 8))}",
        },
        "cf:7": {f"{D2:%Y%m%d}": f"3|120.00|{to_micros(ts(D2, 23, 59))}"},
        # recency: one sorted set per customer, a day per member, its newest order as score
        "cr:42": {
            f"{D1:%Y%m%d}": str(to_micros(ts(D1, 14, 5, 123456))),
            f"{D2:%Y%m%d}": str(to_micros(ts(D2, 8))),
        },
        "cr:7": {f"{D2:%Y%m%d}": str(to_micros(ts(D2, 23, 59)))},
    }
    assert store.expiretime("cf:42") == day_end_plus(D2, 31)  # the newest day + 31 days
    assert store.expiretime("cf:7") == day_end_plus(D2, 31)
    assert store.expiretime("cr:42") == day_end_plus(D2, 366)  # the newest day + 366 days


def test_replayed_batch_and_new_absolute_values(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    batch = tiles(
        spark,
        [
            (1, D1, 2, Decimal("20.00"), ts(D1, 10), ts(D1, 10)),
            (2, D1, 1, Decimal("5.00"), ts(D1, 11), ts(D1, 11)),
        ],
    )
    rs.write_to_feature_store(batch, 3, store=config)
    first = rs.dump_store(store)
    rs.write_to_feature_store(batch, 3, store=config)  # a retried micro-batch
    assert rs.dump_store(store) == first
    # The next batch carries the tile's new absolute value (an amount update), and a tile
    # that lost its last order (cancelled) — its field goes, and the emptied hash with it.
    rs.write_to_feature_store(
        tiles(
            spark,
            [
                (1, D1, 2, Decimal("25.00"), ts(D1, 10), ts(D1, 12)),
                (2, D1, 0, Decimal("0.00"), None, ts(D1, 12)),
            ],
        ),
        4,
        store=config,
    )
    assert rs.dump_store(store) == {
        "cf:1": {f"{D1:%Y%m%d}": f"2|25.00|{to_micros(ts(D1, 10))}"},
        "cr:1": {f"{D1:%Y%m%d}": str(to_micros(ts(D1, 10)))},  # customer 2's day left its set
    }


def test_expiry_moves_forward_only_and_a_replayed_old_day_stays_readable(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    store.hset("cf:5", f"{D2:%Y%m%d}", "9|9.00|")
    store.expire("cf:5", 60)
    rs.write_to_feature_store(
        tiles(spark, [(5, D2, 1, Decimal("1.00"), ts(D2, 1), ts(D2, 1))]), 0, store=config
    )
    assert store.expiretime("cf:5") == day_end_plus(D2, 31)
    rs.write_to_feature_store(  # an older day later on: the expiry is not lowered
        tiles(spark, [(5, D1, 1, Decimal("1.00"), ts(D1, 1), ts(D1, 1))]), 1, store=config
    )
    assert store.expiretime("cf:5") == day_end_plus(D2, 31)
    # A customer whose history is replayed long after: its hash lives at least a day.
    rs.write_to_feature_store(
        tiles(spark, [(6, OLD, 1, Decimal("2.00"), ts(OLD, 1), ts(OLD, 1))]), 2, store=config
    )
    now = time.time()
    old_expiry = store.expiretime("cf:6")
    assert now + rs.MIN_TTL_SECONDS - 5 <= old_expiry <= now + rs.MIN_TTL_SECONDS + 5


def test_product_lines_set_and_hdel(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    rs.write_product_features(
        lines(
            spark,
            [
                (10, D1, 100, 1000, 42, 2, Decimal("19.98"), True, 500, ts(D1, 9)),
                (10, D1, 101, 1001, 43, 1, Decimal("5.00"), True, 510, ts(D1, 9)),
                (11, D2, 100, 1002, 42, 3, Decimal("3.00"), True, 520, ts(D2, 9)),
            ],
        ),
        0,
        store=config,
    )
    assert rs.dump_store(store) == {
        f"pf:10:{D1:%Y%m%d}": {"100:1000": "2|19.98|42", "101:1001": "1|5.00|43"},
        f"pf:11:{D2:%Y%m%d}": {"100:1002": "3|3.00|42"},
    }
    assert store.expiretime(f"pf:10:{D1:%Y%m%d}") == day_end_plus(D1, 8)
    # Order 101 cancelled; item 1000 moved to another day (retraction + new position);
    # a stale row of the same line with a lower LSN in the same batch loses.
    rs.write_product_features(
        lines(
            spark,
            [
                (10, D1, 101, 1001, 43, 1, Decimal("5.00"), False, 600, ts(D2, 9)),
                (10, D1, 100, 1000, 42, 2, Decimal("19.98"), False, 610, ts(D2, 9)),
                (10, D2, 100, 1000, 42, 2, Decimal("19.98"), True, 610, ts(D2, 9)),
                (11, D2, 100, 1002, 42, 3, Decimal("3.00"), True, 520, ts(D2, 9)),
                (11, D2, 100, 1002, 42, 4, Decimal("4.00"), True, 615, ts(D2, 9)),
            ],
        ).coalesce(1),
        1,
        store=config,
    )
    assert rs.dump_store(store) == {
        f"pf:10:{D2:%Y%m%d}": {"100:1000": "2|19.98|42"},
        f"pf:11:{D2:%Y%m%d}": {"100:1002": "4|4.00|42"},
    }


def test_reads_at_t_compute_rolling_features(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    at = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    d29 = TODAY - timedelta(days=29)
    d30 = TODAY - timedelta(days=30)
    rs.write_to_feature_store(
        tiles(
            spark,
            [
                (42, d30, 5, Decimal("500.00"), ts(d30, 12), ts(d30, 12)),  # outside the 30 days
                (42, d29, 1, Decimal("10.00"), ts(d29, 0, 0, 1), ts(d29, 1)),
                (42, D1, 2, Decimal("25.01"), ts(D1, 18, 30), ts(D1, 19)),
            ],
        ),
        0,
        store=config,
    )
    assert rs.read_customer_features(store, 42, at) == CustomerFeatures(
        42,
        3,
        Decimal("35.01"),
        Decimal("11.67"),
        datetime(D1.year, D1.month, D1.day, 18, 30, tzinfo=UTC),
        2,
    )
    later = at + timedelta(days=31)
    last = datetime(D1.year, D1.month, D1.day, 18, 30, tzinfo=UTC)
    # the 30-day sums decay; recency keeps the last order (33 days before ``later``)
    assert rs.read_customer_features(store, 42, later) == CustomerFeatures(
        42, 0, Decimal("0.00"), None, last, 33
    )
    assert rs.read_customer_features(store, 42, at + timedelta(days=365)) == CustomerFeatures(
        42, 0, Decimal("0.00"), None, None, None
    )
    assert rs.read_customer_features(store, 999, at) == CustomerFeatures(
        999, 0, Decimal("0.00"), None, None, None
    )

    d6 = TODAY - timedelta(days=6)
    d7 = TODAY - timedelta(days=7)
    rs.write_product_features(
        lines(
            spark,
            [
                (10, d7, 1, 1, 42, 9, Decimal("90.00"), True, 1, ts(d7, 1)),  # outside the 7 days
                (10, d6, 2, 2, 42, 1, Decimal("10.00"), True, 2, ts(d6, 1)),
                (10, TODAY, 3, 3, 42, 2, Decimal("20.00"), True, 3, ts(TODAY, 1)),
                (10, TODAY, 4, 4, 43, 3, Decimal("30.50"), True, 4, ts(TODAY, 1)),
            ],
        ),
        0,
        store=config,
    )
    assert rs.read_product_features(store, 10, at) == ProductFeatures(10, 6, Decimal("60.50"), 2)
    reader = RedisFeatureReader(store)
    assert all_products(reader, at) == {10: ProductFeatures(10, 6, Decimal("60.50"), 2)}
    assert set(all_customers(reader, at)) == {42}


def test_many_rows_small_flushes_and_driver_writer_agree(
    spark: SparkSession, redis_url: str, store: redis.Redis
) -> None:
    rows: list[tuple[Any, ...]] = [
        (c, D1 - timedelta(days=c % 5), 1 + c % 3, Decimal(c) / 4, ts(D1, c % 24), ts(D1, 0))
        for c in range(1, 1201)
    ]
    rows.append((5000, D1, 0, Decimal("0.00"), None, ts(D1, 0)))  # a tile that lost its orders
    config = RedisConfig(redis_url, flush_every=7)
    rs.write_to_feature_store(tiles(spark, rows), 0, store=config)
    executor_side = rs.dump_store(store)
    assert sum(1 for key in executor_side if key.startswith("cf:")) == 1200
    assert sum(1 for key in executor_side if key.startswith("cr:")) == 1200  # one per customer
    assert "cf:5000" not in executor_side and "cr:5000" not in executor_side
    assert executor_side["cf:13"] == {
        f"{D1 - timedelta(days=3):%Y%m%d}": f"2|3.25|{to_micros(ts(D1, 13))}"
    }
    store.flushdb()
    rs.write_rows_from_driver(tiles(spark, rows), store=config)
    assert rs.dump_store(store) == executor_side


def test_url_reaches_the_executors_through_the_closure(
    spark: SparkSession, redis_url: str, store: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment of the already running Python workers does not know this URL.
    monkeypatch.setenv(rs.REDIS_URL_ENV, "redis://127.0.0.1:1/0")
    rs.write_to_feature_store(
        tiles(spark, [(3, D2, 1, Decimal("1.00"), ts(D2, 1), ts(D2, 1))]),
        0,
        store=RedisConfig(redis_url),
    )
    assert cast(bytes, store.hget("cf:3", f"{D2:%Y%m%d}")).startswith(b"1|")


def test_unreachable_store_fails_the_batch(spark: SparkSession, store: redis.Redis) -> None:
    with pytest.raises(Exception, match=r"(?i)connect"):
        rs.write_to_feature_store(
            tiles(spark, [(3, D2, 1, Decimal("1.00"), ts(D2, 1), ts(D2, 1))]),
            0,
            store=RedisConfig("redis://127.0.0.1:1/0"),
        )


def test_console_view_prints_changed_customers_from_memory_and_from_redis(
    spark: SparkSession, store: redis.Redis, config: RedisConfig
) -> None:
    import io

    from cdc_features.lab.console import ConsoleFeatureView

    batch = tiles(
        spark,
        [
            (42, D1, 2, Decimal("35.50"), ts(D1, 14, 5), ts(D1, 14, 6)),
            (7, D2, 1, Decimal("9.99"), ts(D2, 8), ts(D2, 8)),
        ],
    )
    out = io.StringIO()
    memory = ConsoleFeatureView(out=out)
    memory.write_customers(batch, 0)
    text = out.getvalue()
    assert "-- batch 0: 2 customer tiles changed" in text
    assert f"features at T = {D2:%Y-%m-%d} 08:00:00 UTC" in text
    row42 = next(line.split() for line in text.splitlines() if line.split()[:1] == ["42"])
    assert row42[:4] == ["42", "2", "35.50", "17.75"]
    assert row42[-1] == str((D2 - D1).days - 1)  # 14:05 on D1 → 08:00 on D2
    # A cancellation empties a tile: the next batch reads 0 orders.
    memory.write_customers(tiles(spark, [(42, D1, 0, Decimal("0.00"), None, ts(D2, 9))]), 1)
    at = datetime.combine(D2, datetime.min.time(), tzinfo=UTC) + timedelta(hours=8)
    assert memory.reader.customer_features([42], at)[42] == CustomerFeatures(
        42, 0, Decimal("0.00"), None, None, None
    )
    # With Redis, the view reads back what the sink stored.
    rs.write_to_feature_store(batch, 0, store=config)
    out = io.StringIO()
    from_redis = ConsoleFeatureView(reader=RedisFeatureReader(store), out=out)
    from_redis.write_customers(batch, 0)
    assert from_redis.reader.customer_features([42], at)[42] == rs.read_customer_features(
        store, 42, at
    )
    assert from_redis.reader.customer_features([42], at)[42].order_count_30d == 2
    assert out.getvalue().splitlines()[1] == f"features at T = {D2:%Y-%m-%d} 08:00:00 UTC"


def test_dead_letter_counter_counts_each_batch_once(tmp_path) -> None:
    import json

    from cdc_features.job.dead_letters import DeadLetterCounter, reason_code

    counter = DeadLetterCounter()
    counter.record(0, {"not_json": 2, "tombstone": 5})
    counter.record(1, {"bad_decimal": 1})
    counter.record(1, {"bad_decimal": 1})  # the same batch replayed
    assert counter.by_reason() == {"bad_decimal": 1, "not_json": 2, "tombstone": 5}
    assert (counter.errors, counter.tombstones) == (3, 5)
    assert reason_code("unknown_op:x") == "unknown_op"
    (tmp_path / "_counts").mkdir()
    (tmp_path / "_counts" / "4.json").write_text(json.dumps({"not_json": 1}))
    assert DeadLetterCounter(tmp_path).errors == 1


def test_a_redis_that_stops_answering_fails_the_write_instead_of_hanging_it() -> None:
    # A server that accepts connections (the kernel's backlog does) and never replies.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        config = RedisConfig(f"redis://127.0.0.1:{server.getsockname()[1]}/0", socket_timeout=0.3)
        row = {
            "customer_id": 1,
            "day": date(2026, 3, 1),
            "order_count": 1,
            "total_spend": Decimal("1.00"),
            "last_order_ts": datetime(2026, 3, 1, 12),
        }
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            rs._write_partition(iter([row]), config=config, write_row=rs.write_tile)
        assert time.monotonic() - started < 10


def _tile_row(customer: int, day: date, count: int, last: datetime | None) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "day": day,
        "order_count": count,
        "total_spend": Decimal("1.00") * count,
        "last_order_ts": last,
    }


def _write_rows(store: redis.Redis, config: RedisConfig, rows: list[dict[str, Any]]) -> None:
    rs.load_functions(store)
    pipe = store.pipeline(transaction=False)
    for row in rows:
        rs.write_tile(pipe, row, time.time(), config)
    pipe.execute()


def test_recency_set_per_customer_and_its_reads(store: redis.Redis, config: RedisConfig) -> None:
    """One sorted set per customer: a day per member scored with its newest order; an emptied
    day leaves it; days behind the horizon are trimmed; the read takes the newest in the
    horizon of T in the same round trip as the tiles."""
    d = [TODAY - timedelta(days=n) for n in (400, 100, 45, 2)]
    _write_rows(
        store,
        config,
        [_tile_row(77, day, 1, ts(day, 10 + i)) for i, day in enumerate(d)],
    )
    members = cast(list[tuple[bytes, float]], store.zrange("cr:77", 0, -1, withscores=True))
    assert [(m.decode(), int(s)) for m, s in members] == [
        (f"{day:%Y%m%d}", to_micros(ts(day, 10 + i))) for i, day in enumerate(d)
    ]
    # the set keeps the newest 365 days, whatever the order of the writes
    _write_rows(
        store,
        config,
        [
            _tile_row(78, TODAY - timedelta(days=n), 1, ts(TODAY - timedelta(days=n), 1))
            for n in range(370)
        ],
    )
    assert store.zcard("cr:78") == 365
    assert (
        cast(list[bytes], store.zrange("cr:78", 0, 0))[0]
        == f"{TODAY - timedelta(days=364):%Y%m%d}".encode()
    )
    now = datetime.now(UTC)
    f = rs.read_customer_features(store, 77, now)
    assert f.last_order_ts == ts(d[3], 13).replace(tzinfo=UTC)
    assert f.order_count_30d == 1
    # the newest day empties (its only order cancelled): the previous day is the newest again
    _write_rows(store, config, [_tile_row(77, d[3], 0, None)])
    f = rs.read_customer_features(store, 77, now)
    assert (f.order_count_30d, f.last_order_ts) == (0, ts(d[2], 12).replace(tzinfo=UTC))
    assert f.days_since_last_order == (now - ts(d[2], 12).replace(tzinfo=UTC)).days
    assert RedisFeatureReader(store).customer_features([77], now)[77] == f
    store.delete("cf:77")
    assert 77 in RedisFeatureReader(store).customer_ids()  # a recency set alone lists it
    # read a year on: the 45-day-old day has left the horizon, the 100-day-old one long ago
    later = rs.read_customer_features(store, 77, now + timedelta(days=330))
    assert later.last_order_ts is None and later.days_since_last_order is None
    # expiry: the end of the newest day + 366 days; an older day never shortens it
    newest_expiry = day_end_plus(d[3], 366)  # set when d[3] was written; never lowered
    assert abs(cast(int, store.ttl("cr:77")) - (newest_expiry - time.time())) < 5
    _write_rows(store, config, [_tile_row(77, d[1], 2, ts(d[1], 9))])
    assert abs(cast(int, store.ttl("cr:77")) - (newest_expiry - time.time())) < 5
    assert rs.dump_store(store)["cr:77"] == {
        f"{d[0]:%Y%m%d}": str(to_micros(ts(d[0], 10))),  # kept: one of the newest 365 days
        f"{d[1]:%Y%m%d}": str(to_micros(ts(d[1], 9))),
        f"{d[2]:%Y%m%d}": str(to_micros(ts(d[2], 12))),
    }


def test_a_tile_hash_keeps_the_days_within_31_of_its_newest_whatever_the_write_order(
    store: redis.Redis, config: RedisConfig
) -> None:
    """The tile function counts the kept span from the newest day in the hash, in calendar
    days across month, leap-day and year ends; any order of the same writes leaves the same
    hash, and a read at T on or after the newest day sums what the untrimmed tiles give."""
    import random

    newest = date(2024, 3, 1)  # 31 days before it: 30 January (2024 is a leap year)
    days = [newest - timedelta(days=n) for n in (0, 1, 29, 30, 31, 32, 33, 60, 400)]
    days += [date(2025, 1, 1) - timedelta(days=n) for n in (0, 31, 32)]  # over a year end
    rows = [_tile_row(c, day, 1 + n % 3, ts(day, 12)) for c in (1, 2) for n, day in enumerate(days)]
    rows = [r for r in rows if (r["customer_id"] == 1) == (r["day"] <= newest)]
    kept = {
        1: {f"{newest - timedelta(days=n):%Y%m%d}" for n in (0, 1, 29, 30, 31)},
        2: {f"{date(2025, 1, 1) - timedelta(days=n):%Y%m%d}" for n in (0, 31)},
    }
    dumps = []
    for seed in range(4):
        store.flushdb()
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        _write_rows(store, config, shuffled)
        assert {c: {f.decode() for f in store.hkeys(f"cf:{c}")} for c in (1, 2)} == kept
        dumps.append(rs.dump_store(store))
    assert all(d == dumps[0] for d in dumps)
    # sums at T = the newest day, the day before it and 30 days on: as from every tile
    memory = MemoryStore()
    memory.apply_tiles(rows)
    for at_day in (newest - timedelta(days=1), newest, newest + timedelta(days=30)):
        at = datetime.combine(at_day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=23)
        assert rs.read_customer_features(store, 1, at) == memory.customer_features([1], at)[1]
    # an emptied newest day: the hash keeps what it had (the span never widens again)
    _write_rows(store, config, [_tile_row(1, newest, 0, None)])
    assert {f.decode() for f in store.hkeys("cf:1")} == kept[1] - {f"{newest:%Y%m%d}"}


def test_a_batched_read_is_one_round_trip_and_equals_the_single_reads(
    store: redis.Redis, config: RedisConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _tile_row(c, TODAY - timedelta(days=(c * n) % 40), 1 + n, ts(TODAY, n))
        for c in range(1, 301)
        for n in range(c % 5)
    ]
    for i, row in enumerate(rows):  # spends of any cents, summed exactly by the store
        row["total_spend"] = Decimal(i * 7919 % 1_000_003) / 100
    _write_rows(store, config, rows)
    at = datetime.now(UTC)
    ids = list(range(1, 351))  # 50 of them never ordered
    single = [rs.read_customer_features(store, c, at) for c in ids]
    memory = MemoryStore()
    memory.apply_tiles(rows)
    assert single == [memory.customer_features(ids, at)[c] for c in ids]
    assert sum(1 for f in single if f.order_count_30d) > 200

    sends: list[int] = []
    original = redis.connection.Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    assert rs.read_customer_features_many(store, ids, at) == single
    assert len(sends) == 1  # 350 customers, 700 commands, one write to the socket
    sends.clear()
    by_id = dict(zip(ids, single, strict=True))
    assert RedisFeatureReader(store).customer_features(ids, at) == by_id
    assert len(sends) == 1
    sends.clear()
    assert RedisFeatureReader(store).product_features(range(1, 101), at) == {
        p: ProductFeatures(p, 0, Decimal("0.00"), 0) for p in range(1, 101)
    }
    assert len(sends) == 1


def test_a_read_reloads_the_functions_a_restarted_redis_lost(
    store: redis.Redis, config: RedisConfig
) -> None:
    _write_rows(store, config, [_tile_row(9, TODAY, 2, ts(TODAY, 1))])
    store.function_flush()  # as after a restart without persistence
    at = datetime.now(UTC)
    assert rs.read_customer_features(store, 9, at).order_count_30d == 2
    [library] = cast(list[list[Any]], store.function_list())
    assert library[:2] == [b"library_name", b"cdc_features"]
