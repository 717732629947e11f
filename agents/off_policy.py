"""What every replay-buffer learner shares: spaces, seeding, action scaling, the observation
normaliser, the replay buffer and the update-to-data loop.

SAC and TD3 (and the residual and LfD agents built on them) subclass `OffPolicyAgent`, build their
networks after `super().__init__`, and implement `policy_unit_action` (the policy's action in
[-1, 1]^A) and `update_from_batch` (one gradient step). The algorithm itself stays in its file.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import Dataset, Observation, Transition
from agents.buffer import Batch, ReplayBuffer
from agents.checkpoint import CheckpointMixin
from agents.networks import ActionScaler, ObsNormalizer


class OffPolicyAgent(CheckpointMixin):
    """Data plumbing of an off-policy agent; `config` needs device, buffer_size, obs_norm,
    learning_starts, utd_ratio and batch_size."""

    #: No per-episode state: the runner may interleave episodes of N worlds (num_envs > 1).
    concurrent_episodes = True

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: Any,
        *,
        seed: int = 0,
    ):
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(config.device)
        self.scaler = ActionScaler(action_space)
        self.action_dim = int(action_space.shape[0])
        self.buffer = ReplayBuffer(observation_space, self.action_dim, config.buffer_size)
        self.obs_norm = ObsNormalizer(observation_space).to(self.device)
        self.env_steps = 0  # transitions observed online
        self.gradient_steps = 0
        self.offline_rows = 0  # transitions given to pretrain, kept in the replay buffer
        self.offline_rows_given = 0  # ... by this object (a restored agent: since its load)

    # ------------------------------------------------------------------ acting
    def reset(self, seed: int | None = None) -> None:
        """No per-episode state."""

    def policy_unit_action(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        raise NotImplementedError

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """Action in the env's action space."""
        return self.scaler.to_env(self.policy_unit_action(obs, deterministic=deterministic))

    # ------------------------------------------------------------------ data
    def store(self, transition: Transition, unit_action: np.ndarray) -> None:
        """Put a transition into the replay buffer with the action the policy is trained on."""
        self.buffer.add(transition, action=unit_action)
        if self.learns_obs_stats_online():
            self.update_obs_stats(transition.obs)
        self.env_steps += 1

    def learns_obs_stats_online(self) -> bool:
        """Whether online observations feed the normaliser; agents that learn from
        demonstrations (RLPD, TD3+LfD) may keep the demos' statistics (``obs_norm_online``)."""
        return True

    def update_obs_stats(self, obs: Observation | Dataset, batched: bool = False) -> None:
        """Feed observations to the running normaliser (if ``obs_norm``)."""
        if self.config.obs_norm:
            self.obs_norm.update(obs, batched=batched)

    def observe(self, transition: Transition) -> None:
        """Store the executed transition."""
        self.store(transition, self.scaler.to_unit(transition.action))

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Prefill the replay buffer with offline transitions (no separate offline loss)."""
        stored = self.add_offline(dataset)
        self.offline_rows += stored
        self.offline_rows_given += stored
        return {"pretrain/transitions": float(stored)}

    def add_offline(self, dataset: Dataset) -> int:
        """Put offline transitions into the replay buffer (actions in [-1, 1]) and their
        observations into the normaliser; returns the number of rows stored. Residual agents
        override it to store residuals, so the learner's own ``pretrain`` still runs."""
        data = dict(dataset)
        data["action"] = self.scaler.to_unit(np.asarray(dataset["action"]))
        n = self.buffer.add_dataset(data)
        self.update_obs_stats(dataset["obs"], batched=True)
        return n

    def adapt(self, context: Dataset) -> None:
        """No task inference."""

    # ------------------------------------------------------------------ learning
    def update(self) -> dict[str, float]:
        """``utd_ratio`` gradient steps once ``learning_starts`` env steps were observed."""
        self.check_offline_rows_restored()
        if self.env_steps < self.config.learning_starts or len(self.buffer) == 0:
            return {}
        metrics: dict[str, float] = {}
        for _ in range(self.config.utd_ratio):
            metrics = self.update_from_batch(self.buffer.sample(self.config.batch_size, self.rng))
        return metrics

    def check_offline_rows_restored(self) -> None:
        """ValueError if the offline rows this agent was pretrained on before its save were
        not restored with it (saved without replay) nor given to it again: paper 001's
        offline-then-online SAC trained on its online rows alone, without a word (agents18)."""
        saved = self.offline_rows - self.offline_rows_given
        if (saved > 0 and "online" in getattr(self, "buffers_not_restored", {})
                and self.offline_rows_given < saved):
            raise ValueError(f"this {self.name} agent was pretrained on {saved} offline "
                             "transitions, kept in its replay buffer, but was restored without "
                             "them (saved without include_replay=True): training on would "
                             "leave them out; train on from a checkpoint saved with its replay "
                             "(the runner's), or pretrain it on them again")

    def offline_rows_held(self) -> int:
        """The offline rows the replay buffer holds (or, restored without them and not given
        them again, still owes), as a save records them: restored without its replay and
        given its N rows again, the buffer holds N, not the 2N pretrained on all told, and a
        save of 2N refused the next restore given the same N (diff21)."""
        saved = self.offline_rows - self.offline_rows_given
        if "online" in getattr(self, "buffers_not_restored", {}):
            return max(saved, self.offline_rows_given)
        return self.offline_rows

    def update_from_batch(self, batch: Batch) -> dict[str, float]:
        raise NotImplementedError
