"""The access-log reader, pinned to envoy-data-plane's generated types: what they write, it reads."""

from __future__ import annotations

import datetime

import pytest

from envoy_data_plane.envoy.config.core.v3 import Address, Metadata, RequestMethod, SocketAddress
from envoy_data_plane.envoy.data.accesslog.v3 import (
    AccessLogCommon,
    HttpAccessLogEntry,
    HttpRequestProperties,
    HttpResponseProperties,
    ResponseFlags,
)
from envoy_data_plane.envoy.service.accesslog.v3 import (
    StreamAccessLogsMessage,
    StreamAccessLogsMessageHttpAccessLogEntries,
    StreamAccessLogsMessageIdentifier,
)
from envoy_data_plane.google.protobuf import Struct, Value

from control_plane.observability.access_log import Entry, decode_entries
from control_plane.observability.metrics import Metrics
from control_plane.protowire import WireError


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
    assert (first.decision, first.status, first.seconds, first.answered_model) == (
        {"app": "checkout", "policy": "default", "route": "code", "model": "gpt-4o"}, 200, 1.25, "backup")
    assert (second.decision, second.status, second.answered_model) == (
        {"decision": "rejected", "reason": "invalid_api_key"}, 401, None)
    assert (empty.decision, empty.status, empty.seconds, empty.answered_model) == ({}, 0, None, None)
    assert decode_entries(bytes(StreamAccessLogsMessage())) == []


def test_the_request_line_has_every_field_envoy_knew() -> None:
    started = datetime.datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=datetime.timezone.utc)
    full = HttpAccessLogEntry(
        common_properties=AccessLogCommon(
            metadata=Metadata(filter_metadata={"switchyard": Struct(fields={
                "policy": Value(string_value="default"), "decision": Value(string_value="routed:embedding"),
                "router_ms": Value(string_value="4.2")})}),
            start_time=started, duration=datetime.timedelta(milliseconds=830),
            time_to_first_upstream_rx_byte=datetime.timedelta(milliseconds=120),
            upstream_remote_address=Address(socket_address=SocketAddress(address="10.0.0.7", port_value=443)),
            downstream_remote_address=Address(socket_address=SocketAddress(address="127.0.0.1", port_value=5555)),
            upstream_cluster="openai-1234", upstream_request_attempt_count=2,
            response_flags=ResponseFlags(upstream_connection_failure=True, upstream_retry_limit_exceeded=True)),
        request=HttpRequestProperties(request_method=RequestMethod.POST, path="/v1/chat/completions",
                                      request_id="r-9", request_body_bytes=321),
        response=HttpResponseProperties(response_code=200, response_body_bytes=999, response_code_details="via_upstream",
                                        response_headers={"x-switchyard-model": "gpt-4o",
                                                          "x-switchyard-attempts": "gpt-4o:200"}),
    )
    message = StreamAccessLogsMessage(http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[full]))
    [decoded] = decode_entries(bytes(message))
    assert decoded.request_id == "r-9"
    assert decoded.log_fields() == {
        "request_id": "r-9", "app": None, "policy": "default", "policy_version": None, "route": None,
        "model": "gpt-4o", "requested_model": None, "decision": "routed:embedding", "reason": None,
        "router_ms": "4.2", "timestamp": "2026-11-30T12:00:01.250Z", "provider_cluster": "openai-1234",
        "upstream_host": "10.0.0.7:443", "upstream_attempts": 2, "response_flags": "UF,URX", "duration_ms": 830,
        "upstream_ms": 120, "downstream": "127.0.0.1", "method": "POST", "path": "/v1/chat/completions",
        "bytes_in": 321, "details": "via_upstream", "bytes_out": 999, "attempts": "gpt-4o:200", "status": 200}


def test_an_entry_counts_the_model_that_answered() -> None:
    labels = ("checkout", "default", "code", "backup", "200")
    metrics = Metrics()
    entry_ = Entry({"app": "checkout", "policy": "default", "route": "code", "model": "gpt-4o"}, 200, 0.5, "backup")
    metrics.record_request(entry_.labels(), entry_.status, entry_.seconds)
    assert metrics.requests.labels(*labels)._value.get() == 1


def test_odd_bytes_read_as_text_and_a_cut_message_is_unreadable() -> None:
    message = StreamAccessLogsMessage(http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[
        HttpAccessLogEntry(request=HttpRequestProperties(path="/v1/chat/completions", request_id="r-1"))]))
    whole = bytes(message)
    odd = whole.replace(b"r-1", b"r\xff1")  # not UTF-8: Envoy does not promise it is
    [decoded] = decode_entries(odd)
    assert decoded.request_id == "r\ufffd1" and decoded.fields["path"] == "/v1/chat/completions"
    with pytest.raises(WireError):
        decode_entries(whole[:-2])
