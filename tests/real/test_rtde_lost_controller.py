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
