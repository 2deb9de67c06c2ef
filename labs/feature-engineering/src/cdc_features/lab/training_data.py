"""Training data: features as they were known at each label time, not as the table says today.

A training set is built from an *entity frame*: one row per example, with the entity
(``customer_id``), the label time (``event_timestamp``) and the label. For every row,
:func:`point_in_time_frame` asks Feast's offline store (``get_historical_features``) for the
newest feature row pushed **at or before** the label time — the rows the stream pushed with
its clock, the commit time (``source.ts_ms``). That is exactly what the online store served
at that moment, so a model trains on the values it will see in production.

The naive alternative computes features by business time (``order_date <= t``) over today's
order table. It leaks: a back-dated order committed days later is counted at label times
when nobody knew it yet, and a later cancellation removes an order that was live then.
:func:`training_data_demo` runs both on one customer's story (the stream, Redis and Feast are
real) and prints them side by side; ``tests/test_training_data.py`` checks every value
against the batch reference.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession

from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.reference import Rejected, parse_change, reference_customer_features
from cdc_features.job.queries import start_customer_query
from cdc_features.job.sinks import SinkSet
from cdc_features.lab.stories import StoryLog, order, utc
from cdc_features.stores import feast_store
from cdc_features.stores.base import zero_customer
from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig
from cdc_features.testing import RedisServer, feed, stream_config

CUSTOMER_ID = 3001
LABEL_TIMES = [utc("2026-03-06T12:00:00"), utc("2026-03-10T12:00:00"), utc("2026-03-14T18:00:00")]


# region point_in_time_frame
def point_in_time_frame(store: Any, labels: pd.DataFrame) -> pd.DataFrame:
    """The training rows: each label row (``customer_id``, ``event_timestamp`` = the label
    time, ``label``) with the customer's features as served at that moment — Feast's
    point-in-time join takes, per row, the newest pushed row at or before the label time."""
    missing = {"customer_id", "event_timestamp", "label"} - set(labels.columns)
    if missing:
        raise ValueError(f"the entity frame needs the columns {sorted(missing)}")
    return feast_store.training_frame(store, labels)  # get_historical_features, row by row


# endregion


def committed_by(records: Iterable[Record], at: datetime) -> list[Record]:
    """The messages whose commit (``source.ts_ms``) is at or before ``at``: what a stream
    had seen at that moment (a tombstone goes with its delete)."""
    out: list[Record] = []
    known = False
    for record in records:
        with contextlib.suppress(Rejected):  # a tombstone goes with the delete before it
            known = parse_change(record).commit <= at
        if known:
            out.append(record)
    return out


def as_known_then(records: Sequence[Record], at: datetime) -> dict[int, CustomerFeatures]:
    """The correct training value: the features at ``at`` from the changes committed by then."""
    return reference_customer_features(committed_by(records, at), at)


def by_business_time(records: Sequence[Record], at: datetime) -> dict[int, CustomerFeatures]:
    """The naive training value: today's table, orders with ``order_date <= at``."""
    return reference_customer_features(list(records), at)


def training_story() -> list[list[Record]]:
    """The demo's changes of customer 3001, cut into one delivery per label time: each
    delivery holds what was committed before that label time and after the previous one."""
    log = StoryLog(start_lsn=31_000_000, commit_delay=timedelta(minutes=5))
    cut: list[int] = []
    log.create(order(301, CUSTOMER_ID, "2026-03-02T10:00:00", "40.00"))
    log.create(order(302, CUSTOMER_ID, "2026-03-05T09:30:00", "60.00"))
    cut.append(len(log.records))  # label time 2026-03-06 12:00
    o304 = order(304, CUSTOMER_ID, "2026-03-08T15:00:00", "80.00")
    log.create(o304)
    cut.append(len(log.records))  # label time 2026-03-10 12:00
    # A phone order of 2026-03-04, entered into the system eight days later
    log.create(order(303, CUSTOMER_ID, "2026-03-04T16:00:00", "25.00"), at="2026-03-12T11:00:00")
    log.change(o304, at="2026-03-14T16:00:00", status="cancelled")  # after the 03-10 label
    cut.append(len(log.records))  # label time 2026-03-14 18:00
    starts = [0, *cut]
    return [log.records[a:b] for a, b in zip(starts, cut, strict=False)]


def labels_frame(records: Sequence[Record]) -> pd.DataFrame:
    """The entity frame of the demo: customer 3001 at each label time; the label is whether
    the customer created another order in the next 7 days (labels may look ahead, features
    may not)."""
    created = [
        change.commit
        for change in (parse_change(r) for r in records if r["value"] is not None)
        if change.table == "orders" and change.op == "c"
    ]
    return pd.DataFrame(
        {
            "customer_id": [CUSTOMER_ID] * len(LABEL_TIMES),
            "event_timestamp": LABEL_TIMES,
            "label": [
                int(any(t < c <= t + timedelta(days=7) for c in created)) for t in LABEL_TIMES
            ],
        }
    )


@dataclass(frozen=True)
class TrainingRow:
    """One label time of the demo: the value served online, the training row, the naive one."""

    at: datetime
    label: int
    served: CustomerFeatures
    training: tuple[int, Decimal, int | None]  # order_count_30d, total_spend_30d, days_since
    naive: CustomerFeatures


def run_demo(spark: SparkSession, work: Path) -> tuple[list[list[Record]], list[TrainingRow]]:
    """Stream the story into Redis and Feast one delivery per label time, read Feast online
    at each label time, then build the training set from the entity frame."""
    deliveries = training_story()
    everything = [r for d in deliveries for r in d]
    served: dict[datetime, CustomerFeatures] = {}
    with RedisServer(work / "redis") as redis_server:
        repo = work / "feast_repo"
        store = feast_store.prepare_repo(repo, redis_server.url)
        config = stream_config(work, redis_server.url, sinks=("feast",), feast_repo=repo)
        sink = FeastSink(FeastSinkConfig(repo, config.redis))
        query = start_customer_query(spark, config, SinkSet([sink.push_to_feast], []))
        try:
            for index, (delivery, at) in enumerate(zip(deliveries, LABEL_TIMES, strict=True)):
                feed(delivery, work / "input", index)  # stream_config's watched folder
                query.processAllAvailable()
                online = feast_store.online_customer_features(store, [CUSTOMER_ID], at)
                served[at] = online[CUSTOMER_ID] or zero_customer(CUSTOMER_ID)
        finally:
            query.stop()
            sink.close()
        labels = labels_frame(everything)
        frame = point_in_time_frame(store, labels)
    rows = []
    for record in frame.to_dict("records"):
        at = record["event_timestamp"].to_pydatetime()
        days = record["days_since_last_order"]
        rows.append(
            TrainingRow(
                at=at,
                label=int(record["label"]),
                served=served[at],
                training=(
                    int(record["order_count_30d"]),
                    Decimal(record["total_spend_30d"]),
                    None if pd.isna(days) else int(days),
                ),
                naive=by_business_time(everything, at)[CUSTOMER_ID],
            )
        )
    return deliveries, rows


def _money(value: Decimal | None) -> str:
    return "null" if value is None else f"{value:.2f}"


def render(deliveries: Sequence[Sequence[Record]], rows: Sequence[TrainingRow]) -> str:
    lines = [
        f"Training data for customer {CUSTOMER_ID}: features at each label time",
        "",
        "Changes in commit order (order_date / committed):",
    ]
    for record in (r for d in deliveries for r in d):
        change = parse_change(record)
        image = change.after or change.before or {}
        what = {"c": "created", "u": f"-> {image.get('status')}", "d": "deleted"}[change.op]
        lines.append(
            f"  order {change.row_id} {what:<13} {image['order_date']:%Y-%m-%d %H:%M}"
            f"  {image['total_amount']:>6}  committed {change.commit:%Y-%m-%d %H:%M}"
        )
    lines += [
        "",
        "label time         label  served online   training set     naive: order_date",
        "                          (Feast, at t)   (historical, t)  over today's table",
    ]
    for row in rows:
        served = f"{row.served.order_count_30d}  {_money(row.served.total_spend_30d)}"
        training = f"{row.training[0]}  {_money(row.training[1])}"
        naive = f"{row.naive.order_count_30d}  {_money(row.naive.total_spend_30d)}"
        leak = (
            ""
            if (row.naive.order_count_30d, row.naive.total_spend_30d)
            == (
                row.training[0],
                row.training[1],
            )
            else "  <- leak"
        )
        lines.append(
            f"{row.at:%Y-%m-%d %H:%M}   {row.label:>5}  {served:<14}  {training:<15}  {naive}{leak}"
        )
    return "\n".join(lines) + "\n"


def training_data_demo(spark: SparkSession) -> str:
    """The lesson's output: the story, then per label time served / training / naive."""
    with tempfile.TemporaryDirectory(prefix="training-data-") as tmp:
        deliveries, rows = run_demo(spark, Path(tmp))
    return render(deliveries, rows)
