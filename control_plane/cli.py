"""The `switchyard` command: up, check, prompt, route (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from control_plane.chat_request import ChatRequest
from control_plane.logging_setup import configure as configure_logging
from control_plane.model_choice import choose_model
from control_plane.policy import Policy
from control_plane.policy_loader import PolicyError, load_policies, load_policy_file, policy_files
from control_plane.sidecar import HostPort, SidecarOptions, run
from router_model.client import ArchRouterClient, build_request
from router_model.conversation import select_conversation
from router_model.router import RouterQuery
from router_model.serving import RouterServing
from router_model.standin import STANDIN_MODEL_NAME, ensure_standin_model


def _router_serving(spec: str | None, device: str) -> RouterServing | None:
    if spec is None:
        return None
    if spec == "standin":
        path = ensure_standin_model()
        return RouterServing(model=str(path), extra_names=(STANDIN_MODEL_NAME,), device="cpu")
    return RouterServing(model=spec, device=device)


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """uvloop where available: it cuts the processor's per-message overhead noticeably."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def cmd_up(args: argparse.Namespace) -> int:
    options = SidecarOptions(
        policies=Path(args.policies),
        listen=HostPort.parse(args.listen),
        admin=HostPort.parse(args.admin),
        processor=HostPort.parse(args.processor),
        envoy_admin=HostPort.parse(args.envoy_admin),
        router_serving=_router_serving(args.with_router, args.router_device),
        run_envoy=not args.no_envoy,
        envoy_bootstrap=Path(args.envoy_bootstrap) if args.envoy_bootstrap else None,
        watch=args.watch,
        drain_s=args.drain_seconds,
    )
    try:
        return _run_loop(run(options))
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1


def cmd_check(args: argparse.Namespace) -> int:
    paths: list[Path] = []
    for raw in args.paths or ["policies"]:
        path = Path(raw)
        paths += policy_files(path) if path.is_dir() else [path]
    try:
        policies = load_policies(paths)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, policy in sorted(policies.items()):
        print(f"{policy.source}: ok (policy '{name}', {len(policy.routes)} routes, "
              f"version {policy.version})")
    return 0


def _conversation(args: argparse.Namespace) -> list[Any]:
    if getattr(args, "conversation", None):
        data = json.loads(Path(args.conversation).read_text(encoding="utf-8"))
        messages: list[Any] = data["messages"] if isinstance(data, dict) else data
        return messages
    return [{"role": "user", "content": args.text}]


def _query(policy: Policy, messages: list[Any]) -> RouterQuery:
    return RouterQuery(policy.routes_text, list(policy.routes_by_name), select_conversation(messages))


def cmd_prompt(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.policy))
    body = build_request(_query(policy, _conversation(args)), policy.router.model)
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


async def _route(policy: Policy, messages: list[Any]) -> int:
    router = ArchRouterClient(policy.router.endpoint, policy.router.model, policy.router.timeout_ms)
    try:
        request = ChatRequest(body={}, model=policy.router_alias, messages=messages)
        model, decision = await choose_model(policy, request, router)
    finally:
        await router.close()
    ms = "-" if decision.router_ms is None else f"{decision.router_ms:.1f} ms"
    print(f"route:    {decision.route}\nmodel:    {model.name} ({model.provider.name}: "
          f"{model.upstream_model})\ndecision: {decision.kind}\ntime:     {ms}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.policy))
    return asyncio.run(_route(policy, _conversation(args)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    top.add_argument("--log-level", default="info")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the sidecar (Envoy + processor + control plane)")
    up.add_argument("--policies", default="policies")
    up.add_argument("--listen", default="127.0.0.1:10000", help="the apps' OpenAI base URL host")
    up.add_argument("--admin", default="127.0.0.1:9090")
    up.add_argument("--processor", default="127.0.0.1:50051", help="ext_proc gRPC address")
    up.add_argument("--envoy-admin", default="127.0.0.1:9901")
    up.add_argument("--with-router", metavar="MODEL",
                    help="also serve the router model with vLLM: 'standin' (offline, CPU) or a "
                         "model id/path (e.g. katanemo/Arch-Router-1.5B)")
    up.add_argument("--router-device", choices=["gpu", "cpu"], default="gpu")
    up.add_argument("--watch", choices=["inotify", "poll", "off"],
                    default=os.environ.get("SWITCHYARD_WATCH", "inotify"),
                    help="how to notice policy edits; poll for bind mounts without inotify "
                         "(env SWITCHYARD_WATCH)")
    up.add_argument("--drain-seconds", type=float, default=30.0,
                    help="how long a removed provider's Envoy cluster outlives the reload")
    up.add_argument("--no-envoy", action="store_true",
                    help="do not start Envoy (it runs elsewhere, e.g. its own container)")
    up.add_argument("--envoy-bootstrap", metavar="PATH",
                    help="write the rendered Envoy bootstrap here (default: a temp folder)")
    up.set_defaults(func=cmd_up)

    check = sub.add_parser("check", help="validate policy files")
    check.add_argument("paths", nargs="*", metavar="PATH")
    check.set_defaults(func=cmd_check)

    for name, func, help_ in (
        ("prompt", cmd_prompt, "print the router request body for a conversation (no network)"),
        ("route", cmd_route, "ask the router and print the decision"),
    ):
        command = sub.add_parser(name, help=help_)
        command.add_argument("--policy", required=True)
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--conversation", metavar="FILE.json")
        source.add_argument("text", nargs="?")
        command.set_defaults(func=func)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
