"""Shared by the benchmarks: starting one query of the job on its own, and the bare parse
that measures the machine's ceiling for a log (the private redis-server they use is
:class:`cdc_features.testing.RedisServer`)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from cdc_features.core.envelope import ORDER_ITEMS, ORDERS, _message_schema
from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig
from cdc_features.job.dead_letters import DeadLetterCounter
from cdc_features.job.queries import (
    start_customer_query,
    start_dead_letter_query,
    start_product_query,
    streaming_writer,
)
from cdc_features.job.sources import read_raw_events

# One query of the job on its own: name → start(spark, config, sinks).
STARTERS: dict[str, Any] = {
    CUSTOMER_QUERY: lambda spark, config, sinks: start_customer_query(spark, config, sinks),
    PRODUCT_QUERY: lambda spark, config, sinks: start_product_query(spark, config, sinks),
    DEAD_LETTER_QUERY: lambda spark, config, sinks: start_dead_letter_query(
        spark, config, DeadLetterCounter(None)
    ),
}
BARE_PARSE_QUERY = "bare_parse"
HASH_ON_MAPS = "spark.sql.legacy.allowHashOnMapType"


def bare_parse(raw: DataFrame) -> DataFrame:
    """Every message parsed once with the job's own ``from_json`` (its table's message schema,
    both converter shapes, the corrupt-record column) and nothing else: no typing, no checks,
    no features. A 64-bit hash of the whole parsed value keeps Spark from pruning the parse
    down to the fields nobody reads (the Connect schema holds a map: hashing one needs
    ``spark.sql.legacy.allowHashOnMapType``, set by :func:`start_bare_parse`)."""
    table = F.substring_index(F.col("topic"), ".", -1)
    options = {"columnNameOfCorruptRecord": "_corrupt_record"}

    def parsed(name: str) -> Any:
        return F.xxhash64(F.from_json("value", _message_schema(name), options))

    return raw.select(
        F.when(table == ORDERS, parsed(ORDERS))
        .when(table == ORDER_ITEMS, parsed(ORDER_ITEMS))
        .alias("parsed")
    )


def start_bare_parse(
    spark: SparkSession, config: PipelineConfig, counts: list[int]
) -> StreamingQuery:
    """The machine's ceiling for the log: read + ``from_json`` + count, one query (the job's
    file source and trigger). Each micro-batch appends the number of messages it parsed to
    ``counts``."""

    def count(batch_df: DataFrame, batch_id: int) -> None:
        row = batch_df.agg(F.count("parsed"), F.bit_xor("parsed")).first()
        counts.append(int(row[0]) if row is not None else 0)

    previous = spark.conf.get(HASH_ON_MAPS, "false")
    spark.conf.set(HASH_ON_MAPS, "true")  # the query keeps it (Spark clones the session)
    try:
        raw = read_raw_events(spark, config)
        writer = streaming_writer(bare_parse(raw), BARE_PARSE_QUERY, "append", config)
        return writer.foreachBatch(count).start()
    finally:
        spark.conf.set(HASH_ON_MAPS, previous or "false")
