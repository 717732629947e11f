"""Human interventions: one wrapper for the simulated and the real task."""

from __future__ import annotations

import importlib.util
import re
import sys

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the tasks)
import real
from envs.intervention import InterventionWrapper, ScriptedTeleop, SpaceMouseTeleop
from tests.real.conftest import USB

UP = np.array([0.0, 0.0, -0.5, 0.1, 0.0, 0.0], np.float32)  # a human pulling the plug up


@pytest.mark.parametrize("side", ["sim", "twin"])
def test_interventions_take_over_and_are_recorded(side):
    env = gym.make(USB) if side == "sim" else real.make_twin(USB)
    wrapped = InterventionWrapper(env, ScriptedTeleop([None, UP, UP, None]))
    obs, info = wrapped.reset(seed=0)
    assert info["intervened"] is False
    policy_action = np.array([0.0, 0.0, 0.8], np.float32)
    flags, z = [], [float(obs["tcp_pose"][2])]
    for _ in range(4):
        obs, _, _, _, info = wrapped.step(policy_action)
        flags.append(info["intervened"])
        z.append(float(obs["tcp_pose"][2]))
        expected = UP[:3] if info["intervened"] else policy_action
        np.testing.assert_array_equal(info["action"], expected)
        np.testing.assert_array_equal(info["policy_action"], policy_action)
    assert flags == [False, True, True, False]
    assert wrapped.interventions == 2
    assert z[3] < z[1]  # the human's steps moved the TCP up (start-frame z points down)
    wrapped.close()


def test_human_actions_are_clipped_to_the_action_space():
    env = gym.make(USB)
    wrapped = InterventionWrapper(env, ScriptedTeleop([np.full(6, 3.0)]))
    wrapped.reset(seed=0)
    _, _, _, _, info = wrapped.step(np.zeros(3, np.float32))
    np.testing.assert_array_equal(info["action"], np.ones(3, np.float32))


def test_a_device_fault_or_a_bad_policy_action_is_refused_before_the_env_steps():
    """inf from the device was clipped into a full-speed step, NaN counted as an intervention,
    3 numbers on a 6-D env were numpy's broadcast error, a policy's "abc" numpy's float error,
    and a teleop of None an AttributeError at the first step."""
    env = gym.make(USB, action_mode="pose")
    bad = [np.array([0, 0, np.inf, 0, 0, 0]), np.full(6, np.nan), np.zeros(3), "up"]
    wrapped = InterventionWrapper(env, ScriptedTeleop(bad))
    wrapped.reset(seed=0)
    time_before = env.unwrapped.data.time
    for _ in bad:
        with pytest.raises(ValueError, match=r"the teleop device sent .*; a human action is 6 "
                                             r"finite numbers .* refused, nothing executed"):
            wrapped.step(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="action must be 6 real numbers, got 'abc'"):
        wrapped.step("abc")
    assert wrapped.interventions == 0 and env.unwrapped.data.time == time_before
    with pytest.raises(TypeError, match="teleop must be a device with a poll"):
        InterventionWrapper(env, None)


@pytest.mark.skipif(
    importlib.util.find_spec("pyspacemouse") is not None, reason="pyspacemouse is installed"
)
def test_spacemouse_without_its_driver_says_what_to_install():
    with pytest.raises(ImportError, match="pip install pyspacemouse"):
        SpaceMouseTeleop()


def test_a_device_as_the_runners_hook_stores_the_humans_action(tmp_path):
    """`insertbench train --teleop` passes a TeleopHook: the human's (cut, clipped) action is
    executed and stored, flagged, and reaches HIL-SERL's demo buffer."""
    from benchmark.train import train
    from envs.intervention import TeleopHook

    inputs = [np.full(6, 3.0, np.float32) if i % 4 == 0 else None for i in range(40)]
    hook = TeleopHook(ScriptedTeleop(inputs), gym.make(USB).action_space)
    config = {"hidden": (16, 16), "batch_size": 8, "num_qs": 2, "utd_ratio": 1,
              "learning_starts": 10, "operator": "none"}
    result = train(USB, "hil_serl", steps=20, config=config, demo_episodes=1, out_dir=tmp_path,
                   eval_episodes=0, progress=False, intervene=hook)
    online = result.agent.buffer
    flagged = online.intervened[:20]
    assert flagged.sum() == 5 and result.intervention_steps == 5
    np.testing.assert_array_equal(online.action[:20][flagged], 1.0)  # clipped to the space
    assert not np.allclose(online.action[:20][~flagged], 1.0)
    demo = result.agent.demo_buffer
    np.testing.assert_array_equal(demo.action[len(demo) - 5:len(demo)], 1.0)


@pytest.mark.parametrize("device,message", [("joystick", "unknown teleop device"),
                                            ("keyboard", "interactive terminal")])
def test_train_refuses_a_teleop_it_cannot_open_with_one_line(tmp_path, device, message):
    from typer.testing import CliRunner

    from benchmark.cli import app

    res = CliRunner().invoke(app, ["train", "--task", USB, "--agent", "hil_serl", "--steps",
                                   "10", "--teleop", device, "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()


def test_an_implausible_human_action_is_a_device_fault_not_a_full_speed_command():
    """1e30 (or 1e6) was clipped into a full-scale step and stored as a demonstration."""
    env = gym.make(USB)
    wrapped = InterventionWrapper(env, ScriptedTeleop([np.full(6, 1e6), np.full(6, 3.0)]))
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match="of magnitude at most 10; refused, nothing executed"):
        wrapped.step(np.zeros(3, np.float32))
    _, _, _, _, info = wrapped.step(np.zeros(3, np.float32))  # an overshoot is clipped
    np.testing.assert_array_equal(info["action"], np.ones(3, np.float32))


class _State:
    def __init__(self, axes, buttons=(0, 0)):
        self.x, self.y, self.z, self.roll, self.pitch, self.yaw = axes
        self.buttons = list(buttons)


def _fake_pyspacemouse(monkeypatch, api: int, readings):
    """A pyspacemouse of the 1.x API (module-level open() -> bool, read()) or 2.x (open()
    returns the device, whose read() it is; the module has none)."""
    import types

    states = iter(readings)
    module = types.ModuleType("pyspacemouse")
    if api == 1:
        module.open = lambda: True
        module.read = lambda: next(states)
    else:
        device = types.SimpleNamespace(read=lambda: next(states))
        module.open = lambda: device
    monkeypatch.setitem(sys.modules, "pyspacemouse", module)


@pytest.mark.parametrize("api", [1, 2])
def test_spacemouse_reads_either_pyspacemouse_api_and_refuses_faulty_readings(monkeypatch, api):
    """With pyspacemouse 2.x (what pip installs today) the first poll was "module
    'pyspacemouse' has no attribute 'read'"."""
    _fake_pyspacemouse(monkeypatch, api, [_State((0.01, 0, 0, 0, 0, 0)),
                                          _State((0.5, 0, -0.2, 0, 0, 0)),
                                          _State((1e6, 0, 0, 0, 0, 0))])
    mouse = SpaceMouseTeleop(deadzone=0.05, gain=1.0)
    assert mouse.poll() is None  # inside the dead zone
    np.testing.assert_allclose(mouse.poll(), [0.5, 0, 0.2, 0, 0, 0])  # the cap pushed down
    with pytest.raises(ValueError, match="beyond its full scale of 1: a device fault"):
        mouse.poll()


def test_the_spacemouse_moves_the_plug_as_the_operators_hand_moves_the_cap(monkeypatch):
    """serl22: the raw axes were the action, and the TCP frame's z points down into the socket:
    an operator pulling the cap up to back off pressed the plug 20 mm toward the board."""
    import gymnasium as gym

    _fake_pyspacemouse(monkeypatch, 2, [_State((0, 0, 0.8, 0, 0, 0))] * 5
                       + [_State((0, 0.8, 0, 0, 0, 0))] * 5)
    mouse = SpaceMouseTeleop()
    env = gym.make("InsertBench/USB-v1", noiseless=True)
    env.reset(seed=0)
    start = env.unwrapped.tcp_pos.copy()  # world frame, z up
    for _ in range(5):
        env.step(mouse.poll()[:3])
    lifted = env.unwrapped.tcp_pos.copy()
    for _ in range(5):
        env.step(mouse.poll()[:3])
    assert lifted[2] - start[2] > 0.01  # pulled up: the plug goes up
    assert env.unwrapped.tcp_pos[1] - lifted[1] > 0.01  # pushed away: along the base's +y
    env.close()
    with pytest.raises(ValueError, match=r"signs must be six values of \+1 or -1"):
        SpaceMouseTeleop(signs=(1, 1, 1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"deadzone": float("nan")}, "deadzone must be a finite number in [0, 1]"),
    ({"deadzone": -1.0}, "deadzone must be in [0, 1], got -1.0"),
    ({"gain": -1e9}, "gain must be in (0, 10], got -1000000000.0"),
])
def test_spacemouse_settings_that_mean_nothing_are_refused(monkeypatch, kwargs, message):
    """deadzone NaN or -1 made an idle device intervene on every step; 5 never registered."""
    _fake_pyspacemouse(monkeypatch, 2, [])
    with pytest.raises(ValueError, match=re.escape(message)):
        SpaceMouseTeleop(**kwargs)


def test_keyboard_teleop_whose_terminal_closes_says_so_instead_of_spinning(monkeypatch):
    """At end of file select() reports stdin readable for ever and read() returns '': poll()
    spun at 100% CPU."""
    import io
    import os
    import pty

    from envs.intervention import KeyboardTeleop

    master, slave = pty.openpty()
    stdin = io.TextIOWrapper(io.FileIO(slave, "r", closefd=True))
    monkeypatch.setattr(sys, "stdin", stdin)
    keys = KeyboardTeleop()
    os.write(master, b"w")
    assert keys.poll()[0] > 0
    os.close(master)
    try:
        with pytest.raises(OSError):
            keys.poll()
    finally:
        keys.close()
        stdin.close()


def test_keyboard_teleop_takes_every_key_typed_since_the_last_poll(monkeypatch):
    """poll() read sys.stdin one key at a time after select() on its descriptor: the first read
    took every waiting byte into Python's buffer, the other keys waited there unseen and were
    executed steps later, with the next key pressed (serl20)."""
    import io
    import os
    import pty

    from envs.intervention import KeyboardTeleop

    master, slave = pty.openpty()
    stdin = io.TextIOWrapper(io.FileIO(slave, "r", closefd=True))
    monkeypatch.setattr(sys, "stdin", stdin)
    for bad in (-0.5, 0.0, 2.0, float("nan")):  # a negative one reversed every key (envs22)
        with pytest.raises(ValueError,
                           match="magnitude must be (a finite number )?in \\(0, 1\\] of full"):
            KeyboardTeleop(bad)
    keys = KeyboardTeleop()
    try:
        os.write(master, b"wd")
        np.testing.assert_array_equal(keys.poll()[:3], [0.5, -0.5, 0.0])
        assert keys.poll() is None
        os.write(master, b"r")
        np.testing.assert_array_equal(keys.poll()[:3], [0.0, 0.0, -0.5])
    finally:
        keys.close()
        os.close(master)
        stdin.close()
