"""How many CPU threads one job's models may use, and how a job yields the CPU.

The rule: each job gets ``cores // jobs that run at once in its process`` threads for
torch and for CTranslate2 (at least one). Two jobs that each think they own the machine
run several times slower than the same two jobs in sequence: their thread pools spin
against each other on the same cores (a 30 s diarization took 61 s instead of 8 s
beside a second CPU-heavy process). ``override`` is the operator's word
(``SOURCEBOOK_JOB_THREADS``), for a machine shared with other work or for several worker
processes on one host, where the process cannot see the others.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path

#: cgroup v2's CPU quota of this container (``max 100000`` when there is none).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a container's quota
    (``docker run --cpus 2`` leaves every host core in the affinity mask)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def job_threads(jobs_at_once: int, *, override: int | None = None,
                cores: int | None = None) -> int:
    """Threads for one job's torch and CTranslate2: ``max(1, cores // jobs_at_once)``,
    or ``override`` when the operator set one."""
    if override:
        return max(1, override)
    return max(1, (cores if cores is not None else available_cores()) // max(1, jobs_at_once))


def use_torch_threads(threads: int) -> None:
    """Cap torch's intra-op threads for jobs run from the calling thread.

    Call it in each job thread: with OpenMP the count is held per calling thread once it
    has run a parallel region, so a worker thread that ran an earlier job keeps its old
    count unless it is told again."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (never lower it: that needs
    privileges), so that the threads it starts later (torch's and CTranslate2's pools)
    inherit it and requests served by other threads get the CPU first.

    Linux keeps a nice value per thread, so this leaves the rest of the process alone; on
    other systems the process's own value is raised, which only an embedded worker in
    thread mode would notice."""
    if nice <= 0:
        return
    who = threading.get_native_id() if sys.platform == "linux" else 0
    try:
        if os.getpriority(os.PRIO_PROCESS, who) < nice:
            os.setpriority(os.PRIO_PROCESS, who, nice)
    except (AttributeError, OSError):  # no setpriority (Windows): run at normal priority
        pass


def lower_process_priority(nice: int) -> None:
    """Raise the nice value of every thread this process has now, and so of every one it
    starts later. Imports alone start threads (numpy's BLAS pool) that a change of the
    calling thread's value would miss."""
    if nice <= 0:
        return
    try:
        tasks = [int(t.name) for t in Path(f"/proc/{os.getpid()}/task").iterdir()]
    except OSError:  # no /proc: the process's own value is all there is
        tasks = [0]
    for tid in tasks:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (AttributeError, OSError):  # gone meanwhile, or no setpriority (Windows)
            pass
