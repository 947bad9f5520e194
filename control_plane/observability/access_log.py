"""Envoy's access log, received over gRPC (ALS): the end of each request's decision record.

Envoy sees what the processor cannot (the status the app got and the whole request's time,
streams included), and sends one entry per request, off the request path, in batches. The
entry carries the decision the processor wrote into dynamic metadata; together they become the
request metrics. The same entries go to stderr as JSON lines (envoy/bootstrap.yaml).

Entries are read with control_plane/protowire.py, only the fields used: envoy-data-plane's
classes took ~0.3 ms an entry, which held the event loop for tens of ms per batch under load.
Field numbers are from envoy/service/accesslog/v3/als.proto and envoy/data/accesslog/v3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpclib.const
import structlog
from envoy_data_plane.envoy.service.accesslog.v3 import AccessLogServiceBase
from grpclib.server import Stream

from control_plane.headers import METADATA_NAMESPACE, MODEL_HEADER
from control_plane.observability.metrics import Metrics
from control_plane.protowire import WireError, message_fields, string_map

log = structlog.get_logger("switchyard.access_log")
STREAM_METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
_HTTP_LOGS, _LOG_ENTRY = 2, 1  # StreamAccessLogsMessage.http_logs, HTTPAccessLogEntries.log_entry
_COMMON, _RESPONSE = 1, 4  # HTTPAccessLogEntry
_LAST_TX_BYTE, _METADATA = 12, 17  # AccessLogCommon: time_to_last_downstream_tx_byte, metadata
_RESPONSE_CODE, _RESPONSE_HEADERS = 1, 4  # HTTPResponseProperties
_STRING_VALUE = 3  # google.protobuf.Value.string_value


@dataclass(frozen=True)
class Entry:
    decision: Mapping[str, str]  # the processor's dynamic metadata (namespace "switchyard")
    status: int
    seconds: float | None  # first byte in to last byte out
    answered_model: str | None  # x-switchyard-model on the response


def _one(fields: dict[int, list[int | bytes]], number: int) -> Any:
    values = fields.get(number)
    return values[-1] if values else None


def _decision(metadata: bytes) -> dict[str, str]:
    filter_metadata = string_map(message_fields(metadata).get(1, []))
    struct = filter_metadata.get(METADATA_NAMESPACE)
    if struct is None:
        return {}
    out = {}
    for key, value in string_map(message_fields(struct).get(1, [])).items():
        text = _one(message_fields(value), _STRING_VALUE)
        if isinstance(text, bytes):
            out[key] = text.decode("utf-8", "replace")
    return out


def _duration_s(raw: bytes) -> float:
    fields = message_fields(raw)
    seconds, nanos = _one(fields, 1) or 0, _one(fields, 2) or 0
    return float(seconds) + float(nanos) / 1e9


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
        common, response = _one(fields, _COMMON), _one(fields, _RESPONSE)
        decision, seconds, status, model = {}, None, 0, None
        if isinstance(common, bytes):
            common_fields = message_fields(common)
            metadata, last = _one(common_fields, _METADATA), _one(common_fields, _LAST_TX_BYTE)
            decision = _decision(metadata) if isinstance(metadata, bytes) else {}
            seconds = _duration_s(last) if isinstance(last, bytes) else None
        if isinstance(response, bytes):
            response_fields = message_fields(response)
            code = _one(response_fields, _RESPONSE_CODE)
            status = int(_one(message_fields(code), 1) or 0) if isinstance(code, bytes) else 0
            headers = string_map(response_fields.get(_RESPONSE_HEADERS, []))
            model = headers[MODEL_HEADER].decode("utf-8", "replace") if MODEL_HEADER in headers else None
        entries.append(Entry(decision, status, seconds, model))
    return entries


def record(entry: Entry, metrics: Metrics) -> None:
    fields = entry.decision
    labels = (fields.get("app", ""), fields.get("policy", ""), fields.get("route", ""),
              entry.answered_model or fields.get("model", ""))
    metrics.requests.labels(*labels, str(entry.status)).inc()
    if entry.seconds is not None:
        metrics.request_seconds.labels(*labels).observe(entry.seconds)


class AccessLogSink(AccessLogServiceBase):
    """Envoy's ALS client: a stream of batches; nothing is ever answered until it closes."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def handle(self, stream: Stream[bytes, bytes]) -> None:
        async for message in stream:
            try:
                for entry in decode_entries(message):
                    record(entry, self.metrics)
            except WireError:
                log.warning("access_log_unreadable", size=len(message))
        await stream.send_message(b"")  # StreamAccessLogsResponse {}

    def __mapping__(self) -> dict[str, Any]:
        return {STREAM_METHOD: grpclib.const.Handler(
            self.handle, grpclib.const.Cardinality.STREAM_UNARY, bytes, bytes)}
