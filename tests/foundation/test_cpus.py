"""The thread default follows the CPUs the process may use: its affinity and its cgroup CPU quota."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jetscribe.cpus import available_cpus, cgroup_cpu_quota


def cgroup_v2(tmp_path: Path, *, own: str | None, parent: str | None = None) -> tuple[Path, Path]:
    """A cgroup v2 tree (root/kubepods/pod1) holding the given `cpu.max` lines, and a /proc/self/cgroup for it."""
    pod = tmp_path / "cgroup" / "kubepods" / "pod1"
    pod.mkdir(parents=True)
    if own is not None:
        (pod / "cpu.max").write_text(own + "\n")
    if parent is not None:
        (pod.parent / "cpu.max").write_text(parent + "\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/kubepods/pod1\n")
    return tmp_path / "cgroup", proc


def test_a_cgroup_v2_quota_caps_the_cpus_rounded_up(tmp_path: Path) -> None:
    root, proc = cgroup_v2(tmp_path, own="150000 100000")

    assert cgroup_cpu_quota(root, proc) == 1.5
    assert available_cpus(root, proc) == min(2, len(os.sched_getaffinity(0)))


def test_the_tightest_quota_of_the_cgroup_and_its_ancestors_wins(tmp_path: Path) -> None:
    root, proc = cgroup_v2(tmp_path, own="max 100000", parent="100000 100000")

    assert cgroup_cpu_quota(root, proc) == 1.0
    assert available_cpus(root, proc) == 1


def test_no_quota_leaves_the_affinity(tmp_path: Path) -> None:
    root, proc = cgroup_v2(tmp_path, own="max 100000")

    assert cgroup_cpu_quota(root, proc) is None
    assert available_cpus(root, proc) == len(os.sched_getaffinity(0))


def test_a_cgroup_v1_quota_counts_too(tmp_path: Path) -> None:
    cpu = tmp_path / "cgroup" / "cpu,cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("50000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:cpu,cpuacct:/docker/abc\n0::/\n")

    assert cgroup_cpu_quota(tmp_path / "cgroup", proc) == 0.5
    assert available_cpus(tmp_path / "cgroup", proc) == 1


def test_a_process_pinned_to_one_cpu_defaults_to_one_thread() -> None:
    pinned = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-c",
            "from jetscribe.config import Settings; print(Settings().threads)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert pinned.stdout.strip() == "1"
