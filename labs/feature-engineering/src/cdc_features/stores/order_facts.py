"""Per-order facts of customers in Redis: the store of the Real-Time Mode path.

The stateless Real-Time Mode query (:mod:`cdc_features.job.realtime`) writes one Kafka
record per order version (:func:`cdc_features.core.features.compute_order_facts`); the
writer (:mod:`cdc_features.job.fact_writer`) applies each one here with :data:`APPLY_FACT`,
a Lua script, so every write is atomic and conditional:

* **LSN guard.** A customer's hash ``co:{customer_id}`` holds one field per order; a fact
  replaces it only when its ``(lsn, rank)`` is higher. A replayed record, a duplicated
  delivery or a re-sent Debezium event changes nothing, in any number and any order.
* **Late facts** (:func:`cdc_features.core.definitions.can_count`). The hash keeps the
  newest order time its facts carried (``_newest_us``). A fact whose day is more than
  ``horizon_days - 1`` days (recency's 365) older than that cannot count at any read time at
  or after the newest event, so it is stored inactive (it still supersedes older versions of
  its order: an order moved back in time must leave). The script reports it as ``late``. A
  fact without ``order_ts`` (the parser's event-time guard found the date implausible) is
  inactive and moves no clock.
* **Pruning.** When ``_newest_us`` reaches a new day, fields whose ``keep_us`` (the newest
  order time among every version the field was offered) is outside the window go. A
  pruned order cannot come back: any replay of one of its versions is as old, hence late.
* **Expiry.** ``EXPIREAT`` the end of the newest day + ``ttl_days`` (366; never earlier than
  now + ``min_ttl_seconds``): a customer silent that long has no fact that could count.

The features are computed when read, from the active facts: the 30-day sums from those of
the window, recency from those of the 365-day horizon
(:func:`cdc_features.core.definitions.customer_features_from_tiles`, one tile per order).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis

from cdc_features.core.definitions import (
    CustomerFeatures,
    ProductFeatures,
    customer_features_from_tiles,
    recency_of_tiles,
)
from cdc_features.core.spec import CUSTOMER, ORDER_FACTS_PREFIX
from cdc_features.stores.layout import (
    decode_order_facts,
    entity_id_of,
    order_fact_tiles,
    order_facts_key,
)
from cdc_features.stores.redis_store import MIN_TTL_SECONDS, RedisFeatureReader

# KEYS[1] = the customer's hash. ARGV: order_id, lsn, rank, active (0/1), amount (text, empty
# for a retraction), order_ts_us (empty: no plausible order_date), horizon_days, ttl_days,
# now (unix s), min_ttl_seconds.
# Returns 1 (applied), 2 (applied inactive: late) or 0 (superseded: an equal or newer version
# is stored). LSNs and times are compared as decimal text or as Lua numbers (doubles: exact
# for µs timestamps and PostgreSQL LSNs below 2^53).
APPLY_FACT = """
local key, field = KEYS[1], ARGV[1]
local lsn, rank, active, amount, ts_text = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local horizon, ttl_days = tonumber(ARGV[7]), tonumber(ARGV[8])
local now, min_ttl = tonumber(ARGV[9]), tonumber(ARGV[10])
local DAY_US, DAY_S = 86400000000, 86400
local ts = tonumber(ts_text) -- nil: a version without a plausible order_date (inactive)

local function newer(a, b) -- decimal texts of non-negative integers
  if #a ~= #b then return #a > #b end
  return a > b
end

local newest = tonumber(redis.call('HGET', key, '_newest_us') or '')
if ts ~= nil and (newest == nil or ts > newest) then
  newest = ts
  redis.call('HSET', key, '_newest_us', ts_text)
end
local first_day = nil
if newest ~= nil then first_day = math.floor(newest / DAY_US) - (horizon - 1) end
local late = ts ~= nil and first_day ~= nil and math.floor(ts / DAY_US) < first_day

local result, keep = 1, ts or 0
local old = redis.call('HGET', key, field)
if old then
  local olsn, orank, ohead, okeep = string.match(old, '^(%d+)|(%d+)|(.*)|(-?%d+)$')
  local stored_keep = tonumber(okeep)
  if stored_keep > keep then keep = stored_keep end
  if not (newer(lsn, olsn) or (lsn == olsn and rank > tonumber(orank))) then
    result = 0
    if keep ~= stored_keep then
      redis.call('HSET', key, field, olsn .. '|' .. orank .. '|' .. ohead .. '|'
        .. string.format('%d', keep))
    end
  end
end
if result == 1 then
  if late then
    active, result = '0', 2
  end
  redis.call('HSET', key, field,
    lsn .. '|' .. rank .. '|' .. active .. '|' .. amount .. '|' .. ts_text .. '|'
    .. string.format('%d', keep))
end

local expires = now + min_ttl
if first_day ~= nil then
  local newest_day = first_day + (horizon - 1)
  local pruned = tonumber(redis.call('HGET', key, '_pruned_day') or '')
  if pruned == nil or newest_day > pruned then
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local name = all[i]
      if string.sub(name, 1, 1) ~= '_' then
        local k = tonumber(string.match(all[i + 1], '|(-?%d+)$'))
        if math.floor(k / DAY_US) < first_day then
          redis.call('HDEL', key, name)
        end
      end
    end
    redis.call('HSET', key, '_pruned_day', string.format('%d', newest_day))
  end
  local day_based = (newest_day + 1 + ttl_days) * DAY_S
  if day_based > expires then expires = day_based end
end
redis.call('EXPIREAT', key, string.format('%d', expires))
return result
"""

RESULTS = {1: "applied", 2: "late", 0: "superseded"}
READ_CHUNK = 200  # customers per round trip


@dataclass(frozen=True)
class FactRecord:
    """One record of the facts topic: a version of an order at a customer."""

    customer_id: int
    order_id: int
    lsn: int
    rank: int
    active: bool
    amount: str | None  # decimal text with 2 places; None for a retraction
    order_ts_us: int | None  # None: the event-time guard found no plausible order_date
    commit_ms: int | None


#: the JSON fields of a facts-topic record, in the order the query writes them
FACT_FIELDS = (
    "customer_id",
    "order_id",
    "lsn",
    "rank",
    "active",
    "amount",
    "order_ts_us",
    "commit_ms",
)


class BadFact(ValueError):
    """A facts-topic record that is not a fact (the writer dead-letters it with this reason)."""


def decode_fact(value: bytes | str) -> FactRecord:
    """A facts-topic record value (JSON) → :class:`FactRecord`; :class:`BadFact` otherwise."""
    try:
        data = json.loads(value)
        return FactRecord(
            int(data["customer_id"]),
            int(data["order_id"]),
            int(data["lsn"]),
            int(data["rank"]),
            bool(data["active"]),
            None if data.get("amount") is None else str(data["amount"]),
            None if data["order_ts_us"] is None else int(data["order_ts_us"]),
            None if data.get("commit_ms") is None else int(data["commit_ms"]),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise BadFact(f"not_a_fact:{type(exc).__name__}") from exc


@dataclass(frozen=True)
class FactStoreConfig:
    """Where the facts go and how long they live (the windows come from the feature spec)."""

    horizon_days: int = CUSTOMER.lookback_days  # the longest lookback: recency's 365 days
    ttl_days: int = CUSTOMER.lookback_days + 1
    min_ttl_seconds: int = MIN_TTL_SECONDS


class OrderFactStore:
    """Applies facts with :data:`APPLY_FACT`: one pipelined round trip per call."""

    def __init__(self, client: redis.Redis, config: FactStoreConfig | None = None) -> None:
        self.client = client
        self.config = config or FactStoreConfig()
        self.script = client.register_script(APPLY_FACT)

    def apply(self, facts: Sequence[FactRecord], now: float | None = None) -> Counter[str]:
        """Apply ``facts`` in order; the count of each result (``applied``, ``late``,
        ``superseded``). Each fact is atomic; the whole call is one round trip."""
        if not facts:
            return Counter()
        now_s = int(now if now is not None else time.time())
        cfg = self.config
        pipe = self.client.pipeline(transaction=False)
        for f in facts:
            self.script(
                keys=[order_facts_key(f.customer_id)],
                args=[
                    f.order_id,
                    f.lsn,
                    f.rank,
                    1 if f.active else 0,
                    f.amount or "",
                    "" if f.order_ts_us is None else f.order_ts_us,
                    cfg.horizon_days,
                    cfg.ttl_days,
                    now_s,
                    cfg.min_ttl_seconds,
                ],
                client=pipe,
            )
        replies = pipe.execute()
        return Counter(RESULTS[int(r)] for r in replies)


class OrderFactsReader:
    """The :class:`~cdc_features.stores.base.FeatureReader` of the Real-Time Mode path:
    customer features from the per-order facts (``READ_CHUNK`` customers per round trip);
    product features from the micro-batch store's lines (they stay in micro-batches)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.products = RedisFeatureReader(client)

    def customer_features(self, ids: Iterable[int], at: datetime) -> dict[int, CustomerFeatures]:
        ordered = sorted(set(ids))
        out: dict[int, CustomerFeatures] = {}
        for start in range(0, len(ordered), READ_CHUNK):
            chunk = ordered[start : start + READ_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for cid in chunk:
                pipe.hgetall(order_facts_key(cid))
            replies = cast(list[dict[Any, Any]], pipe.execute())
            for cid, fields in zip(chunk, replies, strict=True):
                tiles = order_fact_tiles(decode_order_facts(fields))
                out[cid] = customer_features_from_tiles(cid, tiles, recency_of_tiles(tiles), at)
        return out

    def product_features(self, ids: Iterable[int], at: datetime) -> dict[int, ProductFeatures]:
        return self.products.product_features(ids, at)

    def customer_ids(self) -> set[int]:
        return {
            entity_id_of(k) for k in self.client.scan_iter(f"{ORDER_FACTS_PREFIX}:*", count=1000)
        }

    def product_ids(self) -> set[int]:
        return self.products.product_ids()
