"""Shared by the benchmarks: a private redis-server, and starting one query of the job."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from cdc_features import pipeline as P
from cdc_features.dead_letters import DeadLetterCounter

# One query of the job on its own: name → start(spark, config, sinks).
STARTERS: dict[str, Any] = {
    P.CUSTOMER_QUERY: lambda spark, config, sinks: P.start_customer_query(spark, config, sinks),
    P.PRODUCT_QUERY: lambda spark, config, sinks: P.start_product_query(spark, config, sinks),
    P.DEAD_LETTER_QUERY: lambda spark, config, sinks: P.start_dead_letter_query(
        spark, config, DeadLetterCounter(None)),
}


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on a free 127.0.0.1 port; return the process and its URL once it
    answers PING (the caller terminates the process)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install the Debian package 'redis-server'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(300):
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")
