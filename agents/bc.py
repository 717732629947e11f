"""Behaviour cloning from demonstrations.

Reference: D. Pomerleau, "ALVINN", NIPS 1988; here the plain regression form: a deterministic
policy pi(s) trained by mean squared error to demonstrated actions (in [-1, 1] units). The
baseline of paper 004 (BC from the demos) and of paper 003 (BC / HG-DAgger).

``pretrain(dataset)`` runs ``pretrain_steps`` gradient steps on the demonstrations. Online, a
transition marked ``intervened`` is a human correction and joins the demo buffer; with
``online_updates_per_step > 0`` the policy keeps training on it (HG-DAgger, Kelly et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Dataset, Observation, Transition, split_failure_demos
from agents.buffer import ReplayBuffer, batch_to_torch, check_has_rows
from agents.checkpoint import CheckpointMixin
from agents.config import check
from agents.networks import (
    ActionScaler,
    DeterministicActor,
    ObsEncoder,
    ObsNormalizer,
    obs_to_torch,
)
from agents.registry import register


@dataclass
class BCConfig:
    """Behaviour-cloning hyperparameters (ours: papers 003 and 004 state none for their BC
    baselines in the text)."""

    hidden: tuple[int, ...] = (256, 256)  # hidden widths of the policy MLP
    lr: float = 1e-3  # Adam learning rate
    batch_size: int = 256  # demo transitions per gradient step
    pretrain_steps: int = 2_000  # gradient steps inside pretrain()
    online_updates_per_step: int = 0  # gradient steps per env step on the demo buffer (HG-DAgger)
    demo_buffer_size: int = 100_000  # demo buffer capacity [transitions]
    obs_keys: tuple[str, ...] = ()  # observation entries to use; empty = all
    obs_norm: bool = True  # standardise vector observations by running mean / std
    image_feature_dim: int = 50  # CNN output size per image entry
    # CNN of each image (agents.networks.IMAGE_ENCODERS): "drq" three 3x3 convs (SAC-AE);
    # "strided" 8x8/4 + 4x4/2 convs (DQN's first two layers), 5-9x cheaper at 64x64
    image_encoder: Literal["drq", "strided"] = "drq"
    device: str = "cpu"  # torch device for networks ("cpu", "cuda")

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(self.lr > 0, name, "lr", "> 0", self.lr)
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), name, "hidden",
              "a non-empty tuple of positive widths", self.hidden)
        for f in ("batch_size", "demo_buffer_size", "image_feature_dim"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("pretrain_steps", "online_updates_per_step"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


@register("bc", BCConfig, needs_demos=True)
class BCAgent(CheckpointMixin):
    """Deterministic MSE behaviour cloning on dict observations."""

    concurrent_episodes = True  # no per-episode state
    imitates_every_row = True  # its data must be demonstrations (the runner warns otherwise)

    name = "bc"
    demos_from_interventions = True  # a human's corrections join its demo buffer

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: BCConfig,
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
        encoder = ObsEncoder(observation_space, config.obs_keys, config.image_feature_dim,
                             image_encoder=config.image_encoder)
        self.policy = DeterministicActor(encoder, self.action_dim, config.hidden).to(self.device)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.demo_buffer = ReplayBuffer(observation_space, self.action_dim,
                                        config.demo_buffer_size)
        self.obs_norm = ObsNormalizer(observation_space).to(self.device)
        self.env_steps = 0
        self.gradient_steps = 0

    def reset(self, seed: int | None = None) -> None:
        """BC keeps no per-episode state."""

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """pi(obs); BC has no exploration, so ``deterministic`` changes nothing."""
        with torch.no_grad():
            obs_t = self.obs_norm(obs_to_torch(obs, self.observation_space, self.device))
            action = self.policy(obs_t)[0].cpu().numpy()
        return self.scaler.to_env(action)

    def observe(self, transition: Transition) -> None:
        """Keep human corrections (``intervened``) as demonstrations; count env steps."""
        self.env_steps += 1
        if transition.intervened:
            self.demo_buffer.add(transition, action=self.scaler.to_unit(transition.action))
            # The statistics move only where the policy is trained on them: with no online
            # updates each correction moved BC's input scaling, its actions with it, untrained
            # (agents19).
            if self.config.obs_norm and self.config.online_updates_per_step > 0:
                self.obs_norm.update(transition.obs)

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Add the demonstrations and run ``pretrain_steps`` regression steps. Recorded failures
        (``failure_demo`` rows, a reward classifier's negatives) are not demonstrations."""
        dataset, _ = split_failure_demos(dataset)
        check_has_rows(dataset, "demonstration transitions")
        data = dict(dataset)
        data["action"] = self.scaler.to_unit(np.asarray(dataset["action"]))
        n = self.demo_buffer.add_dataset(data)
        if self.config.obs_norm:
            self.obs_norm.update(dataset["obs"], batched=True)
        metrics: dict[str, float] = {"pretrain/transitions": float(n)}
        for _ in range(self.config.pretrain_steps):
            metrics |= self._step()
        return metrics

    def update(self) -> dict[str, float]:
        """``online_updates_per_step`` regression steps on the demo buffer (0 by default)."""
        metrics: dict[str, float] = {}
        if len(self.demo_buffer) == 0:
            return metrics
        for _ in range(self.config.online_updates_per_step):
            metrics = self._step()
        return metrics

    def adapt(self, context: Dataset) -> None:
        """BC does no task inference."""

    def _step(self) -> dict[str, float]:
        self.check_demos_restored()
        b = batch_to_torch(self.demo_buffer.sample(self.config.batch_size, self.rng), self.device)
        loss = ((self.policy(self.obs_norm(b["obs"])) - b["action"]) ** 2).sum(dim=-1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.gradient_steps += 1
        return {"loss/bc": loss.item()}

    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, "obs_norm": self.obs_norm}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"policy": self.opt}

    def _checkpoint_buffers(self) -> dict[str, ReplayBuffer]:
        return {"demo": self.demo_buffer}

    def _extra_state(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state.get("env_steps", 0))
        self.gradient_steps = int(state.get("gradient_steps", 0))
