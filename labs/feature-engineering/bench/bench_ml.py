"""The ML loop's results: point-in-time vs naive training data, offline vs served metrics.

Runs :func:`cdc_features.ml.loop.run_loop` once on the loop's generated history
(:data:`cdc_features.ml.loop.HISTORY`: seed 2026, 6,000 change events, 90 simulated days) with
a private redis-server and a fresh Feast repository, on Spark ``local[2]``, and writes

* ``bench/results/ml.md`` — command, date, machine load, seed, task, label rate, the metric
  table, the skew checks and the run time (``tests/test_ml_loop.py`` checks that its table is
  the one the code produces);
* ``fixtures/model_reorder_14d.json`` — the model trained on the point-in-time set, which
  ``npm run lab -- --score`` uses.

Usage: ``npm run bench:ml`` (= ``bash scripts/bench.sh ml``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from cdc_features import LAB_DIR
from cdc_features.job.spark import get_spark
from cdc_features.lab.generator import generate_log
from cdc_features.ml.loop import (
    HISTORY,
    NAIVE,
    PIT,
    LoopResult,
    metrics_table,
    run_loop,
    served_equal_to_training,
)
from cdc_features.monitoring import MetricsRegistry
from cdc_features.testing import RedisServer

RESULTS = LAB_DIR / "bench" / "results" / "ml.md"
MODEL = LAB_DIR / "fixtures" / "model_reorder_14d.json"


def report(result: LoopResult, load_start: float, load_end: float) -> str:
    h, task, split = HISTORY, result.task, result.split
    rows = result.rows
    times = sorted({r.at for r in rows})
    customers = len({r.customer_id for r in rows})
    positives = sum(r.label for r in rows)
    equal, served = served_equal_to_training(result)
    naive_equal, _ = served_equal_to_training(result, NAIVE)
    pit, naive = result.metrics[PIT], result.metrics[NAIVE]
    s = result.seconds
    return "\n".join(
        [
            "# ML loop: point-in-time vs naive training data, offline vs served",
            "",
            "- Command: `npm run bench:ml` (`labs/feature-engineering/bench/bench_ml.py`)",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Spark `local[2]`, shuffle "
            "partitions 2; a private redis-server; Feast 0.67 (Redis online store, Parquet "
            "offline store). The machine has 2 cores shared with other work (load average "
            f"{load_start:.1f} at the start, {load_end:.1f} at the end).",
            f"- History: {h.n_events:,} generated Debezium change events "
            f"(`generate_log({h.seed}, {h.n_events}, days={h.days:g}, "
            f"customer_lifetime_days={h.customer_lifetime_days:g}, schemas=False)`: seed "
            f"{h.seed}, {h.days:g} simulated days, customers who join, order at their own rate "
            f"and leave after an exponential lifetime of {h.customer_lifetime_days:g} days on "
            "average).",
            f"- Task `{task.name}`: will a customer who has ordered before place another order "
            f"within {task.horizon_days} days (ML.md). {len(times)} label times, 12:00 UTC "
            f"every {task.every_days} days from {times[0]:%Y-%m-%d} to {times[-1]:%Y-%m-%d}; "
            f"{len(rows):,} rows of {customers} customers; **label rate "
            f"{positives / len(rows):.1%}** ({positives:,} positive).",
            f"- Time split: test period from {split.test_from:%Y-%m-%d} (the last "
            f"{len({r.at for r in split.test})} label times, {len(split.test):,} rows); "
            "training rows are those whose label was "
            f"known by then ({len(split.train):,} rows). Model: standardized logistic "
            "regression (scikit-learn 1.9.1, L2, C = 1, lbfgs) on the 4-number vector of "
            "`cdc_features.ml.vectors`.",
            "",
            "## Offline vs served",
            "",
            "*Offline*: each model scored on its own training set's test rows. *Served*: the "
            "same model scored on the vectors the scorer read from the online store at each "
            "label time while the stream replayed the history. AUC: higher is better (0.5 = "
            "chance); log loss: lower is better.",
            "",
            metrics_table(result),
            "",
            f"- Point-in-time: offline and served differ by {abs(pit.offline_auc - pit.served_auc):.3f} "
            f"AUC — every served vector equals its training row ({equal:,} of {served:,}).",
            f"- Naive: offline AUC {naive.offline_auc - pit.offline_auc:+.3f} above the "
            f"point-in-time model, served {naive.offline_auc - naive.served_auc:.3f} below its "
            f"own offline number; served log loss {naive.served_log_loss / pit.served_log_loss:.1f}× "
            f"the point-in-time model's. Its training rows equal the served vectors in "
            f"{naive_equal:,} of {served:,} rows.",
            f"- Skew monitor: {len(result.skew.mismatches)} of {result.skew.checked} sampled "
            "served vectors differ from the batch reference at their read time "
            f"(`cdc_features_skew_ratio` = {result.skew.ratio:g}).",
            "",
            "## Run time",
            "",
            f"Total {s['total']:.0f} s: labels {s['labels']:.1f} s, stream "
            f"{s['stream']:.0f} s ({len(times) + 1} micro-batches with Feast pushes and "
            f"{len(times)} served reads), training sets {s['training sets']:.1f} s, training "
            f"and evaluation {s['training and evaluation']:.1f} s.",
            "",
            f"Model of the point-in-time set: `fixtures/{MODEL.name}` (used by "
            "`npm run lab -- --score`).",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    records = generate_log(HISTORY.seed, HISTORY.n_events, **HISTORY.generator_options())
    work = Path(tempfile.mkdtemp(prefix="bench_ml_"))
    spark = get_spark("cdc-features-bench-ml")
    try:
        with RedisServer(work / "redis") as server:
            result = run_loop(
                spark,
                records,
                work_dir=work / "loop",
                redis_url=server.url,
                registry=MetricsRegistry(),
            )
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    text = report(result, load_start, os.getloadavg()[0])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    result.models[PIT].save(MODEL)
    print(text)
    print(f"wrote {RESULTS} and {MODEL}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
