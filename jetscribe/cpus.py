"""How many CPUs this process may really use: its CPU affinity, capped by a cgroup CPU quota.

`os.cpu_count()` counts the host's cores. A container limited to 4 CPUs on a 64-core node (a
Kubernetes `resources.limits.cpu: 4`) sees 64 there, and whisper.cpp with 64 threads per slot on a
4-CPU quota spends its time throttled. The quota lives in the cgroup filesystem: cgroup v2's
`cpu.max` ("<quota> <period>" or "max <period>", in the process's cgroup and every ancestor), or
cgroup v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1 = none). See the kernel's
Documentation/admin-guide/cgroup-v2.rst ("cpu.max") and scheduler/sched-bwc.rst.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
PROC_CGROUP: Final = Path("/proc/self/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may use: the affinity mask's size, capped by the cgroup CPU quota rounded up; at least 1."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The tightest CPU quota (in CPUs, e.g. 1.5) on this process's cgroups, or None when there is none."""
    quotas = [q for q in (*_v2_quotas(cgroup_root, proc_cgroup), _v1_quota(cgroup_root, proc_cgroup)) if q]
    return min(quotas) if quotas else None


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller list → cgroup path, from /proc/self/cgroup (`hierarchy:controllers:path` lines)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return {}
    paths = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    return paths


def _v2_quotas(cgroup_root: Path, proc_cgroup: Path) -> list[float | None]:
    """The quota of the process's unified cgroup and of each ancestor (any of them may limit it)."""
    relative = _cgroup_paths(proc_cgroup).get("", "/")
    base = cgroup_root / "unified" if (cgroup_root / "unified").is_dir() else cgroup_root
    directory = base / relative.lstrip("/")
    quotas = []
    while True:
        quotas.append(_read_cpu_max(directory / "cpu.max"))
        if directory == base or base not in directory.parents:
            return quotas
        directory = directory.parent


def _read_cpu_max(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _v1_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    paths = _cgroup_paths(proc_cgroup)
    relative = next((path for controllers, path in paths.items() if "cpu" in controllers.split(",")), "/")
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        directory = cgroup_root / mount
        for candidate in (directory / relative.lstrip("/"), directory):
            try:
                quota = int((candidate / "cpu.cfs_quota_us").read_text())
                period = int((candidate / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            return quota / period if quota > 0 and period > 0 else None
    return None
