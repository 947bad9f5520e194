"""A local OpenAI-compatible server standing in for a third-party provider (or a scripted router).

Run as its own process: `python -m tests.support.fake_openai --name NAME --port PORT [--tls CERT KEY]`.
It records every request it receives (GET /_test/requests; DELETE resets requests and settings)
and answers chat completions with a
message naming itself and the model it was asked for. As a scripted router it answers with the
route set through POST /_test/control {"route": ..., "delay_ms": ..., "status": ..., "raw": ...}.

As a misbehaving provider it can be scripted per request: POST /_test/control {"script": [...]}
queues behaviours, one per chat request (then the standing settings apply again). A behaviour is
a dict of settings that apply to that request only, plus:
  reset: true          close the connection before any response headers
  hang: true           accept the request and never answer
  error: {...}         the error object sent with `status` (default: "<name> failed")
  first_event_ms: N    (streams) send headers at once, then wait N ms before the first event
  stall_after_chunks   (streams) after N chunks, send nothing more, keep the connection open
  malformed_after_chunks  (streams) after N chunks, send an event that is not JSON
  no_done: true        (streams) end the body cleanly without `data: [DONE]`
  answer: "w1 w2 ..."  (streams) send these words instead of "<name>-<i>"; when the last message
                       is the assistant's (a continuation), only the words after its own
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from typing import Any

from aiohttp import web


def completion(name: str, model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{name}-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def make_app(name: str) -> web.Application:
    requests: list[dict[str, Any]] = []
    defaults: dict[str, Any] = {"route": None, "delay_ms": 0, "status": 200, "raw": None,
                                "chunks": 5, "chunk_delay_ms": 0, "die_after_chunks": None,
                                "headers": {}, "script": [], "reset": False, "hang": False,
                                "error": None, "first_event_ms": 0, "stall_after_chunks": None,
                                "malformed_after_chunks": None, "no_done": False, "answer": None}
    control = dict(defaults)

    async def chat(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        requests.append({"path": request.path, "headers": dict(request.headers), "body": body,
                         "at": time.time()})
        script = control["script"]
        behaviour = {**control, **(script.pop(0) if script else {})}
        if behaviour["delay_ms"]:
            await asyncio.sleep(behaviour["delay_ms"] / 1000)
        if behaviour["reset"]:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if behaviour["hang"]:
            await asyncio.sleep(3600)
        if behaviour["status"] != 200:
            error = behaviour["error"] or {"message": f"{name} failed", "type": "server_error", "code": None}
            return web.json_response({"error": error}, status=behaviour["status"],
                                     headers=behaviour["headers"])
        if body.get("stream"):
            return await stream(request, body, behaviour)
        if behaviour["raw"] is not None or behaviour["route"] is not None:
            answer = behaviour["raw"] if behaviour["raw"] is not None else json.dumps({"route": behaviour["route"]})
            return web.json_response(completion(name, body.get("model", ""), answer))
        return web.json_response(completion(name, body.get("model", ""), f"hello from {name}"),
                                 headers=behaviour["headers"])

    def contents(body: dict[str, Any], behaviour: dict[str, Any]) -> list[str]:
        if behaviour["answer"] is None:
            return [f"{name}-{index} " for index in range(behaviour["chunks"])]
        words = behaviour["answer"].split()
        last = body["messages"][-1]
        if last.get("role") == "assistant":  # continue the partial answer
            words = words[len(str(last.get("content", "")).split()):]
        return [f"{word} " for word in words]

    async def stream(request: web.Request, body: dict[str, Any], behaviour: dict[str, Any]) -> web.StreamResponse:
        """SSE chat completion chunks; with die_after_chunks, the connection is cut mid-stream."""
        model = body.get("model", "")
        response = web.StreamResponse(headers={"content-type": "text/event-stream", **behaviour["headers"]})
        await response.prepare(request)
        if behaviour["first_event_ms"]:
            await asyncio.sleep(behaviour["first_event_ms"] / 1000)
        for index, content in enumerate(contents(body, behaviour)):
            if behaviour["die_after_chunks"] is not None and index >= behaviour["die_after_chunks"]:
                assert request.transport is not None
                request.transport.abort()  # no terminating chunk: the stream is truncated
                return response
            if behaviour["stall_after_chunks"] is not None and index >= behaviour["stall_after_chunks"]:
                await asyncio.sleep(3600)
            if behaviour["malformed_after_chunks"] is not None and index == behaviour["malformed_after_chunks"]:
                await response.write(b'data: {"choices": [{"delta": \n\n')
                continue
            chunk = {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if behaviour["chunk_delay_ms"]:
                await asyncio.sleep(behaviour["chunk_delay_ms"] / 1000)
        done = {"id": f"chatcmpl-{name}", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        if not behaviour["no_done"]:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def other(request: web.Request) -> web.Response:
        raw = await request.read()
        requests.append({"path": request.path, "headers": dict(request.headers),
                         "body": raw.decode("utf-8", "replace")})
        return web.json_response({"provider": name, "path": request.path})

    async def get_requests(_: web.Request) -> web.Response:
        return web.json_response(requests)

    async def reset(_: web.Request) -> web.Response:
        requests.clear()
        control.clear()
        control.update(defaults)
        return web.json_response({"ok": True})

    async def set_control(request: web.Request) -> web.Response:
        control.update(await request.json())
        return web.json_response(control)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/_test/requests", get_requests)
    app.router.add_delete("/_test/requests", reset)
    app.router.add_post("/_test/control", set_control)
    app.router.add_post("/{prefix:.*}chat/completions", chat)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
    web.run_app(make_app(args.name), host="127.0.0.1", port=args.port, ssl_context=context,
                print=None, access_log=None)


if __name__ == "__main__":
    main()
