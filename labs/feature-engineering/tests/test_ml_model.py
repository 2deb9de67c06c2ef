"""The model's vectors and the saved model: what a feature row becomes, that the plain-number
model scores exactly like the scikit-learn pipeline it came from, saving and loading."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.ml.model import LinearModel, auc, fit, log_loss, train
from cdc_features.ml.scorer import Scorer
from cdc_features.ml.vectors import VECTOR_FEATURES, vector
from cdc_features.stores.memory import MemoryStore

AT = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def features(count: int, spend: str, avg: str | None, days: int | None) -> CustomerFeatures:
    last = None if days is None else AT
    return CustomerFeatures(
        7, count, Decimal(spend), None if avg is None else Decimal(avg), last, days
    )


def test_the_vector_of_a_feature_row() -> None:
    assert vector(features(2, "30.00", "15.00", 3)) == (
        2.0,
        math.log1p(30.0),
        math.log1p(15.0),
        math.log1p(3),
    )
    # no order in the window: spend 0, no average; no order in the recency horizon: 366 days
    assert vector(features(0, "0.00", None, None)) == (0.0, 0.0, 0.0, math.log1p(366))
    # an order later on the read day (-1) reads as 0 days; more than a year is clipped
    assert vector(features(1, "5.00", "5.00", -1))[3] == 0.0
    assert vector(features(0, "0.00", None, 400))[3] == math.log1p(365)
    assert len(VECTOR_FEATURES) == 4


def sample(seed: int, n: int) -> tuple[list[tuple[float, ...]], list[int]]:
    rng = random.Random(seed)
    xs: list[tuple[float, ...]] = []
    ys: list[int] = []
    for _ in range(n):
        count = rng.randint(0, 6)
        days = rng.randint(0, 60)
        x = (float(count), rng.uniform(0, 7), rng.uniform(0, 5), math.log1p(days))
        xs.append(x)
        ys.append(int(rng.random() < 1 / (1 + math.exp(-(count - days / 10)))))
    return xs, ys


def test_the_saved_model_scores_exactly_like_the_fitted_pipeline(tmp_path: Path) -> None:
    xs, ys = sample(1, 400)
    model = train(xs, ys)
    pipeline = fit(xs, ys)
    expected = pipeline.predict_proba([list(x) for x in xs])[:, 1]
    assert model.probabilities(xs) == pytest.approx(list(expected), abs=1e-12)
    assert model == train(xs, ys)  # deterministic: the same rows, the same coefficients
    model.save(tmp_path / "m.json")
    assert LinearModel.load(tmp_path / "m.json") == model
    assert model.features == VECTOR_FEATURES
    assert model.coef[0] > 0 > model.coef[3]  # more orders: more likely; longer gap: less
    ps = model.probabilities(xs)
    assert 0.75 < auc(ys, ps) <= 1.0
    assert log_loss(ys, ps) < log_loss(ys, [sum(ys) / len(ys)] * len(ys))  # beats the base rate


def test_bad_models_and_inputs_are_clear_errors(tmp_path: Path) -> None:
    xs, ys = sample(2, 50)
    with pytest.raises(ValueError, match="both labels"):
        train(xs, [0] * len(xs))
    model = train(xs, ys)
    with pytest.raises(ValueError, match="expects 4 inputs, got 3"):
        model.probability((1.0, 2.0, 3.0))
    (tmp_path / "bad.json").write_text('{"features": ["a"]}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not a saved LinearModel"):
        LinearModel.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="other lengths"):
        LinearModel(("a", "b"), (0.0,), (1.0,), (1.0,), 0.0)


def test_the_scorer_reads_once_and_scores_what_it_read() -> None:
    store = MemoryStore()
    store.apply_tiles(
        [
            {
                "customer_id": 1,
                "day": AT.date(),
                "order_count": 2,
                "total_spend": Decimal("40.00"),
                "last_order_ts": AT.replace(hour=9),
            }
        ]
    )
    xs, ys = sample(3, 200)
    model = train(xs, ys)
    seen: list[tuple[datetime, list[int]]] = []
    scorer = Scorer(store, model, observers=[lambda at, read: seen.append((at, sorted(read)))])
    scores = scorer.score([1, 2], AT)
    assert seen == [(AT, [1, 2])]
    one, two = scores[1], scores[2]
    assert (
        one.served.features.order_count_30d == 2 and one.served.features.days_since_last_order == 0
    )
    assert one.served.vector == vector(one.served.features)
    assert one.probability == model.probability(one.served.vector)
    assert two.served.features.order_count_30d == 0  # unknown customer: zeros, still scored
    assert one.probability > two.probability
    with pytest.raises(ValueError, match="no model"):
        Scorer(store).score([1], AT)
