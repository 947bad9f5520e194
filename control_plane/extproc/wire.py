"""The ONE module that reads and writes ext_proc messages: a protobuf wire codec for the few
fields Switchyard uses.

Why not envoy-data-plane's classes on the hot path: they are pydantic dataclasses, and building
and parsing them cost ~820 µs per chat request on this machine (benchmarks/added_latency.py),
more than Envoy's whole proxying. This codec does the same work in a few tens of µs. It is pinned
to envoy-data-plane's generated types by tests (tests/unit/test_extproc_wire.py): every message
it writes must parse there to the expected message, and every message they write must read here.

Field numbers are from envoy/service/ext_proc/v3/external_processor.proto.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from control_plane.extproc.processor import Action, Forward, Reply
from control_plane.headers import METADATA_NAMESPACE
from control_plane.protowire import LEN as _LEN
from control_plane.protowire import VARINT as _VARINT
from control_plane.protowire import WireError as WireError  # re-exported for callers
from control_plane.protowire import metadata_strings, read_fields

# ProcessingRequest oneof `request`: field number -> phase name.
REQUEST_PHASES = {
    2: "request_headers", 3: "response_headers", 4: "request_body",
    5: "response_body", 6: "request_trailers", 7: "response_trailers",
}
# ProcessingResponse oneof `response`: phase name -> field number.
RESPONSE_FIELDS = {
    "request_headers": 1, "response_headers": 2, "request_body": 3,
    "response_body": 4, "request_trailers": 5, "response_trailers": 6,
}
_IMMEDIATE_RESPONSE = 7
_DYNAMIC_METADATA = 8
_MODE_OVERRIDE = 9
_OVERWRITE_IF_EXISTS_OR_ADD = 2
_BODY_MODE_NONE = 0
_BODY_MODE_BUFFERED = 2


_METADATA_CONTEXT = 8  # ProcessingRequest.metadata_context


@dataclass(frozen=True)
class ProcessingRequest:
    phase: str  # e.g. "request_headers"; "" when Envoy sent a phase this codec does not know
    headers: dict[str, str]
    body: bytes
    end_of_stream: bool
    metadata: dict[str, str] = field(default_factory=dict)  # forwarded dynamic metadata (our namespace)


# ---- reading ----------------------------------------------------------------------------


def _header_map(data: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for number, entry in read_fields(data):
        if number != 1 or not isinstance(entry, bytes):
            continue
        key, value, raw = "", "", None
        for n, v in read_fields(entry):
            if isinstance(v, bytes):
                if n == 1:
                    key = v.decode("utf-8", "replace")
                elif n == 2:
                    value = v.decode("utf-8", "replace")
                elif n == 3:
                    raw = v
        # Envoy sends values in raw_value; header bytes are latin-1 on the wire.
        headers[key] = raw.decode("latin-1") if raw is not None else value
    return headers


def decode_request(data: bytes) -> ProcessingRequest:
    phase, headers, body, end_of_stream, metadata = "", {}, b"", False, {}
    for number, value in read_fields(data):
        if number == _METADATA_CONTEXT and isinstance(value, bytes):
            metadata = metadata_strings(value, METADATA_NAMESPACE)
        if REQUEST_PHASES.get(number) is None or not isinstance(value, bytes) or phase:
            continue
        phase = REQUEST_PHASES[number]
        for n, v in read_fields(value):
            if phase.endswith("_headers") and n == 1 and isinstance(v, bytes):
                headers = _header_map(v)
            elif phase.endswith("_headers") and n == 3:
                end_of_stream = bool(v)
            elif phase.endswith("_body") and n == 1 and isinstance(v, bytes):
                body = v
            elif phase.endswith("_body") and n == 2:
                end_of_stream = bool(v)
    return ProcessingRequest(phase, headers, body, end_of_stream, metadata)


# ---- writing ----------------------------------------------------------------------------


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3 | _VARINT) + _encode_varint(value)


def _header_value_option(key: str, value: str) -> bytes:
    header = _len_field(1, key.encode()) + _len_field(3, value.encode("latin-1"))
    return _len_field(1, header) + _varint_field(3, _OVERWRITE_IF_EXISTS_OR_ADD)


def _header_mutation(set_headers: tuple[tuple[str, str], ...], remove: tuple[str, ...]) -> bytes:
    parts = [_len_field(1, _header_value_option(k, v)) for k, v in set_headers]
    parts += [_len_field(2, name.encode()) for name in remove]
    return b"".join(parts)


def _string_struct(fields: Mapping[str, str]) -> bytes:
    """google.protobuf.Struct with string values (map entries: key=1, value=2)."""
    return b"".join(
        _len_field(1, _len_field(1, k.encode()) + _len_field(2, _len_field(3, v.encode())))
        for k, v in fields.items()
    )


def _dynamic_metadata(fields: Mapping[str, str]) -> bytes:
    inner = _len_field(5, _string_struct(fields))  # Value.struct_value
    entry = _len_field(1, METADATA_NAMESPACE.encode()) + _len_field(2, inner)
    return _len_field(_DYNAMIC_METADATA, _len_field(1, entry))


def _common_response(action: Forward) -> bytes:
    out = b""
    if action.set_headers or action.remove_headers:
        out += _len_field(2, _header_mutation(action.set_headers, action.remove_headers))
    if action.body is not None:
        out += _len_field(3, _len_field(1, action.body))
    if action.clear_route_cache:
        out += _varint_field(5, 1)
    return out


def _immediate(reply: Reply) -> bytes:
    response = _len_field(1, _varint_field(1, reply.status))  # HttpStatus.code
    if reply.headers:
        response += _len_field(2, _header_mutation(reply.headers, ()))
    response += _len_field(3, reply.body) + _len_field(5, b"switchyard")
    return _len_field(_IMMEDIATE_RESPONSE, response)


def encode_response(phase: str, action: Action) -> bytes:
    """The ProcessingResponse answering `phase` with `action`."""
    if isinstance(action, Reply):
        return _immediate(action) + (_dynamic_metadata(action.metadata) if action.metadata else b"")
    # HeadersResponse / BodyResponse: CommonResponse in field 1 (always present: Envoy reads an
    # absent oneof member as "no response").
    out = _len_field(RESPONSE_FIELDS[phase], _len_field(1, _common_response(action)))
    if action.metadata:
        out += _dynamic_metadata(action.metadata)
    if phase == "request_headers":
        # On a door's path the body is BUFFERED from the start (xds/envoy_config.py, _door_routes,
        # says why), elsewhere NONE: the answer says which this request gets, so a request
        # forwarded unread (a GET on a door's path, say) is streamed on, never held for a body
        # phase that the processor, done with it, would not answer.
        mode = _BODY_MODE_BUFFERED if action.want_body else _BODY_MODE_NONE
        out += _len_field(_MODE_OVERRIDE, _varint_field(3, mode))
    return out


def pass_through(phase: str) -> bytes:
    """Continue unchanged in a phase Switchyard does not act on."""
    field = RESPONSE_FIELDS.get(phase, RESPONSE_FIELDS["request_headers"])
    if phase.endswith("_trailers"):
        return _len_field(field, b"")
    return _len_field(field, _len_field(1, b""))
