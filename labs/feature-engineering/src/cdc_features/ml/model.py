"""The model: a standardized logistic regression (scikit-learn), small and deterministic.

Training fits ``StandardScaler`` + ``LogisticRegression`` (L2, ``C = 1``, the ``lbfgs``
solver: no randomness, the same coefficients for the same rows). The fitted model is kept as
plain numbers (:class:`LinearModel`: per-feature mean and scale, coefficients, intercept), so
it is saved as JSON — no pickle — and scored without scikit-learn:
``p = 1 / (1 + exp(-(intercept + Σ coef_i · (x_i − mean_i) / scale_i)))``.

Metrics: ROC AUC (how well the scores rank positives above negatives; 0.5 = chance) and log
loss (how good the probabilities themselves are; lower is better), both from
``sklearn.metrics``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cdc_features.ml.vectors import VECTOR_FEATURES, Vector


@dataclass(frozen=True)
class LinearModel:
    """A fitted standardized logistic regression, as numbers."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError(f"model: {n} features but mean/scale/coef of other lengths")

    def probability(self, x: Vector) -> float:
        """The predicted probability of a positive label for one input vector."""
        if len(x) != len(self.features):
            raise ValueError(f"model expects {len(self.features)} inputs, got {len(x)}")
        z = self.intercept + sum(
            c * (v - m) / s for c, v, m, s in zip(self.coef, x, self.mean, self.scale, strict=True)
        )
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def probabilities(self, xs: Sequence[Vector]) -> list[float]:
        return [self.probability(x) for x in xs]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LinearModel:
        data: dict[str, Any] = json.loads(text)
        try:
            return cls(
                features=tuple(data["features"]),
                mean=tuple(map(float, data["mean"])),
                scale=tuple(map(float, data["scale"])),
                coef=tuple(map(float, data["coef"])),
                intercept=float(data["intercept"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a saved LinearModel: {exc}") from exc

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def fit(xs: Sequence[Vector], ys: Sequence[int], c: float = 1.0) -> Any:
    """The fitted scikit-learn pipeline (scaler + logistic regression)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(set(ys)) != 2:
        raise ValueError(f"training needs both labels, got {sorted(set(ys))} in {len(ys)} rows")
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, solver="lbfgs"))
    pipeline.fit([list(x) for x in xs], list(ys))
    return pipeline


def train(xs: Sequence[Vector], ys: Sequence[int], c: float = 1.0) -> LinearModel:
    """Fit the model on ``xs`` (vectors of :data:`VECTOR_FEATURES`) and labels ``ys``."""
    pipeline = fit(xs, ys, c)
    scaler, regression = pipeline[0], pipeline[-1]
    return LinearModel(
        features=VECTOR_FEATURES,
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_),
        coef=tuple(float(v) for v in regression.coef_[0]),
        intercept=float(regression.intercept_[0]),
    )


def auc(ys: Sequence[int], ps: Sequence[float]) -> float:
    """ROC AUC of probabilities ``ps`` for labels ``ys``."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(list(ys), list(ps)))


def log_loss(ys: Sequence[int], ps: Sequence[float]) -> float:
    """Mean negative log-likelihood of labels ``ys`` under probabilities ``ps``."""
    from sklearn.metrics import log_loss as sk_log_loss

    return float(sk_log_loss(list(ys), list(ps), labels=[0, 1]))
