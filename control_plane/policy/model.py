"""The compiled, runtime form of a policy: what the processor and Envoy config are built from.

Built all-or-nothing from the validated wire form (schema.py) by loader.py; immutable, so
a snapshot can be shared by every request and worker without locks.
"""

from __future__ import annotations

import hashlib
import os
from fnmatch import fnmatchcase
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from control_plane.apis.conversation import DEFAULT_ENVELOPES
from control_plane.apis.table import APIS, OPENAI, RESPONSES, Api, Body
from control_plane.apis.usage import Usage
from control_plane.policy.failover_settings import DEFAULT_RULES, FailoverRules
from control_plane.policy.apps import APPS_FILE_STEM, Apps
from router_model.kinds import RouterConfig
from router_model.router import RouteSpec

DEFAULT_POLICY = "default"


@dataclass(frozen=True)
class Provider:
    """An upstream endpoint speaking one wire API (`api`); one Envoy cluster."""

    name: str
    base_url: str
    api_key_env: str | None = None
    ca_file: str | None = None
    request_timeout_s: int = 600
    api: str = OPENAI
    anthropic_version: str | None = None
    responses_native: bool = False  # also serves the Responses API (`responses: native`)
    ask_stream_usage: bool = True  # may be sent `stream_options` its app did not send
    scheme: str = field(init=False)
    host: str = field(init=False)
    port: int = field(init=False)
    path_prefix: str = field(init=False)  # base_url's path without the trailing slash
    cluster: str = field(init=False)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        set_ = object.__setattr__  # frozen: derived fields are filled once, here
        set_(self, "scheme", url.scheme)
        set_(self, "host", url.hostname or "")
        set_(self, "port", url.port or (443 if url.scheme == "https" else 80))
        set_(self, "path_prefix", url.path.rstrip("/"))
        # Same name + same connection settings => same cluster, even across policies.
        digest = hashlib.sha256(f"{self.base_url}|{self.ca_file}".encode()).hexdigest()[:8]
        set_(self, "cluster", f"{self.name}-{digest}")

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def wire_api(self) -> Api:
        return APIS[self.api]

    def serves(self, api: Api) -> bool:
        """Whether an app's request in `api` reaches this provider as it came (no translation)."""
        return api.name == self.api or (api.name == RESPONSES and self.responses_native)

    def asking_usage(self, api: Api, request: Body) -> Body | None:
        """`request` (in `api`, as this provider gets it) asking for its answer's usage, where that
        API reports it only when asked (an OpenAI chat stream) and this provider takes the
        question; else None."""
        return api.ask_usage(request) if self.ask_stream_usage else None

    def unasked(self, request: Body) -> Body:
        """A translated request (Switchyard wrote all of it) as this provider takes it: without
        the `stream_options` a translation adds, where the provider refuses them."""
        if self.ask_stream_usage or "stream_options" not in request:
            return request
        return {k: v for k, v in request.items() if k != "stream_options"}

    def key_headers(self, forwarded: Mapping[str, str]) -> list[tuple[str, str]]:
        """The headers that carry Switchyard's key for this provider, in its API's way (the key
        is read from the environment on each request, so a rotated key needs no reload), and
        `anthropic-version` for Anthropic providers unless the app's own is among the headers
        `forwarded` with its request (it is only when the request goes as it came: its body is
        written for that version)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        api = self.wire_api
        headers = [(api.key_header, api.key_prefix + key)] if key else []
        if self.anthropic_version and api.version_header and api.version_header not in forwarded:
            headers.append((api.version_header, self.anthropic_version))
        return headers


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind (apis/usage.py): cached input and cache writes cost
    the input price unless the policy says otherwise."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def cost_usd(self, usage: Usage) -> float:
        cached = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        written = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        return (usage.input * self.input_per_mtok + usage.cached_input * cached + usage.cache_write * written
                + usage.output * self.output_per_mtok) / 1_000_000


@dataclass(frozen=True)
class Model:
    """A model name an app may send, and where it goes."""

    name: str
    provider: Provider
    upstream_model: str
    fallbacks: tuple[str, ...] = ()  # as written in the policy
    # Every model tried after this one when it fails, in order: its fallbacks, each followed by
    # its own chain (cycles are rejected when the policy loads), without repeats.
    chain: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    failover: FailoverRules = DEFAULT_RULES
    assistant_prefix: str | None = None  # how to ask it to continue a partial answer, if it can
    price: Price | None = None  # None: its usage is counted, its cost is unknown

    @property
    def has_fallbacks(self) -> bool:
        """Requests for this model take the guarded path, which can try another model."""
        return bool(self.chain or self.context_window_fallbacks)


TURN, CONVERSATION = "turn", "conversation"  # router.stickiness


@dataclass(frozen=True)
class DecisionSettings:
    """How long router decisions are kept and reused (router.stickiness, router.cache)."""

    stickiness: str = TURN
    max_entries: int = 10_000
    ttl_s: float = 3600.0


@dataclass(frozen=True)
class Aliases:
    """Model names clients send -> a name of the policy (a model, or the router alias): exact
    names first, then glob patterns (`claude-haiku-*`) in the order the policy lists them. A name
    the policy itself defines is never an alias (the loader rejects such an entry)."""

    entries: Mapping[str, str] = field(default_factory=dict)
    exact: Mapping[str, str] = field(init=False)
    patterns: tuple[tuple[str, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        globbed = {k: v for k, v in self.entries.items() if any(c in k for c in "*?[")}
        object.__setattr__(self, "exact", {k: v for k, v in self.entries.items() if k not in globbed})
        object.__setattr__(self, "patterns", tuple(globbed.items()))

    def resolve(self, name: str) -> str | None:
        """The policy name `name` is an alias of, or None."""
        if name in self.exact:
            return self.exact[name]
        return next((target for pattern, target in self.patterns if fnmatchcase(name, pattern)), None)


@dataclass(frozen=True)
class Route:
    name: str
    description: str
    model: Model
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    version: str  # content digest of the source file: changes exactly when the policy does
    source: str
    router: RouterConfig
    router_alias: str
    providers: Mapping[str, Provider]
    models: Mapping[str, Model]
    routes: tuple[Route, ...]
    default_model: Model
    decisions: DecisionSettings = DecisionSettings()
    aliases: Aliases = Aliases()
    envelopes: tuple[str, ...] = DEFAULT_ENVELOPES  # tags cut from what routing reads
    # Derived once per policy, not per request:
    route_specs: tuple[RouteSpec, ...] = field(init=False)  # the routes as routers see them
    routes_by_name: Mapping[str, Route] = field(init=False)

    def __post_init__(self) -> None:
        specs = tuple(RouteSpec(r.name, r.description, r.examples) for r in self.routes)
        object.__setattr__(self, "route_specs", specs)
        object.__setattr__(self, "routes_by_name", {r.name: r for r in self.routes})

    def model_names(self) -> list[str]:
        """What an app may put in `model`: the router alias first, then configured models."""
        return [self.router_alias, *self.models]

    def resolve(self, requested: str) -> str:
        """The name of this policy a requested model name means: itself, or what its alias
        leads to (an unknown name stays as it is, for the 404 to name)."""
        if requested == self.router_alias or requested in self.models:
            return requested
        return self.aliases.resolve(requested) or requested


@dataclass(frozen=True)
class PolicySet:
    """Every loaded policy; `default` is always present."""

    policies: Mapping[str, Policy]
    apps: Apps | None = None  # from apps.yaml; None: no app keys, every caller is let in

    @property
    def default(self) -> Policy:
        return self.policies[DEFAULT_POLICY]

    def providers(self) -> list[Provider]:
        """Distinct providers across all policies (one per Envoy cluster)."""
        return providers_of(self)

    def versions(self) -> dict[str, str]:
        """Each policy's version, and the apps file's: any change among them is a reload."""
        versions = {name: p.version for name, p in self.policies.items()}
        if self.apps is not None:
            versions[APPS_FILE_STEM] = self.apps.version
        return versions


def providers_of(*policy_sets: PolicySet) -> list[Provider]:
    """Distinct providers across policy sets, by cluster name, in a stable order."""
    seen: dict[str, Provider] = {}
    for policy_set in policy_sets:
        for policy in policy_set.policies.values():
            for provider in policy.providers.values():
                seen.setdefault(provider.cluster, provider)
    return sorted(seen.values(), key=lambda p: p.cluster)
