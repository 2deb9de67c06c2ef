#!/usr/bin/env bash
# Run Node (>= 22.12, which executes .ts files directly) with the given arguments: the
# machine's node when it is new enough, else the one scripts/ensure-node.sh installs into
# .tooling/node. That Node also comes first on PATH for the processes it starts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_dir="$(bash "$root/scripts/ensure-node.sh")"
export PATH="$node_dir:$PATH"
exec "$node_dir/node" "$@"
