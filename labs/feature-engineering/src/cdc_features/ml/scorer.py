"""Online scoring: read the customers' features from the store at request time, make the
model's vectors, return the predictions.

The read is one batched call (:func:`read_customer_features`, the only place the scorer
touches the store: ``FeatureReader.customer_features`` reads up to 200 customers per Redis
round trip); the vectors come from :func:`cdc_features.ml.vectors.vector` — the function
the training rows went through — so a served vector and the training row of the same
customer and time are equal when the store is right (``tests/test_ml_loop.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.ml.model import LinearModel
from cdc_features.ml.vectors import Vector, vector
from cdc_features.stores.base import FeatureReader

#: called with (read time, what the store returned) after every read (e.g. the skew monitor)
ReadObserver = Callable[[datetime, Mapping[int, CustomerFeatures]], None]


def read_customer_features(
    reader: FeatureReader, ids: Iterable[int], at: datetime
) -> dict[int, CustomerFeatures]:
    """The features of ``ids`` at ``at``, in one batched read of the store."""
    return reader.customer_features(ids, at)


@dataclass(frozen=True)
class Served:
    """What the model is given for one customer at one time."""

    customer_id: int
    at: datetime
    features: CustomerFeatures
    vector: Vector


@dataclass(frozen=True)
class Score:
    """One prediction and exactly what the model was given."""

    served: Served
    probability: float


class Scorer:
    """Reads features from ``reader`` at request time and scores them with ``model``."""

    def __init__(
        self,
        reader: FeatureReader,
        model: LinearModel | None = None,
        *,
        observers: Iterable[ReadObserver] = (),
    ) -> None:
        self.reader = reader
        self.model = model
        self.observers = list(observers)

    def read(self, ids: Iterable[int], at: datetime) -> dict[int, Served]:
        """The model inputs of ``ids`` at ``at`` (a customer the store does not know reads
        as zeros); every observer sees the read."""
        features = read_customer_features(self.reader, ids, at)
        for observe in self.observers:
            observe(at, features)
        return {cid: Served(cid, at, f, vector(f)) for cid, f in sorted(features.items())}

    def score(self, ids: Iterable[int], at: datetime) -> dict[int, Score]:
        """Predictions for ``ids`` at ``at``."""
        if self.model is None:
            raise ValueError("this scorer has no model: Scorer(reader, model)")
        model = self.model
        return {
            cid: Score(served, model.probability(served.vector))
            for cid, served in self.read(ids, at).items()
        }
