"""Edit settings in a policy file's text in place, keeping its comments and layout (PyYAML has no
round trip, so the edits are made on the text, at the positions its parser reports)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import yaml

Value = str | Sequence[str]  # a YAML scalar as text, or a list of strings


def _block(key: str, value: Value, indent: str) -> str:
    """`key: value` as block lines at `indent` (a list as one `- "item"` line per item)."""
    if isinstance(value, str):
        return f"{indent}{key}: {value}\n"
    return f"{indent}{key}:\n" + "".join(f"{indent}  - {json.dumps(v, ensure_ascii=False)}\n" for v in value)


def _flow(value: Value) -> str:
    return value if isinstance(value, str) else json.dumps(list(value), ensure_ascii=False)


def _child(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in mapping.value:
        if key_node.value == key:
            return key_node, value_node
    return None


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def set_router_embedding(text: str, values: Mapping[str, Value], remove: Sequence[str] = ()) -> str:
    """`router.embedding.<key>: <value>` for each of `values`, and the keys in `remove` taken
    out. A list replaces the key's old value whole. The router section must be a block mapping."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    router = _child(root, "router") if isinstance(root, yaml.MappingNode) else None
    router_key, router_node = router or (None, None)
    if not isinstance(router_node, yaml.MappingNode) or router_node.flow_style or router_key is None:
        raise ValueError("the policy has no `router:` block to edit")
    embedding = _child(router_node, "embedding")
    if embedding is None:
        indent = " " * router_node.value[0][0].start_mark.column
        at = _line_end(text, router_key.start_mark.index)
        lines = "".join(_block(key, value, indent + "  ") for key, value in values.items())
        return text[:at] + f"{indent}embedding:\n" + lines + text[at:]
    key_node, node = embedding
    if not isinstance(node, yaml.MappingNode):
        raise ValueError("router.embedding is not a mapping")
    if node.flow_style or not node.value:
        kept = {k.value: text[v.start_mark.index:v.end_mark.index] for k, v in node.value if k.value not in remove}
        kept.update({key: _flow(value) for key, value in values.items()})
        flow = "{" + ", ".join(f"{key}: {value}" for key, value in kept.items()) + "}"
        return text[:node.start_mark.index] + flow + text[node.end_mark.index:]
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), applied from the end
    indent = " " * node.value[0][0].start_mark.column
    after_key = _line_end(text, key_node.start_mark.index)
    for key, value in values.items():
        found = _child(node, key)
        if found is not None and isinstance(value, str):
            edits.append((found[1].start_mark.index, found[1].end_mark.index, value))
            continue
        if found is not None:
            edits.append(_whole_key(text, *found))
        edits.append((after_key, after_key, _block(key, value, indent)))
    for key in remove:
        found = _child(node, key)
        if found is not None and key not in values:
            edits.append(_whole_key(text, *found))
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _whole_key(text: str, key: yaml.Node, value: yaml.Node) -> tuple[int, int, str]:
    """The edit that removes a key and its value (whole lines)."""
    end = value.end_mark.index
    end = end if text[end - 1:end] == "\n" else _line_end(text, end)
    return _line_start(text, key.start_mark.index), end, ""
