"""The Feast sink in foreachBatch: later micro-batches change the online value, decay,
bounded driver work, restarts. Real Spark micro-batches over the customer-tile schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features import feast_sink, feast_store as fs
from cdc_features.definitions import CustomerFeatures

TILE_SCHEMA = ("customer_id long, day date, order_count int, total_spend decimal(12,2), "
               "last_order_ts timestamp, commit_ts timestamp")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def tile(cid: int, day: str, count: int, spend: str, last: str | None, commit: str) -> dict:
    return {"customer_id": cid, "day": day, "order_count": count, "total_spend": spend,
            "last_order_ts": last, "commit_ts": commit}


class TileStream:
    """A real streaming query: JSON files of tile rows → foreachBatch(push_to_feast)."""

    def __init__(self, spark: SparkSession, root: Path) -> None:
        self.spark = spark
        self.input = root / "in"
        self.checkpoint = root / "checkpoint"
        self.input.mkdir(parents=True, exist_ok=True)
        self.files = 0
        self.query: Any = None

    def start(self) -> None:
        tiles = (self.spark.readStream.schema(TILE_SCHEMA).option("maxFilesPerTrigger", 1)
                 .json(str(self.input)))
        self.query = (tiles.writeStream.outputMode("update")
                      .option("checkpointLocation", str(self.checkpoint))
                      .foreachBatch(feast_sink.push_to_feast).start())

    def send(self, rows: list[dict]) -> None:
        """One file = one micro-batch; returns when it has been written to both stores."""
        path = self.input / f"part-{self.files:04d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.rename(path)
        self.files += 1
        self.query.processAllAvailable()

    def stop(self) -> None:
        if self.query is not None:
            self.query.stop()
            self.query = None


@pytest.fixture()
def repo(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "feast_repo"
    fs.prepare_repo(path, redis_url)
    feast_sink.configure_feast_sink(path, redis_url)
    yield path


@pytest.fixture()
def stream(spark: SparkSession, repo: Path, tmp_path: Path) -> Iterator[TileStream]:
    s = TileStream(spark, tmp_path / "stream")
    s.start()
    yield s
    s.stop()


def online(repo: Path, ids: list[int], at: datetime) -> dict[int, CustomerFeatures | None]:
    return fs.online_customer_features(fs.open_store(repo), ids, at)


def clock(client: redis.Redis) -> datetime:
    return fs.from_micros(int(client.get("feast:clock:customer_features")))


def test_updates_and_cancellations_in_later_batches_change_the_online_value(
        stream: TileStream, repo: Path, redis_client: redis.Redis) -> None:
    read_at = utc("2026-03-10T18:00:00")
    # batch 0: customer 1 has two orders (20.00 + 30.00) on March 10, customer 2 one order
    stream.send([tile(1, "2026-03-10", 2, "50.00", "2026-03-10T09:00:00", "2026-03-10T09:00:01"),
                 tile(2, "2026-03-09", 1, "20.00", "2026-03-09T12:00:00", "2026-03-10T09:00:01")])
    got = online(repo, [1, 2], read_at)
    assert got[1] == CustomerFeatures(1, 2, Decimal("50.00"), Decimal("25.00"),
                                      utc("2026-03-10T09:00:00"), 0)
    assert got[2] == CustomerFeatures(2, 1, Decimal("20.00"), Decimal("20.00"),
                                      utc("2026-03-09T12:00:00"), 1)
    first = clock(redis_client)
    assert first == utc("2026-03-10T09:00:01")
    assert redis_client.hgetall("cf:1:20260310")[b"total_spend"] == b"50.00"  # lab tiles too

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
    assert got[1] == CustomerFeatures(1, 1, Decimal("20.00"), Decimal("20.00"),
                                      utc("2026-03-10T08:00:00"), 0)

    # batch 3: the last order is deleted (a 0-order tile): the customer reads zero
    stream.send([tile(1, "2026-03-10", 0, "0.00", None, "2026-03-10T11:00:00")])
    assert online(repo, [1], read_at)[1] == CustomerFeatures(1, 0, Decimal("0.00"), None, None, None)
    assert redis_client.exists("cf:1:20260310") == 0

    # the offline store kept every version, timestamps strictly increasing
    offline = pq.read_table(repo / "data" / "customer_features.parquet").to_pandas()
    c1 = offline[offline.customer_id == 1].sort_values("event_timestamp")
    assert list(c1.total_spend_30d) == ["50.00", "55.00", "20.00", "0.00"]
    assert c1.event_timestamp.is_monotonic_increasing and c1.event_timestamp.is_unique


def test_a_new_utc_day_re_pushes_decayed_customers(stream: TileStream, repo: Path,
                                                    redis_client: redis.Redis) -> None:
    stream.send([tile(5, "2026-03-10", 1, "12.00", "2026-03-10T09:00:00", "2026-03-10T09:00:00"),
                 tile(6, "2026-03-12", 2, "8.00", "2026-03-12T09:00:00", "2026-03-12T09:00:00")])
    assert online(repo, [5], utc("2026-03-12T10:00:00"))[5].order_count_30d == 1
    assert redis_client.zrange("feast:active:customer_features", 0, -1) == [b"5", b"6"]
    # 31 days later an event of another customer arrives: customer 5's order has left
    # the 30-day window, and customer 6's too; both are re-pushed without own events
    stream.send([tile(7, "2026-04-10", 1, "3.00", "2026-04-10T09:00:00", "2026-04-10T09:00:00")])
    at = utc("2026-04-10T12:00:00")
    got = online(repo, [5, 6, 7], at)
    assert got[5] == CustomerFeatures(5, 0, Decimal("0.00"), None, None, None)
    assert got[6] == CustomerFeatures(6, 2, Decimal("8.00"), Decimal("4.00"),
                                      utc("2026-03-12T09:00:00"), 29)
    assert got[7].order_count_30d == 1
    assert redis_client.zrange("feast:active:customer_features", 0, -1) == [b"6", b"7"]


def test_restart_from_checkpoint_keeps_the_online_values(stream: TileStream, repo: Path,
                                                          redis_client: redis.Redis) -> None:
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
    stream.query.processAllAvailable()
    assert online(repo, [8], at) == before
    assert before[8].total_spend_30d == Decimal("25.50")
    stream.send([tile(8, "2026-03-10", 3, "30.00", "2026-03-10T09:45:00", "2026-03-10T09:45:00")])
    assert online(repo, [8], at)[8].order_count_30d == 3


def test_a_batch_with_too_many_customers_fails_loudly(spark: SparkSession, repo: Path,
                                                      redis_url: str) -> None:
    feast_sink.configure_feast_sink(repo, redis_url, max_entities=2)
    rows = [tile(i, "2026-03-10", 1, "1.00", "2026-03-10T09:00:00", "2026-03-10T09:00:00")
            for i in (1, 2, 3)]
    df = spark.createDataFrame(pd.DataFrame(rows).assign(
        day=lambda d: pd.to_datetime(d.day).dt.date,
        last_order_ts=lambda d: pd.to_datetime(d.last_order_ts),
        commit_ts=lambda d: pd.to_datetime(d.commit_ts),
        total_spend=lambda d: d.total_spend.map(Decimal)), TILE_SCHEMA)
    with pytest.raises(RuntimeError, match="more than 2 customer_ids.*maxFilesPerTrigger"):
        feast_sink.push_to_feast(df, 0)


def test_sink_refuses_an_unapplied_repository(tmp_path: Path, redis_url: str) -> None:
    with pytest.raises(FileNotFoundError, match="feast_store prepare"):
        feast_sink.configure_feast_sink(tmp_path, redis_url)


def test_pipelined_read_back_equals_the_lab_read(redis_client: redis.Redis,
                                                 redis_url: str) -> None:
    from cdc_features.redis_sink import (
        StoreConfig, _write_line, read_customer_features, read_product_features, write_tile,
    )

    config = StoreConfig(redis_url)
    pipe = redis_client.pipeline(transaction=False)
    now = datetime.now(timezone.utc).timestamp()
    for cid, day, count, spend in [(1, "2026-03-10", 2, "7.50"), (1, "2026-02-10", 1, "1.00"),
                                   (1, "2026-02-08", 1, "4.00"), (3, "2026-03-01", 3, "9.99")]:
        d = datetime.fromisoformat(day).date()
        write_tile(pipe, {"customer_id": cid, "day": d, "order_count": count,
                          "total_spend": Decimal(spend),
                          "last_order_ts": utc(day + "T10:00:00")}, now, config)
    for pid, day, order, item, cust, units in [(4, "2026-03-10", 1, 1, 1, 2),
                                               (4, "2026-03-04", 2, 3, 2, 1),
                                               (4, "2026-03-03", 3, 4, 2, 5)]:
        _write_line(pipe, {"product_id": pid, "day": datetime.fromisoformat(day).date(),
                           "order_id": order, "item_id": item, "customer_id": cust,
                           "units": units, "revenue": Decimal("2.50") * units,
                           "active": True}, now, config)
    pipe.execute()
    at = utc("2026-03-10T23:00:00")
    ids = [1, 2, 3]
    assert feast_sink.read_customers(redis_client, ids, at) == [
        read_customer_features(redis_client, i, at) for i in ids]
    assert feast_sink.read_customers(redis_client, [1], at)[0].order_count_30d == 3
    assert feast_sink.read_products(redis_client, [4, 5], at) == [
        read_product_features(redis_client, i, at) for i in (4, 5)]
    assert feast_sink.read_products(redis_client, [4], at)[0].units_sold_7d == 3
