"""The PySpark worker daemon of the job (``spark.python.daemon.module``).

Spark starts ``python -m <daemon module>`` once per executor; the daemon forks the Python
workers. This module applies :func:`~cdc_features.job.workarounds.apply_worker_workarounds`
in the daemon, so every forked worker inherits them, then runs PySpark's own daemon.
"""

from __future__ import annotations

from cdc_features.job.workarounds import apply_worker_workarounds

if __name__ == "__main__":
    apply_worker_workarounds()
    from pyspark.daemon import manager

    manager()
