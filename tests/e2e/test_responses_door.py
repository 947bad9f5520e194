"""The Responses API door and the other things Switchyard answers for agent clients, end to end
with the official SDKs: translation to chat and Anthropic providers and the native pass-through,
previous_response_id (kept and expanded, or pinned), what translation drops (named in
x-switchyard-dropped), structured output carried to Anthropic, GET /v1/models/{id}, embeddings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from pydantic import BaseModel

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar

resp_claude = provider_fixture("resp-claude", "resp_claude", scope="module")  # Anthropic API
resp_chat = provider_fixture("resp-chat", "resp_chat", scope="module")  # chat completions
resp_native = provider_fixture("resp-native", "resp_native", scope="module")  # serves the Responses API too
_texts = itertools.count(1)


def fresh(text: str) -> str:
    return f"{text} #{next(_texts)}"


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, resp_claude: Provider, resp_chat: Provider,
            resp_native: Provider) -> Iterator[Sidecar]:
    folder = tmp_path_factory.mktemp("responses-policies")
    (folder / "default.yaml").write_text(f"""\
version: 1
router: {{kind: embedding}}
providers:
  claude: {{base_url: "{resp_claude.url}/v1", api: anthropic}}
  chat: {{base_url: "{resp_chat.url}/v1"}}
  native: {{base_url: "{resp_native.url}/v1", responses: native}}
models:
  sonnet: {{provider: claude, upstream_model: sonnet-upstream}}
  chatty: {{provider: chat, upstream_model: chatty-upstream}}
  native: {{provider: native, upstream_model: native-upstream}}
  embedder: {{provider: chat, upstream_model: embedder-upstream}}
routes:
  - {{name: coding, description: writing new code, model: chatty}}
default_model: chatty
aliases:
  claude-haiku-*: sonnet
  gpt-5*: auto
""")
    with running_sidecar("switchyard-responses", folder, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(resp_claude: Provider, resp_chat: Provider, resp_native: Provider) -> None:
    for provider in (resp_claude, resp_chat, resp_native):
        provider.reset()


def client(sidecar: Sidecar) -> openai.OpenAI:
    return openai.OpenAI(base_url=sidecar.base_url, api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize(("model", "provider_path"), [("sonnet", "/v1/messages"), ("chatty", "/v1/chat/completions"),
                                                       ("native", "/v1/responses")])
def test_responses_streamed_and_not_agree_on_every_provider_kind(
        sidecar: Sidecar, model: str, provider_path: str, resp_claude: Provider, resp_chat: Provider,
        resp_native: Provider) -> None:
    provider = {"sonnet": resp_claude, "chatty": resp_chat, "native": resp_native}[model]
    provider.control(answer="the same words either way")
    whole = client(sidecar).responses.with_raw_response.create(model=model, input=fresh("hi"))
    assert whole.headers["x-switchyard-model"] == model and whole.parse().output_text == "the same words either way"
    events = list(client(sidecar).responses.create(model=model, input=fresh("hi"), stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "the same words either way"
    assert [r["path"] for r in provider.requests()] == [provider_path] * 2


def test_a_translated_response_is_kept_and_a_follow_up_expanded(sidecar: Sidecar, resp_chat: Provider) -> None:
    first = client(sidecar).responses.create(model="chatty", input=fresh("remember the number 7"))
    follow = client(sidecar).responses.create(model="chatty", input="what was it?", previous_response_id=first.id)
    assert follow.output_text
    sent = resp_chat.requests()[-1]["body"]  # the chat provider got the whole conversation
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"].startswith("remember the number 7")
    with pytest.raises(openai.NotFoundError, match="previous_response_not_found|not found"):
        client(sidecar).responses.create(model="auto", input="x", previous_response_id="resp_nobody_kept")
    unkept = client(sidecar).responses.create(model="chatty", input=fresh("x"), store=False)
    with pytest.raises(openai.NotFoundError):
        client(sidecar).responses.create(model="chatty", input="y", previous_response_id=unkept.id)


def test_a_native_response_pins_its_follow_ups(sidecar: Sidecar, resp_native: Provider) -> None:
    first = client(sidecar).responses.create(model="native", input=fresh("hello"))
    follow = client(sidecar).responses.with_raw_response.create(model="auto", input="more",
                                                                 previous_response_id=first.id)
    assert follow.headers["x-switchyard-model"] == "native" and follow.headers["x-switchyard-decision"] == "sticky"
    sent = resp_native.requests()[-1]
    assert sent["path"] == "/v1/responses" and sent["body"]["previous_response_id"] == first.id
    assert sent["body"]["model"] == "native-upstream"  # byte for byte but for the model


def test_what_translation_drops_is_named(sidecar: Sidecar, resp_claude: Provider) -> None:
    raw = client(sidecar).responses.with_raw_response.create(
        model="sonnet", input=fresh("look it up"), tools=[{"type": "web_search"}],
        reasoning={"effort": "high"}, store=False)
    assert raw.parse().output_text.startswith("hello from resp-claude")
    assert set(raw.headers["x-switchyard-dropped"].split(",")) == {"tool:web_search", "reasoning"}
    assert "tools" not in resp_claude.requests()[-1]["body"]
    chat = client(sidecar).chat.completions.with_raw_response.create(
        model="sonnet", seed=3, messages=[{"role": "user", "content": fresh("hi")}])
    assert chat.headers["x-switchyard-dropped"] == "seed"
    plain = client(sidecar).chat.completions.with_raw_response.create(
        model="chatty", messages=[{"role": "user", "content": fresh("hi")}])
    assert "x-switchyard-dropped" not in plain.headers


class Answer(BaseModel):
    city: str
    days: int


def test_structured_output_reaches_an_anthropic_provider(sidecar: Sidecar, resp_claude: Provider) -> None:
    parsed = client(sidecar).chat.completions.parse(
        model="sonnet", messages=[{"role": "user", "content": fresh("plan a trip")}], response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(city="fake", days=1)
    sent = resp_claude.requests()[-1]["body"]
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert set(sent["output_config"]["format"]["schema"]["properties"]) == {"city", "days"}


def test_models_by_id_in_each_sdks_shape(sidecar: Sidecar) -> None:
    assert client(sidecar).models.retrieve("gpt-5.1-codex").id == "gpt-5.1-codex"  # an alias's name
    with pytest.raises(openai.NotFoundError):
        client(sidecar).models.retrieve("gpt-4-nope")
    claude = anthropic.Anthropic(base_url=sidecar.base_url.removesuffix("/v1"), api_key="unused", max_retries=0)
    assert claude.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5"
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.models.retrieve("nope")
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_embeddings_refuse_the_router_alias_and_go_to_a_named_model(sidecar: Sidecar, resp_chat: Provider) -> None:
    with pytest.raises(openai.BadRequestError, match="router alias"):
        client(sidecar).embeddings.create(model="auto", input="x")
    # The fake is no embedding server (the SDK cannot parse its answer): what matters is where it went.
    named = client(sidecar).embeddings.with_raw_response.create(model="embedder", input="x")
    assert named.headers["x-switchyard-model"] == "embedder" and named.headers["x-switchyard-decision"] == "explicit"
    [sent] = resp_chat.requests()
    assert sent["path"] == "/v1/embeddings" and '"embedder-upstream"' in sent["body"]
