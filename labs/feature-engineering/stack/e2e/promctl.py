"""The e2e test's Prometheus: the lab's alert rules with test timings, and the HTTP API.

``stack.sh up prometheus`` loads ``monitoring/alert_rules.yml``; the e2e test hands it a copy made
by :func:`rules_with_test_timings`, which changes only timings so that a paused source fires
within seconds instead of minutes: every ``for`` becomes ``for_`` and the freshness threshold
becomes ``freshness_seconds``. Expressions, labels and annotations stay as in production.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

LAB = Path(__file__).resolve().parents[2]
RULES = LAB / "monitoring" / "alert_rules.yml"
FRESHNESS = re.compile(r"^(cdc_features_freshness_seconds\s*>\s*)[\d.]+$")


def rules_with_test_timings(dest: Path, *, for_: str = "5s", freshness_seconds: int = 30) -> Path:
    """Write the production rules to ``dest`` with short ``for`` and freshness threshold."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    changed = 0
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = for_
            if rule.get("alert") == "FeatureFreshnessStale":
                rule["expr"], n = FRESHNESS.subn(rf"\g<1>{freshness_seconds}", rule["expr"].strip())
                changed += n
    if changed != 1:
        raise ValueError(f"{RULES}: FeatureFreshnessStale is not `freshness > N` any more")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dest


class Prometheus:
    """The few calls of Prometheus's HTTP API the e2e test needs."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as resp:
            doc = json.load(resp)
        if doc.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {doc}")
        return doc["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query: ``[{"metric": {...}, "value": [ts, "1.5"]}, ...]``."""
        return list(self._get("/api/v1/query", query=promql)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) from ``/api/v1/alerts``."""
        return list(self._get("/api/v1/alerts")["alerts"])

    def firing(self, name: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts()
            if a["state"] == "firing"
            and a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def targets_up(self) -> list[str]:
        """Scrape URLs of the active targets whose last scrape succeeded."""
        targets = self._get("/api/v1/targets")["activeTargets"]
        return [t["scrapeUrl"] for t in targets if t["health"] == "up"]


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; the value, or AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout}s")
        time.sleep(every)
