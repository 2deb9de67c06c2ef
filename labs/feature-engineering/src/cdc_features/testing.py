"""The harness the tests and the benchmarks share (and the lab's exercise checker reuses).

* :class:`RedisServer` — a private ``redis-server`` on a free loopback port;
* :class:`FileStream` — a watched folder of JSON-lines files and streaming queries over it
  (one file per micro-batch), fed and drained step by step;
* :class:`FeatureStream` — both feature queries of the job on such a folder, writing into an
  in-memory store, fed one step at a time (the watermark moves between steps, as in production);
* the log files: :func:`write_log` / :func:`write_deliveries` / :func:`read_log` (JSON lines
  ``{"topic", "key", "value"}``, each file written under a hidden name and renamed, so a
  watching file source never sees half a file);
* helpers to cut and feed logs and to build a job configuration for tests.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from cdc_features.core import reference
from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures, ProductFeatures
from cdc_features.core.envelope import parse_item_events, parse_order_events
from cdc_features.core.features import compute_customer_features, compute_product_features
from cdc_features.job.config import PipelineConfig
from cdc_features.job.progress import dropped_by_watermark
from cdc_features.stores.base import FeatureReader
from cdc_features.stores.memory import MemoryStore

RAW_SCHEMA = "topic string, key string, value string"
BatchFunction = Callable[[DataFrame, int], None]
NO_DATA_BATCHES = "spark.sql.streaming.noDataMicroBatches.enabled"


# Modification times of files written in a known order: the file source reads new files in
# modification-time order, and files written in one go can share a timestamp.
ORDERED_MTIME_BASE = 1_700_000_000


def write_file(
    records: Iterable[Mapping[str, Any]], path: Path, *, mtime: int | None = None
) -> Path:
    """One JSON-lines file, written under a hidden name and renamed into place."""
    hidden = path.parent / f".{path.name}.tmp"
    hidden.write_text(
        "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), encoding="utf-8"
    )
    if mtime is not None:
        os.utime(hidden, (mtime, mtime))
    hidden.rename(path)
    return path


def write_log(
    records: Iterable[Record],
    directory: Path,
    *,
    events_per_file: int = 10_000,
    prefix: str = "events",
) -> list[Path]:
    """Records as JSON-lines files ``<prefix>-00000.jsonl``…, ``events_per_file`` per file."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= events_per_file:
            paths.append(write_file(chunk, directory / f"{prefix}-{len(paths):05d}.jsonl"))
            chunk = []
    if chunk:
        paths.append(write_file(chunk, directory / f"{prefix}-{len(paths):05d}.jsonl"))
    return paths


def write_deliveries(
    deliveries: Sequence[Sequence[Record]], directory: Path, prefix: str = "orders"
) -> list[Path]:
    """One file per delivery, modification times in delivery order (a file source with
    ``maxFilesPerTrigger=1`` reads one delivery per micro-batch)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_file(
            records, directory / f"{prefix}-{index:03d}.jsonl", mtime=ORDERED_MTIME_BASE + index
        )
        for index, records in enumerate(deliveries)
    ]


def read_log(path: Path) -> list[Record]:
    """Records of a ``.jsonl`` / ``.jsonl.gz`` file or of every ``*.jsonl`` file of a folder."""
    if path.is_dir():
        out: list[Record] = []
        for file in sorted(path.glob("*.jsonl")):
            out += read_log(file)
        return out
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as zipped:
            return [json.loads(line) for line in zipped if line.strip()]
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def raw_frame(spark: SparkSession, records: Iterable[Mapping[str, Any]]) -> DataFrame:
    """The raw input of the job as a static DataFrame: ``topic``, ``key``, ``value`` strings."""
    rows = [(r["topic"], r["key"], r["value"]) for r in records]
    return spark.createDataFrame(rows, RAW_SCHEMA)


def static_store(spark: SparkSession, records: Sequence[Record]) -> MemoryStore:
    """Both feature functions on a static DataFrame of ``records``, in an in-memory store."""
    raw = raw_frame(spark, records)
    orders = parse_order_events(raw).events
    items = parse_item_events(raw).events
    store = MemoryStore()
    store.apply_tiles(r.asDict() for r in compute_customer_features(orders).collect())
    store.apply_lines(r.asDict() for r in compute_product_features(orders, items).collect())
    return store


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of its own on a free 127.0.0.1 port (no persistence).

    A missing binary is an error naming the Debian package, never a skip: CI installs it.
    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, workdir: Path, *, startup_timeout: float = 15.0) -> None:
        self.workdir = workdir
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server not found on PATH: install the Debian package 'redis-server'"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.process.kill()
                        raise RuntimeError(
                            f"redis-server did not start on port {self.port}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Terminate the server (and wait for it); harmless when it already stopped."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def redis_db(url: str, db: int) -> str:
    """The same server, another logical database."""
    return url.rsplit("/", 1)[0] + f"/{db}"


class FileStream:
    """A watched folder of JSON-lines files and the streaming queries started over it.

    ``add`` writes one file atomically (the source ignores dot files until the rename) with
    a modification time that keeps the files in order even when written at once; with
    ``max_files_per_trigger=1`` each file is one micro-batch. ``process`` waits until every
    query has read every file.
    """

    def __init__(
        self,
        spark: SparkSession,
        root: Path,
        *,
        schema: str = RAW_SCHEMA,
        max_files_per_trigger: int | None = 1,
    ) -> None:
        self.spark = spark
        self.root = root
        self.input = root / "input"
        self.input.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.max_files_per_trigger = max_files_per_trigger
        self.files = 0
        self.queries: dict[str, StreamingQuery] = {}

    def add(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        """One more file (one micro-batch); returns its path."""
        path = write_file(
            rows, self.input / f"{self.files:05d}.json", mtime=ORDERED_MTIME_BASE + self.files
        )
        self.files += 1
        return path

    def source(self) -> DataFrame:
        """The folder as a streaming DataFrame of ``schema``."""
        reader = self.spark.readStream.schema(self.schema)
        if self.max_files_per_trigger:
            reader = reader.option("maxFilesPerTrigger", self.max_files_per_trigger)
        return reader.json(str(self.input))

    def start(
        self,
        name: str,
        df: DataFrame,
        sink: BatchFunction,
        *,
        output_mode: str = "update",
        available_now: bool = False,
        no_data_batches: bool = True,
    ) -> StreamingQuery:
        """Start ``df`` → ``foreachBatch(sink)`` with its checkpoint under the root.

        ``no_data_batches=False`` runs a micro-batch only for new data (one batch per file).
        """
        writer = (
            df.writeStream.queryName(name)
            .outputMode(output_mode)
            .foreachBatch(sink)
            .option("checkpointLocation", str(self.root / "checkpoints" / name))
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        previous = self.spark.conf.get(NO_DATA_BATCHES, "true") or "true"
        self.spark.conf.set(NO_DATA_BATCHES, str(no_data_batches).lower())
        try:
            query = writer.start()
        finally:
            self.spark.conf.set(NO_DATA_BATCHES, previous)
        self.queries[name] = query
        return query

    def process(self) -> None:
        """Block until every running query has processed every file written so far."""
        for query in self.queries.values():
            if query.isActive:
                query.processAllAvailable()

    def dropped(self, name: str) -> int:
        """Rows the query's stateful operators dropped as late (in its recent progress)."""
        return sum(dropped_by_watermark(p) for p in self.queries[name].recentProgress)

    def stop(self) -> None:
        for query in self.queries.values():
            if query.isActive:
                query.stop()

    def __enter__(self) -> FileStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FeatureStream:
    """Both feature queries of the job over a watched folder, writing to a :class:`MemoryStore`.

    Each :meth:`step` is one file and one micro-batch per query, so the watermark moves
    between steps exactly as it does in production between micro-batches.
    """

    def __init__(self, spark: SparkSession, root: Path) -> None:
        self.store = MemoryStore()
        self.files = FileStream(spark, root)
        raw = self.files.source()
        orders = parse_order_events(raw).events
        items = parse_item_events(raw).events
        self.files.start("customers", compute_customer_features(orders), self.store.write_tiles)
        self.files.start(
            "products", compute_product_features(orders, items), self.store.write_lines
        )

    def step(self, records: Sequence[Record]) -> None:
        """Deliver ``records`` as one micro-batch and wait until both queries processed it."""
        self.files.add(records)
        self.files.process()

    @property
    def dropped(self) -> dict[str, int]:
        """Rows dropped as late so far, per query (``customers``, ``products``)."""
        return {name: self.files.dropped(name) for name in self.files.queries}

    def stop(self) -> None:
        self.files.stop()

    def __enter__(self) -> FeatureStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stream_config(work: Path, redis_url: str, **overrides: Any) -> PipelineConfig:
    """A files-source job writing to Redis, triggered as fast as possible, quiet."""
    options: dict[str, Any] = dict(
        checkpoint_dir=work / "checkpoints",
        input_dir=work / "input",
        sinks=("redis",),
        redis_url=redis_url,
        trigger=None,
        dead_letter_dir=work / "dead_letters",
        progress=False,
        out=io.StringIO(),
    )
    options.update(overrides)
    (work / "input").mkdir(parents=True, exist_ok=True)
    return PipelineConfig(**options)


def feed(records: Sequence[Record], input_dir: Path, index: int) -> None:
    """Drop one chunk of the log into the watched folder as one file."""
    write_log(records, input_dir, events_per_file=max(1, len(records)), prefix=f"chunk-{index:04d}")


def chunks(records: Sequence[Record], n: int) -> list[Sequence[Record]]:
    """``records`` cut into ``n`` consecutive chunks."""
    size = -(-len(records) // n)
    return [records[i : i + size] for i in range(0, len(records), size)]


def newest_time(records: Iterable[Record]) -> datetime:
    """The newest event time of a log: max of the commit times and the plausible ``order_date``
    values (before/after) of its valid messages — what the job's watermarks can see (a message
    the parser dead-letters, or an order date its event-time guard nulls, never reaches them)."""
    newest = datetime(1970, 1, 1, tzinfo=UTC)
    for rec in records:
        try:
            change = reference.parse_change(rec)
        except reference.Rejected:
            continue
        newest = max(newest, change.commit)
        if change.table != "orders":
            continue
        for image, future in (
            (change.after, change.future_after),
            (change.before, change.future_before),
        ):
            if image is not None and not future:
                newest = max(newest, image["order_date"])
    return newest


def nonzero(features: Mapping[int, object]) -> int:
    """How many entities have a non-zero first count (the test really saw data)."""
    return sum(
        1
        for f in features.values()
        if getattr(f, "order_count_30d", getattr(f, "units_sold_7d", 0))
    )


def all_customers(
    reader: FeatureReader, at: datetime, ids: Iterable[int] = ()
) -> dict[int, CustomerFeatures]:
    """Every customer the store holds or ``ids`` names, read at ``at``."""
    return reader.customer_features(set(ids) | reader.customer_ids(), at)


def all_products(
    reader: FeatureReader, at: datetime, ids: Iterable[int] = ()
) -> dict[int, ProductFeatures]:
    """Every product the store holds or ``ids`` names, read at ``at``."""
    return reader.product_features(set(ids) | reader.product_ids(), at)
