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


class RequestError(Exception):
    """A request Switchyard answers itself with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> bytes:
        return error_body(self.status, self.message, self.code, self.param)
