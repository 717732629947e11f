"""TD3 with learning from demonstrations (RL + LfD of paper 000, section 4.4).

Papers: A. Nair, B. McGrew, M. Andrychowicz, W. Zaremba, P. Abbeel, "Overcoming Exploration in
Reinforcement Learning with Demonstrations", ICRA 2018 (demo buffer, behaviour-cloning loss on
demo samples, Q-filter); Schoettler et al. 2019 (paper 000) use it on top of TD3 ("we add a
behavior cloning loss while performing RL that pushes the policy towards the demonstrator
actions"; paper 000 names no Q-filter).

The Q-filter is off by default: measured on USB-v1 (paper000 kwargs, 20 P-controller demos), it
kept 0% of the demo rows from the first 50 online updates on, because an actor trained on -Q1
sits where Q1 rates it above the demos by construction. Without BC, Adam followed -Q1 to the
action bounds (mean |pi| 0.27 -> 0.93 on demo states within 200 updates) and greedy success
fell from 19/20 to 0/20; unfiltered, it held 15-20/20 (`python -m benchmark.check_serl --task
usb --agent td3_lfd -e 'init_offset_mm=[0,0]' -e obs_frame='"start"'`).

``bc_weight`` is 10: with 1, the same runs held 19-20/20 to 1,500 env steps and fell to 0/20 by
2,000 (the actor still matched the demos on demo states, mean |pi| 0.27 vs 0.27, and failed off
them); with 10 they held 20/20 at every evaluation to 3,000 steps (`-c learning_starts=500`).

The normaliser learns from online observations too (``obs_norm_online``). Kept at the demos'
statistics, it made TD3 + LfD collapse wherever the demos cover one narrow path: on USB-v1 with
an exact goal the P-controller's demos vary by 0.11 mm (x) and 0.04 mm (y), so the uniformly
random first 1,000 steps, hundreds of millimetres away, sat at the +-10 std clip in every pose
entry, where the critic extrapolates and the actor learns to drive to the action bounds. Any
state ~0.5 mm off the demo path then looked the same: greedy success 25/25 at 1,000 env steps,
0/25 from 2,000 on, the arm 320 mm away (paper000-state, all 9 exact-goal cells), while the
actor still matched the demos on demo states (squared error 1e-4). Folding the online
observations in, the first evaluation after the random steps drops (0-1/25: the statistics
moved under the pretrained actor) and the first online updates restore it.

``normalize_q`` divides -Q1 by its batch mean |Q1| where that exceeds 1. With paper 000's dense
rewards the critics' mean Q1 fell to -9 (D-sub) and -50 (Model-E) in 5,000 steps; the BC term, of
order 0.01-1, no longer held the actor: like TD3 alone it stopped at the socket's mouth (D-sub and
Model-E, exact goal, dense reward: 0/25 at 5,000 steps, final distance 10-17 mm). Dividing always,
as TD3+BC does, fixed those and broke sparse-reward cells, where |Q1| is 0.02-0.1 at first and the
division amplifies the critic's noise (USB-v1 exact goal 25/25 -> 0/25); the floor of 1 leaves
sparse rewards alone.

``actor_lr`` is 1e-4, a third of TD3's. With 3e-4 the actor fell back late on Model-E (25/25
at 2,000-3,000 env steps, then 2/25 at 5,000 with the sparse reward and +-1 mm goal noise; 4/25
dense exact; 15/25 printed-dense +-1 mm). In the sparse cell's first final evaluation episode,
on the way down its y actions had the opposite sign to the P-controller's, 0.1 of full scale off
by the mouth (at 1e-4: within 0.05; both under-correct x by about 0.15), the plug jammed on the
rim (axial force 15 -> 100 N in six steps) and there the actor drove to the x bound, away from
the socket, where the P-controller pushes towards it; three final episodes ended 10-69 mm from
the goal (at 1e-4: inserted, 1.3-1.4 mm). The BC loss, a mean over demo rows, did not see it
(0.0010 at 3e-4, 0.0012 at 1e-4 by 5,000 steps); why the faster actor drifts is not measured
beyond this. With 1e-4 every paper000-state cell scores 24-25/25 at every evaluation from 2,000
to 5,000 env steps, and paper000-fig5's 6 cells (USB, Model-E, seeds 0-2) 24-25/25 as well. On
seed 1 of paper000-state's 6 Model-E cells 3e-4 fell back in 3 cells, 2 of them not seed 0's
(dense +-1 mm 25 -> 5, printed-dense exact 25 -> 15; printed-dense +-1 mm again, 25 -> 1; 96/150
at 5,000 steps) and 1e-4 held 25/25 in all 6 from 2,000 steps on (150/150).

Measured on paper000-state's 18 TD3 + LfD cells (3 connectors x sparse / dense / dense_printed x
exact / +-1 mm goal, 5,000 env steps, 25 evaluation episodes, seed 0), successes summed over the
18: 98/450 with none of the three, 280 with the online normaliser, 387 with ``normalize_q`` as
well, 449 with the 1e-4 actor as well (`insertbench matrix run paper000-state --agent td3_lfd`).

Differences from plain TD3 (``td3.py``), all in this file:
- a separate demo buffer, filled by ``pretrain(dataset)`` and by intervened transitions;
- every gradient step trains on ``batch_size`` online + ``demo_batch_size`` demo transitions;
- actor loss = -Q1(s, pi(s)) / max(1, mean |Q1|) + bc_weight * mean over demo rows of
  ||pi(s) - a_demo||^2 * 1[Q1(s, a_demo) > Q1(s, pi(s))] (the indicator is the Q-filter; the
  divisor is ``normalize_q``'s);
- ``pretrain`` also runs ``pretrain_steps`` gradient steps on the demos alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from agents.base import Dataset, Transition, split_failure_demos
from agents.buffer import Batch, ReplayBuffer, concat_batches
from agents.config import check
from agents.registry import register
from agents.td3 import TD3Agent, TD3Config


@dataclass
class TD3LfDConfig(TD3Config):
    """TD3 hyperparameters plus the demonstration terms of Nair et al. 2018."""

    actor_lr: float = 1e-4  # Adam learning rate of the actor (TD3's is 3e-4): see the module
    # docstring
    bc_weight: float = 10.0  # weight of the behaviour-cloning loss relative to -Q1 (see below)
    normalize_q: bool = True  # divide -Q1 by the batch's mean |Q1| where that exceeds 1 (one
    # success reward), as TD3+BC (Fujimoto & Gu 2021) divides by it always: dense rewards
    # (|Q| up to 50) then do not drown the BC term, and sparse ones (|Q| <= 1) are left alone
    q_filter: bool = False  # clone a demo action only where the critic rates it above pi(s)
    # (Nair et al.); off: see the module docstring
    demo_batch_size: int = 128  # demo transitions added to every gradient step's batch
    demo_buffer_size: int = 100_000  # demo buffer capacity [transitions]
    pretrain_steps: int = 1_000  # gradient steps on demos alone inside pretrain()
    obs_norm_online: bool = True  # also fold online observations into the normaliser; False:
    # the demos' statistics, fixed (as RLPD). See the module docstring.

    def validate(self) -> None:
        """TD3 checks plus the demo fields."""
        super().validate()
        name = type(self).__name__
        check(self.bc_weight >= 0, name, "bc_weight", ">= 0", self.bc_weight)
        for f in ("demo_batch_size", "demo_buffer_size"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        check(self.pretrain_steps >= 0, name, "pretrain_steps", ">= 0", self.pretrain_steps)


@register("td3_lfd", TD3LfDConfig, needs_demos=True)
class TD3LfDAgent(TD3Agent):
    """TD3 + demo buffer + Q-filtered behaviour cloning."""

    name = "td3_lfd"
    demos_from_interventions = True  # a human's corrections join its demo buffer
    config: TD3LfDConfig

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: TD3LfDConfig,
        *,
        seed: int = 0,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.demo_buffer = ReplayBuffer(observation_space, self.action_dim,
                                        config.demo_buffer_size)
        self._pretraining = False

    def learns_obs_stats_online(self) -> bool:
        """The normaliser keeps the demos' statistics unless ``obs_norm_online``."""
        return self.config.obs_norm_online or len(self.demo_buffer) == 0

    def observe(self, transition: Transition) -> None:
        """Online buffer always; a human-intervened transition is a demonstration too."""
        unit_action = self.scaler.to_unit(transition.action)
        self.store(transition, unit_action)
        if transition.intervened:
            self.demo_buffer.add(transition, action=unit_action)

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Load demonstrations into the demo buffer, then ``pretrain_steps`` demo-only steps.
        Recorded failures (``failure_demo`` rows, a reward classifier's negatives) are left out:
        the BC term would clone them."""
        dataset, _ = split_failure_demos(dataset)
        data = dict(dataset)
        data["action"] = self.scaler.to_unit(np.asarray(dataset["action"]))
        n = self.demo_buffer.add_dataset(data)
        self.update_obs_stats(dataset["obs"], batched=True)
        metrics: dict[str, float] = {"pretrain/transitions": float(n)}
        self._pretraining = True  # no Q-filter yet: see actor_loss
        try:
            for _ in range(self.config.pretrain_steps):
                metrics |= self.update_from_batch(self._sample())
        finally:
            self._pretraining = False
        return metrics

    def update(self) -> dict[str, float]:
        """``utd_ratio`` steps on mixed online + demo batches after ``learning_starts``."""
        if self.env_steps < self.config.learning_starts or len(self.buffer) == 0:
            return {}
        metrics: dict[str, float] = {}
        for _ in range(self.config.utd_ratio):
            metrics = self.update_from_batch(self._sample())
        return metrics

    def _sample(self) -> Batch:
        """Online rows then demo rows, with an ``is_demo`` column marking the latter."""
        self.check_demos_restored()
        parts = []
        if len(self.buffer) > 0:
            online = self.buffer.sample(self.config.batch_size, self.rng)
            online["is_demo"] = np.zeros(self.config.batch_size, dtype=bool)
            parts.append(online)
        if len(self.demo_buffer) > 0:
            demo = self.demo_buffer.sample(self.config.demo_batch_size, self.rng)
            demo["is_demo"] = np.ones(self.config.demo_batch_size, dtype=bool)
            parts.append(demo)
        if not parts:
            raise ValueError("td3_lfd has neither online nor demo transitions to train on")
        return concat_batches(*parts)

    def actor_loss(self, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """-Q1(s, pi(s)) over all rows + bc_weight * Q-filtered BC over demo rows.

        The Q-filter is off during ``pretrain``: there the critic has seen demonstration actions
        only, so Q1(s, pi(s)) is extrapolation, and ranking demos against it dropped most of
        them. On USB-v1 (paper000 kwargs, 20 P-controller demos, 1,000 pretraining steps) the
        actor then followed -Q1 to the action bounds: 0/5 greedy successes after pretraining
        and 0/150 on the leaderboard after 3,000 env steps per task, against 4/5 unfiltered.
        """
        pi = self.actor(b["obs"])
        q_pi = self.critic(b["obs"], pi)[0]
        is_demo = b["is_demo"]
        bc_error = ((pi - b["action"]) ** 2).sum(dim=-1)
        if self.config.q_filter and not self._pretraining:
            with torch.no_grad():
                q_demo = self.critic(b["obs"], b["action"])[0]
                keep = (q_demo > q_pi.detach()).float()
        else:
            keep = torch.ones_like(bc_error)
        mask = is_demo * keep
        bc_loss = (bc_error * mask).sum() / is_demo.sum().clamp(min=1.0)
        q_scale = q_pi.abs().mean().detach().clamp(min=1.0) if self.config.normalize_q else 1.0
        loss = -q_pi.mean() / q_scale + self.config.bc_weight * bc_loss
        kept = (mask.sum() / is_demo.sum().clamp(min=1.0)).item()
        return loss, {"loss/bc": bc_loss.item(), "q_filter_kept": kept,
                      "q_scale": float(q_scale)}

    def _checkpoint_buffers(self) -> dict[str, ReplayBuffer]:
        return {"online": self.buffer, "demo": self.demo_buffer}
