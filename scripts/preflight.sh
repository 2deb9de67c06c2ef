#!/usr/bin/env bash
# Make sure the system packages the test suites need are installed (Debian/Ubuntu), before any
# suite runs. `npm test` and .ci/run call it first.
#
#   bash scripts/preflight.sh [suite ...]    no suite: what every suite of tests/suites.json needs
#
# Each need is detected by its binary (chromium, redis-server, initdb, python3 with venv, java,
# mvn, bc, curl, the CA bundle, prometheus and promtool). Nothing missing: it prints nothing and does nothing. Otherwise:
#  - as root, or with passwordless sudo, it installs the missing packages with apt-get behind a
#    policy-rc.d, so redis-server, PostgreSQL and Prometheus are not started as services (the
#    tests start their own servers on free ports), and stops those services afterwards;
#  - else it prints one line naming what is missing and the exact install command, and exits 1.
#
# PREFLIGHT_ROOT_DIR (for tests) is prepended to the absolute paths it checks and writes
# (/usr/bin/chromium, /usr/lib/postgresql/*/bin/initdb, /etc/ssl/certs, /usr/sbin/policy-rc.d).
set -euo pipefail

sysroot="${PREFLIGHT_ROOT_DIR:-}"

# Every need, in the order of the install command.
all_needs=(chromium redis-server initdb python3-venv java mvn bc ca-certificates curl prometheus)

# What a suite of tests/suites.json needs (tests/unit/scripts/preflight.test.ts keeps this in
# step with suites.json). An unknown name needs nothing here: the test runner rejects it next.
needs_of_suite() {
  case "$1" in
    site-unit) echo chromium ;;  # an invalid diagram is rendered in Chromium
    site-build) echo ;;          # diagrams come from the committed cache
    site-browser) echo chromium bc ;;
    lab-lint) echo python3-venv ca-certificates ;;  # ruff and mypy come from PyPI into the lab venv
    lab) echo redis-server python3-venv java ca-certificates prometheus ;;  # promtool rule tests
    e2e) echo redis-server initdb python3-venv java mvn ca-certificates curl prometheus ;;
    *) echo ;;
  esac
}

# The Debian packages that provide a need.
packages_of() {
  case "$1" in
    initdb) echo postgresql ;;
    python3-venv) echo python3 python3-venv python3-pip ;;
    java) echo openjdk-17-jdk-headless ;;
    mvn) echo maven ;;
    *) echo "$1" ;;
  esac
}

# How a missing need is named in the message.
label_of() {
  case "$1" in
    initdb) echo "initdb (PostgreSQL)" ;;
    python3-venv) echo "python3 -m venv" ;;
    ca-certificates) echo "CA certificates" ;;
    *) echo "$1" ;;
  esac
}

join_comma() {
  local out="" item
  for item in "$@"; do out+="${out:+, }$item"; done
  echo "$out"
}

have() {
  local candidate
  case "$1" in
    chromium)  # the same places src/integrations/chromium.ts looks
      for candidate in "${CHROMIUM_PATH:-}" "$sysroot/usr/bin/chromium" "$sysroot/usr/bin/chromium-browser" "$sysroot/usr/bin/google-chrome"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then return 0; fi
      done
      return 1 ;;
    initdb)
      if [ -n "${PG_BIN:-}" ]; then [ -x "$PG_BIN/initdb" ]; return; fi
      for candidate in "$sysroot"/usr/lib/postgresql/*/bin/initdb; do
        if [ -x "$candidate" ]; then return 0; fi
      done
      return 1 ;;
    python3-venv)  # Debian ships ensurepip (which venv needs) in python3-venv
      local python="${PYTHON:-python3}"
      command -v "$python" >/dev/null 2>&1 && "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
    java)
      command -v java >/dev/null 2>&1 || { [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; } ;;
    ca-certificates)
      [ -f "$sysroot/etc/ssl/certs/ca-certificates.crt" ] ;;
    prometheus)  # the server (e2e) and promtool (the alert rules' unit tests), one package
      command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 ;;
    *)
      command -v "$1" >/dev/null 2>&1 ;;
  esac
}

# The needs of the named suites (all of them without names), in install-command order.
wanted=()
if [ "$#" -eq 0 ]; then
  wanted=("${all_needs[@]}")
else
  requested=" "
  for suite in "$@"; do requested+="$(needs_of_suite "$suite") "; done
  for need in "${all_needs[@]}"; do
    if [[ "$requested" == *" $need "* ]]; then wanted+=("$need"); fi
  done
fi

missing_needs() {
  local need
  for need in ${wanted[@]+"${wanted[@]}"}; do
    if ! have "$need"; then echo "$need"; fi
  done
}

mapfile -t missing < <(missing_needs)
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi

labels=()
packages=()
for need in "${missing[@]}"; do
  labels+=("$(label_of "$need")")
  read -ra need_packages <<<"$(packages_of "$need")"
  packages+=("${need_packages[@]}")
done
what="$(join_comma "${labels[@]}")"

if [ "$(id -u)" -eq 0 ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root() { sudo -n "$@"; }
else
  echo "npm test: missing $what: run as root: apt-get update && apt-get install -y --no-install-recommends ${packages[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "npm test: missing $what, and there is no apt-get to install them; install the equivalents of the Debian packages ${packages[*]}" >&2
  exit 1
fi

echo "npm test: installing the missing system packages: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages must not start their own services: policy-rc.d tells invoke-rc.d to skip starting
# them during the install.
policy="$sysroot/usr/sbin/policy-rc.d"
created_policy=0
remove_policy() {
  if [ "$created_policy" -eq 1 ]; then as_root rm -f "$policy"; created_policy=0; fi
}
trap remove_policy EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod +x "$policy"
  created_policy=1
fi
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends --no-upgrade "${packages[@]}"
remove_policy
# A service of a package installed now may still have been started (e.g. by a policy-rc.d that
# was already there and allows it): stop it so it holds no port or data directory.
for service in redis-server postgresql prometheus; do
  if [[ " ${packages[*]} " == *" $service "* ]] && command -v service >/dev/null 2>&1; then
    as_root service "$service" stop >/dev/null 2>&1 || true
  fi
done

mapfile -t still_missing < <(missing_needs)
if [ "${#still_missing[@]}" -gt 0 ]; then
  labels=()
  for need in "${still_missing[@]}"; do labels+=("$(label_of "$need")"); done
  echo "npm test: still missing after apt-get install: $(join_comma "${labels[@]}")" >&2
  exit 1
fi
