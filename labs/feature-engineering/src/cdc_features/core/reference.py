"""The batch reference: features at time T straight from the written definitions.

Plain Python, no Spark, and deliberately independent of ``envelope.py`` and
``features.py``: it parses the raw Debezium messages itself (``json`` + ``base64``),
replays them into the newest version of every order and order item (by LSN), and
computes each feature by its definition in ``FEATURES.md``. The streaming result must
equal it for every read time T at or after the newest event time.

Messages the streaming parser sends to dead letters are skipped here too, with the same
reason code (the rules are re-stated, not imported — :func:`parse_change` raises
:class:`Rejected` with it): tombstones, non-JSON, non-envelopes, unknown tables and ops,
missing images, null/bad key fields, undecodable amounts. JSON is read the way Spark's JSON
reader reads it (``envelope.py``): text of a JSON value as Spark renders it, content after
the first value ignored, no ``NaN`` and no single quotes. The event-time guard is re-stated
too: an order version dated more than a day after its commit exists but does not count.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
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
RECENCY_DAYS = 365
FUTURE_TOLERANCE = timedelta(days=1)
CENTS = Decimal("0.01")
_NUMBER = re.compile(r"^[+-]?[0-9]*\.?[0-9]*([eE][+-]?[0-9]+)?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_BASE64 = re.compile(r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_FIRST_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LAST_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_COLUMNS = {
    "orders": ("id", "customer_id", "order_date", "total_amount"),
    "order_items": ("id", "order_id", "product_id", "quantity", "unit_price"),
}
_DECIMAL_COLUMN = {"orders": "total_amount", "order_items": "unit_price"}


class Rejected(Exception):
    """A message that is not a usable change event: ``str(exc)`` is the stream's reason."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class OrderVersion:
    """One version of an order row (``None`` fields: the row was deleted).

    ``plausible``: its ``order_date`` is at most a day after its commit time (the event-time
    guard); an implausible version exists but does not count."""

    lsn: int
    exists: bool
    customer_id: int | None = None
    order_date: datetime | None = None
    status: str | None = None
    total_amount: Decimal | None = None
    plausible: bool = True


@dataclass(frozen=True)
class ItemVersion:
    """One version of an order_items row."""

    lsn: int
    exists: bool
    order_id: int | None = None
    product_id: int | None = None
    quantity: int | None = None
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Change:
    """One accepted change event, typed."""

    table: str
    op: str
    row_id: int
    lsn: int
    commit: datetime
    after: dict[str, Any] | None  # None for a delete
    before: dict[str, Any] | None  # None for a create / snapshot read

    @property
    def future_after(self) -> bool:
        """The after image is an order dated implausibly after its commit (the guard)."""
        return _future(self.after, self.commit)

    @property
    def future_before(self) -> bool:
        return _future(self.before, self.commit)


def _future(image: Mapping[str, Any] | None, commit: datetime) -> bool:
    date_ = None if image is None else image.get("order_date")
    return date_ is not None and date_ > commit + FUTURE_TOLERANCE


def _java_double(x: float) -> str:
    """A double as Java's ``Double.toString`` writes it (Spark's text of a JSON float)."""
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exponent)  # digits before the decimal point
    minus = "-" if sign else ""
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{minus}0.{'0' * -point}{text}"
        whole, frac = text[:point].ljust(point, "0"), text[point:]
        return f"{minus}{whole}.{frac or '0'}"
    return f"{minus}{text[0]}.{text[1:] or '0'}E{point - 1}"


def _text(value: Any) -> str | None:
    """The text Spark reads from a JSON value into a STRING column."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    return json.dumps(value, separators=(",", ":"))


def _trimmed(text: str) -> str:
    """Spark trims characters up to U+0020 around a number before casting it."""
    return text.strip("".join(chr(c) for c in range(0x21)))


def _long(value: Any, bits: int = 64) -> int | None:
    """A JSON value as Spark's ``try_cast`` to a ``bits``-bit integer reads it (or None)."""
    text = _text(value)
    if text is None:
        return None
    text = _trimmed(text)
    if not _INTEGER.match(text):
        return None
    number = int(text)
    return number if -(2 ** (bits - 1)) <= number < 2 ** (bits - 1) else None


def _micros(value: Any) -> datetime | None:
    us = _long(value)
    if us is None or not _FIRST_MICROS <= us <= _LAST_MICROS:
        return None
    return EPOCH + timedelta(microseconds=us)


def _decimal_spec(message: Mapping[str, Any], column: str) -> Mapping[str, Any] | None:
    """The Connect schema of ``column``: in the after image's block, else the before's."""
    schema = message.get("schema")
    if not isinstance(schema, dict):
        return None
    blocks = [b for b in (schema.get("fields") or []) if isinstance(b, dict)]
    for image in ("after", "before"):
        block = next((b for b in blocks if _text(b.get("field")) == image), None)
        if block is not None:
            fields = [f for f in (block.get("fields") or []) if isinstance(f, dict)]
            return next((f for f in fields if _text(f.get("field")) == column), None)
    return None


def _decimal(value: Any, spec: Mapping[str, Any] | None, default_scale: int) -> Decimal | None:
    """A ``DECIMAL(10,2)`` value in any ``decimal.handling.mode`` (None when it does not
    decode, or is not exactly a ``DECIMAL(10,2)``)."""
    text = _text(value)
    if text is None:
        return None
    kind = None if spec is None else _text(spec.get("type"))
    if spec is not None:
        numeric = kind in ("string", "double")
    else:
        numeric = bool(_NUMBER.match(text)) and any(c in text for c in ".eE")
    try:
        if numeric:
            result = Decimal(text)
        else:
            if spec is not None and kind != "bytes":
                return None
            params = spec.get("parameters") if spec is not None else None
            scale = _long(params.get("scale"), 32) if isinstance(params, dict) else None
            scale = default_scale if scale is None else scale
            if not _BASE64.match(text):
                return None
            raw = base64.b64decode(text, validate=True)
            if not 1 <= len(raw) <= 8 or not 0 <= scale <= 18:
                return None
            result = Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)
    except (InvalidOperation, binascii.Error, ValueError):
        return None
    if (
        not result.is_finite()
        or result != result.quantize(CENTS)
        or abs(result) >= Decimal(10) ** 8
    ):
        return None
    return result.quantize(CENTS)


def _typed(
    message: Mapping[str, Any], row: Mapping[str, Any], table: str, default_scale: int
) -> dict[str, Any]:
    """The typed values of one image; a missing value is None (checked by the caller)."""
    column = _DECIMAL_COLUMN[table]
    out: dict[str, Any] = {}
    for name in _COLUMNS[table]:
        value = row.get(name)
        if name == column:
            out[name] = _decimal(value, _decimal_spec(message, column), default_scale)
        elif name == "order_date":
            out[name] = _micros(value)
        elif name == "quantity":
            out[name] = _long(value, 32)
        else:
            out[name] = _long(value)
    if table == "orders":
        out["status"] = _text(row.get("status"))
    return out


def _check_image(
    raw_row: Mapping[str, Any], typed: Mapping[str, Any], table: str, prefix: str
) -> None:
    for name in _COLUMNS[table]:
        if raw_row.get(name) is None:
            raise Rejected(f"null_key_field:{prefix}{name}")
        if typed[name] is None:
            kind = "bad_decimal" if name == _DECIMAL_COLUMN[table] else "bad_value"
            raise Rejected(f"{kind}:{prefix}{name}")


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load(text: str) -> Any:
    """The first JSON value of ``text`` (Spark ignores what follows it)."""
    decoder = json.JSONDecoder(parse_constant=_strict_constant)
    return decoder.raw_decode(text.lstrip(" \t\r\n"))[0]


def _structs_ok(message: Mapping[str, Any]) -> bool:
    """Objects where the envelope has objects (Spark's reader refuses the whole message
    otherwise): the payload, the images, ``source``, the Connect schema's blocks."""

    def obj(value: Any) -> bool:
        return value is None or isinstance(value, dict)

    def array_of_objects(value: Any) -> bool:
        return value is None or (isinstance(value, list) and all(obj(v) for v in value))

    payload = message.get("payload")
    if not obj(payload):
        return False
    for holder in (message, payload or {}):
        if not all(obj(holder.get(k)) for k in ("before", "after", "source")):
            return False
    schema = message.get("schema")
    if not obj(schema):
        return False
    blocks = (schema or {}).get("fields")
    if not array_of_objects(blocks):
        return False
    for block in blocks or []:
        fields = (block or {}).get("fields")
        if not array_of_objects(fields):
            return False
        if not all(obj((f or {}).get("parameters")) for f in fields or []):
            return False
    return True


def parse_change(record: Mapping[str, Any], default_scale: int = 2) -> Change:
    """One raw record → the typed change.

    Raises :class:`Rejected` with the stream's reason for anything the stream would
    dead-letter (incl. tombstones). A ``future_event_time`` message is not rejected: it is a
    change whose version does not count (``Change.future_after``), as in the stream.
    """
    text = record.get("value")
    if text is None:
        raise Rejected("tombstone")
    try:
        message = _load(text)
    except (ValueError, TypeError) as exc:
        raise Rejected("not_json") from exc
    if not isinstance(message, dict) or not _structs_ok(message):
        raise Rejected("not_an_envelope")
    payload = message["payload"] if isinstance(message.get("payload"), dict) else message
    op = _text(payload.get("op"))
    if op is None:
        raise Rejected("not_an_envelope")
    source = payload.get("source") or {}
    topic = record.get("topic")
    table = topic.rsplit(".", 1)[-1] if topic is not None else _text(source.get("table"))
    if table is None:
        raise Rejected("not_an_envelope:source.table")
    if table not in _COLUMNS:
        raise Rejected(f"unknown_table:{table}")
    if op not in ("c", "u", "d", "r"):
        raise Rejected(f"unknown_op:{op}")
    lsn = _long(source.get("lsn"))
    if lsn is None:
        raise Rejected("not_an_envelope:source.lsn")
    ts_ms = _long(source.get("ts_ms"))
    if ts_ms is None or not _FIRST_MICROS // 1000 <= ts_ms <= _LAST_MICROS // 1000:
        raise Rejected("not_an_envelope:source.ts_ms")
    commit = EPOCH + timedelta(milliseconds=ts_ms)
    after_row: Any = payload.get("after")  # an object or None (_structs_ok)
    before_row: Any = payload.get("before")
    if op != "d" and after_row is None:
        raise Rejected("missing_after")
    if op in ("u", "d") and (
        before_row is None or any(before_row.get(c) is None for c in _COLUMNS[table])
    ):
        raise Rejected("missing_before")
    after = before = None
    if op != "d":
        after = _typed(message, after_row, table, default_scale)
        _check_image(after_row, after, table, "")
    if op in ("u", "d"):
        before = _typed(message, before_row, table, default_scale)
        _check_image(before_row, before, table, "before.")
    row_id = (after or before or {})["id"]
    return Change(table, op, row_id, lsn, commit, after, before)


def future_event_time(change: Change) -> bool:
    """The message is reported as a dead letter ``future_event_time`` (besides its event)."""
    return change.table == "orders" and change.future_after


def _valid_changes(raw_values: Iterable[Mapping[str, Any]], default_scale: int) -> Iterator[Change]:
    for record in raw_values:
        try:
            yield parse_change(record, default_scale)
        except Rejected:
            continue


def replay(
    raw_values: Iterable[Mapping[str, Any]], default_scale: int = 2
) -> tuple[dict[int, OrderVersion], dict[int, ItemVersion], set[int], set[int]]:
    """The newest version (max LSN) of every order and item, plus every customer and
    product id ever mentioned by a valid event (they read zeros when nothing counts)."""
    return replay_changes(_valid_changes(raw_values, default_scale))


def replay_changes(
    changes: Iterable[Change],
) -> tuple[dict[int, OrderVersion], dict[int, ItemVersion], set[int], set[int]]:
    """:func:`replay` of changes already parsed by :func:`parse_change`."""
    orders: dict[int, OrderVersion] = {}
    items: dict[int, ItemVersion] = {}
    customers: set[int] = set()
    products: set[int] = set()
    for change in changes:
        after, row_id, lsn = change.after, change.row_id, change.lsn
        if change.table == "orders":
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
                    plausible=not change.future_after,
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
    """An order that counts: its newest version exists, is not cancelled and is plausible
    (not dated more than a day after its commit)."""

    customer_id: int
    order_date: datetime
    total_amount: Decimal


def _counted(order: OrderVersion | None) -> CountedOrder | None:
    if order is None or not order.exists or order.status == "cancelled" or not order.plausible:
        return None
    # an existing version was parsed from a complete after image (_check_image)
    assert order.customer_id is not None and order.order_date is not None
    assert order.total_amount is not None
    return CountedOrder(order.customer_id, order.order_date, order.total_amount)


def _in_days(ts: datetime, at: datetime, days: int) -> bool:
    last: date = at.astimezone(UTC).date()
    return last - timedelta(days=days - 1) <= ts.date() <= last


def reference_customer_features(
    raw_values: Iterable[Mapping[str, Any]], at: datetime, default_scale: int = 2
) -> dict[int, CustomerFeatures]:
    """Every customer's features at ``at`` (aware UTC), by the definitions: the 30-day sums
    over the 30 UTC days ending with T's day, recency over the 365 days ending with it."""
    if at.tzinfo is None:
        raise ValueError("read time must be timezone-aware (UTC)")
    orders, _, customers, _ = replay(raw_values, default_scale)
    return _customer_features(orders, customers, at)


def _customer_features(
    orders: Mapping[int, OrderVersion], customers: Iterable[int], at: datetime
) -> dict[int, CustomerFeatures]:
    in_window: dict[int, list[CountedOrder]] = {c: [] for c in customers}
    newest: dict[int, datetime] = {}
    for version in orders.values():
        o = _counted(version)
        if o is None:
            continue
        if _in_days(o.order_date, at, CUSTOMER_DAYS):
            in_window[o.customer_id].append(o)
        if _in_days(o.order_date, at, RECENCY_DAYS) and (
            o.customer_id not in newest or o.order_date > newest[o.customer_id]
        ):
            newest[o.customer_id] = o.order_date
    result: dict[int, CustomerFeatures] = {}
    for customer in sorted(in_window):
        mine = in_window[customer]
        count = len(mine)
        total = sum((o.total_amount for o in mine), Decimal("0.00")).quantize(CENTS)
        avg = (total / count).quantize(CENTS, rounding=ROUND_HALF_EVEN) if count else None
        last = newest.get(customer)
        days = (at - last) // timedelta(days=1) if last is not None else None
        result[customer] = CustomerFeatures(customer, count, total, avg, last, days)
    return result


class ReferenceLog:
    """A log parsed once, for the reference at many read times and as of many moments.

    ``known_at`` cuts the log by commit time (``source.ts_ms``): the features a stream that
    had caught up with the database at that moment could show — what a model scored then
    should have seen, and what a point-in-time training row must hold. Without it, every
    change of the log counts (today's tables, whatever the read time).
    """

    def __init__(self, raw_values: Iterable[Mapping[str, Any]], default_scale: int = 2) -> None:
        self.changes: list[Change] = []
        self.positions: list[int] = []  # index of each change's record in ``raw_values``
        for index, record in enumerate(raw_values):
            try:
                self.changes.append(parse_change(record, default_scale))
            except Rejected:
                continue
            self.positions.append(index)

    def _known(self, known_at: datetime | None) -> list[Change]:
        if known_at is None:
            return self.changes
        if known_at.tzinfo is None:
            raise ValueError("known_at must be timezone-aware (UTC)")
        return [c for c in self.changes if c.commit <= known_at]

    def customer_features(
        self, at: datetime, *, known_at: datetime | None = None
    ) -> dict[int, CustomerFeatures]:
        """Every customer's features read at ``at``, from the changes committed at or
        before ``known_at`` (default: all of them)."""
        if at.tzinfo is None:
            raise ValueError("read time must be timezone-aware (UTC)")
        orders, _, customers, _ = replay_changes(self._known(known_at))
        return _customer_features(orders, customers, at)

    def counted_orders(self, *, known_at: datetime | None = None) -> dict[int, CountedOrder]:
        """Order id → the order as it counts, from the changes committed by ``known_at``."""
        orders, _, _, _ = replay_changes(self._known(known_at))
        return {oid: o for oid, v in orders.items() if (o := _counted(v)) is not None}

    def first_commits(self) -> dict[int, datetime]:
        """Order id → the commit time of the first change of the order in the log (its
        creation, or the snapshot read of an order created before the log began)."""
        out: dict[int, datetime] = {}
        for change in self.changes:
            if change.table == "orders" and change.row_id not in out:
                out[change.row_id] = change.commit
        return out


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
