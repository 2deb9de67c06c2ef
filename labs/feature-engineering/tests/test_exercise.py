"""The exercise checker: it passes the lab's solution file and the lab's own pipeline, names
what is missing in the untouched starter, and the log it replays is the committed file the
student reads, telling the stories the lesson describes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pyspark.sql import SparkSession

from cdc_features import LAB_DIR
from cdc_features.core.reference import reference_customer_features
from cdc_features.lab.exercise import (
    FEATURES,
    LOG_FILE,
    READ_TIMES,
    STORY_MISTAKES,
    LabPipeline,
    check,
    commit_time,
    load_exercise_log,
    load_starter,
    log_lines,
    main,
)
from cdc_features.lab.stories import EXERCISE_STORIES, exercise_log


def test_the_committed_log_is_the_story_log() -> None:
    assert LOG_FILE.read_text(encoding="utf-8") == log_lines(exercise_log()), (
        "starter/exercise_log.jsonl drifted: python -m cdc_features.lab.exercise --write-log"
    )
    assert load_exercise_log() == exercise_log()


def test_exercise_log_tells_the_story_the_lesson_describes() -> None:
    deliveries = load_exercise_log()
    assert [len(d) for d in deliveries] == [5, 8, 7, 6]
    everything = [r for d in deliveries for r in d]
    assert sum(r["value"] is None for r in everything) == 1  # one tombstone after the delete
    assert sorted(STORY_MISTAKES) == sorted(EXERCISE_STORIES)  # one story per customer
    # After delivery 3 (T = 2026-03-15 07:30, window 2026-02-14 .. 2026-03-15):
    at = commit_time(deliveries[2][-1])
    seen = [r for d in deliveries[:3] for r in d]
    f = reference_customer_features(seen, at)
    # 101: orders 2 (35.50), 6 (updated to 64.50) and 12 (100.00); order 1 is outside.
    assert (f[101].order_count_30d, str(f[101].total_spend_30d)) == (3, "200.00")
    assert (f[102].order_count_30d, str(f[102].total_spend_30d)) == (2, "370.00")  # 7 cancelled
    assert (f[103].order_count_30d, str(f[103].total_spend_30d)) == (3, "65.24")  # 9 deleted
    assert f[104].order_count_30d == 0 and f[105].order_count_30d == 1  # order 15 moved
    assert f[106].order_count_30d == 1  # delivered twice, counted once
    assert f[108].order_count_30d == 1  # back-dated to 2026-03-04, still in the window
    # After the whole log (T = 2026-04-04 09:01): 103's newest order cancelled, 102 decayed,
    # 107's order of 2025-03-01 far outside the window.
    at = commit_time(deliveries[3][-1])
    f = reference_customer_features(everything, at)
    assert (f[101].order_count_30d, str(f[101].total_spend_30d)) == (3, "150.01")
    assert f[102].order_count_30d == f[103].order_count_30d == f[107].order_count_30d == 0


def test_checker_passes_on_the_solution_file(spark: SparkSession) -> None:
    report, text = check(spark, load_starter(LAB_DIR / "solution" / "customer_features.py"), "s")
    print(text)
    assert report.ok, text
    for feature in FEATURES:
        assert f"PASS  {feature}" in text
        assert report.checked[feature] >= 7 * (
            4 + len(READ_TIMES)
        )  # 71: most customers, every read
    assert "Mistake" not in text
    assert "Result: all features match the reference" in text


def test_checker_passes_on_the_lab_pipeline(spark: SparkSession) -> None:
    """The lab's own core (365-day watermark) through the exercise interface."""
    report, text = check(spark, LabPipeline(), "lab pipeline")
    assert report.ok, text


def test_checker_fails_on_the_untouched_starter_and_says_what_to_do(spark: SparkSession) -> None:
    report, text = check(spark, load_starter(), "starter")
    print(text)
    assert not report.ok
    assert "FAIL  build_customer_tiles is not implemented yet" in text
    assert "starter/customer_features.py" in text
    assert main([]) == 1


def test_check_sh_runs_the_checker_and_sets_the_exit_code() -> None:
    script = LAB_DIR / "scripts" / "check.sh"
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SPARK_LOG_LEVEL": "ERROR"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "build_customer_tiles is not implemented yet" in result.stdout
    assert Path(LAB_DIR / "starter" / "customer_features.py").is_file()
