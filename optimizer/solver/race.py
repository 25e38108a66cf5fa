"""A second search on an idle core: the same program, another random seed.

HiGHS's branch and bound runs on one thread (HiGHS 1.15 logs "Parallel search
off"), so a solve leaves the other cores of the machine idle while it closes
its gap; and the time a search takes to prove a small MIP depends heavily on
the path it happens to take.  mc-hard25-s3 of the hard set proves in 12 s with
one random seed and is still at a gap of 2.4e-4 after 60 s with another
(docs/performance.md, "A second search").  Commercial solvers answer with
concurrent search; capplan does the same with two processes.

When the final search of a solve has run :data:`RACE_AFTER` seconds without
proving its plan, :class:`Racer` starts a helper process (``_racer.py``, which
imports numpy and highspy alone) holding the same program, the best plan known
and another random seed.  The two exchange their incumbent and bound as they
change.  Both are valid for the one program, so each search stops as soon as
the better incumbent is within the gap of the tighter bound, and the solve
reports the better plan and the tighter bound.  A solve that proves within
:data:`RACE_AFTER` seconds never starts a helper, and so is exactly as before.

By default (``race=None``) the helper is started only under a time limit (without one, capplan's plans are
reproducible to the bit, and which of two searches finds the plan first depends on timing) and only where a
core is idle: more than one core in this process's affinity, a v1 program (a tree's analyses run beside its
search on the other cores), no ``threads=1`` (an analysis on a worker process, a PH subproblem, a user asking
for one core), and not inside a worker process.  ``race=True`` starts it in any case, ``race=False`` never.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing import parent_process
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from ._racer import better, tighter

RACE_AFTER = 5.0
"""Seconds of the final search without a proof before the helper starts."""

HELPER_SEED = 1
"""The helper's HiGHS random seed (the solve's own search uses 0)."""

FINISH_WAIT = 10.0
"""Seconds the solve waits, after its own search, for the helper's last message (it answers "stop" at its next
callback, in milliseconds; a helper still starting or in its presolve takes longer) before ending it."""

_HELPER = Path(__file__).with_name("_racer.py")
_BIG = 1e50


@dataclass
class HelperResult:
    """What the helper's search reached (HiGHS's objective units and sense)."""

    status: str  # HiGHS's model status, in its words ("Optimal", "Interrupted by user", ...)
    incumbent: float | None
    bound: float | None
    values: np.ndarray | None  # its plan (a HiGHS column vector), None without one
    seconds: float  # from its start to its end
    started_at: float  # seconds into the final search when it started


def idle_cores() -> int:
    """Cores this process may run on, beyond its own."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on this platform
        n = os.cpu_count() or 1
    return max(0, n - 1)


def applies(race: bool | None, threads: int | None, trivial_tree: bool, limited: bool) -> bool:
    """Whether a solve with these options may start a helper (``race``: True/False forces, None decides).

    None decides for a helper only under a time limit (``limited``): a time limit already makes the plan
    depend on the machine's speed, where without one capplan's plan is reproducible to the bit, and the
    helper would end that (which search finds the plan first depends on timing)."""
    if race is not None:
        return race
    return limited and trivial_tree and threads != 1 and idle_cores() >= 1 and parent_process() is None


class Racer:
    """The helper of one search: armed before the search, :meth:`exchange` from its callback, :meth:`finish`
    after it (always, in a ``finally``)."""

    def __init__(self, h, *, maximize: bool, rel_gap: float, abs_gap: float, deadline: float | None,
                 options: dict, after: float | None = None, seed: int = HELPER_SEED, log: bool = False):
        self.h = h
        self.maximize = maximize
        self.rel_gap, self.abs_gap = rel_gap, abs_gap
        self.deadline = deadline
        self.options = dict(options)
        self.after = RACE_AFTER if after is None else after
        self.seed = seed
        self.log = log
        self.payload = None
        self.inc = self.bound = None  # the helper's, as last received
        self.sent = (None, None)
        self.best_values = None  # the search's latest improving plan (a start for the helper)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        self._proc = None
        self._conn = None
        self._started = None
        self._t0 = None
        self.result: HelperResult | None = None
        self.error: str | None = None  # the helper's traceback, if it failed

    # ------------------------------------------------------------------ before the search

    def arm(self) -> None:
        """Copy the program (HiGHS must not be read while it runs) and start the clock of :data:`RACE_AFTER`;
        the helper starts from the search's latest improving plan (:meth:`exchange`), if any by then."""
        lp = self.h.getLp()
        a = lp.a_matrix_
        self.payload = {
            "num_col": lp.num_col_, "num_row": lp.num_row_,
            "col_cost": np.asarray(lp.col_cost_), "col_lower": np.asarray(lp.col_lower_),
            "col_upper": np.asarray(lp.col_upper_), "row_lower": np.asarray(lp.row_lower_),
            "row_upper": np.asarray(lp.row_upper_), "start": np.asarray(a.start_),
            "index": np.asarray(a.index_), "value": np.asarray(a.value_),
            "integrality": np.asarray([int(k) for k in lp.integrality_], dtype=np.int8)
            if len(lp.integrality_) else np.zeros(lp.num_col_, dtype=np.int8),
            "format": int(a.format_), "offset": lp.offset_, "maximize": self.maximize, "rel_gap": self.rel_gap,
            "abs_gap": self.abs_gap,
        }
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._wait_then_start, name="capplan-race", daemon=True)
        self._thread.start()

    def _wait_then_start(self) -> None:
        if self._done.wait(self.after):
            return
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        if left is not None and left < 1.0:  # nothing to gain from a helper that cannot start in time
            return
        with self._lock:
            if self._done.is_set():
                return
            try:
                self._start(left)
            except Exception as exc:  # could not start it (a process, its payload): the search goes on alone
                self.error = f"{type(exc).__name__}: {exc}"
                if self.log:
                    print(f"capplan: no second search ({exc})", file=sys.stderr)

    def _start(self, left: float | None) -> None:
        mine, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen([sys.executable, str(_HELPER), str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                          close_fds=True)
        finally:
            theirs.close()
        conn = Connection(mine.detach())
        self._started = time.perf_counter()
        options = {**self.options, "random_seed": self.seed, "threads": 1, "output_flag": False,
                   "mip_rel_gap": self.rel_gap, "mip_abs_gap": self.abs_gap}
        if left is not None:
            options["time_limit"] = max(0.01, left)
        try:
            conn.send({**self.payload, "options": options, "values": self.best_values})
        except BaseException:
            conn.close()
            raise
        # only now may the search's callback use it: two threads writing one socket would interleave the payload
        # with the callback's messages and corrupt both
        self._conn = conn
        if self.log:
            print(f"capplan: a second search (random seed {self.seed}) started on an idle core after "
                  f"{self._started - self._t0:.1f} s", file=sys.stderr)

    # ------------------------------------------------------------------ during the search

    def exchange(self, inc, bound, values=None) -> tuple:
        """From the search's callback: hand the helper the solve's view (the better incumbent, the tighter
        bound) when it changed, and return the helper's ``(incumbent, bound)`` as last received.  ``values``:
        the search's improving plan, copied (HiGHS owns the array it hands its callback)."""
        if values is not None:
            self.best_values = np.array(values, dtype=float)
        conn = self._conn
        if conn is None:
            return None, None
        try:
            while conn.poll(0):
                self._take(conn.recv())
            view = (better(inc, self.inc, self.maximize), tighter(bound, self.bound, self.maximize))
            if view != self.sent and self.result is None:
                conn.send(("best", *view))
                self.sent = view
        except (EOFError, OSError):  # the helper is gone: the search goes on alone
            self._conn = None
        return self.inc, self.bound

    def _take(self, msg) -> None:
        """One message of the helper: its state, its end, or the error that ended it."""
        if msg[0] == "state":
            self.inc, self.bound = msg[1], msg[2]
        elif msg[0] == "done":
            _, status, inc, bound, values = msg
            self.inc = better(self.inc, inc, self.maximize)
            self.bound = tighter(self.bound, bound, self.maximize)
            self.result = HelperResult(status, inc, bound, values, time.perf_counter() - self._started,
                                       self._started - self._t0)
        elif msg[0] == "error":
            self.error = msg[1]
            if self.log:
                print(f"capplan: the second search failed; the search goes on alone:\n{msg[1]}", file=sys.stderr)

    # ------------------------------------------------------------------ after the search

    def finish(self, wait: float | None = None) -> HelperResult | None:
        """Stop the helper and collect what it reached (None if it never started or sent nothing); ``wait``:
        seconds for its last message (default :data:`FINISH_WAIT`)."""
        wait = FINISH_WAIT if wait is None else wait
        with self._lock:
            self._done.set()
        if self._thread is not None:
            self._thread.join()
        conn, proc = self._conn, self._proc
        if proc is None:  # never started (or could not be)
            if self.error is not None:
                self.result = HelperResult(f"error: {self.error}", None, None, None, 0.0,
                                           time.perf_counter() - self._t0)
            return self.result
        try:
            if conn is not None and self.result is None:
                conn.send(("stop",))
                end = time.perf_counter() + wait
                while (self.result is None and self.error is None
                       and conn.poll(max(0.0, end - time.perf_counter()))):
                    self._take(conn.recv())
                    if time.perf_counter() >= end:
                        break
        except (EOFError, OSError):
            pass
        finally:
            if conn is not None:
                conn.close()
            self._conn = None
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.result is None and (self.inc is not None or self.bound is not None or self.error is not None):
            # no final message (the helper died or failed): its bound was valid when sent, its plan is lost
            status = "lost" if self.error is None else "error: " + self.error.strip().splitlines()[-1]
            self.result = HelperResult(status, None, self.bound, None, time.perf_counter() - self._started,
                                       self._started - self._t0)
        if self.log and self.result is not None:
            r = self.result
            print(f"capplan: the second search ended ({r.status}) after {r.seconds:.1f} s: incumbent {r.incumbent}, "
                  f"bound {r.bound}", file=sys.stderr)
        return self.result


__all__ = ["FINISH_WAIT", "HELPER_SEED", "RACE_AFTER", "HelperResult", "Racer", "applies", "better", "idle_cores",
           "tighter"]
