"""Static checks of stack/docker-compose.yml (no Docker engine needed).

The Compose file mirrors the script-driven stack: it must mount the very config files
that stack.sh uses, and the host names and ports inside those files must match the
services and ports that Compose declares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

STACK = Path(__file__).resolve().parent.parent / "stack"
COMPOSE = STACK / "docker-compose.yml"


def _properties(path: Path) -> dict[str, str]:
    """A Java .properties file as a dict (later keys win, as in java.util.Properties)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def _container_port(services: dict[str, Any], name: str) -> int:
    ports = services[name]["ports"]
    assert len(ports) == 1, f"{name}: expected one published port, got {ports}"
    host, container = str(ports[0]).split(":")
    assert host == container, f"{name}: host and container port differ ({ports[0]})"
    return int(container)


def test_expected_services(services: dict[str, Any]) -> None:
    assert {"postgres", "kafka", "connect", "register-connector", "redis", "lab"} <= set(services)


def test_every_bind_mount_exists(services: dict[str, Any]) -> None:
    mounts = [(name, src) for name, svc in services.items() for src, _ in _bind_mounts(svc)]
    assert {src for _, src in mounts} == {
        "./sql/inventory.sql",
        "./config/kafka/server.properties",
        "./config/connect/connect-standalone.properties",
        "./config/connect/debezium-postgres.json",
        "./config/redis/redis.conf",
    }
    missing = [(name, src) for name, src in mounts if not (STACK / src).resolve().is_file()]
    assert missing == [], f"mounted files missing: {missing}"


def test_named_volumes_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    named = {
        v.split(":")[0]
        for svc in services.values()
        for v in svc.get("volumes", [])
        if not v.startswith((".", "/"))
    }
    assert named <= set(compose.get("volumes", {})), named - set(compose.get("volumes", {}))


def test_depends_on_names_services(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_lab_build_files_exist(services: dict[str, Any]) -> None:
    build = services["lab"]["build"]
    context = (STACK / build["context"]).resolve()
    assert (context / build["dockerfile"]).is_file()
    assert (context / "pyproject.toml").is_file()
    # the lab service runs `python -m <module>`: that module must exist in the build context
    module = services["lab"]["command"][services["lab"]["command"].index("-m") + 1]
    assert module == "cdc_features.job"
    assert (context / "src" / "cdc_features" / "job" / "__main__.py").is_file()


def test_host_ports_unique(services: dict[str, Any]) -> None:
    host_ports = [str(p).split(":")[0] for svc in services.values() for p in svc.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_postgres_settings_match_the_schema_and_connector(services: dict[str, Any]) -> None:
    pg = services["postgres"]
    assert "wal_level=logical" in pg["command"]
    assert pg["environment"]["POSTGRES_DB"] == "inventory"
    mounted = dict(_bind_mounts(pg))
    assert mounted["./sql/inventory.sql"].startswith("/docker-entrypoint-initdb.d/")
    sql = (STACK / "sql/inventory.sql").read_text()
    assert (
        "REPLICA IDENTITY FULL" in sql
        and "CREATE PUBLICATION dbz_publication FOR ALL TABLES" in sql
    )
    connector = json.loads((STACK / "config/connect/debezium-postgres.json").read_text())["config"]
    assert connector["database.hostname"] == "postgres"
    assert int(connector["database.port"]) == _container_port(services, "postgres") == 5432
    assert connector["database.user"] == pg["environment"]["POSTGRES_USER"]
    assert connector["database.password"] == pg["environment"]["POSTGRES_PASSWORD"]
    assert connector["database.dbname"] == pg["environment"]["POSTGRES_DB"]
    assert connector["publication.name"] == "dbz_publication"
    assert connector["plugin.name"] == "pgoutput"
    # heartbeats: an idle database is told from a dead connector, and the slot keeps moving
    assert 0 < int(connector["heartbeat.interval.ms"]) <= 60_000


def test_kafka_listener_matches_clients(services: dict[str, Any]) -> None:
    kafka_port = _container_port(services, "kafka")
    mounted = dict(_bind_mounts(services["kafka"]))
    props_target = mounted["./config/kafka/server.properties"]
    assert props_target in " ".join(services["kafka"]["command"])
    server = _properties(STACK / "config/kafka/server.properties")
    assert server["advertised.listeners"] == f"PLAINTEXT://kafka:{kafka_port}"
    assert f"PLAINTEXT://0.0.0.0:{kafka_port}" in server["listeners"]
    controller_port = server["controller.quorum.voters"].rsplit(":", 1)[1]
    assert f"CONTROLLER://0.0.0.0:{controller_port}" in server["listeners"]
    assert server["process.roles"] == "broker,controller"
    connect = _properties(STACK / "config/connect/connect-standalone.properties")
    assert connect["bootstrap.servers"] == f"kafka:{kafka_port}"
    lab_cmd = services["lab"]["command"]
    assert lab_cmd[lab_cmd.index("--bootstrap-servers") + 1] == f"kafka:{kafka_port}"


def test_connect_worker_uses_the_mounted_properties(services: dict[str, Any]) -> None:
    connect_port = _container_port(services, "connect")
    mounted = dict(_bind_mounts(services["connect"]))
    target = mounted["./config/connect/connect-standalone.properties"]
    assert target in services["connect"]["command"]
    props = _properties(STACK / "config/connect/connect-standalone.properties")
    assert props["listeners"] == f"http://0.0.0.0:{connect_port}"
    offsets_dir = str(Path(props["offset.storage.file.filename"]).parent)
    assert any(v.endswith(":" + offsets_dir) for v in services["connect"]["volumes"]), offsets_dir
    register = services["register-connector"]
    reg_target = dict(_bind_mounts(register))["./config/connect/debezium-postgres.json"]
    assert f"@{reg_target}" in register["command"]
    assert f"http://connect:{connect_port}/connectors" in register["command"]


def test_redis_port_matches_config_and_lab(services: dict[str, Any]) -> None:
    redis_port = _container_port(services, "redis")
    conf = (STACK / "config/redis/redis.conf").read_text().split()
    assert conf[conf.index("port") + 1] == str(redis_port)
    lab_cmd = services["lab"]["command"]
    assert lab_cmd[lab_cmd.index("--redis-url") + 1] == f"redis://redis:{redis_port}/0"
    topic_prefix = lab_cmd[lab_cmd.index("--topic-prefix") + 1]
    connector = json.loads((STACK / "config/connect/debezium-postgres.json").read_text())["config"]
    assert topic_prefix == connector["topic.prefix"]
