"""Restarts and replays: the final store equals an uninterrupted run (no double count, no loss)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import redis
from pyspark.sql import DataFrame, SparkSession

from cdc_features.core.envelope import parse_item_events, parse_order_events
from cdc_features.core.features import compute_customer_features, compute_product_features
from cdc_features.core.spec import CUSTOMER_QUERY, PRODUCT_QUERY
from cdc_features.job.pipeline import start_pipeline
from cdc_features.job.queries import start_customer_query, start_product_query
from cdc_features.job.sinks import SinkSet
from cdc_features.lab.generator import generate_log
from cdc_features.lab.replay import newest_order_time
from cdc_features.stores.base import differences_from_reference
from cdc_features.stores.redis_store import (
    RedisConfig,
    RedisFeatureReader,
    dump_store,
    write_product_features,
    write_to_feature_store,
)
from cdc_features.testing import chunks, feed, redis_db, stream_config

N_CHUNKS = 3


@pytest.fixture(scope="module")
def log() -> list:
    return generate_log(33, 600, days=40, malformed_rate=0.01)


@pytest.fixture(scope="module")
def expected(
    spark: SparkSession, redis_url: str, tmp_path_factory: pytest.TempPathFactory, log: list
) -> dict:
    """The store after an uninterrupted run over the same chunks."""
    url = redis_db(redis_url, 1)
    flushed(url)
    return uninterrupted(spark, url, tmp_path_factory.mktemp("uninterrupted"), log)


def uninterrupted(spark: SparkSession, url: str, work: Path, log: list) -> dict:
    config = stream_config(work, url)
    pipeline = start_pipeline(spark, config)
    try:
        for index, chunk in enumerate(chunks(log, N_CHUNKS)):
            feed(chunk, config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
    finally:
        pipeline.stop()
    return dump_store(redis.Redis.from_url(url))


def flushed(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    client.flushdb()
    return client


def test_stop_and_restart_from_checkpoint_equals_uninterrupted_run(
    spark: SparkSession, redis_url: str, tmp_path: Path, log: list, expected: dict
) -> None:
    url_b = redis_db(redis_url, 2)
    client_b = flushed(url_b)
    assert len(expected) > 50

    config = stream_config(tmp_path / "b", url_b)
    parts = chunks(log, N_CHUNKS)
    pipeline = start_pipeline(spark, config)
    try:
        for index in range(1):
            feed(parts[index], config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
    finally:
        pipeline.stop()
    assert dump_store(client_b) != expected  # really stopped half way
    pipeline = start_pipeline(spark, config)  # same checkpoints
    try:
        for index in range(1, N_CHUNKS):
            feed(parts[index], config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
    finally:
        pipeline.stop()
    assert dump_store(client_b) == expected
    at = newest_order_time(log)
    assert at is not None
    assert differences_from_reference(RedisFeatureReader(client_b), log, at) == []


class FailOnce:
    """A sink that writes, then fails the first time it sees ``fail_batch`` (crash after write)."""

    def __init__(self, write, fail_batch: int) -> None:
        self.write = write
        self.fail_batch = fail_batch
        self.failed = False
        self.calls: list[int] = []

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        self.calls.append(batch_id)
        self.write(batch_df, batch_id)
        if batch_id == self.fail_batch and not self.failed:
            self.failed = True
            raise RuntimeError("simulated crash after the write")


def test_crash_after_write_replays_the_batch_without_double_counting(
    spark: SparkSession, redis_url: str, tmp_path: Path, log: list, expected: dict
) -> None:
    url_c = redis_db(redis_url, 4)
    client_c = flushed(url_c)

    config = stream_config(tmp_path / "c", url_c)
    customers = FailOnce(partial(write_to_feature_store, store=config.redis), fail_batch=1)
    products = FailOnce(partial(write_product_features, store=config.redis), fail_batch=1)
    sinks = SinkSet([customers], [products])
    parts = chunks(log, N_CHUNKS)
    queries = {
        CUSTOMER_QUERY: start_customer_query(spark, config, sinks),
        PRODUCT_QUERY: start_product_query(spark, config, sinks),
    }
    crashed: set[str] = set()
    index = 0
    try:
        for index in range(N_CHUNKS):
            feed(parts[index], config.input_dir, index)  # type: ignore[arg-type]
            for name, query in queries.items():
                if name in crashed:
                    continue
                try:
                    query.processAllAvailable()
                except Exception as err:  # noqa: BLE001 - the simulated crash
                    assert "simulated crash" in str(err)
                    crashed.add(name)
            if len(crashed) == len(queries):
                break
    finally:
        for query in queries.values():
            query.stop()
    assert crashed == set(queries) and customers.failed and products.failed
    # Restart from the checkpoints: batch 1 was written but not committed, so it runs again.
    queries = {
        CUSTOMER_QUERY: start_customer_query(spark, config, sinks),
        PRODUCT_QUERY: start_product_query(spark, config, sinks),
    }
    try:
        for query in queries.values():
            query.processAllAvailable()
        for rest in range(index + 1, N_CHUNKS):
            feed(parts[rest], config.input_dir, rest)  # type: ignore[arg-type]
            for query in queries.values():
                query.processAllAvailable()
    finally:
        for query in queries.values():
            query.stop()
    assert customers.calls.count(1) == 2 and products.calls.count(1) == 2
    assert dump_store(client_c) == expected


def test_replaying_a_batch_leaves_the_same_store(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, log: list
) -> None:
    store = RedisConfig(redis_url)
    raw = spark.createDataFrame(log, "topic string, key string, value string")
    orders = parse_order_events(raw).events
    items = parse_item_events(raw).events
    tiles = compute_customer_features(orders).persist()
    lines = compute_product_features(orders, items).persist()
    try:
        write_to_feature_store(tiles, 0, store=store)
        write_product_features(lines, 0, store=store)
        once = dump_store(redis_client)
        assert len(once) > 50
        write_to_feature_store(tiles, 0, store=store)
        write_product_features(lines, 0, store=store)
        assert dump_store(redis_client) == once
        at = newest_order_time(log)
        assert at is not None
        assert differences_from_reference(RedisFeatureReader(redis_client), log, at) == []
    finally:
        tiles.unpersist()
        lines.unpersist()
