"""``--sink feast``: the lab's Redis sink, then a push of the changed features to Feast.

Per micro-batch (``foreachBatch``, on the driver):

1. the batch's absolute tiles / lines are written to the lab's Redis exactly as with
   ``--sink redis`` (``redis_store.write_to_feature_store`` / ``write_product_features``,
   executor-side);
2. the ids of the entities the batch changed are collected — only ids, at most
   ``max_entities`` of them (the batch itself is bounded by ``maxFilesPerTrigger`` /
   ``maxOffsetsPerTrigger``; a larger one fails loudly instead of flooding the driver);
3. their features are read from the lab's Redis at the stream clock (``definitions.py``
   math, the same read serving uses) and pushed with ``PushMode.ONLINE_AND_OFFLINE``.

**Event timestamps.** Feast's Redis online store skips a write whose event timestamp is
not newer than the stored one (``RedisOnlineStore.online_write_batch``: ``if
latest_seen_nanos and new_total_nanos <= latest_seen_nanos: continue``). An amount update
or a cancellation of an old order does not move event time forward, so a timestamp taken
from the events (``window.end``, ``order_date``) would make Feast drop the corrected value
silently. The push timestamp is the *stream clock*: the newest commit time
(``source.ts_ms``) seen so far, raised to at least one microsecond after the previous push
of the same feature view. It is stored in the lab's Redis (``feast:clock:<view>``), so it
keeps increasing across restarts. The features pushed with a timestamp are computed *at*
that timestamp, so every Feast row is exactly the definition evaluated at its own
``event_timestamp``.

**Decay.** A 30-day count falls without any new event, and recency (``last_order_ts``) turns
null 365 days after the last order. Pushed values are exact for reads during the UTC day of
their timestamp. The sink remembers, per entity, when its pushed value next changes without an
event (the sorted set ``feast:active:<view>``, score = that time in µs): the next UTC day while
a 30-day or 7-day sum is non-zero, else the day the customer's last order leaves the 365-day
horizon. Every push also re-pushes the entities whose time has come, so Feast follows the decay
as long as the stream runs, with no push at all for a customer who is merely silent.
``FeastSink.refresh`` does the same from a daily job for a quiet stream; between, the lab's
own Redis read (which applies the windows at read time) is the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.core.spec import RECENCY
from cdc_features.stores import feast_store
from cdc_features.stores.layout import from_micros, to_micros
from cdc_features.stores.redis_store import (
    RedisConfig,
    RedisFeatureReader,
    write_product_features,
    write_to_feature_store,
)

DEFAULT_MAX_ENTITIES = 20_000


@dataclass(frozen=True)
class FeastSinkConfig:
    """Where the Feast sink pushes: a prepared repository copy and the lab's Redis."""

    repo_path: Path
    redis: RedisConfig
    max_entities: int = DEFAULT_MAX_ENTITIES
    offline: bool = True

    def __post_init__(self) -> None:
        if not self.redis.url:
            raise ValueError("the Feast sink needs the lab's Redis URL (--redis-url)")
        if not (Path(self.repo_path) / "data" / "registry.db").exists():
            raise FileNotFoundError(
                f"{self.repo_path} is not an applied Feast repository (no data/registry.db); "
                f"prepare one with: python -m cdc_features.stores.feast_store prepare "
                f"--repo {self.repo_path} --redis-url {self.redis.url}"
            )


def next_push_time(client: redis.Redis, view: str, newest_commit: datetime | None) -> datetime:
    """The stream clock for this push: the newest commit time seen, strictly after the
    previous push of ``view`` (persisted in Redis, so restarts keep it increasing)."""
    key = f"feast:clock:{view}"
    previous = cast(bytes | None, client.get(key))  # a sync client: the reply itself
    candidate = to_micros(newest_commit) if newest_commit is not None else 0
    if previous is not None:
        candidate = max(candidate, int(previous) + 1)
    if candidate == 0:
        raise ValueError(f"no commit time in the batch and no previous push of {view!r}")
    client.set(key, candidate)
    return from_micros(candidate)


def push_clock(client: redis.Redis, view: str) -> datetime | None:
    """The timestamp of the newest push of ``view`` (None before the first push)."""
    value = cast(bytes | None, client.get(f"feast:clock:{view}"))
    return None if value is None else from_micros(int(value))


def _changed(batch_df: DataFrame, column: str, cap: int) -> tuple[list[int], datetime | None]:
    """The ids the batch changed (at most ``cap``) and its newest commit time, in one job."""
    newest = F.max("commit_ts") if "commit_ts" in batch_df.columns else F.lit(None)
    rows = (
        batch_df.where(F.col(column).isNotNull())
        .groupBy(column)
        .agg(newest.alias("newest"))
        .limit(cap + 1)
        .collect()
    )
    if len(rows) > cap:
        raise RuntimeError(
            f"micro-batch changes more than {cap} {column}s: lower maxFilesPerTrigger / "
            f"maxOffsetsPerTrigger or raise max_entities (the Feast push is built on the driver)"
        )
    stamps = [r["newest"] for r in rows if r["newest"] is not None]
    commit = max(stamps) if stamps else None
    if commit is not None and commit.tzinfo is None:
        commit = commit.replace(tzinfo=UTC)
    return sorted(int(r[column]) for r in rows), commit


def _next_day(at: datetime) -> datetime:
    day = at.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def customer_due(f: CustomerFeatures, at: datetime) -> datetime | None:
    """When a customer's pushed features next change without an event of its own: the next
    UTC day while its 30-day sums are non-zero, else the day its last order leaves the
    recency horizon; ``None``: never (nothing to decay)."""
    if f.order_count_30d > 0:
        return _next_day(at)
    if f.last_order_ts is not None:
        last = f.last_order_ts.astimezone(UTC).date() + timedelta(days=RECENCY.horizon_days)
        return datetime(last.year, last.month, last.day, tzinfo=UTC)
    return None


def product_due(f: ProductFeatures, at: datetime) -> datetime | None:
    """The next UTC day while the product's 7-day sums are non-zero; else never."""
    return _next_day(at) if f.units_sold_7d > 0 else None


def _track(client: redis.Redis, view: str, entities: Sequence[tuple[int, datetime | None]]) -> None:
    """Remember when each entity's pushed value next changes by itself (``None``: never)."""
    key = f"feast:active:{view}"
    pipe = client.pipeline(transaction=False)
    for entity_id, due in entities:
        if due is not None:
            pipe.zadd(key, {str(entity_id): to_micros(due)})
        else:
            pipe.zrem(key, str(entity_id))
    pipe.execute()


def due_ids(client: redis.Redis, view: str, at: datetime) -> list[int]:
    """Entities whose pushed value has changed by itself by ``at`` (to be re-pushed)."""
    members = cast(list[bytes], client.zrangebyscore(f"feast:active:{view}", "-inf", to_micros(at)))
    return sorted(int(m) for m in members)


def active_ids(client: redis.Redis, view: str) -> list[int]:
    """Entities with a pushed value that will still change by itself (decay or recency)."""
    members = cast(list[bytes], client.zrange(f"feast:active:{view}", 0, -1))
    return sorted(int(m) for m in members)


Push = Callable[[Sequence[int], datetime], Any]


class FeastSink:
    """The ``foreachBatch`` functions of ``--sink feast`` (bound methods: the configuration,
    the Feast ``FeatureStore`` and the Redis client live on the object, on the driver)."""

    def __init__(self, config: FeastSinkConfig) -> None:
        self.config = config
        self._store: Any = None
        self._client: redis.Redis | None = None

    @property
    def store(self) -> Any:
        """The Feast ``FeatureStore`` (opened on first use)."""
        if self._store is None:
            self._store = feast_store.open_store(self.config.repo_path)
        return self._store

    @property
    def client(self) -> redis.Redis:
        """The lab's Redis (the tiles and lines the pushes are read from)."""
        if self._client is None:
            self._client = self.config.redis.client()
        return self._client

    def _push_customers(self, ids: Sequence[int], at: datetime) -> list[CustomerFeatures]:
        features = list(RedisFeatureReader(self.client).customer_features(ids, at).values())
        feast_store.push(
            self.store,
            feast_store.CUSTOMER_PUSH,
            feast_store.customer_push_frame(features, at),
            offline=self.config.offline,
        )
        _track(
            self.client,
            feast_store.CUSTOMER_VIEW,
            [(f.customer_id, customer_due(f, at)) for f in features],
        )
        return features

    def _push_products(self, ids: Sequence[int], at: datetime) -> list[ProductFeatures]:
        features = list(RedisFeatureReader(self.client).product_features(ids, at).values())
        feast_store.push(
            self.store,
            feast_store.PRODUCT_PUSH,
            feast_store.product_push_frame(features, at),
            offline=self.config.offline,
        )
        _track(
            self.client,
            feast_store.PRODUCT_VIEW,
            [(f.product_id, product_due(f, at)) for f in features],
        )
        return features

    def _push_with_decay(self, batch_df: DataFrame, id_column: str, view: str, push: Push) -> None:
        ids, newest_commit = _changed(batch_df, id_column, self.config.max_entities)
        if not ids:
            return
        at = next_push_time(self.client, view, newest_commit)
        push(sorted(set(ids) | set(due_ids(self.client, view, at))), at)

    # region push_to_feast
    def push_to_feast(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch sink: the lab's Redis tiles, then the changed customers to Feast."""
        batch_df.persist()  # written twice: do not recompute the micro-batch
        try:
            # absolute tiles, executor-side
            write_to_feature_store(batch_df, batch_id, store=self.config.redis)
            # Only the ids of the customers this batch changed reach the driver; their
            # features are read back from the tiles at the stream clock and pushed
            # with a timestamp newer than the last push, so Feast never skips them.
            self._push_with_decay(
                batch_df, "customer_id", feast_store.CUSTOMER_VIEW, self._push_customers
            )
        finally:
            batch_df.unpersist()

    # endregion

    def push_products_to_feast(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch sink for product lines: the lab's Redis lines, then Feast."""
        batch_df.persist()
        try:
            write_product_features(batch_df, batch_id, store=self.config.redis)
            self._push_with_decay(
                batch_df, "product_id", feast_store.PRODUCT_VIEW, self._push_products
            )
        finally:
            batch_df.unpersist()

    def refresh(self, at: datetime) -> tuple[int, int]:
        """Re-push every entity whose Feast value has changed by itself by ``at`` (a daily job
        for a quiet stream). Returns the numbers of customers and products pushed."""
        counts = []
        for view, push in (
            (feast_store.CUSTOMER_VIEW, self._push_customers),
            (feast_store.PRODUCT_VIEW, self._push_products),
        ):
            ids = due_ids(self.client, view, at)
            if ids:
                push(ids, next_push_time(self.client, view, at))
            counts.append(len(ids))
        return counts[0], counts[1]

    def close(self) -> None:
        """Close the Redis client."""
        if self._client is not None:
            self._client.close()
            self._client = None
