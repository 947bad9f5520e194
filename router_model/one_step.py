"""The one-step Arch-Router decision: one generated token instead of the whole answer.

Arch-Router answers `{"route": "<name>"}`, about 9 tokens, and on a GPU most of a decision's time
is decoding them. When every route name (and `other`) starts with a different token under the
served model's tokenizer, the answer is known after its first name token. So the request forces
the answer's prefix `{"route": "` as the start of the assistant turn (`continue_final_message`),
allows only the names' first tokens (`allowed_token_ids`) and asks for `max_tokens: 1`; the token
maps back to its route. Up to the assistant turn the prompt is the model card's, byte for byte.

Whether a policy can use it is decided once per snapshot, with the served model's own tokenizer
(vLLM's /tokenize and /detokenize), so no local copy of the tokenizer is needed.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router_model.router import NO_ROUTE

ANSWER_PREFIX = '{"route": "'


@dataclass(frozen=True)
class OneStepPlan:
    token_ids: tuple[int, ...]  # the first token of each route name (and `other`)
    routes_by_text: Mapping[str, str]  # that token's text -> the route name


def plan_one_step(
    names: Sequence[str], tokenize: Callable[[str], list[int]], detokenize: Callable[[int], str]
) -> OneStepPlan | None:
    """The plan when every answer is told apart by its first name token; None when two names
    share it, or the tokenizer merges a name into the forced prefix."""
    prefix = tokenize(ANSWER_PREFIX)
    first_tokens: dict[int, str] = {}
    for name in (*names, NO_ROUTE):
        tokens = tokenize(json.dumps({"route": name}))
        if tokens[:len(prefix)] != prefix or len(tokens) <= len(prefix):
            return None
        token = tokens[len(prefix)]
        if token in first_tokens:
            return None
        first_tokens[token] = name
    by_text = {detokenize(token): name for token, name in first_tokens.items()}
    if len(by_text) != len(first_tokens):
        return None
    return OneStepPlan(tuple(first_tokens), by_text)


def one_step_request(full: dict[str, Any], plan: OneStepPlan) -> dict[str, Any]:
    """The full (model card) request, turned into the one-token request."""
    body = {k: v for k, v in full.items() if k != "structured_outputs"}
    body["messages"] = [*full["messages"], {"role": "assistant", "content": ANSWER_PREFIX}]
    body["continue_final_message"] = True
    body["add_generation_prompt"] = False
    body["allowed_token_ids"] = list(plan.token_ids)
    body["max_tokens"] = 1
    return body


class ServedTokenizer:
    """The served model's tokenizer over vLLM's HTTP API (blocking: used at snapshot build)."""

    def __init__(self, endpoint: str, model: str, api_key: str | None = None, timeout_s: float = 5.0) -> None:
        root = endpoint.rstrip("/")
        self.root = root[: -len("/v1")] if root.endswith("/v1") else root
        self.model = model
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self.timeout_s = timeout_s

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.root + path, data=json.dumps(body).encode(),
                                         headers=self.headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def tokenize(self, text: str) -> list[int]:
        answer = self._post("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
        return [int(t) for t in answer["tokens"]]

    def detokenize(self, token: int) -> str:
        return str(self._post("/detokenize", {"model": self.model, "tokens": [token]})["prompt"])
