"""The online store's key layout and value codecs, written once.

The store keeps **absolute daily facts**; the rolling windows are applied at read time.

* customer tiles — one hash ``cf:{customer_id}`` per customer, one field per UTC day with a
  counted order: ``yyyymmdd`` = ``order_count|total_spend|last_order_ts_us`` (count; decimal
  text, 2 places; µs since the epoch, UTC, empty when unknown). A write keeps only the days
  within ``TILE_KEEP_DAYS`` of the newest day in the hash (older fields are removed by the
  same atomic write: Redis 7.0 has no per-field TTL), so a read is one ``HGETALL`` of at most
  ``TILE_KEEP_DAYS + 1`` fields, whatever the customer's history;
* customer recency — sorted set ``cr:{customer_id}``: one member per UTC day with a counted
  order (``yyyymmdd``), scored with that day's newest order time (µs since the epoch); the
  newest member inside the 365-day horizon is ``last_order_ts``;
* product lines — hash ``pf:{product_id}:{yyyymmdd}``, one field per order line
  ``{order_id}:{item_id}`` = ``units|revenue|customer_id``;
* customer order facts (the Real-Time Mode path) — hash ``co:{customer_id}``, one field per
  order ``{order_id}`` = ``lsn|rank|active|amount|order_ts_us|keep_us`` (see
  :mod:`cdc_features.stores.order_facts`), plus ``_newest_us`` (the newest order time the
  customer's facts carried) and ``_pruned_day``.

A customer's tile hash expires at the end of its newest day plus ``EntitySpec.ttl_days``; a
product-day hash at the end of its day plus ``ttl_days``; a recency set at the end of its newest
day plus ``RecencySpec.ttl_days``. Pure functions: the Redis store, the monitoring's read
checks and the tests share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cdc_features.core.definitions import Line, Recency, Tile, window_days
from cdc_features.core.spec import (
    CUSTOMER,
    DAY_SECONDS,
    ORDER_FACTS_PREFIX,
    PRODUCT,
    RECENCY,
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

#: days before the newest day of a customer's tile hash that a write keeps: every day a read
#: at T can sum when T's day is at most two days before the newest day (the event-time guard
#: lets an order be dated up to one day ahead of its commit, and reads happen after commits)
TILE_KEEP_DAYS = CUSTOMER.ttl_days
#: every feature key of both entities (for SCAN)
FEATURE_KEY_PATTERN = f"[{CUSTOMER.key_prefix[0]}{PRODUCT.key_prefix[0]}]f:*"


@lru_cache(maxsize=4096)
def _yyyymmdd(day: date) -> str:
    return f"{day:%Y%m%d}"  # strftime is slow; a partition holds few distinct days


def fact_key(spec: EntitySpec, entity_id: int, day: date) -> str:
    """Key of one entity's facts of one UTC day."""
    return f"{spec.key_prefix}:{entity_id}:{_yyyymmdd(day)}"


def customer_key(customer_id: int) -> str:
    """Redis key of a customer's tile hash (a field per day)."""
    return f"{CUSTOMER.key_prefix}:{customer_id}"


def tile_field(day: date) -> str:
    """The field of one day's tile in the customer's tile hash."""
    return _yyyymmdd(day)


@lru_cache(maxsize=65536)
def day_of_field(field: bytes | str) -> date:
    """The UTC day of a ``yyyymmdd`` field or member."""
    text = _text(field)
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def product_key(product_id: int, day: date) -> str:
    """Redis key of a product's order lines of one day."""
    return fact_key(PRODUCT, product_id, day)


def entity_id_of(key: str | bytes) -> int:
    """The entity id of a fact key (``cf:42``, ``pf:7:20260301``, ``cr:42`` → the number)."""
    return int(_text(key).split(":")[1])


def window_dates(at: datetime, days: int) -> list[date]:
    """The UTC days of the ``days``-day window ending with ``at``'s day, oldest first."""
    first, last = window_days(at, days)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def window_keys(spec: EntitySpec, entity_id: int, at: datetime) -> list[tuple[date, str]]:
    """``(day, key)`` of every day-keyed fact (product lines) a read at ``at`` may use."""
    if spec is CUSTOMER:
        raise ValueError("customer tiles are one hash per customer: use customer_key()")
    return [(day, fact_key(spec, entity_id, day)) for day in window_dates(at, spec.window_days)]


def recency_key(customer_id: int) -> str:
    """Redis key of a customer's recency facts (a sorted set of days)."""
    return f"{RECENCY.key_prefix}:{customer_id}"


def recency_member(day: date) -> str:
    """The sorted-set member of one day's recency fact."""
    return _yyyymmdd(day)


def day_start_micros(day: date) -> int:
    """µs since the epoch at the start of a UTC day."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_SECONDS * 1_000_000


def recency_score_range(at: datetime) -> tuple[int, int]:
    """``(min, max)`` score of the horizon read at ``at`` (both inclusive, µs): from the start
    of its first day to the last µs of T's day."""
    first, last = window_days(at, RECENCY.horizon_days)
    return day_start_micros(first), day_start_micros(last + timedelta(days=1)) - 1


def decode_recency(member: bytes | str, score: float) -> Recency:
    """A :class:`Recency` fact from a sorted-set member and its score."""
    return Recency(day_of_field(member), from_micros(int(score)))


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
) -> str:
    """The value of one day's field in the customer's tile hash (the whole tile: written
    with one ``HSET`` of the field)."""
    last = to_micros(last_order_ts) if last_order_ts is not None else ""
    return f"{int(order_count)}|{money(total_spend)}|{last}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_tile(field: bytes | str, value: bytes | str) -> Tile:
    """A :class:`Tile` from one field of a customer's tile hash."""
    count, spend, last = _text(value).split("|")
    return Tile(
        day_of_field(field), int(count), Decimal(spend), from_micros(int(last)) if last else None
    )


def decode_tiles(reply: Mapping[Any, Any] | Sequence[Any]) -> list[Tile]:
    """The tiles of a customer's tile hash: an ``HGETALL`` mapping or a flat
    ``[day, value, day, value, ...]`` list (a function's reply)."""
    if isinstance(reply, Mapping):
        return [decode_tile(f, v) for f, v in reply.items()]
    return [decode_tile(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


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
    order_ts: datetime | None  # None: no plausible order_date (an inactive fact)
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
                from_micros(int(order_us)) if order_us else None,
                int(keep_us),
            )
        )
    return out


def order_fact_tiles(facts: Iterable[OrderFact]) -> list[Tile]:
    """The active facts as one-order tiles, for ``customer_features_from_tiles``."""
    return [
        Tile(f.order_ts.date(), 1, f.amount or Decimal("0.00"), f.order_ts)
        for f in facts
        if f.active and f.order_ts is not None
    ]
