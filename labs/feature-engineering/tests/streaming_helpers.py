"""Helpers shared by the streaming tests: run the job on a watched folder, compare stores."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import redis

from cdc_features import reference
from cdc_features.generator import Record, write_log
from cdc_features.pipeline import PipelineConfig
from cdc_features.redis_sink import (
    read_all_customer_features, read_all_product_features, stored_ids,
)
from cdc_features.replay import zero_customer, zero_product


def redis_db(url: str, db: int) -> str:
    """The same server, another logical database."""
    return url.rsplit("/", 1)[0] + f"/{db}"


def stream_config(work: Path, redis_url: str, **overrides: object) -> PipelineConfig:
    """A files-source job writing to Redis, triggered as fast as possible, quiet."""
    options: dict[str, object] = dict(
        checkpoint_dir=work / "checkpoints", input_dir=work / "input", sinks=("redis",),
        redis_url=redis_url, trigger=None, dead_letter_dir=work / "dead_letters",
        progress=False, out=io.StringIO())
    options.update(overrides)
    (work / "input").mkdir(parents=True, exist_ok=True)
    return PipelineConfig(**options)  # type: ignore[arg-type]


def feed(records: Sequence[Record], input_dir: Path, index: int) -> None:
    """Drop one chunk of the log into the watched folder as one file."""
    write_log(records, input_dir, events_per_file=max(1, len(records)), prefix=f"chunk-{index:04d}")


def chunks(records: Sequence[Record], n: int) -> list[Sequence[Record]]:
    """``records`` cut into ``n`` consecutive chunks."""
    size = -(-len(records) // n)
    return [records[i:i + size] for i in range(0, len(records), size)]


def feature_differences(client: redis.Redis, records: Sequence[Record], at: datetime) -> list[str]:
    """Where the store read at ``at`` differs from the batch reference over ``records``."""
    want_c = reference.reference_customer_features(records, at)
    want_p = reference.reference_product_features(records, at)
    got_c = read_all_customer_features(client, at, set(want_c) | stored_ids(client, "cf"))
    got_p = read_all_product_features(client, at, set(want_p) | stored_ids(client, "pf"))
    problems = [f"customer {cid}: store {got} != reference {want_c.get(cid, zero_customer(cid))}"
                for cid, got in got_c.items() if got != want_c.get(cid, zero_customer(cid))]
    problems += [f"product {pid}: store {got} != reference {want_p.get(pid, zero_product(pid))}"
                 for pid, got in got_p.items() if got != want_p.get(pid, zero_product(pid))]
    return problems


def nonzero(features: dict[int, object]) -> int:
    """How many entities have a non-zero first count (the test really saw data)."""
    return sum(1 for f in features.values() if getattr(f, "order_count_30d", getattr(f, "units_sold_7d", 0)))
