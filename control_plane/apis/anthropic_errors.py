"""Errors in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`), so the
Anthropic SDKs raise the right exception class and Claude Code shows the message."""

from __future__ import annotations

import json

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def error_body(status: int, message: str, code: str = "", param: str | None = None) -> bytes:
    """Anthropic's error shape has no code or param: the message says which field is wrong."""
    return json.dumps({"type": "error", "error": {"type": error_type(status), "message": message}}).encode()


def error_event(status: int, message: str, code: str = "") -> bytes:
    """An SSE `error` event: the Anthropic SDKs raise an APIStatusError on it."""
    return b"event: error\ndata: " + error_body(status, message, code) + b"\n\n"
