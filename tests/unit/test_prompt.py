"""The router prompt is byte-for-byte the model card's (shared/reference/arch-router-prompt.md)."""

from __future__ import annotations

import json

from router_model.client import PreparedRoutes, build_request
from router_model.prompt import FORMAT, TASK, Message, render_prompt, routes_json
from router_model.router import RouteSpec

# The reference's two strings, pasted verbatim as the JSON strings it gives.
REFERENCE_TASK = json.loads(r'''"\nYou are a helpful assistant designed to find the best suited route.\nYou are provided with route description within <routes></routes> XML tags:\n<routes>\n\n{routes}\n\n</routes>\n\n<conversation>\n\n{conversation}\n\n</conversation>\n"''')
REFERENCE_FORMAT = json.loads(r'''"\nYour task is to decide which route is best suit with user intent on the conversation in <conversation></conversation> XML tags.  Follow the instruction:\n1. If the latest intent from user is irrelevant or user intent is full filled, response with other route {\"route\": \"other\"}.\n2. You must analyze the route descriptions and find the best match route for user latest intent. \n3. You only response the name of the route that best matches the user's request, use the exact name in the <routes></routes>.\n\nBased on your analysis, provide your response in the following JSON formats if you decide to match any route:\n{\"route\": \"route_name\"} \n"''')

ROUTES = [
    RouteSpec("code_generation", "generating new code snippets, functions, or boilerplate based on user prompts or requirements"),
    RouteSpec("bug_fixing", "fixing errors or bugs in code"),
]

# Rendered by hand from the reference's worked example, plus a non-ASCII turn (ASCII-escaped, as
# Python's json.dumps does by default).
EXPECTED = (
    "\nYou are a helpful assistant designed to find the best suited route.\n"
    "You are provided with route description within <routes></routes> XML tags:\n"
    "<routes>\n\n"
    '[{"name": "code_generation", "description": "generating new code snippets, functions, or boilerplate based on user prompts or requirements"}, '
    '{"name": "bug_fixing", "description": "fixing errors or bugs in code"}]'
    "\n\n</routes>\n\n<conversation>\n\n"
    '[{"role": "user", "content": "fix this module \'torch.utils._pytree\' has no attribute \'register_pytree_node\'."}, '
    '{"role": "assistant", "content": "Which version?"}, '
    '{"role": "user", "content": "caf\\u00e9 {braces} \\u65e5\\u672c"}]'
    "\n\n</conversation>\n"
    "\nYour task is to decide which route is best suit with user intent on the conversation in "
    "<conversation></conversation> XML tags.  Follow the instruction:\n"
    '1. If the latest intent from user is irrelevant or user intent is full filled, response with other route {"route": "other"}.\n'
    "2. You must analyze the route descriptions and find the best match route for user latest intent. \n"
    "3. You only response the name of the route that best matches the user\'s request, use the exact name in the <routes></routes>.\n\n"
    "Based on your analysis, provide your response in the following JSON formats if you decide to match any route:\n"
    '{"route": "route_name"} \n'
)

CONVERSATION = [
    Message("user", "fix this module \'torch.utils._pytree\' has no attribute \'register_pytree_node\'."),
    Message("assistant", "Which version?"),
    Message("user", "café {braces} 日本"),
]


def test_constants_match_the_reference() -> None:
    assert TASK == REFERENCE_TASK
    assert FORMAT == REFERENCE_FORMAT


def test_rendered_prompt_is_byte_exact() -> None:
    assert render_prompt(routes_json(ROUTES), CONVERSATION) == EXPECTED


def test_request_is_one_user_message_with_greedy_decoding() -> None:
    body = build_request(PreparedRoutes.of(ROUTES), CONVERSATION, "Arch-Router")
    assert body["model"] == "Arch-Router"
    assert body["messages"] == [{"role": "user", "content": EXPECTED}]
    assert body["temperature"] == 0
    assert 0 < body["max_tokens"] <= 64
    assert body["structured_outputs"]["choice"] == [
        '{"route": "code_generation"}', '{"route": "bug_fixing"}', '{"route": "other"}'
    ]
