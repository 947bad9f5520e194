"""The current policy snapshot: replaced whole, read without locks.

A request takes the snapshot once, when its headers arrive, and keeps it to the end, so a reload
never changes the rules under a request in flight.
"""

from __future__ import annotations

from control_plane.policy import PolicySet


class SnapshotStore:
    def __init__(self, initial: PolicySet) -> None:
        self._current = initial
        self.generation = 1

    @property
    def current(self) -> PolicySet:
        return self._current

    def swap(self, snapshot: PolicySet) -> None:
        self._current = snapshot  # one reference assignment: atomic for every reader
        self.generation += 1
