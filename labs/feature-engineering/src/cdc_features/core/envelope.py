"""Debezium change events (JSON converter) → typed order and order-item events.

Both converter shapes are accepted and detected per message: ``schemas.enable=true``
(``{"schema": ..., "payload": ...}``) and ``false`` (the payload alone). Decimals are decoded
in all three ``decimal.handling.mode`` values: ``precise`` (base64 of the unscaled
two's-complement integer; the scale comes from the message's Connect schema when present,
else ``default_scale``), ``string`` and ``double``. Without a schema a decimal text holding a
``.`` or an exponent is read as a number (``string``/``double`` modes always write one for
``DECIMAL(10,2)``), anything else as base64 (``precise``).

Nothing here throws on bad input (Spark 4 runs with ANSI mode on): each message becomes
either one event or one dead letter ``(raw, reason, topic, key)`` — except a
``future_event_time`` message, which is both (see the guard below); a tombstone is a dead letter
with reason ``tombstone`` (skipped and counted, not an error; its ``raw`` is the message
key, the deleted row's primary key). Reasons are a stable code,
optionally followed by ``:detail``:

``tombstone``, ``not_json``, ``not_an_envelope`` (valid JSON, but not a Debezium change
event), ``not_an_envelope:source.table`` (no topic and no ``source.table``),
``unknown_table:<table>`` (a table other than ``orders`` / ``order_items``),
``unknown_op:<op>``, ``not_an_envelope:source.lsn`` (no readable LSN),
``not_an_envelope:source.ts_ms`` (no readable commit time in years 1–9999),
``missing_after`` (``c``/``u``/``r`` without an after image), ``missing_before`` (``u``/``d``
without the full before image: the table needs ``REPLICA IDENTITY FULL``),
``null_key_field:<column>``, ``bad_value:<column>`` (present but not of the column's type,
e.g. a text or fractional id, an ``order_date`` outside years 1–9999),
``bad_decimal:<column>`` (undecodable, or not exactly representable as ``DECIMAL(10,2)``),
and ``future_event_time:after.order_date`` (the event-time guard, below).

JSON is read as Spark's JSON reader reads it, made strict where it has an option: no single
quotes, no ``NaN``/``Infinity``; content after the first complete JSON value is ignored.

The event-time guard (:func:`parse_order_events`): an order image whose ``order_date`` is more
than ``future_tolerance`` ahead of the message's commit time (``source.ts_ms``; the snapshot
time for a snapshot read) is a typo, not a time zone. Such a version exists but does not count:
its ``order_ts`` is null in the event (so it reaches no tile and no watermark), and the message
is *also* reported as a dead letter ``future_event_time:after.order_date`` with the row's key,
for the operator. A future before image (the previous, already reported version) gives a null
``before_order_ts``: that version never reached a tile, so there is nothing to retract.

Routing: with a ``topic`` column, a message belongs to the table named by the topic's last
segment (``….orders`` / ``….order_items``); without one, to ``source.table``. A message whose
table cannot be told (no topic, not an envelope) or is another table is dead-lettered by
:func:`parse_order_events` only, so running both parsers over one input counts it once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
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

from cdc_features.core.spec import FUTURE_TOLERANCE

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
    """Typed events plus the dead letters ``(raw, reason, topic, key)`` (strings; ``key`` is
    the message key, the row's primary key, when the input has one).

    ``messages`` is both in one pass: a row per message with the struct ``event`` (null for
    a dead letter) and the struct ``dead_letter`` (null for a clean event; both are set for
    an event whose version the event-time guard made not count). A query that needs both
    without reading its source twice (Real-Time Mode) uses it.
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
DEAD_LETTER_SCHEMA = _schema("raw string, reason string, topic string, key string")

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


# Spark's JSON reader accepts single quotes and NaN/Infinity by default: not JSON, so refused.
_JSON_OPTIONS = {
    "columnNameOfCorruptRecord": "_corrupt_record",
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
}
# The range of timestamps both Spark and Python represent: years 1 to 9999 (UTC), in µs.
MIN_MICROS = -62_135_596_800_000_000
MAX_MICROS = 253_402_300_799_999_999
# Standard padded base64 (what Kafka Connect writes); Spark's decoder alone is lenient (it
# skips spaces and accepts missing padding, so "NaN" would decode to two bytes).
_BASE64 = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _message_schema(table: str) -> str:
    row = _ROW[table]
    payload = f"before STRUCT<{row}>, after STRUCT<{row}>, {_SOURCE}, op STRING"
    return f"{_CONNECT_SCHEMA}, payload STRUCT<{payload}>, {payload}, _corrupt_record STRING"


def _envelopes(raw: DataFrame, table: str) -> DataFrame:
    """Columns ``raw``, ``topic``, ``env`` (the payload, whichever the shape), ``decimal``
    (the Connect schema of the table's decimal column, null without a schema), ``shape_error``,
    ``routed`` (the table the message names) and ``mine`` (the message belongs to ``table``;
    the caller keeps only those)."""
    if "topic" in raw.columns:  # skip the other table's topic before parsing any JSON
        other = ORDER_ITEMS if table == ORDERS else ORDERS
        raw = raw.where(
            F.col("topic").isNull() | (F.substring_index(F.col("topic"), ".", -1) != other)
        )
    topic = F.col("topic") if "topic" in raw.columns else F.lit(None).cast("string")
    key = F.col("key").cast("string") if "key" in raw.columns else F.lit(None).cast("string")
    j = F.from_json("value", _message_schema(table), _JSON_OPTIONS)
    msg = raw.select(
        F.col("value").alias("value"),
        F.coalesce("value", key).alias("raw"),
        topic.alias("topic"),
        key.alias("key"),
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
        .when(F.col("j").isNull(), F.lit("not_json"))  # blank: the reader gives no row
        .when(
            F.col("j._corrupt_record").isNotNull() & F.try_parse_json("value").isNull(),
            F.lit("not_json"),
        )
        .when(F.col("j._corrupt_record").isNotNull(), F.lit("not_an_envelope"))
        .when(env["op"].isNull(), F.lit("not_an_envelope"))
    )
    routed = F.when(topic.isNotNull(), F.substring_index(topic, ".", -1)).otherwise(
        env["source"]["table"]
    )
    mine = routed == table
    if table == ORDERS:  # messages of no known table are dead-lettered here, once
        mine = mine | routed.isNull() | ~routed.isin(ORDERS, ORDER_ITEMS)
    return msg.select(
        "raw",
        "topic",
        "key",
        env.alias("env"),
        decimal.alias("decimal"),
        shape_error.alias("shape_error"),
        routed.alias("routed"),
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
    """``io.debezium.time.MicroTimestamp`` (µs since the epoch, UTC) → timestamp; null when
    it is not a whole number in years 1–9999."""
    us = _long(text)
    return F.when(us.between(MIN_MICROS, MAX_MICROS), F.timestamp_micros(us))


def millis_to_timestamp(text: Column) -> Column:
    """ms since the epoch (``source.ts_ms``) → timestamp; null outside years 1–9999
    (``timestamp_millis`` itself would fail the job with a long overflow)."""
    ms = _long(text)
    return F.when(ms.between(MIN_MICROS // 1000, MAX_MICROS // 1000), F.timestamp_millis(ms))


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
    raw = F.when(text.rlike(_BASE64), F.try_to_binary(text, F.lit("base64")))
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
#: which typed image values are implausible: ``(after, before, commit_ts) -> (after is, before
#: is)``; a version so flagged does not count (see :func:`parse_order_events`)
Guard = Callable[[dict[str, Column], dict[str, Column], Column], tuple[Column, Column]]
FUTURE_EVENT_TIME = "future_event_time"


def _finish(
    msg: DataFrame,
    typed_after: dict[str, Column],
    typed_before: dict[str, Column],
    columns: Columns,
    guard: Guard | None = None,
) -> Parsed:
    """Check each message and type it: ``columns(after, before)`` gives the event's columns
    from the typed values of both images.

    The typed values (decimal decoding above all) are computed once per message, in one
    projection below a :func:`_materialized` boundary; the checks and the output columns
    read the results instead of repeating the expressions. With a ``guard``, a message
    whose after image it flags is both an event (``order_date`` of that image nulled) and a
    dead letter ``future_event_time:after.order_date``; a flagged before image has its
    ``order_date`` nulled."""
    env = F.col("env")
    typed = msg.select(
        "raw",
        "topic",
        "key",
        "mine",
        "shape_error",
        "routed",
        "env",
        _long(env["source"]["lsn"]).alias("_lsn"),
        millis_to_timestamp(env["source"]["ts_ms"]).alias("_commit_ts"),
        *[value.alias(f"_after_{name}") for name, value in typed_after.items()],
        *[value.alias(f"_before_{name}") for name, value in typed_before.items()],
    )
    after = {name: F.col(f"_after_{name}") for name in typed_after}
    before = {name: F.col(f"_before_{name}") for name in typed_before}
    op = env["op"]
    routed = F.col("routed")
    has_before = op.isin("u", "d")
    has_after = op.isin("c", "u", "r")
    before_complete = env["before"].isNotNull()
    for name in typed_before:
        before_complete = before_complete & env["before"][name].isNotNull()
    rules: list[tuple[Column, str | Column]] = [
        (F.col("shape_error").isNotNull(), F.col("shape_error")),
        (routed.isNull(), "not_an_envelope:source.table"),
        (~routed.isin(ORDERS, ORDER_ITEMS), F.concat(F.lit("unknown_table:"), routed)),
        (~op.isin("c", "u", "d", "r"), F.concat(F.lit("unknown_op:"), op)),
        (F.col("_lsn").isNull(), "not_an_envelope:source.lsn"),
        (F.col("_commit_ts").isNull(), "not_an_envelope:source.ts_ms"),
        (has_after & env["after"].isNull(), "missing_after"),
        (has_before & ~before_complete, "missing_before"),
    ]
    for bad, reason in _typed_rules(env["after"], after, ""):
        rules.append((has_after & bad, reason))
    for bad, reason in _typed_rules(env["before"], before, ""):
        rules.append((has_before & bad, reason.replace(":", ":before.", 1)))
    checked = _materialized(typed).withColumn("reason", _check(rules)).where("mine")
    letter = F.col("reason")
    if guard is not None:
        future_after, future_before = guard(after, before, F.col("_commit_ts"))
        checked = checked.withColumn("_future_after", has_after & future_after).withColumn(
            "_future_before", has_before & future_before
        )
        after = {**after, "order_date": F.when(~F.col("_future_after"), after["order_date"])}
        before = {**before, "order_date": F.when(~F.col("_future_before"), before["order_date"])}
        # an accepted message whose version is implausible is a dead letter as well
        letter = F.coalesce(
            letter,
            F.when(F.col("_future_after"), F.lit(f"{FUTURE_EVENT_TIME}:after.order_date")),
        )
    dead = checked.where(letter.isNotNull()).select("raw", letter.alias("reason"), "topic", "key")
    events = checked.where(F.col("reason").isNull()).select(*columns(after, before))
    both = checked.select(
        F.when(F.col("reason").isNull(), F.struct(*columns(after, before))).alias("event"),
        F.when(letter.isNotNull(), F.struct("raw", letter.alias("reason"), "topic", "key")).alias(
            "dead_letter"
        ),
    )
    return Parsed(events, dead, both)


def _common(env: Column) -> list[Column]:
    src = env["source"]
    return [
        env["op"].alias("op"),
        F.col("_lsn").alias("lsn"),
        F.col("_commit_ts").alias("commit_ts"),
        (
            (env["op"] == "r") | F.coalesce(src["snapshot"].isin(*SNAPSHOT_FLAGS), F.lit(False))
        ).alias("is_snapshot"),
    ]


def _after_or_null(value: Column) -> Column:
    return F.when(F.col("env.op") != "d", value)


def _before_or_null(value: Column) -> Column:
    return F.when(F.col("env.op").isin("u", "d"), value)


def _future(tolerance: timedelta) -> Guard:
    """The event-time guard: an image's ``order_date`` more than ``tolerance`` after the
    message's commit time."""
    if tolerance < timedelta(0):
        raise ValueError(f"future_tolerance must not be negative, got {tolerance}")
    limit_us = tolerance // timedelta(microseconds=1)

    def flags(
        after: dict[str, Column], before: dict[str, Column], commit_ts: Column
    ) -> tuple[Column, Column]:
        latest = F.unix_micros(commit_ts) + F.lit(limit_us)
        return (
            F.coalesce(F.unix_micros(after["order_date"]) > latest, F.lit(False)),
            F.coalesce(F.unix_micros(before["order_date"]) > latest, F.lit(False)),
        )

    return flags


# region parse_order_events
def parse_order_events(
    raw: DataFrame, *, default_scale: int = 2, future_tolerance: timedelta = FUTURE_TOLERANCE
) -> Parsed:
    """Debezium messages of ``inventory.orders`` → one typed event per change.

    ``order_ts`` is the business event time (``order_date``), ``lsn`` orders the versions
    of a row, ``commit_ts`` is the commit time in PostgreSQL (``source.ts_ms``). For a
    delete the after-columns are null and the ``before_*`` columns hold the old row.
    Malformed messages and tombstones go to ``dead_letters`` with a reason.
    Event-time guard: an ``order_date`` more than ``future_tolerance`` after the commit is
    a typo — that version does not count (``order_ts`` null, so no watermark sees it) and
    the message is reported as a dead letter ``future_event_time`` as well.
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
        guard=_future(future_tolerance),
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
