"""CDC events → ML features with Spark Structured Streaming (the lab of module 5, lesson 7).

The sub-packages are layers; imports point down only:

* ``core``       — the feature spec, Debezium parsing, feature computation, read-time
  definitions and the batch reference (pure: no I/O);
* ``stores``     — the feature-store interface, the key layout written once, Redis, Feast
  and an in-memory store;
* ``job``        — configuration and CLI, sources, the three streaming queries, dead
  letters, the Spark session (``python -m cdc_features.job``);
* ``monitoring`` — listener, freshness and lag, drift, alerts, metrics;
* ``testing``    — the harness shared by the tests and the benchmarks;
* ``ml``         — the ML loop: labels from the same history, point-in-time and naive
  training sets, a model, online scoring from the store (ML.md);
* ``lab``        — the teaching tools: replay runner, console view, generator, stories,
  pitfalls, the exercise checker (nothing in ``job`` imports them).
"""

from pathlib import Path

#: the lab's folder (``labs/feature-engineering``): fixtures, feature_repo, lesson outputs
LAB_DIR = Path(__file__).resolve().parents[2]
