"""Independent solves in parallel: in this process, on local worker processes, or on a Dask cluster.

One small runner serves every analysis that re-solves (sweeps, the value of
information of a scenario tree, near-optimal ranges, the free solve behind a
commitment cost).  Tasks are a picklable top-level function and its
arguments; results arrive as they finish, and more tasks may be submitted
while they do (a task can depend on an earlier one's result).

Local workers are started with ``spawn``: forking a process that may hold
HiGHS threads is unsafe.  A script that starts local worker processes (more
than one worker, or one beside the work of its own process: a time-limited
or large tree's analyses) must therefore guard its entry point with
``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


class WorkersStopped(RuntimeError):
    """The local worker processes died (or could not start)."""


TRACKER_FILTER = "ignore:resource_tracker:UserWarning"
"""The warning filter :func:`_quiet_tracker` gives multiprocessing's resource tracker."""


def _quiet_tracker() -> None:
    """Worker processes stopped at a deadline (:meth:`Runner._abandon`) can leave their pool's semaphores to
    multiprocessing's resource tracker, which removes them at exit and warns "There appear to be 2 leaked
    semaphore objects": nothing a user can act on, printed after a solve that kept its time limit.  The tracker
    is a process started with this process's warning options: this one, added before it starts, silences that
    warning alone."""
    if TRACKER_FILTER not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_FILTER)


class Abandoned(Exception):
    """A task given up at the deadline of :meth:`Runner.results`: ``started`` says whether it had begun (its
    worker was stopped) or was still waiting."""

    def __init__(self, started: bool):
        super().__init__("stopped at the deadline" if started else "not started by the deadline")
        self.started = started


SPAWN_HINT = ("Worker processes are started with 'spawn': a script that runs capplan with worker processes "
              "must do so under `if __name__ == \"__main__\":` (and cannot be read from standard input); or "
              "pass workers=1 (to solve: workers=0, its analyses then run in this process after the solve)")


def default_workers() -> int:
    return os.cpu_count() or 1


def _lower_priority(increment: int) -> None:
    try:
        os.nice(increment)
    except (AttributeError, OSError):  # not on this platform, or not allowed: run at the usual priority
        pass


class Runner:
    """Submit ``(key, fn, *args)`` tasks; iterate :meth:`results` for ``(key, result, error)`` as they finish.

    ``workers`` <= 1 (and no ``client``) runs every task in this process, in
    submission order.  ``window`` caps the tasks handed to a local pool at
    once, so that an interrupt loses little work (the rest wait here).
    ``nice`` lowers the priority of local worker processes (for analyses that
    run beside a solve in this process, which should not wait for them).
    ``beside``: the tasks run while this process works on something else, so
    even one worker is a process of its own (else one worker means this
    process, after that work: a time-limited solve leaves them no time).
    """

    def __init__(self, workers: int | None = None, client=None, *, window: int | None = None, nice: int = 0,
                 beside: bool = False):
        self.client = client
        self.nice = nice
        self.beside = beside
        self.workers = max(1, workers or default_workers())
        self.window = window or 2 * self.workers
        self._pool: ProcessPoolExecutor | None = None
        self._queue: deque = deque()  # tasks not yet handed out
        self._running: dict = {}  # future -> key

    @property
    def local(self) -> bool:
        return self.client is None and self.workers <= 1 and not self.beside

    def __enter__(self) -> Runner:
        if self.client is None and not self.local:
            _quiet_tracker()
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_lower_priority if self.nice else None,
                                             initargs=(self.nice,) if self.nice else ())
            # start every process now (one per submit while none is idle): a process started later inherits
            # the standard streams as they are then, and while HiGHS runs in this process Pyomo points them
            # at a pipe that a child holding it would keep from closing (its reader threads then deadlock)
            for _ in range(self.workers):
                self._pool.submit(int)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(cancel=exc_type is not None)

    def close(self, cancel: bool = True) -> None:
        if self.client is not None:
            if cancel and self._running:
                self.client.cancel(list(self._running))
        elif self._pool is not None:
            if cancel:
                for f in self._running:
                    f.cancel()
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            self._pool = None
        self._running.clear()
        self._queue.clear()

    def share(self, obj: Any) -> Any:
        """A handle to pass large shared data to every task (scattered once on a Dask cluster)."""
        return self.client.scatter(obj, broadcast=True) if self.client is not None else obj

    def submit(self, key, fn: Callable, *args, priority: float | None = None) -> None:
        """Queue ``fn(*args)``; with ``priority``, tasks of higher priority are handed out first (a Dask
        cluster gets it as the task's priority), else in the order submitted."""
        if priority is None:
            self._queue.append((key, fn, args, 0.0))
            return
        i = next((i for i, item in enumerate(self._queue) if item[3] < priority), len(self._queue))
        self._queue.insert(i, (key, fn, args, priority))

    def _hand_out(self) -> None:
        while self._queue and (self.client is not None or len(self._running) < self.window):
            key, fn, args, priority = self._queue.popleft()
            if self.client is not None:
                f = self.client.submit(fn, *args, pure=False, priority=priority)
            else:
                f = self._pool.submit(fn, *args)
            self._running[f] = key

    def results(self, until: float | None = None) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """Yield ``(key, result, None)`` or ``(key, None, error)`` for each task as it finishes.

        ``until`` (``time.time()``): past it no task starts, and the running ones are given up, their local
        worker processes stopped; each such task is yielded with an :class:`Abandoned` error (tasks submitted
        while these are taken in too).  The runner takes no more tasks after that."""
        if self.local:
            while self._queue:
                if until is not None and time.time() >= until:
                    yield from self._abandon()
                    return
                key, fn, args, _ = self._queue.popleft()
                try:
                    yield key, fn(*args), None
                except Exception as exc:  # a failed task is a result, never an aborted run
                    yield key, None, exc
            return
        try:
            while True:
                if until is not None and time.time() >= until:
                    yield from self._abandon()
                    return
                self._hand_out()
                if not self._running:
                    return
                done = self._wait(None if until is None else max(0.0, until - time.time()))
                for f in done:
                    key = self._running.pop(f)
                    try:
                        result = f.result()
                    except BrokenProcessPool:
                        raise
                    except Exception as exc:
                        yield key, None, exc
                        continue
                    yield key, result, None
        except BrokenProcessPool as exc:
            self.close(cancel=True)
            raise WorkersStopped(f"the worker processes stopped ({exc}). {SPAWN_HINT}") from None

    def _wait(self, timeout: float | None):
        """The tasks finished when one is (or none at ``timeout`` seconds)."""
        if self.client is not None:
            from distributed import wait as dask_wait

            try:
                return dask_wait(list(self._running), timeout=timeout, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                return set()
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        return done

    def _abandon(self) -> Iterator[tuple[Any, Any, BaseException]]:
        """Give up every task: the running ones' workers are stopped (a solve in a worker can run on past
        its limit, and closing the pool would wait for it), the waiting ones never start."""
        running = list(self._running.values())
        if self.client is not None:
            self.client.cancel(list(self._running))
        elif self._pool is not None and running:
            processes = list(getattr(self._pool, "_processes", {}).values())
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(5)
            # once the workers are gone the pool's manager ends at once: waiting for it closes the pool's queues
            # now (the semaphores a stopped worker held are still left to the tracker: _quiet_tracker)
            self._pool.shutdown(wait=not any(p.is_alive() for p in processes), cancel_futures=True)
            self._pool = None
        self._running.clear()
        for key in running:
            yield key, None, Abandoned(started=True)
        while self._queue:  # taking in the ones above may submit more
            key, *_ = self._queue.popleft()
            yield key, None, Abandoned(started=False)
