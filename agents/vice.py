"""VICE: RLPD rewarded by a success classifier that keeps learning from the policy's own states.

Paper: J. Fu, A. Singh, D. Ghosh, L. Yang, S. Levine, "Variational Inverse Control with Events",
NeurIPS 2018, as SERL (paper 002, section IV-B) uses it: a static success classifier can be
fooled by states the policy finds and its training frames never showed (on USB-v1 all 153
rewards of an RLPD run with a static classifier were false positives, median 47 mm off the
socket axis). VICE adds every state the policy visits to the classifier's training set as a
negative and keeps updating it during RL, like the discriminator of a GAN.

The learner is RLPD (``agents/rlpd.py``) unchanged; what this file adds:

- **Positives**: goal frames, the ``next_obs`` of the demonstration rows whose reward is the
  demonstrator's success label (``reward >= 0.5``: a human ends a demonstration when the plug is
  in; ``benchmark.learned_reward.VICERewardWrapper`` labels demonstrations so before the runner
  binds the classifier; with its ``goal_hold_steps`` a demonstration goes on past its first
  success, so the goal frames also show the plug pushed home). **Negatives**: ``next_obs`` of
  rows of the online replay buffer (the policy's own states, its successes included, as in
  SERL), drawn uniformly, or with ``vice_recent_negative_share`` that share of each step's
  negatives from the newest ``vice_recent_negative_rows`` online rows (off by default); during
  ``pretrain`` the demonstrations' non-goal frames. With ``vice_failure_episodes`` the runner
  also records that many failure episodes (``benchmark.learned_reward.collect_failure_demos``:
  the hand controller aimed beside the socket, as HIL-SERL's operators record negatives and
  "potential false positive examples" for its classifiers, paper 003 section 4.1); their
  unsuccessful frames join every draw of negatives, during ``pretrain`` and online, uniformly
  with the other rows (off by default: SERL's VICE needs no recorded negatives).
- **Classifier**: ``agents.reward_classifier.SuccessClassifier`` on the camera images (CNN per
  camera, optionally with ``tcp_pose``), its own encoder (not the critic's). Every
  ``vice_update_every`` env steps one Adam step on a balanced batch, DrQ-shifted images, with
  SERL's regularisers (serl_launcher ``VICEAgent.update_vice``): **label smoothing** (targets
  0.9 / 0.1), **mixup** of the features and labels (lambda ~ Beta(1, 1)), and a **gradient
  penalty** ``10 (|d logit / d feature| - 1)^2`` at random interpolations between positive and
  negative features. SERL's encoder is a frozen pretrained ResNet and only the head learns; here
  the CNN learns from scratch, so the mixup loss also trains the encoder.
  ``vice_image_size`` averages the camera images down to that height first (64 -> 32 in 2x2
  blocks): a pixel policy reads the 64x64 cameras (``obs_keys`` with them; ``check_serl
  --pixels``) while the classifier sees 32x32 ones, as in the state runs' ``image_size=32``.
- **Reward**: ``sigmoid(logit) >= vice_threshold`` (and, if ``vice_sanity_margin_mm`` is set,
  ``tcp_pose[2]`` no lower than the lowest goal frame's minus the margin; if
  ``vice_sanity_lateral_mm`` is set, ``tcp_pose`` x and y within the goal frames' range plus that
  margin: on USB-v1 the depth check alone passes a plug lowered beside the socket), relabelled
  on every sampled batch's ``next_obs`` with the current classifier (SERL's ``update_high_utd``),
  demo rows included, and so is ``terminated``: success ends the episode, as in the env. (SERL
  keeps the env's ``dones``; here the first USB-v1 run kept the step-time ones, and rewards
  without a termination lifted the critic's mean Q above 1, the most one success can be worth.)
  The env (``reward="vice"``) ends an episode when this agent's classifier says success: the
  runner binds ``reward_classifier`` into it. The simulator's success never reaches the learner;
  it stays in ``info`` for evaluation.

A separate agent that composes RLPD, rather than an option of ``rlpd``: it needs an env that
observes cameras for the classifier while the policy reads ``obs_keys`` (default: the state
entries), and a runner that binds its classifier into the env, so a flag on ``rlpd`` would make
``rlpd`` depend on both; ``rlpd`` stays the plain ground-truth-reward learner, as HIL-SERL
(``agents/hil_serl.py``) composes it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.base import split_failure_demos
from agents.buffer import Batch, ReplayBuffer
from agents.config import check
from agents.networks import is_image_space, random_shift
from agents.registry import register
from agents.reward_classifier import ClassifierMeta, SuccessClassifier, passes_sanity_check
from agents.rlpd import RLPDAgent, RLPDConfig

# Source: [serl] github.com/rail-berkeley/serl, serl_launcher/agents/continuous/vice.py
# (VICEAgent.create_vice, update_vice, update_high_utd).


@dataclass
class VICEConfig(RLPDConfig):
    """RLPD's hyperparameters plus the classifier's (see the module docstring)."""

    vice_update_every: int = 5  # env steps between classifier steps (ours: the CPU budget)
    vice_batch_size: int = 128  # classifier rows per step, half goal frames, half policy states
    # (ours: the RL batch's online half)
    vice_lr: float = 3e-4  # [serl] vice_optimizer_kwargs learning_rate
    vice_label_smoothing: float = 0.2  # [serl] targets y (1 - 0.2) + 0.5 * 0.2
    vice_mixup_alpha: float = 1.0  # [serl] Beta(alpha, alpha) mixup weight
    vice_gp_weight: float = 10.0  # [serl] gradient penalty weight
    vice_threshold: float = 0.5  # [serl] reward = sigmoid(logit) >= 0.5
    vice_hidden: tuple[int, ...] = (256,)  # [serl] vice_network_kwargs hidden_dims
    vice_image_feature_dim: int = 64  # CNN output per camera (the static classifier's)
    vice_proprio: bool = False  # also feed tcp_pose ([serl] use_proprio=False)
    vice_sanity_margin_mm: float | None = None  # proprioceptive check: tcp_pose[2] >= lowest
    # goal frame's - margin [mm]; None = off (HIL-SERL's configs check the TCP height)
    vice_sanity_lateral_mm: float | None = None  # lateral check: tcp_pose x, y within the goal
    # frames' range +- this [mm]; None = off (SERL rewards PCB insertion by the TCP's position)
    vice_pretrain_steps: int = 200  # classifier steps on the demos (goal vs non-goal frames)
    # before RL starts (ours: a classifier at chance would reward the first episodes at random)
    vice_image_size: int | None = None  # height [pixels] of the classifier's camera images,
    # averaged down from the env's by a whole factor (64 -> 32: a pixel policy reads the 64x64
    # cameras, the classifier sees them at 32x32 as from state); None = the env's image size
    vice_recent_negative_share: float = 0.0  # share of each classifier step's negatives drawn
    # from the newest vice_recent_negative_rows online rows, the rest uniformly from the whole
    # online buffer; 0 = [serl]'s uniform draw (ours: a new off-socket state is otherwise drawn
    # about 64 / N times per classifier step with N online rows)
    vice_recent_negative_rows: int = 500  # the window of that share [online rows = env steps]
    vice_failure_episodes: int = 0  # recorded failure episodes, their frames negatives for good
    # (paper 003: operators record negatives and potential false positives; 0 = [serl]'s VICE)
    vice_failure_radius_mm: tuple[float, float] = (3.0, 40.0)  # how far beside the believed
    # goal those episodes aim (x, y; uniform distance in this range [mm], uniform direction)

    def validate(self) -> None:
        """RLPD's checks plus the classifier's."""
        super().validate()
        name = type(self).__name__
        for f in ("vice_update_every", "vice_lr", "vice_image_feature_dim"):
            check(getattr(self, f) > 0, name, f, "> 0", getattr(self, f))
        check(len(self.vice_hidden) > 0 and all(w > 0 for w in self.vice_hidden), name,
              "vice_hidden", "a non-empty tuple of positive widths", self.vice_hidden)
        check(self.vice_batch_size >= 2 and self.vice_batch_size % 2 == 0, name,
              "vice_batch_size", "an even number >= 2", self.vice_batch_size)
        check(0 <= self.vice_label_smoothing < 1, name, "vice_label_smoothing", "in [0, 1)",
              self.vice_label_smoothing)
        for f in ("vice_mixup_alpha", "vice_gp_weight", "vice_pretrain_steps"):
            check(getattr(self, f) >= 0, name, f, ">= 0", getattr(self, f))
        check(0 < self.vice_threshold < 1, name, "vice_threshold", "in (0, 1)",
              self.vice_threshold)
        check(self.vice_image_size is None or self.vice_image_size > 0, name,
              "vice_image_size", "> 0 or None", self.vice_image_size)
        for f in ("vice_sanity_margin_mm", "vice_sanity_lateral_mm"):
            check(getattr(self, f) is None or getattr(self, f) >= 0, name, f, ">= 0 or None",
                  getattr(self, f))
        check(0 <= self.vice_recent_negative_share <= 1, name, "vice_recent_negative_share",
              "in [0, 1]", self.vice_recent_negative_share)
        check(self.vice_recent_negative_rows > 0, name, "vice_recent_negative_rows", "> 0",
              self.vice_recent_negative_rows)
        check(self.vice_failure_episodes >= 0, name, "vice_failure_episodes", ">= 0",
              self.vice_failure_episodes)
        radius = self.vice_failure_radius_mm
        check(len(radius) == 2 and 0 <= radius[0] <= radius[1], name,
              "vice_failure_radius_mm", "(low, high) with 0 <= low <= high [mm]", radius)


def newest_rows(buffer: ReplayBuffer, n: int) -> np.ndarray:
    """Indices of the ``n`` newest rows of a ring buffer (fewer if it holds fewer), newest
    first; they wrap past the end of storage once the buffer has overwritten its oldest rows."""
    return (buffer.ptr - 1 - np.arange(min(n, len(buffer)))) % buffer.capacity


def draw_negatives(rng: np.random.Generator, rows: np.ndarray, n: int,
                   recent_rows: np.ndarray | None = None, recent_share: float = 0.0) -> np.ndarray:
    """``n`` row indices with replacement: ``round(recent_share * n)`` of them from
    ``recent_rows``, the rest uniformly from ``rows``. Without a recent share the draw is
    ``rng.choice(rows, n)``, the same numbers from the same generator state."""
    k = int(round(recent_share * n)) if recent_rows is not None and len(recent_rows) else 0
    if k == 0:
        return rng.choice(rows, n)
    recent = rng.choice(recent_rows, k)
    return recent if k == n else np.concatenate([recent, rng.choice(rows, n - k)])


def pooled_rows(sources: list[tuple[ReplayBuffer, np.ndarray]], key: str,
                positions: np.ndarray) -> np.ndarray:
    """``next_obs[key]`` at ``positions`` of the rows of ``sources`` laid end to end, in the
    order of ``positions`` (a position below ``len(rows)`` of the first pair is in its buffer,
    and so on)."""
    ends = np.cumsum([len(rows) for _, rows in sources])
    which = np.searchsorted(ends, positions, side="right")
    first = next(b for b, rows in sources if len(rows))
    out = np.empty((len(positions), *first.next_obs[key].shape[1:]), first.next_obs[key].dtype)
    for i, (buffer, rows) in enumerate(sources):
        mine = which == i
        if mine.any():
            out[mine] = buffer.next_obs[key][rows[positions[mine] - (ends[i] - len(rows))]]
    return out


def image_pool(spaces: dict[str, gym.spaces.Space], image_keys: list[str],
               image_size: int | None) -> int:
    """The averaging factor that takes the cameras' height to ``image_size`` pixels (1 for
    None); ValueError unless every camera has one height that ``image_size`` divides."""
    if image_size is None:
        return 1
    heights = sorted({spaces[k].shape[0] for k in image_keys})
    if len(heights) != 1 or heights[0] % image_size:
        raise ValueError(f"vice_image_size={image_size} must divide the cameras' height in "
                         f"pixels ({', '.join(map(str, heights))}; the env's image_size)")
    return heights[0] // image_size


@register("vice", VICEConfig, needs_demos=True)
class VICEAgent(RLPDAgent):
    """RLPD whose reward is a success classifier trained online against the policy's states."""

    name = "vice"
    config: VICEConfig

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        action_space: gym.spaces.Box,
        config: VICEConfig,
        *,
        seed: int = 0,
    ):
        spaces = observation_space.spaces
        image_keys = [k for k, s in spaces.items() if is_image_space(s)]
        if not image_keys:
            raise ValueError("vice learns its reward from camera images, but the observation "
                             f"has none ({list(spaces)}): train it with -e reward=vice")
        tcp_fields = [f for f in ("vice_proprio", "vice_sanity_margin_mm",
                                  "vice_sanity_lateral_mm")
                      if getattr(config, f) not in (None, False)]
        if tcp_fields and "tcp_pose" not in spaces:  # a KeyError at make_agent or pretrain
            raise ValueError(f"vice's {', '.join(tcp_fields)} need tcp_pose in the observation, "
                             f"which has {list(spaces)}: use obs_mode 'state+pixels' or leave "
                             "them unset")
        if not config.obs_keys:  # the policy reads the state entries, the classifier the images
            config = replace(config, obs_keys=tuple(k for k in spaces if k not in image_keys))
        super().__init__(observation_space, action_space, config, seed=seed)
        keys = image_keys + (["tcp_pose"] if config.vice_proprio else [])
        self.reward_classifier = SuccessClassifier(observation_space, ClassifierMeta(
            keys=tuple(keys), threshold=config.vice_threshold, hidden=config.vice_hidden,
            image_feature_dim=config.vice_image_feature_dim,
            image_pool=image_pool(spaces, image_keys, config.vice_image_size))).to(self.device)
        # Recorded failures (vice_failure_episodes); np.zeros pages stay unallocated until used.
        self.failure_buffer = ReplayBuffer(observation_space, self.action_dim,
                                           config.demo_buffer_size)
        self.classifier_opt = torch.optim.Adam(
            [p for n, p in self.reward_classifier.named_parameters()
             if not n.startswith("obs_norm")], lr=config.vice_lr)
        self.classifier_steps = 0

    # ------------------------------------------------------------------ data
    def goal_rows(self) -> np.ndarray:
        """Demo-buffer rows whose ``next_obs`` is a goal frame (the demonstrator's label)."""
        return np.flatnonzero(self.demo_buffer.reward[:len(self.demo_buffer)] >= 0.5)

    def failure_rows(self) -> np.ndarray:
        """Rows of the recorded failures whose frame the simulator did not call a success."""
        return np.flatnonzero(self.failure_buffer.reward[:len(self.failure_buffer)] < 0.5)

    def pretrain(self, dataset: Any) -> dict[str, float]:
        """RLPD's demo buffer and the recorded failures; then fit the classifier on goal vs
        non-goal demo frames and failure frames."""
        demos, failures = split_failure_demos(dataset)  # once: RLPD's own split is then a no-op
        metrics = super().pretrain(demos)
        if failures is not None:
            self.failure_buffer.add_dataset(failures)
        goals = self.goal_rows()
        others = np.setdiff1d(np.arange(len(self.demo_buffer)), goals)
        if len(goals) == 0 or len(others) == 0:
            raise ValueError(f"vice needs demonstrations that reach the goal and states that do "
                             f"not: got {len(goals)} goal and {len(others)} other frames")
        keys = self.reward_classifier.meta.keys
        self.reward_classifier.obs_norm.update(
            {k: self.demo_buffer.next_obs[k][:len(self.demo_buffer)] for k in keys},
            batched=True)
        margin = self.config.vice_sanity_margin_mm
        if margin is not None:
            lowest = float(self.demo_buffer.next_obs["tcp_pose"][goals, 2].min())
            self.reward_classifier.meta.min_insertion_z_m = lowest - margin / 1000.0
        lateral = self.config.vice_sanity_lateral_mm
        if lateral is not None:
            xy = self.demo_buffer.next_obs["tcp_pose"][goals, :2].astype(np.float64)
            lo, hi = xy.min(axis=0) - lateral / 1000.0, xy.max(axis=0) + lateral / 1000.0
            self.reward_classifier.meta.goal_xy_box_m = (float(lo[0]), float(hi[0]),
                                                         float(lo[1]), float(hi[1]))
        sources = [(self.demo_buffer, others), (self.failure_buffer, self.failure_rows())]
        for _ in range(self.config.vice_pretrain_steps):
            fit = self.update_classifier(sources)
        return metrics | {"pretrain/goal_frames": float(len(goals)),
                          "pretrain/failure_frames": float(len(self.failure_rows()))} | (
            {f"pretrain/{k}": v for k, v in fit.items()} if self.config.vice_pretrain_steps
            else {})

    # ------------------------------------------------------------------ reward
    @torch.no_grad()
    def classifier_reward(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batch of observations -> (B,) float32 rewards in {0, 1}: threshold + sanity check."""
        meta = self.reward_classifier.meta
        batch = {k: torch.as_tensor(obs[k], device=self.device) for k in meta.keys}
        success = torch.sigmoid(self.reward_classifier(batch)).cpu().numpy() >= meta.threshold
        if "tcp_pose" in obs:
            success &= passes_sanity_check(meta, np.asarray(obs["tcp_pose"]))
        return success.astype(np.float32)

    def sample(self) -> Batch:
        """RLPD's symmetric batch, reward and termination relabelled by the current classifier."""
        batch = super().sample()
        batch["reward"] = self.classifier_reward(batch["next_obs"])
        batch["terminated"] = batch["reward"] > 0.5
        return batch

    # ------------------------------------------------------------------ learning
    def update(self) -> dict[str, float]:
        """A classifier step every ``vice_update_every`` env steps, then RLPD's update."""
        metrics: dict[str, float] = {}
        cfg = self.config
        if len(self.buffer) > 0 and self.env_steps % cfg.vice_update_every == 0:
            recent = (newest_rows(self.buffer, cfg.vice_recent_negative_rows)
                      if cfg.vice_recent_negative_share > 0 else None)
            metrics |= self.update_classifier(
                [(self.buffer, np.arange(len(self.buffer))),
                 (self.failure_buffer, self.failure_rows())], recent_rows=recent)
        return metrics | super().update()

    def update_classifier(self, negatives: list[tuple[ReplayBuffer, np.ndarray]],
                          recent_rows: np.ndarray | None = None) -> dict[str, float]:
        """One step: goal frames (label 1) vs negatives (label 0) drawn uniformly from the
        ``(buffer, rows)`` pairs of ``negatives`` pooled, ``vice_recent_negative_share`` of them
        from ``recent_rows`` of the first pair's buffer if given."""
        self.check_demos_restored()  # its goal frames: "a cannot be empty" from numpy
        cfg = self.config
        half = cfg.vice_batch_size // 2
        goals = self.rng.choice(self.goal_rows(), half)
        drawn = draw_negatives(self.rng, np.arange(sum(len(rows) for _, rows in negatives)),
                               half, recent_rows, cfg.vice_recent_negative_share)
        clf = self.reward_classifier
        obs = {k: torch.as_tensor(np.concatenate([self.demo_buffer.next_obs[k][goals],
                                                  pooled_rows(negatives, k, drawn)]),
                                  device=self.device) for k in clf.meta.keys}
        obs = clf.pool_images(obs)  # shifted by augment_pad pixels of the classifier's images
        for k in clf.encoder.image_keys:
            obs[k] = random_shift(obs[k], cfg.augment_pad)
        labels = torch.cat([torch.ones(half), torch.zeros(half)]).to(self.device)
        labels = labels * (1 - cfg.vice_label_smoothing) + 0.5 * cfg.vice_label_smoothing
        features = clf.encoder(clf.obs_norm(obs))
        # Mixup (Zhang et al. 2018) of features and labels, as SERL does on encoded images.
        lam = float(self.rng.beta(cfg.vice_mixup_alpha, cfg.vice_mixup_alpha)
                    if cfg.vice_mixup_alpha > 0 else 1.0)
        perm = torch.as_tensor(self.rng.permutation(2 * half), device=self.device)
        mixed = lam * features + (1 - lam) * features[perm]
        logits = clf.head(mixed).squeeze(-1)
        bce = nn.functional.binary_cross_entropy_with_logits
        bce_loss = lam * bce(logits, labels) + (1 - lam) * bce(logits, labels[perm])
        # Gradient penalty (WGAN-GP, Gulrajani et al. 2017) between mixed positive and negative
        # halves: keeps the classifier smooth, so it cannot collapse onto pixel details.
        eps = torch.as_tensor(self.rng.uniform(size=(half, 1)), dtype=torch.float32,
                              device=self.device)
        between = (eps * mixed[:half] + (1 - eps) * mixed[half:]).detach().requires_grad_(True)
        grad, = torch.autograd.grad(clf.head(between).sum(), between, create_graph=True)
        grad_norm = torch.sqrt((grad ** 2 + 1e-6).sum(dim=1))
        loss = bce_loss + cfg.vice_gp_weight * ((grad_norm - 1) ** 2).mean()
        self.classifier_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.classifier_opt.step()
        self.classifier_steps += 1
        with torch.no_grad():
            p = torch.sigmoid(clf.head(features).squeeze(-1))
        return {"vice/loss": loss.item(), "vice/bce": bce_loss.item(),
                "vice/grad_norm": grad_norm.mean().item(),
                "vice/p_goal": p[:half].mean().item(), "vice/p_policy": p[half:].mean().item()}

    # ------------------------------------------------------------------ checkpoint
    def _checkpoint_modules(self) -> dict[str, nn.Module]:
        return super()._checkpoint_modules() | {"reward_classifier": self.reward_classifier}

    def _checkpoint_buffers(self) -> dict[str, ReplayBuffer]:
        return super()._checkpoint_buffers() | {"failure": self.failure_buffer}

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return super()._checkpoint_optimizers() | {"reward_classifier": self.classifier_opt}

    def _extra_state(self) -> dict[str, Any]:
        return super()._extra_state() | {
            "classifier_steps": self.classifier_steps,
            "min_insertion_z_m": self.reward_classifier.meta.min_insertion_z_m,
            "goal_xy_box_m": self.reward_classifier.meta.goal_xy_box_m}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.classifier_steps = int(state.get("classifier_steps", 0))
        self.reward_classifier.meta.min_insertion_z_m = state.get("min_insertion_z_m")
        box = state.get("goal_xy_box_m")
        self.reward_classifier.meta.goal_xy_box_m = tuple(box) if box is not None else None
