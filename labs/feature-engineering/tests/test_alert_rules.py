"""The alert rules as Prometheus reads them: ``promtool check rules`` and the rule unit tests of
``monitoring/alert_rules_test.yml`` (input series → which alerts fire when), run by the real
``promtool`` (Debian package ``prometheus``, installed by ``scripts/preflight.sh``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from cdc_features.monitoring import ConsoleAlerts, MetricsRegistry, load_rules

RULES_DIR = Path(__file__).resolve().parents[1] / "monitoring"


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: apt-get install prometheus (scripts/preflight.sh does)"
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rules_file() -> None:
    out = promtool("check", "rules", "alert_rules.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in out.stdout


def test_every_rule_passes_its_promtool_unit_tests() -> None:
    out = promtool("test", "rules", "alert_rules_test.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    tests = yaml.safe_load((RULES_DIR / "alert_rules_test.yml").read_text(encoding="utf-8"))
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if not case["exp_alerts"]
    }
    names = {r.name for r in load_rules()}
    assert fired == names
    assert quiet == names  # each also checked not to fire too early (or for the wrong series)


@pytest.mark.parametrize(
    ("rule", "old", "new"),
    [
        ("FeatureFreshnessStale", "> 300", "> 600"),
        ("FeatureFreshnessStale", "for: 2m", "for: 1m"),
        ("EndToEndLagHigh", "> 60", "> 120"),
        ("WatermarkDropRateHigh", "> 0.01", "> 0.05"),
        ("FutureEventTime", "offset 10m", "offset 1m"),
        ("TrainingServingSkew", "> 0.01", "> 0.05"),
        ("TrainingServingSkew", "for: 10m", "for: 5m"),
        ("FeatureScrapeMissing", "for: 5m", "for: 10m"),
    ],
)
def test_the_unit_tests_fail_when_a_rule_changes(
    tmp_path: Path, rule: str, old: str, new: str
) -> None:
    text = (RULES_DIR / "alert_rules.yml").read_text(encoding="utf-8")
    start = text.index(f"- alert: {rule}\n")
    end = text.find("- alert:", start + 1)
    block = text[start : end if end > 0 else len(text)]
    changed = block.replace(old, new, 1)
    assert changed != block
    (tmp_path / "alert_rules.yml").write_text(text.replace(block, changed), encoding="utf-8")
    shutil.copy(RULES_DIR / "alert_rules_test.yml", tmp_path)
    out = promtool("test", "rules", "alert_rules_test.yml", cwd=tmp_path)
    assert out.returncode != 0, f"{rule} changed ({old} → {new}) and every rule test still passes"
    assert f"alertname: {rule}" in out.stdout + out.stderr


def test_the_console_summary_evaluates_the_threshold_rules_of_the_file() -> None:
    console = ConsoleAlerts(MetricsRegistry())
    assert {r.name: r.threshold for r in console.console_rules} == {
        "StreamingQueryFailed": ("cdc_features_query_failed", "==", 1.0),
        "FeatureFreshnessStale": ("cdc_features_freshness_seconds", ">", 300.0),
        "FeatureDrift": ("cdc_features_psi", ">", 0.25),
        "MissingFeatures": ("cdc_features_missing_ratio", ">", 0.05),
        "StaleFeatureKeys": ("cdc_features_stale_keys", ">", 0.0),
        "TrainingServingSkew": ("cdc_features_skew_ratio", ">", 0.01),
    }
    assert [r.name for r in console.prometheus_only] == [
        "EndToEndLagHigh",
        "WatermarkDropRateHigh",
        "FutureEventTime",
        "FeatureScrapeMissing",
    ]
