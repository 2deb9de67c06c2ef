"""The package's layers, checked on its import graph (parsed, not imported), and the explicit
PySpark work-arounds (guarded by version, applied in the workers, not on import)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from cdc_features.job import workarounds
from cdc_features.job.spark import KAFKA_PACKAGE, SPARK_VERSION, WORKER_DAEMON

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cdc_features"

# layer → the layers it may import (besides itself and the package root's constants)
ALLOWED = {
    "core": set(),
    "stores": {"core"},
    "monitoring": {"core", "stores"},
    "job": {"core", "stores", "monitoring"},
    "testing": {"core", "stores", "monitoring", "job"},
    "ml": {"core", "stores", "monitoring", "job", "testing"},
    "lab": {"core", "stores", "monitoring", "job", "testing", "ml"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The cdc_features modules a file imports (at any depth, including inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("cdc_features"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cdc_features"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def test_every_module_sits_in_a_layer() -> None:
    assert {_layer(m) for m in _graph()} == set(ALLOWED) | {"root"}


def test_imports_point_down_the_layers() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) not in ALLOWED.get(_layer(module), set()) | {_layer(module), "root"}
    )
    assert wrong == []


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (circle := visit(nxt, [*path, node])):
                return circle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            assert visit(start, []) is None


def test_no_module_keeps_configuration_in_a_module_global() -> None:
    # A module-level `global` statement is how configuration used to be stored; none is left.
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(isinstance(n, ast.Global) for n in ast.walk(ast.parse(path.read_text())))
    ]
    assert offenders == []


def test_workarounds_apply_only_to_the_versions_they_are_for() -> None:
    for workaround in workarounds.WORKAROUNDS:
        assert workaround.reason and workaround.pyspark_versions
        assert workaround.applies(workaround.pyspark_versions[0])
        assert not workaround.applies("99.0.0")
    assert workarounds.apply_worker_workarounds("99.0.0") == []


def test_the_workers_run_with_the_workarounds_and_the_driver_without(spark: SparkSession) -> None:
    from pyspark import worker

    assert spark.conf.get("spark.python.daemon.module") == WORKER_DAEMON

    @F.udf(BooleanType())
    def patched_in_worker(_: int) -> bool:
        from pyspark import worker as worker_module

        return bool(getattr(worker_module.EvalConf, "_cdc_features_patched", False))

    [row] = spark.range(1).select(patched_in_worker("id").alias("patched")).collect()
    expected = workarounds.STATE_SCHEMA_CASE.applies()
    assert row["patched"] is expected
    # importing the package patched nothing in this (driver) process
    assert not getattr(worker.EvalConf, "_cdc_features_patched", False)


# Measured on 4.2.0 (BENCHMARKS.md, "Spark 4.2.0"): the zip re-read and the float state offsets
# of 4.1.1 are gone (dropped); the lower-cased state schema is new (STATE_SCHEMA_CASE); pandas'
# empty-concat warning is still printed by the state serializer (kept).
@pytest.mark.parametrize("version", ["4.2.0"])
def test_the_pinned_pyspark_is_the_one_the_workarounds_were_measured_on(version: str) -> None:
    import pyspark

    # When the pin moves, re-measure each work-around and extend its version list (or drop it).
    assert pyspark.__version__ == version


def test_spark_pyspark_and_the_kafka_package_are_one_version() -> None:
    """The pip pin, the Kafka package the job asks Ivy for, and the pom that primes ``~/.m2``
    (stack/fetch-jars.sh) name the same Spark version."""
    import pyspark

    lab = PACKAGE.parents[1]
    pin = re.search(r'"pyspark==([^"]+)"', (lab / "pyproject.toml").read_text())
    pom = ElementTree.parse(lab / "stack" / "maven" / "spark-kafka" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    versions = {
        d.findtext("m:artifactId", namespaces=ns): d.findtext("m:version", namespaces=ns)
        for d in pom.iterfind(".//m:dependency", ns)
    }
    assert pin is not None
    assert pin.group(1) == pyspark.__version__ == SPARK_VERSION
    assert versions["spark-sql-kafka-0-10_2.13"] == SPARK_VERSION
    assert KAFKA_PACKAGE.endswith(f":{versions['spark-sql-kafka-0-10_2.13']}")
