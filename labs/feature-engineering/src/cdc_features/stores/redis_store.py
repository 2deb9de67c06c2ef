"""Redis as the online feature store: absolute daily facts written from the executors.

The key layout and value codecs are in :mod:`cdc_features.stores.layout`. Every write sets
the whole value (``HSET`` of a day's tile, never ``HINCRBY``; ``ZADD`` of the day's newest
order time), so replaying a micro-batch leaves the same store. A customer's tile is written
by the Redis function ``cdc_put_tile`` (library ``cdc_features``, loaded by the writer):
one atomic call sets or removes the day's field, removes the days older than the kept span
(Redis 7.0 has no per-field TTL) and moves the hash's expiry forward, never back. A tile
with 0 orders loses its field and its day leaves the customer's recency set (``ZREM``); an
inactive product line is ``HDEL``-ed (an empty hash disappears).

Reads are batched: :func:`read_customer_features_many` reads any number of customers in one
round trip (the read-only function ``cdc_read_customers`` returns the sums of each
customer's tiles in the window and its newest recency day), and
:func:`read_product_features_many` any number of products (their product-day hashes,
pipelined); the windows are chosen at read time.

Configuration is a :class:`RedisConfig` value: the job builds it on the driver and the sink
functions receive it as an argument (bound with ``functools.partial``), so it travels to
the executors inside the ``foreachPartition`` closure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, cast

import redis
from pyspark.sql import DataFrame, Row

from cdc_features.core.definitions import (
    CustomerFeatures,
    ProductFeatures,
    customer_features_from_totals,
    product_features_from_lines,
    window_days,
)
from cdc_features.core.spec import CUSTOMER, PRODUCT, RECENCY
from cdc_features.stores.layout import (
    FEATURE_KEY_PATTERN,
    LINE_COLUMNS,
    TILE_KEEP_DAYS,
    customer_key,
    decode_lines,
    decode_recency,
    encode_line,
    encode_tile,
    entity_id_of,
    expire_at,
    line_field,
    product_key,
    recency_key,
    recency_member,
    recency_score_range,
    tile_field,
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

#: Customers per ``cdc_read_customers`` call (several calls still go in one round trip; a
#: bounded call keeps any one script short: Redis runs nothing else while it runs).
READ_CALL_CUSTOMERS = 500

#: The Redis function library (Redis >= 7.0 functions), loaded by :func:`load_functions`.
#:
#: ``cdc_put_tile`` KEYS[1] = a customer's tile hash; ARGV = day field (``yyyymmdd``), tile
#: value (``""`` = the day has no counted order), days kept before the newest day, expiry
#: (Unix seconds). Returns the number of fields left. One key per call: it also runs on a
#: Redis Cluster.
#:
#: ``cdc_read_customers`` (read-only) KEYS = tile hash and recency set of each customer, in
#: pairs; ARGV = first and last day of the window (``yyyymmdd``), lowest and highest recency
#: score of the horizon (µs). Returns, per customer, ``{order count, spend in cents, {day,
#: score}}``: the sums of the tiles whose day is in the window (exact: whole numbers far
#: below 2^53) and the newest recency day in the horizon (``{}`` when none). Its keys are in
#: different hash slots: on a Redis Cluster, read with one call per customer instead.
FUNCTIONS = """#!lua name=cdc_features
-- days since 1970-01-01 of a 'yyyymmdd' text (proleptic Gregorian calendar)
local function day_number(text)
  local y = tonumber(string.sub(text, 1, 4))
  local m = tonumber(string.sub(text, 5, 6))
  local d = tonumber(string.sub(text, 7, 8))
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- the 'yyyymmdd' text of a day number (the inverse of day_number)
local function day_text(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d%02d%02d', y, m, d)
end

local function put_tile(keys, args)
  local key, field, value = keys[1], args[1], args[2]
  local keep = tonumber(args[3])
  if value == '' then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, value)
    redis.call('EXPIREAT', key, args[4], 'NX')
    redis.call('EXPIREAT', key, args[4], 'GT')
  end
  -- the kept span is counted from the newest day in the hash, not from the written day:
  -- the same fields remain whatever the order of the writes
  local fields = redis.call('HKEYS', key)
  local newest = nil
  for _, f in ipairs(fields) do
    if newest == nil or f > newest then newest = f end
  end
  if newest == nil then return 0 end
  local oldest_kept = day_text(day_number(newest) - keep)  -- 'yyyymmdd' sorts as days do
  local old = {}
  for _, f in ipairs(fields) do
    if f < oldest_kept then old[#old + 1] = f end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
  return #fields - #old
end

local function read_customers(keys, args)
  local first, last, low, high = args[1], args[2], args[3], args[4]
  local out = {}
  for i = 1, #keys, 2 do
    local fields = redis.call('HGETALL', keys[i])
    local count, cents = 0, 0
    for j = 1, #fields, 2 do
      if fields[j] >= first and fields[j] <= last then
        local n, spend = string.match(fields[j + 1], '^([^|]*)|([^|]*)|')
        count = count + tonumber(n)
        -- money is stored with exactly 2 places: without its point it is whole cents
        cents = cents + tonumber((string.gsub(spend, '%.', '')))
      end
    end
    out[#out + 1] = {count, cents, redis.call(
      'ZREVRANGEBYSCORE', keys[i + 1], high, low, 'WITHSCORES', 'LIMIT', 0, 1)}
  end
  return out
end

redis.register_function('cdc_put_tile', put_tile)
redis.register_function{
  function_name = 'cdc_read_customers', callback = read_customers, flags = {'no-writes'}
}
"""


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


def load_functions(client: redis.Redis) -> None:
    """Load (or replace) the function library; every writer calls this before its first tile
    write, a reader when Redis answers that a function is missing (a restarted Redis without
    persistence has lost it)."""
    client.function_load(FUNCTIONS, replace=True)


class Fields(Protocol):
    """A row whose fields are read by name: a Spark ``Row`` or a plain dict."""

    def __getitem__(self, name: str, /) -> Any: ...


WriteRow = Callable[[Any, Fields, float, RedisConfig], None]


def _write_partition(
    rows: Iterator[Fields], *, config: RedisConfig, write_row: WriteRow, functions: bool = False
) -> None:
    """One client and one non-transactional pipeline per partition, flushed every N rows
    (``functions``: load the tile function library first)."""
    client = config.client()
    try:
        if functions:
            load_functions(client)
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
    write_recency(pipe, row, now, config)  # the day's newest order, for last_order_ts
    value = ""  # a day without counted orders: its field goes
    if row["order_count"]:
        value = encode_tile(row["order_count"], row["total_spend"], row["last_order_ts"])
    # one atomic call: HSET of the day's whole tile (never HINCRBY: a replayed batch writes
    # the same value), the days older than the kept span removed, the expiry moved forward
    pipe.fcall(
        "cdc_put_tile",
        1,
        customer_key(row["customer_id"]),
        tile_field(row["day"]),
        value,
        TILE_KEEP_DAYS,
        expire_at(row["day"], CUSTOMER.ttl_days, now, config.min_ttl_seconds),
    )


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
    write = partial(_write_partition, config=store, write_row=write_tile, functions=True)
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
        load_functions(client)
        now = time.time()
        # region naive_driver_sink
        for row in batch_df.collect():  # the whole micro-batch on the driver
            write_tile(client, row, now, store)  # one round trip per command
        # endregion
    finally:
        client.close()


def _newest(reply: list[bytes]) -> datetime | None:
    """The order time of a ``[member, score]`` recency reply (``None`` when empty)."""
    return decode_recency(reply[0], float(reply[1])).last_order_ts if reply else None


def _call_with_functions(client: redis.Redis, queue: Callable[[Any], None]) -> list[Any]:
    """Queue commands into a pipeline and run it (one round trip); when Redis has lost the
    function library (restarted without persistence), load it and run again."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        queue(pipe)
        try:
            return pipe.execute()
        except redis.ResponseError as error:
            if attempt == 2 or "function not found" not in str(error).lower():
                raise
            load_functions(client)
    raise AssertionError("unreachable")


# region read_customer_features
def read_customer_features_many(
    client: redis.Redis, customer_ids: Sequence[int], at: datetime
) -> list[CustomerFeatures]:
    """The features of any number of customers at read time ``at`` (timezone-aware UTC),
    in one round trip.

    The window is chosen now: the 30 UTC days that end with ``at``'s day. The Redis
    function ``cdc_read_customers`` sums, per customer, the tiles of those days in its
    tile hash (count and cents) and returns the newest day of its 365-day recency set;
    the features follow from these here. A customer who stopped ordering decays to zero
    without any new event, while recency keeps the last order.
    """
    first, last = window_days(at, CUSTOMER.window_days)
    low, high = recency_score_range(at)
    args = (tile_field(first), tile_field(last), low, high)

    def queue(pipe: Any) -> None:
        for start in range(0, len(customer_ids), READ_CALL_CUSTOMERS):
            keys = []
            for cid in customer_ids[start : start + READ_CALL_CUSTOMERS]:
                keys += [customer_key(cid), recency_key(cid)]
            pipe.fcall_ro("cdc_read_customers", len(keys), *keys, *args)

    replies = [sums for call in _call_with_functions(client, queue) for sums in call]
    return [
        customer_features_from_totals(cid, count, Decimal(cents).scaleb(-2), _newest(newest), at)
        for cid, (count, cents, newest) in zip(customer_ids, replies, strict=True)
    ]


# endregion


def read_customer_features(client: redis.Redis, customer_id: int, at: datetime) -> CustomerFeatures:
    """One customer's features at ``at`` (:func:`read_customer_features_many` of one id)."""
    [features] = read_customer_features_many(client, [customer_id], at)
    return features


def read_product_features_many(
    client: redis.Redis, product_ids: Sequence[int], at: datetime
) -> list[ProductFeatures]:
    """The features of any number of products at ``at`` in one round trip (the 7 product-day
    hashes of each product's window, pipelined)."""
    keys = [window_keys(PRODUCT, product_id, at) for product_id in product_ids]
    pipe = client.pipeline(transaction=False)
    for product_keys in keys:
        for _, key in product_keys:
            pipe.hgetall(key)
    replies = iter(pipe.execute())
    out = []
    for product_id, product_keys in zip(product_ids, keys, strict=True):
        lines = [
            line
            for (day, _), fields in zip(product_keys, replies, strict=False)
            for line in decode_lines(day, fields)
        ]
        out.append(product_features_from_lines(product_id, lines, at))
    return out


def read_product_features(client: redis.Redis, product_id: int, at: datetime) -> ProductFeatures:
    """One product's features at ``at`` (the 7 UTC days ending with its day)."""
    [features] = read_product_features_many(client, [product_id], at)
    return features


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
    """The :class:`~cdc_features.stores.base.FeatureReader` of the Redis store: one round trip
    per call for any number of entities, windows applied at read time."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def customer_features(self, ids: Iterable[int], at: datetime) -> dict[int, CustomerFeatures]:
        ordered = sorted(set(ids))
        features = read_customer_features_many(self.client, ordered, at)
        return dict(zip(ordered, features, strict=True))

    def product_features(self, ids: Iterable[int], at: datetime) -> dict[int, ProductFeatures]:
        ordered = sorted(set(ids))
        features = read_product_features_many(self.client, ordered, at)
        return dict(zip(ordered, features, strict=True))

    def customer_ids(self) -> set[int]:
        """Customers with a stored tile or recency fact."""
        return stored_ids(self.client, CUSTOMER.key_prefix) | stored_ids(
            self.client, RECENCY.key_prefix
        )

    def product_ids(self) -> set[int]:
        return stored_ids(self.client, PRODUCT.key_prefix)
