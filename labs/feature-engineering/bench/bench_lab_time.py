"""What the lesson's exercise costs a student in waiting, measured on this machine.

``bash scripts/bench.sh lab_time`` times the two commands a student waits for:

1. **setup** — what the first ``npm run lab:check`` does before anything else: a fresh virtual
   environment and ``pip install -e ".[test,feast,lint]"`` of this lab, **without** pip's
   cache (every package downloaded from PyPI, as on a student's laptop);
2. **check** — one ``scripts/check.sh --solution`` run (a new JVM, the exercise log as a
   stream, the feature reads), as a student runs it after each attempt.

It writes ``bench/results/lab_time.md``; the lesson's time estimate (``scripts/lesson-time.ts``,
checked by ``tests/lesson/estimated-time.test.ts``) reads its table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

LAB = Path(__file__).resolve().parents[1]
OUT = LAB / "bench" / "results" / "lab_time.md"


def _timed(cmd: list[str], **kwargs: object) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]
    return time.monotonic() - start


def measure_setup(python: str) -> float:
    """A fresh venv in a temporary folder, the lab installed into it without pip's cache."""
    with tempfile.TemporaryDirectory(prefix="lab-time-") as tmp:
        venv = Path(tmp) / "venv"
        quiet = {"stdout": subprocess.DEVNULL}
        start = time.monotonic()
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--no-cache-dir", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, **quiet)  # type: ignore[call-overload]
        subprocess.run([*pip, "-e", f"{LAB}[test,feast,lint]"], check=True, **quiet)  # type: ignore[call-overload]
        return time.monotonic() - start


def measure_check() -> float:
    env = {**os.environ, "SPARK_LOG_LEVEL": "ERROR"}
    return _timed(
        ["bash", str(LAB / "scripts" / "check.sh"), "--solution"],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--python", default=shutil.which("python3") or sys.executable)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    setup = measure_setup(args.python)
    check = measure_check()
    load_after = os.getloadavg()[0]
    text = "\n".join(
        [
            "# Lab time: what the exercise costs a student in waiting",
            "",
            "- Command: `bash scripts/bench.sh lab_time` (`bench/bench_lab_time.py`)",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the machine has "
            f"{os.cpu_count()} cores shared with other work (1-minute load average "
            f"{load_before:.2f} at the start, {load_after:.2f} at the end).",
            "- Read by the lesson's time estimate (`scripts/lesson-time.ts`).",
            "",
            "| step | seconds |",
            "|---|---|",
            f'| setup: fresh venv, `pip install -e ".[test,feast,lint]"` without pip\'s cache '
            f"| {setup:.1f} |",
            f"| check: `scripts/check.sh --solution` | {check:.1f} |",
            "",
        ]
    )
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
