"""The customer query of the pipeline with ``push_to_feast`` as its foreachBatch sink, over a
generated Debezium log fed in chunks: after every micro-batch Feast's online values equal the
lab's own Redis read at the same moment; the training set built afterwards from the offline
store reproduces, at each push time, exactly what serving returned then; a restart from the
checkpoint leaves the online values unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

import pandas as pd
import redis
from pyspark.sql import SparkSession

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.job.queries import start_customer_query
from cdc_features.job.sinks import SinkSet
from cdc_features.lab.generator import generate_log
from cdc_features.stores import feast_store as fs
from cdc_features.stores.base import zero_customer as zero
from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig
from cdc_features.stores.layout import from_micros
from cdc_features.stores.redis_store import RedisFeatureReader, stored_ids
from cdc_features.testing import chunks, feed, stream_config

CHUNKS = 5


def clock(client: redis.Redis) -> datetime:
    return from_micros(int(cast(bytes, client.get(f"feast:clock:{fs.CUSTOMER_VIEW}"))))


def test_feast_follows_the_lab_store_batch_by_batch_and_in_training_data(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    log = generate_log(5, 900, days=45)
    repo = tmp_path / "feast_repo"
    store = fs.prepare_repo(repo, redis_url)
    config = stream_config(tmp_path, redis_url, sinks=("feast",), feast_repo=repo)
    feast_sink = FeastSink(FeastSinkConfig(repo, config.redis))
    sinks = SinkSet([feast_sink.push_to_feast], [])
    reader = RedisFeatureReader(redis_client)
    query = start_customer_query(spark, config, sinks)
    seen_ids: set[int] = set()
    served: dict[datetime, dict[int, CustomerFeatures]] = {}
    try:
        for index, chunk in enumerate(chunks(log, CHUNKS)):
            feed(chunk, config.input_dir, index)  # type: ignore[arg-type]
            query.processAllAvailable()
            at = clock(redis_client)
            seen_ids |= stored_ids(redis_client, "cf")
            ids = sorted(seen_ids)
            lab = reader.customer_features(ids, at)
            feast = fs.online_customer_features(store, ids, at)
            assert {c: f or zero(c) for c, f in feast.items()} == lab, f"after chunk {index}"
            # read later the same UTC day: still equal (days_since is computed on demand)
            later = min(at.replace(hour=23, minute=59, second=59), at + timedelta(hours=6))
            assert {
                c: f or zero(c) for c, f in fs.online_customer_features(store, ids, later).items()
            } == reader.customer_features(ids, later)
            served[at] = lab
        assert len(served) == CHUNKS
        final_at = max(served)
        assert sum(1 for f in served[final_at].values() if f.order_count_30d) >= 10
        assert sum(1 for f in served[final_at].values() if f.order_count_30d == 0) >= 1

        query.stop()  # restart from the checkpoint, no new input
        query = start_customer_query(spark, config, sinks)
        query.processAllAvailable()
        after = fs.online_customer_features(store, sorted(seen_ids), final_at)
        assert {c: f or zero(c) for c, f in after.items()} == served[final_at]
    finally:
        query.stop()
        feast_sink.close()

    # Training data: every customer at every push time, and 1 s before the first push.
    ids = sorted(seen_ids)
    times = sorted(served)
    rows = [(c, t) for t in times for c in ids] + [
        (c, times[0] - timedelta(seconds=1)) for c in ids
    ]
    entity = pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "event_timestamp": [t for _, t in rows],
            "label": range(len(rows)),
        }
    )
    out = fs.training_frame(store, entity)
    assert list(out["label"]) == list(range(len(rows)))
    problems = []
    for row in out.to_dict("records"):
        at = row["event_timestamp"].to_pydatetime()
        known = not pd.isna(row["order_count_30d"])
        if at not in served:
            if known:
                problems.append(f"customer {row['customer_id']}: a value before the first push")
            continue
        want = served[at].get(row["customer_id"], zero(row["customer_id"]))
        got = (
            int(row["order_count_30d"]) if known else 0,
            row["total_spend_30d"] if known else "0.00",
            row["avg_order_value_30d"] if known else None,
            None
            if not known or pd.isna(row["days_since_last_order"])
            else int(row["days_since_last_order"]),
        )
        expected = (
            want.order_count_30d,
            str(want.total_spend_30d),
            None if want.avg_order_value_30d is None else str(want.avg_order_value_30d),
            want.days_since_last_order,
        )
        if got != expected:
            problems.append(f"customer {row['customer_id']} at {at}: {got} != {expected}")
    assert problems == []
