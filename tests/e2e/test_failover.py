"""Failover through real Envoy, with the `openai` client as the app: fallback chains, retries by
cause (Retry-After honoured), first-token and stall limits, checked streams, context-window
fallbacks and circuit breaking. The primary provider is the scripted misbehaving fake
(harness/fake_provider/server.py `script`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import ALPHA_KEY, BETA_KEY, Provider, Sidecar, provider_fixture, running_sidecar
from harness.processes import http_json

APP_KEY = "sk-app-never-forwarded"


def failover_policy(flaky: Provider, spare: Provider, outage: Provider) -> str:
    return f"""\
version: 1
router: {{endpoint: "http://127.0.0.1:1/v1", model: Arch-Router}}   # never asked: models are named
failover:                  # small limits, so that the tests are quick
  first_token_s: 1.5
  response_s: 2
  stall_s: 1
  backoff_s: 0.2
  circuit_failures: 1000   # no circuit opens by accident; `outage-primary` tests circuits
providers:
  flaky: {{base_url: "{flaky.url}/v1", api_key_env: ALPHA_KEY}}
  spare: {{base_url: "{spare.url}/v1", api_key_env: BETA_KEY}}
  outage: {{base_url: "{outage.url}/v1", api_key_env: ALPHA_KEY}}
  nowhere: {{base_url: "http://127.0.0.1:1/v1"}}
models:
  primary:
    provider: flaky
    upstream_model: flaky-model
    fallbacks: [backup]
    context_window_fallbacks: [long]
  short-context: {{provider: flaky, upstream_model: flaky-short, fallbacks: [backup]}}
  backup: {{provider: spare, upstream_model: spare-model}}
  long: {{provider: spare, upstream_model: spare-long}}
  solo: {{provider: flaky, upstream_model: flaky-solo}}              # no fallback: direct path
  storyteller: {{provider: flaky, upstream_model: flaky-story, fallbacks: [continuer]}}
  continuer: {{provider: spare, upstream_model: spare-continuer, assistant_prefix: vllm}}
  outage-primary:
    provider: outage
    upstream_model: outage-model
    fallbacks: [backup]
    failover: {{circuit_failures: 2, circuit_cooldown_s: 2}}
default_model: primary
"""


flaky = provider_fixture("flaky", scope="module")  # the misbehaving primary
spare = provider_fixture("spare", scope="module")  # the fallbacks
outage = provider_fixture("outage", scope="module")  # taken down and brought back


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, flaky: Provider, spare: Provider,
            outage: Provider) -> Iterator[Sidecar]:
    policies = tmp_path_factory.mktemp("failover-policies")
    (policies / "default.yaml").write_text(failover_policy(flaky, spare, outage))
    with running_sidecar("switchyard-failover", policies, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(flaky: Provider, spare: Provider) -> None:
    flaky.reset()
    spare.reset()


def app(sidecar: Sidecar) -> openai.OpenAI:
    # max_retries=0: every retry seen here is Switchyard's, none the SDK's.
    return openai.OpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0, timeout=30)


def ask(sidecar: Sidecar, model: str = "primary") -> tuple[httpx.Headers, openai.types.chat.ChatCompletion]:
    raw = app(sidecar).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello"}])
    return raw.headers, raw.parse()


def served_by_backup(headers: httpx.Headers, completion: openai.types.chat.ChatCompletion) -> bool:
    return (headers["x-switchyard-model"] == "backup" and completion.model == "spare-model"
            and completion.choices[0].message.content == "hello from spare")


def test_429_with_short_retry_after_waits_once_then_the_same_model_answers(
        sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    flaky.control(script=[{"status": 429, "headers": {"Retry-After": "1"}}])
    started = time.monotonic()
    headers, completion = ask(sidecar)
    elapsed = time.monotonic() - started
    assert headers["x-switchyard-attempts"] == "primary:429,primary:200"
    assert headers["x-switchyard-model"] == "primary" and completion.model == "flaky-model"
    assert 0.9 <= elapsed < 3, elapsed  # waited as asked, once
    first, second = flaky.requests()
    assert second["at"] - first["at"] >= 0.95
    assert spare.requests() == []


def test_429_with_a_retry_after_beyond_the_budget_falls_back_at_once(
        sidecar: Sidecar, flaky: Provider) -> None:
    flaky.control(script=[{"status": 429, "headers": {"Retry-After": "3600"}}])
    started = time.monotonic()
    headers, completion = ask(sidecar)
    assert time.monotonic() - started < 2
    assert headers["x-switchyard-attempts"] == "primary:429,backup:200"
    assert served_by_backup(headers, completion)
    assert len(flaky.requests()) == 1


def test_persistent_429_without_retry_after_backs_off_a_bounded_number_of_times(
        sidecar: Sidecar, flaky: Provider) -> None:
    flaky.control(status=429)
    headers, completion = ask(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:429,primary:429,primary:429,backup:200"
    assert served_by_backup(headers, completion)
    times = [r["at"] for r in flaky.requests()]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Exponential back-off with jitter from 0.2 s: [0.1, 0.2] then [0.2, 0.4].
    assert len(gaps) == 2 and gaps[0] >= 0.09 and gaps[1] >= 0.19, gaps


def test_500_once_is_retried_on_the_same_model(sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    flaky.control(script=[{"status": 500}])
    headers, completion = ask(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:500,primary:200"
    assert completion.choices[0].message.content == "hello from flaky"
    assert spare.requests() == []


def test_persistent_503_falls_back_with_the_right_model_and_key_per_attempt(
        sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    flaky.control(status=503)
    headers, completion = ask(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:503,primary:503,backup:200"
    assert served_by_backup(headers, completion)
    assert headers["x-switchyard-decision"] == "explicit" and headers["x-switchyard-policy"] == "default"
    to_flaky, [to_spare] = flaky.requests(), spare.requests()
    assert len(to_flaky) == 2  # one retry, then the fallback: bounded
    assert {r["body"]["model"] for r in to_flaky} == {"flaky-model"}
    assert {r["headers"]["Authorization"] for r in to_flaky} == {f"Bearer {ALPHA_KEY}"}
    assert to_spare["body"]["model"] == "spare-model"
    assert to_spare["headers"]["Authorization"] == f"Bearer {BETA_KEY}"
    assert to_spare["body"]["messages"] == [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("behaviour,attempts", [
    ({"reset": True}, "primary:reset,primary:reset,backup:200"),
    ({"hang": True}, "primary:timeout,backup:200"),
])
def test_reset_or_silence_before_headers_falls_back_within_the_limits(
        sidecar: Sidecar, flaky: Provider, behaviour: dict, attempts: str) -> None:
    flaky.control(**behaviour)
    started = time.monotonic()
    headers, completion = ask(sidecar)
    assert headers["x-switchyard-attempts"] == attempts
    assert served_by_backup(headers, completion)
    assert time.monotonic() - started < 2 + 1.5  # response_s (2 s), plus room for a loaded machine


def stream_text(sidecar: Sidecar, model: str = "primary") -> tuple[httpx.Headers, str, str | None]:
    stream = app(sidecar).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "count"}], stream=True)
    text, finish = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    return stream.response.headers, text, finish


def test_slow_first_token_falls_back_and_the_app_sees_nothing_of_the_primary(
        sidecar: Sidecar, flaky: Provider) -> None:
    flaky.control(first_event_ms=3000)  # headers at once, then silence past first_token_s
    headers, text, finish = stream_text(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:timeout,backup:200"
    assert headers["x-switchyard-model"] == "backup"
    assert text == "spare-0 spare-1 spare-2 spare-3 spare-4 " and finish == "stop"


@pytest.mark.parametrize("behaviour", [
    {"die_after_chunks": 2}, {"stall_after_chunks": 2}, {"malformed_after_chunks": 2}, {"no_done": True},
], ids=["cut", "stall", "malformed", "no-done"])
def test_a_broken_stream_is_an_error_never_a_clean_truncated_answer(
        sidecar: Sidecar, flaky: Provider, behaviour: dict) -> None:
    flaky.control(chunk_delay_ms=100, **behaviour)  # the app has the first events when it breaks
    received = []
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        for chunk in app(sidecar).chat.completions.create(
                model="primary", messages=[{"role": "user", "content": "count"}], stream=True):
            received.append(chunk)
    assert len(received) >= 2  # it broke mid-answer (after the first events reached the app)
    assert all(c.model == "flaky-model" for c in received)


ANSWER = "the quick brown fox jumps over the lazy dog"


@pytest.mark.parametrize("behaviour", [
    {"die_after_chunks": 3}, {"stall_after_chunks": 3}, {"malformed_after_chunks": 3}, {"no_done": True},
], ids=["cut", "stall", "malformed", "no-done"])
def test_a_broken_stream_is_continued_by_a_fallback_that_takes_an_assistant_prefix(
        sidecar: Sidecar, flaky: Provider, spare: Provider, behaviour: dict) -> None:
    flaky.control(answer=ANSWER, chunk_delay_ms=100, **behaviour)
    spare.control(answer=ANSWER)
    stream = app(sidecar).chat.completions.create(
        model="storyteller", messages=[{"role": "user", "content": "tell me"}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " ".join(ANSWER.split())  # the whole answer, once
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Honest about who wrote what: every chunk names the model that produced it.
    writers = [c.model for c in chunks]
    assert writers[0] == "flaky-story" and writers[-1] == "spare-continuer"
    [continued] = spare.requests()
    partial = continued["body"]["messages"][-1]
    assert partial["role"] == "assistant" and ANSWER.startswith(partial["content"].strip())
    assert continued["body"]["continue_final_message"] is True
    assert continued["body"]["add_generation_prompt"] is False
    assert continued["body"]["model"] == "spare-continuer"


def test_a_healthy_stream_slower_than_the_stall_limit_in_total_is_not_cut(
        sidecar: Sidecar, flaky: Provider) -> None:
    flaky.control(chunks=6, chunk_delay_ms=600)  # 3.6 s in all, never silent for 1 s
    headers, text, finish = stream_text(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:200"
    assert text == "".join(f"flaky-{i} " for i in range(6)) and finish == "stop"


def test_content_filter_refusal_is_passed_through_without_retry(
        sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    error = {"message": "refused by the content filter", "type": "invalid_request_error",
             "code": "content_filter", "param": None}
    flaky.control(status=400, error=error)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(sidecar)
    assert caught.value.code == "content_filter"
    assert caught.value.response.headers["x-switchyard-attempts"] == "primary:400"
    assert len(flaky.requests()) == 1 and spare.requests() == []


CONTEXT_ERROR = {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error",
                 "code": "context_length_exceeded", "param": "messages"}


def test_context_length_error_without_context_window_fallbacks_is_passed_through(
        sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    flaky.control(status=400, error=CONTEXT_ERROR)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(sidecar, "short-context")
    assert caught.value.code == "context_length_exceeded"
    assert len(flaky.requests()) == 1 and spare.requests() == []  # `fallbacks` are not for this


def test_context_length_error_goes_to_the_bigger_model_once(
        sidecar: Sidecar, flaky: Provider, spare: Provider) -> None:
    flaky.control(status=400, error=CONTEXT_ERROR)
    headers, completion = ask(sidecar)
    assert headers["x-switchyard-attempts"] == "primary:400,long:200"
    assert headers["x-switchyard-model"] == "long" and completion.model == "spare-long"
    assert len(flaky.requests()) == 1  # the same model is not asked twice
    assert [r["body"]["model"] for r in spare.requests()] == ["spare-long"]


@pytest.mark.parametrize("stream", [False, True], ids=["direct-path", "stream"])
def test_reset_before_headers_without_fallback_is_an_openai_error(
        sidecar: Sidecar, flaky: Provider, stream: bool) -> None:
    flaky.control(reset=True)
    response = httpx.post(f"{sidecar.base_url}/chat/completions", timeout=30, json={
        "model": "solo", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] in ("provider_reset", "provider_unreachable") and error["message"]
    assert "upstream connect error" not in response.text
    assert len(flaky.requests()) == 2  # one retry, as for any reset before headers


def test_a_dead_provider_is_skipped_while_its_circuit_is_open_and_used_again_after(
        sidecar: Sidecar, outage: Provider, spare: Provider) -> None:
    client = app(sidecar)

    def one() -> tuple[httpx.Headers, float]:
        started = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(
            model="outage-primary", messages=[{"role": "user", "content": "hi"}])
        return raw.headers, time.monotonic() - started

    headers, _ = one()
    assert headers["x-switchyard-model"] == "outage-primary"
    outage.process.stop()  # down: connections refused
    down_until = time.monotonic() + 20
    during = []
    while time.monotonic() < down_until:
        during.append(one())
        time.sleep(0.5)
    state = http_json("GET", f"{sidecar.admin_url}/policies")
    circuit = state["policies"]["default"]["models"]["outage-primary"]["circuit"]
    assert circuit["state"] in ("open", "half_open")
    metrics = httpx.get(f"{sidecar.admin_url}/metrics").text
    assert 'switchyard_circuit_open{provider="outage",upstream_model="outage-model"} 1.0' in metrics
    outage.process.restart()
    outage.process.wait_http(f"{outage.url}/_test/requests", 30)
    recovered_at = time.monotonic()
    after = []
    while time.monotonic() - recovered_at < 10 and not any(
            h["x-switchyard-model"] == "outage-primary" for h, _ in after):
        after.append(one())
        time.sleep(0.5)

    # Every request during the outage was served, by the fallback.
    assert all(h["x-switchyard-model"] == "backup" for h, _ in during)
    skipped = [(h, s) for h, s in during if h["x-switchyard-attempts"].startswith("outage-primary:circuit_open")]
    probes = [h for h, _ in during if not h["x-switchyard-attempts"].startswith("outage-primary:circuit_open")]
    assert len(skipped) >= len(during) // 2, [h["x-switchyard-attempts"] for h, _ in during]
    # A skipped request went straight to the fallback: it never waited on the dead provider.
    assert all(h["x-switchyard-attempts"] == "outage-primary:circuit_open,backup:200" for h, _ in skipped)
    assert len(probes) <= 2 + 20 / 2  # the first failures, then at most one probe per cool-down
    # Back on the primary within 10 s of its recovery.
    assert after and after[-1][0]["x-switchyard-model"] == "outage-primary"
    state = http_json("GET", f"{sidecar.admin_url}/policies")
    assert state["policies"]["default"]["models"]["outage-primary"]["circuit"]["state"] == "closed"
