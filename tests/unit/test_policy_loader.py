"""Policy validation: every broken policy is rejected with `file:line: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.apis.table import APIS, OPENAI
from control_plane.policy.loader import PolicyError, load_policy_set, parse_policy

GOOD = """\
version: 1
router:
  endpoint: http://127.0.0.1:8000/v1
  model: Arch-Router
  timeout_ms: 400
providers:
  openai:
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
  local:
    base_url: http://127.0.0.1:8001/v1
models:
  gpt-4o: {provider: openai}
  small: {provider: local, upstream_model: SmolLM2-135M-Instruct}
routes:
  - name: code_generation
    description: generating new code
    model: gpt-4o
default_model: small
"""


def edit(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


BROKEN = [
    # (id, text, expected line, expected message fragment)
    ("unknown top-level key", GOOD + "retries: 3\n", 20, "retries: unknown key"),
    ("unknown router key", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  temperature: 0\n"),
     6, "router.temperature: unknown key"),
    ("unknown provider key", edit("    api_key_env: OPENAI_API_KEY\n",
                                  "    api_key_env: OPENAI_API_KEY\n    api_key: sk-123\n"),
     10, "providers.openai.api_key: unknown key"),
    ("missing router model", edit("  model: Arch-Router\n", ""), 3,
     "router.model: required for router kind 'arch-router'"),
    ("hybrid without endpoint", edit("  endpoint: http://127.0.0.1:8000/v1\n", "  kind: hybrid\n"), 3,
     "router.endpoint: required for router kind 'hybrid'"),
    ("unknown router kind", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  kind: bert\n"), 6,
     "router.kind: Value error, unknown router kind 'bert' (known: arch-router, embedding, hybrid)"),
    ("threshold out of range", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {threshold: 2}\n"), 6,
     "router.embedding.threshold"),
    ("unknown embedding key", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {k: 3}\n"), 6,
     "router.embedding.k: unknown key"),
    ("threshold and strictness", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {threshold: 0.3, strictness: 0.9}\n"),
     6, "router.embedding: Value error, give threshold (a fixed cosine) or strictness (calibrated), not both"),
    ("unknown encoder", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {encoder: bge}\n"), 6,
     "router.embedding.encoder: Value error, unknown encoder 'bge' (known: minilm, minilm-int8)"),
    ("strictness out of range", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {strictness: 0.2}\n"), 6,
     "router.embedding.strictness: Input should be greater than or equal to 0.5"),
    ("other examples not a list", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding: {other_examples: hi}\n"),
     6, "router.embedding.other_examples: Input should be a valid list"),
    ("empty other example", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding:\n    other_examples: ['']\n"),
     7, "router.embedding.other_examples.0"),
    ("other example that is a route's example",
     edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  embedding:\n    other_examples: [tell a joke, write a sort]\n").replace(
         "    model: gpt-4o\n", "    model: gpt-4o\n    examples: [write a sort]\n"),
     7, "router.embedding.other_examples[1]: also an example of route 'code_generation'"),
    ("examples not a list", edit("    model: gpt-4o\n", "    model: gpt-4o\n    examples: write code\n"), 19,
     "routes.0.examples"),
    ("empty example", edit("    model: gpt-4o\n", "    model: gpt-4o\n    examples: ['']\n"), 19,
     "routes.0.examples.0"),
    ("missing default_model", edit("default_model: small\n", ""), 1, "default_model: required field is missing"),
    ("missing route description", edit("    description: generating new code\n", ""),
     16, "routes.0.description: required field is missing"),
    ("timeout is a string", edit("timeout_ms: 400", "timeout_ms: fast"), 5, "router.timeout_ms"),
    ("timeout is negative", edit("timeout_ms: 400", "timeout_ms: -1"), 5, "router.timeout_ms"),
    ("base_url is not a URL", edit("base_url: http://127.0.0.1:8001/v1", "base_url: localhost"),
     11, "providers.local.base_url"),
    ("routes is a mapping", edit("routes:\n  - name", "routes:\n  x:\n    name").replace(
        "    description: generating new code\n    model: gpt-4o\n", ""), 16, "routes: Input should be a valid list"),
    ("duplicate route names", GOOD.replace("default_model", "  - name: code_generation\n"
     "    description: again\n    model: small\ndefault_model"), 19, "duplicate route name 'code_generation'"),
    ("route to unknown model", edit("    model: gpt-4o\n", "    model: gpt-5\n"), 18, "routes[0].model: unknown model 'gpt-5'"),
    ("default to unknown model", edit("default_model: small", "default_model: tiny"), 19,
     "default_model: unknown model 'tiny'"),
    ("model to unknown provider", edit("{provider: openai}", "{provider: azure}"), 13,
     "models.gpt-4o.provider: unknown provider 'azure'"),
    ("duplicate YAML key", edit("  gpt-4o: {provider: openai}\n",
                                "  gpt-4o: {provider: openai}\n  gpt-4o: {provider: local}\n"),
     14, "duplicate key 'gpt-4o'"),
    ("YAML syntax error", edit("  model: Arch-Router\n", "  model: [Arch-Router\n"), 5, "YAML syntax error"),
    ("fallback to unknown model", edit("{provider: openai}", "{provider: openai, fallbacks: [small, gpt-5]}"), 13,
     "models.gpt-4o.fallbacks[1]: unknown model 'gpt-5' (known: gpt-4o, small)"),
    ("fallback to itself", edit("{provider: openai}", "{provider: openai, fallbacks: [gpt-4o]}"), 13,
     "models.gpt-4o.fallbacks[0]: a model cannot fall back to itself"),
    ("fallback cycle", edit("{provider: openai}", "{provider: openai, fallbacks: [small]}").replace(
        "upstream_model: SmolLM2-135M-Instruct}", "upstream_model: SmolLM2-135M-Instruct, fallbacks: [gpt-4o]}"),
     13, "models.gpt-4o.fallbacks: fallback cycle gpt-4o -> small -> gpt-4o"),
    ("unknown context-window fallback", edit("{provider: openai}", "{provider: openai, context_window_fallbacks: [xl]}"),
     13, "models.gpt-4o.context_window_fallbacks[0]: unknown model 'xl'"),
    ("unknown failover key", GOOD + "failover: {retries: 3}\n", 20, "failover.retries: unknown key"),
    ("negative stall limit", edit("{provider: openai}", "{provider: openai, failover: {stall_s: -1}}"), 13,
     "models.gpt-4o.failover.stall_s"),
    ("unsupported version", edit("version: 1", "version: 2"), 1, "version"),
    ("route named other", edit("  - name: code_generation", "  - name: other"), 16, "'other' is reserved"),
    ("not a mapping", "- just\n- a list\n", 1, "a policy must be a mapping"),
    ("unknown provider api", edit("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n    api: gemini\n"),
     10, "providers.openai.api: Value error, unknown api 'gemini' (known: openai, anthropic)"),
    ("anthropic_version on an OpenAI provider",
     edit("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n    anthropic_version: '2023-06-01'\n"),
     8, "providers.openai: Value error, anthropic_version applies only to a provider with `api: anthropic`"),
    ("responses native on an Anthropic provider",
     edit("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n    api: anthropic\n    responses: native\n"),
     8, "`responses: native` applies only to a provider with `api: openai`"),
    ("ask_stream_usage on an Anthropic provider",
     edit("    api_key_env: OPENAI_API_KEY\n", "    api_key_env: OPENAI_API_KEY\n    api: anthropic\n    ask_stream_usage: false\n"),
     8, "`ask_stream_usage` applies only to a provider with `api: openai`"),
    ("alias to an unknown model", GOOD + "aliases:\n  claude-haiku-*: haiku\n", 21,
     "aliases.claude-haiku-*: unknown model 'haiku' (known: auto, gpt-4o, small)"),
    ("alias hiding a model name", GOOD + "aliases:\n  small: gpt-4o\n", 21,
     "aliases.small: 'small' is already a name of this policy"),
    ("envelope tag with a space", edit("  timeout_ms: 400\n", "  timeout_ms: 400\n  envelopes: ['a b']\n"), 6,
     "router.envelopes.0"),
]


@pytest.mark.parametrize("text,line,fragment", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_policy_is_rejected_with_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policies/broken.yaml", "broken")
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith(f"policies/broken.yaml:{line}: ") and fragment in m for m in messages), messages


def test_good_policy_compiles() -> None:
    policy = parse_policy(GOOD, "policies/good.yaml", "good")
    assert policy.name == "good"
    assert policy.routes[0].model.upstream_model == "gpt-4o"
    assert policy.models["small"].upstream_model == "SmolLM2-135M-Instruct"
    assert policy.default_model.provider.path_prefix == "/v1"
    assert policy.models["gpt-4o"].provider.tls
    assert policy.model_names() == ["auto", "gpt-4o", "small"]


def test_embedding_policy_needs_no_router_endpoint() -> None:
    text = edit("  endpoint: http://127.0.0.1:8000/v1\n  model: Arch-Router\n",
                "  kind: embedding\n  embedding: {threshold: 0.3, margin: 0}\n")
    text = text.replace("    model: gpt-4o\n", "    model: gpt-4o\n    examples: [write a sort function, 'a class for users']\n")
    policy = parse_policy(text, "e.yaml", "e")
    assert policy.router.kind == "embedding" and policy.router.endpoint is None
    assert policy.router.threshold == 0.3 and policy.router.margin == 0
    assert policy.route_specs[0].examples == ("write a sort function", "a class for users")


def test_embedding_is_calibrated_unless_a_threshold_is_set_stricter_with_examples_and_takes_other_examples() -> None:
    text = edit("  endpoint: http://127.0.0.1:8000/v1\n  model: Arch-Router\n",
                "  kind: embedding\n  embedding:\n    other_examples: [tell me a joke, what is a monad]\n")
    policy = parse_policy(text, "e.yaml", "e")
    # Routes known by their description alone get a little more of the benefit of the doubt.
    assert policy.router.threshold is None and policy.router.strictness == 0.85
    assert policy.router.other_examples == ("tell me a joke", "what is a monad")
    with_examples = text.replace("    model: gpt-4o\n", "    model: gpt-4o\n    examples: [write a sort function]\n")
    assert parse_policy(with_examples, "e.yaml", "e").router.strictness == 0.88
    for written in (text, with_examples):
        stricter = parse_policy(written.replace("  embedding:\n", "  embedding:\n    strictness: 0.97\n"), "e.yaml", "e")
        assert stricter.router.strictness == 0.97 and stricter.router.threshold is None


def test_every_problem_is_reported_at_once() -> None:
    text = edit("default_model: small", "default_model: tiny").replace("{provider: openai}", "{provider: azure}")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml", "p")
    assert len(caught.value.problems) == 2


def test_version_changes_with_content() -> None:
    a = parse_policy(GOOD, "a.yaml", "a")
    b = parse_policy(GOOD.replace("400", "401"), "a.yaml", "a")
    assert a.version != b.version


def test_folder_without_default_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "travel.yaml").write_text(GOOD)
    with pytest.raises(PolicyError, match="default.yaml:1: no default.yaml"):
        load_policy_set(tmp_path)


def test_shipped_policies_are_valid() -> None:
    policies = load_policy_set(Path(__file__).resolve().parents[2] / "policies")
    assert "default" in policies.policies and len(policies.policies) >= 2
    groq = policies.policies["travel"].providers["groq"]
    assert groq.path_prefix == "/openai/v1" and groq.host == "api.groq.com" and groq.port == 443


def test_fallback_chains_and_rules_compile() -> None:
    text = GOOD.replace("{provider: openai}", "{provider: openai, fallbacks: [mid], failover: {stall_s: 5}}") \
        .replace("  small:", "  mid: {provider: local, fallbacks: [small], context_window_fallbacks: [gpt-4o]}\n  small:") \
        + "failover: {first_token_s: 12, stall_s: 9}\n"
    policy = parse_policy(text, "p.yaml", "p")
    gpt, mid, small = policy.models["gpt-4o"], policy.models["mid"], policy.models["small"]
    assert gpt.fallbacks == ("mid",) and gpt.chain == ("mid", "small")  # transitive, in order
    assert mid.chain == ("small",) and mid.context_window_fallbacks == ("gpt-4o",)
    assert gpt.has_fallbacks and mid.has_fallbacks and not small.has_fallbacks
    # model `failover:` over policy `failover:` over the defaults
    assert (gpt.failover.stall_s, gpt.failover.first_token_s, gpt.failover.response_s) == (5, 12, 300)
    assert (small.failover.stall_s, small.failover.first_token_s) == (9, 12)


def test_aliases_resolve_exact_names_first_then_patterns_in_order() -> None:
    policy = parse_policy(GOOD + "aliases:\n  claude-haiku-4-5: gpt-4o\n  claude-haiku-*: small\n  claude-*: auto\n",
                          "a.yaml", "a")
    assert policy.resolve("claude-haiku-4-5") == "gpt-4o"
    assert policy.resolve("claude-haiku-5-5") == "small"
    assert policy.resolve("claude-opus-5-5") == "auto"
    assert policy.resolve("small") == "small" and policy.resolve("gpt-9") == "gpt-9"  # unknown: the 404 names it
    assert policy.envelopes == ("system-reminder", "environment_context", "user_instructions")


def test_a_provider_may_refuse_stream_options() -> None:
    policy = parse_policy(edit("    base_url: http://127.0.0.1:8001/v1\n",
                               "    base_url: http://127.0.0.1:8001/v1\n    ask_stream_usage: false\n"),
                          "policies/good.yaml", "good")
    strict, asks = policy.providers["local"], policy.providers["openai"]
    chat, stream = APIS[OPENAI], {"model": "m", "stream": True, "messages": []}
    assert asks.asking_usage(chat, stream) == {**stream, "stream_options": {"include_usage": True}}
    assert strict.asking_usage(chat, stream) is None
    translated = {**stream, "stream_options": {"include_usage": True}}
    assert strict.unasked(translated) == stream and asks.unasked(translated) == translated
