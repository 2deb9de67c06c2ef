"""``npm run lab -- --score``: the console view scores the customers a micro-batch changed with
the saved model, from the same read as its feature table; the option's errors."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from cdc_features.lab.console import ConsoleFeatureView
from cdc_features.lab.replay import DEFAULT_MODEL
from cdc_features.lab.replay import main as lab_main
from cdc_features.ml.model import LinearModel
from cdc_features.ml.vectors import vector

TILE_SCHEMA = (
    "customer_id long, day date, order_count int, total_spend decimal(12,2), "
    "last_order_ts timestamp, commit_ts timestamp"
)
DAY = date(2026, 4, 1)


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2026, 4, day, hour, 0, tzinfo=UTC)


def test_the_console_prints_the_scores_of_the_changed_customers(spark: SparkSession) -> None:
    model = LinearModel.load(DEFAULT_MODEL)
    batch = spark.createDataFrame(
        [
            (1, DAY, 3, Decimal("120.00"), at(10), at(10)),
            (2, date(2026, 3, 5), 1, Decimal("15.00"), at(9, 5).replace(month=3), at(9)),
        ],
        TILE_SCHEMA,
    )
    out = io.StringIO()
    view = ConsoleFeatureView(out=out, model=model)
    view.write_customers(batch, 0)
    text = out.getvalue().splitlines()
    assert text[1] == "features at T = 2026-04-01 10:00:00 UTC"
    header = next(
        i for i, line in enumerate(text) if line.split()[:2] == ["customer", "p_reorder_14d"]
    )
    scores = {line.split()[0]: line.split() for line in text[header + 1 :]}
    f1, f2 = view.reader.customer_features([1, 2], at(10)).values()
    assert f1.order_count_30d == 3 and f1.days_since_last_order == 0
    assert f2.order_count_30d == 1 and f2.days_since_last_order == 27
    assert scores["1"][1] == f"{model.probability(vector(f1)):.3f}"
    assert scores["2"][1] == f"{model.probability(vector(f2)):.3f}"
    assert " ".join(scores["1"][2:]) == "[" + ", ".join(f"{v:.2f}" for v in vector(f1)) + "]"
    # a frequent, recent customer is more likely to order again than a quiet one
    assert float(scores["1"][1]) > float(scores["2"][1])


def test_the_score_option_needs_a_model_and_the_console(tmp_path: Path) -> None:
    bad = tmp_path / "model.json"
    bad.write_text("{}", encoding="utf-8")
    for argv, message in (
        (["--score", str(tmp_path / "missing.json")], "cannot load the model"),
        (["--score", str(bad)], "not a saved LinearModel"),
        (["--score", "--sink", "redis"], "keep 'console' in --sink"),
    ):
        err = io.StringIO()
        with pytest.raises(SystemExit) as exit_info, redirect_stderr(err):
            lab_main([*argv, "--work-dir", str(tmp_path / "lab")], out=io.StringIO())
        assert exit_info.value.code == 2
        assert message in err.getvalue()
