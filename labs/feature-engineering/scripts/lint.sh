#!/usr/bin/env bash
# The lab's Python quality gates: ruff (lint + format check) and mypy over src/ and tests/.
# JUNIT_XML=path writes a JUnit report there (the repository's test runner sums them).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
args=()
if [ -n "${JUNIT_XML:-}" ]; then args+=(--junitxml "$JUNIT_XML"); fi
exec "$here/.venv/bin/python" "$here/scripts/lint.py" "${args[@]}"
