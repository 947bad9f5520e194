"""The ADS server's protocol (versions, nonces, ACK/NACK), over a real in-memory gRPC channel."""

from __future__ import annotations

import asyncio

from envoy_data_plane.envoy.config.cluster.v3 import Cluster
from envoy_data_plane.envoy.service.discovery.v3 import AggregatedDiscoveryServiceAsyncStub, DiscoveryRequest
from envoy_data_plane.google.rpc import Status
from grpclib.testing import ChannelFor

from control_plane.extproc.codec import RawOrProtoCodec
from control_plane.xds.cache import CLUSTER_TYPE, EnvoyRejected, XdsCache
from control_plane.xds.server import AdsServer


def clusters(*names: str) -> dict[str, list[Cluster]]:
    return {CLUSTER_TYPE: [Cluster(name=n) for n in names]}


async def test_ack_nack_and_stale_nonces() -> None:
    cache = XdsCache()
    v1 = await cache.publish(clusters("a"))
    async with ChannelFor([AdsServer(cache)], codec=RawOrProtoCodec()) as channel:
        requests: asyncio.Queue[DiscoveryRequest | None] = asyncio.Queue()

        async def outgoing():  # type: ignore[no-untyped-def]
            while (item := await requests.get()) is not None:
                yield item

        stub = AggregatedDiscoveryServiceAsyncStub(channel)
        responses = stub.stream_aggregated_resources(outgoing()).__aiter__()

        await requests.put(DiscoveryRequest(type_url=CLUSTER_TYPE))  # initial subscription
        first = await asyncio.wait_for(responses.__anext__(), 5)
        assert first.version_info == v1 and len(first.resources) == 1

        await requests.put(DiscoveryRequest(type_url=CLUSTER_TYPE, version_info=v1, response_nonce=first.nonce))
        assert await cache.wait_acked(v1, 5)

        v2 = await cache.publish(clusters("a", "b"))
        second = await asyncio.wait_for(responses.__anext__(), 5)
        assert second.version_info == v2 and len(second.resources) == 2 and second.nonce != first.nonce

        # A stale ACK (old nonce) is dropped: v2 is not considered acknowledged.
        await requests.put(DiscoveryRequest(type_url=CLUSTER_TYPE, version_info=v2, response_nonce=first.nonce))
        assert not await cache.wait_acked(v2, 0.3)

        # A NACK is recorded with Envoy's detail, and nothing is resent for it (no NACK loop).
        await requests.put(DiscoveryRequest(type_url=CLUSTER_TYPE, version_info=v1, response_nonce=second.nonce,
                                            error_detail=Status(code=3, message="bad cluster b")))
        try:
            await cache.wait_acked(v2, 5)
            raise AssertionError("a NACK must be reported")
        except EnvoyRejected as exc:
            assert "bad cluster b" in str(exc)
        resent = asyncio.ensure_future(responses.__anext__())
        await asyncio.sleep(0.3)
        assert not resent.done()

        # Only a new snapshot is sent again.
        v3 = await cache.publish(clusters("a"))
        third = await asyncio.wait_for(resent, 5)
        assert third.version_info == v3
        await requests.put(None)


async def test_wait_acked_times_out_without_envoy() -> None:
    cache = XdsCache()
    version = await cache.publish(clusters("a"))
    assert await cache.wait_acked(version, 0.1) is False
