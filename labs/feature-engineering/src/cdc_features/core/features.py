"""Feature computation: typed CDC events → absolute daily facts (pure DataFrame → DataFrame).

Both functions work on a static DataFrame (tests, backfills) and on a streaming one
(Update output mode). They produce *absolute* values — replaying an event or a micro-batch
gives the same rows — and the rolling windows are applied at read time
(:mod:`cdc_features.core.definitions`), so features decay without new events.

* :func:`compute_customer_features` — one row per (customer, UTC day) tile that changed:
  the number, total and latest time of the customer's counted orders of that day.
* :func:`compute_product_features` — one row per order line that changed: where it lives
  (product, UTC day of its order), its units and revenue, and whether it counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from cdc_features.core.spec import CANCELLED, CUSTOMER, PRODUCT

__all__ = [
    "CUSTOMER_TILE_SCHEMA",
    "ORDER_FACT_SCHEMA",
    "PRODUCT_LINE_SCHEMA",
    "compute_customer_features",
    "compute_order_facts",
    "compute_product_features",
    "order_fact_versions",
    "order_line_changes",
]

CUSTOMER_TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp, commit_ts timestamp"
)
PRODUCT_LINE_SCHEMA = (
    "product_id long, day date, order_id long, item_id long, customer_id long, "
    "units int, revenue decimal(12,2), active boolean, lsn long, "
    "commit_ts timestamp"
)
# One state row per bucket: parallel arrays of the orders it holds, when each may go, and
# each order's state as JSON. Only the orders that changed are decoded and encoded again.
_STATE_SCHEMA = "order_ids array<bigint>, expires array<bigint>, orders array<string>"
# Orders are spread over this many state groups (order_id mod N). One group per order would
# cost one Python call per changed order and micro-batch (about 5 ms in PySpark 4.1, whatever
# the order does); a bucket pays that once for all of its orders in the batch.
PRODUCT_STATE_BUCKETS = 16


def _tile_changes(events: DataFrame) -> DataFrame:
    """Each order event as the version rows it writes into customer tiles.

    The after image is a version of the order in its (new) tile; for ``u``/``d`` the before
    image also writes an inactive version into its (old) tile, so an order that moved to
    another day or customer — or was deleted — leaves its old tile. On equal LSN the after
    row (rank 1) wins over the retraction (rank 0). An image without ``order_ts`` (the
    parser's event-time guard nulled an implausible future date) writes nothing: that
    version does not count, and its previous version is still retracted.
    """
    after = F.struct(
        F.col("customer_id").alias("customer_id"),
        F.col("order_ts").alias("order_ts"),
        F.col("order_id"),
        F.col("lsn"),
        F.lit(1).alias("rank"),
        (F.coalesce(F.col("status"), F.lit("")) != CANCELLED).alias("active"),
        F.col("amount"),
        F.col("commit_ts"),
    )
    retraction = F.struct(
        F.col("before_customer_id").alias("customer_id"),
        F.col("before_order_ts").alias("order_ts"),
        F.col("order_id"),
        F.col("lsn"),
        F.lit(0).alias("rank"),
        F.lit(False).alias("active"),
        F.lit(None).cast("decimal(10,2)").alias("amount"),
        F.col("commit_ts"),
    )
    # region retraction_rows
    rows = F.array(  # an update or delete also writes a retraction where the order was
        F.when((F.col("op") != "d") & F.col("order_ts").isNotNull(), after),
        F.when(F.col("op").isin("u", "d") & F.col("before_order_ts").isNotNull(), retraction),
    )
    # endregion
    return events.select(F.explode(F.filter(rows, lambda r: r.isNotNull())).alias("v")).select(
        "v.*"
    )


# region newest_version_per_order
def _latest_per_order(versions: Column) -> Column:
    """Of a tile's collected versions, the newest one of each order (max LSN, then rank)."""
    distinct = F.array_distinct(versions)  # a duplicated delivery is the same struct
    return F.filter(
        distinct,
        lambda v: (
            ~F.exists(
                distinct,
                lambda o: (
                    (o["order_id"] == v["order_id"])
                    & ((o["lsn"] > v["lsn"]) | ((o["lsn"] == v["lsn"]) & (o["rank"] > v["rank"])))
                ),
            )
        ),
    )


# endregion


def _sum_amounts(orders: Column) -> Column:
    zero = F.lit(0).cast("decimal(12,2)")
    return F.aggregate(orders, zero, lambda acc, o: (acc + o["amount"]).cast("decimal(12,2)"))


# region compute_customer_features
def compute_customer_features(order_events: DataFrame) -> DataFrame:
    """Daily customer tiles: the counted orders of one customer on one UTC day.

    A counted order's newest version (max LSN) exists and is not cancelled; it sits in the
    tile of its newest ``order_date``. Tiles hold ABSOLUTE values, so a replayed event
    changes nothing; the 30-day sums and the 365-day recency are applied when reading.
    Events behind the watermark (newest event time − 365 days) are dropped and counted.
    """
    versions = _tile_changes(order_events)
    tiles = (
        versions.withWatermark("order_ts", f"{CUSTOMER.lookback_days} days")
        .groupBy("customer_id", F.window("order_ts", "1 day"))
        .agg(
            F.collect_list(
                F.struct("order_id", "lsn", "rank", "active", "amount", "order_ts")
            ).alias("versions"),
            F.max("commit_ts").alias("commit_ts"),
        )
    )
    # Stateless projection after the aggregation: keep the newest version per order.
    counted = F.filter(_latest_per_order(F.col("versions")), lambda v: v["active"])
    return tiles.select(
        "customer_id",
        F.to_date(F.col("window.start")).alias("day"),
        F.size(counted).alias("order_count"),
        _sum_amounts(counted).alias("total_spend"),
        F.array_max(F.transform(counted, lambda v: v["order_ts"])).alias("last_order_ts"),
        "commit_ts",
    )


# endregion


ORDER_FACT_SCHEMA = (
    "customer_id long, order_id long, lsn long, rank int, active boolean, "
    "amount decimal(10,2), order_ts timestamp, commit_ts timestamp"
)


# region compute_order_facts
def order_fact_versions() -> Column:
    """The facts one order event gives, as an array of structs (``ORDER_FACT_SCHEMA``).

    The after image of a create, update or snapshot read is the order's fact at its
    customer: ``active`` unless cancelled or without ``order_ts`` (the parser's event-time
    guard nulled an implausible future date: that version does not count, yet it replaces
    the previous one), its amount and ``order_date``. When an update moves the order to
    another customer, or a delete removes it, the before image gives an inactive fact
    (``rank`` 0) at the customer it leaves. Empty for a row without an event (``op`` null).
    """
    op = F.col("op")
    after = F.struct(
        F.col("customer_id").alias("customer_id"),
        F.col("order_id").alias("order_id"),
        F.col("lsn").alias("lsn"),
        F.lit(1).alias("rank"),
        (
            (F.coalesce(F.col("status"), F.lit("")) != CANCELLED) & F.col("order_ts").isNotNull()
        ).alias("active"),
        F.col("amount").alias("amount"),
        F.col("order_ts").alias("order_ts"),
        F.col("commit_ts").alias("commit_ts"),
    )
    retraction = F.struct(
        F.col("before_customer_id").alias("customer_id"),
        F.col("order_id").alias("order_id"),
        F.col("lsn").alias("lsn"),
        F.lit(0).alias("rank"),
        F.lit(False).alias("active"),
        F.lit(None).cast("decimal(10,2)").alias("amount"),
        F.col("before_order_ts").alias("order_ts"),
        F.col("commit_ts").alias("commit_ts"),
    )
    moved_away = (op == "d") | ((op == "u") & (F.col("before_customer_id") != F.col("customer_id")))
    facts = F.array(F.when(op != "d", after), F.when(moved_away, retraction))
    return F.filter(facts, lambda r: r.isNotNull())


def compute_order_facts(order_events: DataFrame) -> DataFrame:
    """Per-order facts of customers: one row per version of an order, no state at all.

    A store keeps, per customer and order, the fact with the highest ``(lsn, rank)``, so a
    replayed or late version changes nothing, and the sums and recency are taken when
    reading (the same definitions as the daily tiles). Only row-wise operators are used, so
    the query runs in Spark's Real-Time Mode, where stateful operators are refused.
    """
    return order_events.select(F.explode(order_fact_versions()).alias("f")).select("f.*")


# endregion


def _line_inputs(order_events: DataFrame, item_events: DataFrame) -> DataFrame:
    """Order and item events as one stream keyed by ``order_id``.

    ``event_ts`` drives the watermark: the commit time, for order and item events alike (an
    item has no business time; an order's date may move far back, or be a typo the parser's
    guard nulled — ``active`` is then false). A change is late only when it was committed
    more than 7 days before the newest commit, so an update moving an order into the past
    still retracts its lines, and an order's state outlives its newest commit (below). An
    item that moved to another order also goes to its old order, as ``present = false``.
    """
    common = (
        "kind string, order_id long, lsn long, event_ts timestamp, commit_ts timestamp, "
        "present boolean, customer_id long, order_ts timestamp, active boolean, "
        "item_id long, product_id long, quantity int, unit_price decimal(10,2)"
    )
    null = F.lit(None)
    deleted = F.col("op") == "d"
    orders = order_events.select(
        F.lit("order").alias("kind"),
        "order_id",
        "lsn",
        F.col("commit_ts").alias("event_ts"),
        "commit_ts",
        (~deleted).alias("present"),
        "customer_id",
        "order_ts",
        (
            (F.coalesce(F.col("status"), F.lit("")) != CANCELLED) & F.col("order_ts").isNotNull()
        ).alias("active"),
        null.cast("long").alias("item_id"),
        null.cast("long").alias("product_id"),
        null.cast("int").alias("quantity"),
        null.cast("decimal(10,2)").alias("unit_price"),
    )
    current = F.struct(F.col("order_id").alias("order_id"), (~deleted).alias("present"))
    old = F.struct(F.col("before_order_id").alias("order_id"), F.lit(False).alias("present"))
    moved = (F.col("op") == "u") & (F.col("before_order_id") != F.col("order_id"))
    targets = F.array(F.when(~deleted, current), F.when(deleted | moved, old))
    items = item_events.withColumn(
        "target", F.explode(F.filter(targets, lambda t: t.isNotNull()))
    ).select(
        F.lit("item").alias("kind"),
        F.col("target.order_id").alias("order_id"),
        "lsn",
        F.col("commit_ts").alias("event_ts"),
        "commit_ts",
        F.col("target.present").alias("present"),
        null.cast("long").alias("customer_id"),
        null.cast("timestamp").alias("order_ts"),
        null.cast("boolean").alias("active"),
        "item_id",
        "product_id",
        "quantity",
        "unit_price",
    )
    return orders.unionByName(items).selectExpr(*[c.split()[0] for c in common.split(", ")])


def _day_of(ms: int) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).date()


def _newer(candidate: dict[str, Any], current: dict[str, Any] | None) -> bool:
    return current is None or candidate["lsn"] > current["lsn"]


def order_line_changes(
    order_id: int, state: dict[str, Any] | None, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Apply one order's new events to its state; return the new state and changed lines.

    State: the newest header (by LSN) and the newest version of each item (deleted items
    stay as LSN markers so an older, re-delivered event cannot revive them), plus where
    each line was last written. Output: the absolute line of every item of the order,
    and an inactive row where a line used to live when it moved (other day or product)
    or stopped counting. Pure Python: shared by the streaming and the static path.
    """
    st = state or {"header": None, "items": {}, "written": {}}
    header = st["header"]
    items: dict[str, dict[str, Any]] = st["items"]
    for r in rows:
        if r["kind"] == "order":
            h = {
                "lsn": r["lsn"],
                "present": bool(r["present"]),
                "customer_id": r["customer_id"],
                "order_ms": r["order_ms"],
                "active": bool(r["active"]),
                "commit_ms": r["commit_ms"],
            }
            if _newer(h, header):
                header = h
        else:
            key = str(r["item_id"])
            it = {
                "lsn": r["lsn"],
                "present": bool(r["present"]),
                "product_id": r["product_id"],
                "quantity": r["quantity"],
                "unit_price": None if r["unit_price"] is None else str(r["unit_price"]),
                "commit_ms": r["commit_ms"],
            }
            if _newer(it, items.get(key)):
                items[key] = it
    st["header"] = header
    written: dict[str, list[Any]] = st["written"]
    out: list[dict[str, Any]] = []
    for key, it in items.items():
        lsn = max(it["lsn"], header["lsn"] if header else it["lsn"])
        commit_ms = max(
            x
            for x in (it["commit_ms"], header["commit_ms"] if header else None, 0)
            if x is not None
        )
        # region product_line_core
        order_counts = header is not None and header["present"] and header["active"]
        counts = order_counts and it["present"] and it["product_id"] is not None
        place = [it["product_id"], _day_of(header["order_ms"]).isoformat()] if counts else None
        before = written.get(key)  # where this line was written last
        if before is not None and before != place:  # moved or stopped counting: retract
            out.append(_line(before, order_id, key, None, None, None, False, lsn, commit_ms))
        if place is not None:  # the absolute line at its (product, day)
            units, revenue = it["quantity"], Decimal(it["unit_price"]) * it["quantity"]
            buyer = header["customer_id"]
            line = _line(place, order_id, key, buyer, units, revenue, True, lsn, commit_ms)
            out.append(line)
            written[key] = place
        else:
            written.pop(key, None)
        # endregion
    return st, out


def _line(
    place: list[Any],
    order_id: int,
    item_id: str,
    customer_id: int | None,
    units: int | None,
    revenue: Decimal | None,
    active: bool,
    lsn: int,
    commit_ms: int,
) -> dict[str, Any]:
    return {
        "product_id": place[0],
        "day": date.fromisoformat(place[1]),
        "order_id": order_id,
        "item_id": int(item_id),
        "customer_id": customer_id,
        "units": units,
        "revenue": None if revenue is None else revenue.quantize(Decimal("0.01")),
        "active": active,
        "lsn": lsn,
        "commit_ms": commit_ms,
    }


def _timeout_ms(st: dict[str, Any]) -> int:
    """When an order's state may go (compared with the commit-time watermark): once its day
    has left every 7-day window (its day end + 7 days) AND the watermark has passed its newest
    commit. The second part keeps the LSNs of an order as long as a change of it can still
    arrive in time: a re-delivered old version is then either older than the state (ignored)
    or late (dropped), and can never revive a version the state has forgotten."""
    header = st["header"]
    day_end = 0
    if header is not None and header["order_ms"] is not None:
        day_end = (header["order_ms"] // 86_400_000 + 1) * 86_400_000
    commits = [i["commit_ms"] or 0 for i in st["items"].values()]
    if header is not None:
        commits.append(header["commit_ms"] or 0)
    return max(day_end + PRODUCT.window_days * 86_400_000, max(commits or [0]))


_INT_COLUMNS = ("order_id", "lsn", "customer_id", "item_id", "product_id", "quantity")
_OBJECT_COLUMNS = ("kind", "present", "active", "unit_price")


def _missing(value: Any) -> bool:
    """A null cell as pandas hands it over (None, NaN, NaT or NA)."""
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and value != value)
    )


def _ints(column: pd.Series) -> list[int | None]:
    """A nullable integer column (it arrives as floats when it holds nulls) as Python ints."""
    null = column.isna().to_numpy()
    values = column.fillna(0).astype("int64").tolist()
    return [None if n else v for n, v in zip(null.tolist(), values, strict=True)]


def _epoch_ms(column: pd.Series) -> list[int | None]:
    """A timestamp column (naive = UTC) as ms since the epoch, vectorized: turning each
    cell into a ``pd.Timestamp`` first would cost more than the state logic itself."""
    if not pd.api.types.is_datetime64_any_dtype(column):
        column = pd.to_datetime(column)
    if getattr(column.dt, "tz", None) is not None:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    null = column.isna().to_numpy()
    ns = column.to_numpy(dtype="datetime64[ns]").view("int64")
    return [
        None if n else v for n, v in zip(null.tolist(), (ns // 1_000_000).tolist(), strict=True)
    ]


def _records(frames: Iterable[pd.DataFrame]) -> list[dict[str, Any]]:
    """Input rows as plain dicts (times as ``order_ms`` / ``commit_ms``), in LSN order.

    Built from column lists: per-row pandas access would cost more than the state logic."""
    rows: list[dict[str, Any]] = []
    for pdf in frames:
        if pdf.empty:
            continue
        columns: dict[str, list[Any]] = {
            c: [None if _missing(v) else v for v in pdf[c].tolist()] for c in _OBJECT_COLUMNS
        }
        columns.update({c: _ints(pdf[c]) for c in _INT_COLUMNS})
        columns["order_ms"] = _epoch_ms(pdf["order_ts"])
        columns["commit_ms"] = _epoch_ms(pdf["commit_ts"])
        names = list(columns)
        rows.extend(
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        )
    rows.sort(key=lambda r: (r["lsn"], r["kind"] == "item"))
    return rows


LINE_COLUMNS = [c.split()[0] for c in PRODUCT_LINE_SCHEMA.split(", ")]


def _lines_frame(out: list[dict[str, Any]]) -> pd.DataFrame:
    """Line dicts → a pandas frame in the column order of ``PRODUCT_LINE_SCHEMA``."""
    if out:  # built from column lists: much cheaper per order than from records
        data: dict[str, Any] = {c: [o[c] for o in out] for c in LINE_COLUMNS[:-1]}
        data["units"] = pd.array(data["units"], dtype="Int32")
        data["commit_ts"] = np.array([o["commit_ms"] for o in out], dtype="datetime64[ms]").astype(
            "datetime64[ns]"
        )
        return pd.DataFrame(data)
    return _NO_LINES.copy()


def _empty_lines_frame() -> pd.DataFrame:
    pdf = pd.DataFrame([], columns=[*LINE_COLUMNS[:-1], "commit_ms"])
    pdf["units"] = pdf["units"].astype("Int32")
    pdf["commit_ts"] = pd.to_datetime(pdf.pop("commit_ms").astype("int64"), unit="ms")
    return pdf[LINE_COLUMNS]


_NO_LINES = _empty_lines_frame()  # built once, copied for every bucket without a changed line


def _by_order(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Rows (already in LSN order) split per order, keeping that order."""
    orders: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        orders.setdefault(r["order_id"], []).append(r)
    return orders


def _lines_with_state(
    key: tuple[Any, ...], frames: Iterable[pd.DataFrame], state: GroupState
) -> Iterator[pd.DataFrame]:
    """One bucket of orders: apply the new events of each order, expire old orders.

    Every order keeps the timeout a per-order state would have: the moment its day has
    left every 7-day window, but never before the watermark that saw its last change.
    An order without new events whose timeout the watermark has passed is dropped; the
    bucket's own timeout is the earliest of its orders', so an idle bucket empties too.
    """
    held: dict[int, list[Any]] = {}  # order id -> [expires, state JSON]
    if state.exists:
        ids, expires, blobs = state.get
        held = {int(i): [int(e), b] for i, e, b in zip(ids, expires, blobs, strict=True)}
    try:
        watermark = state.getCurrentWatermarkMs()
    except Exception:  # noqa: BLE001 - a group state without a watermark (e.g. a test's)
        watermark = 0
    changed: dict[int, list[dict[str, Any]]] = {}
    if not state.hasTimedOut:
        changed = _by_order(_records(frames))
    out: list[dict[str, Any]] = []
    for order_id, rows in changed.items():
        previous = held.get(order_id)
        st, lines = order_line_changes(
            order_id, json.loads(previous[1]) if previous else None, rows
        )
        held[order_id] = [
            max(_timeout_ms(st), watermark + 1),
            json.dumps(st, separators=(",", ":")),
        ]
        out.extend(lines)
    held = {k: v for k, v in held.items() if v[0] >= watermark or k in changed}
    if held:
        state.update((list(held), [v[0] for v in held.values()], [v[1] for v in held.values()]))
        state.setTimeoutTimestamp(min(v[0] for v in held.values()))
    elif state.exists:
        state.remove()
    yield _lines_frame(out)


def _lines_static(key: tuple[Any, ...], pdf: pd.DataFrame) -> pd.DataFrame:
    """The static-DataFrame path: the same per-order function, starting from no state."""
    out: list[dict[str, Any]] = []
    for order_id, rows in _by_order(_records(iter([pdf]))).items():
        out.extend(order_line_changes(order_id, None, rows)[1])
    return _lines_frame(out)


# region compute_product_features
def compute_product_features(order_events: DataFrame, item_events: DataFrame) -> DataFrame:
    """Order lines of products: where each line counts and with what units and revenue.

    A line (one ``order_items`` row) lives on (product, UTC day of its order's
    ``order_date``) and counts when the item's newest version exists and its order is
    counted (exists, not cancelled). A stateful operator keeps each order's newest
    header and items and emits the ABSOLUTE state of every line of a changed order
    (``active``), plus inactive rows where a line used to be. The 7-day sums and the
    exact distinct customers are computed at read time from these lines. Orders are
    grouped into ``PRODUCT_STATE_BUCKETS`` state rows (order_id mod N) so that Python
    runs once per bucket, not once per order; an order leaves the state once its day
    has left every 7-day window (event-time timeout).
    """
    events = (
        _line_inputs(order_events, item_events)
        .withColumn("bucket", F.pmod(F.col("order_id"), F.lit(PRODUCT_STATE_BUCKETS)))
        .withWatermark("event_ts", f"{PRODUCT.window_days} days")
    )
    if not events.isStreaming:  # Spark runs applyInPandasWithState on streams only
        return events.groupBy("bucket").applyInPandas(_lines_static, PRODUCT_LINE_SCHEMA)
    return events.groupBy("bucket").applyInPandasWithState(
        _lines_with_state,
        outputStructType=PRODUCT_LINE_SCHEMA,
        stateStructType=_STATE_SCHEMA,
        outputMode="update",
        timeoutConf=GroupStateTimeout.EventTimeTimeout,
    )


# endregion
