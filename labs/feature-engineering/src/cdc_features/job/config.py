"""The job's configuration: one value built once (from the CLI or by a caller) and passed down.

Nothing reads configuration from a module global: the queries take a :class:`PipelineConfig`,
the sinks receive the values they need (a :class:`~cdc_features.stores.redis_store.RedisConfig`,
a :class:`~cdc_features.stores.feast_sink.FeastSinkConfig`) captured in their closures.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from cdc_features.core.debezium_json import DEFAULT_PREFIX, ORDER_ITEMS, ORDERS, topic_name
from cdc_features.core.spec import FUTURE_TOLERANCE
from cdc_features.job.spark import checkpoint_file_manager
from cdc_features.stores.redis_store import DEFAULT_REDIS_URL, REDIS_URL_ENV, RedisConfig

SINKS = ("redis", "feast", "noop")


@dataclass
class PipelineConfig:
    """Everything the job needs; the CLI flags map one to one."""

    checkpoint_dir: Path | str  # a local folder, or a URI (hdfs://..., s3a://...) on a cluster
    source: str = "files"
    input_dir: Path | None = None
    bootstrap_servers: str | None = None
    topic_prefix: str = DEFAULT_PREFIX
    fail_on_data_loss: bool = True
    max_files_per_trigger: int | None = None
    max_offsets_per_trigger: int | None = None
    sinks: tuple[str, ...] = ("redis",)
    redis_url: str | None = None
    feast_repo: Path | None = None
    trigger: str | None = "2 seconds"
    # Dead letters are not on the latency path: by default their query wakes up less often,
    # leaving the two cores to the feature queries ("same" = the feature trigger).
    dead_letter_trigger: str | None = "10 seconds"
    dead_letter_dir: Path | None = None
    default_scale: int = 2
    # event-time guard: an order_date further ahead of its commit time is a typo (FEATURES.md)
    future_tolerance: timedelta = FUTURE_TOLERANCE
    progress: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    metrics_port: int | None = None  # loopback /metrics endpoint (0 = a free port); MONITORING.md
    status_interval: float | None = None  # seconds between monitoring status lines
    # Shuffle partitions of the stateful queries: None = the session's (get_spark: 2). Only a
    # new query takes it; a restarted one keeps the number stored in its checkpoint.
    shuffle_partitions: int | None = None
    # auto = the FileSystem-based manager on a local disk (atomic rename), Spark's default
    # (FileContext-based) on any other file system; or filesystem / filecontext / a class.
    checkpoint_file_manager: str = "auto"

    def __post_init__(self) -> None:
        unknown = set(self.sinks) - set(SINKS)
        if unknown:
            raise ValueError(f"unknown sink {sorted(unknown)}; choose from {', '.join(SINKS)}")
        if self.source == "files" and self.input_dir is None:
            raise ValueError("--source files needs --input-dir")
        if self.source == "kafka" and not self.bootstrap_servers:
            raise ValueError("--source kafka needs --bootstrap-servers")
        if self.source not in ("files", "kafka"):
            raise ValueError(f"unknown source {self.source!r}; choose files or kafka")
        if "feast" in self.sinks and self.feast_repo is None:
            raise ValueError("--sink feast needs --feast-repo")
        if not self.checkpoint_on_local_path and self.dead_letter_dir is None:
            raise ValueError(
                "a checkpoint URI needs --dead-letter-dir (a folder the driver and the "
                "executors share)"
            )
        checkpoint_file_manager(self.checkpoint_file_manager, "file")  # a known choice
        if self.shuffle_partitions is not None and self.shuffle_partitions < 1:
            raise ValueError(f"--shuffle-partitions must be >= 1, got {self.shuffle_partitions}")
        if self.future_tolerance < timedelta(0):
            raise ValueError(f"--future-tolerance must not be negative: {self.future_tolerance}")

    @property
    def topics(self) -> list[str]:
        """The two Debezium topics of the course tables."""
        return [topic_name(ORDERS, self.topic_prefix), topic_name(ORDER_ITEMS, self.topic_prefix)]

    @property
    def redis(self) -> RedisConfig:
        """The feature store's Redis (``redis_url``, else the local default)."""
        return RedisConfig(self.redis_url or DEFAULT_REDIS_URL)

    @property
    def effective_dead_letter_trigger(self) -> str | None:
        """The dead-letter query's trigger; it applies only with a processing-time
        ``trigger`` (back-to-back and ``available-now`` runs keep theirs)."""
        if self.trigger in (None, "available-now") or self.dead_letter_trigger in (None, "same"):
            return self.trigger
        return self.dead_letter_trigger

    @property
    def checkpoint_on_local_path(self) -> bool:
        """The checkpoints are a path (no URI scheme): the local disk, or the cluster's default
        file system (``fs.defaultFS``) when the job runs there."""
        return "://" not in str(self.checkpoint_dir)

    def checkpoint_location(self, name: str) -> str:
        """The checkpoint location of one query: ``<checkpoint-dir>/<name>``."""
        return f"{str(self.checkpoint_dir).rstrip('/')}/{name}"

    @property
    def dead_letter_path(self) -> Path:
        """Where dead letters go (default: next to the checkpoints)."""
        return self.dead_letter_dir or Path(self.checkpoint_dir) / "dead_letters_out"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(seconds?|s|minutes?|min|hours?|h|days?|d)?\s*$")
_UNITS = {"s": "seconds", "min": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``"1 day"``, ``"36 hours"``, ``"90 minutes"``, ``"600"`` (seconds) → a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (e.g. '1 day', '36 hours', '90 minutes', '600')"
        )
    number, unit = float(match.group(1)), (match.group(2) or "seconds")
    unit = _UNITS.get(unit, unit if unit.endswith("s") else unit + "s")
    return timedelta(**{unit: number})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's command-line options (shared with the lab runner)."""
    parser.add_argument("--source", choices=("files", "kafka"), default="files")
    parser.add_argument("--input-dir", type=Path, help="watched folder of JSON-lines files")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (host:port,...)")
    parser.add_argument(
        "--topic-prefix",
        default=DEFAULT_PREFIX,
        help="Debezium topic.prefix (topics <prefix>.inventory.orders|order_items)",
    )
    parser.add_argument(
        "--fail-on-data-loss",
        choices=("true", "false"),
        default="true",
        help="Kafka: fail when offsets were deleted before being read",
    )
    parser.add_argument("--max-files-per-trigger", type=int)
    parser.add_argument("--max-offsets-per-trigger", type=int)
    parser.add_argument(
        "--checkpoint-dir",
        type=path_or_uri,
        default=Path(".work/checkpoints"),
        help="a local folder, or a URI on a cluster (hdfs://..., s3a://...)",
    )
    parser.add_argument("--dead-letter-dir", type=Path)
    parser.add_argument(
        "--sink", default="redis", help=f"comma-separated: {', '.join(SINKS)} (default redis)"
    )
    parser.add_argument(
        "--redis-url",
        help=f"feature store Redis (default: env {REDIS_URL_ENV}, else {DEFAULT_REDIS_URL})",
    )
    parser.add_argument("--feast-repo", type=Path, help="Feast repository (for --sink feast)")
    parser.add_argument(
        "--trigger",
        default="2 seconds",
        help="micro-batch interval, e.g. '2 seconds'; 'none' = back to back; "
        "'available-now' = process what is there and stop",
    )
    parser.add_argument(
        "--dead-letter-trigger",
        default="10 seconds",
        help="micro-batch interval of the dead-letter query ('same' = --trigger)",
    )
    parser.add_argument(
        "--default-scale",
        type=int,
        default=2,
        help="decimal scale when a precise decimal comes without a schema",
    )
    parser.add_argument(
        "--future-tolerance",
        type=parse_duration,
        default=FUTURE_TOLERANCE,
        help="event-time guard: an order_date further ahead of its commit time is dead-lettered "
        "as future_event_time and does not count (default: 1 day)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0 = free port)",
    )
    parser.add_argument(
        "--status-interval", type=float, help="print a monitoring status line every N seconds"
    )
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        help="shuffle partitions of a new query's stateful operators (default: the session's, 2); "
        "on a cluster about the executors' total cores",
    )
    parser.add_argument(
        "--checkpoint-file-manager",
        default="auto",
        help="auto (FileSystem-based on a local disk, Spark's default elsewhere), filesystem, "
        "filecontext or a class name",
    )


def path_or_uri(text: str) -> Path | str:
    """A command-line location: a URI stays text (``Path`` would fold its ``//``)."""
    return text if "://" in text else Path(text)


def split_sinks(text: str) -> tuple[str, ...]:
    """``"redis, feast"`` → ``("redis", "feast")``."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def config_from_args(
    args: argparse.Namespace, out: TextIO | None = None, sinks: tuple[str, ...] | None = None
) -> PipelineConfig:
    """A :class:`PipelineConfig` from parsed command-line options (the environment variable
    ``FEATURE_REDIS_URL`` is read here, at the edge, when ``--redis-url`` is not given)."""
    trigger = None if args.trigger in ("none", "") else args.trigger
    return PipelineConfig(
        checkpoint_dir=args.checkpoint_dir,
        source=args.source,
        input_dir=args.input_dir,
        bootstrap_servers=args.bootstrap_servers,
        topic_prefix=args.topic_prefix,
        fail_on_data_loss=args.fail_on_data_loss == "true",
        max_files_per_trigger=args.max_files_per_trigger,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        sinks=split_sinks(args.sink) if sinks is None else sinks,
        redis_url=args.redis_url or os.environ.get(REDIS_URL_ENV),
        feast_repo=args.feast_repo,
        trigger=trigger,
        dead_letter_dir=args.dead_letter_dir,
        dead_letter_trigger=args.dead_letter_trigger,
        default_scale=args.default_scale,
        future_tolerance=args.future_tolerance,
        out=out or sys.stdout,
        metrics_port=getattr(args, "metrics_port", None),
        status_interval=getattr(args, "status_interval", None),
        shuffle_partitions=getattr(args, "shuffle_partitions", None),
        checkpoint_file_manager=getattr(args, "checkpoint_file_manager", "auto"),
    )
