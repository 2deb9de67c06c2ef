#!/usr/bin/env bash
# Start the course site with the lesson: install what is missing (Node >= 22.12, npm packages),
# build the site and serve it at http://127.0.0.1:${PORT:-4321}/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(bash scripts/ensure-node.sh):$PATH"
bash scripts/ensure-npm-packages.sh
npx astro build
port="${PORT:-4321}"
echo
echo "Курс:  http://127.0.0.1:${port}/"
echo "Урок:  http://127.0.0.1:${port}/course/module-5/07-feature-engineering/"
echo
exec npx astro preview --host 127.0.0.1 --port "$port"
