"""The whole pipeline with ``--sink feast`` over a generated Debezium log: Feast's online
values and its point-in-time training rows equal the batch reference; a restart from the
checkpoint leaves the same online values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
import redis
from pyspark.sql import SparkSession

from cdc_features.core import reference
from cdc_features.core.debezium_json import Record
from cdc_features.job.pipeline import start_pipeline
from cdc_features.lab.generator import generate_log
from cdc_features.stores import feast_store as fs
from cdc_features.stores.base import zero_customer, zero_product
from cdc_features.stores.feast_sink import active_ids
from cdc_features.stores.layout import from_micros
from cdc_features.stores.redis_store import RedisFeatureReader, stored_ids
from cdc_features.testing import chunks, feed, stream_config

CHUNKS = 5


def push_clock(client: redis.Redis, view: str) -> datetime:
    return from_micros(int(cast(bytes, client.get(f"feast:clock:{view}"))))


def lab_differences(store: Any, client: redis.Redis) -> list[str]:
    """Where Feast's online values differ from the lab's own Redis read at the same moment."""
    at = push_clock(client, fs.CUSTOMER_VIEW)
    ids = sorted(stored_ids(client, "cf") | set(active_ids(client, fs.CUSTOMER_VIEW)))
    lab = RedisFeatureReader(client).customer_features(ids, at)
    return [
        f"customer {cid} at {at}: feast {got} != lab read {lab[cid]}"
        for cid, got in fs.online_customer_features(store, ids, at).items()
        if (got or zero_customer(cid)) != lab[cid]
    ]


def online_differences(store: Any, records: Sequence[Record], client: redis.Redis) -> list[str]:
    """Where Feast's online values differ from the reference, each view read at its clock."""
    problems = []
    at_c = push_clock(client, fs.CUSTOMER_VIEW)
    want_c = reference.reference_customer_features(records, at_c)
    ids_c = sorted(set(want_c) | set(active_ids(client, fs.CUSTOMER_VIEW)))
    for cid, got in fs.online_customer_features(store, ids_c, at_c).items():
        want = want_c.get(cid, zero_customer(cid))
        if (got or zero_customer(cid)) != want:
            problems.append(f"customer {cid} at {at_c}: feast {got} != reference {want}")
    at_p = push_clock(client, fs.PRODUCT_VIEW)
    want_p = reference.reference_product_features(records, at_p)
    for pid, got_p in fs.online_product_features(store, sorted(want_p)).items():
        if (got_p or zero_product(pid)) != want_p[pid]:
            problems.append(f"product {pid} at {at_p}: feast {got_p} != reference {want_p[pid]}")
    return problems


def test_feast_sink_equals_reference_online_and_point_in_time(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    log = generate_log(5, 900, days=45)
    repo = tmp_path / "feast_repo"
    store = fs.prepare_repo(repo, redis_url)
    config = stream_config(tmp_path, redis_url, sinks=("feast",), feast_repo=repo)
    pipeline = start_pipeline(spark, config)
    seen: list[Record] = []
    history: list[tuple[datetime, list[Record]]] = []
    try:
        for index, chunk in enumerate(chunks(log, CHUNKS)):
            feed(chunk, config.input_dir, index)  # type: ignore[arg-type]
            pipeline.await_idle()
            seen += chunk
            assert lab_differences(store, redis_client) == [], f"after chunk {index}"
            assert online_differences(store, seen, redis_client) == [], f"after chunk {index}"
            history.append((push_clock(redis_client, fs.CUSTOMER_VIEW), list(seen)))
        final = fs.online_customer_features(
            store,
            sorted(reference.reference_customer_features(seen, history[-1][0])),
            history[-1][0],
        )
        assert sum(1 for f in final.values() if f and f.order_count_30d) >= 10
        assert len({t for t, _ in history}) == CHUNKS  # the clock moved at every chunk

        # Restart from the checkpoint with no new input: the same online values.
        pipeline.stop()
        pipeline = start_pipeline(spark, config)
        pipeline.await_idle()
        assert fs.online_customer_features(store, sorted(final), history[-1][0]) == final
        assert online_differences(store, seen, redis_client) == []
    finally:
        pipeline.stop()

    # Point in time: every customer at every push clock (plus 1 s before the first one).
    customers = sorted(reference.reference_customer_features(seen, history[-1][0]))
    rows = [(cid, at) for at, _ in history for cid in customers]
    rows += [(cid, history[0][0] - timedelta(seconds=1)) for cid in customers]
    entity = pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "event_timestamp": [t for _, t in rows],
            "label": range(len(rows)),
        }
    )
    out = fs.training_frame(store, entity)
    assert list(out["label"]) == list(range(len(rows)))
    expected: dict[datetime, dict[int, Any]] = {
        at: reference.reference_customer_features(records, at) for at, records in history
    }
    problems = []
    for row in out.to_dict("records"):
        at = row["event_timestamp"].to_pydatetime()
        known = not pd.isna(row["order_count_30d"])
        if at not in expected:  # before the first push: nothing known yet
            if known:
                problems.append(f"customer {row['customer_id']} known before the first push")
            continue
        want = expected[at].get(row["customer_id"], zero_customer(row["customer_id"]))
        got = (
            int(row["order_count_30d"]) if known else 0,
            row["total_spend_30d"] if known else "0.00",
            None
            if not known or pd.isna(row["days_since_last_order"])
            else int(row["days_since_last_order"]),
        )
        if got != (want.order_count_30d, str(want.total_spend_30d), want.days_since_last_order):
            problems.append(f"customer {row['customer_id']} at {at}: {got} != {want}")
    assert problems == []
