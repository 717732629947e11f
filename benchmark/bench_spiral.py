"""Why spiral search scores below paper 001's Table I at +-10 mm (issue 18): success of the
`spiral_search` baseline on a connector under variations of the search and of the protocol.

Each row changes one thing from the paper001-baselines preset (20 steps, 25 mm start height,
offset radius uniform in [0, 10] mm, pitch 2 mm, 1 rad per step, 5 N search force, spiral
radius capped at 10 mm), 20 evaluation seeds per row (`benchmark.evaluate.eval_seeds`, the
train command's; the preset's matrix evaluates on its own, so the "preset" row's count is not
the matrix's: 1/20 here against 4/20 there on the Megablock, bench23). Also prints how
many steps were left for the search after the descent, and how many start offsets lay within
the spiral's final radius plus the capture window (clearance + chamfer): the geometric bound.

    python -m benchmark.bench_spiral InsertBench/Connector-Megablock-v1
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the tasks)
from agents.registry import make_agent
from benchmark.evaluate import eval_seeds
from benchmark.script_args import doc_summary, positive_int, task_id
from envs.tasks import TASKS

PRESET_ENV = {"max_episode_steps": 20, "start_height_mm": 25.0, "init_offset_mm": (0.0, 10.0)}
PRESET_AGENT = {"spiral_pitch_m": 0.002, "spiral_step_rad": 1.0, "search_radius_m": 0.01}

VARIANTS: list[tuple[str, dict, dict]] = [
    ("spiral capped at 3 mm (the agent's default)", {}, {"search_radius_m": 0.003}),
    ("preset (paper001-baselines: radius 10 mm)", {}, {}),
    ("40 steps", {"max_episode_steps": 40}, {}),
    ("80 steps", {"max_episode_steps": 80}, {}),
    ("pitch 1.4 mm, 80 steps", {"max_episode_steps": 80}, {"spiral_pitch_m": 0.0014}),
    ("search force 15 N", {}, {"search_force_n": 15.0}),
    ("search force 2 N", {}, {"search_force_n": 2.0}),
    ("offsets in [0, 5] mm", {"init_offset_mm": (0.0, 5.0)}, {}),
    # The lowest start the connector allows (its pins' tips 1 mm above the mouth): a fixed
    # 15 mm was below DT12's and Megablock's, and the last row ended in a traceback.
    ("start at the lowest start height", {"start_height_mm": "lowest"}, {}),
]


def variant_env(task: str, label: str, env_change: dict) -> tuple[str, dict]:
    """A variant's label and `gym.make` kwargs on `task` ("lowest": the connector's lowest
    start height, `ConnectorSpec.lowest_start_mm`)."""
    env_kwargs = PRESET_ENV | env_change
    if env_kwargs["start_height_mm"] == "lowest":
        probe = gym.make(task)
        env_kwargs["start_height_mm"] = probe.unwrapped.task.connector.lowest_start_mm
        probe.close()
        label = f"start {env_kwargs['start_height_mm']:g} mm above seated (the lowest)"
    return label, env_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("task", type=task_id, help="a single-connector task ID")
    parser.add_argument("--episodes", type=positive_int, default=20,
                        help="episodes per spiral variant")
    args = parser.parse_args()
    if args.task not in TASKS:  # a board or family: a bare ValueError at its start (diff25)
        parser.error(f"{args.task} is not a single-connector task (see `insertbench list`)")
    print(f"| Variant ({args.task}) | Success | Search steps (mean) | Offset inside the "
          "spiral's final radius | Successes among those | False drops |")
    print("|---|---|---|---|---|---|")
    for label, env_change, agent_change in VARIANTS:
        label, env_kwargs = variant_env(args.task, label, env_change)
        env = gym.make(args.task, **env_kwargs)
        config = PRESET_AGENT | agent_change
        agent = make_agent("spiral_search", env.observation_space, env.action_space, config)
        wins, search_steps, reachable, reachable_wins, false_drops = 0, [], 0, 0, 0
        for seed in eval_seeds(args.episodes):
            agent.reset(seed=seed)
            obs, info = env.reset(seed=seed)
            offset_m = float(np.linalg.norm(env.unwrapped.start_pos[:2]))
            done = False
            while not done:
                obs, _, terminated, truncated, info = env.step(agent.act(obs, deterministic=True))
                done = terminated or truncated
            # The spiral's radius after the search steps taken (agent state, read for analysis).
            k = agent._search_step
            theta = k * agent.config.spiral_step_rad
            radius = min(agent.config.spiral_pitch_m * theta / (2 * np.pi),
                         agent.config.search_radius_m)
            connector = env.unwrapped.task.connector
            window_m = (connector.clearance_mm + connector.chamfer_mm) * 1e-3
            inside = offset_m <= radius + window_m
            wins += info["is_success"]
            search_steps.append(k)
            reachable += inside
            reachable_wins += inside and info["is_success"]
            # The search saw the plug drop (the hole, it assumed) but the plug is not in it:
            # e.g. protruding pins caught in the cavity mouth while the body rests on the rim.
            false_drops += agent._hole_xy is not None and info["insertion_depth_mm"] < 0.5
        print(f"| {label} | {wins}/{args.episodes} | {np.mean(search_steps):.1f} "
              f"| {reachable}/{args.episodes} | {reachable_wins}/{reachable} "
              f"| {false_drops}/{args.episodes} |", flush=True)
        env.close()


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the script's task versions are chosen on purpose
        main()
