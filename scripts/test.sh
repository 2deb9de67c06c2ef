#!/usr/bin/env bash
# npm test [-- suite ...]: install what the suites need, then run them. In order: the system
# packages (scripts/preflight.sh: installs them as root, else stops with one line saying how),
# Node >= 22.12 (scripts/ensure-node.sh), the npm packages (npm ci when node_modules is missing
# or older than package-lock.json), then the suites of tests/suites.json (scripts/run-tests.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/preflight.sh "$@"
export PATH="$(bash scripts/ensure-node.sh):$PATH"
bash scripts/ensure-npm-packages.sh
exec node scripts/run-tests.ts "$@"
