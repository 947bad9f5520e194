"""Reading the router model's answer: `{"route": "<name>"}`, tolerantly.

Reference clients accept single quotes, ```json fences and text around the object; a name that is
not one of the policy's routes, `other`, or an empty name means "no route".
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection
from dataclasses import dataclass

from router_model.router import NO_ROUTE

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_ROUTE_FIELD = re.compile(r"""["']route["']\s*:\s*["']([^"']*)["']""")


@dataclass(frozen=True)
class ParsedAnswer:
    """`route` is a policy route name, or None with `reason` saying why no route was taken."""

    route: str | None
    reason: str  # "matched", "other", "unknown_route", "unparseable"


def _route_field(text: str) -> str | None:
    for match in _OBJECT.finditer(text):
        candidate = match.group(0)
        for load in (json.loads, ast.literal_eval):
            try:
                value = load(candidate)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            route = value.get("route") if isinstance(value, dict) else None
            if isinstance(route, str):
                return route
    # A truncated or slightly malformed object still names the route plainly.
    found = _ROUTE_FIELD.search(text)
    return found.group(1) if found else None


def parse_answer(text: str, route_names: Collection[str]) -> ParsedAnswer:
    name = _route_field(text)
    if name is None:
        return ParsedAnswer(None, "unparseable")
    name = name.strip()
    if not name or name == NO_ROUTE:
        return ParsedAnswer(None, NO_ROUTE)
    if name not in route_names:
        return ParsedAnswer(None, "unknown_route")
    return ParsedAnswer(name, "matched")
