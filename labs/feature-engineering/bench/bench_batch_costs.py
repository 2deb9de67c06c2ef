"""Fixed cost of a small micro-batch, per query (``bash scripts/bench.sh batch_costs``).

Results are printed and written to ``bench/results/batch_costs.md``.

Freshness on a small machine is bounded by what one micro-batch costs when it carries only
a few hundred events. This runs the chosen queries of the lab job over a generated log in
files of ``--events-per-file`` events, one file per micro-batch (``availableNow``,
``maxFilesPerTrigger=1``, ``noop`` sink), and prints the median of each phase of Spark's
progress report (``durationMs``) and of the state store commit, skipping the first
``--warmup`` batches. Queries run together when several are named, as in the real job.

    bash scripts/bench.sh batch_costs --queries customer,product --events 4000 \\
        --events-per-file 100 --conf spark.sql.streaming.checkpointFileManagerClass=...
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdc_features.core.spec import CUSTOMER_QUERY, DEAD_LETTER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig
from cdc_features.job.sinks import build_sinks
from cdc_features.job.spark import get_spark
from cdc_features.lab.generator import LogOptions, iter_log
from cdc_features.testing import write_log
from common import STARTERS  # bench/common.py (this script's folder)

# --queries names → the job's query names
QUERIES = {
    "customer": CUSTOMER_QUERY,
    "product": PRODUCT_QUERY,
    "dead_letters": DEAD_LETTER_QUERY,
}
RESULTS = Path(__file__).resolve().parent / "results" / "batch_costs.md"
PHASES = (
    "triggerExecution",
    "queryPlanning",
    "addBatch",
    "walCommit",
    "commitOffsets",
    "latestOffset",
)


def summary(progresses: list[dict[str, Any]], warmup: int) -> dict[str, float]:
    """Median of each phase over the data batches after the warm-up."""
    batches = [p for p in progresses if p["numInputRows"] > 0][warmup:]
    if not batches:
        return {}
    out = {
        phase: statistics.median(p["durationMs"].get(phase, 0) for p in batches) for phase in PHASES
    }
    out["rows"] = statistics.median(p["numInputRows"] for p in batches)
    states = [p["stateOperators"][0] for p in batches if p.get("stateOperators")]
    if states:
        out["stateCommit"] = statistics.median(s["commitTimeMs"] for s in states)
        out["stateUpdates"] = statistics.median(s["allUpdatesTimeMs"] for s in states)
    out["batches"] = len(batches)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--queries",
        default="customer,product,dead_letters",
        help=f"comma-separated, of {', '.join(QUERIES)}",
    )
    ap.add_argument("--events", type=int, default=4000)
    ap.add_argument("--events-per-file", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=5, help="data batches left out of the medians")
    ap.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Spark SQL setting for this run (repeatable)",
    )
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.queries.split(",") if n.strip()]
    unknown = set(names) - set(QUERIES)
    if unknown or not names:
        ap.error(f"unknown queries {sorted(unknown)}; choose from {', '.join(QUERIES)}")

    work = Path(tempfile.mkdtemp(prefix="batch-costs-"))
    try:
        write_log(
            iter_log(args.seed, args.events, LogOptions(schemas=True, days=10.0)),
            work / "in",
            events_per_file=args.events_per_file,
        )
        spark = get_spark("cdc-features-batch-costs")
        for setting in args.conf:
            key, _, value = setting.partition("=")
            spark.conf.set(key, value)
        config = PipelineConfig(
            checkpoint_dir=work / "checkpoints",
            input_dir=work / "in",
            sinks=("noop",),
            trigger="available-now",
            max_files_per_trigger=1,
            dead_letter_dir=work / "dead",
            progress=False,
            out=io.StringIO(),
        )
        sinks = build_sinks(config)
        started = time.perf_counter()
        queries = {name: STARTERS[QUERIES[name]](spark, config, sinks) for name in names}
        for query in queries.values():
            query.awaitTermination()
        wall = time.perf_counter() - started
        lines = [
            "# Fixed cost of a small micro-batch",
            "",
            f"- Command: `{' '.join(['bash scripts/bench.sh batch_costs', *(argv or sys.argv[1:])])}`",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Spark `local[2]`; "
            f"load average at the end: {os.getloadavg()[0]:.2f}",
            f"- {args.events:,} events, {args.events_per_file} per micro-batch, queries "
            f"{', '.join(names)} running together, wall {wall:.1f} s"
            + (f", settings {', '.join(args.conf)}" if args.conf else ""),
            "",
            "Medians in ms over the data batches after the warm-up:",
            "",
        ]
        for name, query in queries.items():
            s = summary(query.recentProgress, args.warmup)
            lines.append(f"- {name}: " + ", ".join(f"{k} {v:g}" for k, v in s.items()))
        spark.stop()
        print("\n".join(lines))
        RESULTS.write_text("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
