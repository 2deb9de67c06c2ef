"""The real outputs the lesson quotes: the pitfalls (naive vs lab), a monitoring sample, the
training-data demo and the exercise's console, each produced by running the lab's code on
real PySpark (and, for training data, real Redis and Feast).

``python -m cdc_features.lab.lesson_outputs --write`` (``scripts/refresh-outputs.sh``, part of
``npm run lesson:refresh``) writes them to ``lesson_outputs/``; without ``--write`` it prints
them. ``tests/test_lesson_outputs.py`` re-runs them and fails when a committed output drifts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from cdc_features import LAB_DIR
from cdc_features.core.debezium_json import Record
from cdc_features.core.envelope import parse_order_events
from cdc_features.core.features import compute_customer_features
from cdc_features.core.spec import CUSTOMER_QUERY
from cdc_features.lab.exercise import SOLUTION_FILE, check, console_output, load_starter
from cdc_features.lab.exercise_mutations import MUTATIONS, mutate
from cdc_features.lab.generator import generate_log
from cdc_features.lab.pitfalls import DEMOS
from cdc_features.lab.stories import StoryLog, exercise_log, order, utc
from cdc_features.lab.training_data import training_data_demo
from cdc_features.monitoring.alerts import ConsoleAlerts
from cdc_features.monitoring.drift import psi, psi_level
from cdc_features.monitoring.listener import FeatureListener
from cdc_features.monitoring.metrics import metrics_text
from cdc_features.monitoring.observe import observe_written_batch
from cdc_features.monitoring.registry import MetricsRegistry
from cdc_features.testing import FileStream

OUTPUT_DIR = LAB_DIR / "lesson_outputs"


def _order_amounts(records: Iterable[Record]) -> list[float]:
    amounts = []
    for record in records:
        if record["value"] is None or not str(record["topic"]).endswith(".orders"):
            continue
        try:
            value = json.loads(record["value"])
        except json.JSONDecodeError:
            continue  # the generator's malformed messages
        payload = value.get("payload", value) if isinstance(value, dict) else None
        after = payload.get("after") if isinstance(payload, dict) else None
        if isinstance(after, dict) and after.get("total_amount") is not None:
            amounts.append(float(after["total_amount"]))
    return amounts


def monitoring_demo(spark: SparkSession) -> str:
    """The exercise log replayed as a stream with the lab's monitoring attached.

    The registry's clock is set by hand, so freshness, end-to-end lag and the alerts are exact;
    Spark's own timings (rates, durations) vary by machine and are not printed. The metrics
    lines are what ``/metrics`` serves (``prometheus_client``); the alerts are the console
    summary of ``monitoring/alert_rules.yml``.
    """
    clock = [utc("2026-04-04T09:05:30")]
    registry = MetricsRegistry(clock=lambda: clock[0])
    deliveries = exercise_log()
    late = StoryLog(start_lsn=25_000_000)
    late.create(order(15, 102, "2025-01-10T12:00:00", "75.00"), at="2026-04-04T09:04:00")
    late.create(order(16, 101, "2026-04-04T09:05:00", "12.50"))
    deliveries.append(late.records)

    listener = FeatureListener(registry)
    spark.streams.addListener(listener)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="monitoring-sample-") as tmp,
            FileStream(spark, Path(tmp)) as stream,
        ):
            for delivery in deliveries:
                stream.add(delivery)
            tiles = compute_customer_features(parse_order_events(stream.source()).events)

            def sink(batch_df: DataFrame, batch_id: int) -> None:
                observe_written_batch(
                    batch_df,
                    batch_id,
                    query=CUSTOMER_QUERY,
                    event_time_col="last_order_ts",
                    registry=registry,
                )

            query = stream.start(
                CUSTOMER_QUERY, tiles, sink, available_now=True, no_data_batches=False
            )
            query.awaitTermination()
            registry.wait_for_batch(CUSTOMER_QUERY, len(deliveries) - 1)
    finally:
        spark.streams.removeListener(listener)

    baseline = _order_amounts(generate_log(1, 3000, decimal_mode="string"))
    same_kind = _order_amounts(generate_log(2, 3000, decimal_mode="string"))
    unscaled = [a * 100 for a in same_kind]  # a consumer that ignored the decimal scale
    stable_psi, drifted_psi = psi(baseline, same_kind), psi(baseline, unscaled)
    registry.set_psi("order_amount", drifted_psi)

    alerts: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            alerts.append(record.getMessage())

    logger = logging.getLogger("cdc_features.monitoring.lesson_sample")
    logger.propagate = False
    logger.addHandler(_Collect())
    written_at = clock[0]
    clock[0] = utc("2026-04-04T09:15:30")  # ten minutes later, nothing new has arrived
    console = ConsoleAlerts(registry, logger=logger)
    console.evaluate()

    stats = registry.query(CUSTOMER_QUERY)
    write = stats.last_write
    assert write is not None and write.lag_p99_seconds is not None
    shown = (
        'cdc_features_rows_dropped_by_watermark_total{query="customer_features"}',
        'cdc_features_freshness_seconds{query="customer_features"}',
        'cdc_features_end_to_end_lag_seconds_bucket{le="10.0",query="customer_features"}',
        'cdc_features_end_to_end_lag_seconds_bucket{le="30.0",query="customer_features"}',
        'cdc_features_end_to_end_lag_seconds_bucket{le="+Inf",query="customer_features"}',
        'cdc_features_psi{feature="order_amount"}',
    )
    exported = [
        line for line in metrics_text(registry.prometheus).splitlines() if line.startswith(shown)
    ]
    lines = [
        "Monitoring sample: the exercise log replayed as a stream (5 deliveries, the last",
        "one with an order dated 2025-01-10, older than the 365-day watermark)",
        "",
        f"customer_features: {stats.batches} batches, {stats.input_rows_total} input rows, "
        f"{stats.rows_dropped_total} dropped by watermark, "
        f"{stats.rows_written_total} tiles written",
        f"  newest event in the store {stats.newest_event_ts:%Y-%m-%d %H:%M:%S} UTC; "
        f"last batch written {written_at:%H:%M:%S}, lag p99 {write.lag_p99_seconds:.0f}s",
        f"PSI order_amount, a second generated log vs baseline: {stable_psi:.3f} "
        f"({psi_level(stable_psi)})",
        f"PSI order_amount, same log read without the scale: {drifted_psi:.3f} "
        f"({psi_level(drifted_psi)})",
        "",
        f"GET /metrics at {clock[0]:%H:%M:%S} (a few of its lines):",
        *(f"  {line}" for line in exported),
        "",
        "Alerts (console summary of monitoring/alert_rules.yml):",
        *(f"  {line}" for line in alerts),
        "  Prometheus only (rates over time): "
        + ", ".join(r.name for r in console.prometheus_only),
    ]
    return "\n".join(lines) + "\n"


def exercise_check_demo(spark: SparkSession, mutation_name: str = "no_retraction") -> str:
    """What the exercise checker prints for a classic wrong solution: the lab's solution with
    one mutation of :mod:`cdc_features.lab.exercise_mutations` (by default: no retraction)."""
    mutation = next(m for m in MUTATIONS if m.name == mutation_name)
    with tempfile.TemporaryDirectory(prefix="exercise-demo-") as tmp:
        path = Path(tmp) / "customer_features.py"
        path.write_text(mutate(SOLUTION_FILE.read_text(encoding="utf-8"), mutation), "utf-8")
        _, text = check(spark, load_starter(path), f"a solution with the mistake {mutation.name}")
    return text


def render_all(spark: SparkSession) -> dict[str, str]:
    """Every output the lesson quotes: ``{output name: text}``."""
    outputs = {name: demo(spark) for name, demo in DEMOS.items()}
    outputs["monitoring_sample"] = monitoring_demo(spark)
    outputs["training_data"] = training_data_demo(spark)
    outputs["lab_console"] = console_output(spark)
    outputs["lab_check"] = exercise_check_demo(spark)
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cdc_features.lab.lesson_outputs",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"write the outputs to {OUTPUT_DIR} instead of printing them",
    )
    args = parser.parse_args(argv)
    from cdc_features.job.spark import get_spark

    spark = get_spark("cdc-features-lesson-outputs")
    try:
        outputs = render_all(spark)
    finally:
        spark.stop()
    for name, text in outputs.items():
        if args.write:
            OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
            (OUTPUT_DIR / f"{name}.txt").write_text(text, encoding="utf-8")
            print(f"wrote {OUTPUT_DIR / (name + '.txt')}")
        else:
            sys.stdout.write(f"== {name}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
