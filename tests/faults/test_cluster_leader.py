"""A three-node cluster with R3 streams and buckets: killing the jobs stream's leader mid-run loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import msgspec
import pytest

from jetscribe.broker import connect
from jetscribe.config import Settings
from jetscribe.jobstore import JobStore
from jetscribe.topology import ensure_topology
from schemas import names
from tests.faults.cluster import NatsCluster, wait_until_replicated
from tests.faults.conftest import wait_until_running, wait_until_terminal
from tests.worker.jobs import AUDIO, submit, terminal_event_count
from tests.worker.process import WorkerProcess, worker_env

pytestmark = pytest.mark.slow

JOBS: Final = 8


async def test_killing_the_jobs_stream_leader_loses_no_job_and_finishes_none_twice(
    settings: Settings, tmp_path: Path
) -> None:
    async with NatsCluster(tmp_path / "cluster") as cluster:
        clustered = msgspec.structs.replace(settings, nats_url=cluster.url, replicas=3)
        nc = await connect(clustered, cluster.url, name="cluster-test")
        try:
            await cluster.wait_for_jetstream(nc)
            js = nc.jetstream()
            topology = await ensure_topology(js, clustered)
            store = JobStore(topology.jobs, topology.transcripts)
            info = await js.stream_info(names.JOBS_STREAM)
            assert info.config.num_replicas == 3
            env = worker_env(clustered, JETSCRIBE_REPLICAS="3")
            async with WorkerProcess(env, topology, tmp_path / "worker.log") as worker:
                job_ids = [await submit(js, topology, AUDIO / f"en{i % 6 + 1}.wav") for i in range(JOBS)]
                await wait_until_running(store, job_ids, within_s=60)
                await wait_until_replicated(
                    nc, names.JOBS_STREAM, names.tenant_consumer(clustered.served_models[0], names.DEFAULT_TENANT)
                )
                leader = (await js.stream_info(names.JOBS_STREAM)).cluster.leader
                await asyncio.to_thread(cluster.node(leader).kill)

                ended = await wait_until_terminal(store, job_ids, within_s=150)
                new_leader = (await js.stream_info(names.JOBS_STREAM)).cluster.leader
                assert worker.process.poll() is None, worker.log()

            assert {r.status for r in ended.values()} == {"done"}, {i: (r.status, r.error) for i, r in ended.items()}
            assert [await terminal_event_count(js, j) for j in job_ids] == [1] * JOBS
            assert new_leader != leader
            for stream in (names.JOBS_STREAM, names.EVENTS_STREAM, names.kv_stream(names.JOBS_BUCKET)):
                assert (await js.stream_info(stream)).config.num_replicas == 3
            print(f"killed stream leader {leader}; new leader {new_leader}")
        finally:
            await nc.close()
