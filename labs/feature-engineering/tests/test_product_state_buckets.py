"""The product query's state buckets: each order keeps its own expiry inside its bucket.

Runs the state function directly with a stand-in for Spark's ``GroupState`` (no Spark), so
the eviction rules are checked exactly: an order stays while the watermark has not passed
its day end + 7 days, an order that just changed is never dropped in that call, the
bucket's timeout is the earliest expiry of its orders, and an emptied bucket is removed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pandas as pd
from pyspark.sql.streaming.state import GroupState

from cdc_features.core.features import _lines_with_state

DAY_MS = 86_400_000


def ms(day: int) -> int:
    return int(datetime(2026, 3, day, 12, tzinfo=UTC).timestamp() * 1000)


def expiry(day: int) -> int:
    """Day end of 2026-03-<day> + 7 days, in ms."""
    return int(datetime(2026, 3, day, tzinfo=UTC).timestamp() * 1000) + 8 * DAY_MS


class FakeState:
    """The parts of ``GroupState`` the state function uses."""

    def __init__(
        self, value: tuple[list[Any], ...] | None, watermark: int, timed_out: bool = False
    ) -> None:
        self.value = value
        self.watermark = watermark
        self.hasTimedOut = timed_out
        self.timeout: int | None = None
        self.removed = False

    @property
    def exists(self) -> bool:
        return self.value is not None

    @property
    def get(self) -> tuple[list[Any], ...]:
        assert self.value is not None
        return self.value

    def update(self, row: tuple[list[Any], ...]) -> None:
        ids, expires, orders = row  # the state schema: three parallel arrays
        assert len(ids) == len(expires) == len(orders)
        self.value = row

    def remove(self) -> None:
        self.value, self.removed = None, True

    def getCurrentWatermarkMs(self) -> int:
        return self.watermark

    def setTimeoutTimestamp(self, ts: int) -> None:
        assert ts >= self.watermark, "Spark rejects a timeout behind the watermark"
        self.timeout = ts


def order_with_item(order_id: int, day: int, lsn: int) -> pd.DataFrame:
    """An order created on 2026-03-<day> with one item, as the query's input rows."""
    ts = pd.Timestamp(ms(day), unit="ms")
    return pd.DataFrame(
        {
            "kind": ["order", "item"],
            "order_id": [order_id, order_id],
            "lsn": [lsn, lsn + 1],
            "event_ts": [ts, ts],
            "commit_ts": [ts, ts],
            "present": [True, True],
            "customer_id": [7.0, None],
            "order_ts": [ts, pd.NaT],
            "active": [True, None],
            "item_id": [None, float(order_id * 10)],
            "product_id": [None, 3.0],
            "quantity": [None, 2.0],
            "unit_price": [None, Decimal("5.00")],
        }
    )


def run(state: FakeState, *frames: pd.DataFrame) -> pd.DataFrame:
    frames_out = list(_lines_with_state((0,), iter(frames), cast(GroupState, state)))
    return pd.concat(frames_out)


def orders_in(state: FakeState) -> dict[str, Any]:
    """Order id (as text) -> {"expires", "order"} of the orders the bucket holds."""
    if state.value is None:
        return {}
    return {
        str(i): {"expires": e, "order": json.loads(o)} for i, e, o in zip(*state.value, strict=True)
    }


def test_orders_expire_one_by_one_and_the_bucket_goes_when_empty() -> None:
    state = FakeState(None, watermark=0)
    lines = run(state, order_with_item(16, 1, 100), order_with_item(32, 5, 200))
    assert sorted(lines["order_id"]) == [16, 32]
    assert list(lines["revenue"]) == [Decimal("10.00")] * 2
    assert set(orders_in(state)) == {"16", "32"}
    assert state.timeout == expiry(1)  # the earliest order decides when the bucket wakes

    # The watermark passes order 16's expiry only: it goes, order 32 stays.
    state.watermark, state.hasTimedOut = expiry(1) + 1, True
    assert run(state).empty
    assert set(orders_in(state)) == {"32"}
    assert state.timeout == expiry(5)

    # At exactly its expiry an order is still kept (Spark times out only when passed).
    state.watermark = expiry(5)
    run(state)
    assert set(orders_in(state)) == {"32"} and not state.removed

    state.watermark = expiry(5) + 1
    run(state)
    assert state.removed and state.value is None


def test_an_order_changed_in_this_call_stays_even_behind_the_watermark() -> None:
    # Its day is long gone, but the call that saw its change keeps it until the next one.
    state = FakeState(None, watermark=expiry(20))
    lines = run(state, order_with_item(48, 1, 300))
    assert list(lines["order_id"]) == [48]
    kept = orders_in(state)["48"]
    assert kept["expires"] == expiry(20) + 1
    assert state.timeout == expiry(20) + 1
