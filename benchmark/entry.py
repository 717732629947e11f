"""The `insertbench` console script.

Importing the CLI takes seconds (torch, MuJoCo, every room's commands). A Ctrl-C in that time
raised KeyboardInterrupt outside the CLI's own error handling and printed a traceback; here it
gets the same one line and status 130 as a Ctrl-C during a command. Keep this module light.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Import the CLI, then run it on `sys.argv`."""
    args = sys.argv[1:]  # `real serve-twin`, after any root option such as --debug
    serving = any(args[i:i + 2] == ["real", "serve-twin"] for i in range(len(args)))
    if serving and "--exit-on-eof" not in args:
        # A server must die with its parent (`real.serve_twin.run`), and the
        # import below takes seconds: one killed meanwhile left the server orphaned, holding
        # the controller's ports. With --exit-on-eof the closed pipe ends it instead.
        from envs.tether import die_with_parent  # before the CLI's seconds of imports

        die_with_parent(os.getppid())
    try:
        from benchmark.cli import app
    except KeyboardInterrupt:
        sys.stderr.write("insertbench: error: interrupted\n")
        sys.exit(130)
    app()


if __name__ == "__main__":
    main()
