"""Debezium change events (JSON converter) → typed order and order-item events.

Both converter shapes are accepted and detected per message: ``schemas.enable=true``
(``{"schema": ..., "payload": ...}``) and ``false`` (the payload alone). Decimals are decoded
in all three ``decimal.handling.mode`` values: ``precise`` (base64 of the unscaled
two's-complement integer; the scale comes from the message's Connect schema when present,
else ``default_scale``), ``string`` and ``double``. Without a schema a decimal text holding a
``.`` or an exponent is read as a number (``string``/``double`` modes always write one for
``DECIMAL(10,2)``), anything else as base64 (``precise``).

Nothing here throws on bad input (Spark 4 runs with ANSI mode on): each message becomes
either one event or one dead letter ``(raw, reason, topic)``; a tombstone is a dead letter
with reason ``tombstone`` (skipped and counted, not an error; its ``raw`` is the message
key, the deleted row's primary key). Reasons are a stable code,
optionally followed by ``:detail``:

``tombstone``, ``not_json``, ``not_an_envelope`` (valid JSON, but not a Debezium change
event), ``not_an_envelope:source.lsn`` (no readable LSN), ``unknown_op:<op>``,
``missing_after`` (``c``/``u``/``r`` without an after image), ``missing_before`` (``u``/``d``
without the full before image: the table needs ``REPLICA IDENTITY FULL``),
``null_key_field:<column>``, ``bad_value:<column>`` (present but not of the column's type),
``bad_decimal:<column>`` (undecodable, or not exactly representable as ``DECIMAL(10,2)``).

Routing: with a ``topic`` column, a message belongs to the table named by the topic's last
segment (``….orders`` / ``….order_items``); without one, to ``source.table``. A message whose
table cannot be told (no topic, not an envelope) is dead-lettered by
:func:`parse_order_events` only, so running both parsers over one input counts it once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

ORDERS = "orders"
ORDER_ITEMS = "order_items"
SNAPSHOT_FLAGS = (
    "true",
    "first",
    "last",
    "first_in_data_collection",
    "last_in_data_collection",
    "incremental",
)


class Parsed(NamedTuple):
    """Typed events plus the dead letters ``(raw string, reason string, topic string)``.

    ``messages`` is both in one pass: a row per message with the struct ``event`` (null for
    a dead letter) and the struct ``dead_letter`` (null for an event). A query that needs
    both without reading its source twice (Real-Time Mode) uses it.
    """

    events: DataFrame
    dead_letters: DataFrame
    messages: DataFrame


_TYPES = {
    "long": LongType(),
    "int": IntegerType(),
    "string": StringType(),
    "timestamp": TimestampType(),
    "decimal": DecimalType(10, 2),
    "boolean": BooleanType(),
}


def _schema(spec: str) -> StructType:
    """``"name type, ..."`` with the short type names of the contract → StructType."""
    return StructType(
        [StructField(n, _TYPES[t]) for n, t in (part.split() for part in spec.split(","))]
    )


_META = "op string, lsn long, commit_ts timestamp, is_snapshot boolean"
ORDER_EVENT_SCHEMA = _schema(
    "order_id long, customer_id long, order_ts timestamp, status string, amount decimal, "
    "before_customer_id long, before_order_ts timestamp, before_status string, "
    "before_amount decimal, " + _META
)
ITEM_EVENT_SCHEMA = _schema(
    "item_id long, order_id long, product_id long, quantity int, unit_price decimal, "
    "before_order_id long, before_product_id long, before_quantity int, "
    "before_unit_price decimal, " + _META
)
DEAD_LETTER_SCHEMA = _schema("raw string, reason string, topic string")

# Every leaf is read as text (a JSON number becomes its literal text), so from_json never
# fails on a type mismatch; typing happens afterwards with try_* functions.
_ROW = {
    ORDERS: "id STRING, customer_id STRING, order_date STRING, status STRING, total_amount STRING",
    ORDER_ITEMS: "id STRING, order_id STRING, product_id STRING, quantity STRING, "
    "unit_price STRING",
}
# The DECIMAL(10,2) column of each table: its Connect schema (when the message has one)
# tells the decimal.handling.mode and the scale.
_DECIMAL_FIELD = {ORDERS: "total_amount", ORDER_ITEMS: "unit_price"}
_SOURCE = "source STRUCT<ts_ms: STRING, snapshot: STRING, table: STRING, lsn: STRING>"
_CONNECT_SCHEMA = (
    "schema STRUCT<name: STRING, fields: ARRAY<STRUCT<field: STRING, "
    "fields: ARRAY<STRUCT<field: STRING, type: STRING, name: STRING, "
    "parameters: MAP<STRING, STRING>>>>>>"
)


def _message_schema(table: str) -> str:
    row = _ROW[table]
    payload = f"before STRUCT<{row}>, after STRUCT<{row}>, {_SOURCE}, op STRING"
    return f"{_CONNECT_SCHEMA}, payload STRUCT<{payload}>, {payload}, _corrupt_record STRING"


def _envelopes(raw: DataFrame, table: str) -> DataFrame:
    """Columns ``raw``, ``topic``, ``env`` (the payload, whichever the shape), ``decimal``
    (the Connect schema of the table's decimal column, null without a schema), ``shape_error`` and
    ``mine`` (the message belongs to ``table``; the caller keeps only those)."""
    if "topic" in raw.columns:  # skip the other table's topic before parsing any JSON
        other = ORDER_ITEMS if table == ORDERS else ORDERS
        raw = raw.where(
            F.col("topic").isNull() | (F.substring_index(F.col("topic"), ".", -1) != other)
        )
    topic = F.col("topic") if "topic" in raw.columns else F.lit(None).cast("string")
    key = F.col("key").cast("string") if "key" in raw.columns else F.lit(None).cast("string")
    j = F.from_json(
        "value", _message_schema(table), {"columnNameOfCorruptRecord": "_corrupt_record"}
    )
    msg = raw.select(
        F.col("value").alias("value"),
        F.coalesce("value", key).alias("raw"),
        topic.alias("topic"),
        j.alias("j"),
    )
    env = F.when(F.col("j.payload").isNotNull(), F.col("j.payload")).otherwise(
        F.struct(*[F.col(f"j.{c}").alias(c) for c in ("before", "after", "source", "op")])
    )

    def row_schema(image: str) -> Column:
        return F.try_element_at(
            F.filter("j.schema.fields", lambda f: f["field"] == image), F.lit(1)
        )

    row_fields = F.coalesce(row_schema("after"), row_schema("before"))
    decimal = F.try_element_at(
        F.filter(row_fields["fields"], lambda f: f["field"] == _DECIMAL_FIELD[table]), F.lit(1)
    )
    shape_error = (
        F.when(F.col("value").isNull(), F.lit("tombstone"))
        .when(
            F.col("j._corrupt_record").isNotNull() & F.try_parse_json("value").isNull(),
            F.lit("not_json"),
        )
        .when(F.col("j._corrupt_record").isNotNull(), F.lit("not_an_envelope"))
        .when(env["op"].isNull(), F.lit("not_an_envelope"))
    )
    routed = F.coalesce(F.substring_index(topic, ".", -1), env["source"]["table"])
    mine = routed == table
    if table == ORDERS:  # messages of no known table are dead-lettered here, once
        mine = mine | routed.isNull()
    return msg.select(
        "raw",
        "topic",
        env.alias("env"),
        decimal.alias("decimal"),
        shape_error.alias("shape_error"),
        F.coalesce(mine, F.lit(False)).alias("mine"),
    )


def _materialized(df: DataFrame) -> DataFrame:
    """The same rows and columns, computed once per row.

    Spark's optimizer pushes a filter through the projections below it by substituting
    each column with its expression, so a filter on a value derived from ``from_json``
    would run the JSON parser (and the decimal decoding) once per reference, hundreds of
    times per message. A generator is a boundary the filter cannot cross: the columns are
    computed once in the projection below it, and filters above read the results.
    """
    return df.select(F.inline(F.array(F.struct(*[F.col(c) for c in df.columns]))))


def _long(text: Column) -> Column:
    return text.try_cast("bigint")


def micros_to_timestamp(text: Column) -> Column:
    """``io.debezium.time.MicroTimestamp`` (µs since the epoch, UTC) → timestamp."""
    return F.timestamp_micros(_long(text))


def decode_decimal(text: Column, spec: Column, default_scale: int) -> Column:
    """A Debezium ``DECIMAL(10,2)`` value → ``decimal(10,2)``, null when undecodable.

    ``spec`` is the column's Connect schema (null when the message has none).
    ``precise``: base64 → unscaled big-endian two's-complement integer → ÷ 10^scale, exact.
    ``string`` / ``double``: the number's text. The result must equal the input exactly.
    """
    scale = F.coalesce(spec["parameters"]["scale"].try_cast("int"), F.lit(default_scale))
    numeric = F.when(spec.isNotNull(), spec["type"].isin("string", "double")).otherwise(
        text.rlike(r"^[+-]?[0-9]*\.?[0-9]*([eE][+-]?[0-9]+)?$") & text.rlike(r"[.eE]")
    )
    raw = F.try_to_binary(text, F.lit("base64"))
    n = F.length(raw)
    unsigned = F.conv(F.hex(raw), 16, 10).try_cast("decimal(20,0)")
    signed = F.when(
        F.substring(F.hex(raw), 1, 1) >= F.lit("8"),
        unsigned - F.pow(F.lit(2), n * 8).try_cast("decimal(20,0)"),
    ).otherwise(unsigned)
    divisor = F.concat(F.lit("1"), F.repeat(F.lit("0"), scale)).try_cast("decimal(20,0)")
    precise = F.when(
        (n >= 1) & (n <= 8) & scale.between(0, 18) & (spec.isNull() | (spec["type"] == "bytes")),
        F.try_divide(signed, divisor),
    )
    exact = F.when(numeric, text.try_cast("decimal(38,18)")).otherwise(precise)
    fitted = exact.try_cast("decimal(10,2)")
    return F.when(fitted == exact, fitted)


def _check(rules: list[tuple[Column, str | Column]]) -> Column:
    """The first failing rule's reason (rules are (is_bad, reason)); null when all pass."""
    if not rules:
        raise ValueError("no rules to check")
    out: Column | None = None
    for bad, reason in rules:
        r = reason if isinstance(reason, Column) else F.lit(reason)
        out = F.when(bad, r) if out is None else out.when(bad, r)
    assert out is not None
    return out


def _typed_rules(image: Column, typed: dict[str, Column], prefix: str) -> list[tuple[Column, str]]:
    rules: list[tuple[Column, str]] = []
    for name, value in typed.items():
        rules.append((image[name].isNull(), f"{prefix}null_key_field:{name}"))
        reason = "bad_decimal" if name in ("total_amount", "unit_price") else "bad_value"
        rules.append((value.isNull(), f"{prefix}{reason}:{name}"))
    return rules


Columns = Callable[[dict[str, Column], dict[str, Column]], list[Column]]


def _finish(
    msg: DataFrame,
    typed_after: dict[str, Column],
    typed_before: dict[str, Column],
    columns: Columns,
) -> Parsed:
    """Check each message and type it: ``columns(after, before)`` gives the event's columns
    from the typed values of both images.

    The typed values (decimal decoding above all) are computed once per message, in one
    projection below a :func:`_materialized` boundary; the checks and the output columns
    read the results instead of repeating the expressions."""
    typed = msg.select(
        "raw",
        "topic",
        "mine",
        "shape_error",
        "env",
        *[value.alias(f"_after_{name}") for name, value in typed_after.items()],
        *[value.alias(f"_before_{name}") for name, value in typed_before.items()],
    )
    after = {name: F.col(f"_after_{name}") for name in typed_after}
    before = {name: F.col(f"_before_{name}") for name in typed_before}
    env = F.col("env")
    op = env["op"]
    lsn = _long(env["source"]["lsn"])
    has_before = op.isin("u", "d")
    has_after = op.isin("c", "u", "r")
    before_complete = env["before"].isNotNull()
    for name in typed_before:
        before_complete = before_complete & env["before"][name].isNotNull()
    rules: list[tuple[Column, str | Column]] = [
        (F.col("shape_error").isNotNull(), F.col("shape_error")),
        (~op.isin("c", "u", "d", "r"), F.concat(F.lit("unknown_op:"), op)),
        (lsn.isNull(), "not_an_envelope:source.lsn"),
        (has_after & env["after"].isNull(), "missing_after"),
        (has_before & ~before_complete, "missing_before"),
    ]
    for bad, reason in _typed_rules(env["after"], after, ""):
        rules.append((has_after & bad, reason))
    for bad, reason in _typed_rules(env["before"], before, ""):
        rules.append((has_before & bad, reason.replace(":", ":before.", 1)))
    checked = _materialized(typed).withColumn("reason", _check(rules)).where("mine")
    events = checked.where(F.col("reason").isNull()).select(*columns(after, before))
    dead = checked.where(F.col("reason").isNotNull()).select("raw", "reason", "topic")
    both = checked.select(
        F.when(F.col("reason").isNull(), F.struct(*columns(after, before))).alias("event"),
        F.when(F.col("reason").isNotNull(), F.struct("raw", "reason", "topic")).alias(
            "dead_letter"
        ),
    )
    return Parsed(events, dead, both)


def _common(env: Column) -> list[Column]:
    src = env["source"]
    return [
        env["op"].alias("op"),
        _long(src["lsn"]).alias("lsn"),
        F.timestamp_millis(_long(src["ts_ms"])).alias("commit_ts"),
        (
            (env["op"] == "r") | F.coalesce(src["snapshot"].isin(*SNAPSHOT_FLAGS), F.lit(False))
        ).alias("is_snapshot"),
    ]


def _after_or_null(value: Column) -> Column:
    return F.when(F.col("env.op") != "d", value)


def _before_or_null(value: Column) -> Column:
    return F.when(F.col("env.op").isin("u", "d"), value)


# region parse_order_events
def parse_order_events(raw: DataFrame, *, default_scale: int = 2) -> Parsed:
    """Debezium messages of ``inventory.orders`` → one typed event per change.

    ``order_ts`` is the business event time (``order_date``), ``lsn`` orders the versions
    of a row, ``commit_ts`` is the commit time in PostgreSQL (``source.ts_ms``). For a
    delete the after-columns are null and the ``before_*`` columns hold the old row.
    Malformed messages and tombstones go to ``dead_letters`` with a reason.
    """
    msg = _envelopes(raw, ORDERS)  # from_json for both shapes, detected per message
    env, dec = F.col("env"), F.col("decimal")

    def typed(img: str) -> dict[str, Column]:
        row = env[img]
        return {
            "id": _long(row["id"]),
            "customer_id": _long(row["customer_id"]),
            "order_date": micros_to_timestamp(row["order_date"]),
            "total_amount": decode_decimal(row["total_amount"], dec, default_scale),
        }

    # _finish types both images once per message, checks them, then builds these columns
    # from the typed values (after / before)
    return _finish(
        msg,
        typed("after"),
        typed("before"),
        lambda after, before: [
            F.coalesce(after["id"], before["id"]).alias("order_id"),
            _after_or_null(after["customer_id"]).alias("customer_id"),
            _after_or_null(after["order_date"]).alias("order_ts"),
            _after_or_null(env["after"]["status"]).alias("status"),
            _after_or_null(after["total_amount"]).alias("amount"),
            _before_or_null(before["customer_id"]).alias("before_customer_id"),
            _before_or_null(before["order_date"]).alias("before_order_ts"),
            _before_or_null(env["before"]["status"]).alias("before_status"),
            _before_or_null(before["total_amount"]).alias("before_amount"),
            *_common(env),
        ],
    )


# endregion


def parse_item_events(raw: DataFrame, *, default_scale: int = 2) -> Parsed:
    """Debezium messages of ``inventory.order_items`` → one typed event per change.

    Same rules as :func:`parse_order_events`; an item has no event time of its own (its
    line is placed on its order's ``order_date`` day by the product features).
    """
    msg = _envelopes(raw, ORDER_ITEMS)
    env, dec = F.col("env"), F.col("decimal")

    def typed(img: str) -> dict[str, Column]:
        row = env[img]
        return {
            "id": _long(row["id"]),
            "order_id": _long(row["order_id"]),
            "product_id": _long(row["product_id"]),
            "quantity": row["quantity"].try_cast("int"),
            "unit_price": decode_decimal(row["unit_price"], dec, default_scale),
        }

    return _finish(
        msg,
        typed("after"),
        typed("before"),
        lambda after, before: [
            F.coalesce(after["id"], before["id"]).alias("item_id"),
            _after_or_null(after["order_id"]).alias("order_id"),
            _after_or_null(after["product_id"]).alias("product_id"),
            _after_or_null(after["quantity"]).alias("quantity"),
            _after_or_null(after["unit_price"]).alias("unit_price"),
            _before_or_null(before["order_id"]).alias("before_order_id"),
            _before_or_null(before["product_id"]).alias("before_product_id"),
            _before_or_null(before["quantity"]).alias("before_quantity"),
            _before_or_null(before["unit_price"]).alias("before_unit_price"),
            *_common(env),
        ],
    )
