"""A worker process of `envs.sharded_vector`: it owns a slice of the worlds (`envs.shard`) and
answers the parent's commands for it, one at a time, over pipes.

Started by the parent as ``python -m envs.shard_worker CMD_FD REPLY_FD MEMORY_FD PARENT_PID
DEATH_SIGNAL``. It dies with its parent, a ``kill -9`` included, in three ways: the kernel
sends it SIGKILL when the parent's thread that started it ends (``PR_SET_PDEATHSIG``, asked for
when that thread is the main thread, which lives as long as the process); the command pipe
reaches its end of file when the parent's process is gone; and while it waits for a command it
checks every second that its parent is still the process that started it.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any

from envs.shard import ShardServer, picklable
from envs.shard_wire import SPIN_S, Waiter, recv, send_bytes
from envs.tether import die_with_parent

#: Seconds between two checks that the parent lives, while waiting for a command.
PARENT_CHECK_S = 1.0


def next_command(fd: int, waiter: Waiter, parent_pid: int) -> Any:
    """The parent's next command; exits when the parent is gone."""
    while not waiter.wait(PARENT_CHECK_S):
        if os.getppid() != parent_pid:
            sys.exit(0)
    try:
        return recv(fd)
    except EOFError:
        sys.exit(0)


def serve(cmd_fd: int, reply_fd: int, memory_fd: int, parent_pid: int) -> None:
    """Answer the parent's commands until "close"."""
    server, waiter = ShardServer(memory_fd), Waiter(cmd_fd, SPIN_S)
    while True:
        command, payload = next_command(cmd_fd, waiter, parent_pid)
        reply = server.answer(command, payload)
        if reply[0] == "error":
            reply = (*reply[:2], picklable(reply[2]), *reply[3:])
        try:
            message = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - e.g. get_attr("unwrapped"): not picklable
            # It used to kill this worker with a traceback: "worker died (exit code 1)".
            error = TypeError(f"the reply to {command!r} cannot cross to the parent process "
                              f"(call and get_attr results travel pickled): {err}")
            message = pickle.dumps(("error", None, error, "", True),
                                   protocol=pickle.HIGHEST_PROTOCOL)
        try:
            send_bytes(reply_fd, message)
        except OSError:  # the parent is gone (kill -9): end quietly, not with a traceback
            return
        if command == "close":
            return


def main(argv: list[str]) -> None:
    cmd_fd, reply_fd, memory_fd, parent_pid, death_signal = (int(a) for a in argv)
    # The parent handles Ctrl-C and closes the workers; a worker killed mid-command by the
    # terminal's SIGINT would only turn that into a confusing "worker died".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid, death_signal=bool(death_signal))
    serve(cmd_fd, reply_fd, memory_fd, parent_pid)
    # The worlds are closed: skip the interpreter's teardown (~0.5 s of the parent's close()).
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
