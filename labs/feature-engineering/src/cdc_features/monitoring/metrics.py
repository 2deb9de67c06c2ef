"""The pipeline's Prometheus metrics, kept by ``prometheus_client`` in a registry the job owns.

Counters, gauges and the batch-duration histogram are ``prometheus_client`` metrics updated when
the listener or a sink reports. Two families are computed when scraped, by a custom collector:
feature freshness (now − the newest event in the store, so it keeps growing while nothing
arrives), the end-to-end lag histogram (its bucket counts are aggregated by Spark over the
written rows, one job per micro-batch, and added up on the driver) and the dead-letter totals
(kept by the job's dead-letter counter). Names, types and labels: MONITORING.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: End-to-end lag buckets (seconds): the e2e benchmark measures 2–4 s from commit to Redis with a
#: 500 ms trigger, a backlog or a slow sink takes it to minutes; 60 s is the alert threshold, so it
#: is a bucket edge and ``histogram_quantile(0.99, …) > 60`` holds exactly when more than 1 % of
#: the rows took longer than 60 s.
LAG_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

#: Micro-batch duration buckets (seconds): tens of milliseconds (an empty batch on a warm job)
#: to minutes (a backlog, a first batch that compiles everything).
BATCH_DURATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


# region prometheus_metrics
class FreshnessCollector(Collector):
    """``cdc_features_freshness_seconds``: now − the newest event in the store, per query,
    computed at scrape time (so a paused source shows up without any new event)."""

    def __init__(self, newest: Callable[[], dict[str, datetime]], clock: Callable[[], datetime]):
        self.newest, self.clock = newest, clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        family = GaugeMetricFamily(
            "cdc_features_freshness_seconds",
            "Feature freshness: now minus the newest event time in the store.",
            labels=["query"],
        )
        for query, newest in sorted(self.newest().items()):
            family.add_metric([query], (now - newest).total_seconds())
        yield family


class PipelineMetrics:
    """The job's metrics in its own ``CollectorRegistry`` (never the process-wide default)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        by_query = ("query",)
        self.batches = Counter(
            "cdc_features_batches_total", "Micro-batches completed.", by_query, registry=registry
        )
        self.dropped = Counter(
            "cdc_features_rows_dropped_by_watermark_total",
            "Rows dropped as later than the watermark (after partial aggregation).",
            by_query,
            registry=registry,
        )
        self.batch_duration = Histogram(
            "cdc_features_batch_duration_seconds",
            "Duration of a micro-batch.",
            by_query,
            buckets=BATCH_DURATION_BUCKETS,  # 50 ms … 5 min
            registry=registry,
        )
        # … and the same way: rates, watermark, state rows, writes, drift, missing features
        # endregion

        def counter(name: str, doc: str, labels: tuple[str, ...] = by_query) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = by_query) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.input_rows = counter("cdc_features_input_rows_total", "Input rows read.")
        self.input_rate = gauge(
            "cdc_features_input_rows_per_second", "Input rate of the last micro-batch."
        )
        self.processed_rate = gauge(
            "cdc_features_processed_rows_per_second", "Processing rate of the last micro-batch."
        )
        self.watermark = gauge(
            "cdc_features_watermark_timestamp_seconds",
            "Event-time watermark of the last micro-batch (Unix seconds).",
        )
        self.state_rows = gauge("cdc_features_state_rows", "Keys held in state after a batch.")
        self.up = gauge("cdc_features_query_up", "1 while the query runs, 0 once it stopped.")
        self.failed = gauge("cdc_features_query_failed", "1 when the query died of an exception.")
        self.rows_written = counter(
            "cdc_features_rows_written_total", "Rows written to the feature store."
        )
        self.sink_failures = counter(
            "cdc_features_sink_failures_total", "Micro-batch writes that raised."
        )
        self.newest_event = gauge(
            "cdc_features_newest_event_timestamp_seconds",
            "Newest event time reflected in the feature store (Unix seconds).",
        )
        self.psi = gauge("cdc_features_psi", "PSI of a feature against its baseline.", ("feature",))
        self.missing = gauge(
            "cdc_features_missing_ratio",
            "Share of requested entities with no features at the last check.",
            ("view",),
        )
        self.stale = gauge(
            "cdc_features_stale_keys", "Expected-to-update keys that went stale.", ("view",)
        )
        self.skew = gauge(
            "cdc_features_skew_ratio",
            "Share of sampled served feature vectors that differ from the batch reference "
            "at their read time (training/serving skew).",
            ("view",),
        )
        self.skew_checked = gauge(
            "cdc_features_skew_checked_vectors",
            "Served feature vectors compared with the batch reference at the last skew check.",
            ("view",),
        )

    def batch_done(
        self,
        query: str,
        *,
        input_rows: int,
        dropped: int,
        duration_s: float,
        input_rate: float,
        processed_rate: float,
        watermark: datetime | None,
        state_rows: int,
    ) -> None:
        """One micro-batch of ``query`` finished (the listener reports it)."""
        self.batches.labels(query).inc()
        self.input_rows.labels(query).inc(input_rows)
        self.dropped.labels(query).inc(dropped)
        self.batch_duration.labels(query).observe(duration_s)
        self.input_rate.labels(query).set(input_rate)
        self.processed_rate.labels(query).set(processed_rate)
        self.state_rows.labels(query).set(state_rows)
        if watermark is not None:
            self.watermark.labels(query).set(watermark.timestamp())


class LagHistogram:
    """Cumulative end-to-end lag buckets of one query: Spark counts the written rows per bucket
    (``le`` = :data:`LAG_BUCKETS`), the driver adds the counts of every batch."""

    def __init__(self) -> None:
        self.cumulative = [0] * len(LAG_BUCKETS)
        self.count = 0
        self.sum_seconds = 0.0

    def add(self, cumulative: Iterable[int], count: int, sum_seconds: float) -> None:
        self.cumulative = [a + int(b) for a, b in zip(self.cumulative, cumulative, strict=True)]
        self.count += count
        self.sum_seconds += sum_seconds

    def buckets(self) -> list[tuple[str, float]]:
        edges = [(floatToGoString(b), n) for b, n in zip(LAG_BUCKETS, self.cumulative, strict=True)]
        return [*((le, float(n)) for le, n in edges), ("+Inf", float(self.count))]


class SinkCollector(Collector):
    """The families read from the driver-side record at scrape time: the end-to-end lag
    histogram and the dead-letter totals per reason code."""

    def __init__(
        self,
        lags: Callable[[], dict[str, LagHistogram]],
        dead_letters: Callable[[], dict[str, dict[str, int]]],
    ) -> None:
        self.lags, self.dead_letters = lags, dead_letters

    def describe(self) -> Iterable[Metric]:
        return [self._lag(), self._letters()]

    def collect(self) -> Iterator[Metric]:
        lag = self._lag()
        for query, hist in sorted(self.lags().items()):
            lag.add_metric([query], hist.buckets(), hist.sum_seconds)
        letters = self._letters()
        for query, by_reason in sorted(self.dead_letters().items()):
            for reason, count in sorted(by_reason.items()):
                letters.add_metric([query, reason], count)
        yield lag
        yield letters

    @staticmethod
    def _lag() -> HistogramMetricFamily:
        return HistogramMetricFamily(
            "cdc_features_end_to_end_lag_seconds",
            "Write time minus source commit time of the rows written to the feature store.",
            labels=["query"],
        )

    @staticmethod
    def _letters() -> CounterMetricFamily:
        return CounterMetricFamily(
            "cdc_features_dead_letters",
            "Change events sent to the dead-letter output, by reason code.",
            labels=["query", "reason"],
        )


def metrics_text(registry: CollectorRegistry) -> str:
    """The registry in the Prometheus text format (what ``/metrics`` serves)."""
    return generate_latest(registry).decode("utf-8")


LOOPBACK = ("127.0.0.1", "::1")


class MetricsServer:
    """``prometheus_client``'s HTTP server for one registry on loopback (port 0 = a free port),
    serving from a daemon thread."""

    def __init__(self, registry: CollectorRegistry, port: int = 0, host: str = "127.0.0.1"):
        if host not in LOOPBACK:
            raise ValueError(f"metrics endpoint binds to loopback only, not {host!r}")
        self.host = host
        self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
