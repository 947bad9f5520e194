"""The wire APIs, one row each: how a provider of that API is asked (path, key header), how its
errors look, and how to go to and from the OpenAI chat form the guarded path works in.

A provider names its row with `api:` in a policy (`openai` or `anthropic`); a front door
(doors.py) names the row it speaks. The Responses API is a door's API only: a provider serves it
besides chat completions (`responses: native`), so no provider is ever asked in it by translation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from control_plane.apis import anthropic_errors, anthropic_translate, model_lists, responses_translate
from control_plane.apis.anthropic_streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from control_plane.apis.openai_errors import error_body as openai_error_body
from control_plane.apis.openai_errors import error_event as openai_error_event
from control_plane.apis.openai_errors import responses_error_event
from control_plane.apis.provider_errors import as_text, read_error
from control_plane.apis.responses_streams import OpenAIToResponsesStream
from control_plane.apis.stream_guard import AnthropicGuard, ResponsesGuard, SseGuard
from control_plane.apis.translation import CheckedStream, Dropped, checked_answer, checked_request
from control_plane.apis.usage import AnthropicUsage, OpenAIUsage, ResponsesUsage, UsageReader, asking_openai_usage
from control_plane.headers import ANTHROPIC_VERSION_HEADER

Body = dict[str, Any]
OPENAI, ANTHROPIC, RESPONSES = "openai", "anthropic", "responses"
PROVIDER_APIS = (OPENAI, ANTHROPIC)  # what a provider's `api:` may name


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
    stream_guard: type[SseGuard]  # checks a stream of this API relayed as it is: its clean end
    error_body: Callable[[int, str, str, str | None], bytes]
    error_event: Callable[[int, str, str], bytes]  # an error inside an SSE stream
    # To and from the OpenAI chat form (identity for OpenAI itself). A request's translation adds
    # the names of the hints it drops to a Dropped set.
    # A door's app request -> OpenAI form, and the OpenAI-form answer back (given the app's request):
    request_to_openai: Callable[[Body, Dropped], Body]
    response_from_openai: Callable[[bytes, Body], bytes]
    error_from_openai: Callable[[int, bytes], bytes]
    stream_from_openai: Callable[[Body], StreamTranslator]
    # An OpenAI-form request -> a provider of this API, and its answer back into the OpenAI form:
    request_from_openai: Callable[[Body, Dropped], Body]
    response_to_openai: Callable[[bytes], bytes]
    error_to_openai: Callable[[int, bytes], bytes]
    stream_to_openai: Callable[[Body], StreamTranslator]  # given the OpenAI-form request
    # The headers of the app's own API version and features (anthropic-version, anthropic-beta):
    # they go on only with the app's own request, never with a body translated from it.
    own_headers_prefix: str | None = None
    version_header: str | None = None  # the header its SDKs always send (tells who asks GET /v1/models)
    counts_tokens: bool = False  # its providers answer count_tokens
    # GET /v1/models and /v1/models/{id} in this API's shape (model_lists.py), when it has its own.
    model_list: Callable[[Sequence[str]], bytes] | None = None
    model_entry: Callable[[str], bytes] | None = None
    # Reads the token usage of an answer in this API (streamed or not; or its usage objects
    # alone, as Envoy hands them over on the direct path): apis/usage.py.
    usage_reader: type[UsageReader] = OpenAIUsage
    # The request asking for usage, for an API whose answers carry it only when asked (OpenAI
    # chat streams); None when this one already does.
    ask_usage: Callable[[Body], Body | None] = lambda request: None


def _same(value: Any, *context: Any) -> Any:
    return value


def _no_provider(*_: Any) -> Any:
    raise TypeError("no provider is asked in the Responses API by translation (`responses: native` "
                    "providers get the app's own request)")


def _openai_shaped(status: int, body: bytes) -> bytes:
    """A provider's error body as is when it holds an error object; else wrapped in one."""
    if read_error(body) is not None:
        return body
    return openai_error_body(status, as_text(body), "provider_error")


def _include_usage(request: Body) -> bool:
    return bool((request.get("stream_options") or {}).get("include_usage"))


APIS: dict[str, Api] = {
    OPENAI: Api(
        name=OPENAI, chat_path="chat/completions", key_header="authorization", key_prefix="Bearer ",
        stream_guard=SseGuard, model_list=model_lists.openai_models, model_entry=model_lists.openai_model,
        ask_usage=asking_openai_usage,
        error_body=openai_error_body, error_event=openai_error_event,
        request_to_openai=_same, response_from_openai=_same, error_from_openai=_openai_shaped,
        stream_from_openai=lambda request: Unchanged(),
        request_from_openai=_same, response_to_openai=_same, error_to_openai=_openai_shaped,
        stream_to_openai=lambda request: Unchanged(),
    ),
    ANTHROPIC: Api(
        name=ANTHROPIC, chat_path="messages", key_header="x-api-key", key_prefix="",
        stream_guard=AnthropicGuard, own_headers_prefix="anthropic-", version_header=ANTHROPIC_VERSION_HEADER,
        counts_tokens=True, model_list=model_lists.anthropic_models, model_entry=model_lists.anthropic_model,
        usage_reader=AnthropicUsage,
        error_body=anthropic_errors.error_body, error_event=anthropic_errors.error_event,
        request_to_openai=checked_request(anthropic_translate.request_to_openai),
        response_from_openai=checked_answer(lambda raw, request: anthropic_translate.response_from_openai(raw)),
        error_from_openai=anthropic_translate.error_from_openai,
        stream_from_openai=lambda request: CheckedStream(OpenAIToAnthropicStream()),
        request_from_openai=checked_request(anthropic_translate.request_from_openai),
        response_to_openai=checked_answer(anthropic_translate.response_to_openai),
        error_to_openai=anthropic_translate.error_to_openai,
        stream_to_openai=lambda request: CheckedStream(AnthropicToOpenAIStream(_include_usage(request))),
    ),
    RESPONSES: Api(
        name=RESPONSES, chat_path="responses", key_header="authorization", key_prefix="Bearer ",
        stream_guard=ResponsesGuard, usage_reader=ResponsesUsage,
        error_body=openai_error_body, error_event=responses_error_event,
        request_to_openai=checked_request(responses_translate.request_to_openai),
        response_from_openai=checked_answer(responses_translate.response_from_openai),
        error_from_openai=_openai_shaped,  # the Responses API's errors are OpenAI-shaped
        stream_from_openai=lambda request: CheckedStream(OpenAIToResponsesStream(request)),
        request_from_openai=_no_provider, response_to_openai=_no_provider,
        error_to_openai=_openai_shaped, stream_to_openai=_no_provider,
    ),
}
