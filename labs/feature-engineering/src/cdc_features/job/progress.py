"""One console line per micro-batch and query, and the job's own counts of late rows."""

from __future__ import annotations

import threading
from typing import Any, TextIO

from pyspark.sql.streaming import StreamingQueryListener

from cdc_features.job.dead_letters import DeadLetterCounter


def _operators(progress: Any) -> list[Any]:
    if isinstance(progress, dict):
        return list(progress.get("stateOperators", []) or [])
    return list(getattr(progress, "stateOperators", []) or [])


def _field(op: Any, name: str) -> int:
    value = op.get(name) if isinstance(op, dict) else getattr(op, name, 0)
    return int(value or 0)


def dropped_by_watermark(progress: Any) -> int:
    """Rows of one progress report dropped as too late, over all stateful operators."""
    return sum(_field(op, "numRowsDroppedByWatermark") for op in _operators(progress))


def state_rows(progress: Any) -> int:
    """State rows held by the stateful operators after one batch."""
    return sum(_field(op, "numRowsTotal") for op in _operators(progress))


class ProgressPrinter(StreamingQueryListener):
    """One line per micro-batch: batch number, input rows, rows dropped as late, dead letters."""

    def __init__(
        self, names: set[str], counter: DeadLetterCounter, out: TextIO, echo: bool = True
    ) -> None:
        self.names = names
        self.counter = counter
        self.out = out
        self.echo = echo
        self.lock = threading.Lock()
        self.dropped: dict[str, int] = {}
        self.input_rows: dict[str, int] = {}
        self.batches: dict[str, int] = {}
        self.last_state_rows: dict[str, int] = {}

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        name = progress.name
        if name not in self.names:
            return
        dropped = dropped_by_watermark(progress)
        rows = int(progress.numInputRows)
        with self.lock:
            self.dropped[name] = self.dropped.get(name, 0) + dropped
            self.input_rows[name] = self.input_rows.get(name, 0) + rows
            self.batches[name] = self.batches.get(name, 0) + 1
            self.last_state_rows[name] = state_rows(progress)
        if self.echo and rows:
            print(
                f"[{name}] batch {progress.batchId}: {rows} events in, "
                f"{dropped} dropped as late (total {self.dropped[name]}), "
                f"dead letters {self.counter.errors}, tombstones {self.counter.tombstones}",
                file=self.out,
                flush=True,
            )

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception and self.echo:
            print(f"query {event.id} failed: {event.exception}", file=self.out, flush=True)
