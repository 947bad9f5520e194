"""The Aggregated Discovery Service (state of the world) that feeds Envoy its clusters and routes.

Protocol, as go-control-plane does it: a request carrying the current version is an ACK and parks;
a request with error_detail is a NACK, is logged and parks too (nothing is resent until a new
snapshot exists, so a bad config never loops); a request whose nonce is not the last one sent on
that stream for its type is stale and dropped. Nonces are a per-stream counter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import structlog
from envoy_data_plane.envoy.service.discovery.v3 import (
    AggregatedDiscoveryServiceBase,
    DiscoveryRequest,
    DiscoveryResponse,
)
from envoy_data_plane.google.protobuf import Any as AnyMessage

from control_plane.xds.cache import XdsCache, XdsSnapshot

log = structlog.get_logger("switchyard.xds")
_stream_ids = itertools.count(1)


class AdsServer(AggregatedDiscoveryServiceBase):
    def __init__(self, cache: XdsCache) -> None:
        self.cache = cache

    async def stream_aggregated_resources(
        self, messages: AsyncIterator[DiscoveryRequest]
    ) -> AsyncIterator[DiscoveryResponse]:
        stream_id = next(_stream_ids)
        nonces = itertools.count(1)
        last_nonce: dict[str, str] = {}  # type URL -> nonce of the last response sent
        sent_version: dict[str, str] = {}  # type URL -> version of the last response sent
        subscribed: set[str] = set()
        self.cache.stream_opened(stream_id)
        incoming = _requests(messages)
        try:
            snapshot = self.cache.snapshot
            next_request = asyncio.ensure_future(anext(incoming))
            next_change = asyncio.ensure_future(self.cache.wait_changed(snapshot.version))
            while True:
                done, _ = await asyncio.wait({next_request, next_change}, return_when=asyncio.FIRST_COMPLETED)
                if next_change in done:
                    snapshot = next_change.result()
                    next_change = asyncio.ensure_future(self.cache.wait_changed(snapshot.version))
                if next_request in done:
                    request = next_request.result()
                    if request is None:
                        break
                    next_request = asyncio.ensure_future(anext(incoming))
                    if not await self._on_request(stream_id, request, last_nonce, sent_version):
                        continue
                    subscribed.add(request.type_url)
                # Send every subscribed type whose newest version this stream has not been sent.
                for type_url in sorted(subscribed):
                    if sent_version.get(type_url) == snapshot.version:
                        continue
                    nonce = str(next(nonces))
                    last_nonce[type_url] = nonce
                    sent_version[type_url] = snapshot.version
                    yield _response(snapshot, type_url, nonce)
        finally:
            next_request.cancel()
            next_change.cancel()
            await self.cache.stream_closed(stream_id)

    async def _on_request(
        self, stream_id: int, request: DiscoveryRequest, last_nonce: dict[str, str], sent_version: dict[str, str]
    ) -> bool:
        """Record what the request says; False when it must be dropped (stale nonce)."""
        type_url = request.type_url
        if request.response_nonce and request.response_nonce != last_nonce.get(type_url):
            return False  # stale: answers a response that has since been superseded
        self.cache.subscribed(stream_id, type_url)
        if request.error_detail is not None and request.error_detail.message:
            # A NACK's version_info is the last version Envoy accepted; the rejected one is the
            # version this stream was last sent.
            await self.cache.nack(type_url, sent_version[type_url], request.error_detail.message)
        elif request.response_nonce:
            await self.cache.ack(stream_id, type_url, request.version_info)
        return True


async def _requests(messages: AsyncIterator[DiscoveryRequest]) -> AsyncIterator[DiscoveryRequest | None]:
    async for message in messages:
        yield message
    yield None


def _response(snapshot: XdsSnapshot, type_url: str, nonce: str) -> DiscoveryResponse:
    resources = [AnyMessage.pack(r) for r in snapshot.resources.get(type_url, ())]
    return DiscoveryResponse(version_info=snapshot.version, resources=resources, type_url=type_url, nonce=nonce)
