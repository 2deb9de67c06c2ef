"""Feature drift: the Population Stability Index of recent feature values against a baseline.

PSI = Σ (actual_i − expected_i) · ln(actual_i / expected_i) over bins, where the bins are cut at
the baseline's quantiles (so each holds about the same share of the baseline) and an empty bin
counts as a tiny share ``epsilon`` instead of zero. Usual reading: < 0.1 stable, 0.1–0.25 watch,
> 0.25 the distribution has shifted (alert).
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdc_features.monitoring.registry import MetricsRegistry

PSI_WATCH = 0.1
PSI_ALERT = 0.25
DEFAULT_BINS = 10
EPSILON = 1e-4


# region psi
def quantile_edges(expected: Sequence[float], bins: int = 10) -> list[float]:
    """Inner bin edges: the baseline's 1/bins … (bins-1)/bins quantiles, without repeats."""
    ordered = sorted(expected)
    if not ordered:
        raise ValueError("PSI needs a non-empty baseline sample")
    cuts = (ordered[-(-k * len(ordered) // bins) - 1] for k in range(1, bins))  # ceil(k·n/bins)
    return sorted(set(cuts))


def bin_shares(
    values: Sequence[float], edges: Sequence[float], epsilon: float = 1e-4
) -> list[float]:
    """Share of values per bin (edge_i-1, edge_i]; an empty bin counts as ``epsilon``."""
    if not values:
        raise ValueError("PSI needs a non-empty sample")
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect_left(edges, v)] += 1
    return [max(c / len(values), epsilon) for c in counts]


def psi(
    expected: Sequence[float], actual: Sequence[float], bins: int = 10, epsilon: float = 1e-4
) -> float:
    """Population Stability Index of ``actual`` against ``expected`` (the baseline sample).

    < 0.1: stable; 0.1–0.25: watch; > 0.25: the feature's distribution has shifted.
    """
    edges = quantile_edges(expected, bins)
    e = bin_shares(expected, edges, epsilon)
    a = bin_shares(actual, edges, epsilon)
    return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(e, a, strict=True))


# endregion


def psi_level(value: float) -> str:
    """``stable`` (< 0.1), ``watch`` (0.1–0.25) or ``alert`` (> 0.25)."""
    if value > PSI_ALERT:
        return "alert"
    return "watch" if value >= PSI_WATCH else "stable"


@dataclass(frozen=True)
class Baseline:
    """A feature's reference distribution: bin edges and the baseline's share in each bin."""

    feature: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    size: int

    @classmethod
    def from_values(
        cls,
        feature: str,
        values: Sequence[float],
        bins: int = DEFAULT_BINS,
        epsilon: float = EPSILON,
    ) -> Baseline:
        edges = quantile_edges(values, bins)
        return cls(feature, tuple(edges), tuple(bin_shares(values, edges, epsilon)), len(values))

    def psi(self, actual: Sequence[float], epsilon: float = EPSILON) -> float:
        """PSI of ``actual`` against this baseline (same formula as :func:`psi`)."""
        a = bin_shares(actual, self.edges, epsilon)
        return sum((ai - ei) * math.log(ai / ei) for ei, ai in zip(self.shares, a, strict=True))


def save_baselines(path: str | Path, baselines: Iterable[Baseline]) -> None:
    """Write baselines as JSON (one object per feature) — saved from a baseline run."""
    data = {
        b.feature: {"edges": list(b.edges), "shares": list(b.shares), "size": b.size}
        for b in baselines
    }
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_baselines(path: str | Path) -> dict[str, Baseline]:
    """Read baselines written by :func:`save_baselines`; a malformed file is a clear error."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, Baseline] = {}
    for feature, b in raw.items():
        try:
            edges, shares, size = (
                tuple(map(float, b["edges"])),
                tuple(map(float, b["shares"])),
                int(b["size"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: baseline {feature!r} is malformed: {exc}") from exc
        if len(shares) != len(edges) + 1:
            raise ValueError(f"{path}: baseline {feature!r} needs len(shares) == len(edges) + 1")
        out[feature] = Baseline(feature, edges, shares, size)
    return out


class DriftMonitor:
    """Keeps the latest ``window`` sampled values per feature and scores them against baselines.

    Memory is bounded: at most ``window`` floats per feature. A feature with fewer than
    ``min_sample`` recent values is not scored (PSI of a handful of values is noise).
    Without baselines it can collect the values of a baseline run (:meth:`baselines`).
    With a ``registry``, :meth:`evaluate` records each score there (for the metrics and alerts).
    """

    def __init__(
        self,
        baselines: Mapping[str, Baseline] | None = None,
        *,
        window: int = 5_000,
        min_sample: int = 200,
        registry: MetricsRegistry | None = None,
    ) -> None:
        self.baselines = dict(baselines or {})
        self.window = window
        self.min_sample = min_sample
        self.registry = registry
        self._values: dict[str, deque[float]] = {}

    def observe(self, feature: str, values: Iterable[float]) -> None:
        """Add recent values of a feature (the oldest fall out of the window)."""
        buf = self._values.setdefault(feature, deque(maxlen=self.window))
        buf.extend(float(v) for v in values)

    def sample(self, feature: str) -> list[float]:
        return list(self._values.get(feature, ()))

    def baselines_from_sample(self, bins: int = DEFAULT_BINS) -> list[Baseline]:
        """Baselines from the values observed so far (run once on a known-good period)."""
        return [Baseline.from_values(f, list(v), bins) for f, v in self._values.items() if v]

    def evaluate(self) -> dict[str, float]:
        """PSI per feature that has a baseline and enough recent values; updates the registry."""
        scores: dict[str, float] = {}
        for feature, baseline in self.baselines.items():
            values = self._values.get(feature)
            if values is None or len(values) < self.min_sample:
                continue
            scores[feature] = baseline.psi(list(values))
            if self.registry is not None:
                self.registry.set_psi(feature, scores[feature])
        return scores


def reservoir_sample(values: Iterable[float], size: int, seed: int = 0) -> list[float]:
    """A uniform random sample of at most ``size`` values from a stream of any length."""
    rng = random.Random(seed)
    out: list[float] = []
    for i, v in enumerate(values):
        if i < size:
            out.append(v)
        else:
            j = rng.randint(0, i)
            if j < size:
                out[j] = v
    return out
