"""The foreachBatch functions of the customer and product queries, built from the config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from pyspark.sql import DataFrame

from cdc_features.job.config import PipelineConfig
from cdc_features.stores.base import BatchFunction
from cdc_features.stores.redis_store import write_product_features, write_to_feature_store


def write_noop(batch_df: DataFrame, batch_id: int) -> None:
    """Compute the micro-batch and discard it (for benchmarks)."""
    batch_df.write.format("noop").mode("overwrite").save()


def fan_out(functions: Sequence[BatchFunction]) -> BatchFunction:
    """One foreachBatch function that hands the same (cached) micro-batch to several sinks."""
    if not functions:
        return write_noop
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


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass
class SinkSet:
    """The foreachBatch functions of the customer and product queries.

    ``build_sinks`` fills it from the config; a caller may append its own functions (the lab
    runner adds its console view, the monitoring adds its observers) before the queries start.
    """

    customers: list[BatchFunction] = field(default_factory=list)
    products: list[BatchFunction] = field(default_factory=list)
    closers: list[Closeable] = field(default_factory=list)  # closed when the job stops

    def close(self) -> None:
        for thing in self.closers:
            thing.close()


def build_sinks(config: PipelineConfig) -> SinkSet:
    """The configured sinks, each with its configuration bound in (``feast`` needs the extra)."""
    sinks = SinkSet()
    for name in config.sinks:
        if name == "redis":
            sinks.customers.append(partial(write_to_feature_store, store=config.redis))
            sinks.products.append(partial(write_product_features, store=config.redis))
        elif name == "feast":
            from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig  # feast[redis]

            assert config.feast_repo is not None  # PipelineConfig checks it
            feast = FeastSink(FeastSinkConfig(config.feast_repo, config.redis))
            sinks.customers.append(feast.push_to_feast)
            sinks.products.append(feast.push_products_to_feast)
            sinks.closers.append(feast)
        elif name == "noop":
            sinks.customers.append(write_noop)
            sinks.products.append(write_noop)
    return sinks
