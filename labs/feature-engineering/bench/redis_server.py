"""A private redis-server for the benchmarks: loopback, a free port, no persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


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
