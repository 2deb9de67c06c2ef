"""The metrics endpoint speaks valid Prometheus text; docs and alert rules name real metrics."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cdc_features.monitoring import (
    ALERT_MEANINGS,
    METRICS,
    AlertEngine,
    BatchProgress,
    MetricsRegistry,
    MetricsServer,
    SinkWrite,
    render_metrics,
)

LAB = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def family_name(name: str, kind: str) -> str:
    """prometheus_client's parser names counter families without the ``_total`` suffix."""
    return name.removesuffix("_total") if kind == "counter" else name


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.headers["Content-Type"], resp.read().decode("utf-8")


def parse(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """family → {(sample name, sorted labels): value}; raises on invalid exposition text."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}
    return out


def filled_registry() -> tuple[MetricsRegistry, AlertEngine]:
    registry = MetricsRegistry(clock=lambda: T0)
    registry.query_started("q1", "customer_features")
    registry.record_progress(
        BatchProgress(
            query="customer_features",
            batch_id=3,
            started_at=T0,
            input_rows=120,
            input_rows_per_second=60.0,
            processed_rows_per_second=80.5,
            batch_duration_ms=1500,
            watermark=T0 - timedelta(days=30),
            rows_dropped_by_watermark=4,
            state_rows=42,
        )
    )
    registry.record_batch_written(
        SinkWrite(
            query="customer_features",
            batch_id=3,
            written_at=T0,
            rows=17,
            newest_event_ts=T0 - timedelta(seconds=400),
            lag_p50_seconds=1.5,
            lag_p99_seconds=2.25,
            lag_sum_seconds=30.0,
            lag_count=17,
        )
    )
    registry.query_started("q2", 'odd "name"\\x')
    registry.query_terminated("q2", "boom")
    registry.record_dead_letters("dead_letters", {"not_json": 2, "tombstone": 3})
    registry.set_psi("total_spend", 0.4)
    registry.set_missing("customer", 0.25, 8, 2)
    registry.set_stale_keys("customer", 1)
    return registry, AlertEngine(registry)


def test_endpoint_serves_parseable_prometheus_text_with_the_values() -> None:
    registry, engine = filled_registry()
    server = MetricsServer(registry, engine).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        content_type, text = scrape(server.url)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=10)
        assert err.value.code == 404
    finally:
        server.stop()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    m = parse(text)
    cf = (("query", "customer_features"),)
    assert m["cdc_features_batches"][("cdc_features_batches_total", cf)] == 1
    assert m["cdc_features_input_rows"][("cdc_features_input_rows_total", cf)] == 120
    assert (
        m["cdc_features_rows_dropped_by_watermark"][
            ("cdc_features_rows_dropped_by_watermark_total", cf)
        ]
        == 4
    )
    assert (
        m["cdc_features_processed_rows_per_second"][("cdc_features_processed_rows_per_second", cf)]
        == 80.5
    )
    assert (
        m["cdc_features_batch_duration_seconds"][("cdc_features_batch_duration_seconds", cf)] == 1.5
    )
    assert (
        m["cdc_features_watermark_timestamp_seconds"][
            ("cdc_features_watermark_timestamp_seconds", cf)
        ]
        == (T0 - timedelta(days=30)).timestamp()
    )
    assert m["cdc_features_state_rows"][("cdc_features_state_rows", cf)] == 42
    assert m["cdc_features_freshness_seconds"][("cdc_features_freshness_seconds", cf)] == 400
    lag = m["cdc_features_end_to_end_lag_seconds"]
    assert lag[("cdc_features_end_to_end_lag_seconds", (("quantile", "0.5"), *cf))] == 1.5
    assert lag[("cdc_features_end_to_end_lag_seconds", (("quantile", "0.99"), *cf))] == 2.25
    assert lag[("cdc_features_end_to_end_lag_seconds_sum", cf)] == 30.0
    assert lag[("cdc_features_end_to_end_lag_seconds_count", cf)] == 17
    odd = (("query", 'odd "name"\\x'),)
    assert m["cdc_features_query_failed"][("cdc_features_query_failed", odd)] == 1
    assert m["cdc_features_query_up"][("cdc_features_query_up", odd)] == 0
    assert m["cdc_features_query_up"][("cdc_features_query_up", cf)] == 1
    assert (
        m["cdc_features_dead_letters"][
            ("cdc_features_dead_letters_total", (("query", "dead_letters"), ("reason", "not_json")))
        ]
        == 2
    )
    assert m["cdc_features_psi"][("cdc_features_psi", (("feature", "total_spend"),))] == 0.4
    firing = {dict(labels)["alert"] for (_, labels) in m["cdc_features_alert_firing"]}
    assert firing == {
        "StreamingQueryFailed",
        "FeatureFreshnessStale",
        "FeatureDrift",
        "MissingFeatures",
        "StaleFeatureKeys",
        "WatermarkDropRateHigh",
    }


def test_every_metric_is_exported_with_its_documented_type() -> None:
    registry, engine = filled_registry()
    families = {
        fam.name: fam.type
        for fam in text_string_to_metric_families(render_metrics(registry, engine))
    }
    assert families == {family_name(n, kind): kind for n, (kind, _) in METRICS.items()}


def test_the_endpoint_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        MetricsServer(MetricsRegistry(), host="0.0.0.0")


def documented(table_heading: str) -> list[str]:
    """First-column names (in backticks) of the Markdown table under a MONITORING.md heading."""
    text = (LAB / "MONITORING.md").read_text(encoding="utf-8")
    section = text.split(f"## {table_heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-zA-Z_]+)` ", section, flags=re.M)


def test_monitoring_md_documents_exactly_the_exported_metrics_and_alerts() -> None:
    assert sorted(documented("Metrics")) == sorted(METRICS)
    assert sorted(documented("Alerts")) == sorted([*ALERT_MEANINGS, "FeatureScrapeMissing"])


def test_prometheus_rules_use_only_exported_metrics_and_known_alerts() -> None:
    rules = yaml.safe_load((LAB / "monitoring" / "alert_rules.yml").read_text(encoding="utf-8"))
    [group] = rules["groups"]
    exported_samples = set(METRICS) | {
        "cdc_features_end_to_end_lag_seconds_sum",
        "cdc_features_end_to_end_lag_seconds_count",
    }
    names = []
    for rule in group["rules"]:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        used = set(re.findall(r"\bcdc_features_[a-z_]+", rule["expr"]))
        assert used and used <= exported_samples, rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")")
        names.append(rule["alert"])
    assert sorted(names) == sorted([*ALERT_MEANINGS, "FeatureScrapeMissing"])


def test_refreshers_copy_outside_counters_in_before_each_scrape() -> None:
    registry = MetricsRegistry(clock=lambda: T0)
    totals = {"not_json": 1}
    registry.add_refresher(lambda r: r.set_dead_letters("dead_letters", totals))
    assert (
        'cdc_features_dead_letters_total{query="dead_letters",reason="not_json"} 1'
        in render_metrics(registry)
    )
    totals["not_json"] = 3
    assert (
        'cdc_features_dead_letters_total{query="dead_letters",reason="not_json"} 3'
        in render_metrics(registry)
    )
