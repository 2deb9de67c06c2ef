"""The low-latency path's writer: the facts topic → Redis, as records arrive.

    python -m cdc_features.job.fact_writer --bootstrap-servers 127.0.0.1:9092 \\
        --redis-url redis://127.0.0.1:6379/0

A Kafka consumer (confluent-kafka: librdkafka inside the PyPI wheel) in a consumer group.
Each poll returns what has arrived (up to ``max_batch`` records, waiting only for the
first); the facts are applied with one pipelined round trip of Lua calls
(:class:`cdc_features.stores.order_facts.OrderFactStore`: atomic, LSN-guarded), and only
then are the offsets committed. A crash between the write and the commit replays those
records after the restart, which changes nothing in the store (the LSN guard), so the
writer is at-least-once and the store exactly the same as after one delivery. A record
that is not a fact goes to the dead-letter topic with the reason ``not_a_fact:<error>``.

Why not inside Spark: Real-Time Mode refuses ``foreachBatch``, and a Python ``foreach``
sink on a Real-Time Mode query wrote nothing while the real-time batch was open (Spark
4.2.0, measured); a Kafka topic between them also lets the writer restart on its own.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import redis

from cdc_features.core.spec import ORDER_FACTS_TOPIC, REALTIME_DEAD_LETTER_TOPIC
from cdc_features.stores.order_facts import BadFact, FactRecord, OrderFactStore, decode_fact
from cdc_features.stores.redis_store import DEFAULT_REDIS_URL

DEFAULT_GROUP = "cdc-features-fact-writer"


class Message(Protocol):
    """What the writer uses of a ``confluent_kafka.Message``."""

    def error(self) -> Any: ...
    def value(self) -> bytes | None: ...
    def topic(self) -> str | None: ...


class Consumer(Protocol):
    """What the writer uses of a ``confluent_kafka.Consumer``."""

    def poll(self, timeout: float) -> Any: ...  # a Message or None
    def consume(self, num_messages: int, timeout: float) -> Sequence[Any]: ...  # Messages
    def commit(self, *, asynchronous: Literal[True] = ...) -> Any: ...


@dataclass
class WriterStats:
    """Counts since the writer started (the progress line and the tests read them)."""

    polls: int = 0
    records: int = 0
    results: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0

    def line(self) -> str:
        r = self.results
        return (
            f"[fact_writer] {self.records} records: applied {r['applied']}, "
            f"superseded {r['superseded']}, late {r['late']}, dead letters {self.dead_letters}"
        )


@dataclass
class FactWriter:
    """Polls, applies, then commits. ``dead_letter`` receives ``(raw, reason)`` of a record
    that is not a fact (the CLI produces it to the dead-letter topic)."""

    consumer: Consumer
    store: OrderFactStore
    dead_letter: Callable[[bytes | None, str], None]
    max_batch: int = 1000
    stats: WriterStats = field(default_factory=WriterStats)
    on_error: Callable[[str], None] = field(
        default=lambda text: print(f"[fact_writer] {text}", file=sys.stderr, flush=True)
    )

    def _messages(self, timeout: float) -> list[Message]:
        first = self.consumer.poll(timeout)  # wait for the first record only...
        if first is None:
            return []
        return [first, *self.consumer.consume(self.max_batch - 1, 0)]  # ...then take the rest

    def step(self, timeout: float = 0.5) -> int:
        """One poll: apply what arrived, commit it; the number of records handled."""
        messages = self._messages(timeout)
        self.stats.polls += 1
        facts: list[FactRecord] = []
        for m in messages:
            err = m.error()
            if err is not None:
                # e.g. the topic does not exist until the query writes its first fact:
                # librdkafka retries by itself; a fatal error ends the writer
                if getattr(err, "fatal", lambda: True)():
                    raise RuntimeError(f"Kafka consumer error: {err}")
                self.on_error(str(err))
                continue
            value = m.value()
            try:
                facts.append(decode_fact(value if value is not None else b""))
            except BadFact as err:
                self.dead_letter(value, str(err))
                self.stats.dead_letters += 1
        self.stats.results += self.store.apply(facts)
        if messages:
            self.consumer.commit(asynchronous=True)
        self.stats.records += len(messages)
        return len(messages)


def consumer_settings(bootstrap_servers: str, group: str) -> dict[str, Any]:
    """librdkafka settings of the writer: manual commits after the write, start at the
    beginning of the topic for a new group, no batching delay on the fetch side."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "fetch.min.bytes": 1,
        "enable.partition.eof": False,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the writer until Ctrl-C / SIGTERM; a progress line every ``--progress-every`` s."""
    from confluent_kafka import Consumer as KafkaConsumer
    from confluent_kafka import KafkaException, Producer

    parser = argparse.ArgumentParser(
        prog="python -m cdc_features.job.fact_writer",
        description="per-order customer facts (Kafka) → Redis, LSN-guarded",
    )
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--topic", default=ORDER_FACTS_TOPIC)
    parser.add_argument("--dead-letter-topic", default=REALTIME_DEAD_LETTER_TOPIC)
    parser.add_argument("--group", default=DEFAULT_GROUP)
    parser.add_argument("--max-batch", type=int, default=1000)
    parser.add_argument("--progress-every", type=float, default=10.0)
    args = parser.parse_args(argv)

    consumer = KafkaConsumer(consumer_settings(args.bootstrap_servers, args.group))
    consumer.subscribe([args.topic])
    producer = Producer({"bootstrap.servers": args.bootstrap_servers, "linger.ms": 0})

    def dead_letter(raw: bytes | None, reason: str) -> None:
        text = raw.decode("utf-8", "replace") if raw is not None else None
        value = json.dumps({"raw": text, "reason": reason, "topic": args.topic})
        producer.produce(args.dead_letter_topic, value=value.encode(), key=args.topic.encode())
        producer.flush(10)

    client = redis.Redis.from_url(args.redis_url, socket_timeout=30, socket_connect_timeout=30)
    writer = FactWriter(consumer, OrderFactStore(client), dead_letter, max_batch=args.max_batch)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"[fact_writer] {args.topic} → {args.redis_url} (group {args.group})", flush=True)
    last = time.monotonic()
    try:
        while not stop.is_set():
            writer.step()
            if time.monotonic() - last >= args.progress_every:
                print(writer.stats.line(), flush=True)
                last = time.monotonic()
    finally:
        if writer.stats.records:
            try:  # the last asynchronous commit may still be on its way
                consumer.commit(asynchronous=False)
            except KafkaException as err:  # nothing new to commit
                print(f"[fact_writer] final commit: {err}", file=sys.stderr)
        consumer.close()  # leaves the group
        print(writer.stats.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
