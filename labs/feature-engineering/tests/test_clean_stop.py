"""``Pipeline.stop()`` from Python: a process that stops the job and exits right away leaves
no Py4J listener traceback on stderr (Spark's listener bus is drained before it returns)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import io, sys
    from pathlib import Path
    from cdc_features.job.config import PipelineConfig
    from cdc_features.job.pipeline import start_pipeline
    from cdc_features.job.spark import get_spark
    from cdc_features.lab.generator import generate_log
    from cdc_features.testing import feed

    work = Path(sys.argv[1])
    (work / "in").mkdir(parents=True)
    spark = get_spark("clean-stop")
    config = PipelineConfig(
        checkpoint_dir=work / "ckpt", input_dir=work / "in", sinks=("noop",), trigger=None,
        progress=False, out=io.StringIO(),
    )
    pipeline = start_pipeline(spark, config)
    log = generate_log(3, 120)
    for i in range(3):  # a few micro-batches, each with progress events for the listener
        feed(log[i * 40 : (i + 1) * 40], work / "in", i)
        pipeline.await_idle()
    pipeline.stop()
    print("stopped", flush=True)
    """
)


def test_stop_then_exit_leaves_no_listener_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "stopped"
    problems = [
        line
        for line in done.stderr.splitlines()
        if "Traceback" in line
        or "Py4J" in line
        or "threw an exception" in line
        or " ERROR " in line
    ]
    assert not problems, "\n".join(problems[:10])
