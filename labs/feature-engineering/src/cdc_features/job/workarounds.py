"""Work-arounds for the pinned PySpark, applied explicitly, each guarded by the version it is for.

Most run in the PySpark *worker* processes: :func:`cdc_features.job.spark.get_spark` makes
Spark start its Python workers through :mod:`cdc_features.job.worker_daemon`, which calls
:func:`apply_worker_workarounds` once before forking them. One runs on the driver:
:func:`drain_listener_bus`, called by ``Pipeline.stop()``. Nothing is patched on import.
A version outside a work-around's list leaves PySpark untouched; re-check the reason on
an upgrade (the product-state and benchmark tests show whether it is still needed) and
extend the list only after measuring.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import pyspark


@dataclass(frozen=True)
class Workaround:
    """One patch: what it fixes, why (issue or measurement), for which PySpark versions."""

    name: str
    reason: str
    pyspark_versions: tuple[str, ...]

    def applies(self, version: str = pyspark.__version__) -> bool:
        return version in self.pyspark_versions


ZIP_REREADS = Workaround(
    name="skip zipimport cache re-reads in workers",
    reason=(
        "pyspark.worker_util calls importlib.invalidate_caches() at the start of every task; "
        "on Python < 3.12 each zipimporter then re-parses its archive's directory "
        "(pyspark.zip, the spark-core jar, the Kafka jars: ~10,000 entries in pure Python). "
        "py-spy: 839 of 901 worker samples of a small micro-batch; product query alone "
        "allUpdatesTimeMs 1,432 -> 364 ms with the skip (BENCHMARKS.md). The archives never "
        "change while a worker runs. CDC_FEATURES_ZIP_REREADS=1 keeps PySpark's behaviour."
    ),
    pyspark_versions=("4.1.1",),
)
STATE_INFO_OFFSETS = Workaround(
    name="integer offsets in applyInPandasWithState",
    reason=(
        "PySpark 4.1.1 with pyarrow 26: ApplyInPandasWithStateSerializer hands each group's "
        "startOffset/numRows to RecordBatch.slice as floats when the state-info column holds "
        "nulls, and the worker fails with \"TypeError: 'float' object cannot be interpreted as "
        'an integer" (seen in the product-state tests); the patch turns them into ints.'
    ),
    pyspark_versions=("4.1.1",),
)
PANDAS_EMPTY_CONCAT_WARNING = Workaround(
    name="silence pandas' empty-frame concat FutureWarning in the state serializer",
    reason=(
        "PySpark's state serializer concatenates each bucket's output frames, some of them "
        "empty (a bucket whose orders changed no line); pandas 2.3 warns about that on every "
        "call, flooding the job's stderr."
    ),
    pyspark_versions=("4.1.1",),
)


DRAIN_LISTENER_BUS = Workaround(
    name="wait for the listener bus before a Python listener goes away",
    reason=(
        "Spark delivers StreamingQueryListener events asynchronously; an event already being "
        "dispatched when removeListener() returns (or the stop events of the queries) still "
        "calls the Python listener through Py4J. When the Python process exits right after "
        "Pipeline.stop(), the JVM logs 'ERROR StreamingQueryListenerBus: Listener "
        "PythonStreamingQueryListenerWrapper threw an exception' with a Py4J stack trace "
        "(reproduced: three micro-batches, stop, exit). PySpark has no public wait, so the "
        "driver waits on SparkContext.listenerBus().waitUntilEmpty(), a JVM method Spark "
        "marks private[spark]."
    ),
    pyspark_versions=("4.1.1",),
)


def drain_listener_bus(spark: Any, timeout_ms: int = 10_000) -> bool:
    """Block until Spark has delivered every queued listener event (driver side); returns
    whether it waited (False for a PySpark version this was not checked on, or when the
    bus did not empty within ``timeout_ms``: then nothing more can be done than go on)."""
    if not DRAIN_LISTENER_BUS.applies():
        return False
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(timeout_ms)
    except Exception:  # noqa: BLE001 - a stopped context or a timeout: nothing to wait for
        return False
    return True


def _skip_zip_rereads() -> None:
    if sys.version_info >= (3, 12) or os.environ.get("CDC_FEATURES_ZIP_REREADS") == "1":
        return
    import zipimport

    zipimport.zipimporter.invalidate_caches = lambda self: None  # type: ignore[method-assign]


def _integer_state_info_offsets() -> None:
    from pyspark.sql.pandas import serializers

    cls: Any = serializers.ApplyInPandasWithStateSerializer
    if getattr(cls, "_cdc_features_patched", False):
        return
    original = cls.arrow_to_pandas

    def arrow_to_pandas(self: Any, arrow_column: Any, idx: int, *args: Any, **kwargs: Any) -> Any:
        result = original(self, arrow_column, idx, *args, **kwargs)
        arrow_type = arrow_column.type
        if getattr(arrow_type, "num_fields", 0) and arrow_type.get_field_index("numRows") >= 0:
            for info in result:
                if info:
                    info["startOffset"] = int(info["startOffset"])
                    info["numRows"] = int(info["numRows"])
        return result

    cls.arrow_to_pandas = arrow_to_pandas
    cls._cdc_features_patched = True


def _silence_empty_concat_warning() -> None:
    warnings.filterwarnings(
        "ignore",
        message="The behavior of DataFrame concatenation with empty",
        category=FutureWarning,
    )


_PATCHES = (
    (ZIP_REREADS, _skip_zip_rereads),
    (STATE_INFO_OFFSETS, _integer_state_info_offsets),
    (PANDAS_EMPTY_CONCAT_WARNING, _silence_empty_concat_warning),
)


def apply_worker_workarounds(version: str = pyspark.__version__) -> list[str]:
    """Apply the patches meant for this PySpark version (in a worker process); returns the
    names of those applied."""
    applied = []
    for workaround, patch in _PATCHES:
        if workaround.applies(version):
            patch()
            applied.append(workaround.name)
    return applied
