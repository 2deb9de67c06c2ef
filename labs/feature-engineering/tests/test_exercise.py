"""The exercise checker: it passes the lab's solution, names what is missing in the untouched
starter, and catches a wrong feature with the expected and the received value."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdc_features import LAB_DIR
from cdc_features.core.reference import reference_customer_features
from cdc_features.lab.exercise import FEATURES, READ_TIMES, Solution, check, load_starter, main
from cdc_features.lab.stories import exercise_log


def test_exercise_log_tells_the_story_the_lesson_describes() -> None:
    deliveries = exercise_log()
    assert [len(d) for d in deliveries] == [5, 6, 6, 3]
    everything = [r for d in deliveries for r in d]
    assert sum(r["value"] is None for r in everything) == 1  # one tombstone after the delete
    at = READ_TIMES[2]  # 2026-03-15 12:00 UTC
    features = reference_customer_features(everything, at)
    # The window is 2026-02-14 .. 2026-03-15. 101: orders 2 (35.50), 6 (updated to 64.50),
    # 12 (100.00); order 1 (Feb 3) is outside, order 9 was deleted.
    assert features[101].order_count_30d == 3
    assert str(features[101].total_spend_30d) == "200.00"
    # 102: order 3 (120.00), 8 (250.00), 11 (10.01, back-dated); 7 was cancelled.
    assert features[102].order_count_30d == 3
    assert str(features[102].total_spend_30d) == "380.01"
    assert str(features[102].avg_order_value_30d) == "126.67"


def test_checker_passes_on_the_solution(spark: SparkSession) -> None:
    report, text = check(spark, Solution(), "solution")
    print(text)
    assert report.ok, text
    for feature in FEATURES:
        assert f"PASS  {feature}" in text
        assert report.checked[feature] >= 3 * (4 + len(READ_TIMES))
    assert "Result: all features match the reference" in text


def test_checker_fails_on_the_untouched_starter_and_says_what_to_do(spark: SparkSession) -> None:
    report, text = check(spark, load_starter(), "starter")
    print(text)
    assert not report.ok
    assert "FAIL  build_customer_tiles is not implemented yet" in text
    assert "starter/customer_features.py" in text
    assert main([]) == 1


class _NoWindow(Solution):
    """A typical mistake: the read part sums every stored tile, not the last 30 days."""

    def customer_features_at(self, tiles: DataFrame, at: datetime) -> DataFrame:
        totals = tiles.groupBy("customer_id").agg(
            F.sum("order_count").cast("int").alias("order_count_30d"),
            F.sum("total_spend").alias("total_spend_30d"),
        )
        return totals.withColumn(
            "avg_order_value_30d",
            F.when(
                F.col("order_count_30d") > 0,
                F.bround(F.col("total_spend_30d") / F.col("order_count_30d"), 2),
            ),
        )


def test_checker_reports_expected_and_received_values(spark: SparkSession) -> None:
    report, text = check(spark, _NoWindow(), "no window")
    print(text)
    assert not report.ok
    assert "FAIL  order_count_30d" in text
    # After the whole log, at 2026-04-30, customer 103's February and March orders are gone.
    assert "after the whole log, T=2026-04-30T12:00Z, customer 103: expected 0, got 3" in "\n".join(
        report.failures["order_count_30d"]
    )


def test_check_sh_runs_the_checker_and_sets_the_exit_code() -> None:
    script = LAB_DIR / "scripts" / "check.sh"
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SPARK_LOG_LEVEL": "ERROR"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "build_customer_tiles is not implemented yet" in result.stdout
    assert Path(LAB_DIR / "starter" / "customer_features.py").is_file()
