"""Front doors: the request paths Switchyard routes, one row each of (request parser, the API
whose error shape and translations apply). The processor and the guarded path both dispatch
through this table; a new door (say, OpenAI's Responses API) is one more row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from control_plane.apis.anthropic_messages import parse_count_tokens_request, parse_messages_request
from control_plane.apis.table import ANTHROPIC, APIS, OPENAI, Api
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.openai_chat import parse_chat_request

MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class Door:
    path: str
    api: Api  # the API apps speak here: request shape, error shape, translations
    parse: Callable[[bytes, Sequence[str]], ChatRequest]  # (body, envelope tags)
    # Token counting is answered by the model's own provider: never routed, never translated.
    counts_tokens: bool = False


DOORS: dict[str, Door] = {door.path: door for door in (
    Door("/v1/chat/completions", APIS[OPENAI], parse_chat_request),
    Door("/v1/messages", APIS[ANTHROPIC], parse_messages_request),
    Door("/v1/messages/count_tokens", APIS[ANTHROPIC], parse_count_tokens_request, counts_tokens=True),
)}


def door_for(path: str) -> Door | None:
    """The door a request path (query string included or not) comes in by."""
    return DOORS.get(path.split("?", 1)[0])


def error_api(path: str) -> Api:
    """Whose error shape a request on `path` gets: its door's; OpenAI's elsewhere."""
    door = door_for(path)
    return door.api if door else APIS[OPENAI]


def models_body(names: Sequence[str], headers: Mapping[str, str]) -> bytes:
    """`GET /v1/models`: in the Anthropic SDK's shape when it asks (it always sends
    anthropic-version), else OpenAI's."""
    if "anthropic-version" in headers:
        data = [{"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}
                for name in names]
        return json.dumps({"data": data, "has_more": False, "first_id": names[0] if names else None,
                           "last_id": names[-1] if names else None}).encode()
    listed = [{"id": name, "object": "model", "created": 0, "owned_by": "switchyard"} for name in names]
    return json.dumps({"object": "list", "data": listed}).encode()
