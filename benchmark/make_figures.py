"""Render the README's task pictures: overview, side camera and wrist camera per task.

python -m benchmark.make_figures --out docs   # writes docs/tasks.png and docs/catalog.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import mujoco
import numpy as np

import envs
from benchmark.script_args import doc_summary, output_dir
from envs.tasks import PAPER000_TASKS, pinned_versions

HEIGHT, WIDTH = 300, 400


def _near_the_socket(env_id: str, height: int, width: int):
    env = gym.make(env_id, obs_mode="pixels", image_size=(height, width))
    controller = envs.p_controller(env)
    obs, _ = env.reset(seed=0)
    for _ in range(7):  # the plug just above the socket mouth
        obs, *_ = env.step(controller(obs))
    return env, obs


def task_row(env_id: str) -> np.ndarray:
    env, obs = _near_the_socket(env_id, HEIGHT, WIDTH)
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


def catalog_sheet(columns: int = 8, size: int = 128) -> np.ndarray:
    # One tile per connector: its versions differ in dynamics, not in looks (every version
    # was drawn, 124 tiles for 31 connectors).
    ids = sorted(i for i in envs.TASKS if i.startswith("InsertBench/Connector-")
                 and i.endswith("-v0"))
    tiles = []
    for env_id in ids:
        env, obs = _near_the_socket(env_id, size, size)
        tiles.append(obs["side"])
        env.close()
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--out", type=output_dir, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with pinned_versions():  # the versions drawn are chosen: no "out of date" advice
        rows = [task_row(env_id) for env_id in PAPER000_TASKS]
        imageio.imwrite(args.out / "tasks.png", np.concatenate(rows, axis=0))
        imageio.imwrite(args.out / "catalog.png", catalog_sheet())
    print(f"wrote {args.out / 'tasks.png'} and {args.out / 'catalog.png'}")


if __name__ == "__main__":
    main()
