"""Training/serving skew: do the features the model is served equal the features it was
trained on?

The training rows are point-in-time: each holds the definitions evaluated over the changes
committed at or before its time. So a served read at time T is right exactly when it equals
the batch reference recomputed over the changes committed by T (at a T the stream has caught
up with: in the lab, after the micro-batch that processed them; in production, a T behind the
stream's processed commit time). The monitor keeps a bounded uniform sample of served reads
(:meth:`SkewMonitor.observe`, e.g. as a :class:`~cdc_features.ml.scorer.Scorer` observer),
recomputes the reference for the sampled times (:meth:`SkewMonitor.check`) and exports the
share of sampled vectors that differ as ``cdc_features_skew_ratio`` (alert
``TrainingServingSkew`` in ``monitoring/alert_rules.yml``).

A lost micro-batch, a sink that stopped writing, a stale or partly flushed store, a read-time
definition that drifted from the training one — each shows up as mismatches.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.reference import ReferenceLog
from cdc_features.monitoring.registry import MetricsRegistry
from cdc_features.stores.base import zero_customer

#: the TrainingServingSkew threshold of monitoring/alert_rules.yml (a test keeps them equal)
SKEW_ALERT = 0.01


@dataclass(frozen=True)
class Mismatch:
    """A served read that differs from the reference at the same time."""

    customer_id: int
    at: datetime
    served: CustomerFeatures
    expected: CustomerFeatures


@dataclass(frozen=True)
class SkewCheck:
    """The result of one check: how many sampled reads, which of them differ."""

    checked: int
    mismatches: tuple[Mismatch, ...]

    @property
    def ratio(self) -> float:
        """Share of checked reads that differ from the reference (0.0 when none checked)."""
        return len(self.mismatches) / self.checked if self.checked else 0.0


class SkewMonitor:
    """A uniform sample (reservoir, at most ``sample_size``) of served customer reads,
    checked against the batch reference at the times they were read."""

    def __init__(
        self,
        registry: MetricsRegistry | None = None,
        *,
        view: str = "customer_features",
        sample_size: int = 200,
        seed: int = 0,
    ) -> None:
        if sample_size < 1:
            raise ValueError("sample_size must be at least 1")
        self.registry = registry
        self.view = view
        self.sample_size = sample_size
        self._rng = random.Random(seed)
        self._seen = 0
        self._sample: list[tuple[datetime, CustomerFeatures]] = []

    def observe(self, at: datetime, served: Mapping[int, CustomerFeatures]) -> None:
        """Offer every read of one request (customer → features served at ``at``)."""
        for _, features in sorted(served.items()):
            self._seen += 1
            if len(self._sample) < self.sample_size:
                self._sample.append((at, features))
            else:
                j = self._rng.randrange(self._seen)
                if j < self.sample_size:
                    self._sample[j] = (at, features)

    @property
    def sampled(self) -> int:
        return len(self._sample)

    def check(self, log: ReferenceLog) -> SkewCheck:
        """Compare the sample with the reference over ``log`` at each sampled read time (as
        known then: the changes committed by it); record the share of mismatches; start a new
        sample."""
        by_time: dict[datetime, list[CustomerFeatures]] = {}
        for at, features in self._sample:
            by_time.setdefault(at, []).append(features)
        mismatches = []
        for at, served in sorted(by_time.items()):
            expected = log.customer_features(at, known_at=at)
            for f in served:
                want = expected.get(f.customer_id, zero_customer(f.customer_id))
                if f != want:
                    mismatches.append(Mismatch(f.customer_id, at, f, want))
        result = SkewCheck(len(self._sample), tuple(mismatches))
        if self.registry is not None:
            self.registry.set_skew(self.view, result.ratio, result.checked)
        self._sample, self._seen = [], 0
        return result
