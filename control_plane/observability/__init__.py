"""Metrics, traces, logs and the access-log receiver."""
