#!/usr/bin/env bash
# Run `npm ci` when node_modules is missing or older than package-lock.json (npm start, npm test).
# Expects a Node >= 22.12 first on PATH (scripts/ensure-node.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules/astro ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "Installing npm packages (npm ci)…"
  npm ci --no-audit --no-fund
fi
