"""Reading protobuf's wire format by field number: for the ext_proc messages on Switchyard's hot
path, where envoy-data-plane's pydantic classes cost too much. (The access log, whose entries
carry many more fields, is read by protobuf's C parser instead: observability/als_schema.py.)"""

from __future__ import annotations

VARINT, LEN = 0, 2


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def read_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for varints, bytes for length-delimited fields."""
    out: list[tuple[int, int | bytes]] = []
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = read_varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            out.append((number, value))
        elif wire_type == LEN:
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise WireError("truncated field")
            out.append((number, data[pos:pos + size]))
            pos += size
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
    if pos != end:
        raise WireError("truncated fixed-width field")
    return out


def message_fields(data: bytes) -> dict[int, list[int | bytes]]:
    """Every value of each field number, in order (repeated fields have several)."""
    out: dict[int, list[int | bytes]] = {}
    for number, value in read_fields(data):
        out.setdefault(number, []).append(value)
    return out


def string_map(entries: list[int | bytes]) -> dict[str, bytes]:
    """A `map<string, T>` field's entries (key = 1, value = 2), values left encoded."""
    out: dict[str, bytes] = {}
    for entry in entries:
        if isinstance(entry, bytes):
            fields = message_fields(entry)
            key, value = fields.get(1, [b""])[0], fields.get(2, [b""])[0]
            if isinstance(key, bytes) and isinstance(value, bytes):
                out[key.decode("utf-8", "replace")] = value
    return out


def metadata_strings(metadata: bytes, namespace: str) -> dict[str, str]:
    """The string values of one namespace of an envoy.config.core.v3.Metadata (its
    filter_metadata: map<string, Struct>; a Struct's fields: map<string, Value>, string_value = 3)."""
    struct = string_map(message_fields(metadata).get(1, [])).get(namespace)
    if struct is None:
        return {}
    out = {}
    for key, value in string_map(message_fields(struct).get(1, [])).items():
        text = message_fields(value).get(3)
        if text and isinstance(text[-1], bytes):
            out[key] = text[-1].decode("utf-8", "replace")
    return out
