"""Speed of the simulated tasks: env steps/s, overhead over raw physics, and pixel frames/s.

    python -m benchmark.bench_env [--episodes 20]

The overhead ratio is measured in one run: right after each env step, the same starting
physics state (with the reference the step commanded) goes through bare `mujoco.mj_step`
(frame_skip steps), so both timings integrate the same contacts under the same machine load.
One process = one core.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import mujoco
import numpy as np
from rich.console import Console
from rich.table import Table

import envs
from envs.tasks import PAPER000_TASKS


def measure_state_steps(env_id: str, episodes: int, goal_noise_mm: float) -> dict[str, float]:
    """Time each env step and, right after it, bare physics from the same starting state.

    Timings are the thread's CPU time (both are single-threaded), so a loaded machine's
    preemptions do not count, and interleaving cancels any remaining drift (caches, clocks).
    """
    env = gym.make(env_id, goal_noise_mm=goal_noise_mm)
    u = env.unwrapped
    controller = envs.p_controller(env)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, spec))
    replay = mujoco.MjData(u.model)
    steps, step_time, physics_time = 0, 0.0, 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        for _ in range(u.task.max_episode_steps):
            action = controller(obs)
            mujoco.mj_getState(u.model, u.data, state, spec)  # mocap (the reference) included
            start = time.thread_time()
            obs, _, terminated, truncated, _ = env.step(action)
            step_time += time.thread_time() - start
            mujoco.mj_setState(u.model, replay, state, spec)
            replay.mocap_pos[:], replay.mocap_quat[:] = u.data.mocap_pos, u.data.mocap_quat
            start = time.thread_time()
            mujoco.mj_step(u.model, replay, nstep=u.frame_skip)
            physics_time += time.thread_time() - start
            steps += 1
            if terminated or truncated:
                break
    return {
        "steps": steps,
        "env_steps_per_s": steps / step_time,
        "physics_steps_per_s": steps * u.frame_skip / physics_time,
        "ratio": step_time / physics_time,
    }


def measure_pixels(env_id: str, size: int, steps: int) -> dict[str, float]:
    env = gym.make(env_id, obs_mode="pixels", image_size=size)
    u = env.unwrapped
    env.reset(seed=0)
    rig = u.rig
    start = time.perf_counter()
    for _ in range(steps):
        rig.render(u.data, "wrist")
    frames_per_s = steps / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(steps // 2):
        env.step(np.zeros(3, np.float32))
    pixel_steps_per_s = (steps // 2) / (time.perf_counter() - start)
    return {"frames_per_s": frames_per_s, "pixel_env_steps_per_s": pixel_steps_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    table = Table(
        title="InsertBench env speed: one process; state timings in thread CPU time, "
        "frames in wall time"
    )
    for column in (
        "task",
        "goal noise",
        "env steps",
        "env steps/s",
        "physics steps/s",
        "env/mj_step ratio",
        "64x64 frames/s",
        "pixel env steps/s",
    ):
        table.add_column(column, justify="right")
    for env_id in PAPER000_TASKS:
        pixels = measure_pixels(env_id, 64, args.frames)
        for noise in (0.0, 1.0):
            r = measure_state_steps(env_id, args.episodes, noise)
            table.add_row(
                env_id,
                f"{noise:.0f} mm",
                str(r["steps"]),
                f"{r['env_steps_per_s']:.0f}",
                f"{r['physics_steps_per_s']:.0f}",
                f"{r['ratio']:.3f}",
                f"{pixels['frames_per_s']:.0f}",
                f"{pixels['pixel_env_steps_per_s']:.0f}",
            )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
