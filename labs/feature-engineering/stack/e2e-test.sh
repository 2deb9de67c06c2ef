#!/usr/bin/env bash
# End-to-end test on the real stack: PostgreSQL → Debezium → Kafka → Spark → Redis.
# Starts the stack in stack/.run/e2e, runs stack/e2e/test_e2e.py, stops the stack
# (also on failure). JUNIT_XML=path writes a JUnit report there.
set -euo pipefail
stack="$(cd "$(dirname "$0")" && pwd)"
lab="$(cd "$stack/.." && pwd)"
export STACK_RUN_DIR="$stack/.run/e2e"
trap '"$stack/stack.sh" down >/dev/null 2>&1 || true' EXIT
"$lab/scripts/setup.sh"
"$stack/fetch-jars.sh"
cd "$lab"
args=(-x -q -s -p no:cacheprovider)
if [ -n "${JUNIT_XML:-}" ]; then args+=("--junitxml=$JUNIT_XML"); fi
SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}" .venv/bin/python -m pytest "${args[@]}" "$stack/e2e" "$@"
