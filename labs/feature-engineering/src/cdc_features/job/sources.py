"""Where the job reads the raw change events from: a watched folder or Kafka."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdc_features.job.config import PipelineConfig

RAW_FILE_SCHEMA = "topic string, key string, value string, _corrupt_record string"


def read_raw_events(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    """The raw change events as a stream of ``(topic, key, value)`` strings.

    Files: JSON lines ``{"topic", "key", "value"}`` appearing in a watched folder (a line
    that is not JSON becomes a message whose value is the line, so it is dead-lettered as
    ``not_json``). Kafka: key and value cast to text; a new query starts at the earliest
    offsets (Spark's default, ``latest``, would skip the Debezium snapshot), a restarted
    one resumes from its checkpoint.
    """
    if config.source == "files":
        reader = spark.readStream.schema(RAW_FILE_SCHEMA).option(
            "columnNameOfCorruptRecord", "_corrupt_record"
        )
        if config.max_files_per_trigger:
            reader = reader.option("maxFilesPerTrigger", config.max_files_per_trigger)
        raw = reader.json(str(config.input_dir))
        return raw.select(
            "topic",
            "key",
            F.when(F.col("_corrupt_record").isNotNull(), F.col("_corrupt_record"))
            .otherwise(F.col("value"))
            .alias("value"),
        )
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.bootstrap_servers)
        .option("subscribe", ",".join(config.topics))
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", str(config.fail_on_data_loss).lower())
    )
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", config.max_offsets_per_trigger)
    return reader.load().select(
        F.col("topic"),
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
    )
