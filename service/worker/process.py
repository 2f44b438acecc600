"""Where job threads run: a `sourcebook worker`, or the worker `serve` keeps beside the API.

Without Redis, `serve` runs the queue's consumers itself (the laptop setup). By default
they run in a child process at a lower CPU priority (``embedded_mode = process``): a
transcription then never holds the API process's interpreter lock, and the kernel
gives a request's thread the CPU before the model's threads. ``thread`` mode runs them
inside the API process, each consumer thread at the lower priority (Linux keeps a nice
value per thread); tests use it to share the app's monkeypatches.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from pipelines.runner import ModelCache
from pipelines.threads import lower_process_priority
from service.config import Settings
from service.db import make_engine, migrate
from service.storage import Storage
from service.worker import jobrows, tasks
from service.worker.queue import HueyQueue, make_huey

log = logging.getLogger("sourcebook.worker")

#: Seconds between the embedded worker's checks that `serve` is still its parent.
PARENT_CHECK_S = 1.0
#: Seconds `serve` waits for its worker to stop before it kills it.
STOP_WAIT_S = 10.0


def worker_context(settings: Settings, engine: Engine, storage: Storage, queue: Any,
                   jobs_at_once: int, device: str = "cpu") -> jobrows.WorkerContext:
    """A worker's context, its models capped at the threads one job may use, on
    ``device`` (resolved by the caller: a worker on the wrong device never starts)."""
    threads = settings.threads_per_job(jobs_at_once)
    log.info("%d job thread(s), %d CPU thread(s) each, nice %d",
             jobs_at_once, threads, settings.job_nice)
    return jobrows.WorkerContext(
        settings=settings, engine=engine, storage=storage, queue=queue,
        models=ModelCache(settings.models_dir, keep=True, cpu_threads=threads, device=device))


def start_embedded(settings: Settings, engine: Engine, storage: Storage,
                   jobs: Any, device: str = "cpu") -> Callable[[], None] | None:
    """Start `serve`'s own job threads (none with Redis, where workers are separate);
    returns how to stop them."""
    if settings.redis_url or settings.embedded_workers <= 0 or not isinstance(jobs, HueyQueue):
        return None
    if settings.embedded_mode == "process":
        return _start_process(settings, device)
    return _start_threads(settings, engine, storage, jobs, device)


def _start_threads(settings: Settings, engine: Engine, storage: Storage,
                   jobs: HueyQueue, device: str) -> Callable[[], None]:
    ctx = worker_context(settings, engine, storage, jobs, settings.embedded_workers, device)
    tasks.set_context(ctx)
    consumer = jobs.consumer(settings.embedded_workers, embedded=True)
    consumer.start()
    recovery = tasks.Recovery(ctx)
    recovery.start()
    log.info("embedded queue: %d worker thread(s) in the API process",
             settings.embedded_workers)

    def stop() -> None:
        recovery.stop()
        consumer.stop(graceful=False)
        tasks.set_context(None)

    return stop


def _start_process(settings: Settings, device: str) -> Callable[[], None]:
    # spawn, not fork: the API process has threads (the event loop's, the database
    # pool's), and a forked copy of their locks can deadlock the child.
    proc = multiprocessing.get_context("spawn").Process(
        target=run_embedded, args=(settings, os.getpid(), device), name="sourcebook-worker")
    proc.start()
    log.info("embedded queue: %d worker thread(s) in worker process %s",
             settings.embedded_workers, proc.pid)

    def stop() -> None:
        if proc.is_alive():
            proc.terminate()  # SIGTERM: Huey stops; a running job is re-queued later
            proc.join(STOP_WAIT_S)
        if proc.is_alive():
            proc.kill()
            proc.join(STOP_WAIT_S)

    return stop


def run_embedded(settings: Settings, parent_pid: int, device: str = "cpu") -> None:
    """The embedded worker process: the consumer threads `serve` would otherwise run."""
    # Its own session: a Ctrl-C at the terminal reaches `serve` alone, which then stops
    # this worker (Huey would otherwise wait for a running job to finish).
    os.setsid()
    lower_process_priority(settings.job_nice)
    logging.basicConfig(level=os.environ.get("SOURCEBOOK_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _follow_parent(parent_pid)
    run(settings, settings.embedded_workers, device)


def run(settings: Settings, workers: int, device: str = "cpu") -> None:
    """Consume the queue in this process until a signal stops it."""
    # Every thread, and so those the models start later: they inherit it.
    lower_process_priority(settings.job_nice)
    engine = make_engine(settings)
    migrate(engine, settings)
    storage = Storage(settings.recordings_dir)
    storage.ensure()
    queue = HueyQueue(make_huey(settings))
    ctx = worker_context(settings, engine, storage, queue, workers, device)
    tasks.set_context(ctx)
    recovery = tasks.Recovery(ctx)
    recovery.start()
    print(f"worker {ctx.name}: {workers} thread(s) on "
          f"{'Redis' if settings.redis_url else 'the SQLite queue'}, models on {device}",
          flush=True)
    queue.consumer(workers).run()


def _follow_parent(parent_pid: int) -> None:
    """Stop when `serve` is gone, however it went (SIGKILL leaves no time to stop us):
    an orphaned worker would hold the queue and the models' memory for nobody."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(PARENT_CHECK_S)
        log.warning("serve (pid %s) is gone; the embedded worker stops", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="follow-serve", daemon=True).start()
