"""Watching the policies folder (watchdog) and reloading it after each burst of changes.

Any change in the folder triggers a reload of the whole folder once it has been quiet for
`debounce_s`, so every way of saving is handled alike: in-place writes, write-temp-then-rename
(vim, VS Code, `sed -i`), delete + create, Kubernetes ConfigMap `..data` symlink swaps, several
files at once. A half-written file either fails validation (and the next event retries) or is
complete by the time the burst ends. Polling mode is for bind mounts where inotify events do not
arrive (Docker Desktop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = structlog.get_logger("switchyard.watch")

# Events that can change what the folder holds (not opened / closed-without-write, which our own
# reads produce).
CHANGE_EVENTS = frozenset({"created", "deleted", "modified", "moved", "closed"})
POLL_INTERVAL_S = 0.25


class _Forward(FileSystemEventHandler):
    def __init__(self, poke: Callable[[], object]) -> None:
        self.poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in CHANGE_EVENTS:
            self.poke()


class PolicyWatcher:
    def __init__(
        self, directory: Path, reload: Callable[[], Awaitable[bool]],
        polling: bool = False, debounce_s: float = 0.05,
    ) -> None:
        self.directory = directory
        self.reload = reload
        self.polling = polling
        self.debounce_s = debounce_s
        self._observer: BaseObserver | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        observer = PollingObserver(timeout=POLL_INTERVAL_S) if self.polling else Observer()
        # Events arrive on watchdog's thread; hand them to the event loop.
        observer.schedule(_Forward(lambda: loop.call_soon_threadsafe(self._changed.set)),
                          str(self.directory), recursive=False)
        observer.start()
        self._observer = observer
        self._task = asyncio.ensure_future(self._run())
        log.info("watching", directory=str(self.directory), mode="poll" if self.polling else "inotify")

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            # Debounce: wait until the folder has been quiet for debounce_s.
            while self._changed.is_set():
                self._changed.clear()
                await asyncio.sleep(self.debounce_s)
            try:
                await self.reload()
            except Exception:  # a reload bug must not stop watching
                log.exception("reload_crashed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._observer is not None:
            self._observer.stop()
            await asyncio.to_thread(self._observer.join, 5)
