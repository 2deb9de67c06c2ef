#!/usr/bin/env bash
# The lab's CDC stack without Docker, all on 127.0.0.1:
#   PostgreSQL 15 (Debian package, throwaway cluster, wal_level=logical, course schema)
#   Kafka 4.3.0 single node in KRaft mode (Maven Central jars, no tarball)
#   Kafka Connect standalone + Debezium 3.6.1.Final PostgreSQL connector (pgoutput)
#   Redis (Debian package)
#   Prometheus (Debian package `prometheus`; only when named: `stack.sh up prometheus`), scraping
#   the feature job's /metrics on 127.0.0.1:$METRICS_PORT with monitoring/alert_rules.yml loaded
#
# Usage:
#   stack.sh up [postgres|kafka|connect|redis|prometheus]...
#                                                    start (all but prometheus by default);
#                                                    starting twice is harmless
#   stack.sh down [component]...                     stop (all by default); leaves nothing running
#   stack.sh status                                  one line per component; exit 1 if one is down
#   stack.sh connector [KEY=VALUE]...                (re)register the Debezium connector from
#                                                    config/connect/debezium-postgres.json, with overrides,
#                                                    e.g. name=fx topic.prefix=dbserver1 decimal.handling.mode=string
#   stack.sh connector-delete [NAME]                 remove a connector
#   stack.sh psql [ARGS]...                          psql on the inventory database
#   stack.sh env                                     print the state file (ports, URLs) for `eval`
#   stack.sh reset                                   down + delete all data and logs
#
# Ports: PG_PORT, KAFKA_PORT, KAFKA_CONTROLLER_PORT, CONNECT_PORT, REDIS_PORT, PROMETHEUS_PORT and
# METRICS_PORT (the job's /metrics, which Prometheus scrapes) from the environment, else the value
# recorded in $STACK_RUN_DIR/state.env, else a free port. Prometheus: PROMETHEUS_RULES (rules file,
# default monitoring/alert_rules.yml) and PROMETHEUS_INTERVAL (scrape and evaluation interval,
# default 15s) from the environment.
# Everything (data, logs, pid files, state) lives in STACK_RUN_DIR (default stack/.run);
# logs in $STACK_RUN_DIR/logs. STACK_TIMEOUT (seconds, default 90) bounds each readiness wait.
set -euo pipefail

STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN="${STACK_RUN_DIR:-$STACK_DIR/.run}"
LOGS="$RUN/logs"
STATE="$RUN/state.env"
CACHE="$STACK_DIR/.cache"
KAFKA_LIBS="$CACHE/kafka-libs"
PLUGIN_PATH="$CACHE/debezium-plugin"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_OS_USER="${PG_OS_USER:-cdclab}"
TIMEOUT="${STACK_TIMEOUT:-90}"
CONNECTOR_JSON="$STACK_DIR/config/connect/debezium-postgres.json"
ALL=(postgres kafka redis connect)
COMPONENTS="postgres|kafka|connect|redis|prometheus"

die() { echo "stack: $*" >&2; exit 1; }
info() { echo "stack: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

load_state() {
  mkdir -p "$RUN" "$LOGS"
  chmod 755 "$RUN" "$LOGS"
  local saved_pg="" saved_kafka="" saved_ctrl="" saved_connect="" saved_redis="" saved_prom="" saved_metrics=""
  if [ -f "$STATE" ]; then
    saved_pg=$(sed -n 's/^PG_PORT=//p' "$STATE")
    saved_kafka=$(sed -n 's/^KAFKA_PORT=//p' "$STATE")
    saved_ctrl=$(sed -n 's/^KAFKA_CONTROLLER_PORT=//p' "$STATE")
    saved_connect=$(sed -n 's/^CONNECT_PORT=//p' "$STATE")
    saved_redis=$(sed -n 's/^REDIS_PORT=//p' "$STATE")
    saved_prom=$(sed -n 's/^PROMETHEUS_PORT=//p' "$STATE")
    saved_metrics=$(sed -n 's/^METRICS_PORT=//p' "$STATE")
  fi
  PG_PORT="${PG_PORT:-${saved_pg:-$(free_port)}}"
  KAFKA_PORT="${KAFKA_PORT:-${saved_kafka:-$(free_port)}}"
  KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-${saved_ctrl:-$(free_port)}}"
  CONNECT_PORT="${CONNECT_PORT:-${saved_connect:-$(free_port)}}"
  REDIS_PORT="${REDIS_PORT:-${saved_redis:-$(free_port)}}"
  PROMETHEUS_PORT="${PROMETHEUS_PORT:-${saved_prom:-$(free_port)}}"
  METRICS_PORT="${METRICS_PORT:-${saved_metrics:-$(free_port)}}"
  cat >"$STATE" <<EOF
PG_PORT=$PG_PORT
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
CONNECT_PORT=$CONNECT_PORT
REDIS_PORT=$REDIS_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
METRICS_PORT=$METRICS_PORT
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
PG_DSN=postgresql://postgres:postgres@127.0.0.1:$PG_PORT/inventory
KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
STACK_LOGS=$LOGS
KAFKA_LIBS=$KAFKA_LIBS
EOF
}

# wait_until COMPONENT LOGFILE PID_OR_EMPTY COMMAND...: poll COMMAND until it succeeds
wait_until() {
  local component="$1" log="$2" pid="$3"; shift 3
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$log" >&2 2>/dev/null || true
      die "$component exited during start-up; see $log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$log" >&2 2>/dev/null || true
      die "$component not ready after ${TIMEOUT}s; see $log"
    fi
    sleep 0.5
  done
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() { # component pidfile
  local component="$1" pidfile="$2"
  if pid_alive "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        info "$component (pid $pid) did not stop in 30s: killing it"
        kill -9 "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.3
    done
    info "$component stopped"
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- PostgreSQL
PGDATA_DIR() { echo "$RUN/postgres/data"; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_running() { [ -f "$(PGDATA_DIR)/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$(PGDATA_DIR)" status >/dev/null 2>&1; }

psql_inv() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d inventory "$@"; }

up_postgres() {
  [ -x "$PG_BIN/initdb" ] || die "postgres: $PG_BIN/initdb not found (apt-get install postgresql-15, or set PG_BIN)"
  local data; data=$(PGDATA_DIR)
  local log="$LOGS/postgres.log"
  if [ "$(id -u)" = 0 ] && ! id "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --create-home --shell /usr/sbin/nologin "$PG_OS_USER" \
      || die "postgres: cannot create the unprivileged user $PG_OS_USER for initdb"
  fi
  mkdir -p "$RUN/postgres"
  [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$RUN/postgres"
  touch "$log"; [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$log"
  local fresh=0
  if [ ! -f "$data/PG_VERSION" ]; then
    info "postgres: initdb in $data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >>"$log" 2>&1 || die "postgres: initdb failed; see $log"
    cat >>"$data/postgresql.conf" <<EOF
# --- lab CDC settings
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN/postgres'
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
track_commit_timestamp = on
fsync = off
synchronous_commit = on
EOF
    fresh=1
  fi
  if pg_running; then
    info "postgres already running on port $PG_PORT"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -o "-p $PG_PORT" -w -t "$TIMEOUT" start >/dev/null \
      || { tail -n 20 "$log" >&2; die "postgres failed to start; see $log"; }
  fi
  wait_until postgres "$log" "" pg_ready
  if [ "$fresh" = 1 ] || ! "$PG_BIN/psql" -X -h "$RUN/postgres" -p "$PG_PORT" -U postgres -tAc \
        "select 1 from pg_database where datname='inventory'" postgres | grep -q 1; then
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN/postgres" -p "$PG_PORT" -U postgres postgres >>"$log" 2>&1 <<'EOF' \
      || die "postgres: creating database inventory failed; see $log"
ALTER USER postgres PASSWORD 'postgres';
CREATE DATABASE inventory;
EOF
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN/postgres" -p "$PG_PORT" -U postgres -d inventory \
      -f "$STACK_DIR/sql/inventory.sql" >>"$log" 2>&1 || die "postgres: loading sql/inventory.sql failed; see $log"
  fi
  info "postgres ready on 127.0.0.1:$PG_PORT (log $log)"
}

down_postgres() {
  local data; data=$(PGDATA_DIR)
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    info "postgres stopped"
  fi
}

# ---------------------------------------------------------------- Kafka
require_jars() {
  [ -d "$KAFKA_LIBS" ] && [ -d "$PLUGIN_PATH" ] || "$STACK_DIR/fetch-jars.sh" \
    || die "kafka: fetching jars from Maven Central failed"
}

java_opts() { # component
  echo "-Xms128m -Xmx${2:-512m} -XX:+UseSerialGC -Djava.awt.headless=true \
-Dlog4j2.configurationFile=$STACK_DIR/config/kafka/log4j2.yaml"
}

up_kafka() {
  require_jars
  local dir="$RUN/kafka" log="$LOGS/kafka.log" pidfile="$RUN/kafka.pid"
  mkdir -p "$dir"
  local props="$dir/server.properties"
  { cat "$STACK_DIR/config/kafka/server.properties"
    echo "# --- local overrides (stack.sh)"
    echo "controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT"
    echo "listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT"
    echo "log.dirs=$dir/data"
  } >"$props"
  if pid_alive "$pidfile"; then info "kafka already running on port $KAFKA_PORT"; return 0; fi
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$log") \
      || die "kafka: StorageTool random-uuid failed; see $log"
    java $(java_opts kafka 256m) -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$props" >>"$log" 2>&1 || die "kafka: storage format failed; see $log"
  fi
  # shellcheck disable=SC2046
  setsid nohup java $(java_opts kafka 768m) -cp "$KAFKA_LIBS/*" kafka.Kafka "$props" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_until kafka "$log" "$(cat "$pidfile")" grep -q "Kafka Server started" "$log"
  wait_until kafka "$log" "$(cat "$pidfile")" port_open "$KAFKA_PORT"
  info "kafka ready on 127.0.0.1:$KAFKA_PORT (log $log)"
}

down_kafka() { stop_pidfile kafka "$RUN/kafka.pid"; }

# ---------------------------------------------------------------- Kafka Connect
connect_ready() {
  curl -fsS "http://127.0.0.1:$CONNECT_PORT/connector-plugins" | grep -q PostgresConnector
}

up_connect() {
  require_jars
  local dir="$RUN/connect" log="$LOGS/connect.log" pidfile="$RUN/connect.pid"
  mkdir -p "$dir"
  local props="$dir/connect-standalone.properties"
  { cat "$STACK_DIR/config/connect/connect-standalone.properties"
    echo "# --- local overrides (stack.sh)"
    echo "bootstrap.servers=127.0.0.1:$KAFKA_PORT"
    echo "listeners=http://127.0.0.1:$CONNECT_PORT"
    echo "plugin.path=$PLUGIN_PATH"
    echo "offset.storage.file.filename=$dir/connect.offsets"
  } >"$props"
  if pid_alive "$pidfile"; then info "connect already running on port $CONNECT_PORT"; return 0; fi
  port_open "$KAFKA_PORT" || die "connect: kafka is not running on port $KAFKA_PORT (stack.sh up kafka)"
  # shellcheck disable=SC2046
  setsid nohup java $(java_opts connect 768m) -cp "$KAFKA_LIBS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$props" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_until connect "$log" "$(cat "$pidfile")" connect_ready
  info "connect ready on http://127.0.0.1:$CONNECT_PORT (log $log)"
}

down_connect() { stop_pidfile connect "$RUN/connect.pid"; }

# connector_config KEY=VALUE...: the connector JSON of the lesson with local overrides
connector_config() {
  python3 - "$CONNECTOR_JSON" "$PG_PORT" "$@" <<'EOF'
import json, sys
path, pg_port, *overrides = sys.argv[1:]
doc = json.load(open(path))
cfg = doc["config"]
cfg["database.hostname"] = "127.0.0.1"
cfg["database.port"] = pg_port
name = doc["name"]
for item in overrides:
    key, _, value = item.partition("=")
    if key == "name":
        name = value
    else:
        cfg[key] = value
print(json.dumps({"name": name, "config": cfg}))
EOF
}

# create_topics TOPIC...: create single-partition topics unless they exist
create_topics() {
  local topic
  for topic in "$@"; do
    java $(java_opts tools 256m) -Dlog4j2.configurationFile="$STACK_DIR/config/kafka/log4j2-tools.yaml" \
      -cp "$KAFKA_LIBS/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --create --if-not-exists --topic "$topic" --partitions 1 --replication-factor 1 \
      >>"$LOGS/topics.log" 2>&1 || die "kafka: creating topic $topic failed; see $LOGS/topics.log"
  done
}

connector() {
  local doc name
  doc=$(connector_config "$@")
  name=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["name"])' "$doc")
  local cfg; cfg=$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["config"]))' "$doc")
  # the connector's topics exist before any change is captured, so a streaming job can
  # subscribe to them right away (one partition each: one ordered log per table)
  local topics
  topics=$(python3 -c '
import json,sys
c=json.loads(sys.argv[1])
print(" ".join(c["topic.prefix"] + "." + t.strip() for t in c["table.include.list"].split(",")))' "$cfg")
  # shellcheck disable=SC2086
  create_topics $topics
  local out
  out=$(curl -sS -X PUT -H 'Content-Type: application/json' --data "$cfg" \
    "http://127.0.0.1:$CONNECT_PORT/connectors/$name/config") \
    || die "connect: REST call failed (is connect up? see $LOGS/connect.log)"
  echo "$out" | grep -q '"error_code"' && die "connect: registering $name failed: $out"
  local deadline=$((SECONDS + TIMEOUT)) status=""
  while :; do
    status=$(curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors/$name/status" 2>/dev/null || true)
    if echo "$status" | python3 -c '
import json,sys
s=json.load(sys.stdin)
ok = s["connector"]["state"]=="RUNNING" and s["tasks"] and all(t["state"]=="RUNNING" for t in s["tasks"])
sys.exit(0 if ok else 1)' 2>/dev/null; then break; fi
    if echo "$status" | grep -q '"FAILED"'; then
      die "connect: connector $name FAILED: $status (see $LOGS/connect.log)"
    fi
    [ $SECONDS -ge $deadline ] && die "connect: connector $name not RUNNING after ${TIMEOUT}s: $status"
    sleep 0.5
  done
  info "connector $name running"
}

connector_delete() {
  local name="${1:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$CONNECTOR_JSON")}"
  curl -fsS -X DELETE "http://127.0.0.1:$CONNECT_PORT/connectors/$name" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- Redis
up_redis() {
  command -v redis-server >/dev/null || die "redis: redis-server not found (apt-get install redis-server)"
  local dir="$RUN/redis" log="$LOGS/redis.log" pidfile="$RUN/redis.pid"
  mkdir -p "$dir"
  if pid_alive "$pidfile"; then info "redis already running on port $REDIS_PORT"; return 0; fi
  redis-server "$STACK_DIR/config/redis/redis.conf" --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$dir" --daemonize yes --pidfile "$pidfile" --logfile "$log" \
    || die "redis failed to start; see $log"
  wait_until redis "$log" "" redis-cli -p "$REDIS_PORT" ping
  info "redis ready on 127.0.0.1:$REDIS_PORT (log $log)"
}

down_redis() { stop_pidfile redis "$RUN/redis.pid"; }

# ---------------------------------------------------------------- Prometheus
prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null; }

up_prometheus() {
  command -v prometheus >/dev/null || die "prometheus: not found (apt-get install prometheus)"
  local dir="$RUN/prometheus" log="$LOGS/prometheus.log" pidfile="$RUN/prometheus.pid"
  local rules="${PROMETHEUS_RULES:-$STACK_DIR/../monitoring/alert_rules.yml}"
  local interval="${PROMETHEUS_INTERVAL:-15s}"
  [ -f "$rules" ] || die "prometheus: rules file $rules not found"
  if pid_alive "$pidfile"; then info "prometheus already running on port $PROMETHEUS_PORT"; return 0; fi
  mkdir -p "$dir/data"
  cp "$rules" "$dir/alert_rules.yml"
  cat >"$dir/prometheus.yml" <<EOF
# written by stack.sh: scrape the feature job's /metrics, evaluate the lab's alert rules
global:
  scrape_interval: $interval
  evaluation_interval: $interval
rule_files:
  - $dir/alert_rules.yml
scrape_configs:
  - job_name: cdc-features
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF
  setsid nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_until prometheus "$log" "$(cat "$pidfile")" prometheus_ready
  info "prometheus ready on http://127.0.0.1:$PROMETHEUS_PORT, scraping 127.0.0.1:$METRICS_PORT every $interval (log $log)"
}

down_prometheus() { stop_pidfile prometheus "$RUN/prometheus.pid"; }

# ---------------------------------------------------------------- commands
status() {
  local rc=0
  pg_running && pg_ready && echo "postgres  up    127.0.0.1:$PG_PORT" || { echo "postgres  down"; rc=1; }
  pid_alive "$RUN/kafka.pid" && echo "kafka     up    127.0.0.1:$KAFKA_PORT" || { echo "kafka     down"; rc=1; }
  pid_alive "$RUN/connect.pid" && echo "connect   up    http://127.0.0.1:$CONNECT_PORT" || { echo "connect   down"; rc=1; }
  pid_alive "$RUN/redis.pid" && echo "redis     up    127.0.0.1:$REDIS_PORT" || { echo "redis     down"; rc=1; }
  if [ -f "$RUN/prometheus.pid" ]; then  # optional: reported once it was started
    pid_alive "$RUN/prometheus.pid" && echo "prometheus up   http://127.0.0.1:$PROMETHEUS_PORT" || { echo "prometheus down"; rc=1; }
  fi
  return $rc
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up)
    load_state
    comps=("$@"); [ ${#comps[@]} -eq 0 ] && comps=("${ALL[@]}")
    for c in "${comps[@]}"; do
      case "$c" in postgres|kafka|connect|redis|prometheus) "up_$c" ;; *) die "unknown component: $c (one of $COMPONENTS)" ;; esac
    done ;;
  down)
    [ -d "$RUN" ] || exit 0
    load_state
    comps=("$@"); [ ${#comps[@]} -eq 0 ] && comps=(prometheus connect kafka redis postgres)
    for c in "${comps[@]}"; do
      case "$c" in postgres|kafka|connect|redis|prometheus) "down_$c" ;; *) die "unknown component: $c (one of $COMPONENTS)" ;; esac
    done ;;
  status) load_state; status ;;
  connector) load_state; connector "$@" ;;
  connector-delete) load_state; connector_delete "$@" ;;
  psql) load_state; PGPASSWORD=postgres psql_inv "$@" ;;
  env) load_state; cat "$STATE" ;;
  reset)
    "$0" down
    rm -rf "$RUN" ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
