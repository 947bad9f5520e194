"""Envoy's access log, received over gRPC (ALS): the end of each request's decision record.

Envoy sees what the processor cannot (the status the app got and the whole request's time,
streams included), and sends one entry per request, off the request path, in batches (every
0.25 s). The entry carries the decision the processor wrote into dynamic metadata; with the
answer's usage (read by Envoy on the direct path, and put with the decision; or by the guarded
path) it becomes the request's log line and its metrics (control_plane/spend/).

Entries are read by protobuf's C parser against a schema of only the fields used
(als_schema.py): envoy-data-plane's classes took ~0.3 ms an entry, which held the event loop for
tens of ms per batch under load, and a pure-Python wire reader ~54 µs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import grpclib.const
import structlog
from envoy_data_plane.envoy.service.accesslog.v3 import AccessLogServiceBase
from grpclib.server import Stream

from control_plane.apis.table import APIS, OPENAI
from control_plane.apis.usage import Usage
from control_plane.headers import ANSWER_USAGE, ATTEMPTS_HEADER, METADATA_NAMESPACE, MODEL_HEADER
from control_plane.observability.als_schema import DecodeError, StreamAccessLogsMessage
from control_plane.protowire import WireError

log = structlog.get_logger("switchyard.access_log")
STREAM_METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
# envoy.data.accesslog.v3.ResponseFlags: field number -> Envoy's short name (as %RESPONSE_FLAGS%).
_FLAG_NAMES = {1: "LH", 2: "UH", 3: "UT", 4: "LR", 5: "UR", 6: "UF", 7: "UC", 8: "UO", 9: "NR", 10: "DI",
               11: "FI", 12: "RL", 13: "UAEX", 14: "RLSE", 15: "DC", 16: "URX", 17: "SI", 18: "IH", 19: "DPE",
               20: "UMSDR", 21: "RFCF", 22: "NFCF", 23: "DT", 24: "UPE", 25: "NC", 26: "OM", 27: "DF", 28: "DR"}


@dataclass(frozen=True)
class Entry:
    """One request, as Envoy saw it at its end."""

    decision: Mapping[str, str]  # the processor's dynamic metadata (namespace "switchyard")
    status: int
    seconds: float | None  # first byte in to last byte out
    answered_model: str | None  # x-switchyard-model on the response
    fields: Mapping[str, Any] = field(default_factory=dict)  # the rest of the request log line
    traceparent: str | None = None  # the request's trace context (W3C), when it had one

    @property
    def request_id(self) -> str:
        return str(self.fields.get("request_id") or "")

    @property
    def model(self) -> str | None:
        """The model that answered (the guarded path names it), else the one the processor chose."""
        return self.answered_model or self.decision.get("model")

    def answer_usage(self) -> Usage | None:
        """The usage Envoy read in the answer on the direct path (its `usage` objects, in the
        answer's API), or None."""
        text = self.decision.get(ANSWER_USAGE)
        if not text:
            return None
        try:
            objects = json.loads(text)
        except (ValueError, RecursionError):
            return None
        api = APIS.get(self.decision.get("api", OPENAI), APIS[OPENAI])
        return api.usage_reader.from_objects(objects) if isinstance(objects, list) else None

    def labels(self) -> tuple[str, str, str, str]:
        """The request metrics' labels: app, policy, route, and the model that answered."""
        decision = self.decision
        return (decision.get("app", ""), decision.get("policy", ""), decision.get("route", ""),
                self.model or "")

    def log_fields(self) -> dict[str, Any]:
        """The access-log line's fields (README: "Logs and metrics"), usage and cost aside."""
        decision = self.decision
        return {
            "request_id": self.request_id or None, "app": decision.get("app"), "policy": decision.get("policy"),
            "policy_version": decision.get("policy_version"), "route": decision.get("route"),
            "model": self.model,
            "requested_model": decision.get("requested_model"), "decision": decision.get("decision"),
            "reason": decision.get("reason"), "router_ms": decision.get("router_ms"), **self.fields,
            "status": self.status,
        }


def _text(value: str | bytes) -> str:
    # proto2 strings are not checked for UTF-8: upb hands invalid ones back as bytes.
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _seconds(message: Any) -> float:
    return float(message.seconds) + float(message.nanos) / 1e9


def _timestamp(message: Any) -> str:
    return datetime.fromtimestamp(_seconds(message), timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _address(message: Any, with_port: bool) -> str | None:
    if not message.HasField("socket_address"):
        return None
    socket = message.socket_address
    host = _text(socket.address) if socket.HasField("address") else None
    return f"{host}:{socket.port_value}" if with_port and socket.port_value else host


def _decision(common: Any) -> dict[str, str]:
    """The processor's decision metadata: the string values of Switchyard's namespace."""
    if not common.HasField("metadata") or METADATA_NAMESPACE not in common.metadata.filter_metadata:
        return {}
    struct = common.metadata.filter_metadata[METADATA_NAMESPACE]
    return {_text(key): _text(value.string_value) for key, value in struct.fields.items()
            if value.HasField("string_value")}


def _common(common: Any) -> tuple[dict[str, str], float | None, dict[str, Any]]:
    has = common.HasField
    last_byte = _seconds(common.time_to_last_downstream_tx_byte) if has("time_to_last_downstream_tx_byte") else None
    duration = _seconds(common.duration) if has("duration") else last_byte
    flags = [_FLAG_NAMES[f.number] for f, on in common.response_flags.ListFields() if on and f.number in _FLAG_NAMES]
    return _decision(common), last_byte, {
        "timestamp": _timestamp(common.start_time) if has("start_time") else None,
        "provider_cluster": _text(common.upstream_cluster) if has("upstream_cluster") else None,
        "upstream_host": _address(common.upstream_remote_address, with_port=True),
        "upstream_attempts": common.upstream_request_attempt_count if has("upstream_request_attempt_count") else None,
        "response_flags": ",".join(flags) or "-",
        "duration_ms": None if duration is None else int(duration * 1000),
        "upstream_ms": int(_seconds(common.time_to_first_upstream_rx_byte) * 1000)
        if has("time_to_first_upstream_rx_byte") else None,
        "downstream": _address(common.downstream_remote_address, with_port=False),
    }


def _request(request: Any) -> dict[str, Any]:
    has, method = request.HasField, request.request_method
    path = request.original_path or request.path
    return {"request_id": _text(request.request_id) if has("request_id") else None,
            "method": _METHODS.get(method, method) if has("request_method") else None,
            "path": _text(path) if has("original_path") or has("path") else None,
            "bytes_in": request.request_body_bytes}


# config.core.v3.RequestMethod values.
_METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS", 8: "TRACE",
            9: "PATCH"}


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else _text(value)


def decode_entries(message: bytes) -> list[Entry]:
    """The HTTP entries of one StreamAccessLogsMessage."""
    try:
        parsed = StreamAccessLogsMessage.FromString(message)
    except DecodeError as exc:
        raise WireError(str(exc)) from exc
    entries = []
    for raw in parsed.http_logs.log_entry:
        decision: dict[str, str] = {}
        seconds, status, model, attempts, traceparent = None, 0, None, None, None
        line: dict[str, Any] = {}
        if raw.HasField("common_properties"):
            decision, seconds, line = _common(raw.common_properties)
        if raw.HasField("request"):
            line |= _request(raw.request)
            traceparent = _header(raw.request.request_headers, "traceparent")
        if raw.HasField("response"):
            response = raw.response
            status = response.response_code.value
            model = _header(response.response_headers, MODEL_HEADER)
            attempts = _header(response.response_headers, ATTEMPTS_HEADER)
            line |= {"details": _text(response.response_code_details) if response.HasField("response_code_details")
                     else None, "bytes_out": response.response_body_bytes}
        line["attempts"] = attempts
        entries.append(Entry(decision, status, seconds, model, line, traceparent))
    return entries


class AccessLogSink(AccessLogServiceBase):
    """Envoy's ALS client: a stream of batches; nothing is ever answered until it closes. Each
    entry goes to `on_entry` (control_plane/spend/: the request's log line, metrics and spend)."""

    def __init__(self, on_entry: Callable[[Entry], None]) -> None:
        self.on_entry = on_entry

    async def handle(self, stream: Stream[bytes, bytes]) -> None:
        async for message in stream:
            try:
                for entry in decode_entries(message):
                    self.on_entry(entry)
            except WireError:
                log.warning("access_log_unreadable", size=len(message))
        await stream.send_message(b"")  # StreamAccessLogsResponse {}

    def __mapping__(self) -> dict[str, Any]:
        return {STREAM_METHOD: grpclib.const.Handler(
            self.handle, grpclib.const.Cardinality.STREAM_UNARY, bytes, bytes)}
