"""Builders for Debezium PostgreSQL connector JSON messages of the course tables.

The messages look exactly like what the Debezium PostgreSQL connector (3.x) with the
Kafka ``JsonConverter`` writes to ``<prefix>.inventory.orders`` and
``<prefix>.inventory.order_items``:

* ``schemas.enable=true`` gives ``{"schema": {...}, "payload": {...}}`` with a complete
  Kafka Connect schema (``io.debezium.time.MicroTimestamp`` for ``order_date``,
  ``org.apache.kafka.connect.data.Decimal`` with ``scale`` / ``connect.decimal.precision``
  parameters for ``DECIMAL(10,2)``, envelope ``<prefix>.inventory.<table>.Envelope``);
  ``schemas.enable=false`` gives the payload alone.
* ``decimal.handling.mode``: ``precise`` (base64 of the unscaled big-endian two's-complement
  integer, minimal length like Java's ``BigInteger.toByteArray``), ``string`` or ``double``.
* ``op``: ``c`` create, ``u`` update, ``d`` delete, ``r`` snapshot read; a delete is followed
  by a tombstone (same key, ``null`` value).
* Keys: ``{"id": ...}``, with or without the key schema.

Public API (all pure functions, no I/O):

* :class:`OrderRow`, :class:`OrderItemRow` — one row image of ``orders`` / ``order_items``.
* :func:`encode_precise_decimal` — ``Decimal`` → base64 unscaled bytes.
* :func:`micro_timestamp` — naive-or-UTC ``datetime`` → µs since the epoch.
* :func:`change_envelope` — the value message as a Python ``dict`` (mutable: tests corrupt it).
* :func:`change_key` — the key message as a ``dict``.
* :func:`change_record` — one ``{"topic", "key", "value"}`` record (key/value as JSON text),
  the record format of the lab's JSON-lines input files.
* :func:`order_event`, :func:`item_event` — shortcuts for :func:`change_record`.
* :func:`tombstone_record` — the tombstone that follows a delete.
* :func:`topic_name` — ``<prefix>.inventory.<table>``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

DecimalMode = Literal["precise", "string", "double"]
#: one raw message as the lab stores it: ``{"topic", "key", "value"}`` (JSON texts; value None
#: for a tombstone)
Record = dict[str, str | None]
Op = Literal["c", "u", "d", "r"]

DEFAULT_PREFIX = "dbserver1"
DATABASE = "inventory"
SCHEMA = "inventory"
CONNECTOR_VERSION = "3.6.1.Final"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ORDERS = "orders"
ORDER_ITEMS = "order_items"


@dataclass(frozen=True)
class OrderRow:
    """One row image of ``inventory.orders``."""

    id: int
    customer_id: int | None
    order_date: datetime | None
    status: str | None
    total_amount: Decimal | None


@dataclass(frozen=True)
class OrderItemRow:
    """One row image of ``inventory.order_items``."""

    id: int
    order_id: int | None
    product_id: int | None
    quantity: int | None
    unit_price: Decimal | None


Row = OrderRow | OrderItemRow

# Column kinds of each table, in table order: (name, kind, optional, default).
_COLUMNS: dict[str, list[tuple[str, str, bool, Any]]] = {
    ORDERS: [
        ("id", "int32", False, None),
        ("customer_id", "int32", True, None),
        ("order_date", "micro_timestamp", True, None),
        ("status", "string", True, "pending"),
        ("total_amount", "decimal", True, None),
    ],
    ORDER_ITEMS: [
        ("id", "int32", False, None),
        ("order_id", "int32", True, None),
        ("product_id", "int32", True, None),
        ("quantity", "int32", True, None),
        ("unit_price", "decimal", True, None),
    ],
}

DECIMAL_PRECISION = 10
DECIMAL_SCALE = 2


def topic_name(table: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Kafka topic of a course table: ``<prefix>.inventory.<table>``."""
    return f"{prefix}.{SCHEMA}.{table}"


def encode_precise_decimal(value: Decimal, scale: int = DECIMAL_SCALE) -> str:
    """Base64 of the unscaled value as a minimal big-endian two's-complement integer.

    This is what Kafka Connect's ``Decimal`` logical type holds
    (``BigDecimal.unscaledValue().toByteArray()``) and what the JSON converter writes in
    Debezium's default ``decimal.handling.mode=precise``. ``Decimal("1.56")`` → ``"AJw="``,
    ``Decimal("1.00")`` → ``"ZA=="``, ``Decimal("-1.00")`` → ``"nA=="``.
    A value with more fractional digits than ``scale`` is an error (PostgreSQL would have
    rounded it before it reached the log).
    """
    quantum = Decimal(1).scaleb(-scale)
    scaled = value.quantize(quantum)
    if scaled != value:
        raise ValueError(f"{value} has more than {scale} fractional digits")
    unscaled = int(scaled.scaleb(scale))
    bit_length = unscaled.bit_length() if unscaled >= 0 else (~unscaled).bit_length()
    raw = unscaled.to_bytes(bit_length // 8 + 1, "big", signed=True)
    return base64.b64encode(raw).decode("ascii")


def micro_timestamp(ts: datetime) -> int:
    """``io.debezium.time.MicroTimestamp`` of a ``TIMESTAMP`` value: µs since the epoch.

    A naive datetime is read as the wall-clock value stored in the column (Debezium treats
    ``TIMESTAMP WITHOUT TIME ZONE`` as UTC); an aware one is converted to UTC first.
    """
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    delta = aware - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_millis(ts: datetime | int) -> int:
    """Milliseconds since the epoch of a datetime (naive = UTC); ints pass through."""
    if isinstance(ts, int):
        return ts
    return micro_timestamp(ts) // 1000


def _table_of(row: Row) -> str:
    return ORDERS if isinstance(row, OrderRow) else ORDER_ITEMS


def _field_schema(
    name: str, kind: str, optional: bool, default: Any, decimal_mode: DecimalMode
) -> dict[str, Any]:
    if kind == "int32":
        schema: dict[str, Any] = {"type": "int32", "optional": optional}
    elif kind == "string":
        schema = {"type": "string", "optional": optional}
    elif kind == "micro_timestamp":
        schema = {
            "type": "int64",
            "optional": optional,
            "name": "io.debezium.time.MicroTimestamp",
            "version": 1,
        }
    elif kind == "decimal":
        if decimal_mode == "precise":
            schema = {
                "type": "bytes",
                "optional": optional,
                "name": "org.apache.kafka.connect.data.Decimal",
                "version": 1,
                "parameters": {
                    "scale": str(DECIMAL_SCALE),
                    "connect.decimal.precision": str(DECIMAL_PRECISION),
                },
            }
        elif decimal_mode == "string":
            schema = {"type": "string", "optional": optional}
        elif decimal_mode == "double":
            schema = {"type": "double", "optional": optional}
        else:
            raise ValueError(f"unknown decimal mode {decimal_mode!r}")
    else:  # pragma: no cover - internal table definition
        raise AssertionError(kind)
    if default is not None:
        schema["default"] = default
    schema["field"] = name
    return schema


def _value_schema(
    table: str, prefix: str, decimal_mode: DecimalMode, field_name: str
) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [_field_schema(n, k, o, d, decimal_mode) for n, k, o, d in _COLUMNS[table]],
        "optional": True,
        "name": f"{prefix}.{SCHEMA}.{table}.Value",
        "field": field_name,
    }


def _source_schema() -> dict[str, Any]:
    def f(field: str, type_: str, optional: bool, **extra: Any) -> dict[str, Any]:
        return {"type": type_, "optional": optional, **extra, "field": field}

    return {
        "type": "struct",
        "fields": [
            f("version", "string", False),
            f("connector", "string", False),
            f("name", "string", False),
            f("ts_ms", "int64", False),
            f(
                "snapshot",
                "string",
                True,
                name="io.debezium.data.Enum",
                version=1,
                parameters={
                    "allowed": "true,first,first_in_data_collection,"
                    "last_in_data_collection,last,false,incremental"
                },
                default="false",
            ),
            f("db", "string", False),
            f("sequence", "string", True),
            f("ts_us", "int64", True),
            f("ts_ns", "int64", True),
            f("schema", "string", False),
            f("table", "string", False),
            f("txId", "int64", True),
            f("lsn", "int64", True),
            f("xmin", "int64", True),
        ],
        "optional": False,
        "name": "io.debezium.connector.postgresql.Source",
        "version": 1,
        "field": "source",
    }


def _transaction_schema() -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [
            {"type": "string", "optional": False, "field": "id"},
            {"type": "int64", "optional": False, "field": "total_order"},
            {"type": "int64", "optional": False, "field": "data_collection_order"},
        ],
        "optional": True,
        "name": "event.block",
        "version": 1,
        "field": "transaction",
    }


def envelope_schema(
    table: str, *, prefix: str = DEFAULT_PREFIX, decimal_mode: DecimalMode = "precise"
) -> dict[str, Any]:
    """The Kafka Connect schema of a change event value of ``table``."""
    return {
        "type": "struct",
        "fields": [
            _value_schema(table, prefix, decimal_mode, "before"),
            _value_schema(table, prefix, decimal_mode, "after"),
            _source_schema(),
            _transaction_schema(),
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            {"type": "int64", "optional": True, "field": "ts_us"},
            {"type": "int64", "optional": True, "field": "ts_ns"},
        ],
        "optional": False,
        "name": f"{prefix}.{SCHEMA}.{table}.Envelope",
        "version": 2,
    }


def _encode_value(kind: str, value: Any, decimal_mode: DecimalMode) -> Any:
    if value is None:
        return None
    if kind == "micro_timestamp":
        return micro_timestamp(value)
    if kind == "decimal":
        dec = Decimal(value)
        if decimal_mode == "precise":
            return encode_precise_decimal(dec)
        if decimal_mode == "string":
            return format(dec.quantize(Decimal(1).scaleb(-DECIMAL_SCALE)), "f")
        return float(dec)
    return value


def row_payload(row: Row, decimal_mode: DecimalMode = "precise") -> dict[str, Any]:
    """The JSON payload of one row image (``before`` / ``after``)."""
    table = _table_of(row)
    kinds = {n: k for n, k, _, _ in _COLUMNS[table]}
    return {
        f.name: _encode_value(kinds[f.name], getattr(row, f.name), decimal_mode)
        for f in fields(row)
    }


def change_envelope(
    op: Op,
    *,
    before: Row | None = None,
    after: Row | None = None,
    lsn: int,
    commit_ts: datetime | int,
    tx_id: int | None = None,
    snapshot: str | None = None,
    processed_ts: datetime | int | None = None,
    schemas: bool = True,
    decimal_mode: DecimalMode = "precise",
    prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    """One change event value as Debezium writes it (a ``dict``; serialize with ``json``).

    ``commit_ts`` becomes ``source.ts_ms`` (commit time in the database; for snapshot reads,
    the snapshot time); ``processed_ts`` becomes the top-level ``ts_ms`` (when the connector
    processed the event; default: 3 ms after the commit). ``snapshot`` defaults to
    ``"true"`` for ``op="r"`` and ``"false"`` otherwise. ``before`` must be the full old row
    (``REPLICA IDENTITY FULL``) for ``u``/``d``.
    """
    row = after if after is not None else before
    if row is None:
        raise ValueError("a change event needs a before or an after image")
    table = _table_of(row)
    commit_ms = epoch_millis(commit_ts)
    processed_ms = epoch_millis(processed_ts) if processed_ts is not None else commit_ms + 3
    if snapshot is None:
        snapshot = "true" if op == "r" else "false"
    source = {
        "version": CONNECTOR_VERSION,
        "connector": "postgresql",
        "name": prefix,
        "ts_ms": commit_ms,
        "snapshot": snapshot,
        "db": DATABASE,
        "sequence": json.dumps([None if op == "r" else str(lsn), str(lsn)]),
        "ts_us": commit_ms * 1000,
        "ts_ns": commit_ms * 1_000_000,
        "schema": SCHEMA,
        "table": table,
        "txId": tx_id if tx_id is not None else 700 + lsn % 100_000,
        "lsn": lsn,
        "xmin": None,
    }
    payload = {
        "before": row_payload(before, decimal_mode) if before is not None else None,
        "after": row_payload(after, decimal_mode) if after is not None else None,
        "source": source,
        "transaction": None,
        "op": op,
        "ts_ms": processed_ms,
        "ts_us": processed_ms * 1000,
        "ts_ns": processed_ms * 1_000_000,
    }
    if not schemas:
        return payload
    return {
        "schema": envelope_schema(table, prefix=prefix, decimal_mode=decimal_mode),
        "payload": payload,
    }


def change_key(
    table: str, row_id: int, *, schemas: bool = True, prefix: str = DEFAULT_PREFIX
) -> dict[str, Any]:
    """The message key of a row: its primary key ``{"id": ...}``."""
    payload = {"id": row_id}
    if not schemas:
        return payload
    return {
        "schema": {
            "type": "struct",
            "fields": [{"type": "int32", "optional": False, "field": "id"}],
            "optional": False,
            "name": f"{prefix}.{SCHEMA}.{table}.Key",
        },
        "payload": payload,
    }


def dumps(message: dict[str, Any] | None) -> str | None:
    """Compact JSON text of a message, as the JSON converter writes it (``None`` stays)."""
    return None if message is None else json.dumps(message, separators=(",", ":"))


def change_record(
    op: Op,
    *,
    before: Row | None = None,
    after: Row | None = None,
    lsn: int,
    commit_ts: datetime | int,
    schemas: bool = True,
    decimal_mode: DecimalMode = "precise",
    prefix: str = DEFAULT_PREFIX,
    **envelope_options: Any,
) -> dict[str, str | None]:
    """One input record ``{"topic", "key", "value"}`` (key and value as JSON text)."""
    row = after if after is not None else before
    if row is None:
        raise ValueError("a change event needs a before or an after image")
    table = _table_of(row)
    value = change_envelope(
        op,
        before=before,
        after=after,
        lsn=lsn,
        commit_ts=commit_ts,
        schemas=schemas,
        decimal_mode=decimal_mode,
        prefix=prefix,
        **envelope_options,
    )
    return {
        "topic": topic_name(table, prefix),
        "key": dumps(change_key(table, row.id, schemas=schemas, prefix=prefix)),
        "value": dumps(value),
    }


def order_event(
    op: Op,
    *,
    before: OrderRow | None = None,
    after: OrderRow | None = None,
    lsn: int,
    commit_ts: datetime | int,
    **options: Any,
) -> dict[str, str | None]:
    """A change record of ``inventory.orders`` (see :func:`change_record`)."""
    return change_record(op, before=before, after=after, lsn=lsn, commit_ts=commit_ts, **options)


def item_event(
    op: Op,
    *,
    before: OrderItemRow | None = None,
    after: OrderItemRow | None = None,
    lsn: int,
    commit_ts: datetime | int,
    **options: Any,
) -> dict[str, str | None]:
    """A change record of ``inventory.order_items`` (see :func:`change_record`)."""
    return change_record(op, before=before, after=after, lsn=lsn, commit_ts=commit_ts, **options)


def record_value(record: Record) -> Any:
    """The parsed JSON value of a record (``ValueError`` for a tombstone, which has none)."""
    value = record.get("value")
    if value is None:
        raise ValueError(f"a tombstone has no value: {record}")
    return json.loads(value)


def record_key(record: Record) -> Any:
    """The parsed JSON key of a record."""
    key = record.get("key")
    if key is None:
        raise ValueError(f"a record without a key: {record}")
    return json.loads(key)


def tombstone_record(
    table: str, row_id: int, *, schemas: bool = True, prefix: str = DEFAULT_PREFIX
) -> dict[str, str | None]:
    """The tombstone Debezium writes after a delete: the row's key and a ``null`` value."""
    return {
        "topic": topic_name(table, prefix),
        "key": dumps(change_key(table, row_id, schemas=schemas, prefix=prefix)),
        "value": None,
    }
