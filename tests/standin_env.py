"""A stand-in for the InsertBench tasks, for testing agents and the runner without MuJoCo.

A point "plug" moves by normalised delta-position commands above a board with one hole. It has
the InsertBench observation contract (Dict with ``tcp_pose``, ``tcp_vel``, ``wrench`` and optional
uint8 ``wrist`` / ``side`` images), the same kwargs (``action_mode``, ``obs_mode``, ``reward``,
``goal_noise_mm``, ``init_offset_mm``, ``image_size``), the same ``info`` keys, 10 Hz steps and a
50-step limit, and a P-controller toward the (noisy) believed goal as ``p_controller()``.
Importing this module registers ``InsertBenchStandIn/PegPoint-v0``; the runner can also make it
as ``"tests.standin_env:InsertBenchStandIn/PegPoint-v0"``.

As in InsertBench's TCP frame, +z points into the socket (the tool axis). It is a toy (no
contact dynamics): tests run on it and on the real tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "InsertBenchStandIn/PegPoint-v0"
STEP_M = 0.01  # translation per unit action per step [m]
DT_S = 0.1  # policy period [s]
SURFACE_Z_M = 0.04  # board surface along +z (the tool axis) from the start pose [m]
CLEARANCE_M = 0.001  # lateral tolerance of the hole [m]
SUCCESS_DEPTH_M = 0.008  # insertion depth counted as success [m]
CONTACT_STIFFNESS_N_PER_M = 2_000.0  # fake wrench when pushing on the board


class PegPointEnv(gym.Env):
    """Toy peg-in-hole with the InsertBench observation / info contract."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        action_mode: str = "xyz",
        obs_mode: str = "state",
        reward: str = "sparse",
        goal_noise_mm: float = 0.0,
        init_offset_mm: tuple[float, float] = (0.0, 5.0),
        image_size: int = 32,
    ):
        if action_mode not in ("xyz", "pose"):
            raise ValueError(f"action_mode must be 'xyz' or 'pose', got {action_mode!r}")
        if obs_mode not in ("state", "pixels", "state+pixels"):
            raise ValueError(f"obs_mode must be state, pixels or state+pixels, got {obs_mode!r}")
        if reward not in ("sparse", "dense"):
            raise ValueError(f"reward must be 'sparse' or 'dense', got {reward!r}")
        self.reward_mode = reward
        self.dt = DT_S  # seconds per policy step, read by the evaluator
        self.goal_noise_m = goal_noise_mm / 1000.0
        self.init_offset_m = (init_offset_mm[0] / 1000.0, init_offset_mm[1] / 1000.0)
        self.image_size = image_size
        n = 3 if action_mode == "xyz" else 6
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        spaces: dict[str, gym.spaces.Space] = {}
        if obs_mode in ("state", "state+pixels"):
            for key in ("tcp_pose", "tcp_vel", "wrench"):
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        if obs_mode in ("pixels", "state+pixels"):
            spaces["wrist"] = gym.spaces.Box(0, 255, (image_size, image_size, 1), np.uint8)
            spaces["side"] = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        lo, hi = self.init_offset_m
        radius = self.np_random.uniform(lo, hi)
        angle = self.np_random.uniform(0, 2 * np.pi)
        self.hole_xy = radius * np.array([np.cos(angle), np.sin(angle)])
        self.believed_goal = np.r_[
            self.hole_xy + self.np_random.uniform(-self.goal_noise_m, self.goal_noise_m, 2),
            SURFACE_Z_M + SUCCESS_DEPTH_M + 0.002,
        ]
        self.pose = np.zeros(6)
        self.vel = np.zeros(6)
        self.force = np.zeros(6)
        self.max_force_n = 0.0
        return self._obs(), self._info()

    def step(self, action: np.ndarray):
        a = np.clip(np.asarray(action, dtype=np.float64), -1, 1)
        target = self.pose[:3] + STEP_M * a[:3]
        in_hole = np.linalg.norm(self.pose[:2] - self.hole_xy) < CLEARANCE_M
        self.force = np.zeros(6)
        if self.pose[2] > SURFACE_Z_M:  # inside the hole: lateral motion limited by its wall
            offset = target[:2] - self.hole_xy
            norm = np.linalg.norm(offset)
            if norm > CLEARANCE_M:
                target[:2] = self.hole_xy + offset * CLEARANCE_M / norm
                self.force[:2] = -CONTACT_STIFFNESS_N_PER_M * (norm - CLEARANCE_M) * offset / norm
        elif target[2] > SURFACE_Z_M and not in_hole:  # blocked by the board
            self.force[2] = -CONTACT_STIFFNESS_N_PER_M * (target[2] - SURFACE_Z_M)
            target[2] = SURFACE_Z_M
        target[2] = min(target[2], SURFACE_Z_M + SUCCESS_DEPTH_M + 0.002)
        new_pose = self.pose.copy()
        new_pose[:3] = target
        if a.shape[0] == 6:
            new_pose[3:] += 0.05 * a[3:]
        self.vel = (new_pose - self.pose) / DT_S
        self.pose = new_pose
        self.max_force_n = max(self.max_force_n, float(np.linalg.norm(self.force[:3])))
        info = self._info()
        success = info["is_success"]
        if self.reward_mode == "sparse":
            reward = float(success)
        else:
            reward = -info["distance_to_goal_mm"] / 10.0 + 10.0 * float(success)
        return self._obs(), reward, success, False, info

    def p_controller(self, goal_offset_m: np.ndarray | None = None,
                     ) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """Paper 000's P-controller toward the believed goal (plus ``goal_offset_m`` [m], as
        ``envs.p_controller``), gains kp = [1, 1, 0.3]."""
        kp = np.array([1.0, 1.0, 0.3])
        offset = np.zeros(3) if goal_offset_m is None else np.asarray(goal_offset_m)

        def policy(obs: dict[str, np.ndarray]) -> np.ndarray:
            error_steps = (np.asarray(obs["tcp_pose"][:3]) - self.believed_goal - offset) / STEP_M
            action = np.zeros(self.action_space.shape[0], dtype=np.float32)
            action[:3] = np.clip(-kp * error_steps, -1, 1)
            return action

        return policy

    def _insertion_depth_m(self) -> float:
        return max(0.0, self.pose[2] - SURFACE_Z_M)

    def _info(self) -> dict[str, Any]:
        depth = self._insertion_depth_m()
        goal = np.r_[self.hole_xy, SURFACE_Z_M + SUCCESS_DEPTH_M]
        return {
            "is_success": bool(depth >= SUCCESS_DEPTH_M),
            "insertion_depth_mm": 1000.0 * depth,
            "distance_to_goal_mm": 1000.0 * float(np.linalg.norm(self.pose[:3] - goal)),
            "max_force_n": self.max_force_n,
        }

    def _obs(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if "tcp_pose" in self.observation_space.spaces:
            obs["tcp_pose"] = self.pose.astype(np.float32)
            obs["tcp_vel"] = self.vel.astype(np.float32)
            obs["wrench"] = self.force.astype(np.float32)
        if "wrist" in self.observation_space.spaces:
            n = self.image_size
            rel = (self.hole_xy - self.pose[:2]) / 0.02  # +-2 cm fills the image
            col, row = np.clip(((rel + 1) / 2 * (n - 1)).round().astype(int), 0, n - 1)
            wrist = np.full((n, n, 1), 20, np.uint8)
            wrist[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = 255
            side = np.zeros((n, n, 3), np.uint8)
            height_row = int(np.clip((self.pose[2] / 0.06) * (n - 1), 0, n - 1))
            side[height_row, :, 1] = 255
            obs["wrist"], obs["side"] = wrist, side
        return obs


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=PegPointEnv, max_episode_steps=50)
