"""Residual reinforcement learning on a hand-designed controller.

Papers: T. Johannink, S. Bahl, A. Nair, et al., "Residual Reinforcement Learning for Robot
Control", ICRA 2019; Schoettler et al. 2019 (paper 000), section 4.3 and Algorithm 1.

The executed action is ``u' = clip(pi_H(s) + residual_scale * u)`` with ``pi_H`` a fixed
controller (``base_policy=``, e.g. ``envs.p_controller(env)``: paper 000's P-controller) and
``u ~ pi_theta(s)`` the learned residual in [-1, 1] (on a general Box, ``u`` is scaled by half
the action range). As in Algorithm 1 (line 7), the replay buffer stores the
residual ``u``, not ``u'``, so the critic is Q(s, u) and any off-policy learner trains unchanged:
``residual_sac`` wraps SAC, ``residual_td3`` wraps TD3.

As in residual policy learning (T. Silver, K. Allen, J. Tenenbaum, L. Kaelbling, "Residual
Policy Learning", arXiv:1812.06298), the actor's output layer starts at zero
(``zero_init_residual``), so before any learning the agent acts exactly as pi_H (for SAC: the
mean residual is 0 and exploration noise is added around pi_H).

The agent remembers the residual it sampled for the observation it last acted on. When the
runner reports a transition it did not produce that way (a human intervention, or an observation
it never saw), the residual is recovered as ``(executed - pi_H(s)) / residual_scale``, using
``Transition.base_action`` when the runner supplies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import BasePolicy, Dataset, Observation, Transition
from agents.buffer import Batch
from agents.config import check
from agents.registry import register
from agents.sac import SACAgent, SACConfig
from agents.td3 import TD3Agent, TD3Config


class ResidualMixin:
    """Residual acting and storage for a learner with ``policy_unit_action`` and ``store``."""

    #: Its actions go through the task's hand controller, which steers to the goal the task
    #: gives it (the socket, or the believed goal), whatever the observation holds.
    acts_through_base_policy = True
    #: The columns its demonstrations need beyond a dataset's own (the runner checks them before
    #: a run folder is made): pi_H(s), recorded during each episode.
    demo_columns = {"base_action": "the hand controller's action, which a residual agent's "
                                   "`insertbench train --demo-episodes N` records"}
    base_policy: BasePolicy
    residual_scale: float
    _last: tuple[Observation, np.ndarray] | None

    def _init_residual(self, base_policy: BasePolicy, residual_scale: float,
                       zero_init: bool) -> None:
        if not callable(base_policy):
            raise ValueError(f"base_policy must be a callable obs -> action, got {base_policy!r}")
        if zero_init:  # the residual starts at 0: the agent begins as pi_H itself
            with torch.no_grad():
                self.actor.net[-1].weight.zero_()
                self.actor.net[-1].bias.zero_()
        self.base_policy = base_policy
        self.residual_scale = residual_scale
        # A unit residual moves the action by residual_scale half-ranges of the action space.
        self._residual_gain = residual_scale * 0.5 * (self.scaler.high - self.scaler.low)
        self._last = None

    def base_action(self, obs: Observation) -> np.ndarray:
        """pi_H(obs) in env units, validated against the action shape."""
        base = np.asarray(self.base_policy(obs), dtype=np.float64)
        if base.shape != self.action_space.shape:
            raise ValueError(
                f"base_policy returned shape {base.shape}, the action space has "
                f"{self.action_space.shape}"
            )
        if not np.all(np.isfinite(base)):  # clip() keeps a NaN: the env got a NaN action
            raise ValueError(f"base_policy returned a non-finite action {base.tolist()}")
        return base

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """clip(pi_H(s) + residual_scale * residual), in the env's action space."""
        residual = self.policy_unit_action(obs, deterministic=deterministic)
        if not deterministic:
            self._last = ({k: np.array(v, copy=True) for k, v in obs.items()}, residual)
        executed = self.base_action(obs) + self._residual_gain * residual
        return np.clip(executed, self.action_space.low, self.action_space.high).astype(
            self.action_space.dtype
        )

    def observe(self, transition: Transition) -> None:
        """Store (s, residual, r, s'): Algorithm 1, line 7."""
        residual = None
        if not transition.intervened and self._last is not None:
            last_obs, last_residual = self._last
            if _same_obs(last_obs, transition.obs):
                residual = last_residual
        if residual is None:
            base = (
                self.base_action(transition.obs)
                if transition.base_action is None
                else np.asarray(transition.base_action, dtype=np.float64)
            )
            residual = self._residual_from_executed(transition.action, base)
        self._last = None
        self.store(transition, residual)

    def _residual_from_executed(self, executed: np.ndarray, base: np.ndarray) -> np.ndarray:
        delta = (np.asarray(executed, dtype=np.float64) - base) / self._residual_gain
        return np.clip(delta, -1, 1).astype(np.float32)

    def add_offline(self, dataset: Dataset) -> int:
        """Store offline transitions with their residuals executed - pi_H(s) (the learner's
        ``pretrain`` calls it, then runs its offline gradient steps, if any).

        pi_H(s) must come with the data (``base_action``, recorded during each episode by
        `benchmark.train.collect_demos`): the hand controller reads the episode's believed goal
        from the env, so evaluating it now would use the last episode's goal for every row.
        """
        if "base_action" not in dataset:
            raise ValueError(
                "residual pretraining needs pi_H(s) recorded during each demo episode (a "
                "'base_action' column, as `insertbench train --demo-episodes N` records it); this "
                "dataset has none"
            )
        base = np.asarray(dataset["base_action"], dtype=np.float64)
        if base.shape != np.shape(dataset["action"]):
            raise ValueError(f"base_action has shape {base.shape}, action "
                             f"{np.shape(dataset['action'])}")
        obs = dataset["obs"]
        residuals = np.stack([
            self._residual_from_executed(dataset["action"][i], base[i]) for i in range(len(base))
        ])
        added = self.buffer.add_dataset({**dataset, "action": residuals})
        self.update_obs_stats(obs, batched=True)
        return added

    def reset(self, seed: int | None = None) -> None:
        """Forget the last sampled residual."""
        self._last = None


def _same_obs(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _check_scale(config: Any) -> None:
    name = type(config).__name__
    check(config.residual_scale > 0, name, "residual_scale", "> 0", config.residual_scale)


@dataclass
class ResidualSACConfig(SACConfig):
    """SAC hyperparameters plus the residual's scale."""

    residual_scale: float = 1.0  # executed = base + residual_scale * residual (paper 000: 1)
    # SAC's 0.1 lets the entropy bonus swamp a sparse 0/1 insertion reward: on USB-v0 (goal
    # noise 1 mm) residual SAC fell from the controller's 90% to 0% by 2k steps with 0.1 and
    # reached 100% by 3k steps with 0.01 (`python -m benchmark.check_learning --task usb`).
    init_temperature: float = 0.01
    random_steps: int = 0  # Algorithm 1 explores with pi_theta from the start, not uniformly
    zero_init_residual: bool = True  # zero the actor's output layer: start exactly at pi_H

    def validate(self) -> None:
        """SAC checks plus residual_scale > 0."""
        super().validate()
        _check_scale(self)


@dataclass
class ResidualTD3Config(TD3Config):
    """TD3 hyperparameters plus the residual's scale."""

    residual_scale: float = 1.0  # executed = base + residual_scale * residual (paper 000: 1)
    random_steps: int = 0  # Algorithm 1 explores with pi_theta from the start, not uniformly
    zero_init_residual: bool = True  # zero the actor's output layer: start exactly at pi_H
    residual_l2: float = 1.0  # actor loss += residual_l2 * mean(u^2): OpenAI baselines' HER
    # DDPG action_l2 (1.0). Without it, 75 actor steps drove the residual to the bounds on USB-v1
    # (see ResidualTD3Agent.actor_loss)

    def validate(self) -> None:
        """TD3 checks plus residual_scale > 0 and residual_l2 >= 0."""
        super().validate()
        _check_scale(self)
        check(self.residual_l2 >= 0, type(self).__name__, "residual_l2", ">= 0",
              self.residual_l2)


@register("residual_sac", ResidualSACConfig, needs_base_policy=True)
class ResidualSACAgent(ResidualMixin, SACAgent):
    """Residual RL with SAC as the learner."""

    name = "residual_sac"

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: ResidualSACConfig,
        *,
        seed: int = 0,
        base_policy: BasePolicy,
    ):
        SACAgent.__init__(self, observation_space, action_space, config, seed=seed)
        self._init_residual(base_policy, config.residual_scale, config.zero_init_residual)


@register("residual_td3", ResidualTD3Config, needs_base_policy=True)
class ResidualTD3Agent(ResidualMixin, TD3Agent):
    """Residual RL with TD3 as the learner."""

    name = "residual_td3"

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: ResidualTD3Config,
        *,
        seed: int = 0,
        base_policy: BasePolicy,
    ):
        TD3Agent.__init__(self, observation_space, action_space, config, seed=seed)
        self._init_residual(base_policy, config.residual_scale, config.zero_init_residual)
        self.target_actor.load_state_dict(self.actor.state_dict())

    def actor_loss(self, b: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """-Q1(s, u(s)) + residual_l2 * mean(u(s)^2), u the residual in [-1, 1].

        The penalty keeps the agent at pi_H until the critic shows a gain. Without it the
        deterministic policy gradient saturated the residual: dQ/du has one sign across a batch
        of a barely trained critic, Adam turns that into equal steps on all 256 output weights,
        and tanh's vanishing gradient at the bounds keeps it there. Measured on USB-v1 (paper000
        kwargs, learning_starts 100): |u| 0.99 after 250 env steps and 0-30% training success
        over 1,500, against |u| ~0.1 and 90-100% with the penalty; delaying the actor by 900
        critic-only steps only delayed the saturation.
        """
        residual = self.actor(b["obs"])
        q = self.critic(b["obs"], residual)[0]
        penalty = residual.pow(2).mean()
        loss = -q.mean() + self.config.residual_l2 * penalty
        return loss, {"residual_sq": penalty.item()}
