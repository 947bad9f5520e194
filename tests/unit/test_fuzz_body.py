"""Property-based fuzzing of request-body handling: random and mutated bodies never make the
processor raise, and every answer is a well-formed ext_proc response."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import betterproto2
from envoy_data_plane.envoy.service.ext_proc.v3 import ProcessingResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.extproc import wire
from control_plane.extproc.processor import Forward, Reply
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_processor import CHAT_HEADERS, make

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
VALID = {"model": "auto", "messages": [{"role": "user", "content": "write code"}], "stream": True,
         "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
         "response_format": {"type": "json_object"}, "n": 2}


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["model", "messages", "stream", "tools", "extra", "n"]))
        body[key] = draw(json_values | st.sampled_from(["auto", "gpt-4o", "small", "nope"]))
    if draw(st.booleans()) and isinstance(body.get("messages"), list):
        body["messages"].append(draw(st.dictionaries(st.sampled_from(["role", "content", "name"]), json_values)))
    raw = json.dumps(body).encode()
    cut = draw(st.integers(0, len(raw)))
    return raw if draw(st.booleans()) else raw[:cut]  # sometimes truncated


bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | mutated_bodies()


def handle(body: bytes, router: ScriptedRouter) -> Forward | Reply:
    async def run() -> Forward | Reply:
        processor = make(router)
        await processor.on_request_headers(CHAT_HEADERS, end_of_stream=False)
        return await processor.on_request_body(body)
    return asyncio.run(run())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.sampled_from([None, "code_generation"]), st.sampled_from(["matched", "other", "router_timeout"]))
def test_any_body_gets_a_well_formed_answer(body: bytes, route: str | None, reason: str) -> None:
    action = handle(body, ScriptedRouter(route=route if reason == "matched" else None, reason=reason))
    parsed = ProcessingResponse.parse(wire.encode_response("request_body", action))
    name, _ = betterproto2.which_one_of(parsed, "response")
    if isinstance(action, Reply):
        assert action.status in (400, 404)
        assert name == "immediate_response"
        assert set(json.loads(action.body)["error"]) == {"message", "type", "param", "code"}
    else:
        assert name == "request_body"
        assert action.body is not None
        sent = json.loads(action.body)
        original = json.loads(body)
        assert sent["model"] in ("gpt-4o", "SmolLM2-135M-Instruct")
        if action.metadata.get("hide_usage"):  # a stream asked for the usage its app did not ask for
            assert sent.pop("stream_options") == {**(original.get("stream_options") or {}), "include_usage": True}
            original.pop("stream_options", None)
        assert {k: v for k, v in sent.items() if k != "model"} == {k: v for k, v in original.items() if k != "model"}
