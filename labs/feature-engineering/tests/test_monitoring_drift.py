"""PSI: exact values on hand-sized samples, the thresholds, baselines on disk, bounded windows."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from cdc_features.monitoring import MetricsRegistry
from cdc_features.monitoring.drift import (
    Baseline,
    DriftMonitor,
    bin_shares,
    load_baselines,
    psi,
    psi_level,
    quantile_edges,
    reservoir_sample,
    save_baselines,
)

EPS = 1e-4


def test_quantile_edges_cut_the_baseline_into_equal_shares() -> None:
    values = list(range(100))  # 0..99
    assert quantile_edges(values, 4) == [24, 49, 74]
    assert bin_shares(values, [24, 49, 74]) == [0.25, 0.25, 0.25, 0.25]
    # ties collapse: a feature that is almost always 1 has a single edge
    assert quantile_edges([1] * 9 + [5], 10) == [1]
    assert bin_shares([1] * 9 + [5], [1]) == [0.9, 0.1]


def test_identical_distribution_has_zero_psi() -> None:
    values = [float(v) for v in range(1000)]
    assert psi(values, list(reversed(values))) == 0.0


def test_psi_matches_the_formula_by_hand() -> None:
    expected = list(range(100))
    # 50 % of the actual values in bin 1, 25 % in bin 2, 25 % in bin 3, none in bin 4
    actual = [0] * 50 + [30] * 25 + [60] * 25
    by_hand = (0.5 - 0.25) * math.log(0.5 / 0.25) + 0 + 0 + (EPS - 0.25) * math.log(EPS / 0.25)
    assert psi(expected, actual, bins=4) == pytest.approx(by_hand, rel=1e-12)
    assert psi(expected, actual, bins=4) == pytest.approx(2.1285, abs=1e-4)


def test_psi_levels_follow_the_usual_thresholds() -> None:
    assert psi_level(0.0) == "stable"
    assert psi_level(0.0999) == "stable"
    assert psi_level(0.1) == "watch"
    assert psi_level(0.25) == "watch"
    assert psi_level(0.2501) == "alert"


def test_shifted_sample_scores_above_alert_and_resample_below_watch() -> None:
    rng = random.Random(7)
    baseline = [rng.lognormvariate(4.0, 0.5) for _ in range(5000)]
    same = [rng.lognormvariate(4.0, 0.5) for _ in range(5000)]
    shifted = [v * 1.5 for v in (rng.lognormvariate(4.0, 0.5) for _ in range(5000))]
    assert psi(baseline, same) < 0.1
    assert psi(baseline, shifted) > 0.25


def test_empty_samples_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="non-empty baseline"):
        psi([], [1.0])
    with pytest.raises(ValueError, match="non-empty sample"):
        psi([1.0, 2.0], [])


def test_baseline_round_trips_and_scores_like_psi(tmp_path: Path) -> None:
    rng = random.Random(1)
    base = [rng.gauss(100, 10) for _ in range(2000)]
    cur = [rng.gauss(110, 10) for _ in range(2000)]
    b = Baseline.from_values("total_spend", base)
    assert b.size == 2000 and len(b.shares) == len(b.edges) + 1 == 10
    assert b.psi(cur) == pytest.approx(psi(base, cur), rel=1e-12)
    path = tmp_path / "baseline.json"
    save_baselines(path, [b])
    assert load_baselines(path) == {"total_spend": b}


def test_malformed_baseline_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"amount": {"edges": [1, 2], "shares": [0.5, 0.5], "size": 2}}')
    with pytest.raises(ValueError, match=r"bad\.json: baseline 'amount'"):
        load_baselines(path)


def test_drift_monitor_keeps_a_bounded_recent_window_and_reports_psi() -> None:
    registry = MetricsRegistry()
    rng = random.Random(3)
    baseline = Baseline.from_values("amount", [rng.gauss(50, 5) for _ in range(1000)])
    monitor = DriftMonitor({"amount": baseline}, window=300, min_sample=200, registry=registry)
    monitor.observe("amount", [rng.gauss(50, 5) for _ in range(150)])
    assert monitor.evaluate() == {}  # too few values to score
    monitor.observe("amount", [rng.gauss(50, 5) for _ in range(10_000)])
    assert len(monitor.sample("amount")) == 300
    stable = monitor.evaluate()["amount"]
    assert stable < 0.1 and registry.psi() == {"amount": stable}
    monitor.observe("amount", [rng.gauss(80, 5) for _ in range(300)])  # pushes all old values out
    assert min(monitor.sample("amount")) > 55
    assert monitor.evaluate()["amount"] > 0.25
    assert registry.psi()["amount"] > 0.25


def test_reservoir_sample_is_bounded_and_uniform_enough() -> None:
    sample = reservoir_sample(range(100_000), 1000, seed=5)
    assert len(sample) == 1000 and len(set(sample)) == 1000
    assert 40_000 < sum(sample) / len(sample) < 60_000
    assert reservoir_sample(range(10), 100) == list(range(10))
