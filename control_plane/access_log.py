"""Envoy's access log, received over gRPC (ALS): the end of each request's decision record.

Envoy sees what the processor cannot (the status the app got and the whole request's time,
streams included), and sends one entry per request, off the request path, in batches. The
entry carries the decision the processor wrote into dynamic metadata; together they become the
request metrics. The same entries go to stdout as JSON lines (envoy/bootstrap.yaml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from envoy_data_plane.envoy.data.accesslog.v3 import HttpAccessLogEntry
from envoy_data_plane.envoy.service.accesslog.v3 import (
    AccessLogServiceBase,
    StreamAccessLogsMessage,
    StreamAccessLogsResponse,
)

from control_plane import metrics
from control_plane.headers import METADATA_NAMESPACE, MODEL_HEADER


def _decision_fields(entry: HttpAccessLogEntry) -> Mapping[str, str]:
    common = entry.common_properties
    if common is None or common.metadata is None:
        return {}
    struct = common.metadata.filter_metadata.get(METADATA_NAMESPACE)
    if struct is None:
        return {}
    return {k: v.string_value for k, v in struct.fields.items() if v.string_value is not None}


def record_entry(entry: HttpAccessLogEntry) -> None:
    fields = _decision_fields(entry)
    response = entry.response
    status = str(response.response_code or 0) if response is not None else "0"
    # The model that answered: the guarded path's header, else the processor's choice.
    answered = response.response_headers.get(MODEL_HEADER) if response is not None else None
    labels = (fields.get("app", ""), fields.get("policy", ""), fields.get("route", ""),
              answered or fields.get("model", ""))
    metrics.REQUESTS.labels(*labels, status).inc()
    common = entry.common_properties
    if common is not None and common.time_to_last_downstream_tx_byte is not None:
        metrics.REQUEST_SECONDS.labels(*labels).observe(
            common.time_to_last_downstream_tx_byte.total_seconds())


class AccessLogSink(AccessLogServiceBase):
    async def stream_access_logs(
        self, messages: AsyncIterator[StreamAccessLogsMessage]
    ) -> StreamAccessLogsResponse:
        async for message in messages:
            if message.http_logs is not None:
                for entry in message.http_logs.log_entry:
                    record_entry(entry)
        return StreamAccessLogsResponse()
