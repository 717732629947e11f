"""RLPD: Reinforcement Learning with Prior Data, the learner of SERL (paper 002) and HIL-SERL (003).

Paper: P. J. Ball, L. Smith, I. Kostrikov, S. Levine, "Efficient Online Reinforcement Learning
with Offline Data", ICML 2023. SAC (``agents/sac.py``) with four changes, all in this file:

- **Symmetric sampling**: a demo buffer (filled by ``pretrain(dataset)``) and an online buffer
  (filled by ``observe``); every gradient step's batch is ``demo_ratio`` demo rows and the rest
  online rows (half and half by default).
- **Critic ensemble** of ``num_qs`` LayerNorm critics; the TD target takes the minimum over a
  random subset of ``num_min_qs`` target heads (redrawn every step), the actor maximises the
  ensemble mean.
- **High update-to-data ratio**: ``utd_ratio`` critic steps per env step; the actor and the
  temperature step once every ``critic_actor_ratio`` critic steps (SERL's ``cta_ratio``), by
  default once per env step as in RLPD (at RLPD's UTD of 20, SERL's ratio of 2 took 10 actor
  steps per env step, which neither paper does).
- ``backup_entropy`` switches the entropy bonus in the TD target (RLPD: on; SERL: off).

Pixels (DrQ, Kostrikov et al. 2020, as SERL uses it): image entries of the observation go through
one CNN per camera, shared by the actor, every critic head and the target heads, and trained by
the critic loss only (the actor reads detached features). The image features are concatenated
with the proprioceptive entries (``tcp_pose``, ``tcp_vel``, ``wrench``). Every step augments
``obs`` and ``next_obs`` images with an independent ``networks.random_shift`` of ``augment_pad``
pixels. As in DrQ-v2 (Yarats et al. 2021), a batch is encoded twice per critic step (``obs``
with gradients, ``next_obs`` without), the target heads read the online encoder's features
(SERL keeps a Polyak-averaged copy of the encoder for them: a third encoder pass) and the actor
step reuses the critic step's ``obs`` features. No pretrained encoder is used (SERL's ImageNet
ResNet-10 cannot be downloaded here); the CNN learns from scratch.

Defaults follow SERL / HIL-SERL, the insertion setting, where they differ from RLPD's
locomotion configuration (discount, temperature, entropy backup), else RLPD's; each field names
its source. On CPUs, ``benchmark.check_serl`` and the ``serl`` presets run SERL's ensemble of 2
at UTD 2 instead (about 10x fewer critic steps per env step).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Dataset, Observation, Transition, split_failure_demos
from agents.buffer import Batch, ReplayBuffer, batch_to_torch, concat_batches
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
from agents.sac import Temperature, fused_adam

# Sources: [rlpd] github.com/ikostrikov/rlpd, rlpd/configs/rlpd_config.py and
# train_finetuning.py flags (state); rlpd_pixels_config.py (pixels). [hil-serl] paper 003,
# appendix tables 2-9 and github.com/rail-berkeley/hil-serl experiment configs. [serl]
# github.com/rail-berkeley/serl, serl_launcher/utils/launcher.py (make_drq_agent).


@dataclass
class RLPDConfig:
    """RLPD hyperparameters (see the module docstring for the sources)."""

    gamma: float = 0.97  # [hil-serl] tables 2-3, RAM/SSD insertion (USB: 0.98); [rlpd] 0.99
    tau: float = 0.005  # [rlpd] Polyak rate of the target critics
    actor_lr: float = 3e-4  # [rlpd, hil-serl] Adam learning rates
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_temperature: float = 0.01  # [serl] initial alpha; [rlpd] 1.0 (the 0% of 1,000 USB
    # steps once blamed on 1.0 here came from the unobservable start offset and the online
    # normaliser, found later; 1.0 was not measured again)
    target_entropy: float | None = None  # [rlpd, serl] None means -action_dim / 2 [nats]
    backup_entropy: bool = False  # [serl, hil-serl] False; [rlpd] True
    hidden: tuple[int, ...] = (256, 256)  # [rlpd, hil-serl] MLP widths of actor and critics
    num_qs: int = 10  # [rlpd] critic ensemble size; [serl] 2
    num_min_qs: int = 2  # [rlpd] target = min over this many randomly chosen heads
    critic_layer_norm: bool = True  # [rlpd] LayerNorm after every critic hidden layer
    utd_ratio: int = 20  # [rlpd] critic steps per env step (benchmark.check_serl and the serl
    # presets use 2 with num_qs 2 on 2-core CPUs)
    critic_actor_ratio: int | None = None  # critic steps per actor step; None: utd_ratio,
    # one actor step per env step [rlpd]; [serl, hil-serl] cta_ratio 2 (their async learner)
    batch_size: int = 256  # [rlpd, hil-serl] rows per gradient step, demo + online
    demo_ratio: float = 0.5  # [rlpd] offline_ratio: fraction of each batch from the demos
    buffer_size: int = 200_000  # [hil-serl] replay_buffer_capacity [transitions]
    demo_buffer_size: int = 200_000  # demo (prior data) capacity [transitions]
    learning_starts: int = 100  # [hil-serl] training_starts: online steps before learning
    random_steps: int = 0  # [hil-serl] random_steps: uniform random actions at the start
    # ([rlpd]'s start_training is 1e4 on locomotion, without demos to start from)
    obs_keys: tuple[str, ...] = ()  # observation entries to use; empty = all
    obs_norm: bool = True  # standardise vector observations (not in [rlpd]/[serl], which
    # feed raw values; here metres, m/s and newtons are mixed)
    obs_norm_online: bool = False  # also fold online observations into the statistics; False:
    # the demos' statistics, fixed. With True, early exploration 200 mm from the socket raised
    # the lateral tcp_pose std 25x over the demos' (1 mm) on USB-v1: millimetre offsets then
    # vanished from the critic's inputs, which kept shifting under it.
    image_feature_dim: int = 50  # [rlpd pixels] latent_dim: CNN output per camera
    image_channels: int = 32  # [rlpd pixels] cnn_features 32: conv channels of the encoder
    # CNN of each camera (agents.networks.IMAGE_ENCODERS): "drq" three 3x3 convs, strides 2, 2,
    # 1 (SAC-AE/DrQ; [rlpd pixels] has four, strides 2, 1, 1, 1); "strided" 8x8/4 + 4x4/2 convs
    # (DQN's first two layers), 5-9x faster updates at 64x64 on CPUs (benchmark.bench_agents)
    image_encoder: Literal["drq", "strided"] = "drq"
    bf16_convs: bool = False  # bfloat16 autocast of the convolutions (agents.networks)
    augment_pad: int = 4  # [rlpd pixels, serl] DrQ random-shift padding [pixels]; 0 = off
    device: str = "cpu"  # torch device for networks ("cpu", "cuda")

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(0 < self.gamma <= 1, name, "gamma", "in (0, 1]", self.gamma)
        check(0 < self.tau <= 1, name, "tau", "in (0, 1]", self.tau)
        for f in ("actor_lr", "critic_lr", "alpha_lr", "init_temperature"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), name, "hidden",
              "a non-empty tuple of positive widths", self.hidden)
        check(self.num_qs >= 1, name, "num_qs", ">= 1", self.num_qs)
        check(1 <= self.num_min_qs <= self.num_qs, name, "num_min_qs", "in [1, num_qs]",
              self.num_min_qs)
        check(self.critic_actor_ratio is None or self.critic_actor_ratio > 0, name,
              "critic_actor_ratio", "> 0 (or None: utd_ratio)", self.critic_actor_ratio)
        for f in ("utd_ratio", "batch_size", "buffer_size",
                  "demo_buffer_size", "image_feature_dim", "image_channels"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        check(0 <= self.demo_ratio < 1, name, "demo_ratio", "in [0, 1)", self.demo_ratio)
        # Per batch it is a count: 0.95 of 8 rows rounded to 8 demo rows, none online.
        n_demo = round(self.batch_size * self.demo_ratio)
        check(n_demo < self.batch_size and (n_demo > 0 or self.demo_ratio == 0), name,
              "demo_ratio", f"a share of the {self.batch_size}-row batch that leaves rows to "
              f"both buffers (it gives {n_demo} demo rows)", self.demo_ratio)
        for f in ("learning_starts", "random_steps", "augment_pad"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


@register("rlpd", RLPDConfig, needs_demos=True)
class RLPDAgent(OffPolicyAgent):
    """SAC + symmetric demo/online sampling + LayerNorm critic ensemble + high UTD (+ DrQ)."""

    name = "rlpd"
    policy_modules = ("actor", "obs_norm")  # what acting reads (export_policy keeps these)
    config: RLPDConfig

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: RLPDConfig,
        *,
        seed: int = 0,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.demo_buffer = ReplayBuffer(observation_space, self.action_dim,
                                        config.demo_buffer_size)
        self.target_entropy = entropy_target(config.target_entropy, self.action_dim,
                                             default=-self.action_dim / 2)
        # One encoder (DrQ): the critic's parameters, trained by the critic loss only; the actor
        # and the target heads read its features.
        self.encoder = ObsEncoder(observation_space, config.obs_keys, config.image_feature_dim,
                                  config.image_channels, config.bf16_convs, config.image_encoder)
        self.image_keys = list(self.encoder.image_keys)
        self.critic = QEnsemble(self.encoder, self.action_dim, config.hidden, config.num_qs,
                                config.critic_layer_norm)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_critic.encoder = self.encoder
        self.actor = SquashedGaussianActor(self.encoder, self.action_dim, config.hidden)
        self.temperature = Temperature(config.init_temperature)
        for module in (self.actor, self.critic, self.target_critic, self.temperature):
            module.to(self.device)
        self.actor_opt = fused_adam(self.actor.net.parameters(), config.actor_lr)
        self.critic_opt = fused_adam(self.critic.parameters(), config.critic_lr)
        self.alpha_opt = fused_adam(self.temperature.parameters(), config.alpha_lr)
        self.actor_steps = 0

    # ------------------------------------------------------------------ acting
    def policy_unit_action(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """The policy's action in [-1, 1]^A (uniform random during ``random_steps``)."""
        if not deterministic and self.env_steps < self.config.random_steps:
            return self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)
        with torch.no_grad():
            obs_t = self.obs_norm(obs_to_torch(obs, self.observation_space, self.device))
            action, _ = self.actor(obs_t, deterministic=deterministic)
        return action[0].cpu().numpy()

    # ------------------------------------------------------------------ data
    def learns_obs_stats_online(self) -> bool:
        """The normaliser keeps the demos' statistics unless ``obs_norm_online``."""
        return self.config.obs_norm_online or len(self.demo_buffer) == 0

    def add_demo(self, transition: Transition, unit_action: np.ndarray) -> None:
        """Add one transition to the demo (prior data) buffer."""
        self.demo_buffer.add(transition, action=unit_action)

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Load demonstrations / prior data into the demo buffer (RLPD has no offline phase).
        Recorded failures (``failure_demo`` rows, a reward classifier's negatives) are left out."""
        dataset, _ = split_failure_demos(dataset)
        data = dict(dataset)
        data["action"] = self.scaler.to_unit(np.asarray(dataset["action"]))
        n = self.demo_buffer.add_dataset(data)
        self.update_obs_stats(dataset["obs"], batched=True)
        return {"pretrain/transitions": float(n)}

    def sample(self) -> Batch:
        """Symmetric sampling: ``demo_ratio`` of the rows from the demos, the rest online.

        Falls back to one buffer alone while the other is empty.
        """
        self.check_demos_restored()
        n_demo = round(self.config.batch_size * self.config.demo_ratio)
        if len(self.demo_buffer) == 0:
            n_demo = 0
        elif len(self.buffer) == 0:
            n_demo = self.config.batch_size
        parts = []
        if n_demo < self.config.batch_size:
            parts.append(self.buffer.sample(self.config.batch_size - n_demo, self.rng))
        if n_demo > 0:
            parts.append(self.demo_buffer.sample(n_demo, self.rng))
        return concat_batches(*parts)

    # ------------------------------------------------------------------ learning
    def update(self) -> dict[str, float]:
        """``utd_ratio`` critic steps (and actor steps per ``critic_actor_ratio``)."""
        if self.env_steps < self.config.learning_starts or len(self.buffer) == 0:
            return {}
        metrics: dict[str, float] = {}
        for _ in range(self.config.utd_ratio):
            metrics |= self.update_from_batch(self.sample())
        return metrics

    def augment(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """DrQ random shift of every image entry (a no-op for state observations)."""
        out = dict(obs)
        for key in self.image_keys:
            out[key] = random_shift(obs[key], self.config.augment_pad)
        return out

    def update_from_batch(self, batch: Batch) -> dict[str, float]:
        """One critic step; plus one actor and temperature step every ``critic_actor_ratio``."""
        cfg = self.config
        b = batch_to_torch(batch, self.device)
        obs = self.obs_norm(self.augment(b["obs"]))
        next_obs = self.obs_norm(self.augment(b["next_obs"]))
        alpha = self.temperature().detach()

        with torch.no_grad():
            next_features = self.encoder(next_obs)
            next_action, next_log_prob = self.actor.from_features(next_features)
            heads = self.rng.choice(cfg.num_qs, size=cfg.num_min_qs, replace=False)
            next_q = self.target_critic.q_from_features(next_features, next_action)
            next_value = next_q[torch.as_tensor(heads)].min(dim=0).values
            if cfg.backup_entropy:
                next_value = next_value - alpha * next_log_prob
            target_q = b["reward"] + cfg.gamma * (1.0 - b["terminated"]) * next_value
        features = self.encoder(obs)
        q = self.critic.q_from_features(features, b["action"])
        critic_loss = ((q - target_q.unsqueeze(0)) ** 2).mean(dim=1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        soft_update(self.target_critic.heads, self.critic.heads, cfg.tau)
        self.gradient_steps += 1
        metrics = {"loss/critic": critic_loss.item(), "q_mean": q.mean().item(),
                   "alpha": alpha.item()}
        if self.gradient_steps % (cfg.critic_actor_ratio or cfg.utd_ratio) == 0:
            metrics |= self.update_actor(features.detach())
        return metrics

    def update_actor(self, features: torch.Tensor) -> dict[str, float]:
        """Maximise the ensemble-mean Q plus entropy on (B, encoder.out_dim) ``features`` (the
        critic step's, detached: the actor does not train the encoder); tune alpha towards the
        target entropy."""
        action, log_prob = self.actor.from_features(features)
        self.critic.requires_grad_(False)
        q_pi = self.critic.q_from_features(features, action).mean(dim=0)
        self.critic.requires_grad_(True)
        alpha = self.temperature().detach()
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.temperature.log_alpha
                       * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        self.actor_steps += 1
        return {"loss/actor": actor_loss.item(), "loss/alpha": alpha_loss.item(),
                "entropy": -log_prob.mean().item()}

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
        return {"online": self.buffer, "demo": self.demo_buffer}

    def _extra_state(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "gradient_steps": self.gradient_steps,
                "actor_steps": self.actor_steps}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state.get("env_steps", 0))
        self.gradient_steps = int(state.get("gradient_steps", 0))
        self.actor_steps = int(state.get("actor_steps", 0))
