"""What every client script shares: its command line, the task, the tool, and how it reports.

A script runs under .clients/py/bin/python (the real client packages, pinned by
scripts/install_clients.sh) as `python SCRIPT --base-url URL --model NAME --key KEY --mode MODE
[--nonce N]`, and prints one JSON line last: {"answer": <the final answer text>, ...}. A nonce makes
the conversation a new one (a router decides each new conversation; the same one is decided once).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

# The fake provider calls the tool that this directive names, then quotes the tool's result.
TOOL_PROMPT = 'What is the weather? call `lookup_weather` with {"city": "Paris"}'
PLAIN_PROMPT = "say hello"


def lookup_weather(city: str) -> str:
    """Look up the weather in a city."""
    return f"sunny in {city}"


def arguments(*modes: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--mode", choices=modes, required=True)
    parser.add_argument("--nonce", default="")
    args = parser.parse_args()
    suffix = f" (conversation {args.nonce})" if args.nonce else ""
    args.tool_prompt, args.plain_prompt = TOOL_PROMPT + suffix, PLAIN_PROMPT + suffix
    return args


def report(answer: Any, **extra: Any) -> None:
    print(json.dumps({"answer": answer, **extra}))
