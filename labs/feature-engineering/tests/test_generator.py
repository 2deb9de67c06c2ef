"""The synthetic log looks like a Debezium capture and contains every case the features handle."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cdc_features.core import debezium_json as dj
from cdc_features.lab.generator import (
    MALFORMED_ID_BASE,
    LogOptions,
    _Encoder,
    generate_log,
    iter_log,
)
from cdc_features.testing import read_log, write_log


def payload_of(record: dict[str, Any]) -> dict[str, Any] | None:
    if record["value"] is None:
        return None
    try:
        message = dj.record_value(record)
    except json.JSONDecodeError:
        return None
    return message.get("payload", message) if "op" not in message else message


def valid(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for record in records:
        payload = payload_of(record)
        if payload is None or "source" not in payload:
            continue
        row = payload["after"] or payload["before"]
        if row is None or row["id"] >= MALFORMED_ID_BASE or payload["op"] not in "cudr":
            continue
        out.append((record, payload))
    return out


@pytest.fixture(scope="module")
def log() -> list[dict[str, Any]]:
    return generate_log(11, 12_000)


def test_same_seed_same_log_and_exact_length() -> None:
    assert generate_log(5, 777) == generate_log(5, 777)
    assert len(generate_log(5, 777)) == 777
    assert generate_log(5, 777) != generate_log(6, 777)


def test_records_equal_the_message_builders() -> None:
    enc = _Encoder(LogOptions())
    order = dj.OrderRow(3, 9, datetime(2026, 3, 1, 10, 0), "pending", Decimal("12.30"))
    assert enc.record("c", None, order, 123, 1_772_359_200_000) == dj.order_event(
        "c", after=order, lsn=123, commit_ts=1_772_359_200_000
    )
    item = dj.OrderItemRow(4, 3, 8, 2, Decimal("6.15"))
    new = dj.OrderItemRow(4, 3, 8, 5, Decimal("6.15"))
    assert enc.record("u", item, new, 124, 1_772_359_200_001) == dj.item_event(
        "u", before=item, after=new, lsn=124, commit_ts=1_772_359_200_001
    )
    enc = _Encoder(LogOptions(schemas=False, decimal_mode="string", prefix="shop"))
    assert enc.record("d", order, None, 125, 5) == dj.order_event(
        "d", before=order, lsn=125, commit_ts=5, schemas=False, decimal_mode="string", prefix="shop"
    )
    assert enc.tombstone(dj.ORDERS, 3) == dj.tombstone_record(
        dj.ORDERS, 3, schemas=False, prefix="shop"
    )


def test_streamed_lsns_increase_and_snapshot_overlaps(log: list[dict[str, Any]]) -> None:
    events = valid(log)
    snapshot = [(i, p) for i, (_, p) in enumerate(events) if p["op"] == "r"]
    snapshot_lsns = {p["source"]["lsn"] for _, p in snapshot}
    assert len(snapshot_lsns) == 1, "all snapshot reads carry the snapshot LSN"
    (snapshot_lsn,) = snapshot_lsns
    assert snapshot[0][1]["source"]["snapshot"] == "first"
    assert snapshot[-1][1]["source"]["snapshot"] == "last"
    assert all(
        p["source"]["ts_ms"] == dj.epoch_millis(datetime(2026, 3, 2, 8, 0)) for _, p in snapshot
    )
    # Some orders were streamed as creates just before the snapshot read them again.
    snap_order_ids = {p["after"]["id"] for _, p in snapshot if p["source"]["table"] == "orders"}
    early_creates = [p for _, p in events[: snapshot[0][0]] if p["op"] == "c"]
    assert early_creates and all(p["source"]["lsn"] < snapshot_lsn for p in early_creates)
    assert {
        p["after"]["id"] for p in early_creates if p["source"]["table"] == "orders"
    } <= snap_order_ids
    # Streamed changes (LSN above the snapshot's) arrive before the snapshot is finished.
    first_streamed = next(i for i, (_, p) in enumerate(events) if p["source"]["lsn"] > snapshot_lsn)
    assert first_streamed < snapshot[-1][0]
    streamed = [p["source"]["lsn"] for _, p in events if p["source"]["lsn"] > snapshot_lsn]
    seen: set[int] = set()
    last = 0
    for lsn in streamed:
        if lsn in seen:  # a duplicate delivery
            continue
        assert lsn > last
        seen.add(lsn)
        last = lsn


def test_every_kind_of_change_is_present(log: list[dict[str, Any]]) -> None:
    events = valid(log)
    kinds = {(p["source"]["table"], p["op"]) for _, p in events}
    assert kinds == {(t, op) for t in ("orders", "order_items") for op in "cudr"}
    updates = [p for _, p in events if p["op"] == "u" and p["source"]["table"] == "orders"]
    changed = {k for p in updates for k in p["after"] if p["after"][k] != p["before"][k]}
    assert changed == {"total_amount", "status", "order_date", "customer_id"}
    assert any(p["after"]["status"] == "cancelled" for p in updates)
    # Every delete is followed by its tombstone.
    for i, record in enumerate(log):
        payload = payload_of(record)
        if payload is not None and payload.get("op") == "d" and i + 1 < len(log):
            follower = log[i + 1]
            if follower["value"] is None:
                assert follower["key"] == record["key"]
    assert sum(1 for r in log if r["value"] is None) > 50


def test_duplicates_back_dated_and_too_late(log: list[dict[str, Any]]) -> None:
    events = valid(log)
    by_lsn: dict[tuple[str, int], str] = {}
    duplicates = 0
    for record, payload in events:
        key = (payload["source"]["table"], payload["source"]["lsn"])
        row = payload["after"] or payload["before"]
        if payload["op"] != "r" and key in by_lsn:
            assert by_lsn[key] == record["value"], "a redelivery is byte-identical"
            duplicates += 1
        by_lsn[
            (payload["source"]["table"], payload["source"]["lsn"])
            if payload["op"] != "r"
            else ("r", row["id"])
        ] = record["value"]
    assert duplicates > 20
    newest = 0
    too_late = back_dated = 0
    for _, payload in events:
        if payload["op"] != "c" or payload["source"]["table"] != "orders":
            continue
        order_us = payload["after"]["order_date"]
        commit_us = payload["source"]["ts_ms"] * 1000
        if order_us < newest - 365 * 86_400_000_000:  # behind the recency horizon
            too_late += 1
        elif commit_us - order_us > 3600 * 1_000_000:
            back_dated += 1
            assert commit_us - order_us <= 6 * 86_400_000_000
        newest = max(newest, order_us)
    assert too_late >= 5
    assert back_dated >= 50


def test_no_malformed_by_default_and_all_kinds_on_request(log: list[dict[str, Any]]) -> None:
    assert all(r["value"] is None or payload_of(r) is not None for r in log)
    assert len(valid(log)) == sum(1 for r in log if r["value"] is not None)
    bad = generate_log(3, 4_000, malformed_rate=0.05)
    values = [r["value"] for r in bad if r["value"] is not None]
    not_json = [v for v in values if v.startswith('{"payload": {"op"')]
    assert not_json
    payloads = [payload_of(r) for r in bad if r["value"] is not None]
    odd = [
        p
        for r in bad
        if r["value"] is not None and dj.record_key(r)["payload"]["id"] >= MALFORMED_ID_BASE
        for p in [payload_of(r)]
        if p is not None and "source" in p
    ]
    ops = {p["op"] for p in odd}
    assert {"x", "c", "u"} <= ops
    assert any(p["op"] == "c" and p["after"] is None for p in odd)
    assert any(p["op"] == "u" and p["before"] is None for p in odd)
    assert any(p["after"] and p["after"].get("customer_id", 1) is None for p in odd)
    assert any(p["after"] and p["after"].get("product_id", 1) is None for p in odd)
    assert any(p["after"] and p["after"].get("total_amount") == "%%not-base64%%" for p in odd)
    assert any(p is not None and "source" not in p for p in payloads)  # not an envelope


def test_decimal_modes_and_payload_only() -> None:
    checks: tuple[tuple[dj.DecimalMode, Callable[[Any], object]], ...] = (
        ("precise", lambda v: isinstance(v, str) and base64.b64decode(v)),
        (
            "string",
            lambda v: isinstance(v, str) and Decimal(v) == Decimal(v).quantize(Decimal("0.01")),
        ),
        ("double", lambda v: isinstance(v, float)),
    )
    for mode, check in checks:
        records = generate_log(2, 300, schemas=False, decimal_mode=mode)
        payloads = [dj.record_value(r) for r in records if r["value"] is not None]
        assert all("schema" not in p and "op" in p for p in payloads)
        amounts = [
            p["after"]["total_amount"]
            for p in payloads
            if p["after"] and "total_amount" in p["after"]
        ]
        assert amounts and all(check(a) for a in amounts)


def test_write_and_read_json_lines(tmp_path: Path) -> None:
    records = generate_log(4, 250)
    paths = write_log(records, tmp_path / "in", events_per_file=100)
    assert [p.name for p in paths] == [
        "events-00000.jsonl",
        "events-00001.jsonl",
        "events-00002.jsonl",
    ]
    assert not list((tmp_path / "in").glob(".*.tmp"))
    assert read_log(tmp_path / "in") == records
    first = paths[0].read_text().splitlines()[0]
    assert json.loads(first) == records[0]


def test_window_span_follows_days_option() -> None:
    records = list(iter_log(9, 3_000, LogOptions(days=10, schemas=False)))
    commits = [
        dj.record_value(r)["source"]["ts_ms"]
        for r in records
        if r["value"] is not None and dj.record_value(r)["op"] != "r"
    ]
    commits = [c for c in commits if c >= dj.epoch_millis(datetime(2026, 3, 2, 8, 0))]
    span = timedelta(milliseconds=max(commits) - min(commits))
    assert timedelta(days=7) < span < timedelta(days=13)
    assert datetime.fromtimestamp(max(commits) / 1000, UTC) > datetime(2026, 3, 9, tzinfo=UTC)


def test_the_bundled_log_is_what_the_generator_writes() -> None:
    # README: python -m cdc_features.lab.generator fixtures/lab_log.jsonl.gz 2000 --seed 2026
    #         --malformed-rate 0.01 --days 30 (options added later leave it unchanged)
    from cdc_features.lab.replay import DEFAULT_LOG

    regenerated = list(iter_log(2026, 2000, LogOptions(malformed_rate=0.01, days=30)))
    assert regenerated == read_log(DEFAULT_LOG)


def test_customer_lifecycles_make_customers_come_and_go() -> None:
    def ordering(lifetime: float | None) -> tuple[int, int, int]:
        """(customers ordering in the first 20 days, in the last 20 days, in both)."""
        records = generate_log(3, 6_000, days=90, schemas=False, customer_lifetime_days=lifetime)
        first: dict[int, datetime] = {}
        last: dict[int, datetime] = {}
        for record, payload in valid(records):
            if payload["op"] == "c" and record["topic"].endswith(".orders"):
                cid = payload["after"]["customer_id"]
                commit = datetime.fromtimestamp(payload["source"]["ts_ms"] / 1000, UTC)
                first.setdefault(cid, commit)
                last[cid] = commit
        start, end = min(first.values()), max(last.values())
        early = {c for c, t in first.items() if t < start + timedelta(days=20)}
        late = {c for c, t in last.items() if t > end - timedelta(days=20)}
        return len(early), len(late), len(early & late)

    early, late, both = ordering(None)
    assert both > min(early, late) / 2  # without lifecycles most customers keep ordering
    early, late, both = ordering(40.0)
    assert early > 30 and late > 30
    assert both < min(early, late) / 4  # with them, few of the early customers are still there
