"""Per-connector figures of the catalog, the NIST board and procedural connectors.

    python -m benchmark.bench_connectors [--episodes 20] [--procedural 20] [--dataset-episodes 200]

For every connector: the P-controller's success with the exact goal from a start 0-10 mm
off-centre (paper 000's P-controller, target >= 90%); the peak contact force on the plug in
those episodes (median and maximum over episodes of `info["max_force_n"]`, the 100 Hz net
contact force; the maximum is usually the impact at first contact); the P-controller's success
with the believed goal off by up to 1 mm (`goal_noise_mm=1.0`, papers 000/004, centred start);
and the quasi-static insertion force (aligned plug pressed in slowly, as
tests/envs/test_fidelity.py measures it). Then the wall-clock time to collect a
`--dataset-episodes` Minari dataset with the noisy expert (paper 001 protocol) on one connector.
One process = one core.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from rich.console import Console
from rich.table import Table

import envs
from benchmark.datasets import CollectConfig, collect
from benchmark.script_args import doc_summary, non_negative_int, positive_int, task_id
from envs.catalog import CATALOG
from envs.insertion_env import InsertionEnv, active_insertion_env
from envs.nist_board import NIST_PARTS
from envs.procedural import procedural_task, random_connector


def expert_episodes(env: gym.Env, episodes: int, steps: int = 50) -> tuple[float, list[float]]:
    """Success rate and per-episode peak contact force [N] of the P-controller."""
    expert = envs.p_controller(env)
    successes, forces = 0, []
    for seed in range(episodes):
        obs, info = env.reset(seed=seed)
        for _ in range(steps):
            obs, _, terminated, truncated, info = env.step(expert(obs))
            if terminated or truncated:
                break
        successes += bool(info["is_success"])
        forces.append(float(info["max_force_n"]))
    return successes / episodes, forces


def press_force_n(env: gym.Env) -> float:
    """Insertion force [N]: the peak push of the tool (-wrench z) while an aligned plug is
    pressed in slowly (2.5 mm per step), from first contact to 0.5 mm before mating depth
    (so the body bottoming out is not counted). NaN if it does not mate."""
    u = active_insertion_env(env)
    obs, _ = env.reset(seed=0)
    peak = 0.0
    mating = u.task.connector.success_depth_mm
    for _ in range(120):
        obs, _, terminated, truncated, info = env.step(np.array([0.0, 0.0, 0.25], np.float32))
        if 0.05 < info["insertion_depth_mm"] < mating - 0.5:
            peak = max(peak, -float(obs["wrench"][2]))
        if terminated or truncated:
            break
    return peak if info["is_success"] else float("nan")


def connector_row(make, episodes: int) -> tuple[float, float, float, float, float]:
    """(exact-goal success, median and max peak force [N], success with 1 mm goal noise,
    quasi-static insertion force [N]).

    The exact-goal episodes start 0-10 mm off-centre (paper 001's easier scenario) so that
    they differ; the goal-noise episodes start centred, as in papers 000/004."""
    exact, forces = expert_episodes(make(goal_noise_mm=0.0, init_offset_mm=(0.0, 10.0)), episodes)
    noisy, _ = expert_episodes(make(goal_noise_mm=1.0), episodes)
    press = press_force_n(make(goal_noise_mm=0.0))
    return exact, float(np.median(forces)), float(np.max(forces)), noisy, press


def main() -> None:
    from envs.tasks import pinned_versions

    with pinned_versions():  # the task versions studied are chosen: no "out of date" advice
        _main()


def _main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--episodes", type=positive_int, default=20,
                        help="episodes per connector/setting")
    parser.add_argument("--procedural", type=non_negative_int, default=20,
                        help="procedural connectors")
    parser.add_argument("--dataset-episodes", type=positive_int, default=200,
                        help="noisy-expert episodes of the dataset-size row")
    parser.add_argument("--dataset-task", type=task_id, default="InsertBench/Connector-DT12-v0",
                        help="the task those episodes are collected on")
    args = parser.parse_args()
    console = Console(width=140)

    rows: list[tuple[str, str, str, tuple[float, ...]]] = []
    for name, entry in CATALOG.items():
        env_id = f"InsertBench/Connector-{name}-v0"
        result = connector_row(lambda env_id=env_id, **kw: gym.make(env_id, **kw), args.episodes)
        rows.append((name, entry.split, entry.spec.profile, result))
    for part, (spec, _) in NIST_PARTS.items():
        env_id = f"InsertBench/NISTBoard-{part}-v0"
        result = connector_row(lambda env_id=env_id, **kw: gym.make(env_id, **kw), args.episodes)
        rows.append((f"NIST {part}", "nist", spec.profile, result))
    for seed in range(args.procedural):
        task = procedural_task(seed)
        result = connector_row(lambda task=task, **kw: InsertionEnv(task, **kw), args.episodes)
        rows.append((f"Procedural {seed}", "procedural", random_connector(seed).profile, result))

    table = Table(title=f"Scripted expert per connector ({args.episodes} episodes per cell)")
    for column in (
        "connector",
        "split",
        "profile",
        "success exact goal, start 0-10 mm",
        "peak force median [N]",
        "peak force max [N]",
        "success goal noise 1 mm",
        "insertion force [N]",
    ):
        table.add_column(column, justify="left" if column in ("connector", "split") else "right")
    for name, split, profile, (exact, median_f, max_f, noisy, press) in rows:
        flag = "" if exact >= 0.9 else " (<90%)"
        table.add_row(
            name,
            split,
            profile,
            f"{exact:.0%}{flag}",
            f"{median_f:.1f}",
            f"{max_f:.1f}",
            f"{noisy:.0%}",
            f"{press:.1f}",
        )
    console.print(table)
    catalog = [r for r in rows if r[1] in ("train", "test", "challenge")]
    for label, group in (("catalog", catalog), ("all", rows)):
        exact = np.array([r[3][0] for r in group])
        noisy = np.array([r[3][3] for r in group])
        console.print(
            f"{label}: {len(group)} connectors, exact-goal success mean {exact.mean():.1%}, "
            f"min {exact.min():.0%}, connectors >= 90%: {(exact >= 0.9).sum()}/{len(group)}; "
            f"goal-noise success mean {noisy.mean():.1%}"
        )

    with tempfile.TemporaryDirectory() as tmp:
        config = CollectConfig(args.dataset_task, episodes=args.dataset_episodes, noise=0.2)
        start = time.perf_counter()
        dataset = collect(config, Path(tmp), progress=False)
        seconds = time.perf_counter() - start
        successes = sum(bool(ep.rewards.sum()) for ep in dataset.iterate_episodes())
    console.print(
        f"dataset: {config.minari_id}, {dataset.total_episodes} episodes, "
        f"{dataset.total_steps} steps, {successes} successful, collected and written in "
        f"{seconds:.1f} s (one core)"
    )


if __name__ == "__main__":
    main()
