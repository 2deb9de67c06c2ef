"""The Feast repository on a real Redis: apply, push, online reads, training sets, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import redis

from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.stores import feast_store as fs

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def cf(cid: int, count: int, spend: str, last: datetime | None, at: datetime) -> CustomerFeatures:
    total = Decimal(spend)
    avg = (total / count).quantize(Decimal("0.01")) if count else None
    days = (at - last) // timedelta(days=1) if last else None
    return CustomerFeatures(cid, count, total, avg, last, days)


@pytest.fixture(scope="module")
def store(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One applied repository copy for the module (apply is slow: one per module)."""
    yield fs.prepare_repo(tmp_path_factory.mktemp("feast_repo"), redis_url)


@pytest.fixture()
def online(store: Any, redis_client: redis.Redis) -> Any:
    """The store on a flushed Redis (the online data is gone, the registry file is kept)."""
    return store


def test_committed_yaml_has_redis_online_and_file_offline_store() -> None:
    text = (fs.FEATURE_REPO / "feature_store.yaml").read_text()
    assert "type: redis" in text
    assert 'connection_string: "localhost:6379"' in text
    assert "type: file" in text
    assert fs.redis_connection_string("redis://127.0.0.1:6390/0") == "127.0.0.1:6390"
    assert fs.redis_connection_string("redis://h:1/3") == "h:1,db=3"


def test_apply_registers_views_with_lab_names_and_types(store: Any) -> None:
    views = {v.name: {f.name: str(f.dtype) for f in v.features} for v in store.list_feature_views()}
    assert views["customer_features"] == {
        "order_count_30d": "Int64",
        "total_spend_30d": "Decimal",
        "avg_order_value_30d": "Decimal",
        "last_order_ts": "UnixTimestamp",
        "last_order_ts_us": "Int64",
    }
    assert views["product_features"] == {
        "units_sold_7d": "Int64",
        "revenue_7d": "Decimal",
        "unique_customers_7d": "Int64",
    }
    odfv = {v.name: [f.name for f in v.features] for v in store.list_on_demand_feature_views()}
    assert odfv == {"customer_recency": ["days_since_last_order"]}
    assert {s.name for s in store.list_data_sources()} >= {
        "customer_features_push",
        "product_features_push",
    }


def test_push_then_online_read_round_trips_exact_values(online: Any) -> None:
    last = datetime(2026, 3, 9, 8, 30, 15, 123456, tzinfo=UTC)
    pushed = [cf(1, 2, "30.10", last, T0), cf(2, 0, "0.00", None, T0), cf(3, 3, "100.00", last, T0)]
    fs.push(online, fs.CUSTOMER_PUSH, fs.customer_push_frame(pushed, T0), offline=False)
    got = fs.online_customer_features(online, [1, 2, 3, 404], T0)
    assert got[1] == pushed[0]
    assert got[1].total_spend_30d == Decimal("30.10")
    assert got[1].avg_order_value_30d == Decimal("15.05")
    assert got[2] == pushed[1]
    assert got[3] == CustomerFeatures(3, 3, Decimal("100.00"), Decimal("33.33"), last, 1)
    assert got[404] is None  # unknown entity: nulls, not an error


def test_days_since_last_order_is_computed_at_request_time(online: Any) -> None:
    last = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    fs.push(
        online,
        fs.CUSTOMER_PUSH,
        fs.customer_push_frame([cf(7, 1, "5.00", last, T0)], T0),
        offline=False,
    )
    assert fs.online_customer_features(online, [7], T0)[7].days_since_last_order == 8
    later = T0 + timedelta(days=3, hours=11)  # 2026-03-13 23:00 = exactly 12 days
    assert fs.online_customer_features(online, [7], later)[7].days_since_last_order == 12
    assert (
        fs.online_customer_features(online, [7], later - timedelta(microseconds=1))[
            7
        ].days_since_last_order
        == 11
    )


def test_redis_store_skips_a_push_with_the_same_timestamp(online: Any) -> None:
    """The pitfall itself: re-pushing a corrected value with an unchanged event
    timestamp is silently dropped by Feast's Redis store; a newer timestamp is kept."""
    first = cf(9, 1, "10.00", T0, T0)
    fs.push(online, fs.CUSTOMER_PUSH, fs.customer_push_frame([first], T0), offline=False)
    corrected = cf(9, 1, "12.50", T0, T0)
    fs.push(online, fs.CUSTOMER_PUSH, fs.customer_push_frame([corrected], T0), offline=False)
    assert fs.online_customer_features(online, [9], T0)[9].total_spend_30d == Decimal("10.00")
    newer = T0 + timedelta(microseconds=1)
    fs.push(online, fs.CUSTOMER_PUSH, fs.customer_push_frame([corrected], newer), offline=False)
    assert fs.online_customer_features(online, [9], T0)[9].total_spend_30d == Decimal("12.50")
    older = cf(9, 5, "99.00", T0, T0)
    fs.push(
        online,
        fs.CUSTOMER_PUSH,
        fs.customer_push_frame([older], T0 - timedelta(days=1)),
        offline=False,
    )
    assert fs.online_customer_features(online, [9], T0)[9].order_count_30d == 1


def test_product_push_and_read(online: Any) -> None:
    pushed = [
        ProductFeatures(5, 7, Decimal("140.35"), 3),
        ProductFeatures(6, 0, Decimal("0.00"), 0),
    ]
    fs.push(online, fs.PRODUCT_PUSH, fs.product_push_frame(pushed, T0), offline=False)
    assert fs.online_product_features(online, [5, 6, 77]) == {5: pushed[0], 6: pushed[1], 77: None}


@pytest.mark.parametrize(
    "push_source,frame,column,view",
    [
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.drop(columns=["total_spend_30d"]),
            "total_spend_30d",
            "customer_features",
        ),
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.assign(order_count_30d=["three"]),
            "order_count_30d",
            "customer_features",
        ),
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.assign(last_order_ts=["yesterday"]),
            "last_order_ts",
            "customer_features",
        ),
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.assign(event_timestamp=[pd.NaT]),
            "event_timestamp",
            "customer_features",
        ),
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.assign(total_spend_30d=[12.5]),
            "total_spend_30d",
            "customer_features",
        ),
        (
            fs.CUSTOMER_PUSH,
            lambda f: f.rename(columns={"customer_id": "customer"}),
            "customer_id",
            "customer_features",
        ),
    ],
)
def test_bad_push_names_the_column_and_the_view(
    online: Any, push_source: str, frame: Any, column: str, view: str, redis_client: redis.Redis
) -> None:
    good = fs.customer_push_frame([cf(11, 1, "1.00", T0, T0)], T0)
    with pytest.raises(fs.FeastPushError) as err:
        fs.push(online, push_source, frame(good), offline=False)
    message = str(err.value)
    assert column in message and view in message
    assert redis_client.dbsize() == 0  # nothing written


def test_bad_product_push_names_the_column_and_the_view(online: Any) -> None:
    good = fs.product_push_frame([ProductFeatures(5, 1, Decimal("2.00"), 1)], T0)
    with pytest.raises(fs.FeastPushError, match=r"product_features.*units_sold_7d"):
        fs.push(online, fs.PRODUCT_PUSH, good.drop(columns=["units_sold_7d"]))
    with pytest.raises(fs.FeastPushError, match=r"product_features.*unique_customers_7d"):
        fs.push(online, fs.PRODUCT_PUSH, good.assign(unique_customers_7d=[1.5]))


@pytest.fixture(scope="module")
def history_store(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A separate repository copy with an empty offline store, for point-in-time tests."""
    return fs.prepare_repo(tmp_path_factory.mktemp("feast_pit"), redis_url)


def test_training_frame_is_point_in_time_correct(history_store: Any) -> None:
    day1 = T0
    day2 = T0 + timedelta(days=1)
    last1 = day1 - timedelta(hours=2)
    last2 = day2 - timedelta(hours=1)
    fs.push(
        history_store,
        fs.CUSTOMER_PUSH,
        fs.customer_push_frame(
            [cf(1, 1, "10.00", last1, day1), cf(2, 2, "8.00", last1, day1)], day1
        ),
    )
    fs.push(
        history_store,
        fs.CUSTOMER_PUSH,
        fs.customer_push_frame([cf(1, 2, "30.00", last2, day2)], day2),
    )
    entity = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3, 1],
            "event_timestamp": [
                day1 - timedelta(seconds=1),
                day1,
                day2 - timedelta(seconds=1),
                day2,
                day2,
                day2,
                day2 + timedelta(days=367),
            ],
            "label": [0, 1, 0, 1, 1, 0, 0],
        }
    )
    out = fs.training_frame(history_store, entity)
    assert len(out) == len(entity)  # no entity row is lost
    assert list(out["label"]) == list(entity["label"])
    counts = [None if pd.isna(v) else int(v) for v in out["order_count_30d"]]
    # before the first push: unknown; at each push: that push; never a later one;
    # 367 days after the last push: beyond the view's ttl (recency horizon + 1 day), unknown
    assert counts == [None, 1, 1, 2, 2, None, None]
    assert list(out["total_spend_30d"])[1:5] == ["10.00", "10.00", "30.00", "8.00"]
    days = [None if pd.isna(v) else int(v) for v in out["days_since_last_order"]]
    # computed at each row's own timestamp (1 day 2 h - 1 s after the last order at row 3)
    assert days == [None, 0, 1, 0, 1, None, None]
