"""The harness never hands out one port twice, even when the kernel offers it again."""

from __future__ import annotations

from typing import Any

import pytest

from harness import processes


class _ScriptedSocket:
    """socket.socket whose bind(0) gets the next port of a script (the kernel's choice)."""

    offers: list[int] = []

    def __enter__(self) -> _ScriptedSocket:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.offers.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


def test_a_port_the_kernel_offers_again_is_not_handed_out_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "_GIVEN", set())
    monkeypatch.setattr(processes.socket, "socket", _ScriptedSocket)
    _ScriptedSocket.offers = [41000, 41000, 41000, 41001]
    assert [processes.free_port(), processes.free_port()] == [41000, 41001]
    assert _ScriptedSocket.offers == []


def test_real_ports_are_distinct_and_bindable() -> None:
    import socket

    ports = [processes.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))
