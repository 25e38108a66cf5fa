"""The helper process of a race (:mod:`optimizer.solver.race`): the same MIP, another random seed.

Run as a script (``python _racer.py FD``), so that it imports numpy and highspy
alone, never the caller's ``__main__`` nor the optimizer package; FD is its end
of a socket pair, wrapped as a :class:`multiprocessing.connection.Connection`.

Messages (pickled tuples).  In: the payload first (the program's arrays, the
starting plan, the options and the seed), then ``("best", incumbent, bound)``
when the solve's view changes, and ``("stop",)``.  Out: ``("state",
incumbent, bound)`` when this search's own values change, and
``("done", status, incumbent, bound, values)`` at the end, or ``("error", traceback)``.  Objective values
are in HiGHS's units and sense; None where there is none.

It also holds the rules both searches apply (:func:`better`, :func:`tighter`,
:func:`within`), which :mod:`optimizer.solver.race` and
:mod:`optimizer.solver.highs` import from here.
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection

import highspy
import numpy as np

_BIG = 1e50
_SEND_EVERY = 0.1  # seconds between two state messages (the last one is always sent with "done")


def build(payload: dict) -> highspy.Highs:
    """A HiGHS object holding the payload's program, starting plan and options."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = payload["num_col"], payload["num_row"]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = payload["col_cost"], payload["col_lower"], payload["col_upper"]
    lp.row_lower_, lp.row_upper_ = payload["row_lower"], payload["row_upper"]
    formats = {int(f): f for f in (highspy.MatrixFormat.kColwise, highspy.MatrixFormat.kRowwise)}
    if payload["format"] not in formats:
        raise ValueError(f"matrix format {payload['format']!r} is neither column- nor row-wise")
    lp.a_matrix_.format_ = formats[payload["format"]]  # as the solve's
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = payload["num_col"], payload["num_row"]
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = (payload["start"], payload["index"],
                                                                     payload["value"])
    lp.sense_ = highspy.ObjSense.kMaximize if payload["maximize"] else highspy.ObjSense.kMinimize
    lp.offset_ = payload["offset"]
    kinds = {0: highspy.HighsVarType.kContinuous, 1: highspy.HighsVarType.kInteger}
    lp.integrality_ = [kinds[int(k)] for k in payload["integrality"]]
    if h.passModel(lp) == highspy.HighsStatus.kError:
        raise ValueError("HiGHS did not take the program")
    for name, value in payload["options"].items():
        h.setOptionValue(name, value)
    if payload.get("values") is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(payload["values"])
        sol.value_valid = True
        h.setSolution(sol)
    return h


def better(a: float | None, b: float | None, maximize: bool) -> float | None:
    """The better of two incumbents (either may be None): the larger for a maximisation."""
    if a is None or b is None:
        return b if a is None else a
    return max(a, b) if maximize else min(a, b)


def tighter(a: float | None, b: float | None, maximize: bool) -> float | None:
    """The tighter of two bounds (either may be None): the smaller for a maximisation."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if maximize else max(a, b)


def within(incumbent: float | None, bound: float | None, rel_gap: float, abs_gap: float) -> bool:
    """HiGHS's stopping rule, the solve's and this search's: the bound within ``abs_gap`` of the incumbent, or
    within ``rel_gap`` of it relative to |incumbent|."""
    if incumbent is None or bound is None:
        return False
    diff = abs(bound - incumbent)
    return diff <= abs_gap or diff <= rel_gap * max(abs(incumbent), 1e-9)


def main(fd: int) -> None:
    conn = Connection(fd)
    try:
        search(conn)
    except Exception:  # said to the solve, which searches on alone
        try:
            conn.send(("error", traceback.format_exc(limit=5)))
        except OSError:
            pass


def search(conn: Connection) -> None:
    payload = conn.recv()
    h = build(payload)
    maximize, rel_gap, abs_gap = payload["maximize"], payload["rel_gap"], payload["abs_gap"]
    view = {"inc": None, "bound": None, "stop": False, "sent": (None, None), "at": 0.0}

    def listen() -> None:
        try:
            while conn.poll(0):
                msg = conn.recv()
                if msg[0] == "stop":
                    view["stop"] = True
                elif msg[0] == "best":
                    view["inc"], view["bound"] = msg[1], msg[2]
        except (EOFError, OSError):  # the solve is gone: stop
            view["stop"] = True

    def on_event(e) -> None:
        d = e.data_out
        inc = d.objective_function_value if abs(d.objective_function_value) < _BIG else None
        bnd = d.mip_dual_bound if abs(d.mip_dual_bound) < _BIG else None
        listen()
        now = time.perf_counter()
        if (inc, bnd) != view["sent"] and now - view["at"] >= _SEND_EVERY:
            try:
                conn.send(("state", inc, bnd))
            except OSError:
                view["stop"] = True
            view["sent"], view["at"] = (inc, bnd), now
        if e.data_in is not None:
            done = view["stop"] or within(better(inc, view["inc"], maximize), tighter(bnd, view["bound"], maximize),
                                          rel_gap, abs_gap)
            e.interrupt(bool(done))

    h.cbMipInterrupt.subscribe(on_event)
    h.cbMipImprovingSolution.subscribe(on_event)
    h.run()
    info = h.getInfo()
    has_plan = info.primal_solution_status == 2
    inc = info.objective_function_value if has_plan else None
    bnd = info.mip_dual_bound if info.mip_node_count >= 0 and abs(info.mip_dual_bound) < _BIG else None
    values = np.asarray(h.getSolution().col_value, dtype=float) if has_plan else None
    try:
        conn.send(("done", h.modelStatusToString(h.getModelStatus()), inc, bnd, values))
    except OSError:
        pass


if __name__ == "__main__":
    # Ctrl-C at the terminal reaches this process too: the solve decides, and stops it through the socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    main(int(sys.argv[1]))
