"""Request limits, shared by Envoy's config and the processor so both say the same thing."""

from __future__ import annotations

MAX_BODY_BYTES = 8 * 1024 * 1024  # largest chat request body Switchyard buffers and routes
TOO_LARGE_MESSAGE = (
    f"request body is larger than Switchyard's limit of {MAX_BODY_BYTES // (1024 * 1024)} MiB "
    f"({MAX_BODY_BYTES} bytes)"
)
