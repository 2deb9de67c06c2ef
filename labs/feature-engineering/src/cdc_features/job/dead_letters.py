"""Dead letters: malformed CDC messages kept with their reason, and a running count.

Each micro-batch of the dead-letter query writes its malformed messages as JSON lines
``{"raw", "reason", "topic", "key", "batch_id"}`` into ``<dir>/batch=<batch_id>/``
(overwritten when a batch is replayed, so a retry never duplicates) and its counts per
reason code into
``<dir>/_counts/<batch_id>.json``. Tombstones (reason ``tombstone``) are counted, not stored:
they are the normal follow-up of a delete, not an error.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

TOMBSTONE = "tombstone"


def reason_code(reason: str) -> str:
    """The stable code of a reason (``unknown_op:x`` → ``unknown_op``)."""
    return reason.split(":", 1)[0]


class DeadLetterCounter:
    """Running counts of dead letters per reason code, per batch (replays count once)."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._by_batch: dict[int, Counter[str]] = {}
        self.directory = directory
        if directory is not None:
            for path in sorted((directory / "_counts").glob("*.json")):
                self._by_batch[int(path.stem)] = Counter(json.loads(path.read_text()))

    def record(self, batch_id: int, counts: dict[str, int]) -> None:
        """Set the counts of one batch (a replayed batch replaces its earlier counts)."""
        with self._lock:
            self._by_batch[batch_id] = Counter(counts)

    def by_reason(self) -> dict[str, int]:
        """Total per reason code over all batches so far."""
        with self._lock:
            total: Counter[str] = Counter()
            for counts in self._by_batch.values():
                total.update(counts)
            return dict(sorted(total.items()))

    @property
    def errors(self) -> int:
        """Malformed messages (every reason but ``tombstone``)."""
        return sum(n for code, n in self.by_reason().items() if code != TOMBSTONE)

    @property
    def tombstones(self) -> int:
        """Tombstones skipped."""
        return self.by_reason().get(TOMBSTONE, 0)


def make_dead_letter_writer(
    directory: Path, counter: DeadLetterCounter
) -> Callable[[DataFrame, int], None]:
    """A foreachBatch function that stores and counts the dead letters of a micro-batch."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "_counts").mkdir(exist_ok=True)

    def write_dead_letters(batch_df: DataFrame, batch_id: int) -> None:
        letters = batch_df.select("raw", "reason", "topic", "key").withColumn(
            "batch_id", F.lit(batch_id).cast("long")
        )
        letters.persist()
        try:
            code = F.substring_index("reason", ":", 1)
            counts = {
                row["code"]: int(row["n"])
                for row in letters.groupBy(code.alias("code"))
                .agg(F.count("*").alias("n"))
                .collect()
            }
            errors = counts.get(TOMBSTONE, 0) != sum(counts.values())
            if errors:
                (
                    letters.filter(F.col("reason") != TOMBSTONE)
                    .coalesce(1)
                    .write.mode("overwrite")
                    .option("ignoreNullFields", "false")
                    .json(str(directory / f"batch={batch_id}"))
                )
            (directory / "_counts" / f"{batch_id}.json").write_text(json.dumps(counts))
            counter.record(batch_id, counts)
        finally:
            letters.unpersist()

    return write_dead_letters


def read_dead_letters(directory: Path) -> list[dict[str, object]]:
    """Every stored dead letter, ordered by batch and then as written."""
    out: list[dict[str, object]] = []
    batches = sorted(directory.glob("batch=*"), key=lambda p: int(p.name.split("=")[1]))
    for batch in batches:
        for part in sorted(batch.glob("part-*.json")):
            out += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    return out
