"""The monitoring on real Structured Streaming queries.

Each test runs a small streaming job of the pipeline's shape — JSON files → watermark (30 days) →
daily tiles per customer → ``foreachBatch`` sink — and checks what the listener, the sink
observation and the alert rules report: exact late-event counts, freshness under a paused and
resumed source (an injected clock instead of minutes of sleep), lag quantiles, drift, the metrics
endpoint, and a sink whose Redis server died.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cdc_features.monitoring import (
    ConsoleAlerts,
    DriftMonitor,
    FeatureListener,
    MetricsRegistry,
    MetricsServer,
    load_baselines,
    metrics_text,
    monitored_sink,
    save_baselines,
)
from cdc_features.monitoring.registry import exception_summary
from cdc_features.stores.redis_store import RedisConfig, write_to_feature_store
from cdc_features.testing import FileStream, RedisServer

ORDER_SCHEMA = "customer_id long, order_ts timestamp, amount decimal(10,2), commit_ts timestamp"
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def order(
    customer_id: int,
    order_ts: datetime,
    amount: float | str = "10.00",
    commit_ts: datetime | None = None,
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "order_ts": iso(order_ts),
        "amount": str(amount),
        "commit_ts": iso(commit_ts or order_ts),
    }


def daily_tiles(orders: DataFrame) -> DataFrame:
    """Per customer and UTC day: orders, spend, last order time, newest commit time."""
    return (
        orders.withWatermark("order_ts", "30 days")
        .groupBy("customer_id", F.window("order_ts", "1 day"))
        .agg(
            F.count(F.lit(1)).cast("int").alias("order_count"),
            F.sum("amount").cast("decimal(12,2)").alias("total_spend"),
            F.max("order_ts").alias("last_order_ts"),
            F.max("commit_ts").alias("commit_ts"),
        )
        .select(
            "customer_id",
            F.to_date("window.start").alias("day"),
            "order_count",
            "total_spend",
            "last_order_ts",
            "commit_ts",
        )
    )


class Stream:
    """One streaming query of the pipeline's shape over the shared file harness (one file =
    one micro-batch), drained until the listener has seen every batch."""

    def __init__(self, spark: SparkSession, root: Path, name: str) -> None:
        self.name = name
        self.files = FileStream(spark, root / name, schema=ORDER_SCHEMA)
        self.query: StreamingQuery | None = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.files.add(rows)

    def start(self, sink: Callable[[DataFrame, int], None]) -> StreamingQuery:
        self.query = self.files.start(self.name, daily_tiles(self.files.source()), sink)
        return self.query

    def process(self, registry: MetricsRegistry) -> None:
        """Run every pending file and wait until the listener has seen every batch with input."""
        assert self.query is not None
        self.query.processAllAvailable()
        registry.wait_for_input_rows(self.name, processed_rows(self.query))

    def stop(self) -> None:
        self.files.stop()


def processed_rows(query: StreamingQuery) -> int:
    """Input rows of every batch the query ran (idle reports count 0)."""
    return sum(p["numInputRows"] for p in query.recentProgress)


@pytest.fixture()
def listening(spark: SparkSession) -> Iterator[Callable[[MetricsRegistry], None]]:
    """Register a FeatureListener on the session for a registry; removed after the test."""
    added: list[FeatureListener] = []

    def listen(registry: MetricsRegistry) -> None:
        listener = FeatureListener(registry)
        spark.streams.addListener(listener)
        added.append(listener)

    yield listen
    for listener in added:
        spark.streams.removeListener(listener)


@pytest.fixture()
def alert_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.WARNING, logger="cdc_features.monitoring")
    return lambda: [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(("ALERT", "RESOLVED"))
    ]


def collecting_sink(out: list[dict[str, Any]]) -> Callable[[DataFrame, int], None]:
    def sink(batch_df: DataFrame, batch_id: int) -> None:
        out.extend(r.asDict() for r in batch_df.collect())

    return sink


def test_late_events_raise_the_dropped_counter_by_exactly_the_number_sent(
    spark: SparkSession, tmp_path: Path, listening
) -> None:
    registry = MetricsRegistry()
    listening(registry)
    written: list[dict[str, Any]] = []
    stream = Stream(spark, tmp_path, "late_events")
    try:
        # batch 0: four orders on 1 March → the watermark becomes 1 March 12:00 − 30 days
        stream.add([order(c, T) for c in (1, 2, 3, 4)])
        stream.start(collecting_sink(written))
        stream.process(registry)
        assert registry.query("late_events").rows_dropped_total == 0
        # five orders of five customers on 10 January (their tiles ended before the watermark,
        # 29 January 12:00) and two on-time orders
        late_day = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
        stream.add(
            [order(c, late_day) for c in (11, 12, 13, 14, 15)]
            + [order(5, T), order(1, T + timedelta(hours=1))]
        )
        stream.process(registry)
        stats = registry.query("late_events")
        assert stats.rows_dropped_total == 5
        assert stats.input_rows_total == 11
        [late_batch] = [b for b in stats.recent if b.input_rows == 7]
        assert late_batch.rows_dropped_by_watermark == 5
        assert late_batch.watermark == T - timedelta(days=30)
        assert {r["customer_id"] for r in written} == {1, 2, 3, 4, 5}  # no late tile written
        scraped = samples(metrics_text(registry.prometheus))
        late = (("query", "late_events"),)
        assert scraped[("cdc_features_rows_dropped_by_watermark_total", late)] == 5
        assert scraped[("cdc_features_input_rows_total", late)] == 11
        # Spark counts after partial aggregation: three late orders of ONE customer and day
        # in one input file reach the state store as one row
        stream.add(
            [
                order(21, late_day, "1.00"),
                order(21, late_day, "2.00"),
                order(21, late_day + timedelta(hours=1), "3.00"),
            ]
        )
        stream.process(registry)
        assert registry.query("late_events").rows_dropped_total == 6
    finally:
        stream.stop()


def test_paused_source_grows_freshness_fires_the_alert_and_resuming_clears_it(
    spark: SparkSession, tmp_path: Path, listening, alert_log
) -> None:
    clock = FakeClock(T)
    registry = MetricsRegistry(clock=clock)
    listening(registry)
    alerts = ConsoleAlerts(registry)
    server = MetricsServer(registry.prometheus)
    written: list[dict[str, Any]] = []
    stream = Stream(spark, tmp_path, "freshness")
    try:
        # five customers; commits 1, 2, 3, 4 and 100 seconds before the (frozen) write time
        stream.add(
            [
                order(c, T - timedelta(seconds=10 + c), commit_ts=T - timedelta(seconds=lag))
                for c, lag in zip((1, 2, 3, 4, 5), (1, 2, 3, 4, 100), strict=True)
            ]
        )
        stream.start(
            monitored_sink(
                collecting_sink(written),
                query="freshness",
                event_time_col="last_order_ts",
                registry=registry,
            )
        )
        stream.process(registry)
        stats = registry.query("freshness")
        # (a following no-data batch, run to advance the watermark, writes nothing)
        assert stats.rows_written_total == 5 == len(written) == stats.last_write.rows
        assert stats.newest_event_ts == T - timedelta(seconds=11)
        assert stats.freshness_seconds(clock()) == 11
        assert (stats.last_write.lag_p50_seconds, stats.last_write.lag_p99_seconds) == (3, 100)
        assert (stats.lag.sum_seconds, stats.lag.count) == (110, 5)
        lag = samples(scrape(server.url))
        bucket = "cdc_features_end_to_end_lag_seconds_bucket"
        fq = (("query", "freshness"),)
        # lags 1, 2, 3, 4 and 100 s, counted by Spark into the histogram's buckets
        assert [lag[(bucket, (("le", le), *fq))] for le in ("0.5", "1.0", "2.0", "3.0")] == [
            0,
            1,
            2,
            3,
        ]
        assert [lag[(bucket, (("le", le), *fq))] for le in ("5.0", "60.0", "120.0", "+Inf")] == [
            4,
            4,
            5,
            5,
        ]
        assert alerts.evaluate() == []

        # the source pauses: no new file, so no new batch, and ten minutes pass
        batches_before = registry.query("freshness").batches
        clock.now = T + timedelta(minutes=10)
        [alert] = alerts.evaluate()
        assert (alert.name, alert.subject, alert.value) == (
            "FeatureFreshnessStale",
            "freshness",
            611,
        )
        assert samples(scrape(server.url))[("cdc_features_freshness_seconds", fq)] == 611
        assert registry.query("freshness").batches == batches_before
        assert alert_log() == [
            "ALERT FeatureFreshnessStale [freshness]: cdc_features_freshness_seconds = 611 "
            "(> 300, for 2m): The source is paused or the pipeline is stuck."
        ]

        # the source resumes with an order placed 2 seconds ago
        stream.add(
            [order(6, clock.now - timedelta(seconds=2), commit_ts=clock.now - timedelta(seconds=1))]
        )
        stream.process(registry)
        assert alerts.evaluate() == []
        assert alert_log()[1:] == ["RESOLVED FeatureFreshnessStale [freshness]"]
        assert registry.query("freshness").freshness_seconds(clock()) == 2

        # the endpoint now serves every per-query family from real data
        text = scrape(server.url)
        families = {f.name for f in text_string_to_metric_families(text)}
        assert families >= {
            "cdc_features_batches",
            "cdc_features_input_rows",
            "cdc_features_rows_dropped_by_watermark",
            "cdc_features_batch_duration_seconds",
            "cdc_features_input_rows_per_second",
            "cdc_features_processed_rows_per_second",
            "cdc_features_watermark_timestamp_seconds",
            "cdc_features_state_rows",
            "cdc_features_query_up",
            "cdc_features_query_failed",
            "cdc_features_rows_written",
            "cdc_features_sink_failures",
            "cdc_features_newest_event_timestamp_seconds",
            "cdc_features_freshness_seconds",
            "cdc_features_end_to_end_lag_seconds",
        }
        now = samples(text)
        assert now[("cdc_features_input_rows_total", fq)] == 6
        assert now[("cdc_features_end_to_end_lag_seconds_count", fq)] == 6
        assert now[("cdc_features_end_to_end_lag_seconds_bucket", (("le", "1.0"), *fq))] == 2
        assert now[("cdc_features_batch_duration_seconds_count", fq)] == stats_batches(registry)
    finally:
        stream.stop()
        server.stop()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode("utf-8")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value of exposition text (raises when invalid)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def stats_batches(registry: MetricsRegistry) -> int:
    return registry.query("freshness").batches


def amounts(seed: int, n: int, scale: float = 1.0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.lognormvariate(4.0, 0.5) * scale:.2f}" for _ in range(n)]


def run_amounts(
    spark: SparkSession,
    root: Path,
    name: str,
    values: list[str],
    drift: DriftMonitor,
    registry: MetricsRegistry,
) -> None:
    """Stream one order per customer (so a tile's total_spend is the order amount)."""
    stream = Stream(spark, root, name)
    try:
        half = len(values) // 2
        for offset, chunk in ((0, values[:half]), (half, values[half:])):
            stream.add([order(offset + i, T, v) for i, v in enumerate(chunk)])
        stream.start(
            monitored_sink(
                lambda df, bid: None,
                query=name,
                event_time_col="last_order_ts",
                registry=registry,
                drift=drift,
                drift_columns={"total_spend": "total_spend"},
            )
        )
        stream.process(registry)
        assert registry.query(name).rows_written_total == len(values)
    finally:
        stream.stop()


def test_shifted_amounts_raise_psi_over_the_alert_level_and_unshifted_do_not(
    spark: SparkSession, tmp_path: Path, listening, alert_log
) -> None:
    registry = MetricsRegistry(clock=FakeClock(T))  # orders at T, written "at T": fresh, no lag
    listening(registry)
    # a baseline run: sample the written feature values, save the distribution
    collect = DriftMonitor(window=5000, registry=registry)
    run_amounts(spark, tmp_path, "drift_baseline", amounts(1, 2000), collect, registry)
    assert len(collect.sample("total_spend")) == 2000
    save_baselines(tmp_path / "baseline.json", collect.baselines_from_sample())
    baselines = load_baselines(tmp_path / "baseline.json")
    assert [b.size for b in baselines.values()] == [2000]

    same = DriftMonitor(baselines, registry=registry)
    run_amounts(spark, tmp_path, "drift_same", amounts(2, 2000), same, registry)
    alerts = ConsoleAlerts(registry)
    unshifted = same.evaluate()["total_spend"]
    assert unshifted < 0.1
    assert alerts.evaluate() == [] and alert_log() == []

    shifted = DriftMonitor(baselines, registry=registry)
    run_amounts(spark, tmp_path, "drift_shifted", amounts(3, 2000, scale=1.5), shifted, registry)
    score = shifted.evaluate()["total_spend"]
    assert score > 0.25
    assert [(a.name, a.subject) for a in alerts.evaluate()] == [("FeatureDrift", "total_spend")]
    assert alert_log()[0].startswith(
        f"ALERT FeatureDrift [total_spend]: cdc_features_psi = {score:g} (> 0.25, for 30m)"
    )
    psi_line = f'cdc_features_psi{{feature="total_spend"}} {score!r}'
    assert psi_line in metrics_text(registry.prometheus)


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only (the test stops it)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


def test_a_sink_whose_redis_stopped_is_reported_as_a_failure_not_a_hang(
    spark: SparkSession, tmp_path: Path, listening, own_redis
) -> None:
    url = own_redis.url
    registry = MetricsRegistry(clock=FakeClock(T + timedelta(seconds=5)))
    listening(registry)
    stream = Stream(spark, tmp_path, "customer_features")
    try:
        stream.add([order(1, T, "12.50"), order(1, T + timedelta(hours=1), "7.50")])
        query = stream.start(
            monitored_sink(
                partial(write_to_feature_store, store=RedisConfig(url)),
                query="customer_features",
                event_time_col="last_order_ts",
                registry=registry,
            )
        )
        stream.process(registry)
        stored = cast(
            str, redis.Redis.from_url(url, decode_responses=True).hget("cf:1", "20260301")
        )
        assert stored.split("|")[:2] == ["2", "20.00"]
        assert registry.query("customer_features").rows_written_total == 1

        own_redis.stop()  # the feature store goes away
        stream.add([order(2, T, "5.00")])
        started = time.monotonic()
        with pytest.raises(StreamingQueryException) as failure:
            if not query.awaitTermination(timeout=120):
                pytest.fail("the query neither wrote nor failed within 120 s: a silent hang")
        assert time.monotonic() - started < 120
        assert "ConnectionError" in str(failure.value)
        registry.wait_for(lambda r: r.query("customer_features").status == "failed", timeout=30)
        stats = registry.query("customer_features")
        assert stats.sink_failures == 1 and "ConnectionError" in (stats.last_sink_error or "")
        assert "ConnectionError" in (stats.exception or "")
        assert stats.rows_written_total == 1  # the failed batch is not counted as written
        [alert] = ConsoleAlerts(registry).evaluate()
        assert alert.name == "StreamingQueryFailed"
        assert exception_summary(stats.exception) == (
            "redis.exceptions.ConnectionError: Error 111 connecting to "
            f"127.0.0.1:{url.split(':')[2].split('/')[0]}. Connection refused."
        )
        scraped = samples(metrics_text(registry.prometheus))
        cf = (("query", "customer_features"),)
        assert scraped[("cdc_features_query_failed", cf)] == 1
        assert scraped[("cdc_features_query_up", cf)] == 0
        assert scraped[("cdc_features_sink_failures_total", cf)] == 1
        assert scraped[("cdc_features_rows_written_total", cf)] == 1
    finally:
        stream.stop()


def test_dead_letters_are_counted_by_reason_code_and_a_replay_counts_once(
    spark: SparkSession,
) -> None:
    from cdc_features.monitoring import observe_dead_letters, status_line

    registry = MetricsRegistry(clock=lambda: T)
    letters = spark.createDataFrame(
        [
            ("{", "not_json", "t"),
            ('{"op":"x"}', "unknown_op:x", "t"),
            (None, "tombstone", "t"),
            (None, "tombstone", "t"),
            ('{"a":1}', "bad_decimal:total_amount", "t"),
        ],
        "raw string, reason string, topic string",
    )
    counts = {"not_json": 1, "unknown_op": 1, "tombstone": 2, "bad_decimal": 1}
    assert observe_dead_letters(letters, 0, registry=registry) == counts
    assert observe_dead_letters(letters, 0, registry=registry) == counts  # replay of batch 0
    assert registry.query("dead_letters").dead_letters == counts
    observe_dead_letters(letters.limit(0), 1, registry=registry)
    observe_dead_letters(letters.filter("reason = 'not_json'"), 2, registry=registry)
    assert registry.query("dead_letters").dead_letters == {**counts, "not_json": 2}
    assert status_line(registry).endswith("dead letters 4")  # tombstones are not errors
