"""Residual pretraining from demonstrations labels each row with executed - pi_H(s), where
pi_H(s) is the hand controller's action in that row's own episode. The P-controller reads the
episode's believed goal (goal noise) from the env, so evaluating it after collection used the
last episode's goal for every row: demonstrations *by* pi_H got non-zero residuals.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the InsertBench tasks)
from agents import make_agent
from benchmark.train import collect_demos
from envs import p_controller


def _env_agent_demos(record_base: bool):
    env = gym.make("InsertBench/USB-v1", goal_noise_mm=1.0, obs_mode="state")
    base = p_controller(env)
    agent = make_agent("residual_sac", env.observation_space, env.action_space, {}, seed=0,
                       base_policy=base)
    demos = collect_demos(env, base, 3, base if record_base else None)
    return env, agent, demos


def test_demos_of_the_base_controller_have_zero_residuals():
    _, agent, demos = _env_agent_demos(record_base=True)
    assert demos["base_action"].shape == demos["action"].shape
    agent.pretrain(demos)
    stored = agent.buffer.action[: len(agent.buffer)]
    # The demos are pi_H itself: every residual is 0 up to the float32 action cast.
    assert np.abs(stored).max() < 1e-5
    # Recomputing pi_H after collection (the old labels) sees the last episode's goal only.
    recomputed = np.stack([agent.base_action({k: v[i] for k, v in demos["obs"].items()})
                           for i in range(len(demos["action"]))])
    assert np.abs(recomputed - demos["base_action"]).max() > 1e-3


def test_residual_pretraining_refuses_data_without_base_actions():
    _, agent, demos = _env_agent_demos(record_base=False)
    with pytest.raises(ValueError, match="base_action"):
        agent.pretrain(demos)


def test_residual_sac_runs_its_offline_gradient_steps():
    """residual_sac inherits SAC's pretrain_steps (paper 001's offline SAC phase); the residual
    pretrain only stored the demos and skipped them, without a word."""
    env, _, demos = _env_agent_demos(record_base=True)
    agent = make_agent("residual_sac", env.observation_space, env.action_space,
                       {"pretrain_steps": 3, "batch_size": 8, "hidden": (8,)}, seed=0,
                       base_policy=p_controller(env))
    metrics = agent.pretrain(demos)
    assert agent.gradient_steps == 3 and "loss/critic" in metrics
    assert metrics["pretrain/transitions"] == len(demos["action"])
    assert np.abs(agent.buffer.action[: len(agent.buffer)]).max() < 1e-5  # residuals, still
