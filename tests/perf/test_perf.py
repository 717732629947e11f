"""pytest-benchmark figures for the hot paths (run with `tox -e bench`; skipped in `tox`).

These print timings; they assert nothing about speed. benchmark/bench_env.py reports the
overhead ratio and frame rates as one table.
"""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs  # noqa: F401


@pytest.fixture(params=["InsertBench/USB-v0", "InsertBench/ModelE-v0"])
def env(request):
    env = gym.make(request.param)
    env.reset(seed=0)
    yield env
    env.close()


def test_env_step_free_space(benchmark, env):
    env.reset(seed=0)
    hold = np.zeros(env.action_space.shape, np.float32)
    benchmark(env.step, hold)


def test_raw_physics_per_env_step(benchmark, env):
    u = env.unwrapped
    benchmark(mujoco.mj_step, u.model, u.data, u.frame_skip)


def test_render_64x64(benchmark):
    env = gym.make("InsertBench/DSub-v0", obs_mode="pixels", image_size=64)
    env.reset(seed=0)
    u = env.unwrapped
    benchmark(u.rig.render, u.data, "wrist")
