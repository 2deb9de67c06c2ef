"""End to end, the low-latency path: PostgreSQL → Debezium → Kafka → Spark Real-Time Mode
(stateless, per-order facts) → Kafka → fact writer → Redis.

Runs after the job scenario, on the same stack (the topics already hold its changes; a new
Real-Time Mode query starts at the earliest offsets, so it reads all of them). In order:
1. the query (``cdc_features.job.realtime``, in this test's SparkSession) and the writer
   (``python -m cdc_features.job.fact_writer``, a process) start; a stream of orders,
   corrections, cancellations, moves and deletes;
2. mid-stream the query is stopped inside its real-time batch and restarted from its
   checkpoint (it writes the facts since its last checkpoint again), and the writer is
   killed with SIGKILL (its last offsets uncommitted) and started again;
3. Kafka Connect is killed mid-stream and restarted (Debezium re-sends unflushed changes).
After each step the customer features read from the per-order facts at T = now equal the
batch reference over every message on Kafka and the SQL truth; the writer's counts show
that the replays reached the store and changed nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from checks import PREFIX, check_store, wait_for_kafka
from stackctl import LAB, Stack, finish_workload, run_workload

CATCH_UP_SECONDS = 180


class Writer:
    """The fact writer as its own process (as in production), log in the run folder."""

    def __init__(self, stack: Stack, log: Path) -> None:
        env = stack.env()
        self.cmd = [
            sys.executable,
            "-m",
            "cdc_features.job.fact_writer",
            "--bootstrap-servers",
            env["KAFKA_BOOTSTRAP"],
            "--redis-url",
            env["REDIS_URL"],
            "--progress-every",
            "1",
        ]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=LAB, stdout=out, stderr=out)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def counts(self) -> dict[str, int]:
        """The newest progress line of the running process (counts since it started)."""
        text = self.log.read_text(errors="replace")
        lines = re.findall(
            r"\[fact_writer\] (\d+) records: applied (\d+), superseded (\d+), late (\d+), "
            r"dead letters (\d+)",
            text.split(" → ")[-1],  # the current process's lines: after its start line
        )
        if not lines:
            return {"records": 0, "applied": 0, "superseded": 0, "late": 0, "dead_letters": 0}
        keys = ("records", "applied", "superseded", "late", "dead_letters")
        return dict(zip(keys, map(int, lines[-1]), strict=True))

    def raise_if_failed(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"fact writer exited {self.proc.returncode}: see {self.log}")


def eventually(check: Callable[[], dict[str, int]], raise_if_failed: Callable[[], None]) -> Any:
    """``check()`` once it passes (the writer catches up), failing after CATCH_UP_SECONDS."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        raise_if_failed()
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def replay_window(
    checkpoint: str, writer: Writer, raise_if_failed: Callable[[], None], timeout: float = 300
) -> None:
    """Return once facts have reached the writer after the query's newest checkpoint: stopping
    the query now makes its restart write those facts again (a Real-Time Mode batch logs its
    offsets and commit when it ends; a restart resumes from the last committed one)."""
    commits = Path(checkpoint) / "commits"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raise_if_failed()
        newest = max((f.stat().st_mtime for f in commits.glob("[0-9]*")), default=0.0)
        before = writer.counts()["records"]
        time.sleep(2)  # the writer prints its counts every second
        newer = max((f.stat().st_mtime for f in commits.glob("[0-9]*")), default=0.0)
        if newer == newest and writer.counts()["records"] > before:
            return
    raise AssertionError(f"no facts after a checkpoint of the query within {timeout}s")


def test_realtime_mode_path_end_to_end(stack: Stack, spark: Any, store: redis.Redis) -> None:
    from cdc_features.job.realtime import RealtimeConfig, start_realtime_query
    from cdc_features.stores.order_facts import OrderFactsReader

    work = stack.run_dir / "work-realtime"
    work.mkdir(parents=True, exist_ok=True)
    changes_file = work / "changes.jsonl"
    env = stack.env()
    stack.connector()  # idempotent: the job scenario registered it already
    config = RealtimeConfig(
        bootstrap_servers=env["KAFKA_BOOTSTRAP"],
        checkpoint_dir=work / "checkpoints",
        topic_prefix=PREFIX,
        checkpoint_interval="10 seconds",
    )
    reader = OrderFactsReader(store)
    query = start_realtime_query(spark, config)
    writer = Writer(stack, work / "writer.log")
    writer.start()

    def raise_if_failed() -> None:
        writer.raise_if_failed()
        if query.exception() is not None:
            raise AssertionError(f"Real-Time Mode query failed: {str(query.exception())[:2000]}")

    def checked() -> dict[str, int]:
        messages = wait_for_kafka(spark, stack, raise_if_failed)
        return check_store(stack, store, messages, reader=reader, products=False)

    try:
        # 1. the stream, both parts running
        started = time.monotonic()
        run_workload(stack, changes_file, seed=21, changes=600, rate=100)
        summary = eventually(checked, raise_if_failed)
        print(
            f"realtime step 1 (stream): {summary}, writer {writer.counts()}, "
            f"{time.monotonic() - started:.1f}s"
        )

        # 2. query stopped inside its real-time batch and restarted; writer SIGKILLed
        proc = run_workload(stack, changes_file, seed=22, changes=600, rate=100, background=True)
        replay_window(config.checkpoint_location(), writer, raise_if_failed)
        query.stop()
        writer.kill()
        time.sleep(2)
        query = start_realtime_query(spark, config)
        writer.start()
        assert proc is not None
        finish_workload(proc)
        summary = eventually(checked, raise_if_failed)
        counts = writer.counts()
        print(
            f"realtime step 2 (query restarted from its checkpoint, writer killed): {summary}, "
            f"writer since restart {counts}"
        )
        # the facts written again after the restart reached the store and changed nothing
        assert counts["superseded"] > 0, counts

        # 3. Kafka Connect killed mid-stream and restarted
        proc = run_workload(stack, changes_file, seed=23, changes=600, rate=100, background=True)
        time.sleep(3)
        stack.crash_connect()
        stack.up("connect")
        stack.connector()
        assert proc is not None
        finish_workload(proc)
        summary = eventually(checked, raise_if_failed)
        print(
            f"realtime step 3 (Connect killed and restarted): {summary}, writer {writer.counts()}"
        )
    finally:
        query.stop()
        writer.stop()
    assert os.path.exists(work / "checkpoints" / "customer_order_facts" / "offsets")


def test_realtime_mode_refuses_the_stateful_customer_query(
    stack: Stack, spark: Any, tmp_path: Path
) -> None:
    """The micro-batch job's customer query (daily tiles: a windowed aggregation with a
    watermark) under ``trigger(realTime=...)`` fails with the allowlist error on Spark 4.2.0,
    and so does a ``foreachBatch`` sink: why the low-latency path is stateless and writes to
    Kafka. (Spark 4.3.0 allowlists aggregations: this test tells when the pin moves.)"""
    from cdc_features.core.envelope import parse_order_events
    from cdc_features.core.features import compute_customer_features
    from cdc_features.job.realtime import RealtimeConfig, read_orders

    config = RealtimeConfig(stack.env()["KAFKA_BOOTSTRAP"], tmp_path, topic_prefix=PREFIX)
    tiles = compute_customer_features(parse_order_events(read_orders(spark, config)).events)
    errors = {}
    for name, writer in {
        "aggregation": tiles.writeStream.format("console"),
        "foreachBatch": read_orders(spark, config).writeStream.foreachBatch(lambda df, i: None),
    }.items():
        query = (
            writer.outputMode("update")
            .option("checkpointLocation", str(tmp_path / name))
            .trigger(realTime="5 seconds")  # type: ignore[call-overload]
        )
        try:
            started = query.start()
            deadline = time.monotonic() + 120
            while started.exception() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            error = str(started.exception())
            started.stop()
        except Exception as exc:  # noqa: BLE001 - refused at start: the error is the result
            error = str(exc)
        errors[name] = error
        print(f"Real-Time Mode, {name}: {error.splitlines()[0][:600]}")
    assert "STREAMING_REAL_TIME_MODE.OPERATOR_OR_SINK_NOT_IN_ALLOWLIST" in errors["aggregation"]
    for operator in ("HashAggregateExec", "StateStoreSaveExec"):
        assert operator in errors["aggregation"], errors["aggregation"][:2000]
    assert "STREAMING_REAL_TIME_MODE" in errors["foreachBatch"], errors["foreachBatch"][:2000]
