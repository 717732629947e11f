"""Render the README's task pictures: overview, side camera and wrist camera per task.

python -m benchmark.make_figures --out docs/tasks.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import mujoco
import numpy as np

import envs

HEIGHT, WIDTH = 300, 400


def task_row(env_id: str) -> np.ndarray:
    env = gym.make(env_id, obs_mode="pixels", image_size=(HEIGHT, WIDTH))
    controller = envs.hand_controller(env)
    obs, _ = env.reset(seed=0)
    for _ in range(7):  # the plug just above the socket mouth
        obs, *_ = env.step(controller(obs))
    u = env.unwrapped
    overview = mujoco.MjvCamera()
    overview.lookat[:] = [-0.2, -0.05, 0.15]
    overview.distance, overview.azimuth, overview.elevation = 1.0, 130.0, -20.0
    renderer = mujoco.Renderer(u.model, HEIGHT, WIDTH)
    renderer.update_scene(u.data, camera=overview)
    row = np.concatenate([renderer.render(), obs["side"], obs["wrist"]], axis=1)
    renderer.close()
    env.close()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/tasks.png"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = [task_row(env_id) for env_id in sorted(envs.TASKS)]
    imageio.imwrite(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
