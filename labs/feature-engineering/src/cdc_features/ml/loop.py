"""The ML loop on one CDC history: stream it, serve it, train on it, compare.

1. **Stream.** The history is replayed through the job's customer query with the Feast sink
   (``--sink feast``: the lab's Redis tiles, then pushes to Feast's online store and its
   Parquet offline store, each row stamped with the stream clock — the newest *commit time*
   seen). The log is cut at the label times: the stream processes every change committed at
   or before T, then the population at T is read from the online store at T through the
   :class:`~cdc_features.ml.scorer.Scorer` (the *served* vectors) and offered to the skew
   monitor. A daily ``FeastSink.refresh`` at T re-pushes the customers whose 30-day values
   decayed since their last push, as a production job would.
2. **Training sets** (after the stream, from the same Feast repository):
   *point in time* — ``get_historical_features`` over the entity frame ``(customer_id,
   event_timestamp = T)``: each row the newest push at or before T, ``days_since_last_order``
   computed at T; *naive* — today's values (``get_online_features`` at the end of the
   history) joined to every past label row, as a training set built from the online store
   (or a current-state table) is.
3. **Models and metrics.** Time-based split: the last ``test_share`` of the label times are
   the test period; training rows are those whose label was known when the test period
   began (``T + horizon`` at or before its first T). The same model
   (:func:`cdc_features.ml.model.train`) is trained on each set; *offline* metrics score each
   model on its own set's test rows, *served* metrics on the served vectors of the same rows.
4. **Skew.** The monitor checks its sample of served reads against the batch reference at
   their read times (``cdc_features_skew_ratio``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from cdc_features.core.debezium_json import Record
from cdc_features.core.definitions import CustomerFeatures
from cdc_features.core.reference import ReferenceLog
from cdc_features.job.queries import start_customer_query
from cdc_features.job.sinks import SinkSet, write_noop
from cdc_features.ml.model import LinearModel, auc, log_loss, train
from cdc_features.ml.scorer import Scorer, Served
from cdc_features.ml.task import TASK, LabelRow, Task, build_labels, commit_span, label_times
from cdc_features.ml.vectors import Vector, vector
from cdc_features.monitoring.registry import MetricsRegistry
from cdc_features.monitoring.skew import SkewCheck, SkewMonitor
from cdc_features.stores.base import BatchFunction, zero_customer
from cdc_features.stores.redis_store import RedisFeatureReader, write_to_feature_store
from cdc_features.testing import NO_DATA_BATCHES, feed, stream_config

PIT = "point-in-time"
NAIVE = "naive: today's values"
Key = tuple[int, datetime]  # (customer_id, feature time T)


@dataclass(frozen=True)
class History:
    """The generated CDC history of the loop (:func:`cdc_features.lab.generator.generate_log`
    with :meth:`generator_options`): customers with lifecycles, so that churn exists to be
    predicted; ``schemas.enable=false`` messages (the reference parses them faster)."""

    seed: int = 2026
    n_events: int = 6_000
    days: float = 90.0
    customer_lifetime_days: float = 40.0

    def generator_options(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "customer_lifetime_days": self.customer_lifetime_days,
            "schemas": False,
        }


HISTORY = History()


def cut_positions(log: ReferenceLog, n_records: int, times: Sequence[datetime]) -> list[int]:
    """For each T: the length of the log prefix that holds the changes committed at or
    before T (messages without a commit time — tombstones, malformed — travel with the change
    before them). A re-delivery of a change (same table, row and LSN: a connector restart)
    may come after the cut: the stream has applied it already. Raises when any other change
    committed by T comes after a change committed later."""
    seen: set[tuple[str, int, int]] = set()
    commits: list[datetime | None] = []  # None: a re-delivery, ignored for the order
    for c in log.changes:
        key = (c.table, c.row_id, c.lsn)
        commits.append(None if key in seen else c.commit)
        seen.add(key)
    suffix_min: list[datetime | None] = [None] * (len(commits) + 1)
    for i in range(len(commits) - 1, -1, -1):
        here, later = commits[i], suffix_min[i + 1]
        suffix_min[i] = here if later is None else later if here is None else min(here, later)
    cuts = []
    for at in times:
        first_after = next(
            (i for i, c in enumerate(commits) if c is not None and c > at), len(commits)
        )
        later = suffix_min[first_after]
        if later is not None and later <= at:
            raise ValueError(f"the log is not in commit order around {at}: cannot cut it there")
        cuts.append(log.positions[first_after] if first_after < len(commits) else n_records)
    return cuts


class LossySink:
    """A foreachBatch function that loses the writes of every micro-batch while
    :attr:`losing` is set — a broken sink, for showing what the skew monitor sees.

    The lost batch is still computed (and discarded): Spark 4.1 fails a stateful query whose
    ``foreachBatch`` function returns without reading its DataFrame
    (``STATE_STORE_COMMIT_VALIDATION_FAILED``: the state stores of the batch never commit), so
    a sink that skips a batch outright stops the query instead of losing data silently. The
    silent loss is a sink that runs and writes nowhere — a wrong database, a pipeline never
    executed, an exception swallowed after the computation.
    """

    def __init__(self, sink: BatchFunction) -> None:
        self.sink = sink
        self.losing = False
        self.lost = 0

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        if self.losing:
            self.lost += 1
            write_noop(batch_df, batch_id)
            return
        self.sink(batch_df, batch_id)


@dataclass
class StreamRun:
    """What the replay served: each label row's served read, the end of the history."""

    served: dict[Key, Served]
    end: datetime
    feast_repo: Path | None
    seconds: float
    lost_batches: int = 0


def serve_history(
    spark: SparkSession,
    records: Sequence[Record],
    rows: Sequence[LabelRow],
    *,
    work_dir: Path,
    redis_url: str,
    log: ReferenceLog | None = None,
    with_feast: bool = True,
    monitor: SkewMonitor | None = None,
    lose_chunks: Collection[int] = (),
    to_end: bool = True,
) -> StreamRun:
    """Replay ``records`` through the customer query, cut at the label times of ``rows``;
    after each cut read the population of that time from the store (see the module
    docstring). ``lose_chunks``: indexes of cuts whose micro-batches the sink loses;
    ``to_end``: also process the rest of the history after the last label time (the store
    then holds "today's" values)."""
    import redis

    started = time.monotonic()
    log = log or ReferenceLog(records)
    times = sorted({r.at for r in rows})
    population: dict[datetime, list[int]] = {t: [] for t in times}
    for r in rows:
        population[r.at].append(r.customer_id)
    cuts = cut_positions(log, len(records), times)
    client = redis.Redis.from_url(redis_url)
    if client.dbsize():
        client.close()
        raise ValueError(f"the ML loop needs an empty Redis database, {redis_url} is not")
    repo = work_dir / "feast_repo" if with_feast else None
    config = stream_config(
        work_dir, redis_url, sinks=("feast",) if with_feast else ("redis",), feast_repo=repo
    )
    feast_sink: Any = None
    if repo is not None:
        from cdc_features.stores import feast_store
        from cdc_features.stores.feast_sink import FeastSink, FeastSinkConfig

        feast_store.prepare_repo(repo, redis_url)
        feast_sink = FeastSink(FeastSinkConfig(repo, config.redis))
        sink: BatchFunction = feast_sink.push_to_feast
    else:
        sink = partial(write_to_feature_store, store=config.redis)
    lossy = LossySink(sink)
    scorer = Scorer(RedisFeatureReader(client), observers=[monitor.observe] if monitor else [])
    # One micro-batch per cut: no extra batch when only the watermark moved (with the
    # 365-day watermark nothing leaves the state within the history anyway).
    previous = spark.conf.get(NO_DATA_BATCHES, "true") or "true"
    spark.conf.set(NO_DATA_BATCHES, "false")
    try:
        query = start_customer_query(spark, config, SinkSet([lossy], []))
    finally:
        spark.conf.set(NO_DATA_BATCHES, previous)
    served: dict[Key, Served] = {}
    try:
        start = 0
        for index, (at, cut) in enumerate(zip(times, cuts, strict=True)):
            lossy.losing = index in lose_chunks
            feed(records[start:cut], config.input_dir, index)  # type: ignore[arg-type]
            start = cut
            query.processAllAvailable()
            lossy.losing = False
            if feast_sink is not None:
                _refresh_at(feast_sink, at)
            for cid, read in scorer.read(population[at], at).items():
                served[(cid, at)] = read
        if to_end:
            feed(records[start:], config.input_dir, len(times))  # type: ignore[arg-type]
            query.processAllAvailable()
    finally:
        query.stop()
        if feast_sink is not None:
            feast_sink.close()
        client.close()
    _, end = commit_span(log)
    return StreamRun(served, end, repo, time.monotonic() - started, lossy.lost)


def _refresh_at(feast_sink: Any, at: datetime) -> None:
    """The daily re-push at T: every customer whose pushed value decayed since its push gets
    a row stamped exactly T (so a point-in-time read at T sees it)."""
    from cdc_features.stores.feast_sink import push_clock
    from cdc_features.stores.feast_store import CUSTOMER_VIEW

    clock = push_clock(feast_sink.client, CUSTOMER_VIEW)
    if clock is not None and clock >= at:
        raise RuntimeError(f"a push is stamped at or after the label time {at}: cannot refresh")
    feast_sink.refresh(at)


def point_in_time_set(repo: Path, rows: Sequence[LabelRow]) -> dict[Key, CustomerFeatures]:
    """Feast ``get_historical_features`` for every label row at its feature time."""
    from cdc_features.stores import feast_store

    store = feast_store.open_store(repo)
    entity = pd.DataFrame(
        {
            "customer_id": [r.customer_id for r in rows],
            "event_timestamp": [r.at for r in rows],
            "label": [r.label for r in rows],
        }
    )
    features = feast_store.training_features(feast_store.training_frame(store, entity))
    return {(r.customer_id, r.at): f for r, f in zip(rows, features, strict=True)}


def naive_set(repo: Path, rows: Sequence[LabelRow], today: datetime) -> dict[Key, CustomerFeatures]:
    """Today's online values (``get_online_features`` at ``today``) joined to every row."""
    from cdc_features.stores import feast_store

    store = feast_store.open_store(repo)
    ids = sorted({r.customer_id for r in rows})
    now = feast_store.online_customer_features(store, ids, today)
    return {(r.customer_id, r.at): now[r.customer_id] or zero_customer(r.customer_id) for r in rows}


@dataclass(frozen=True)
class MetricRow:
    """Offline and served metrics of the model trained on one training set."""

    training_set: str
    train_rows: int
    test_rows: int
    offline_auc: float
    offline_log_loss: float
    served_auc: float
    served_log_loss: float


@dataclass(frozen=True)
class Split:
    """The time-based split: the test period starts at ``test_from``."""

    test_from: datetime
    train: tuple[LabelRow, ...]
    test: tuple[LabelRow, ...]


def time_split(rows: Sequence[LabelRow], test_share: float, task: Task = TASK) -> Split:
    """The last ``test_share`` of the label times are the test period; a training row's label
    must be known when it begins (``T + horizon <= test_from``)."""
    times = sorted({r.at for r in rows})
    n_test = max(1, math.ceil(len(times) * test_share))
    if n_test >= len(times):
        raise ValueError(f"{len(times)} label times are too few for a test share of {test_share}")
    test_from = times[-n_test]
    train = tuple(r for r in rows if r.label_time <= test_from)
    test = tuple(r for r in rows if r.at >= test_from)
    return Split(test_from, train, test)


def evaluate(
    name: str,
    training: Mapping[Key, CustomerFeatures],
    served: Mapping[Key, Served],
    split: Split,
) -> tuple[LinearModel, MetricRow]:
    """Train on ``training``'s rows of the training period; score the test period offline
    (``training``'s rows) and served (the served vectors of the same rows)."""

    def xs(rows: Sequence[LabelRow], source: Mapping[Key, Vector]) -> list[Vector]:
        return [source[(r.customer_id, r.at)] for r in rows]

    offline = {k: vector(f) for k, f in training.items()}
    online = {k: s.vector for k, s in served.items()}
    model = train(xs(split.train, offline), [r.label for r in split.train])
    ys = [r.label for r in split.test]
    p_offline = model.probabilities(xs(split.test, offline))
    p_served = model.probabilities(xs(split.test, online))
    return model, MetricRow(
        name,
        len(split.train),
        len(split.test),
        auc(ys, p_offline),
        log_loss(ys, p_offline),
        auc(ys, p_served),
        log_loss(ys, p_served),
    )


@dataclass
class LoopResult:
    """Everything one run of the loop produced (see the module docstring)."""

    task: Task
    rows: list[LabelRow]
    split: Split
    stream: StreamRun
    training: dict[str, dict[Key, CustomerFeatures]]
    models: dict[str, LinearModel]
    metrics: dict[str, MetricRow]
    skew: SkewCheck
    seconds: dict[str, float] = field(default_factory=dict)


def run_loop(
    spark: SparkSession,
    records: Sequence[Record],
    *,
    work_dir: Path,
    redis_url: str,
    task: Task = TASK,
    test_share: float = 0.4,
    registry: MetricsRegistry | None = None,
    skew_sample: int = 200,
) -> LoopResult:
    """The whole loop on ``records`` (see the module docstring); ``redis_url`` must name an
    empty database."""
    started = time.monotonic()
    log = ReferenceLog(records)
    first, last = commit_span(log)
    rows = build_labels(log, label_times(first, last, task), task)
    labelled = time.monotonic()
    monitor = SkewMonitor(registry, sample_size=skew_sample)
    stream = serve_history(
        spark, records, rows, work_dir=work_dir, redis_url=redis_url, log=log, monitor=monitor
    )
    assert stream.feast_repo is not None
    streamed = time.monotonic()
    training = {
        PIT: point_in_time_set(stream.feast_repo, rows),
        NAIVE: naive_set(stream.feast_repo, rows, stream.end),
    }
    built = time.monotonic()
    split = time_split(rows, test_share, task)
    models, metrics = {}, {}
    for name, features in training.items():
        models[name], metrics[name] = evaluate(name, features, stream.served, split)
    skew = monitor.check(log)
    done = time.monotonic()
    seconds = {
        "labels": labelled - started,
        "stream": streamed - labelled,
        "training sets": built - streamed,
        "training and evaluation": done - built,
        "total": done - started,
    }
    return LoopResult(task, rows, split, stream, training, models, metrics, skew, seconds)


def metrics_table(result: LoopResult) -> str:
    """The metric table of a run (Markdown), as ``bench/results/ml.md`` shows it."""
    lines = [
        "| Training set | Train rows | Test rows | Offline AUC | Served AUC "
        "| Offline log loss | Served log loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in result.metrics.values():
        lines.append(
            f"| {m.training_set} | {m.train_rows:,} | {m.test_rows:,} | {m.offline_auc:.3f} "
            f"| {m.served_auc:.3f} | {m.offline_log_loss:.3f} | {m.served_log_loss:.3f} |"
        )
    return "\n".join(lines)


def served_equal_to_training(result: LoopResult, training_set: str = PIT) -> tuple[int, int]:
    """(rows whose served features equal the training set's row, rows)."""
    rows = result.training[training_set]
    equal = sum(1 for key, served in result.stream.served.items() if rows[key] == served.features)
    return equal, len(result.stream.served)
