"""The fact writer's loop on a real Redis, with the consumer replaced by a list of records
(the real consumer on a real Kafka runs in the e2e suite, stack/e2e/test_e2e_realtime.py):
facts applied before the offsets are committed, a record that is not a fact dead-lettered
with its reason, a retriable consumer error skipped, a fatal one raised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import redis

from cdc_features.job.fact_writer import FactWriter, consumer_settings
from cdc_features.stores.order_facts import OrderFactStore


@dataclass
class Err:
    text: str
    is_fatal: bool

    def fatal(self) -> bool:
        return self.is_fatal

    def __str__(self) -> str:
        return self.text


@dataclass
class Msg:
    payload: bytes | None
    err: Err | None = None

    def error(self) -> Err | None:
        return self.err

    def value(self) -> bytes | None:
        return self.payload

    def topic(self) -> str | None:
        return "cdc_features.customer_order_facts"


@dataclass
class ListConsumer:
    """Hands out the queued records; records what the store held at each commit."""

    queue: list[Msg]
    client: redis.Redis
    commits: list[int] = field(default_factory=list)

    def poll(self, timeout: float) -> Msg | None:
        return self.queue.pop(0) if self.queue else None

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        out, self.queue = self.queue[:num_messages], self.queue[num_messages:]
        return out

    def commit(self, *, asynchronous: Literal[True] = True) -> Any:
        self.commits.append(len(list(self.client.scan_iter("co:*"))))


def fact(customer_id: int, order_id: int, lsn: int) -> Msg:
    value = {
        "customer_id": customer_id,
        "order_id": order_id,
        "lsn": lsn,
        "rank": 1,
        "active": True,
        "amount": "12.50",
        "order_ts_us": 1_773_000_000_000_000,
        "commit_ms": 1_773_000_000_000,
    }
    return Msg(json.dumps(value).encode())


def test_applies_then_commits_and_dead_letters_what_is_not_a_fact(
    redis_client: redis.Redis,
) -> None:
    queue = [
        fact(1, 10, 100),
        Msg(b'{"customer_id": 2}'),
        Msg(None, Err("Subscribed topic not available", is_fatal=False)),
        fact(2, 11, 101),
        fact(1, 10, 100),  # a replay
    ]
    consumer = ListConsumer(queue, redis_client)
    dead: list[tuple[bytes | None, str]] = []
    errors: list[str] = []
    writer = FactWriter(
        consumer,
        OrderFactStore(redis_client),
        lambda raw, reason: dead.append((raw, reason)),
        max_batch=3,
        on_error=errors.append,
    )
    assert writer.step() == 3
    assert consumer.commits == [1]  # customer 1's fact was in Redis when the offsets were committed
    assert dead == [(b'{"customer_id": 2}', "not_a_fact:KeyError")]
    assert errors == ["Subscribed topic not available"]
    assert writer.step() == 2
    assert consumer.commits == [1, 2]
    assert writer.step() == 0  # nothing arrived: nothing to commit
    assert consumer.commits == [1, 2]
    assert writer.stats.results == {"applied": 2, "superseded": 1}
    assert writer.stats.line() == (
        "[fact_writer] 5 records: applied 2, superseded 1, late 0, dead letters 1"
    )


def test_a_fatal_consumer_error_stops_the_writer(redis_client: redis.Redis) -> None:
    consumer = ListConsumer([Msg(None, Err("fenced", is_fatal=True))], redis_client)
    writer = FactWriter(consumer, OrderFactStore(redis_client), lambda raw, reason: None)
    with pytest.raises(RuntimeError, match="fenced"):
        writer.step()
    assert consumer.commits == []


def test_consumer_commits_by_hand_and_starts_at_the_beginning() -> None:
    settings = consumer_settings("127.0.0.1:9092", "g")
    assert settings["enable.auto.commit"] is False
    assert settings["auto.offset.reset"] == "earliest"
