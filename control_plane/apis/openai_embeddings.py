"""The OpenAI embeddings door: only `model` is read. Embeddings are never routed: a configured
model name goes to that model, the router alias is refused (it means "route this chat"), and
any other name goes on unchanged to the default model's provider."""

from __future__ import annotations

from collections.abc import Sequence

from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError


def parse_embeddings_request(raw: bytes, envelopes: Sequence[str] = ()) -> ChatRequest:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "`model` is required and must be a string", "invalid_model", "model")
    return ChatRequest(body=body, model=model, messages=[])
