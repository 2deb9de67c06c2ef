"""Parsing Debezium JSON into typed events, and every kind of bad input into dead letters."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from cdc_features.core import debezium_json as dj
from cdc_features.core.envelope import (
    DEAD_LETTER_SCHEMA,
    ITEM_EVENT_SCHEMA,
    ORDER_EVENT_SCHEMA,
    parse_item_events,
    parse_order_events,
)

RAW = "topic string, key string, value string"
ORDERS_TOPIC = "dbserver1.inventory.orders"
ITEMS_TOPIC = "dbserver1.inventory.order_items"
T0 = datetime(2026, 3, 1, 10, 30, 0, 123456)
COMMIT = datetime(2026, 3, 1, 10, 30, 5)
O1 = dj.OrderRow(1, 42, T0, "pending", Decimal("1234.56"))
O1_NEG = dj.OrderRow(1, 42, T0, "refunded", Decimal("-0.01"))
I1 = dj.OrderItemRow(5, 1, 77, 3, Decimal("99999999.99"))


def raw_df(spark: SparkSession, records: list[dict[str, Any]]) -> DataFrame:
    return spark.createDataFrame(records, RAW)


def order_rows(df: DataFrame) -> list[tuple]:
    return [tuple(r) for r in df.orderBy("lsn").collect()]


FORMATS = [(schemas, mode) for schemas in (True, False) for mode in ("precise", "string", "double")]


def test_order_create_update_delete_in_every_format(spark: SparkSession) -> None:
    log = []
    for n, (schemas, mode) in enumerate(FORMATS):
        opts: dict[str, Any] = {"schemas": schemas, "decimal_mode": mode}
        log += [
            dj.order_event("c", after=O1, lsn=1000 * n + 100, commit_ts=COMMIT, **opts),
            dj.order_event(
                "u", before=O1, after=O1_NEG, lsn=1000 * n + 200, commit_ts=COMMIT, **opts
            ),
            dj.order_event("d", before=O1_NEG, lsn=1000 * n + 300, commit_ts=COMMIT, **opts),
            dj.tombstone_record(dj.ORDERS, 1, schemas=schemas),
        ]
    parsed = parse_order_events(raw_df(spark, log))
    assert parsed.events.schema == ORDER_EVENT_SCHEMA
    assert parsed.dead_letters.schema == DEAD_LETTER_SCHEMA
    t0, commit = T0, COMMIT
    expected = []
    for n in range(len(FORMATS)):
        expected += [
            (
                1,
                42,
                t0,
                "pending",
                Decimal("1234.56"),
                None,
                None,
                None,
                None,
                "c",
                1000 * n + 100,
                commit,
                False,
            ),
            (
                1,
                42,
                t0,
                "refunded",
                Decimal("-0.01"),
                42,
                t0,
                "pending",
                Decimal("1234.56"),
                "u",
                1000 * n + 200,
                commit,
                False,
            ),
            (
                1,
                None,
                None,
                None,
                None,
                42,
                t0,
                "refunded",
                Decimal("-0.01"),
                "d",
                1000 * n + 300,
                commit,
                False,
            ),
        ]
    assert order_rows(parsed.events) == expected
    dead = sorted(tuple(r) for r in parsed.dead_letters.select("raw", "reason", "topic").collect())
    assert dead == sorted(
        (log[4 * n + 3]["key"], "tombstone", ORDERS_TOPIC) for n in range(len(FORMATS))
    )


def test_item_events_in_every_format(spark: SparkSession) -> None:
    log = []
    for n, (schemas, mode) in enumerate(FORMATS):
        opts: dict[str, Any] = {"schemas": schemas, "decimal_mode": mode}
        log += [
            dj.item_event("r", after=I1, lsn=n, commit_ts=COMMIT, **opts),
            dj.order_event("c", after=O1, lsn=100 + n, commit_ts=COMMIT, **opts),
        ]
    parsed = parse_item_events(raw_df(spark, log))
    assert parsed.events.schema == ITEM_EVENT_SCHEMA
    assert [tuple(r) for r in parsed.events.orderBy("lsn").collect()] == [
        (5, 1, 77, 3, Decimal("99999999.99"), None, None, None, None, "r", n, COMMIT, True)
        for n in range(len(FORMATS))
    ]
    assert parsed.dead_letters.count() == 0
    # the order events belong to the other parser
    assert parse_order_events(raw_df(spark, log)).events.count() == len(FORMATS)


def test_precise_decimal_scale_comes_from_the_schema(spark: SparkSession) -> None:
    msg = dj.change_envelope("c", after=O1, lsn=1, commit_ts=COMMIT)
    after_schema = msg["schema"]["fields"][1]["fields"]
    amount_field = next(f for f in after_schema if f["field"] == "total_amount")
    amount_field["parameters"]["scale"] = "3"  # unscaled 123456 now means 123.456 ...
    msg["payload"]["after"]["total_amount"] = dj.encode_precise_decimal(Decimal("123.450"), 3)
    rec = {"topic": ORDERS_TOPIC, "key": None, "value": json.dumps(msg)}
    events = parse_order_events(raw_df(spark, [rec])).events.collect()
    assert events[0]["amount"] == Decimal("123.45")


def test_payload_only_precise_uses_the_configured_default_scale(spark: SparkSession) -> None:
    rec = dj.order_event("c", after=O1, lsn=1, commit_ts=COMMIT, schemas=False)  # "AeJA" = 123456
    assert parse_order_events(raw_df(spark, [rec])).events.collect()[0]["amount"] == Decimal(
        "1234.56"
    )
    parsed = parse_order_events(raw_df(spark, [rec]), default_scale=3)
    # 123.456 does not fit DECIMAL(10,2) exactly: a dead letter, never a rounded amount
    assert [r["reason"] for r in parsed.dead_letters.collect()] == ["bad_decimal:total_amount"]
    assert parsed.events.count() == 0


def test_snapshot_and_routing_without_topic(spark: SparkSession) -> None:
    snap = dj.order_event("r", after=O1, lsn=50, commit_ts=COMMIT, snapshot="last")
    item = dj.item_event("c", after=I1, lsn=51, commit_ts=COMMIT)
    df = spark.createDataFrame(
        [(snap["value"],), (item["value"],), ("oops",), (None,)], "value string"
    )
    orders = parse_order_events(df)
    assert [(r["op"], r["is_snapshot"]) for r in orders.events.collect()] == [("r", True)]
    assert sorted(r["reason"] for r in orders.dead_letters.collect()) == ["not_json", "tombstone"]
    items = parse_item_events(df)
    assert [r["item_id"] for r in items.events.collect()] == [5]
    assert items.dead_letters.count() == 0  # unroutable rows are counted once, by orders


def corrupt(op: dj.Op, edit, *, schemas: bool = True, before=O1, after=O1) -> dict[str, Any]:
    msg = dj.change_envelope(
        op,
        before=before if op in "ud" else None,
        after=after if op != "d" else None,
        lsn=10,
        commit_ts=COMMIT,
        schemas=schemas,
    )
    payload = msg["payload"] if schemas else msg
    edit(payload)
    return {"topic": ORDERS_TOPIC, "key": None, "value": json.dumps(msg)}


def setter(path: str, value: Any):
    def edit(payload: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = payload
        for p in parents:
            node = node[p]
        node[leaf] = value

    return edit


BAD = [
    ({"topic": ORDERS_TOPIC, "key": None, "value": "{not json"}, "not_json"),
    ({"topic": ORDERS_TOPIC, "key": None, "value": "[1, 2]"}, "not_an_envelope"),
    (
        {"topic": ORDERS_TOPIC, "key": None, "value": '{"id": 1, "customer_id": 42}'},
        "not_an_envelope",
    ),
    (corrupt("c", setter("after", "text")), "not_an_envelope"),
    (corrupt("c", setter("source.lsn", None)), "not_an_envelope:source.lsn"),
    (corrupt("c", setter("op", "t")), "unknown_op:t"),
    (corrupt("c", setter("after", None), schemas=False), "missing_after"),
    (corrupt("u", setter("before", None)), "missing_before"),
    # REPLICA IDENTITY DEFAULT: the before image of a delete holds only the primary key
    (
        corrupt(
            "d",
            setter(
                "before",
                {
                    "id": 1,
                    "customer_id": None,
                    "order_date": None,
                    "status": None,
                    "total_amount": None,
                },
            ),
        ),
        "missing_before",
    ),
    (corrupt("c", setter("after.customer_id", None)), "null_key_field:customer_id"),
    (corrupt("c", setter("after.order_date", None)), "null_key_field:order_date"),
    (corrupt("c", setter("after.total_amount", None)), "null_key_field:total_amount"),
    (corrupt("c", setter("after.order_date", "yesterday")), "bad_value:order_date"),
    (corrupt("c", setter("after.customer_id", 4.5)), "bad_value:customer_id"),
    (corrupt("c", setter("after.total_amount", "!!!=")), "bad_decimal:total_amount"),
    (corrupt("c", setter("after.total_amount", "AAAAAAAAAAAAAAAA")), "bad_decimal:total_amount"),
    (
        corrupt("c", setter("after.total_amount", "12.345"), schemas=False),
        "bad_decimal:total_amount",
    ),
    (corrupt("c", setter("after.total_amount", 1e12), schemas=False), "bad_decimal:total_amount"),
    (
        corrupt("u", setter("before.total_amount", "@@"), after=O1_NEG),
        "bad_decimal:before.total_amount",
    ),
    # Spark's base64 decoder alone would accept these (missing padding, a space, "NaN")
    (corrupt("c", setter("after.total_amount", "AJw")), "bad_decimal:total_amount"),
    (corrupt("c", setter("after.total_amount", "AJ w=")), "bad_decimal:total_amount"),
    (corrupt("c", setter("after.total_amount", "NaN")), "bad_decimal:total_amount"),
    ({"topic": ORDERS_TOPIC, "key": None, "value": '{"op": NaN}'}, "not_json"),
    ({"topic": ORDERS_TOPIC, "key": None, "value": "{'op': 'c'}"}, "not_json"),
    # timestamp_millis of this would fail the whole job with a long overflow
    (
        corrupt("c", setter("source.ts_ms", 9_223_372_036_854_775_807)),
        "not_an_envelope:source.ts_ms",
    ),
    (corrupt("c", setter("source.ts_ms", None)), "not_an_envelope:source.ts_ms"),
    (corrupt("c", setter("after.order_date", 10**19)), "bad_value:order_date"),
    (corrupt("c", setter("after.order_date", 253_402_300_800_000_000)), "bad_value:order_date"),
    (corrupt("c", setter("after.id", 2**63)), "bad_value:id"),
]


def test_every_bad_input_is_a_dead_letter_with_its_reason(spark: SparkSession) -> None:
    records = [rec for rec, _ in BAD]
    parsed = parse_order_events(raw_df(spark, records))
    assert parsed.events.count() == 0
    got = {r["raw"]: r["reason"] for r in parsed.dead_letters.collect()}
    assert [got.get(rec["value"]) for rec, _ in BAD] == [reason for _, reason in BAD]


def test_messages_of_another_or_no_table_are_dead_letters_once(spark: SparkSession) -> None:
    def message(table: str | None) -> str:
        msg = dj.change_envelope("c", after=O1, lsn=10, commit_ts=COMMIT, schemas=False)
        if table is None:
            del msg["source"]["table"]
        else:
            msg["source"]["table"] = table
        return json.dumps(msg)

    records: list[dict[str, Any]] = [
        {"topic": None, "key": "a", "value": message("customers")},
        {"topic": None, "key": "b", "value": message(None)},
        {"topic": "dbserver1.inventory.products", "key": "c", "value": message("orders")},
    ]
    orders, items = (
        parse_order_events(raw_df(spark, records)),
        parse_item_events(raw_df(spark, records)),
    )
    assert sorted((r["key"], r["reason"]) for r in orders.dead_letters.collect()) == [
        ("a", "unknown_table:customers"),
        ("b", "not_an_envelope:source.table"),
        ("c", "unknown_table:products"),
    ]
    assert orders.events.count() == items.events.count() == items.dead_letters.count() == 0


def test_event_time_guard(spark: SparkSession) -> None:
    """An order_date more than a day after its commit: the version exists but does not count
    (order_ts null, so no watermark sees it), and the message is a dead letter too."""
    typo = replace(O1, order_date=datetime(2099, 3, 1, 9, 0))
    ahead = replace(O1, id=2, order_date=COMMIT + timedelta(hours=23))  # a time zone: plausible
    fixed = replace(O1, order_date=datetime(2026, 3, 1, 10, 0))
    records = [
        dj.order_event("c", after=O1, lsn=1, commit_ts=COMMIT),
        dj.order_event("u", before=O1, after=typo, lsn=2, commit_ts=COMMIT),
        dj.order_event("u", before=typo, after=fixed, lsn=3, commit_ts=COMMIT),
        dj.order_event("c", after=ahead, lsn=4, commit_ts=COMMIT),
        dj.order_event("c", after=typo, lsn=5, commit_ts=COMMIT, schemas=False),
    ]
    parsed = parse_order_events(raw_df(spark, records))
    rows = {r["lsn"]: r for r in parsed.events.collect()}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert rows[2]["order_ts"] is None and rows[2]["before_order_ts"] == O1.order_date
    assert rows[3]["before_order_ts"] is None and rows[3]["order_ts"] == fixed.order_date
    assert rows[4]["order_ts"] == ahead.order_date
    assert rows[5]["order_ts"] is None
    letters = [(r["key"], r["reason"]) for r in parsed.dead_letters.collect()]
    assert [reason for _, reason in letters] == ["future_event_time:after.order_date"] * 2
    assert all('"id":1}' in key for key, _ in letters)  # the row's key, for the operator
    # the tolerance is configuration: with 12 hours, the 23-hours-ahead order is a typo too
    strict = parse_order_events(raw_df(spark, records), future_tolerance=timedelta(hours=12))
    assert strict.dead_letters.count() == 3
    with pytest.raises(ValueError, match="negative"):
        parse_order_events(raw_df(spark, records), future_tolerance=timedelta(hours=-1))


def test_bad_item_fields(spark: SparkSession) -> None:
    def item(edit) -> dict[str, Any]:
        msg = dj.change_envelope("c", after=I1, lsn=3, commit_ts=COMMIT)
        edit(msg["payload"])
        return {"topic": ITEMS_TOPIC, "key": None, "value": json.dumps(msg)}

    bad = [
        (item(setter("after.quantity", "two")), "bad_value:quantity"),
        (item(setter("after.product_id", None)), "null_key_field:product_id"),
        (item(setter("after.unit_price", "%%")), "bad_decimal:unit_price"),
    ]
    parsed = parse_item_events(raw_df(spark, [r for r, _ in bad]))
    got = {r["raw"]: r["reason"] for r in parsed.dead_letters.collect()}
    assert [got[r["value"]] for r, _ in bad] == [reason for _, reason in bad]
    assert parsed.events.count() == 0


def test_parsing_works_on_a_stream(spark: SparkSession, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    log = [
        dj.order_event("c", after=O1, lsn=1, commit_ts=COMMIT),
        {"topic": ORDERS_TOPIC, "key": None, "value": "nope"},
    ]
    (folder / "part-0.json").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    parsed = parse_order_events(spark.readStream.schema(RAW).json(str(folder)))
    seen: dict[str, list] = {"events": [], "dead": []}
    q1 = (
        parsed.events.writeStream.trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "c1"))
        .foreachBatch(lambda df, _: seen["events"].extend(df.collect()))
        .start()
    )
    q2 = (
        parsed.dead_letters.writeStream.trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "c2"))
        .foreachBatch(lambda df, _: seen["dead"].extend(df.collect()))
        .start()
    )
    q1.awaitTermination()
    q2.awaitTermination()
    assert [(r["order_id"], r["amount"]) for r in seen["events"]] == [(1, Decimal("1234.56"))]
    assert [(r["raw"], r["reason"]) for r in seen["dead"]] == [("nope", "not_json")]
