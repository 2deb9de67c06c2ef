"""Features update as CDC events arrive: after every micro-batch the store equals the reference."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features.core import debezium_json as dj
from cdc_features.core import reference
from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.dead_letters import read_dead_letters
from cdc_features.job.pipeline import start_pipeline
from cdc_features.lab.generator import MALFORMED_ID_BASE, generate_log
from cdc_features.lab.replay import main as lab_main
from cdc_features.lab.replay import newest_order_time
from cdc_features.stores.base import differences_from_reference
from cdc_features.stores.redis_store import RedisFeatureReader
from cdc_features.testing import (
    all_customers,
    all_products,
    chunks,
    feed,
    nonzero,
    redis_db,
    stream_config,
)

EXPECTED_CODES = {
    "not_json",
    "not_an_envelope",
    "unknown_op",
    "missing_after",
    "missing_before",
    "null_key_field",
    "bad_decimal",
}


def test_store_equals_reference_after_every_micro_batch(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    log = generate_log(21, 600, days=40, malformed_rate=0.06)
    config = stream_config(tmp_path, redis_url)
    pipeline = start_pipeline(spark, config)
    try:
        seen: list = []
        for index, chunk in enumerate(chunks(log, 3)):
            feed(chunk, config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
            seen += chunk
            at = newest_order_time(seen)
            assert at is not None
            assert differences_from_reference(RedisFeatureReader(redis_client), seen, at) == [], (
                f"after chunk {index}"
            )
            assert nonzero(all_customers(RedisFeatureReader(redis_client), at)) > 0
        # Read later, with no new event: the 7-day product window and then the 30-day
        # customer window empty out by themselves.
        assert at is not None
        for later in (at + timedelta(days=10), at + timedelta(days=31)):
            assert differences_from_reference(RedisFeatureReader(redis_client), seen, later) == []
        assert nonzero(all_products(RedisFeatureReader(redis_client), at + timedelta(days=10))) == 0
        assert (
            nonzero(all_customers(RedisFeatureReader(redis_client), at + timedelta(days=31))) == 0
        )

        # Dead letters: every malformed message is stored with its reason; the queries run on.
        assert all(q.isActive for q in pipeline.queries.values())
        assert set(pipeline.queries) == {CUSTOMER_QUERY, PRODUCT_QUERY, DEAD_LETTER_QUERY}
        letters = read_dead_letters(config.dead_letter_path)
        malformed = [
            r
            for r in log
            if r["value"] is not None and dj.record_key(r)["payload"]["id"] >= MALFORMED_ID_BASE
        ]
        assert len(malformed) >= 10
        assert sorted(str(letter["raw"]) for letter in letters) == sorted(
            str(r["value"]) for r in malformed
        )
        codes = {str(letter["reason"]).split(":")[0] for letter in letters}
        assert codes <= EXPECTED_CODES and len(codes) >= 5, codes
        assert all(letter["batch_id"] is not None and letter["topic"] for letter in letters)
        counts = pipeline.dead_letters.by_reason()
        assert pipeline.dead_letters.errors == len(malformed)
        assert counts["tombstone"] == sum(1 for r in log if r["value"] is None)
        reasons = Counter(str(letter["reason"]) for letter in letters)
        assert reasons["unknown_op:x"] >= 1
    finally:
        pipeline.stop()


def test_too_late_orders_are_dropped_and_counted(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    log = generate_log(5, 500, days=50, too_late_rate=0.15)
    config = stream_config(tmp_path, redis_url)
    pipeline = start_pipeline(spark, config)
    try:
        for index, chunk in enumerate(chunks(log, 2)):
            feed(chunk, config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
        at = newest_order_time(log)
        assert at is not None
        assert differences_from_reference(RedisFeatureReader(redis_client), log, at) == []
        dropped = pipeline.dropped_by_watermark
        assert dropped[CUSTOMER_QUERY] > 0, dropped
    finally:
        pipeline.stop()


def test_lab_until_idle_over_the_bundled_log(
    spark: SparkSession, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = redis_db(redis_url, 3)
    client = redis.Redis.from_url(url)
    client.flushdb()
    code = lab_main(["--until-idle", "--work-dir", str(tmp_path / "lab"), "--redis-url", url])
    output = capsys.readouterr().out
    assert code == 0, output
    assert "equals the batch reference" in output
    assert "features at T = " in output  # the console table was printed
    from cdc_features.lab.replay import DEFAULT_LOG
    from cdc_features.testing import read_log

    log = read_log(DEFAULT_LOG)
    at = newest_order_time(log)
    assert at is not None
    assert differences_from_reference(RedisFeatureReader(client), log, at) == []
    assert nonzero(reference.reference_customer_features(log, at)) > 10
    client.close()
