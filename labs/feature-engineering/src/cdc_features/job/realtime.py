"""The low-latency path's Spark part: a stateless Real-Time Mode query, orders → facts topic.

    python -m cdc_features.job.realtime --bootstrap-servers 127.0.0.1:9092 \\
        --checkpoint-dir .work/ckpt-rtm [--checkpoint-interval "1 minute"]

It reads the Debezium topic of ``inventory.orders``, parses every message once
(:func:`cdc_features.core.envelope.parse_order_events`, ``messages``), turns each order
event into its per-order facts (:func:`cdc_features.core.features.order_fact_versions`)
and writes one Kafka record per fact to ``cdc_features.customer_order_facts`` (key: the
customer id, value: JSON with the fields of
:data:`cdc_features.stores.order_facts.FACT_FIELDS`) and one per malformed message or
tombstone to ``cdc_features.dead_letters`` (``{"raw", "reason", "topic", "key"}``; an order
whose new ``order_date`` fails the event-time guard gives both an inactive fact and a
``future_event_time`` dead letter): nothing is dropped without a record. The writer
(:mod:`cdc_features.job.fact_writer`) applies the facts to Redis.

Why this shape (Spark 4.2.0): Real-Time Mode accepts only row-wise operators (projection,
filter, generators, union, broadcast joins, a watermark declaration) and the Kafka,
``foreach``, console and memory sinks; any aggregation, state or shuffle is refused with
``STREAMING_REAL_TIME_MODE.OPERATOR_OR_SINK_NOT_IN_ALLOWLIST``, and ``foreachBatch`` too.
So the per-order state lives in the store (LSN-guarded writes), and the rolling sums are
taken when reading. The trigger's duration is how often the query checkpoints its
offsets, not a latency: records flow through as they arrive. A restarted query resumes
from its last checkpoint and may write the facts since then again; the store ignores them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cdc_features.core.debezium_json import DEFAULT_PREFIX, ORDERS, topic_name
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import order_fact_versions
from cdc_features.core.spec import (
    FUTURE_TOLERANCE,
    ORDER_FACTS_TOPIC,
    REALTIME_DEAD_LETTER_TOPIC,
    REALTIME_QUERY,
)
from cdc_features.job.config import parse_duration
from cdc_features.job.spark import apply_streaming_settings

# The Kafka producer waits up to ``linger.ms`` to batch records: 0 in the kafka-clients 3.9.2
# that spark-sql-kafka 4.2.0 brings, 5 ms from kafka-clients 4.0 on. Set, so that an upgrade
# does not add it to every record of the low-latency path.
PRODUCER_LINGER_MS = 0


@dataclass(frozen=True)
class RealtimeConfig:
    """Everything the Real-Time Mode query needs; the CLI flags map one to one."""

    bootstrap_servers: str
    checkpoint_dir: Path | str
    topic_prefix: str = DEFAULT_PREFIX
    facts_topic: str = ORDER_FACTS_TOPIC
    dead_letter_topic: str = REALTIME_DEAD_LETTER_TOPIC
    checkpoint_interval: str = "1 minute"  # Real-Time Mode's batch duration (>= 5 seconds)
    fail_on_data_loss: bool = True
    default_scale: int = 2
    future_tolerance: timedelta = FUTURE_TOLERANCE  # the parser's event-time guard
    checkpoint_file_manager: str = "auto"

    @property
    def source_topic(self) -> str:
        return topic_name(ORDERS, self.topic_prefix)

    def checkpoint_location(self) -> str:
        base = str(self.checkpoint_dir).rstrip("/")
        return f"{base}/{REALTIME_QUERY}"


def _fact_record(fact: Column, topic: str) -> Column:
    return F.struct(
        F.lit(topic).alias("topic"),
        fact["customer_id"].cast("string").alias("key"),
        F.to_json(
            F.struct(
                fact["customer_id"].alias("customer_id"),
                fact["order_id"].alias("order_id"),
                fact["lsn"].alias("lsn"),
                fact["rank"].alias("rank"),
                fact["active"].alias("active"),
                fact["amount"].cast("string").alias("amount"),
                F.unix_micros(fact["order_ts"]).alias("order_ts_us"),
                F.unix_millis(fact["commit_ts"]).alias("commit_ms"),
            )
        ).alias("value"),
    )


# region realtime_records
def realtime_records(raw: DataFrame, config: RealtimeConfig) -> DataFrame:
    """Raw Debezium order messages → Kafka records ``(topic, key, value)``: the facts of
    every order event and a dead letter for every other message, in one pass."""
    parsed = parse_order_events(
        raw, default_scale=config.default_scale, future_tolerance=config.future_tolerance
    )
    rows = parsed.messages.select("event.*", "dead_letter")
    dead = F.col("dead_letter")
    dead_record = F.struct(
        F.lit(config.dead_letter_topic).alias("topic"),
        dead["topic"].alias("key"),
        F.to_json(dead).alias("value"),
    )
    records = F.concat(
        F.transform(order_fact_versions(), lambda f: _fact_record(f, config.facts_topic)),
        F.filter(F.array(F.when(dead.isNotNull(), dead_record)), lambda r: r.isNotNull()),
    )
    return rows.select(F.explode(records).alias("r")).select("r.topic", "r.key", "r.value")


# endregion


def read_orders(spark: SparkSession, config: RealtimeConfig) -> DataFrame:
    """The orders topic as ``(topic, key, value)`` strings; a new query starts at the
    earliest offsets (the Debezium snapshot), a restarted one at its checkpoint."""
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.bootstrap_servers)
        .option("subscribe", config.source_topic)
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", str(config.fail_on_data_loss).lower())
        .load()
        .select(
            F.col("topic"),
            F.col("key").cast("string").alias("key"),
            F.col("value").cast("string").alias("value"),
        )
    )


def start_realtime_query(spark: SparkSession, config: RealtimeConfig) -> StreamingQuery:
    """Start the Real-Time Mode query (Update output mode, Kafka sink)."""
    apply_streaming_settings(
        spark,
        checkpoint_dir=config.checkpoint_location(),
        checkpoint_manager=config.checkpoint_file_manager,
    )
    return (
        realtime_records(read_orders(spark, config), config)
        .writeStream.format("kafka")
        .queryName(REALTIME_QUERY)
        .option("kafka.bootstrap.servers", config.bootstrap_servers)
        .option("kafka.linger.ms", str(PRODUCER_LINGER_MS))
        .option("checkpointLocation", config.checkpoint_location())
        .outputMode("update")
        # PySpark 4.2.0 accepts realTime= but its typing overloads do not list it yet
        .trigger(realTime=config.checkpoint_interval)  # type: ignore[call-overload]
        .start()
    )


def main(argv: list[str] | None = None) -> int:
    """Run the Real-Time Mode query until Ctrl-C / SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m cdc_features.job.realtime",
        description="Debezium orders → per-order customer facts on Kafka (Real-Time Mode)",
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--topic-prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--facts-topic", default=ORDER_FACTS_TOPIC)
    parser.add_argument("--dead-letter-topic", default=REALTIME_DEAD_LETTER_TOPIC)
    parser.add_argument(
        "--checkpoint-interval",
        default="1 minute",
        help="Real-Time Mode batch duration: how often offsets are checkpointed (>= 5 seconds)",
    )
    parser.add_argument("--fail-on-data-loss", choices=("true", "false"), default="true")
    parser.add_argument(
        "--future-tolerance",
        type=parse_duration,
        default=FUTURE_TOLERANCE,
        help="event-time guard: an order_date further ahead of its commit time does not count "
        "and is dead-lettered as future_event_time (default: 1 day)",
    )
    parser.add_argument("--checkpoint-file-manager", default="auto")
    parser.add_argument("--master", help="Spark master (default: as python -m cdc_features.job)")
    args = parser.parse_args(argv)
    config = RealtimeConfig(
        bootstrap_servers=args.bootstrap_servers,
        checkpoint_dir=args.checkpoint_dir,
        topic_prefix=args.topic_prefix,
        facts_topic=args.facts_topic,
        dead_letter_topic=args.dead_letter_topic,
        checkpoint_interval=args.checkpoint_interval,
        fail_on_data_loss=args.fail_on_data_loss == "true",
        future_tolerance=args.future_tolerance,
        checkpoint_file_manager=args.checkpoint_file_manager,
    )
    from cdc_features.job.spark import get_spark

    spark = get_spark("cdc-features-realtime", args.master, kafka=True)
    query = start_realtime_query(spark, config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set() and query.isActive:
            stop.wait(0.5)
        if query.exception() is not None:
            print(f"query {query.name} failed: {query.exception()}", file=sys.stderr)
            return 1
    finally:
        query.stop()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
