"""Redis as the online feature store: absolute daily facts written from the executors.

The key layout and value codecs are in :mod:`cdc_features.stores.layout`. Every write sets
the whole value (``HSET``, never ``HINCRBY``; ``ZADD`` of the day's newest order time), so
replaying a micro-batch leaves the same store. ``EXPIREAT`` is set again after every write
(``HSET`` keeps an old TTL). A tile with 0 orders is deleted and its day leaves the
customer's recency set (``ZREM``); an inactive product line is ``HDEL``-ed (an empty hash
disappears).

Configuration is a :class:`RedisConfig` value: the job builds it on the driver and the sink
functions receive it as an argument (bound with ``functools.partial``), so it travels to
the executors inside the ``foreachPartition`` closure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, Protocol, cast

import redis
from pyspark.sql import DataFrame, Row

from cdc_features.core.definitions import (
    CustomerFeatures,
    ProductFeatures,
    Recency,
    customer_features_from_tiles,
    product_features_from_lines,
)
from cdc_features.core.spec import CUSTOMER, PRODUCT, RECENCY
from cdc_features.stores.layout import (
    FEATURE_KEY_PATTERN,
    LINE_COLUMNS,
    customer_key,
    decode_lines,
    decode_recency,
    decode_tile,
    encode_line,
    encode_tile,
    entity_id_of,
    expire_at,
    line_field,
    product_key,
    recency_key,
    recency_member,
    recency_score_range,
    to_micros,
    window_keys,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_ENV = "FEATURE_REDIS_URL"  # read by the command-line front ends only
FLUSH_EVERY = 500
MIN_TTL_SECONDS = 86_400
# A Redis that stops answering fails the micro-batch after this long (the query stops with
# redis.TimeoutError and resumes from its checkpoint when restarted) instead of hanging it.
SOCKET_TIMEOUT_SECONDS = 30.0
# Entities per round trip of a batched read.
READ_CHUNK = 200


@dataclass(frozen=True)
class RedisConfig:
    """Where and how the sink writes (captured in the closure shipped to the executors)."""

    url: str = DEFAULT_REDIS_URL
    flush_every: int = FLUSH_EVERY
    min_ttl_seconds: int = MIN_TTL_SECONDS
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS

    def client(self) -> redis.Redis:
        """A client with connect and read timeouts."""
        return redis.Redis.from_url(
            self.url, socket_timeout=self.socket_timeout, socket_connect_timeout=self.socket_timeout
        )


class Fields(Protocol):
    """A row whose fields are read by name: a Spark ``Row`` or a plain dict."""

    def __getitem__(self, name: str, /) -> Any: ...


WriteRow = Callable[[Any, Fields, float, RedisConfig], None]


def _write_partition(rows: Iterator[Fields], *, config: RedisConfig, write_row: WriteRow) -> None:
    """One client and one non-transactional pipeline per partition, flushed every N rows."""
    client = config.client()
    try:
        pipe = client.pipeline(transaction=False)
        pending = 0
        now = time.time()
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


def _write_line(pipe: Any, row: Fields, now: float, config: RedisConfig) -> None:
    key = product_key(row["product_id"], row["day"])
    field = line_field(row["order_id"], row["item_id"])
    if not row["active"]:
        pipe.hdel(key, field)
        return
    pipe.hset(key, field, encode_line(row["units"], row["revenue"], row["customer_id"]))
    pipe.expireat(key, expire_at(row["day"], PRODUCT.ttl_days, now, config.min_ttl_seconds))


def _latest_lines(rows: Iterator[Row]) -> Iterator[Row]:
    """Per line and day, only the row with the highest LSN (an active row wins a tie)."""
    best: dict[tuple[int, date, int, int], Row] = {}
    for row in rows:
        key = (row["product_id"], row["day"], row["order_id"], row["item_id"])
        rank = (row["lsn"] if row["lsn"] is not None else -1, bool(row["active"]))
        old = best.get(key)
        if old is None or rank >= (
            old["lsn"] if old["lsn"] is not None else -1,
            bool(old["active"]),
        ):
            best[key] = row
    return iter(best.values())


def _write_lines_partition(rows: Iterator[Row], *, config: RedisConfig) -> None:
    _write_partition(_latest_lines(rows), config=config, write_row=_write_line)


def write_recency(pipe: Any, row: Fields, now: float, config: RedisConfig) -> None:
    """Queue the tile's day in the customer's recency set: its newest order time, or out of
    the set when the day has no counted order; only the newest 365 days are kept."""
    key, day = recency_key(row["customer_id"]), row["day"]
    if row["order_count"] and row["last_order_ts"] is not None:
        pipe.zadd(key, {recency_member(day): to_micros(row["last_order_ts"])})
        when = expire_at(day, RECENCY.ttl_days, now, config.min_ttl_seconds)
        pipe.expireat(key, when, nx=True)  # a new key: set its expiry ...
        pipe.expireat(key, when, gt=True)  # ... an older day never shortens it
    else:
        pipe.zrem(key, recency_member(day))
    # keep the newest RECENCY.horizon_days days: every day a read's horizon can hold, whatever
    # the order of the writes (a retried or reordered batch leaves the same set)
    pipe.zremrangebyrank(key, 0, -(RECENCY.horizon_days + 1))


# region write_tile
def write_tile(pipe: Any, row: Fields, now: float, config: RedisConfig) -> None:
    """Queue the absolute value of one customer tile (a 0-order tile is removed)."""
    key = customer_key(row["customer_id"], row["day"])
    write_recency(pipe, row, now, config)  # the day's newest order, for last_order_ts
    if not row["order_count"]:
        pipe.delete(key)
        return
    pipe.hset(
        key, mapping=encode_tile(row["order_count"], row["total_spend"], row["last_order_ts"])
    )
    # HSET of every field, never HINCRBY: a replayed batch writes the same values
    pipe.expireat(key, expire_at(row["day"], CUSTOMER.ttl_days, now, config.min_ttl_seconds))


# endregion


# region write_to_feature_store
def write_to_feature_store(batch_df: DataFrame, batch_id: int, *, store: RedisConfig) -> None:
    """foreachBatch sink: store each changed customer tile in Redis.

    A tile is ``(customer_id, day)`` → its absolute order count, spend and last
    order time, so writing the same micro-batch twice (a retry after a failure)
    leaves the same store. The executors write, one pipelined connection per
    partition; nothing is collected to the driver. ``store`` (bound with
    ``functools.partial``) travels to the executors inside the closure.
    """
    write = partial(_write_partition, config=store, write_row=write_tile)
    batch_df.select(
        "customer_id", "day", "order_count", "total_spend", "last_order_ts"
    ).foreachPartition(write)


# endregion


def write_product_features(batch_df: DataFrame, batch_id: int, *, store: RedisConfig) -> None:
    """foreachBatch sink: store the absolute state of each changed product order line."""
    batch_df.select(*LINE_COLUMNS, "lsn").foreachPartition(
        partial(_write_lines_partition, config=store)
    )


def write_rows_from_driver(batch_df: DataFrame, *, store: RedisConfig) -> None:
    """The naive way, kept only to measure it: ``collect()`` + one Redis call per row."""
    client = store.client()
    try:
        now = time.time()
        # region naive_driver_sink
        for row in batch_df.collect():  # the whole micro-batch on the driver
            key = customer_key(row["customer_id"], row["day"])
            write_recency(client, row, now, store)  # one round trip per command, too
            if not row["order_count"]:
                client.delete(key)
                continue
            client.hset(
                key,
                mapping=encode_tile(row["order_count"], row["total_spend"], row["last_order_ts"]),
            )
            client.expireat(
                key, expire_at(row["day"], CUSTOMER.ttl_days, now, store.min_ttl_seconds)
            )
        # endregion
    finally:
        client.close()


def _queue_recency(pipe: Any, customer_id: int, at: datetime) -> None:
    """Queue the read of the newest recency fact inside the horizon of ``at``."""
    low, high = recency_score_range(at)
    pipe.zrevrangebyscore(recency_key(customer_id), high, low, start=0, num=1, withscores=True)


def _recency(reply: list[tuple[bytes, float]]) -> list[Recency]:
    return [decode_recency(member, score) for member, score in reply]


# region read_customer_features
def read_customer_features(client: redis.Redis, customer_id: int, at: datetime) -> CustomerFeatures:
    """The customer's features at read time ``at`` (timezone-aware UTC).

    Reads the 30 daily tiles of the window that ends with ``at``'s UTC day and the
    newest day of the 365-day recency set in one round trip; the rolling sums and
    ``days_since_last_order`` are computed now, so a customer who stopped ordering
    decays to zero without any new event while recency keeps the last order.
    """
    keys = window_keys(CUSTOMER, customer_id, at)
    pipe = client.pipeline(transaction=False)
    for _, key in keys:
        pipe.hgetall(key)
    _queue_recency(pipe, customer_id, at)  # ZREVRANGEBYSCORE ... LIMIT 0 1
    *replies, newest = pipe.execute()
    tiles = [decode_tile(day, fields) for (day, _), fields in zip(keys, replies, strict=True)]
    return customer_features_from_tiles(customer_id, [t for t in tiles if t], _recency(newest), at)


# endregion


def read_product_features(client: redis.Redis, product_id: int, at: datetime) -> ProductFeatures:
    """The product's features at read time ``at`` (the 7 UTC days ending with its day)."""
    keys = window_keys(PRODUCT, product_id, at)
    pipe = client.pipeline(transaction=False)
    for _, key in keys:
        pipe.hgetall(key)
    lines = [
        line
        for (day, _), fields in zip(keys, pipe.execute(), strict=True)
        for line in decode_lines(day, fields)
    ]
    return product_features_from_lines(product_id, lines, at)


Facts = list[tuple[date, dict[Any, Any]]]


def _read_window_facts(
    client: redis.Redis, spec: Any, ids: Sequence[int], at: datetime, *, recency: bool = False
) -> list[tuple[Facts, list[Recency]]]:
    """Each entity's non-empty facts of its window (and, with ``recency``, its newest recency
    fact in the horizon), ``READ_CHUNK`` entities per round trip."""
    out: list[tuple[Facts, list[Recency]]] = []
    for start in range(0, len(ids), READ_CHUNK):
        chunk = ids[start : start + READ_CHUNK]
        keys = [window_keys(spec, entity_id, at) for entity_id in chunk]
        pipe = client.pipeline(transaction=False)
        for entity_id, entity_keys in zip(chunk, keys, strict=True):
            for _, key in entity_keys:
                pipe.hgetall(key)
            if recency:
                _queue_recency(pipe, entity_id, at)
        replies = iter(pipe.execute())
        for entity_keys in keys:
            facts = [
                (day, fields)
                for (day, _), fields in zip(entity_keys, replies, strict=False)
                if fields
            ]
            out.append((facts, _recency(next(replies)) if recency else []))
    return out


def stored_ids(client: redis.Redis, prefix: str) -> set[int]:
    """Entity ids that have at least one stored fact (``prefix`` ``cf``, ``pf`` or ``cr``)."""
    return {entity_id_of(key) for key in client.scan_iter(f"{prefix}:*", count=1000)}


def dump_store(client: redis.Redis) -> dict[str, dict[str, str]]:
    """Every feature hash and recency set as text (for comparing two stores in tests and
    benchmarks): ``{key: {field or member: value or score}}``."""
    out = {}
    for key in client.scan_iter(FEATURE_KEY_PATTERN, count=1000):
        text = key.decode() if isinstance(key, bytes) else key
        fields = cast(dict[bytes, bytes], client.hgetall(key))  # a sync client: the reply
        out[text] = {k.decode(): v.decode() for k, v in fields.items()}
    for key in client.scan_iter(f"{RECENCY.key_prefix}:*", count=1000):
        text = key.decode() if isinstance(key, bytes) else key
        members = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
        out[text] = {m.decode(): str(int(score)) for m, score in members}
    return out


class RedisFeatureReader:
    """The :class:`~cdc_features.stores.base.FeatureReader` of the Redis store: batched reads
    (``READ_CHUNK`` entities per round trip), windows applied at read time."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def customer_features(self, ids: Iterable[int], at: datetime) -> dict[int, CustomerFeatures]:
        ordered = sorted(set(ids))
        facts = _read_window_facts(self.client, CUSTOMER, ordered, at, recency=True)
        out = {}
        for cid, (entity_facts, recency) in zip(ordered, facts, strict=True):
            tiles = [decode_tile(day, fields) for day, fields in entity_facts]
            out[cid] = customer_features_from_tiles(cid, [t for t in tiles if t], recency, at)
        return out

    def product_features(self, ids: Iterable[int], at: datetime) -> dict[int, ProductFeatures]:
        ordered = sorted(set(ids))
        facts = _read_window_facts(self.client, PRODUCT, ordered, at)
        return {
            pid: product_features_from_lines(
                pid, [ln for day, fields in entity_facts for ln in decode_lines(day, fields)], at
            )
            for pid, (entity_facts, _) in zip(ordered, facts, strict=True)
        }

    def customer_ids(self) -> set[int]:
        """Customers with a stored tile or recency fact."""
        return stored_ids(self.client, CUSTOMER.key_prefix) | stored_ids(
            self.client, RECENCY.key_prefix
        )

    def product_ids(self) -> set[int]:
        return stored_ids(self.client, PRODUCT.key_prefix)
