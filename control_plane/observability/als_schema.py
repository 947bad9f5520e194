"""The part of Envoy's access-log messages Switchyard reads, as a protobuf schema parsed by the
`protobuf` runtime's C parser (upb).

Only the fields the request log line uses are declared; upb skips the rest of each message in C.
The pure-Python wire reader (control_plane/protowire.py) took ~54 µs an entry, the largest part
of the control plane's CPU per request under load; this takes a few. Field numbers and types are
Envoy's (envoy/service/accesslog/v3/als.proto, envoy/data/accesslog/v3/accesslog.proto,
envoy/config/core/v3/{address,base}.proto), and tests/unit/test_access_log.py pins them to
envoy-data-plane's generated types. The file is proto2 so that every field has presence, as
on the wire: an absent field reads as unset, not as a zero.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError as DecodeError  # re-exported for callers

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "switchyard.als"  # private: never collides with a real Envoy type in the default pool

# message name -> [(field name, number, type, message type name or None, repeated)]
_MESSAGES: dict[str, list[tuple[str, int, int, str | None, bool]]] = {
    "Seconds": [("seconds", 1, _F.TYPE_INT64, None, False), ("nanos", 2, _F.TYPE_INT32, None, False)],
    "SocketAddress": [("address", 2, _F.TYPE_STRING, None, False), ("port_value", 3, _F.TYPE_UINT32, None, False)],
    "Address": [("socket_address", 1, _F.TYPE_MESSAGE, "SocketAddress", False)],
    "UInt32": [("value", 1, _F.TYPE_UINT32, None, False)],
    "Value": [("string_value", 3, _F.TYPE_STRING, None, False)],  # google.protobuf.Value, strings only
    # ResponseFlags: 28 bools, read by number (the names are Envoy's short flags, in access_log.py).
    "ResponseFlags": [(f"flag_{n}", n, _F.TYPE_BOOL, None, False) for n in range(1, 29)],
    "AccessLogCommon": [
        ("downstream_remote_address", 2, _F.TYPE_MESSAGE, "Address", False),
        ("start_time", 5, _F.TYPE_MESSAGE, "Seconds", False),
        ("time_to_first_upstream_rx_byte", 9, _F.TYPE_MESSAGE, "Seconds", False),
        ("time_to_last_downstream_tx_byte", 12, _F.TYPE_MESSAGE, "Seconds", False),
        ("upstream_remote_address", 13, _F.TYPE_MESSAGE, "Address", False),
        ("upstream_cluster", 15, _F.TYPE_STRING, None, False),
        ("response_flags", 16, _F.TYPE_MESSAGE, "ResponseFlags", False),
        ("metadata", 17, _F.TYPE_MESSAGE, "Metadata", False),
        ("duration", 23, _F.TYPE_MESSAGE, "Seconds", False),
        ("upstream_request_attempt_count", 24, _F.TYPE_UINT32, None, False),
    ],
    "HTTPRequestProperties": [
        ("request_method", 1, _F.TYPE_INT32, None, False),  # an enum on the wire; a varint either way
        ("path", 5, _F.TYPE_STRING, None, False),
        ("request_id", 9, _F.TYPE_STRING, None, False),
        ("original_path", 10, _F.TYPE_STRING, None, False),
        ("request_body_bytes", 12, _F.TYPE_UINT64, None, False),
    ],
    "HTTPResponseProperties": [
        ("response_code", 1, _F.TYPE_MESSAGE, "UInt32", False),
        ("response_body_bytes", 3, _F.TYPE_UINT64, None, False),
        ("response_code_details", 6, _F.TYPE_STRING, None, False),
    ],
    "HTTPAccessLogEntry": [
        ("common_properties", 1, _F.TYPE_MESSAGE, "AccessLogCommon", False),
        ("request", 3, _F.TYPE_MESSAGE, "HTTPRequestProperties", False),
        ("response", 4, _F.TYPE_MESSAGE, "HTTPResponseProperties", False),
    ],
    "HTTPAccessLogEntries": [("log_entry", 1, _F.TYPE_MESSAGE, "HTTPAccessLogEntry", True)],
    "StreamAccessLogsMessage": [("http_logs", 2, _F.TYPE_MESSAGE, "HTTPAccessLogEntries", False)],
}
# (message, field name, number, value type or message): map<string, ...> fields.
_MAPS = [
    ("Struct", "fields", 1, "Value"),  # google.protobuf.Struct
    ("Metadata", "filter_metadata", 1, "Struct"),  # envoy.config.core.v3.Metadata
    ("HTTPRequestProperties", "request_headers", 13, None),  # map<string, string>
    ("HTTPResponseProperties", "response_headers", 4, None),
]


def _field(message: descriptor_pb2.DescriptorProto, name: str, number: int, kind: int, type_name: str | None,
           repeated: bool) -> None:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = message.field.add(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="switchyard/als.proto", package=_PACKAGE, syntax="proto2")
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name in ["Struct", "Metadata", *_MESSAGES]:
        if name not in messages:
            messages[name] = file.message_type.add(name=name)
    for name, fields in _MESSAGES.items():
        for spec in fields:
            _field(messages[name], *spec)
    for owner, field_name, number, value_type in _MAPS:
        entry_name = "".join(part.title() for part in field_name.split("_")) + "Entry"
        entry = messages[owner].nested_type.add(name=entry_name)
        entry.options.map_entry = True
        _field(entry, "key", 1, _F.TYPE_STRING, None, False)
        if value_type:
            _field(entry, "value", 2, _F.TYPE_MESSAGE, value_type, False)
        else:
            _field(entry, "value", 2, _F.TYPE_STRING, None, False)
        _field(messages[owner], field_name, number, _F.TYPE_MESSAGE, f"{owner}.{entry_name}", True)
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
StreamAccessLogsMessage: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.StreamAccessLogsMessage"))
