"""A submitted ONNX policy run by onnxruntime in a process of its own, which the evaluator
kills when an action or the session's build outlasts its time limit.

onnxruntime stops a run (``RunOptions.terminate``) only between kernels, and one kernel may
run for as long as its graph asks within the memory cap: a MaxPool of a 512x512 window over a
1024x1024 map (439 bytes of graph) took 140 s as one action, an RNN of hidden size 4096 over
12,000 steps 185 s, and a bigger one would hold ``submit`` and ``verify`` for days (leader19).
A process can be stopped in the middle of a kernel.

The parent (`OnnxProcess`) sends one request at a time over a pipe and waits for its reply
until a deadline; the child (``python -P -m leaderboards.onnx_process CMD_FD REPLY_FD
PARENT_PID DEATH_SIGNAL``) builds the session and runs it. Messages are pickles framed by
`multiprocessing.connection` between two processes of this package; the graph is data to
onnxruntime, never code. The child imports the standard library, NumPy and onnxruntime only
(with `envs` it held MuJoCo too: 95 MB and 0.65 s a policy, diff22), and dies with its parent,
a ``kill -9`` included (as `envs.tether.die_with_parent` does for the other workers).

Requests and replies:

- ``("session", graph_bytes, memory_limit_bytes)`` -> ``("ok", inputs, n_outputs)``, inputs
  ``[(name, shape, onnx_type)]``, or ``("error", first_line)``. Sent again, it starts the
  graph's random operators from their seeds (a new session).
- ``("run", feed)`` -> ``("ok", first_output)``, ``("memory", first_line)`` when the capped
  arena refused, or ``("error", first_line)`` (an output of more than `MAX_OUTPUT_VALUES`
  values among them: a 256 MB one cost three times its size in both processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import weakref
from typing import Any

#: The most values the child sends back as an action (an action has a few).
MAX_OUTPUT_VALUES = 4096
#: prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


class OnnxTimeout(Exception):
    """The child did not answer within the deadline and was killed."""


class OnnxProcessEnded(Exception):
    """The child ended without answering (killed by the system, a crash)."""


class OnnxProcess:
    """The evaluator's end of one child process running one ONNX graph."""

    def __init__(self) -> None:
        from multiprocessing.connection import Connection

        from envs.tether import children_ignore_sigint, package_environment

        cmd_read, cmd_write = os.pipe()
        reply_read, reply_write = os.pipe()
        # PR_SET_PDEATHSIG fires when the starting thread ends: asked for from the main thread
        # only; from others the child watches its parent's pid.
        death_signal = threading.current_thread() is threading.main_thread()
        try:
            with children_ignore_sigint():  # a Ctrl-C is the evaluator's to handle
                # -P: not the working directory first on the path (an envs.py there was
                # imported, and the submission blamed: diff22).
                self.process = subprocess.Popen(
                    [sys.executable, "-P", "-m", "leaderboards.onnx_process", str(cmd_read),
                     str(reply_write), str(os.getpid()), str(int(death_signal))],
                    pass_fds=(cmd_read, reply_write), env=package_environment(),
                    stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(cmd_write)
            os.close(reply_read)
            raise
        finally:
            os.close(cmd_read)  # the child's ends: its exit must close them for good
            os.close(reply_write)
        self._commands = Connection(cmd_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        self._stop = weakref.finalize(self, _stop, self.process, self._commands, self._replies)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self._stop.alive

    def request(self, message: tuple, timeout_s: float) -> tuple:
        """Send ``message`` and return the child's reply; OnnxTimeout (the child killed) when
        none came within ``timeout_s`` [s], OnnxProcessEnded when the child is gone. Anything
        else that interrupts a request (a Ctrl-C) kills the child too: its late reply would
        have answered the next request (the previous observation's action, diff22)."""
        if not self.alive:
            raise OnnxProcessEnded("stopped before")
        try:
            self._commands.send(message)
            if not self._replies.poll(timeout_s):
                self.close()
                raise OnnxTimeout(f"no answer within {timeout_s:g} s")
            return self._replies.recv()
        except (EOFError, OSError):
            self.close()
            raise OnnxProcessEnded(f"exit code {self.process.returncode}") from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill the child (if it lives) and close the pipes."""
        self._stop()


def _stop(process: subprocess.Popen, *connections: Any) -> None:
    process.kill()
    process.wait()
    for connection in connections:
        connection.close()


# ------------------------------------------------------------------------------------------
# The child


def _die_with_parent(parent_pid: int, death_signal: bool) -> None:
    """End this process when `parent_pid` dies, mid-kernel included: the kernel's SIGKILL where
    asked for (Linux), and a daemon thread watching the parent's pid everywhere."""
    if death_signal and sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before any of it was in place
        os._exit(1)


def _use_capped_arena(ort: Any, options: Any, limit_bytes: int) -> None:
    """Make ``options``' session allocate from one CPU arena of ``limit_bytes`` (registered
    once: onnxruntime keeps it per process)."""
    if not getattr(_use_capped_arena, "registered", False):
        memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                   ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg(limit_bytes, -1, -1, -1))
        _use_capped_arena.registered = True  # type: ignore[attr-defined]
    options.add_session_config_entry("session.use_env_allocators", "1")


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _session(ort: Any, graph: bytes, memory_limit: int) -> Any:
    options = ort.SessionOptions()
    # onnxruntime logs a failing node on stderr itself, in colour, beside the one line the
    # submitter gets: fatal messages only.
    options.log_severity_level = 4
    # No graph optimisation: constant folding computed the graph's constant parts while the
    # session was made (a chain of MatMuls on a ConstantOfShape, as long as the submitter liked).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    _use_capped_arena(ort, options, memory_limit)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _answer(ort: Any, request: tuple, state: dict[str, Any]) -> tuple:
    import numpy as np

    if request[0] == "session":
        try:
            state["session"] = session = _session(ort, request[1], request[2])
        except Exception as err:  # noqa: BLE001 - onnxruntime's errors are untyped
            return ("error", _first_line(err))
        inputs = [(node.name, list(node.shape), node.type) for node in session.get_inputs()]
        return ("ok", inputs, len(session.get_outputs()))
    run_options = ort.RunOptions()
    run_options.log_severity_level = 4
    try:
        out = np.asarray(state["session"].run(None, request[1], run_options)[0])
    except Exception as err:  # noqa: BLE001 - onnxruntime's errors are untyped
        if "Available memory of" in str(err):  # the capped arena refused
            return ("memory", _first_line(err))
        return ("error", _first_line(err))
    if out.size > MAX_OUTPUT_VALUES:
        return ("error", f"its output has {out.size:,} values (shape {list(out.shape)}), "
                         f"more than the {MAX_OUTPUT_VALUES:,} an action may have")
    return ("ok", out)


def main(argv: list[str]) -> None:
    from multiprocessing.connection import Connection

    cmd_fd, reply_fd, parent_pid, death_signal = (int(a) for a in argv)
    _die_with_parent(parent_pid, bool(death_signal))
    import onnxruntime as ort

    commands, replies = Connection(cmd_fd, writable=False), Connection(reply_fd, readable=False)
    state: dict[str, Any] = {}
    while True:
        try:
            request = commands.recv()
        except (EOFError, OSError):  # the evaluator closed it, or is gone
            return
        try:
            replies.send(_answer(ort, request, state))
        except OSError:  # the evaluator is gone
            return


if __name__ == "__main__":
    main(sys.argv[1:])
