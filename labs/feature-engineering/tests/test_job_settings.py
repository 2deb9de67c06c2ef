"""Settings that move the job off one machine: the master, the shuffle partitions and the
checkpoint file manager chosen per file system (the standalone-cluster run itself is in the
e2e suite: stack/e2e/test_e2e_cluster.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import redis
from pyspark.sql import SparkSession

from cdc_features.core.spec import CUSTOMER_QUERY, PRODUCT_QUERY
from cdc_features.job.config import PipelineConfig, add_arguments, config_from_args
from cdc_features.job.pipeline import start_pipeline
from cdc_features.job.spark import (
    CHECKPOINT_FILE_MANAGER_CONF,
    CHECKPOINT_FILE_MANAGERS,
    LOCAL_MASTER,
    SHUFFLE_PARTITIONS_CONF,
    checkpoint_file_manager,
    default_master,
    file_system_scheme,
)
from cdc_features.lab.generator import generate_log
from cdc_features.lab.replay import newest_order_time
from cdc_features.stores.base import differences_from_reference
from cdc_features.stores.redis_store import RedisFeatureReader
from cdc_features.testing import feed, stream_config

FILESYSTEM = CHECKPOINT_FILE_MANAGERS["filesystem"]
FILECONTEXT = CHECKPOINT_FILE_MANAGERS["filecontext"]


@pytest.mark.parametrize(
    ("choice", "scheme", "expected"),
    [
        ("auto", "file", FILESYSTEM),  # a local disk: java.io rename is atomic
        ("auto", "hdfs", FILECONTEXT),  # anything else keeps Spark's default
        ("auto", "s3a", FILECONTEXT),
        ("filesystem", "s3a", FILESYSTEM),  # forced
        ("filecontext", "file", FILECONTEXT),
        ("com.example.CloudCheckpointManager", "s3a", "com.example.CloudCheckpointManager"),
    ],
)
def test_the_checkpoint_file_manager_is_chosen_per_file_system(
    choice: str, scheme: str, expected: str
) -> None:
    assert checkpoint_file_manager(choice, scheme) == expected


def test_an_unknown_checkpoint_file_manager_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown checkpoint file manager 'fast'"):
        checkpoint_file_manager("fast", "file")
    with pytest.raises(ValueError, match="unknown checkpoint file manager"):
        PipelineConfig(checkpoint_dir=tmp_path, input_dir=tmp_path, checkpoint_file_manager="x")


def test_the_file_system_is_resolved_by_hadoop(spark: SparkSession, tmp_path: Path) -> None:
    assert file_system_scheme(spark, str(tmp_path)) == "file"  # a bare path: fs.defaultFS
    assert file_system_scheme(spark, f"file://{tmp_path}") == "file"
    assert file_system_scheme(spark, "hdfs://127.0.0.1:1/checkpoints") == "hdfs"  # no connection


def test_the_master_comes_from_spark_submit_when_it_launched_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert default_master() == LOCAL_MASTER
    assert default_master("spark://127.0.0.1:7077") == "spark://127.0.0.1:7077"
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "41000")  # what spark-submit gives its driver
    assert default_master() is None  # spark-submit's --master applies
    monkeypatch.setenv("SPARK_MASTER", "spark://h:7077")
    assert default_master() == "spark://h:7077"


def test_command_line_settings(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--input-dir",
            str(tmp_path),
            "--checkpoint-dir",
            "hdfs://namenode:8020/lab/checkpoints",
            "--dead-letter-dir",
            str(tmp_path / "dead"),
            "--shuffle-partitions",
            "8",
            "--checkpoint-file-manager",
            "filecontext",
        ]
    )
    config = config_from_args(args)
    assert config.checkpoint_dir == "hdfs://namenode:8020/lab/checkpoints"  # not a folded Path
    assert not config.checkpoint_on_local_path
    assert config.checkpoint_location(CUSTOMER_QUERY) == (
        "hdfs://namenode:8020/lab/checkpoints/customer_features"
    )
    assert config.shuffle_partitions == 8
    assert config.checkpoint_file_manager == "filecontext"
    defaults = config_from_args(parser.parse_args(["--input-dir", str(tmp_path)]))
    assert defaults.shuffle_partitions is None
    assert defaults.checkpoint_file_manager == "auto"
    assert defaults.checkpoint_on_local_path


def test_invalid_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--dead-letter-dir"):
        PipelineConfig(checkpoint_dir="s3a://bucket/ckpt", input_dir=tmp_path)
    with pytest.raises(ValueError, match="--shuffle-partitions must be >= 1"):
        PipelineConfig(checkpoint_dir=tmp_path, input_dir=tmp_path, shuffle_partitions=0)


def _shuffle_partitions_in_checkpoint(checkpoint: Path, query: str) -> str:
    metadata = (checkpoint / query / "offsets" / "0").read_text().splitlines()[1]
    return str(json.loads(metadata)["conf"][SHUFFLE_PARTITIONS_CONF])


def test_the_pipeline_applies_its_settings_and_a_restart_keeps_the_partitions(
    spark: SparkSession, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    before = {k: spark.conf.get(k) for k in (SHUFFLE_PARTITIONS_CONF, CHECKPOINT_FILE_MANAGER_CONF)}
    log = generate_log(41, 300, days=20)
    try:
        config = stream_config(tmp_path, redis_url, shuffle_partitions=3)
        pipeline = start_pipeline(spark, config)
        try:
            feed(log[:150], config.input_dir, 0)  # type: ignore[arg-type]
            pipeline.await_idle()
        finally:
            pipeline.stop()
        assert spark.conf.get(CHECKPOINT_FILE_MANAGER_CONF) == FILESYSTEM  # a local checkpoint
        for query in (CUSTOMER_QUERY, PRODUCT_QUERY):
            assert _shuffle_partitions_in_checkpoint(tmp_path / "checkpoints", query) == "3"

        # restarted with another number: Spark keeps the checkpoint's 3 (state is split in 3)
        restarted = stream_config(tmp_path, redis_url, shuffle_partitions=5)
        pipeline = start_pipeline(spark, restarted)
        try:
            feed(log[150:], restarted.input_dir, 1)  # type: ignore[arg-type]
            pipeline.await_idle()
            progress = pipeline.queries[CUSTOMER_QUERY].lastProgress
        finally:
            pipeline.stop()
        assert progress is not None
        assert progress["stateOperators"][0]["numShufflePartitions"] == 3
        at = newest_order_time(log)
        assert at is not None
        assert differences_from_reference(RedisFeatureReader(redis_client), log, at) == []
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
