"""Read-side checks: missing features and stale keys.

*Missing*: a requested entity for which the store holds nothing inside the feature horizon — the
model then gets defaults (zeros) instead of features, which is correct for a customer who never
ordered and a silent bug when the pipeline lost the entity. A rising share is the signal.

*Stale*: a key expected to update regularly (an active customer, a canary entity written by a
heartbeat order) whose newest event in the store is older than a threshold.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import redis

from cdc_features.core.definitions import window_days
from cdc_features.core.spec import CUSTOMER, EntitySpec
from cdc_features.monitoring.registry import MetricsRegistry
from cdc_features.stores.layout import customer_key, day_of_field, decode_tiles, window_keys

K = TypeVar("K", bound=Hashable)  # an entity key


def missing_ratio(requested: Sequence[K], found: Mapping[K, object | None]) -> float:
    """Share of ``requested`` entities without features in ``found`` (absent or None); 0 if none."""
    if not requested:
        return 0.0
    missing = sum(1 for key in requested if found.get(key) is None)
    return missing / len(requested)


def check_missing(
    view: str,
    requested: Sequence[K],
    found: Mapping[K, object | None],
    registry: MetricsRegistry,
) -> float:
    """Compute the missing share of one read and record it for the ``MissingFeatures`` alert."""
    ratio = missing_ratio(requested, found)
    missing = sum(1 for key in requested if found.get(key) is None)
    registry.set_missing(view, ratio, len(requested), missing)
    return ratio


def stale_keys(
    last_updated: Mapping[K, datetime | None], *, now: datetime, max_age: timedelta
) -> dict[K, float | None]:
    """Keys whose newest event is older than ``max_age`` at ``now``: key → age in seconds
    (None when the store has no event at all for the key)."""
    out: dict[K, float | None] = {}
    for key, ts in last_updated.items():
        if ts is None:
            out[key] = None
        elif now - ts > max_age:
            out[key] = (now - ts).total_seconds()
    return out


def check_stale(
    view: str,
    last_updated: Mapping[K, datetime | None],
    *,
    now: datetime,
    max_age: timedelta,
    registry: MetricsRegistry,
) -> dict[K, float | None]:
    """Find stale keys and record their number for the ``StaleFeatureKeys`` alert."""
    stale = stale_keys(last_updated, now=now, max_age=max_age)
    registry.set_stale_keys(view, len(stale))
    return stale


def entities_present(
    client: redis.Redis, spec: EntitySpec, ids: Iterable[int], at: datetime
) -> dict[int, bool]:
    """Whether each entity has at least one fact in the window ending with ``at``'s day, in
    one round trip (the key layout of ``stores/layout.py``: a customer's ``HKEYS`` of its
    tile hash, a product's ``EXISTS`` over its product-day keys)."""
    ids = list(ids)
    pipe = client.pipeline(transaction=False)
    for entity in ids:
        if spec is CUSTOMER:
            pipe.hkeys(customer_key(entity))
        else:
            pipe.exists(*[key for _, key in window_keys(spec, entity, at)])
    if spec is not CUSTOMER:
        return {entity: bool(n) for entity, n in zip(ids, pipe.execute(), strict=True)}
    first, last = window_days(at, spec.window_days)
    return {
        entity: any(first <= day_of_field(f) <= last for f in fields)
        for entity, fields in zip(ids, pipe.execute(), strict=True)
    }


def newest_customer_order(
    client: redis.Redis, ids: Iterable[int], at: datetime
) -> dict[int, datetime | None]:
    """Newest ``last_order_ts`` stored for each customer in its window's tiles (None when
    none), one ``HGETALL`` per customer in one round trip."""
    ids = list(ids)
    first, last = window_days(at, CUSTOMER.window_days)
    pipe = client.pipeline(transaction=False)
    for entity in ids:
        pipe.hgetall(customer_key(entity))
    out: dict[int, datetime | None] = {}
    for entity, fields in zip(ids, pipe.execute(), strict=True):
        stamps = [
            t.last_order_ts
            for t in decode_tiles(fields)
            if first <= t.day <= last and t.last_order_ts is not None
        ]
        out[entity] = max(stamps) if stamps else None
    return out
