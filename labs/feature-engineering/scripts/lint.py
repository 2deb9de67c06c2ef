"""Python quality gates of the lab: ruff (lint), ruff (format check) and mypy.

Each gate is one test case of a JUnit report (``--junitxml PATH``), so the repository's test
runner counts them like any other suite; a failing gate carries the tool's output. Exit code
0 when every gate passes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

LAB = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GATES = {
    "ruff check (lint)": [str(BIN / "ruff"), "check", "--no-cache", "."],
    "ruff format --check": [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
    "mypy (src, tests)": [str(BIN / "mypy")],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--junitxml", type=Path, help="write a JUnit XML report here")
    args = parser.parse_args(argv)
    cases = []
    failed = 0
    for name, command in GATES.items():
        started = time.monotonic()
        run = subprocess.run(command, cwd=LAB, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        output = (run.stdout + run.stderr).strip()
        status = "passed" if run.returncode == 0 else "FAILED"
        print(f"{name}: {status} in {seconds:.1f}s")
        if run.returncode != 0:
            failed += 1
            print(output)
        failure = (
            f'<failure message="{escape(name)} failed">{escape(output)}</failure>'
            if run.returncode != 0
            else ""
        )
        cases.append(
            f'<testcase classname="lint" name="{escape(name)}" time="{seconds:.3f}">'
            f"{failure}</testcase>"
        )
    if args.junitxml is not None:
        args.junitxml.parent.mkdir(parents=True, exist_ok=True)
        args.junitxml.write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuites><testsuite name="lab-lint" tests="{len(cases)}" failures="{failed}">'
            + "".join(cases)
            + "</testsuite></testsuites>\n",
            encoding="utf-8",
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
