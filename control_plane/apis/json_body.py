"""Request bodies as JSON: reading one object with clear 400s, and writing the body a provider
gets (only `model` changes). Pure functions over bytes; nothing here knows about Envoy."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from control_plane.apis.request_error import RequestError


# A `\uXXXX` escape of a UTF-16 surrogate that is not half of a pair: valid JSON text, but no
# Unicode character. The (?<!\\)(?:\\\\)* prefix counts backslashes, so an escaped backslash
# followed by "ud800" is plain text.
_LONE_SURROGATE = re.compile(
    r"(?<!\\)(?:\\\\)*(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: parsers disagree on which of two equal keys wins
    (Python keeps the last, others the first), so Switchyard and a provider could read two
    different requests from one body (an allow-list checked on one `model`, another one run)."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RequestError(400, f"request body repeats the key '{key}' in one object", "duplicate_key", key)
        seen.add(key)
    raise AssertionError("unreachable: a repeated key was counted")


def _no_constant(name: str) -> Any:
    raise RequestError(400, f"request body holds {name}, which JSON does not allow", "invalid_body")


def _finite(text: str) -> float:
    """A number too large for a double (1e999) would be written back as Infinity: not JSON."""
    value = float(text)
    if math.isinf(value):
        raise RequestError(400, f"request body holds the number {text[:40]}, too large to represent", "invalid_body")
    return value


# One decoder for every body: json.loads with hooks builds a new one (and its scanner) per call.
_STRICT = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant, parse_float=_finite)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object, read the one way every strict parser reads
    it, with a clear 400 otherwise: valid UTF-8 and Unicode (no lone surrogate escapes), no key
    twice in an object, no NaN or Infinity."""
    try:
        text = raw.decode("utf-8")  # explicit: json.loads(bytes) would also accept UTF-16/32
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"request body is not valid UTF-8 (byte {exc.start})", "invalid_body") from None
    if "\\u" in text and (lone := _LONE_SURROGATE.search(text)):
        escape = lone.group().lstrip("\\")
        raise RequestError(400, f"request body holds a lone UTF-16 surrogate escape (\\{escape}) at character "
                           f"{lone.end() - 6}: not a Unicode character", "invalid_body")
    try:
        body = _STRICT.decode(text)
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
