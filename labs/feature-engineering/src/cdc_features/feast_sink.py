"""``--sink feast``: the lab's Redis sink, then a push of the changed features to Feast.

Per micro-batch (``foreachBatch``, on the driver):

1. the batch's absolute tiles / lines are written to the lab's Redis exactly as with
   ``--sink redis`` (``redis_sink.write_to_feature_store`` / ``write_product_features``,
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

**Decay.** A 30-day count falls without any new event. Pushed values are exact for reads
during the UTC day of their timestamp; when the clock enters a new UTC day, the sink
re-pushes every entity whose last pushed value was non-zero (kept in the sorted set
``feast:active:<view>``), so Feast follows the decay as long as the stream runs.
``refresh_feast_features`` does the same from a daily job for a quiet stream; between,
the lab's own Redis read (which applies the window at read time) is the source of truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdc_features import feast_store
from cdc_features.definitions import CustomerFeatures, ProductFeatures

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MICROSECOND = timedelta(microseconds=1)
DEFAULT_MAX_ENTITIES = 20_000


@dataclass
class FeastSinkConfig:
    """Where the Feast sink pushes: a prepared repository copy and the lab's Redis."""

    repo_path: Path
    redis_url: str
    max_entities: int = DEFAULT_MAX_ENTITIES
    offline: bool = True


_config: FeastSinkConfig | None = None
_store: Any = None
_client: redis.Redis | None = None


def configure_feast_sink(repo_path: Path | str, redis_url: str, *,
                         max_entities: int = DEFAULT_MAX_ENTITIES,
                         offline: bool = True) -> None:
    """Set the Feast repository (already applied) and the lab Redis used by the sink.

    Also configures the lab's Redis sink with the same URL, so both stores are written.
    """
    global _config, _store, _client
    from cdc_features.redis_sink import configure_feature_store

    if not redis_url:
        raise ValueError("the Feast sink needs the lab's Redis URL (--redis-url)")
    repo = Path(repo_path)
    if not (repo / "data" / "registry.db").exists():
        raise FileNotFoundError(
            f"{repo} is not an applied Feast repository (no data/registry.db); prepare one "
            f"with: python -m cdc_features.feast_store prepare --repo {repo} "
            f"--redis-url {redis_url}")
    _config = FeastSinkConfig(repo, redis_url, max_entities, offline)
    _store = None
    _client = None
    configure_feature_store(redis_url)


def _sink() -> tuple[FeastSinkConfig, Any, redis.Redis]:
    global _config, _store, _client
    if _config is None:
        repo = os.environ.get("FEAST_REPO_PATH")
        url = os.environ.get("FEATURE_REDIS_URL")
        if not repo or not url:
            raise RuntimeError("Feast sink not configured: call configure_feast_sink() or set "
                               "FEAST_REPO_PATH and FEATURE_REDIS_URL")
        configure_feast_sink(repo, url)
    assert _config is not None
    if _store is None:
        _store = feast_store.open_store(_config.repo_path)
    if _client is None:
        _client = redis.Redis.from_url(_config.redis_url)
    return _config, _store, _client


def _micros(ts: datetime) -> int:
    return (ts - EPOCH) // ONE_MICROSECOND


def _from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def next_push_time(client: redis.Redis, view: str, newest_commit: datetime | None) -> datetime:
    """The stream clock for this push: the newest commit time seen, strictly after the
    previous push of ``view`` (persisted in Redis, so restarts keep it increasing)."""
    key = f"feast:clock:{view}"
    previous = client.get(key)
    candidate = _micros(newest_commit) if newest_commit is not None else 0
    if previous is not None:
        candidate = max(candidate, int(previous) + 1)
    if candidate == 0:
        raise ValueError(f"no commit time in the batch and no previous push of {view!r}")
    client.set(key, candidate)
    return _from_micros(candidate)


def _changed(batch_df: DataFrame, column: str, cap: int) -> tuple[list[int], datetime | None]:
    """The ids the batch changed (at most ``cap``) and its newest commit time, in one job."""
    newest = F.max("commit_ts") if "commit_ts" in batch_df.columns else F.lit(None)
    rows = (batch_df.where(F.col(column).isNotNull()).groupBy(column)
            .agg(newest.alias("newest")).limit(cap + 1).collect())
    if len(rows) > cap:
        raise RuntimeError(
            f"micro-batch changes more than {cap} {column}s: lower maxFilesPerTrigger / "
            f"maxOffsetsPerTrigger or raise max_entities (the Feast push is built on the driver)")
    stamps = [r["newest"] for r in rows if r["newest"] is not None]
    commit = max(stamps) if stamps else None
    if commit is not None and commit.tzinfo is None:
        commit = commit.replace(tzinfo=timezone.utc)
    return sorted(int(r[column]) for r in rows), commit


def _read_many(client: redis.Redis, ids: Sequence[int], at: datetime, days: int,
               key: Callable[[int, Any], str], decode: Callable[[Any, dict], Any]
               ) -> list[list[Any]]:
    """The lab's stored facts of the window for many entities, 200 entities per round trip."""
    from cdc_features.definitions import window_days

    first, last = window_days(at, days)
    window = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out: list[list[Any]] = []
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        pipe = client.pipeline(transaction=False)
        for entity_id in chunk:
            for day in window:
                pipe.hgetall(key(entity_id, day))
        replies = pipe.execute()
        for i in range(len(chunk)):
            facts = zip(window, replies[i * len(window):(i + 1) * len(window)])
            out.append([decode(day, fields) for day, fields in facts if fields])
    return out


def read_customers(client: redis.Redis, ids: Sequence[int], at: datetime
                   ) -> list[CustomerFeatures]:
    """``redis_sink.read_customer_features`` for many customers, pipelined together."""
    from cdc_features.definitions import CUSTOMER_WINDOW_DAYS, customer_features_from_tiles
    from cdc_features.redis_sink import customer_key, tile_from_hash

    tiles = _read_many(client, ids, at, CUSTOMER_WINDOW_DAYS, customer_key, tile_from_hash)
    return [customer_features_from_tiles(cid, [t for t in ts if t], at)
            for cid, ts in zip(ids, tiles)]


def read_products(client: redis.Redis, ids: Sequence[int], at: datetime
                  ) -> list[ProductFeatures]:
    """``redis_sink.read_product_features`` for many products, pipelined together."""
    from cdc_features.definitions import PRODUCT_WINDOW_DAYS, product_features_from_lines
    from cdc_features.redis_sink import lines_from_hash, product_key

    lines = _read_many(client, ids, at, PRODUCT_WINDOW_DAYS, product_key, lines_from_hash)
    return [product_features_from_lines(pid, [ln for day in ls for ln in day], at)
            for pid, ls in zip(ids, lines)]


def _push_customers(store: Any, client: redis.Redis, ids: Sequence[int], at: datetime,
                    offline: bool) -> list[CustomerFeatures]:
    features = read_customers(client, ids, at)
    feast_store.push(store, feast_store.CUSTOMER_PUSH,
                     feast_store.customer_push_frame(features, at), offline=offline)
    _track(client, feast_store.CUSTOMER_VIEW, at,
           [(f.customer_id, f.order_count_30d > 0) for f in features])
    return features


def _push_products(store: Any, client: redis.Redis, ids: Sequence[int], at: datetime,
                   offline: bool) -> list[ProductFeatures]:
    features = read_products(client, ids, at)
    feast_store.push(store, feast_store.PRODUCT_PUSH,
                     feast_store.product_push_frame(features, at), offline=offline)
    _track(client, feast_store.PRODUCT_VIEW, at,
           [(f.product_id, f.units_sold_7d > 0) for f in features])
    return features


def _track(client: redis.Redis, view: str, at: datetime,
           entities: Sequence[tuple[int, bool]]) -> None:
    """Remember which entities hold a non-zero value in Feast (they must decay)."""
    key = f"feast:active:{view}"
    pipe = client.pipeline(transaction=False)
    for entity_id, nonzero in entities:
        if nonzero:
            pipe.zadd(key, {str(entity_id): _micros(at)})
        else:
            pipe.zrem(key, str(entity_id))
    pipe.execute()


def _day_changed(client: redis.Redis, view: str, at: datetime) -> bool:
    key = f"feast:day:{view}"
    day = at.strftime("%Y%m%d")
    previous = client.getset(key, day)
    return previous is not None and previous.decode() != day


def _active_ids(client: redis.Redis, view: str) -> list[int]:
    return sorted(int(m) for m in client.zrange(f"feast:active:{view}", 0, -1))


def _push_with_decay(batch_df: DataFrame, id_column: str, view: str,
                     push: Callable[[Any, redis.Redis, Sequence[int], datetime, bool], Any]
                     ) -> None:
    config, store, client = _sink()
    ids, newest_commit = _changed(batch_df, id_column, config.max_entities)
    if not ids:
        return
    at = next_push_time(client, view, newest_commit)
    if _day_changed(client, view, at):
        ids = sorted(set(ids) | set(_active_ids(client, view)))
    push(store, client, ids, at, config.offline)


# region push_to_feast
def push_to_feast(batch_df: DataFrame, batch_id: int) -> None:
    """foreachBatch sink: the lab's Redis tiles, then the changed customers to Feast."""
    from cdc_features.redis_sink import write_to_feature_store

    batch_df.persist()  # written twice: do not recompute the micro-batch
    try:
        write_to_feature_store(batch_df, batch_id)  # absolute tiles, executor-side
        # Only the ids of the customers this batch changed reach the driver; their
        # 30-day features are read back from the tiles at the stream clock and pushed
        # with a timestamp newer than the last push, so Feast never skips them.
        _push_with_decay(batch_df, "customer_id", feast_store.CUSTOMER_VIEW,
                         _push_customers)
    finally:
        batch_df.unpersist()
# endregion


def push_products_to_feast(batch_df: DataFrame, batch_id: int) -> None:
    """foreachBatch sink for product lines: the lab's Redis lines, then Feast."""
    from cdc_features.redis_sink import write_product_features

    batch_df.persist()
    try:
        write_product_features(batch_df, batch_id)
        _push_with_decay(batch_df, "product_id", feast_store.PRODUCT_VIEW, _push_products)
    finally:
        batch_df.unpersist()


def refresh_feast_features(at: datetime) -> tuple[int, int]:
    """Re-push every entity whose Feast value is non-zero, read at ``at`` (a daily job for a
    quiet stream). Returns the numbers of customers and products pushed."""
    config, store, client = _sink()
    counts = []
    for view, push in ((feast_store.CUSTOMER_VIEW, _push_customers),
                       (feast_store.PRODUCT_VIEW, _push_products)):
        ids = _active_ids(client, view)
        if ids:
            push(store, client, ids, next_push_time(client, view, at), config.offline)
        counts.append(len(ids))
    return counts[0], counts[1]
