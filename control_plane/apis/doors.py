"""Front doors: the request paths Switchyard routes, one row each of (request parser, the API
whose error shape and translations apply). The processor and the guarded path both dispatch
through this table; a new door is one more row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from control_plane.apis.anthropic_messages import VERSION_HEADER, parse_count_tokens_request, parse_messages_request
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
    """Whose shape `GET /v1/models[/{id}]` answers in: the Anthropic SDK's when it asks (it always
    sends anthropic-version), else OpenAI's."""
    return APIS[ANTHROPIC] if VERSION_HEADER in headers else APIS[OPENAI]


def _model(name: str, api: Api) -> dict[str, object]:
    if api.name == ANTHROPIC:
        return {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
    return {"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}


def models_body(names: Sequence[str], headers: Mapping[str, str]) -> bytes:
    """`GET /v1/models`: the names an app may send, in the asking SDK's shape."""
    api = models_api(headers)
    data = [_model(name, api) for name in names]
    if api.name == ANTHROPIC:
        return json.dumps({"data": data, "has_more": False, "first_id": names[0] if names else None,
                           "last_id": names[-1] if names else None}).encode()
    return json.dumps({"object": "list", "data": data}).encode()


def model_body(name: str, headers: Mapping[str, str]) -> bytes:
    """`GET /v1/models/{name}`, in the asking SDK's shape."""
    return json.dumps(_model(name, models_api(headers))).encode()
