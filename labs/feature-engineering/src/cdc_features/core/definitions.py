"""The feature definitions at read time T, in plain Python.

Streaming keeps absolute per-day facts (customer *tiles*, product order *lines*); the
rolling features are computed when they are read, from the facts of the window that ends
with T's UTC day. That is why a customer who stops ordering decays to zero without any
new event, and why ``days_since_last_order`` is never stale. The Redis reader, the Feast
reader and the tests all call these functions.

Windows are UTC calendar days: the 30-day window at T holds the days
``[day(T) - 29 days, day(T)]``, the 7-day window ``[day(T) - 6 days, day(T)]``, the recency
horizon ``[day(T) - 364 days, day(T)]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from cdc_features.core.spec import (
    CUSTOMER_WINDOW_DAYS,
    PRODUCT_WINDOW_DAYS,
    RECENCY_HORIZON_DAYS,
)

__all__ = [
    "CUSTOMER_WINDOW_DAYS",
    "PRODUCT_WINDOW_DAYS",
    "RECENCY_HORIZON_DAYS",
    "CustomerFeatures",
    "Line",
    "ProductFeatures",
    "Recency",
    "Tile",
    "can_count",
    "customer_features_from_tiles",
    "customer_features_from_totals",
    "last_order_in_horizon",
    "product_features_from_lines",
    "recency_of_tiles",
    "window_days",
]

CENTS = Decimal("0.01")
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CustomerFeatures:
    """Features of one customer read at time T.

    - ``order_count_30d``: counted orders (latest version exists, status not ``cancelled``)
      whose ``order_date`` falls in the 30 UTC days ending with T's day.
    - ``total_spend_30d``: sum of their latest ``total_amount`` (2 places; ``0.00`` when none).
    - ``avg_order_value_30d``: ``total_spend_30d / order_count_30d`` rounded half-even to
      2 places; ``None`` when there is no order.
    - ``last_order_ts`` (recency, a current-state feature): the latest ``order_date`` among
      the customer's counted orders in the 365 UTC days ending with T's day (not only the 30-day
      window); ``None`` only when there is none in that horizon. Cancelling, deleting or
      moving the newest order makes the previous one the newest again.
    - ``days_since_last_order``: whole days from ``last_order_ts`` to T, floored, computed at
      read time; ``None`` when ``last_order_ts`` is ``None``. (An order later on T's own day
      gives ``-1``: the horizon includes all of T's day.)
    """

    customer_id: int
    order_count_30d: int
    total_spend_30d: Decimal
    avg_order_value_30d: Decimal | None
    last_order_ts: datetime | None
    days_since_last_order: int | None


@dataclass(frozen=True)
class ProductFeatures:
    """Features of one product read at time T, over the 7 UTC days ending with T's day.

    An order line counts when its item's latest version exists and its order is counted;
    its day is the order's ``order_date`` day.

    - ``units_sold_7d``: sum of ``quantity``.
    - ``revenue_7d``: sum of ``quantity * unit_price`` (2 places; ``0.00`` when none).
    - ``unique_customers_7d``: exact number of distinct customers of those lines.
    """

    product_id: int
    units_sold_7d: int
    revenue_7d: Decimal
    unique_customers_7d: int


@dataclass(frozen=True)
class Tile:
    """A customer's counted orders of one UTC day (an absolute value, not a delta)."""

    day: date
    order_count: int
    total_spend: Decimal
    last_order_ts: datetime | None


@dataclass(frozen=True)
class Recency:
    """A customer's newest counted order of one UTC day (the recency fact of that day)."""

    day: date
    last_order_ts: datetime


@dataclass(frozen=True)
class Line:
    """One active order line of a product, on its order's ``order_date`` UTC day."""

    day: date
    order_id: int
    item_id: int
    customer_id: int
    units: int
    revenue: Decimal


def _utc(at: datetime) -> datetime:
    if at.tzinfo is UTC:  # the common case, on every read: no conversion
        return at
    if at.tzinfo is None:
        raise ValueError("read time must be timezone-aware (UTC)")
    return at.astimezone(UTC)


def window_days(at: datetime, days: int) -> tuple[date, date]:
    """First and last UTC day (both inclusive) of the ``days``-day window ending with T's day."""
    last = _utc(at).date()
    return last - timedelta(days=days - 1), last


def recency_of_tiles(tiles: Iterable[Tile]) -> list[Recency]:
    """The recency facts of daily tiles: one per tile with a counted order."""
    return [
        Recency(t.day, _utc(t.last_order_ts))
        for t in tiles
        if t.order_count and t.last_order_ts is not None
    ]


def last_order_in_horizon(recency: Iterable[Recency], at: datetime) -> datetime | None:
    """The newest order time among the recency facts of the 365 UTC days ending with T's day
    (facts of other days are ignored); ``None`` when there is none."""
    first, last = window_days(at, RECENCY_HORIZON_DAYS)
    newest: datetime | None = None
    for fact in recency:
        if first <= fact.day <= last:
            ts = _utc(fact.last_order_ts)
            if newest is None or ts > newest:
                newest = ts
    return newest


def can_count(day: date, newest: date, days: int) -> bool:
    """The lateness rule: can a fact of ``day`` count in a ``days``-day lookback read at any
    T at or after an event of day ``newest``?

    The earliest such window starts ``days - 1`` days before ``newest``; a fact older than
    that is outside every window a T at or after the newest event time can read, so a
    store may drop it (and a fact already stored may go). It is the rule behind the
    micro-batch queries' watermark delay (``EntitySpec.lookback_days``), applied here without
    streaming state.
    """
    return day >= newest - timedelta(days=days - 1)


def customer_features_from_tiles(
    customer_id: int, tiles: Iterable[Tile], recency: Iterable[Recency], at: datetime
) -> CustomerFeatures:
    """The customer's features at ``at`` from its daily tiles (the 30-day sums; tiles outside
    the window are ignored) and its recency facts (``last_order_ts``, over the 365-day
    horizon; a store holding every tile passes :func:`recency_of_tiles` of them)."""
    at = _utc(at)
    first, last = window_days(at, CUSTOMER_WINDOW_DAYS)
    count = 0
    total = Decimal("0.00")
    for tile in tiles:
        if not first <= tile.day <= last or tile.order_count == 0:
            continue
        count += tile.order_count
        total += tile.total_spend
    return customer_features_from_totals(
        customer_id, count, total, last_order_in_horizon(recency, at), at
    )


def customer_features_from_totals(
    customer_id: int,
    order_count: int,
    total_spend: Decimal,
    last_order_ts: datetime | None,
    at: datetime,
) -> CustomerFeatures:
    """The customer's features at ``at`` from the sums of the tiles of the 30-day window
    ending with ``at``'s UTC day (a store that sums them where they are stored passes its
    sums) and the newest order time in the 365-day horizon (``None`` when none)."""
    at = _utc(at)
    total = total_spend.quantize(CENTS)
    count = order_count
    avg = (total / count).quantize(CENTS, rounding=ROUND_HALF_EVEN) if count else None
    last_ts = _utc(last_order_ts) if last_order_ts is not None else None
    days_since = (at - last_ts) // ONE_DAY if last_ts is not None else None
    return CustomerFeatures(customer_id, count, total, avg, last_ts, days_since)


def product_features_from_lines(
    product_id: int, lines: Iterable[Line], at: datetime
) -> ProductFeatures:
    """The product's features at ``at`` from its active order lines (others are ignored)."""
    first, last = window_days(at, PRODUCT_WINDOW_DAYS)
    units = 0
    revenue = Decimal("0.00")
    customers: set[int] = set()
    for line in lines:
        if not first <= line.day <= last:
            continue
        units += line.units
        revenue += line.revenue
        customers.add(line.customer_id)
    return ProductFeatures(product_id, units, revenue.quantize(CENTS), len(customers))
