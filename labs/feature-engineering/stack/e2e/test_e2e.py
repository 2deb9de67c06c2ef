"""End to end on real components: PostgreSQL → Debezium → Kafka → Spark → Redis.

One scenario, in order (each step checks the whole feature store):
1. rows that exist before the connector starts (read by Debezium's snapshot), then a
   steady stream of orders, corrections, cancellations, deletes and back-dated orders;
2. the Spark job is stopped in the middle of a stream — inside a micro-batch: its offsets
   are logged, its commit is not — and restarted from its checkpoint (Spark runs that
   batch again);
3. Kafka Connect is killed in the middle of a stream (SIGKILL: its last source offsets are
   not flushed, so Debezium sends those changes again) and restarted.
After each step, the features read from Redis at T = now equal both the batch reference
(``cdc_features.core.reference``) computed from every message on the Kafka topics, and an
independent SQL computation over the database's current rows.

Run with ``stack/e2e-test.sh`` (starts and stops the stack; JUnit XML to $JUNIT_XML).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from checks import PREFIX, check_store, wait_for_kafka
from stackctl import (
    Stack,
    duplicate_deliveries,
    finish_workload,
    payload,
    read_changes,
    run_workload,
)


class Job:
    """The lab's streaming job (cdc_features.job) on the stack's Kafka and Redis."""

    def __init__(self, spark: Any, stack: Stack, checkpoint: Path) -> None:
        from cdc_features.job.config import PipelineConfig

        env = stack.env()
        self.spark = spark
        self.config = PipelineConfig(
            checkpoint_dir=checkpoint,
            source="kafka",
            bootstrap_servers=env["KAFKA_BOOTSTRAP"],
            topic_prefix=PREFIX,
            sinks=("redis",),
            redis_url=env["REDIS_URL"],
            trigger="1 second",
            progress=False,
        )
        self.pipeline: Any = None

    def start(self) -> None:
        from cdc_features.job.pipeline import start_pipeline

        self.pipeline = start_pipeline(self.spark, self.config)

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def stop_inside_batch(self, timeout: float = 300) -> int:
        """Stop the job while a feature query is inside a micro-batch; return that batch id.

        Inside means planned and not finished: ``offsets/N`` is in the query's checkpoint,
        ``commits/N`` is not. A restart runs batch N again from the logged offsets. (Spark
        4.1.1's Kafka source failed exactly that restart with a NullPointerException in
        ``KafkaMicroBatchStream.metrics``, fixed by SPARK-57438; 4.2.0 has the fix.) Such a
        stop can print a ``StackOverflowError`` from the stream execution thread: Spark tells
        an interruption inside a Python ``foreachBatch`` by matching the Py4J error text with
        a recursive regex (``(.|\r\n|\r|\n)*``), which overflows on a long text; the query
        has stopped all the same and the restart is unaffected.
        """
        from cdc_features.core.spec import CUSTOMER_QUERY, PRODUCT_QUERY

        deadline = time.monotonic() + timeout
        while True:
            for name in (CUSTOMER_QUERY, PRODUCT_QUERY):
                planned = batch_ids(Path(self.config.checkpoint_dir), name, "offsets")
                committed = batch_ids(Path(self.config.checkpoint_dir), name, "commits")
                if planned and max(planned) not in committed:
                    self.stop()
                    if max(planned) in batch_ids(Path(self.config.checkpoint_dir), name, "commits"):
                        break  # it finished while stopping: try again
                    return max(planned)
            if time.monotonic() > deadline:
                raise AssertionError(f"never caught the job inside a micro-batch in {timeout}s")
            if self.pipeline is None:
                self.start()
            time.sleep(0.01)

    def await_idle(self) -> None:
        self.raise_if_failed()
        self.pipeline.await_idle()

    def raise_if_failed(self) -> None:
        """Fail the test at once, naming the query, when a streaming query has died."""
        if self.pipeline is None:
            return
        for name, query in self.pipeline.queries.items():
            error = query.exception()
            if error is not None:
                raise AssertionError(f"streaming query {name} failed: {str(error)[:2000]}")


def test_cdc_to_redis_end_to_end(stack: Stack, spark: Any, store: redis.Redis) -> None:
    work = stack.run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    changes_file = work / "changes.jsonl"

    # 1. rows before the connector exists → snapshot (op=r); then a steady stream
    run_workload(stack, changes_file, seed=11, changes=150, rate=0)
    stack.connector()
    job = Job(spark, stack, work / "checkpoints")
    job.start()
    try:
        run_workload(stack, changes_file, seed=12, changes=1200, rate=150)
        messages = wait_for_kafka(spark, stack, job.raise_if_failed)
        job.await_idle()
        ops = {payload(m["value"])["op"] if m["value"] else None for m in messages}
        assert {"r", "c", "u", "d", None} <= ops, ops
        summary = check_store(stack, store, messages)
        print(f"step 1 (snapshot + stream): {summary}")

        # 2. stop the Spark job inside a micro-batch, restart it from its checkpoint
        proc = run_workload(stack, changes_file, seed=13, changes=800, rate=100, background=True)
        time.sleep(3)
        interrupted = job.stop_inside_batch()
        time.sleep(2)
        job.start()
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job.raise_if_failed)
        job.await_idle()
        summary = check_store(stack, store, messages)
        print(
            f"step 2 (Spark stopped inside micro-batch {interrupted}, restarted from its "
            f"checkpoint): {summary}"
        )

        # 3. crash Kafka Connect mid-stream; Debezium resumes from its last flushed offset
        before = duplicate_deliveries(messages)
        proc = run_workload(stack, changes_file, seed=14, changes=800, rate=100, background=True)
        time.sleep(3)
        stack.crash_connect()
        stack.up("connect")
        stack.connector()
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job.raise_if_failed)
        job.await_idle()
        summary = check_store(stack, store, messages)
        resent = duplicate_deliveries(messages) - before
        print(f"step 3 (Connect killed and restarted): {summary}, re-sent messages: {resent}")
        assert len(read_changes(changes_file)) == 150 + 1200 + 800 + 800
    finally:
        job.stop()


def batch_ids(checkpoint: Path, query: str, log: str) -> set[int]:
    """Batch ids in a query's checkpoint log (``offsets`` or ``commits``)."""
    folder = checkpoint / query / log
    return {int(p.name) for p in folder.glob("[0-9]*")} if folder.exists() else set()
