#!/usr/bin/env python3
"""Read Kafka topics from the beginning into JSON lines (the lab's file-source format).

Uses Kafka's own console consumer from the stack's jars, so it needs nothing but
Java and the cached jars. Each output line is ``{"topic", "key", "value"}`` with the
key and value as the raw message text (``null`` for a tombstone's value); with
``--with-meta`` also ``partition``, ``offset`` and ``timestamp_ms`` (the Kafka record
timestamp, i.e. when the producer in Kafka Connect created the record).

    kafka_dump.py --bootstrap 127.0.0.1:9092 --topic dbserver1.inventory.orders \\
        --topic dbserver1.inventory.order_items --out log.jsonl --expect 20

``--expect N`` polls until at least N records have arrived (error after --wait seconds);
records of several topics are merged in commit (LSN) order, each topic keeping its order.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STACK = Path(__file__).resolve().parent
NULL = "<<null>>"


def consume(bootstrap: str, topic: str, libs: Path, idle_ms: int) -> list[dict]:
    """Every record of one single-partition topic, oldest first (no consumer group)."""
    cmd = [
        "java",
        "-Xmx256m",
        "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={STACK / 'config/kafka/log4j2-tools.yaml'}",
        "-cp",
        f"{libs}/*",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--partition",
        "0",
        "--offset",
        "earliest",
        "--timeout-ms",
        str(idle_ms),
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.timestamp=true",
        "--formatter-property",
        "print.partition=true",
        "--formatter-property",
        "print.offset=true",
        "--formatter-property",
        "key.separator=\t",
        "--formatter-property",
        f"null.literal={NULL}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=idle_ms / 1000 + 120)
    records: list[dict] = []
    for line in proc.stdout.splitlines():
        if not line:
            continue
        ts, partition, offset, key, value = line.split("\t", 4)
        if not ts.startswith("CreateTime:") or not offset.startswith("Offset:"):
            raise ValueError(f"unexpected console consumer line: {line[:200]}")
        records.append(
            {
                "topic": topic,
                "key": None if key == NULL else key,
                "value": None if value == NULL else value,
                "partition": int(partition.removeprefix("Partition:")),
                "offset": int(offset.removeprefix("Offset:")),
                "timestamp_ms": int(ts.removeprefix("CreateTime:")),
            }
        )
    if proc.returncode not in (0, 1) and not records:
        raise RuntimeError(f"console consumer failed for {topic}: {proc.stderr[-2000:]}")
    records.sort(key=lambda r: (r["partition"], r["offset"]))
    return records


def source_lsn(value: str) -> int:
    """The PostgreSQL LSN (``source.lsn``) of a Debezium change message."""
    doc = json.loads(value)
    payload = (
        doc["payload"] if isinstance(doc, dict) and "schema" in doc and "payload" in doc else doc
    )
    return int(payload["source"]["lsn"])


def with_lsn_order(records: list[dict]) -> list[dict]:
    """Tag each record with its LSN; a tombstone takes the LSN of the delete before it."""
    last = -1
    for r in records:
        if r["value"] is not None:
            last = source_lsn(r["value"])
        r["_order"] = last
    return records


def dump(bootstrap: str, topics: list[str], libs: Path, idle_ms: int = 8000) -> list[dict]:
    """All records of the topics, merged into commit order (PostgreSQL LSN).

    Each topic keeps its own order, so a tombstone stays right after its delete and
    snapshot events (which share the snapshot's LSN) keep the order they were read in.
    """
    with ThreadPoolExecutor(len(topics)) as pool:
        fetched = list(pool.map(lambda t: consume(bootstrap, t, libs, idle_ms), topics))
    per_topic = [with_lsn_order(records) for records in fetched]
    return list(heapq.merge(*per_topic, key=lambda r: r["_order"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", action="append", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--expect", type=int, default=0, help="wait for at least N records")
    ap.add_argument("--wait", type=float, default=120.0, help="seconds to wait for --expect")
    ap.add_argument("--with-meta", action="store_true")
    ap.add_argument(
        "--libs", type=Path, default=Path(os.environ.get("KAFKA_LIBS", STACK / ".cache/kafka-libs"))
    )
    args = ap.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        records = dump(args.bootstrap, args.topic, args.libs)
        if len(records) >= args.expect:
            break
        if time.monotonic() > deadline:
            print(
                f"kafka_dump: only {len(records)} of {args.expect} records after {args.wait}s",
                file=sys.stderr,
            )
            return 1
        time.sleep(1)
    fields = ("topic", "key", "value") + (
        ("partition", "offset", "timestamp_ms") if args.with_meta else ()
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for r in records:
            f.write(json.dumps({k: r[k] for k in fields}, ensure_ascii=False) + "\n")
    print(f"kafka_dump: {len(records)} records -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
