"""The ML task on hand-written stories: who is in the population at T, which label each gets,
when the label times are, how the log is cut at them and how the rows are split by time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cdc_features.core.reference import ReferenceLog
from cdc_features.lab.stories import StoryLog, order
from cdc_features.ml.loop import cut_positions, time_split
from cdc_features.ml.task import TASK, LabelRow, build_labels, label_rate, label_times

T = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def story() -> StoryLog:
    """Customers 1-11 around the feature time T = 2026-04-01 12:00 (commit = order_date
    unless ``at`` says otherwise)."""
    s = StoryLog(schemas=False)
    # 1: ordered before T and again 2 days after it: label 1
    s.create(order(1, 1, "2026-03-20T10:00:00", "10.00"))
    s.create(order(2, 1, "2026-04-03T10:00:00", "12.00"))
    # 2: ordered before T; after T only gets an order moved over from customer 11: label 1
    s.create(order(3, 2, "2026-03-25T10:00:00", "10.00"))
    # 3: the order after T is cancelled within the 14 days: label 0
    s.create(order(4, 3, "2026-03-28T10:00:00", "10.00"))
    o5 = order(5, 3, "2026-04-05T10:00:00", "30.00")
    s.create(o5)
    # 4: the next order comes 19 days after T: label 0
    s.create(order(6, 4, "2026-03-01T10:00:00", "10.00"))
    # 5: a back-dated order entered after T (dated before it): label 1, and not a feature at T
    s.create(order(8, 5, "2026-03-15T10:00:00", "10.00"))
    s.create(order(9, 5, "2026-03-30T10:00:00", "20.00"), at="2026-04-02T09:00:00")
    # 6: first order after T: not in the population
    s.create(order(15, 6, "2026-04-02T10:00:00", "10.00"))
    # 7: its only order before T was cancelled before T: not in the population
    o10 = order(10, 7, "2026-03-10T10:00:00", "10.00")
    s.create(o10)
    s.change(o10, at="2026-03-12T10:00:00", status="cancelled")
    # 8: an order created exactly at T + 14 days still counts: label 1
    s.create(order(16, 8, "2026-03-05T10:00:00", "10.00"))
    s.create(order(11, 8, "2026-04-15T12:00:00", "10.00"))
    # 9: an order created exactly at T belongs to the features, not to the label: label 0
    s.create(order(17, 9, "2026-03-06T10:00:00", "10.00"))
    s.create(order(12, 9, "2026-04-01T12:00:00", "10.00"))
    # 10: the order after T is cancelled after the label time: label 1 (not known then)
    s.create(order(13, 10, "2026-03-26T10:00:00", "10.00"))
    o14 = order(14, 10, "2026-04-06T10:00:00", "10.00")
    s.create(o14)
    s.change(o5, at="2026-04-10T10:00:00", status="cancelled")
    s.create(order(7, 4, "2026-04-20T10:00:00", "10.00"))
    s.change(o14, at="2026-04-21T10:00:00", status="cancelled")
    # 11: its order after T moves to customer 2 within the 14 days: label 0 (1 for customer 2)
    o18 = order(18, 11, "2026-03-27T10:00:00", "10.00")
    s.create(o18)
    o19 = order(19, 11, "2026-04-04T10:00:00", "10.00")
    s.create(o19)
    s.change(o19, at="2026-04-07T10:00:00", customer_id=2)
    return s


def test_population_and_labels_follow_the_definition() -> None:
    log = ReferenceLog(story().records)
    rows = build_labels(log, [T])
    got = {r.customer_id: r.label for r in rows}
    assert got == {1: 1, 2: 1, 3: 0, 4: 0, 5: 1, 8: 1, 9: 0, 10: 1, 11: 0}
    # 6 ordered first after T, 7's only order before T was cancelled: not in the population
    assert 6 not in got and 7 not in got
    assert all(r.at == T and r.label_time == T + timedelta(days=14) for r in rows)
    assert label_rate(rows) == pytest.approx(5 / 9)


def test_label_times_start_after_a_full_window_and_end_when_labels_are_known() -> None:
    first = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    last = datetime(2026, 5, 20, 0, 0, tzinfo=UTC)
    times = label_times(first, last)
    assert times[0] == datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # 31 days later, at noon
    assert all(b - a == timedelta(days=TASK.every_days) for a, b in itertools.pairwise(times))
    assert times[-1] + TASK.horizon <= last < times[-1] + TASK.horizon + timedelta(days=3)
    # a first commit after noon: the first label time is the next day's noon
    later = label_times(datetime(2026, 3, 1, 13, 0, tzinfo=UTC), last)
    assert later[0] == datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
    assert label_times(first, first + timedelta(days=40)) == []


def test_the_log_is_cut_after_the_last_change_committed_by_each_time() -> None:
    s = StoryLog(schemas=False)
    s.create(order(1, 1, "2026-03-20T10:00:00", "10.00"))
    o2 = order(2, 1, "2026-03-30T10:00:00", "10.00")
    s.create(o2)
    s.delete(o2, at="2026-03-31T10:00:00")  # + its tombstone, which has no commit time
    s.create(order(3, 2, "2026-04-02T10:00:00", "10.00"))
    s.again(s.records[1])  # a re-delivery of a change committed before T, after the cut
    s.create(order(4, 2, "2026-04-03T10:00:00", "10.00"))
    log = ReferenceLog(s.records)
    assert cut_positions(log, len(s.records), [T, datetime(2026, 4, 5, tzinfo=UTC)]) == [4, 7]
    s.create(order(5, 3, "2026-03-29T10:00:00", "10.00"))  # committed before T, comes late
    with pytest.raises(ValueError, match="not in commit order"):
        cut_positions(ReferenceLog(s.records), len(s.records), [T])


def test_the_split_keeps_only_labels_known_before_the_test_period() -> None:
    times = [T + timedelta(days=3 * i) for i in range(10)]
    rows = [LabelRow(c, t, t + timedelta(days=14), c % 2) for t in times for c in (1, 2)]
    split = time_split(rows, 0.4)
    assert split.test_from == times[6]
    assert {r.at for r in split.test} == set(times[6:])
    assert all(r.label_time <= split.test_from for r in split.train)
    assert {r.at for r in split.train} == set(times[:2])  # T + 14 days <= T + 18 days
    with pytest.raises(ValueError, match="too few"):
        time_split(rows[:2], 0.4)
