"""The policy file's wire form (YAML, `version: 1`), validated field by field.

This is the user contract from DESIGN.md. Every model forbids unknown keys so that a typo is an
error with a line number rather than a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from control_plane.apis.conversation import DEFAULT_ENVELOPES
from control_plane.apis.table import ANTHROPIC, OPENAI, PROVIDER_APIS
from control_plane.limits import MAX_ROUTER_TIMEOUT_MS
from control_plane.apis.continuation import STYLES as CONTINUATION_STYLES
from router_model.encoders import DEFAULT_ENCODER, ENCODERS
from router_model.kinds import DEFAULT_MARGIN, KINDS
from router_model.router import ARCH_ROUTER

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]


def _one_of(value: str, known: Collection[str], what: str) -> str:
    """`value` when it names a row of a table (router kinds, APIs, ...); else the error listing them."""
    if value not in known:
        raise ValueError(f"unknown {what} '{value}' (known: {', '.join(known)})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


SampleText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class EmbeddingSpec(_Strict):
    # A fixed cosine similarity under which the embedding tier answers `other`. Unset: the line
    # is calibrated for the policy against off-topic requests (router_model/calibration.py).
    threshold: Annotated[float, Field(ge=-1, le=1)] | None = None
    # Calibrated line: the share of the off-topic background requests the routes leave to `other`.
    strictness: Annotated[float, Field(ge=0.5, le=1)] | None = None
    # hybrid: the embedding tier answers alone when its best route leads the next by this much.
    margin: Annotated[float, Field(ge=0, le=2)] = DEFAULT_MARGIN
    # Requests that belong to no route (negative anchors): one closer to them than to every
    # route is `other`.
    other_examples: Annotated[list[SampleText], Field(max_length=500)] = []
    # The sentence encoder (router_model/encoders.py): `minilm-int8` trades 1-2 points of accuracy
    # for 2-3x less CPU a decision.
    encoder: str = DEFAULT_ENCODER

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, encoder: str) -> str:
        return _one_of(encoder, ENCODERS, "encoder")

    @model_validator(mode="after")
    def _one_line(self) -> EmbeddingSpec:
        if self.threshold is not None and self.strictness is not None:
            raise ValueError("give threshold (a fixed cosine) or strictness (calibrated), not both")
        return self


class DecisionCacheSpec(_Strict):
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    ttl_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 3600.0


class RouterSpec(_Strict):
    kind: str = ARCH_ROUTER
    # Where Arch-Router is served: required by the kinds that ask it (arch-router, hybrid).
    endpoint: HttpUrl | None = None
    model: Annotated[str, StringConstraints(min_length=1)] | None = None
    # Bounded so that Envoy's wait for the processor outlasts it (control_plane/limits.py).
    timeout_ms: Annotated[int, Field(gt=0, le=MAX_ROUTER_TIMEOUT_MS)] = 400
    api_key_env: EnvVarName | None = None
    embedding: EmbeddingSpec = EmbeddingSpec()
    # Whether a new user turn may change the model (turn), or the first decision holds for the
    # whole conversation (conversation). Either way, a tool loop keeps its turn's model.
    # Arch-Router: ask for one token when the route names' first tokens differ (README).
    one_step: bool = True
    stickiness: Literal["turn", "conversation"] = "turn"
    cache: DecisionCacheSpec = DecisionCacheSpec()
    # Tags a client wraps around what it adds to a user's message (apis/conversation.py): cut
    # from what routing reads, so the router sees what the person typed.
    envelopes: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")]],
                         Field(max_length=50)] = list(DEFAULT_ENVELOPES)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        return _one_of(kind, KINDS, "router kind")


class ProviderSpec(_Strict):
    base_url: HttpUrl
    # The provider's wire API (control_plane/apis/table.py); requests in another API are translated.
    api: str = OPENAI
    api_key_env: EnvVarName | None = None
    ca_file: Annotated[str, StringConstraints(min_length=1)] | None = None
    request_timeout_s: Annotated[int, Field(gt=0, le=86_400)] = 600
    # `native`: the provider also serves OpenAI's Responses API (`api: openai` only); apps on
    # /v1/responses then reach it untranslated.
    responses: Literal["native", "translate"] = "translate"
    # false: never send `stream_options` the app did not (`api: openai` only). Switchyard asks an
    # OpenAI chat stream for its usage; some OpenAI-compatible servers refuse the field (400/422).
    ask_stream_usage: bool = True
    # Sent as `anthropic-version` to an `api: anthropic` provider (an app's own header wins when
    # its request reaches the provider untranslated).
    anthropic_version: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None

    @field_validator("api")
    @classmethod
    def _known_api(cls, api: str) -> str:
        return _one_of(api, PROVIDER_APIS, "api")

    @model_validator(mode="after")
    def _keys_of_one_api(self) -> ProviderSpec:
        if self.anthropic_version is not None and self.api != ANTHROPIC:
            raise ValueError("anthropic_version applies only to a provider with `api: anthropic`")
        if self.responses == "native" and self.api != OPENAI:
            raise ValueError("`responses: native` applies only to a provider with `api: openai`")
        if not self.ask_stream_usage and self.api != OPENAI:
            raise ValueError("`ask_stream_usage` applies only to a provider with `api: openai`")
        return self


Seconds = Annotated[float, Field(gt=0, le=86_400)]
Count = Annotated[int, Field(ge=0, le=20)]


class FailoverSpec(_Strict):
    """Retry rules and time limits (control_plane/failover/rules.py); unset keys inherit: model
    <- policy `failover:` <- built-in defaults."""


    max_attempts: Annotated[int, Field(ge=1, le=20)] | None = None
    budget_s: Seconds | None = None
    connect_retries: Count | None = None
    server_error_retries: Count | None = None
    rate_limit_retries: Count | None = None
    backoff_s: Seconds | None = None
    max_wait_s: Annotated[float, Field(ge=0, le=86_400)] | None = None
    first_token_s: Seconds | None = None
    response_s: Seconds | None = None
    stall_s: Seconds | None = None
    circuit_failures: Annotated[int, Field(ge=1, le=1000)] | None = None
    circuit_cooldown_s: Seconds | None = None


Price = Annotated[float, Field(ge=0, le=100_000)]


class PriceSpec(_Strict):
    """USD per million tokens; cached input and cache writes cost the input price unless set."""

    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None
    cache_write_per_mtok: Price | None = None


class ModelSpec(_Strict):
    provider: Name
    upstream_model: Annotated[str, StringConstraints(min_length=1)] | None = None
    # Tried in order when this model fails (each with its own fallbacks after it).
    fallbacks: Annotated[list[Name], Field(max_length=20)] = []
    # Tried only when this model answers "context length exceeded".
    context_window_fallbacks: Annotated[list[Name], Field(max_length=20)] = []
    failover: FailoverSpec = FailoverSpec()
    # This model can continue a partial answer, and how to ask it (control_plane/failover/continuation.py):
    # a stream that breaks mid-answer on a model before it in a chain is finished here.
    assistant_prefix: str | None = None
    price: PriceSpec | None = None  # what its tokens cost (README: "Usage and cost")

    @field_validator("assistant_prefix")
    @classmethod
    def _known_style(cls, style: str | None) -> str | None:
        return style if style is None else _one_of(style, CONTINUATION_STYLES, "assistant_prefix")


class RouteSpecWire(_Strict):
    name: Name
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    model: Name
    # Sample requests for the embedding tier (Arch-Router sees descriptions only).
    examples: Annotated[list[SampleText], Field(max_length=500)] = []


class PolicySpec(_Strict):
    version: Annotated[int, Field(ge=1, le=1)]
    router: RouterSpec
    router_alias: Annotated[str, StringConstraints(min_length=1)] = "auto"
    # Model names clients send (exact, or glob patterns such as claude-haiku-*) -> a model of this
    # policy or the router alias.
    aliases: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], Name] = {}
    providers: Annotated[dict[Name, ProviderSpec], Field(min_length=1)]
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    routes: list[RouteSpecWire] = []
    default_model: Name
    failover: FailoverSpec = FailoverSpec()


class BudgetSpec(_Strict):
    usd_per_day: Annotated[float, Field(gt=0, le=10**9)] | None = None
    usd_per_month: Annotated[float, Field(gt=0, le=10**10)] | None = None


class AppSpec(_Strict):
    """One app in apps.yaml: its key (as a SHA-256 digest, or an environment variable holding
    it) and what it may use."""

    key_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    key_env: EnvVarName | None = None
    policies: list[Name] | None = None  # unset: every policy
    models: list[Annotated[str, StringConstraints(min_length=1)]] | None = None  # unset: every model
    requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    budget: BudgetSpec | None = None  # USD per UTC day and month (README: "Budgets")
    tokens_per_minute: Annotated[int, Field(ge=1, le=10**12)] | None = None  # input + output


class AppsSpec(_Strict):
    version: Annotated[int, Field(ge=1, le=1)]
    apps: dict[Name, AppSpec]
