"""The wire APIs, one row each: how a provider of that API is asked (path, key header), how its
errors look, and how to go to and from the OpenAI chat form the guarded path works in.

A provider names its row with `api:` in a policy; a front door (doors.py) names the row it
speaks. Adding an API (say, OpenAI's Responses) is one more row here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from control_plane.apis import anthropic_errors, anthropic_translate
from control_plane.apis.anthropic_streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from control_plane.apis.openai_errors import error_body as openai_error_body
from control_plane.apis.openai_errors import error_event as openai_error_event

Body = dict[str, Any]
OPENAI, ANTHROPIC = "openai", "anthropic"


class StreamTranslator(Protocol):
    def feed(self, chunk: bytes) -> bytes: ...


class Unchanged:
    """The stream of an API that needs no translation."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk


@dataclass(frozen=True)
class Api:
    name: str
    chat_path: str  # a chat request's path under a provider's base_url
    key_header: str  # where a provider of this API takes its key ...
    key_prefix: str  # ... and how
    error_body: Callable[[int, str, str, str | None], bytes]
    error_event: Callable[[int, str, str], bytes]  # an error inside an SSE stream
    # To and from the OpenAI chat form (identity for OpenAI itself).
    request_to_openai: Callable[[Body], Body]
    request_from_openai: Callable[[Body], Body]
    response_to_openai: Callable[[bytes], bytes]
    response_from_openai: Callable[[bytes], bytes]
    error_to_openai: Callable[[int, bytes], bytes]
    error_from_openai: Callable[[int, bytes], bytes]
    stream_to_openai: Callable[[Body], StreamTranslator]  # given the OpenAI-form request
    stream_from_openai: Callable[[], StreamTranslator]


def _same(value: Any) -> Any:
    return value


def _openai_shaped(status: int, body: bytes) -> bytes:
    """A provider's error body as is when it is already in the OpenAI shape; else wrapped."""
    try:
        if isinstance(json.loads(body).get("error"), dict):
            return body
    except (ValueError, AttributeError):
        pass
    text = body.decode("utf-8", "replace")[:500]
    return openai_error_body(status, f"provider error: {text}", "provider_error")


def _include_usage(request: Body) -> bool:
    return bool((request.get("stream_options") or {}).get("include_usage"))


APIS: dict[str, Api] = {
    OPENAI: Api(
        name=OPENAI, chat_path="chat/completions", key_header="authorization", key_prefix="Bearer ",
        error_body=openai_error_body, error_event=openai_error_event,
        request_to_openai=_same, request_from_openai=_same,
        response_to_openai=_same, response_from_openai=_same,
        error_to_openai=_openai_shaped, error_from_openai=_openai_shaped,
        stream_to_openai=lambda request: Unchanged(), stream_from_openai=Unchanged,
    ),
    ANTHROPIC: Api(
        name=ANTHROPIC, chat_path="messages", key_header="x-api-key", key_prefix="",
        error_body=anthropic_errors.error_body, error_event=anthropic_errors.error_event,
        request_to_openai=anthropic_translate.request_to_openai,
        request_from_openai=anthropic_translate.request_from_openai,
        response_to_openai=anthropic_translate.response_to_openai,
        response_from_openai=anthropic_translate.response_from_openai,
        error_to_openai=anthropic_translate.error_to_openai,
        error_from_openai=anthropic_translate.error_from_openai,
        stream_to_openai=lambda request: AnthropicToOpenAIStream(_include_usage(request)),
        stream_from_openai=OpenAIToAnthropicStream,
    ),
}
