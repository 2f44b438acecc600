"""The thread sizing rule, and the per-thread priority a job runs at."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from pipelines import threads
from pipelines.threads import available_cores, job_threads, lower_thread_priority
from service.config import Settings


def test_each_job_gets_the_cores_divided_by_the_jobs_at_once() -> None:
    assert job_threads(1, cores=2) == 2
    assert job_threads(2, cores=2) == 1
    assert job_threads(2, cores=8) == 4
    assert job_threads(3, cores=8) == 2  # never more threads than cores in all
    # More jobs than cores: one thread each, never zero.
    assert job_threads(4, cores=2) == 1
    assert job_threads(0, cores=4) == 4


def test_the_operator_override_wins() -> None:
    assert job_threads(2, cores=16, override=3) == 3
    assert job_threads(1, cores=2, override=8) == 8


def test_settings_read_the_override_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCEBOOK_JOB_THREADS", "3")
    assert Settings().threads_per_job(4) == 3
    monkeypatch.setenv("SOURCEBOOK_JOB_THREADS", "")  # empty in .env: the rule
    assert Settings().job_threads is None
    assert Settings().threads_per_job(1) == available_cores()


def test_cores_are_the_affinity_capped_by_a_container_quota(
        tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_max = tmp_path / "cpu.max"  # type: ignore[operator]
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", cpu_max)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert available_cores() == 8  # no cgroup file
    cpu_max.write_text("max 100000\n")
    assert available_cores() == 8
    cpu_max.write_text("150000 100000\n")  # --cpus 1.5
    assert available_cores() == 2
    cpu_max.write_text("50000 100000\n")
    assert available_cores() == 1


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
def test_a_job_thread_lowers_its_own_priority_only() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, int] = {}

    def job() -> None:
        lower_thread_priority(before + 5)
        seen["job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        child = threading.Thread(target=lambda: seen.update(
            child=os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        child.start()  # a model's pool thread, started by the job
        child.join()
        lower_thread_priority(before + 1)  # never back up: that would need privileges
        seen["again"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=job)
    t.start()
    t.join()
    assert seen == {"job": before + 5, "child": before + 5, "again": before + 5}
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the API's threads keep theirs
