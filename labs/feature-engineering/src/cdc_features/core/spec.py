"""The feature spec: every window, state horizon, expiry, key prefix and name, declared once.

The job (watermarks), the read-time definitions (windows), the stores (key layout, expiry),
the monitoring (which keys to look at) and the Feast repository (feature-view TTLs) all read
these values; the batch reference keeps its own literals on purpose (it is the independent
oracle) and a test checks that the two agree.

Time is counted in whole UTC calendar days: the ``window_days``-day window at read time T
holds the days ``[day(T) - (window_days - 1), day(T)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

DAY_SECONDS = 86_400
CANCELLED = "cancelled"  # the orders.status value of a cancelled order (not counted)
MONEY_SCALE = 2  # DECIMAL(10,2) in the course database; money stays Decimal end to end

# The event-time guard: an order version whose ``order_date`` is more than this ahead of its
# commit time (``source.ts_ms``) is a typo, not a time zone (a local time written without an
# offset is at most 14 h ahead of UTC; the rest is clock skew). It does not count and never
# reaches a watermark; the message is also reported as a dead letter ``future_event_time``.
# FEATURES.md argues the value; the job takes it from its configuration (--future-tolerance).
FUTURE_TOLERANCE = timedelta(days=1)

# Recency (``last_order_ts`` / ``days_since_last_order``) looks back over this many UTC days
# ending with T's day; it is also the customer tiles' state horizon (watermark delay).
RECENCY_HORIZON_DAYS = 365


@dataclass(frozen=True)
class EntitySpec:
    """One kind of entity whose features are rolling sums over whole UTC days.

    ``window_days`` is the read-time window of the rolling sums; ``lookback_days`` (the
    longest lookback of any of the entity's features: ``horizon_days``, else the window) is
    the event-time watermark delay of its streaming query: a fact more than that many days
    behind the newest event time cannot change a feature read at (or after) the newest event
    time, so its state may go. A stored daily fact is kept one day longer than its window
    (``ttl_days``), so a read during the last day of the window still finds it.
    """

    entity: str  # Feast entity name
    id_column: str  # join key / column of the entity id
    key_prefix: str  # Redis key prefix (stores/layout.py: ``<prefix>:<id>[:<yyyymmdd>]``)
    window_days: int
    features: tuple[str, ...]  # the feature names read at T, in serving order
    horizon_days: int | None = None  # a feature looking back further than the window

    @property
    def ttl_days(self) -> int:
        """Days after the end of its day that a stored daily fact is kept."""
        return self.window_days + 1

    @property
    def lookback_days(self) -> int:
        """How far back (in days) any feature of the entity looks: the watermark delay."""
        return max(self.window_days, self.horizon_days or 0)


@dataclass(frozen=True)
class RecencySpec:
    """The customer's recency facts: per customer, the newest counted order of each UTC day
    of the horizon (a Redis sorted set ``<prefix>:<id>``: member ``yyyymmdd``, score = that
    day's newest order time in µs). At most ``horizon_days`` members per customer (the newest
    days: all a read's horizon can hold); the key expires ``ttl_days`` after the end of its
    newest day."""

    key_prefix: str
    horizon_days: int

    @property
    def ttl_days(self) -> int:
        """Days after the end of its newest day that a customer's recency key is kept."""
        return self.horizon_days + 1


CUSTOMER = EntitySpec(
    entity="customer",
    id_column="customer_id",
    key_prefix="cf",
    window_days=30,
    features=(
        "order_count_30d",
        "total_spend_30d",
        "avg_order_value_30d",
        "last_order_ts",
        "days_since_last_order",
    ),
    horizon_days=RECENCY_HORIZON_DAYS,  # last_order_ts / days_since_last_order
)
RECENCY = RecencySpec(key_prefix="cr", horizon_days=RECENCY_HORIZON_DAYS)
PRODUCT = EntitySpec(
    entity="product",
    id_column="product_id",
    key_prefix="pf",
    window_days=7,
    features=("units_sold_7d", "revenue_7d", "unique_customers_7d"),
)

CUSTOMER_WINDOW_DAYS = CUSTOMER.window_days
PRODUCT_WINDOW_DAYS = PRODUCT.window_days

# The low-latency path (Real-Time Mode): a stateless query turns order events into per-order
# facts of customers on a Kafka topic; a writer outside Spark applies them to one hash per
# customer (``<prefix>:<customer_id>``, a field per order). The customer features are
# computed from those facts when read, with the same windows as above.
ORDER_FACTS_PREFIX = "co"
REALTIME_QUERY = "customer_order_facts"
ORDER_FACTS_TOPIC = "cdc_features.customer_order_facts"
REALTIME_DEAD_LETTER_TOPIC = "cdc_features.dead_letters"

# Names of the job's streaming queries (also the monitoring's ``query`` label and the
# checkpoint sub-folders).
CUSTOMER_QUERY = "customer_features"
PRODUCT_QUERY = "product_features"
DEAD_LETTER_QUERY = "dead_letters"
