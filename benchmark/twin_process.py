"""The rehearsal robot from Python: `insertbench real serve-twin` in a child process on
127.0.0.1, driven by operator commands over its stdin (see real/serve_twin.py). Tests and the
RTDE benchmark use it; so can a user's own rehearsal script."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
from typing import Any

from envs.tether import package_environment
from real.serve_twin import Ports

#: The server stops by itself after this long even if its user hangs [s].
SERVER_MAX_S = 600


def ports_taken() -> list[int]:
    """The controller ports something on 127.0.0.1 already listens on."""
    ports, taken = Ports(), []
    for port in (ports.rtde, ports.dashboard, ports.primary, ports.realtime):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                taken.append(port)
    return taken


class TwinProcess:
    """`insertbench real serve-twin --task TASK` as a child; `command` sends one operator line
    and returns the reply; the child exits when we close its stdin (or die)."""

    def __init__(self, task: str, seed: int = 0) -> None:
        self.log = tempfile.TemporaryFile(mode="w+")
        code = ("import sys; from benchmark.real_cli import real_app; "
                "real_app(['serve-twin', *sys.argv[1:]])")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-c", code, "--task", task, "--seed", str(seed)]
            + ["--max-seconds", str(SERVER_MAX_S), "--exit-on-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=os.getcwd(),
            env=package_environment(),  # this checkout: -P leaves out the working directory
        )
        try:
            line = self._readline(timeout_s=60)
        except TimeoutError:  # a server still starting would hold the ports for SERVER_MAX_S
            line = "no 'ready' line within 60 s"
        if not line.startswith("ready"):
            log = self.stderr()
            self.close()
            raise RuntimeError(f"the twin server did not start: {line!r} {log}")

    def _readline(self, timeout_s: float = 10.0) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            raise TimeoutError(f"no reply from the twin server within {timeout_s} s")
        return self.proc.stdout.readline().strip()

    def command(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._readline()

    def state(self) -> dict[str, Any]:
        reply = self.command("state")
        assert reply.startswith("ok "), reply
        return json.loads(reply[3:])

    def stderr(self) -> str:
        """The controller's log so far."""
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        """Stop the server and release our ends of its pipes and its log (each instance kept
        two descriptors open after close() before)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            with contextlib.suppress(OSError):  # a broken pipe's unflushed line
                stream.close()
