"""Traces, through real Envoy, into an in-process OTLP/HTTP receiver. One trace per request, joined
by every part: the app's span -> Envoy's ingress span -> Envoy's ext_proc call -> Switchyard's
decision span -> the router call (and `traceparent` at the router model server); the provider
continues it (per attempt on the guarded path). GenAI attributes; the trace id in our log line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar
from tests.support.otlp_receiver import OtlpReceiver, Span

traced = provider_fixture("traced", scope="module")
traced_router = provider_fixture("traced-router", "traced_router", scope="module")
APP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, traced: Provider, traced_router: Provider,
            receiver: OtlpReceiver) -> Iterator[Sidecar]:
    policies = tmp_path_factory.mktemp("tracing-policies")
    (policies / "default.yaml").write_text(f"""\
version: 1
router: {{endpoint: "{traced_router.url}/v1", model: Arch-Router, timeout_ms: 2000}}
providers:
  openai: {{base_url: "{traced.url}/v1", api_key_env: ALPHA_KEY}}
models:
  gpt-4o: {{provider: openai, upstream_model: gpt-4o-2024}}
  backup: {{provider: openai, upstream_model: backup-up}}
  guarded: {{provider: openai, upstream_model: guarded-up, fallbacks: [backup]}}
routes:
  - {{name: code, description: writing code, model: gpt-4o}}
default_model: gpt-4o
""")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "switchyard-under-test"}
    with running_sidecar("switchyard-tracing", policies, logs, env=env) as running:
        yield running


def ask(sidecar: Sidecar, model: str, span_id: str) -> httpx.Response:
    headers = {"traceparent": f"00-{APP_TRACE}-{span_id}-01"}  # the app's own trace
    body = {"model": model, "messages": [{"role": "user", "content": "write a sort function"}]}
    response = httpx.post(f"{sidecar.base_url}/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def one_span(receiver: OtlpReceiver, name: str, parent: str, cluster: str | None = None) -> Span:
    deadline = time.monotonic() + 20  # Envoy's tracer flushes every 5 s
    while True:
        found = [s for s in receiver.named(name, APP_TRACE) if s.parent_id == parent
                 and (cluster is None or s.attributes.get("upstream_cluster") == cluster)]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(found) == 1, [(s.name, s.parent_id) for s in receiver.spans]
    return found[0]


def traceparent(provider: Provider) -> tuple[str, str]:
    [seen] = provider.requests()
    header = {k.lower(): v for k, v in seen["headers"].items()}["traceparent"]
    _, trace_id, parent, _ = header.split("-")
    return trace_id, parent


def decision_span(receiver: OtlpReceiver, app_span: str) -> tuple[Span, Span]:
    """Envoy's ingress span for the request, and Switchyard's decision span inside its trace."""
    ingress = one_span(receiver, "ingress", app_span)
    assert ingress.service == "switchyard-under-test-envoy"
    ext_proc = one_span(receiver, "async envoy.service.ext_proc.v3.ExternalProcessor.Process egress",
                        ingress.span_id, "switchyard_processor")
    return ingress, one_span(receiver, "switchyard.decision", ext_proc.span_id)


def test_a_routed_request_is_one_trace_with_the_decision_and_router_call_inside(
        sidecar: Sidecar, receiver: OtlpReceiver, traced: Provider, traced_router: Provider) -> None:
    traced.reset()
    traced_router.reset()
    traced_router.control(route="code")
    response = ask(sidecar, "auto", APP_SPAN)
    ingress, decision = decision_span(receiver, APP_SPAN)
    assert decision.service == "switchyard-under-test"
    assert decision.attributes["gen_ai.operation.name"] == "chat"
    assert decision.attributes["gen_ai.request.model"] == "auto"
    assert decision.attributes["gen_ai.provider.name"] == "openai"
    assert (decision.attributes["switchyard.route"], decision.attributes["switchyard.decision"],
            decision.attributes["switchyard.model"]) == ("code", "routed:arch-router", "gpt-4o")
    router = one_span(receiver, "switchyard.router", decision.span_id)
    assert router.attributes["switchyard.route"] == "code"
    # The router model server and the provider continue the same trace: the provider call is
    # Envoy's own (its ingress span is the parent).
    assert traceparent(traced_router) == (APP_TRACE, router.span_id)
    assert traceparent(traced) == (APP_TRACE, ingress.span_id)
    # Our decision log line names the trace.
    request_id = response.headers["x-request-id"]
    lines = [json.loads(line) for line in sidecar.process.log_tail(10**7).splitlines()
             if line.startswith("{") and request_id in line]
    assert any(line.get("event") == "decision" and line.get("trace_id") == APP_TRACE for line in lines)
    # What the answer used joins the same trace (OTel GenAI attributes), from the provider's counts.
    deadline = time.monotonic() + 20
    while not receiver.named("switchyard.usage", APP_TRACE) and time.monotonic() < deadline:
        time.sleep(0.1)
    [usage] = receiver.named("switchyard.usage", APP_TRACE)
    assert (usage.attributes["gen_ai.usage.input_tokens"], usage.attributes["gen_ai.usage.output_tokens"]) == (1, 1)


def test_each_guarded_attempt_is_a_span_the_provider_continues(
        sidecar: Sidecar, receiver: OtlpReceiver, traced: Provider) -> None:
    traced.reset()
    app_span = "00f067aa0ba902b8"
    ask(sidecar, "guarded", app_span)
    ingress, decision = decision_span(receiver, app_span)
    assert decision.attributes["switchyard.model"] == "guarded"
    attempt = one_span(receiver, "switchyard.attempt", ingress.span_id)  # Envoy called the guarded path
    assert attempt.attributes["gen_ai.request.model"] == "guarded-up"
    assert attempt.attributes["switchyard.attempt.result"] == "200"
    assert traceparent(traced) == (APP_TRACE, attempt.span_id)
