"""The `switchyard` command: up, check, prompt, route, eval, tune (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from control_plane.apis.doors import DOORS, ROUTE
from control_plane.apis.table import ANTHROPIC
from control_plane.event_loop import run_loop
from control_plane.ledger import LedgerError, default_state_dir
from control_plane.observability.logging_setup import configure as configure_logging
from control_plane.policy.apps import APPS_FILE_STEM, Apps, key_digest
from control_plane.policy.loader import (
    PolicyError,
    Problem,
    apps_file,
    load_apps_file,
    load_policies,
    load_policy_file,
    parse_policy,
    policy_files,
)
from control_plane.policy.model import Policy, Provider
from control_plane.routing.router_pool import RouterPool
from control_plane.routing.choice import choose_model
from control_plane.policy.edits import set_router_embedding
from control_plane.routing.evaluation import (
    DatasetError,
    Item,
    evaluate,
    format_misses,
    format_report,
    load_dataset,
    stderr_progress,
)
from control_plane.routing.tuning import Arrays, Scored, Tuned, figures_of, other_requests, score_dataset, tune
from control_plane.sidecar import HostPort, SidecarOptions, run
from control_plane.workers.pool import available_cpus, default_count
from router_model.client import PreparedRoutes, build_request
from router_model.conversation import select_conversation
from router_model.embedding import EmbeddingRouter
from router_model.explanation import explain, gate_in_force
from router_model.kinds import HYBRID, KINDS, RouterFactory, embedding_tier
from router_model.serving import ROUTER_MODEL_NAME, RouterServing
from router_model.standin import QUICKSTART_MODEL_NAMES, STANDIN_MODEL_NAME, ensure_standin_model


def _vllm_serving(router: str | None, models: str | None, device: str) -> RouterServing | None:
    """One vLLM server: the router model (`--with-router`) and/or the stand-in answering as the
    quickstart's local models (`--with-models standin`)."""
    if router not in (None, "standin") and models is not None:
        raise SystemExit("--with-models standin shares one vLLM server with --with-router standin "
                         "only; serve a real router model separately")
    if router is not None and router != "standin":
        return RouterServing(model=router, device=device)
    names = [ROUTER_MODEL_NAME] if router == "standin" else []
    names += list(QUICKSTART_MODEL_NAMES) if models == "standin" else []
    if not names:
        return None
    return RouterServing(model=str(ensure_standin_model()), served_name=names[0],
                         extra_names=(*names[1:], STANDIN_MODEL_NAME), device="cpu")


def cmd_up(args: argparse.Namespace) -> int:
    options = SidecarOptions(
        policies=Path(args.policies),
        listen=HostPort.parse(args.listen),
        admin=HostPort.parse(args.admin),
        processor=HostPort.parse(args.processor),
        control=HostPort.parse(args.control),
        workers=args.workers,
        log_level=args.log_level,
        envoy_admin=HostPort.parse(args.envoy_admin),
        failover=HostPort.parse(args.failover),
        stream_idle_timeout_s=args.stream_idle_timeout,
        router_serving=_vllm_serving(args.with_router, args.with_models, args.router_device),
        run_envoy=not args.no_envoy,
        envoy_bootstrap=Path(args.envoy_bootstrap) if args.envoy_bootstrap else None,
        watch=args.watch,
        drain_s=args.drain_seconds,
        state_dir=Path(args.state_dir) if args.state_dir else default_state_dir(),
        state_url=args.state,
    )
    try:
        return run_loop(run(options))
    except (PolicyError, LedgerError) as exc:
        print(exc, file=sys.stderr)
        return 1


def _translated_doors(provider: Provider) -> str:
    return ", ".join(d.path for d in DOORS.values() if d.decides == ROUTE and not provider.serves(d.api))


def cmd_check(args: argparse.Namespace) -> int:
    paths: list[Path] = []
    apps_paths: list[Path] = []
    for raw in args.paths or ["policies"]:
        path = Path(raw)
        if path.is_dir():
            paths += policy_files(path)
            found = apps_file(path)
            apps_paths += [found] if found else []
        elif path.stem == APPS_FILE_STEM:
            apps_paths.append(path)
        else:
            paths.append(path)
    try:
        policies = load_policies(paths)
        # An apps file is checked against the policies of its own folder.
        folders = [load_policies(policy_files(p.parent)) for p in apps_paths]
        apps = [(load_apps_file(p, folder), folder) for p, folder in zip(apps_paths, folders)]
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name, policy in sorted(policies.items()):
        examples = sum(len(r.examples) for r in policy.routes)
        print(f"{policy.source}: ok (policy '{name}', router {policy.router.kind}, "
              f"{len(policy.routes)} routes, {examples} examples, "
              f"stickiness {policy.decisions.stickiness}, version {policy.version})")
        embedding = _embedding_line(policy)
        if embedding:
            print(f"  {embedding}")
        for model in policy.models.values():
            if model.has_fallbacks:
                line = " -> ".join((model.name, *model.chain))
                if model.context_window_fallbacks:
                    line += f" (context window: {', '.join(model.context_window_fallbacks)})"
                continuers = [n for n in model.chain if policy.models[n].assistant_prefix]
                if continuers:
                    line += f" (continues broken streams: {', '.join(continuers)})"
                print(f"  failover: {line}")
        for provider in policy.providers.values():
            print(f"  provider: {provider.name} (api {provider.api}"
                  + (f", anthropic-version {provider.anthropic_version}" if provider.anthropic_version else "")
                  + (", responses native" if provider.responses_native else "")
                  + ("" if provider.ask_stream_usage else ", never asked for a stream's usage")
                  + f"): apps on {_translated_doors(provider)} are translated")
            if provider.api == ANTHROPIC and not provider.path_prefix.endswith("/v1"):
                print(f"  warning: provider '{provider.name}': base_url usually ends in /v1 "
                      "(https://api.anthropic.com/v1); Switchyard appends `messages` to it")
        for pattern, target in policy.aliases.entries.items():
            print(f"  alias: {pattern} -> {target}")
    for registry, folder_policies in apps:
        print(f"{registry.source}: ok ({len(registry.names)} apps: {', '.join(registry.names)})")
        for line in _unpriced_under_budget(registry, folder_policies):
            print(f"  warning: {line}")
    return 0


def _unpriced_under_budget(registry: Apps, policies: Mapping[str, Policy]) -> list[str]:
    """Models without a price in a policy an app with a budget may use: their spend counts as
    nothing toward the budget."""
    lines = []
    for app in registry.by_digest.values():
        if app.limits.usd_per_day is None and app.limits.usd_per_month is None:
            continue
        for name, policy in sorted(policies.items()):
            # The router alias reaches every model of the policy.
            reachable = [m for m in policy.models.values()
                         if app.may_use_model(policy.router_alias) or app.may_use_model(m.name)]
            unpriced = sorted(m.name for m in reachable if m.price is None)
            if app.may_use_policy(name) and unpriced:
                lines.append(f"app '{app.name}' has a budget, but in policy '{name}' these models have no "
                             f"price, so what they cost does not count toward it: {', '.join(unpriced)}")
    return lines


def _embedding_line(policy: Policy) -> str:
    """How the embedding tier decides `other` for this policy ("" when it has none)."""
    router = policy.router
    count = len(router.other_examples)
    if not router.uses_embedding:
        return f"warning: router kind {router.kind} has no embedding tier: its {count} other examples are ignored" \
            if count else ""
    others = f", {count} other examples" if count else ""
    if router.threshold is not None:
        return f"embedding: {router.encoder}, fixed threshold {router.threshold:g}{others}"
    return f"embedding: {router.encoder}, calibrated (strictness {router.strictness:g}){others}"


def cmd_app_key(args: argparse.Namespace) -> int:
    """A new random app key, and the apps.yaml entry that admits it (only its digest is kept)."""
    key = f"sk-sy-{secrets.token_urlsafe(32)}"
    print(f"key (give it to the app; it is not stored anywhere): {key}", file=sys.stderr)
    print(f"  {args.name}:\n    key_sha256: {key_digest(key)}")
    return 0


def _conversation(args: argparse.Namespace) -> list[Any]:
    if getattr(args, "conversation", None):
        data = json.loads(Path(args.conversation).read_text(encoding="utf-8"))
        messages: list[Any] = data["messages"] if isinstance(data, dict) else data
        return messages
    return [{"role": "user", "content": args.text}]


def cmd_prompt(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.policy))
    conversation = select_conversation(_conversation(args))
    model = policy.router.model or ROUTER_MODEL_NAME
    body = build_request(PreparedRoutes.of(policy.route_specs), conversation, model)
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def _policy(args: argparse.Namespace) -> Policy:
    """The policy file, with the router kind overridden by `--router` when given."""
    policy = load_policy_file(Path(args.policy))
    kind = getattr(args, "router", None)
    if kind is None or kind == policy.router.kind:
        return policy
    router = dataclasses.replace(policy.router, kind=kind)
    if router.uses_arch_router and not (router.endpoint and router.model):
        message = f"--router {kind}: the policy has no router.endpoint and router.model"
        raise PolicyError([Problem(policy.source, 1, message)])
    return dataclasses.replace(policy, router=router)


async def _route(policy: Policy, messages: list[Any], explained: bool) -> int:
    pool = RouterPool()
    try:
        router = pool.router_for(policy)
        model, decision = await choose_model(policy, policy.router_alias, messages, router)
    finally:
        await pool.close()
    ms = "-" if decision.router_ms is None else f"{decision.router_ms:.1f} ms"
    print(f"route:    {decision.route}\nmodel:    {model.name} ({model.provider.name}: "
          f"{model.upstream_model})\ndecision: {decision.kind}\ntime:     {ms}")
    if explained:
        tier = embedding_tier(router)
        scores = tier.scores(select_conversation(messages)) if tier is not None else None
        if tier is None:
            print(f"\nno scores: router kind {policy.router.kind} does not score routes (Arch-Router "
                  "answers with a name); --router embedding shows the embedding tier's view")
        elif scores is None:
            print("\nno scores: no user text to route")
        else:
            margin = policy.router.margin if policy.router.kind == HYBRID else None
            print("", *explain(tier, scores, margin), sep="\n")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    return asyncio.run(_route(_policy(args), _conversation(args), args.explain))


async def _eval(args: argparse.Namespace) -> int:
    policy = _policy(args)
    try:
        items = load_dataset(Path(args.dataset), args.limit)
    except (DatasetError, OSError) as exc:
        print(f"switchyard eval: {exc}", file=sys.stderr)
        return 1
    pool = RouterPool()
    try:
        router = pool.router_for(policy)
        report = await evaluate(policy, router, items, stderr_progress())
    finally:
        await pool.close()
    metrics = report.metrics()
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        title = f"policy {policy.name} (router {policy.router.kind}) on {args.dataset}"
        print(format_report(metrics, title))
        misses = format_misses(metrics["misses"], args.misses)
        if misses:
            print("", misses, sep="\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    return asyncio.run(_eval(args))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _scored_for_tuning(policy: Policy, items: list[Item], candidates: list[str]) -> tuple[EmbeddingRouter, list[list[Scored]], Arrays]:
    """The dataset scored by the policy's embedding tier made calibrated (what tune sets), and
    the decisions of the policy as written."""
    factory = RouterFactory()
    try:
        router = factory.embedding(dataclasses.replace(policy.router, threshold=None), policy.route_specs)
        scored = score_dataset(router, items, candidates)
        written = scored
        if policy.router.threshold is not None:
            written = score_dataset(factory.embedding(policy.router, policy.route_specs), items)
        return router, scored, Arrays.of([s for turns in written for s in turns])
    finally:
        asyncio.run(factory.close())


def cmd_tune(args: argparse.Namespace) -> int:
    policy = load_policy_file(Path(args.policy))
    if not policy.router.uses_embedding:
        print(f"switchyard tune: router kind {policy.router.kind} has no embedding tier to tune "
              "(kinds embedding and hybrid have)", file=sys.stderr)
        return 1
    try:
        items = load_dataset(Path(args.dataset))
    except (DatasetError, OSError) as exc:
        print(f"switchyard tune: {exc}", file=sys.stderr)
        return 1
    existing = list(policy.router.other_examples)
    added = [(i, t) for i, t in other_requests(items) if t not in existing] if args.add_other_examples else []
    added = list({t: (i, t) for i, t in added}.values())  # one example per text
    # Candidate `other` examples, with the item each came from (None: already in the policy).
    owners: list[int | None] = ([None] * len(existing) + [i for i, _ in added]) if added else []
    candidates = (existing + [t for _, t in added]) if added else []
    router, scored, as_written = _scored_for_tuning(policy, items, candidates)
    hybrid = policy.router.kind == HYBRID
    tuned = tune(router, scored, args.other_recall, args.folds, args.precision if hybrid else None, owners)
    _print_tuning(args, policy, router, tuned, as_written, len(added))
    values: dict[str, str | list[str]] = {"strictness": f"{tuned.strictness:.3f}"}
    if tuned.margin is not None:
        values["margin"] = f"{tuned.margin:g}"
    if added:
        values["other_examples"] = existing + [t for _, t in added]
    _write_or_print(Path(args.policy), values, args.write, policy.router.threshold is not None)
    return 0


def _print_tuning(args: argparse.Namespace, policy: Policy, router: EmbeddingRouter, tuned: Tuned,
                  as_written: Arrays, added: int) -> None:
    held_out, picked = tuned.cross_validation.held_out, tuned.picked
    print(f"policy {policy.name} (router {policy.router.kind}, {len(policy.routes)} routes, "
          f"{len(policy.router.other_examples)} other examples) on {args.dataset}: "
          f"{held_out.decisions} decisions, {int(as_written.is_other.sum())} of them `other`")
    print(f"target: other recall >= {_pct(args.other_recall)}"
          + (f"; the dataset's {added} `other` requests added as other examples" if added else "") + "\n")
    if added:
        print("caution: added examples catch requests like themselves; cross-validation within one dataset "
              "cannot show how `other` requests unlike all of them fare: check on a set collected apart "
              "(switchyard eval)\n")
    print(f"{args.folds}-fold cross-validation (picked on {args.folds - 1} folds, measured on the rest):")
    print(f"  in-scope {_pct(held_out.in_scope)}   other recall {_pct(held_out.other_recall)}   "
          f"accuracy {_pct(held_out.accuracy)}   <- expect these on new requests like these")
    print(f"  strictness per fold: {' '.join(f'{s:.3f}' for s in tuned.cross_validation.strictness_per_fold)}")
    print(f"picked on all {picked.decisions}: strictness {tuned.strictness:.3f} (cut {tuned.cut:.3f}): in-scope "
          f"{_pct(picked.in_scope)}, other recall {_pct(picked.other_recall)} (on the data it was picked on)")
    now = figures_of(as_written.decided_right, as_written.is_other)
    gate = f"fixed threshold {policy.router.threshold:g}" if policy.router.threshold is not None else gate_in_force(router)
    print(f"as written ({gate}): in-scope {_pct(now.in_scope)}, other recall {_pct(now.other_recall)}")
    if picked.other_recall is not None and picked.other_recall < args.other_recall:
        print(f"\nnote: even strictness 1.0 leaves other recall at {_pct(picked.other_recall)}: list requests "
              "like these under router.embedding.other_examples (or use --add-other-examples):")
        print("\n".join(f"  -> {s.best}: {' '.join(s.text.split())[:100]}" for s in tuned.missed[:10]))
    if tuned.margin is not None:
        cv = tuned.cross_validation
        print(f"\nhybrid margin {tuned.margin:g}: the embedding tier's own decisions right >= "
              f"{_pct(args.precision)} of the time; cross-validated: it decides {_pct(cv.alone_share)} alone, "
              f"{_pct(cv.alone_precision)} of them right")


def _write_or_print(path: Path, values: dict[str, str | list[str]], write: bool, had_threshold: bool) -> None:
    if not write:
        print("\npaste into the policy (or run again with --write):\nrouter:\n  embedding:")
        for key, value in values.items():
            print(f"    {key}: {value}" if isinstance(value, str) else
                  f"    {key}:\n" + "\n".join(f"      - {json.dumps(v, ensure_ascii=False)}" for v in value))
        if had_threshold:
            print("    # and remove `threshold`: it fixes the line instead of calibrating it")
        return
    text = set_router_embedding(path.read_text(encoding="utf-8"), values, remove=["threshold"])
    parse_policy(text, str(path), path.stem)  # the edited file must still be a valid policy
    partial = path.with_name(path.name + ".tune")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # atomic: a watcher never sees half a file
    written = ", ".join(f"router.embedding.{k}: {v if isinstance(v, str) else f'{len(v)} items'}" for k, v in values.items())
    print(f"\nwrote {path}: {written}")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("must be at least 2")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="switchyard", description=__doc__)
    top.add_argument("--log-level", default="info")
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the sidecar (Envoy + processor + control plane)")
    up.add_argument("--policies", default="policies")
    up.add_argument("--listen", default="127.0.0.1:10000", help="the apps' OpenAI base URL host")
    up.add_argument("--admin", default="127.0.0.1:9090")
    up.add_argument("--processor", default="127.0.0.1:50051",
                    help="the processor workers' ext_proc gRPC address (all of them share it)")
    up.add_argument("--workers", type=_at_least_one, default=default_count(available_cpus()), metavar="N",
                    help="processor worker processes (default: one per available core, at most 8)")
    up.add_argument("--control", default="127.0.0.1:50053",
                    help="the control plane's gRPC address for Envoy (ADS, access log)")
    up.add_argument("--envoy-admin", default="127.0.0.1:9901")
    up.add_argument("--stream-idle-timeout", type=int, default=300, metavar="SECONDS",
                    help="Envoy closes a stream (request or response) silent this long")
    up.add_argument("--failover", default="127.0.0.1:50052",
                    help="the guarded path's HTTP address (fallbacks, retries, stream checks)")
    up.add_argument("--with-router", metavar="MODEL",
                    help="also serve the router model with vLLM: 'standin' (offline, CPU) or a "
                         "model id/path (e.g. katanemo/Arch-Router-1.5B)")
    up.add_argument("--with-models", choices=["standin"],
                    help="also serve the offline stand-in LLM with vLLM as the quickstart "
                         "policy's local models (local-coder, local-debugger, ...)")
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
    up.add_argument("--state-dir", metavar="DIR", default=os.environ.get("SWITCHYARD_STATE_DIR"),
                    help="where usage, budgets and token limits are kept across restarts (SQLite; "
                         "default $XDG_STATE_HOME/switchyard or ~/.local/state/switchyard; env "
                         "SWITCHYARD_STATE_DIR)")
    up.add_argument("--state", metavar="URL", default=os.environ.get("SWITCHYARD_STATE"),
                    help="redis://host:port/db: share usage and limits with every sidecar using it "
                         "(env SWITCHYARD_STATE)")
    up.set_defaults(func=cmd_up)

    check = sub.add_parser("check", help="validate policy files (and apps.yaml)")
    check.add_argument("paths", nargs="*", metavar="PATH")
    check.set_defaults(func=cmd_check)

    app_key = sub.add_parser("app-key", help="make a new app key and its apps.yaml entry")
    app_key.add_argument("name", help="the app's name")
    app_key.set_defaults(func=cmd_app_key)

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
    sub.choices["route"].add_argument("--router", choices=list(KINDS),
                                      help="use this router kind instead of the policy's")
    sub.choices["route"].add_argument("--explain", action="store_true",
                                      help="print every route's score, the best-matching anchor, and "
                                           "the `other` line in force (embedding tier)")

    evaluation = sub.add_parser("eval", help="measure routing accuracy and latency on a dataset")
    evaluation.add_argument("--policy", required=True)
    evaluation.add_argument("--dataset", required=True, metavar="FILE.jsonl")
    evaluation.add_argument("--router", choices=list(KINDS),
                            help="use this router kind instead of the policy's")
    evaluation.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    evaluation.add_argument("--json", action="store_true", help="print one JSON object")
    evaluation.add_argument("--misses", type=int, default=20, metavar="N",
                            help="print the first N requests decided wrong (-1: all; 0: none)")
    evaluation.set_defaults(func=cmd_eval)

    tuning = sub.add_parser("tune", help="pick the embedding tier's strictness (and a hybrid's margin) "
                                       "for an `other` recall, cross-validated on a labelled dataset")
    tuning.add_argument("--policy", required=True)
    tuning.add_argument("--dataset", required=True, metavar="FILE.jsonl")
    tuning.add_argument("--other-recall", type=_fraction, default=0.85, metavar="R",
                        help="the share of `other` requests to keep from the routes (default 0.85)")
    tuning.add_argument("--folds", type=_at_least_two, default=5, metavar="K", help="cross-validation folds")
    tuning.add_argument("--precision", type=_fraction, default=0.95, metavar="P",
                        help="hybrid: how often the embedding tier must be right to answer alone")
    tuning.add_argument("--add-other-examples", action="store_true",
                        help="also add the dataset's `other` requests to router.embedding.other_examples "
                             "(cross-validated like the rest)")
    tuning.add_argument("--write", action="store_true",
                        help="write the setting into the policy file (comments kept) instead of printing it")
    tuning.set_defaults(func=cmd_tune)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.func(args))
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    except BrokenPipeError:  # `switchyard eval ... | head`: the reader has what it wanted
        # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a command killed by the broken pipe would exit


if __name__ == "__main__":
    sys.exit(main())
