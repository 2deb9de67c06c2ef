#!/usr/bin/env bash
# Capture real Debezium messages into fixtures/debezium/<variant>.jsonl.
#
# For every connector variant (value/key schemas on|off x decimal.handling.mode
# precise|string|double) this starts a fresh stack (PostgreSQL, Kafka, Connect) in
# $STACK_RUN_DIR (default stack/.run/capture), loads sql/fixtures/seed.sql, registers
# the lesson's connector with the variant's overrides (the snapshot reads the seed
# rows as op=r), runs sql/fixtures/changes.sql (inserts, an amount correction, a
# cancellation, a delete with its tombstones, a back-dated order date, a line update),
# and writes every message of dbserver1.inventory.orders and .order_items, in the
# lab's file format {"topic","key","value"}, merged by Kafka timestamp.
#
#   capture-fixtures.sh [VARIANT]...   default: all variants
set -euo pipefail
stack="$(cd "$(dirname "$0")" && pwd)"
lab="$(cd "$stack/.." && pwd)"
out_dir="$lab/fixtures/debezium"
export STACK_RUN_DIR="${STACK_RUN_DIR:-$stack/.run/capture}"
EXPECTED=20   # 9 orders messages + 11 order_items messages (see sql/fixtures/changes.sql)

variants=("$@")
[ ${#variants[@]} -eq 0 ] && variants=(schemas-precise schemas-string noschemas-precise noschemas-string noschemas-double)

cleanup() { "$stack/stack.sh" down >/dev/null 2>&1 || true; }
trap cleanup EXIT

mkdir -p "$out_dir"
for variant in "${variants[@]}"; do
  case "$variant" in
    schemas-*) schemas=true ;;
    noschemas-*) schemas=false ;;
    *) echo "capture: unknown variant $variant" >&2; exit 2 ;;
  esac
  decimal="${variant#*-}"
  echo "capture: $variant (schemas.enable=$schemas, decimal.handling.mode=$decimal)" >&2
  "$stack/stack.sh" reset >/dev/null 2>&1 || true
  "$stack/stack.sh" up postgres kafka connect
  "$stack/stack.sh" psql -f "$stack/sql/fixtures/seed.sql" >/dev/null
  "$stack/stack.sh" connector \
    "key.converter.schemas.enable=$schemas" "value.converter.schemas.enable=$schemas" \
    "decimal.handling.mode=$decimal"
  eval "$("$stack/stack.sh" env)"
  topics=(--topic dbserver1.inventory.orders --topic dbserver1.inventory.order_items)
  # the snapshot: 2 orders + 3 order lines
  python3 "$stack/kafka_dump.py" --bootstrap "$KAFKA_BOOTSTRAP" "${topics[@]}" \
    --out "$STACK_RUN_DIR/snapshot.jsonl" --expect 5
  "$stack/stack.sh" psql -f "$stack/sql/fixtures/changes.sql" >/dev/null
  python3 "$stack/kafka_dump.py" --bootstrap "$KAFKA_BOOTSTRAP" "${topics[@]}" \
    --out "$out_dir/$variant.jsonl" --expect "$EXPECTED"
  n=$(wc -l <"$out_dir/$variant.jsonl")
  [ "$n" -eq "$EXPECTED" ] || { echo "capture: $variant has $n messages, expected $EXPECTED" >&2; exit 1; }
  "$stack/stack.sh" down
done
echo "capture: wrote ${#variants[@]} variant(s) to $out_dir" >&2
