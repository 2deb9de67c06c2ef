"""Prometheus text-format metrics (exposition format 0.0.4) on a loopback HTTP endpoint."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cdc_features.monitoring.alerts import AlertEngine
from cdc_features.monitoring.registry import MetricsRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: every exported metric: name → (type, help). MONITORING.md documents exactly these.
METRICS: dict[str, tuple[str, str]] = {
    "cdc_features_batches_total": ("counter", "Micro-batches completed by the query."),
    "cdc_features_input_rows_total": ("counter", "Input rows read by the query."),
    "cdc_features_rows_dropped_by_watermark_total": (
        "counter",
        "Rows dropped by stateful operators as later than the watermark "
        "(counted after partial aggregation).",
    ),
    "cdc_features_input_rows_per_second": ("gauge", "Input rate of the last micro-batch."),
    "cdc_features_processed_rows_per_second": ("gauge", "Processing rate of the last micro-batch."),
    "cdc_features_batch_duration_seconds": ("gauge", "Duration of the last micro-batch."),
    "cdc_features_watermark_timestamp_seconds": (
        "gauge",
        "Event-time watermark used by the last micro-batch (Unix seconds).",
    ),
    "cdc_features_state_rows": ("gauge", "Keys held in state after the last micro-batch."),
    "cdc_features_query_up": ("gauge", "1 while the query runs, 0 once it stopped or failed."),
    "cdc_features_query_failed": ("gauge", "1 when the query terminated with an exception."),
    "cdc_features_rows_written_total": ("counter", "Rows written to the feature store."),
    "cdc_features_sink_failures_total": ("counter", "Micro-batch writes that raised."),
    "cdc_features_newest_event_timestamp_seconds": (
        "gauge",
        "Newest event time reflected in the feature store (Unix seconds).",
    ),
    "cdc_features_freshness_seconds": (
        "gauge",
        "Feature freshness: now minus the newest event time in the store.",
    ),
    "cdc_features_end_to_end_lag_seconds": (
        "summary",
        "Write time minus source commit time of written rows "
        "(quantiles of the last batch; sum and count over all batches).",
    ),
    "cdc_features_dead_letters_total": (
        "counter",
        "Change events sent to the dead-letter output, by reason code.",
    ),
    "cdc_features_psi": ("gauge", "Population Stability Index of a feature against its baseline."),
    "cdc_features_missing_ratio": (
        "gauge",
        "Share of requested entities with no features at the last check.",
    ),
    "cdc_features_stale_keys": ("gauge", "Expected-to-update keys that went stale."),
    "cdc_features_alert_firing": ("gauge", "1 for each alert currently firing."),
}

Sample = tuple[str, dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _ts(value: datetime) -> float:
    return value.timestamp()


def collect_samples(
    registry: MetricsRegistry, engine: AlertEngine | None = None, now: datetime | None = None
) -> dict[str, list[Sample]]:
    """Current samples per metric family name (a family with no samples is omitted)."""
    now = now or registry.clock()
    out: dict[str, list[Sample]] = {name: [] for name in METRICS}

    def add(name: str, labels: dict[str, str], value: float, suffix: str = "") -> None:
        out[name].append((name + suffix, labels, value))

    for name, q in sorted(registry.queries().items()):
        lq = {"query": name}
        add("cdc_features_batches_total", lq, q.batches)
        add("cdc_features_input_rows_total", lq, q.input_rows_total)
        add("cdc_features_rows_dropped_by_watermark_total", lq, q.rows_dropped_total)
        add("cdc_features_query_up", lq, 1 if q.status in ("active", "idle") else 0)
        add("cdc_features_query_failed", lq, 1 if q.status == "failed" else 0)
        p = q.last_progress
        if p is not None:
            add("cdc_features_input_rows_per_second", lq, p.input_rows_per_second)
            add("cdc_features_processed_rows_per_second", lq, p.processed_rows_per_second)
            add("cdc_features_batch_duration_seconds", lq, p.batch_duration_ms / 1000)
            add("cdc_features_state_rows", lq, p.state_rows)
            if p.watermark is not None:
                add("cdc_features_watermark_timestamp_seconds", lq, _ts(p.watermark))
        if q.writes or q.sink_failures:
            add("cdc_features_rows_written_total", lq, q.rows_written_total)
            add("cdc_features_sink_failures_total", lq, q.sink_failures)
        if q.newest_event_ts is not None:
            add("cdc_features_newest_event_timestamp_seconds", lq, _ts(q.newest_event_ts))
            add("cdc_features_freshness_seconds", lq, q.freshness_seconds(now) or 0.0)
        w = q.last_write
        if w is not None and w.lag_p50_seconds is not None and w.lag_p99_seconds is not None:
            add("cdc_features_end_to_end_lag_seconds", {**lq, "quantile": "0.5"}, w.lag_p50_seconds)
            add(
                "cdc_features_end_to_end_lag_seconds", {**lq, "quantile": "0.99"}, w.lag_p99_seconds
            )
            add("cdc_features_end_to_end_lag_seconds", lq, q.lag_sum_seconds, "_sum")
            add("cdc_features_end_to_end_lag_seconds", lq, q.lag_count, "_count")
        for reason, count in sorted(q.dead_letters.items()):
            add("cdc_features_dead_letters_total", {**lq, "reason": reason}, count)
    for feature, value in sorted(registry.psi().items()):
        add("cdc_features_psi", {"feature": feature}, value)
    for view, (ratio, _, _) in sorted(registry.missing().items()):
        add("cdc_features_missing_ratio", {"view": view}, ratio)
    for view, count in sorted(registry.stale_keys().items()):
        add("cdc_features_stale_keys", {"view": view}, count)
    if engine is not None:
        for alert in sorted(engine.firing(), key=lambda a: a.key):
            add("cdc_features_alert_firing", {"alert": alert.name, "subject": alert.subject}, 1)
    return {k: v for k, v in out.items() if v}


def render(families: dict[str, list[Sample]]) -> str:
    """Prometheus text exposition format 0.0.4 of the given families."""
    lines: list[str] = []
    for name, samples in families.items():
        kind, help_text = METRICS[name]
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for sample_name, labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(
                f"{sample_name}{{{label_text}}} {_format_value(value)}"
                if label_text
                else f"{sample_name} {_format_value(value)}"
            )
    return "\n".join(lines) + "\n"


def render_metrics(
    registry: MetricsRegistry, engine: AlertEngine | None = None, now: datetime | None = None
) -> str:
    """Evaluate the alerts (when an engine is given) and render all metrics as text."""
    registry.refresh()
    if engine is not None:
        engine.evaluate(now)
    return render(collect_samples(registry, engine, now))


class MetricsServer:
    """Serves ``GET /metrics`` on 127.0.0.1 (port 0 = a free port) from a daemon thread."""

    def __init__(
        self,
        registry: MetricsRegistry,
        engine: AlertEngine | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError(f"metrics endpoint binds to loopback only, not {host!r}")
        self.registry, self.engine, self.host = registry, engine, host
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics is served")
                    return
                body = render_metrics(server.registry, server.engine).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would flood the log

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, daemon=True, name="cdc-features-metrics"
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def metric_names(text: Iterable[str]) -> set[str]:
    """Names of the metric families declared (``# TYPE``) in exposition text lines."""
    return {line.split()[2] for line in text if line.startswith("# TYPE ")}
