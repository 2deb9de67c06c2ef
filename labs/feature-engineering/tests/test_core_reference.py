"""The batch reference parses raw Debezium messages on its own and skips what the stream
dead-letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cdc_features.core import debezium_json as dj
from cdc_features.core import reference, spec
from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.core.reference import (
    Rejected,
    parse_change,
    reference_customer_features,
    reference_product_features,
)

D = datetime(2026, 5, 1, 9, 0)
T = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)
ORDER = dj.OrderRow(1, 7, D, "pending", Decimal("-12.34"))


@pytest.mark.parametrize("schemas", [True, False])
@pytest.mark.parametrize("mode", ["precise", "string", "double"])
def test_parse_change_decodes_every_format(schemas: bool, mode: str) -> None:
    rec = dj.order_event("c", after=ORDER, lsn=5, commit_ts=D, schemas=schemas, decimal_mode=mode)
    change = parse_change(rec)
    assert (change.table, change.row_id, change.lsn, change.op) == ("orders", 1, 5, "c")
    assert change.commit == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert change.before is None and not change.future_after
    assert change.after == {
        "id": 1,
        "customer_id": 7,
        "order_date": datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        "status": "pending",
        "total_amount": Decimal("-12.34"),
    }


def test_schema_scale_wins_over_the_default() -> None:
    msg = dj.change_envelope("c", after=ORDER, lsn=5, commit_ts=D)
    for block in msg["schema"]["fields"][:2]:
        for f in block["fields"]:
            if f["field"] == "total_amount":
                f["parameters"]["scale"] = "1"
    msg["payload"]["after"]["total_amount"] = "ew=="  # 123 -> 12.3 at scale 1
    rec = {"topic": "dbserver1.inventory.orders", "value": json.dumps(msg)}
    after = parse_change(rec).after
    assert after is not None and after["total_amount"] == Decimal("12.30")
    payload_only = {"topic": rec["topic"], "value": json.dumps(msg["payload"])}
    after = parse_change(payload_only).after
    assert after is not None and after["total_amount"] == Decimal("1.23")
    with pytest.raises(Rejected, match=r"^bad_decimal:total_amount$"):  # 0.123: not DECIMAL(10,2)
        parse_change(payload_only, default_scale=3)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        ("nope", "not_json"),
        ('{"op": NaN}', "not_json"),
        ("[]", "not_an_envelope"),
        ('{"id": 1}', "not_an_envelope"),
        ('{"op": "c", "after": "x"}', "not_an_envelope"),
        ('{"op": "t", "source": {"lsn": 1, "ts_ms": 1}}', "unknown_op:t"),
        ('{"op": "c", "source": {"ts_ms": 1}}', "not_an_envelope:source.lsn"),
        ('{"op": "c", "source": {"lsn": 1, "ts_ms": 9e99}}', "not_an_envelope:source.ts_ms"),
        ('{"op": "c", "source": {"lsn": 1, "ts_ms": 1}}', "missing_after"),
    ],
)
def test_rejects_what_the_stream_dead_letters(value: str | None, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_change({"topic": "dbserver1.inventory.orders", "value": value})
    assert caught.value.reason == reason


def test_routing_without_a_topic_uses_source_table() -> None:
    value = '{"op": "c", "source": {"lsn": 1, "ts_ms": 1, "table": "customers"}}'
    with pytest.raises(Rejected, match=r"^unknown_table:customers$"):
        parse_change({"topic": None, "value": value})
    with pytest.raises(Rejected, match=r"^not_an_envelope:source\.table$"):
        parse_change({"topic": None, "value": '{"op": "c", "source": {"lsn": 1}}'})


def test_a_future_order_date_is_a_version_that_does_not_count() -> None:
    typo = dj.OrderRow(1, 7, datetime(2099, 5, 1, 9, 0), "pending", Decimal("20.00"))
    log = [
        dj.order_event("c", after=ORDER, lsn=5, commit_ts=D),
        dj.order_event("u", before=ORDER, after=typo, lsn=9, commit_ts=D),  # committed today
    ]
    change = parse_change(log[1])
    assert change.future_after and not change.future_before
    assert reference.future_event_time(change)
    # the typo is the newest version: the order stops counting until it is corrected
    assert reference_customer_features(log, T)[7] == CustomerFeatures(
        7, 0, Decimal("0.00"), None, None, None
    )
    fixed = dj.OrderRow(1, 7, datetime(2026, 5, 1, 9, 0), "pending", Decimal("20.00"))
    log.append(dj.order_event("u", before=typo, after=fixed, lsn=12, commit_ts=D))
    assert parse_change(log[2]).future_before
    assert reference_customer_features(log, T)[7].total_spend_30d == Decimal("20.00")
    # a day ahead is a time zone or a clock, not a typo: it counts
    ahead = dj.OrderRow(2, 8, D + timedelta(days=1), "pending", Decimal("1.00"))
    assert not parse_change(dj.order_event("c", after=ahead, lsn=13, commit_ts=D)).future_after


def test_features_by_definition() -> None:
    later = dj.OrderRow(1, 7, D, "pending", Decimal("20.00"))
    other = dj.OrderRow(2, 7, datetime(2026, 4, 1, 23, 59), "pending", Decimal("5.00"))
    log = [
        dj.order_event("c", after=ORDER, lsn=5, commit_ts=D),
        dj.order_event("u", before=ORDER, after=later, lsn=9, commit_ts=D),
        dj.order_event("c", after=ORDER, lsn=5, commit_ts=D),  # re-delivered, older LSN
        dj.order_event("c", after=other, lsn=11, commit_ts=D),  # 2026-04-01: day(T) - 30
        dj.item_event("c", after=dj.OrderItemRow(3, 1, 4, 3, Decimal("0.35")), lsn=12, commit_ts=D),
        dj.item_event("c", after=dj.OrderItemRow(4, 2, 4, 1, Decimal("9.99")), lsn=13, commit_ts=D),
    ]
    assert reference_customer_features(log, T) == {
        7: CustomerFeatures(
            7,
            1,
            Decimal("20.00"),
            Decimal("20.00"),
            datetime(2026, 5, 1, 9, tzinfo=UTC),
            0,
        )
    }
    assert reference_product_features(log, T) == {4: ProductFeatures(4, 3, Decimal("1.05"), 1)}
    at_april_30 = datetime(2026, 4, 30, tzinfo=UTC)  # window 04-01 .. 04-30
    assert reference_customer_features(log, at_april_30)[7].order_count_30d == 1
    assert reference_customer_features(log, at_april_30)[7].days_since_last_order == 28


def test_the_reference_windows_agree_with_the_feature_spec() -> None:
    # The reference writes its windows out (it is the independent oracle); they must be the
    # spec's, or the stream and the reference would compare different features.
    assert reference.CUSTOMER_DAYS == spec.CUSTOMER.window_days == 30
    assert reference.PRODUCT_DAYS == spec.PRODUCT.window_days == 7
    assert reference.RECENCY_DAYS == spec.RECENCY_HORIZON_DAYS == spec.CUSTOMER.lookback_days
    assert reference.FUTURE_TOLERANCE == spec.FUTURE_TOLERANCE
