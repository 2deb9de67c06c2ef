#!/usr/bin/env bash
# Fetch the pinned Kafka 4.3.0 (broker, Connect, tools) and Debezium 3.6.1.Final
# PostgreSQL connector jars from Maven Central into stack/.cache (once; later runs
# reuse the cache and need no network). Also primes ~/.m2 with Spark's Kafka source
# package so that get_spark(kafka=True) and spark-submit --packages start offline.
set -euo pipefail
stack="$(cd "$(dirname "$0")" && pwd)"
cache="$stack/.cache"
kafka_libs="$cache/kafka-libs"
plugin_dir="$cache/debezium-plugin/debezium-connector-postgres"
stamp_of() { sha256sum "$1" | cut -c1-16; }

fetch() { # pom, output dir, extra args...
  local pom="$1" out="$2"; shift 2
  local stamp="$out/.fetched-$(stamp_of "$pom")"
  if [ -f "$stamp" ]; then return 0; fi
  rm -rf "$out"; mkdir -p "$out"
  echo "fetch-jars: resolving $(basename "$(dirname "$pom")") jars into $out" >&2
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$out" \
      -DincludeScope=runtime "$@" >"$cache/mvn-$(basename "$(dirname "$pom")").log" 2>&1; then
    echo "fetch-jars: Maven failed, see $cache/mvn-$(basename "$(dirname "$pom")").log" >&2
    exit 1
  fi
  touch "$stamp"
}

mkdir -p "$cache"
fetch "$stack/maven/kafka/pom.xml" "$kafka_libs"
# Kafka's own APIs and SLF4J come from the Connect runtime (parent class loader).
fetch "$stack/maven/debezium/pom.xml" "$plugin_dir" -DexcludeGroupIds=org.apache.kafka,org.slf4j

# Spark's Kafka source of exactly the pinned PySpark (maven/spark-kafka/pom.xml), with the
# versions Ivy picks among its dependencies (at.yawk.lz4:lz4-java 1.11.0, slf4j-api 2.0.17):
# get_spark(kafka=True) then resolves everything from ~/.m2. The stamp follows the pom, so
# a version change primes again.
spark_pom="$stack/maven/spark-kafka/pom.xml"
spark_stamp="$cache/.spark-kafka-primed-$(stamp_of "$spark_pom")"
if [ ! -f "$spark_stamp" ]; then
  echo "fetch-jars: priming ~/.m2 with Spark's Kafka source and its dependencies ($spark_pom)" >&2
  if ! mvn -q -B -f "$spark_pom" dependency:resolve -DincludeScope=runtime \
      >"$cache/mvn-spark-kafka.log" 2>&1; then
    echo "fetch-jars: Maven failed, see $cache/mvn-spark-kafka.log" >&2
    exit 1
  fi
  rm -f "$cache"/.spark-kafka-primed*
  touch "$spark_stamp"
fi
