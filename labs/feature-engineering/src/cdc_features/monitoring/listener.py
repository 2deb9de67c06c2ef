"""A Spark streaming query listener that records every micro-batch of every query.

Register it once per SparkSession: ``spark.streams.addListener(FeatureListener(registry))``.
Spark calls it asynchronously on its listener thread, after each micro-batch (progress), when a
query waits for data (idle) and when a query stops — with the exception text when it failed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from cdc_features.monitoring.registry import BatchProgress, MetricsRegistry, exception_summary

log = logging.getLogger("cdc_features.monitoring")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def spark_time(text: str | None) -> datetime | None:
    """Parse a progress-event timestamp (``2026-03-01T10:00:00.000Z``); the epoch means none."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None if parsed == _EPOCH else parsed


# region feature_listener
class FeatureListener(StreamingQueryListener):
    """Per micro-batch: input rows, rates, duration, watermark, late rows dropped, state size."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.registry = registry

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        self.registry.query_started(str(event.id), event.name)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        p = event.progress
        operators = p.stateOperators  # one entry per stateful operator (aggregation, state)
        self.registry.record_progress(
            BatchProgress(
                query=p.name or str(p.id),
                batch_id=p.batchId,
                started_at=spark_time(p.timestamp) or _EPOCH,
                input_rows=p.numInputRows,
                input_rows_per_second=p.inputRowsPerSecond,
                processed_rows_per_second=p.processedRowsPerSecond,
                batch_duration_ms=p.batchDuration,
                watermark=spark_time(p.eventTime.get("watermark")),
                rows_dropped_by_watermark=sum(op.numRowsDroppedByWatermark for op in operators),
                state_rows=sum(op.numRowsTotal for op in operators),
            )
        )

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        self.registry.query_idle(str(event.id))

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        if event.exception:  # the query died: say so loudly, with Spark's exception text
            log.error("streaming query %s failed: %s", event.id, exception_summary(event.exception))
        self.registry.query_terminated(str(event.id), event.exception, event.errorClassOnException)


# endregion


def install_listener(spark: SparkSession, registry: MetricsRegistry) -> FeatureListener:
    """Register a :class:`FeatureListener` on ``spark`` (once per session and registry)."""
    listener = FeatureListener(registry)
    spark.streams.addListener(listener)
    return listener
