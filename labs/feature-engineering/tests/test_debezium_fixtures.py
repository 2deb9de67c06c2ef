"""The captured Debezium fixtures hold what fixtures/debezium/README.md says they hold.

Decoded here with plain json/base64 (independent of the lab's parser), so a re-capture
that changes the scenario or the connector's encoding fails loudly.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "debezium"
VARIANTS = [
    "schemas-precise",
    "schemas-string",
    "noschemas-precise",
    "noschemas-string",
    "noschemas-double",
]
ORDERS = "dbserver1.inventory.orders"
ITEMS = "dbserver1.inventory.order_items"

# (topic, op, id) in commit order; op None = tombstone
EXPECTED_SEQUENCE = [
    (ORDERS, "r", 1),
    (ORDERS, "r", 2),
    (ITEMS, "r", 1),
    (ITEMS, "r", 2),
    (ITEMS, "r", 3),
    (ORDERS, "c", 3),
    (ITEMS, "c", 4),
    (ORDERS, "c", 4),
    (ITEMS, "c", 5),
    (ITEMS, "c", 6),
    (ORDERS, "u", 2),
    (ORDERS, "u", 3),
    (ORDERS, "d", 4),
    (ORDERS, None, 4),
    (ITEMS, "d", 5),
    (ITEMS, None, 5),
    (ITEMS, "d", 6),
    (ITEMS, None, 6),
    (ORDERS, "u", 1),
    (ITEMS, "u", 1),
]


def _load(variant: str) -> list[dict[str, Any]]:
    path = FIXTURES / f"{variant}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _unwrap(text: str, schemas: bool) -> dict[str, Any]:
    doc = json.loads(text)
    if schemas:
        assert set(doc) == {"schema", "payload"}
        return doc["payload"]
    assert "schema" not in doc
    return doc


def _decimal(raw: Any, mode: str, scale: int = 2) -> Decimal:
    if mode == "precise":
        unscaled = int.from_bytes(base64.b64decode(raw), "big", signed=True)
        return Decimal(unscaled).scaleb(-scale)
    if mode == "string":
        return Decimal(raw)
    return Decimal(str(raw)).quantize(Decimal("0.01"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_sequence_of_operations(variant: str) -> None:
    schemas = variant.startswith("schemas-")
    seen = []
    for record in _load(variant):
        assert set(record) == {"topic", "key", "value"}
        key = _unwrap(record["key"], schemas)
        if record["value"] is None:
            seen.append((record["topic"], None, key["id"]))
            continue
        payload = _unwrap(record["value"], schemas)
        row = payload["after"] or payload["before"]
        assert key == {"id": row["id"]}
        seen.append((record["topic"], payload["op"], row["id"]))
    assert seen == EXPECTED_SEQUENCE


@pytest.mark.parametrize("variant", VARIANTS)
def test_envelope_fields(variant: str) -> None:
    schemas = variant.startswith("schemas-")
    payloads = [_unwrap(r["value"], schemas) for r in _load(variant) if r["value"] is not None]
    lsns = [p["source"]["lsn"] for p in payloads]
    snapshot = [p for p in payloads if p["op"] == "r"]
    assert len({p["source"]["lsn"] for p in snapshot}) == 1
    assert [p["source"]["snapshot"] for p in snapshot] == [
        "first",
        "last_in_data_collection",
        "first_in_data_collection",
        "true",
        "last",
    ]
    streamed = [p for p in payloads if p["op"] != "r"]
    assert all(p["source"]["snapshot"] == "false" for p in streamed)
    assert lsns[5:] == sorted(lsns[5:]) and len(set(lsns[5:])) == len(lsns[5:])
    assert min(lsns[5:]) > lsns[0]
    for p in payloads:
        assert p["source"]["connector"] == "postgresql" and p["source"]["db"] == "inventory"
        assert p["source"]["ts_ms"] <= p["ts_ms"]
        if p["op"] in ("u", "d"):  # REPLICA IDENTITY FULL: the whole old row
            assert set(p["before"]) == set(p["after"] or p["before"])
            assert all(v is not None for v in p["before"].values())
        if p["op"] == "d":
            assert p["after"] is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_values_decode_to_the_scenario(variant: str) -> None:
    schemas = variant.startswith("schemas-")
    mode = variant.split("-", 1)[1]
    orders: dict[int, dict[str, Any]] = {}
    items: dict[int, dict[str, Any]] = {}
    for record in _load(variant):
        if record["value"] is None:
            continue
        p = _unwrap(record["value"], schemas)
        target = orders if record["topic"] == ORDERS else items
        if p["op"] == "d":
            target.pop(p["before"]["id"])
        else:
            target[p["after"]["id"]] = p["after"]
    assert sorted(orders) == [1, 2, 3] and sorted(items) == [1, 2, 3, 4]
    assert {i: _decimal(o["total_amount"], mode) for i, o in orders.items()} == {
        1: Decimal("120.50"),
        2: Decimal("99.90"),
        3: Decimal("310.99"),
    }
    assert {i: o["status"] for i, o in orders.items()} == {
        1: "pending",
        2: "shipped",
        3: "cancelled",
    }
    # MicroTimestamp: microseconds since the epoch, wall-clock time taken as UTC
    assert orders[1]["order_date"] == 1795075200000000  # 2026-11-19 08:00:00
    assert orders[2]["order_date"] == 1795269600123456  # 2026-11-21 14:00:00.123456
    assert {
        i: (it["order_id"], it["product_id"], it["quantity"], _decimal(it["unit_price"], mode))
        for i, it in items.items()
    } == {
        1: (1, 1, 3, Decimal("40.25")),
        2: (1, 2, 1, Decimal("40.00")),
        3: (2, 3, 3, Decimal("25.00")),
        4: (3, 1, 1, Decimal("310.99")),
    }


@pytest.mark.parametrize("variant", ["schemas-precise", "noschemas-precise"])
def test_precise_decimals_are_twos_complement_base64(variant: str) -> None:
    schemas = variant.startswith("schemas-")
    records = _load(variant)
    deleted = [
        _unwrap(r["value"], schemas)
        for r in records
        if r["value"] is not None and _unwrap(r["value"], schemas)["op"] == "d"
    ]
    order_4 = next(p["before"] for p in deleted if "total_amount" in p["before"])
    assert order_4["total_amount"] == "AlQL4/8="  # 9999999999 → 99999999.99
    assert _decimal(order_4["total_amount"], "precise") == Decimal("99999999.99")
    discount = next(p["before"] for p in deleted if p["before"].get("id") == 6)
    assert discount["unit_price"] == "/Bg="  # -1000 → -10.00
    if schemas:
        schema = json.loads(records[0]["value"])["schema"]
        after = next(f for f in schema["fields"] if f["field"] == "after")
        amount = next(f for f in after["fields"] if f["field"] == "total_amount")
        assert amount["name"] == "org.apache.kafka.connect.data.Decimal"
        assert amount["parameters"]["scale"] == "2"
