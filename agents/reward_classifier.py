"""A binary success classifier on camera images (+ optional proprioception): the learned reward
of SERL (paper 002, section IV-B) and HIL-SERL (paper 003, section 3.3).

``SuccessClassifier`` maps an observation (uint8 camera images, optionally vector entries such as
``tcp_pose``) to the logit of "the task is done". ``train_classifier`` fits it on frames labelled
by rollouts (``{"obs": {...}, "label": bool}``, one row per frame) with balanced batches (half
positive, half negative frames in every batch), DrQ random-shift augmentation and binary cross
entropy with optional label smoothing. ``save_classifier`` / ``load_classifier`` write a
directory of JSON + safetensors (no pickle).

``ClassifierMeta`` carries what a user of the classifier must know: the observation keys it reads,
the env settings its frames came from (image size, cameras), the decision ``threshold`` on the
probability and the optional proprioceptive sanity check (HIL-SERL's configs also require the TCP
to be near the goal height): a frame only counts as success if ``tcp_pose[2]`` (the insertion
axis in the start frame, metres) is at least ``min_insertion_z_m``, and, if ``goal_xy_box_m`` is
set, ``tcp_pose[0]`` and ``tcp_pose[1]`` lie in that box (the lateral half of the same check).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.checkpoint import (
    load_module_state,
    read_json,
    read_tensors,
    save_tensors_then_json,
    space_from_json,
    space_to_json,
)
from agents.config import MAX_WIDTH, check
from agents.networks import ObsEncoder, ObsNormalizer, is_image_space, mlp, random_shift
from agents.registry import MAX_MODULES, MAX_PARAMETERS, size_budget

CLASSIFIER_JSON = "classifier.json"
CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_FORMAT = "insertbench-reward-classifier/1"


@dataclass
class ClassifierMeta:
    """How the classifier was built and how to use it (see the module docstring)."""

    keys: tuple[str, ...]  # observation entries it reads (images, optionally proprioception)
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # settings of its training frames
    threshold: float = 0.5  # success when sigmoid(logit) >= threshold
    min_insertion_z_m: float | None = None  # sanity check on tcp_pose[2]; None = off
    # lateral sanity check: (x_lo, x_hi, y_lo, y_hi) for tcp_pose[0], tcp_pose[1] [m]; None = off
    goal_xy_box_m: tuple[float, float, float, float] | None = None
    hidden: tuple[int, ...] = (256,)  # MLP widths after the encoder
    image_feature_dim: int = 64  # CNN output per camera
    # camera images are averaged over image_pool x image_pool pixel blocks before the CNN (2: a
    # 64x64 frame is seen at 32x32, as a pixel policy's 64x64 cameras by VICE's 32 px classifier);
    # 1 = as rendered
    image_pool: int = 1

    def __post_init__(self) -> None:
        # Read back from classifier.json, which a hand may edit: a threshold of 5 or NaN turned
        # the learned reward off without a word, inf turned the depth check off.
        if (isinstance(self.threshold, bool) or not isinstance(self.threshold, Real)
                or not 0.0 < self.threshold < 1.0):
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if self.min_insertion_z_m is not None:
            _metre("min_insertion_z_m", self.min_insertion_z_m)
        if self.goal_xy_box_m is not None:
            box = tuple(_metre("goal_xy_box_m", v) for v in self.goal_xy_box_m)
            if len(box) != 4 or box[0] > box[1] or box[2] > box[3]:
                raise ValueError(f"goal_xy_box_m must be (x_lo, x_hi, y_lo, y_hi) [m], got "
                                 f"{self.goal_xy_box_m!r}")
        if not self.keys or not all(isinstance(k, str) for k in self.keys):
            raise ValueError(f"keys must name observation entries, got {self.keys!r}")
        for name, values in (("hidden", self.hidden), ("image_feature_dim",
                             (self.image_feature_dim,)), ("image_pool", (self.image_pool,))):
            for v in values:  # agents' width limit: a 65,536-wide layer asked for 17 GB
                check(not isinstance(v, bool) and isinstance(v, Integral) and 1 <= v <= MAX_WIDTH,
                      "ClassifierMeta", name, f"an integer in [1, {MAX_WIDTH:,}]", v)


def _metre(name: str, value: Any) -> float:
    """A classifier.json coordinate [m]: finite and within 1 m of the task frame's origin."""
    check(not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
          and -1.0 <= value <= 1.0, "ClassifierMeta", name, "a finite number in [-1, 1] m", value)
    return float(value)


class SuccessClassifier(nn.Module):
    """Observation -> success logit: per-camera CNNs (+ normalised vectors) -> MLP -> 1."""

    def __init__(self, observation_space: gym.spaces.Dict, meta: ClassifierMeta):
        super().__init__()
        self.observation_space = observation_space
        self.meta = meta
        self.encoder = ObsEncoder(pooled_space(observation_space, meta.keys, meta.image_pool),
                                  meta.keys, meta.image_feature_dim)
        self.obs_norm = ObsNormalizer(gym.spaces.Dict(
            {k: observation_space[k] for k in meta.keys}))
        self.head = mlp(self.encoder.out_dim, meta.hidden, 1)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Batch of observations -> (B,) logits."""
        obs = self.obs_norm(self.pool_images({k: obs[k] for k in self.meta.keys}))
        return self.head(self.encoder(obs)).squeeze(-1)

    def pool_images(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``obs`` with each camera image (B, H, W, C), pixel values 0..255, averaged over
        ``meta.image_pool`` square blocks: float (B, H / pool, W / pool, C); other entries and
        ``image_pool`` 1 pass through unchanged."""
        pool = self.meta.image_pool
        if pool == 1:
            return dict(obs)
        return {k: (nn.functional.avg_pool2d(v.permute(0, 3, 1, 2).float(), pool)
                    .permute(0, 2, 3, 1).contiguous()
                    if k in self.encoder.image_keys else v) for k, v in obs.items()}

    @torch.no_grad()
    def probability(self, obs: Mapping[str, np.ndarray]) -> float:
        """P(success) for one unbatched observation."""
        batch = {k: torch.as_tensor(np.asarray(obs[k])).unsqueeze(0) for k in self.meta.keys}
        return float(torch.sigmoid(self(batch))[0])

    def is_success(self, obs: Mapping[str, np.ndarray]) -> tuple[bool, float]:
        """(decision, probability): threshold, then the proprioceptive sanity check if set."""
        p = self.probability(obs)
        success = p >= self.meta.threshold
        if success and "tcp_pose" in obs:
            success = bool(passes_sanity_check(self.meta, np.asarray(obs["tcp_pose"])[None])[0])
        return success, p


def pooled_space(observation_space: gym.spaces.Dict, keys: Sequence[str],
                 pool: int) -> gym.spaces.Dict:
    """The entries ``keys`` of ``observation_space``, camera images (H, W, C) as
    (H / pool, W / pool, C): what the classifier's CNNs see. ValueError unless ``pool`` >= 1
    divides every image's height and width."""
    if not isinstance(pool, int) or isinstance(pool, bool) or pool < 1:
        raise ValueError(f"image_pool must be an integer >= 1, got {pool!r}")
    spaces = {}
    for k in keys:
        space = observation_space[k]
        if is_image_space(space) and pool > 1:
            height, width, channels = space.shape
            if height % pool or width % pool:
                raise ValueError(f"camera {k!r} is {height}x{width} pixels, which {pool}x{pool} "
                                 "blocks do not divide: choose an image size divisible by it")
            space = gym.spaces.Box(0, 255, (height // pool, width // pool, channels), np.uint8)
        spaces[k] = space
    return gym.spaces.Dict(spaces)


def passes_sanity_check(meta: ClassifierMeta, tcp_pose: np.ndarray) -> np.ndarray:
    """(B, 6) ``tcp_pose`` rows -> (B,) bool: the proprioceptive checks of ``meta`` that are set
    (depth ``min_insertion_z_m``, lateral ``goal_xy_box_m``; all True when neither is)."""
    ok = np.ones(len(tcp_pose), dtype=bool)
    if meta.min_insertion_z_m is not None:
        ok &= tcp_pose[:, 2] >= meta.min_insertion_z_m
    if meta.goal_xy_box_m is not None:
        x_lo, x_hi, y_lo, y_hi = meta.goal_xy_box_m
        ok &= ((tcp_pose[:, 0] >= x_lo) & (tcp_pose[:, 0] <= x_hi)
               & (tcp_pose[:, 1] >= y_lo) & (tcp_pose[:, 1] <= y_hi))
    return ok


def train_classifier(
    classifier: SuccessClassifier,
    frames: Mapping[str, Any],
    *,
    steps: int = 2_000,
    batch_size: int = 64,
    lr: float = 3e-4,
    augment_pad: int = 4,
    label_smoothing: float = 0.0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """Fit on ``frames`` ({"obs": {key: (N, ...)}, "label": (N,) bool}) with balanced batches.

    Every batch holds ``batch_size / 2`` positive and as many negative frames (sampled with
    replacement), images randomly shifted by up to ``augment_pad`` pixels; targets are smoothed
    towards 0.5 by ``label_smoothing``. Returns the final loss and batch accuracy. ``progress``:
    a progress bar over the steps.
    """
    from tqdm import tqdm

    labels = np.asarray(frames["label"], dtype=bool)
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError(f"need both successful and unsuccessful frames to train a classifier, "
                         f"got {len(positives)} positive and {len(negatives)} negative")
    rng = np.random.default_rng(seed)
    obs_all = {k: np.asarray(frames["obs"][k]) for k in classifier.meta.keys}
    classifier.obs_norm.update(obs_all, batched=True)
    image_keys = classifier.encoder.image_keys  # in order: a set's order changes with the
    # process's hash seed, and with it which image took which random shift
    opt = torch.optim.Adam([p for n, p in classifier.named_parameters()
                            if not n.startswith("obs_norm")], lr=lr)
    half = batch_size // 2
    target = torch.cat([torch.ones(half), torch.zeros(half)])
    target = target * (1 - label_smoothing) + 0.5 * label_smoothing
    metrics: dict[str, float] = {}
    for _ in tqdm(range(steps), desc="training the classifier", disable=not progress):
        idx = np.concatenate([rng.choice(positives, half), rng.choice(negatives, half)])
        batch = {k: torch.as_tensor(v[idx]) for k, v in obs_all.items()}
        for k in image_keys:
            batch[k] = random_shift(batch[k], augment_pad)
        logits = classifier(batch)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        accuracy = ((logits > 0).float() == (target > 0.5).float()).float().mean()
        metrics = {"loss": loss.item(), "batch_accuracy": accuracy.item()}
    return metrics


def error_rates(classifier: SuccessClassifier, frames: Mapping[str, Any]) -> dict[str, float]:
    """False-positive and false-negative rates of the full decision (threshold + sanity check)
    against the ground-truth labels of ``frames``; a rate without frames of its class is NaN
    (it read 0.0: no error where none could be made)."""
    labels = np.asarray(frames["label"], dtype=bool)
    decisions = np.array([
        classifier.is_success({k: frames["obs"][k][i] for k in frames["obs"]})[0]
        for i in range(len(labels))
    ])
    negatives, positives = int((~labels).sum()), int(labels.sum())
    return {
        "frames": float(len(labels)),
        "positives": float(positives),
        "false_positive_rate": float((decisions & ~labels).sum() / negatives) if negatives
        else float("nan"),
        "false_negative_rate": float((~decisions & labels).sum() / positives) if positives
        else float("nan"),
        "accuracy": float((decisions == labels).mean()),
    }


def save_classifier(classifier: SuccessClassifier, path: str | Path) -> None:
    """Write ``classifier.json`` and ``classifier.safetensors`` into directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_tensors_then_json(
        path, CLASSIFIER_WEIGHTS,
        {k: v.contiguous() for k, v in classifier.state_dict().items()}, CLASSIFIER_JSON,
        {"format": CLASSIFIER_FORMAT, "meta": asdict(classifier.meta),
         "observation_space": space_to_json(classifier.observation_space)})


def load_classifier(path: str | Path) -> SuccessClassifier:
    """Rebuild a classifier written by ``save_classifier``."""
    path = Path(path)
    meta_file = path / CLASSIFIER_JSON
    if not meta_file.is_file():
        raise FileNotFoundError(f"no reward classifier in {path} (expected {CLASSIFIER_JSON})")
    data = read_json(meta_file, "classifier")
    found = data.get("format") if isinstance(data, dict) else None
    if found != CLASSIFIER_FORMAT:
        raise ValueError(f"{meta_file} has format {found!r}, expected {CLASSIFIER_FORMAT!r}")
    try:
        raw = data["meta"]
        box = raw.get("goal_xy_box_m")
        meta = ClassifierMeta(**(raw | {"keys": tuple(raw["keys"]),
                                        "hidden": tuple(raw["hidden"]),
                                        "goal_xy_box_m": tuple(box) if box is not None else None}))
        with size_budget(MAX_PARAMETERS, MAX_MODULES, f"{meta_file}'s classifier"):
            classifier = SuccessClassifier(space_from_json(data["observation_space"]), meta)
    except (KeyError, TypeError, ValueError) as err:  # keys ['nope'] were "KeyError: 'nope'"
        raise ValueError(f"{meta_file} does not describe a classifier (a damaged or edited "
                         f"file?): {type(err).__name__}: {err}") from None
    weights = read_tensors(path / CLASSIFIER_WEIGHTS, "classifier")
    # Other widths in classifier.json than in the weights, NaN, other dtypes: refused by name.
    load_module_state(classifier, weights, f"{path / CLASSIFIER_WEIGHTS} (for {meta_file})")
    return classifier.eval()


def select_space(space: gym.spaces.Dict, keys: Sequence[str]) -> gym.spaces.Dict:
    """The sub-space of ``space`` with ``keys``; ValueError naming what is missing."""
    missing = [k for k in keys if k not in space.spaces]
    if missing:
        raise ValueError(f"observation lacks {missing}; it has {list(space.spaces)}")
    return gym.spaces.Dict({k: space[k] for k in keys})
