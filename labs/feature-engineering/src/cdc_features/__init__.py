"""Real-time ML features from Debezium CDC events (PySpark Structured Streaming)."""
