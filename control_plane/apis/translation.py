"""What every translation between wire APIs shares: the names of what it dropped (only hints
meant for another model or service; `x-switchyard-dropped`), the 400 for what it cannot carry,
and the one boundary where input of an unexpected shape becomes a 400 (an app's request) or a
malformed answer (a provider's), never an exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane.apis.request_error import RequestError
from control_plane.apis.sse import MalformedStream

Body = dict[str, Any]
Dropped = set[str]  # names of what a translation dropped, e.g. "cache_control", "tool:web_search"


def untranslatable(what: str, target: str, advice: str) -> RequestError:
    return RequestError(400, f"{what} cannot be translated to {target} ({advice})", "untranslatable")


def dropped_header(dropped: Dropped) -> str:
    """`x-switchyard-dropped`: sorted, comma-separated."""
    return ",".join(sorted(dropped))


# What a translator raises on input of an unexpected shape (a string where a list belongs, a
# null block): the one boundary below turns it into a 400 for the app, or a malformed answer.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def checked_request(translate: Callable[[Body, Dropped], Body]) -> Callable[[Body, Dropped], Body]:
    """A request translation that refuses a request it cannot read (`400 invalid_request`) rather
    than failing on it: the doors check only what routing needs, so a field the translation reads
    may still hold anything."""
    def run(body: Body, dropped: Dropped) -> Body:
        try:
            return translate(body, dropped)
        except SHAPE_ERRORS as exc:
            raise RequestError(400, "the request cannot be translated: a field it carries has an unexpected "
                               f"type or shape ({type(exc).__name__}: {str(exc)[:200]})", "invalid_request") from None
    return run


def checked_answer(translate: Callable[..., bytes]) -> Callable[..., bytes]:
    """An answer translation that reports a provider answer it cannot read as malformed (the guarded
    path then treats that attempt as failed), rather than failing on it."""
    def run(*args: Any) -> bytes:
        try:
            return translate(*args)
        except SHAPE_ERRORS as exc:
            raise MalformedStream(f"the provider's answer has an unexpected shape ({type(exc).__name__})") from None
    return run


class CheckedStream:
    """A stream translator whose shape errors are malformed events, like its JSON errors."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def feed(self, chunk: bytes) -> bytes:
        try:
            out: bytes = self.inner.feed(chunk)
        except SHAPE_ERRORS as exc:
            raise MalformedStream(f"the provider sent an event of an unexpected shape ({type(exc).__name__})") from None
        return out

    @property
    def completed(self) -> Any:
        """The final response, for translators that keep one (the Responses API's)."""
        return getattr(self.inner, "completed", None)
