"""`GET /v1/models` and `GET /v1/models/{id}` in each API's shape (the API table names each
API's): Switchyard answers them itself, with the names a policy answers to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}


def _anthropic_model(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": "1970-01-01T00:00:00Z"}


def openai_models(names: Sequence[str]) -> bytes:
    return json.dumps({"object": "list", "data": [_openai_model(name) for name in names]}).encode()


def openai_model(name: str) -> bytes:
    return json.dumps(_openai_model(name)).encode()


def anthropic_models(names: Sequence[str]) -> bytes:
    return json.dumps({"data": [_anthropic_model(name) for name in names], "has_more": False,
                       "first_id": names[0] if names else None, "last_id": names[-1] if names else None}).encode()


def anthropic_model(name: str) -> bytes:
    return json.dumps(_anthropic_model(name)).encode()
