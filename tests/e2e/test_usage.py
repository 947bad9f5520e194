"""Token usage and cost of every answered request, through real Envoy, with the openai and anthropic
SDKs: both doors (and the Responses API's), both provider kinds, streamed or not, with and without
`include_usage` asked by the app, on the direct path (read by Envoy) and the guarded path
(translation, a fallback chain). The request's log line and the metric deltas must equal the
provider's own counts, priced at the answering model's price."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar

use_chat = provider_fixture("use-chat", "use_chat", scope="module")
use_claude = provider_fixture("use-claude", "use_claude", scope="module")
use_native = provider_fixture("use-native", "use_native", scope="module")
_texts = itertools.count(1)
PRICES = {  # USD per million tokens: input, output, cached input, cache write
    "gpt": (2.5, 10.0, 1.25, None), "sonnet": (3.0, 15.0, 0.3, 3.75), "native": (1.0, 4.0, None, None)}
TOKENS = {  # what each provider reports
    "use-chat": {"input": 100, "cached": 20, "output": 50, "reasoning": 10},
    "use-claude": {"input": 80, "cached": 30, "cache_write": 5, "output": 40},
    "use-native": {"input": 60, "cached": 12, "output": 30, "reasoning": 5},
}


def price(model: str) -> str:
    inp, out, cached, write = PRICES[model]
    fields = f"input_per_mtok: {inp}, output_per_mtok: {out}"
    fields += f", cached_input_per_mtok: {cached}" if cached is not None else ""
    fields += f", cache_write_per_mtok: {write}" if write is not None else ""
    return f"price: {{{fields}}}"


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, use_chat: Provider, use_claude: Provider,
            use_native: Provider) -> Iterator[Sidecar]:
    folder = tmp_path_factory.mktemp("usage-policies")
    (folder / "default.yaml").write_text(f"""\
version: 1
router: {{kind: embedding}}
providers:
  chat: {{base_url: "{use_chat.url}/v1"}}
  claude: {{base_url: "{use_claude.url}/v1", api: anthropic}}
  native: {{base_url: "{use_native.url}/v1", responses: native}}
  strict: {{base_url: "{use_chat.url}/v1", ask_stream_usage: false}}
models:
  gpt: {{provider: chat, upstream_model: gpt-up, {price("gpt")}}}
  sonnet: {{provider: claude, upstream_model: sonnet-up, {price("sonnet")}}}
  native: {{provider: native, upstream_model: native-up, {price("native")}}}
  unpriced: {{provider: chat, upstream_model: cheap-up}}
  strict: {{provider: strict, upstream_model: gpt-up}}
  chained: {{provider: claude, upstream_model: sonnet-up, fallbacks: [gpt], {price("sonnet")}}}
routes:
  - {{name: code, description: writing new code, model: gpt}}
default_model: gpt
""")
    with running_sidecar("switchyard-usage", folder, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(use_chat: Provider, use_claude: Provider, use_native: Provider) -> None:
    for provider in (use_chat, use_claude, use_native):
        provider.reset()
        provider.control(tokens=TOKENS[provider.name])


def expected(model: str, provider: str) -> dict[str, Any]:
    """The log line's usage fields for an answer of `provider`, priced as `model`."""
    t = {"cached": 0, "cache_write": 0, "reasoning": 0, **TOKENS[provider]}
    inp, out, cached, write = PRICES[model]
    cost = (t["input"] * inp + t["cached"] * (inp if cached is None else cached)
            + t["cache_write"] * (inp if write is None else write) + t["output"] * out) / 1e6
    return {"input_tokens": t["input"] + t["cache_write"], "cached_input_tokens": t["cached"],
            "output_tokens": t["output"], "reasoning_tokens": t["reasoning"], "cost_usd": round(cost, 8)}


def access_line(sidecar: Sidecar, request_id: str, deadline_s: float = 5.0) -> dict[str, Any]:
    """The request's log line (written by the control plane once Envoy's entry and the answer's
    usage are in), polled for with a deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for line in sidecar.process.log_tail(10**7).splitlines():
            if request_id in line and '"logger": "envoy.access"' in line:
                parsed: dict[str, Any] = json.loads(line)
                return parsed
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id} within {deadline_s} s")


def metric(sidecar: Sidecar, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(f"{sidecar.admin_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def openai_client(sidecar: Sidecar) -> openai.OpenAI:
    return openai.OpenAI(base_url=sidecar.base_url, api_key="unused", max_retries=0, timeout=30)


def claude_client(sidecar: Sidecar) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sidecar.base_url.removesuffix("/v1"), api_key="unused", max_retries=0)


def chat(sidecar: Sidecar, model: str, stream: bool, include_usage: bool = False) -> tuple[str, list[Any]]:
    """A chat completion; the request id and the stream's chunks (or the answer)."""
    messages = [{"role": "user", "content": f"hello #{next(_texts)}"}]
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    raw = openai_client(sidecar).chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=stream, **options)  # type: ignore[call-overload]
    parsed = raw.parse()
    return raw.headers["x-request-id"], list(parsed) if stream else [parsed]


def messages(sidecar: Sidecar, model: str, stream: bool) -> str:
    raw = claude_client(sidecar).messages.with_raw_response.create(
        model=model, max_tokens=64, stream=stream, messages=[{"role": "user", "content": f"hi #{next(_texts)}"}])
    answer = raw.parse()
    if stream:
        list(answer)  # type: ignore[call-overload]
    return raw.headers["x-request-id"]


@pytest.mark.parametrize(("model", "provider", "stream"), [
    ("gpt", "use-chat", False), ("gpt", "use-chat", True), ("sonnet", "use-claude", False),
    ("sonnet", "use-claude", True)], ids=["direct", "direct-stream", "translated", "translated-stream"])
def test_the_chat_door_counts_the_providers_usage(sidecar: Sidecar, model: str, provider: str, stream: bool) -> None:
    before = metric(sidecar, "switchyard_tokens_total", model=model, kind="output")
    cost_before = metric(sidecar, "switchyard_cost_usd_total", model=model)
    request_id, chunks = chat(sidecar, model, stream, include_usage=stream and provider == "use-chat")
    line = access_line(sidecar, request_id)
    want = expected(model, provider)
    assert {k: line[k] for k in want} == want
    assert (line["model"], line["status"], line["decision"]) == (model, 200, "explicit")
    assert metric(sidecar, "switchyard_tokens_total", model=model, kind="output") - before == want["output_tokens"]
    assert metric(sidecar, "switchyard_cost_usd_total", model=model) - cost_before == pytest.approx(want["cost_usd"])


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_stream_whose_app_did_not_ask_for_usage_is_counted_and_the_app_sees_none(
        sidecar: Sidecar, use_chat: Provider, line_end: str) -> None:
    use_chat.control(line_end=line_end)
    request_id, chunks = chat(sidecar, "gpt", stream=True)
    assert chunks and all(c.usage is None and c.choices for c in chunks)  # no usage chunk, no usage field
    line = access_line(sidecar, request_id)
    assert {k: line[k] for k in expected("gpt", "use-chat")} == expected("gpt", "use-chat")
    assert line["attempts"] is None  # the direct path: Switchyard asked for it, Envoy hid it


def test_a_providers_error_to_such_a_stream_reaches_the_app_whole(sidecar: Sidecar, use_chat: Provider) -> None:
    use_chat.control(script=[{"status": 429, "error": {"message": "slow down", "type": "rate_limit_error"}}])
    response = httpx.post(f"{sidecar.base_url}/chat/completions", timeout=30, json={
        "model": "gpt", "stream": True, "messages": [{"role": "user", "content": f"hello #{next(_texts)}"}]})
    assert response.status_code == 429  # the hider only touches an event stream
    assert response.json()["error"]["message"] == "slow down"


def test_a_guarded_stream_hides_the_usage_its_app_did_not_ask_for(sidecar: Sidecar) -> None:
    request_id, chunks = chat(sidecar, "chained", stream=True)  # a fallback chain: the guarded path
    assert chunks and all(c.usage is None and c.choices for c in chunks)
    line = access_line(sidecar, request_id)
    assert line["attempts"] == "chained:200" and line["output_tokens"] == TOKENS["use-claude"]["output"]


def test_an_app_that_asks_for_usage_gets_the_providers_chunk(sidecar: Sidecar) -> None:
    _, chunks = chat(sidecar, "gpt", stream=True, include_usage=True)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 50


@pytest.mark.parametrize(("model", "provider"), [("sonnet", "use-claude"), ("gpt", "use-chat")],
                         ids=["pass-through", "translated"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_anthropic_door_counts_the_providers_usage(sidecar: Sidecar, model: str, provider: str,
                                                       stream: bool) -> None:
    line = access_line(sidecar, messages(sidecar, model, stream))
    want = expected(model, provider)
    assert {k: line[k] for k in want} == want


@pytest.mark.parametrize(("model", "provider"), [("native", "use-native"), ("gpt", "use-chat")])
@pytest.mark.parametrize("stream", [False, True])
def test_the_responses_door_counts_the_providers_usage(sidecar: Sidecar, model: str, provider: str,
                                                       stream: bool) -> None:
    raw = openai_client(sidecar).responses.with_raw_response.create(
        model=model, input=f"hi #{next(_texts)}", stream=stream, store=False)
    answer = raw.parse()
    if stream:
        list(answer)  # type: ignore[call-overload]
    want = expected(model, provider)
    line = access_line(sidecar, raw.headers["x-request-id"])
    assert {k: line[k] for k in want} == want


def test_a_fallback_counts_the_answering_models_usage_and_price(sidecar: Sidecar, use_claude: Provider) -> None:
    use_claude.control(status=503)  # the first model fails; its fallback answers
    request_id, _ = chat(sidecar, "chained", stream=False)
    line = access_line(sidecar, request_id)
    assert line["model"] == "gpt" and line["attempts"].endswith("gpt:200")
    want = expected("gpt", "use-chat")
    assert {k: line[k] for k in want} == want


@pytest.mark.parametrize("door", ["chat", "messages", "responses"])
@pytest.mark.parametrize("stream", [False, True])
def test_usage_cut_across_the_answers_chunks_is_read_whole(
        sidecar: Sidecar, use_chat: Provider, use_claude: Provider, use_native: Provider, door: str,
        stream: bool) -> None:
    """Envoy reads the usage as the answer passes: here every few bytes are a chunk of their own."""
    model, provider = {"chat": ("gpt", use_chat), "messages": ("sonnet", use_claude),
                       "responses": ("native", use_native)}[door]
    provider.control(piece_bytes=5)
    if door == "chat":
        request_id, _ = chat(sidecar, model, stream, include_usage=stream)
    elif door == "messages":
        request_id = messages(sidecar, model, stream)
    else:
        raw = openai_client(sidecar).responses.with_raw_response.create(
            model=model, input=f"hi #{next(_texts)}", stream=stream, store=False)
        list(raw.parse()) if stream else raw.parse()  # type: ignore[call-overload]
        request_id = raw.headers["x-request-id"]
    line = access_line(sidecar, request_id)
    want = expected(model, provider.name)
    assert {k: line[k] for k in want} == want
    assert line["attempts"] is None  # the direct path


def test_a_model_without_a_price_has_usage_but_no_cost(sidecar: Sidecar) -> None:
    request_id, _ = chat(sidecar, "unpriced", stream=False)
    line = access_line(sidecar, request_id)
    assert line["output_tokens"] == 50 and line["cost_usd"] is None


def test_the_request_line_arrives_within_a_second(sidecar: Sidecar) -> None:
    request_id, _ = chat(sidecar, "gpt", stream=False)
    answered = time.monotonic()
    access_line(sidecar, request_id, deadline_s=10)
    # Envoy's own stderr line arrived ~10 s late (its file flush); the control plane's, after
    # the access log's 0.25 s flush. Timing belongs in benchmarks; this catches the 10 s regression.
    assert time.monotonic() - answered < 3


@pytest.mark.parametrize(("model", "path", "provider"), [("gpt", "/v1/chat/completions", "use-chat"),
                                                         ("sonnet", "/v1/messages", "use-claude")],
                         ids=["chat", "messages"])
def test_an_app_that_accepts_gzip_still_has_its_usage_read(
        sidecar: Sidecar, use_chat: Provider, use_claude: Provider, model: str, path: str, provider: str) -> None:
    # Providers gzip JSON answers for a client that accepts it (the fake does as they do), and the
    # SDKs accept it: the direct path must not let that hide the usage.
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": f"hi #{next(_texts)}"}]}
    upstream = {"use-chat": use_chat, "use-claude": use_claude}[provider]
    direct = httpx.post(f"{upstream.url}{path}", json={**body, "model": "x"}, timeout=10,
                        headers={"accept-encoding": "gzip", "authorization": "Bearer test-key",
                                 "x-api-key": "test-key", "anthropic-version": "2023-06-01"})
    assert direct.headers.get("content-encoding") == "gzip"  # the fake compresses, as providers do
    answer = httpx.post(sidecar.base_url.removesuffix("/v1") + path, json=body, timeout=10,
                        headers={"accept-encoding": "gzip", "anthropic-version": "2023-06-01"})
    assert answer.status_code == 200 and answer.json()["usage"]  # the app still gets a whole answer
    sent = upstream.requests()[-1]  # after the direct one
    assert sent["body"]["messages"] == body["messages"]
    assert "gzip" not in {k.lower(): v for k, v in sent["headers"].items()}.get("accept-encoding", "")
    line = access_line(sidecar, answer.headers["x-request-id"])
    want = expected(model, provider)
    assert {k: line[k] for k in want} == want


def test_a_provider_that_refuses_stream_options_is_never_sent_any(sidecar: Sidecar, use_chat: Provider) -> None:
    use_chat.control(rejects=["stream_options"])  # as some OpenAI-compatible servers do
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        chat(sidecar, "gpt", stream=True)  # asked for usage by Switchyard: refused
    # With `ask_stream_usage: false`, neither the direct path nor a translation sends it.
    request_id, chunks = chat(sidecar, "strict", stream=True)
    assert chunks and access_line(sidecar, request_id)["status"] == 200
    request_id = messages(sidecar, "strict", stream=True)  # the Messages door, translated
    assert access_line(sidecar, request_id)["status"] == 200
    sent = [r for r in use_chat.requests() if r["body"].get("stream")]
    assert [("stream_options" in r["body"]) for r in sent] == [True, False, False]
