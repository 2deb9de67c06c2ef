"""Classic wrong solutions of the exercise, as one-line mutations of the lab's solution.

Each :class:`Mutation` replaces one exact piece of ``solution/customer_features.py`` and
names the mistake (a key of :data:`cdc_features.lab.exercise.MISTAKES`) the checker must
report first for it. ``tests/test_exercise_mutations.py`` applies every mutation, runs the
checker on the result and requires it to fail with that mistake named; the unmutated
solution must pass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    """A wrong solution: ``old`` (found exactly once in the solution) replaced by ``new``."""

    name: str
    mistake: str
    wrong: str  # the wrong solution, in words
    old: str
    new: str


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "no_retraction",
        "no_retraction",
        "only a delete writes a retraction: an order moved to another customer or day "
        "stays counted where it was",
        old="F.when(deleted | moved, retraction)",
        new="F.when(deleted, retraction)",
    ),
    Mutation(
        "count_events",
        "events_not_orders",
        "every active change event of a tile counted, not the newest version per order",
        old='counted = F.filter(newest, lambda v: v["active"])',
        new='counted = F.filter(distinct, lambda v: v["active"])',
    ),
    Mutation(
        "tumbling_30_days",
        "tumbling_window",
        'tiles of window("order_ts", "30 days") read as the last 30 days',
        old='F.window("order_ts", "1 day")',
        new='F.window("order_ts", "30 days")',
    ),
    Mutation(
        "processing_time",
        "processing_time",
        "the time the change arrived (commit_ts) taken as the order's time",
        old='after = F.struct("customer_id", "order_ts",',
        new='after = F.struct("customer_id", F.col("commit_ts").alias("order_ts"),',
    ),
    Mutation(
        "decimal_as_double",
        "money_as_float",
        "amounts turned into floating-point numbers and summed as double",
        old='F.aggregate(counted, zero, lambda s, v: (s + v["amount"]).cast("decimal(12,2)"))',
        new='F.aggregate(counted, F.lit(0.0), lambda s, v: s + v["amount"].cast("double"))',
    ),
    Mutation(
        "duplicates_counted",
        "duplicates_counted",
        "no deduplication: a redelivered event is a second version with the same lsn",
        old='distinct = F.array_distinct(F.col("vs"))',
        new='distinct = F.col("vs")',
    ),
    Mutation(
        "cancellation_ignored",
        "cancellation_ignored",
        "every version is active: a cancelled order is still counted",
        old='(F.col("status") != "cancelled").alias("active")',
        new='F.lit(True).alias("active")',
    ),
    Mutation(
        "emptied_tile_dropped",
        "emptied_tile",
        "tiles without a counted order are filtered out instead of written as 0",
        old="return tiles.select(",
        new="return tiles.where(F.size(counted) > 0).select(",
    ),
    Mutation(
        "no_watermark",
        "no_watermark",
        "no watermark: the aggregation keeps every day's state forever",
        old='        .withWatermark("order_ts", f"{WINDOW_DAYS} days")\n',
        new="",
    ),
    Mutation(
        "one_day_watermark",
        "short_watermark",
        "a 1-day watermark for a 30-day feature",
        old='f"{WINDOW_DAYS} days"',
        new='"1 day"',
    ),
    Mutation(
        "read_every_tile",
        "read_window",
        "the read sums every stored tile up to T, not the last 30 days",
        old='.where(F.col("day").between(F.lit(first_day), F.lit(last_day)))',
        new='.where(F.col("day") <= F.lit(last_day))',
    ),
    Mutation(
        "half_up_rounding",
        "rounding",
        "the average rounded with F.round (half-up)",
        old="F.bround(",
        new="F.round(",
    ),
)


def mutate(source: str, mutation: Mutation) -> str:
    """``source`` with the mutation applied; ``old`` must occur exactly once."""
    found = source.count(mutation.old)
    if found != 1:
        raise ValueError(
            f"mutation {mutation.name!r}: {mutation.old!r} occurs {found} times in the solution"
        )
    return source.replace(mutation.old, mutation.new)
