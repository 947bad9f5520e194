"""The floor under any processor served by grpclib: Envoy with Switchyard's ext_proc filter in
front of a processor that reads nothing, decides nothing and logs nothing. Every message it gets
is answered with a fixed "continue", computed once; what is left is the ext_proc stream itself
(Envoy's side, and grpclib's HTTP/2 handling on Switchyard's write-coalescing server).

The throughput benchmark's `ext_proc floor` arm (benchmarks/throughput.py; `--skip-floor`): its req/s
and CPU per request are the most Switchyard could reach while every request goes through a
grpclib processor, however little the processor did.

    python benchmarks/null_processor.py --port P --envoy-config FILE

serves the processor on 127.0.0.1:P and runs that Envoy as its child, so the arm's process tree
holds both (its CPU is read per process tree). `floor_envoy_config` writes that Envoy's config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import grpclib.const
from grpclib.server import Stream

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.added_latency import bare_envoy_config
from control_plane.event_loop import run_loop
from control_plane.extproc import wire
from control_plane.extproc.codec import RawOrProtoCodec
from control_plane.extproc.grpc_server import CoalescingServer
from control_plane.extproc.service import PROCESS_METHOD
from control_plane.xds.envoy_config import (
    ENVOY_LOG_FORMAT, EnvoyPorts, envoy_binary, ext_proc_filter, http_manager, read_body_mode, render_bootstrap,
)

def floor_envoy_config(policy_dir: Path, port: int, admin_port: int, processor_port: int) -> dict[str, Any]:
    """Bare Envoy's config (benchmarks/added_latency.py) plus Switchyard's own ext_proc filter and
    processor cluster, as rendered for `switchyard up`, with the request body BUFFERED from the
    start as on the doors' routes: the same two messages each way as a chat request gets."""
    config = bare_envoy_config(policy_dir, port, admin_port)
    rendered = render_bootstrap(EnvoyPorts(listen_port=port, admin_port=admin_port, processor_port=processor_port))
    ext_proc = ext_proc_filter(rendered)
    ext_proc["typed_config"]["processing_mode"] = read_body_mode()
    hcm = http_manager(config)
    hcm["http_filters"] = [ext_proc, *hcm["http_filters"]]
    processors = ext_proc["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    config["static_resources"]["clusters"].append(
        next(c for c in rendered["static_resources"]["clusters"] if c["name"] == processors))
    return config


# A message's phase, read from its first byte alone: the tag of ProcessingRequest's oneof field
# (a length-delimited field: wire type 2), which Envoy writes first.
TAGS = {phase: number << 3 | 2 for number, phase in wire.REQUEST_PHASES.items()}
ANSWERS = {tag: wire.pass_through(phase) for phase, tag in TAGS.items()}
LAST = TAGS["request_body"]  # the last message a request sends here (response phases are SKIP)


class NullProcessor:
    async def handle(self, stream: Stream[bytes, bytes]) -> None:
        async for raw in stream:
            await stream.send_message(ANSWERS[raw[0]])
            if raw[0] == LAST:
                return

    def __mapping__(self) -> dict[str, Any]:
        return {PROCESS_METHOD: grpclib.const.Handler(self.handle, grpclib.const.Cardinality.STREAM_STREAM,
                                                      bytes, bytes)}


async def serve(port: int, envoy_config: Path) -> None:
    server = CoalescingServer([NullProcessor()], codec=RawOrProtoCodec())
    await server.start("127.0.0.1", port)
    envoy = await asyncio.create_subprocess_exec(
        envoy_binary(), "-c", str(envoy_config), "--log-level", "warn", "--log-format", ENVOY_LOG_FORMAT,
        "--disable-hot-restart", "--use-dynamic-base-id")
    try:
        await envoy.wait()
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--envoy-config", type=Path, required=True)
    args = parser.parse_args()
    run_loop(serve(args.port, args.envoy_config))


if __name__ == "__main__":
    main()
