"""The lab's embedded default: replay a recorded CDC log into the streaming job.

``npm run lab`` (``scripts/lab.sh``) runs this module. The bundled Debezium log
(``fixtures/lab_log.jsonl.gz``) is written into a watched folder a few events at a time,
the job (:mod:`cdc_features.job`) processes it in micro-batches on Spark ``local[2]``, and
the console shows the features of the customers each batch changed. When a Redis URL is
given, or a Redis server answers on 127.0.0.1:6379, the features go to Redis as well and
the console reads them back from there.

``--score`` also prints, under each table, the probability that each of those customers
orders again within 14 days and the vector the model was given, from one batched read of the
store (the model of the ML loop, ML.md).

``--until-idle`` writes the log quickly, waits until every event is processed, then checks
the features of every customer and product against the plain-Python batch reference
(:mod:`cdc_features.core.reference`) at the stream clock and exits 0 only when they agree.
Ctrl-C stops the replay and the queries cleanly (their checkpoints stay valid).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cdc_features import LAB_DIR
from cdc_features.core.debezium_json import Record
from cdc_features.job.config import PipelineConfig, add_arguments, config_from_args, split_sinks
from cdc_features.job.pipeline import Pipeline, start_pipeline
from cdc_features.job.sinks import SinkSet
from cdc_features.lab.console import ConsoleFeatureView
from cdc_features.ml.model import LinearModel
from cdc_features.stores.base import FeatureReader, differences_from_reference
from cdc_features.stores.redis_store import DEFAULT_REDIS_URL, RedisFeatureReader
from cdc_features.testing import read_log, write_log

DEFAULT_LOG = LAB_DIR / "fixtures" / "lab_log.jsonl.gz"
DEFAULT_MODEL = LAB_DIR / "fixtures" / "model_reorder_14d.json"
DEFAULT_WORK_DIR = LAB_DIR / ".work" / "lab"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_order_time(records: Iterable[Record]) -> datetime | None:
    """The stream clock after ``records``: the newest ``order_date`` of any order image.

    Malformed messages are ignored here (the job dead-letters them).
    """
    newest: int | None = None
    for record in records:
        value = record.get("value")
        if value is None or not str(record.get("topic", "")).endswith(".orders"):
            continue
        try:
            message = json.loads(value)
            payload = message.get("payload", message) if "op" not in message else message
            images = [payload.get("after"), payload.get("before")]
            for image in images:
                if isinstance(image, dict) and isinstance(image.get("order_date"), int):
                    us = image["order_date"]
                    newest = us if newest is None or us > newest else newest
        except (ValueError, AttributeError, TypeError):
            continue
    return None if newest is None else EPOCH + timedelta(microseconds=newest)


def redis_answers(url: str) -> bool:
    """True when a Redis server answers PING at ``url`` within half a second."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


class Replayer(threading.Thread):
    """Writes the log into the watched folder, ``events_per_file`` records per file."""

    def __init__(
        self,
        records: Sequence[Record],
        directory: Path,
        *,
        events_per_file: int,
        events_per_second: float | None,
    ) -> None:
        super().__init__(name="cdc-replay", daemon=True)
        self.records = records
        self.directory = directory
        self.events_per_file = events_per_file
        self.events_per_second = events_per_second
        self.stopped = threading.Event()
        self.written = 0

    def run(self) -> None:
        for start in range(0, len(self.records), self.events_per_file):
            if self.stopped.is_set():
                return
            chunk = self.records[start : start + self.events_per_file]
            write_log(
                chunk,
                self.directory,
                events_per_file=len(chunk),
                prefix=f"replay-{start // self.events_per_file:06d}",
            )
            self.written += len(chunk)
            if self.events_per_second:
                self.stopped.wait(len(chunk) / self.events_per_second)


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the lab; returns the process exit code."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="npm run lab --", description="Replay a Debezium CDC log through the feature job"
    )
    add_arguments(parser)
    parser.add_argument(
        "--log", type=Path, default=DEFAULT_LOG, help="JSON-lines log (.jsonl[.gz])"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help="watched input folder, checkpoints and dead letters live here",
    )
    parser.add_argument(
        "--replay-speed",
        type=float,
        default=60.0,
        help="events per second written into the watched folder (0 = at once)",
    )
    parser.add_argument("--events-per-file", type=int, default=30)
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="replay everything, wait until processed, check against the reference",
    )
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the work folder (input, checkpoints) of an earlier run",
    )
    parser.add_argument(
        "--no-redis", action="store_true", help="console only, even if Redis answers"
    )
    parser.add_argument(
        "--console-customers",
        type=int,
        default=5,
        help="customers shown per micro-batch by the console view",
    )
    parser.add_argument(
        "--score",
        nargs="?",
        type=Path,
        const=DEFAULT_MODEL,
        default=None,
        metavar="MODEL",
        help="also print the model's scores of the customers each micro-batch changed "
        f"(default model: {DEFAULT_MODEL.relative_to(LAB_DIR)}, written by npm run bench:ml)",
    )
    parser.set_defaults(sink=None, checkpoint_dir=None, trigger=None)
    args = parser.parse_args(argv)
    model = None
    if args.score is not None:
        try:
            model = LinearModel.load(args.score)
        except (OSError, ValueError) as err:
            parser.error(f"--score: cannot load the model: {err}")

    work: Path = args.work_dir
    if not args.keep_state and work.exists():
        shutil.rmtree(work)
    input_dir = work / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    args.input_dir = args.input_dir or input_dir
    args.checkpoint_dir = args.checkpoint_dir or work / "checkpoints"
    args.dead_letter_dir = args.dead_letter_dir or work / "dead_letters"
    if args.redis_url is None and not args.no_redis and redis_answers(DEFAULT_REDIS_URL):
        args.redis_url = DEFAULT_REDIS_URL
    if args.sink is None:
        args.sink = "console,redis" if args.redis_url and not args.no_redis else "console"
    requested = split_sinks(args.sink)
    if model is not None and "console" not in requested:
        parser.error("--score prints through the console view: keep 'console' in --sink")
    if args.until_idle:
        args.trigger = args.trigger or "none"
        args.events_per_file = max(args.events_per_file, 250)
        args.max_files_per_trigger = args.max_files_per_trigger or 2
    else:
        args.trigger = args.trigger or "2 seconds"
    try:  # console is the lab's own view; the others are the job's sinks
        config: PipelineConfig = config_from_args(
            args, out, sinks=tuple(s for s in requested if s != "console")
        )
    except ValueError as err:
        parser.error(str(err))

    records = read_log(args.log) if config.source == "files" else []
    print(f"lab: {len(records)} CDC events from {args.log}", file=out)
    print(
        f"lab: sinks {', '.join(requested)}"
        + (f" (Redis {config.redis_url})" if config.redis_url else ""),
        file=out,
    )
    print(
        f"lab: watched folder {config.input_dir}, checkpoints {config.checkpoint_dir}",
        file=out,
        flush=True,
    )

    from cdc_features.job.spark import get_spark

    spark = get_spark("cdc-features-lab", kafka=config.source == "kafka")
    reader: FeatureReader | None = None
    if {"redis", "feast"} & set(config.sinks):
        reader = RedisFeatureReader(config.redis.client())
    console = None
    extra = SinkSet()
    if "console" in requested:
        console = ConsoleFeatureView(
            reader=reader, max_customers=args.console_customers, out=out, model=model
        )
        extra.customers.append(console.write_customers)
        extra.products.append(console.write_products)
        reader = reader or console.reader
    pipeline = start_pipeline(spark, config, extra_sinks=extra)
    replayer = Replayer(
        records,
        config.input_dir,  # type: ignore[arg-type]
        events_per_file=args.events_per_file,
        events_per_second=None if args.until_idle or args.replay_speed <= 0 else args.replay_speed,
    )
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if config.source == "files":
            replayer.start()
        if args.until_idle:
            replayer.join()
            return _await_and_finish(pipeline, reader, records, out)
        while not stop.is_set():
            if config.source == "files" and not replayer.is_alive():
                return _await_and_finish(pipeline, reader, records, out)
            if any(not q.isActive for q in pipeline.queries.values()):
                break
            stop.wait(0.5)
        print("lab: stopping (Ctrl-C)", file=out, flush=True)
        for query in pipeline.queries.values():
            if query.exception() is not None:
                print(f"lab: query {query.name} failed: {query.exception()}", file=out)
                return 1
        return 0
    finally:
        replayer.stopped.set()
        pipeline.stop()
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def _await_and_finish(
    pipeline: Pipeline, reader: FeatureReader | None, records: Sequence[Record], out: TextIO
) -> int:
    try:
        pipeline.await_idle()
    except Exception as err:  # noqa: BLE001 - a failed query: report it, exit non-zero
        print(f"lab: a query failed: {str(err).splitlines()[0] if str(err) else err!r}", file=out)
        return 1
    print("lab: the whole log is processed", file=out)
    return _finish(pipeline, reader, records, out)


def _finish(
    pipeline: Pipeline, reader: FeatureReader | None, records: Sequence[Record], out: TextIO
) -> int:
    letters = pipeline.dead_letters
    print(
        f"lab: dead letters {letters.errors} {letters.by_reason()}, "
        f"dropped as late {pipeline.dropped_by_watermark}",
        file=out,
    )
    at = newest_order_time(records)
    if at is None:
        print("lab: no order events", file=out)
        return 0
    if reader is None:
        print(
            "lab: no readable sink to compare with the reference: use --sink console and/or redis",
            file=out,
        )
        return 1
    problems = differences_from_reference(reader, records, at)
    if problems:
        print(
            f"lab: {len(problems)} features differ from the batch reference at "
            f"{at:%Y-%m-%d %H:%M:%S}:",
            file=out,
        )
        for line in problems[:20]:
            print("  " + line, file=out)
        return 1
    print(
        f"lab: every customer and product feature at T = {at:%Y-%m-%d %H:%M:%S} UTC "
        "equals the batch reference",
        file=out,
        flush=True,
    )
    return 0


def _cli() -> int:
    """``python -m cdc_features.lab.replay``: run, then stop Spark while Python still listens
    (the JVM may still deliver a progress event to the Python listener; without the stop it
    would find the Python side gone and print a connection-reset stack trace at exit)."""
    try:
        return main()
    finally:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


if __name__ == "__main__":
    raise SystemExit(_cli())
