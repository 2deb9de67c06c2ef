"""Small readable CDC stories (one customer / product each) and an in-memory feature store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession

from cdc_features import debezium_json as dj
from cdc_features.debezium_json import OrderItemRow as Item
from cdc_features.debezium_json import OrderRow as Order
from cdc_features.definitions import (
    CustomerFeatures,
    Line,
    ProductFeatures,
    Tile,
    customer_features_from_tiles,
    product_features_from_lines,
)
from cdc_features.envelope import parse_item_events, parse_order_events
from cdc_features.features import compute_customer_features, compute_product_features

RAW_SCHEMA = "topic string, key string, value string"
D = datetime(2026, 3, 10, 12, 0)          # the stories' "now" (naive = UTC, like TIMESTAMP)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)
Record = dict[str, str | None]


class Log:
    """An event log written like a story: ``log.create(order)``, ``log.update(old, new)``…"""

    def __init__(self, lsn: int = 1000) -> None:
        self.records: list[Record] = []
        self.lsn = lsn

    def _next(self, lsn: int | None) -> int:
        if lsn is not None:
            return lsn
        self.lsn += 10
        return self.lsn

    def create(self, row: Order | Item, *, lsn: int | None = None, at: datetime | None = None,
               op: str = "c", **opts: Any) -> Record:
        commit = at or (row.order_date + MIN if isinstance(row, Order) else D)
        rec = dj.change_record(op, after=row, lsn=self._next(lsn), commit_ts=commit, **opts)
        self.records.append(rec)
        return rec

    def update(self, old: Order | Item, new: Order | Item, *, lsn: int | None = None,
               at: datetime = D, **opts: Any) -> Record:
        rec = dj.change_record("u", before=old, after=new, lsn=self._next(lsn), commit_ts=at, **opts)
        self.records.append(rec)
        return rec

    def delete(self, old: Order | Item, *, at: datetime = D, **opts: Any) -> None:
        self.records.append(dj.change_record("d", before=old, lsn=self._next(None), commit_ts=at,
                                             **opts))
        table = dj.ORDERS if isinstance(old, Order) else dj.ORDER_ITEMS
        self.records.append(dj.tombstone_record(table, old.id, schemas=opts.get("schemas", True)))

    def again(self, *recs: Record) -> None:
        """The same messages delivered once more (a connector restart)."""
        self.records.extend(recs)


def story_log() -> Log:
    """Every story of the lesson, one customer (and product) per story; see test expectations."""
    log = Log()
    # 1. create: customer 1
    o101 = Order(101, 1, D, "pending", Decimal("10.00"))
    log.create(o101)
    log.create(Item(1011, 101, 1, 2, Decimal("2.50")))          # product 1: 2 x 2.50
    i1012 = Item(1012, 101, 3, 1, Decimal("9.00"))              # product 3: deleted below
    log.create(i1012)
    log.delete(i1012)
    # 2. amount update: customer 2 (sum changes, count does not)
    o201 = Order(201, 2, D - 2 * DAY, "pending", Decimal("10.00"))
    log.create(o201)
    log.create(Item(2011, 201, 1, 1, Decimal("10.00")))          # product 1: 1 x 10.00
    log.update(o201, Order(201, 2, D - 2 * DAY, "shipped", Decimal("25.50")))
    # 3. cancellation: customer 3
    o301 = Order(301, 3, D, "pending", Decimal("10.00"))
    o302 = Order(302, 3, D, "pending", Decimal("20.00"))
    log.create(o301)
    log.create(o302)
    log.create(Item(3021, 302, 1, 5, Decimal("1.00")))           # product 1: not counted
    i3011 = Item(3011, 301, 2, 1, Decimal("3.00"))               # product 2: moves to order 401
    log.create(i3011)
    log.update(o302, Order(302, 3, D, "cancelled", Decimal("20.00")))
    # 4. delete (+ tombstone): customer 4
    o401 = Order(401, 4, D - DAY, "pending", Decimal("10.00"))
    o402 = Order(402, 4, D, "pending", Decimal("5.00"))
    log.create(o401)
    log.create(o402)
    i4021 = Item(4021, 402, 1, 3, Decimal("1.00"))
    log.create(i4021)
    log.delete(i4021)
    log.delete(o402)
    log.update(i3011, Item(3011, 401, 2, 2, Decimal("3.00")))   # product 2: 2 x 3.00, customer 4
    # 5. move: order 501 from customer 5 on D to customer 6 three days earlier
    o501 = Order(501, 5, D, "pending", Decimal("7.00"))
    log.create(o501)
    log.create(Item(5011, 501, 1, 1, Decimal("4.00")))           # product 1: 1 x 4.00, customer 6
    log.update(o501, Order(501, 6, D - 3 * DAY, "pending", Decimal("7.00")))
    # 6. late but within the horizon: customer 7, 13 days back (products: 7-day horizon passed)
    log.create(Order(701, 7, D - 13 * DAY, "pending", Decimal("70.00")), at=D + MIN)
    # 8. snapshot overlapping the first streamed changes: customer 9
    o901 = Order(901, 9, D - DAY, "pending", Decimal("10.00"))
    o902 = Order(902, 9, D - DAY, "pending", Decimal("3.00"))
    c902 = log.create(o902, lsn=900, at=D - DAY)                # streamed just before the snapshot
    log.create(o901, lsn=1000, at=D - DAY)
    log.update(o901, Order(901, 9, D - DAY, "pending", Decimal("12.00")), lsn=1100, at=D - DAY)
    log.create(Order(901, 9, D - DAY, "pending", Decimal("11.00")), op="r", lsn=1050, at=D - DAY)
    log.create(o902, op="r", lsn=1050, at=D - DAY)
    log.again(c902)
    # 9. the same events twice: customer 10
    o1001 = Order(1001, 10, D, "pending", Decimal("7.00"))
    c = log.create(o1001)
    u = log.update(o1001, Order(1001, 10, D, "pending", Decimal("8.00")))
    log.again(c, u)
    # 10. silence: customer 11, one order 31 days before the last read
    log.create(Order(1101, 11, D - 2 * DAY, "pending", Decimal("11.00")))
    # 7. too late (31+ days behind everything above): customer 8 — last, so a stream drops it
    log.create(Order(801, 8, D - 45 * DAY, "pending", Decimal("80.00")), at=D + 2 * MIN)
    return log


def utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts


def raw_frame(spark: SparkSession, records: Sequence[Record]) -> DataFrame:
    return spark.createDataFrame(list(records), RAW_SCHEMA)


@dataclass
class Store:
    """A test-only feature store: the latest tile / line rows the jobs wrote, by key."""

    tiles: dict[tuple[int, date], Tile] = field(default_factory=dict)
    lines: dict[tuple[int, date, int, int], Line] = field(default_factory=dict)

    def put_tiles(self, rows: Iterable[Row]) -> None:
        for r in rows:
            self.tiles[(r["customer_id"], r["day"])] = Tile(
                r["day"], r["order_count"], r["total_spend"],
                utc(r["last_order_ts"]) if r["last_order_ts"] is not None else None)

    def put_lines(self, rows: Iterable[Row]) -> None:
        for r in rows:
            key = (r["product_id"], r["day"], r["order_id"], r["item_id"])
            if r["active"]:
                self.lines[key] = Line(r["day"], r["order_id"], r["item_id"], r["customer_id"],
                                       r["units"], r["revenue"])
            else:
                self.lines.pop(key, None)

    def customers(self, at: datetime, ids: Iterable[int] = ()) -> dict[int, CustomerFeatures]:
        by_customer: dict[int, list[Tile]] = {c: [] for c in ids}
        for (c, _), tile in self.tiles.items():
            by_customer.setdefault(c, []).append(tile)
        return {c: customer_features_from_tiles(c, tiles, at)
                for c, tiles in sorted(by_customer.items())}

    def products(self, at: datetime, ids: Iterable[int] = ()) -> dict[int, ProductFeatures]:
        by_product: dict[int, list[Line]] = {p: [] for p in ids}
        for (p, *_), line in self.lines.items():
            by_product.setdefault(p, []).append(line)
        return {p: product_features_from_lines(p, lines, at)
                for p, lines in sorted(by_product.items())}


def static_store(spark: SparkSession, records: Sequence[Record]) -> Store:
    """Run both feature functions on a static DataFrame of ``records``."""
    raw = raw_frame(spark, records)
    orders = parse_order_events(raw).events
    items = parse_item_events(raw).events
    store = Store()
    store.put_tiles(compute_customer_features(orders).collect())
    store.put_lines(compute_product_features(orders, items).collect())
    return store


def newest_time(records: Iterable[Record]) -> datetime:
    """The newest event time of a log: max of order_date (before/after) and commit time."""
    newest = 0
    for rec in records:
        if rec["value"] is None:
            continue
        try:
            msg = json.loads(rec["value"])
        except ValueError:
            continue
        payload = msg.get("payload", msg) if isinstance(msg, dict) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("source"), dict):
            continue
        newest = max(newest, (payload["source"].get("ts_ms") or 0) * 1000)
        for image in ("before", "after"):
            row = payload.get(image)
            if isinstance(row, dict) and isinstance(row.get("order_date"), int):
                newest = max(newest, row["order_date"])
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=newest)


class StreamRun:
    """Both feature queries on a watched folder, one availableNow run per step."""

    def __init__(self, spark: SparkSession, work: Path) -> None:
        self.spark = spark
        self.input = work / "input"
        self.input.mkdir(parents=True)
        self.checkpoints = work / "checkpoints"
        self.store = Store()
        self.steps = 0
        self.dropped = {"customers": 0, "products": 0}

    def step(self, records: Sequence[Record]) -> None:
        (self.input / f"step-{self.steps:03d}.json").write_text(
            "".join(json.dumps(r) + "\n" for r in records))
        self.steps += 1
        raw = self.spark.readStream.schema(RAW_SCHEMA).json(str(self.input))
        orders = parse_order_events(raw).events
        items = parse_item_events(raw).events
        queries = {
            "customers": compute_customer_features(orders).writeStream.outputMode("update")
            .foreachBatch(lambda df, _: self.store.put_tiles(df.collect())),
            "products": compute_product_features(orders, items).writeStream.outputMode("update")
            .foreachBatch(lambda df, _: self.store.put_lines(df.collect())),
        }
        started = [(name, w.trigger(availableNow=True)
                    .option("checkpointLocation", str(self.checkpoints / name)).start())
                   for name, w in queries.items()]
        for name, q in started:
            q.awaitTermination()
            for progress in q.recentProgress:
                for op in progress.get("stateOperators", []):
                    self.dropped[name] += op.get("numRowsDroppedByWatermark", 0)
