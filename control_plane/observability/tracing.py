"""OpenTelemetry traces: off unless the standard OTLP endpoint variables are set.

`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns tracing on, spans
go there as OTLP over HTTP (protobuf), and the other `OTEL_*` variables (service name, headers,
sampler, `OTEL_SDK_DISABLED`) apply as the SDK defines them. With tracing off, the API's no-op
tracer costs a few microseconds per request and nothing is injected into any request.

Attribute names follow the GenAI semantic conventions where they apply (`gen_ai.*`), plus
`switchyard.*` for what is ours.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

TRACER = trace.get_tracer("switchyard")
_enabled = False


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure(service_name: str = "switchyard") -> bool:
    """Install the SDK with an OTLP/HTTP exporter when the environment asks for traces."""
    global _enabled
    if not wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled


def extract(headers: Mapping[str, str]) -> Context | None:
    """The caller's trace context (W3C `traceparent`), when tracing is on."""
    return propagate.extract(headers) if _enabled else None


def inject() -> dict[str, str]:
    """`traceparent` (and `tracestate`) for the current span, to send on; empty when off."""
    carrier: dict[str, str] = {}
    if _enabled:
        propagate.inject(carrier)
    return carrier


def trace_id() -> str | None:
    """The current trace id (hex), for log lines."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
