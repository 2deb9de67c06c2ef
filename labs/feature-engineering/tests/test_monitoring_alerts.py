"""The console summary of the alert rules, on a registry fed by hand: each threshold rule of
``monitoring/alert_rules.yml`` fires with one log line and resolves with one; the status line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from cdc_features.monitoring import (
    BatchProgress,
    ConsoleAlerts,
    MetricsRegistry,
    SinkWrite,
    check_missing,
    check_stale,
    status_line,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def progress(query: str, batch_id: int, rows: int, dropped: int) -> BatchProgress:
    return BatchProgress(
        query=query,
        batch_id=batch_id,
        started_at=T0,
        input_rows=rows,
        input_rows_per_second=rows / 2,
        processed_rows_per_second=float(rows),
        batch_duration_ms=1000,
        watermark=T0 - timedelta(days=30),
        rows_dropped_by_watermark=dropped,
        state_rows=7,
    )


def write(
    query: str, batch_id: int, newest: datetime, p50: float, p99: float, written_at: datetime = T0
) -> SinkWrite:
    return SinkWrite(
        query=query,
        batch_id=batch_id,
        written_at=written_at,
        rows=10,
        newest_event_ts=newest,
        lag_p50_seconds=p50,
        lag_p99_seconds=p99,
    )


def alert_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(("ALERT", "RESOLVED"))
    ]


@pytest.fixture()
def setup(caplog: pytest.LogCaptureFixture) -> tuple[MetricsRegistry, ConsoleAlerts, FakeClock]:
    caplog.set_level(logging.WARNING, logger="cdc_features.monitoring")
    clock = FakeClock(T0)
    registry = MetricsRegistry(clock=clock)
    return registry, ConsoleAlerts(registry), clock


def test_freshness_alert_fires_once_and_resolves(setup, caplog) -> None:
    registry, alerts, clock = setup
    registry.record_batch_written(write("customer_features", 0, T0 - timedelta(seconds=5), 1, 2))
    assert alerts.evaluate() == []
    clock.now = T0 + timedelta(seconds=400)
    firing = alerts.evaluate()
    assert [(a.name, a.subject, a.value) for a in firing] == [
        ("FeatureFreshnessStale", "customer_features", 405.0)
    ]
    alerts.evaluate()  # still firing: no second line
    assert alert_lines(caplog) == [
        "ALERT FeatureFreshnessStale [customer_features]: cdc_features_freshness_seconds = 405 "
        "(> 300, for 2m): The source is paused or the pipeline is stuck."
    ]
    registry.record_batch_written(write("customer_features", 1, clock.now, 1, 2, clock.now))
    assert alerts.evaluate() == []
    assert alert_lines(caplog)[1:] == ["RESOLVED FeatureFreshnessStale [customer_features]"]


def test_time_based_rules_are_left_to_prometheus(setup) -> None:
    registry, alerts, _ = setup
    # p99 of 61 s and 4 % of the rows dropped: EndToEndLagHigh and WatermarkDropRateHigh are
    # rates over minutes, which only Prometheus has the history for
    registry.record_batch_written(write("product_features", 1, T0, 5, 61))
    registry.record_progress(progress("customer_features", 0, 1000, 40))
    assert alerts.evaluate() == []
    assert {r.name for r in alerts.prometheus_only} >= {"EndToEndLagHigh", "WatermarkDropRateHigh"}


def test_failed_query_alert_and_restart(setup, caplog) -> None:
    registry, alerts, _ = setup
    registry.query_started("id-1", "customer_features")
    registry.query_terminated(
        "id-1", "redis.exceptions.ConnectionError: Error 111 connecting\n  at line 2"
    )
    assert registry.query("customer_features").status == "failed"
    [alert] = alerts.evaluate()
    assert (alert.name, alert.subject, alert.value) == (
        "StreamingQueryFailed",
        "customer_features",
        1,
    )
    assert alert_lines(caplog) == [
        "ALERT StreamingQueryFailed [customer_features]: cdc_features_query_failed = 1 (== 1): "
        "Features stop updating until the query is restarted; the exception is in the "
        "runner's log."
    ]
    registry.query_started("id-2", "customer_features")  # restarted
    assert alerts.evaluate() == []


def test_a_cleanly_stopped_query_is_not_a_failure(setup) -> None:
    registry, alerts, _ = setup
    registry.query_started("id-1", "customer_features")
    registry.query_terminated("id-1", None)
    assert registry.query("customer_features").status == "stopped"
    assert alerts.evaluate() == []


def test_drift_missing_and_stale_alerts(setup) -> None:
    registry, alerts, clock = setup
    registry.set_psi("total_spend", 0.25)  # the threshold itself does not fire (> 0.25)
    assert (
        check_missing("customer", [1, 2, 3, 4], {1: "f", 2: "f", 3: "f", 4: "f"}, registry) == 0.0
    )
    assert (
        check_stale(
            "customer",
            {1: T0 - timedelta(minutes=5)},
            now=clock.now,
            max_age=timedelta(minutes=10),
            registry=registry,
        )
        == {}
    )
    assert alerts.evaluate() == []
    registry.set_psi("total_spend", 0.31)
    assert check_missing("customer", [1, 2, 3, 4], {1: "f", 2: None, 3: "f"}, registry) == 0.5
    stale = check_stale(
        "customer",
        {1: T0 - timedelta(minutes=11), 2: None, 3: T0},
        now=clock.now,
        max_age=timedelta(minutes=10),
        registry=registry,
    )
    assert stale == {1: 660.0, 2: None}
    fired = {(a.name, a.subject): a.value for a in alerts.evaluate()}
    assert fired == {
        ("FeatureDrift", "total_spend"): 0.31,
        ("MissingFeatures", "customer"): 0.5,
        ("StaleFeatureKeys", "customer"): 2,
    }


def test_status_line_is_compact_and_complete(setup) -> None:
    registry, alerts, clock = setup
    registry.record_progress(progress("customer_features", 0, 850, 5))
    registry.record_batch_written(
        write("customer_features", 0, T0 - timedelta(seconds=3.2), 1.1, 2.3)
    )
    registry.record_dead_letters("dead_letters", {"tombstone": 4, "not_json": 2})
    line = status_line(registry, alerts)
    assert line == (
        "customer_features: 1 batches, 850 ev/s, fresh 3.2s, lag p50 1.1s p99 2.3s, "
        "dropped 5 | dead_letters: 0 batches, 0 ev/s, dropped 0, dead letters 2"
    )
    registry.record_progress(progress("customer_features", 1, 0, 0))  # a no-data batch
    assert status_line(registry, alerts).startswith("customer_features: 2 batches, 850 ev/s")
    clock.now = T0 + timedelta(hours=2)
    alerts.evaluate()
    assert status_line(registry, alerts).endswith("| ALERTS: FeatureFreshnessStale")


def test_exception_summary_finds_the_raised_python_exception_inside_spark_wrappers() -> None:
    from cdc_features.monitoring.registry import exception_summary

    text = "\n".join(
        [
            "org.apache.spark.sql.execution.streaming.sources.ForeachBatchUserFuncException: "
            "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred. Reason: An exception was raised "
            "by the Python Proxy. Return Message: Traceback (most recent call last):",
            '  File "sink.py", line 3, in write',
            "py4j.protocol.Py4JJavaError: An error occurred while calling collectAndServe.",
            "Traceback (most recent call last):",
            '  File "connection.py", line 1502, in _connect',
            "ConnectionRefusedError: [Errno 111] Connection refused",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            '  File "connection.py", line 1028, in connect_check_health',
            "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused.",
            "",
            "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(PythonRunner.scala:645)",
        ]
    )
    assert exception_summary(text) == (
        "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."
    )
    assert (
        exception_summary("org.apache.spark.SparkException: Job aborted\n\tat x")
        == "org.apache.spark.SparkException: Job aborted"
    )
    assert exception_summary(None) == "unknown error"
