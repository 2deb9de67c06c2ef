"""Exercise «Customer Features Pipeline»: your file.

Build the streaming part and the read part of three customer features from the Debezium
change events of ``inventory.orders``:

- ``order_count_30d``     — counted orders of the customer with ``order_date`` in the 30 UTC
                            days ending with the read time's day;
- ``total_spend_30d``     — the sum of their latest ``total_amount`` (0.00 when none);
- ``avg_order_value_30d`` — total / count rounded half-even to 2 places (null when none).

A counted order is one whose latest version (max ``lsn``) is not a delete and whose
status is not ``cancelled``; it counts for the customer and the day of that version. The
same event delivered twice must change nothing.

The events you get are in ``exercise_log.jsonl`` next to this file (one Debezium message
per line, with its delivery = micro-batch number): eight customers, one story each —
updates, a cancellation, a delete, an order moved to another customer and day, a
duplicate delivery, a back-dated order and an event far behind the watermark.

Fill in the two functions below (the TODOs), then:

    npm run lab:check                  # compare with the reference; names your mistake
    npm run lab:check -- --console     # watch the features update per micro-batch

The streaming wiring (``run_console``) is complete: read it, it is the pipeline you build.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: F401  (you will need it)

from cdc_features.core.envelope import parse_order_events
from cdc_features.job.spark import get_spark
from cdc_features.lab.exercise import commit_time, load_exercise_log
from cdc_features.testing import RAW_SCHEMA, write_deliveries

WINDOW_DAYS = 30


def build_customer_tiles(order_events: DataFrame) -> DataFrame:
    """Daily tiles of a customer's orders: the streaming part.

    Input: parsed order events (``parse_order_events``): ``order_id, customer_id, order_ts,
    status, amount, before_customer_id, before_order_ts, ..., op, lsn, commit_ts``. For a
    delete (``op = 'd'``) the after-fields are null and the ``before_*`` fields are set.

    Output, one row per (customer, UTC day) that changed, with ABSOLUTE values:
    ``customer_id long, day date, order_count int, total_spend decimal(12,2),
    last_order_ts timestamp`` (null when the tile has no counted order).
    """
    # TODO 1. Version rows: each change event gives the version of the order it writes into
    #   a tile — customer_id, order_ts, order_id, lsn, active (boolean), amount:
    #   - its after image (not for a delete): active = status != 'cancelled';
    #   - a retraction where the order was: for a delete, and for an update that moved
    #     the order to another customer or UTC day, the before image (before_customer_id,
    #     before_order_ts) with active = false and amount null.
    #   (Hint: F.array of two F.when(...) structs, then F.explode of the non-null ones.)
    #
    # TODO 2. Watermark and daily tiles:
    #   .withWatermark("order_ts", f"{WINDOW_DAYS} days")
    #   .groupBy("customer_id", F.window("order_ts", "1 day"))
    #   .agg(F.collect_list(F.struct("order_id", "lsn", "active", "amount", "order_ts")))
    #   (one aggregation only: Spark cannot chain a second one in Update mode).
    #
    # TODO 3. A projection after the aggregation: in each tile keep, per order, the version
    #   with the max lsn (hints: a redelivered event is an identical struct, F.array_distinct
    #   removes it; then F.filter over the list with F.exists: "no version of the same order
    #   with a greater lsn"), keep the active ones, then
    #   order_count = their number, total_spend = the sum of their amounts (0.00 when none),
    #   last_order_ts = the max of their order_ts, day = window.start as a date.
    #   Keep every tile row, also one left with no counted order (order_count 0): the store
    #   must learn that the tile emptied.
    raise NotImplementedError("build_customer_tiles: TODO 1–3 in starter/customer_features.py")


def customer_features_at(tiles: DataFrame, at: datetime) -> DataFrame:
    """The 30-day features at read time ``at`` (UTC), from the stored daily tiles.

    Output: ``customer_id, order_count_30d, total_spend_30d, avg_order_value_30d``.
    The window is the 30 UTC days ending with ``at``'s day: ``day(at) - 29 .. day(at)``.
    """
    # TODO 4. Keep the tiles of the 30 days ending with at's day, group by customer_id,
    #   sum order_count and total_spend; avg = total / count rounded half-even
    #   (F.bround, not F.round) to 2 places, null when the count is 0.
    raise NotImplementedError("customer_features_at: TODO 4 in starter/customer_features.py")


# ---------------------------------------------------------------------------
# The pipeline: CDC files → parse → your tiles → a console "feature store".
# ---------------------------------------------------------------------------


class Implementation(Protocol):
    def build_customer_tiles(self, order_events: DataFrame) -> DataFrame: ...

    def customer_features_at(self, tiles: DataFrame, at: datetime) -> DataFrame: ...


class _ThisFile:
    build_customer_tiles = staticmethod(build_customer_tiles)
    customer_features_at = staticmethod(customer_features_at)


THIS_FILE = _ThisFile()


def run_console(
    spark: SparkSession, impl: Implementation = THIS_FILE, workdir: Path | None = None
) -> None:
    """Replay the exercise's CDC log, one delivery per micro-batch, and print the features."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="customer-features-") as tmp:
            return run_console(spark, impl, Path(tmp))
    deliveries = load_exercise_log()  # exercise_log.jsonl, next to this file
    write_deliveries(deliveries, workdir / "input")
    store: dict[tuple[Any, Any], tuple[Any, ...]] = {}  # the console "feature store"
    errors: list[Exception] = []

    def print_features(batch_df: DataFrame, batch_id: int) -> None:
        try:
            _print_features(batch_df, batch_id)
        except Exception as error:  # re-raised unwrapped once the query has stopped
            errors.append(error)
            raise

    def _print_features(batch_df: DataFrame, batch_id: int) -> None:
        # A console sink for a lesson: tiny batches, so collecting them is fine here.
        # A real sink writes from the executors (see write_to_feature_store).
        tiles = batch_df.select("customer_id", "day", "order_count", "total_spend", "last_order_ts")
        updated = tiles.collect()
        for row in updated:
            store[(row["customer_id"], row["day"])] = tuple(row)
        delivery = [r for r in deliveries[batch_id] if r["value"] is not None]
        at = max(commit_time(r) for r in delivery)  # the replay clock: newest commit
        print(
            f"-- micro-batch {batch_id}: {len(delivery)} change events, "
            f"{len(updated)} tiles updated, features at {at:%Y-%m-%dT%H:%MZ}"
        )
        current = spark.createDataFrame(list(store.values()), tiles.schema)
        features = impl.customer_features_at(current, at).orderBy("customer_id").collect()
        print("   customer_id  order_count_30d  total_spend_30d  avg_order_value_30d")
        for f in features:
            avg = "null" if f["avg_order_value_30d"] is None else f"{f['avg_order_value_30d']:.2f}"
            print(
                f"   {f['customer_id']:>11}  {f['order_count_30d']:>15}"
                f"  {f['total_spend_30d']:>15.2f}  {avg:>19}"
            )

    raw = (
        spark.readStream.schema(RAW_SCHEMA)
        .option("maxFilesPerTrigger", 1)  # one delivery per micro-batch
        .json(str(workdir / "input"))
    )
    events = parse_order_events(raw).events
    tiles = impl.build_customer_tiles(events)
    query = (
        tiles.writeStream.outputMode("update")
        .option("checkpointLocation", str(workdir / "checkpoint"))
        .foreachBatch(print_features)
        .trigger(availableNow=True)
    )
    with _only_batches_with_data(spark):  # print once per delivery, no state-eviction batches
        running = query.start()
    try:
        running.awaitTermination()
    except Exception:
        if not errors:
            raise
    if errors:
        raise errors[0]


@contextmanager
def _only_batches_with_data(spark: SparkSession) -> Iterator[None]:
    key = "spark.sql.streaming.noDataMicroBatches.enabled"
    previous = spark.conf.get(key)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, previous)


def main() -> int:
    spark = get_spark("customer-features-exercise")
    try:
        run_console(spark)
    except NotImplementedError as error:
        print(f"Not implemented yet: {error}. Fill in the TODOs, then run the check.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
