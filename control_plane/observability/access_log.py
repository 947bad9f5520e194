"""Envoy's access log, received over gRPC (ALS): the end of each request's decision record.

Envoy sees what the processor cannot (the status the app got and the whole request's time,
streams included), and sends one entry per request, off the request path, in batches (every
0.25 s). The entry carries the decision the processor wrote into dynamic metadata; with the
answer's usage (read by Envoy on the direct path, and put with the decision; or by the guarded
path) it becomes the request's log line and its metrics (control_plane/spend/).

Entries are read with control_plane/protowire.py, only the fields used: envoy-data-plane's
classes took ~0.3 ms an entry, which held the event loop for tens of ms per batch under load.
Field numbers are from envoy/service/accesslog/v3/als.proto and envoy/data/accesslog/v3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import json

import grpclib.const
import structlog
from envoy_data_plane.envoy.service.accesslog.v3 import AccessLogServiceBase
from grpclib.server import Stream

from control_plane.apis.table import APIS, OPENAI
from control_plane.apis.usage import Usage
from control_plane.headers import ANSWER_USAGE, ATTEMPTS_HEADER, METADATA_NAMESPACE, MODEL_HEADER
from control_plane.protowire import WireError, message_fields, metadata_strings, read_fields, string_map

log = structlog.get_logger("switchyard.access_log")
STREAM_METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
_HTTP_LOGS, _LOG_ENTRY = 2, 1  # StreamAccessLogsMessage.http_logs, HTTPAccessLogEntries.log_entry
_COMMON, _REQUEST, _RESPONSE = 1, 3, 4  # HTTPAccessLogEntry
# AccessLogCommon
_DOWNSTREAM, _START, _FIRST_UPSTREAM_RX, _LAST_TX_BYTE = 2, 5, 9, 12
_UPSTREAM_HOST, _CLUSTER, _FLAGS, _METADATA, _DURATION, _UPSTREAM_ATTEMPTS = 13, 15, 16, 17, 23, 24
# HTTPRequestProperties
_METHOD, _PATH, _REQUEST_ID, _ORIGINAL_PATH, _REQUEST_BODY_BYTES, _REQUEST_HEADERS = 1, 5, 9, 10, 12, 13
# HTTPResponseProperties
_RESPONSE_CODE, _RESPONSE_BODY_BYTES, _RESPONSE_HEADERS, _DETAILS = 1, 3, 4, 6
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
                self.answered_model or decision.get("model", ""))

    def log_fields(self) -> dict[str, Any]:
        """The access-log line's fields (README: "Logs and metrics"), usage and cost aside."""
        decision = self.decision
        return {
            "request_id": self.request_id or None, "app": decision.get("app"), "policy": decision.get("policy"),
            "policy_version": decision.get("policy_version"), "route": decision.get("route"),
            "model": self.answered_model or decision.get("model"),
            "requested_model": decision.get("requested_model"), "decision": decision.get("decision"),
            "reason": decision.get("reason"), "router_ms": decision.get("router_ms"), **self.fields,
            "status": self.status,
        }


def _one(fields: dict[int, list[int | bytes]], number: int) -> Any:
    values = fields.get(number)
    return values[-1] if values else None


def _text(fields: dict[int, list[int | bytes]], number: int) -> str | None:
    value = _one(fields, number)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


def _duration_s(raw: Any) -> float | None:
    if not isinstance(raw, bytes):
        return None
    fields = message_fields(raw)
    seconds, nanos = _one(fields, 1) or 0, _one(fields, 2) or 0
    return float(seconds) + float(nanos) / 1e9


def _ms(raw: Any) -> int | None:
    seconds = _duration_s(raw)
    return None if seconds is None else int(seconds * 1000)


def _timestamp(raw: Any) -> str | None:
    seconds = _duration_s(raw)  # a Timestamp has the same fields as a Duration
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _address(raw: Any, with_port: bool) -> str | None:
    socket = _one(message_fields(raw), 1) if isinstance(raw, bytes) else None
    if not isinstance(socket, bytes):
        return None
    fields = message_fields(socket)
    host, port = _text(fields, 2), _one(fields, 3)
    return f"{host}:{port}" if with_port and port else host


def _flags(raw: Any) -> str:
    if not isinstance(raw, bytes):
        return "-"
    names = [_FLAG_NAMES[n] for n, v in read_fields(raw) if n in _FLAG_NAMES and v]
    return ",".join(names) or "-"


def _common(raw: bytes) -> tuple[dict[str, str], float | None, dict[str, Any]]:
    fields = message_fields(raw)
    metadata = _one(fields, _METADATA)
    duration = _ms(_one(fields, _DURATION) or _one(fields, _LAST_TX_BYTE))
    return (metadata_strings(metadata, METADATA_NAMESPACE) if isinstance(metadata, bytes) else {}, _duration_s(_one(fields, _LAST_TX_BYTE)), {
        "timestamp": _timestamp(_one(fields, _START)), "provider_cluster": _text(fields, _CLUSTER),
        "upstream_host": _address(_one(fields, _UPSTREAM_HOST), with_port=True),
        "upstream_attempts": _one(fields, _UPSTREAM_ATTEMPTS), "response_flags": _flags(_one(fields, _FLAGS)),
        "duration_ms": duration, "upstream_ms": _ms(_one(fields, _FIRST_UPSTREAM_RX)),
        "downstream": _address(_one(fields, _DOWNSTREAM), with_port=False),
    })


def _request(raw: bytes) -> dict[str, Any]:
    fields = message_fields(raw)
    method = _one(fields, _METHOD)
    return {"request_id": _text(fields, _REQUEST_ID), "method": _METHODS.get(method, method),
            "path": _text(fields, _ORIGINAL_PATH) or _text(fields, _PATH),
            "bytes_in": _one(fields, _REQUEST_BODY_BYTES) or 0}


# config.core.v3.RequestMethod values.
_METHODS = {1: "GET", 2: "HEAD", 3: "POST", 4: "PUT", 5: "DELETE", 6: "CONNECT", 7: "OPTIONS", 8: "TRACE",
            9: "PATCH"}


def decode_entries(message: bytes) -> list[Entry]:
    """The HTTP entries of one StreamAccessLogsMessage."""
    http_logs = _one(message_fields(message), _HTTP_LOGS)
    if not isinstance(http_logs, bytes):
        return []
    entries = []
    for raw in message_fields(http_logs).get(_LOG_ENTRY, []):
        if not isinstance(raw, bytes):
            continue
        fields = message_fields(raw)
        common, request, response = _one(fields, _COMMON), _one(fields, _REQUEST), _one(fields, _RESPONSE)
        decision: dict[str, str] = {}
        seconds, status, model, attempts = None, 0, None, None
        line: dict[str, Any] = {}
        if isinstance(common, bytes):
            decision, seconds, line = _common(common)
        if isinstance(request, bytes):
            line |= _request(request)
        if isinstance(response, bytes):
            response_fields = message_fields(response)
            code = _one(response_fields, _RESPONSE_CODE)
            status = int(_one(message_fields(code), 1) or 0) if isinstance(code, bytes) else 0
            headers = string_map(response_fields.get(_RESPONSE_HEADERS, []))
            model = headers[MODEL_HEADER].decode("utf-8", "replace") if MODEL_HEADER in headers else None
            attempts = headers[ATTEMPTS_HEADER].decode("utf-8", "replace") if ATTEMPTS_HEADER in headers else None
            line |= {"details": _text(response_fields, _DETAILS),
                     "bytes_out": _one(response_fields, _RESPONSE_BODY_BYTES) or 0}
        line["attempts"] = attempts
        traceparent = None
        if isinstance(request, bytes):
            value = string_map(message_fields(request).get(_REQUEST_HEADERS, [])).get("traceparent")
            traceparent = value.decode("latin-1") if value is not None else None
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
