"""Every program output shown in the lesson is re-produced here and compared with the
committed file in ``lesson_outputs/`` (regenerate: ``npm run lesson:refresh``, or
``scripts/refresh-outputs.sh`` in the lab)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from cdc_features.lab.lesson_outputs import OUTPUT_DIR, render_all

REGENERATE = "run `npm run lesson:refresh` and review the diff"


@pytest.fixture(scope="module")
def pitfall_outputs(spark: SparkSession) -> dict[str, str]:
    return render_all(spark)


@pytest.mark.parametrize(
    "name",
    [
        "pitfall_tumbling_window",
        "pitfall_double_count",
        "pitfall_base64_decimal",
        "pitfall_processing_time",
        "monitoring_sample",
        "training_data",
        "lab_console",
        "lab_check",
    ],
)
def test_pitfall_output_matches_the_committed_file(
    pitfall_outputs: dict[str, str], name: str
) -> None:
    committed = (OUTPUT_DIR / f"{name}.txt").read_text(encoding="utf-8")
    assert pitfall_outputs[name] == committed, f"{name}.txt drifted: {REGENERATE}"


def test_tumbling_window_pitfall_shows_the_wrong_and_the_right_count(
    pitfall_outputs: dict[str, str],
) -> None:
    text = pitfall_outputs["pitfall_tumbling_window"]
    assert "window [2026-02-06, 2026-03-08)" in text  # aligned to the epoch, not to T
    assert "T = 2026-03-10T12:00Z  customer 1001:  naive 1   ours 4" in text
    assert "T = 2026-04-20T12:00Z  customer 1002:  naive 3   ours 0" in text


def test_double_count_pitfall(pitfall_outputs: dict[str, str]) -> None:
    text = pitfall_outputs["pitfall_double_count"]
    assert "naive: order_count_30d = 7   total_spend_30d = 570.00" in text
    assert "ours:  order_count_30d = 1   total_spend_30d = 120.00" in text


def test_base64_decimal_pitfall(pitfall_outputs: dict[str, str]) -> None:
    text = pitfall_outputs["pitfall_base64_decimal"]
    assert "error CAST_INVALID_INPUT" in text
    assert '"AJw=" -> null' in text
    assert '"AJw=" -> 1.56' in text
    assert "total_spend = 1336.05" in text


def test_processing_time_pitfall(pitfall_outputs: dict[str, str]) -> None:
    text = pitfall_outputs["pitfall_processing_time"]
    assert "  2026-03-01  6\n" in text
    assert "  01-15 1, 01-28 1, 02-10 1, 02-20 1, 02-25 1, 02-28 1\n" in text
    assert "naive: order_count_30d = 6   days_since_last_order = 0" in text
    assert "ours:  order_count_30d = 4   days_since_last_order = 1" in text


def test_monitoring_sample_fires_the_expected_alerts(pitfall_outputs: dict[str, str]) -> None:
    text = pitfall_outputs["monitoring_sample"]
    # the exercise log (26 messages) and one more delivery of 2; the orders dated 2025-03-01
    # (exercise customer 107) and 2025-01-10 are behind the 365-day watermark
    assert "5 batches, 28 input rows, 2 dropped by watermark, 21 tiles written" in text
    # what /metrics serves ten minutes after the last write: freshness computed at scrape time
    cf = '{query="customer_features"}'
    assert f"cdc_features_freshness_seconds{cf} 630.0" in text
    assert f"cdc_features_rows_dropped_by_watermark_total{cf} 2.0" in text
    assert (
        'cdc_features_end_to_end_lag_seconds_bucket{le="+Inf",query="customer_features"} 21.0'
        in text
    )
    # the console summary of the rules file: the threshold rules that hold, the rest named
    for alert in ("FeatureFreshnessStale", "FeatureDrift"):
        assert f"ALERT {alert} [" in text
    assert "ALERT WatermarkDropRateHigh" not in text and "ALERT EndToEndLagHigh" not in text
    assert (
        "Prometheus only (rates over time): EndToEndLagHigh, WatermarkDropRateHigh, "
        "FutureEventTime, FeatureScrapeMissing" in text
    )


def test_training_data_shows_served_equals_training_and_the_leak(
    pitfall_outputs: dict[str, str],
) -> None:
    text = pitfall_outputs["training_data"]
    assert "order 303 created       2026-03-04 16:00   25.00  committed 2026-03-12 11:00" in text
    assert "2026-03-06 12:00       1  2  100.00       2  100.00        3  125.00  <- leak" in text
    assert text.count("<- leak") == 2


def test_lab_check_names_the_missing_retraction(pitfall_outputs: dict[str, str]) -> None:
    text = pitfall_outputs["lab_check"]
    assert "FAIL  order_count_30d" in text
    assert "customer 104: expected 0, got 1" in text
    assert "\nMistake: no retraction for a moved order\n" in text
    assert text.rstrip().endswith("Result: the check failed")
