"""Differential: generated Debezium logs (>= 10,000 events, fixed seeds) through the feature
jobs, read at several T, equal the plain-Python batch reference exactly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from cdc_features.core.reference import reference_customer_features, reference_product_features
from cdc_features.lab.generator import generate_log
from cdc_features.stores.memory import MemoryStore
from cdc_features.testing import (
    FeatureStream,
    all_customers,
    all_products,
    newest_time,
    static_store,
)

N_EVENTS = 10_000
LATER = (timedelta(0), timedelta(days=10), timedelta(days=31))


def assert_equal_to_reference(store: MemoryStore, log: list) -> None:
    end = newest_time(log)
    for later in LATER:
        at = end + later
        want_c = reference_customer_features(log, at)
        want_p = reference_product_features(log, at)
        got_c = all_customers(store, at, want_c)
        got_p = all_products(store, at, want_p)
        diff_c = {c: (got_c[c], want_c.get(c)) for c in got_c if got_c[c] != want_c.get(c)}
        diff_p = {p: (got_p[p], want_p.get(p)) for p in got_p if got_p[p] != want_p.get(p)}
        assert not diff_c, (
            f"T = end + {later}: {len(diff_c)} customers differ, e.g. {next(iter(diff_c.items()))}"
        )
        assert not diff_p, (
            f"T = end + {later}: {len(diff_p)} products differ, e.g. {next(iter(diff_p.items()))}"
        )
        if later == timedelta(0):  # the comparison is not vacuous
            assert sum(1 for f in want_c.values() if f.order_count_30d) > 50
            assert sum(1 for f in want_p.values() if f.units_sold_7d) > 10


def test_stream_with_schemas_and_precise_decimals(spark: SparkSession, tmp_path: Path) -> None:
    log = generate_log(7, N_EVENTS, schemas=True, decimal_mode="precise", malformed_rate=0.01)
    with FeatureStream(spark, tmp_path) as run:
        for i in range(3):
            run.step(log[i * N_EVENTS // 3 : (i + 1) * N_EVENTS // 3 + (1 if i == 2 else 0)])
        dropped = run.dropped
    assert_equal_to_reference(run.store, log)
    assert dropped["customers"] > 0  # the generator's too-late orders were dropped


def test_static_payload_only_string_decimals(spark: SparkSession) -> None:
    log = generate_log(11, N_EVENTS, schemas=False, decimal_mode="string", malformed_rate=0.01)
    assert_equal_to_reference(static_store(spark, log), log)


def test_static_payload_only_double_decimals(spark: SparkSession) -> None:
    log = generate_log(12, N_EVENTS, schemas=False, decimal_mode="double")
    assert_equal_to_reference(static_store(spark, log), log)
