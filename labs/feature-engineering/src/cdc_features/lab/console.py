"""The lab's console view: after each micro-batch, a small table of the features that changed.

It is the lab's "features update as CDC events arrive" view. The read time T is the
stream's clock: the newest order time seen so far (the replayed log is history, so the
wall clock would put every order outside the 30-day window). The features are read
through a :class:`~cdc_features.stores.base.FeatureReader` — the Redis store when the lab
writes to Redis (exactly as serving reads it), else an in-memory store this view fills
from the batches (a demo: every changed tile of a batch is collected).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from pyspark.sql import DataFrame

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.ml.model import LinearModel
from cdc_features.ml.scorer import Score, Scorer
from cdc_features.stores.base import FeatureReader
from cdc_features.stores.layout import TILE_COLUMNS
from cdc_features.stores.memory import MemoryStore


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def format_customer_table(rows: Iterable[CustomerFeatures], at: datetime) -> str:
    """A fixed-width table of customer features read at ``at``."""
    header = ("customer", "orders_30d", "spend_30d", "avg_order_30d", "last_order", "days_since")
    body = [
        (
            str(f.customer_id),
            str(f.order_count_30d),
            str(f.total_spend_30d),
            _fmt(f.avg_order_value_30d),
            _fmt(f.last_order_ts),
            _fmt(f.days_since_last_order),
        )
        for f in rows
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = [
        f"features at T = {at:%Y-%m-%d %H:%M:%S} UTC",
        "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def format_score_table(scores: Iterable[Score]) -> str:
    """A fixed-width table of predictions and the vectors the model was given."""
    rows = [
        (
            str(s.served.customer_id),
            f"{s.probability:.3f}",
            "[" + ", ".join(f"{v:.2f}" for v in s.served.vector) + "]",
        )
        for s in scores
    ]
    header = ("customer", "p_reorder_14d", "model input (orders, ln spend, ln avg, ln days)")
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: tuple[str, str, str]) -> str:  # numbers right-aligned, the vector left
        return f"{cells[0].rjust(widths[0])}  {cells[1].rjust(widths[1])}  {cells[2]}"

    return "\n".join([line(header), *(line(r) for r in rows)])


class ConsoleFeatureView:
    """Prints the features of the customers changed by each micro-batch.

    ``reader``: where features are read (default: an in-memory store this view fills);
    ``model``: also score those customers (``npm run lab -- --score``): one batched read
    through the :class:`~cdc_features.ml.scorer.Scorer` gives both tables.
    """

    def __init__(
        self,
        *,
        reader: FeatureReader | None = None,
        max_customers: int = 5,
        out: TextIO | None = None,
        model: LinearModel | None = None,
    ) -> None:
        self.memory = MemoryStore() if reader is None else None
        self.reader: FeatureReader = reader if reader is not None else self.memory  # type: ignore[assignment]
        self.scorer = Scorer(self.reader, model) if model is not None else None
        self.max_customers = max_customers
        self.out = out or sys.stdout
        self.clock: datetime | None = None
        self._lock = threading.Lock()

    def _advance(self, ts: datetime | None) -> None:
        ts = _utc(ts)
        if ts is not None and (self.clock is None or ts > self.clock):
            self.clock = ts

    def write_customers(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: print the features of the customers the batch changed."""
        rows = [r.asDict() for r in batch_df.select(*TILE_COLUMNS).collect()]
        if self.memory is not None:
            self.memory.apply_tiles(rows)
        with self._lock:
            for row in rows:
                self._advance(row["last_order_ts"])
            changed = sorted({row["customer_id"] for row in rows})[: self.max_customers]
            if not changed or self.clock is None:
                return
            at = self.clock
        scores = self.scorer.score(changed, at) if self.scorer is not None else None
        features = (
            {cid: s.served.features for cid, s in scores.items()}
            if scores is not None
            else self.reader.customer_features(changed, at)
        )
        print(f"-- batch {batch_id}: {len(rows)} customer tiles changed", file=self.out)
        print(format_customer_table(features.values(), at), file=self.out, flush=True)
        if scores is not None:
            print(format_score_table(scores.values()), file=self.out, flush=True)

    def write_products(self, batch_df: DataFrame, batch_id: int) -> None:
        """foreachBatch function: keep the batch's order lines (for in-memory reads)."""
        if self.memory is not None:
            self.memory.write_lines(batch_df, batch_id)
