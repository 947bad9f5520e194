"""Hostile and odd request bodies through real Envoy, on every door: a sample of the fuzzer's
bodies (tests/unit/test_fuzz_doors.py) plus the two reported holes (a lone surrogate escape, a
repeated key). Every answer is the provider's, or Switchyard's 4xx in the door's shape: never a
5xx of Switchyard's own (`internal_error`, `processor_unavailable`, a bare 500 from the guarded
path), and the processor keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar
from tests.unit.test_fuzz_doors import VALID, in_door_shape, near_json

odd_claude = provider_fixture("odd-claude", "odd_claude", scope="module")
odd_chat = provider_fixture("odd-chat", "odd_chat", scope="module")
OWN_ERRORS = {"internal_error", "processor_unavailable"}


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, odd_claude: Provider,
            odd_chat: Provider) -> Iterator[Sidecar]:
    folder = tmp_path_factory.mktemp("odd-policies")
    for name, default in (("default", "chat"), ("claude", "haiku")):  # translated one way, then the other
        (folder / f"{name}.yaml").write_text(f"""\
version: 1
router: {{kind: embedding}}
providers:
  claude: {{base_url: "{odd_claude.url}/v1", api: anthropic}}
  local: {{base_url: "{odd_chat.url}/v1", responses: native}}
models:
  haiku: {{provider: claude}}
  small: {{provider: local}}
  chat: {{provider: local, fallbacks: [haiku]}}
routes:
  - {{name: code, description: writing new code, model: {default}}}
default_model: {default}
""")
    with running_sidecar("switchyard-odd", folder, logs) as running:
        yield running


def post(sidecar: Sidecar, door: str, raw: bytes, policy: str = "default") -> httpx.Response:
    headers = {"content-type": "application/json", "x-switchyard-policy": policy, "anthropic-version": "2023-06-01"}
    return httpx.post(sidecar.base_url.removesuffix("/v1") + door, content=raw, headers=headers, timeout=30)


def assert_not_our_failure(door: str, response: httpx.Response) -> None:
    if response.status_code < 500:
        if response.status_code >= 400 and response.headers.get("x-switchyard-decision") == "rejected":
            assert in_door_shape(door, response.content), response.text
        return
    # A 5xx may only be a provider's answer, passed on: never Switchyard's own failure.
    assert response.headers.get("x-switchyard-decision") != "rejected", response.text
    body = response.json()  # (a bare text/plain 500 from the guarded path would fail here)
    code = body.get("error", {}).get("code") if isinstance(body.get("error"), dict) else None
    assert code not in OWN_ERRORS, response.text


@pytest.mark.parametrize("door", sorted(VALID))
def test_the_reported_holes_are_400s_through_envoy(sidecar: Sidecar, door: str) -> None:
    surrogate = json.dumps({**VALID[door], "model": "auto\ud800"}).encode()
    repeated = b'{"model": "x", ' + json.dumps({**VALID[door], "model": "small"}).encode()[1:]
    for raw, reason in ((surrogate, "lone UTF-16 surrogate"), (repeated, "repeats the key 'model'")):
        response = post(sidecar, door, raw)
        assert response.status_code == 400 and reason in response.text
        assert in_door_shape(door, response.content)


@seed(20261130)
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(VALID)).flatmap(lambda door: st.tuples(st.just(door), near_json(door))),
       st.sampled_from(["default", "claude"]))
def test_fuzzed_bodies_get_a_decision_or_a_4xx_through_envoy(sidecar: Sidecar, case: tuple[str, bytes],
                                                            policy: str) -> None:
    door, raw = case
    assert_not_our_failure(door, post(sidecar, door, raw, policy))
    assert post(sidecar, door, json.dumps(VALID[door]).encode(), policy).status_code == 200
