"""Regression: residual TD3 must not drive its residual to the action bounds before the critic
knows anything (it scored 0/50 on the leaderboard's USB track against its P-controller's 34/50).

Without ``residual_l2`` the deterministic policy gradient of a barely trained critic saturated
the residual within 150 env steps on USB-v1 (see `agents.residual.ResidualTD3Agent.actor_loss`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the InsertBench tasks)
from agents import Transition, make_agent
from envs import p_controller

torch.set_num_threads(1)

#: The paper000 leaderboard track's task variant.
USB = ("InsertBench/USB-v1", {"reward": "sparse", "goal_noise_mm": 1.0, "obs_mode": "state"})


def _mean_abs_residual_after(steps: int, config: dict) -> float:
    torch.manual_seed(0)
    env = gym.make(USB[0], **USB[1])
    agent = make_agent("residual_td3", env.observation_space, env.action_space, config, seed=0,
                       base_policy=p_controller(env))
    obs, _ = env.reset(seed=0)
    seen, episode = [], 0
    for _ in range(steps):
        action = agent.act(obs, deterministic=False)
        nxt, reward, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, reward, nxt, term, trunc, info))
        agent.update()
        seen.append(obs)
        obs = nxt
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=episode)
    residuals = [agent.policy_unit_action(o, deterministic=True) for o in seen[-50:]]
    return float(np.abs(residuals).mean())


@pytest.mark.parametrize(("residual_l2", "saturates"), [(0.0, True), (1.0, False)])
def test_residual_td3_stays_near_its_base_controller_early_on(residual_l2, saturates):
    # 150 env steps of learning (75 actor steps) from learning_starts = 100.
    mean_abs = _mean_abs_residual_after(250, {"learning_starts": 100,
                                              "residual_l2": residual_l2})
    if saturates:
        assert mean_abs > 0.8, mean_abs  # the defect, reproduced: the penalty is what fixes it
    else:
        assert mean_abs < 0.3, mean_abs


def test_residual_l2_defaults_on_and_rejects_negative_values():
    from agents.residual import ResidualTD3Config

    assert ResidualTD3Config().residual_l2 == 1.0
    with pytest.raises(ValueError, match="residual_l2 must be >= 0"):
        ResidualTD3Config(residual_l2=-1.0).validate()


@pytest.mark.parametrize("name", ["residual_td3", "residual_sac"])
def test_a_base_controller_answering_nan_is_refused_not_executed(name):
    """clip() keeps a NaN: act() handed the env [nan nan nan], outside its action space."""
    env = gym.make(USB[0], **USB[1])
    agent = make_agent(name, env.observation_space, env.action_space, {"hidden": (16,)}, seed=0,
                       base_policy=lambda obs: np.full(3, np.nan))
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="base_policy returned a non-finite action"):
        agent.act(obs, deterministic=True)
