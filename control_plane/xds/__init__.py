"""Envoy's configuration: the bootstrap and what the control plane serves over ADS."""
