"""The streaming job: CDC events → customer tiles and product lines → the feature store.

Three streaming queries share one source definition and keep separate checkpoints:

* ``customer_features`` — order events → daily customer tiles → ``write_to_feature_store``;
* ``product_features`` — order + item events → absolute order lines → ``write_product_features``;
* ``dead_letters`` — malformed messages → a JSON-lines folder and a running count.

Usage::

    python -m cdc_features.pipeline --source files --input-dir DIR --checkpoint-dir CKPT
    python -m cdc_features.pipeline --source kafka --bootstrap-servers 127.0.0.1:9092 \\
        --topic-prefix dbserver1 --checkpoint-dir CKPT --sink redis --redis-url redis://...

``--sink`` takes one or more of ``redis``, ``console``, ``feast``, ``noop`` (comma-separated).
A new Kafka query starts at the earliest offsets (so the Debezium snapshot is read); a
restarted one resumes from its checkpoint. ``--fail-on-data-loss false`` lets a query go on
when Kafka deleted offsets it had not read yet (retention) — those events are then lost.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery, StreamingQueryListener

from cdc_features.console_sink import ConsoleFeatureView
from cdc_features.dead_letters import DeadLetterCounter, make_dead_letter_writer
from cdc_features.debezium_json import DEFAULT_PREFIX, ORDER_ITEMS, ORDERS, topic_name
from cdc_features.envelope import parse_item_events, parse_order_events
from cdc_features.monitoring import Monitoring, observe_pipeline, start_monitoring
from cdc_features.features import compute_customer_features, compute_product_features
from cdc_features.redis_sink import (
    configure_feature_store, write_product_features, write_to_feature_store,
)

BatchFunction = Callable[[DataFrame, int], None]
RAW_FILE_SCHEMA = "topic string, key string, value string, _corrupt_record string"
SINKS = ("redis", "console", "feast", "noop")
CUSTOMER_QUERY = "customer_features"
PRODUCT_QUERY = "product_features"
DEAD_LETTER_QUERY = "dead_letters"


@dataclass
class PipelineConfig:
    """Everything the job needs; the CLI flags map one to one."""

    checkpoint_dir: Path
    source: str = "files"
    input_dir: Path | None = None
    bootstrap_servers: str | None = None
    topic_prefix: str = DEFAULT_PREFIX
    fail_on_data_loss: bool = True
    max_files_per_trigger: int | None = None
    max_offsets_per_trigger: int | None = None
    sinks: tuple[str, ...] = ("redis",)
    redis_url: str | None = None
    feast_repo: Path | None = None
    trigger: str | None = "2 seconds"
    # Dead letters are not on the latency path: by default their query wakes up less often,
    # leaving the two cores to the feature queries ("same" = the feature trigger).
    dead_letter_trigger: str | None = "10 seconds"
    dead_letter_dir: Path | None = None
    default_scale: int = 2
    console_customers: int = 5
    progress: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    metrics_port: int | None = None  # loopback /metrics endpoint (0 = a free port); MONITORING.md
    status_interval: float | None = None  # seconds between monitoring status lines

    def __post_init__(self) -> None:
        unknown = set(self.sinks) - set(SINKS)
        if unknown or not self.sinks:
            raise ValueError(f"unknown sink {sorted(unknown)}; choose from {', '.join(SINKS)}")
        if self.source == "files" and self.input_dir is None:
            raise ValueError("--source files needs --input-dir")
        if self.source == "kafka" and not self.bootstrap_servers:
            raise ValueError("--source kafka needs --bootstrap-servers")
        if self.source not in ("files", "kafka"):
            raise ValueError(f"unknown source {self.source!r}; choose files or kafka")
        if "feast" in self.sinks and self.feast_repo is None:
            raise ValueError("--sink feast needs --feast-repo")

    @property
    def topics(self) -> list[str]:
        """The two Debezium topics of the course tables."""
        return [topic_name(ORDERS, self.topic_prefix), topic_name(ORDER_ITEMS, self.topic_prefix)]

    @property
    def effective_dead_letter_trigger(self) -> str | None:
        """The dead-letter query's trigger; it applies only with a processing-time
        ``trigger`` (back-to-back and ``available-now`` runs keep theirs)."""
        if self.trigger in (None, "available-now") or self.dead_letter_trigger in (None, "same"):
            return self.trigger
        return self.dead_letter_trigger

    @property
    def dead_letter_path(self) -> Path:
        """Where dead letters go (default: next to the checkpoints)."""
        return self.dead_letter_dir or self.checkpoint_dir / "dead_letters_out"


def read_raw_events(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    """The raw change events as a stream of ``(topic, key, value)`` strings.

    Files: JSON lines ``{"topic", "key", "value"}`` appearing in a watched folder (a line
    that is not JSON becomes a message whose value is the line, so it is dead-lettered as
    ``not_json``). Kafka: key and value cast to text.
    """
    if config.source == "files":
        reader = (spark.readStream.schema(RAW_FILE_SCHEMA)
                  .option("columnNameOfCorruptRecord", "_corrupt_record"))
        if config.max_files_per_trigger:
            reader = reader.option("maxFilesPerTrigger", config.max_files_per_trigger)
        raw = reader.json(str(config.input_dir))
        return raw.select(
            "topic", "key",
            F.when(F.col("_corrupt_record").isNotNull(), F.col("_corrupt_record"))
            .otherwise(F.col("value")).alias("value"))
    reader = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", config.bootstrap_servers)
              .option("subscribe", ",".join(config.topics))
              .option("startingOffsets", "earliest")
              .option("failOnDataLoss", str(config.fail_on_data_loss).lower()))
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", config.max_offsets_per_trigger)
    return reader.load().select(F.col("topic"), F.col("key").cast("string").alias("key"),
                                F.col("value").cast("string").alias("value"))


def _with_trigger(writer: DataStreamWriter, trigger: str | None) -> DataStreamWriter:
    if trigger is None:
        return writer
    if trigger == "available-now":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=trigger)


def _streaming_writer(df: DataFrame, name: str, mode: str, config: PipelineConfig,
                      trigger: str | None = None) -> DataStreamWriter:
    writer = (df.writeStream.queryName(name).outputMode(mode)
              .option("checkpointLocation", str(config.checkpoint_dir / name)))
    return _with_trigger(writer, trigger or config.trigger)


def fan_out(functions: Sequence[BatchFunction]) -> BatchFunction:
    """One foreachBatch function that hands the same (cached) micro-batch to several sinks."""
    if len(functions) == 1:
        return functions[0]

    def write_all(batch_df: DataFrame, batch_id: int) -> None:
        batch_df.persist()  # several writes: compute the micro-batch once
        try:
            for function in functions:
                function(batch_df, batch_id)
        finally:
            batch_df.unpersist()

    return write_all


def write_noop(batch_df: DataFrame, batch_id: int) -> None:
    """Compute the micro-batch and discard it (for benchmarks)."""
    batch_df.write.format("noop").mode("overwrite").save()


@dataclass
class SinkSet:
    """The foreachBatch functions of the customer and product queries."""

    customers: list[BatchFunction]
    products: list[BatchFunction]
    console: ConsoleFeatureView | None = None


def build_sinks(config: PipelineConfig) -> SinkSet:
    """Configure the chosen sinks; ``feast`` comes from :mod:`cdc_features.feast_sink`."""
    sinks = SinkSet([], [])
    if config.redis_url:
        configure_feature_store(config.redis_url)
    for name in config.sinks:
        if name == "redis":
            sinks.customers.append(write_to_feature_store)
            sinks.products.append(write_product_features)
        elif name == "feast":
            from cdc_features import feast_sink  # optional extra: feast[redis]

            feast_sink.configure_feast_sink(config.feast_repo, config.redis_url or "")
            sinks.customers.append(feast_sink.push_to_feast)
            sinks.products.append(feast_sink.push_products_to_feast)
        elif name == "noop":
            sinks.customers.append(write_noop)
            sinks.products.append(write_noop)
    if "console" in config.sinks:
        client = None
        if {"redis", "feast"} & set(config.sinks):
            import redis

            from cdc_features.redis_sink import store_config

            client = redis.Redis.from_url(store_config().url)
        view = ConsoleFeatureView(client=client, max_customers=config.console_customers,
                                  out=config.out)
        sinks.console = view
        sinks.customers.append(view.write_customers)
        sinks.products.append(view.write_products)
    return sinks


# region start_customer_query
def start_customer_query(spark: SparkSession, config: PipelineConfig,
                         sinks: SinkSet | None = None) -> StreamingQuery:
    """Customer features: Debezium order events → daily tiles → the feature store.

    The tiles are aggregated with a 30-day watermark in Update mode: each trigger
    hands the tiles it changed, with their absolute values, to the sink.
    """
    raw = read_raw_events(spark, config)
    orders = parse_order_events(raw, default_scale=config.default_scale).events
    tiles = compute_customer_features(orders)
    writer = _streaming_writer(tiles, CUSTOMER_QUERY, "update", config)
    if sinks is None:  # the plain lab setup: Redis only
        return writer.foreachBatch(write_to_feature_store).start()
    return writer.foreachBatch(fan_out(sinks.customers)).start()
# endregion


def start_product_query(spark: SparkSession, config: PipelineConfig,
                        sinks: SinkSet | None = None) -> StreamingQuery:
    """Product features: order and item events → absolute order lines → the feature store."""
    raw = read_raw_events(spark, config)
    orders = parse_order_events(raw, default_scale=config.default_scale).events
    items = parse_item_events(raw, default_scale=config.default_scale).events
    lines = compute_product_features(orders, items)
    writer = _streaming_writer(lines, PRODUCT_QUERY, "update", config)
    function = write_product_features if sinks is None else fan_out(sinks.products)
    return writer.foreachBatch(function).start()


def start_dead_letter_query(spark: SparkSession, config: PipelineConfig,
                            counter: DeadLetterCounter) -> StreamingQuery:
    """Malformed messages of both topics (and tombstones, counted) → the dead-letter folder."""
    raw = read_raw_events(spark, config)
    letters = (parse_order_events(raw, default_scale=config.default_scale).dead_letters
               .unionByName(parse_item_events(raw, default_scale=config.default_scale).dead_letters))
    writer = _streaming_writer(letters, DEAD_LETTER_QUERY, "append", config,
                               trigger=config.effective_dead_letter_trigger)
    return writer.foreachBatch(make_dead_letter_writer(config.dead_letter_path, counter)).start()


def dropped_by_watermark(progress: Any) -> int:
    """Rows of one progress report dropped as too late, over all stateful operators."""
    operators = progress.get("stateOperators", []) if isinstance(progress, dict) else \
        getattr(progress, "stateOperators", [])
    total = 0
    for op in operators or []:
        value = op.get("numRowsDroppedByWatermark") if isinstance(op, dict) else \
            getattr(op, "numRowsDroppedByWatermark", 0)
        total += int(value or 0)
    return total


def state_rows(progress: Any) -> int:
    """State rows held by the stateful operators after one batch."""
    operators = progress.get("stateOperators", []) if isinstance(progress, dict) else \
        getattr(progress, "stateOperators", [])
    total = 0
    for op in operators or []:
        value = op.get("numRowsTotal") if isinstance(op, dict) else getattr(op, "numRowsTotal", 0)
        total += int(value or 0)
    return total


class ProgressPrinter(StreamingQueryListener):
    """One line per micro-batch: batch number, input rows, rows dropped as late, dead letters."""

    def __init__(self, names: set[str], counter: DeadLetterCounter, out: TextIO,
                 echo: bool = True) -> None:
        self.names = names
        self.counter = counter
        self.out = out
        self.echo = echo
        self.lock = threading.Lock()
        self.dropped: dict[str, int] = {}
        self.input_rows: dict[str, int] = {}
        self.batches: dict[str, int] = {}
        self.last_state_rows: dict[str, int] = {}

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark's API)
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        progress = event.progress
        name = progress.name
        if name not in self.names:
            return
        dropped = dropped_by_watermark(progress)
        rows = int(progress.numInputRows)
        with self.lock:
            self.dropped[name] = self.dropped.get(name, 0) + dropped
            self.input_rows[name] = self.input_rows.get(name, 0) + rows
            self.batches[name] = self.batches.get(name, 0) + 1
            self.last_state_rows[name] = state_rows(progress)
        if self.echo and rows:
            print(f"[{name}] batch {progress.batchId}: {rows} events in, "
                  f"{dropped} dropped as late (total {self.dropped[name]}), "
                  f"dead letters {self.counter.errors}, tombstones {self.counter.tombstones}",
                  file=self.out, flush=True)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        if event.exception and self.echo:
            print(f"query {event.id} failed: {event.exception}", file=self.out, flush=True)


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

    def await_termination(self, timeout: float | None = None) -> None:
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
        """Stop every query (its checkpoint keeps the progress) and the progress listener."""
        for query in self.queries.values():
            try:
                query.stop()
            except Exception:  # noqa: BLE001 - stopping a failed query re-raises its error
                pass
        try:
            self.spark.streams.removeListener(self.progress)
        except Exception:  # noqa: BLE001
            pass
        if self.monitoring is not None:
            self.monitoring.stop()


def start_pipeline(spark: SparkSession, config: PipelineConfig) -> Pipeline:
    """Start the three queries (customer, product, dead letters) with separate checkpoints."""
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    counter = DeadLetterCounter(config.dead_letter_path if config.dead_letter_path.exists() else None)
    printer = ProgressPrinter({CUSTOMER_QUERY, PRODUCT_QUERY, DEAD_LETTER_QUERY}, counter,
                              config.out, echo=config.progress)
    spark.streams.addListener(printer)
    sinks = build_sinks(config)
    monitoring = None
    if config.metrics_port is not None or config.status_interval:
        monitoring = start_monitoring(spark, metrics_port=config.metrics_port,
                                      status_interval=config.status_interval)
        observe_pipeline(monitoring, sinks.customers, sinks.products, counter.by_reason)
    queries: dict[str, StreamingQuery] = {}
    try:
        plain = config.sinks == ("redis",) and monitoring is None
        queries[CUSTOMER_QUERY] = start_customer_query(spark, config, None if plain else sinks)
        queries[PRODUCT_QUERY] = start_product_query(spark, config, None if plain else sinks)
        queries[DEAD_LETTER_QUERY] = start_dead_letter_query(spark, config, counter)
    except Exception:
        Pipeline(spark, config, queries, counter, printer, sinks, monitoring).stop()
        raise
    return Pipeline(spark, config, queries, counter, printer, sinks, monitoring)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's command-line options (shared with the lab runner)."""
    parser.add_argument("--source", choices=("files", "kafka"), default="files")
    parser.add_argument("--input-dir", type=Path, help="watched folder of JSON-lines files")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (host:port,...)")
    parser.add_argument("--topic-prefix", default=DEFAULT_PREFIX,
                        help="Debezium topic.prefix (topics <prefix>.inventory.orders|order_items)")
    parser.add_argument("--fail-on-data-loss", choices=("true", "false"), default="true",
                        help="Kafka: fail when offsets were deleted before being read")
    parser.add_argument("--max-files-per-trigger", type=int)
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument("--checkpoint-dir", type=Path, default=Path(".work/checkpoints"))
    parser.add_argument("--dead-letter-dir", type=Path)
    parser.add_argument("--sink", default="redis",
                        help="comma-separated: redis, console, feast, noop (default redis)")
    parser.add_argument("--redis-url", help="feature store Redis (default env FEATURE_REDIS_URL)")
    parser.add_argument("--feast-repo", type=Path, help="Feast repository (for --sink feast)")
    parser.add_argument("--trigger", default="2 seconds",
                        help="micro-batch interval, e.g. '2 seconds'; 'none' = back to back; "
                             "'available-now' = process what is there and stop")
    parser.add_argument("--dead-letter-trigger", default="10 seconds",
                        help="micro-batch interval of the dead-letter query ('same' = --trigger)")
    parser.add_argument("--default-scale", type=int, default=2,
                        help="decimal scale when a precise decimal comes without a schema")
    parser.add_argument("--console-customers", type=int, default=5)
    parser.add_argument("--metrics-port", type=int,
                        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0 = free port)")
    parser.add_argument("--status-interval", type=float,
                        help="print a monitoring status line every N seconds")


def config_from_args(args: argparse.Namespace, out: TextIO | None = None) -> PipelineConfig:
    """A :class:`PipelineConfig` from parsed command-line options."""
    trigger = None if args.trigger in ("none", "") else args.trigger
    return PipelineConfig(
        checkpoint_dir=args.checkpoint_dir, source=args.source, input_dir=args.input_dir,
        bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix,
        fail_on_data_loss=args.fail_on_data_loss == "true",
        max_files_per_trigger=args.max_files_per_trigger,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        sinks=tuple(s.strip() for s in args.sink.split(",") if s.strip()),
        redis_url=args.redis_url, feast_repo=args.feast_repo, trigger=trigger,
        dead_letter_dir=args.dead_letter_dir, dead_letter_trigger=args.dead_letter_trigger,
        default_scale=args.default_scale,
        console_customers=args.console_customers, out=out or sys.stdout,
        metrics_port=getattr(args, "metrics_port", None),
        status_interval=getattr(args, "status_interval", None))


def main(argv: list[str] | None = None) -> int:
    """Run the job until Ctrl-C (or until an ``available-now`` run has read everything)."""
    parser = argparse.ArgumentParser(prog="python -m cdc_features.pipeline",
                                     description="CDC events → ML features (Spark Structured Streaming)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    from cdc_features.spark import get_spark

    spark = get_spark("cdc-features", kafka=config.source == "kafka")
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
    print(f"stopped; dead letters {pipeline.dead_letters.by_reason()}, "
          f"dropped as late {pipeline.dropped_by_watermark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
