"""Property-based fuzzing of every front door through the real decision code and translation:
JSON and near-JSON bodies (unicode edge cases, lone surrogate escapes, repeated keys, deep and
wide nesting, huge numbers, NaN/Infinity, wrong types in every field a door reads, unknown and
malformed content blocks). Every body gets a route decision or a 4xx in its door's shape; never a
5xx of Switchyard's own or an exception, and a translation either works or says `untranslatable`.

Fixed seed and a bounded number of examples, so CI runs the same bodies in the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from control_plane.apis.doors import DOORS, ROUTE
from control_plane.apis.request_error import RequestError
from control_plane.apis.table import APIS, PROVIDER_APIS
from control_plane.extproc.processor import Forward, Reply, RequestProcessor, Shared
from control_plane.policy.loader import parse_policy
from control_plane.policy.model import PolicySet
from control_plane.policy.snapshot import Snapshot
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD

POLICY = parse_policy(GOOD.replace("  local:\n", "  local:\n    responses: native\n").replace(
    "models:\n", "  claude:\n    base_url: http://127.0.0.1:8002/v1\n    api: anthropic\nmodels:\n  haiku: {provider: claude}\n"),
    "default.yaml", "default")
TRICKY = ["\ud800", "\udfff", "a\udc00b", "\x00", "a\x00b", "\ufffe", "\uffff", "\u202e\u200f", "\U0010ffff",
          "\\ud800", "<system-reminder>x</system-reminder>", "", " ", "auto", "small", "gpt-4o", "haiku"]
texts = st.one_of(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12), st.sampled_from(TRICKY))
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30) | st.floats(allow_nan=False)
           | texts)
values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(texts, children, max_size=4), max_leaves=16)
BLOCKS = ["text", "image", "tool_use", "tool_result", "thinking", "document", "input_text", "input_image",
          "output_text", "function_call", "function_call_output", "reasoning", "custom_tool_call", "mystery"]
block = st.fixed_dictionaries({"type": st.sampled_from(BLOCKS)}, optional={
    "text": values, "content": values, "id": values, "tool_use_id": values, "name": values, "input": values,
    "call_id": values, "arguments": values, "output": values, "source": values, "cache_control": values})
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "x"])
                                 | values}, optional={"content": texts | st.lists(block | values, max_size=4),
                                                      "tool_calls": values, "tool_call_id": values})
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "auto", "messages": [{"role": "user", "content": "write code"}]},
    "/v1/messages": {"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "write code"}]},
    "/v1/messages/count_tokens": {"model": "haiku", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "auto", "input": [{"role": "user", "content": "write code"}]},
    "/v1/embeddings": {"model": "small", "input": "hi"},
}
# CI's budget (about 20 s here); a longer campaign: SWITCHYARD_FUZZ_EXAMPLES=50000.
FUZZ_EXAMPLES = int(os.environ.get("SWITCHYARD_FUZZ_EXAMPLES", "1500"))
FIELDS = ["model", "messages", "input", "stream", "system", "tools", "tool_choice", "max_tokens", "instructions",
          "previous_response_id", "store", "text", "response_format", "output_config", "metadata", "n", "stop"]


@st.composite
def near_json(draw: st.DrawFn, door: str) -> bytes:
    body = json.loads(json.dumps(VALID[door]))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(FIELDS))
        body[key] = draw(values | st.lists(message, max_size=3) | st.lists(block, max_size=3))
    raw = json.dumps(body).encode()  # lone surrogates become \\udXXX escapes, as a client would send them
    twist = draw(st.sampled_from(["none"] * 8 + ["duplicate", "constant", "deep", "wide", "digits", "cut", "bytes"]))
    if twist == "duplicate":
        key = draw(st.sampled_from(FIELDS))
        raw = b'{"' + key.encode() + b'": ' + json.dumps(draw(values)).encode() + b", " + raw[1:]
    elif twist == "constant":
        raw = raw[:-1] + b', "x": ' + draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999"])) + b"}"
    elif twist == "deep":
        depth = draw(st.integers(100, 5000))
        raw = raw[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    elif twist == "wide":
        raw = raw[:-1] + b', "x": [' + b",".join([b"{}"] * draw(st.integers(100, 3000))) + b"]}"
    elif twist == "digits":
        raw = raw[:-1] + b', "x": ' + b"9" * draw(st.integers(4000, 6000)) + b"}"
    elif twist == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif twist == "bytes":
        raw = draw(st.binary(max_size=64)) + raw
    return raw


def decide(door: str, raw: bytes, shared: Shared) -> Forward | Reply:
    async def run() -> Forward | Reply:
        processor = RequestProcessor(Snapshot(PolicySet({"default": POLICY}),
                                              {"default": ScriptedRouter(route="code_generation")}), shared)
        first = await processor.on_request_headers({":method": "POST", ":path": door}, end_of_stream=False)
        assert isinstance(first, Forward) and first.want_body
        return await processor.on_request_body(raw)
    return asyncio.run(run())


def in_door_shape(door: str, body: bytes) -> bool:
    error = json.loads(body)
    if DOORS[door].api.name == "anthropic":
        return error["type"] == "error" and set(error["error"]) == {"type", "message"}
    return set(error["error"]) == {"message", "type", "param", "code"}


def translations_hold(door: str, raw: bytes) -> None:
    """What the guarded path does with an accepted body: translate it into the OpenAI form and on
    into each provider API. Either works, or it is a RequestError (a 4xx for the app)."""
    sent = json.loads(raw)
    try:
        openai = DOORS[door].api.request_to_openai(sent, set())
        for api in PROVIDER_APIS:
            json.dumps(APIS[api].request_from_openai(openai, set()), allow_nan=False)
    except RequestError as error:
        assert 400 <= error.status < 500


@seed(20261130)
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(VALID)).flatmap(lambda door: st.tuples(st.just(door), near_json(door))))
def test_every_body_on_every_door_gets_a_decision_or_a_4xx(case: tuple[str, bytes]) -> None:
    door, raw = case
    shared = Shared()
    action = decide(door, raw, shared)
    if isinstance(action, Reply):
        assert 400 <= action.status < 500, action.body
        assert in_door_shape(door, action.body)
    elif DOORS[door].decides == ROUTE:
        translations_hold(door, raw)
    # The processor keeps serving: a valid request right after is decided.
    after = decide(door, json.dumps(VALID[door]).encode(), shared)
    assert isinstance(after, Forward)


def test_the_two_reported_holes_are_400s_on_every_door() -> None:
    for door, valid in VALID.items():
        surrogate = json.dumps({**valid, "model": "auto\ud800"}).encode()
        repeated = b'{"model": "x", ' + json.dumps(valid).encode()[1:]
        for raw, code in ((surrogate, "invalid_body"), (repeated, "duplicate_key")):
            action = decide(door, raw, Shared())
            assert isinstance(action, Reply) and action.status == 400, (door, raw)
            assert action.metadata["reason"] == code and in_door_shape(door, action.body)
