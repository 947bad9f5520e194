"""The guarded path: chat requests whose model has fallbacks, or whose provider speaks another API
than the app (streaming or not), and Responses API requests whose answer may be continued by id,
are sent by Envoy here (an HTTP server in the control-plane process) instead of straight to a
provider.

Envoy cannot give each attempt its own body `model` and key, choose the next model by *why* the
last one failed, wait for a first SSE event before committing the app to an answer, or read an
SSE stream to tell a finished answer from a truncated one. This module does exactly that, with
the rules of control_plane/failover/rules.py and the circuits of control_plane/failover/circuits.py.
Requests with nothing to fall back to and nothing to translate stay on Envoy's direct path (faster).

It works in the OpenAI chat form: the app's request is translated into it once (its front door,
control_plane/apis/doors.py), each attempt into and out of its provider's API, and the answer back
into the door's API; checks, rules and continuations see one form only.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.trace import SpanKind, StatusCode

from control_plane.apis.doors import Door, door_for
from control_plane.apis.responses import PREVIOUS, continued, input_items, routing_view
from control_plane.apis.responses_translate import output_items
from control_plane.apis.sse import json_event
from control_plane.apis.table import APIS, OPENAI, Api, StreamTranslator, Unchanged
from control_plane.apis.translation import Dropped, dropped_header
from control_plane.apis.usage import HiddenUsage, Usage, UsageReader, UsageSink
from control_plane.apis.json_body import replace_model, with_model
from control_plane.failover.circuits import Circuits
from control_plane.apis.continuation import continuable, continuation_body
from control_plane.failover.rules import (
    CIRCUIT_OPEN,
    CONNECT_ERROR,
    MALFORMED,
    RESET,
    TIMEOUT,
    Outcome,
    Step,
    next_step,
)
from control_plane.apis.stream_guard import MalformedStream, SseGuard
from control_plane.headers import (
    ACCEPT_ENCODING,
    ATTEMPTS_HEADER,
    CLIENT_CREDENTIAL_HEADERS,
    DROPPED_HEADER,
    INTERNAL_PREFIX,
    MODEL_HEADER,
    PLAN_HEADER,
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    parse_plan,
)
from control_plane.observability import tracing
from control_plane.observability.metrics import Metrics
from control_plane.apis.openai_errors import error_body as openai_error_body
from control_plane.apis.request_error import RequestError
from control_plane.policy.model import Model, Policy, Provider
from control_plane.policy.snapshot import SnapshotStore
from control_plane.routing.response_store import ResponseStore, StoredResponse

log = structlog.get_logger("switchyard.failover")

MAX_ERROR_BODY = 1024 * 1024  # a provider's error body is read whole to classify it
# Not forwarded to the provider: hop-by-hop, recomputed, or the app's own credentials.
_DROP_REQUEST = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
                 "upgrade", ACCEPT_ENCODING, "expect", *CLIENT_CREDENTIAL_HEADERS}
_DROP_REQUEST_PREFIXES = (INTERNAL_PREFIX, "x-envoy-")
# Not passed back to the app: recomputed by aiohttp (bodies are decompressed on the way).
_DROP_RESPONSE = {"content-length", "transfer-encoding", "connection", "keep-alive",
                  "content-encoding"}


@dataclass
class Attempts:
    """The attempt log of one request: `x-switchyard-attempts` and the outcome log line."""

    entries: list[str] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)  # models that received the request
    sent: int = 0  # attempts that reached out to a provider (circuit skips are not)

    def add(self, model: str, label: str) -> None:
        self.entries.append(f"{model}:{label}")
        self.sent += label != CIRCUIT_OPEN

    def header(self) -> str:
        return ",".join(self.entries)


@dataclass
class Started:
    """A successful attempt the app is about to get: the provider's response, and for a stream the
    first checked events (nothing was sent to the app before these existed)."""

    model: Model
    response: aiohttp.ClientResponse
    first: bytes = b""  # (streams) checked events, in the OpenAI form
    guard: SseGuard | None = None
    translator: StreamTranslator = field(default_factory=Unchanged)  # provider's API -> OpenAI
    answer: bytes = b""  # (non-streaming) the whole answer, in the app's API
    native: bool = False  # in the app's own API, as the provider sent it: relayed untranslated
    usage: UsageReader | None = None  # the provider's own counts, read from its answer as it passes


@dataclass
class Exchange:
    """One request on the guarded path."""

    request: web.Request
    door: Door  # the API the app speaks: its answer and errors are translated back into it
    raw: bytes  # the app's request as it sent it: what a provider of the door's API gets
    sent: dict[str, Any]  # the same, parsed (in the door's API)
    policy: Policy
    model: Model  # the model the processor chose: its chain, rules and budget apply
    route: str  # the route that chose it
    kept: StoredResponse | None = None  # the translated response this request continues, if any
    attempts: Attempts = field(default_factory=lambda: Attempts())
    dropped: Dropped = field(default_factory=set)  # hints translations dropped (x-switchyard-dropped)
    used: list[Usage] = field(default_factory=list)  # what each answering provider reported it used
    _openai: dict[str, Any] | None = None

    @property
    def stream(self) -> bool:
        return self.sent.get("stream") is True

    def whole(self) -> dict[str, Any]:
        """The app's request with the conversation it continues in front (Responses API), as a
        provider that keeps no conversation must get it."""
        return continued(self.sent, self.kept.items) if self.kept is not None else self.sent

    def openai(self) -> dict[str, Any]:
        """The app's request in the OpenAI form (`model` is set per attempt), translated when an
        attempt first needs it: a request only its own API can carry still reaches a provider of
        that API. Raises RequestError when it cannot be translated."""
        if self._openai is None:
            self._openai = self.door.api.request_to_openai(self.whole(), self.dropped)
        return self._openai


class ProviderSessions:
    """One pooled HTTP client per provider cluster (TLS settings differ per provider)."""

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def get(self, provider: Provider) -> aiohttp.ClientSession:
        session = self._sessions.get(provider.cluster)
        if session is None or session.closed:
            context: ssl.SSLContext | bool = False
            if provider.tls:
                context = ssl.create_default_context(cafile=provider.ca_file)
            connector = aiohttp.TCPConnector(ssl=context, limit=0, ttl_dns_cache=60)
            session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True
            )
            self._sessions[provider.cluster] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


def _dropped(headers: dict[str, str] | CIMultiDict[str], dropped: Dropped) -> None:
    if dropped:
        headers[DROPPED_HEADER] = dropped_header(dropped)


def _json_error(door: Door | None, status: int, message: str, code: str, attempts: Attempts,
                model: str) -> web.Response:
    api = door.api if door else APIS[OPENAI]
    return web.Response(status=status, body=api.error_body(status, message, code, None), headers={
        "content-type": "application/json", MODEL_HEADER: model, ATTEMPTS_HEADER: attempts.header(),
    })


class Failover:
    def __init__(self, snapshots: SnapshotStore, circuits: Circuits, metrics: Metrics | None = None,
                 responses: ResponseStore | None = None, usage: UsageSink | None = None) -> None:
        self.snapshots = snapshots
        self.circuits = circuits
        self.metrics = metrics or circuits.metrics
        # The store workers ask (shared state): who answered, and translated conversations.
        self.responses = responses if responses is not None else ResponseStore()
        self.sessions = ProviderSessions()
        self.usage = usage  # where each request's usage goes (control_plane/spend/)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=0)  # Envoy already enforced the body limit
        app.router.add_post("/{path:.*}", self.handle)
        return app

    async def close(self) -> None:
        await self.sessions.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        policy_name, model_name, route = parse_plan(request.headers.get(PLAN_HEADER, ""))
        policy = self.snapshots.current.policy_set.policies.get(policy_name)
        model = policy.models.get(model_name) if policy else None
        door = door_for(request.path)
        if door is None:
            return _json_error(None, 404, f"no front door at {request.path}", "unknown_path", Attempts(), "")
        if policy is None or model is None:  # the policy changed under the request: rare
            return _json_error(door, 503, f"model '{model_name}' is no longer in policy '{policy_name}'",
                               "policy_changed", Attempts(), model_name)
        raw = await request.read()
        sent = json.loads(raw)  # the processor checked it
        exchange = Exchange(request, door, raw, sent, policy, model, route, self._continues(door, sent))
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        if self.usage is not None:
            self.usage.begin(request_id)
        try:
            return await self._answer(exchange)
        finally:
            if self.usage is not None:
                self.usage.add(request_id, sum(exchange.used, Usage()) if exchange.used else None)

    async def _answer(self, exchange: Exchange) -> web.StreamResponse:
        request, door, policy, model = exchange.request, exchange.door, exchange.policy, exchange.model
        started, last = await self._first_answer(exchange)
        log.info("attempts", request_id=request.headers.get(REQUEST_ID_HEADER), policy=policy.name,
                 requested=model.name, attempts=exchange.attempts.header(),
                 answered=started.model.name if started else None,
                 dropped=dropped_header(exchange.dropped) or None)
        if started is None:
            return self._failed(door, last, exchange.attempts)
        try:
            if started.guard is not None:
                return await self._relay_stream(exchange, started)
            self._used(exchange, started)
            self._remember(exchange, started, lambda: json_event(started.answer, "the answer"))
            return web.Response(status=started.response.status, body=started.answer,
                                headers=self._answer_headers(started, exchange))
        finally:
            started.response.release()

    @staticmethod
    def _used(exchange: Exchange, started: Started) -> None:
        """Note what an answering provider reported it used (its segment of a continued stream)."""
        usage = started.usage.finish() if started.usage is not None else None
        if usage is not None:
            exchange.used.append(usage)

    def _continues(self, door: Door, sent: dict[str, Any]) -> StoredResponse | None:
        """The translated response (its conversation kept here) this request continues, if any."""
        previous = sent.get(PREVIOUS) if door.keeps_responses else None
        kept = self.responses.get(previous) if isinstance(previous, str) else None
        return kept if kept is not None and not kept.native else None

    def _remember(self, exchange: Exchange, started: Started, answer: Callable[[], dict[str, Any] | None]) -> None:
        """Keep who answered (and for a translated answer, the conversation) for a follow-up that
        names this response (`previous_response_id`), unless the app said `store: false`."""
        if not exchange.door.keeps_responses or exchange.sent.get("store") is False:
            return
        try:
            response = answer()
        except MalformedStream:
            response = None
        response_id = response.get("id") if response else None
        if not isinstance(response_id, str) or response is None:
            return
        model, policy = started.model, exchange.policy
        if started.native:
            stored = StoredResponse(policy.name, model.name, exchange.route, native=True)
        else:
            items = [*input_items(exchange.whole()), *output_items(response)]
            view = routing_view(None, items, policy.envelopes)
            stored = StoredResponse(policy.name, model.name, exchange.route, False, tuple(items), tuple(view))
        self.responses.keep(response_id, stored)

    async def _try(self, exchange: Exchange, model: Model, body: dict[str, Any] | None,
                   remaining_s: float) -> tuple[Started | None, Outcome]:
        """One attempt, accounted for: attempts header, metrics, the model's circuit. `body` is
        a request in the OpenAI form (a continuation); None: the app's own request."""
        self.circuits.begin(model)
        # Each attempt is a span under the request's decision span; the provider gets its context.
        with tracing.TRACER.start_as_current_span(
                "switchyard.attempt", tracing.extract(exchange.request.headers), SpanKind.CLIENT) as span:
            started, outcome = await self._attempt(exchange, body, model, remaining_s)
            if span.is_recording():
                span.set_attributes({"gen_ai.operation.name": "chat",
                                     "gen_ai.request.model": model.upstream_model,
                                     "gen_ai.provider.name": model.provider.name,
                                     "switchyard.model": model.name,
                                     "switchyard.attempt.result": outcome.label})
                if started is None:
                    span.set_status(StatusCode.ERROR, outcome.label)
        exchange.attempts.add(model.name, outcome.label)
        self.metrics.attempts.labels(exchange.policy.name, model.name, outcome.label).inc()
        if outcome.counts_against_provider:
            self.circuits.failure(model)
        else:
            self.circuits.success(model)
        return started, outcome

    async def _first_answer(
        self, exchange: Exchange
    ) -> tuple[Started | None, tuple[Model, Outcome] | None]:
        """Try the chain until an answer starts; None and the last failure when none does."""
        policy, attempts, rules = exchange.policy, exchange.attempts, exchange.model.failover
        loop = asyncio.get_running_loop()
        deadline = loop.time() + rules.budget_s
        chain = [exchange.model, *(policy.models[name] for name in exchange.model.chain)]
        # Models with an open circuit are skipped (and named so in the attempts header); they are
        # tried only as a last resort, when every other model failed.
        queue = [m for m in chain if self.circuits.available(m)]
        for skipped in (m for m in chain if m not in queue):
            attempts.add(skipped.name, CIRCUIT_OPEN)
            queue.append(skipped)
        last: tuple[Model, Outcome] | None = None
        while queue:
            current = queue.pop(0)
            if current.name in attempts.asked:
                continue
            attempts.asked.add(current.name)
            retries = 0
            while True:
                if attempts.sent >= rules.max_attempts or loop.time() >= deadline:
                    return None, last
                started, outcome = await self._try(exchange, current, None, deadline - loop.time())
                if started is not None:
                    return started, None
                last = (current, outcome)
                step, wait_s = next_step(outcome, retries, current.failover, deadline - loop.time())
                if step is Step.RETRY:
                    retries += 1
                    await asyncio.sleep(wait_s)
                    continue
                if step is Step.PASS:
                    return None, last
                if step is Step.CONTEXT:
                    bigger = [policy.models[n] for n in current.context_window_fallbacks
                              if n not in attempts.asked]
                    if not bigger:
                        return None, last
                    queue = bigger
                break  # NEXT (or CONTEXT): on to the next model in the queue
        return None, last

    async def _continuation(self, exchange: Exchange, broken: Model, text: str) -> Started | None:
        """The rest of a broken answer from the next model of the chain that can continue an
        assistant prefix; None when there is none, or it does not start either."""
        try:
            request = exchange.openai()
        except RequestError:
            return None
        if not text or not continuable(request):
            return None
        for name in exchange.model.chain:
            model = exchange.policy.models[name]
            if (model.name in exchange.attempts.asked or model.assistant_prefix is None
                    or not self.circuits.available(model)):
                continue
            if exchange.attempts.sent >= exchange.model.failover.max_attempts:
                return None
            exchange.attempts.asked.add(model.name)
            body = continuation_body(request, model.assistant_prefix, text)
            started, _ = await self._try(exchange, model, body, model.failover.first_token_s)
            if started is not None:
                self.metrics.continuations.labels(broken.name, model.name).inc()
                return started
        return None

    async def _attempt(
        self, exchange: Exchange, body: dict[str, Any] | None, model: Model, remaining_s: float
    ) -> tuple[Started | None, Outcome]:
        rules, stream, request = model.failover, exchange.stream, exchange.request
        limit = min(rules.first_token_s if stream else rules.response_s, max(remaining_s, 0.001))
        provider = model.provider
        # The app's own request to a provider that serves its API: sent as it came, but for `model`
        # (a continuation is a new request: built from the OpenAI form like a translated one).
        native = body is None and provider.serves(exchange.door.api)
        api = exchange.door.api if native else provider.wire_api
        try:
            # An answer that reports usage only when asked (an OpenAI chat stream) is asked for it,
            # where the provider takes the question; the app that did not ask then does not see
            # it (README: "Usage and cost").
            outgoing = exchange.sent if native else (exchange.openai() if body is None else body)
            asking = provider.asking_usage(api, outgoing)
            if native and asking is not None:
                payload = with_model(asking, model.upstream_model)  # the one change but `model`
            elif native:
                payload = replace_model(exchange.raw, model.upstream_model)
            else:
                body = asking or outgoing  # the OpenAI form, which the answer is translated back from
                translated = provider.unasked(api.request_from_openai(body, exchange.dropped))
                payload = with_model(translated, model.upstream_model)
        except RequestError as error:  # the request cannot be carried to this provider's API
            return None, Outcome(str(error.status), error.status, {},
                                 openai_error_body(error.status, error.message, error.code, error.param))
        url = provider.base_url.rstrip("/") + "/" + api.chat_path
        if request.query_string and native:
            url += "?" + request.query_string
        headers = self._provider_headers(request.headers, provider, None if native else exchange.door.api) | tracing.inject()
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(limit):
                response = await self.sessions.get(provider).post(url, data=payload, headers=headers)
                status = response.status
                if not 200 <= status < 300:
                    problem = await response.content.read(MAX_ERROR_BODY)
                    response.release()
                    return None, Outcome(str(status), status, dict(response.headers),
                                         api.error_to_openai(status, problem))
                usage = api.usage_reader(stream)
                if not stream:  # translated into the app's API here: an unreadable answer is a failed attempt
                    whole = await response.read()
                    usage.feed(whole)
                    answer = whole if native else exchange.door.api.response_from_openai(
                        api.response_to_openai(whole), exchange.sent)
                    return (Started(model, response, answer=answer, native=native, usage=usage),
                            Outcome(str(status), status))
                guard = api.stream_guard() if native else SseGuard()
                translator = Unchanged() if body is None else api.stream_to_openai(body)  # None: native
                first = b""
                while not first:  # commit the app to nothing before a whole, valid event
                    chunk = await response.content.readany()
                    if not chunk:
                        response.release()
                        return None, Outcome(RESET)
                    usage.feed(chunk)
                    first = guard.feed(translator.feed(chunk))
                return (Started(model, response, first, guard, translator, native=native, usage=usage),
                        Outcome(str(status), status))
        except TimeoutError:
            label = TIMEOUT
        except MalformedStream:
            label = MALFORMED
        except aiohttp.ClientConnectorError:
            label = CONNECT_ERROR
        except (aiohttp.ClientError, OSError):
            label = RESET
        if response is not None:
            response.close()
        return None, Outcome(label)

    @staticmethod
    def _provider_headers(incoming: Mapping[str, str], provider: Provider, translated_from: Api | None) -> dict[str, str]:
        """The app's headers but hop-by-hop, internal and credential ones, and Switchyard's key. A
        body translated from the app's API (`translated_from`) is written for the version and
        features Switchyard chose: the app's API headers (anthropic-version, anthropic-beta) go
        on with its own request only."""
        own = translated_from.own_headers_prefix if translated_from else None
        drop = (*_DROP_REQUEST_PREFIXES, own) if own else _DROP_REQUEST_PREFIXES
        headers = {k.lower(): v for k, v in incoming.items() if k.lower() not in _DROP_REQUEST
                   and not k.lower().startswith(drop)}
        headers.update(provider.key_headers(headers))
        headers["content-type"] = "application/json"
        return headers

    @staticmethod
    def _answer_headers(started: Started, exchange: Exchange) -> CIMultiDict[str]:
        headers = CIMultiDict(
            (k, v) for k, v in started.response.headers.items()
            if k.lower() not in _DROP_RESPONSE and not k.lower().startswith(INTERNAL_PREFIX)
        )
        if started.guard is None:  # a translated answer is JSON whatever the provider said
            headers["content-type"] = "application/json"
        headers[MODEL_HEADER] = started.model.name
        headers[ATTEMPTS_HEADER] = exchange.attempts.header()
        _dropped(headers, exchange.dropped)
        return headers

    @staticmethod
    def _failed(door: Door, last: tuple[Model, Outcome] | None, attempts: Attempts) -> web.Response:
        """No answer started: the last provider answer (in the door's error shape), or our own error."""
        if last is None:
            return _json_error(door, 503, f"no model could be tried (attempts: {attempts.header()})",
                               "no_attempt", attempts, "")
        model, outcome = last
        if outcome.status is not None:
            headers = {"content-type": "application/json", MODEL_HEADER: model.name,
                       ATTEMPTS_HEADER: attempts.header()}
            for name in (RETRY_AFTER_HEADER, "retry-after-ms"):
                if outcome.headers and name in outcome.headers:
                    headers[name] = outcome.headers[name]
            return web.Response(status=outcome.status,
                                body=door.api.error_from_openai(outcome.status, outcome.body),
                                headers=headers)
        status, code = (504, "provider_timeout") if outcome.label == TIMEOUT else (
            502, "provider_unreachable")
        return _json_error(door, status, f"no provider answered (attempts: {attempts.header()})",
                           code, attempts, model.name)

    async def _relay_stream(self, exchange: Exchange, started: Started) -> web.StreamResponse:
        """Pass the stream on, checked event by event. A stall, a cut, a malformed event or an
        end without [DONE] is continued on a fallback that can take an assistant prefix, or else
        reaches the app as an SSE error event and a reset: never a clean end."""
        request = exchange.request
        response = web.StreamResponse(status=started.response.status,
                                      headers=self._answer_headers(started, exchange))
        segments = [started]  # the answer so far: the first model's, then continuations
        # Translated events go through one translator for the whole answer (continuations are
        # spliced into it); a native answer is relayed as it is (and never continued).
        translated = exchange.door.api.stream_from_openai(exchange.sent)
        native: StreamTranslator = Unchanged()
        if exchange.door.api.ask_usage(exchange.sent) is not None:  # usage was asked for it, not by it
            native = translated = HiddenUsage()
        try:
            await response.prepare(request)
            to_door = native if started.native else translated
            await response.write(to_door.feed(started.first))
            while True:
                current = segments[-1]
                assert current.guard is not None
                to_door = native if current.native else translated
                failure = await self._pump(current, to_door, response)
                self._used(exchange, current)
                if failure is None:
                    # The whole answer a Responses stream ends with (response.completed), as the
                    # provider's guard or our translator saw it.
                    final = current.guard if current.native else translated
                    self._remember(exchange, current, lambda: getattr(final, "completed", None))
                    await response.write_eof()
                    return response
                self.metrics.stream_errors.labels(current.model.name).inc()
                self.circuits.failure(current.model)
                log.warning("stream_broken", model=current.model.name, reason=failure,
                            events=current.guard.events, request_id=request.headers.get(REQUEST_ID_HEADER))
                current.response.close()
                text = "".join(s.guard.text for s in segments if s.guard is not None)
                text_only = all(s.guard is not None and s.guard.text_only for s in segments)
                follow = await self._continuation(exchange, current.model, text) if text_only else None
                if follow is None:
                    break
                log.info("stream_continued", broken=current.model.name, model=follow.model.name,
                         prefix_chars=len(text), attempts=exchange.attempts.header(),
                         request_id=request.headers.get(REQUEST_ID_HEADER))
                segments.append(follow)
                # An SSE comment (clients ignore it): where the rest of the answer comes from.
                to_door = native if follow.native else translated
                await response.write(f": switchyard continued on {follow.model.name}\n\n".encode()
                                     + to_door.feed(follow.first))
            await response.write(exchange.door.api.error_event(502, f"stream interrupted: {failure}",
                                                               "stream_interrupted"))
        except ConnectionResetError:  # the app went away: nothing left to tell it
            return response
        finally:
            for segment in segments[1:]:
                segment.response.release()
        if request.transport is not None:
            request.transport.close()  # no terminating chunk: the app sees a broken stream
        return response

    @staticmethod
    async def _pump(started: Started, to_door: StreamTranslator, response: web.StreamResponse) -> str | None:
        """Relay checked events until [DONE]; what went wrong, or None."""
        upstream, guard, rules = started.response, started.guard, started.model.failover
        assert guard is not None
        while not guard.done:
            try:
                async with asyncio.timeout(rules.stall_s):
                    chunk = await upstream.content.readany()
            except TimeoutError:
                return f"the provider sent nothing for {rules.stall_s:g} s"
            except (aiohttp.ClientError, OSError):
                return "the provider's connection broke"
            if not chunk:
                return "the provider ended the stream without [DONE]"
            if started.usage is not None:
                started.usage.feed(chunk)
            try:
                out = to_door.feed(guard.feed(started.translator.feed(chunk)))
            except MalformedStream as exc:
                return f"the provider sent a malformed event ({exc})"
            if out:
                await response.write(out)
        return None
