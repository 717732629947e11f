"""ODA: offline meta-RL with demonstration adaptation (paper 004), on top of AWAC.

Paper: T. Z. Zhao, J. Luo, O. Sushkov, R. Pevceviciute, N. Heess, J. Scholz, S. Schaal,
S. Levine, "Offline Meta-Reinforcement Learning for Industrial Insertion", ICRA 2022
(Algorithms 1 and 2). The context encoder is PEARL's (K. Rakelly et al., "Efficient Off-Policy
Meta-Reinforcement Learning via Probabilistic Context Variables", ICML 2019): every context
transition (s, a, r, s') gives a Gaussian factor, their product is q(z | c), and a KL term to
N(0, I) limits what z carries. Actor and critic are AWAC's (``agents/awac.py``) conditioned on z.

- ``pretrain(dataset)`` is offline meta-training (Algorithm 1): the dataset carries ``task_id``
  (which training task a row belongs to) and ``is_demo`` (the row is from a demonstration). Per
  step, for each of up to ``meta_batch`` tasks, a context of ``context_size`` demo transitions
  gives z_i ~ q(z | c_i), and ``batch_per_task`` rows of that task's offline data (all of it,
  demos included) train critic + encoder (L_critic + L_KL) and actor (AWAC, z detached).
- ``adapt(demos)`` (Algorithm 2, lines 2-4) keeps the new task's demonstrations as its context
  and acts with the posterior mean of z given all of them (recomputed at every episode start,
  since finetuning moves the encoder).
- online finetuning (Algorithm 2, lines 5-15): transitions go to an online buffer B; each step
  samples a context from the demos and a batch from B and runs the same losses, so policy,
  critic and encoder are all finetuned. Deviation (``demos_in_online_buffer``): B starts with
  the demos instead of empty, else the first updates fit a handful of online rows (measured on
  CarPlug3p: 10/10 -> 0/10 after 400 steps from an empty B, 10/10 -> 9/10 with the demos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.awac import AWACAgent, AWACConfig
from agents.base import Dataset, Transition, take_rows
from agents.buffer import (
    Batch,
    ReplayBuffer,
    check_dataset_values,
    check_has_rows,
    concat_batches,
)
from agents.config import check
from agents.networks import ObsEncoder, mlp
from agents.registry import register
from agents.task_buffers import TaskBuffers, buffer_rows


@dataclass
class ODAConfig(AWACConfig):
    """AWAC's hyperparameters plus PEARL's context encoder (rlkit ``configs/default.py``)."""

    latent_dim: int = 5  # size of z (PEARL latent_size)
    context_hidden: tuple[int, ...] = (200, 200, 200)  # context encoder MLP widths (PEARL)
    context_lr: float = 3e-4  # Adam learning rate of the context encoder (PEARL)
    kl_weight: float = 0.001  # beta of the KL term (PEARL's kl_lambda is 0.1 beside critic
    # losses of dense rewards scaled by 5; beside our sparse 0/1 rewards' critic loss, ~0.02,
    # 0.1 collapsed q(z|c) to the prior (measured: KL 0.002 nats), 0.001 keeps ~1.3 nats)
    demos_in_online_buffer: bool = True  # B starts with the test task's demos (ours: an empty
    # B, Algorithm 2 line 1, fits the first online rows alone and wrecked the policy)
    context_size: int = 64  # demo transitions per context (PEARL embedding_batch_size: 64)
    meta_batch: int = 16  # tasks per meta-training step (PEARL; all 11 of paper 004's fit)
    batch_per_task: int = 32  # RL rows per task per step (ours: PEARL's 256 is heavy on CPU)
    offline_buffer_size: int = 100_000  # offline capacity per task [transitions]
    demo_buffer_size: int = 20_000  # demonstration capacity per task and for the context

    def needs_task_ids(self) -> bool:
        """Its offline data must say each row's task (a ``task_id`` column: `insertbench
        dataset recipe paper004`; the runner's own demonstrations have none): the runner
        checks it before a run folder is made, not after recording demonstrations into it."""
        return True

    def validate(self) -> None:
        """AWAC's checks plus the encoder's."""
        super().validate()
        name = type(self).__name__
        check(self.kl_weight >= 0, name, "kl_weight", ">= 0", self.kl_weight)
        check(self.context_lr > 0, name, "context_lr", "> 0", self.context_lr)
        check(len(self.context_hidden) > 0 and all(h > 0 for h in self.context_hidden), name,
              "context_hidden", "a non-empty tuple of positive widths", self.context_hidden)
        for f in ("latent_dim", "context_size", "meta_batch", "batch_per_task",
                  "offline_buffer_size", "demo_buffer_size"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))


class ContextEncoder(nn.Module):
    """q(z | c) as a product of per-transition Gaussians (PEARL, section 4.1).

    ``adapted_z`` (a module buffer, so it is checkpointed with the weights) is the posterior mean
    the policy acts with after ``adapt``.
    """

    def __init__(self, encoder: ObsEncoder, action_dim: int, latent_dim: int,
                 hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = encoder
        self.net = mlp(2 * encoder.out_dim + action_dim + 1, hidden, 2 * latent_dim)
        self.register_buffer("adapted_z", torch.zeros(latent_dim))

    def posterior(self, context: Batch, num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance (num_tasks, latent_dim) of q(z | c) for ``num_tasks`` contexts of
        equal length stacked row-wise in ``context`` (torch, observations normalised)."""
        x = torch.cat([self.encoder(context["obs"]), context["action"],
                       context["reward"].unsqueeze(-1), self.encoder(context["next_obs"])], -1)
        mean, raw_var = self.net(x).reshape(num_tasks, -1, self.net[-1].out_features).chunk(2, -1)
        var = F.softplus(raw_var).clamp(min=1e-7)
        post_var = 1.0 / (1.0 / var).sum(dim=1)
        post_mean = post_var * (mean / var).sum(dim=1)
        return post_mean, post_var


@register("oda", ODAConfig, needs_context=True)
class ODAAgent(AWACAgent):
    """AWAC conditioned on a task latent inferred from demonstrations (paper 004)."""

    name = "oda"
    config: ODAConfig

    def __init__(self, observation_space: gym.spaces.Dict, action_space: gym.spaces.Box,
                 config: ODAConfig, *, seed: int = 0):
        self.latent_dim = config.latent_dim
        super().__init__(observation_space, action_space, config, seed=seed)
        encoder = ObsEncoder(observation_space, config.obs_keys, config.image_feature_dim)
        self.context_encoder = ContextEncoder(encoder, self.action_dim, config.latent_dim,
                                              config.context_hidden).to(self.device)
        self.context_opt = torch.optim.Adam(self.context_encoder.parameters(),
                                            lr=config.context_lr)
        self.offline = TaskBuffers(observation_space, self.action_dim, config.offline_buffer_size)
        self.demos = TaskBuffers(observation_space, self.action_dim, config.demo_buffer_size)
        self.context = ReplayBuffer(observation_space, self.action_dim, config.demo_buffer_size)
        self.online = self.buffer  # Algorithm 2's B: online transitions only

    # ------------------------------------------------------------------ acting
    def reset(self, seed: int | None = None) -> None:
        """Re-infer z from the whole context with the current encoder."""
        if len(self.context) == 0:
            return
        with torch.no_grad():
            rows = np.arange(len(self.context))
            context = self.to_torch(buffer_rows(self.context, rows))
            mean, _ = self.context_encoder.posterior(context, num_tasks=1)
            self.context_encoder.adapted_z.copy_(mean[0])

    def episode_state_dict(self) -> dict[str, Any]:
        """The episode's z (JSON floats, exact for float32): ``reset`` infers it with the
        encoder of the episode's start, which online training changes within the episode, so
        a resumed episode must not re-infer it with the checkpoint's encoder."""
        return {"adapted_z": self.context_encoder.adapted_z.cpu().tolist()}

    def load_episode_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode with the z ``episode_state_dict`` recorded."""
        self.context_encoder.adapted_z.copy_(torch.as_tensor(state["adapted_z"],
                                                             dtype=torch.float32))

    def task_latent(self) -> torch.Tensor:
        """The adapted posterior mean (zeros, the prior mean, before ``adapt``)."""
        return self.context_encoder.adapted_z.unsqueeze(0)

    # ------------------------------------------------------------------ data
    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Offline meta-training (Algorithm 1) on a dataset with task_id and is_demo columns."""
        for column in ("task_id", "is_demo"):
            if column not in dataset:
                raise ValueError(f"ODA meta-trains on a dataset with a {column!r} column per "
                                 "row; collect one with `insertbench dataset recipe paper004`")
        check_has_rows(dataset)
        data = self.unit_dataset(dataset)
        stored = self.offline.add_dataset(data)
        self.offline_rows += stored
        demo_rows = np.flatnonzero(np.asarray(dataset["is_demo"], dtype=bool))
        self.demos.add_dataset(take_rows(data, demo_rows))
        missing = sorted(set(self.offline.task_ids) - set(self.demos.task_ids))
        if missing:
            raise ValueError(f"tasks {missing} have offline data but no demonstrations; ODA "
                             "needs demos of every training task for its contexts")
        metrics: dict[str, float] = {"pretrain/transitions": float(stored),
                                     "pretrain/tasks": float(len(self.offline.task_ids))}
        for _ in range(self.config.pretrain_steps):
            metrics |= self._meta_step()
        return metrics

    def adapt(self, context: Dataset) -> None:
        """Take the new task's demonstrations as its context; start the online buffer B (with
        the demonstrations in it if ``demos_in_online_buffer``)."""
        self.context = ReplayBuffer(self.observation_space, self.action_dim,
                                    self.config.demo_buffer_size)
        self.context.check_dataset(context)
        check_dataset_values(context, [], self.action_space, "context")  # +-50 is no demo
        data = dict(context)
        data["action"] = self.scaler.to_unit(np.asarray(context["action"]))
        if self.context.add_dataset(data) == 0:
            raise ValueError("adapt needs at least one demonstration transition")
        self.online = self.buffer = ReplayBuffer(self.observation_space, self.action_dim,
                                                 self.config.buffer_size)
        if self.config.demos_in_online_buffer:
            self.online.add_dataset(data)
        self.reset()

    def observe(self, transition: Transition) -> None:
        """Online transitions go to B."""
        self.online.add(transition, action=self.scaler.to_unit(transition.action))
        self.env_steps += 1

    # ------------------------------------------------------------------ learning
    def critic_side_optimizers(self) -> list[torch.optim.Optimizer]:
        """The critic loss also trains the context encoder (Algorithm 1, line 12)."""
        return [self.critic_opt, self.context_opt]

    def _meta_step(self) -> dict[str, float]:
        """Algorithm 1, one iteration over a meta-batch of training tasks."""
        cfg = self.config
        tasks = self.offline.task_ids
        if len(tasks) > cfg.meta_batch:
            tasks = sorted(self.rng.choice(tasks, cfg.meta_batch, replace=False).tolist())
        context = concat_batches(*[self.demos.sample_task(t, cfg.context_size, self.rng)
                                   for t in tasks])
        batch = concat_batches(*[self.offline.sample_task(t, cfg.batch_per_task, self.rng)
                                 for t in tasks])
        return self._conditioned_step(self.to_torch(context), self.to_torch(batch), len(tasks),
                                      cfg.batch_per_task)

    def _gradient_step(self) -> dict[str, float]:
        """Algorithm 2, lines 8-14: context from the task's demos, RL batch from B."""
        if len(self.context) == 0:
            raise ValueError("ODA finetunes with the new task's demonstrations as context: call "
                             "adapt(demos) before online training")
        cfg = self.config
        context = self.to_torch(self.context.sample(cfg.context_size, self.rng))
        batch = self.to_torch(self.online.sample(cfg.batch_size, self.rng))
        return self._conditioned_step(context, batch, 1, cfg.batch_size)

    def _conditioned_step(self, context: Batch, batch: Batch, num_tasks: int,
                          rows_per_task: int) -> dict[str, float]:
        """z_i ~ q(z | c_i) (reparameterised), then AWAC with L_critic + beta KL."""
        mean, var = self.context_encoder.posterior(context, num_tasks)
        z_task = mean + var.sqrt() * torch.randn_like(mean)
        kl = 0.5 * (mean**2 + var - 1.0 - var.log()).sum(-1).mean()
        z = z_task.repeat_interleave(rows_per_task, dim=0)
        metrics = self.awac_step(batch, z, self.config.kl_weight * kl)
        return metrics | {"loss/kl": kl.item(), "z_std": var.sqrt().mean().item()}

    # ------------------------------------------------------------------ checkpoint
    def save(self, path: str | Path, *, include_replay: bool = False) -> None:
        """As every agent's, with ``adapted_z`` the z the next episode acts with (``reset``:
        re-inferred from the whole context by the current encoder), not the running episode's
        (episode state): a copy without the context (no replay, ``export_policy``) acted with
        the z of the last episode's start."""
        episode_z = self.context_encoder.adapted_z.clone()
        self.reset()
        try:
            super().save(path, include_replay=include_replay)
        finally:
            self.context_encoder.adapted_z.copy_(episode_z)

    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return super()._checkpoint_modules() | {"context_encoder": self.context_encoder}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return super()._checkpoint_optimizers() | {"context": self.context_opt}

    def _checkpoint_buffers(self) -> dict[str, Any]:
        return ({"online": self.online, "context": self.context}
                | {f"offline_task{t}": b for t, b in self.offline.buffers.items()}
                | {f"demo_task{t}": b for t, b in self.demos.buffers.items()})

    def _extra_state(self) -> dict[str, Any]:
        return super()._extra_state() | {"offline_tasks": self.offline.task_ids,
                                         "demo_tasks": self.demos.task_ids}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.offline.ensure([int(t) for t in state.get("offline_tasks", [])])
        self.demos.ensure([int(t) for t in state.get("demo_tasks", [])])

    def load_state(self, path: str | Path, meta: dict[str, Any]) -> None:
        """AWAC's, with the offline data where ODA keeps it, per task: AWAC's test of its own
        replay read ODA's online buffer B, empty after an adapt without the demos in it, and
        marked a checkpoint that held every offline row as lost (agents27)."""
        super().load_state(path, meta)
        held = sum(len(b) for b in self.offline.buffers.values())
        self.offline_data_lost = self.offline_rows > 0 and held == 0
