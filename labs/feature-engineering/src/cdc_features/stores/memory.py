"""An in-memory feature store: the latest tile and line rows a job wrote, by key.

Used by the lab's console view when no Redis is running and by the tests. Its write side
collects each micro-batch to the driver — fine for a demo or a test of a few hundred rows,
never for a production sink (see the Redis store).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame

from cdc_features.core.definitions import (
    CustomerFeatures,
    Line,
    ProductFeatures,
    Tile,
    customer_features_from_tiles,
    product_features_from_lines,
    recency_of_tiles,
)
from cdc_features.stores.layout import LINE_COLUMNS, TILE_COLUMNS


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class MemoryStore:
    """Absolute upserts of customer tiles and product lines; reads by the read-time definitions."""

    def __init__(self) -> None:
        self.tiles: dict[tuple[int, date], Tile] = {}
        self.lines: dict[tuple[int, date, int, int], Line] = {}
        self._lock = threading.Lock()

    # -- write side ----------------------------------------------------------------------
    def apply_tiles(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store tile rows (``customer_id, day, order_count, total_spend, last_order_ts``);
        a tile with no counted order is removed, as the Redis store deletes it."""
        with self._lock:
            for r in rows:
                key = (r["customer_id"], r["day"])
                if r["order_count"]:
                    self.tiles[key] = Tile(
                        r["day"],
                        r["order_count"],
                        Decimal(r["total_spend"]),
                        _utc(r["last_order_ts"]),
                    )
                else:
                    self.tiles.pop(key, None)

    def apply_lines(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store product line rows; an inactive line is removed."""
        with self._lock:
            for r in rows:
                key = (r["product_id"], r["day"], r["order_id"], r["item_id"])
                if r["active"]:
                    self.lines[key] = Line(
                        r["day"],
                        r["order_id"],
                        r["item_id"],
                        r["customer_id"],
                        r["units"],
                        Decimal(r["revenue"]),
                    )
                else:
                    self.lines.pop(key, None)

    def write_tiles(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: collect the batch's tiles into memory (demo and tests only)."""
        self.apply_tiles(r.asDict() for r in batch_df.select(*TILE_COLUMNS).collect())

    def write_lines(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: collect the batch's product lines into memory."""
        self.apply_lines(r.asDict() for r in batch_df.select(*LINE_COLUMNS).collect())

    # -- read side (FeatureReader) ---------------------------------------------------------
    def customer_features(self, ids: Iterable[int], at: datetime) -> dict[int, CustomerFeatures]:
        wanted = set(ids)
        with self._lock:
            tiles: dict[int, list[Tile]] = {c: [] for c in wanted}
            for (cid, _), tile in self.tiles.items():
                if cid in wanted:
                    tiles[cid].append(tile)
        # every tile is kept here, so the recency facts are those of the tiles themselves
        return {
            c: customer_features_from_tiles(c, ts, recency_of_tiles(ts), at)
            for c, ts in sorted(tiles.items())
        }

    def product_features(self, ids: Iterable[int], at: datetime) -> dict[int, ProductFeatures]:
        wanted = set(ids)
        with self._lock:
            lines: dict[int, list[Line]] = {p: [] for p in wanted}
            for (pid, *_), line in self.lines.items():
                if pid in wanted:
                    lines[pid].append(line)
        return {p: product_features_from_lines(p, ls, at) for p, ls in sorted(lines.items())}

    def customer_ids(self) -> set[int]:
        with self._lock:
            return {cid for cid, _ in self.tiles}

    def product_ids(self) -> set[int]:
        with self._lock:
            return {key[0] for key in self.lines}
