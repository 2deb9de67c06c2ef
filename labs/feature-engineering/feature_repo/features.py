"""Feast definitions of the lab's customer and product features.

The streaming job computes the features (``cdc_features.core.features`` + ``definitions``) and
pushes them here from ``foreachBatch`` (``cdc_features.stores.feast_sink``). Windows and TTLs
come from the lab's feature spec (``cdc_features.core.spec``), declared once. Each pushed row holds
the features *as of its ``event_timestamp``* (the stream's clock when it was computed);
``last_order_ts`` is recency: the newest counted order of the last 365 days (not of the 30-day
window). ``days_since_last_order`` depends on the moment of the read, so it is an on-demand
feature computed from ``last_order_ts_us`` and the request's ``read_ts_us``.

The customer view's ``ttl`` is the recency horizon + 1 day, not the 30-day window: Feast's
point-in-time join returns nothing for a training row more than ``ttl`` after the entity's last
push, and a silent customer is pushed again only when its values change by themselves (the
sink re-pushes at each decay of the 30-day sums and when the last order leaves the horizon), so
a 31-day ttl would null the recency of every customer silent for a month.

Feast's ``UnixTimestamp`` keeps whole seconds (``unix_timestamp_val`` is int64 seconds), so
the exact order time travels beside it as microseconds since the epoch (``Int64``); the
read time is passed the same way.

Money is ``Decimal`` (Feast's DECIMAL type, stored as text): 2-place amounts keep their
exact value from PostgreSQL ``DECIMAL(10,2)`` to the model, with no binary rounding.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feast import Entity, FeatureView, Field, FileSource, PushSource, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Decimal, Int64, UnixTimestamp
from feast.value_type import ValueType

from cdc_features.core.spec import PRODUCT, RECENCY

# region feast_definitions
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)

customer_push = PushSource(
    name="customer_features_push",
    batch_source=FileSource(  # the offline copy: Parquet, for training sets
        name="customer_features_offline",
        path="data/customer_features.parquet",
        timestamp_field="event_timestamp",
    ),
)

customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    ttl=timedelta(days=RECENCY.ttl_days),  # last push > 366 days ago: nothing is known
    schema=[
        Field(name="order_count_30d", dtype=Int64),
        Field(name="total_spend_30d", dtype=Decimal),
        Field(name="avg_order_value_30d", dtype=Decimal),
        Field(name="last_order_ts", dtype=UnixTimestamp),  # recency (365 days), whole seconds
        Field(name="last_order_ts_us", dtype=Int64),  # the same instant, exact (µs)
    ],
    source=customer_push,
    online=True,
)

read_time = RequestSource(name="read_time", schema=[Field(name="read_ts_us", dtype=Int64)])


@on_demand_feature_view(
    sources=[customer_features[["last_order_ts_us"]], read_time],
    mode="python",
    schema=[Field(name="days_since_last_order", dtype=Int64)],
)
def customer_recency(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Whole days from the last order to the read time (floor), at request time."""
    day_us = 86_400_000_000
    return {
        "days_since_last_order": [
            None if last is None or now is None else (now - last) // day_us
            for last, now in zip(inputs["last_order_ts_us"], inputs["read_ts_us"], strict=True)
        ]
    }


# endregion

product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.INT64)

product_push = PushSource(
    name="product_features_push",
    batch_source=FileSource(
        name="product_features_offline",
        path="data/product_features.parquet",
        timestamp_field="event_timestamp",
    ),
)

product_features = FeatureView(
    name="product_features",
    entities=[product],
    ttl=timedelta(days=PRODUCT.ttl_days),
    schema=[
        Field(name="units_sold_7d", dtype=Int64),
        Field(name="revenue_7d", dtype=Decimal),
        Field(name="unique_customers_7d", dtype=Int64),
    ],
    source=product_push,
    online=True,
)

ALL_OBJECTS = [
    customer,
    product,
    customer_push,
    product_push,
    customer_features,
    product_features,
    read_time,
    customer_recency,
]
