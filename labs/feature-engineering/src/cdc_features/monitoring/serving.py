"""Read-side checks: missing features and stale keys.

*Missing*: a requested entity for which the store holds nothing inside the feature horizon — the
model then gets defaults (zeros) instead of features, which is correct for a customer who never
ordered and a silent bug when the pipeline lost the entity. A rising share is the signal.

*Stale*: a key expected to update regularly (an active customer, a canary entity written by a
heartbeat order) whose newest event in the store is older than a threshold.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone

import redis

from cdc_features.monitoring.registry import MetricsRegistry, default_registry

CUSTOMER_PREFIX, CUSTOMER_DAYS = "cf", 30
PRODUCT_PREFIX, PRODUCT_DAYS = "pf", 7


def missing_ratio(requested: Sequence[Hashable], found: Mapping[Hashable, object | None]) -> float:
    """Share of ``requested`` entities with no features in ``found`` (absent or None); 0 for none."""
    if not requested:
        return 0.0
    missing = sum(1 for key in requested if found.get(key) is None)
    return missing / len(requested)


def check_missing(view: str, requested: Sequence[Hashable],
                  found: Mapping[Hashable, object | None],
                  registry: MetricsRegistry | None = None) -> float:
    """Compute the missing share of one read and record it for the ``MissingFeatures`` alert."""
    ratio = missing_ratio(requested, found)
    missing = sum(1 for key in requested if found.get(key) is None)
    (registry or default_registry()).set_missing(view, ratio, len(requested), missing)
    return ratio


def stale_keys(last_updated: Mapping[Hashable, datetime | None], *, now: datetime,
               max_age: timedelta) -> dict[Hashable, float | None]:
    """Keys whose newest event is older than ``max_age`` at ``now``: key → age in seconds
    (None when the store has no event at all for the key)."""
    out: dict[Hashable, float | None] = {}
    for key, ts in last_updated.items():
        if ts is None:
            out[key] = None
        elif now - ts > max_age:
            out[key] = (now - ts).total_seconds()
    return out


def check_stale(view: str, last_updated: Mapping[Hashable, datetime | None], *, now: datetime,
                max_age: timedelta,
                registry: MetricsRegistry | None = None) -> dict[Hashable, float | None]:
    """Find stale keys and record their number for the ``StaleFeatureKeys`` alert."""
    stale = stale_keys(last_updated, now=now, max_age=max_age)
    (registry or default_registry()).set_stale_keys(view, len(stale))
    return stale


def _day_keys(prefix: str, entity: int, at: datetime, days: int) -> list[str]:
    last = at.astimezone(timezone.utc).date()
    return [f"{prefix}:{entity}:{last - timedelta(days=i):%Y%m%d}" for i in range(days)]


def entities_present(client: redis.Redis, prefix: str, ids: Iterable[int], at: datetime,
                     days: int) -> dict[int, bool]:
    """Whether each entity has at least one tile key in the ``days`` UTC days ending with ``at``'s
    day (one pipelined ``EXISTS`` per entity; the Redis layout of FEATURES.md)."""
    ids = list(ids)
    pipe = client.pipeline(transaction=False)
    for entity in ids:
        pipe.exists(*_day_keys(prefix, entity, at, days))
    return {entity: bool(n) for entity, n in zip(ids, pipe.execute())}


def newest_customer_order(client: redis.Redis, ids: Iterable[int],
                          at: datetime) -> dict[int, datetime | None]:
    """Newest ``last_order_ts`` stored for each customer over the 30-day tiles (None when none)."""
    ids = list(ids)
    pipe = client.pipeline(transaction=False)
    for entity in ids:
        for key in _day_keys(CUSTOMER_PREFIX, entity, at, CUSTOMER_DAYS):
            pipe.hget(key, "last_order_ts_us")
    values = pipe.execute()
    out: dict[int, datetime | None] = {}
    for i, entity in enumerate(ids):
        stamps = [int(v) for v in values[i * CUSTOMER_DAYS:(i + 1) * CUSTOMER_DAYS] if v]
        out[entity] = (datetime.fromtimestamp(max(stamps) / 1e6, tz=timezone.utc)
                       if stamps else None)
    return out
