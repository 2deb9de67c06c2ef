"""The streaming job: CDC events → customer tiles and product lines → the feature store.

Usage::

    python -m cdc_features.job --source files --input-dir DIR --checkpoint-dir CKPT
    python -m cdc_features.job --source kafka --bootstrap-servers 127.0.0.1:9092 \\
        --topic-prefix dbserver1 --checkpoint-dir CKPT --sink redis --redis-url redis://...

``--sink`` takes one or more of ``redis``, ``feast``, ``noop`` (comma-separated). A new
Kafka query starts at the earliest offsets (so the Debezium snapshot is read); a restarted
one resumes from its checkpoint. ``--fail-on-data-loss false`` lets a query go on when
Kafka deleted offsets it had not read yet (retention) — those events are then lost.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig, add_arguments, config_from_args
from cdc_features.job.dead_letters import DeadLetterCounter
from cdc_features.job.progress import ProgressPrinter
from cdc_features.job.queries import (
    start_customer_query,
    start_dead_letter_query,
    start_product_query,
)
from cdc_features.job.sinks import SinkSet, build_sinks
from cdc_features.job.spark import apply_streaming_settings
from cdc_features.job.workarounds import drain_listener_bus
from cdc_features.monitoring import MetricsRegistry, Monitoring, observe_pipeline, start_monitoring


@dataclass
class Pipeline:
    """Handle of the running job."""

    spark: SparkSession
    config: PipelineConfig
    queries: dict[str, StreamingQuery]
    dead_letters: DeadLetterCounter
    progress: ProgressPrinter
    sinks: SinkSet
    monitoring: Monitoring | None = None

    def await_idle(self) -> None:
        """Block until every query has processed all input available now (raises if one failed)."""
        for query in self.queries.values():
            query.processAllAvailable()

    def await_termination(self, timeout: int | None = None) -> None:
        """Block until a query stops (``availableNow`` triggers stop by themselves)."""
        for query in self.queries.values():
            if timeout is None:
                query.awaitTermination()
            else:
                query.awaitTermination(timeout)

    @property
    def dropped_by_watermark(self) -> dict[str, int]:
        """Rows dropped as late so far, per query (from the progress reports)."""
        with self.progress.lock:
            return dict(self.progress.dropped)

    def stop(self) -> None:
        """Stop every query (its checkpoint keeps the progress) and the listeners.

        Returns once Spark has delivered every listener event to Python, so the process may
        exit right after it without a Py4J error from a listener call in flight.
        """
        for query in self.queries.values():
            with contextlib.suppress(Exception):  # stopping a failed query re-raises its error
                query.stop()
        drain_listener_bus(self.spark)  # the stop events reach the listeners while they exist
        with contextlib.suppress(Exception):  # already removed
            self.spark.streams.removeListener(self.progress)
        if self.monitoring is not None:
            self.monitoring.stop()
        drain_listener_bus(self.spark)  # an event dispatched during the removal
        self.sinks.close()


def start_pipeline(
    spark: SparkSession,
    config: PipelineConfig,
    *,
    extra_sinks: SinkSet | None = None,
    registry: MetricsRegistry | None = None,
) -> Pipeline:
    """Start the three queries (customer, product, dead letters) with separate checkpoints.

    The session gets the job's streaming settings first (checkpoint file manager chosen for
    the checkpoint's file system, shuffle partitions when configured).

    ``extra_sinks`` are appended after the configured ones (the lab runner's console view);
    monitoring runs when a ``registry`` is given or the config asks for a metrics endpoint or
    a status line (a new registry, owned by the returned pipeline, unless one is given).
    """
    if config.checkpoint_on_local_path:
        Path(config.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    apply_streaming_settings(
        spark,
        checkpoint_dir=str(config.checkpoint_dir),
        checkpoint_manager=config.checkpoint_file_manager,
        shuffle_partitions=config.shuffle_partitions,
    )
    counter = DeadLetterCounter(
        config.dead_letter_path if config.dead_letter_path.exists() else None
    )
    printer = ProgressPrinter(
        {CUSTOMER_QUERY, PRODUCT_QUERY, DEAD_LETTER_QUERY},
        counter,
        config.out,
        echo=config.progress,
    )
    spark.streams.addListener(printer)
    sinks = build_sinks(config)
    if extra_sinks is not None:
        sinks.customers += extra_sinks.customers
        sinks.products += extra_sinks.products
        sinks.closers += extra_sinks.closers
    monitoring = None
    if registry is not None or config.metrics_port is not None or config.status_interval:
        monitoring = start_monitoring(
            spark,
            registry=registry or MetricsRegistry(),
            metrics_port=config.metrics_port,
            status_interval=config.status_interval,
        )
        observe_pipeline(monitoring, sinks.customers, sinks.products, counter.by_reason)
    queries: dict[str, StreamingQuery] = {}
    try:
        plain = config.sinks == ("redis",) and monitoring is None and extra_sinks is None
        queries[CUSTOMER_QUERY] = start_customer_query(spark, config, None if plain else sinks)
        queries[PRODUCT_QUERY] = start_product_query(spark, config, None if plain else sinks)
        queries[DEAD_LETTER_QUERY] = start_dead_letter_query(spark, config, counter)
    except Exception:
        Pipeline(spark, config, queries, counter, printer, sinks, monitoring).stop()
        raise
    return Pipeline(spark, config, queries, counter, printer, sinks, monitoring)


def main(argv: list[str] | None = None) -> int:
    """Run the job until Ctrl-C (or until an ``available-now`` run has read everything)."""
    parser = argparse.ArgumentParser(
        prog="python -m cdc_features.job",
        description="CDC events → ML features (Spark Structured Streaming)",
    )
    add_arguments(parser)
    parser.add_argument(
        "--master",
        help="Spark master (default: spark-submit's --master, else env SPARK_MASTER, "
        "else local[2])",
    )
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    from cdc_features.job.spark import get_spark

    spark = get_spark("cdc-features", args.master, kafka=config.source == "kafka")
    pipeline = start_pipeline(spark, config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            if all(not q.isActive for q in pipeline.queries.values()):
                break
            stop.wait(0.5)
        for query in pipeline.queries.values():
            if query.exception() is not None:
                print(f"query {query.name} failed: {query.exception()}", file=sys.stderr)
                return 1
    finally:
        pipeline.stop()
        spark.stop()
    print(
        f"stopped; dead letters {pipeline.dead_letters.by_reason()}, "
        f"dropped as late {pipeline.dropped_by_watermark}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
