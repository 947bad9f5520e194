"""Request bodies as JSON: reading one object with clear 400s, and writing the body a provider
gets (only `model` changes). Pure functions over bytes; nothing here knows about Envoy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from control_plane.apis.request_error import RequestError


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object, with a clear 400 otherwise."""
    try:
        text = raw.decode("utf-8")  # explicit: json.loads(bytes) would also accept UTF-16/32
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not valid UTF-8", "invalid_body") from None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_body")
    return body


def with_model(body: Mapping[str, Any], upstream_model: str) -> bytes:
    """The body to send upstream: identical but for `model` (the direct path, and each attempt
    of the guarded path)."""
    return json.dumps({**body, "model": upstream_model}, ensure_ascii=False,
                      separators=(",", ":")).encode()


_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at


def replace_model(raw: bytes, upstream_model: str) -> bytes:
    """`raw` byte for byte, but for the value of its top-level `model` (the last one, as JSON
    parsers read it): what a same-API provider receives, so nothing the app sent is re-encoded.
    `raw` must be a JSON object with a `model` (the door's parser checked it)."""
    text = raw.decode("utf-8")
    at, span = _skip(text, 0) + 1, None  # past the opening brace
    while True:
        at = _skip(text, at)
        if text[at] == "}":
            break
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        at = _skip(text, _skip(text, at) + 1)  # past the colon
        _, end = _DECODER.raw_decode(text, at)
        if key == "model":
            span = (at, end)
        at = _skip(text, end)
        if text[at] == ",":
            at += 1
    if span is None:
        raise ValueError("the body has no top-level `model`")
    value = json.dumps(upstream_model, ensure_ascii=False)
    return (text[:span[0]] + value + text[span[1]:]).encode()
