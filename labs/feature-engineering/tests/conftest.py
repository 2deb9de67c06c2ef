"""Shared fixtures: one SparkSession per test run, one real redis-server per test run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features.job.spark import get_spark
from cdc_features.testing import RedisServer


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = get_spark("cdc-features-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole test run.

    A missing ``redis-server`` binary is an error, not a skip: CI installs it.
    """
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a flushed database: every test starts from an empty store."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()
