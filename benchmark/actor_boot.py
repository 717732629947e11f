"""Entry point of actor processes (``benchmark.async_train``), kept free of heavy imports.

A spawned process imports its target's module before running it; importing torch and the agents
takes seconds (tens on a loaded machine). This module imports no more than its package does
(``benchmark/__init__`` imports ``envs`` for the headless rendering default, numpy and MuJoCo
with it, ~0.4 s on a warm cache), so an actor asks to die with its parent
(`envs.tether.die_with_parent`) before torch and the agent are imported, and exits at once if
the parent is already gone.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from typing import Any

from envs.tether import die_with_parent


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

    try:
        actor_loop(parent_pid, *args)
    except Exception as err:  # noqa: BLE001 - one line, as the CLI prints errors (serl22: a
        # safety trip in an actor printed 14 lines of multiprocessing's traceback); the
        # learner then says the actor died and what is checkpointed
        name = multiprocessing.current_process().name
        sys.stderr.write(f"insertbench: {name}: {type(err).__name__}: {err}\n")
        sys.stderr.flush()
        sys.exit(1)
