"""Entry point of actor processes (``benchmark.async_train``), kept free of heavy imports.

A spawned process imports its target's module before running it; importing torch and MuJoCo
takes seconds (tens on a loaded machine). This module imports only the standard library, so an
actor asks the kernel to kill it with its parent (``PR_SET_PDEATHSIG``) before torch and the
agent are imported, and exits at once if the parent is already gone. (Its package comes first:
``benchmark/__init__`` imports ``envs`` for the headless rendering default, numpy and MuJoCo
with it, ~0.4 s on a warm cache.)
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def run_actor(parent_pid: int, *args: Any) -> None:
    """Tie this process to ``parent_pid``, then run ``async_train.actor_loop(*args)``. A Ctrl-C
    reaches the terminal's whole process group: the learner stops the actors (its ``stop``
    event, then SIGKILL), so they ignore it rather than print their own tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    import warnings

    from benchmark.async_train import actor_loop
    from benchmark.cli_options import one_line_warning

    warnings.showwarning = one_line_warning  # as the parent's CLI prints them, not two lines

    actor_loop(parent_pid, *args)
