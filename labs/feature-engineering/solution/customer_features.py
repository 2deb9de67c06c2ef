"""Exercise «Customer Features Pipeline»: one solution of the two functions of
``starter/customer_features.py`` (look at it after your own check passes).

``npm run lab:check -- --solution`` checks this file; ``tests/test_exercise_mutations.py``
checks that every classic wrong variant of it (``cdc_features.lab.exercise_mutations``)
fails with a message that names the mistake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

WINDOW_DAYS = 30


def build_customer_tiles(order_events: DataFrame) -> DataFrame:
    """Daily tiles of a customer's orders: the streaming part (see the starter's docstring)."""
    # TODO 1: one version row per change event, and a retraction where the order was
    deleted = F.col("op") == "d"
    moved = (F.col("op") == "u") & (
        (F.col("before_customer_id") != F.col("customer_id"))
        | (F.to_date("before_order_ts") != F.to_date("order_ts"))
    )
    active = (F.col("status") != "cancelled").alias("active")
    after = F.struct("customer_id", "order_ts", "order_id", "lsn", active, "amount")
    retraction = F.struct(
        F.col("before_customer_id").alias("customer_id"),
        F.col("before_order_ts").alias("order_ts"),
        "order_id",
        "lsn",
        F.lit(False).alias("active"),
        F.lit(None).cast("decimal(10,2)").alias("amount"),
    )
    versions = F.array(F.when(~deleted, after), F.when(deleted | moved, retraction))
    rows = order_events.select(F.explode(F.filter(versions, lambda v: v.isNotNull())).alias("v"))
    # TODO 2: watermark and daily tiles
    tiles = (
        rows.select("v.*")
        .withWatermark("order_ts", f"{WINDOW_DAYS} days")
        .groupBy("customer_id", F.window("order_ts", "1 day"))
        .agg(
            F.collect_list(F.struct("order_id", "lsn", "active", "amount", "order_ts")).alias("vs")
        )
    )
    # TODO 3: the newest version of each order, the counted ones, the tile's absolute values
    distinct = F.array_distinct(F.col("vs"))

    def newer(v: Column) -> Column:  # another version of the same order with a greater lsn
        return F.exists(distinct, lambda o: (o.order_id == v.order_id) & (o.lsn > v.lsn))

    newest = F.filter(distinct, lambda v: ~newer(v))
    counted = F.filter(newest, lambda v: v["active"])
    zero = F.lit(0).cast("decimal(12,2)")
    return tiles.select(
        "customer_id",
        F.to_date("window.start").alias("day"),
        F.size(counted).alias("order_count"),
        F.aggregate(counted, zero, lambda s, v: (s + v["amount"]).cast("decimal(12,2)")).alias(
            "total_spend"
        ),
        F.array_max(F.transform(counted, lambda v: v["order_ts"])).alias("last_order_ts"),
    )


def customer_features_at(tiles: DataFrame, at: datetime) -> DataFrame:
    """The 30-day features at read time ``at`` (UTC), from the stored daily tiles."""
    # TODO 4: the 30 tiles ending with at's day, summed; the average rounded half-even
    last_day = at.astimezone(UTC).date()
    first_day = last_day - timedelta(days=WINDOW_DAYS - 1)
    in_window = tiles.where(F.col("day").between(F.lit(first_day), F.lit(last_day)))
    totals = in_window.groupBy("customer_id").agg(
        F.sum("order_count").cast("int").alias("order_count_30d"),
        F.sum("total_spend").cast("decimal(12,2)").alias("total_spend_30d"),
    )
    average = F.bround(F.col("total_spend_30d") / F.col("order_count_30d"), 2)
    return totals.withColumn(
        "avg_order_value_30d",
        F.when(F.col("order_count_30d") > 0, average.cast("decimal(12,2)")),
    )
