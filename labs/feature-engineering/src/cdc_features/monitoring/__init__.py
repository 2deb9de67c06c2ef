"""Monitoring of the feature pipeline: listener, freshness and lag, drift, missing features,
training/serving skew, Prometheus metrics (``prometheus_client``), the console summary of the
alert rules and a status line. Metric names and alert meanings: MONITORING.md; alert rules:
``monitoring/alert_rules.yml``.

Wiring in a runner::

    mon = start_monitoring(spark, registry=MetricsRegistry(), metrics_port=9108)
    ... .foreachBatch(monitored_sink(sink, query="customer_features",
                                     event_time_col="last_order_ts", registry=mon.registry)) ...
    print(mon.status_line())
    mon.stop()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from cdc_features.monitoring.alerts import RULES_FILE, Alert, AlertRule, ConsoleAlerts, load_rules
from cdc_features.monitoring.drift import (
    Baseline,
    DriftMonitor,
    load_baselines,
    psi,
    psi_level,
    save_baselines,
)
from cdc_features.monitoring.listener import FeatureListener, install_listener
from cdc_features.monitoring.metrics import (
    BATCH_DURATION_BUCKETS,
    LAG_BUCKETS,
    MetricsServer,
    PipelineMetrics,
    metrics_text,
)
from cdc_features.monitoring.observe import (
    BatchFunction,
    monitored_sink,
    observe_dead_letters,
    observe_written_batch,
)
from cdc_features.monitoring.registry import (
    BatchProgress,
    MetricsRegistry,
    QueryStats,
    SinkWrite,
)
from cdc_features.monitoring.serving import check_missing, check_stale, missing_ratio, stale_keys
from cdc_features.monitoring.skew import SKEW_ALERT, SkewCheck, SkewMonitor
from cdc_features.monitoring.status import StatusReporter, status_line

__all__ = [
    "BATCH_DURATION_BUCKETS",
    "LAG_BUCKETS",
    "RULES_FILE",
    "SKEW_ALERT",
    "Alert",
    "AlertRule",
    "Baseline",
    "BatchProgress",
    "ConsoleAlerts",
    "DriftMonitor",
    "FeatureListener",
    "MetricsRegistry",
    "MetricsServer",
    "Monitoring",
    "PipelineMetrics",
    "QueryStats",
    "SinkWrite",
    "SkewCheck",
    "SkewMonitor",
    "StatusReporter",
    "check_missing",
    "check_stale",
    "install_listener",
    "load_baselines",
    "load_rules",
    "metrics_text",
    "missing_ratio",
    "monitored_sink",
    "observe_dead_letters",
    "observe_pipeline",
    "observe_written_batch",
    "psi",
    "psi_level",
    "save_baselines",
    "stale_keys",
    "start_monitoring",
    "status_line",
]


@dataclass
class Monitoring:
    """Handle of the monitoring started for one runner."""

    registry: MetricsRegistry
    alerts: ConsoleAlerts
    listener: FeatureListener
    server: MetricsServer | None = None
    reporter: StatusReporter | None = None
    _spark: SparkSession | None = field(default=None, repr=False)

    def status_line(self) -> str:
        return status_line(self.registry, self.alerts)

    def stop(self) -> None:
        """Stop the status thread and the endpoint and remove the listener."""
        if self.reporter is not None:
            self.reporter.stop()
        if self.server is not None:
            self.server.stop()
        if self._spark is not None:
            self._spark.streams.removeListener(self.listener)


def observe_pipeline(
    monitoring: Monitoring,
    customer_sinks: list[BatchFunction],
    product_sinks: list[BatchFunction],
    dead_letter_totals: Callable[[], Mapping[str, int]],
    *,
    customer_query: str = "customer_features",
    product_query: str = "product_features",
    dead_letter_query: str = "dead_letters",
) -> None:
    """Report the pipeline's writes: append an observer after the sinks of each feature query
    (they share one cached micro-batch) and copy the dead-letter totals in before each read.

    Customer tiles: freshness from ``last_order_ts``; product lines carry no order time, so their
    freshness is measured on ``commit_ts`` (the source commit time of the newest change).
    """
    reg = monitoring.registry

    def observe_customers(df: DataFrame, batch_id: int) -> None:
        observe_written_batch(
            df, batch_id, query=customer_query, event_time_col="last_order_ts", registry=reg
        )

    def observe_products(df: DataFrame, batch_id: int) -> None:
        observe_written_batch(
            df, batch_id, query=product_query, event_time_col="commit_ts", registry=reg
        )

    customer_sinks.append(observe_customers)
    product_sinks.append(observe_products)
    reg.add_refresher(lambda r: r.set_dead_letters(dead_letter_query, dead_letter_totals()))


def start_monitoring(
    spark: SparkSession,
    *,
    registry: MetricsRegistry,
    metrics_port: int | None = None,
    status_interval: float | None = None,
) -> Monitoring:
    """Register the listener on ``spark`` and start what was asked for: ``prometheus_client``'s
    HTTP server for the job's registry on loopback (``metrics_port``; 0 = a free port) and a
    status line with the console alerts every ``status_interval`` s. The caller owns ``registry``
    (the job creates one per pipeline)."""
    reg = registry
    alerts = ConsoleAlerts(reg)
    listener = install_listener(spark, reg)
    server = MetricsServer(reg.prometheus, port=metrics_port) if metrics_port is not None else None
    reporter = (
        StatusReporter(reg, alerts, status_interval).start()
        if status_interval is not None
        else None
    )
    return Monitoring(reg, alerts, listener, server, reporter, spark)
