"""Imports only point down: the layers of README's "Layout", checked over every module's imports.

A module may import its own layer and the layers below it; the request paths (extproc, failover,
xds) are peers that do not import one another. A new module belongs to the layer of its folder
(or, at the top level of control_plane/, must be listed here).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Bottom to top.
LAYERS: list[tuple[str, ...]] = [
    ("router_model",),  # the router models; knows nothing of the control plane
    ("control_plane.headers", "control_plane.limits", "control_plane.protowire", "control_plane.event_loop"),
    ("control_plane.apis",),  # wire formats and front doors
    ("control_plane.observability",),  # metrics, traces, logs: plain labels
    ("control_plane.ledger",),  # spend, budgets and token limits, in SQLite and Redis
    ("control_plane.policy",),  # the policy model, its schema and loader, apps, snapshots
    ("control_plane.routing",),  # the decision path, turns, caches, routers per snapshot, eval/tune
    ("control_plane.extproc", "control_plane.failover", "control_plane.xds",  # the request paths, and
     "control_plane.spend"),  # what they cost: peers
    ("control_plane.workers",),
    ("control_plane.reloader", "control_plane.admin", "control_plane.sidecar", "control_plane.children",
     "control_plane.cli"),  # coordinators and the process on top
]
PEERS = next(layer for layer in LAYERS if "control_plane.extproc" in layer)


def _place(module: str) -> tuple[int, str] | None:
    """(layer index, the package or module of that layer that holds `module`)."""
    for index, members in enumerate(LAYERS):
        for member in members:
            if module == member or module.startswith(member + "."):
                return index, member
    return None


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("control_plane", "router_model"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((name.removesuffix(".__init__"), path))
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
    return out


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name, _ in _modules() if name != "control_plane" and _place(name) is None]
    assert unplaced == [], "place these modules in a layer (tests/unit/test_layers.py, README Layout)"


def test_imports_only_point_down() -> None:
    upward = []
    for name, path in _modules():
        source = _place(name)
        if source is None:
            continue
        for line, imported in _imports(path):
            target = _place(imported)
            if target is None or target[1] == source[1]:
                continue
            if target[0] > source[0] or (target[0] == source[0] and source[1] in PEERS):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {imported}")
    assert upward == []
