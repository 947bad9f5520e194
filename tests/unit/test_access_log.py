"""The access-log reader, pinned to envoy-data-plane's generated types: what they write, it reads."""

from __future__ import annotations

import datetime

from envoy_data_plane.envoy.config.core.v3 import Metadata
from envoy_data_plane.envoy.data.accesslog.v3 import (
    AccessLogCommon,
    HttpAccessLogEntry,
    HttpResponseProperties,
)
from envoy_data_plane.envoy.service.accesslog.v3 import (
    StreamAccessLogsMessage,
    StreamAccessLogsMessageHttpAccessLogEntries,
    StreamAccessLogsMessageIdentifier,
)
from envoy_data_plane.google.protobuf import Struct, Value

from control_plane.observability.access_log import Entry, decode_entries, record
from control_plane.observability.metrics import Metrics


def entry(fields: dict[str, str], status: int, seconds: float, model: str | None) -> HttpAccessLogEntry:
    struct = Struct(fields={k: Value(string_value=v) for k, v in fields.items()})
    return HttpAccessLogEntry(
        common_properties=AccessLogCommon(
            metadata=Metadata(filter_metadata={"switchyard": struct, "other": Struct(fields={})}),
            time_to_last_downstream_tx_byte=datetime.timedelta(seconds=seconds),
            upstream_cluster="openai-1234",
        ),
        response=HttpResponseProperties(
            response_code=status, response_headers={"x-switchyard-model": model} if model else {}),
    )


def test_reads_what_envoy_data_plane_writes() -> None:
    message = StreamAccessLogsMessage(
        identifier=StreamAccessLogsMessageIdentifier(log_name="switchyard"),
        http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[
            entry({"app": "checkout", "policy": "default", "route": "code", "model": "gpt-4o"}, 200, 1.25, "backup"),
            entry({"decision": "rejected", "reason": "invalid_api_key"}, 401, 0.002, None),
            HttpAccessLogEntry(),
        ]),
    )
    first, second, empty = decode_entries(bytes(message))
    assert first == Entry({"app": "checkout", "policy": "default", "route": "code", "model": "gpt-4o"},
                          200, 1.25, "backup")
    assert second == Entry({"decision": "rejected", "reason": "invalid_api_key"}, 401, 0.002, None)
    assert empty == Entry({}, 0, None, None)
    assert decode_entries(bytes(StreamAccessLogsMessage())) == []


def test_an_entry_counts_the_model_that_answered() -> None:
    labels = ("checkout", "default", "code", "backup", "200")
    metrics = Metrics()
    record(Entry({"app": "checkout", "policy": "default", "route": "code", "model": "gpt-4o"}, 200, 0.5, "backup"),
           metrics)
    assert metrics.requests.labels(*labels)._value.get() == 1
