"""Fixtures of the end-to-end suite: one stack, one local SparkSession and one Redis client for
the whole run (the job scenario runs first, then the cluster scenario on the same stack)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from stackctl import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = Stack(Path(__file__).resolve().parent.parent / ".run" / "e2e")
    s.reset()
    try:
        s.up()
        yield s
    finally:
        s.down()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from cdc_features.job.spark import get_spark

    session = get_spark("cdc-features-e2e", kafka=True)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def store(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env()["REDIS_URL"])
    yield client
    client.close()
