"""The message builders produce what the Debezium PostgreSQL connector writes."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal

import pytest

from cdc_features.core import debezium_json as dj


@pytest.mark.parametrize(
    ("amount", "encoded"),
    [
        (Decimal("1.56"), "AJw="),  # 156 = 0x009C: the sign byte is needed
        (Decimal("1.00"), "ZA=="),  # 100 = 0x64: minimal, like BigInteger.toByteArray
        (Decimal("-1.00"), "nA=="),  # -100 = 0x9C
        (Decimal("0.00"), "AA=="),
        (Decimal("-1.28"), "gA=="),  # -128 = 0x80
        (Decimal("1.28"), "AIA="),  # 128 = 0x0080
        (Decimal("99999999.99"), "AlQL4/8="),
    ],
)
def test_precise_decimal_is_minimal_twos_complement(amount: Decimal, encoded: str) -> None:
    assert dj.encode_precise_decimal(amount) == encoded
    raw = base64.b64decode(encoded)
    assert Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-2) == amount


def test_precise_decimal_rejects_extra_digits() -> None:
    with pytest.raises(ValueError, match="fractional digits"):
        dj.encode_precise_decimal(Decimal("1.005"))


def test_micro_timestamp_is_utc_micros() -> None:
    assert dj.micro_timestamp(datetime(2026, 1, 2, 3, 4, 5, 6)) == 1_767_323_045_000_006


def test_schema_envelope_for_orders() -> None:
    order = dj.OrderRow(7, 42, datetime(2026, 1, 2, 12, 0), "pending", Decimal("19.99"))
    rec = dj.order_event("c", after=order, lsn=33_000_123, commit_ts=datetime(2026, 1, 2, 12, 0, 1))
    assert rec["topic"] == "dbserver1.inventory.orders"
    assert dj.record_key(rec) == {
        "schema": {
            "type": "struct",
            "fields": [{"type": "int32", "optional": False, "field": "id"}],
            "optional": False,
            "name": "dbserver1.inventory.orders.Key",
        },
        "payload": {"id": 7},
    }
    msg = dj.record_value(rec)
    assert msg["schema"]["name"] == "dbserver1.inventory.orders.Envelope"
    after_fields = {f["field"]: f for f in msg["schema"]["fields"][1]["fields"]}
    assert after_fields["order_date"]["name"] == "io.debezium.time.MicroTimestamp"
    assert after_fields["total_amount"]["parameters"] == {
        "scale": "2",
        "connect.decimal.precision": "10",
    }
    assert after_fields["status"]["default"] == "pending"
    payload = msg["payload"]
    assert payload["before"] is None
    assert payload["after"] == {
        "id": 7,
        "customer_id": 42,
        "order_date": 1_767_355_200_000_000,
        "status": "pending",
        "total_amount": "B88=",
    }
    assert payload["op"] == "c"
    src = payload["source"]
    assert (
        src["lsn"],
        src["ts_ms"],
        src["snapshot"],
        src["db"],
        src["schema"],
        src["table"],
        src["connector"],
    ) == (33_000_123, 1_767_355_201_000, "false", "inventory", "inventory", "orders", "postgresql")
    assert payload["ts_ms"] == 1_767_355_201_003


@pytest.mark.parametrize(("mode", "expected"), [("string", "19.90"), ("double", 19.9)])
def test_payload_only_and_other_decimal_modes(mode: str, expected: object) -> None:
    item = dj.OrderItemRow(3, 7, 11, 2, Decimal("19.9"))
    rec = dj.item_event("r", after=item, lsn=5, commit_ts=0, schemas=False, decimal_mode=mode)
    msg = dj.record_value(rec)
    assert "schema" not in msg
    assert msg["after"]["unit_price"] == expected
    assert msg["source"]["snapshot"] == "true"
    assert rec["topic"] == "dbserver1.inventory.order_items"
    assert dj.record_key(rec) == {"id": 3}


def test_delete_and_tombstone() -> None:
    order = dj.OrderRow(7, 42, datetime(2026, 1, 2), "pending", Decimal("5.00"))
    rec = dj.order_event("d", before=order, lsn=9, commit_ts=0)
    payload = dj.record_value(rec)["payload"]
    assert payload["after"] is None and payload["before"]["total_amount"] == "AfQ="
    tomb = dj.tombstone_record(dj.ORDERS, 7)
    assert tomb["value"] is None and dj.record_key(tomb)["payload"] == {"id": 7}
