"""What every translation between wire APIs shares: the names of what it dropped (only hints
meant for another model or service; `x-switchyard-dropped`), and the 400 for what it cannot
carry."""

from __future__ import annotations

from control_plane.apis.request_error import RequestError

Dropped = set[str]  # names of what a translation dropped, e.g. "cache_control", "tool:web_search"


def untranslatable(what: str, target: str, advice: str) -> RequestError:
    return RequestError(400, f"{what} cannot be translated to {target} ({advice})", "untranslatable")


def dropped_header(dropped: Dropped) -> str:
    """`x-switchyard-dropped`: sorted, comma-separated."""
    return ",".join(sorted(dropped))
