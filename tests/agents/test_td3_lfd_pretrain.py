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
from agents import Transition, make_agent
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


def test_online_updates_keep_the_demonstrations_and_their_statistics():
    """Online, the default TD3+LfD keeps cloning the demos and keeps the demos' normaliser:
    with the Q-filter it dropped every demo row and saturated; with online statistics 250 steps
    of exploration broke the pretrained actor before its first update."""

    def run(**config):
        torch.manual_seed(0)
        env = gym.make("InsertBench/USB-v1", reward="sparse", goal_noise_mm=1.0)
        data = demo_dataset(env, episodes=5)
        agent = make_agent("td3_lfd", env.observation_space, env.action_space,
                           {"pretrain_steps": 200, "learning_starts": 0, "random_steps": 0,
                            **config}, seed=0)
        agent.pretrain(data)
        stats = {k: v.clone() for k, v in agent.obs_norm.state_dict().items()}
        obs, _ = env.reset(seed=0)
        for t in range(80):
            action = agent.act(obs, deterministic=False)
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info))
            metrics = agent.update()
            obs = env.reset(seed=t)[0] if terminated or truncated else next_obs
        rows = range(0, len(data["action"]), 3)
        actions = np.array([agent.act({k: v[i] for k, v in data["obs"].items()},
                                      deterministic=True) for i in rows])
        error = np.abs(actions - data["action"][list(rows)]).mean()
        same_stats = all(torch.equal(stats[k], v) for k, v in agent.obs_norm.state_dict().items())
        return error, metrics["q_filter_kept"], same_stats

    error, kept, same_stats = run()
    assert error < 0.2 and kept == 1.0 and same_stats, (error, kept, same_stats)
    error, kept, _ = run(q_filter=True, bc_weight=1.0)  # the old defaults
    assert kept < 0.5 and error > 0.3, (error, kept)
    assert not run(obs_norm_online=True)[2]
