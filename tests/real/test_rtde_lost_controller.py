"""A controller that vanishes mid-episode (a reboot, a power loss, a pulled cable), on the RTDE
twin killed with SIGKILL: the episode ends with a trip and the env closes, where
the trip's servoStop waited for ever on ur_rtde's reconnect, deaf to Ctrl-C and SIGTERM.

A module of its own: it kills its server, which `test_rtde_twin`'s tests share."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rtde_control")

from benchmark.twin_process import TwinProcess, ports_taken  # noqa: E402
from tests.real.conftest import USB  # noqa: E402

#: The client, in a process of its own so that a hang fails the test instead of the suite.
CLIENT = """
import json, os, signal, sys, time
import numpy as np
import real

server_pid, socket_pose = int(sys.argv[1]), json.loads(sys.argv[2])
env = real.make("InsertBench/USB-v0", robot=real.URConfig("127.0.0.1", rtde_watchdog_hz=1.0),
                socket_pose=socket_pose, start_height_mm=20.0)
env.reset(seed=0)
env.step(np.zeros(3, np.float32))
os.kill(server_pid, signal.SIGKILL)
time.sleep(0.2)
started = time.monotonic()
_, _, terminated, _, info = env.step(np.zeros(3, np.float32))
stepped = time.monotonic() - started
env.close()
print(json.dumps({"terminated": terminated, "trip": info["safety_trip"], "stepped_s": stepped,
                  "closed_s": time.monotonic() - started}), flush=True)
os._exit(0)
"""


def test_a_vanished_controller_ends_the_episode_and_the_env_closes():
    taken = ports_taken()
    if taken:
        pytest.skip(f"ports {taken} on 127.0.0.1 are in use (a URSim or another twin?)")
    server = TwinProcess(USB)
    try:
        socket_pose = json.dumps(server.state()["socket_pose"])
        done = subprocess.run([sys.executable, "-c", CLIENT, str(server.proc.pid), socket_pose],
                              capture_output=True, text=True, timeout=90)
    finally:
        server.close()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-2000:]
    result = json.loads(lines[-1])
    # "connection" whether the servoL failed or the stack saw the link down first (that was
    # "robot_refused", a stopped script).
    assert result["terminated"] and result["trip"] == "connection", result
    assert result["stepped_s"] < 5.0 and result["closed_s"] < 10.0


def test_a_link_lost_at_a_calibration_prompt_is_one_line_not_a_crash(tmp_path):
    """At the operator's prompt ur_rtde's reconnect crashed the process (a segfault, exit -11,
    no message) and re-uploaded its script under the operator's hands; mid-descent the CLI's
    own teardown did (real23)."""
    import os
    import select
    import time

    taken = ports_taken()
    if taken:
        pytest.skip(f"ports {taken} on 127.0.0.1 are in use (a URSim or another twin?)")
    server = TwinProcess(USB)
    try:
        calibrate = subprocess.Popen(
            [sys.executable, "-m", "benchmark.entry", "real", "calibrate", "--task", USB,
             "--host", "127.0.0.1", "--method", "touch", "--out", "c.json"],
            cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": os.getcwd()})
        shown, started = b"", time.monotonic()
        while b"press Enter" not in shown and time.monotonic() - started < 60:
            if select.select([calibrate.stdout], [], [], 1.0)[0]:
                shown += os.read(calibrate.stdout.fileno(), 4096)
        assert b"press Enter" in shown, shown
        server.command("drop")
        calibrate.wait(timeout=60)  # stdin left open: the operator has not pressed Enter
        out = calibrate.stdout.read()
    finally:
        server.close()
        calibrate.stdin.close()
    text = (shown + out).decode(errors="replace")
    assert calibrate.returncode == 1, text[-2000:]
    assert "insertbench: error: the link to the robot was lost at the operator's prompt" in text
    assert "Segmentation" not in text and not (tmp_path / "c.json").exists()
