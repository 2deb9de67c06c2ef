#!/usr/bin/env bash
# Build the site (timed) and run the browser tests against it; JUnit XML goes to $JUNIT_XML.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(bash scripts/ensure-node.sh):$PATH"  # Node >= 22.12 runs the .ts tests
start=$(date +%s.%N)
npx astro build
end=$(date +%s.%N)
printf 'site build time: %.1f s (npx astro build)\n' "$(echo "$end - $start" | bc)"
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [ -n "${JUNIT_XML:-}" ]; then
  reporters+=(--test-reporter=junit "--test-reporter-destination=$JUNIT_XML")
fi
node --test --test-concurrency=1 "${reporters[@]}" "tests/browser/**/*.test.ts"
