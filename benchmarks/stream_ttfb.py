"""Time to first byte of a streamed chat completion: direct to the provider vs through Switchyard
(explicit model and `auto` with a scripted router answering at once, and an explicit model with a
fallback chain, which takes the guarded path), same run, interleaved. The same for the Anthropic
door: direct to an Anthropic-API provider, through Switchyard to it (pass-through), and translated
both ways (Anthropic app -> OpenAI provider, OpenAI app -> Anthropic provider).

    python benchmarks/stream_ttfb.py [--requests 300] [--baseline DIR]

`--baseline DIR`: the same targets through `switchyard up` of another checkout (an earlier commit:
`git worktree add DIR COMMIT`) too, in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.stack import start_provider, start_sidecar  # noqa: E402
from harness.live_policy import policy  # noqa: E402


def ttfb_ms(client: httpx.Client, url: str, model: str) -> float:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    if url.endswith("/messages"):
        body["max_tokens"] = 64
    started = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200, response.status_code
        first = None
        for _ in response.iter_raw():
            first = first or time.perf_counter()
    assert first is not None
    return (first - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit, measured too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-ttfb-"))
    (work / "logs").mkdir()
    (work / "policies").mkdir()
    router, upstream = start_provider("router", work / "logs"), start_provider("up", work / "logs")
    sidecar = baseline = None
    try:
        router.control(route="chat")
        upstream.control(chunks=3, chunk_delay_ms=5)
        text = policy(router, {"up": upstream}, {"alpha-chat": "up"}, {"chat": "alpha-chat"})
        models = ("  chained: {provider: up, upstream_model: alpha-chat, fallbacks: [alpha-chat]}\n"
                  "  claude: {provider: anthropic, upstream_model: claude}\n")
        anthropic = f"  anthropic: {{base_url: '{upstream.url}/v1', api: anthropic}}\n"
        text = text.replace("models:\n", "models:\n" + models).replace("providers:\n", "providers:\n" + anthropic)
        (work / "policies" / "default.yaml").write_text(text)
        sidecar = start_sidecar("switchyard", work / "policies", work / "logs")
        if args.baseline:
            baseline = start_sidecar("baseline", work / "policies", work / "logs", checkout=args.baseline)
        targets = {"direct": (f"{upstream.url}/v1/chat/completions", "alpha-chat"),
                   "switchyard explicit": (f"{sidecar.base_url}/chat/completions", "alpha-chat"),
                   "switchyard auto": (f"{sidecar.base_url}/chat/completions", "auto"),
                   "switchyard chained": (f"{sidecar.base_url}/chat/completions", "chained"),
                   "anthropic direct": (f"{upstream.url}/v1/messages", "claude"),
                   "messages pass-through": (f"{sidecar.base_url}/messages", "claude"),
                   "messages -> openai": (f"{sidecar.base_url}/messages", "alpha-chat"),
                   "chat -> anthropic": (f"{sidecar.base_url}/chat/completions", "claude")}
        if baseline is not None:
            targets |= {f"baseline {name.removeprefix('switchyard ')}": (url.replace(sidecar.base_url, baseline.base_url), model)
                        for name, (url, model) in targets.items() if sidecar.base_url in url}
        samples: dict[str, list[float]] = {name: [] for name in targets}
        with httpx.Client() as client:
            for index in range(args.requests + 20):
                for name, (url, model) in targets.items():
                    value = ttfb_ms(client, url, model)
                    if index >= 20:  # warm-up
                        samples[name].append(value)
    finally:
        for running in (sidecar, baseline):
            if running is not None:
                running.process.stop()
        router.process.stop()
        upstream.process.stop()
    print(f"streamed chat completions, {args.requests} per target, interleaved")
    for name, values in samples.items():
        q = statistics.quantiles(values, n=100)
        print(f"{name:>22}: TTFB p50 {statistics.median(values):6.2f} ms  p99 {q[98]:6.2f} ms")


if __name__ == "__main__":
    main()
