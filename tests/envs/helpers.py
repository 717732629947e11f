"""Small drivers shared by the env tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs
from envs.tasks import PAPER000_TASKS

FOUNDATION_IDS = PAPER000_TASKS


def push_down(env: gym.Env, offset_mm=(0.0, 0.0), speed: float = 0.3, steps: int = 60):
    """Start offset sideways and push straight down at `speed` x action scale: quasi-static, so
    the lateral offset at contact is the commanded one. Returns the last obs and info."""
    obs, info = env.reset(seed=0, options={"tcp_offset_mm": offset_mm})
    for _ in range(steps):
        obs, _, terminated, _, info = env.step(np.array([0.0, 0.0, speed], np.float32))
        if terminated:
            break
    return obs, info


def run_p_controller(env: gym.Env, seed: int, steps: int = 50):
    controller = envs.p_controller(env)
    obs, info = env.reset(seed=seed)
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(controller(obs))
        if terminated or truncated:
            break
    return info
