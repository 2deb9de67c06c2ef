"""Console sink: after each micro-batch, a small table of the features that just changed.

It is the lab's "features update as CDC events arrive" view. The read time T is the
stream's clock: the newest order time seen so far (the replayed log is history, so the
wall clock would put every order outside the 30-day window). With a Redis client the
features are read from the store exactly as serving reads them; without one the sink keeps
the tiles it has seen in driver memory (a demo: every changed tile of a batch is collected).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TextIO

import redis
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdc_features.definitions import (
    CustomerFeatures, Line, ProductFeatures, Tile, customer_features_from_tiles,
    product_features_from_lines,
)
from cdc_features.redis_sink import read_customer_features, read_product_features


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def format_customer_table(rows: Iterable[CustomerFeatures], at: datetime) -> str:
    """A fixed-width table of customer features read at ``at``."""
    header = ("customer", "orders_30d", "spend_30d", "avg_order_30d", "last_order", "days_since")
    body = [(str(f.customer_id), str(f.order_count_30d), str(f.total_spend_30d),
             _fmt(f.avg_order_value_30d), _fmt(f.last_order_ts), _fmt(f.days_since_last_order))
            for f in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(header)]
    lines = [f"features at T = {at:%Y-%m-%d %H:%M:%S} UTC",
             "  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(lines)


class ConsoleFeatureView:
    """Prints the features of the customers changed by each micro-batch."""

    def __init__(self, *, client: redis.Redis | None = None, max_customers: int = 5,
                 out: TextIO | None = None) -> None:
        self.client = client
        self.max_customers = max_customers
        self.out = out or sys.stdout
        self.tiles: dict[tuple[int, date], Tile] = {}
        self.lines: dict[tuple[int, date, int, int], Line] = {}
        self.clock: datetime | None = None
        self._lock = threading.Lock()

    def _advance(self, ts: datetime | None) -> None:
        ts = _utc(ts)
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts

    def write_customers(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: remember the batch's tiles and print the changed customers."""
        rows = batch_df.select("customer_id", "day", "order_count", "total_spend",
                               "last_order_ts").collect()
        with self._lock:
            for row in rows:
                self._advance(row["last_order_ts"])
                key = (row["customer_id"], row["day"])
                if row["order_count"]:
                    self.tiles[key] = Tile(row["day"], row["order_count"],
                                           Decimal(row["total_spend"]), _utc(row["last_order_ts"]))
                else:
                    self.tiles.pop(key, None)
            changed = sorted({row["customer_id"] for row in rows})[: self.max_customers]
            if not changed or self.clock is None:
                return
            at = self.clock
            features = [self.customer_features(cid, at) for cid in changed]
        print(f"-- batch {batch_id}: {len(rows)} customer tiles changed", file=self.out)
        print(format_customer_table(features, at), file=self.out, flush=True)

    def write_products(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: remember the batch's order lines (for in-memory reads)."""
        if self.client is not None:
            return
        rows = batch_df.select("product_id", "day", "order_id", "item_id", "customer_id",
                               "units", "revenue", "active").collect()
        with self._lock:
            for row in rows:
                key = (row["product_id"], row["day"], row["order_id"], row["item_id"])
                if row["active"]:
                    self.lines[key] = Line(row["day"], row["order_id"], row["item_id"],
                                           row["customer_id"], row["units"], Decimal(row["revenue"]))
                else:
                    self.lines.pop(key, None)

    def customer_features(self, customer_id: int, at: datetime) -> CustomerFeatures:
        """Features of one customer at ``at`` (from Redis when connected, else from memory)."""
        if self.client is not None:
            return read_customer_features(self.client, customer_id, at)
        tiles = [t for (cid, _), t in self.tiles.items() if cid == customer_id]
        return customer_features_from_tiles(customer_id, tiles, at)

    def product_features(self, product_id: int, at: datetime) -> ProductFeatures:
        """Features of one product at ``at`` (from Redis when connected, else from memory)."""
        if self.client is not None:
            return read_product_features(self.client, product_id, at)
        lines = [line for (pid, *_), line in self.lines.items() if pid == product_id]
        return product_features_from_lines(product_id, lines, at)


def newest_order_time(batch_df: DataFrame) -> datetime | None:
    """The newest ``last_order_ts`` of a tile batch (helper for callers that track T)."""
    row = batch_df.agg(F.max("last_order_ts").alias("t")).collect()[0]
    return _utc(row["t"])
