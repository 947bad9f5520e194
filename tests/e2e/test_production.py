"""Running it in production, through real Envoy with the `openai` client: app keys (live-editable),
per-app rate limits, edge hardening, JSON logs (ours and Envoy's, one access-log line per request),
and request/decision/rejection metrics that add up to what was sent."""

from __future__ import annotations

import collections
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from control_plane.policy.apps import key_digest
from tests.e2e.conftest import ALPHA_KEY, Provider, Sidecar, provider_fixture, running_sidecar

CHECKOUT_KEY = "sk-app-checkout-0123456789"
OTHER_KEY = "sk-app-other-team-0123456789"
LIMITED_KEY = "sk-app-limited-0123456789"
REVOCABLE_KEY = "sk-app-revocable-0123456789"
APP_KEYS = (CHECKOUT_KEY, OTHER_KEY, LIMITED_KEY, REVOCABLE_KEY)

ops = provider_fixture("ops", scope="module")  # the provider
ops_router = provider_fixture("ops-router", "ops_router", scope="module")  # a scripted router


def policy(router: Provider, ops: Provider) -> str:
    return f"""\
version: 1
router: {{endpoint: "{router.url}/v1", model: Arch-Router, timeout_ms: 2000}}
providers:
  ops: {{base_url: "{ops.url}/v1", api_key_env: ALPHA_KEY}}
models:
  chat: {{provider: ops, upstream_model: ops-chat}}
  big: {{provider: ops, upstream_model: ops-big}}
routes:
  - {{name: talk, description: small talk, model: chat}}
default_model: chat
"""


def apps(*, revocable: bool = True) -> str:
    text = f"""\
version: 1
apps:
  checkout:
    key_sha256: {key_digest(CHECKOUT_KEY)}
    policies: [default]
    models: [auto, chat]
  other-team:
    key_sha256: {key_digest(OTHER_KEY)}
    policies: [other]
  limited:
    key_sha256: {key_digest(LIMITED_KEY)}
    requests_per_minute: 3
"""
    if revocable:
        text += f"  revocable:\n    key_sha256: {key_digest(REVOCABLE_KEY)}\n"
    return text


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory, ops: Provider, ops_router: Provider) -> Path:
    folder = tmp_path_factory.mktemp("production-policies")
    (folder / "default.yaml").write_text(policy(ops_router, ops))
    (folder / "other.yaml").write_text(policy(ops_router, ops))
    (folder / "apps.yaml").write_text(apps())
    return folder


@pytest.fixture(scope="module")
def sidecar(logs: Path, policies: Path) -> Iterator[Sidecar]:
    with running_sidecar("switchyard-production", policies, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(ops: Provider, ops_router: Provider) -> None:
    ops.reset()
    ops_router.reset()
    ops_router.control(route="talk")


def client(sidecar: Sidecar, key: str | None, policy: str = "default") -> openai.OpenAI:
    # The SDK needs some key; "no key" is tested with raw HTTP below.
    return openai.OpenAI(base_url=sidecar.base_url, api_key=key or "unused", max_retries=0, timeout=30,
                         default_headers={"x-switchyard-policy": policy})


def post(sidecar: Sidecar, key: str | None, body: bytes | dict, policy: str = "default") -> httpx.Response:
    headers = {"x-switchyard-policy": policy, "content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{sidecar.base_url}/chat/completions", content=content, headers=headers, timeout=30)


_chats = itertools.count(1)


def chat(model: str = "chat") -> dict:
    # A new conversation each time: a repeated one would get the cached router decision.
    return {"model": model, "messages": [{"role": "user", "content": f"hello there ({next(_chats)})"}]}


def test_app_keys_decide_who_may_call_what(sidecar: Sidecar, ops: Provider) -> None:
    for key, body, policy, status, code in [
        (None, chat(), "default", 401, "invalid_api_key"),
        ("sk-app-wrong", chat(), "default", 401, "invalid_api_key"),
        (OTHER_KEY, chat(), "default", 403, "policy_not_allowed"),
        (CHECKOUT_KEY, chat("big"), "default", 403, "model_not_allowed"),
    ]:
        response = post(sidecar, key, body, policy)
        assert response.status_code == status, (key, body)
        assert response.json()["error"]["code"] == code
    assert ops.requests() == []  # nothing rejected reached the provider
    with pytest.raises(openai.AuthenticationError):
        client(sidecar, "sk-app-wrong").chat.completions.create(**chat())
    completion = client(sidecar, CHECKOUT_KEY).chat.completions.create(**chat("auto"))
    assert completion.choices[0].message.content == "hello from ops"
    assert client(sidecar, OTHER_KEY, "other").chat.completions.create(**chat("big")).model == "ops-big"
    recorded = json.dumps(ops.requests())
    assert all(key not in recorded for key in APP_KEYS)  # an app key never reaches a provider
    assert f"Bearer {ALPHA_KEY}" in recorded


def test_a_revoked_key_is_refused_after_a_live_edit(sidecar: Sidecar, policies: Path) -> None:
    assert post(sidecar, REVOCABLE_KEY, chat()).status_code == 200
    (policies / "apps.yaml").write_text(apps(revocable=False))
    try:
        deadline = time.monotonic() + 15
        while post(sidecar, REVOCABLE_KEY, chat()).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.1)
        assert post(sidecar, CHECKOUT_KEY, chat()).status_code == 200  # the others still work
    finally:
        (policies / "apps.yaml").write_text(apps())


def test_rate_limit_gives_exactly_one_429_with_retry_after(sidecar: Sidecar) -> None:
    responses = [post(sidecar, LIMITED_KEY, chat()) for _ in range(4)]  # the limit is 3 a minute
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    limited = responses[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.json()["error"]["type"] == "rate_limit_error"
    with pytest.raises(openai.RateLimitError):
        client(sidecar, LIMITED_KEY).chat.completions.create(**chat())


def metric_samples(sidecar: Sidecar) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{sidecar.admin_url}/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def summed(samples: dict, name: str, *keys: str) -> collections.Counter[tuple[str, ...]]:
    totals: collections.Counter[tuple[str, ...]] = collections.Counter()
    for (sample_name, labels), value in samples.items():
        if sample_name == name:
            found = dict(labels)
            totals[tuple(found.get(k, "") for k in keys)] += int(value)
    return totals


def settled_samples(sidecar: Sidecar) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics once the access-log entries of earlier requests have all arrived (Envoy flushes
    them every 0.25 s): two reads 0.6 s apart that agree, within a deadline."""
    deadline = time.monotonic() + 10
    previous = metric_samples(sidecar)
    while True:
        time.sleep(0.6)
        current = metric_samples(sidecar)
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


def test_metrics_count_exactly_what_was_sent(sidecar: Sidecar, ops_router: Provider) -> None:
    before = settled_samples(sidecar)
    assert not any(name.endswith("_created") for name, _ in before)
    assert ("switchyard_policy_reloads_total", (("result", "error"),)) in before  # at zero, present
    decisions: collections.Counter[tuple[str, ...]] = collections.Counter()
    rejections: collections.Counter[tuple[str, ...]] = collections.Counter()
    statuses: collections.Counter[tuple[str, ...]] = collections.Counter()

    def send(key: str | None, body: bytes | dict, policy: str = "default") -> None:
        response = post(sidecar, key, body, policy)
        statuses[(str(response.status_code),)] += 1
        if response.status_code == 200:
            kind, _, reason = response.headers["x-switchyard-decision"].partition(":")
            if kind not in ("fallback", "degraded"):
                kind, reason = response.headers["x-switchyard-decision"], ""
            decisions[(kind, reason)] += 1
        else:
            rejections[(response.json()["error"]["code"],)] += 1

    for _ in range(3):
        send(CHECKOUT_KEY, chat("auto"))  # routed:arch-router
    send(CHECKOUT_KEY, chat("chat"))  # explicit
    ops_router.control(route="no_such_route")
    send(CHECKOUT_KEY, chat("auto"))  # fallback:unknown_route
    ops_router.control(route=None, raw="not json at all")
    send(CHECKOUT_KEY, chat("auto"))  # fallback:unparseable
    ops_router.control(raw=None, status=500)
    send(CHECKOUT_KEY, chat("auto"))  # fallback:router_error
    send(CHECKOUT_KEY, {"model": "auto", "messages": [{"role": "system", "content": "only"}]})  # no_user_text
    send(None, chat())  # 401
    send(OTHER_KEY, chat())  # 403 policy
    send(CHECKOUT_KEY, chat("big"))  # 403 model
    send(CHECKOUT_KEY, b"{not json")  # 400
    send(OTHER_KEY, chat("gpt-9"), "other")  # 404 model
    assert len(decisions) >= 5 and len(rejections) == 5

    def delta(name: str, *keys: str) -> collections.Counter[tuple[str, ...]]:
        after = summed(metric_samples(sidecar), name, *keys)
        after.subtract(summed(before, name, *keys))
        return +after

    assert delta("switchyard_decisions_total", "decision", "reason") == decisions
    assert delta("switchyard_rejections_total", "reason") == rejections
    # Request metrics come from Envoy's access log, a moment later: poll with a deadline.
    deadline = time.monotonic() + 10
    while delta("switchyard_requests_total", "status") != statuses:
        assert time.monotonic() < deadline, (delta("switchyard_requests_total", "status"), statuses)
        time.sleep(0.2)
    apps_seen = delta("switchyard_requests_total", "app")
    assert apps_seen[("checkout",)] == sum(decisions.values()) + 2  # + its two rejections
    histogram = delta("switchyard_request_duration_seconds_count", "app")
    assert histogram[("checkout",)] == apps_seen[("checkout",)]


def log_lines(sidecar: Sidecar) -> list[str]:
    return [line for line in sidecar.process.log_tail(10**7).splitlines() if line.strip()]


def test_every_log_line_is_json_with_one_access_line_per_request(sidecar: Sidecar, ops: Provider) -> None:
    good = post(sidecar, CHECKOUT_KEY, chat())
    rejected = post(sidecar, "sk-app-wrong", chat())
    unknown_path = httpx.get(f"{sidecar.base_url.rsplit('/v1', 1)[0]}/nope", timeout=10)
    ids = {r.headers["x-request-id"] for r in (good, rejected, unknown_path)}  # every response has one
    assert len(ids) == 3
    deadline = time.monotonic() + 10
    while True:
        parsed = []
        for line in log_lines(sidecar):
            if line.startswith("Switchyard "):  # the human banner on stdout
                continue
            parsed.append(json.loads(line))  # anything else is a JSON log line
        access = {e["request_id"]: e for e in parsed if e.get("logger") == "envoy.access"}
        if ids <= set(access) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ids <= set(access)
    assert all({"timestamp", "level", "event"} <= set(e) for e in parsed)
    line = access[good.headers["x-request-id"]]
    assert (line["app"], line["policy"], line["route"], line["model"], line["decision"], line["status"]) == \
        ("checkout", "default", "other", "chat", "explicit", 200)
    assert line["policy_version"] and line["provider_cluster"].startswith("ops-") and line["duration_ms"] >= 0
    refused = access[rejected.headers["x-request-id"]]
    assert (refused["decision"], refused["reason"], refused["status"]) == ("rejected", "invalid_api_key", 401)
    ours = [e for e in parsed if e.get("event") == "decision" and e.get("request_id") == good.headers["x-request-id"]]
    assert ours and ours[0]["app"] == "checkout"
    # Providers get no x-envoy-* headers from Switchyard.
    [seen] = ops.requests()
    assert not [h for h in seen["headers"] if h.lower().startswith("x-envoy-")], seen["headers"]


def test_no_key_leaks_into_logs_responses_or_admin_pages(sidecar: Sidecar) -> None:
    pages = [httpx.get(f"{sidecar.admin_url}/{page}").text for page in ("policies", "metrics")]
    answers = [post(sidecar, key, chat()).text for key in (CHECKOUT_KEY, "sk-app-wrong")]
    everything = "\n".join([*pages, *answers, "\n".join(log_lines(sidecar))])
    for secret in (ALPHA_KEY, *APP_KEYS):
        assert secret not in everything
    for key in APP_KEYS:
        assert key_digest(key) not in everything  # not even the digests are shown
