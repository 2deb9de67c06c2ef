"""The lab's embedded default: replay a recorded CDC log into the streaming job.

``npm run lab`` (``scripts/lab.sh``) runs this module. The bundled Debezium log
(``fixtures/lab_log.jsonl.gz``) is written into a watched folder a few events at a time,
the job (``cdc_features.pipeline``) processes it in micro-batches on Spark ``local[2]``, and
the console shows the features of the customers each batch changed. When a Redis URL is
given, or a Redis server answers on 127.0.0.1:6379, the features go to Redis as well and
the console reads them back from there.

``--until-idle`` writes the log quickly, waits until every event is processed, then checks
the features of every customer and product against the plain-Python batch reference
(:mod:`cdc_features.reference`) at the stream clock and exits 0 only when they agree.
Ctrl-C stops the replay and the queries cleanly (their checkpoints stay valid).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from cdc_features.definitions import CustomerFeatures, ProductFeatures
from cdc_features.generator import Record, read_log, write_log
from cdc_features.pipeline import Pipeline, PipelineConfig, add_arguments, config_from_args, start_pipeline
from cdc_features.redis_sink import read_customer_features, read_product_features, stored_ids

LAB_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOG = LAB_ROOT / "fixtures" / "lab_log.jsonl.gz"
DEFAULT_WORK_DIR = LAB_ROOT / ".work" / "lab"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


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

    def __init__(self, records: Sequence[Record], directory: Path, *, events_per_file: int,
                 events_per_second: float | None) -> None:
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
            chunk = self.records[start:start + self.events_per_file]
            write_log(chunk, self.directory, events_per_file=len(chunk),
                      prefix=f"replay-{start // self.events_per_file:06d}")
            self.written += len(chunk)
            if self.events_per_second:
                self.stopped.wait(len(chunk) / self.events_per_second)


def zero_customer(customer_id: int) -> CustomerFeatures:
    """The features of a customer without counted orders in the window."""
    return CustomerFeatures(customer_id, 0, Decimal("0.00"), None, None, None)


def zero_product(product_id: int) -> ProductFeatures:
    """The features of a product without counted lines in the window."""
    return ProductFeatures(product_id, 0, Decimal("0.00"), 0)


def compare_with_reference(pipeline: Pipeline, records: Sequence[Record],
                           at: datetime) -> list[str]:
    """Differences between the job's features and the batch reference at ``at`` (empty = equal)."""
    from cdc_features import reference

    ref_customers = reference.reference_customer_features(records, at)
    ref_products = reference.reference_product_features(records, at)
    view = pipeline.sinks.console
    client = view.client if view is not None else None
    if client is None and "redis" in pipeline.config.sinks:
        import redis

        from cdc_features.redis_sink import store_config

        client = redis.Redis.from_url(store_config().url)
    if client is not None:
        customer_ids = set(ref_customers) | stored_ids(client, "cf")
        product_ids = set(ref_products) | stored_ids(client, "pf")
    elif view is not None:
        customer_ids = set(ref_customers) | {cid for cid, _ in view.tiles}
        product_ids = set(ref_products) | {key[0] for key in view.lines}
    else:
        return ["no readable sink: use --sink console and/or redis"]
    problems = []
    for cid in sorted(customer_ids):
        got = (view.customer_features(cid, at) if view is not None else
               read_customer_features(client, cid, at))
        want = ref_customers.get(cid, zero_customer(cid))
        if got != want:
            problems.append(f"customer {cid}: job {got} != reference {want}")
    for pid in sorted(product_ids):
        got_p = (view.product_features(pid, at) if view is not None else
                 read_product_features(client, pid, at))
        want_p = ref_products.get(pid, zero_product(pid))
        if got_p != want_p:
            problems.append(f"product {pid}: job {got_p} != reference {want_p}")
    return problems


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the lab; returns the process exit code."""
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="npm run lab --",
                                     description="Replay a Debezium CDC log through the feature job")
    add_arguments(parser)
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG, help="JSON-lines log (.jsonl[.gz])")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="watched input folder, checkpoints and dead letters live here")
    parser.add_argument("--replay-speed", type=float, default=60.0,
                        help="events per second written into the watched folder (0 = at once)")
    parser.add_argument("--events-per-file", type=int, default=30)
    parser.add_argument("--until-idle", action="store_true",
                        help="replay everything, wait until processed, check against the reference")
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the work folder (input, checkpoints) of an earlier run")
    parser.add_argument("--no-redis", action="store_true", help="console only, even if Redis answers")
    parser.set_defaults(sink=None, checkpoint_dir=None, trigger=None)
    args = parser.parse_args(argv)

    work: Path = args.work_dir
    if not args.keep_state and work.exists():
        shutil.rmtree(work)
    input_dir = work / "input"
    input_dir.mkdir(parents=True, exist_ok=True)
    args.input_dir = args.input_dir or input_dir
    args.checkpoint_dir = args.checkpoint_dir or work / "checkpoints"
    args.dead_letter_dir = args.dead_letter_dir or work / "dead_letters"
    if args.redis_url is None and not args.no_redis and redis_answers(LOCAL_REDIS):
        args.redis_url = LOCAL_REDIS
    if args.sink is None:
        args.sink = "console,redis" if args.redis_url and not args.no_redis else "console"
    if args.until_idle:
        args.trigger = args.trigger or "none"
        args.events_per_file = max(args.events_per_file, 250)
        args.max_files_per_trigger = args.max_files_per_trigger or 2
    else:
        args.trigger = args.trigger or "2 seconds"
    try:
        config: PipelineConfig = config_from_args(args, out)
    except ValueError as err:
        parser.error(str(err))

    records = read_log(args.log) if config.source == "files" else []
    print(f"lab: {len(records)} CDC events from {args.log}", file=out)
    print(f"lab: sinks {', '.join(config.sinks)}"
          + (f" (Redis {config.redis_url})" if config.redis_url else ""), file=out)
    print(f"lab: watched folder {config.input_dir}, checkpoints {config.checkpoint_dir}", file=out, flush=True)

    from cdc_features.spark import get_spark

    spark = get_spark("cdc-features-lab", kafka=config.source == "kafka")
    pipeline = start_pipeline(spark, config)
    replayer = Replayer(records, config.input_dir,  # type: ignore[arg-type]
                        events_per_file=args.events_per_file,
                        events_per_second=None if args.until_idle or args.replay_speed <= 0
                        else args.replay_speed)
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if config.source == "files":
            replayer.start()
        if args.until_idle:
            replayer.join()
            return _await_and_finish(pipeline, records, out)
        while not stop.is_set():
            if config.source == "files" and not replayer.is_alive():
                return _await_and_finish(pipeline, records, out)
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


def _await_and_finish(pipeline: Pipeline, records: Sequence[Record], out: TextIO) -> int:
    try:
        pipeline.await_idle()
    except Exception as err:  # noqa: BLE001 - a failed query: report it, exit non-zero
        print(f"lab: a query failed: {str(err).splitlines()[0] if str(err) else err!r}", file=out)
        return 1
    print("lab: the whole log is processed", file=out)
    return _finish(pipeline, records, out)


def _finish(pipeline: Pipeline, records: Sequence[Record], out: TextIO) -> int:
    letters = pipeline.dead_letters
    print(f"lab: dead letters {letters.errors} {letters.by_reason()}, "
          f"dropped as late {pipeline.dropped_by_watermark}", file=out)
    at = newest_order_time(records)
    if at is None:
        print("lab: no order events", file=out)
        return 0
    problems = compare_with_reference(pipeline, records, at)
    if problems:
        print(f"lab: {len(problems)} features differ from the batch reference at {at:%Y-%m-%d %H:%M:%S}:",
              file=out)
        for line in problems[:20]:
            print("  " + line, file=out)
        return 1
    print(f"lab: every customer and product feature at T = {at:%Y-%m-%d %H:%M:%S} UTC "
          "equals the batch reference", file=out, flush=True)
    return 0


def _cli() -> int:
    """``python -m cdc_features.replay``: run, then stop Spark while Python still listens
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
