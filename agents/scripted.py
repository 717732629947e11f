"""Scripted insertion baselines that need no learning (``update`` returns {}).

- ``p_controller``: the task's hand-designed controller (paper 000, eq. 5: a P-controller toward
  the believed goal), wrapped as an agent; ``base_policy=`` is ``envs.p_controller(env)``.
- ``straight_down``: pushes along the insertion axis from the start pose (paper 001 baseline).
- ``random_search``: straight down until the plug stalls on the board, then, holding a light
  contact force, visits ``num_targets`` random positions around the stall point (paper 001,
  after [44]: Chhatpar & Branicky, "Search strategies for peg-in-hole assemblies", IROS 2001).
- ``spiral_search``: straight down until stalled, then an Archimedean spiral around the stall
  point at a light contact force (paper 001, after [44]).

Both searches stop moving sideways and push in once the plug drops ``drop_distance_m`` below the
stall point (it found the hole).

They read only ``obs["tcp_pose"]`` (position [m] and rotation vector [rad] relative to the
episode-start frame) and command translations; rotation components of a 6-D action are 0.
Lateral axes are x, y of the action frame; ``down_sign`` says which z direction inserts: +1 in
InsertBench, whose TCP z axis (the tool axis) points into the socket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from agents.base import BasePolicy, Dataset, Observation, Transition
from agents.checkpoint import CheckpointMixin
from agents.config import check
from agents.registry import register


@dataclass
class PControllerConfig:
    """The P-controller has its gains in the task (``envs.p_controller``); nothing to set."""


@dataclass
class SearchConfig:
    """Shared settings of the straight-down, random and spiral search baselines."""

    down_sign: Literal[-1, 1] = 1  # sign of action z that inserts (+1: InsertBench's tool axis)
    push_action: float = 0.5  # magnitude of the z command while descending, in [-1, 1] units
    search_force_n: float = 5.0  # contact force held while searching [N] (light: it can slide)
    force_gain: float = 0.02  # z command per N of contact-force error while searching
    drop_distance_m: float = 0.0002  # depth past the stall point meaning the hole was found [m]
    kp_xy: float = 100.0  # lateral P gain [action units per m of position error]
    stall_distance_m: float = 0.0005  # z progress per step below which the plug counts as stalled
    stall_steps: int = 2  # consecutive stalled steps that end the straight-down phase
    search_radius_m: float = 0.003  # maximum lateral distance of search targets from stall point
    num_targets: int = 5  # random_search: random positions visited ([44] uses 5)
    steps_per_target: int = 4  # random_search: policy steps spent on each target
    spiral_pitch_m: float = 0.001  # spiral_search: radius gained per revolution [m]
    spiral_step_rad: float = 0.6  # spiral_search: angle advanced per policy step [rad]

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field. Upper bounds are physical: a
        search the size of the cell (lengths up to 0.1 m), forces up to 1 kN, gains up to
        those that saturate the action at 10 um or 1 N of error, and counts far above any
        episode's length (`kp_xy=1e308` and `spiral_pitch_m=1e308` used to pass as finite
        numbers)."""
        name = type(self).__name__
        check(0 < self.push_action <= 1, name, "push_action", "in (0, 1]", self.push_action)
        check(0 <= self.search_force_n <= 1000, name, "search_force_n", "in [0, 1000] N",
              self.search_force_n)
        check(0 <= self.force_gain <= 1, name, "force_gain", "in [0, 1] per N",
              self.force_gain)
        check(0 < self.kp_xy <= 1e5, name, "kp_xy", "in (0, 1e5] per m", self.kp_xy)
        for f in ("drop_distance_m", "stall_distance_m"):
            check(0 <= getattr(self, f) <= 0.1, name, f, "in [0, 0.1] m", getattr(self, f))
        for f in ("search_radius_m", "spiral_pitch_m"):
            check(0 < getattr(self, f) <= 0.1, name, f, "in (0, 0.1] m", getattr(self, f))
        check(0 < self.spiral_step_rad <= 2 * math.pi, name, "spiral_step_rad", "in (0, 2 pi]",
              self.spiral_step_rad)
        for f in ("stall_steps", "num_targets", "steps_per_target"):
            check(0 < getattr(self, f) <= 100_000, name, f, "in [1, 100000]", getattr(self, f))


class _ScriptedBase(CheckpointMixin):
    """No learning: observe / update / pretrain / adapt do nothing; save writes only JSON."""

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: Any,
        *,
        seed: int = 0,
    ):
        if getattr(self, "holds_start_xy", False) and "tcp_pose" not in observation_space.spaces:
            # It made the run folder, then stopped on "KeyError: 'tcp_pose'" (agents21)
            raise ValueError(f"{self.name} steers by the observation entry 'tcp_pose'; the "
                             f"space has {list(observation_space.spaces)} (use obs_mode='state' "
                             "or 'state+pixels')")
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.action_dim = int(action_space.shape[0])

    def _action(self, xyz: np.ndarray) -> np.ndarray:
        """Translation command -> full action (rotations 0), clipped to the action space."""
        action = np.zeros(self.action_dim)
        action[:3] = xyz
        return np.clip(action, self.action_space.low, self.action_space.high).astype(
            self.action_space.dtype
        )

    learns = False  # demos given to the runner are ignored, with a warning

    def reset(self, seed: int | None = None) -> None:
        """Nothing per episode by default."""

    def observe(self, transition: Transition) -> None:
        """Scripted baselines do not learn."""

    def update(self) -> dict[str, float]:
        """Scripted baselines do not learn."""
        return {}

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Scripted baselines do not learn."""
        return {}

    def adapt(self, context: Dataset) -> None:
        """Scripted baselines do no task inference."""


@register("p_controller", PControllerConfig, needs_base_policy=True)
class PControllerAgent(_ScriptedBase):
    """The task's hand-designed controller as an agent (deterministic either way)."""

    acts_through_base_policy = True  # as `agents.residual.ResidualMixin`

    name = "p_controller"

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: PControllerConfig,
        *,
        seed: int = 0,
        base_policy: BasePolicy,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        if not callable(base_policy):
            raise ValueError(f"base_policy must be a callable obs -> action, got {base_policy!r}")
        self.base_policy: BasePolicy = base_policy

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """pi_H(obs), clipped to the action space."""
        return np.clip(self.base_policy(obs), self.action_space.low,
                       self.action_space.high).astype(self.action_space.dtype)


@register("straight_down", SearchConfig)
class StraightDownAgent(_ScriptedBase):
    """Push along the insertion axis, holding the start x, y."""

    name = "straight_down"
    config: SearchConfig
    #: Reads tcp_pose as measured from the episode start: the runner refuses obs_frame="task".
    holds_start_xy = True

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """Hold x, y = 0 (the start) with the P gain; press down."""
        xy = np.asarray(obs["tcp_pose"][:2], dtype=np.float64)
        return self._action(np.r_[-self.config.kp_xy * xy,
                                  self.config.down_sign * self.config.push_action])


class _StallSearch(_ScriptedBase):
    """Straight down until stalled, then follow ``_target_xy(k)`` around the stall point."""

    config: SearchConfig
    holds_start_xy = True  # as StraightDownAgent's

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: SearchConfig,
        *,
        seed: int = 0,
    ):
        super().__init__(observation_space, action_space, config, seed=seed)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """New episode: back to the straight-down phase; ``seed`` seeds the search pattern."""
        self.episode_rng = np.random.default_rng(
            self.rng.integers(2**63) if seed is None else seed
        )
        self._prev_z: float | None = None
        self._stalled_for = 0
        self._centre: np.ndarray | None = None  # stall point x, y [m]
        self._stall_z = 0.0  # z of the stall point [m]
        self._hole_xy: np.ndarray | None = None  # where the plug dropped in, once it has
        self._search_step = 0
        self._start_search()

    def _start_search(self) -> None:
        """Per-episode search state (random targets); called at reset."""

    def episode_state_dict(self) -> dict[str, Any]:
        """The episode's progress through the script (phase, stall point, search step) as
        JSON-able values [m]; the runner checkpoints it, since replaying an interrupted episode
        steps the env but not the agent."""
        def vec(value: np.ndarray | None) -> list[float] | None:
            return None if value is None else [float(v) for v in value]

        return {"prev_z": self._prev_z, "stalled_for": self._stalled_for,
                "centre": vec(self._centre), "stall_z": self._stall_z,
                "hole_xy": vec(self._hole_xy), "search_step": self._search_step,
                "episode_rng": self.episode_rng.bit_generator.state}

    def load_episode_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode ``episode_state_dict`` described (after ``reset`` with its
        seed)."""
        def vec(value: list[float] | None) -> np.ndarray | None:
            return None if value is None else np.asarray(value, dtype=np.float64)

        self._prev_z = state["prev_z"]
        self._stalled_for = int(state["stalled_for"])
        self._centre, self._hole_xy = vec(state["centre"]), vec(state["hole_xy"])
        self._stall_z = float(state["stall_z"])
        self._search_step = int(state["search_step"])
        self.episode_rng.bit_generator.state = state["episode_rng"]

    def _target_xy(self, k: int) -> np.ndarray:
        """Lateral offset [m] from the stall point at search step ``k``."""
        raise NotImplementedError

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """Straight down; on a stall, search at light contact; once the plug drops, push in."""
        cfg = self.config
        pos = np.asarray(obs["tcp_pose"][:3], dtype=np.float64)
        if self._centre is None:
            progress = math.inf if self._prev_z is None else cfg.down_sign * (pos[2] - self._prev_z)
            self._stalled_for = self._stalled_for + 1 if progress < cfg.stall_distance_m else 0
            self._prev_z = pos[2]
            if self._stalled_for >= cfg.stall_steps:
                self._centre, self._stall_z = pos[:2].copy(), pos[2]
        elif (self._hole_xy is None
              and cfg.down_sign * (pos[2] - self._stall_z) > cfg.drop_distance_m):
            self._hole_xy = pos[:2].copy()
        if self._centre is None:
            target, push = np.zeros(2), cfg.push_action
        elif self._hole_xy is not None:
            target, push = self._hole_xy, cfg.push_action
        else:
            target = self._centre + self._target_xy(self._search_step)
            push = self._search_push(obs)
            self._search_step += 1
        return self._action(np.r_[cfg.kp_xy * (target - pos[:2]), cfg.down_sign * push])

    def _search_push(self, obs: Observation) -> float:
        """Insertion command holding ``search_force_n`` of contact force (wrist F/T feedback).

        Pressing at a constant command would let the impedance reference run ahead into the
        board; the contact force then pins the plug by friction and it cannot slide into the
        hole. Without a ``wrench`` observation it presses with ``push_action``.
        """
        if "wrench" not in obs:
            return self.config.push_action
        contact_n = -self.config.down_sign * float(obs["wrench"][2])  # the board pushes back
        error_n = self.config.search_force_n - contact_n
        return float(np.clip(self.config.force_gain * error_n, -1.0, 1.0))


@register("random_search", SearchConfig)
class RandomSearchAgent(_StallSearch):
    """Visit ``num_targets`` uniform random points in a disc around the stall point."""

    name = "random_search"

    def _start_search(self) -> None:
        radius = self.config.search_radius_m * np.sqrt(
            self.episode_rng.uniform(size=self.config.num_targets)
        )
        angle = self.episode_rng.uniform(0, 2 * np.pi, size=self.config.num_targets)
        self._targets = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)

    def _target_xy(self, k: int) -> np.ndarray:
        index = min(k // self.config.steps_per_target, self.config.num_targets - 1)
        return self._targets[index]


@register("spiral_search", SearchConfig)
class SpiralSearchAgent(_StallSearch):
    """Archimedean spiral r = pitch * theta / 2pi around the stall point, capped at the radius."""

    name = "spiral_search"

    def _target_xy(self, k: int) -> np.ndarray:
        theta = k * self.config.spiral_step_rad
        radius = min(self.config.spiral_pitch_m * theta / (2 * np.pi),
                     self.config.search_radius_m)
        return radius * np.array([np.cos(theta), np.sin(theta)])
