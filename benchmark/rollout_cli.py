"""`insertbench list` and `insertbench rollout`: look at the tasks and run a scripted policy."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Annotated

import gymnasium as gym
import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import envs
from benchmark.metrics import distinct_success_summary, format_distinct_rate

POLICIES = ("scripted", "random")
# Tables stay readable when piped (rich falls back to 80 columns without a terminal).
console = Console() if sys.stdout.isatty() else Console(width=120)


def parse_env_kwargs(pairs: list[str]) -> dict[str, object]:
    """`["goal_noise_mm=1.0", "obs_mode=pixels"]` -> kwargs; values are Python literals or
    bare strings."""
    kwargs: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            kwargs[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            kwargs[key] = raw
    return kwargs


def list_tasks() -> None:
    """List the registered tasks with their connector, geometry and source."""
    table = Table(title="InsertBench tasks")
    table.add_column("id", no_wrap=True)
    for column in ("connector", "clearance", "chamfer", "stroke", "insert / withdraw", "paper"):
        table.add_column(column)
    for env_id, task in sorted(envs.TASKS.items()):
        c = task.connector
        table.add_row(
            env_id,
            c.name,
            f"{c.clearance_mm} mm",
            f"{c.chamfer_mm} mm",
            f"{c.mating_length_mm} mm",
            _mating_text(c),
            task.paper,
        )
    console.print(table)
    console.print(
        "Variants (kwargs of gym.make): action_mode xyz|pose; obs_mode state|pixels|"
        "state+pixels; reward sparse|dense|dense_printed|goal_image; goal_noise_mm; "
        "init_offset_mm; grasp_noise_mm; grasp_noise_deg; friction_scale; image_size; "
        "grayscale; noiseless (v1)."
    )


def _mating_text(connector) -> str:
    """Documented insertion / withdrawal ranges (v1), or v0's single retention force."""
    if connector.mating is None:
        return f"{connector.retention_force_n} N retention"
    (i_lo, i_hi), (w_lo, w_hi) = connector.mating.insertion_n, connector.mating.withdrawal_n
    return f"{i_lo:g}-{i_hi:g} / {w_lo:g}-{w_hi:g} N"


def rollout(
    task: Annotated[
        list[str] | None, typer.Option(help="Task ID (repeatable); default: every task.")
    ] = None,
    policy: Annotated[str, typer.Option(help=f"One of {POLICIES}.")] = "scripted",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes per task.")] = 20,
    seed: Annotated[int, typer.Option(help="Episode i uses seed + i.")] = 0,
    video: Annotated[
        Path | None, typer.Option(help="Write an MP4 of the first episode per task.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option(help="Env kwarg KEY=VALUE (repeatable).")
    ] = None,
) -> None:
    """Roll out a scripted policy and print a success table (95% Wilson intervals)."""
    if policy not in POLICIES:
        raise typer.BadParameter(f"--policy must be one of {POLICIES}, got {policy!r}")
    task_ids = task or sorted(envs.TASKS)
    unknown = [t for t in task_ids if t not in gym.registry]
    if unknown:
        raise typer.BadParameter(f"unknown task(s) {unknown}; see `insertbench list`")
    kwargs = parse_env_kwargs(env or [])
    frames: list[np.ndarray] = []
    rows = []
    with Progress(console=console) as progress:
        bar = progress.add_task("rolling out", total=episodes * len(task_ids))
        for task_id in task_ids:
            records = _run_task(
                task_id, policy, episodes, seed, kwargs, video is not None, frames, progress, bar
            )
            rows.append((task_id, records))
    _print_table(rows, policy, kwargs)
    if video is not None:
        _write_video(video, frames)


def _run_task(task_id, policy, episodes, seed, kwargs, record, frames, progress, bar):
    render_mode = "rgb_array" if record else None
    env = gym.make(task_id, render_mode=render_mode, **kwargs)
    controller = envs.hand_controller(env) if policy == "scripted" else None
    records = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        env.action_space.seed(seed + episode)
        record_this = record and episode == 0
        steps = 0
        while True:
            if record_this:
                frames.append(env.render())
            action = controller(obs) if controller else env.action_space.sample()
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                break
        if record_this:
            frames.append(env.render())
        records.append(dict(info, steps=steps))
        progress.advance(bar)
    env.close()
    return records


#: Info keys that describe an episode's outcome (replays agree on all of them).
OUTCOME_KEYS = ("steps", "insertion_depth_mm", "distance_to_goal_mm", "max_force_n")


def _print_table(rows, policy: str, kwargs: dict) -> None:
    table = Table(title=f"{policy} policy, env kwargs {kwargs or '{}'}")
    for column in ("task", "success [95% CI]", "steps to success", "peak force", "final distance"):
        table.add_column(column, justify="right")
    for task_id, records in rows:
        wins = sum(r["is_success"] for r in records)
        outcomes = [{k: r[k] for k in OUTCOME_KEYS if k in r} | {"success": r["is_success"]}
                    for r in records]
        steps = [r["steps"] for r in records if r["is_success"]]
        table.add_row(
            task_id,
            format_distinct_rate(wins, len(records), *distinct_success_summary(outcomes)),
            f"{np.mean(steps):.1f}" if steps else "-",
            f"{np.median([r['max_force_n'] for r in records]):.1f} N (median)",
            f"{np.mean([r['distance_to_goal_mm'] for r in records]):.2f} mm",
        )
    console.print(table)


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=10, macro_block_size=8) as writer:
        for frame in frames:
            writer.append_data(frame)
    console.print(f"video: {path} ({len(frames)} frames at 10 fps)")
