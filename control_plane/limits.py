"""Request limits, shared by Envoy's config and the processor so both say the same thing."""

from __future__ import annotations

# The longest `router.timeout_ms` a policy may set, and how long Envoy waits for the processor's
# answer (ext_proc message_timeout): a second more, so the processor always falls back to the
# default model on its own before Envoy gives up on it.
MAX_ROUTER_TIMEOUT_MS = 10_000
PROCESSOR_MESSAGE_TIMEOUT_S = MAX_ROUTER_TIMEOUT_MS // 1000 + 1

MAX_BODY_BYTES = 8 * 1024 * 1024  # largest chat request body Switchyard buffers and routes
TOO_LARGE_MESSAGE = (
    f"request body is larger than Switchyard's limit of {MAX_BODY_BYTES // (1024 * 1024)} MiB "
    f"({MAX_BODY_BYTES} bytes)"
)
