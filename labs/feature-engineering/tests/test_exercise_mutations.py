"""Mutation test of the exercise checker: every classic wrong solution
(``cdc_features.lab.exercise_mutations``, one-line changes of ``solution/customer_features.py``)
fails the check, and the first mistake the checker names is that mutation's mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cdc_features import LAB_DIR
from cdc_features.lab.exercise import MISTAKES, check, load_starter
from cdc_features.lab.exercise_mutations import MUTATIONS, Mutation, mutate

SOLUTION = LAB_DIR / "solution" / "customer_features.py"
REQUIRED = {  # the list of classic mistakes, each covered by a mutation
    "no_retraction",
    "events_not_orders",
    "tumbling_window",
    "processing_time",
    "money_as_float",
    "duplicates_counted",
}


def test_the_list_covers_the_classic_mistakes_and_applies_to_the_solution() -> None:
    source = SOLUTION.read_text(encoding="utf-8")
    assert {m.mistake for m in MUTATIONS} >= REQUIRED
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS) >= 6
    for mutation in MUTATIONS:
        assert mutation.mistake in MISTAKES
        assert mutate(source, mutation) != source


def test_a_mutation_that_does_not_apply_is_an_error() -> None:
    with pytest.raises(ValueError, match="occurs 0 times"):
        mutate("x = 1\n", Mutation("m", "rounding", "w", old="F.bround(", new="F.round("))


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_checker_names_the_mistake_of_each_wrong_solution(
    spark: SparkSession, tmp_path: Path, mutation: Mutation
) -> None:
    wrong = tmp_path / f"{mutation.name}.py"
    wrong.write_text(mutate(SOLUTION.read_text(encoding="utf-8"), mutation), encoding="utf-8")
    report, text = check(spark, load_starter(wrong), mutation.name)
    print(text)
    assert not report.ok, f"{mutation.name} ({mutation.wrong}) passed the check"
    assert report.error is None, text
    assert report.mistakes and report.mistakes[0] == mutation.mistake, text
    assert f"\nMistake: {MISTAKES[mutation.mistake].title}\n" in text
