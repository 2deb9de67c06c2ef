#!/usr/bin/env bash
# Regenerate every real output the lesson quotes (lesson_outputs/*.txt) from runs of the lab's
# code on real PySpark. The repository's `npm run lesson:refresh` runs this, then re-syncs the
# lesson's code blocks from their source regions.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
export SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}"
exec .venv/bin/python -m cdc_features.lab.lesson_outputs --write "$@"
