"""The prediction task and its labels, computed from the same CDC history as the features.

**Task** (``reorder_14d``): at a moment T, for a customer who has ordered before, predict
whether the customer places another order within the next 14 days.

* **Population at T**: the customers whose ``last_order_ts`` is known at T — a counted order
  in the 365-day recency horizon, in the changes committed at or before T. A customer the
  shop has never seen is not scored.
* **Label of (customer, T)**: 1 when an order of the customer was *created* (its first change
  committed) in ``(T, T + 14 days]`` and still counts at ``T + 14 days`` (exists, not
  cancelled, plausible date) in the changes committed by then; else 0. An order cancelled
  or deleted within the 14 days does not count; a back-dated order counts when it was
  entered in the interval, whatever its ``order_date``: it is the moment the shop learns of
  the order that the model has to predict.
* **Label time** = T + 14 days: the label is known then and not earlier. Every fact a label
  uses is committed after the feature time T (no peeking); the features of (customer, T) use
  only changes committed at or before T.
* **Times**: label rows are taken at 12:00 UTC every ``every_days`` days, from the first day
  that has a full 30-day window of history behind it (``warmup_days`` after the first commit)
  to the last T whose label is known by the end of the history.

Everything here is computed with the batch reference (:class:`~cdc_features.core.reference.
ReferenceLog`), independently of the stream whose served features the model will read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cdc_features.core.reference import ReferenceLog


@dataclass(frozen=True)
class Task:
    """The task's constants (see the module docstring)."""

    name: str = "reorder_14d"
    horizon_days: int = 14
    warmup_days: int = 31  # a full 30-day feature window of history behind the first T
    every_days: int = 3
    hour: int = 12

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.horizon_days)


TASK = Task()


@dataclass(frozen=True)
class LabelRow:
    """One training / evaluation example: a customer at feature time ``at``."""

    customer_id: int
    at: datetime  # feature time T: features as known at T
    label_time: datetime  # T + horizon: the label is known from then on
    label: int  # 1: ordered again within the horizon


def label_times(first_commit: datetime, last_commit: datetime, task: Task = TASK) -> list[datetime]:
    """The feature times T of the label rows: 12:00 UTC every ``every_days`` days from
    ``warmup_days`` after the first commit, while ``T + horizon`` is at or before the last."""
    first = first_commit.astimezone(UTC) + timedelta(days=task.warmup_days)
    t = datetime(first.year, first.month, first.day, task.hour, tzinfo=UTC)
    if t < first:
        t += timedelta(days=1)
    out = []
    while t + task.horizon <= last_commit:
        out.append(t)
        t += timedelta(days=task.every_days)
    return out


def commit_span(log: ReferenceLog) -> tuple[datetime, datetime]:
    """The first and the last commit time of the log's valid changes."""
    if not log.changes:
        raise ValueError("the log has no valid change event")
    commits = [c.commit for c in log.changes]
    return min(commits), max(commits)


def build_labels(log: ReferenceLog, times: Iterable[datetime], task: Task = TASK) -> list[LabelRow]:
    """The label rows of every T in ``times``: the population at T, each with its label
    (see the module docstring), ordered by T then customer."""
    created = log.first_commits()
    rows: list[LabelRow] = []
    for at in times:
        known = log.customer_features(at, known_at=at)
        population = sorted(c for c, f in known.items() if f.last_order_ts is not None)
        until = at + task.horizon
        ordered_again = {
            order.customer_id
            for order_id, order in log.counted_orders(known_at=until).items()
            if at < created[order_id] <= until
        }
        rows += [LabelRow(c, at, until, int(c in ordered_again)) for c in population]
    return rows


def label_rate(rows: Iterable[LabelRow]) -> float:
    """Share of positive labels (0.0 for no rows)."""
    labels = [r.label for r in rows]
    return sum(labels) / len(labels) if labels else 0.0
