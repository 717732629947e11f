"""Advantage-Weighted Actor-Critic, offline then online: paper 004's baseline and learner.

Paper: A. Nair, A. Gupta, M. Dalal, S. Levine, "AWAC: Accelerating Online Reinforcement Learning
with Offline Datasets", arXiv:2006.09359 (2020); as summarised in paper 004 (Zhao et al.,
"Offline Meta-Reinforcement Learning for Industrial Insertion", ICRA 2022), section 4.2:

- critic: the Bellman error of Q(s, a) with target r + gamma E_{a' ~ pi(s')} Q_target(s', a')
  (clipped double Q, as in CORL);
- actor: maximise exp(A(s, a) / lambda) log pi(a | s) on the data's actions, with
  A(s, a) = Q(s, a) - E_{a ~ pi(s)} Q(s, a) (one sample), weights capped at ``exp_adv_max``;
- ``pretrain(dataset)`` runs ``pretrain_steps`` offline steps on the dataset (paper 004's AWAC
  baseline: "pretrained on the same data, with demos added into the offline data"); online,
  transitions join the same buffer and training continues with the same losses (AWAC keeps its
  prior data in the replay buffer).

The networks take an optional latent task variable z (``latent_dim``): plain AWAC uses none;
ODA (``agents/oda.py``) conditions actor and critic on the z its context encoder infers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Dataset, Observation, Transition
from agents.buffer import (
    Batch,
    ReplayBuffer,
    batch_to_torch,
    check_dataset_values,
    check_has_rows,
)
from agents.checkpoint import CheckpointMixin
from agents.config import check
from agents.networks import (
    ActionScaler,
    GaussianActor,
    ObsEncoder,
    ObsNormalizer,
    mlp,
    obs_to_torch,
    soft_update,
)
from agents.registry import register


@dataclass
class AWACConfig:
    """AWAC hyperparameters: CORL's ``algorithms/offline/awac.py`` unless a comment says "ours"."""

    gamma: float = 0.99  # discount per 0.1 s policy step (CORL)
    tau: float = 0.005  # Polyak rate of the target critics (CORL)
    awac_lambda: float = 1.0  # temperature lambda of the advantage weights (CORL)
    exp_adv_max: float = 100.0  # cap on exp(A / lambda) (CORL)
    actor_lr: float = 3e-4  # Adam learning rates (CORL)
    critic_lr: float = 3e-4
    actor_hidden: tuple[int, ...] = (256, 256, 256)  # actor MLP widths (CORL: 3 x 256)
    critic_hidden: tuple[int, ...] = (256, 256, 256)  # critic MLP widths (CORL: 3 x 256)
    batch_size: int = 256  # transitions per gradient step (CORL)
    pretrain_steps: int = 10_000  # offline gradient steps in pretrain() (CORL: 1M; ours: CPU)
    utd_ratio: int = 1  # gradient steps per online env step
    learning_starts: int = 0  # online env steps before the first online gradient step
    buffer_size: int = 200_000  # replay capacity, offline + online [transitions]
    obs_keys: tuple[str, ...] = ()  # observation entries to use; empty = all
    obs_norm: bool = True  # standardise vector observations by the offline data's mean / std
    image_feature_dim: int = 50  # CNN output size per image entry
    exploration_std: float | None = 0.1  # std of the online action noise around pi's mean
    # [unit action] (ours, measured: the learned std after a short pretraining, ~0.75-0.9,
    # failed every online trial). None: sample pi itself (AWAC's own exploration).
    device: str = "cpu"  # torch device for networks ("cpu", "cuda")

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(0 < self.gamma <= 1, name, "gamma", "in (0, 1]", self.gamma)
        check(0 < self.tau <= 1, name, "tau", "in (0, 1]", self.tau)
        check(self.exploration_std is None or self.exploration_std > 0, name,
              "exploration_std", "None or > 0", self.exploration_std)
        for f in ("awac_lambda", "exp_adv_max", "actor_lr", "critic_lr"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("actor_hidden", "critic_hidden"):
            widths = getattr(self, f)
            check(len(widths) > 0 and all(h > 0 for h in widths), name, f,
                  "a non-empty tuple of positive widths", widths)
        for f in ("batch_size", "utd_ratio", "buffer_size", "image_feature_dim"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("pretrain_steps", "learning_starts"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


class LatentActor(nn.Module):
    """pi(a | s, z): encoder features and z into a Gaussian head."""

    def __init__(self, encoder: ObsEncoder, action_dim: int, latent_dim: int,
                 hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.head = GaussianActor(encoder.out_dim + latent_dim, action_dim, hidden)

    def features(self, obs: Mapping[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.encoder(obs), z], dim=-1)


class LatentCritic(nn.Module):
    """Two Q(s, a, z) heads over one encoder; output (2, B)."""

    def __init__(self, encoder: ObsEncoder, action_dim: int, latent_dim: int,
                 hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleList(
            [mlp(encoder.out_dim + latent_dim + action_dim, hidden, 1) for _ in range(2)])

    def forward(self, obs: Mapping[str, torch.Tensor], action: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.encoder(obs), z, action], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in self.heads])


@register("awac", AWACConfig, needs_context=True)
class AWACAgent(CheckpointMixin):
    """AWAC on dict observations: one policy for every task in the data."""

    concurrent_episodes = True  # no per-episode state (ODA's one z: see its episode_state_dict)

    name = "awac"
    #: Size of the latent task variable the networks take (0: unconditioned).
    latent_dim = 0

    def __init__(self, observation_space: gym.spaces.Dict, action_space: gym.spaces.Box,
                 config: AWACConfig, *, seed: int = 0):
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(config.device)
        self.scaler = ActionScaler(action_space)
        self.action_dim = int(action_space.shape[0])
        self.obs_norm = ObsNormalizer(observation_space).to(self.device)
        self.buffer = ReplayBuffer(observation_space, self.action_dim, config.buffer_size)

        def encoder() -> ObsEncoder:
            return ObsEncoder(observation_space, config.obs_keys, config.image_feature_dim)

        self.actor = LatentActor(encoder(), self.action_dim, self.latent_dim,
                                 config.actor_hidden).to(self.device)
        self.critic = LatentCritic(encoder(), self.action_dim, self.latent_dim,
                                   config.critic_hidden).to(self.device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.env_steps = 0  # online transitions observed
        self.gradient_steps = 0
        self.offline_rows = 0  # transitions given to pretrain (they fix the normaliser)
        self.offline_data_lost = False  # restored from a checkpoint saved without its replay

    # ------------------------------------------------------------------ acting
    def reset(self, seed: int | None = None) -> None:
        """No per-episode state."""

    def task_latent(self) -> torch.Tensor:
        """The z the policy acts with: (1, latent_dim); empty for plain AWAC."""
        return torch.zeros(1, self.latent_dim, device=self.device)

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """pi's mean given (s, z) plus ``exploration_std`` noise (the mean if
        ``deterministic``)."""
        with torch.no_grad():
            obs_t = self.obs_norm(obs_to_torch(obs, self.observation_space, self.device))
            features = self.actor.features(obs_t, self.task_latent())
            action = self.actor.head(features, deterministic=deterministic,
                                     std=self.config.exploration_std)[0].cpu().numpy()
        return self.scaler.to_env(action)

    # ------------------------------------------------------------------ data
    def unit_dataset(self, dataset: Dataset) -> dict[str, Any]:
        """A copy of ``dataset`` with actions in [-1, 1]; feeds the normaliser's statistics
        (after the buffer's checks, which name a bad column)."""
        self.buffer.check_dataset(dataset)
        data = dict(dataset)
        data["action"] = self.scaler.to_unit(np.asarray(dataset["action"]))
        if self.config.obs_norm:
            self.obs_norm.update(dataset["obs"], batched=True)
        return data

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Offline AWAC: put the data (demos included) in the buffer, ``pretrain_steps`` steps."""
        check_has_rows(dataset)
        stored = self.buffer.add_dataset(self.unit_dataset(dataset))
        self.offline_rows += stored
        metrics: dict[str, float] = {"pretrain/transitions": float(stored)}
        for _ in range(self.config.pretrain_steps):
            metrics |= self._gradient_step()
        return metrics

    def observe(self, transition: Transition) -> None:
        """Online transitions join the offline data in the one buffer."""
        self.buffer.add(transition, action=self.scaler.to_unit(transition.action))
        if self.config.obs_norm and self.offline_rows == 0:
            self.obs_norm.update(transition.obs)  # no offline statistics to keep fixed
        self.env_steps += 1

    def adapt(self, context: Dataset) -> None:
        """No task inference: the new task's demonstrations join the replay buffer, as in paper
        004's finetuning baseline (section 5.2: "finetuning AWAC with demonstrations added to
        initial buffer"; ``bench_offline paper004`` hands AWAC the demos ODA adapts to). The
        normaliser keeps the offline data's statistics."""
        self.buffer.check_dataset(context)
        check_dataset_values(context, [], self.action_space, "context")  # +-50 is no demo
        data = dict(context)
        data["action"] = self.scaler.to_unit(np.asarray(context["action"]))
        if self.buffer.add_dataset(data) == 0:
            raise ValueError("adapt needs at least one demonstration transition")
        if self.config.obs_norm and self.offline_rows == 0:
            self.obs_norm.update(context["obs"], batched=True)  # as observe: no offline data

    # ------------------------------------------------------------------ learning
    def update(self) -> dict[str, float]:
        """``utd_ratio`` AWAC steps once ``learning_starts`` online steps were observed."""
        if self.env_steps < self.config.learning_starts or len(self.buffer) == 0:
            return {}
        metrics: dict[str, float] = {}
        for _ in range(self.config.utd_ratio):
            metrics = self._gradient_step()
        return metrics

    def _gradient_step(self) -> dict[str, float]:
        """Sample a batch and its latents, then one AWAC step."""
        if self.offline_data_lost:
            raise ValueError(f"this AWAC agent was pretrained on {self.offline_rows} offline "
                             "transitions but was restored without them (saved without "
                             "include_replay=True): finetuning on online data alone would "
                             "forget the offline data")
        b = self.to_torch(self.buffer.sample(self.config.batch_size, self.rng))
        z = torch.zeros(self.config.batch_size, self.latent_dim, device=self.device)
        return self.awac_step(b, z)

    def to_torch(self, batch: Batch) -> Batch:
        """numpy batch -> torch, observations normalised."""
        b = batch_to_torch(batch, self.device)
        b["obs"], b["next_obs"] = self.obs_norm(b["obs"]), self.obs_norm(b["next_obs"])
        return b

    def critic_side_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimizers stepped with the critic loss (ODA adds its context encoder's)."""
        return [self.critic_opt]

    def awac_step(self, b: Batch, z: torch.Tensor,
                  extra_critic_loss: torch.Tensor | None = None) -> dict[str, float]:
        """One AWAC step on batch ``b`` with per-row latents ``z`` (B, latent_dim).

        The critic loss (plus ``extra_critic_loss``, ODA's KL term) trains the critic and
        whatever produced ``z``; the actor sees ``z`` detached (Algorithm 1, lines 12-14).
        """
        cfg = self.config
        with torch.no_grad():
            z_fixed = z.detach()
            next_features = self.actor.features(b["next_obs"], z_fixed)
            next_action = self.actor.head(next_features)
            next_q = self.target_critic(b["next_obs"], next_action, z_fixed).min(dim=0).values
            target = b["reward"] + cfg.gamma * (1.0 - b["terminated"]) * next_q
        q = self.critic(b["obs"], b["action"], z)
        critic_loss = ((q - target.unsqueeze(0)) ** 2).mean()
        loss = critic_loss if extra_critic_loss is None else critic_loss + extra_critic_loss
        optimizers = self.critic_side_optimizers()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()

        features = self.actor.features(b["obs"], z_fixed)
        with torch.no_grad():
            policy_action = self.actor.head(features)
            q_data = self.critic(b["obs"], b["action"], z_fixed).min(dim=0).values
            q_policy = self.critic(b["obs"], policy_action, z_fixed).min(dim=0).values
            advantage = q_data - q_policy
            weights = torch.exp(advantage / cfg.awac_lambda).clamp(max=cfg.exp_adv_max)
        actor_loss = -(weights * self.actor.head.log_prob(features, b["action"])).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        soft_update(self.target_critic, self.critic, cfg.tau)
        self.gradient_steps += 1
        return {"loss/critic": critic_loss.item(), "loss/actor": actor_loss.item(),
                "advantage_mean": advantage.mean().item(), "q_mean": q.mean().item()}

    # ------------------------------------------------------------------ checkpoint
    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "target_critic": self.target_critic,
                "obs_norm": self.obs_norm}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def _checkpoint_buffers(self) -> dict[str, Any]:
        return {"replay": self.buffer}

    def _extra_state(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
                "offline_rows": self.offline_rows}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state.get("env_steps", 0))
        self.gradient_steps = int(state.get("gradient_steps", 0))
        self.offline_rows = int(state.get("offline_rows", 0))

    def load_state(self, path: str | Path, meta: dict[str, Any]) -> None:
        """Restore the checkpoint; note when its offline data was not saved with it."""
        super().load_state(path, meta)
        self.offline_data_lost = self.offline_rows > 0 and len(self.buffer) == 0
