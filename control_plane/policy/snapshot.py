"""The current snapshot: the policies and a router built for each, replaced whole, read without
locks.

A request takes the snapshot once, when its headers arrive, and keeps it to the end, so a reload
never changes the rules (or the router's prepared routes) under a request in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.policy.model import PolicySet
from router_model.router import Router


@dataclass(frozen=True)
class Snapshot:
    policy_set: PolicySet
    routers: Mapping[str, Router]  # by policy name, built for that policy's routes


class SnapshotStore:
    def __init__(self, initial: Snapshot) -> None:
        self._current = initial
        self.generation = 1

    @property
    def current(self) -> Snapshot:
        return self._current

    def swap(self, snapshot: Snapshot) -> None:
        self._current = snapshot  # one reference assignment: atomic for every reader
        self.generation += 1
