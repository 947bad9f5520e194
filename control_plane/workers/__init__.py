"""Processor workers: N processes answering Envoy's ext_proc streams, fed snapshots by the
control plane after Envoy ACKs them, sharing decisions and rate limits through it."""
