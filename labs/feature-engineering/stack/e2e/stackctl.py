"""Drive the script-started CDC stack from Python (end-to-end test and freshness benchmark).

Wraps ``stack/stack.sh`` (PostgreSQL, Kafka, Connect + Debezium, Redis), the TypeScript
workload generator, batch reads of the Debezium topics through Spark, and an independent
feature oracle computed with SQL straight from the source database.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

STACK = Path(__file__).resolve().parent.parent
LAB = STACK.parent
REPO = LAB.parent.parent


def node_binary() -> str:
    """A Node >= 22.12 binary (type stripping runs the .ts generator directly)."""
    if os.environ.get("NODE_BIN"):
        return os.environ["NODE_BIN"]
    out = subprocess.run(
        ["bash", str(REPO / "scripts/ensure-node.sh")], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"no Node >= 22.12 for the workload generator: {out.stderr.strip()}")
    return str(Path(out.stdout.strip()) / "node")


@dataclass
class Stack:
    """One stack instance living in its own run folder."""

    run_dir: Path

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "STACK_RUN_DIR": str(self.run_dir), **(extra or {})}

    def sh(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run ``stack.sh ARGS`` (with ``env`` added to the environment) and return its stdout
        (stderr goes to the log file)."""
        log = self.run_dir.parent / f"{self.run_dir.name}-stack.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as err:
            proc = subprocess.run(
                [str(STACK / "stack.sh"), *args],
                env=self._env(env),
                text=True,
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=timeout,
            )
        if check and proc.returncode != 0:
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"stack.sh {' '.join(args)} failed (rc {proc.returncode}):\n{tail}")
        return proc.stdout

    def env(self) -> dict[str, str]:
        """Ports and URLs of the running stack (the state file)."""
        return dict(line.split("=", 1) for line in self.sh("env").splitlines() if "=" in line)

    def up(self, *components: str, env: dict[str, str] | None = None) -> None:
        self.sh("up", *components, env=env)

    def down(self) -> None:
        self.sh("down", check=False)

    def reset(self) -> None:
        self.sh("reset", check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def connector(self, *overrides: str) -> None:
        self.sh("connector", *overrides)

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of a query as lists of text fields."""
        out = self.sh("psql", "-At", "-F", "\t", "-c", sql)
        return [line.split("\t") for line in out.splitlines() if line]

    def crash_connect(self) -> None:
        """Kill Kafka Connect without a clean shutdown (unflushed source offsets are lost)."""
        pid = int((self.run_dir / "connect.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Kafka Connect (pid {pid}) survived SIGKILL")


def run_workload(
    stack: Stack,
    out: Path,
    *,
    seed: int,
    changes: int,
    rate: float,
    customers: int = 40,
    products: int = 15,
    mix: str = "default",
    background: bool = False,
) -> subprocess.Popen[str] | None:
    """Run the TypeScript workload generator against the stack's database."""
    dsn = stack.env()["PG_DSN"]
    cmd = [
        node_binary(),
        str(STACK / "workload/generate.ts"),
        "--dsn",
        dsn,
        "--seed",
        str(seed),
        "--changes",
        str(changes),
        "--rate",
        str(rate),
        "--customers",
        str(customers),
        "--products",
        str(products),
        "--mix",
        mix,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, text=True, stderr=subprocess.PIPE)
    if background:
        return proc
    finish_workload(proc)
    return None


def finish_workload(proc: subprocess.Popen[str], timeout: float = 600) -> None:
    _, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"workload generator failed: {err}")


def read_changes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def kafka_messages(spark: Any, bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    """Every message of the topics (batch read), oldest first per topic."""
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", ",".join(topics))
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
        .selectExpr(
            "topic",
            "partition",
            "offset",
            "CAST(key AS STRING) AS key",
            "CAST(value AS STRING) AS value",
            "timestamp",
        )
    )
    rows = sorted(df.collect(), key=lambda r: (r["topic"], r["partition"], r["offset"]))
    return [
        {
            "topic": r["topic"],
            "partition": r["partition"],
            "offset": r["offset"],
            "key": r["key"],
            "value": r["value"],
            "timestamp_ms": int(r["timestamp"].replace(tzinfo=UTC).timestamp() * 1000),
        }
        for r in rows
    ]


def payload(value: str) -> dict[str, Any]:
    """The Debezium envelope payload of a message value (with or without schemas)."""
    doc = json.loads(value)
    return doc["payload"] if "schema" in doc and "payload" in doc else doc


def contains_change(messages: list[dict[str, Any]], change: dict[str, Any], prefix: str) -> bool:
    """Whether the Debezium messages include the effect of one generator change."""
    wanted_op = {
        "order_created": "c",
        "amount_corrected": "u",
        "order_cancelled": "u",
        "order_deleted": "d",
    }[change["kind"]]
    order_topic, item_topic = f"{prefix}.inventory.orders", f"{prefix}.inventory.order_items"
    seen_order = False
    item_ids = {item[0] for item in change["items"]}
    for m in messages:
        if m["value"] is None:
            continue
        p = payload(m["value"])
        row = p["after"] or p["before"]
        if m["topic"] == order_topic and p["op"] == wanted_op and row["id"] == change["order_id"]:
            if change["kind"] == "order_cancelled" and p["after"]["status"] != "cancelled":
                continue
            seen_order = True
        if m["topic"] == item_topic and p["op"] == "c" and row["id"] in item_ids:
            item_ids.discard(row["id"])
    return seen_order and not item_ids


def _decimal(value: Any) -> Decimal:
    """A DECIMAL(10,2) as the connector's default ``precise`` mode writes it (or a string)."""
    if isinstance(value, str) and not value.replace(".", "").replace("-", "").isdigit():
        return Decimal(int.from_bytes(base64.b64decode(value), "big", signed=True)).scaleb(-2)
    return Decimal(str(value)).quantize(Decimal("0.01"))


def replay(messages: list[dict[str, Any]], prefix: str) -> dict[str, dict[int, tuple[Any, ...]]]:
    """The latest row of every order and order line in the log (by LSN; deletes remove)."""
    state: dict[str, dict[int, tuple[int, tuple[Any, ...] | None]]] = {
        "orders": {},
        "order_items": {},
    }
    for m in messages:
        if m["value"] is None:
            continue
        table = m["topic"].removeprefix(f"{prefix}.inventory.")
        p = payload(m["value"])
        row = p["after"] or p["before"]
        lsn = int(p["source"]["lsn"])
        current = state[table].get(row["id"])
        if current is not None and current[0] > lsn:
            continue
        if p["op"] == "d":
            state[table][row["id"]] = (lsn, None)
        elif table == "orders":
            state[table][row["id"]] = (
                lsn,
                (row["customer_id"], row["status"], _decimal(row["total_amount"])),
            )
        else:
            state[table][row["id"]] = (
                lsn,
                (row["order_id"], row["product_id"], row["quantity"], _decimal(row["unit_price"])),
            )
    return {t: {i: v for i, (_, v) in rows.items() if v is not None} for t, rows in state.items()}


def database_state(stack: Stack) -> dict[str, dict[int, tuple[Any, ...]]]:
    """The current rows of orders and order_items, in the shape of :func:`replay`."""
    orders = {
        int(i): (int(c), st, Decimal(a))
        for i, c, st, a in stack.psql(
            "SELECT id, customer_id, status, total_amount FROM inventory.orders"
        )
    }
    items = {
        int(i): (int(o), int(p), int(q), Decimal(u))
        for i, o, p, q, u in stack.psql(
            "SELECT id, order_id, product_id, quantity, unit_price FROM inventory.order_items"
        )
    }
    return {"orders": orders, "order_items": items}


def duplicate_deliveries(messages: list[dict[str, Any]]) -> int:
    """Messages delivered more than once (same topic, key, LSN and operation)."""
    seen: set[tuple[Any, ...]] = set()
    dups = 0
    for m in messages:
        if m["value"] is None:
            continue
        p = payload(m["value"])
        ident = (m["topic"], m["key"], p["source"]["lsn"], p["op"])
        dups += ident in seen
        seen.add(ident)
    return dups


# ---------------------------------------------------------------- SQL oracle
@dataclass(frozen=True)
class SqlCustomer:
    order_count_30d: int
    total_spend_30d: Decimal
    last_order_ts: datetime | None


@dataclass(frozen=True)
class SqlProduct:
    units_sold_7d: int
    revenue_7d: Decimal
    unique_customers_7d: int


def _window(at: datetime, days: int) -> tuple[str, str]:
    first: date = at.date() - timedelta(days=days - 1)
    end: date = at.date() + timedelta(days=1)
    return first.isoformat(), end.isoformat()


def sql_customer_truth(stack: Stack, at: datetime) -> dict[int, SqlCustomer]:
    """Customer features at ``at`` from the database's current rows (no CDC involved)."""
    start, end = _window(at, 30)
    rows = stack.psql(
        "SELECT customer_id, count(*), sum(total_amount), "
        "to_char(max(order_date), 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM inventory.orders "
        f"WHERE status <> 'cancelled' AND order_date >= '{start}' AND order_date < '{end}' "
        "GROUP BY customer_id"
    )
    return {
        int(c): SqlCustomer(int(n), Decimal(s), datetime.fromisoformat(ts).replace(tzinfo=UTC))
        for c, n, s, ts in rows
    }


def sql_product_truth(stack: Stack, at: datetime) -> dict[int, SqlProduct]:
    """Product features at ``at`` from the database's current rows (no CDC involved)."""
    start, end = _window(at, 7)
    rows = stack.psql(
        "SELECT i.product_id, sum(i.quantity), sum(i.quantity * i.unit_price), "
        "count(DISTINCT o.customer_id) FROM inventory.order_items i "
        "JOIN inventory.orders o ON o.id = i.order_id "
        f"WHERE o.status <> 'cancelled' AND o.order_date >= '{start}' AND o.order_date < '{end}' "
        "GROUP BY i.product_id"
    )
    return {int(p): SqlProduct(int(u), Decimal(r), int(c)) for p, u, r, c in rows}
