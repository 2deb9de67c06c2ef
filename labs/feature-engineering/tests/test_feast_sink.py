"""The Feast sink in foreachBatch: later micro-batches change the online value, decay,
bounded driver work, restarts. Real Spark micro-batches over the customer-tile schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.stores import feast_store as fs
from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig
from cdc_features.stores.layout import from_micros
from cdc_features.stores.redis_store import RedisConfig, RedisFeatureReader
from cdc_features.testing import FileStream

TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp, commit_ts timestamp"
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def tile(cid: int, day: str, count: int, spend: str, last: str | None, commit: str) -> dict:
    return {
        "customer_id": cid,
        "day": day,
        "order_count": count,
        "total_spend": spend,
        "last_order_ts": last,
        "commit_ts": commit,
    }


class TileStream:
    """A real streaming query over the shared file harness: JSON files of tile rows →
    foreachBatch(FeastSink.push_to_feast), one file per micro-batch."""

    def __init__(self, spark: SparkSession, root: Path, sink: FeastSink) -> None:
        self.files = FileStream(spark, root, schema=TILE_SCHEMA)
        self.sink = sink
        self.checkpoint = root / "checkpoints" / "tiles"
        self.query: Any = None

    def start(self) -> None:
        self.query = self.files.start("tiles", self.files.source(), self.sink.push_to_feast)

    def send(self, rows: list[dict]) -> None:
        """One file = one micro-batch; returns when it has been written to both stores."""
        self.files.add(rows)
        self.files.process()

    def stop(self) -> None:
        self.files.stop()


def feast_sink_of(repo: Path, redis_url: str, **options: Any) -> FeastSink:
    return FeastSink(FeastSinkConfig(repo, RedisConfig(redis_url), **options))


@pytest.fixture()
def repo(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "feast_repo"
    fs.prepare_repo(path, redis_url)
    yield path


@pytest.fixture()
def stream(spark: SparkSession, repo: Path, redis_url: str, tmp_path: Path) -> Iterator[TileStream]:
    sink = feast_sink_of(repo, redis_url)
    s = TileStream(spark, tmp_path / "stream", sink)
    s.start()
    yield s
    s.stop()
    sink.close()


def online(repo: Path, ids: list[int], at: datetime) -> dict[int, CustomerFeatures | None]:
    return fs.online_customer_features(fs.open_store(repo), ids, at)


def clock(client: redis.Redis) -> datetime:
    return from_micros(int(cast(bytes, client.get("feast:clock:customer_features"))))


def test_updates_and_cancellations_in_later_batches_change_the_online_value(
    stream: TileStream, repo: Path, redis_client: redis.Redis
) -> None:
    read_at = utc("2026-03-10T18:00:00")
    # batch 0: customer 1 has two orders (20.00 + 30.00) on March 10, customer 2 one order
    stream.send(
        [
            tile(1, "2026-03-10", 2, "50.00", "2026-03-10T09:00:00", "2026-03-10T09:00:01"),
            tile(2, "2026-03-09", 1, "20.00", "2026-03-09T12:00:00", "2026-03-10T09:00:01"),
        ]
    )
    got = online(repo, [1, 2], read_at)
    assert got[1] == CustomerFeatures(
        1, 2, Decimal("50.00"), Decimal("25.00"), utc("2026-03-10T09:00:00"), 0
    )
    assert got[2] == CustomerFeatures(
        2, 1, Decimal("20.00"), Decimal("20.00"), utc("2026-03-09T12:00:00"), 1
    )
    first = clock(redis_client)
    assert first == utc("2026-03-10T09:00:01")
    stored = cast(bytes, redis_client.hget("cf:1", "20260310"))
    assert stored.split(b"|")[:2] == [b"2", b"50.00"]  # lab tiles too

    # batch 1: amount correction 30.00 -> 35.00, with the SAME commit time as batch 0
    # (the event-derived timestamp would not move): the clock still moves on by 1 µs
    stream.send([tile(1, "2026-03-10", 2, "55.00", "2026-03-10T09:00:00", "2026-03-10T09:00:01")])
    assert clock(redis_client) == first + timedelta(microseconds=1)
    got = online(repo, [1, 2], read_at)
    assert got[1].order_count_30d == 2
    assert got[1].total_spend_30d == Decimal("55.00")
    assert got[1].avg_order_value_30d == Decimal("27.50")
    assert got[2].total_spend_30d == Decimal("20.00")  # untouched

    # batch 2: the 09:00 order (35.00) is cancelled; the 08:00 order (20.00) remains
    stream.send([tile(1, "2026-03-10", 1, "20.00", "2026-03-10T08:00:00", "2026-03-10T10:00:00")])
    got = online(repo, [1], read_at)
    assert got[1] == CustomerFeatures(
        1, 1, Decimal("20.00"), Decimal("20.00"), utc("2026-03-10T08:00:00"), 0
    )

    # batch 3: the last order is deleted (a 0-order tile): the customer reads zero
    stream.send([tile(1, "2026-03-10", 0, "0.00", None, "2026-03-10T11:00:00")])
    assert online(repo, [1], read_at)[1] == CustomerFeatures(
        1, 0, Decimal("0.00"), None, None, None
    )
    assert redis_client.exists("cf:1") == 0

    # the offline store kept every version, timestamps strictly increasing
    offline = pq.read_table(repo / "data" / "customer_features.parquet").to_pandas()
    c1 = offline[offline.customer_id == 1].sort_values("event_timestamp")
    assert list(c1.total_spend_30d) == ["50.00", "55.00", "20.00", "0.00"]
    assert c1.event_timestamp.is_monotonic_increasing and c1.event_timestamp.is_unique


def test_a_new_utc_day_re_pushes_decayed_customers(
    stream: TileStream, repo: Path, redis_client: redis.Redis
) -> None:
    stream.send(
        [
            tile(5, "2026-03-10", 1, "12.00", "2026-03-10T09:00:00", "2026-03-10T09:00:00"),
            tile(6, "2026-03-12", 2, "8.00", "2026-03-12T09:00:00", "2026-03-12T09:00:00"),
        ]
    )
    assert online(repo, [5], utc("2026-03-12T10:00:00"))[5].order_count_30d == 1
    assert redis_client.zrange("feast:active:customer_features", 0, -1) == [b"5", b"6"]
    # 31 days later an event of another customer arrives: customer 5's order has left
    # the 30-day window (customer 6's has not); it is re-pushed without own events, and
    # keeps its recency
    stream.send([tile(7, "2026-04-10", 1, "3.00", "2026-04-10T09:00:00", "2026-04-10T09:00:00")])
    at = utc("2026-04-10T12:00:00")
    got = online(repo, [5, 6, 7], at)
    assert got[5] == CustomerFeatures(5, 0, Decimal("0.00"), None, utc("2026-03-10T09:00:00"), 31)
    assert got[6] == CustomerFeatures(
        6, 2, Decimal("8.00"), Decimal("4.00"), utc("2026-03-12T09:00:00"), 29
    )
    assert got[7].order_count_30d == 1
    # 6 and 7 are due again tomorrow (30-day sums); 5 only when its last order leaves the
    # 365-day horizon, on 2027-03-10
    due = redis_client.zrange("feast:active:customer_features", 0, -1, withscores=True)
    assert [(m, from_micros(int(score))) for m, score in due] == [
        (b"6", utc("2026-04-11T00:00:00")),
        (b"7", utc("2026-04-11T00:00:00")),
        (b"5", utc("2027-03-10T00:00:00")),
    ]


def test_restart_from_checkpoint_keeps_the_online_values(
    stream: TileStream, repo: Path, redis_client: redis.Redis
) -> None:
    stream.send([tile(8, "2026-03-10", 1, "10.00", "2026-03-10T09:00:00", "2026-03-10T09:00:00")])
    stream.send([tile(8, "2026-03-10", 2, "25.50", "2026-03-10T09:30:00", "2026-03-10T09:30:00")])
    at = utc("2026-03-10T20:00:00")
    before = online(repo, [8], at)
    stream.stop()
    # the last batch is replayed, as after a crash between the write and the commit log
    commits = stream.checkpoint / "commits"
    last = max(int(p.name) for p in commits.iterdir() if p.name.isdigit())
    (commits / str(last)).unlink()
    (commits / f".{last}.crc").unlink(missing_ok=True)
    stream.start()
    stream.files.process()
    assert online(repo, [8], at) == before
    assert before[8].total_spend_30d == Decimal("25.50")
    stream.send([tile(8, "2026-03-10", 3, "30.00", "2026-03-10T09:45:00", "2026-03-10T09:45:00")])
    assert online(repo, [8], at)[8].order_count_30d == 3


def test_a_batch_with_too_many_customers_fails_loudly(
    spark: SparkSession, repo: Path, redis_url: str
) -> None:
    sink = feast_sink_of(repo, redis_url, max_entities=2)
    rows = [
        tile(i, "2026-03-10", 1, "1.00", "2026-03-10T09:00:00", "2026-03-10T09:00:00")
        for i in (1, 2, 3)
    ]
    df = spark.createDataFrame(
        pd.DataFrame(rows).assign(
            day=lambda d: pd.to_datetime(d.day).dt.date,
            last_order_ts=lambda d: pd.to_datetime(d.last_order_ts),
            commit_ts=lambda d: pd.to_datetime(d.commit_ts),
            total_spend=lambda d: d.total_spend.map(Decimal),
        ),
        TILE_SCHEMA,
    )
    with pytest.raises(RuntimeError, match=r"more than 2 customer_ids.*maxFilesPerTrigger"):
        sink.push_to_feast(df, 0)


def test_sink_refuses_an_unapplied_repository(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(FileNotFoundError, match="feast_store prepare"):
        feast_sink_of(tmp_path, redis_url)


def test_batched_read_equals_the_lab_read_of_each_entity(
    redis_client: redis.Redis, redis_url: str
) -> None:
    from cdc_features.stores.redis_store import (
        _write_line,
        load_functions,
        read_customer_features,
        read_product_features,
        write_tile,
    )

    config = RedisConfig(redis_url)
    load_functions(redis_client)
    pipe = redis_client.pipeline(transaction=False)
    now = datetime.now(UTC).timestamp()
    for cid, day, count, spend in [
        (1, "2026-03-10", 2, "7.50"),
        (1, "2026-02-10", 1, "1.00"),
        (1, "2026-02-08", 1, "4.00"),
        (3, "2026-03-01", 3, "9.99"),
    ]:
        d = datetime.fromisoformat(day).date()
        write_tile(
            pipe,
            {
                "customer_id": cid,
                "day": d,
                "order_count": count,
                "total_spend": Decimal(spend),
                "last_order_ts": utc(day + "T10:00:00"),
            },
            now,
            config,
        )
    for pid, day, order, item, cust, units in [
        (4, "2026-03-10", 1, 1, 1, 2),
        (4, "2026-03-04", 2, 3, 2, 1),
        (4, "2026-03-03", 3, 4, 2, 5),
    ]:
        _write_line(
            pipe,
            {
                "product_id": pid,
                "day": datetime.fromisoformat(day).date(),
                "order_id": order,
                "item_id": item,
                "customer_id": cust,
                "units": units,
                "revenue": Decimal("2.50") * units,
                "active": True,
            },
            now,
            config,
        )
    pipe.execute()
    at = utc("2026-03-10T23:00:00")
    ids = [1, 2, 3]
    reader = RedisFeatureReader(redis_client)
    assert reader.customer_features(ids, at) == {
        i: read_customer_features(redis_client, i, at) for i in ids
    }
    assert reader.customer_features([1], at)[1].order_count_30d == 3
    assert reader.product_features([4, 5], at) == {
        i: read_product_features(redis_client, i, at) for i in (4, 5)
    }
    assert reader.product_features([4], at)[4].units_sold_7d == 3
