"""Fixtures of the end-to-end suite: one stack (with a Prometheus that scrapes the job), one
local SparkSession and one Redis client for the whole run (the job scenario of test_e2e.py
runs first, then the cluster scenario of test_e2e_cluster.py and the Real-Time Mode scenario
of test_e2e_realtime.py on the same stack)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from checks import PROMETHEUS_INTERVAL, TEST_FOR, TEST_FRESHNESS_SECONDS
from promctl import rules_with_test_timings
from stackctl import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    s = Stack(Path(__file__).resolve().parent.parent / ".run" / "e2e")
    s.reset()
    try:
        s.up()
        started = time.monotonic()
        rules = rules_with_test_timings(
            s.run_dir / "test-rules" / "alert_rules.yml",
            for_=TEST_FOR,
            freshness_seconds=TEST_FRESHNESS_SECONDS,
        )
        s.up(
            "prometheus",
            env={"PROMETHEUS_RULES": str(rules), "PROMETHEUS_INTERVAL": PROMETHEUS_INTERVAL},
        )
        print(f"prometheus started in {time.monotonic() - started:.1f}s")
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
