"""Load policy files: YAML -> validated wire form -> compiled Policy, with `file:line:` errors.

Everything is checked before anything is returned (all-or-nothing): a file with one problem yields
no policy, and every problem found is reported, each at the line of the YAML node it concerns.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from control_plane.apis.anthropic_messages import DEFAULT_VERSION
from control_plane.apis.table import ANTHROPIC
from control_plane.policy.failover_settings import DEFAULT_RULES
from control_plane.ledger import AppLimits
from control_plane.policy.apps import APPS_FILE_STEM, App, Apps, key_digest
from control_plane.policy.model import (
    DEFAULT_POLICY,
    Aliases,
    DecisionSettings,
    Model,
    Policy,
    PolicySet,
    Price,
    Provider,
    Route,
)
from control_plane.policy.schema import AppsSpec, PolicySpec
from router_model.calibration import default_strictness
from router_model.kinds import RouterConfig
from router_model.router import NO_ROUTE

Loc = Sequence[str | int]
Spec = TypeVar("Spec", PolicySpec, AppsSpec)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class PolicyError(Exception):
    """One or more problems; the message lists them one per line as `file:line: message`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Nodes:
    """Line numbers (1-based) of YAML nodes, looked up by a pydantic-style location path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, loc: Loc, key: bool = False) -> int:
        node = self.root
        if node is None:
            return 1
        for depth, part in enumerate(loc):
            child = self._child(node, part, key and depth == len(loc) - 1)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    @staticmethod
    def _child(node: yaml.Node, part: str | int, key: bool) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    found: yaml.Node = key_node if key else value_node
                    return found
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                item: yaml.Node = node.value[part]
                return item
        return None


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[Problem]:
    """PyYAML keeps the last of two equal keys silently; a policy must not."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                problems.append(Problem(file, line, f"duplicate key '{key_node.value}'"))
            seen.add(key_node.value)
            problems += _duplicate_keys(value_node, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, file)
    return problems


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "policy"
    kind = error["type"]
    if kind == "missing":
        return f"{loc}: required field is missing"
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    return f"{loc}: {error['msg']}"


def _schema_problems(error: ValidationError, nodes: _Nodes, file: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        if item["type"] == "missing":
            line = nodes.line(loc[:-1])  # the mapping that lacks it
        else:
            line = nodes.line(loc, key=item["type"] == "extra_forbidden")
        problems.append(Problem(file, line, _describe(item)))
    return problems


def _reference_problems(spec: PolicySpec, nodes: _Nodes, file: str) -> list[Problem]:
    problems = []
    for name, model in spec.models.items():
        if model.provider not in spec.providers:
            known = ", ".join(spec.providers)
            message = f"models.{name}.provider: unknown provider '{model.provider}' (known: {known})"
            problems.append(Problem(file, nodes.line(("models", name, "provider")), message))
    seen: set[str] = set()
    for index, route in enumerate(spec.routes):
        if route.name in seen:
            message = f"routes[{index}].name: duplicate route name '{route.name}'"
            problems.append(Problem(file, nodes.line(("routes", index, "name")), message))
        seen.add(route.name)
        if route.name == NO_ROUTE:
            message = f"routes[{index}].name: '{NO_ROUTE}' is reserved for 'no route matched'"
            problems.append(Problem(file, nodes.line(("routes", index, "name")), message))
        if route.model not in spec.models:
            message = f"routes[{index}].model: unknown model '{route.model}'"
            problems.append(Problem(file, nodes.line(("routes", index, "model")), message))
    problems += _fallback_problems(spec, nodes, file)
    problems += _other_example_problems(spec, nodes, file)
    if spec.default_model not in spec.models:
        message = f"default_model: unknown model '{spec.default_model}'"
        problems.append(Problem(file, nodes.line(("default_model",)), message))
    router = spec.router
    if RouterConfig(kind=router.kind).uses_arch_router:
        for key in ("endpoint", "model"):
            if getattr(router, key) is None:
                message = f"router.{key}: required for router kind '{router.kind}'"
                problems.append(Problem(file, nodes.line(("router",)), message))
    if spec.router_alias in spec.models:
        message = f"router_alias: '{spec.router_alias}' is also a configured model name"
        problems.append(Problem(file, nodes.line(("router_alias",)), message))
    return problems + _alias_problems(spec, nodes, file)


def _alias_problems(spec: PolicySpec, nodes: _Nodes, file: str) -> list[Problem]:
    """An alias must lead to a model or the router alias, and never hide a name of the policy."""
    problems = []
    names = [spec.router_alias, *spec.models]
    for pattern, target in spec.aliases.items():
        if target not in names:
            message = f"aliases.{pattern}: unknown model '{target}' (known: {', '.join(names)})"
            problems.append(Problem(file, nodes.line(("aliases", pattern)), message))
        if pattern in names:
            message = f"aliases.{pattern}: '{pattern}' is already a name of this policy; an alias cannot change it"
            problems.append(Problem(file, nodes.line(("aliases", pattern), key=True), message))
    return problems


def _other_example_problems(spec: PolicySpec, nodes: _Nodes, file: str) -> list[Problem]:
    """An `other` example that is also a route's example would pull that route both ways."""
    owners = {example: route.name for route in spec.routes for example in route.examples}
    problems = []
    for index, example in enumerate(spec.router.embedding.other_examples):
        if example in owners:
            where = ("router", "embedding", "other_examples", index)
            message = f"router.embedding.other_examples[{index}]: also an example of route '{owners[example]}'"
            problems.append(Problem(file, nodes.line(where), message))
    return problems


def _fallback_problems(spec: PolicySpec, nodes: _Nodes, file: str) -> list[Problem]:
    """Unknown names, a model naming itself, and cycles through `fallbacks`."""
    problems = []
    for name, model in spec.models.items():
        for key in ("fallbacks", "context_window_fallbacks"):
            for index, target in enumerate(getattr(model, key)):
                where = f"models.{name}.{key}[{index}]"
                if target not in spec.models:
                    message = f"{where}: unknown model '{target}' (known: {', '.join(spec.models)})"
                elif target == name:
                    message = f"{where}: a model cannot fall back to itself"
                else:
                    continue
                problems.append(Problem(file, nodes.line(("models", name, key, index)), message))
    cycle = _fallback_cycle({n: [f for f in m.fallbacks if f in spec.models and f != n]
                             for n, m in spec.models.items()})
    if cycle:
        message = f"models.{cycle[0]}.fallbacks: fallback cycle {' -> '.join(cycle)}"
        problems.append(Problem(file, nodes.line(("models", cycle[0], "fallbacks")), message))
    return problems


def _fallback_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first cycle found (as a closed path, e.g. [a, b, a]), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for target in graph[node]:
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in graph:
        found = visit(start, [])
        if found:
            return found
    return None


def _chain(name: str, graph: dict[str, list[str]]) -> tuple[str, ...]:
    """Depth-first order of everything `name` falls back to (the graph has no cycles)."""
    order: list[str] = []
    for target in graph[name]:
        for model in (target, *_chain(target, graph)):
            if model != name and model not in order:
                order.append(model)
    return tuple(order)


def _compile(spec: PolicySpec, name: str, file: str, digest: str) -> Policy:
    providers = {
        key: Provider(
            name=key,
            base_url=p.base_url,
            api_key_env=p.api_key_env,
            ca_file=p.ca_file,
            request_timeout_s=p.request_timeout_s,
            api=p.api,
            anthropic_version=p.anthropic_version or (DEFAULT_VERSION if p.api == ANTHROPIC else None),
            responses_native=p.responses == "native",
            ask_stream_usage=p.ask_stream_usage,
        )
        for key, p in spec.providers.items()
    }
    graph = {key: list(m.fallbacks) for key, m in spec.models.items()}
    policy_rules = DEFAULT_RULES.merged(spec.failover.model_dump())
    models = {
        key: Model(
            key,
            providers[m.provider],
            m.upstream_model or key,
            fallbacks=tuple(m.fallbacks),
            chain=_chain(key, graph),
            context_window_fallbacks=tuple(m.context_window_fallbacks),
            failover=policy_rules.merged(m.failover.model_dump()),
            assistant_prefix=m.assistant_prefix,
            price=Price(**m.price.model_dump()) if m.price else None,
        )
        for key, m in spec.models.items()
    }
    r = spec.router
    router = RouterConfig(
        kind=r.kind,
        endpoint=r.endpoint.rstrip("/") if r.endpoint else None,
        model=r.model,
        timeout_ms=r.timeout_ms,
        api_key_env=r.api_key_env,
        threshold=r.embedding.threshold,
        strictness=r.embedding.strictness or default_strictness(spec.routes),
        margin=r.embedding.margin,
        other_examples=tuple(r.embedding.other_examples),
        encoder=r.embedding.encoder,
        one_step=r.one_step,
    )
    return Policy(
        name=name,
        version=digest,
        source=file,
        router=router,
        router_alias=spec.router_alias,
        providers=providers,
        models=models,
        routes=tuple(
            Route(x.name, x.description, models[x.model], tuple(x.examples)) for x in spec.routes
        ),
        default_model=models[spec.default_model],
        decisions=DecisionSettings(r.stickiness, r.cache.max_entries, r.cache.ttl_s),
        aliases=Aliases(spec.aliases),
        envelopes=tuple(r.envelopes),
    )


def _validated(text: str, file: str, spec_type: type[Spec]) -> tuple[Spec, _Nodes, list[Problem]]:
    """YAML text -> the validated wire form, its node lines, and the problems found so far
    (duplicate keys); raise PolicyError when it cannot be validated at all."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([Problem(file, line, f"YAML syntax error: {reason}")]) from None
    nodes = _Nodes(root)
    problems: list[Problem] = _duplicate_keys(root, file)
    data = yaml.safe_load(text) if root is not None else None
    if not isinstance(data, dict):
        raise PolicyError([*problems, Problem(file, nodes.line(()), "a policy must be a mapping")])
    try:
        spec = spec_type.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(problems + _schema_problems(exc, nodes, file)) from None
    return spec, nodes, problems


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_policy(text: str, file: str, name: str) -> Policy:
    """Validate and compile one policy's YAML text; raise PolicyError listing every problem."""
    if name == APPS_FILE_STEM:
        raise PolicyError([Problem(file, 1, f"'{APPS_FILE_STEM}' is the apps file, not a policy name")])
    spec, nodes, problems = _validated(text, file, PolicySpec)
    problems += _reference_problems(spec, nodes, file)
    if problems:
        raise PolicyError(problems)
    return _compile(spec, name, file, _digest(text))


def parse_apps(text: str, file: str, policies: Mapping[str, Policy]) -> Apps:
    """Validate and compile apps.yaml against the folder's policies."""
    spec, nodes, problems = _validated(text, file, AppsSpec)
    by_digest: dict[str, App] = {}
    for name, app in spec.apps.items():
        line = nodes.line(("apps", name))
        digest = app.key_sha256
        if (app.key_sha256 is None) == (app.key_env is None):
            problems.append(Problem(file, line, f"apps.{name}: give exactly one of key_sha256, key_env"))
        elif app.key_env is not None:
            key = os.environ.get(app.key_env)
            if not key:
                message = f"apps.{name}.key_env: environment variable {app.key_env} is not set"
                problems.append(Problem(file, nodes.line(("apps", name, "key_env")), message))
            digest = key_digest(key) if key else None
        allowed = [p for n, p in policies.items() if app.policies is None or n in app.policies]
        for index, policy in enumerate(app.policies or []):
            if policy not in policies:
                message = f"apps.{name}.policies[{index}]: unknown policy '{policy}'"
                problems.append(Problem(file, nodes.line(("apps", name, "policies", index)), message))
        for index, model in enumerate(app.models or []):
            if not any(model in p.model_names() for p in allowed):
                message = f"apps.{name}.models[{index}]: no policy this app may use has model '{model}'"
                problems.append(Problem(file, nodes.line(("apps", name, "models", index)), message))
        if digest is None:
            continue
        if digest in by_digest:
            message = f"apps.{name}: same key as app '{by_digest[digest].name}'"
            problems.append(Problem(file, line, message))
        by_digest[digest] = App(
            name=name,
            policies=frozenset(app.policies) if app.policies is not None else None,
            models=frozenset(app.models) if app.models is not None else None,
            requests_per_minute=app.requests_per_minute,
            limits=AppLimits(app.budget.usd_per_day if app.budget else None,
                             app.budget.usd_per_month if app.budget else None, app.tokens_per_minute),
        )
    if problems:
        raise PolicyError(problems)
    return Apps(by_digest, file, _digest(text))


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(str(path), 1, f"cannot read: {exc}")]) from None
    return parse_policy(text, str(path), path.stem)


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def policy_files(directory: Path) -> list[Path]:
    return [p for p in _yaml_files(directory) if p.stem != APPS_FILE_STEM]


def apps_file(directory: Path) -> Path | None:
    found = [p for p in _yaml_files(directory) if p.stem == APPS_FILE_STEM]
    return found[0] if found else None


def load_apps_file(path: Path, policies: Mapping[str, Policy]) -> Apps:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(str(path), 1, f"cannot read: {exc}")]) from None
    return parse_apps(text, str(path), policies)


def load_policies(paths: Iterable[Path]) -> dict[str, Policy]:
    """Load several files; raise one PolicyError with the problems of all of them."""
    policies: dict[str, Policy] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            policy = load_policy_file(path)
        except PolicyError as exc:
            problems += exc.problems
            continue
        if policy.name in policies:
            message = f"policy '{policy.name}' is defined twice ({policies[policy.name].source})"
            problems.append(Problem(str(path), 1, message))
        policies[policy.name] = policy
    if problems:
        raise PolicyError(problems)
    return policies


def load_policy_set(directory: Path) -> PolicySet:
    """Every policy in a folder; `default.yaml` must be among them."""
    if not directory.is_dir():
        raise PolicyError([Problem(str(directory), 1, "policies folder does not exist")])
    policies = load_policies(policy_files(directory))
    if DEFAULT_POLICY not in policies:
        message = f"no {DEFAULT_POLICY}.yaml: requests that name no policy need one"
        raise PolicyError([Problem(str(directory / f"{DEFAULT_POLICY}.yaml"), 1, message)])
    apps_path = apps_file(directory)
    apps = load_apps_file(apps_path, policies) if apps_path is not None else None
    return PolicySet(policies, apps)
