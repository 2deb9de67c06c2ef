#!/usr/bin/env bash
# The lab's one command (npm run lab): replay the bundled Debezium CDC log through the
# streaming feature job on Spark local[2] and watch the features change in the console.
# Options go to `python -m cdc_features.lab.replay` (see README.md), e.g.
#   bash scripts/lab.sh --replay-speed 200 --redis-url redis://127.0.0.1:6379/0
#   bash scripts/lab.sh --until-idle        # non-interactive: exit 0 when all features are right
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  echo "lab: Java 17+ is required (Spark 4 runs on the JVM): install a JDK, e.g. 'apt-get install openjdk-17-jre-headless'" >&2
  exit 2
fi
"$here/scripts/setup.sh"
export SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}"
exec .venv/bin/python -m cdc_features.lab.replay "$@"
