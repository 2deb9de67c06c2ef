"""The pure core: the feature spec, Debezium parsing, feature computation, read-time
definitions and the batch reference. No I/O here: the functions take and return
DataFrames or plain values, so tests call them on small static frames and streams alike.
"""
