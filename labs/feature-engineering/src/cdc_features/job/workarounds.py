"""Work-arounds for the pinned PySpark, applied explicitly, each guarded by the version it is for.

Most run in the PySpark *worker* processes: :func:`cdc_features.job.spark.get_spark` makes
Spark start its Python workers through :mod:`cdc_features.job.worker_daemon`, which calls
:func:`apply_worker_workarounds` once before forking them. One runs on the driver:
:func:`drain_listener_bus`, called by ``Pipeline.stop()``. Nothing is patched on import.
A version outside a work-around's list leaves PySpark untouched; re-check the reason on
an upgrade (the product-state and benchmark tests show whether it is still needed) and
extend the list only after measuring.

Dropped with the move to 4.2.0 (BENCHMARKS.md, "Spark 4.2.0"): skipping the zipimport
directory re-reads of every task (4.2.0 invalidates the import caches only when a task adds
a path: 16 re-reads per worker whatever the number of micro-batches, against ~36 per
micro-batch on 4.1.1) and turning applyInPandasWithState's state-info offsets into integers
(4.1.1 handed them over as floats; 4.2.0 converts the state info another way, and the
product queries pass without the patch).
"""

from __future__ import annotations

import json
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


STATE_SCHEMA_CASE = Workaround(
    name="state schemas read verbatim in applyInPandasWithState workers",
    reason=(
        "PySpark 4.2.0's worker Conf.get lower-cases every string value unless told not to, "
        "and EvalConf.state_value_schema / grouping_key_schema read their JSON schemas that "
        'way: an array in the state schema arrives as "elementtype" and the worker fails '
        "with KeyError: 'elementType' (the product query's first micro-batch, every time; "
        "field names would be lower-cased too). The patch reads both schemas verbatim, as "
        "EvalConf.input_type already does."
    ),
    pyspark_versions=("4.2.0",),
)
PANDAS_EMPTY_CONCAT_WARNING = Workaround(
    name="silence pandas' empty-frame concat FutureWarning in the state serializer",
    reason=(
        "PySpark's state serializer concatenates each bucket's output frames, some of them "
        "empty (a bucket whose orders changed no line); pandas 2.3 warns about that on every "
        "call, flooding the job's stderr (still so in 4.2.0: ApplyInPandasWithStateSerializer "
        "concatenates an all-NA filler frame)."
    ),
    pyspark_versions=("4.1.1", "4.2.0"),
)

DRAIN_LISTENER_BUS = Workaround(
    name="wait for the listener bus before a Python listener goes away",
    reason=(
        "Spark delivers StreamingQueryListener events asynchronously; an event already being "
        "dispatched when removeListener() returns (or the stop events of the queries) still "
        "calls the Python listener through Py4J. When the Python process exits right after "
        "Pipeline.stop(), the JVM logs 'ERROR StreamingQueryListenerBus: Listener "
        "PythonStreamingQueryListenerWrapper threw an exception' with a Py4J stack trace "
        "(reproduced: three micro-batches, stop, exit; on 4.2.0 too, 3 runs of 3 without "
        "the wait, 0 with it). PySpark has no public wait, so the "
        "driver waits on SparkContext.listenerBus().waitUntilEmpty(), a JVM method Spark "
        "marks private[spark]."
    ),
    pyspark_versions=("4.1.1", "4.2.0"),
)
WORKAROUNDS = (STATE_SCHEMA_CASE, PANDAS_EMPTY_CONCAT_WARNING, DRAIN_LISTENER_BUS)


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


def _state_schemas_verbatim() -> None:
    from pyspark import worker
    from pyspark.sql.types import StructType

    cls: Any = worker.EvalConf
    if getattr(cls, "_cdc_features_patched", False):
        return

    def schema(key: str) -> property:
        def read(self: Any) -> StructType | None:
            text = self.get(key, None, lower_str=False)
            return None if text is None else StructType.fromJson(json.loads(text))

        return property(read)

    cls.state_value_schema = schema("state_value_schema")
    cls.grouping_key_schema = schema("grouping_key_schema")
    cls._cdc_features_patched = True


def _silence_empty_concat_warning() -> None:
    warnings.filterwarnings(
        "ignore",
        message="The behavior of DataFrame concatenation with empty",
        category=FutureWarning,
    )


_PATCHES = (
    (STATE_SCHEMA_CASE, _state_schemas_verbatim),
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
