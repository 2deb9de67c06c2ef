"""The job's metrics through prometheus_client: served on loopback, parseable, with the values
the listener and the sinks reported; freshness computed at scrape time; the lag histogram; docs,
alert rules and the Grafana dashboard name only exported metrics."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cdc_features.monitoring import (
    BATCH_DURATION_BUCKETS,
    LAG_BUCKETS,
    BatchProgress,
    MetricsRegistry,
    MetricsServer,
    SinkWrite,
    load_rules,
    metrics_text,
)
from cdc_features.monitoring.drift import PSI_ALERT
from cdc_features.monitoring.skew import SKEW_ALERT

LAB = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read().decode("utf-8")


def samples(text: str) -> Samples:
    """(sample name, sorted labels) → value; raises on invalid exposition text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def families(text: str) -> dict[str, str]:
    """Exported family name → type, as Prometheus sees it (counters with ``_total``)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.endswith("_created"):
            continue  # prometheus_client's creation timestamps of counters and histograms
        out[fam.name + ("_total" if fam.type == "counter" else "")] = fam.type
    return out


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def write(batch_id: int, newest: datetime, lags: list[float]) -> SinkWrite:
    """A written batch whose rows took ``lags`` seconds from commit to store."""
    return SinkWrite(
        query="customer_features",
        batch_id=batch_id,
        written_at=T0,
        rows=len(lags),
        newest_event_ts=newest,
        lag_p50_seconds=1.5,
        lag_p99_seconds=2.25,
        lag_sum_seconds=sum(lags),
        lag_count=len(lags),
        lag_buckets=tuple(sum(1 for v in lags if v <= le) for le in LAG_BUCKETS),
    )


def filled_registry(clock: Clock) -> MetricsRegistry:
    registry = MetricsRegistry(clock=clock)
    registry.query_started("q1", "customer_features")
    for batch_id, duration_ms in ((3, 1500), (4, 80)):
        registry.record_progress(
            BatchProgress(
                query="customer_features",
                batch_id=batch_id,
                started_at=T0,
                input_rows=60,
                input_rows_per_second=60.0,
                processed_rows_per_second=80.5,
                batch_duration_ms=duration_ms,
                watermark=T0 - timedelta(days=30),
                rows_dropped_by_watermark=2,
                state_rows=42,
            )
        )
    first = [0.2, 0.7, 1.5, 1.5, 2.5, 45.0, 700.0]  # seconds from commit to store, per row
    second = [0.04, 3.0]
    registry.record_batch_written(write(3, T0 - timedelta(seconds=400), first))
    registry.record_batch_written(write(4, T0 - timedelta(seconds=500), second))
    registry.query_started("q2", 'odd "name"\\x')
    registry.query_terminated("q2", "boom")
    registry.record_dead_letters("dead_letters", {"not_json": 2, "tombstone": 3})
    registry.set_psi("total_spend", 0.4)
    registry.set_missing("customer", 0.25, 8, 2)
    registry.set_stale_keys("customer", 1)
    registry.set_skew("customer_features", 0.015, 200)
    return registry


def test_lag_buckets_cover_tens_of_milliseconds_to_minutes_with_the_alert_threshold_as_edge():
    assert LAG_BUCKETS[0] == 0.05 and LAG_BUCKETS[-1] >= 600 and 60.0 in LAG_BUCKETS
    assert BATCH_DURATION_BUCKETS[0] == 0.05 and BATCH_DURATION_BUCKETS[-1] >= 300
    assert list(LAG_BUCKETS) == sorted(set(LAG_BUCKETS))
    assert list(BATCH_DURATION_BUCKETS) == sorted(set(BATCH_DURATION_BUCKETS))


def test_endpoint_serves_the_reported_values_through_prometheus_client() -> None:
    clock = Clock(T0)
    registry = filled_registry(clock)
    server = MetricsServer(registry.prometheus)
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        content_type, text = scrape(server.url)
    finally:
        server.stop()
    assert content_type.startswith("text/plain; version=0.0.4")
    m = samples(text)
    cf = (("query", "customer_features"),)
    assert m[("cdc_features_batches_total", cf)] == 2
    assert m[("cdc_features_input_rows_total", cf)] == 120
    assert m[("cdc_features_rows_dropped_by_watermark_total", cf)] == 4
    assert m[("cdc_features_processed_rows_per_second", cf)] == 80.5
    assert m[("cdc_features_watermark_timestamp_seconds", cf)] == (
        (T0 - timedelta(days=30)).timestamp()
    )
    assert m[("cdc_features_state_rows", cf)] == 42
    assert m[("cdc_features_rows_written_total", cf)] == 9
    assert m[("cdc_features_sink_failures_total", cf)] == 0
    # the newest event of all writes (batch 4's rows were older), and freshness from it
    assert m[("cdc_features_newest_event_timestamp_seconds", cf)] == (
        (T0 - timedelta(seconds=400)).timestamp()
    )
    assert m[("cdc_features_freshness_seconds", cf)] == 400
    # batch duration: one histogram observation per micro-batch (1.5 s and 0.08 s)
    assert m[("cdc_features_batch_duration_seconds_count", cf)] == 2
    assert m[("cdc_features_batch_duration_seconds_sum", cf)] == pytest.approx(1.58)
    assert m[("cdc_features_batch_duration_seconds_bucket", (("le", "0.1"), *cf))] == 1
    assert m[("cdc_features_batch_duration_seconds_bucket", (("le", "2.0"), *cf))] == 2
    # lag: the rows of both writes in cumulative buckets, +Inf = count
    lag = "cdc_features_end_to_end_lag_seconds"
    assert m[(f"{lag}_bucket", (("le", "0.05"), *cf))] == 1  # 0.04
    assert m[(f"{lag}_bucket", (("le", "1.0"), *cf))] == 3  # 0.04, 0.2, 0.7
    assert m[(f"{lag}_bucket", (("le", "2.0"), *cf))] == 5
    assert m[(f"{lag}_bucket", (("le", "3.0"), *cf))] == 7
    assert m[(f"{lag}_bucket", (("le", "60.0"), *cf))] == 8
    assert m[(f"{lag}_bucket", (("le", "600.0"), *cf))] == 8
    assert m[(f"{lag}_bucket", (("le", "+Inf"), *cf))] == 9
    assert m[(f"{lag}_count", cf)] == 9
    assert m[(f"{lag}_sum", cf)] == pytest.approx(754.44)
    odd = (("query", 'odd "name"\\x'),)
    assert m[("cdc_features_query_failed", odd)] == 1
    assert m[("cdc_features_query_up", odd)] == 0
    assert m[("cdc_features_query_up", cf)] == 1
    assert m[("cdc_features_query_failed", cf)] == 0
    letters = "cdc_features_dead_letters_total"
    assert m[(letters, (("query", "dead_letters"), ("reason", "not_json")))] == 2
    assert m[(letters, (("query", "dead_letters"), ("reason", "tombstone")))] == 3
    assert m[("cdc_features_psi", (("feature", "total_spend"),))] == 0.4
    assert m[("cdc_features_missing_ratio", (("view", "customer"),))] == 0.25
    assert m[("cdc_features_stale_keys", (("view", "customer"),))] == 1
    assert m[("cdc_features_skew_ratio", (("view", "customer_features"),))] == 0.015
    assert m[("cdc_features_skew_checked_vectors", (("view", "customer_features"),))] == 200


def test_freshness_is_computed_at_scrape_time_and_grows_without_new_events() -> None:
    clock = Clock(T0)
    registry = filled_registry(clock)
    cf = (("query", "customer_features"),)
    before = samples(metrics_text(registry.prometheus))
    clock.now = T0 + timedelta(minutes=10)
    after = samples(metrics_text(registry.prometheus))
    assert before[("cdc_features_freshness_seconds", cf)] == 400
    assert after[("cdc_features_freshness_seconds", cf)] == 1000
    assert after[("cdc_features_batches_total", cf)] == before[("cdc_features_batches_total", cf)]


def test_each_job_owns_its_registry() -> None:
    one, two = MetricsRegistry(clock=lambda: T0), MetricsRegistry(clock=lambda: T0)
    one.set_psi("total_spend", 0.3)
    assert "cdc_features_psi{" in metrics_text(one.prometheus)
    assert "cdc_features_psi{" not in metrics_text(two.prometheus)


def test_a_failed_sink_is_counted_and_rows_written_starts_at_zero() -> None:
    registry = MetricsRegistry(clock=lambda: T0)
    registry.record_sink_failure("customer_features", 7, ConnectionError("refused"))
    m = samples(metrics_text(registry.prometheus))
    cf = (("query", "customer_features"),)
    assert m[("cdc_features_sink_failures_total", cf)] == 1
    assert m[("cdc_features_rows_written_total", cf)] == 0
    assert registry.query("customer_features").last_sink_error == (
        "batch 7: ConnectionError: refused"
    )


def test_the_endpoint_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        MetricsServer(MetricsRegistry().prometheus, host="0.0.0.0")


def test_refreshers_copy_outside_counters_in_before_each_scrape() -> None:
    registry = MetricsRegistry(clock=lambda: T0)
    totals = {"not_json": 1}
    registry.add_refresher(lambda r: r.set_dead_letters("dead_letters", totals))
    line = 'cdc_features_dead_letters_total{query="dead_letters",reason="not_json"}'
    assert f"{line} 1.0" in metrics_text(registry.prometheus)
    totals["not_json"] = 3
    assert f"{line} 3.0" in metrics_text(registry.prometheus)


def exported() -> dict[str, str]:
    """Every family a filled registry exports: name → type."""
    return families(metrics_text(filled_registry(Clock(T0)).prometheus))


def documented(table_heading: str) -> dict[str, str]:
    """First two columns (name in backticks → type) of the table under a MONITORING.md heading."""
    text = (LAB / "MONITORING.md").read_text(encoding="utf-8")
    section = text.split(f"## {table_heading}\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-zA-Z_]+)` \| (\w+) ", section, flags=re.M))


def test_monitoring_md_documents_exactly_the_exported_metrics_with_their_types() -> None:
    assert documented("Metrics") == exported()


def test_monitoring_md_documents_exactly_the_alerts_of_the_rules_file() -> None:
    text = (LAB / "MONITORING.md").read_text(encoding="utf-8")
    section = text.split("## Alerts\n", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([a-zA-Z_]+)` ", section, flags=re.M)
    assert sorted(names) == sorted(r.name for r in load_rules())


def series_names(expr: str) -> set[str]:
    return set(re.findall(r"\bcdc_features_[a-z_]+", expr))


def exported_series() -> set[str]:
    """Series names a scrape yields (histograms as _bucket/_sum/_count)."""
    out = set()
    for name, kind in exported().items():
        out |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
    return out


def test_alert_rules_use_only_exported_series() -> None:
    names = exported_series()
    for rule in load_rules():
        used = series_names(rule.expr)
        assert used and used <= names, (rule.name, used - names)
        assert rule.severity in {"warning", "critical"} and rule.summary and rule.description


def test_the_python_psi_alert_level_is_the_rules_file_threshold() -> None:
    [drift] = [r for r in load_rules() if r.name == "FeatureDrift"]
    assert drift.threshold == ("cdc_features_psi", ">", PSI_ALERT)


def test_the_python_skew_alert_level_is_the_rules_file_threshold() -> None:
    [skew] = [r for r in load_rules() if r.name == "TrainingServingSkew"]
    assert skew.threshold == ("cdc_features_skew_ratio", ">", SKEW_ALERT)


def test_grafana_dashboard_is_valid_json_and_queries_only_exported_series() -> None:
    dashboard = json.loads((LAB / "monitoring" / "grafana-dashboard.json").read_text("utf-8"))
    names = exported_series()
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    variables = [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = set().union(*(series_names(e) for e in exprs + variables))
    assert used <= names, used - names
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("freshness", "lag", "batch duration", "dropped", "dead letters", "psi"):
        assert topic in titles, topic
    assert "histogram_quantile(0.99" in " ".join(exprs)
    for panel in dashboard["panels"]:
        assert panel.get("targets"), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
