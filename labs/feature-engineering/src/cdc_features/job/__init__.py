"""The streaming job: configuration and CLI, sources, the three queries, dead letters and
the Spark session. ``python -m cdc_features.job --help`` runs it."""
