"""The `insertbench` console script.

Importing the CLI takes seconds (torch, MuJoCo, every room's commands). A Ctrl-C in that time
raised KeyboardInterrupt outside the CLI's own error handling and printed a traceback; here it
gets the same one line and status 130 as a Ctrl-C during a command. A SIGTERM (`timeout`, a
batch scheduler, systemd) stops a command the same way, with status 143: it killed the process
without a line, and the real robot's env without its stop. Keep this module light.
"""

from __future__ import annotations

import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """A SIGTERM, raised where a Ctrl-C would be, so that every command's KeyboardInterrupt
    path (checkpoints, the robot's stop, worker shutdown) runs for it too. `received` says
    whether one came: Typer turns a KeyboardInterrupt into a bare exit status 130."""

    received = False


def raise_on_sigterm() -> None:
    """Make a SIGTERM raise `Terminated` in the main thread (only it may set handlers)."""
    if threading.current_thread() is threading.main_thread():
        Terminated.received = False
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: object) -> None:
    Terminated.received = True
    raise Terminated


def main() -> None:
    """Import the CLI, then run it on `sys.argv`."""
    args = sys.argv[1:]  # `real serve-twin`, after any root option such as --debug
    serving = any(args[i:i + 2] == ["real", "serve-twin"] for i in range(len(args)))
    if serving and "--exit-on-eof" not in args:
        # A server must die with its parent (`real.serve_twin.run`), and the
        # import below takes seconds: one killed meanwhile left the server orphaned, holding
        # the controller's ports. With --exit-on-eof the closed pipe ends it instead.
        from benchmark import PARENT_PID  # read before `envs` was imported (a second)
        from envs.tether import die_with_parent  # before the CLI's seconds of imports

        die_with_parent(PARENT_PID)
    raise_on_sigterm()
    try:
        from benchmark.cli import app
    except KeyboardInterrupt:
        terminated = Terminated.received
        sys.stderr.write(f"insertbench: error: {'terminated' if terminated else 'interrupted'}\n")
        sys.exit(143 if terminated else 130)
    app()


if __name__ == "__main__":
    main()
