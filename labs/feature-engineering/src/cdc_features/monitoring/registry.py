"""The driver-side record of what the feature pipeline did, batch by batch, and the job's
Prometheus registry it feeds.

Two sources feed it:

* the streaming query listener (``listener.py``): per micro-batch input rows, rates, duration,
  watermark, rows dropped by the watermark, state rows, and query start / termination;
* the sinks (their ``foreachBatch`` function runs on the driver): rows written, the newest event
  time now reflected in the feature store, the end-to-end lag of the written rows, dead letters.

Every report updates the ``prometheus_client`` metrics of :attr:`MetricsRegistry.prometheus`
(``metrics.py``) and the plain record the status line, the console alerts and the tests read.
Everything derived from "now" (feature freshness) is computed when read, with an injectable clock,
so a test can move time forward without sleeping.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from cdc_features.monitoring.metrics import (
    FreshnessCollector,
    LagHistogram,
    PipelineMetrics,
    SinkCollector,
)

Clock = Callable[[], datetime]

#: how many recent micro-batches per query are kept (for the drop-rate rule and the status line)
RECENT_BATCHES = 50


_PY_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b.*$")
_WRAPPERS = ("py4j.", "org.", "java.", "scala.", "pyspark.errors.")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def exception_summary(text: str | None) -> str:
    """The one line of a (Spark + Python) exception text that names what went wrong.

    Spark wraps a failing ``foreachBatch`` function in Java and py4j layers whose first line says
    only "An exception was raised by the Python Proxy"; the useful line is the Python exception
    that was raised (not the ones it was handling), e.g.
    ``redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection
    refused.``
    """
    if not text:
        return "unknown error"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _PY_EXCEPTION.match(line) or line.startswith(_WRAPPERS):
            continue
        following = next((n.strip() for n in lines[i + 1 :] if n.strip()), "")
        if not following.startswith(_CHAINED):
            return line.strip()
    return next((n.strip() for n in lines if n.strip()), "unknown error")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class BatchProgress:
    """One micro-batch of one streaming query, as Spark reported it in its progress event.

    ``watermark`` is the event-time watermark the batch used (None before the first one);
    ``rows_dropped_by_watermark`` are rows that reached a stateful operator too late to be
    aggregated (Spark counts them after partial aggregation: several late events of the same
    key and window in one input partition count as one row); ``state_rows`` is the number of keys
    held in state after the batch, summed over the stateful operators.
    """

    query: str
    batch_id: int
    started_at: datetime
    input_rows: int
    input_rows_per_second: float
    processed_rows_per_second: float
    batch_duration_ms: int
    watermark: datetime | None
    rows_dropped_by_watermark: int
    state_rows: int


@dataclass(frozen=True)
class SinkWrite:
    """One micro-batch written to the feature store by a sink.

    ``newest_event_ts`` is the newest event time among the written rows; ``lag_p50_seconds`` /
    ``lag_p99_seconds`` are quantiles over the written rows of (write time − source commit time),
    the end-to-end lag from the database commit to the feature store.
    """

    query: str
    batch_id: int
    written_at: datetime
    rows: int
    newest_event_ts: datetime | None
    lag_p50_seconds: float | None
    lag_p99_seconds: float | None
    lag_sum_seconds: float = 0.0
    lag_count: int = 0
    lag_buckets: tuple[int, ...] = ()


@dataclass
class QueryStats:
    """Everything known about one streaming query (by query name)."""

    name: str
    query_id: str | None = None
    status: str = "active"  # active | idle | stopped | failed
    exception: str | None = None
    error_class: str | None = None
    batches: int = 0
    input_rows_total: int = 0
    rows_dropped_total: int = 0
    last_progress: BatchProgress | None = None
    recent: deque[BatchProgress] = field(default_factory=lambda: deque(maxlen=RECENT_BATCHES))
    writes: int = 0
    rows_written_total: int = 0
    sink_failures: int = 0
    last_sink_error: str | None = None
    last_write: SinkWrite | None = None
    newest_event_ts: datetime | None = None
    lag: LagHistogram = field(default_factory=LagHistogram)
    dead_letters: dict[str, int] = field(default_factory=dict)

    def freshness_seconds(self, now: datetime) -> float | None:
        """Feature freshness: seconds from the newest event time reflected in the store to now."""
        if self.newest_event_ts is None:
            return None
        return (now - self.newest_event_ts).total_seconds()

    def recent_drop_rate(self, batches: int) -> tuple[int, int]:
        """(rows dropped by the watermark, input rows) over the last ``batches`` micro-batches."""
        window = list(self.recent)[-batches:]
        return (sum(b.rows_dropped_by_watermark for b in window), sum(b.input_rows for b in window))


class MetricsRegistry:
    """Thread-safe record of per-query statistics plus serving-side gauges (drift, missing,
    stale), and the ``prometheus_client`` registry (:attr:`prometheus`) they are exported from.

    The listener callbacks arrive on a Spark listener thread, sink records on the micro-batch
    thread and reads on the metrics HTTP thread, hence the lock.
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.prometheus = CollectorRegistry()
        self.metrics = PipelineMetrics(self.prometheus)
        self.prometheus.register(FreshnessCollector(self._newest_events, self._now))
        self.prometheus.register(SinkCollector(self._lags, self._dead_letter_totals))
        self._lock = threading.Condition()
        self._queries: dict[str, QueryStats] = {}
        self._names_by_id: dict[str, str] = {}
        self._psi: dict[str, float] = {}
        self._missing: dict[str, tuple[float, int, int]] = {}
        self._stale: dict[str, int] = {}
        self._skew: dict[str, tuple[float, int]] = {}
        self._last_dead_letters: dict[str, tuple[int, dict[str, int]]] = {}
        self._refreshers: list[Callable[[MetricsRegistry], None]] = []

    def add_refresher(self, refresh: Callable[[MetricsRegistry], None]) -> None:
        """Register a function that copies numbers kept elsewhere (e.g. a dead-letter counter)
        into this registry; :meth:`refresh` runs them before metrics are read."""
        self._refreshers.append(refresh)

    def refresh(self) -> None:
        """Run the refreshers (called by the metrics endpoint and the status line)."""
        for refresh in list(self._refreshers):
            refresh(self)

    # -- what the custom collectors read at scrape time ------------------------------------------
    def _now(self) -> datetime:
        return self.clock()

    def _newest_events(self) -> dict[str, datetime]:
        with self._lock:
            return {n: q.newest_event_ts for n, q in self._queries.items() if q.newest_event_ts}

    def _lags(self) -> dict[str, LagHistogram]:
        with self._lock:
            return {n: copy.deepcopy(q.lag) for n, q in self._queries.items() if q.lag.count}

    def _dead_letter_totals(self) -> dict[str, dict[str, int]]:
        self.refresh()
        with self._lock:
            return {n: dict(q.dead_letters) for n, q in self._queries.items() if q.dead_letters}

    # -- writers -------------------------------------------------------------------------------
    def _query(self, name: str) -> QueryStats:
        stats = self._queries.get(name)
        if stats is None:
            stats = self._queries[name] = QueryStats(name=name)
        return stats

    def query_started(self, query_id: str, name: str | None) -> None:
        """A streaming query started (or restarted from its checkpoint)."""
        with self._lock:
            label = name or query_id
            self._names_by_id[query_id] = label
            stats = self._query(label)
            stats.query_id = query_id
            stats.status, stats.exception, stats.error_class = "active", None, None
            self.metrics.up.labels(label).set(1)
            self.metrics.failed.labels(label).set(0)
            self._lock.notify_all()

    def record_progress(self, progress: BatchProgress) -> None:
        """A micro-batch finished (from the listener's progress event)."""
        with self._lock:
            stats = self._query(progress.query)
            stats.batches += 1
            stats.input_rows_total += progress.input_rows
            stats.rows_dropped_total += progress.rows_dropped_by_watermark
            stats.last_progress = progress
            stats.recent.append(progress)
            if stats.status == "idle":
                stats.status = "active"
            if stats.status == "active":
                self.metrics.up.labels(progress.query).set(1)
            self.metrics.batch_done(
                progress.query,
                input_rows=progress.input_rows,
                dropped=progress.rows_dropped_by_watermark,
                duration_s=progress.batch_duration_ms / 1000,
                input_rate=progress.input_rows_per_second,
                processed_rate=progress.processed_rows_per_second,
                watermark=progress.watermark,
                state_rows=progress.state_rows,
            )
            self._lock.notify_all()

    def query_idle(self, query_id: str) -> None:
        """The query is running and waiting for new data."""
        with self._lock:
            stats = self._query(self._names_by_id.get(query_id, query_id))
            if stats.status == "active":
                stats.status = "idle"

    def query_terminated(
        self, query_id: str, exception: str | None, error_class: str | None = None
    ) -> None:
        """The query stopped: cleanly (no exception) or failed (with the exception text)."""
        with self._lock:
            stats = self._query(self._names_by_id.get(query_id, query_id))
            stats.status = "failed" if exception else "stopped"
            stats.exception, stats.error_class = exception, error_class
            self.metrics.up.labels(stats.name).set(0)
            self.metrics.failed.labels(stats.name).set(1 if exception else 0)
            self._lock.notify_all()

    def record_batch_written(self, write: SinkWrite) -> None:
        """A sink wrote a micro-batch to the feature store (call it from ``foreachBatch``)."""
        with self._lock:
            stats = self._query(write.query)
            stats.writes += 1
            stats.rows_written_total += write.rows
            if write.rows or stats.last_write is None:  # an empty batch keeps the last lag
                stats.last_write = write
            if write.newest_event_ts is not None and (
                stats.newest_event_ts is None or write.newest_event_ts > stats.newest_event_ts
            ):
                stats.newest_event_ts = write.newest_event_ts
                self.metrics.newest_event.labels(write.query).set(write.newest_event_ts.timestamp())
            if write.lag_buckets:
                stats.lag.add(write.lag_buckets, write.lag_count, write.lag_sum_seconds)
            self.metrics.rows_written.labels(write.query).inc(write.rows)
            self.metrics.sink_failures.labels(write.query)  # exported as 0 from the first write
            self._lock.notify_all()

    def record_sink_failure(self, query: str, batch_id: int, error: BaseException) -> None:
        """A sink raised while writing a micro-batch (the query is about to fail)."""
        with self._lock:
            stats = self._query(query)
            stats.sink_failures += 1
            stats.last_sink_error = f"batch {batch_id}: {type(error).__name__}: {error}"
            self.metrics.sink_failures.labels(query).inc()
            self.metrics.rows_written.labels(query)
            self._lock.notify_all()

    def record_dead_letters(
        self, query: str, counts_by_reason: Mapping[str, int], batch_id: int | None = None
    ) -> None:
        """Dead letters of one batch, counted by reason code (``tombstone`` is one of them).

        With ``batch_id``, a replay of the last batch (a retry after a failure) replaces its
        earlier counts instead of adding to them.
        """
        with self._lock:
            stats = self._query(query)
            last = self._last_dead_letters.get(query)
            if batch_id is not None and last is not None and last[0] == batch_id:
                for reason, count in last[1].items():
                    stats.dead_letters[reason] -= count
            for reason, count in counts_by_reason.items():
                stats.dead_letters[reason] = stats.dead_letters.get(reason, 0) + int(count)
            if batch_id is not None:
                self._last_dead_letters[query] = (batch_id, dict(counts_by_reason))
            self._lock.notify_all()

    def set_dead_letters(self, query: str, totals_by_reason: Mapping[str, int]) -> None:
        """Replace the dead-letter totals of a query (from a counter kept elsewhere)."""
        with self._lock:
            self._query(query).dead_letters = {k: int(v) for k, v in totals_by_reason.items()}
            self._lock.notify_all()

    def set_psi(self, feature: str, value: float) -> None:
        """Latest Population Stability Index of a feature against its baseline."""
        with self._lock:
            self._psi[feature] = value
            self.metrics.psi.labels(feature).set(value)

    def set_missing(self, view: str, ratio: float, requested: int, missing: int) -> None:
        """Share of requested entities of a feature view that had no features at read time."""
        with self._lock:
            self._missing[view] = (ratio, requested, missing)
            self.metrics.missing.labels(view).set(ratio)

    def set_stale_keys(self, view: str, count: int) -> None:
        """Number of keys of a feature view that are expected to update but have gone stale."""
        with self._lock:
            self._stale[view] = count
            self.metrics.stale.labels(view).set(count)

    def set_skew(self, view: str, ratio: float, checked: int) -> None:
        """Share of ``checked`` sampled served vectors of a feature view that differed from
        the batch reference at their read time (training/serving skew)."""
        with self._lock:
            self._skew[view] = (ratio, checked)
            self.metrics.skew.labels(view).set(ratio)
            self.metrics.skew_checked.labels(view).set(checked)

    # -- readers -------------------------------------------------------------------------------
    def queries(self) -> dict[str, QueryStats]:
        """A consistent deep copy of the per-query statistics."""
        with self._lock:
            return copy.deepcopy(self._queries)

    def query(self, name: str) -> QueryStats:
        """A copy of one query's statistics (empty statistics when never seen)."""
        with self._lock:
            return copy.deepcopy(self._queries.get(name, QueryStats(name=name)))

    def psi(self) -> dict[str, float]:
        with self._lock:
            return dict(self._psi)

    def missing(self) -> dict[str, tuple[float, int, int]]:
        with self._lock:
            return dict(self._missing)

    def stale_keys(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stale)

    def skew(self) -> dict[str, tuple[float, int]]:
        """view → (share of mismatched vectors, vectors checked) of the last skew check."""
        with self._lock:
            return dict(self._skew)

    def wait_for(self, predicate: Callable[[MetricsRegistry], bool], timeout: float = 60.0) -> None:
        """Block until ``predicate(registry)`` holds (listener events arrive asynchronously).

        Raises ``TimeoutError`` naming the wait when it does not happen in time.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout=timeout):
                raise TimeoutError(f"monitoring registry: condition not met in {timeout}s")

    def wait_for_input_rows(self, query: str, rows: int, timeout: float = 60.0) -> None:
        """Block until the listener has recorded ``rows`` input rows of ``query`` in total.

        To wait for "everything the query has processed", pass the sum of ``numInputRows`` over
        ``query.recentProgress``: its ``lastProgress`` may be an idle report whose ``batchId`` is
        the next batch, which has not run.
        """

        def seen(_: MetricsRegistry) -> bool:
            stats = self._queries.get(query)
            return bool(stats and stats.input_rows_total >= rows)

        try:
            self.wait_for(seen, timeout)
        except TimeoutError:
            got = self._queries[query].input_rows_total if query in self._queries else 0
            raise TimeoutError(
                f"query {query!r}: {got} input rows recorded, {rows} expected, after {timeout}s"
            ) from None

    def wait_for_batch(self, query: str, batch_id: int, timeout: float = 60.0) -> BatchProgress:
        """Block until the listener has recorded ``batch_id`` (or a later batch) of ``query``."""

        def seen(_: MetricsRegistry) -> bool:
            stats = self._queries.get(query)
            return bool(stats and stats.last_progress and stats.last_progress.batch_id >= batch_id)

        try:
            self.wait_for(seen, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no progress event for batch {batch_id} of query {query!r} in {timeout}s"
            ) from None
        with self._lock:
            return next(b for b in self._queries[query].recent if b.batch_id >= batch_id)
