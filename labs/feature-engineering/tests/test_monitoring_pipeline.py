"""The pipeline runner with monitoring on: its three queries show up on /metrics, with the
counts the pipeline itself keeps."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families
from pyspark.sql import SparkSession

from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.pipeline import start_pipeline
from cdc_features.lab.generator import generate_log
from cdc_features.lab.replay import newest_order_time
from cdc_features.testing import feed, stream_config

QUERIES = (CUSTOMER_QUERY, PRODUCT_QUERY, DEAD_LETTER_QUERY)


def test_pipeline_with_a_metrics_port_reports_every_query(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    log = generate_log(8, 600, days=40, malformed_rate=0.02)
    config = stream_config(tmp_path, redis_url, metrics_port=0)
    pipeline = start_pipeline(spark, config)
    try:
        assert pipeline.monitoring is not None and pipeline.monitoring.server is not None
        registry = pipeline.monitoring.registry  # the job owns its registry
        feed(log, config.input_dir, 0)  # type: ignore[arg-type]
        pipeline.await_idle()
        # the product and dead-letter queries parse orders and items from two scans of
        # the same source, so Spark counts every raw record twice there
        expected = {
            CUSTOMER_QUERY: len(log),
            PRODUCT_QUERY: 2 * len(log),
            DEAD_LETTER_QUERY: 2 * len(log),
        }
        for q in QUERIES:
            assert sum(p["numInputRows"] for p in pipeline.queries[q].recentProgress) == expected[q]
            registry.wait_for_input_rows(q, expected[q])
        assert {q: registry.query(q).input_rows_total for q in QUERIES} == expected
        with urllib.request.urlopen(pipeline.monitoring.server.url, timeout=10) as resp:
            text = resp.read().decode("utf-8")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }
        for q in QUERIES:
            assert samples[("cdc_features_input_rows_total", (("query", q),))] == expected[q]
            assert samples[("cdc_features_query_up", (("query", q),))] == 1
        # the listener and the pipeline's own progress printer agree on late rows
        for q in (CUSTOMER_QUERY, PRODUCT_QUERY):
            assert registry.query(q).rows_dropped_total == pipeline.dropped_by_watermark[q]
        # dead letters: the registry mirrors the pipeline's counter, tombstones included
        by_reason = pipeline.dead_letters.by_reason()
        assert by_reason["tombstone"] == sum(1 for r in log if r["value"] is None)
        for reason, count in by_reason.items():
            assert (
                samples[
                    (
                        "cdc_features_dead_letters_total",
                        (("query", DEAD_LETTER_QUERY), ("reason", reason)),
                    )
                ]
                == count
            )
        # the feature queries report their writes: tiles and lines, newest event, lag
        customers = registry.query(CUSTOMER_QUERY)
        assert customers.rows_written_total > 0
        newest = newest_order_time(log)
        assert customers.newest_event_ts is not None and newest is not None
        assert customers.newest_event_ts <= newest
        assert registry.query(PRODUCT_QUERY).rows_written_total > 0
        assert customers.last_write is not None
        assert customers.last_write.lag_p99_seconds is not None
        line = pipeline.monitoring.status_line()
        assert all(f"{q}: " in line for q in QUERIES)
    finally:
        pipeline.stop()
    assert not any(q.isActive for q in pipeline.queries.values())
