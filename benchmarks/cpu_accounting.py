"""CPU used by process trees and by the whole machine, from /proc: what the benchmarks print as
cores and as CPU per request."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    parent: int
    cpu_s: float  # so far, all threads
    name: str  # the executable's name ("envoy", "python", ...)


def cpu_table() -> dict[int, Proc]:
    """Every process on the machine, by pid."""
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since listdir
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
        table[int(entry)] = Proc(int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, name)
    return table


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores): everything but idle and iowait."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / TICKS


def settle(timeout_s: float = 60.0) -> float:
    """Wait for a quiet machine (LiteLLM's second worker, say, still importing after the first
    answers); the busy cores of the last second, still high when something else is running."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = machine_busy()
        time.sleep(1.0)
        busy = machine_busy() - before
        if busy < 0.25 or time.monotonic() > deadline:
            return busy


def cpu_by_process(before: dict[int, Proc], after: dict[int, Proc], roots: list[int]) -> dict[str, float]:
    """CPU seconds spent between the two tables by `roots` and all their descendants (Switchyard's
    Envoy and workers, LiteLLM's workers), summed by name; the roots' own names get " (main)"."""
    children: dict[int, list[int]] = {}
    for pid, proc in after.items():
        children.setdefault(proc.parent, []).append(pid)
    spent: dict[str, float] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in after:
            old = before.get(pid)
            name = after[pid].name + (" (main)" if pid in roots else "")
            spent[name] = spent.get(name, 0.0) + after[pid].cpu_s - (old.cpu_s if old else 0.0)
            todo += children.get(pid, [])
    return spent
