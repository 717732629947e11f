"""Shared helpers for the real/ tests: every test runs on the digital twin, no hardware."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import real
from real.faults import beyond_limits, comes_in
from real.poses import pose_to_pos_mat, rotation_angle
from real.twin import DigitalTwinRobot

USB = "InsertBench/USB-v0"


def run_episode(env, policy, max_steps: int = 60) -> tuple[int, dict]:
    obs, info = env.reset(seed=0)
    for k in range(max_steps):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            return k + 1, info
    return max_steps, info


def servo_poses(twin: DigitalTwinRobot) -> list[np.ndarray]:
    return [np.asarray(c.args[0]) for c in twin.commands if c.name == "servoL"]


def assert_commands_safe(env) -> None:
    """Every servoL the twin received: finite, no faster than the speed caps from the previous
    command of the same motion or, the first after a stop, from the TCP's pose then, and inside
    the workspace box and tilt cone or strictly closer to them than that pose
    (`real.faults.comes_in`: outside only while bringing the arm in)."""
    base = env.unwrapped
    twin: DigitalTwinRobot = base.robot
    safety = base.safety
    beyond = functools.partial(beyond_limits, safety, base.safe.socket_pos, base.safe.socket_mat)
    max_step = safety.max_speed_m_s * base.servo_dt + 1e-9
    max_turn = safety.max_angular_speed_rad_s * base.servo_dt + 1e-9
    previous = None
    n = 0
    for command in twin.commands:
        if command.name in ("servoStop", "stopL"):
            previous = None
            continue
        if command.name != "servoL":
            continue
        n += 1
        pose = np.asarray(command.args[0], dtype=np.float64)
        assert np.all(np.isfinite(pose)), pose
        assert command.args[3] == pytest.approx(base.servo_dt)
        pos, mat = pose_to_pos_mat(pose)
        reference = previous or pose_to_pos_mat(np.asarray(command.tcp_pose))
        out, ref_out = beyond(pos, mat), beyond(*reference)
        assert comes_in(out[0], ref_out[0]), base.safe.socket_frame(pos)
        assert comes_in(out[1], ref_out[1])
        assert np.linalg.norm(pos - reference[0]) <= max_step
        assert rotation_angle(reference[1].T @ mat) <= max_turn
        previous = (pos, mat)
    assert n > 0, "no servo command reached the robot"


@pytest.fixture
def usb_twin_env():
    env = real.make_twin(USB, seed=0)
    yield env
    env.close()
