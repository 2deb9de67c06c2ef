"""Threshold alerts on the monitoring registry: each logs one clear line when it starts firing
and one when it resolves. The same rules exist for Prometheus in ``monitoring/alert_rules.yml``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from cdc_features.monitoring.drift import PSI_ALERT
from cdc_features.monitoring.registry import MetricsRegistry, exception_summary

log = logging.getLogger("cdc_features.monitoring")


@dataclass(frozen=True)
class Thresholds:
    """When each alert fires. Defaults suit the lab; tune them per feature view in production."""

    freshness_seconds: float = 300.0  # newest event in the store older than this
    lag_p99_seconds: float = 60.0  # p99 of (write time − source commit time) of a batch
    drop_rate: float = 0.01  # share of input rows dropped by the watermark ...
    drop_rate_batches: int = 10  # ... over this many recent micro-batches
    psi: float = PSI_ALERT  # Population Stability Index of a feature
    missing_ratio: float = 0.05  # share of requested entities without features
    stale_keys: int = 0  # expected-to-update keys gone stale (fires when more)


@dataclass(frozen=True)
class Alert:
    """A firing alert: which rule, about what (query, feature or view), the value and the limit."""

    name: str
    subject: str
    value: float
    threshold: float
    message: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.subject)


#: alert name → what it means for the person on call (documented in MONITORING.md)
ALERT_MEANINGS: dict[str, str] = {
    "FeatureFreshnessStale": "the newest event in the feature store is too old: "
    "the source is paused, or the pipeline is stuck",
    "EndToEndLagHigh": "features reach the store too long after the database commit",
    "WatermarkDropRateHigh": "too many events arrive later than the allowed lateness and are "
    "dropped: features miss them",
    "FeatureDrift": "a feature's distribution shifted against its baseline: "
    "check the source and the model",
    "MissingFeatures": "too many requested entities have no features at read time",
    "StaleFeatureKeys": "keys that should update regularly have not been updated",
    "StreamingQueryFailed": "a streaming query died: features stop updating until restarted",
}


class AlertEngine:
    """Evaluates the rules against a registry and keeps the set of firing alerts."""

    def __init__(
        self,
        registry: MetricsRegistry,
        thresholds: Thresholds | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.registry = registry
        self.thresholds = thresholds or Thresholds()
        self.log = logger or log
        self._firing: dict[tuple[str, str], Alert] = {}
        self._lock = threading.Lock()

    def check(self, now: datetime | None = None) -> list[Alert]:
        """The alerts whose condition holds now (no logging, no state change)."""
        t, now = self.thresholds, now or self.registry.clock()
        out: list[Alert] = []
        for name, q in sorted(self.registry.queries().items()):
            if q.status == "failed":
                out.append(
                    Alert(
                        "StreamingQueryFailed",
                        name,
                        1,
                        0,
                        f"query {name} terminated with an exception: "
                        f"{exception_summary(q.exception)}",
                    )
                )
            fresh = q.freshness_seconds(now)
            if fresh is not None and fresh > t.freshness_seconds:
                out.append(
                    Alert(
                        "FeatureFreshnessStale",
                        name,
                        fresh,
                        t.freshness_seconds,
                        f"feature freshness of {name} is {fresh:.0f}s "
                        f"(> {t.freshness_seconds:.0f}s): newest event in the store is "
                        f"{q.newest_event_ts:%Y-%m-%d %H:%M:%S} UTC",
                    )
                )
            w = q.last_write
            if (
                w is not None
                and w.lag_p99_seconds is not None
                and w.lag_p99_seconds > t.lag_p99_seconds
            ):
                out.append(
                    Alert(
                        "EndToEndLagHigh",
                        name,
                        w.lag_p99_seconds,
                        t.lag_p99_seconds,
                        f"end-to-end lag p99 of {name} batch {w.batch_id} is "
                        f"{w.lag_p99_seconds:.1f}s (> {t.lag_p99_seconds:.0f}s)",
                    )
                )
            dropped, rows = q.recent_drop_rate(t.drop_rate_batches)
            if rows > 0 and dropped / rows > t.drop_rate:
                out.append(
                    Alert(
                        "WatermarkDropRateHigh",
                        name,
                        dropped / rows,
                        t.drop_rate,
                        f"{name} dropped {dropped} of {rows} input rows as too late "
                        f"({dropped / rows:.1%} > {t.drop_rate:.1%}) over the last "
                        f"{t.drop_rate_batches} batches",
                    )
                )
        for feature, value in sorted(self.registry.psi().items()):
            if value > t.psi:
                out.append(
                    Alert(
                        "FeatureDrift",
                        feature,
                        value,
                        t.psi,
                        f"feature {feature} drifted: PSI {value:.3f} > {t.psi}",
                    )
                )
        for view, (ratio, requested, missing) in sorted(self.registry.missing().items()):
            if ratio > t.missing_ratio:
                out.append(
                    Alert(
                        "MissingFeatures",
                        view,
                        ratio,
                        t.missing_ratio,
                        f"{missing} of {requested} requested {view} entities had no "
                        f"features ({ratio:.1%} > {t.missing_ratio:.1%})",
                    )
                )
        for view, count in sorted(self.registry.stale_keys().items()):
            if count > t.stale_keys:
                out.append(
                    Alert(
                        "StaleFeatureKeys",
                        view,
                        count,
                        t.stale_keys,
                        f"{count} expected {view} keys are stale",
                    )
                )
        return out

    def evaluate(self, now: datetime | None = None) -> list[Alert]:
        """Check the rules, log ``ALERT …`` for each new alert and ``RESOLVED …`` for each cleared
        one, and return the firing alerts."""
        current = {a.key: a for a in self.check(now)}
        with self._lock:
            for key, alert in current.items():
                if key not in self._firing:
                    self.log.warning(
                        "ALERT %s [%s]: %s — %s",
                        alert.name,
                        alert.subject,
                        alert.message,
                        ALERT_MEANINGS[alert.name],
                    )
            for key, alert in self._firing.items():
                if key not in current:
                    self.log.warning("RESOLVED %s [%s]", alert.name, alert.subject)
            self._firing = current
            return list(current.values())

    def firing(self) -> list[Alert]:
        """The alerts firing as of the last :meth:`evaluate`."""
        with self._lock:
            return list(self._firing.values())
