"""Arch-Router over an OpenAI-compatible endpoint (vLLM)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from opentelemetry import propagate

from router_model.answer import parse_answer
from router_model.one_step import OneStepPlan, one_step_request
from router_model.prompt import Message, render_prompt, routes_json
from router_model.router import ARCH_ROUTER, NO_ROUTE, RouterOutcome, RouterQuery, RouteSpec

log = structlog.get_logger("switchyard.router")
PLAN_RETRY_S = 30.0  # how often to retry working out the one-step plan while vLLM is unreachable
# `{"route": "<longest route name>"}` is well under this for any sane route name.
MAX_ANSWER_TOKENS = 32


def answer_choices(route_names: Sequence[str]) -> list[str]:
    """Every answer the model may give, for constrained decoding."""
    return [json.dumps({"route": name}) for name in (*route_names, NO_ROUTE)]


@dataclass(frozen=True)
class PreparedRoutes:
    """What Arch-Router needs of a policy's routes, computed once per snapshot."""

    routes_text: str  # the prompt's {routes}
    names: tuple[str, ...]
    choices: tuple[str, ...]

    @classmethod
    def of(cls, routes: Sequence[RouteSpec]) -> PreparedRoutes:
        names = tuple(r.name for r in routes)
        return cls(routes_json(routes), names, tuple(answer_choices(names)))


def build_request(routes: PreparedRoutes, conversation: Sequence[Message], model: str) -> dict[str, Any]:
    """The ONE place that builds the router's request body (`switchyard prompt` prints it)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": render_prompt(routes.routes_text, conversation)}],
        "temperature": 0,  # greedy, as the model card asks
        "max_tokens": MAX_ANSWER_TOKENS,
        # vLLM constrains the answer to one of the policy's routes (or "other").
        "structured_outputs": {"choice": list(routes.choices)},
    }


class HttpSessions:
    """One pooled aiohttp session per router credential, shared by every policy and snapshot:
    a reload builds new routers but never new connection pools."""

    def __init__(self) -> None:
        self._sessions: dict[str | None, aiohttp.ClientSession] = {}

    def get(self, api_key: str | None) -> aiohttp.ClientSession:
        session = self._sessions.get(api_key)
        if session is None or session.closed:
            headers = {"content-type": "application/json"}
            if api_key:
                headers["authorization"] = f"Bearer {api_key}"
            connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=60)
            session = aiohttp.ClientSession(connector=connector, headers=headers)
            self._sessions[api_key] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


class ArchRouterClient:
    """Asks one OpenAI-compatible endpoint about one policy's routes; never raises, a failure is
    an outcome. Built per snapshot (cheap); connections come from the shared HttpSessions."""

    def __init__(
        self, sessions: HttpSessions, routes: Sequence[RouteSpec], endpoint: str, model: str,
        timeout_ms: int, api_key: str | None = None, one_step: OneStepPlan | None = None,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_ms / 1000
        self.routes = PreparedRoutes.of(routes)
        self._sessions = sessions
        self._api_key = api_key
        self.one_step = one_step  # None: the full constrained answer (router_model/one_step.py)
        self._planner: Callable[[], OneStepPlan | None] | None = None
        self._plan_after = 0.0

    def plan_with(self, planner: Callable[[], OneStepPlan | None]) -> None:
        """Work out the one-step plan now (this runs off the event loop, at snapshot build), or,
        when the router's server cannot be asked yet (vLLM still starting), again later."""
        self._planner = planner
        self._try_plan()

    def _try_plan(self) -> None:
        planner = self._planner
        if planner is None:
            return
        try:
            self.one_step = planner()
        except urllib.error.HTTPError as exc:  # it answered: no tokenizer API there
            log.info("one_step_unavailable", endpoint=self.url, status=exc.code)
        except OSError as exc:  # not reachable yet: try again on a later decision
            self._plan_after = time.monotonic() + PLAN_RETRY_S
            log.info("one_step_later", endpoint=self.url, error=str(exc))
            return
        except (ValueError, KeyError, TypeError) as exc:
            log.info("one_step_unavailable", endpoint=self.url, error=str(exc))
        self._planner = None  # decided: a plan, or (names share a first token) the full answer

    def _maybe_plan_later(self) -> None:
        if self._planner is not None and self.one_step is None and time.monotonic() >= self._plan_after:
            self._plan_after = time.monotonic() + PLAN_RETRY_S
            asyncio.get_running_loop().run_in_executor(None, self._try_plan)

    def request_body(self, conversation: Sequence[Message]) -> dict[str, Any]:
        return build_request(self.routes, conversation, self.model)

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        self._maybe_plan_later()
        started = time.perf_counter()
        route: str | None
        try:
            async with asyncio.timeout(self.timeout_s):
                body = self.request_body(query.conversation)
                text = await self._decide_text(body)
        except TimeoutError:
            route, reason = None, "router_timeout"
        except aiohttp.ClientResponseError:
            route, reason = None, "router_error"
        except (aiohttp.ClientError, OSError):
            route, reason = None, "router_unavailable"
        except (ValueError, KeyError, IndexError, TypeError):
            route, reason = None, "unparseable"
        else:
            parsed = parse_answer(text, self.routes.names)
            route, reason = parsed.route, parsed.reason
        return RouterOutcome(route, reason, (time.perf_counter() - started) * 1000, ARCH_ROUTER)

    async def _decide_text(self, body: dict[str, Any]) -> str:
        """The answer, as the full request would give it: the one-step token mapped back to
        `{"route": ...}`, or (no plan, or a token that maps to nothing) the full request's."""
        if self.one_step is not None:
            token = await self._ask(one_step_request(body, self.one_step))
            route = self.one_step.routes_by_text.get(token)
            if route is not None:
                return json.dumps({"route": route})
        return await self._ask(body)

    async def _ask(self, body: dict[str, Any]) -> str:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # W3C traceparent of the caller's span (nothing when not tracing)
        async with self._sessions.get(self._api_key).post(self.url, json=body, headers=headers) as response:
            response.raise_for_status()
            payload = await response.json(content_type=None)
        content = payload["choices"][0]["message"]["content"]
        return content if isinstance(content, str) else ""
