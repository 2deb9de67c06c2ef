#!/usr/bin/env bash
# Regenerate the Spark fixtures of the lesson's event-time playground (playground_fixtures/*.json):
# the lab's own queries run micro-batch by micro-batch on real PySpark. The repository's
# `npm run playground:fixtures` runs this; the site's unit tests replay the fixtures through the
# TypeScript engine. Pass log names to regenerate only those (e.g. tumbling_window typo_date).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
cd "$here"
export SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}"
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m cdc_features.lab.playground --write --only "$@"
fi
exec .venv/bin/python -m cdc_features.lab.playground --write
