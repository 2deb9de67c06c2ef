"""The whole ML loop on the loop's generated history (ML.md): the stream with the Feast sink,
served reads at the label times, the point-in-time and the naive training sets, one model on
each, offline vs served metrics, the skew monitor — run once for the module.

The margins are stated where they are asserted; the numbers themselves are in
``bench/results/ml.md``, whose table must be the one this run produces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features import LAB_DIR
from cdc_features.lab.generator import generate_log
from cdc_features.ml.loop import (
    HISTORY,
    NAIVE,
    PIT,
    LoopResult,
    metrics_table,
    run_loop,
    served_equal_to_training,
)
from cdc_features.ml.model import LinearModel
from cdc_features.ml.task import label_rate
from cdc_features.ml.vectors import vector
from cdc_features.monitoring import ConsoleAlerts, MetricsRegistry, metrics_text
from cdc_features.testing import redis_db

RESULTS = LAB_DIR / "bench" / "results" / "ml.md"
MODEL = LAB_DIR / "fixtures" / "model_reorder_14d.json"

# How much better the naive model must look offline, and how much it must lose when served
# (AUC points); how far the point-in-time model's offline and served numbers may differ; an AUC
# difference too small to mean anything at about 1,000 test rows.
LEAK_MARGIN = 0.03
SAME_MARGIN = 0.005
NOISE = 0.02


@pytest.fixture(scope="module")
def registry() -> MetricsRegistry:
    return MetricsRegistry()


@pytest.fixture(scope="module")
def loop(
    spark: SparkSession,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    registry: MetricsRegistry,
) -> Iterator[LoopResult]:
    url = redis_db(redis_url, 5)
    client = redis.Redis.from_url(url)
    client.flushdb()
    records = generate_log(HISTORY.seed, HISTORY.n_events, **HISTORY.generator_options())
    work: Path = tmp_path_factory.mktemp("ml_loop")
    yield run_loop(spark, records, work_dir=work, redis_url=url, registry=registry)
    client.flushdb()
    client.close()


def test_labels_come_after_the_features_and_both_classes_are_common(loop: LoopResult) -> None:
    rows = loop.rows
    assert len(rows) > 1_000 and len({r.at for r in rows}) >= 12
    assert all(r.label_time == r.at + loop.task.horizon for r in rows)
    assert 0.2 < label_rate(rows) < 0.45
    assert len(loop.split.train) > 300 and len(loop.split.test) > 600
    assert all(r.label_time <= loop.split.test_from for r in loop.split.train)


def test_the_scorer_served_exactly_the_point_in_time_training_rows(loop: LoopResult) -> None:
    pit = loop.training[PIT]
    assert set(pit) == set(loop.stream.served)
    mismatched = [
        (key, served.features, pit[key])
        for key, served in loop.stream.served.items()
        if served.features != pit[key] or served.vector != vector(pit[key])
    ]
    assert mismatched == []
    assert served_equal_to_training(loop) == (len(pit), len(pit))
    # the rows are real: most customers had orders in their window, some had none
    counts = [f.order_count_30d for f in pit.values()]
    assert sum(1 for c in counts if c) > len(counts) / 3 and 0 in counts


def test_the_naive_set_holds_todays_values_not_the_served_ones(loop: LoopResult) -> None:
    naive = loop.training[NAIVE]
    by_customer: dict[int, set[object]] = {}
    for (cid, _), f in naive.items():
        by_customer.setdefault(cid, set()).add(f)
    assert all(len(v) == 1 for v in by_customer.values())  # one row per customer: today's
    equal, total = served_equal_to_training(loop, NAIVE)
    assert equal < total / 2


def test_naive_looks_better_offline_and_loses_it_when_served(loop: LoopResult) -> None:
    pit, naive = loop.metrics[PIT], loop.metrics[NAIVE]
    assert pit.train_rows == naive.train_rows and pit.test_rows == naive.test_rows
    # point in time: what was measured offline is what serving gets
    assert abs(pit.offline_auc - pit.served_auc) <= SAME_MARGIN
    assert abs(pit.offline_log_loss - pit.served_log_loss) <= SAME_MARGIN
    assert pit.served_auc > 0.8  # the task is learnable from the features
    # naive: better than the point-in-time model offline, by the leak ...
    assert naive.offline_auc >= pit.offline_auc + LEAK_MARGIN
    # ... gone when served: below its own offline number, no better than point in time,
    # and its probabilities are off (log loss at least 1.5 times the point-in-time model's)
    assert naive.served_auc <= naive.offline_auc - LEAK_MARGIN
    assert naive.served_auc <= pit.served_auc + NOISE
    assert naive.served_log_loss >= 1.5 * pit.served_log_loss


def test_the_skew_monitor_finds_no_skew_on_the_correct_path(
    loop: LoopResult, registry: MetricsRegistry
) -> None:
    assert loop.skew.checked == 200 and loop.skew.mismatches == ()
    assert registry.skew() == {"customer_features": (0.0, 200)}
    text = metrics_text(registry.prometheus)
    assert 'cdc_features_skew_ratio{view="customer_features"} 0.0' in text
    assert 'cdc_features_skew_checked_vectors{view="customer_features"} 200.0' in text
    assert [a.name for a in ConsoleAlerts(registry).check()] == []


def test_the_results_file_and_the_saved_model_are_this_run(loop: LoopResult) -> None:
    text = RESULTS.read_text(encoding="utf-8")
    assert metrics_table(loop) in text, "bench/results/ml.md is stale: run npm run bench:ml"
    assert f"label rate {label_rate(loop.rows):.1%}" in text
    rate = f"{100 * label_rate(loop.rows):.1f} % of {len(loop.rows):,} rows"
    assert rate in (LAB_DIR / "ML.md").read_text(encoding="utf-8"), f"ML.md: {rate}"
    saved = LinearModel.load(MODEL)
    trained = loop.models[PIT]
    assert saved.features == trained.features
    for got, want in zip(
        (*saved.mean, *saved.scale, *saved.coef, saved.intercept),
        (*trained.mean, *trained.scale, *trained.coef, trained.intercept),
        strict=True,
    ):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
