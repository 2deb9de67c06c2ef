#!/usr/bin/env bash
# Check the «Customer Features Pipeline» exercise against the batch reference.
#
#   check.sh             check starter/customer_features.py (the student's file)
#   check.sh --solution  check the lab's own implementation through the same interface
#   check.sh --console   run the exercise pipeline and print the features per micro-batch
#
# Exit code 0 when every feature matches the reference, 1 otherwise.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
export SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}"
exec .venv/bin/python -m cdc_features.lab.exercise "$@"
