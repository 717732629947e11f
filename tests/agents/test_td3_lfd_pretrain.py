"""Regressions of TD3+LfD: demo-only pretraining must imitate the demonstrations, online
training must keep what the demonstrations taught.

With the Q-filter on during pretraining (a critic that has seen demo actions only, ranking them
against its extrapolated Q1(s, pi(s))) most demos were filtered out and -Q1 drove the actor to
the action bounds; the leaderboard's TD3+LfD entry scored 0/150 after 3,000 env steps per task.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the InsertBench tasks)
from agents import make_agent
from agents.buffer import batch_to_torch
from benchmark.evaluate import evaluate
from tests.agents.helpers import demo_dataset, online_steps

torch.set_num_threads(1)


def pretrained(env_kwargs: dict, demo_episodes: int, config: dict):
    """USB-v1 with ``env_kwargs``, its P-controller's demos and a td3_lfd agent pretrained on
    them (torch seeded first: the networks' initial weights)."""
    torch.manual_seed(0)
    env = gym.make("InsertBench/USB-v1", **env_kwargs)
    data = demo_dataset(env, episodes=demo_episodes)
    agent = make_agent("td3_lfd", env.observation_space, env.action_space, config, seed=0)
    agent.pretrain(data)
    return env, data, agent


def test_pretraining_imitates_the_demonstrations_with_the_q_filter_on():
    _, data, agent = pretrained({"reward": "sparse", "goal_noise_mm": 1.0, "obs_mode": "state"},
                                5, {"pretrain_steps": 300, "q_filter": True})
    rows = range(0, len(data["action"]), 3)
    actions = np.array([agent.act({k: v[i] for k, v in data["obs"].items()}, deterministic=True)
                        for i in rows])
    error = np.abs(actions - data["action"][list(rows)]).mean(axis=0)
    assert np.all(error < 0.35), error  # per axis, in [-1, 1] action units
    assert agent.config.q_filter and not agent._pretraining  # online steps filter again


def test_online_updates_keep_cloning_the_demonstrations():
    """Online, the default TD3+LfD keeps cloning the demos (with the Q-filter it dropped every
    demo row and saturated) and folds online observations into its normaliser."""

    def run(**config):
        env, data, agent = pretrained({"reward": "sparse", "goal_noise_mm": 1.0}, 5,
                                      {"pretrain_steps": 200, "learning_starts": 0,
                                       "random_steps": 0, **config})
        stats = {k: v.clone() for k, v in agent.obs_norm.state_dict().items()}
        metrics = online_steps(env, agent, 80, seed=0)[-1]
        rows = range(0, len(data["action"]), 3)
        actions = np.array([agent.act({k: v[i] for k, v in data["obs"].items()},
                                      deterministic=True) for i in rows])
        error = np.abs(actions - data["action"][list(rows)]).mean()
        same_stats = all(torch.equal(stats[k], v) for k, v in agent.obs_norm.state_dict().items())
        return error, metrics["q_filter_kept"], same_stats

    error, kept, same_stats = run()
    assert error < 0.2 and kept == 1.0 and not same_stats, (error, kept, same_stats)
    error, kept, _ = run(q_filter=True, bc_weight=1.0, actor_lr=3e-4)  # the old defaults
    assert kept < 0.5 and error > 0.3, (error, kept)
    assert run(obs_norm_online=False)[2]


def test_exact_goal_demos_survive_random_exploration():
    """Regression: with the demos' normaliser statistics fixed, exact-goal demos (lateral pose
    std ~0.1 mm on USB-v1) put every uniformly random exploration state at the clip bound, the
    actor learned to drive to the action bounds there, and any state ~0.5 mm off the demo path
    looked the same: the arm left the socket within the first online updates (paper000-state:
    0/25 in all 9 exact-goal cells). With online statistics the greedy policy still inserts."""

    def greedy_after_updates(**config):
        env, _, agent = pretrained({"reward": "sparse", "goal_noise_mm": 0.0}, 10,
                                   {"pretrain_steps": 300, "learning_starts": 500,
                                    "random_steps": 500, **config})
        online_steps(env, agent, 800, seed=0)
        episode = evaluate(env, agent, 1, seeds=[1_000_000])[0]
        return episode.success, episode.final_distance_mm

    success, distance_mm = greedy_after_updates()
    assert success, distance_mm
    success, distance_mm = greedy_after_updates(obs_norm_online=False)  # the old default
    assert not success and distance_mm > 50.0, distance_mm


def test_normalize_q_keeps_dense_reward_q_values_from_drowning_the_bc_term():
    """Above one success reward, -Q1 is divided by its batch's mean |Q1| (TD3+BC): scaling the
    critic by 2 then leaves the actor loss as it was; below it, the Q term is left unscaled."""
    _, _, agent = pretrained({"reward": "sparse"}, 1, {"pretrain_steps": 0, "hidden": (32, 32)})
    batch = batch_to_torch(agent._sample(), agent.device)
    batch["obs"] = agent.obs_norm(batch["obs"])
    critic = agent.critic
    agent.config.bc_weight = 0.0  # the loss is the Q term alone (no float32 cancellation)

    def q_term(scale: float) -> float:
        agent.critic = lambda obs, action: critic(obs, action) * scale
        return agent.actor_loss(batch)[0].item()

    q_mean = critic(batch["obs"], agent.actor(batch["obs"]))[0].mean().item()
    assert q_term(1e4) == pytest.approx(q_term(2e4), rel=1e-4)
    assert q_term(1e-3) == pytest.approx(-1e-3 * q_mean, rel=1e-3)  # |Q| < 1: unscaled
    agent.config.normalize_q = False
    assert q_term(2e4) == pytest.approx(2 * q_term(1e4), rel=1e-4)
