"""Human interventions: one wrapper for the simulated and the real task."""

from __future__ import annotations

import importlib.util

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


@pytest.mark.skipif(
    importlib.util.find_spec("pyspacemouse") is not None, reason="pyspacemouse is installed"
)
def test_spacemouse_without_its_driver_says_what_to_install():
    with pytest.raises(ImportError, match="pip install pyspacemouse"):
        SpaceMouseTeleop()
