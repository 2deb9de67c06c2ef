#!/usr/bin/env bash
# Run one benchmark of the lab: bench.sh NAME [options] runs bench/bench_NAME.py
# (npm run bench:lab → bench.sh lab). Results go to bench/results/NAME.md.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:?usage: bench.sh NAME [options]  (NAME: $(cd "$here/bench" && ls bench_*.py | sed 's/bench_//; s/\.py//' | tr '\n' ' '))}"
shift
script="$here/bench/bench_${name}.py"
if [ ! -f "$script" ]; then
  echo "bench: no benchmark named '$name' ($script)" >&2
  exit 2
fi
"$here/scripts/setup.sh"
cd "$here"
export SPARK_LOG_LEVEL="${SPARK_LOG_LEVEL:-ERROR}"
exec .venv/bin/python "$script" "$@"
