# The lab's Spark job: Python 3.11 + Java 17 + the pinned lab package.
# Build context: labs/feature-engineering (see stack/docker-compose.yml).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /lab
COPY pyproject.toml ./
COPY src ./src
RUN pip install --no-cache-dir -e .
# Spark's Kafka source package is resolved by Ivy on first start (cached in this volume).
ENV SPARK_LOG_LEVEL=WARN \
    FEATURE_REDIS_URL=redis://redis:6379/0
VOLUME ["/data", "/root/.ivy2.5.2"]
CMD ["python", "-m", "cdc_features.job", "--source", "kafka", \
     "--bootstrap-servers", "kafka:9092", "--topic-prefix", "dbserver1", \
     "--checkpoint-dir", "/data/checkpoints", "--sink", "redis", \
     "--redis-url", "redis://redis:6379/0", "--trigger", "2 seconds"]
