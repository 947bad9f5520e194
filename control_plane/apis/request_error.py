"""The one exception for a request Switchyard answers itself: a status, a message, an error code
and the parameter at fault. Each door renders it in its own error shape (apis/table.py)."""

from __future__ import annotations

from control_plane.limits import TOO_LARGE_MESSAGE


class RequestError(Exception):
    """A request Switchyard answers itself, with an error in its door's shape."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


def body_too_large() -> RequestError:
    return RequestError(413, TOO_LARGE_MESSAGE, "request_too_large")
