"""Errors in the OpenAI shape (`{"error": {message, type, param, code}}`), so that SDKs raise the
right exception class and show the message."""

from __future__ import annotations

import json

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str, param: str | None = None) -> bytes:
    error = {"message": message, "type": _TYPES.get(status, "api_error"), "param": param, "code": code}
    return json.dumps({"error": error}).encode()


def error_event(status: int, message: str, code: str) -> bytes:
    """An SSE `error` event in the OpenAI shape: the openai SDKs raise APIError on it."""
    return b"event: error\ndata: " + error_body(status, message, code) + b"\n\n"


def responses_error_event(status: int, message: str, code: str) -> bytes:
    """An error inside a Responses API stream: an `error` event (with the error object too, so
    the openai SDKs raise APIError on it)."""
    error = {"message": message, "type": _TYPES.get(status, "api_error"), "param": None, "code": code}
    data = {"type": "error", "code": code, "message": message, "param": None, "error": error}
    return b"event: error\ndata: " + json.dumps(data).encode() + b"\n\n"
