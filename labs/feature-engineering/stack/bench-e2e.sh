#!/usr/bin/env bash
# Freshness benchmark on the real stack (npm run bench:e2e): PostgreSQL commit → feature
# visible in Redis, p50/p95/p99 over >= 1,000 orders per trigger setting, with breakdown.
# Writes bench/results/e2e.md. Extra arguments go to stack/e2e/bench_freshness.py,
# e.g. --orders 1000 --rate 20 --trigger "2 seconds" --trigger "500 milliseconds".
set -euo pipefail
stack="$(cd "$(dirname "$0")" && pwd)"
lab="$(cd "$stack/.." && pwd)"
export STACK_RUN_DIR="$stack/.run/bench"
trap '"$stack/stack.sh" down >/dev/null 2>&1 || true' EXIT
"$lab/scripts/setup.sh"
"$stack/fetch-jars.sh"
cd "$lab"
SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}" .venv/bin/python "$stack/e2e/bench_freshness.py" "$@"
