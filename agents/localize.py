"""Localize: a learned socket localizer followed by a hand-designed controller (paper 001).

Paper 001 (Nair et al., "Learning on the Job", section VI-A), baseline **Localize**: "we train a
model (on the same offline data) to predict the socket position. The controller regresses onto
the state positions in the same offline data at each step and executes a hand-engineered policy
to reach that goal location." In the 10-20 mm setting the straight-down, random and spiral
searches "first execute the localization model and move to that goal position, then run the
corresponding strategy".

- ``pretrain(dataset)`` regresses the socket position relative to the TCP,
  ``socket_offset_m`` (seated TCP minus current TCP in the episode-start frame [m]; labelled on
  the successful training episodes by ``benchmark.recipes.socket_offsets``), from the
  ``image_key`` camera image, by mean squared error with random-shift augmentation.
- ``act`` re-estimates the socket at every step from the current image. With ``search="none"``
  it runs paper 000's P-controller (eq. 5, gains ``kp``) toward the estimate. Otherwise it first
  moves sideways to the estimate (at most ``max_align_steps`` steps, until within
  ``align_tolerance_m``), then hands over to the scripted search (``agents.scripted``) with its
  start frame moved to the estimate.

Reads ``tcp_pose`` and one image; commands translations (rotations 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import Dataset, Observation, Transition
from agents.buffer import (
    check_column_lengths,
    check_has_rows,
    check_observation_entry,
    check_row_shapes,
)
from agents.checkpoint import CheckpointMixin
from agents.config import check
from agents.networks import ImageEncoder, mlp, random_shift
from agents.registry import register
from agents.scripted import (
    RandomSearchAgent,
    SearchConfig,
    SpiralSearchAgent,
    StraightDownAgent,
)

_SEARCHES = {"straight_down": StraightDownAgent, "random_search": RandomSearchAgent,
             "spiral_search": SpiralSearchAgent}
#: The largest socket offset a label may give [m]: the tasks start at most ~0.2 m from the
#: socket; a label of 1e9 trained a loss of 1e21 without a word.
MAX_SOCKET_OFFSET_M = 1.0


def socket_offset_labels(dataset: Dataset) -> np.ndarray:
    """``dataset``'s ``socket_offset_m`` column as (N, 3) float64 [m]: a row of NaN is
    unlabelled; ValueError for another shape, an inf, an offset beyond
    ``MAX_SOCKET_OFFSET_M`` or no labelled row at all."""
    offsets = np.asarray(dataset["socket_offset_m"], dtype=np.float64)
    if offsets.ndim != 2 or offsets.shape[1] != 3:
        raise ValueError(f"socket_offset_m must hold one (x, y, z) offset [m] a row, shape "
                         f"(N, 3); got {offsets.shape}")
    labelled = np.isfinite(offsets).all(axis=1)
    wrong = (np.isinf(offsets).any(axis=1) | (labelled & (np.abs(offsets) > MAX_SOCKET_OFFSET_M)
                                               .any(axis=1)))
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ValueError(f"socket_offset_m at row {row} ({int(wrong.sum())} rows) is "
                         f"{offsets[row].tolist()}: a label is finite and within "
                         f"{MAX_SOCKET_OFFSET_M:g} m, or NaN (unlabelled); refused")
    if not labelled.any():
        raise ValueError("no labelled rows (socket_offset_m is NaN everywhere)")
    return offsets


@dataclass
class LocalizeConfig:
    """Localizer and controller settings (ours unless a comment cites a source)."""

    image_key: str = "wrist"  # camera the localizer reads
    hidden: tuple[int, ...] = (256, 256)  # regressor MLP widths
    image_feature_dim: int = 50  # CNN output size
    lr: float = 3e-4  # Adam learning rate
    batch_size: int = 64  # labelled rows per gradient step
    pretrain_steps: int = 2_000  # regression steps in pretrain()
    augment_pad: int = 4  # random-shift padding [pixels] (DrQ)
    kp: tuple[float, ...] = (1.0, 1.0, 0.3)  # P gains on x, y, z (paper 000, eq. 5)
    action_scale_m: float = 0.005  # the env's translation per unit action [m]
    search: Literal["none", "straight_down", "random_search", "spiral_search"] = "none"
    align_tolerance_m: float = 0.001  # lateral error at which the search takes over [m]
    max_align_steps: int = 6  # steps moving to the estimate before the search takes over
    device: str = "cpu"  # torch device

    def validate(self) -> None:
        """Range checks; raises ValueError naming the field."""
        name = type(self).__name__
        check(len(self.kp) == 3 and all(k > 0 for k in self.kp), name, "kp",
              "three positive gains", self.kp)
        check(len(self.hidden) > 0 and all(w > 0 for w in self.hidden), name, "hidden",
              "a non-empty tuple of positive widths", self.hidden)
        for f in ("lr", "action_scale_m", "align_tolerance_m"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("batch_size", "image_feature_dim"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        for f in ("pretrain_steps", "augment_pad", "max_align_steps"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))


class SocketRegressor(nn.Module):
    """Image -> socket position relative to the TCP [cm] (centimetres keep targets near 1)."""

    def __init__(self, shape: tuple[int, ...], feature_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.encoder = ImageEncoder(shape, feature_dim)
        self.net = mlp(feature_dim, hidden, 3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder(image))


@register("localize", LocalizeConfig, needs_labels=True)
class LocalizeAgent(CheckpointMixin):
    """Learned socket localization + P-controller (+ a scripted search)."""

    name = "localize"
    reads_rewards = False  # it regresses socket_offset_m: demos of any reward function serve

    def __init__(self, observation_space: gym.spaces.Dict, action_space: gym.spaces.Box,
                 config: LocalizeConfig, *, seed: int = 0):
        for key in ("tcp_pose", config.image_key):
            if key not in observation_space.spaces:
                raise ValueError(f"localize needs the observation entry {key!r}; the space has "
                                 f"{list(observation_space.spaces)} (use obs_mode='state+pixels')")
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.device = torch.device(config.device)
        self.regressor = SocketRegressor(observation_space[config.image_key].shape,
                                         config.image_feature_dim, config.hidden).to(self.device)
        self.opt = torch.optim.Adam(self.regressor.parameters(), lr=config.lr)
        self.search = (None if config.search == "none" else
                       _SEARCHES[config.search](observation_space, action_space, SearchConfig(),
                                                seed=seed))
        self.gradient_steps = 0
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """New episode: align first (when searching)."""
        self._align_steps = 0
        self._anchor_xy: np.ndarray | None = None  # estimate the search is centred on [m]
        if self.search is not None:
            self.search.reset(seed=seed)

    def episode_state_dict(self) -> dict[str, Any]:
        """Alignment progress and the search's state, JSON-able (see ``agents.base``)."""
        return {"align_steps": self._align_steps,
                "anchor_xy": None if self._anchor_xy is None else [float(v) for v in
                                                                    self._anchor_xy],
                "search": None if self.search is None else self.search.episode_state_dict()}

    def load_episode_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episode ``episode_state_dict`` described (after ``reset``)."""
        self._align_steps = int(state["align_steps"])
        anchor = state["anchor_xy"]
        self._anchor_xy = None if anchor is None else np.asarray(anchor, dtype=np.float64)
        if self.search is not None:
            self.search.load_episode_state_dict(state["search"])

    def _entry(self, obs: Observation, key: str) -> np.ndarray:
        """``obs[key]`` checked against the space (a wrong image size was torch's "mat1 and
        mat2 shapes cannot be multiplied"; a NaN pose a NaN action)."""
        if not isinstance(obs, Mapping):
            raise ValueError(f"observation must be a dict of arrays, got {type(obs).__name__}")
        space = self.observation_space[key]
        return check_observation_entry("observation", obs, key, space.shape, space.dtype)

    @torch.no_grad()
    def socket_offset(self, obs: Observation) -> np.ndarray:
        """Estimated socket position minus TCP position, episode-start frame [m] (3,)."""
        image = torch.as_tensor(self._entry(obs, self.config.image_key), device=self.device)
        return self.regressor(image.unsqueeze(0))[0].double().cpu().numpy() / 100.0

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """P-control to the estimate, or align then search around it."""
        pos = np.asarray(self._entry(obs, "tcp_pose")[:3], dtype=np.float64)
        if self._anchor_xy is not None and self.search is not None:
            shifted = dict(obs)
            shifted["tcp_pose"] = np.asarray(obs["tcp_pose"], dtype=np.float64).copy()
            shifted["tcp_pose"][:2] -= self._anchor_xy
            return self.search.act(shifted, deterministic=deterministic)
        goal = pos + self.socket_offset(obs)
        kp = np.asarray(self.config.kp)
        if self.search is None:
            return self._action(kp * (goal - pos))
        error_xy = goal[:2] - pos[:2]
        self._align_steps += 1
        if (np.linalg.norm(error_xy) < self.config.align_tolerance_m
                or self._align_steps >= self.config.max_align_steps):
            self._anchor_xy = goal[:2]
        return self._action(np.r_[kp[:2] * error_xy, 0.0])

    def _action(self, delta_m: np.ndarray) -> np.ndarray:
        action = np.zeros(self.action_space.shape)
        action[:3] = delta_m / self.config.action_scale_m
        return np.clip(action, self.action_space.low, self.action_space.high).astype(
            self.action_space.dtype)

    def observe(self, transition: Transition) -> None:
        """Localize does not learn online."""

    def update(self) -> dict[str, float]:
        """Localize does not learn online."""
        return {}

    def adapt(self, context: Dataset) -> None:
        """No task inference."""

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Regress ``socket_offset_m`` from the image on the labelled (finite) rows."""
        if "socket_offset_m" not in dataset:
            raise ValueError("localize trains on a socket_offset_m column (socket minus TCP "
                             "position); `insertbench dataset recipe paper001` data has one")
        key = self.config.image_key
        if key not in dataset.get("obs", {}):  # was KeyError: 'wrist'
            raise ValueError(f"dataset lacks observation keys {[key]}; it has "
                             f"{sorted(dataset.get('obs', {}))} (localize reads camera images)")
        check_has_rows(dataset)
        check_column_lengths(dataset)  # a short label column dropped rows without a word
        check_row_shapes(dataset, {key: self.observation_space[key].shape},
                         self.action_space.shape, "dataset rows")
        images = np.asarray(dataset["obs"][key])
        if images.dtype != np.uint8:  # float images in [0, 1] trained on as near-black
            raise ValueError(f"dataset: obs[{key!r}] holds {images.dtype} images, where the "
                             "env's are uint8 (0-255); convert them")
        offsets = socket_offset_labels(dataset)
        labelled = np.flatnonzero(np.isfinite(offsets).all(axis=1))
        metrics: dict[str, float] = {"pretrain/labelled_rows": float(len(labelled))}
        for _ in range(self.config.pretrain_steps):
            rows = self.rng.choice(labelled, self.config.batch_size)
            image = random_shift(torch.as_tensor(images[rows], device=self.device),
                                 self.config.augment_pad)
            target = torch.as_tensor(offsets[rows] * 100.0, dtype=torch.float32,
                                     device=self.device)
            loss = ((self.regressor(image) - target) ** 2).sum(-1).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.gradient_steps += 1
            metrics["loss/localize_cm2"] = loss.item()
        return metrics

    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"regressor": self.regressor}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"regressor": self.opt}

    def _extra_state(self) -> dict[str, Any]:
        return {"gradient_steps": self.gradient_steps}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.gradient_steps = int(state.get("gradient_steps", 0))
