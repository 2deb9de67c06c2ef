"""The playground's Spark fixtures: a committed fixture drifts → this fails.

``npm run playground:fixtures`` regenerates them (``python -m cdc_features.lab.playground
--write``); the site's unit tests replay them through the TypeScript engine.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import SparkSession

from cdc_features.lab.playground import (
    FIXTURE_DIR,
    all_logs,
    engine_events,
    is_order_event,
    render,
    tumbling_window_log,
    typo_date_log,
)


def test_every_log_has_its_committed_fixture_and_no_other() -> None:
    names = {log.name for log in all_logs()}
    assert names == {p.stem for p in FIXTURE_DIR.glob("*.json")}
    generated = [log for log in all_logs() if log.name.startswith("generated")]
    assert len(generated) == 2
    for log in generated:
        assert len([r for r in log.records if is_order_event(r)]) >= 1_000


def test_the_tumbling_window_fixture_is_what_spark_does_now(
    spark: SparkSession, tmp_path: Path
) -> None:
    log = tumbling_window_log()
    committed = (FIXTURE_DIR / f"{log.name}.json").read_text(encoding="utf-8")
    assert render(spark, log) == committed, "run `npm run playground:fixtures` and commit"
    fixture = json.loads(committed)
    # The story's point, as Spark computed it: at T = 2026-03-10 the naive query's newest
    # window of customer 1001 holds 1 order, the tiles read 4 in the last 30 days.
    last = fixture["batches"][-1]
    assert [r for r in last["features"][0] if r[0] == 1001] == [
        [1001, 4, "160.00", 1773050400000000, 1]
    ]
    naive = [row for batch in fixture["batches"] for row in batch["naive"] if row[0] == 1001]
    assert naive[-1] == [1001, "2026-03-08", "2026-04-07", 1]


def test_the_engine_log_is_the_parsers_typed_events_in_arrival_order(
    spark: SparkSession,
) -> None:
    records = [r for r in typo_date_log().records if is_order_event(r)]
    events = engine_events(spark, records)
    assert [(e["op"], e["order"]) for e in events] == [
        ("c", 51),
        ("c", 52),
        ("c", 53),
        ("c", 54),
        ("c", 55),
        ("u", 51),
        ("u", 52),
    ]
    typo = events[2]
    assert typo["after"] == {
        "customer": 5001,
        "date": 4076733600000000,  # 2099-03-09T10:00:00Z in µs: the typo, not guarded away
        "status": "pending",
        "amount": "60.00",
    }
    assert typo["commit"] == 1773050460000000  # committed 2026-03-09T10:01:00Z
    assert typo["before"] is None
    correction = events[5]
    assert correction["before"]["amount"] == "40.00" and correction["after"]["amount"] == "45.00"
