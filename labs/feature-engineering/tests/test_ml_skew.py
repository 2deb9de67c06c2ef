"""The skew monitor on a broken stream: the loop's history replayed through the customer query
into Redis, with the writes of one micro-batch lost (a sink that swallowed them). The served
reads after it differ from the batch reference at their read time; the monitor's metric
crosses the TrainingServingSkew threshold and the alert fires — for the customers that
micro-batch changed, and only after it."""

from __future__ import annotations

from pathlib import Path

import redis
from pyspark.sql import SparkSession

from cdc_features.core.reference import ReferenceLog
from cdc_features.lab.generator import generate_log
from cdc_features.ml.loop import HISTORY, serve_history
from cdc_features.ml.task import build_labels, commit_span, label_times
from cdc_features.monitoring import SKEW_ALERT, ConsoleAlerts, MetricsRegistry, SkewMonitor
from cdc_features.testing import redis_db

LOST = 1  # the cut whose micro-batch is lost: the changes between the first two label times


def test_a_lost_micro_batch_is_skew_and_fires_the_alert(
    spark: SparkSession, redis_url: str, tmp_path: Path
) -> None:
    url = redis_db(redis_url, 6)
    client = redis.Redis.from_url(url)
    client.flushdb()
    records = generate_log(HISTORY.seed, HISTORY.n_events, **HISTORY.generator_options())
    log = ReferenceLog(records)
    times = label_times(*commit_span(log))[:3]
    rows = build_labels(log, times)
    registry = MetricsRegistry()
    monitor = SkewMonitor(registry, sample_size=len(rows))  # every read is checked
    try:
        run = serve_history(
            spark,
            records,
            rows,
            work_dir=tmp_path,
            redis_url=url,
            log=log,
            with_feast=False,
            monitor=monitor,
            lose_chunks={LOST},
            to_end=False,
        )
    finally:
        client.flushdb()
        client.close()
    assert run.lost_batches == 1
    assert len(run.served) == len(rows)

    check = monitor.check(log)
    assert check.checked == len(rows)
    assert check.ratio > SKEW_ALERT
    # nothing differs before the loss; afterwards only customers whose orders changed in it
    lost_from, lost_to = times[LOST - 1], times[LOST]
    touched = {
        image["customer_id"]
        for c in log.changes
        if c.table == "orders" and lost_from < c.commit <= lost_to
        for image in (c.before, c.after)
        if image is not None
    }
    assert {m.at for m in check.mismatches} <= set(times[LOST:])
    assert {m.customer_id for m in check.mismatches} <= touched
    assert all(m.served != m.expected for m in check.mismatches)

    ratio, checked = registry.skew()["customer_features"]
    assert (ratio, checked) == (check.ratio, len(rows))
    alerts = [a for a in ConsoleAlerts(registry).check() if a.name == "TrainingServingSkew"]
    assert [(a.subject, a.value, a.threshold) for a in alerts] == [
        ("customer_features", check.ratio, SKEW_ALERT)
    ]
