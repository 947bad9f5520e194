"""The ext_proc processor: one request's decision, and Envoy's wire format for it."""
