"""Hypothesis strategies: hostile Debezium logs of ``inventory.orders`` / ``order_items``.

One *example* is the change history of a small shop (a few customers, products, orders and
items, all with ids of its own so that examples can be concatenated into one log), told as
the messages the Debezium PostgreSQL connector would write — and then delivered the way a
hostile input delivers them:

* every message in either converter shape (``schemas.enable`` true/false) and any of the three
  ``decimal.handling.mode`` values, chosen per message (mixed shapes in one topic);
* duplicates and re-deliveries (the same change again, possibly in another shape), messages
  swapped with their neighbours, items delivered before their order, snapshot rows (``op = r``,
  the snapshot's LSN) delivered after streamed changes of the same rows;
* orders moved back and forth in time and between customers, cancelled and revived, deleted;
  back-dated orders (hours, days, 40 and 400 days), order dates a few hours ahead of the commit
  (a time zone) and far ahead of it (a typo: 3 days, or the year 2099), and corrections of them;
* broken copies of real messages (truncated JSON, wrong structure, unknown ops and tables,
  missing LSN or commit time, missing images, nulls and odd types inside images, amounts that
  do not decode or do not fit ``DECIMAL(10,2)``, dates out of range) and tombstones.

Each record's ``key`` is a tag unique to the message (``e<example>m<index>``), so a dead letter
(which carries the key) names the message it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from cdc_features.core import debezium_json as dj
from cdc_features.core.debezium_json import OrderItemRow, OrderRow, Record

BASE = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # commits start two days before this
IDS_PER_EXAMPLE = 1_000
MODES: tuple[dj.DecimalMode, ...] = ("precise", "string", "double")
SHAPES: list[tuple[bool, dj.DecimalMode]] = [(s, m) for s in (True, False) for m in MODES]
KNOWN_REASONS = {
    "tombstone",
    "not_json",
    "not_an_envelope",
    "unknown_table",
    "unknown_op",
    "missing_after",
    "missing_before",
    "null_key_field",
    "bad_value",
    "bad_decimal",
    "future_event_time",
}

amounts = st.one_of(
    st.decimals(Decimal("0.01"), Decimal("999.99"), places=2),
    st.sampled_from([Decimal("0.00"), Decimal("-12.34"), Decimal("99999999.99")]),
)
# how far an order date lies before (+) or after (-) its commit
order_offsets = st.one_of(
    st.integers(0, 6 * 86_400).map(lambda s: timedelta(seconds=s)),  # now or back-dated
    st.sampled_from(
        [
            timedelta(days=40),  # outside 30 days, inside the recency horizon
            timedelta(days=400),  # behind the recency horizon
            -timedelta(hours=14),  # a local time written without its offset: plausible
            -timedelta(days=3),  # a typo: implausibly ahead
            -timedelta(days=26_663),  # a typo: the year 2099
        ]
    ),
)


@dataclass
class Shop:
    """The replayed database of one example and the messages of its changes."""

    k: int
    commit: datetime
    lsn: int
    orders: dict[int, OrderRow] = field(default_factory=dict)
    items: dict[int, OrderItemRow] = field(default_factory=dict)
    next_id: int = 1
    messages: list[tuple[dj.Op, Any, Any, int, datetime, str | None]] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.k * IDS_PER_EXAMPLE + self.next_id

    def customer(self, i: int) -> int:
        return self.k * IDS_PER_EXAMPLE + 900 + i

    def product(self, i: int) -> int:
        return self.k * IDS_PER_EXAMPLE + 950 + i

    def emit(self, op: dj.Op, before: Any, after: Any, snapshot: str | None = None) -> None:
        self.lsn += 16
        self.messages.append((op, before, after, self.lsn, self.commit, snapshot))


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


@st.composite
def histories(draw: st.DrawFn, k: int) -> Shop:
    """A consistent change history of one small shop (every message a real change)."""
    shop = Shop(k, BASE - timedelta(days=2) + timedelta(minutes=k), 10_000_000 * (k + 1))
    for _ in range(draw(st.integers(2, 14))):
        shop.commit += timedelta(seconds=draw(st.integers(0, 3 * 3600)))  # <= 42 h in all
        live = sorted(shop.orders)
        step = draw(
            st.sampled_from(
                ["create"] * 3
                + (
                    ["amount", "cancel", "revive", "move", "fix", "customer", "delete"]
                    if live
                    else []
                )
                + (["item", "item_move", "item_delete"] if shop.items and live else [])
                + ["snapshot"]
            )
        )
        if step == "create" or (not live and step != "snapshot"):
            order = OrderRow(
                shop.new_id(),
                shop.customer(draw(st.integers(0, 2))),
                _naive(shop.commit - draw(order_offsets)),
                "pending",
                draw(amounts),
            )
            new_items = [
                OrderItemRow(
                    shop.new_id(),
                    order.id,
                    shop.product(draw(st.integers(0, 2))),
                    draw(st.integers(1, 5)),
                    draw(st.decimals(Decimal("0.01"), Decimal("99.99"), places=2)),
                )
                for _ in range(draw(st.integers(0, 2)))
            ]
            shop.orders[order.id] = order
            shop.emit("c", None, order)
            for item in new_items:
                shop.items[item.id] = item
                shop.emit("c", None, item)
            continue
        if step == "snapshot":
            lsn = shop.lsn + 8  # every row read at one snapshot LSN, flagged like Debezium
            rows: list[Any] = [*shop.orders.values(), *shop.items.values()]
            for i, row in enumerate(rows):
                flag = "first" if i == 0 else "last" if i == len(rows) - 1 else "true"
                shop.messages.append(("r", None, row, lsn, shop.commit, flag))
            shop.lsn = lsn
            continue
        order = shop.orders[draw(st.sampled_from(live))]
        new = order
        if step == "amount":
            new = replace(order, total_amount=draw(amounts))
        elif step == "cancel":
            new = replace(order, status="cancelled")
        elif step == "revive":
            new = replace(order, status="shipped")
        elif step == "move":
            new = replace(order, order_date=_naive(shop.commit - draw(order_offsets)))
        elif step == "fix":  # the operator corrects the date to the commit time
            new = replace(order, order_date=_naive(shop.commit))
        elif step == "customer":
            new = replace(order, customer_id=shop.customer(draw(st.integers(0, 2))))
        elif step == "delete":
            for item in [i for i in shop.items.values() if i.order_id == order.id]:
                del shop.items[item.id]
                shop.emit("d", item, None)
            del shop.orders[order.id]
            shop.emit("d", order, None)
            continue
        elif step in ("item", "item_move", "item_delete"):
            item = shop.items[draw(st.sampled_from(sorted(shop.items)))]
            if step == "item_delete":
                del shop.items[item.id]
                shop.emit("d", item, None)
                continue
            moved = (
                replace(item, order_id=order.id)
                if step == "item_move"
                else replace(item, quantity=draw(st.integers(1, 9)))
            )
            shop.items[item.id] = moved
            shop.emit("u", item, moved)
            continue
        shop.orders[order.id] = new
        shop.emit("u", order, new)
    return shop


def _encode(message: tuple[Any, ...], schemas: bool, mode: dj.DecimalMode) -> Record:
    op, before, after, lsn, commit, snapshot = message
    options: dict[str, Any] = {"snapshot": snapshot} if snapshot else {}
    if op == "r":
        options["processed_ts"] = commit
    return dj.change_record(
        op,
        before=before,
        after=after,
        lsn=lsn,
        commit_ts=commit,
        schemas=schemas,
        decimal_mode=mode,
        **options,
    )


def _payload(value: dict[str, Any]) -> dict[str, Any]:
    return value.get("payload", value)


ODD_INTEGERS = ["abc", "", True, 1.5, 2.0, 2**63, {"a": 1}, [1]]
ODD_AMOUNTS = ["%%", "1.234", "AJw", "NaN", 1e12, "", "12", -1e9]
ODD_DATES = ["2026-03-01T10:00:00", 10**19, -(10**19), 1.5e15, "x"]


@st.composite
def broken_copy(draw: st.DrawFn, record: Record) -> Record:
    """A broken copy of a real message (or an odd but equal one: an id written as text)."""
    text = record["value"]
    assert text is not None
    value = json.loads(text)
    payload = _payload(value)
    images = [i for i in ("after", "before") if payload.get(i) is not None]
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "structure",
                "op",
                "lsn",
                "ts_ms",
                "table",
                "no_table",
                "drop_image",
                "null_field",
                "odd_id",
                "same_id_as_text",
                "odd_amount",
                "odd_date",
                "tombstone",
            ]
        )
    )
    out = dict(record)
    if kind == "truncate":
        out["value"] = text[: draw(st.integers(0, max(0, len(text) - 2)))]
        return out
    if kind == "tombstone":
        out["value"] = None
        return out
    if kind == "structure":
        payload[draw(st.sampled_from(["after", "source", "before"]))] = draw(
            st.sampled_from(["x", [1], 5])
        )
    elif kind == "op":
        payload["op"] = draw(st.sampled_from(["t", "m", "x", "", "C", 1]))
    elif kind == "lsn":
        payload["source"][draw(st.sampled_from(["lsn"]))] = draw(
            st.sampled_from([None, "abc", 1.5])
        )
    elif kind == "ts_ms":
        payload["source"]["ts_ms"] = draw(st.sampled_from([None, "x", 10**17, -(10**17)]))
    elif kind == "table":
        out["topic"] = draw(st.sampled_from(["dbserver1.inventory.customers", "orders.x"]))
    elif kind == "no_table":
        out["topic"] = None
        payload["source"].pop("table", None)
    elif kind == "drop_image":
        payload[draw(st.sampled_from(["after", "before"]))] = None
    elif images:
        image = payload[draw(st.sampled_from(images))]
        columns = [c for c in image if c != "status"]
        if kind == "null_field":
            image[draw(st.sampled_from(columns))] = None
        elif kind == "odd_id":
            image[draw(st.sampled_from([c for c in columns if c.endswith("id")]))] = draw(
                st.sampled_from(ODD_INTEGERS)
            )
        elif kind == "same_id_as_text":
            name = draw(st.sampled_from([c for c in columns if c.endswith("id")]))
            pad = draw(st.sampled_from(["", " ", "\t", "+", "00"]))
            image[name] = (
                f"{pad}{image[name]}" if pad in ("+", "00") else f"{pad}{image[name]}{pad}"
            )
        elif kind == "odd_amount":
            name = "total_amount" if "total_amount" in image else "unit_price"
            image[name] = draw(st.sampled_from(ODD_AMOUNTS))
        elif kind == "odd_date" and "order_date" in image:
            image["order_date"] = draw(st.sampled_from(ODD_DATES))
    out["value"] = json.dumps(value)
    return out


@dataclass
class Example:
    """One hostile log and where it came from."""

    records: list[Record]
    shop: Shop

    def __repr__(self) -> str:  # Hypothesis prints failing examples: keep it readable
        return f"Example({len(self.records)} messages, {len(self.shop.messages)} changes)"


@st.composite
def hostile_logs(draw: st.DrawFn, k: int) -> Example:
    """The messages of one shop's history, delivered with hostility; keys tag each message."""
    shop = draw(histories(k))
    encoded = [_encode(m, *draw(st.sampled_from(SHAPES))) for m in shop.messages]
    out: list[Record] = []
    pending_snapshot: list[Record] = []
    for message, record in zip(shop.messages, encoded, strict=True):
        if message[0] == "r" and draw(st.booleans()):
            pending_snapshot.append(record)  # read now, delivered after later changes
            continue
        out.append(record)
        if message[0] == "d":
            table = dj.ORDERS if isinstance(message[1], OrderRow) else dj.ORDER_ITEMS
            out.append(dj.tombstone_record(table, message[1].id))
        if pending_snapshot and draw(st.integers(0, 3)) == 0:
            out += pending_snapshot
            pending_snapshot = []
    out += pending_snapshot
    # duplicates and re-deliveries, possibly in another converter shape
    for _ in range(draw(st.integers(0, 4)) if out else 0):
        i = draw(st.integers(0, len(out) - 1))
        if draw(st.booleans()) or out[i]["value"] is None:
            out.append(dict(out[i]))
        else:
            index = encoded.index(out[i]) if out[i] in encoded else None
            if index is not None:
                out.append(_encode(shop.messages[index], *draw(st.sampled_from(SHAPES))))
    # neighbours swapped (items before their order, an update before its create)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, max(0, len(out) - 2)))
        out[i : i + 2] = out[i : i + 2][::-1]
    # broken copies of real messages
    real = [r for r in out if r["value"] is not None]
    for _ in range(draw(st.integers(0, 4))):
        if real:
            out.insert(
                draw(st.integers(0, len(out))), draw(broken_copy(draw(st.sampled_from(real))))
            )
    tagged = [{**r, "key": f"e{k}m{i}"} for i, r in enumerate(out)]
    return Example(tagged, shop)


def batches(size: int) -> st.SearchStrategy[list[Example]]:
    """``size`` examples with disjoint ids, to be run through Spark as one log."""
    return st.tuples(*[hostile_logs(k) for k in range(size)]).map(list)


def interleaved(examples: list[Example]) -> list[Record]:
    """The examples' messages as one stream in which every shop advances at once (each keeps
    its own hostile order): what several shops writing to one topic look like, with no shop
    delivered days after the others."""
    keyed = [
        ((i + 0.5) / len(e.records), k, record)
        for k, e in enumerate(examples)
        for i, record in enumerate(e.records)
    ]
    return [record for *_, record in sorted(keyed, key=lambda t: (t[0], t[1]))]
