"""The batch reference: features at time T straight from the written definitions.

Plain Python, no Spark, and deliberately independent of ``envelope.py`` and
``features.py``: it parses the raw Debezium messages itself (``json`` + ``base64``),
replays them into the newest version of every order and order item (by LSN), and
computes each feature by its definition in ``FEATURES.md``. The streaming result must
equal it for every read time T at or after the newest event time.

Messages the streaming parser sends to dead letters are skipped here too (the rules are
re-stated, not imported): tombstones, non-JSON, non-envelopes, unknown ops, missing
images, null/bad key fields, undecodable amounts.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from cdc_features.core.definitions import CustomerFeatures, ProductFeatures

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The windows, written out here rather than imported from the feature spec: the reference is
# the independent oracle (tests/test_core_reference.py checks that the two agree).
CUSTOMER_DAYS = 30
PRODUCT_DAYS = 7
CENTS = Decimal("0.01")
_NUMBER = re.compile(r"^[+-]?[0-9]*\.?[0-9]*([eE][+-]?[0-9]+)?$")


class Rejected(Exception):
    """A message that is not a usable change event (the stream dead-letters it)."""


@dataclass(frozen=True)
class OrderVersion:
    """One version of an order row (``None`` fields: the row was deleted)."""

    lsn: int
    exists: bool
    customer_id: int | None = None
    order_date: datetime | None = None
    status: str | None = None
    total_amount: Decimal | None = None


@dataclass(frozen=True)
class ItemVersion:
    """One version of an order_items row."""

    lsn: int
    exists: bool
    order_id: int | None = None
    product_id: int | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None


def _decimal_spec(message: Mapping[str, Any], column: str) -> dict[str, Any] | None:
    schema = message.get("schema")
    if not isinstance(schema, dict):
        return None
    for image in ("after", "before"):
        for block in schema.get("fields") or []:
            if block.get("field") == image:
                for f in block.get("fields") or []:
                    if f.get("field") == column:
                        return f
    return None


def _decimal(value: Any, spec: dict[str, Any] | None, default_scale: int) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Rejected("bad decimal")
    text = repr(value) if isinstance(value, (int, float)) else str(value)
    if spec is not None:
        numeric = spec.get("type") in ("string", "double")
    else:
        numeric = bool(_NUMBER.match(text)) and any(c in text for c in ".eE")
    try:
        if numeric:
            result = Decimal(text)
        else:
            if spec is not None and spec.get("type") != "bytes":
                raise Rejected("bad decimal")
            scale = default_scale
            params = (spec or {}).get("parameters") or {}
            if "scale" in params:
                scale = int(params["scale"])
            raw = base64.b64decode(text, validate=True)
            if not 1 <= len(raw) <= 8 or not 0 <= scale <= 18:
                raise Rejected("bad decimal")
            result = Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)
    except (InvalidOperation, binascii.Error, ValueError) as exc:
        raise Rejected("bad decimal") from exc
    if (
        not result.is_finite()
        or result != result.quantize(CENTS)
        or abs(result) >= Decimal(10) ** 8
    ):
        raise Rejected("bad decimal")
    return result.quantize(CENTS)


def _int(value: Any) -> int:
    if value is None:
        raise Rejected("null key field")
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise Rejected("bad value")
    try:
        return int(str(value)) if not isinstance(value, (int, float)) else int(value)
    except ValueError as exc:
        raise Rejected("bad value") from exc


def _micros(value: Any) -> datetime:
    return EPOCH + timedelta(microseconds=_int(value))


def _image(message: Mapping[str, Any], row: Any, table: str, default_scale: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise Rejected("missing image")
    if table == "orders":
        return {
            "id": _int(row.get("id")),
            "customer_id": _int(row.get("customer_id")),
            "order_date": _micros(row.get("order_date")),
            "status": row.get("status"),
            "total_amount": _decimal(
                row.get("total_amount"), _decimal_spec(message, "total_amount"), default_scale
            ),
        }
    return {
        "id": _int(row.get("id")),
        "order_id": _int(row.get("order_id")),
        "product_id": _int(row.get("product_id")),
        "quantity": _int(row.get("quantity")),
        "unit_price": _decimal(
            row.get("unit_price"), _decimal_spec(message, "unit_price"), default_scale
        ),
    }


def parse_change(
    record: Mapping[str, Any], default_scale: int = 2
) -> tuple[str, int, int, dict[str, Any] | None]:
    """One raw record → ``(table, row id, lsn, after image or None for a delete)``.

    Raises :class:`Rejected` for anything the stream would dead-letter (incl. tombstones).
    """
    text = record.get("value")
    if text is None:
        raise Rejected("tombstone")
    try:
        message = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise Rejected("not json") from exc
    if not isinstance(message, dict):
        raise Rejected("not an envelope")
    payload = message["payload"] if isinstance(message.get("payload"), dict) else message
    op = payload.get("op")
    source = payload.get("source")
    if op is None or not isinstance(source, dict):
        raise Rejected("not an envelope")
    topic = record.get("topic")
    table = topic.rsplit(".", 1)[-1] if topic else source.get("table")
    if table not in ("orders", "order_items"):
        raise Rejected("unknown table")
    if op not in ("c", "u", "d", "r"):
        raise Rejected("unknown op")
    lsn = _int(source.get("lsn"))
    after = _image(message, payload.get("after"), table, default_scale) if op != "d" else None
    if op in ("u", "d"):
        before = _image(message, payload.get("before"), table, default_scale)
        row_id = before["id"] if after is None else after["id"]
    else:
        row_id = after["id"]  # type: ignore[index]
    return table, row_id, lsn, after


def replay(
    raw_values: Iterable[Mapping[str, Any]], default_scale: int = 2
) -> tuple[dict[int, OrderVersion], dict[int, ItemVersion], set[int], set[int]]:
    """The newest version (max LSN) of every order and item, plus every customer and
    product id ever mentioned by a valid event (they read zeros when nothing counts)."""
    orders: dict[int, OrderVersion] = {}
    items: dict[int, ItemVersion] = {}
    customers: set[int] = set()
    products: set[int] = set()
    for record in raw_values:
        try:
            table, row_id, lsn, after = parse_change(record, default_scale)
        except Rejected:
            continue
        if table == "orders":
            version = (
                OrderVersion(lsn, False)
                if after is None
                else OrderVersion(
                    lsn,
                    True,
                    after["customer_id"],
                    after["order_date"],
                    after["status"],
                    after["total_amount"],
                )
            )
            if version.customer_id is not None:
                customers.add(version.customer_id)
            if row_id not in orders or lsn > orders[row_id].lsn:
                orders[row_id] = version
        else:
            item = (
                ItemVersion(lsn, False)
                if after is None
                else ItemVersion(
                    lsn,
                    True,
                    after["order_id"],
                    after["product_id"],
                    after["quantity"],
                    after["unit_price"],
                )
            )
            if item.product_id is not None:
                products.add(item.product_id)
            if row_id not in items or lsn > items[row_id].lsn:
                items[row_id] = item
    return orders, items, customers, products


@dataclass(frozen=True)
class CountedOrder:
    """An order that counts: its newest version exists and is not cancelled."""

    customer_id: int
    order_date: datetime
    total_amount: Decimal


def _counted(order: OrderVersion | None) -> CountedOrder | None:
    if order is None or not order.exists or order.status == "cancelled":
        return None
    # an existing version was parsed from a complete after image (_image rejects nulls)
    assert order.customer_id is not None and order.order_date is not None
    assert order.total_amount is not None
    return CountedOrder(order.customer_id, order.order_date, order.total_amount)


def _in_days(ts: datetime, at: datetime, days: int) -> bool:
    last: date = at.astimezone(UTC).date()
    return last - timedelta(days=days - 1) <= ts.date() <= last


def reference_customer_features(
    raw_values: Iterable[Mapping[str, Any]], at: datetime, default_scale: int = 2
) -> dict[int, CustomerFeatures]:
    """Every customer's features at ``at`` (aware UTC), by the definitions."""
    if at.tzinfo is None:
        raise ValueError("read time must be timezone-aware (UTC)")
    orders, _, customers, _ = replay(raw_values, default_scale)
    in_window: dict[int, list[CountedOrder]] = {c: [] for c in customers}
    for version in orders.values():
        o = _counted(version)
        if o is not None and _in_days(o.order_date, at, CUSTOMER_DAYS):
            in_window[o.customer_id].append(o)
    result: dict[int, CustomerFeatures] = {}
    for customer in sorted(customers):
        mine = in_window[customer]
        count = len(mine)
        total = sum((o.total_amount for o in mine), Decimal("0.00")).quantize(CENTS)
        avg = (total / count).quantize(CENTS, rounding=ROUND_HALF_EVEN) if count else None
        last = max((o.order_date for o in mine), default=None)
        days = (at - last) // timedelta(days=1) if last is not None else None
        result[customer] = CustomerFeatures(customer, count, total, avg, last, days)
    return result


def reference_product_features(
    raw_values: Iterable[Mapping[str, Any]], at: datetime, default_scale: int = 2
) -> dict[int, ProductFeatures]:
    """Every product's features at ``at`` (aware UTC), by the definitions."""
    if at.tzinfo is None:
        raise ValueError("read time must be timezone-aware (UTC)")
    orders, items, _, products = replay(raw_values, default_scale)
    acc: dict[int, tuple[int, Decimal, set[int]]] = {
        p: (0, Decimal("0.00"), set()) for p in products
    }
    for item in items.values():
        if not item.exists or item.order_id is None:
            continue
        order = _counted(orders.get(item.order_id))
        if order is None or not _in_days(order.order_date, at, PRODUCT_DAYS):
            continue
        assert item.product_id is not None and item.quantity is not None
        assert item.unit_price is not None  # an existing item has a complete after image
        units, revenue, who = acc[item.product_id]
        who.add(order.customer_id)
        acc[item.product_id] = (
            units + item.quantity,
            revenue + item.quantity * item.unit_price,
            who,
        )
    return {
        p: ProductFeatures(p, u, r.quantize(CENTS), len(w)) for p, (u, r, w) in sorted(acc.items())
    }
