"""The Arch-Router prompt, byte-exact to the model card (shared/reference/arch-router-prompt.md).

The model was trained on this exact text; a changed space costs accuracy. Treat it as a protocol
constant: both strings are pinned by a unit test.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

TASK = (
    "\nYou are a helpful assistant designed to find the best suited route.\n"
    "You are provided with route description within <routes></routes> XML tags:\n"
    "<routes>\n\n{routes}\n\n</routes>\n\n<conversation>\n\n{conversation}\n\n</conversation>\n"
)

FORMAT = (
    "\nYour task is to decide which route is best suit with user intent on the conversation in "
    "<conversation></conversation> XML tags.  Follow the instruction:\n"
    "1. If the latest intent from user is irrelevant or user intent is full filled, response with "
    'other route {"route": "other"}.\n'
    "2. You must analyze the route descriptions and find the best match route for user latest "
    "intent. \n"
    "3. You only response the name of the route that best matches the user's request, use the "
    "exact name in the <routes></routes>.\n\n"
    "Based on your analysis, provide your response in the following JSON formats if you decide to "
    'match any route:\n{"route": "route_name"} \n'
)


@dataclass(frozen=True)
class Message:
    """One text-only conversation turn, as given to the router."""

    role: str
    content: str


class NamedRoute(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


def routes_json(routes: Sequence[NamedRoute]) -> str:
    """`{routes}` as the card renders it (names and descriptions only; examples are not part of
    the card's format). Depends only on the policy: computed once per snapshot."""
    return json.dumps([{"name": r.name, "description": r.description} for r in routes])


def render_prompt(routes_text: str, conversation: Sequence[Message]) -> str:
    """The single user message sent to the router model."""
    messages = json.dumps([{"role": m.role, "content": m.content} for m in conversation])
    # str.replace, not str.format: descriptions and messages may contain braces.
    return TASK.replace("{routes}", routes_text).replace("{conversation}", messages) + FORMAT
