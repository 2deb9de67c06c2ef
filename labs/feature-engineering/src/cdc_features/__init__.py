"""CDC events → ML features with Spark Structured Streaming (the lab of module 5, lesson 7)."""

from __future__ import annotations

import os
import sys


def _skip_zip_rereads_in_workers() -> None:
    """Keep PySpark workers from re-reading every archive on ``sys.path`` before each task.

    The worker calls ``importlib.invalidate_caches()`` at the start of every task; on
    Python < 3.12 that makes each ``zipimporter`` parse its archive's directory again —
    ``pyspark.zip``, the ``spark-core`` jar and, with ``spark.jars.packages``, the Kafka
    jars: about 10,000 entries in pure Python, hundreds of milliseconds per task, which
    dominated small micro-batches. The archives never change while a worker runs, so in
    worker processes (never in the driver) the re-read is skipped. Setting the environment
    variable ``CDC_FEATURES_ZIP_REREADS=1`` keeps PySpark's behaviour (to measure the difference).
    """
    if sys.version_info >= (3, 12) or os.environ.get("CDC_FEATURES_ZIP_REREADS") == "1":
        return
    try:
        from pyspark.core.files import SparkFiles
    except ImportError:  # not running under PySpark
        return
    if not getattr(SparkFiles, "_is_running_on_worker", False):
        return
    import zipimport

    zipimport.zipimporter.invalidate_caches = lambda self: None  # type: ignore[method-assign]


_skip_zip_rereads_in_workers()
