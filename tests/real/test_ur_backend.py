"""URBackend against stand-ins for ur_rtde's two interfaces (no robot in CI): connecting sets
up the TCP and payload, and `real.make` arms the watchdog and uses the configured rates."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

import real
from envs.scene import tcp_offset_m
from envs.tasks import task_spec
from real.robot import URBackend
from tests.real.conftest import USB


class FakeInterface:
    calls: list[tuple] = []

    def __init__(self, host: str, frequency: float) -> None:
        FakeInterface.calls.append((type(self).__name__, "__init__", host, frequency))

    def __getattr__(self, name: str):
        def method(*args):
            FakeInterface.calls.append((type(self).__name__, name, *args))
            return {"getActualTCPPose": [0.0] * 6}.get(name, True)

        return method


@pytest.fixture
def fake_rtde(monkeypatch):
    FakeInterface.calls = []
    control = types.ModuleType("rtde_control")
    receive = types.ModuleType("rtde_receive")
    control.RTDEControlInterface = type("RTDEControlInterface", (FakeInterface,), {})
    receive.RTDEReceiveInterface = type("RTDEReceiveInterface", (FakeInterface,), {})
    monkeypatch.setitem(sys.modules, "rtde_control", control)
    monkeypatch.setitem(sys.modules, "rtde_receive", receive)
    return FakeInterface.calls


def test_connect_sets_tcp_and_payload(fake_rtde):
    config = real.URConfig(
        host="10.0.0.2", frequency_hz=125.0, payload_kg=0.9, payload_cog_m=(0.0, 0.0, 0.05)
    )
    backend = URBackend(config, [0.0, 0.0, 0.2, 0.0, 0.0, 0.0])
    assert ("RTDEControlInterface", "__init__", "10.0.0.2", 125.0) in fake_rtde
    assert ("RTDEReceiveInterface", "__init__", "10.0.0.2", 125.0) in fake_rtde
    assert ("RTDEControlInterface", "setTcp", [0.0, 0.0, 0.2, 0.0, 0.0, 0.0]) in fake_rtde
    assert ("RTDEControlInterface", "setPayload", 0.9, [0.0, 0.0, 0.05]) in fake_rtde
    backend.servoL([0.1] * 6, 0.0, 0.0, 0.008, 0.1, 300.0)
    assert fake_rtde[-1] == (
        "RTDEControlInterface",
        "servoL",
        [0.1] * 6,
        0.0,
        0.0,
        0.008,
        0.1,
        300.0,
    )
    backend.getActualTCPForce()
    assert fake_rtde[-1][:2] == ("RTDEReceiveInterface", "getActualTCPForce")


def test_make_uses_the_sim_tcp_and_the_robot_rates(fake_rtde):
    config = real.URConfig(host="10.0.0.2", frequency_hz=125.0, continuity_input=2)
    env = real.make(USB, robot=config, socket_pose=np.zeros(6))
    base = env.unwrapped
    tcp = tcp_offset_m(task_spec(USB).connector)
    assert ("RTDEControlInterface", "setTcp", [0.0, 0.0, tcp, 0.0, 0.0, 0.0]) in fake_rtde
    assert base.servo_dt == pytest.approx(1 / 125) and base.cycles_per_step == 12
    assert base.continuity_input == 2 and base.rtde_watchdog_hz == config.rtde_watchdog_hz
    env.close()
    assert ("RTDEControlInterface", "disconnect") in fake_rtde
    assert ("RTDEReceiveInterface", "disconnect") in fake_rtde


def test_ur_config_validation():
    with pytest.raises(ValueError, match="500 .* or 125"):
        real.URConfig(host="x", frequency_hz=200.0)
    with pytest.raises(ValueError, match="servo_gain"):
        real.URConfig(host="x", servo_gain=50.0)


def test_kick_after_servol_is_skipped_and_a_dropped_link_stops_the_script(fake_rtde):
    # ur_rtde's kick writes 0 to the command register the servoL just set (see URBackend).
    backend = URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    backend.servoL([0.1] * 6, 0.0, 0.0, 0.002, 0.1, 300.0)
    assert backend.kickWatchdog()
    assert fake_rtde[-1][1] == "servoL"
    time.sleep(0.003)  # more than a 2 ms period without servoL: a real kick
    backend.kickWatchdog()
    assert fake_rtde[-1][1] == "kickWatchdog"
    assert backend.isProgramRunning()
    backend.receive.isConnected = lambda: False
    assert not backend.isProgramRunning()
