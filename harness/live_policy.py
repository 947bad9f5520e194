"""Helpers for live-reload tests and benchmarks: policy text, editor-style saves, steady traffic."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx


class HasUrl(Protocol):
    url: str


def policy(router: HasUrl, providers: dict[str, HasUrl], models: dict[str, str], routes: dict[str, str]) -> str:
    lines = ["version: 1", "router:", f"  endpoint: {router.url}/v1", "  model: Arch-Router", "  timeout_ms: 500",
             "providers:"]
    for name, provider in providers.items():
        lines += [f"  {name}:", f"    base_url: {provider.url}/v1"]
    lines.append("models:")
    lines += [f"  {model}: {{provider: {provider}}}" for model, provider in models.items()]
    lines.append("routes:" if routes else "routes: []")
    for route, model in routes.items():
        lines += [f"  - name: {route}", f"    description: requests about {route}", f"    model: {model}"]
    lines.append("default_model: alpha-chat")
    return "\n".join(lines) + "\n"


@dataclass
class Traffic:
    """A steady client: one `auto` chat request every `interval_s`, every answer recorded."""

    url: str
    interval_s: float = 0.05
    results: list[tuple[float, int, str, str]] = field(default_factory=list)  # (t, status, model, content)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = client.post(self.url, json={"model": "auto", "messages": [{"role": "user", "content": "go"}]})
                    content = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text
                    self.results.append((started, r.status_code, r.headers.get("x-switchyard-model", ""), content))
                except httpx.HTTPError as exc:
                    self.results.append((started, 0, "", repr(exc)))
                self.stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def first_after(self, t: float, content: str, timeout: float = 5.0) -> float:
        """Seconds from `t` to the first request sent after `t` that got `content`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for started, _, _, got in list(self.results):
                if started >= t and got == content:
                    return started - t
            time.sleep(0.02)
        raise AssertionError(f"no answer {content!r} within {timeout}s of the edit")


def write_in_place(path: Path, text: str) -> None:
    with path.open("r+") as f:  # truncate + write, same inode
        f.truncate(0)
        f.write(text)


def write_rename_over(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text)
    os.replace(tmp, path)  # as vim, VS Code and `sed -i` save


