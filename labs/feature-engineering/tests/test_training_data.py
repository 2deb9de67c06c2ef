"""The training-data demo: the entity frame of label times, joined point-in-time by Feast's
offline store, gives exactly what the online store served at each label time (and what the
batch reference computes from the changes committed by then); the naive set taken by
``order_date`` over today's table differs where the story says it leaks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from cdc_features.core.reference import parse_change
from cdc_features.lab.training_data import (
    CUSTOMER_ID,
    LABEL_TIMES,
    TrainingRow,
    as_known_then,
    by_business_time,
    committed_by,
    labels_frame,
    point_in_time_frame,
    render,
    run_demo,
    training_story,
)
from cdc_features.stores.base import zero_customer


def test_each_delivery_holds_what_was_committed_before_its_label_time() -> None:
    deliveries = training_story()
    assert len(deliveries) == len(LABEL_TIMES)
    previous = None
    for delivery, at in zip(deliveries, LABEL_TIMES, strict=True):
        commits = [parse_change(r).commit for r in delivery]
        assert all(c <= at for c in commits)
        assert previous is None or all(c > previous for c in commits)
        previous = at
    everything = [r for d in deliveries for r in d]
    assert committed_by(everything, LABEL_TIMES[0]) == deliveries[0]


def test_the_entity_frame_has_a_label_per_label_time() -> None:
    everything = [r for d in training_story() for r in d]
    frame = labels_frame(everything)
    assert list(frame.columns) == ["customer_id", "event_timestamp", "label"]
    # another order was created within 7 days after 03-06 (304, 303) and 03-10 (303), not 03-14
    assert list(frame["label"]) == [1, 1, 0]


def test_the_entity_frame_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="label"):
        point_in_time_frame(None, pd.DataFrame({"customer_id": [1], "event_timestamp": [0]}))


@pytest.fixture(scope="module")
def demo(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> list[TrainingRow]:
    return run_demo(spark, tmp_path_factory.mktemp("training"))[1]


def test_training_rows_equal_what_was_served_at_each_label_time(demo: list[TrainingRow]) -> None:
    everything = [r for d in training_story() for r in d]
    assert [row.at for row in demo] == LABEL_TIMES
    for row in demo:
        known = as_known_then(everything, row.at).get(CUSTOMER_ID, zero_customer(CUSTOMER_ID))
        assert row.served == known, row.at
        assert row.training == (
            known.order_count_30d,
            known.total_spend_30d,
            known.days_since_last_order,
        ), row.at


def test_the_naive_set_leaks_the_back_dated_order_and_the_later_cancellation(
    demo: list[TrainingRow],
) -> None:
    everything = [r for d in training_story() for r in d]
    values = [
        (r.training[0], r.training[1], r.naive.order_count_30d, r.naive.total_spend_30d)
        for r in demo
    ]
    assert values == [
        # 03-06: 301 + 302 known; naive also counts 303 (dated 03-04, committed 03-12)
        (2, Decimal("100.00"), 3, Decimal("125.00")),
        # 03-10: 304 live then; naive drops it (cancelled 03-14) and counts 303 instead
        (3, Decimal("180.00"), 3, Decimal("125.00")),
        # 03-14 18:00: both know everything
        (3, Decimal("125.00"), 3, Decimal("125.00")),
    ]
    assert all(r.naive == by_business_time(everything, r.at)[CUSTOMER_ID] for r in demo)


def test_render_marks_the_leaking_rows(demo: list[TrainingRow], tmp_path: Path) -> None:
    text = render(training_story(), demo)
    assert text.count("<- leak") == 2
    assert "order 303 created" in text and "committed 2026-03-12 11:00" in text
