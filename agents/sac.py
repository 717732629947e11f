"""Soft Actor-Critic.

Paper: T. Haarnoja, A. Zhou, K. Hartikainen, et al., "Soft Actor-Critic Algorithms and
Applications", arXiv:1812.05905 (2018): clipped double-Q critics (their minimum is the Q of both
the TD target and the actor loss), a tanh-squashed Gaussian actor and an automatically tuned
entropy temperature alpha. Used on the insertion tasks of Schoettler et al. 2019 (paper 000,
section 4.2), from state and from 32x32 images.

One ``update()`` call runs ``utd_ratio`` gradient steps (critic, actor, temperature, target), so
high update-to-data ratios (RLPD, paper 002) are a config value, not a runner change.

Pixels as in DrQ-v2 (Yarats et al., "Mastering Visual Continuous Control: Improved Data-Augmented
Reinforcement Learning", arXiv:2107.09645): one observation encoder serves the actor, the critics
and the target critics; only the critic loss trains it (the actor reads detached features); each
batch's images are randomly shifted (``image_shift_px``). A batch's images are encoded twice per
gradient step (obs, next_obs) instead of five times with an encoder per network.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Dataset, Observation
from agents.buffer import Batch, ReplayBuffer, batch_to_torch
from agents.config import check
from agents.networks import (
    ObsEncoder,
    QEnsemble,
    SquashedGaussianActor,
    entropy_target,
    obs_to_torch,
    random_shift,
    soft_update,
)
from agents.off_policy import OffPolicyAgent
from agents.registry import register


@dataclass
class SACConfig:
    """SAC hyperparameters (defaults: Haarnoja et al. 2018, table 1, except buffer and warm-up)."""

    gamma: float = 0.99  # discount per 0.1 s policy step
    tau: float = 0.005  # Polyak rate of the target critics
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of the critics
    alpha_lr: float = 3e-4  # Adam learning rate of log(alpha)
    init_temperature: float = 0.1  # initial entropy temperature alpha (SAC-AE / DrQ's 0.1;
    # rlkit, paper 000's code, starts at 1)
    target_entropy: float | None = None  # entropy target [nats]; None means -action_dim
    hidden: tuple[int, ...] = (256, 256)  # hidden widths of actor and critic MLPs
    num_qs: int = 2  # critic ensemble size; the target uses the minimum over heads
    critic_layer_norm: bool = False  # LayerNorm in critic MLPs (RLPD)
    batch_size: int = 256  # transitions per gradient step
    buffer_size: int = 100_000  # replay capacity [transitions]
    learning_starts: int = 1_000  # env steps observed before the first gradient step
    random_steps: int = 1_000  # env steps with uniform random actions at the start
    utd_ratio: int = 1  # gradient steps per env step (update-to-data ratio)
    obs_keys: tuple[str, ...] = ()  # observation entries to use; empty = all
    obs_norm: bool = True  # standardise vector observations by running mean / std
    image_feature_dim: int = 50  # CNN output size per image entry
    image_channels: int = 32  # conv channels of the image encoder (16: ~2x cheaper updates)
    # bfloat16 autocast of the image convolutions: ~2x faster updates on CPUs with AVX512-BF16 /
    # AMX (`python -m benchmark.bench_throughput`), slower on CPUs without; off by default
    bf16_convs: bool = False
    # CNN of each image (agents.networks.IMAGE_ENCODERS): "drq" three 3x3 convs (SAC-AE);
    # "strided" 8x8/4 + 4x4/2 convs (DQN's first two layers), 5-9x faster updates at 64x64
    image_encoder: Literal["drq", "strided"] = "drq"
    image_shift_px: int = 4  # DrQ random shift of image observations in a batch [pixels]; 0: off
    pretrain_steps: int = 0  # gradient steps on the offline data in pretrain() (paper 001's SAC
    # baseline is trained offline on the same data before finetuning); 0: only prefill the buffer
    device: str = "cpu"  # torch device for networks ("cpu", "cuda")

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(0 < self.gamma <= 1, name, "gamma", "in (0, 1]", self.gamma)
        check(0 < self.tau <= 1, name, "tau", "in (0, 1]", self.tau)
        for f in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        check(
            len(self.hidden) > 0 and all(h > 0 for h in self.hidden),
            name,
            "hidden",
            "a non-empty tuple of positive widths",
            self.hidden,
        )
        check(self.num_qs >= 2, name, "num_qs", ">= 2", self.num_qs)
        for f in ("batch_size", "buffer_size", "utd_ratio", "image_feature_dim", "image_channels"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("learning_starts", "random_steps", "image_shift_px", "pretrain_steps"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


def fused_adam(params: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam (default betas and eps) whose step is one fused kernel over all ``params``.

    The unfused step issues about seven tensor ops per parameter (~200 per SAC update); fused,
    the update agrees with it to float32 rounding (tests/agents/test_shared_encoder.py) and pixel
    SAC (32x32 gray, bf16 convs, 16 channels, batch 256) makes 5-8% more updates per CPU-second,
    measured against the unfused optimizer in paired runs in one process.
    Checkpoints store the flag with the optimizer's param groups, so an agent resumed from one
    saved unfused keeps stepping unfused, exactly as before.
    """
    return torch.optim.Adam(params, lr=lr, fused=True)


class Temperature(nn.Module):
    """The entropy temperature alpha, learned in log space."""

    def __init__(self, init_value: float):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(init_value))))

    def forward(self) -> torch.Tensor:
        return self.log_alpha.exp()


@register("sac", SACConfig)
class SACAgent(OffPolicyAgent):
    """SAC on dict observations (state and/or pixels)."""

    name = "sac"
    policy_modules = ("actor", "obs_norm")  # what acting reads (export_policy keeps these)

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: SACConfig,
        *,
        seed: int = 0,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.target_entropy = entropy_target(config.target_entropy, self.action_dim,
                                             default=-self.action_dim)

        # One encoder: the critic's parameters (trained by the critic loss), read by the actor.
        self.encoder = ObsEncoder(
            observation_space, config.obs_keys, config.image_feature_dim, config.image_channels,
            config.bf16_convs, config.image_encoder,
        )
        self.actor = SquashedGaussianActor(self.encoder, self.action_dim, config.hidden)
        self.critic = QEnsemble(
            self.encoder, self.action_dim, config.hidden, config.num_qs, config.critic_layer_norm
        )
        # Target heads only: the targets read the online encoder's features of next_obs.
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_critic.encoder = self.encoder
        self.temperature = Temperature(config.init_temperature)
        for module in (self.actor, self.critic, self.target_critic, self.temperature):
            module.to(self.device)
        self.actor_opt = fused_adam(self.actor.net.parameters(), config.actor_lr)
        self.critic_opt = fused_adam(self.critic.parameters(), config.critic_lr)
        self.alpha_opt = fused_adam(self.temperature.parameters(), config.alpha_lr)

    # ------------------------------------------------------------------ acting
    def policy_unit_action(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """The policy's action in [-1, 1]^A (uniform random during the warm-up steps)."""
        if not deterministic and self.env_steps < self.config.random_steps:
            return self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        with torch.no_grad():
            obs_t = self.obs_norm(obs_to_torch(obs, self.observation_space, self.device))
            action, _ = self.actor(obs_t, deterministic=deterministic)
        return action[0].cpu().numpy()

    # ------------------------------------------------------------------ learning
    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Prefill the replay buffer with ``dataset``, then ``pretrain_steps`` SAC gradient steps
        on it (offline SAC; online, the offline rows stay in the buffer beside the new ones)."""
        metrics = super().pretrain(dataset)
        for _ in range(self.config.pretrain_steps):
            metrics |= self.update_from_batch(self.buffer.sample(self.config.batch_size, self.rng))
        warm_up = self.config.random_steps - self.env_steps
        if self.config.pretrain_steps > 0 and warm_up > 0:  # the finetuning started from noise
            warnings.warn(f"{self.name} acts uniformly at random for its next {warm_up} env steps "
                          f"(random_steps={self.config.random_steps}): the policy pretrained "
                          "offline does not act until then; -c random_steps=0 finetunes from it, "
                          "as paper 001's baseline does", UserWarning, stacklevel=2)
        return metrics

    def update_from_batch(self, batch: Batch) -> dict[str, float]:
        """One SAC gradient step on a numpy batch (actions in [-1, 1])."""
        b = batch_to_torch(batch, self.device)
        for key in self.encoder.image_keys:
            for part in ("obs", "next_obs"):
                b[part][key] = random_shift(b[part][key], self.config.image_shift_px)
        b["obs"], b["next_obs"] = self.obs_norm(b["obs"]), self.obs_norm(b["next_obs"])
        alpha = self.temperature().detach()

        with torch.no_grad():
            next_features = self.encoder(b["next_obs"])
            next_action, next_log_prob = self.actor.from_features(next_features)
            next_q = self.target_critic.q_from_features(next_features, next_action)
            soft_value = next_q.min(dim=0).values - alpha * next_log_prob
            target_q = b["reward"] + self.config.gamma * (1.0 - b["terminated"]) * soft_value
        features = self.encoder(b["obs"])
        q = self.critic.q_from_features(features, b["action"])
        critic_loss = ((q - target_q.unsqueeze(0)) ** 2).mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        features = features.detach()  # the actor does not train the encoder
        action, log_prob = self.actor.from_features(features)
        self.critic.requires_grad_(False)
        # The minimum over the critics, as in the TD target (Haarnoja et al.; rlkit, paper 000)
        q_pi = self.critic.q_from_features(features, action).min(dim=0).values
        self.critic.requires_grad_(True)
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        alpha_loss = -(
            self.temperature.log_alpha * (log_prob.detach() + self.target_entropy)
        ).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        soft_update(self.target_critic.heads, self.critic.heads, self.config.tau)
        self.gradient_steps += 1
        return {
            "loss/critic": critic_loss.item(),
            "loss/actor": actor_loss.item(),
            "loss/alpha": alpha_loss.item(),
            "alpha": alpha.item(),
            "q_mean": q.mean().item(),
            "entropy": -log_prob.mean().item(),
        }

    # ------------------------------------------------------------------ checkpoint
    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "obs_norm": self.obs_norm,
            "critic": self.critic,
            "target_critic": self.target_critic,
            "temperature": self.temperature,
        }

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt}

    def _checkpoint_buffers(self) -> dict[str, ReplayBuffer]:
        return {"online": self.buffer}

    def _extra_state(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
                "offline_rows": self.offline_rows_held()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state.get("env_steps", 0))
        self.gradient_steps = int(state.get("gradient_steps", 0))
        self.offline_rows = int(state.get("offline_rows", 0))
