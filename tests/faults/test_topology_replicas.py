"""On a three-node cluster, a component configured with fewer replicas never scales the topology down."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.topology import ensure_topology
from schemas import names
from tests.faults.cluster import NatsCluster

pytestmark = pytest.mark.slow


async def test_a_component_started_with_one_replica_leaves_r3_streams_and_buckets_at_three(
    settings: Settings, tmp_path: Path
) -> None:
    async with NatsCluster(tmp_path / "cluster") as cluster:
        clustered = msgspec.structs.replace(settings, nats_url=cluster.url, replicas=3)
        nc = await connect(clustered, cluster.url, name="replicas-test")
        try:
            await cluster.wait_for_jetstream(nc)
            js = nc.jetstream()
            await ensure_topology(js, clustered)

            await ensure_topology(js, msgspec.structs.replace(clustered, replicas=1, job_ttl_s=3600.0))

            for stream in (
                names.JOBS_STREAM,
                names.EVENTS_STREAM,
                names.kv_stream(names.JOBS_BUCKET),
                names.object_stream(names.AUDIO_BUCKET),
            ):
                info = await js.stream_info(stream)
                assert info.config.num_replicas == 3, stream
            assert (await js.stream_info(names.kv_stream(names.JOBS_BUCKET))).config.max_age == 3600.0
        finally:
            await nc.close()
