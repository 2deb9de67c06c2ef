"""Read-time feature math: windows are UTC calendar days ending with T's day; recency looks
back 365 of them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from cdc_features.core.definitions import (
    CustomerFeatures,
    Line,
    ProductFeatures,
    Recency,
    Tile,
    last_order_in_horizon,
    product_features_from_lines,
    recency_of_tiles,
)
from cdc_features.core.definitions import customer_features_from_tiles as from_tiles


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def customer_features_from_tiles(customer_id: int, tiles: list, at: datetime) -> CustomerFeatures:
    """A store that holds every tile: the recency facts are those of the tiles."""
    return from_tiles(customer_id, tiles, recency_of_tiles(tiles), at)


TILES = [
    Tile(date(2026, 3, 1), 2, Decimal("30.00"), utc(2026, 3, 1, 18, 0)),
    Tile(date(2026, 3, 20), 1, Decimal("10.01"), utc(2026, 3, 20, 9, 30)),
    Tile(date(2026, 2, 28), 5, Decimal("500.00"), utc(2026, 2, 28, 23, 59)),  # outside at 03-30
    Tile(date(2026, 3, 25), 0, Decimal("0.00"), None),  # emptied tile
]


def test_customer_window_is_30_utc_days_ending_with_t_day() -> None:
    f = customer_features_from_tiles(42, TILES, utc(2026, 3, 30, 12, 0))
    assert f == CustomerFeatures(
        42, 3, Decimal("40.01"), Decimal("13.34"), utc(2026, 3, 20, 9, 30), 10
    )


def test_first_day_of_window_is_included_and_the_day_before_is_not() -> None:
    # day(T) - 29 = 2026-02-28 at T = 2026-03-29: the 500.00 tile is in.
    f = customer_features_from_tiles(42, TILES, utc(2026, 3, 29, 0, 0))
    assert (f.order_count_30d, f.total_spend_30d) == (8, Decimal("540.01"))
    f = customer_features_from_tiles(42, TILES, utc(2026, 3, 30, 0, 0))
    assert (f.order_count_30d, f.total_spend_30d) == (3, Decimal("40.01"))


def test_future_tiles_are_outside_the_window() -> None:
    f = customer_features_from_tiles(42, TILES, utc(2026, 3, 10))
    assert (f.order_count_30d, f.total_spend_30d, f.last_order_ts) == (
        7,
        Decimal("530.00"),
        utc(2026, 3, 1, 18, 0),
    )
    assert f.days_since_last_order == 8


def test_no_orders_in_the_window_reads_zero_sums_and_keeps_recency() -> None:
    f = customer_features_from_tiles(42, TILES, utc(2026, 5, 1))
    assert f == CustomerFeatures(42, 0, Decimal("0.00"), None, utc(2026, 3, 20, 9, 30), 41)
    assert str(f.total_spend_30d) == "0.00"


def test_recency_horizon_is_365_utc_days_ending_with_t_day() -> None:
    last = utc(2026, 3, 20, 9, 30)
    # day(T) - 364 = 2026-03-20 at T = 2027-03-19: still in; a day later it is not.
    f = customer_features_from_tiles(42, TILES, utc(2027, 3, 19, 23, 59))
    assert (f.order_count_30d, f.last_order_ts, f.days_since_last_order) == (0, last, 364)
    f = customer_features_from_tiles(42, TILES, utc(2027, 3, 20, 0, 0))
    assert f == CustomerFeatures(42, 0, Decimal("0.00"), None, None, None)


def test_recency_is_the_newest_fact_in_the_horizon() -> None:
    facts = [
        Recency(date(2026, 3, 1), utc(2026, 3, 1, 18)),
        Recency(date(2026, 3, 20), utc(2026, 3, 20, 9, 30)),
        Recency(date(2026, 4, 2), utc(2026, 4, 2, 7)),  # after T's day: not yet
    ]
    assert last_order_in_horizon(facts, utc(2026, 3, 31)) == utc(2026, 3, 20, 9, 30)
    assert last_order_in_horizon(facts, utc(2026, 4, 2)) == utc(2026, 4, 2, 7)
    assert last_order_in_horizon(facts, utc(2026, 2, 28)) is None
    # the newest fact removed (its day emptied: the newest order was cancelled) -> the previous
    assert last_order_in_horizon(facts[:1], utc(2026, 3, 31)) == utc(2026, 3, 1, 18)
    # the stores pass only the facts they read; the tiles' facts skip an emptied day
    assert recency_of_tiles(TILES) == [
        Recency(date(2026, 3, 1), utc(2026, 3, 1, 18)),
        Recency(date(2026, 3, 20), utc(2026, 3, 20, 9, 30)),
        Recency(date(2026, 2, 28), utc(2026, 2, 28, 23, 59)),
    ]
    f = from_tiles(42, [], facts, utc(2026, 3, 31) + timedelta(hours=12))
    assert (f.order_count_30d, f.last_order_ts, f.days_since_last_order) == (
        0,
        utc(2026, 3, 20, 9, 30),
        11,
    )


def test_average_rounds_half_even() -> None:
    tiles = [Tile(date(2026, 1, 1), 8, Decimal("0.20"), utc(2026, 1, 1, 1))]  # 0.025 -> 0.02
    assert customer_features_from_tiles(
        1, tiles, utc(2026, 1, 1, 2)
    ).avg_order_value_30d == Decimal("0.02")
    tiles = [Tile(date(2026, 1, 1), 8, Decimal("0.28"), utc(2026, 1, 1, 1))]  # 0.035 -> 0.04
    assert customer_features_from_tiles(
        1, tiles, utc(2026, 1, 1, 2)
    ).avg_order_value_30d == Decimal("0.04")


def test_days_since_last_order_floors_at_read_time() -> None:
    tiles = [Tile(date(2026, 1, 1), 1, Decimal("1.00"), utc(2026, 1, 1, 12))]
    assert (
        customer_features_from_tiles(1, tiles, utc(2026, 1, 2, 11, 59)).days_since_last_order == 0
    )
    assert customer_features_from_tiles(1, tiles, utc(2026, 1, 2, 12, 0)).days_since_last_order == 1
    # An order later on T's own day is in the window; its distance floors to -1.
    assert customer_features_from_tiles(1, tiles, utc(2026, 1, 1, 6)).days_since_last_order == -1


def test_read_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        customer_features_from_tiles(1, [], datetime(2026, 1, 1))


def test_product_window_is_7_days_and_customers_are_exact() -> None:
    lines = [
        Line(date(2026, 3, 24), 1, 10, 100, 2, Decimal("20.00")),  # first day of window
        Line(date(2026, 3, 30), 2, 20, 100, 1, Decimal("5.50")),
        Line(date(2026, 3, 30), 3, 30, 101, 3, Decimal("3.03")),
        Line(date(2026, 3, 23), 4, 40, 102, 9, Decimal("99.00")),  # one day too old
        Line(date(2026, 3, 31), 5, 50, 103, 9, Decimal("99.00")),  # after T's day
    ]
    assert product_features_from_lines(7, lines, utc(2026, 3, 30, 23, 59)) == ProductFeatures(
        7, 6, Decimal("28.53"), 2
    )
    assert product_features_from_lines(7, [], utc(2026, 3, 30)) == ProductFeatures(
        7, 0, Decimal("0.00"), 0
    )
