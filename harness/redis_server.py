"""A real redis-server (Debian's package) on a free port, for the tests of shared state: started,
killed, paused and restarted on the same port, like an outage of the Redis sidecars share."""

from __future__ import annotations

import shutil
import signal
import socket
import time
from pathlib import Path

from harness.processes import Process, free_port

READY_TIMEOUT_S = 10.0


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


class RedisServer:
    """No persistence (`--save '' --appendonly no`): a restart comes back empty, as a Redis
    without a volume does."""

    def __init__(self, log_dir: Path, name: str = "redis") -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server not found (Debian: apt-get install redis-server)")
        self.port = free_port()
        self.process = Process(name, [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(log_dir)], log_dir)
        self.wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"redis-server exited:\n{self.process.log_tail()}")
            if self.answers():
                return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} not answering after {timeout}s")

    def kill(self) -> None:
        self.process.stop(signal.SIGKILL)

    def restart(self) -> None:
        """Start again on the same port, empty."""
        self.process.restart()
        self.wait_ready()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and commands time out (a hung server
        or a partition), unlike a kill (connections refused)."""
        self.process.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.popen.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.stop()
