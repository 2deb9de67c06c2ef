"""A Spark standalone cluster on loopback, from the Spark that pip's PySpark ships.

The pip package holds Spark's jars and ``bin/`` scripts, so a master and workers start with
``bin/spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker`` and no
download. :class:`StandaloneCluster` starts one master and N workers on 127.0.0.1 (free ports,
small cores and memory, each worker in its own process group so that killing it takes its
executors along, as losing a machine would), submits applications with ``bin/spark-submit``
and reads the master's JSON status page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The Spark distribution inside the installed PySpark package."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, what: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not open port {port} in {timeout:.0f}s; see {log}")


TASK_STARTED = re.compile(r"Running task (\d+)\.(\d+) in stage (\d+)\.(\d+) \(TID (\d+)\)")


@dataclass(frozen=True)
class Task:
    """One task attempt as an executor logs it: partition.attempt in stage.attempt (TID)."""

    partition: str
    attempt: str
    stage: str
    stage_attempt: str
    tid: str


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    webui_port: int
    log: Path
    work_dir: Path

    def task_log(self) -> str:
        """Its executors' logs (``Running task P.A in stage S.SA (TID T)`` lines and the like)."""
        return "".join(
            log.read_text(errors="replace") for log in sorted(self.work_dir.glob("app-*/*/stderr"))
        )

    def running_tasks(self) -> dict[str, Task]:
        """Tasks its executors have started and not finished, by task id."""
        text = self.task_log()
        ended = set(re.findall(r"(?:Finished|Killed) task .*? \(TID (\d+)\)", text))
        return {
            task.tid: task
            for task in (Task(*m) for m in TASK_STARTED.findall(text))
            if task.tid not in ended
        }

    def ran_again(self, task: Task) -> bool:
        """Whether one of its executors ran another attempt of ``task``'s partition."""
        return any(
            (t.partition, t.stage) == (task.partition, task.stage)
            and (t.attempt, t.stage_attempt) != (task.attempt, task.stage_attempt)
            for t in (Task(*m) for m in TASK_STARTED.findall(self.task_log()))
        )

    def kill(self) -> None:
        """SIGKILL the worker and its executors (its process group): a lost machine."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@dataclass
class StandaloneCluster:
    """A master and workers on loopback; everything lives under ``run_dir``."""

    run_dir: Path
    worker_cores: int = 1
    worker_memory: str = "1g"
    daemon_memory: str = "384m"
    master_port: int = 0
    master_webui_port: int = 0
    master: subprocess.Popen[bytes] | None = None
    workers: list[Worker] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            "SPARK_LOG_DIR": str(self.run_dir / "logs"),
        }

    def _spark_class(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        out = log.open("ab")
        process = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the executors it forks too
        )
        out.close()
        return process, log

    def start(self, workers: int = 2) -> StandaloneCluster:
        self.master_port = free_port()
        self.master_webui_port = free_port()
        self.master, log = self._spark_class(
            "master",
            MASTER_CLASS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.master_port),
            "--webui-port",
            str(self.master_webui_port),
        )
        _wait_port(self.master_port, "the Spark master", log)
        for index in range(workers):
            self.add_worker(f"worker-{index + 1}")
        self.wait_for_workers(workers)
        return self

    def add_worker(self, name: str) -> Worker:
        webui = free_port()
        work_dir = self.run_dir / name
        work_dir.mkdir(parents=True, exist_ok=True)
        process, log = self._spark_class(
            name,
            WORKER_CLASS,
            "--host",
            "127.0.0.1",
            "--cores",
            str(self.worker_cores),
            "--memory",
            self.worker_memory,
            "--webui-port",
            str(webui),
            "--work-dir",
            str(work_dir),
            self.url,
        )
        worker = Worker(name, process, webui, log, work_dir)
        self.workers.append(worker)
        return worker

    def status(self) -> dict[str, Any]:
        """The master's JSON status (workers with their state, applications)."""
        url = f"http://127.0.0.1:{self.master_webui_port}/json/"
        with urllib.request.urlopen(url, timeout=10) as response:
            result: dict[str, Any] = json.load(response)
            return result

    def alive_workers(self) -> int:
        return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")

    def wait_for_workers(self, count: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.alive_workers() == count:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"{count} workers did not register with the master in {timeout:.0f}s; "
            f"see {self.run_dir / 'logs'}"
        )

    def submit(
        self, app: Path, args: list[str], spark_args: list[str], log: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """``spark-submit --master <this cluster> SPARK_ARGS APP ARGS`` in the background."""
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
        process = subprocess.Popen(
            [
                str(spark_home() / "bin" / "spark-submit"),
                "--master",
                self.url,
                *spark_args,
                str(app),
                *args,
            ],
            env={**self.env(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        return process

    def stop(self) -> None:
        """Kill every worker (with its executors) and the master."""
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.kill()
        if self.master is not None and self.master.poll() is None:
            os.killpg(self.master.pid, signal.SIGKILL)
            self.master.wait(timeout=30)


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM a process group, then SIGKILL it after ``grace`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def committed_offsets(query_checkpoint: Path) -> dict[str, dict[str, int]]:
    """The source offsets up to which a query has committed (its newest ``commits/N`` batch's
    ``offsets/N``), as ``{topic: {partition: next offset}}``; empty before the first commit."""
    commits = [int(p.name) for p in (query_checkpoint / "commits").glob("[0-9]*")]
    if not commits:
        return {}
    lines = (query_checkpoint / "offsets" / str(max(commits))).read_text().splitlines()
    offsets: dict[str, dict[str, int]] = {}
    for line in lines[2:]:  # "v1", the batch metadata, then one line per source
        if line.strip() and line.strip() != "-":
            for topic, partitions in json.loads(line).items():
                offsets[topic] = {str(p): int(o) for p, o in partitions.items()}
    return offsets
