"""An egress proxy that keeps its promises: streams, big and odd bodies, provider failures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from control_plane.cli import parser
from control_plane.limits import MAX_BODY_BYTES
from tests.e2e.conftest import ALPHA_KEY, Provider, Sidecar
from tests.e2e.test_data_path import CLIENT_KEY, SCRIPTED, ask, client


@pytest.fixture(autouse=True)
def clean(alpha: Provider, beta: Provider, scripted_router: Provider) -> None:
    for provider in (alpha, beta, scripted_router):
        provider.reset()


def test_stream_passes_through_chunk_by_chunk(switchyard: Sidecar, alpha: Provider) -> None:
    alpha.control(chunks=4, chunk_delay_ms=300)
    started = time.monotonic()
    raw = client(switchyard).chat.completions.with_raw_response.create(
        model="alpha-chat", messages=[{"role": "user", "content": "count"}], stream=True)
    assert raw.headers["x-switchyard-decision"] == "explicit"
    arrivals, text, finish = [], "", None
    for chunk in raw.parse():
        arrivals.append(time.monotonic() - started)
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    assert text == "alpha-0 alpha-1 alpha-2 alpha-3 " and finish == "stop"
    # Not buffered: the first chunk arrived long before the last (chunks are 300 ms apart).
    assert arrivals[-1] - arrivals[0] > 0.6


def test_stream_cut_upstream_surfaces_as_an_error(switchyard: Sidecar, alpha: Provider) -> None:
    alpha.control(chunks=5, die_after_chunks=2)
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in client(switchyard).chat.completions.create(
                model="alpha-chat", messages=[{"role": "user", "content": "count"}], stream=True):
            received.append(chunk)
    assert len(received) <= 2  # what arrived before the cut, and never a clean end


def big_image_message(total_bytes: int) -> list[dict]:
    payload = base64.b64encode(b"\x89PNG" * ((total_bytes * 3 // 4) // 4)).decode()
    return [{"role": "user", "content": [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{payload}"}},
    ]}]


def in_chunks(data: bytes) -> Iterator[bytes]:
    """A body sent without a content-length (chunked), 64 KiB at a time."""
    return (data[i:i + 65536] for i in range(0, len(data), 65536))


def test_body_up_to_the_limit_routes(switchyard: Sidecar, beta: Provider, scripted_router: Provider) -> None:
    scripted_router.control(route="code_generation")
    messages = big_image_message(MAX_BODY_BYTES - 64 * 1024)
    body = json.dumps({"model": "auto", "messages": messages})
    assert MAX_BODY_BYTES - 128 * 1024 < len(body) <= MAX_BODY_BYTES
    response = httpx.post(f"{switchyard.base_url}/chat/completions", content=body,
                          headers={"content-type": "application/json", **SCRIPTED}, timeout=60)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["x-switchyard-model"] == "beta-chat"
    [seen] = beta.requests()
    assert seen["body"]["messages"] == messages  # the image arrived whole


def test_body_over_the_limit_is_an_openai_413(switchyard: Sidecar, alpha: Provider) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(switchyard).chat.completions.create(model="auto", messages=big_image_message(MAX_BODY_BYTES + 1024))
    assert caught.value.status_code == 413
    error = caught.value.body
    assert error["code"] == "request_too_large" and "8 MiB" in error["message"]
    # Without a content-length (chunked), and far over the limit: still a 413, nothing forwarded.
    # Several times: a body that outran the processor's header answer used to hang about one
    # request in two (envoy_config._door_routes), so a hang shows up as a timeout here.
    body = json.dumps({"model": "auto", "messages": big_image_message(3 * MAX_BODY_BYTES)}).encode()
    for _ in range(4):
        response = httpx.post(f"{switchyard.base_url}/chat/completions", content=in_chunks(body),
                              headers={"content-type": "application/json"}, timeout=20)
        assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert alpha.requests() == []


def test_an_upload_over_the_body_limit_streams_through_unread(switchyard: Sidecar, alpha: Provider) -> None:
    # Only a door's body is read, and held to MAX_BODY_BYTES; a request on another path goes to the
    # default model's provider unread, as it arrives, so a file three times the limit gets through
    # whole: with a content-length (the openai client), and chunked.
    data = os.urandom(3 * MAX_BODY_BYTES)
    raw = client(switchyard).files.with_raw_response.create(file=("big.jsonl", data), purpose="batch")
    assert raw.headers["x-switchyard-decision"] == "passthrough"
    assert raw.parse().bytes == len(data)
    boundary = "switchyard-test-boundary"
    form = (f'--{boundary}\r\ncontent-disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="chunked.jsonl"\r\n'
            "content-type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    response = httpx.post(f"{switchyard.base_url}/files", content=in_chunks(form),
                          headers={"content-type": f"multipart/form-data; boundary={boundary}",
                                   "authorization": f"Bearer {CLIENT_KEY}"}, timeout=60)
    assert response.status_code == 200 and response.json()["bytes"] == len(data)
    digest = hashlib.sha256(data).hexdigest()
    seen = alpha.requests()
    assert [(r["path"], r["body"]["filename"], r["body"]["sha256"]) for r in seen] == [
        ("/v1/files", "big.jsonl", digest), ("/v1/files", "chunked.jsonl", digest)]
    assert all(r["headers"]["Authorization"] == f"Bearer {ALPHA_KEY}" for r in seen)  # the provider's key


def test_everything_but_model_passes_unchanged(switchyard: Sidecar, alpha: Provider) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": -3}"},
    ]
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]
    client(switchyard).chat.completions.create(
        model="alpha-chat", messages=messages, tools=tools, n=2, response_format={"type": "json_object"},
        temperature=0.25, extra_body={"vendor_extension": {"nested": [1, 2.5, "é"]}})
    [seen] = alpha.requests()
    body = seen["body"]
    assert body.pop("model") == "alpha-upstream-model"
    assert body == {"messages": messages, "tools": tools, "n": 2, "response_format": {"type": "json_object"},
                    "temperature": 0.25, "vendor_extension": {"nested": [1, 2.5, "é"]}}


@pytest.mark.parametrize("status,error,tries", [(429, openai.RateLimitError, 1), (500, openai.InternalServerError, 2),
                                                (503, openai.InternalServerError, 2)])
def test_provider_errors_without_fallback_reach_the_app_unchanged(
        switchyard: Sidecar, alpha: Provider, beta: Provider, status: int, error: type, tries: int) -> None:
    """A model with no fallbacks takes the direct path: Envoy retries a 5xx once; a 429 goes to the
    app (its SDK honours Retry-After); nothing is sent to another model."""
    alpha.control(status=status)
    with pytest.raises(error) as caught:
        ask(switchyard, "alpha-chat")
    assert caught.value.status_code == status
    assert caught.value.body["message"] == "alpha failed"  # the provider's own body
    assert len(alpha.requests()) == tries and beta.requests() == []  # no silent retry elsewhere


def test_unreachable_provider_is_an_openai_503_naming_it(switchyard: Sidecar) -> None:
    response = httpx.post(f"{switchyard.base_url}/chat/completions",
                          json={"model": "ghost-chat", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "provider_unreachable" and "ghost-" in error["message"]
    assert response.headers["x-switchyard-model"] == "ghost-chat"


@pytest.mark.parametrize("payload", [b"\xff\xfe\x00{", b"[1, 2, 3]", b'{"model": "auto", "messages": {"a": 1}}',
                                     b'{"model": "auto", "messages": [{"content": "no role"}]}'])
def test_malformed_bodies_are_openai_400s(switchyard: Sidecar, payload: bytes) -> None:
    response = httpx.post(f"{switchyard.base_url}/chat/completions", content=payload,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_secrets_never_in_error_bodies_or_headers(switchyard: Sidecar, alpha: Provider) -> None:
    alpha.control(status=500)
    response = httpx.post(f"{switchyard.base_url}/chat/completions",
                          json={"model": "alpha-chat", "messages": [{"role": "user", "content": "x"}]},
                          headers={"authorization": f"Bearer {CLIENT_KEY}"})
    exposed = response.text + json.dumps(dict(response.headers))
    from tests.e2e.conftest import ALPHA_KEY, BETA_KEY
    for secret in (ALPHA_KEY, BETA_KEY, CLIENT_KEY):
        assert secret not in exposed


def test_upstream_cannot_forge_decision_headers(switchyard: Sidecar, alpha: Provider) -> None:
    alpha.control(headers={"x-switchyard-route": "forged", "x-switchyard-router-ms": "0.1",
                           "x-switchyard-decision": "forged"})
    headers, _ = ask(switchyard, "alpha-chat")
    assert headers["x-switchyard-route"] == "other" and headers["x-switchyard-decision"] == "explicit"
    assert "x-switchyard-router-ms" not in headers  # explicit: the router was not asked


def test_admin_and_control_ports_bind_localhost_by_default() -> None:
    args = parser().parse_args(["up"])
    for address in (args.admin, args.processor, args.envoy_admin, args.listen):
        assert address.startswith("127.0.0.1:"), address
