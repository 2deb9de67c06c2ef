"""Shared by the benchmarks: starting one query of the job on its own (the private
redis-server they use is :class:`cdc_features.testing.RedisServer`)."""

from __future__ import annotations

from typing import Any

from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.dead_letters import DeadLetterCounter
from cdc_features.job.queries import (
    start_customer_query,
    start_dead_letter_query,
    start_product_query,
)

# One query of the job on its own: name → start(spark, config, sinks).
STARTERS: dict[str, Any] = {
    CUSTOMER_QUERY: lambda spark, config, sinks: start_customer_query(spark, config, sinks),
    PRODUCT_QUERY: lambda spark, config, sinks: start_product_query(spark, config, sinks),
    DEAD_LETTER_QUERY: lambda spark, config, sinks: start_dead_letter_query(
        spark, config, DeadLetterCounter(None)
    ),
}
