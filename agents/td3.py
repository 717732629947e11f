"""Twin Delayed Deep Deterministic policy gradient (TD3).

Paper: S. Fujimoto, H. van Hoof, D. Meger, "Addressing Function Approximation Error in
Actor-Critic Methods", ICML 2018: twin critics with a clipped double-Q target, target policy
smoothing (clipped Gaussian noise on the target action) and delayed actor / target updates.
One of the two learners of Schoettler et al. 2019 (paper 000, section 4.2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Observation
from agents.buffer import Batch, ReplayBuffer, batch_to_torch
from agents.config import check
from agents.networks import (
    DeterministicActor,
    ObsEncoder,
    QEnsemble,
    obs_to_torch,
    soft_update,
)
from agents.off_policy import OffPolicyAgent
from agents.registry import register


@dataclass
class TD3Config:
    """TD3 hyperparameters (defaults: the authors' revised code, sfujim/TD3: Adam 3e-4, 256-256
    units, batch 256, where section 6.1 of Fujimoto et al. 2018 used 1e-3, 400-300 and 100)."""

    gamma: float = 0.99  # discount per 0.1 s policy step
    tau: float = 0.005  # Polyak rate of the target actor and critics
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of the critics
    hidden: tuple[int, ...] = (256, 256)  # hidden widths of actor and critic MLPs
    critic_layer_norm: bool = False  # LayerNorm in critic MLPs
    exploration_noise: float = 0.1  # std of Gaussian action noise while training, in [-1, 1] units
    policy_noise: float = 0.2  # std of the target policy smoothing noise, in [-1, 1] units
    noise_clip: float = 0.5  # clip of the target policy smoothing noise
    policy_delay: int = 2  # critic steps per actor / target update
    batch_size: int = 256  # transitions per gradient step
    buffer_size: int = 100_000  # replay capacity [transitions]
    learning_starts: int = 1_000  # env steps observed before the first gradient step
    random_steps: int = 1_000  # env steps with uniform random actions at the start
    utd_ratio: int = 1  # gradient steps per env step
    obs_keys: tuple[str, ...] = ()  # observation entries to use; empty = all
    obs_norm: bool = True  # standardise vector observations by running mean / std
    image_feature_dim: int = 50  # CNN output size per image entry
    device: str = "cpu"  # torch device for networks ("cpu", "cuda")

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(0 < self.gamma <= 1, name, "gamma", "in (0, 1]", self.gamma)
        check(0 < self.tau <= 1, name, "tau", "in (0, 1]", self.tau)
        for f in ("actor_lr", "critic_lr"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("exploration_noise", "policy_noise", "noise_clip"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))
        check(
            len(self.hidden) > 0 and all(h > 0 for h in self.hidden),
            name,
            "hidden",
            "a non-empty tuple of positive widths",
            self.hidden,
        )
        for f in ("policy_delay", "batch_size", "buffer_size", "utd_ratio", "image_feature_dim"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("learning_starts", "random_steps"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


@register("td3", TD3Config)
class TD3Agent(OffPolicyAgent):
    """TD3 on dict observations (state and/or pixels)."""

    name = "td3"
    policy_modules = ("actor", "obs_norm")  # what acting reads (export_policy keeps these)

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: TD3Config,
        *,
        seed: int = 0,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)

        def encoder() -> ObsEncoder:
            return ObsEncoder(observation_space, config.obs_keys, config.image_feature_dim)

        self.actor = DeterministicActor(encoder(), self.action_dim, config.hidden)
        self.critic = QEnsemble(
            encoder(), self.action_dim, config.hidden, 2, config.critic_layer_norm
        )
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        for module in (self.actor, self.critic, self.target_actor, self.target_critic):
            module.to(self.device)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)

    # ------------------------------------------------------------------ acting
    def policy_unit_action(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """Actor output in [-1, 1]^A, plus Gaussian exploration noise unless deterministic."""
        if not deterministic and self.env_steps < self.config.random_steps:
            return self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        with torch.no_grad():
            obs_t = self.obs_norm(obs_to_torch(obs, self.observation_space, self.device))
            action = self.actor(obs_t)[0].cpu().numpy()
        if not deterministic:
            noise = self.rng.normal(0.0, self.config.exploration_noise, self.action_dim)
            action = np.clip(action + noise, -1, 1).astype(np.float32)
        return action

    # ------------------------------------------------------------------ learning
    def actor_loss(self, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Deterministic policy gradient loss -Q1(s, pi(s)) on a torch batch."""
        q = self.critic(b["obs"], self.actor(b["obs"]))[0]
        return -q.mean(), {}

    def update_from_batch(self, batch: Batch) -> dict[str, float]:
        """One critic step, and every ``policy_delay`` steps an actor and target step."""
        cfg = self.config
        b = batch_to_torch(batch, self.device)
        b["obs"], b["next_obs"] = self.obs_norm(b["obs"]), self.obs_norm(b["next_obs"])
        with torch.no_grad():
            noise = (torch.randn_like(b["action"]) * cfg.policy_noise).clamp(
                -cfg.noise_clip, cfg.noise_clip
            )
            next_action = (self.target_actor(b["next_obs"]) + noise).clamp(-1.0, 1.0)
            next_q = self.target_critic(b["next_obs"], next_action).min(dim=0).values
            target_q = b["reward"] + cfg.gamma * (1.0 - b["terminated"]) * next_q
        q = self.critic(b["obs"], b["action"])
        critic_loss = ((q - target_q.unsqueeze(0)) ** 2).mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.gradient_steps += 1
        metrics = {"loss/critic": critic_loss.item(), "q_mean": q.mean().item()}

        if self.gradient_steps % cfg.policy_delay == 0:
            self.critic.requires_grad_(False)
            actor_loss, extra = self.actor_loss(b)
            self.critic.requires_grad_(True)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            soft_update(self.target_actor, self.actor, cfg.tau)
            soft_update(self.target_critic, self.critic, cfg.tau)
            metrics |= {"loss/actor": actor_loss.item(), **extra}
        return metrics

    # ------------------------------------------------------------------ checkpoint
    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "obs_norm": self.obs_norm,
            "critic": self.critic,
            "target_actor": self.target_actor,
            "target_critic": self.target_critic,
        }

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def _checkpoint_buffers(self) -> dict[str, ReplayBuffer]:
        return {"online": self.buffer}

    def _extra_state(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
                "offline_rows": self.offline_rows_held()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state.get("env_steps", 0))
        self.gradient_steps = int(state.get("gradient_steps", 0))
        self.offline_rows = int(state.get("offline_rows", 0))
