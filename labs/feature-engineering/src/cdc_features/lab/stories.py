"""Change-event stories told as raw Debezium records, and the stories the lab tells.

:class:`StoryLog` appends the message(s) the Debezium PostgreSQL connector would write for
each change of ``inventory.orders`` / ``inventory.order_items``: LSNs grow with every event
(or are given, to tell a snapshot that overlaps streamed changes), ``source.ts_ms`` is the
commit time, a delete is followed by its tombstone. The pitfalls, the exercise, the monitoring
sample and the tests build their logs with it.

Times given as text are ISO dates in UTC (``"2026-03-02T11:00:00"``); naive datetimes are UTC.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from cdc_features.core import debezium_json as dj
from cdc_features.core.debezium_json import OrderItemRow, OrderRow, Record

Row = OrderRow | OrderItemRow
When = datetime | str
R = TypeVar("R", OrderRow, OrderItemRow)


def utc(when: When) -> datetime:
    """An aware UTC datetime from ISO text or a (naive = UTC) datetime."""
    ts = datetime.fromisoformat(when) if isinstance(when, str) else when
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def order(
    order_id: int,
    customer_id: int,
    order_date: When,
    amount: Decimal | str,
    *,
    status: str = "pending",
) -> OrderRow:
    """One row image of ``inventory.orders``."""
    return OrderRow(order_id, customer_id, utc(order_date), status, Decimal(amount))


def item(
    item_id: int, order_id: int, product_id: int, quantity: int, unit_price: Decimal | str
) -> OrderItemRow:
    """One row image of ``inventory.order_items``."""
    return OrderItemRow(item_id, order_id, product_id, quantity, Decimal(unit_price))


class StoryLog:
    """A story of changes, told as raw Debezium records (``self.records``).

    ``commit_delay``: an order created without an explicit commit time commits this long
    after its ``order_date``; ``default_commit``: the commit time of any other change
    without one (``None``: it must be given).
    """

    def __init__(
        self,
        *,
        schemas: bool = True,
        decimal_mode: dj.DecimalMode = "precise",
        start_lsn: int = 24_000_000,
        lsn_step: int = 16,
        commit_delay: timedelta = timedelta(0),
        default_commit: When | None = None,
    ) -> None:
        self.schemas = schemas
        self.decimal_mode: dj.DecimalMode = decimal_mode
        self.lsn = start_lsn
        self.lsn_step = lsn_step
        self.commit_delay = commit_delay
        self.default_commit = None if default_commit is None else utc(default_commit)
        self.records: list[Record] = []

    def _lsn(self, lsn: int | None) -> int:
        if lsn is not None:
            return lsn
        self.lsn += self.lsn_step
        return self.lsn

    def _commit(self, at: When | None, row: Row | None = None) -> datetime:
        if at is not None:
            return utc(at)
        if isinstance(row, OrderRow) and row.order_date is not None:
            return utc(row.order_date) + self.commit_delay
        if self.default_commit is None:
            raise ValueError("give the commit time (at=...) of this change")
        return self.default_commit

    def emit(
        self,
        op: dj.Op,
        *,
        before: Row | None = None,
        after: Row | None = None,
        at: When | None = None,
        lsn: int | None = None,
        **options: Any,
    ) -> Record:
        """Append one change event (``options`` go to :func:`~dj.change_record`)."""
        options.setdefault("schemas", self.schemas)
        options.setdefault("decimal_mode", self.decimal_mode)
        commit = self._commit(at, after if after is not None else None)
        record = dj.change_record(
            op, before=before, after=after, lsn=self._lsn(lsn), commit_ts=commit, **options
        )
        self.records.append(record)
        return record

    def create(
        self,
        row: Row,
        *,
        at: When | None = None,
        lsn: int | None = None,
        op: dj.Op = "c",
        **options: Any,
    ) -> Record:
        """An insert (``c``), or with ``op="r"`` a snapshot read of an existing row."""
        return self.emit(op, after=row, at=at, lsn=lsn, **options)

    def snapshot(self, row: Row, *, at: When, lsn: int | None = None) -> Record:
        """A snapshot read (``r``): commit and processing time are the snapshot time."""
        return self.emit("r", after=row, at=at, lsn=lsn, processed_ts=utc(at))

    def update(
        self, old: Row, new: Row, *, at: When | None = None, lsn: int | None = None, **options: Any
    ) -> Record:
        """An update (``u``) with the full old row (``REPLICA IDENTITY FULL``)."""
        return self.emit(
            "u", before=old, after=new, at=at or self.default_commit, lsn=lsn, **options
        )

    def change(self, old: R, *, at: When, **changes: Any) -> R:
        """An update of some columns of ``old``; returns the new row."""
        if "total_amount" in changes:
            changes["total_amount"] = Decimal(changes["total_amount"])
        if "unit_price" in changes:
            changes["unit_price"] = Decimal(changes["unit_price"])
        if "order_date" in changes:
            changes["order_date"] = utc(changes["order_date"])
        new = replace(old, **changes)
        self.update(old, new, at=at)
        return new

    def delete(
        self, old: Row, *, at: When | None = None, lsn: int | None = None, **options: Any
    ) -> Record:
        """A delete (``d``) followed by its tombstone (same key, null value)."""
        record = self.emit("d", before=old, at=at or self.default_commit, lsn=lsn, **options)
        table = dj.ORDERS if isinstance(old, OrderRow) else dj.ORDER_ITEMS
        self.records.append(
            dj.tombstone_record(table, old.id, schemas=options.get("schemas", self.schemas))
        )
        return record

    def again(self, *records: Record) -> None:
        """The same messages delivered once more (at-least-once: a connector restart)."""
        self.records.extend(dict(r) for r in records)

    def redeliver_last(self) -> None:
        """The newest message delivered a second time."""
        self.again(self.records[-1])


# ---------------------------------------------------------------------------
# The exercise's log: one story per customer, four deliveries (micro-batches).
# ---------------------------------------------------------------------------

# What each customer of the exercise's log tells, in the order the checker looks for a
# mistake (the first story whose customer differs from the reference names it).
EXERCISE_STORIES: dict[int, str] = {
    101: "a regular customer: snapshot orders, new orders, amount updates",
    102: "an order cancelled right after it was created; then silence (the count decays)",
    103: "an order deleted (+ tombstone) and the newest order cancelled weeks later",
    104: "order 15 moved away: to customer 105 and from 2026-03-03 to 2026-03-12",
    105: "order 15 moved in (from customer 104)",
    106: "one create event delivered twice (at-least-once delivery)",
    107: "an order dated 2025-03-01 committed on 2026-04-04: behind the watermark",
    108: "back-dated orders: dated 2026-03-04 and 2026-03-03, committed 10 and 30 days later",
}


def exercise_log() -> list[list[Record]]:
    """The exercise's Debezium log of ``inventory.orders``, split into four deliveries.

    1. 2026-03-01 08:00 initial snapshot (``op = r``) of five February orders;
    2. 2026-03-02..05: new orders, an amount update, a cancellation, a duplicate delivery;
    3. 2026-03-10..15: a delete (+ tombstone), an order moved to another customer and day,
       a back-dated order, more orders;
    4. 2026-04-02..04: the newest order of 103 cancelled, an order back-dated by a month,
       an event behind the watermark, new orders of 101; 102 stays silent and decays.

    Each customer tells one story (``EXERCISE_STORIES``).
    """
    log = StoryLog(schemas=True)
    deliveries: list[list[Record]] = []

    def delivery() -> None:
        deliveries.append(log.records[sum(len(d) for d in deliveries) :])

    snap = "2026-03-01T08:00:00"
    log.snapshot(order(1, 101, "2026-02-03T10:15:00", "80.00", status="shipped"), at=snap)
    log.snapshot(order(2, 101, "2026-02-14T19:40:00", "35.50", status="shipped"), at=snap)
    log.snapshot(order(3, 102, "2026-02-20T09:05:00", "120.00", status="shipped"), at=snap)
    log.snapshot(order(4, 103, "2026-02-25T13:30:00", "15.99", status="shipped"), at=snap)
    log.snapshot(order(5, 103, "2026-02-27T16:00:00", "42.00"), at=snap)
    delivery()

    o6 = order(6, 101, "2026-03-02T11:00:00", "60.00")
    log.create(o6)
    log.change(o6, at="2026-03-02T11:20:00", total_amount="64.50")
    o7 = order(7, 102, "2026-03-03T08:30:00", "19.90")
    log.create(o7)
    log.change(o7, at="2026-03-03T09:00:00", status="cancelled")
    o15 = order(15, 104, "2026-03-03T12:00:00", "40.00")
    log.create(o15)
    log.create(order(16, 106, "2026-03-04T10:00:00", "25.00"))
    log.redeliver_last()
    log.create(order(8, 102, "2026-03-05T21:45:00", "250.00"))
    delivery()

    o9 = order(9, 103, "2026-03-10T10:10:00", "33.33")
    log.create(o9)
    o10 = order(10, 103, "2026-03-11T12:00:00", "7.25")
    log.create(o10)
    log.delete(o9, at="2026-03-12T09:00:00")
    log.change(o15, at="2026-03-12T15:00:00", customer_id=105, order_date="2026-03-12T14:00:00")
    log.create(order(11, 108, "2026-03-04T18:00:00", "10.01"), at="2026-03-14T10:00:00")
    log.create(order(12, 101, "2026-03-15T07:30:00", "100.00"))
    delivery()

    log.create(order(13, 101, "2026-04-02T15:00:00", "49.99"))
    log.create(order(18, 108, "2026-03-03T17:00:00", "18.00"), at="2026-04-02T16:00:00")
    log.change(o10, at="2026-04-03T10:00:00", status="cancelled")
    log.create(order(17, 107, "2025-03-01T12:00:00", "75.00"), at="2026-04-04T08:30:00")
    o14 = order(14, 101, "2026-04-04T09:00:00", "0.01")
    log.create(o14)
    log.change(o14, at="2026-04-04T09:01:00", total_amount="0.02")
    delivery()
    return deliveries


# ---------------------------------------------------------------------------
# The feature stories: one customer (and product) per story, with exact expectations in
# tests/test_core_features_stories.py.
# ---------------------------------------------------------------------------

STORY_NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # the stories' "now"
_MIN = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def feature_stories() -> StoryLog:
    """Every story of the lesson, one customer (and product) per story."""
    now = STORY_NOW
    log = StoryLog(start_lsn=1000, lsn_step=10, commit_delay=_MIN, default_commit=now)
    # 1. create: customer 1
    log.create(order(101, 1, now, "10.00"))
    log.create(item(1011, 101, 1, 2, "2.50"))  # product 1: 2 x 2.50
    i1012 = item(1012, 101, 3, 1, "9.00")  # product 3: deleted below
    log.create(i1012)
    log.delete(i1012)
    # 2. amount update: customer 2 (sum changes, count does not)
    o201 = order(201, 2, now - 2 * _DAY, "10.00")
    log.create(o201)
    log.create(item(2011, 201, 1, 1, "10.00"))  # product 1: 1 x 10.00
    log.update(o201, order(201, 2, now - 2 * _DAY, "25.50", status="shipped"))
    # 3. cancellation: customer 3
    o301 = order(301, 3, now, "10.00")
    o302 = order(302, 3, now, "20.00")
    log.create(o301)
    log.create(o302)
    log.create(item(3021, 302, 1, 5, "1.00"))  # product 1: not counted
    i3011 = item(3011, 301, 2, 1, "3.00")  # product 2: moves to order 401
    log.create(i3011)
    log.update(o302, order(302, 3, now, "20.00", status="cancelled"))
    # 4. delete (+ tombstone): customer 4
    o401 = order(401, 4, now - _DAY, "10.00")
    o402 = order(402, 4, now, "5.00")
    log.create(o401)
    log.create(o402)
    i4021 = item(4021, 402, 1, 3, "1.00")
    log.create(i4021)
    log.delete(i4021)
    log.delete(o402)
    log.update(i3011, item(3011, 401, 2, 2, "3.00"))  # product 2: 2 x 3.00, customer 4
    # 5. move: order 501 from customer 5 on now to customer 6 three days earlier
    o501 = order(501, 5, now, "7.00")
    log.create(o501)
    log.create(item(5011, 501, 1, 1, "4.00"))  # product 1: 1 x 4.00, customer 6
    log.update(o501, order(501, 6, now - 3 * _DAY, "7.00"))
    # 6. late but within the horizon: customer 7, 13 days back (products: 7-day horizon passed)
    log.create(order(701, 7, now - 13 * _DAY, "70.00"), at=now + _MIN)
    # 8. snapshot overlapping the first streamed changes: customer 9
    o901 = order(901, 9, now - _DAY, "10.00")
    o902 = order(902, 9, now - _DAY, "3.00")
    c902 = log.create(o902, lsn=900, at=now - _DAY)  # streamed just before the snapshot
    log.create(o901, lsn=1000, at=now - _DAY)
    log.update(o901, order(901, 9, now - _DAY, "12.00"), lsn=1100, at=now - _DAY)
    log.create(order(901, 9, now - _DAY, "11.00"), op="r", lsn=1050, at=now - _DAY)
    log.create(o902, op="r", lsn=1050, at=now - _DAY)
    log.again(c902)
    # 9. the same events twice: customer 10
    o1001 = order(1001, 10, now, "7.00")
    c = log.create(o1001)
    u = log.update(o1001, order(1001, 10, now, "8.00"))
    log.again(c, u)
    # 10. silence: customer 11, one order 31 days before the last read
    log.create(order(1101, 11, now - 2 * _DAY, "11.00"))
    # 7. too late (more than the 365-day recency horizon behind everything above): customer 8 —
    # last, so a stream drops it
    log.create(order(801, 8, now - 400 * _DAY, "80.00"), at=now + 2 * _MIN)
    return log


TYPO_DATE = "2099-03-09T12:00:00"  # a year typed wrong: committed on 2026-03-09


def guard_and_recency_stories() -> StoryLog:
    """The event-time guard and recency stories, in commit order (a stream takes them one
    event per micro-batch, so the watermark moves between them as in production).

    * customer 12: a far-future typo (year 2099) among normal traffic — a new order, an amount
      correction, a cancellation after it — and finally the operator's correction of the typo;
    * customers 13 and 14: silent for 45 and for 400 days;
    * customer 15: the newest order cancelled, customer 16: the newest order deleted — the
      previous order is the newest again (40 and 20 days back: older than the 30-day window).
    """
    now = STORY_NOW
    log = StoryLog(start_lsn=5000, lsn_step=10, commit_delay=_MIN)
    log.create(order(1401, 14, now - 400 * _DAY, "14.00"))  # then 400 days of silence
    log.create(order(1301, 13, now - 45 * _DAY, "13.00"))  # then 45 days of silence
    log.create(order(1501, 15, now - 40 * _DAY, "15.00"))
    log.create(order(1601, 16, now - 20 * _DAY, "16.00"))
    o1201 = order(1201, 12, now - 3 * _DAY, "50.00")
    log.create(o1201)
    log.create(item(12011, 1201, 12, 2, "5.00"), at=now - 3 * _DAY + _MIN)
    o1502 = order(1502, 15, now - 2 * _DAY, "15.50")
    log.create(o1502)
    o1602 = order(1602, 16, now - 2 * _DAY, "16.50")
    log.create(o1602)
    typo = order(1202, 12, TYPO_DATE, "99.00")
    log.create(typo, at=now - _DAY)  # committed today, dated 2099
    log.create(item(12021, 1202, 12, 1, "99.00"), at=now - _DAY)
    log.create(order(1203, 12, now - _DAY + _MIN, "20.00"))  # normal traffic after the typo
    log.change(o1201, at=now - _DAY + 2 * _MIN, total_amount="45.00")
    o1204 = order(1204, 12, now - 12 * _HOUR, "10.00")
    log.create(o1204)
    log.change(o1204, at=now - 12 * _HOUR + _MIN, status="cancelled")
    log.change(o1502, at=now - 11 * _HOUR, status="cancelled")  # the newest order of 15
    log.delete(o1602, at=now - 10 * _HOUR)  # the newest order of 16
    log.change(typo, at=now - 9 * _HOUR, order_date=now - 22 * _HOUR)  # the fix
    return log
