"""Evaluation protocol: an agent on fixed seeds through the one episode runner.

Episodes are run and scored by `envs.episode.run_episode` into `envs.episode.EpisodeRecord`s,
the record every table and the leaderboard use. Evaluation seeds are ``EVAL_SEED_BASE + i`` for
episode i, disjoint from the training seeds of ``benchmark.train`` (which start at
``TRAIN_SEED_BASE``), so every method is scored on the same initial states.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch

from agents.base import Agent
from envs.episode import EpisodeRecord, run_episode, task_identity

EVAL_SEED_BASE = 10_000


class AgentPolicy:
    """An agent acting deterministically, as the callable obs -> action `run_episode` takes."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self, *, seed: int) -> None:
        self.agent.reset(seed=seed)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.agent.act(obs, deterministic=True)


def eval_seeds(episodes: int, base: int = EVAL_SEED_BASE) -> list[int]:
    """The fixed evaluation seeds ``base, base + 1, ...``."""
    return [base + i for i in range(episodes)]


def evaluate(
    env: gym.Env,
    agent: Agent,
    episodes: int,
    seeds: Sequence[int] | None = None,
    *,
    task_id: str | None = None,
    task_version_key: str | None = None,
    frames: list[np.ndarray] | None = None,
) -> list[EpisodeRecord]:
    """Run ``episodes`` deterministic episodes on ``seeds`` (default ``eval_seeds``).

    ``task_id`` and ``task_version_key`` default to the env's (`envs.episode.task_identity`;
    envs not made by ``gym.make`` must give them). ``frames``, if given, receives the first
    episode's `env.render()` frames (an env made with ``render_mode="rgb_array"``). The torch
    random state is restored afterwards, so evaluating never changes what training does next.
    """
    seeds = eval_seeds(episodes) if seeds is None else list(seeds)
    if len(seeds) != episodes:
        raise ValueError(f"got {len(seeds)} seeds for {episodes} episodes")
    if task_id is None or task_version_key is None:
        task_id, task_version_key = task_identity(env)
    key = task_version_key
    policy = AgentPolicy(agent)
    torch_state = torch.get_rng_state()
    try:
        return [run_episode(env, policy, s, task_id=task_id, task_version_key=key,
                            frames=frames if i == 0 else None)
                for i, s in enumerate(seeds)]
    finally:
        torch.set_rng_state(torch_state)
