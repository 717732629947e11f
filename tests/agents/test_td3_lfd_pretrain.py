"""Regression: TD3+LfD's demo-only pretraining must imitate the demonstrations.

With the Q-filter on during pretraining (a critic that has seen demo actions only, ranking them
against its extrapolated Q1(s, pi(s))) most demos were filtered out and -Q1 drove the actor to
the action bounds; the leaderboard's TD3+LfD entry scored 0/150 after 3,000 env steps per task.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the InsertBench tasks)
from agents import make_agent
from tests.agents.helpers import demo_dataset

torch.set_num_threads(1)


def test_pretraining_imitates_the_demonstrations_with_the_q_filter_on():
    torch.manual_seed(0)
    env = gym.make("InsertBench/USB-v1", reward="sparse", goal_noise_mm=1.0, obs_mode="state")
    data = demo_dataset(env, episodes=5)
    agent = make_agent("td3_lfd", env.observation_space, env.action_space,
                       {"pretrain_steps": 300, "q_filter": True}, seed=0)
    agent.pretrain(data)
    rows = range(0, len(data["action"]), 3)
    actions = np.array([agent.act({k: v[i] for k, v in data["obs"].items()}, deterministic=True)
                        for i in rows])
    error = np.abs(actions - data["action"][list(rows)]).mean(axis=0)
    assert np.all(error < 0.35), error  # per axis, in [-1, 1] action units
    assert agent.config.q_filter and not agent._pretraining  # online steps filter again
