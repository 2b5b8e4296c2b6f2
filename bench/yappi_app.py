"""geo_query's app under yappi's CPU clock, for `python -m bench.profile --cpu`: the profile starts on SIGUSR1 and
is written (pstats format, to BENCH_YAPPI_OUT) on SIGUSR2, so that start-up and warming are not counted.

CPU time per function (not wall time): a process preempted by the database backend it just woke is not charged
for the wait, which a sampling profiler of wall time (py-spy) charges to the line that wrote to the socket."""

from __future__ import annotations

import os
import signal
from typing import Any

import yappi

from services.geo_query.main import app

__all__ = ["app"]

yappi.set_clock_type("cpu")


def _start(*_: Any) -> None:
    yappi.clear_stats()
    yappi.start(builtins=False)


def _stop(*_: Any) -> None:
    yappi.stop()
    yappi.get_func_stats().save(os.environ["BENCH_YAPPI_OUT"], type="pstat")


signal.signal(signal.SIGUSR1, _start)
signal.signal(signal.SIGUSR2, _stop)
