"""Arch-Router over an OpenAI-compatible endpoint (vLLM): one pooled client per endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from router_model.answer import NO_ROUTE, parse_answer
from router_model.prompt import render_prompt
from router_model.router import RouterOutcome, RouterQuery

# `{"route": "<longest route name>"}` is well under this for any sane route name.
MAX_ANSWER_TOKENS = 32


def answer_choices(route_names: Sequence[str]) -> list[str]:
    """Every answer the model may give, for constrained decoding."""
    return [json.dumps({"route": name}) for name in (*route_names, NO_ROUTE)]


def build_request(query: RouterQuery, model: str) -> dict[str, Any]:
    """The ONE place that builds the router's request body (`switchyard prompt` prints it)."""
    return {
        "model": model,
        "messages": [
            {"role": "user", "content": render_prompt(query.routes_text, query.conversation)}
        ],
        "temperature": 0,  # greedy, as the model card asks
        "max_tokens": MAX_ANSWER_TOKENS,
        # vLLM constrains the answer to one of the policy's routes (or "other").
        "structured_outputs": {"choice": answer_choices(query.route_names)},
    }


class ArchRouterClient:
    """Asks one OpenAI-compatible endpoint; never raises, a failure is an outcome."""

    def __init__(
        self, endpoint: str, model: str, timeout_ms: int, api_key: str | None = None
    ) -> None:
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_ms / 1000
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        started = time.perf_counter()
        route: str | None
        try:
            async with asyncio.timeout(self.timeout_s):
                text = await self._ask(build_request(query, self.model))
        except TimeoutError:
            route, reason = None, "router_timeout"
        except aiohttp.ClientResponseError:
            route, reason = None, "router_error"
        except (aiohttp.ClientError, OSError):
            route, reason = None, "router_unavailable"
        except (ValueError, KeyError, IndexError, TypeError):
            route, reason = None, "unparseable"
        else:
            parsed = parse_answer(text, query.route_names)
            route, reason = parsed.route, parsed.reason
        return RouterOutcome(route, reason, (time.perf_counter() - started) * 1000)

    async def _ask(self, body: dict[str, Any]) -> str:
        async with self._pool().post(self.url, json=body) as response:
            response.raise_for_status()
            payload = await response.json(content_type=None)
        content = payload["choices"][0]["message"]["content"]
        return content if isinstance(content, str) else ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
