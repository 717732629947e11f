"""Why spiral search scores below paper 001's Table I at +-10 mm (issue 18): success of the
`spiral_search` baseline on a connector under variations of the search and of the protocol.

Each row changes one thing from the paper001-baselines preset (20 steps, 25 mm start height,
offset radius uniform in [0, 10] mm, pitch 2 mm, 1 rad per step, 5 N search force), 20
evaluation seeds per row. Also prints the geometric bound: the fraction of start offsets a
spiral can reach within the steps left after the descent, at the action scale's top speed.

    PYTHONPATH=$PWD python benchmark/bench_spiral.py InsertBench/Connector-Megablock-v1
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import envs  # noqa: F401  (registers the tasks)
from agents.registry import make_agent
from benchmark.evaluate import evaluate

PRESET_ENV = {"max_episode_steps": 20, "start_height_mm": 25.0, "init_offset_mm": (0.0, 10.0)}
PRESET_AGENT = {"spiral_pitch_m": 0.002, "spiral_step_rad": 1.0}

VARIANTS: list[tuple[str, dict, dict]] = [
    ("preset (paper001-baselines)", {}, {}),
    ("pitch 1.0 mm, 0.6 rad/step", {}, {"spiral_pitch_m": 0.001, "spiral_step_rad": 0.6}),
    ("pitch 1.4 mm (capture window), 1 rad", {}, {"spiral_pitch_m": 0.0014}),
    ("search force 15 N", {}, {"search_force_n": 15.0}),
    ("search force 2 N", {}, {"search_force_n": 2.0}),
    ("40 steps per episode", {"max_episode_steps": 40}, {}),
    ("80 steps per episode", {"max_episode_steps": 80}, {}),
    ("offsets in [0, 5] mm", {"init_offset_mm": (0.0, 5.0)}, {}),
    ("start 15 mm above seated", {"start_height_mm": 15.0}, {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    print(f"| Variant ({args.task}) | Success | Mean final distance [mm] |")
    print("|---|---|---|")
    for label, env_change, agent_change in VARIANTS:
        env_kwargs = PRESET_ENV | env_change
        steps = env_kwargs.pop("max_episode_steps")
        env = gym.make(args.task, max_episode_steps=steps, **env_kwargs)
        agent = make_agent("spiral_search", env.observation_space, env.action_space,
                           PRESET_AGENT | agent_change)
        records = evaluate(env, agent, args.episodes)
        wins = sum(r.success for r in records)
        distance = sum(r.final_distance_mm for r in records) / len(records)
        print(f"| {label} | {wins}/{args.episodes} | {distance:.1f} |", flush=True)
        env.close()


if __name__ == "__main__":
    main()
