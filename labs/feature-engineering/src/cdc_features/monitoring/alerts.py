"""The console summary of the alert rules, for a runner without a Prometheus server.

Prometheus evaluates ``monitoring/alert_rules.yml``; that file is the only place where an alert's
expression and threshold are written. This module reads it and evaluates, on the metrics the job
itself exports (the samples its ``/metrics`` would serve now), the rules that are a plain
threshold on one metric (``cdc_features_freshness_seconds > 300``). Rules over time (``rate``,
``increase``, ``histogram_quantile``, ``absent``) need the server's history: they are listed as
Prometheus-only. The console ignores ``for`` (it reports what holds now) and logs one line when
an alert starts (``ALERT <name> [<subject>]: …``) and one when it clears (``RESOLVED …``).
"""

from __future__ import annotations

import logging
import operator
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cdc_features import LAB_DIR
from cdc_features.monitoring.registry import MetricsRegistry

log = logging.getLogger("cdc_features.monitoring")

#: the alert rules Prometheus loads (``rule_files``) and the console reads
RULES_FILE = LAB_DIR / "monitoring" / "alert_rules.yml"

_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule of the rules file."""

    name: str
    expr: str
    for_: str | None
    severity: str
    summary: str
    description: str

    @property
    def threshold(self) -> tuple[str, str, float] | None:
        """(metric, operator, value) when the expression is a plain threshold on one metric."""
        m = _THRESHOLD.match(self.expr)
        return (m["metric"], m["op"], float(m["value"])) if m else None


def load_rules(path: Path = RULES_FILE) -> list[AlertRule]:
    """Every alerting rule of a Prometheus rules file, in file order."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        AlertRule(
            name=rule["alert"],
            expr=" ".join(str(rule["expr"]).split()),
            for_=rule.get("for"),
            severity=rule.get("labels", {}).get("severity", ""),
            summary=rule.get("annotations", {}).get("summary", ""),
            description=rule.get("annotations", {}).get("description", ""),
        )
        for group in doc["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@dataclass(frozen=True)
class Alert:
    """A rule whose condition holds now: which rule, about what (its labels), value, threshold."""

    name: str
    subject: str
    value: float
    threshold: float
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.subject)


class ConsoleAlerts:
    """Evaluates the threshold rules of the rules file on a registry's exported samples."""

    def __init__(
        self,
        registry: MetricsRegistry,
        rules: list[AlertRule] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.registry = registry
        self.rules = load_rules() if rules is None else rules
        self.log = logger or log
        self._firing: dict[tuple[str, str], Alert] = {}
        self._lock = threading.Lock()

    @property
    def console_rules(self) -> list[AlertRule]:
        return [r for r in self.rules if r.threshold is not None]

    @property
    def prometheus_only(self) -> list[AlertRule]:
        return [r for r in self.rules if r.threshold is None]

    def check(self) -> list[Alert]:
        """The alerts whose condition holds now (no logging, no state change)."""
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in self.registry.prometheus.collect():
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
        out = []
        for rule in self.console_rules:
            metric, op, limit = rule.threshold or ("", "", 0.0)
            for labels, value in samples.get(metric, []):
                if _OPS[op](value, limit):
                    subject = ",".join(v for _, v in sorted(labels.items()))
                    wait = f", for {rule.for_}" if rule.for_ else ""
                    out.append(
                        Alert(
                            rule.name,
                            subject,
                            value,
                            limit,
                            f"{metric} = {value:g} ({op} {limit:g}{wait}): "
                            f"{rule.description or rule.summary}",
                        )
                    )
        return out

    def evaluate(self) -> list[Alert]:
        """Check the rules, log ``ALERT …`` for each new alert and ``RESOLVED …`` for each cleared
        one, and return the firing alerts."""
        current = {a.key: a for a in self.check()}
        with self._lock:
            for key, alert in current.items():
                if key not in self._firing:
                    self.log.warning("ALERT %s [%s]: %s", alert.name, alert.subject, alert.message)
            for key, alert in self._firing.items():
                if key not in current:
                    self.log.warning("RESOLVED %s [%s]", alert.name, alert.subject)
            self._firing = current
            return list(current.values())

    def firing(self) -> list[Alert]:
        """The alerts firing as of the last :meth:`evaluate`."""
        with self._lock:
            return list(self._firing.values())
