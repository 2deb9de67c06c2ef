"""Redis as the online feature store: absolute daily facts written from the executors.

Layout (one hash per entity and UTC day; the rolling features are computed at read time):

* customer tiles — hash ``cf:{customer_id}:{yyyymmdd}`` with fields ``order_count``,
  ``total_spend`` (decimal text, 2 places) and ``last_order_ts_us`` (µs since the epoch);
  a tile with 0 orders is deleted. ``EXPIREAT`` = the day's end + 31 days.
* product lines — hash ``pf:{product_id}:{yyyymmdd}``, one field per order line
  ``{order_id}:{item_id}`` = ``units|revenue|customer_id``; an inactive line is ``HDEL``-ed.
  ``EXPIREAT`` = the day's end + 8 days.

Every write sets the whole value (``HSET``, never ``HINCRBY``), so replaying a micro-batch
leaves the same store. ``EXPIREAT`` is set again after every write (``HSET`` keeps an old
TTL). A fact whose day has already left every window (a replay of old history) would expire
at once; it gets ``MIN_TTL_SECONDS`` from the write instead, so replays stay readable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

import redis
from pyspark.sql import DataFrame, Row

from cdc_features.definitions import (
    CUSTOMER_WINDOW_DAYS, PRODUCT_WINDOW_DAYS, CustomerFeatures, Line, ProductFeatures, Tile,
    customer_features_from_tiles, product_features_from_lines, window_days,
)

REDIS_URL_ENV = "FEATURE_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FLUSH_EVERY = 500
CUSTOMER_TTL_DAYS = CUSTOMER_WINDOW_DAYS + 1
PRODUCT_TTL_DAYS = PRODUCT_WINDOW_DAYS + 1
MIN_TTL_SECONDS = 86_400
# A Redis that stops answering fails the micro-batch after this long (the query stops with
# redis.TimeoutError and resumes from its checkpoint when restarted) instead of hanging it.
SOCKET_TIMEOUT_SECONDS = 30.0
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class StoreConfig:
    """Where and how the sink writes (captured in the closure shipped to the executors)."""

    url: str
    flush_every: int = FLUSH_EVERY
    min_ttl_seconds: int = MIN_TTL_SECONDS
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS

    def client(self) -> redis.Redis:
        """A client with connect and read timeouts."""
        return redis.Redis.from_url(self.url, socket_timeout=self.socket_timeout,
                                    socket_connect_timeout=self.socket_timeout)


_config: StoreConfig | None = None


def configure_feature_store(url: str, *, flush_every: int = FLUSH_EVERY,
                            min_ttl_seconds: int = MIN_TTL_SECONDS,
                            socket_timeout: float = SOCKET_TIMEOUT_SECONDS) -> None:
    """Point the sink at a Redis server (else env ``FEATURE_REDIS_URL``, else 127.0.0.1:6379)."""
    global _config
    _config = StoreConfig(url, flush_every, min_ttl_seconds, socket_timeout)


def store_config() -> StoreConfig:
    """The configuration in effect on the driver."""
    if _config is not None:
        return _config
    return StoreConfig(os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL))


@lru_cache(maxsize=4096)
def _yyyymmdd(day: date) -> str:
    return f"{day:%Y%m%d}"  # strftime is slow; a partition holds few distinct days


def customer_key(customer_id: int, day: date) -> str:
    """Redis key of a customer's daily tile."""
    return f"cf:{customer_id}:{_yyyymmdd(day)}"


def product_key(product_id: int, day: date) -> str:
    """Redis key of a product's order lines of one day."""
    return f"pf:{product_id}:{_yyyymmdd(day)}"


def to_micros(ts: datetime) -> int:
    """µs since the epoch of a datetime (naive = UTC, as Spark returns session-UTC timestamps)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
    delta = aware - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The UTC datetime of µs since the epoch."""
    return EPOCH + timedelta(microseconds=us)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def expire_at(day: date, ttl_days: int, now: float, min_ttl_seconds: int) -> int:
    """Unix time when a fact of ``day`` may go: day end + ``ttl_days``, never before now + min TTL."""
    day_end = (day.toordinal() - _EPOCH_ORDINAL + 1) * 86_400  # integer maths: once per row
    return max(day_end + ttl_days * 86_400, int(now) + min_ttl_seconds)


def _money(value: Decimal | None) -> str:
    return format((value or Decimal(0)).quantize(Decimal("0.01")), "f")


def _write_partition(rows: Iterator[Row], *, config: StoreConfig,
                     write_row: Callable[[Any, Row, float, StoreConfig], None]) -> None:
    """One client and one non-transactional pipeline per partition, flushed every N rows."""
    import time as _time

    client = config.client()
    try:
        pipe = client.pipeline(transaction=False)
        pending = 0
        now = _time.time()
        for row in rows:
            write_row(pipe, row, now, config)
            pending += 1
            if pending >= config.flush_every:
                pipe.execute()
                pending = 0
        if pending:
            pipe.execute()
    finally:
        client.close()


def _write_line(pipe: Any, row: Row, now: float, config: StoreConfig) -> None:
    key = product_key(row["product_id"], row["day"])
    field = f"{row['order_id']}:{row['item_id']}"
    if not row["active"]:
        pipe.hdel(key, field)
        return
    pipe.hset(key, field, f"{int(row['units'])}|{_money(row['revenue'])}|{row['customer_id']}")
    pipe.expireat(key, expire_at(row["day"], PRODUCT_TTL_DAYS, now, config.min_ttl_seconds))


def _latest_lines(rows: Iterator[Row]) -> Iterator[Row]:
    """Per line and day, only the row with the highest LSN (an active row wins a tie)."""
    best: dict[tuple[int, date, int, int], Row] = {}
    for row in rows:
        key = (row["product_id"], row["day"], row["order_id"], row["item_id"])
        rank = (row["lsn"] if row["lsn"] is not None else -1, bool(row["active"]))
        old = best.get(key)
        if old is None or rank >= (old["lsn"] if old["lsn"] is not None else -1, bool(old["active"])):
            best[key] = row
    return iter(best.values())


def _write_lines_partition(rows: Iterator[Row], *, config: StoreConfig) -> None:
    _write_partition(_latest_lines(rows), config=config, write_row=_write_line)


# region write_to_feature_store
def write_tile(pipe: Any, row: Row, now: float, config: StoreConfig) -> None:
    """Queue the absolute value of one customer tile (a 0-order tile is removed)."""
    key = customer_key(row["customer_id"], row["day"])
    if not row["order_count"]:
        pipe.delete(key)
        return
    last = row["last_order_ts"]
    pipe.hset(key, mapping={
        "order_count": int(row["order_count"]),
        "total_spend": _money(row["total_spend"]),
        "last_order_ts_us": to_micros(last) if last is not None else "",
    })  # HSET of every field, never HINCRBY: a replayed batch writes the same
    pipe.expireat(key, expire_at(row["day"], CUSTOMER_TTL_DAYS, now, config.min_ttl_seconds))


def write_to_feature_store(batch_df: DataFrame, batch_id: int) -> None:
    """foreachBatch sink: store each changed customer tile in Redis.

    A tile is ``(customer_id, day)`` → its absolute order count, spend and last
    order time, so writing the same micro-batch twice (a retry after a failure)
    leaves the same store. The executors write, one pipelined connection per
    partition; nothing is collected to the driver.
    """
    config = store_config()  # read on the driver, shipped inside the closure
    write = partial(_write_partition, config=config, write_row=write_tile)
    batch_df.select(
        "customer_id", "day", "order_count", "total_spend", "last_order_ts"
    ).foreachPartition(write)
# endregion


def write_product_features(batch_df: DataFrame, batch_id: int) -> None:
    """foreachBatch sink: store the absolute state of each changed product order line."""
    config = store_config()
    batch_df.select(
        "product_id", "day", "order_id", "item_id", "customer_id", "units", "revenue",
        "active", "lsn",
    ).foreachPartition(partial(_write_lines_partition, config=config))


def write_rows_from_driver(batch_df: DataFrame) -> None:
    """The naive way, kept only to measure it: ``collect()`` + one Redis call per row."""
    config = store_config()
    client = config.client()
    try:
        import time as _time

        now = _time.time()
        for row in batch_df.collect():
            key = customer_key(row["customer_id"], row["day"])
            if not row["order_count"]:
                client.delete(key)
                continue
            client.hset(key, mapping={
                "order_count": int(row["order_count"]),
                "total_spend": _money(row["total_spend"]),
                "last_order_ts_us": to_micros(row["last_order_ts"]) if row["last_order_ts"] else "",
            })
            client.expireat(key, expire_at(row["day"], CUSTOMER_TTL_DAYS, now, config.min_ttl_seconds))
    finally:
        client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def tile_from_hash(day: date, fields: dict[Any, Any]) -> Tile | None:
    """A :class:`Tile` from a stored hash (``None`` when the hash is empty)."""
    if not fields:
        return None
    data = {_text(k): _text(v) for k, v in fields.items()}
    last = data.get("last_order_ts_us", "")
    return Tile(day, int(data["order_count"]), Decimal(data["total_spend"]),
                from_micros(int(last)) if last else None)


def lines_from_hash(day: date, fields: dict[Any, Any]) -> list[Line]:
    """The :class:`Line` values of a stored product-day hash."""
    out = []
    for field, value in fields.items():
        order_id, item_id = _text(field).split(":")
        units, revenue, customer_id = _text(value).split("|")
        out.append(Line(day, int(order_id), int(item_id), int(customer_id), int(units), Decimal(revenue)))
    return out


def _days(at: datetime, n: int) -> list[date]:
    first, last = window_days(at, n)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# region read_customer_features
def read_customer_features(client: redis.Redis, customer_id: int,
                           at: datetime) -> CustomerFeatures:
    """The customer's features at read time ``at`` (timezone-aware UTC).

    Reads the 30 daily tiles of the window that ends with ``at``'s UTC day in one
    round trip; the rolling sums and ``days_since_last_order`` are computed now,
    so a customer who stopped ordering decays to zero without any new event.
    """
    days = _days(at, CUSTOMER_WINDOW_DAYS)
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(customer_key(customer_id, day))
    tiles = [tile_from_hash(day, fields) for day, fields in zip(days, pipe.execute())]
    return customer_features_from_tiles(customer_id, [t for t in tiles if t], at)
# endregion


def read_product_features(client: redis.Redis, product_id: int, at: datetime) -> ProductFeatures:
    """The product's features at read time ``at`` (the 7 UTC days ending with its day)."""
    days = _days(at, PRODUCT_WINDOW_DAYS)
    pipe = client.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(product_key(product_id, day))
    lines = [line for day, fields in zip(days, pipe.execute()) for line in lines_from_hash(day, fields)]
    return product_features_from_lines(product_id, lines, at)


def stored_ids(client: redis.Redis, prefix: str) -> set[int]:
    """Entity ids that have at least one stored fact (``prefix`` ``cf`` or ``pf``)."""
    return {int(_text(key).split(":")[1]) for key in client.scan_iter(f"{prefix}:*", count=1000)}


def dump_store(client: redis.Redis) -> dict[str, dict[str, str]]:
    """Every feature hash as text (for comparing two stores in tests and benchmarks)."""
    out = {}
    for key in client.scan_iter("[cp]f:*", count=1000):
        out[_text(key)] = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
    return out


def read_all_customer_features(client: redis.Redis, at: datetime,
                               ids: Iterable[int] | None = None) -> dict[int, CustomerFeatures]:
    """Features at ``at`` of the given customers (default: every customer in the store)."""
    return {cid: read_customer_features(client, cid, at)
            for cid in sorted(ids if ids is not None else stored_ids(client, "cf"))}


def read_all_product_features(client: redis.Redis, at: datetime,
                              ids: Iterable[int] | None = None) -> dict[int, ProductFeatures]:
    """Features at ``at`` of the given products (default: every product in the store)."""
    return {pid: read_product_features(client, pid, at)
            for pid in sorted(ids if ids is not None else stored_ids(client, "pf"))}
