"""The job's three streaming queries; each has its own checkpoint (``<checkpoint-dir>/<name>``).

* ``customer_features`` — order events → daily customer tiles → the feature store;
* ``product_features`` — order + item events → absolute order lines → the feature store;
* ``dead_letters`` — malformed messages of both tables → a JSON-lines folder and a count.

Chaining the customer aggregation and the product state operator in one query is not
supported by Spark, so they are separate queries over the same source.
"""

from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from cdc_features.core.envelope import parse_item_events, parse_order_events
from cdc_features.core.features import compute_customer_features, compute_product_features
from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig
from cdc_features.job.dead_letters import DeadLetterCounter, make_dead_letter_writer
from cdc_features.job.sinks import SinkSet, fan_out
from cdc_features.job.sources import read_raw_events
from cdc_features.stores.redis_store import write_product_features, write_to_feature_store


def _with_trigger(writer: DataStreamWriter, trigger: str | None) -> DataStreamWriter:
    if trigger is None:
        return writer
    if trigger == "available-now":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=trigger)


def streaming_writer(
    df: DataFrame, name: str, mode: str, config: PipelineConfig, trigger: str | None = None
) -> DataStreamWriter:
    """A named writer with its checkpoint under ``config.checkpoint_dir`` and the trigger."""
    writer = (
        df.writeStream.queryName(name)
        .outputMode(mode)
        .option("checkpointLocation", config.checkpoint_location(name))
    )
    return _with_trigger(writer, trigger or config.trigger)


# region start_customer_query
def start_customer_query(
    spark: SparkSession, config: PipelineConfig, sinks: SinkSet | None = None
) -> StreamingQuery:
    """Customer features: Debezium order events → daily tiles → the feature store.

    The tiles are aggregated with a 365-day watermark (the recency horizon) in Update
    mode: each trigger hands the tiles it changed, with their absolute values, to the
    sink. The parser's event-time guard keeps a typo date away from the watermark.
    """
    raw = read_raw_events(spark, config)
    orders = parse_order_events(
        raw, default_scale=config.default_scale, future_tolerance=config.future_tolerance
    ).events
    tiles = compute_customer_features(orders)
    writer = streaming_writer(tiles, CUSTOMER_QUERY, "update", config)
    if sinks is None:  # the plain lab setup: Redis only
        return writer.foreachBatch(partial(write_to_feature_store, store=config.redis)).start()
    return writer.foreachBatch(fan_out(sinks.customers)).start()


# endregion


def start_product_query(
    spark: SparkSession, config: PipelineConfig, sinks: SinkSet | None = None
) -> StreamingQuery:
    """Product features: order and item events → absolute order lines → the feature store."""
    raw = read_raw_events(spark, config)
    orders = parse_order_events(
        raw, default_scale=config.default_scale, future_tolerance=config.future_tolerance
    ).events
    items = parse_item_events(raw, default_scale=config.default_scale).events
    lines = compute_product_features(orders, items)
    writer = streaming_writer(lines, PRODUCT_QUERY, "update", config)
    if sinks is None:
        return writer.foreachBatch(partial(write_product_features, store=config.redis)).start()
    return writer.foreachBatch(fan_out(sinks.products)).start()


def start_dead_letter_query(
    spark: SparkSession, config: PipelineConfig, counter: DeadLetterCounter
) -> StreamingQuery:
    """Malformed messages of both topics (and tombstones, counted) → the dead-letter folder."""
    raw = read_raw_events(spark, config)
    letters = parse_order_events(
        raw, default_scale=config.default_scale, future_tolerance=config.future_tolerance
    ).dead_letters.unionByName(
        parse_item_events(raw, default_scale=config.default_scale).dead_letters
    )
    writer = streaming_writer(
        letters, DEAD_LETTER_QUERY, "append", config, trigger=config.effective_dead_letter_trigger
    )
    return writer.foreachBatch(make_dead_letter_writer(config.dead_letter_path, counter)).start()
