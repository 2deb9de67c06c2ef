"""End to end on real components: PostgreSQL → Debezium → Kafka → Spark → Redis.

One scenario, in order (each step checks the whole feature store):
1. rows that exist before the connector starts (read by Debezium's snapshot), then a
   steady stream of orders, corrections, cancellations, deletes and back-dated orders;
2. the Spark job is stopped in the middle of a stream and restarted from its checkpoint;
3. Kafka Connect is killed in the middle of a stream (SIGKILL: its last source offsets are
   not flushed, so Debezium sends those changes again) and restarted;
4. the source pauses: a real Prometheus, scraping the job's /metrics with the lab's alert rules
   (test timings: ``promctl.rules_with_test_timings``), fires ``FeatureFreshnessStale``; the
   source resumes and the alert resolves; the lag p99 is read with ``histogram_quantile``.
After each step, the features read from Redis at T = now equal both the batch reference
(``cdc_features.core.reference``) computed from every message on the Kafka topics, and an
independent SQL computation over the database's current rows.

Run with ``stack/e2e-test.sh`` (starts and stops the stack; JUnit XML to $JUNIT_XML).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from promctl import Prometheus, rules_with_test_timings, wait_until
from stackctl import (
    Stack,
    database_state,
    duplicate_deliveries,
    finish_workload,
    kafka_messages,
    payload,
    read_changes,
    replay,
    run_workload,
    sql_customer_truth,
    sql_product_truth,
)

PREFIX = "dbserver1"
TOPICS = [f"{PREFIX}.inventory.orders", f"{PREFIX}.inventory.order_items"]
CATCH_UP_SECONDS = 180
#: Prometheus in the test: scrape and evaluate every second, every `for` 5 s, freshness alert
#: above 60 s (production: 15 s intervals, `for` 2m-30m, freshness above 300 s)
PROMETHEUS_INTERVAL = "1s"
TEST_FOR = "5s"
TEST_FRESHNESS_SECONDS = 60


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(Path(__file__).resolve().parent.parent / ".run" / "e2e")
    s.reset()
    try:
        s.up()
        started = time.monotonic()
        rules = rules_with_test_timings(
            s.run_dir / "test-rules" / "alert_rules.yml",
            for_=TEST_FOR,
            freshness_seconds=TEST_FRESHNESS_SECONDS,
        )
        s.up(
            "prometheus",
            env={"PROMETHEUS_RULES": str(rules), "PROMETHEUS_INTERVAL": PROMETHEUS_INTERVAL},
        )
        print(f"prometheus started in {time.monotonic() - started:.1f}s")
        yield s
    finally:
        s.down()


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from cdc_features.job.spark import get_spark

    session = get_spark("cdc-features-e2e", kafka=True)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def store(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env()["REDIS_URL"])
    yield client
    client.close()


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
            metrics_port=int(env["METRICS_PORT"]),  # the port the stack's Prometheus scrapes
        )
        self.pipeline: Any = None

    def start(self) -> None:
        from cdc_features.job.pipeline import start_pipeline

        self.pipeline = start_pipeline(self.spark, self.config)

    def stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def stop_between_batches(self, timeout: float = 300) -> None:
        """Stop the job while no micro-batch is running (a graceful shutdown).

        Spark 4.1.1's Kafka source fails a restarted query with a NullPointerException in
        ``KafkaMicroBatchStream.metrics`` when the query was stopped inside a micro-batch
        (the planned batch is re-run without fetching the latest offsets), so the restart
        step stops the job between batches.
        """
        deadline = time.monotonic() + timeout
        while any(q.status["isTriggerActive"] for q in self.pipeline.queries.values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the job never paused between micro-batches in {timeout}s")
            time.sleep(0.02)
        self.stop()

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


def wait_for_kafka(spark: Any, stack: Stack, job: Job) -> list[dict[str, Any]]:
    """Wait until the change log on Kafka replays to the database's current rows.

    Returns every message on the topics. (The workload has finished, so the database no
    longer changes; Debezium is caught up exactly when the replayed log equals it.)
    """
    bootstrap = stack.env()["KAFKA_BOOTSTRAP"]
    truth = database_state(stack)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        job.raise_if_failed()
        messages = kafka_messages(spark, bootstrap, TOPICS)
        state = replay(messages, PREFIX)
        if state == truth:
            return messages
        if time.monotonic() > deadline:
            diff = {t: len(set(state[t].items()) ^ set(truth[t].items())) for t in truth}
            raise AssertionError(
                f"Kafka's change log does not replay to the database after {CATCH_UP_SECONDS}s "
                f"(differing rows: {diff}); see {stack.run_dir / 'logs/connect.log'}"
            )
        time.sleep(1)


def check_store(stack: Stack, store: redis.Redis, messages: list[dict[str, Any]]) -> dict[str, int]:
    """Redis features at T = now equal the batch reference and the SQL truth."""
    from cdc_features.core.reference import reference_customer_features, reference_product_features
    from cdc_features.stores.redis_store import RedisFeatureReader

    at = datetime.now(UTC)
    raw = [{"topic": m["topic"], "key": m["key"], "value": m["value"]} for m in messages]
    ref_customers = reference_customer_features(raw, at)
    ref_products = reference_product_features(raw, at)
    sql_customers = sql_customer_truth(stack, at)
    sql_products = sql_product_truth(stack, at)

    customer_ids = set(ref_customers) | set(sql_customers)
    product_ids = set(ref_products) | set(sql_products)
    reader = RedisFeatureReader(store)
    got_customers = reader.customer_features(customer_ids, at)
    got_products = reader.product_features(product_ids, at)

    counted = [c for c in ref_customers.values() if c.order_count_30d > 0]
    assert len(counted) >= 10, f"too few customers with orders to be a meaningful check: {counted}"
    for cid in sorted(customer_ids):
        got = got_customers[cid]
        if cid in ref_customers:
            assert got == ref_customers[cid], (
                f"customer {cid}: Redis {got} != reference {ref_customers[cid]}"
            )
        truth = sql_customers.get(cid)
        assert got.order_count_30d == (truth.order_count_30d if truth else 0), (cid, got, truth)
        assert got.total_spend_30d == (truth.total_spend_30d if truth else Decimal("0.00")), (
            cid,
            got,
            truth,
        )
        assert got.last_order_ts == (truth.last_order_ts if truth else None), (cid, got, truth)
    for pid in sorted(product_ids):
        got = got_products[pid]
        if pid in ref_products:
            assert got == ref_products[pid], (
                f"product {pid}: Redis {got} != reference {ref_products[pid]}"
            )
        truth = sql_products.get(pid)
        assert got.units_sold_7d == (truth.units_sold_7d if truth else 0), (pid, got, truth)
        assert got.revenue_7d == (truth.revenue_7d if truth else Decimal("0.00")), (pid, got, truth)
        assert got.unique_customers_7d == (truth.unique_customers_7d if truth else 0), (
            pid,
            got,
            truth,
        )
    return {"customers": len(customer_ids), "products": len(product_ids), "messages": len(messages)}


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
        messages = wait_for_kafka(spark, stack, job)
        job.await_idle()
        ops = {payload(m["value"])["op"] if m["value"] else None for m in messages}
        assert {"r", "c", "u", "d", None} <= ops, ops
        summary = check_store(stack, store, messages)
        print(f"step 1 (snapshot + stream): {summary}")

        # 2. stop the Spark job mid-stream, restart it from its checkpoint
        proc = run_workload(stack, changes_file, seed=13, changes=800, rate=100, background=True)
        time.sleep(3)
        job.stop_between_batches()
        time.sleep(2)
        job.start()
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job)
        job.await_idle()
        summary = check_store(stack, store, messages)
        print(f"step 2 (Spark restarted from its checkpoint): {summary}")

        # 3. crash Kafka Connect mid-stream; Debezium resumes from its last flushed offset
        before = duplicate_deliveries(messages)
        proc = run_workload(stack, changes_file, seed=14, changes=800, rate=100, background=True)
        time.sleep(3)
        stack.crash_connect()
        stack.up("connect")
        stack.connector()
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job)
        job.await_idle()
        summary = check_store(stack, store, messages)
        resent = duplicate_deliveries(messages) - before
        print(f"step 3 (Connect killed and restarted): {summary}, re-sent messages: {resent}")

        # 4. the source runs (no freshness alert), pauses (Prometheus fires FeatureFreshnessStale
        # for customer_features), resumes (the alert resolves)
        step4 = time.monotonic()
        prom = Prometheus(stack.env()["PROMETHEUS_URL"])
        assert prom.targets_up() == [f"http://127.0.0.1:{job.config.metrics_port}/metrics"]
        not_firing = lambda: not prom.firing("FeatureFreshnessStale", query="customer_features")  # noqa: E731
        run_workload(stack, changes_file, seed=15, changes=100, rate=50)
        paused_at = datetime.now(UTC)  # the last change is committed: the source is quiet now

        # neither firing nor pending: an alert still pending from the quiet spell before these
        # changes (the checks of step 3 can take longer than the threshold) would otherwise
        # turn firing with an activeAt before the pause
        def inactive() -> bool:
            return not [
                a
                for a in prom.alerts()
                if a["labels"].get("alertname") == "FeatureFreshnessStale"
                and a["labels"].get("query") == "customer_features"
            ]

        wait_until("FeatureFreshnessStale inactive after the new changes", inactive, timeout=240)
        [alert] = wait_until(
            "FeatureFreshnessStale firing for customer_features in Prometheus",
            lambda: prom.firing("FeatureFreshnessStale", query="customer_features"),
            timeout=TEST_FRESHNESS_SECONDS + 90,
        )
        fired = (datetime.now(UTC) - paused_at).total_seconds()
        active_at = datetime.fromisoformat(alert["activeAt"])  # RFC 3339, nanoseconds
        assert active_at > paused_at, (alert["activeAt"], paused_at)
        assert alert["labels"]["severity"] == "warning"
        assert float(alert["value"]) > TEST_FRESHNESS_SECONDS
        assert alert["annotations"]["summary"].startswith(
            "Newest event in the feature store (customer_features) is "
        )
        proc = run_workload(stack, changes_file, seed=16, changes=100, rate=50, background=True)
        resumed = time.monotonic()
        wait_until(
            "FeatureFreshnessStale resolved after the source resumed", not_firing, timeout=240
        )
        resolved = time.monotonic() - resumed
        finish_workload(proc)
        messages = wait_for_kafka(spark, stack, job)
        job.await_idle()
        summary = check_store(stack, store, messages)
        print(
            f"step 4 (source paused and resumed): {summary}; FeatureFreshnessStale active "
            f"{(active_at - paused_at).total_seconds():.1f}s and firing {fired:.1f}s after the "
            f"source paused, resolved {resolved:.1f}s after it resumed"
        )
        assert len(read_changes(changes_file)) == 150 + 1200 + 800 + 800 + 100 + 100

        # lag quantiles from the histogram, as Prometheus computes them, lie in the bucket where
        # the job's own cumulative counts cross the rank (the job is idle: its histogram is not
        # changing). The rows delayed by the Connect crash of step 3 are in it too.
        lag = 'cdc_features_end_to_end_lag_seconds_bucket{query="customer_features"}'
        wait_until(
            "Prometheus has the job's final lag histogram",
            lambda: lag_count_in_prometheus(prom) == job_lag_buckets(job)[-1][1],
            timeout=30,
        )
        buckets = job_lag_buckets(job)
        quantiles = {}
        for q in (0.5, 0.99):
            [result] = prom.query(f"histogram_quantile({q}, sum by (le) ({lag}))")
            value = quantiles[q] = float(result["value"][1])
            rank = q * buckets[-1][1]
            upper = next(le for le, count in buckets if count >= rank)
            lower = max([0.0, *(le for le, count in buckets if count < rank)])
            assert lower <= value <= upper, (q, value, buckets)
        assert quantiles[0.5] <= quantiles[0.99]
        print(
            f"lag p50 / p99 (histogram_quantile in Prometheus): {quantiles[0.5]:.2f}s / "
            f"{quantiles[0.99]:.2f}s over {buckets[-1][1]:.0f} rows; buckets {buckets}; "
            f"step 4 took {time.monotonic() - step4:.1f}s"
        )
    finally:
        job.stop()


def job_lag_buckets(job: Job) -> list[tuple[float, float]]:
    """(le, cumulative count) of the customer lag histogram on the job's own /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    from cdc_features.monitoring import metrics_text

    monitoring = job.pipeline.monitoring
    assert monitoring is not None
    text = metrics_text(monitoring.registry.prometheus)
    return sorted(
        (float(s.labels["le"]), s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "cdc_features_end_to_end_lag_seconds_bucket"
        and s.labels["query"] == "customer_features"
    )


def lag_count_in_prometheus(prom: Prometheus) -> float | None:
    result = prom.query('cdc_features_end_to_end_lag_seconds_count{query="customer_features"}')
    return float(result[0]["value"][1]) if result else None
