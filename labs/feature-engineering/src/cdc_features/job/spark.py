"""SparkSession factory shared by the job, the lab, the tests and the benchmarks."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

SPARK_VERSION = "4.2.0"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
LOCAL_MASTER = "local[2]"
_CHECKPOINTING = "org.apache.spark.sql.execution.streaming.checkpointing"
CHECKPOINT_FILE_MANAGER_CONF = "spark.sql.streaming.checkpointFileManagerClass"
# Checkpoint files (offsets, commits, state) are written to a temporary file and renamed.
# Spark's default manager renames through Hadoop's FileContext, which without the native
# libhadoop (pip's PySpark has none) forks a `readlink` process for both paths of every
# rename on a local disk: about ten forks per micro-batch and query, the largest fixed cost
# of a small batch here. The FileSystem-based manager renames with java.io, which is atomic
# on a local disk only; on HDFS or an object store Spark's default manager stays
# (:func:`checkpoint_file_manager` chooses per file system).
CHECKPOINT_FILE_MANAGERS = {
    "filesystem": f"{_CHECKPOINTING}.FileSystemBasedCheckpointFileManager",
    "filecontext": f"{_CHECKPOINTING}.FileContextBasedCheckpointFileManager",
}
# File systems whose rename is atomic with the FileSystem-based manager (a local disk).
ATOMIC_RENAME_SCHEMES = ("file",)
SHUFFLE_PARTITIONS_CONF = "spark.sql.shuffle.partitions"
# Python workers are forked by this daemon, which applies the job's PySpark work-arounds
# (cdc_features.job.workarounds) first.
WORKER_DAEMON = "cdc_features.job.worker_daemon"


def default_master(master: str | None = None) -> str | None:
    """The master to ask for: ``master``, else env ``SPARK_MASTER``, else none when the driver
    was launched by ``spark-submit`` (its ``--master`` applies), else ``local[2]``."""
    if master:
        return master
    if os.environ.get("SPARK_MASTER"):
        return os.environ["SPARK_MASTER"]
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # the JVM was started by spark-submit
        return None
    return LOCAL_MASTER


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
    daemon (work-arounds of the pinned PySpark), checkpoints default to the FileSystem-based
    manager (local disk; the job chooses per file system, see :func:`apply_streaming_settings`),
    and ``kafka=True`` adds the Kafka source package of exactly this Spark version (resolved
    from ``~/.m2`` first by Ivy; under ``spark-submit`` pass it with ``--packages``).
    """
    # Python workers must run this interpreter (the venv with cdc_features and redis),
    # not whatever ``python3`` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    chosen = default_master(master)
    if chosen is not None:
        builder = builder.master(chosen)
    builder = (
        builder.config(SHUFFLE_PARTITIONS_CONF, str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.streaming.stateStore.providerClass", ROCKSDB_PROVIDER)
        .config(CHECKPOINT_FILE_MANAGER_CONF, CHECKPOINT_FILE_MANAGERS["filesystem"])
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


def file_system_scheme(spark: SparkSession, path: str) -> str:
    """The scheme of the Hadoop file system ``path`` lives on (``file``, ``hdfs``, ``s3a``...),
    resolved the way Spark resolves a checkpoint location (``fs.defaultFS`` for a bare path)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return str(hadoop_path.getFileSystem(hadoop_conf).getScheme())


def checkpoint_file_manager(choice: str, scheme: str) -> str:
    """The checkpoint file manager class for a checkpoint on a file system with ``scheme``.

    ``auto``: the FileSystem-based manager where its rename is atomic (a local disk), Spark's
    default (FileContext-based) elsewhere; ``filesystem`` / ``filecontext`` force one; any
    other value with a dot is taken as a class name (e.g. a cloud store's own manager).
    """
    if choice == "auto":
        key = "filesystem" if scheme in ATOMIC_RENAME_SCHEMES else "filecontext"
        return CHECKPOINT_FILE_MANAGERS[key]
    if choice in CHECKPOINT_FILE_MANAGERS:
        return CHECKPOINT_FILE_MANAGERS[choice]
    if "." in choice:
        return choice
    raise ValueError(
        f"unknown checkpoint file manager {choice!r}: auto, "
        f"{', '.join(CHECKPOINT_FILE_MANAGERS)} or a class name"
    )


def apply_streaming_settings(
    spark: SparkSession,
    *,
    checkpoint_dir: str,
    checkpoint_manager: str = "auto",
    shuffle_partitions: int | None = None,
) -> dict[str, str]:
    """Set the session's settings for the job's streaming queries; return those set.

    The checkpoint file manager is chosen for ``checkpoint_dir``'s file system
    (:func:`checkpoint_file_manager`); the shuffle partitions are set when given (a stateful
    query keeps the number of its first run: Spark stores it in the checkpoint and a
    restarted query uses that). They are session settings because Spark reads them from
    the session (its sources, logs and state stores), so the job owns its session.
    """
    settings = {
        CHECKPOINT_FILE_MANAGER_CONF: checkpoint_file_manager(
            checkpoint_manager, file_system_scheme(spark, checkpoint_dir)
        )
    }
    if shuffle_partitions is not None:
        if shuffle_partitions < 1:
            raise ValueError(f"shuffle partitions must be >= 1, got {shuffle_partitions}")
        settings[SHUFFLE_PARTITIONS_CONF] = str(shuffle_partitions)
    for key, value in settings.items():
        spark.conf.set(key, value)
    return settings
