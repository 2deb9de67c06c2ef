"""What a sink reports after writing a micro-batch (runs in ``foreachBatch``, on the driver).

Two ways to use it:

* wrap the sink: ``.foreachBatch(monitored_sink(write_to_feature_store, query="customer_features",
  event_time_col="last_order_ts"))`` — persists the batch, writes, then reports; a write that
  raises is recorded as a sink failure and re-raised, so the query fails loudly;
* or call ``observe_written_batch(batch_df, batch_id, ...)`` at the end of a ``foreachBatch``
  function that already persisted its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdc_features.monitoring.drift import DriftMonitor
from cdc_features.monitoring.metrics import LAG_BUCKETS
from cdc_features.monitoring.registry import MetricsRegistry, SinkWrite

BatchFunction = Callable[[DataFrame, int], None]

#: percentile_approx accuracy: exact nearest-rank quantiles for batches up to this many rows
LAG_QUANTILE_ACCURACY = 10_000

#: at most this many values per feature and batch are sampled to the driver for drift
DRIFT_SAMPLE_PER_BATCH = 1_000


def observe_written_batch(
    batch_df: DataFrame,
    batch_id: int,
    *,
    query: str,
    event_time_col: str,
    commit_ts_col: str = "commit_ts",
    registry: MetricsRegistry,
    written_at: datetime | None = None,
    drift: DriftMonitor | None = None,
    drift_columns: Mapping[str, str] | None = None,
) -> SinkWrite:
    """Record that ``batch_df`` is now in the feature store.

    Newest event time = max of ``event_time_col`` over the written rows; end-to-end lag per row =
    write time − ``commit_ts_col`` (the source commit time, Debezium ``source.ts_ms``), counted
    into the lag histogram's buckets by the same Spark job; p50 and p99 of the batch (for the
    status line) are nearest-rank quantiles over the rows (exact up to 10,000 rows). Write time
    is the registry clock when not given. ``drift_columns`` maps feature name → column: a
    bounded random sample of each is passed to the drift monitor.
    """
    reg = registry
    written = written_at or reg.clock()
    written_us = int(written.timestamp() * 1_000_000)
    lag_us = F.lit(written_us) - F.unix_micros(F.col(commit_ts_col))
    row = batch_df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.max(event_time_col).alias("newest"),
        F.percentile_approx(lag_us, [0.5, 0.99], LAG_QUANTILE_ACCURACY).alias("lag_q"),
        F.sum(lag_us).alias("lag_sum"),
        F.count(lag_us).alias("lag_count"),
        *(
            F.count(F.when(lag_us <= round(le * 1_000_000), 1)).alias(f"le_{i}")
            for i, le in enumerate(LAG_BUCKETS)
        ),
    ).first()
    assert row is not None  # a global aggregation always returns one row
    quantiles = row["lag_q"]
    write = SinkWrite(
        query=query,
        batch_id=batch_id,
        written_at=written,
        rows=int(row["rows"]),
        newest_event_ts=_as_utc(row["newest"]),
        lag_p50_seconds=quantiles[0] / 1e6 if quantiles else None,
        lag_p99_seconds=quantiles[1] / 1e6 if quantiles else None,
        lag_sum_seconds=(row["lag_sum"] or 0) / 1e6,
        lag_count=int(row["lag_count"]),
        lag_buckets=tuple(int(row[f"le_{i}"]) for i in range(len(LAG_BUCKETS)))
        if row["lag_count"]
        else (),
    )
    if drift is not None and drift_columns and write.rows > 0:
        fraction = min(1.0, DRIFT_SAMPLE_PER_BATCH / write.rows)
        cols = list(drift_columns.items())
        sample = batch_df.sample(fraction=fraction, seed=batch_id) if fraction < 1.0 else batch_df
        rows = (
            sample.select(*[F.col(c).cast("double").alias(f) for f, c in cols])
            .limit(DRIFT_SAMPLE_PER_BATCH)
            .collect()
        )
        for feature, _ in cols:
            drift.observe(feature, [r[feature] for r in rows if r[feature] is not None])
    reg.record_batch_written(write)
    return write


def observe_dead_letters(
    batch_df: DataFrame, batch_id: int, *, registry: MetricsRegistry, query: str = "dead_letters"
) -> dict[str, int]:
    """Count a batch of dead letters by reason code (text before the first ``:``) and record it
    (a replayed batch replaces its earlier counts)."""
    code = F.substring_index(F.col("reason"), ":", 1)
    counts = {
        r["code"]: int(r["n"])
        for r in batch_df.groupBy(code.alias("code")).agg(F.count(F.lit(1)).alias("n")).collect()
    }
    registry.record_dead_letters(query, counts, batch_id)
    return counts


def monitored_sink(
    sink: BatchFunction,
    *,
    query: str,
    event_time_col: str,
    registry: MetricsRegistry,
    commit_ts_col: str = "commit_ts",
    drift: DriftMonitor | None = None,
    drift_columns: Mapping[str, str] | None = None,
) -> BatchFunction:
    """Wrap a ``foreachBatch`` function so every written batch is reported to the registry.

    The batch is persisted for the write and the measurement; a sink that raises is recorded
    (``cdc_features_sink_failures_total``) and the exception propagates, so the streaming query
    terminates with it instead of hanging or losing the batch.
    """

    @wraps(sink)
    def run(batch_df: DataFrame, batch_id: int) -> None:
        reg = registry
        batch_df.persist()
        try:
            try:
                sink(batch_df, batch_id)
            except Exception as exc:
                reg.record_sink_failure(query, batch_id, exc)
                raise
            observe_written_batch(
                batch_df,
                batch_id,
                query=query,
                event_time_col=event_time_col,
                commit_ts_col=commit_ts_col,
                registry=reg,
                drift=drift,
                drift_columns=drift_columns,
            )
        finally:
            batch_df.unpersist()

    return run


def _as_utc(value: datetime | None) -> datetime | None:
    """Spark returns naive datetimes in the driver's local zone for TIMESTAMP; make them aware."""
    # a naive datetime is read as local time of this Python process, which is what PySpark returns
    return None if value is None else value.astimezone(UTC)
