"""The job, unchanged, on a Spark standalone cluster: a worker is killed in the middle of a stream.

A master and two workers (one core each) start on loopback from the Spark inside pip's
PySpark; ``spark-submit`` runs ``cdc_features.job`` against the stack's Kafka and writes to
Redis database 1 (the job scenario of ``test_e2e.py`` keeps database 0). The job first
catches up with everything on the topics, then a worker — and the executor it runs — is
SIGKILLed while orders stream in, as when a machine is lost. Spark re-runs the lost tasks on
the other executor and reloads the state stores from the checkpoint; once the job has
committed every offset on Kafka, the store must equal the batch reference and the SQL truth,
as in ``test_e2e.py``.

The worker is killed while its executor runs a task (seen in the executor's log), and the
other worker's executor must run that task's partition again (another attempt).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import redis

from checks import PREFIX, check_store, wait_for_kafka
from cluster import StandaloneCluster, Task, Worker, committed_offsets, stop_process_group
from stackctl import LAB, Stack, finish_workload, run_workload

JOB = LAB / "src" / "cdc_features" / "job" / "__main__.py"
CATCH_UP_SECONDS = 420
KILL_TIMEOUT = 300
LONG_TASK_SECONDS = 0.5


def wait_for_a_running_task(worker: Worker, job: SubmittedJob, timeout: float) -> list[Task]:
    """Until the worker's executor has been running a task for a while (a long task is still
    running a moment later, when the kill lands); returns those tasks."""
    deadline = time.monotonic() + timeout
    first_seen: dict[str, float] = {}
    while True:
        job.raise_if_failed()
        now = time.monotonic()
        running = worker.running_tasks()
        first_seen = {tid: first_seen.get(tid, now) for tid in running}
        long = [running[t] for t, seen in first_seen.items() if now - seen >= LONG_TASK_SECONDS]
        if long:
            return long
        if now > deadline:
            raise AssertionError(f"no task ran on {worker.name} in {timeout:.0f}s: {tail(job.log)}")
        time.sleep(0.02)


def end_offsets(messages: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{topic: {partition: next offset}}`` of the messages read from Kafka."""
    out: dict[str, dict[str, int]] = {}
    for m in messages:
        partitions = out.setdefault(m["topic"], {})
        key = str(m["partition"])
        partitions[key] = max(partitions.get(key, 0), int(m["offset"]) + 1)
    return out


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"(no {path})"


class SubmittedJob:
    """``cdc_features.job`` submitted to the cluster; its progress is read from its checkpoint."""

    def __init__(self, cluster: StandaloneCluster, stack: Stack, work: Path, redis_url: str):
        from cdc_features.job.spark import KAFKA_PACKAGE

        self.checkpoint = work / "checkpoints"
        self.log = work / "driver.log"
        env = stack.env()
        self.process = cluster.submit(
            JOB,
            [
                "--source=kafka",
                f"--bootstrap-servers={env['KAFKA_BOOTSTRAP']}",
                f"--topic-prefix={PREFIX}",
                f"--checkpoint-dir={self.checkpoint}",
                f"--dead-letter-dir={work / 'dead_letters'}",
                "--sink=redis",
                f"--redis-url={redis_url}",
                "--trigger=1 second",
                "--shuffle-partitions=4",
            ],
            [
                "--packages",
                KAFKA_PACKAGE,
                "--total-executor-cores",
                "2",
                "--executor-cores",
                "1",
                "--executor-memory",
                "768m",
                "--driver-memory",
                "1g",
                "--conf",
                "spark.driver.host=127.0.0.1",
            ],
            self.log,
            {"PYSPARK_PYTHON": sys.executable, "SPARK_LOG_LEVEL": "WARN"},
        )

    def raise_if_failed(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the submitted job exited with {self.process.returncode}:\n{tail(self.log)}"
            )

    def wait_until_committed(self, wanted: dict[str, dict[str, int]], timeout: float) -> None:
        """Until both feature queries have committed micro-batches up to ``wanted``."""
        from cdc_features.core.spec import CUSTOMER_QUERY, PRODUCT_QUERY

        deadline = time.monotonic() + timeout
        while True:
            self.raise_if_failed()
            got = {
                q: committed_offsets(self.checkpoint / q) for q in (CUSTOMER_QUERY, PRODUCT_QUERY)
            }
            if all(offsets == wanted for offsets in got.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the job did not commit the Kafka end offsets {wanted} in {timeout:.0f}s "
                    f"(committed: {got}):\n{tail(self.log)}"
                )
            time.sleep(1)


def test_job_on_a_standalone_cluster_survives_a_lost_worker(
    stack: Stack, spark: Any, store: redis.Redis
) -> None:
    from cdc_features.testing import redis_db

    work = stack.run_dir / "cluster"
    changes_file = work / "changes.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    stack.connector()  # idempotent: the job scenario may have registered it already
    run_workload(stack, changes_file, seed=21, changes=300, rate=0)
    redis_url = redis_db(stack.env()["REDIS_URL"], 1)
    db1 = redis.Redis.from_url(redis_url)
    db1.flushdb()

    cluster = StandaloneCluster(work / "spark").start(workers=2)
    job: SubmittedJob | None = None
    started = time.monotonic()
    try:
        job = SubmittedJob(cluster, stack, work, redis_url)
        # orders stream in while the job works through the topics
        proc = run_workload(stack, changes_file, seed=22, changes=800, rate=100, background=True)
        victim = cluster.workers[0]
        in_flight = wait_for_a_running_task(victim, job, KILL_TIMEOUT)
        apps = cluster.status()["activeapps"]
        assert [a["cores"] for a in apps] == [2], apps  # two executors, one per worker
        victim.kill()  # the worker and its executor, in the middle of a task
        killed_at = time.monotonic() - started
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job.raise_if_failed)
        job.wait_until_committed(end_offsets(messages), CATCH_UP_SECONDS)

        assert cluster.alive_workers() == 1
        assert "Lost executor" in job.log.read_text(errors="replace"), tail(job.log)
        survivor = cluster.workers[1]
        assert any(survivor.ran_again(task) for task in in_flight), (in_flight, tail(job.log))
        summary = check_store(stack, db1, messages)
        print(
            f"cluster: worker killed {killed_at:.0f}s after submit while its executor ran "
            f"{in_flight}, run again on the other worker; store equal to the reference "
            f"{time.monotonic() - started:.0f}s after submit: {summary}"
        )
    finally:
        if job is not None:
            stop_process_group(job.process)
        cluster.stop()
        db1.close()
