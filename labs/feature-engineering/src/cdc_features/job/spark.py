"""SparkSession factory shared by the job, the lab, the tests and the benchmarks."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

SPARK_VERSION = "4.2.0"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
# Checkpoint files (offsets, commits, state) are written to a temporary file and renamed.
# The default manager renames through Hadoop's FileContext, which without the native
# libhadoop (pip's PySpark has none) forks a `readlink` process for both paths of every
# rename: about ten forks per micro-batch and query, the largest fixed cost of a small
# batch here. The FileSystem-based manager renames with java.io (atomic on a local disk).
# For checkpoints on HDFS or an object store, drop this setting and keep Spark's default.
CHECKPOINT_FILE_MANAGER = (
    "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager"
)
# Python workers are forked by this daemon, which applies the job's PySpark work-arounds
# (cdc_features.job.workarounds) first.
WORKER_DAEMON = "cdc_features.job.worker_daemon"


def get_spark(
    app_name: str = "cdc-features",
    master: str | None = None,
    *,
    kafka: bool = False,
    shuffle_partitions: int = 2,
) -> SparkSession:
    """Return the process-wide SparkSession, creating it on first use.

    Event times are interpreted in UTC (``spark.sql.session.timeZone``: the daily tiles are
    UTC days), the state store is RocksDB, the Python workers start through the job's worker
    daemon (work-arounds of the pinned PySpark), and ``kafka=True`` adds the Kafka source
    package of exactly this Spark version (resolved from ``~/.m2`` first by Ivy).
    """
    # Python workers must run this interpreter (the venv with cdc_features and redis),
    # not whatever ``python3`` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("SPARK_MASTER", "local[2]"))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.stateStore.providerClass", ROCKSDB_PROVIDER)
        .config("spark.sql.streaming.checkpointFileManagerClass", CHECKPOINT_FILE_MANAGER)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.daemon.module", WORKER_DAEMON)
    )
    if kafka:
        builder = builder.config("spark.jars.packages", KAFKA_PACKAGE)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return spark
