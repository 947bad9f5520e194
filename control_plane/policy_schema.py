"""The policy file's wire form (YAML, `version: 1`), validated field by field.

This is the user contract from DESIGN.md. Every model forbids unknown keys so that a typo is an
error with a line number rather than a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RouterSpec(_Strict):
    endpoint: HttpUrl
    model: Annotated[str, StringConstraints(min_length=1)]
    # At most 10 s: Envoy's ext_proc message_timeout (envoy/bootstrap.yaml) is 11 s.
    timeout_ms: Annotated[int, Field(gt=0, le=10_000)] = 400
    api_key_env: EnvVarName | None = None


class ProviderSpec(_Strict):
    base_url: HttpUrl
    api_key_env: EnvVarName | None = None
    ca_file: Annotated[str, StringConstraints(min_length=1)] | None = None
    request_timeout_s: Annotated[int, Field(gt=0, le=86_400)] = 600


class ModelSpec(_Strict):
    provider: Name
    upstream_model: Annotated[str, StringConstraints(min_length=1)] | None = None


class RouteSpecWire(_Strict):
    name: Name
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    model: Name


class PolicySpec(_Strict):
    version: Annotated[int, Field(ge=1, le=1)]
    router: RouterSpec
    router_alias: Annotated[str, StringConstraints(min_length=1)] = "auto"
    providers: Annotated[dict[Name, ProviderSpec], Field(min_length=1)]
    models: Annotated[dict[Name, ModelSpec], Field(min_length=1)]
    routes: list[RouteSpecWire] = []
    default_model: Name
