"""A local LLM server standing in for a third-party provider (or a scripted router): OpenAI-compatible
chat completions (POST .../chat/completions), the Anthropic Messages API (POST .../messages,
POST .../messages/count_tokens) and OpenAI's Responses API (POST .../responses, see
fake_responses.py) from the same process.

Run as its own process:
  python -m harness.fake_provider --name NAME --port PORT [--tls CERT KEY] [--models a,b] [--key K]
It records every request it receives (GET /_test/requests, each with the parsed `body`, the `raw`
body text, and `rejected` when it refused it; DELETE resets requests, remembered responses and
settings) and answers with a message naming itself. As a scripted router it answers chat
completions with the route set through POST /_test/control {"route": ..., "delay_ms": ..., "status":
..., "raw": ...}.

OpenAI's file upload (POST .../files, multipart: `purpose` and `file`) answers a File object; only
the file's size and sha256 are kept (recorded as the request's `body`), so an upload of any size can
be checked byte for byte.

Like the real services (fake_checks.py): with --key, a missing or wrong key is refused with 401
(OpenAI reads `Authorization: Bearer`, Anthropic `x-api-key`); with --models, another model name
gets 404 (`model_not_found` / `not_found_error`); always, roles and tool-call pairing are checked
(400), each error in its API's shape; JSON answers are gzipped for a client that accepts it.

As a misbehaving provider it can be scripted per request: POST /_test/control {"script": [...]}
queues behaviours, one per chat, messages or responses request that passed the checks (then the
standing settings apply again). A behaviour is a dict of settings that apply to that request only, plus:
  reset: true          close the connection before any response headers
  hang: true           accept the request and never answer
  error: {...}         the error object sent with `status` (default: "<name> failed")
  first_event_ms: N    (streams) send headers at once, then wait N ms before the first event
  stall_after_chunks   (streams) after N chunks, send nothing more, keep the connection open
  malformed_after_chunks  (streams) after N chunks, send an event that is not JSON
  no_done: true        (streams) end the body cleanly without `data: [DONE]` (Anthropic: message_stop,
                       Responses: response.completed)
  answer: "w1 w2 ..."  answer these words (streams: one per chunk) instead of the default; when the
                       last message is the assistant's (a continuation), only the words after its own
  line_end: "\r\n"     (streams) end event lines with CRLF (or "\r"), as the SSE format allows
  piece_bytes: N       write answers (whole or streamed) N bytes at a time, 2 ms apart
  use_tools: true      when the request offers tools, call the first one with {"city": "Paris"}, as
                       call_<n> / toolu_<n>, n = 1 + the assistant messages in the request
  rejects: ["field"]   (chat) refuse a request carrying one of these body fields with 400, as strict
                       OpenAI-compatible servers refuse `stream_options`

What it answers, alike in all APIs (a "chunk" is an OpenAI content chunk, an Anthropic
content_block_delta or a Responses text/arguments delta), see fake_answers.py:
"<name> read the tool result: <content>" when the conversation ends with a tool result, else the
tool call that the latest user text directs ("run `ls`" calls a shell-like tool such as Claude
Code's Bash or Codex's exec_command; "call `NAME` with {...}" calls the tool NAME), else a call of
the first tool (use_tools), else the `answer` words, else "hello from <name>", with " (<k> images)"
when the user sent k images. OpenAI chat streams keep their old default of `chunks` words
"<name>-<i> " (then " (<k> images)"); the other streams split the very text of the non-streamed
answer, so the two agree.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import ssl
import time
from typing import Any

from aiohttp import BodyPartReader, web

from harness.fake_provider import responses as fake_responses
from harness.fake_provider.answers import (
    Asked,
    Call,
    Tool,
    anthropic_usage,
    blocks,
    decide,
    halves,
    openai_usage,
    pieces,
    schema_asked,
    text_of,
)
from harness.fake_provider.checks import (FILE_PURPOSES, Problem, anthropic_error, check_chat, check_key,
                                       check_messages, check_model, check_responses, listing, openai_error)

OPENAI_MALFORMED = b'data: {"choices": [{"delta": \n\n'
ANTHROPIC_MALFORMED = b'event: content_block_delta\ndata: {"type": \n\n'
Event = tuple[bytes, bool]  # an SSE event, and whether the chunk-counting faults count it


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


def count_images(messages: list[dict[str, Any]], kind: str) -> int:
    return sum(b.get("type") == kind for m in messages if m.get("role") == "user" for b in blocks(m))


def prefix_of(last: dict[str, Any]) -> str:
    return text_of(last.get("content")) if last.get("role") == "assistant" else ""


def turn_of(messages: list[dict[str, Any]]) -> int:
    return 1 + sum(1 for m in messages if m.get("role") == "assistant")


def user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def offered(body: dict[str, Any], api: str) -> tuple[Tool, ...]:
    """The request's tools: OpenAI chat {"function": {name, parameters}}, Anthropic {name, input_schema}."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    if api == "openai":
        functions = [t["function"] for t in tools if isinstance(t.get("function"), dict)]
        return tuple(Tool(str(f.get("name")), f.get("parameters") or {}, description=str(f.get("description") or ""))
                     for f in functions)
    return tuple(Tool(str(t.get("name")), t.get("input_schema") or {}, description=str(t.get("description") or ""))
                 for t in tools if "name" in t)


def asked_openai(body: dict[str, Any]) -> Asked:
    messages = messages_of(body)
    last = messages[-1] if messages else {}
    return Asked(tools=offered(body, "openai"),
                 tool_result=text_of(last.get("content")) if last.get("role") == "tool" else None,
                 images=count_images(messages, "image_url"), prefix=prefix_of(last), turn=turn_of(messages),
                 user_text=user_text(messages), schema=schema_asked(body.get("response_format")))


def asked_anthropic(body: dict[str, Any]) -> Asked:
    messages = messages_of(body)
    users = [m for m in messages if m.get("role") == "user"]
    results = [b for b in blocks(users[-1]) if b.get("type") == "tool_result"] if users else []
    return Asked(tools=offered(body, "anthropic"),
                 tool_result=text_of(results[0].get("content")) if results else None,
                 images=count_images(messages, "image"), prefix=prefix_of(messages[-1] if messages else {}),
                 turn=turn_of(messages), user_text=user_text(messages),
                 schema=schema_asked((body.get("output_config") or {}).get("format"), body.get("output_format")))


def completion(name: str, model: str, content: str | None,
               tool_calls: list[dict[str, Any]] | None = None, tokens: dict[str, int] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{name}-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls" if tool_calls else "stop", "message": message}],
        "usage": openai_usage(tokens),
    }


def openai_call(asked: Asked, call: Call) -> dict[str, Any]:
    return {"id": f"call_{asked.turn}", "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}


def openai_pieces(name: str, asked: Asked, behaviour: dict[str, Any], text: str) -> list[str]:
    """A text stream's contents: its words, or (the old default, kept) `chunks` numbered words."""
    if asked.tool_result is not None or behaviour["answer"] is not None:
        return pieces(text)
    images = [f" ({asked.images} images)"] if asked.images else []
    return [f"{name}-{index} " for index in range(behaviour["chunks"])] + images


def openai_events(name: str, body: dict[str, Any], behaviour: dict[str, Any]) -> list[Event]:
    model = body.get("model", "")

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        data = {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": choices, **extra}
        return f"data: {json.dumps(data)}\n\n".encode()

    asked = asked_openai(body)
    answer = decide(name, asked, behaviour)
    if isinstance(answer, Call):
        call = openai_call(asked, answer)
        start = {"index": 0, **call, "function": {"name": answer.name, "arguments": ""}}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "tool_calls": [start]}, *(
            {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
            for part in halves(call["function"]["arguments"]))]
    else:
        deltas = [{"content": piece} for piece in openai_pieces(name, asked, behaviour, answer)]
        deltas[:1] = [{"role": "assistant", **delta} for delta in deltas[:1]]
    events = [(chunk([{"index": 0, "delta": delta, "finish_reason": None}]), True) for delta in deltas]
    finish = "tool_calls" if isinstance(answer, Call) else "stop"
    events.append((chunk([{"index": 0, "delta": {}, "finish_reason": finish}]), False))
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        events.append((chunk([], usage=openai_usage(behaviour["tokens"])), False))
    if not behaviour["no_done"]:
        events.append((b"data: [DONE]\n\n", False))
    return events


def anthropic_message(name: str, model: str, asked: Asked, answer: str | Call,
                      tokens: dict[str, int] | None = None) -> dict[str, Any]:
    if isinstance(answer, Call):
        content = [{"type": "text", "text": "Let me check."},
                   {"type": "tool_use", "id": f"toolu_{asked.turn}", "name": answer.name, "input": answer.arguments}]
    else:
        content = [{"type": "text", "text": answer}]
    return {"id": f"msg_{name}_{time.monotonic_ns()}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "tool_use" if isinstance(answer, Call) else "end_turn",
            "stop_sequence": None, "usage": anthropic_usage(tokens)}


def anthropic_deltas(block: dict[str, Any]) -> list[dict[str, Any]]:
    if block["type"] == "text":  # word pieces that concatenate back to exactly the text
        return [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
    return [{"type": "input_json_delta", "partial_json": part} for part in halves(json.dumps(block["input"]))]


def anthropic_events(message: dict[str, Any], behaviour: dict[str, Any]) -> list[Event]:
    """The streamed form of `message`: accumulated, it is `message` again."""
    def sse(data: dict[str, Any], counted: bool = False) -> Event:
        return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode(), counted

    # message_start carries the input counts (output so far: 1); message_delta the final output.
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events = [sse({"type": "message_start", "message": start}), sse({"type": "ping"})]
    for index, block in enumerate(message["content"]):
        empty = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
        events.append(sse({"type": "content_block_start", "index": index, "content_block": empty}))
        events += [sse({"type": "content_block_delta", "index": index, "delta": delta}, True)
                   for delta in anthropic_deltas(block)]
        events.append(sse({"type": "content_block_stop", "index": index}))
    events.append(sse({"type": "message_delta", "usage": {"output_tokens": message["usage"]["output_tokens"]},
                       "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))
    if not behaviour["no_done"]:
        events.append(sse({"type": "message_stop"}))
    return events


def scripted_anthropic_error(name: str, status: int, error: dict[str, Any] | None) -> dict[str, Any]:
    kind = "api_error" if status >= 500 else "rate_limit_error" if status == 429 else "invalid_request_error"
    return {"type": "error", "error": error or {"type": kind, "message": f"{name} failed"}}


async def write(response: web.StreamResponse, data: bytes, behaviour: dict[str, Any]) -> None:
    """`data`, in pieces of `piece_bytes` a moment apart when set (so the proxy reads them apart)."""
    size = behaviour["piece_bytes"] or len(data) or 1
    for at in range(0, len(data), size):
        await response.write(data[at:at + size])
        if behaviour["piece_bytes"]:
            await asyncio.sleep(0.002)


async def whole(request: web.Request, body: dict[str, Any], behaviour: dict[str, Any]) -> web.StreamResponse:
    """A whole JSON answer (with `piece_bytes`, written in pieces)."""
    if not behaviour["piece_bytes"]:
        return web.json_response(body, headers=behaviour["headers"])
    response = web.StreamResponse(headers={"content-type": "application/json", **behaviour["headers"]})
    await response.prepare(request)
    await write(response, json.dumps(body).encode(), behaviour)
    await response.write_eof()
    return response


async def send(request: web.Request, events: list[Event], behaviour: dict[str, Any],
               malformed: bytes) -> web.StreamResponse:
    """SSE events; the faults count chunks, and with die_after_chunks the connection is cut mid-stream."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream", **behaviour["headers"]})
    await response.prepare(request)
    if behaviour["first_event_ms"]:
        await asyncio.sleep(behaviour["first_event_ms"] / 1000)
    index = 0
    for event, counted in events:
        if counted:
            if behaviour["die_after_chunks"] is not None and index >= behaviour["die_after_chunks"]:
                assert request.transport is not None
                request.transport.abort()  # no terminating event: the stream is truncated
                return response
            if behaviour["stall_after_chunks"] is not None and index >= behaviour["stall_after_chunks"]:
                await asyncio.sleep(3600)
            broken, index = index == behaviour["malformed_after_chunks"], index + 1
            if broken:
                await response.write(malformed)
                continue
        await write(response, event.replace(b"\n", behaviour["line_end"].encode()), behaviour)
        if counted and behaviour["chunk_delay_ms"]:
            await asyncio.sleep(behaviour["chunk_delay_ms"] / 1000)
    await response.write_eof()
    return response


@web.middleware
async def compressed_when_asked(request: web.Request, handler: Any) -> web.StreamResponse:
    """JSON answers gzipped when the client accepts it, as OpenAI's and Anthropic's APIs answer
    (the openai and anthropic SDKs ask for it): whoever reads an answer on its way must cope."""
    response = await handler(request)
    if (isinstance(response, web.Response) and response.content_type == "application/json"
            and not request.path.startswith("/_test/")):
        response.enable_compression()  # only when the request's Accept-Encoding allows
    return response


def make_app(name: str, models: list[str] | None = None, key: str | None = None) -> web.Application:
    """The fake provider `name`; with `models`, only those model names exist (else 404); with `key`,
    only that key is accepted (else 401)."""
    requests: list[dict[str, Any]] = []
    stored: dict[str, list[Any]] = {}  # Responses API: a remembered response's whole conversation
    defaults: dict[str, Any] = {"tokens": None, "route": None, "delay_ms": 0, "status": 200, "raw": None,
                                "chunks": 5, "chunk_delay_ms": 0, "die_after_chunks": None,
                                "headers": {}, "script": [], "reset": False, "hang": False, "rejects": [],
                                "error": None, "first_event_ms": 0, "stall_after_chunks": None,
                                "malformed_after_chunks": None, "no_done": False, "answer": None,
                                "use_tools": False, "line_end": "\n", "piece_bytes": None}
    control = dict(defaults)

    async def received(request: web.Request) -> dict[str, Any]:
        """Record the request (with its raw text, for tests that compare bytes); its body."""
        raw = await request.read()
        body: dict[str, Any] = json.loads(raw)
        requests.append({"path": request.path, "headers": dict(request.headers), "body": body,
                         "raw": raw.decode("utf-8", "replace"), "at": time.time()})
        return body

    def refused(api: str, request: web.Request, body: dict[str, Any], problem: Problem | None) -> Problem | None:
        """The first of: a wrong key, an unknown model, `problem` (what the body check found). A
        refusal is noted on the recorded request as `rejected`."""
        problem = check_key(api, request.headers, key) or check_model(api, body.get("model"), models) or problem
        if problem is not None:
            record = next(r for r in reversed(requests) if r["body"] is body)
            record["rejected"] = {"status": problem.status, "message": problem.message}
        return problem

    def openai_refusal(problem: Problem) -> web.Response:
        return web.json_response(openai_error(problem), status=problem.status)

    async def behave(request: web.Request) -> dict[str, Any] | None:
        """This request's behaviour after its delay, or None when the connection was reset."""
        script = control["script"]
        behaviour = {**control, **(script.pop(0) if script else {})}
        if behaviour["delay_ms"]:
            await asyncio.sleep(behaviour["delay_ms"] / 1000)
        if behaviour["reset"]:
            assert request.transport is not None
            request.transport.abort()
            return None
        if behaviour["hang"]:
            await asyncio.sleep(3600)
        return behaviour

    def scripted_openai_error(behaviour: dict[str, Any]) -> web.Response:
        error = behaviour["error"] or {"message": f"{name} failed", "type": "server_error", "code": None}
        return web.json_response({"error": error}, status=behaviour["status"], headers=behaviour["headers"])

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await received(request)
        if problem := refused("openai", request, body, check_chat(body)):
            return openai_refusal(problem)
        behaviour = await behave(request)
        if behaviour is None:
            return web.Response()
        if behaviour["status"] != 200:
            return scripted_openai_error(behaviour)
        if refused_fields := [f for f in behaviour["rejects"] if f in body]:  # a strict compatible server
            return openai_refusal(Problem(400, f"Unrecognized request argument supplied: {refused_fields[0]}",
                                          param=refused_fields[0]))
        if body.get("stream"):
            return await send(request, openai_events(name, body, behaviour), behaviour, OPENAI_MALFORMED)
        if behaviour["raw"] is not None or behaviour["route"] is not None:
            answer = behaviour["raw"] if behaviour["raw"] is not None else json.dumps({"route": behaviour["route"]})
            return web.json_response(completion(name, body.get("model", ""), answer))
        asked = asked_openai(body)
        decided = decide(name, asked, behaviour)
        if isinstance(decided, Call):
            reply = completion(name, body.get("model", ""), None, [openai_call(asked, decided)], behaviour["tokens"])
        else:
            reply = completion(name, body.get("model", ""), decided, tokens=behaviour["tokens"])
        return await whole(request, reply, behaviour)

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await received(request)
        betas = request.headers.get("anthropic-beta", "")
        if problem := refused("anthropic", request, body, check_messages(body, betas)):
            return web.json_response(anthropic_error(problem), status=problem.status)
        behaviour = await behave(request)
        if behaviour is None:
            return web.Response()
        if behaviour["status"] != 200:
            return web.json_response(scripted_anthropic_error(name, behaviour["status"], behaviour["error"]),
                                     status=behaviour["status"], headers=behaviour["headers"])
        asked = asked_anthropic(body)
        message = anthropic_message(name, body.get("model", ""), asked, decide(name, asked, behaviour),
                                    behaviour["tokens"])
        if body.get("stream"):
            return await send(request, anthropic_events(message, behaviour), behaviour, ANTHROPIC_MALFORMED)
        return await whole(request, message, behaviour)

    async def responses(request: web.Request) -> web.StreamResponse:
        body = await received(request)
        previous = body.get("previous_response_id")
        items = [*stored.get(str(previous), []), *fake_responses.input_items(body)]
        unknown = None if previous is None or previous in stored else Problem(
            404, f"Previous response with id '{previous}' not found.", param="previous_response_id",
            code="previous_response_not_found")
        if problem := refused("openai", request, body, unknown or check_responses(items, fake_responses.issuer(name))):
            return openai_refusal(problem)
        behaviour = await behave(request)
        if behaviour is None:
            return web.Response()
        if behaviour["status"] != 200:
            return scripted_openai_error(behaviour)
        asked = fake_responses.asked_responses(body, items)
        output = fake_responses.output_items(name, body, asked, decide(name, asked, behaviour))
        response = fake_responses.response_object(name, body, output, behaviour["tokens"])
        if body.get("store") is not False:
            stored[response["id"]] = [*items, *output]
        if body.get("stream"):
            return await send(request, fake_responses.response_events(response, behaviour), behaviour,
                              fake_responses.MALFORMED)
        return await whole(request, response, behaviour)

    async def count_tokens(request: web.Request) -> web.Response:
        body = await received(request)  # not scripted: it answers at once
        if problem := refused("anthropic", request, body, None):
            return web.json_response(anthropic_error(problem), status=problem.status)
        return web.json_response({"input_tokens": len(json.dumps(body.get("messages"))) // 4})

    async def other(request: web.Request) -> web.Response:
        raw = await request.read()
        requests.append({"path": request.path, "headers": dict(request.headers),
                         "body": raw.decode("utf-8", "replace")})
        return web.json_response({"provider": name, "path": request.path})

    async def upload_file(request: web.Request) -> web.Response:
        """OpenAI's POST /v1/files: the key, a multipart form with `purpose` (one of OpenAI's) and
        `file`; the file is read a chunk at a time and kept as its size and sha256."""
        if problem := check_key("openai", request.headers, key):
            return openai_refusal(problem)
        if request.content_type != "multipart/form-data":
            return openai_refusal(Problem(400, "Expected a multipart/form-data request body"))
        fields: dict[str, Any] = {}
        digest, size = hashlib.sha256(), 0
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                fields["filename"] = part.filename
                while chunk := await part.read_chunk():
                    digest.update(chunk)
                    size += len(chunk)
            elif part.name == "purpose":
                fields["purpose"] = await part.text()
        fields.update(bytes=size, sha256=digest.hexdigest())
        requests.append({"path": request.path, "headers": dict(request.headers), "body": fields, "at": time.time()})
        if "filename" not in fields:
            return openai_refusal(Problem(400, "Missing required parameter: 'file'.", param="file"))
        if fields.get("purpose") not in FILE_PURPOSES:
            return openai_refusal(Problem(400, f"Invalid value for 'purpose': expected one of {listing(FILE_PURPOSES)}.",
                                          param="purpose"))
        return web.json_response({"id": f"file-{digest.hexdigest()[:24]}", "object": "file", "bytes": size,
                                  "created_at": int(time.time()), "filename": fields["filename"],
                                  "purpose": fields["purpose"], "status": "processed", "expires_at": None,
                                  "status_details": None})

    async def get_requests(_: web.Request) -> web.Response:
        return web.json_response(requests)

    async def reset(_: web.Request) -> web.Response:
        requests.clear()
        stored.clear()
        control.clear()
        control.update(defaults)
        return web.json_response({"ok": True})

    async def set_control(request: web.Request) -> web.Response:
        control.update(await request.json())
        return web.json_response(control)

    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[compressed_when_asked])
    app.router.add_get("/_test/requests", get_requests)
    app.router.add_delete("/_test/requests", reset)
    app.router.add_post("/_test/control", set_control)
    app.router.add_post("/{prefix:.*}chat/completions", chat)
    app.router.add_post("/{prefix:.*}messages/count_tokens", count_tokens)
    app.router.add_post("/{prefix:.*}messages", messages)
    app.router.add_post("/{prefix:.*}responses", responses)
    app.router.add_post("/{prefix:.*}files", upload_file)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--models", help="comma-separated model names that exist (default: any name)")
    parser.add_argument("--key", help="the only API key accepted (default: any key, or none)")
    args = parser.parse_args()
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
    models = args.models.split(",") if args.models else None
    web.run_app(make_app(args.name, models, args.key), host="127.0.0.1", port=args.port, ssl_context=context,
                print=None, access_log=None)


if __name__ == "__main__":
    main()
