#!/usr/bin/env bash
# Print the directory of a Node.js >= 22.12 binary, installing one from the npm registry
# into .tooling/node when the machine's own node is missing or older.
# Usage: export PATH="$(bash scripts/ensure-node.sh):$PATH"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
required_major=22
required_minor=12
wanted_package="node@24"

node_is_new_enough() {
  local bin="$1"
  [ -x "$bin" ] || return 1
  local version
  version="$("$bin" -p 'process.versions.node' 2>/dev/null)" || return 1
  local major="${version%%.*}"
  local rest="${version#*.}"
  local minor="${rest%%.*}"
  if [ "$major" -gt "$required_major" ]; then return 0; fi
  if [ "$major" -eq "$required_major" ] && [ "$minor" -ge "$required_minor" ]; then return 0; fi
  return 1
}

system_node="$(command -v node || true)"
if [ -n "$system_node" ] && node_is_new_enough "$system_node"; then
  dirname "$system_node"
  exit 0
fi

local_bin="$root/.tooling/node/node_modules/node/bin"
if ! node_is_new_enough "$local_bin/node"; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-node: no Node >= ${required_major}.${required_minor} and no npm to install one." >&2
    echo "ensure-node: install Node 24 (e.g. 'apt-get install nodejs npm', or nvm with .nvmrc) and retry." >&2
    exit 1
  fi
  echo "ensure-node: machine node ${system_node:-missing} is older than ${required_major}.${required_minor}; installing $wanted_package into .tooling/node" >&2
  mkdir -p "$root/.tooling/node"
  npm install --prefix "$root/.tooling/node" --no-audit --no-fund --loglevel=error "$wanted_package" >&2
  # The `node` package downloads the real binary in its install script; run it when npm skipped it.
  if [ ! -x "$local_bin/node" ] || ! node_is_new_enough "$local_bin/node"; then
    (cd "$root/.tooling/node/node_modules/node" && npm run --silent preinstall >&2 2>/dev/null || node installArchSpecificPackage.js >&2 || true)
  fi
fi

if ! node_is_new_enough "$local_bin/node"; then
  echo "ensure-node: failed to install a working Node into $local_bin" >&2
  exit 1
fi
echo "$local_bin"
