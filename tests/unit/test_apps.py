"""App keys (apps.yaml): validation, authentication, what an app may use, and rate limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control_plane.extproc.processor import Forward, Reply, RequestProcessor, Shared
from control_plane.extproc.rate_limits import RateLimiter
from control_plane.policy.apps import App, key_digest, presented_key
from control_plane.policy.loader import PolicyError, parse_apps, parse_policy
from control_plane.policy.model import PolicySet
from control_plane.policy.snapshot import Snapshot
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD

POLICIES = {"default": parse_policy(GOOD, "default.yaml", "default"),
            "travel": parse_policy(GOOD, "travel.yaml", "travel")}
APPS = f"""\
version: 1
apps:
  checkout:
    key_sha256: {key_digest("sk-checkout")}
    policies: [default]
    models: [auto, small]
    requests_per_minute: 2
  search:
    key_env: SEARCH_KEY
"""


@pytest.fixture()
def apps(monkeypatch: pytest.MonkeyPatch) -> PolicySet:
    monkeypatch.setenv("SEARCH_KEY", "sk-search")
    return PolicySet(POLICIES, parse_apps(APPS, "apps.yaml", POLICIES))


def test_keys_are_found_by_digest_from_either_header(apps: PolicySet) -> None:
    assert apps.apps is not None
    assert apps.apps.authenticate({"authorization": "Bearer sk-checkout"}).name == "checkout"  # type: ignore[union-attr]
    assert apps.apps.authenticate({"x-api-key": "sk-search"}).name == "search"  # type: ignore[union-attr]
    assert apps.apps.authenticate({"authorization": "Bearer sk-nope"}) is None
    assert presented_key({}) is None
    assert "sk-checkout" not in json.dumps(sorted(apps.apps.by_digest))  # only digests are kept


@pytest.mark.parametrize("text,fragment", [
    (APPS.replace("  search:\n    key_env: SEARCH_KEY\n", "  search: {}\n"), "apps.search: give exactly one of key_sha256, key_env"),
    (APPS.replace("SEARCH_KEY", "NOT_SET_ANYWHERE"), "environment variable NOT_SET_ANYWHERE is not set"),
    (APPS.replace("policies: [default]", "policies: [billing]"), "apps.checkout.policies[0]: unknown policy 'billing'"),
    (APPS.replace("models: [auto, small]", "models: [gpt-5]"), "no policy this app may use has model 'gpt-5'"),
    (APPS.replace("key_sha256: ", "key_sha256: zz"), "apps.checkout.key_sha256"),
    (APPS + "    rate: 3\n", "apps.search.rate: unknown key"),
])
def test_broken_apps_file_is_rejected_with_a_line(apps: PolicySet, text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_apps(text, "apps.yaml", POLICIES)
    assert fragment in str(caught.value) and "apps.yaml:" in str(caught.value)


def test_two_apps_with_one_key_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_KEY", "sk-checkout")
    with pytest.raises(PolicyError, match="same key as app 'checkout'"):
        parse_apps(APPS, "apps.yaml", POLICIES)


def test_no_policy_may_be_called_apps() -> None:
    with pytest.raises(PolicyError, match="is the apps file"):
        parse_policy(GOOD, "apps.yaml", "apps")


def chat(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


async def ask(policies: PolicySet, headers: dict[str, str], model: str = "small",
              limiter: RateLimiter | None = None) -> Forward | Reply:
    processor = RequestProcessor(Snapshot(policies, {n: ScriptedRouter() for n in policies.policies}),
                                 Shared(limiter=limiter or RateLimiter()))
    first = await processor.on_request_headers({":method": "POST", ":path": "/v1/chat/completions", **headers}, False)
    if isinstance(first, Reply):
        return first
    return await processor.on_request_body(chat(model))


async def test_requests_are_checked_against_the_app(apps: PolicySet) -> None:
    good = {"authorization": "Bearer sk-checkout"}
    cases = [
        ({}, "small", 401, "invalid_api_key"),
        ({"authorization": "Bearer sk-wrong"}, "small", 401, "invalid_api_key"),
        ({**good, "x-switchyard-policy": "travel"}, "small", 403, "policy_not_allowed"),
        (good, "gpt-4o", 403, "model_not_allowed"),
    ]
    for headers, model, status, code in cases:
        reply = await ask(apps, headers, model)
        assert isinstance(reply, Reply) and reply.status == status, (headers, model)
        assert json.loads(reply.body)["error"]["code"] == code
        assert reply.metadata["decision"] == "rejected" and reply.metadata["reason"] == code
    allowed = await ask(apps, good, "small")
    assert isinstance(allowed, Forward) and allowed.metadata["app"] == "checkout"
    assert "authorization" in allowed.remove_headers  # the app's key never reaches a provider
    anything = await ask(apps, {"x-api-key": "sk-search", "x-switchyard-policy": "travel"}, "gpt-4o")
    assert isinstance(anything, Forward)


async def test_over_the_limit_is_a_429_with_retry_after(apps: PolicySet) -> None:
    limiter = RateLimiter()
    good = {"authorization": "Bearer sk-checkout"}  # 2 requests per minute
    answers = [await ask(apps, good, limiter=limiter) for _ in range(3)]
    assert [isinstance(a, Forward) for a in answers] == [True, True, False]
    reply = answers[2]
    assert isinstance(reply, Reply) and reply.status == 429
    assert json.loads(reply.body)["error"]["code"] == "rate_limit_exceeded"
    assert int(dict(reply.headers)["retry-after"]) == 30  # one request per 30 s


def test_buckets_refill_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    app = App("a", requests_per_minute=60)
    assert all(limiter.retry_after_s(app) is None for _ in range(60))
    assert limiter.retry_after_s(app) == 1
    now[0] += 1.0
    assert limiter.retry_after_s(app) is None
    assert limiter.retry_after_s(App("unlimited")) is None


def test_without_apps_everyone_is_let_in() -> None:
    assert PolicySet(POLICIES).apps is None


def test_up_warns_when_open_to_other_hosts_without_app_keys(apps: PolicySet) -> None:
    from control_plane.sidecar import HostPort, open_to_anyone
    open_set = PolicySet(POLICIES)
    assert open_to_anyone(open_set, HostPort("0.0.0.0", 10000))
    assert not open_to_anyone(open_set, HostPort("127.0.0.1", 10000))
    assert not open_to_anyone(open_set, HostPort("localhost", 10000))
    assert not open_to_anyone(apps, HostPort("0.0.0.0", 10000))


def test_check_warns_of_unpriced_models_an_app_with_a_budget_may_use(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from control_plane.cli import cmd_check, parser  # not main(): it would point logging at capsys
    (tmp_path / "default.yaml").write_text(
        "version: 1\nrouter: {kind: embedding}\nproviders:\n  p: {base_url: 'http://127.0.0.1:9/v1'}\n"
        "models:\n  priced: {provider: p, price: {input_per_mtok: 1, output_per_mtok: 2}}\n  free: {provider: p}\n"
        "default_model: priced\n")
    (tmp_path / "apps.yaml").write_text(
        "version: 1\napps:\n"
        f"  capped: {{key_sha256: '{'0' * 64}', budget: {{usd_per_day: 1}}}}\n"
        f"  open: {{key_sha256: '{'1' * 64}'}}\n"
        f"  narrow: {{key_sha256: '{'2' * 64}', models: [priced], budget: {{usd_per_month: 9}}}}\n")
    assert cmd_check(parser().parse_args(["check", str(tmp_path)])) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "warning" in line]
    assert warnings == ["  warning: app 'capped' has a budget, but in policy 'default' these models have no price, "
                        "so what they cost does not count toward it: free"]
