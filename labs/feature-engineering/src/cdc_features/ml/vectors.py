"""The model's input vector, made from a customer's features the same way in training and
in serving (one function, so the two cannot drift apart).

0. ``order_count_30d`` — as read;
1. ``log_total_spend_30d`` — ``ln(1 + total_spend_30d)``;
2. ``log_avg_order_value_30d`` — ``ln(1 + avg_order_value_30d)``, 0 without orders in the
   window;
3. ``log_days_since_last_order`` — ``ln(1 + days)``, days clipped to 0…365; no order in the
   recency horizon counts as 366 days.

Money is ``Decimal`` in the features and becomes a float only here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.spec import RECENCY_HORIZON_DAYS

VECTOR_FEATURES: tuple[str, ...] = (
    "order_count_30d",
    "log_total_spend_30d",
    "log_avg_order_value_30d",
    "log_days_since_last_order",
)

Vector = tuple[float, ...]


def _log_money(value: Decimal | None) -> float:
    return math.log1p(float(value)) if value is not None else 0.0


def vector(features: CustomerFeatures) -> Vector:
    """The model input of one customer's features (see the module docstring)."""
    days = features.days_since_last_order
    clipped = RECENCY_HORIZON_DAYS + 1 if days is None else min(max(days, 0), RECENCY_HORIZON_DAYS)
    return (
        float(features.order_count_30d),
        _log_money(features.total_spend_30d),
        _log_money(features.avg_order_value_30d),
        math.log1p(clipped),
    )


def vectors(features: Mapping[int, CustomerFeatures]) -> dict[int, Vector]:
    """:func:`vector` of every customer of a read."""
    return {cid: vector(f) for cid, f in features.items()}
