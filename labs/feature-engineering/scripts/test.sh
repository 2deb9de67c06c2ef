#!/usr/bin/env bash
# Run the lab's pytest suite on real PySpark and a real redis-server.
# JUNIT_XML=path writes a JUnit report there (the repository's test runner sums them).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
"$here/scripts/setup.sh"
args=()
if [ -n "${JUNIT_XML:-}" ]; then args+=("--junitxml=$JUNIT_XML"); fi
exec .venv/bin/python -m pytest "${args[@]}" "$@"
