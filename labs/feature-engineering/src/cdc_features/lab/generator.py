"""Synthetic Debezium change-event logs of the course shop (deterministic for a seed).

A log is what the Debezium PostgreSQL connector would have written to
``<prefix>.inventory.orders`` and ``<prefix>.inventory.order_items`` while a small shop was
running, as a list of ``{"topic", "key", "value"}`` records (the lab's JSON-lines input
format, see :mod:`cdc_features.core.debezium_json`). It contains:

* an initial snapshot (``op = r``, all at the snapshot LSN, commit time = snapshot time) of
  orders that existed before streaming began; a few of them were also streamed as ``c``
  events just before the snapshot, and the first streamed changes are interleaved with the
  second half of the snapshot records (an *overlapping* snapshot);
* new orders with 1–3 items in one transaction (``c``), mostly at the current time, some
  back-dated within the product horizon (up to 6 days), a few *too late* (366–400 days older
  than the newest order date seen so far: behind the customer tiles' 365-day watermark);
* amount corrections, status changes, cancellations (``status = 'cancelled'``), moves
  (an update of ``order_date`` or ``customer_id``), item quantity changes, added and
  removed items, deletes (items first, then the order; every delete followed by a
  tombstone) — every ``u``/``d`` carries the full old row (``REPLICA IDENTITY FULL``);
* duplicate deliveries: the last 1–5 records delivered again unchanged (same LSN), as after
  a connector restart;
* optionally, malformed messages (``malformed_rate``) of every dead-letter kind, on ids
  that no valid event uses, so they never change a feature;
* optionally, customer lifecycles (``customer_lifetime_days``): each customer joins at some
  time, orders at its own rate while active and leaves after an exponentially distributed
  lifetime — the churn the ML loop (:mod:`cdc_features.ml`) learns to predict. Off by default
  (every customer orders all the time, the heavier ones more often); when off, a log is the
  same as before the option existed.

Streamed changes have strictly increasing LSNs; ``source.ts_ms`` is the commit time.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from cdc_features.core import debezium_json as dj
from cdc_features.core.debezium_json import DecimalMode, OrderItemRow, OrderRow, Record
from cdc_features.testing import write_log

DEFAULT_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FIRST_LSN = 33_554_432
MALFORMED_ID_BASE = 900_000_000
MALFORMED_KINDS = (
    "not_json",
    "not_an_envelope",
    "unknown_op",
    "missing_after",
    "missing_before",
    "null_customer_id",
    "bad_decimal",
    "null_product_id",
)
CENTS = Decimal("0.01")
MAX_AMOUNT = Decimal("99999999.99")


@dataclass(frozen=True)
class LogOptions:
    """Knobs of a generated log (defaults scale with ``n_events``)."""

    start: datetime = DEFAULT_START
    days: float = 60.0
    schemas: bool = True
    decimal_mode: DecimalMode = "precise"
    prefix: str = dj.DEFAULT_PREFIX
    n_customers: int | None = None
    n_products: int | None = None
    snapshot_orders: int | None = None
    backdated_rate: float = 0.08
    too_late_rate: float = 0.01
    duplicate_rate: float = 0.03
    malformed_rate: float = 0.0
    customer_lifetime_days: float | None = None


@dataclass(frozen=True)
class _Lifecycle:
    """When a customer orders: from ``joined`` until ``left``, ``weight`` times as often as
    a customer of weight 1 active at the same time."""

    joined: datetime
    left: datetime
    weight: float


def _lifecycles(rng: random.Random, opts: LogOptions, n_customers: int) -> list[_Lifecycle]:
    """One lifecycle per customer: a third already active when the log starts, the others
    joining uniformly over the log; exponential lifetimes; log-normal ordering rates."""
    assert opts.customer_lifetime_days is not None
    span = timedelta(days=opts.days)
    out = []
    for _ in range(n_customers):
        joined = opts.start - span / 2 + span * 1.5 * rng.random()
        lifetime = timedelta(days=rng.expovariate(1.0 / opts.customer_lifetime_days))
        out.append(_Lifecycle(joined, joined + lifetime, rng.lognormvariate(0.0, 0.75)))
    return out


class _Encoder:
    """Record encoding with the (large, constant) Connect schemas serialized once."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.topics = {t: dj.topic_name(t, opts.prefix) for t in (dj.ORDERS, dj.ORDER_ITEMS)}
        self.value_schema = {
            t: json.dumps(
                dj.envelope_schema(t, prefix=opts.prefix, decimal_mode=opts.decimal_mode),
                separators=(",", ":"),
            )
            for t in self.topics
        }
        self.key_schema = {
            t: json.dumps(dj.change_key(t, 0, prefix=opts.prefix)["schema"], separators=(",", ":"))
            for t in self.topics
        }

    def key(self, table: str, row_id: int) -> str:
        payload = f'{{"id":{row_id}}}'
        if not self.opts.schemas:
            return payload
        return f'{{"schema":{self.key_schema[table]},"payload":{payload}}}'

    def wrap(self, table: str, payload: dict[str, Any]) -> str:
        text = json.dumps(payload, separators=(",", ":"))
        if not self.opts.schemas:
            return text
        return f'{{"schema":{self.value_schema[table]},"payload":{text}}}'

    def payload(
        self,
        op: dj.Op,
        before: dj.Row | None,
        after: dj.Row | None,
        lsn: int,
        commit_ms: int,
        snapshot: str | None = None,
    ) -> dict[str, Any]:
        return dj.change_envelope(
            op,
            before=before,
            after=after,
            lsn=lsn,
            commit_ts=commit_ms,
            snapshot=snapshot,
            schemas=False,
            decimal_mode=self.opts.decimal_mode,
            prefix=self.opts.prefix,
        )

    def record(
        self,
        op: dj.Op,
        before: dj.Row | None,
        after: dj.Row | None,
        lsn: int,
        commit_ms: int,
        snapshot: str | None = None,
    ) -> Record:
        row = after if after is not None else before
        assert row is not None
        table = dj.ORDERS if isinstance(row, OrderRow) else dj.ORDER_ITEMS
        return {
            "topic": self.topics[table],
            "key": self.key(table, row.id),
            "value": self.wrap(table, self.payload(op, before, after, lsn, commit_ms, snapshot)),
        }

    def tombstone(self, table: str, row_id: int) -> Record:
        return {"topic": self.topics[table], "key": self.key(table, row_id), "value": None}


def _line_total(item: OrderItemRow) -> Decimal:
    assert item.quantity is not None and item.unit_price is not None  # generated: complete
    return item.quantity * item.unit_price


class _Shop:
    """The replayed database: current rows, LSN counter and simulated clock."""

    def __init__(self, rng: random.Random, opts: LogOptions, n_events: int) -> None:
        self.rng = rng
        self.opts = opts
        self.enc = _Encoder(opts)
        self.n_customers = opts.n_customers or max(20, n_events // 25)
        self.n_products = opts.n_products or max(10, min(20_000, n_events // 100))
        self.prices: dict[int, Decimal] = {}
        self.orders: dict[int, OrderRow] = {}
        self.items: dict[int, OrderItemRow] = {}
        self.items_of: dict[int, list[int]] = {}
        self.recent: list[int] = []
        self.next_order = 1
        self.next_item = 1
        self.next_malformed = MALFORMED_ID_BASE
        self.lsn = FIRST_LSN
        self.clock = opts.start
        self.max_order_date = opts.start - timedelta(days=30)
        # A step emits about 2.3 records on average (an order and its items, tombstones...).
        self.mean_gap_s = opts.days * 86_400 * 2.3 / max(1, n_events)
        self.lifecycles = (
            _lifecycles(rng, opts, self.n_customers)
            if opts.customer_lifetime_days is not None
            else None
        )

    # -- helpers -------------------------------------------------------------------------
    def next_lsn(self) -> int:
        self.lsn += self.rng.randrange(56, 400)
        return self.lsn

    def commit_ms(self) -> int:
        return dj.epoch_millis(self.clock)

    def tick(self) -> None:
        self.clock += timedelta(seconds=self.rng.expovariate(1.0 / self.mean_gap_s))

    def price(self, product_id: int) -> Decimal:
        if product_id not in self.prices:
            self.prices[product_id] = Decimal(self.rng.randrange(199, 49_999)) / 100
        return self.prices[product_id]

    def customer(self) -> int:
        if self.lifecycles is None:
            return 1 + int(self.n_customers * self.rng.random() ** 1.5)
        active = [
            (cid, life.weight)
            for cid, life in enumerate(self.lifecycles, start=1)
            if life.joined <= self.clock < life.left
        ]
        if not active:  # nobody active right now: any customer, by weight
            active = [(cid, life.weight) for cid, life in enumerate(self.lifecycles, start=1)]
        ids, weights = zip(*active, strict=True)
        return self.rng.choices(ids, weights)[0]

    def product(self) -> int:
        return 1 + int(self.n_products * self.rng.random() ** 2)

    def new_item(self, order_id: int) -> OrderItemRow:
        product_id = self.product()
        item = OrderItemRow(
            self.next_item, order_id, product_id, self.rng.randint(1, 5), self.price(product_id)
        )
        self.next_item += 1
        return item

    def new_order(self, order_date: datetime) -> tuple[OrderRow, list[OrderItemRow]]:
        order_id = self.next_order
        self.next_order += 1
        items = [self.new_item(order_id) for _ in range(self.rng.choice((1, 1, 2, 2, 3)))]
        total = sum((_line_total(i) for i in items), Decimal("0.00"))
        order = OrderRow(
            order_id,
            self.customer(),
            order_date.replace(tzinfo=None),
            "pending",
            total.quantize(CENTS),
        )
        return order, items

    def remember(self, order: OrderRow, items: list[OrderItemRow]) -> None:
        self.orders[order.id] = order
        self.items_of[order.id] = [i.id for i in items]
        for item in items:
            self.items[item.id] = item
        self.recent.append(order.id)
        order_date = order.order_date.replace(tzinfo=UTC)  # type: ignore[union-attr]
        self.max_order_date = max(self.max_order_date, order_date)

    def pick_order(self, max_age_days: float | None = None) -> OrderRow | None:
        """A live order, mostly one of the most recent ones."""
        for _ in range(8):
            if not self.recent:
                return None
            back = min(int(self.rng.expovariate(1 / 40)), len(self.recent) - 1)
            order = self.orders.get(self.recent[-1 - back])
            if order is None:
                continue
            if max_age_days is not None:
                age = self.clock - order.order_date.replace(tzinfo=UTC)  # type: ignore[union-attr]
                if age > timedelta(days=max_age_days):
                    continue
            return order
        return None

    def order_date_now(self) -> datetime:
        return self.clock - timedelta(microseconds=self.rng.randrange(5_000_000))

    # -- streamed changes ----------------------------------------------------------------
    def create_order(self) -> list[Record]:
        roll = self.rng.random()
        if roll < self.opts.too_late_rate:
            order_date = self.max_order_date - timedelta(days=self.rng.uniform(366, 400))
        elif roll < self.opts.too_late_rate + self.opts.backdated_rate:
            order_date = self.clock - timedelta(seconds=self.rng.uniform(3600, 6 * 86_400))
        else:
            order_date = self.order_date_now()
        order, items = self.new_order(order_date)
        self.remember(order, items)
        ms = self.commit_ms()
        out = [self.enc.record("c", None, order, self.next_lsn(), ms)]
        out += [self.enc.record("c", None, item, self.next_lsn(), ms) for item in items]
        return out

    def update_order(self, kind: str) -> list[Record]:
        order = self.pick_order(max_age_days=4 if kind == "move" else None)
        if order is None:
            return self.create_order()
        if kind == "amount":
            factor = Decimal(self.rng.randrange(80, 111)) / 100
            amount = order.total_amount or Decimal("0.00")
            new = replace(order, total_amount=min(MAX_AMOUNT, (amount * factor).quantize(CENTS)))
        elif kind == "status":
            new = replace(order, status=self.rng.choice(("processing", "shipped", "delivered")))
        elif kind == "cancel":
            new = replace(order, status="cancelled")
        elif self.rng.random() < 0.5:  # move in time, at most two days either way
            shift = timedelta(seconds=self.rng.uniform(-2 * 86_400, 2 * 86_400))
            assert order.order_date is not None  # generated orders always have a date
            moved = order.order_date + shift
            latest = self.clock.replace(tzinfo=None)
            new = replace(order, order_date=min(moved, latest))
        else:  # move to another customer
            new = replace(order, customer_id=self.customer())
        self.orders[order.id] = new
        return [self.enc.record("u", order, new, self.next_lsn(), self.commit_ms())]

    def delete_order(self) -> list[Record]:
        order = self.pick_order()
        if order is None:
            return self.create_order()
        ms = self.commit_ms()
        out: list[Record] = []
        for item_id in self.items_of.pop(order.id, []):
            item = self.items.pop(item_id, None)
            if item is not None:
                out.append(self.enc.record("d", item, None, self.next_lsn(), ms))
                out.append(self.enc.tombstone(dj.ORDER_ITEMS, item.id))
        del self.orders[order.id]
        out.append(self.enc.record("d", order, None, self.next_lsn(), ms))
        out.append(self.enc.tombstone(dj.ORDERS, order.id))
        return out

    def change_items(self, kind: str) -> list[Record]:
        order = self.pick_order(max_age_days=3)
        if order is None:
            return self.create_order()
        ids = self.items_of[order.id]
        ms = self.commit_ms()
        if kind == "add" or not ids:
            item = self.new_item(order.id)
            ids.append(item.id)
            self.items[item.id] = item
            return [self.enc.record("c", None, item, self.next_lsn(), ms)]
        item_id = self.rng.choice(ids)
        item = self.items[item_id]
        if kind == "remove":
            ids.remove(item_id)
            del self.items[item_id]
            return [
                self.enc.record("d", item, None, self.next_lsn(), ms),
                self.enc.tombstone(dj.ORDER_ITEMS, item_id),
            ]
        new = replace(item, quantity=self.rng.randint(1, 6))
        self.items[item_id] = new
        return [self.enc.record("u", item, new, self.next_lsn(), ms)]

    # -- snapshot ------------------------------------------------------------------------
    def snapshot(self, n_orders: int) -> tuple[list[Record], list[Record], list[Record]]:
        """(streamed ``c`` before the snapshot, snapshot records part 1, part 2)."""
        start = self.opts.start
        existing = []
        for _ in range(n_orders):
            order_date = start - timedelta(seconds=self.rng.uniform(60, 20 * 86_400))
            existing.append(self.new_order(order_date))
        existing.sort(key=lambda pair: pair[0].order_date)  # type: ignore[arg-type, return-value]
        streamed_before: list[Record] = []
        overlap = existing[-max(1, n_orders // 10) :]
        for order, items in overlap:
            ms = dj.epoch_millis(order.order_date.replace(tzinfo=UTC))  # type: ignore[union-attr]
            streamed_before.append(self.enc.record("c", None, order, self.next_lsn(), ms))
            streamed_before += [self.enc.record("c", None, i, self.next_lsn(), ms) for i in items]
        snapshot_lsn = self.next_lsn()
        ms = dj.epoch_millis(start)
        rows: list[dj.Row] = []
        for order, items in existing:
            self.remember(order, items)
            rows.append(order)
        for _, items in existing:
            rows += items
        flags = ["true"] * len(rows)
        if rows:
            flags[0], flags[-1] = "first", "last"
        snap = [
            self.enc.record("r", None, row, snapshot_lsn, ms, snapshot=flag)
            for row, flag in zip(rows, flags, strict=True)
        ]
        half = len(snap) // 2
        return streamed_before, snap[:half], snap[half:]

    # -- malformed -----------------------------------------------------------------------
    def malformed(self) -> Record:
        kind = self.rng.choice(MALFORMED_KINDS)
        row_id = self.next_malformed
        self.next_malformed += 1
        order = OrderRow(
            row_id,
            self.customer(),
            self.order_date_now().replace(tzinfo=None),
            "pending",
            Decimal("10.00"),
        )
        topic, table = self.enc.topics[dj.ORDERS], dj.ORDERS
        lsn, ms = self.next_lsn(), self.commit_ms()
        if kind == "not_json":
            return {
                "topic": topic,
                "key": self.enc.key(table, row_id),
                "value": '{"payload": {"op": "c",',
            }
        if kind == "not_an_envelope":
            return {
                "topic": topic,
                "key": self.enc.key(table, row_id),
                "value": json.dumps({"id": row_id, "total_amount": "10.00"}),
            }
        if kind == "null_product_id":
            item = OrderItemRow(row_id, row_id, None, 1, Decimal("1.00"))
            payload = self.enc.payload("c", None, item, lsn, ms)
            return {
                "topic": self.enc.topics[dj.ORDER_ITEMS],
                "key": self.enc.key(dj.ORDER_ITEMS, row_id),
                "value": self.enc.wrap(dj.ORDER_ITEMS, payload),
            }
        payload = self.enc.payload("c", None, order, lsn, ms)
        if kind == "unknown_op":
            payload["op"] = "x"
        elif kind == "missing_after":
            payload["after"] = None
        elif kind == "missing_before":
            payload["op"] = "u"
            payload["before"] = None
        elif kind == "null_customer_id":
            payload["after"]["customer_id"] = None
        elif kind == "bad_decimal":
            payload["after"]["total_amount"] = (
                "%%not-base64%%" if self.opts.decimal_mode != "double" else "ten"
            )
        return {
            "topic": topic,
            "key": self.enc.key(table, row_id),
            "value": self.enc.wrap(table, payload),
        }


_STEPS: tuple[tuple[str, float], ...] = (
    ("create", 0.42),
    ("amount", 0.12),
    ("status", 0.08),
    ("cancel", 0.06),
    ("delete", 0.04),
    ("move", 0.04),
    ("item_qty", 0.08),
    ("item_add", 0.04),
    ("item_remove", 0.02),
)


def iter_log(seed: int, n_events: int, opts: LogOptions = LogOptions()) -> Iterator[Record]:
    """Yield exactly ``n_events`` records of a synthetic log (see the module docstring)."""
    rng = random.Random(seed)
    shop = _Shop(rng, opts, n_events)
    names = [name for name, _ in _STEPS]
    weights = [w for _, w in _STEPS]
    emitted = 0
    history: list[Record] = []

    def emit(records: Iterable[Record]) -> Iterator[Record]:
        nonlocal emitted
        for record in records:
            if emitted >= n_events:
                return
            emitted += 1
            history.append(record)
            if len(history) > 8:
                del history[0]
            yield record

    n_snapshot = (
        opts.snapshot_orders
        if opts.snapshot_orders is not None
        else max(3, min(2_000, n_events // 60))
    )
    before, snap1, snap2 = shop.snapshot(n_snapshot)
    yield from emit(before)
    yield from emit(snap1)
    # The first streamed changes arrive while the second half of the snapshot is still read.
    pending = list(snap2)
    while emitted < n_events:
        shop.tick()
        if pending:
            take = max(1, len(snap2) // 10)
            yield from emit(pending[:take])
            del pending[:take]
        roll = rng.random()
        if roll < opts.malformed_rate:
            yield from emit([shop.malformed()])
            continue
        if roll < opts.malformed_rate + opts.duplicate_rate and history:
            k = rng.randint(1, min(5, len(history)))
            yield from emit(list(history[-k:]))
            continue
        step = rng.choices(names, weights)[0]
        if step == "create":
            out = shop.create_order()
        elif step in ("amount", "status", "cancel", "move"):
            out = shop.update_order(step)
        elif step == "delete":
            out = shop.delete_order()
        else:
            out = shop.change_items(step.removeprefix("item_"))
        yield from emit(out)


def generate_log(
    seed: int,
    n_events: int,
    *,
    start: datetime = DEFAULT_START,
    schemas: bool = True,
    decimal_mode: DecimalMode = "precise",
    **options: Any,
) -> list[Record]:
    """A synthetic Debezium log of exactly ``n_events`` records (deterministic for ``seed``).

    ``options`` are the other fields of :class:`LogOptions` (``days``, ``prefix``,
    ``n_customers``, ``n_products``, ``snapshot_orders``, ``backdated_rate``,
    ``too_late_rate``, ``duplicate_rate``, ``malformed_rate``, ``customer_lifetime_days``).
    """
    opts = LogOptions(start=start, schemas=schemas, decimal_mode=decimal_mode, **options)
    return list(iter_log(seed, n_events, opts))


def main(argv: list[str] | None = None) -> int:
    """``python -m cdc_features.lab.generator OUT N [--seed S] [--no-schemas] [--gzip]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate a synthetic Debezium CDC log")
    parser.add_argument("out", type=Path, help="output folder (JSON lines) or a .jsonl.gz file")
    parser.add_argument("n_events", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-schemas", action="store_true", help="schemas.enable=false")
    parser.add_argument(
        "--decimal-mode", choices=("precise", "string", "double"), default="precise"
    )
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--days", type=float, default=60.0)
    parser.add_argument("--events-per-file", type=int, default=10_000)
    args = parser.parse_args(argv)
    opts = LogOptions(
        schemas=not args.no_schemas,
        decimal_mode=args.decimal_mode,
        malformed_rate=args.malformed_rate,
        days=args.days,
    )
    records = iter_log(args.seed, args.n_events, opts)
    if args.out.name.endswith(".jsonl.gz"):
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with (
            open(args.out, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as handle,
        ):
            for record in records:
                handle.write((json.dumps(record, separators=(",", ":")) + "\n").encode())
        print(f"wrote {args.n_events} records to {args.out}")
    else:
        paths = write_log(records, args.out, events_per_file=args.events_per_file)
        print(f"wrote {args.n_events} records to {len(paths)} files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
