"""The online store's key layout and value codecs, written once.

The store keeps **absolute daily facts**; the rolling windows are applied at read time.

* customer tile — hash ``cf:{customer_id}:{yyyymmdd}`` with fields ``order_count`` (int),
  ``total_spend`` (decimal text, 2 places) and ``last_order_ts_us`` (µs since the epoch,
  UTC; empty when unknown);
* product lines — hash ``pf:{product_id}:{yyyymmdd}``, one field per order line
  ``{order_id}:{item_id}`` = ``units|revenue|customer_id``;
* customer order facts (the Real-Time Mode path) — hash ``co:{customer_id}``, one field per
  order ``{order_id}`` = ``lsn|rank|active|amount|order_ts_us|keep_us`` (see
  :mod:`cdc_features.stores.order_facts`), plus ``_newest_us`` (the newest order time the
  customer's facts carried) and ``_pruned_day``.

A fact of day D expires at the end of D plus ``EntitySpec.ttl_days``. Pure functions: the
Redis store, the monitoring's read checks and the tests share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cdc_features.core.definitions import Line, Tile, window_days
from cdc_features.core.spec import (
    CUSTOMER,
    DAY_SECONDS,
    ORDER_FACTS_PREFIX,
    PRODUCT,
    EntitySpec,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
CENTS = Decimal("0.01")

#: the columns of a tile row and of a product line row that a store keeps
TILE_COLUMNS = ("customer_id", "day", "order_count", "total_spend", "last_order_ts")
LINE_COLUMNS = (
    "product_id",
    "day",
    "order_id",
    "item_id",
    "customer_id",
    "units",
    "revenue",
    "active",
)

TILE_ORDER_COUNT = "order_count"
TILE_TOTAL_SPEND = "total_spend"
TILE_LAST_ORDER_US = "last_order_ts_us"
#: every feature key of both entities (for SCAN)
FEATURE_KEY_PATTERN = f"[{CUSTOMER.key_prefix[0]}{PRODUCT.key_prefix[0]}]f:*"


@lru_cache(maxsize=4096)
def _yyyymmdd(day: date) -> str:
    return f"{day:%Y%m%d}"  # strftime is slow; a partition holds few distinct days


def fact_key(spec: EntitySpec, entity_id: int, day: date) -> str:
    """Key of one entity's facts of one UTC day."""
    return f"{spec.key_prefix}:{entity_id}:{_yyyymmdd(day)}"


def customer_key(customer_id: int, day: date) -> str:
    """Redis key of a customer's daily tile."""
    return fact_key(CUSTOMER, customer_id, day)


def product_key(product_id: int, day: date) -> str:
    """Redis key of a product's order lines of one day."""
    return fact_key(PRODUCT, product_id, day)


def entity_id_of(key: str | bytes) -> int:
    """The entity id of a fact key (``cf:42:20260301`` → 42)."""
    return int(_text(key).split(":")[1])


def window_dates(at: datetime, days: int) -> list[date]:
    """The UTC days of the ``days``-day window ending with ``at``'s day, oldest first."""
    first, last = window_days(at, days)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def window_keys(spec: EntitySpec, entity_id: int, at: datetime) -> list[tuple[date, str]]:
    """``(day, key)`` of every fact an entity's features read at ``at`` may use."""
    return [(day, fact_key(spec, entity_id, day)) for day in window_dates(at, spec.window_days)]


def to_micros(ts: datetime) -> int:
    """µs since the epoch of a datetime (naive = UTC, as Spark returns session-UTC timestamps)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    delta = aware - EPOCH
    return (delta.days * DAY_SECONDS + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The UTC datetime of µs since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def expire_at(day: date, ttl_days: int, now: float, min_ttl_seconds: int) -> int:
    """Unix time when a fact of ``day`` may go: day end + ``ttl_days``, never before now + min TTL.

    A fact whose day has already left every window (a replay of old history) would expire at
    once; it lives ``min_ttl_seconds`` from the write instead, so a replay stays readable.
    """
    day_end = (day.toordinal() - _EPOCH_ORDINAL + 1) * DAY_SECONDS  # integer maths: once per row
    return max(day_end + ttl_days * DAY_SECONDS, int(now) + min_ttl_seconds)


def money(value: Decimal | None) -> str:
    """Money as stored: decimal text with 2 places (``None`` → ``0.00``)."""
    return format((value or Decimal(0)).quantize(CENTS), "f")


def encode_tile(
    order_count: int, total_spend: Decimal | None, last_order_ts: datetime | None
) -> dict[str, Any]:
    """The hash fields of a customer tile (the whole value: written with one ``HSET``)."""
    return {
        TILE_ORDER_COUNT: int(order_count),
        TILE_TOTAL_SPEND: money(total_spend),
        TILE_LAST_ORDER_US: to_micros(last_order_ts) if last_order_ts is not None else "",
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_tile(day: date, fields: Mapping[Any, Any]) -> Tile | None:
    """A :class:`Tile` from a stored hash (``None`` when the hash is empty)."""
    if not fields:
        return None
    data = {_text(k): _text(v) for k, v in fields.items()}
    last = data.get(TILE_LAST_ORDER_US, "")
    return Tile(
        day,
        int(data[TILE_ORDER_COUNT]),
        Decimal(data[TILE_TOTAL_SPEND]),
        from_micros(int(last)) if last else None,
    )


def line_field(order_id: int, item_id: int) -> str:
    """The hash field of one order line in its product-day hash."""
    return f"{order_id}:{item_id}"


def encode_line(units: int, revenue: Decimal | None, customer_id: int) -> str:
    """The value of one active order line."""
    return f"{int(units)}|{money(revenue)}|{customer_id}"


def decode_lines(day: date, fields: Mapping[Any, Any]) -> list[Line]:
    """The :class:`Line` values of a stored product-day hash."""
    out = []
    for field, value in fields.items():
        order_id, item_id = _text(field).split(":")
        units, revenue, customer_id = _text(value).split("|")
        out.append(
            Line(day, int(order_id), int(item_id), int(customer_id), int(units), Decimal(revenue))
        )
    return out


@dataclass(frozen=True)
class OrderFact:
    """The stored fact of one order at one customer (the Real-Time Mode path).

    ``lsn`` and ``rank`` (1 = after image, 0 = retraction) order the versions; ``keep_us``
    is the newest order time among all versions the field was offered, and decides when
    the field may be pruned (never while a replay of one of its versions could count).
    """

    order_id: int
    lsn: int
    rank: int
    active: bool
    amount: Decimal | None
    order_ts: datetime
    keep_us: int


ORDER_FACT_NEWEST = "_newest_us"
ORDER_FACT_PRUNED_DAY = "_pruned_day"


def order_facts_key(customer_id: int) -> str:
    """Redis key of a customer's per-order facts."""
    return f"{ORDER_FACTS_PREFIX}:{customer_id}"


def decode_order_facts(fields: Mapping[Any, Any]) -> list[OrderFact]:
    """The :class:`OrderFact` values of a stored customer hash (bookkeeping fields skipped)."""
    out = []
    for field, value in fields.items():
        name = _text(field)
        if name.startswith("_"):
            continue
        lsn, rank, active, amount, order_us, keep_us = _text(value).split("|")
        out.append(
            OrderFact(
                int(name),
                int(lsn),
                int(rank),
                active == "1",
                Decimal(amount) if amount else None,
                from_micros(int(order_us)),
                int(keep_us),
            )
        )
    return out


def order_fact_tiles(facts: Iterable[OrderFact]) -> list[Tile]:
    """The active facts as one-order tiles, for ``customer_features_from_tiles``."""
    return [
        Tile(f.order_ts.date(), 1, f.amount or Decimal("0.00"), f.order_ts)
        for f in facts
        if f.active
    ]
