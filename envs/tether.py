"""Tie a child process's life to its parent's, a ``kill -9`` of the parent included, or any
process's to another's (`die_with`).

Shared by the processes InsertBench starts: the vector env's workers (`envs.shard_worker`), the
matrix's local executor and Ray cells (`benchmark.executors`), the twin server
(`real.serve_twin`); the matrix store asks `pid_alive` of a running marker's owner, and
whoever bounds its processes per core, `available_cores`; whoever starts workers while a
Ctrl-C may come, `children_ignore_sigint`; whoever starts a Python child with ``-P``, its
`package_environment`. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: prctl(2) option: the signal the kernel sends this process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, *, death_signal: bool = True) -> None:
    """Make this process end when `parent_pid` (the process that started it) dies, even by
    SIGKILL: Linux's PR_SET_PDEATHSIG (only with `death_signal`: it fires when the parent's
    *thread* that started this process ends), elsewhere a daemon thread polling the parent's
    pid. Exits at once if the parent is already gone."""
    if sys.platform.startswith("linux"):
        if death_signal:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the request was in place
        os._exit(1)


@contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Processes started inside begin with SIGINT ignored, which a new Python keeps: a Ctrl-C
    reaches the terminal's whole process group, and a child still importing (numpy, MuJoCo,
    torch: seconds) printed its own KeyboardInterrupt traceback; its parent stops it instead.
    The parent's handler is back at the end (only the main thread may set one; elsewhere
    nothing changes). A Ctrl-C within the few milliseconds of the starts is lost."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGINT, handler)


def package_environment() -> dict[str, str]:
    """This process's environment with the checkout that holds this package first on
    PYTHONPATH, for a Python child started with ``-P`` (no working directory on its path): it
    imports the package its parent did, not a working directory's module or another install."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (another user's included). No process has a pid below 1 or
    beyond the system's range (a damaged marker's 2**62 was an OverflowError; 0 and -1 would
    have asked about this process group, or every process)."""
    if not isinstance(pid, int) or pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def process_started_at(pid: int) -> float | None:
    """When process `pid` started [s since the epoch, to ~1 s: the boot time is in whole
    seconds], or None where the system does not say (no /proc: not Linux; the process gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            fields = file.read().rpartition(")")[2].split()  # after the command's name
        with open("/proc/stat", encoding="ascii") as file:
            boot = next(float(line.split()[1]) for line in file if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def die_with(pid: int) -> None:
    """End this process within half a second of process `pid`'s end, whoever started this
    one (a daemon thread polling it): for a process that is not `pid`'s child."""
    threading.Thread(target=_watch_pid, args=(pid,), daemon=True).start()


def _watch_pid(pid: int) -> None:
    while pid_alive(pid):
        time.sleep(0.5)
    os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)
