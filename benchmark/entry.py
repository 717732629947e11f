"""The `insertbench` console script.

Importing the CLI takes seconds (torch, MuJoCo, every room's commands). A Ctrl-C in that time
raised KeyboardInterrupt outside the CLI's own error handling and printed a traceback; here it
gets the same one line and status 130 as a Ctrl-C during a command. Keep this module light.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI, then run it on `sys.argv`."""
    try:
        from benchmark.cli import app
    except KeyboardInterrupt:
        sys.stderr.write("insertbench: error: interrupted\n")
        sys.exit(130)
    app()


if __name__ == "__main__":
    main()
