"""Front doors: the request paths Switchyard routes, one row each of (request parser, the API
whose error shape and translations apply). The processor and the guarded path both dispatch
through this table; a new door is one more row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from control_plane.apis.anthropic_messages import parse_count_tokens_request, parse_messages_request
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.openai_chat import parse_chat_request
from control_plane.apis.openai_embeddings import parse_embeddings_request
from control_plane.apis.responses import parse_responses_request
from control_plane.apis.table import ANTHROPIC, APIS, OPENAI, RESPONSES, Api

MODELS_PATH = "/v1/models"


# How a door's model is chosen (the processor has one method per kind):
ROUTE = "route"  # chat: the router alias is routed, a model name is that model (through aliases)
COUNT = "count"  # token counting: the model's own provider answers; never routed or translated
NAMED = "named"  # embeddings: a configured model, else unchanged to the default model's provider


@dataclass(frozen=True)
class Door:
    path: str
    api: Api  # the API apps speak here: request shape, error shape, translations
    parse: Callable[[bytes, Sequence[str]], ChatRequest]  # (body, envelope tags)
    decides: str = ROUTE
    # Answers may be continued by id (`previous_response_id`): Switchyard keeps who answered, and
    # for a translated answer the conversation (routing/response_store.py).
    keeps_responses: bool = False


DOORS: dict[str, Door] = {door.path: door for door in (
    Door("/v1/chat/completions", APIS[OPENAI], parse_chat_request),
    Door("/v1/messages", APIS[ANTHROPIC], parse_messages_request),
    Door("/v1/messages/count_tokens", APIS[ANTHROPIC], parse_count_tokens_request, COUNT),
    Door("/v1/responses", APIS[RESPONSES], parse_responses_request, keeps_responses=True),
    Door("/v1/embeddings", APIS[OPENAI], parse_embeddings_request, NAMED),
)}


def door_for(path: str) -> Door | None:
    """The door a request path (query string included or not) comes in by."""
    return DOORS.get(path.split("?", 1)[0])


def error_api(path: str) -> Api:
    """Whose error shape a request on `path` gets: its door's; OpenAI's elsewhere."""
    door = door_for(path)
    return door.api if door else APIS[OPENAI]


def models_api(headers: Mapping[str, str]) -> Api:
    """Whose shape `GET /v1/models[/{id}]` answers in: that of an API with a model list whose SDKs
    always send a version header, when the request carries it (anthropic-version); else OpenAI's."""
    return next((api for api in APIS.values() if api.model_list and api.version_header
                 and api.version_header in headers), APIS[OPENAI])


def models_body(names: Sequence[str], headers: Mapping[str, str]) -> bytes:
    """`GET /v1/models`: the names an app may send, in the asking SDK's shape."""
    list_of = models_api(headers).model_list
    assert list_of is not None
    return list_of(names)


def model_body(name: str, headers: Mapping[str, str]) -> bytes:
    """`GET /v1/models/{name}`, in the asking SDK's shape."""
    entry = models_api(headers).model_entry
    assert entry is not None
    return entry(name)
