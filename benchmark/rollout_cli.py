"""`insertbench list` and `insertbench rollout`: look at the tasks and run a policy."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import envs
from benchmark.cells import MAX_EVAL_EPISODES
from benchmark.cli_options import (
    EnvOption,
    build_env,
    check_output_file,
    closest_task,
    parse_env_kwargs,
    warnings_if_made,
)
from benchmark.metrics import format_distinct_rate
from envs.episode import run_episode, summarize, task_identity
from envs.json_files import write_json
from envs.tasks import DYNAMICS, pinned_versions
from envs.version_key import SHORT_KEY_LENGTH, task_version_key

POLICIES = ("p_controller", "random")
# Tables stay readable when piped (rich falls back to 80 columns without a terminal).
console = Console() if sys.stdout.isatty() else Console(width=120)


#: Paper 000's three tasks, listed first: the ones most users come for.
_PAPER_000_TASKS = ("InsertBench/USB-", "InsertBench/DSub-", "InsertBench/ModelE-")


def task_rows() -> list[tuple[str, ...]]:
    """One row per registered InsertBench ID: paper 000's three tasks, the catalog's connectors,
    the NIST board's parts, then the environments that change connector."""
    from envs.nist_board import NIST_PARTS, nist_task

    def row(env_id: str, c, paper: str) -> tuple[str, ...]:
        return (env_id, c.name, f"{c.clearance_mm} mm", f"{c.chamfer_mm} mm",
                f"{c.mating_length_mm} mm", _mating_text(c), paper)

    single = sorted(envs.TASKS.items(), key=lambda item: (not item[0].startswith(_PAPER_000_TASKS),
                                                          item[0]))
    rows = [row(env_id, task.connector, task.paper) for env_id, task in single]
    for part in NIST_PARTS:
        task = nist_task(part)
        rows.append(row(task.env_id, task.connector, task.paper))
    rows.append(("InsertBench/NISTBoard-v0", "any part (part=)",
                 "per part", "", "", "", "NIST task board #1"))
    for version in DYNAMICS:
        rows.append((f"InsertBench/ConnectorFamily-v{version}", "one per episode (split=)",
                     "per connector", "", "", "", "001, 004"))
    return rows


def newest_single_connector_tasks() -> list[str]:
    """Each single-connector task at its newest version, paper 000's three first: `rollout`'s
    default (every version of each, 136 tasks, made `--episodes 20` 2,720 episodes)."""
    newest: dict[str, Any] = {}  # TaskSpec.name -> its newest TaskSpec
    for spec in envs.TASKS.values():
        if spec.name not in newest or spec.version > newest[spec.name].version:
            newest[spec.name] = spec
    return sorted((spec.env_id for spec in newest.values()),
                  key=lambda i: (not i.startswith(_PAPER_000_TASKS), i))


def list_tasks(
    match: Annotated[str | None, typer.Argument(
        help="Show only the tasks whose ID or connector contains this text (any case), "
             "e.g. `usb` or `v1`.")] = None,
) -> None:
    """List the registered task IDs with their connector, geometry, source and version key,
    one line each (long texts are cut to the terminal's width)."""
    rows = task_rows()
    if match is not None:
        rows = [r for r in rows if match.casefold() in f"{r[0]} {r[1]}".casefold()]
        if not rows:
            raise typer.BadParameter(f"no task ID or connector contains {match!r}; "
                                     "`insertbench list` shows them all", param_hint="MATCH")
    # One line a task: the connector is cut to 16 characters and the source to what is left of
    # the line ("…"); rich's tables wrapped every row over 5-6 lines.
    lines = [(env_id, _cut(connector, 16),
              f"{clearance}/{chamfer}/{stroke}".replace(" mm", "") if stroke else clearance,
              forces, task_version_key(env_id)[:SHORT_KEY_LENGTH], paper)
             for env_id, connector, clearance, chamfer, stroke, forces, paper in rows]
    header = ("id", "connector", "geometry mm", "insert/withdraw",
              "version key", "source")
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(5)]
    room = max(console.width - sum(widths) - 2 * len(widths), 12)
    console.print(f"InsertBench tasks ({len(rows)})", style="bold", highlight=False)
    for line in [header, *lines]:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        console.print("  ".join([*cells, _cut(line[5], room)]), highlight=False, markup=False,
                      style="bold" if line is header else None, soft_wrap=True)
    console.print(
        "Variants (kwargs of gym.make, `--env KEY=VALUE` on the command line): action_mode "
        "xyz|pose; obs_mode state|pixels|state+pixels; reward sparse|dense|dense_printed|"
        "goal_image; goal_noise_mm; init_offset_mm; grasp_noise_mm; grasp_noise_deg; "
        "friction_scale; image_size; grayscale; cameras; noiseless (v1 and later; v0 is "
        "noiseless); obs_frame; workspace_mm; start_height_mm; action_scale_m; action_scale_rad; "
        "control_hz; timestep; reference_mode; max_episode_steps; render_mode "
        "(help(envs.InsertionEnv) gives units and values).\n"
        "Geometry: clearance / chamfer / stroke in mm; insert/withdraw: the documented mating "
        "force ranges in N (-v1 and later), or -v0's retention spring.\n"
        "Version key: SHA-256 of the task's spec, physics, controller, reward, episode length "
        "and scorer with default kwargs (envs.version_key); kwargs change it too."
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _mating_text(connector) -> str:
    """Documented insertion / withdrawal ranges (v1 and later), or v0's single retention force."""
    if connector.mating is None:
        return f"{connector.retention_force_n} N retention"
    (i_lo, i_hi), (w_lo, w_hi) = connector.mating.insertion_n, connector.mating.withdrawal_n
    return f"{i_lo:g}-{i_hi:g} / {w_lo:g}-{w_hi:g} N"


def rollout(
    task: Annotated[list[str] | None, typer.Option(
        help="Task ID (repeatable); default: every single-connector task at its newest version "
             "(paper 000's three, then the catalog's).")] = None,
    policy: Annotated[str, typer.Option(help=f"One of {POLICIES}.")] = "p_controller",
    episodes: Annotated[int, typer.Option(min=1, max=MAX_EVAL_EPISODES,
                                          help="Episodes per task.")] = 20,
    # min=0: -1 failed after building every task, as NumPy's "Seed must be greater or equal to
    # zero" (exit 1).
    seed: Annotated[int, typer.Option(min=0, help="Episode i uses seed + i.")] = 0,
    video: Annotated[
        Path | None, typer.Option(help="Write an MP4 of the first episode per task, and "
                                       "beside it NAME.tasks.json: which seconds show which "
                                       "task.")
    ] = None,
    env: EnvOption = None,
) -> None:
    """Roll out paper 000's P-controller (or random actions); print a success table (95%
    Wilson intervals)."""
    if policy not in POLICIES:
        raise typer.BadParameter(f"--policy must be one of {POLICIES}, got {policy!r}")
    task_ids = task or newest_single_connector_tasks()
    unknown = [t for t in task_ids if t not in gym.registry]
    if unknown:
        raise typer.BadParameter(f"unknown task(s) {unknown}{closest_task(unknown[0])}; see "
                                 "`insertbench list`")
    repeated = sorted({t for t in task_ids if task_ids.count(t) > 1})
    if repeated:  # rolled out and printed twice
        raise typer.BadParameter(f"{repeated} given more than once", param_hint="--task")
    kwargs = parse_env_kwargs(env)
    if video is not None:
        check_video_path(video)
    # The default set is the command's choice: Gymnasium's "out of date" advice, for a user
    # who typed an old ID, printed 102 lines when it held every version.
    with pinned_versions() if not task else contextlib.nullcontext():
        # Every task once before any rollout (~1 s for the default 34): a kwarg one task refuses
        # (start_height_mm=14 on a 19 mm Europlug) ended the command after the tasks before it.
        for task_id in task_ids:
            probe = build_env(_make, task_id, kwargs, video is not None)
            fps = probe.metadata["render_fps"]  # one control step a frame (control_hz)
            probe.close()
        writer = TaskVideo(video, fps) if video is not None else None
        rows = []
        try:
            with Progress(console=console) as progress:
                bar = progress.add_task("rolling out", total=episodes * len(task_ids))
                for task_id in task_ids:
                    frames: list[np.ndarray] = []
                    records = _run_task(task_id, policy, episodes, seed, kwargs,
                                        video is not None, frames, progress, bar)
                    rows.append((task_id, records))
                    if writer is not None:
                        writer.add(task_id, frames)
            _print_table(rows, policy, kwargs)
            if writer is not None:
                writer.finish()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise


def _make(task_id: str, kwargs: dict, record: bool) -> gym.Env:
    with warnings_if_made():  # the probe's advice and the rollout's, once (it came twice)
        return gym.make(task_id, render_mode="rgb_array" if record else None, **kwargs)


def _run_task(task_id, policy, episodes, seed, kwargs, record, frames, progress, bar):
    env = _make(task_id, kwargs, record)
    act = envs.p_controller(env) if policy == "p_controller" else _RandomPolicy(env.action_space)
    # Once, not every episode: a 100,000-connector family's key takes ~40 s to compute.
    identity = dict(zip(("task_id", "task_version_key"), task_identity(env), strict=True))
    records = []
    for episode in range(episodes):
        records.append(run_episode(env, act, seed + episode, **identity,
                                   frames=frames if record and episode == 0 else None))
        progress.advance(bar)
    env.close()
    return records


class _RandomPolicy:
    """Uniform actions, seeded per episode."""

    def __init__(self, space: gym.spaces.Box):
        self.space = space

    def reset(self, *, seed: int) -> None:
        self.space.seed(seed)

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.space.sample()


def _print_table(rows, policy: str, kwargs: dict) -> None:
    table = Table(title=f"{policy} policy, env kwargs {kwargs or '{}'}")
    # Task IDs whole, the other cells wrapped: at 120 columns "InsertBench/Connector-CarPlu…"
    # stood for four connectors at four versions each.
    table.add_column("task", no_wrap=True)
    for column in ("success [95% CI]", "steps to success", "peak force", "final distance"):
        table.add_column(column, justify="right")
    for task_id, records in rows:
        s = summarize(records)
        forces = [r.peak_force_n for r in records if r.peak_force_n is not None]
        table.add_row(
            task_id,
            format_distinct_rate(s["successes"], s["episodes"], s["effective_trials"]),
            f"{s['cycle_steps_mean']:.1f}" if s["successes"] else "-",
            f"{np.median(forces):.1f} N (median)" if forces else "-",
            f"{s['final_distance_mm_mean']:.2f} mm",
        )
    console.print(table)


def check_video_path(path: Path) -> None:
    """Refuse a --video path that cannot be written before rolling out (minutes for every
    task), not after; creates nothing."""
    if path.suffix.lower() != ".mp4":
        raise typer.BadParameter(f"must name an .mp4 file, got {str(path)!r}",
                                 param_hint="--video")
    check_output_file(path, "--video")
    check_output_file(path.with_suffix(".tasks.json"), "--video")  # its index, beside it


class TaskVideo:
    """The first episode of every task in one MP4, written as each task ends (all tasks'
    frames held until the end took 2.3 GB for the default set), with a JSON file beside it
    (``<name>.tasks.json``) saying which seconds show which task. Written under a hidden name
    and moved in at the end: an interrupted rollout leaves no partial video."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as imageio

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fps = path, fps
        # Its own name: two rollouts into one path (or clip.mp4 and clip.MP4) shared one.
        self.partial = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.mp4")
        self.writer = imageio.get_writer(self.partial, fps=fps, macro_block_size=8)
        self.frames = 0
        self.segments: list[dict] = []

    def add(self, task_id: str, frames: list[np.ndarray]) -> None:
        self.segments.append({"task_id": task_id, "start_s": round(self.frames / self.fps, 3),
                              "frames": len(frames)})
        for frame in frames:
            self.writer.append_data(frame)
        self.frames += len(frames)

    def finish(self) -> None:
        self.writer.close()
        index = self.path.with_suffix(".tasks.json")
        write_json(index, self.segments)  # first: a video is never without its index
        self.partial.replace(self.path)
        console.print(f"video: {self.path} ({self.frames} frames at {self.fps:g} fps; which "
                      f"seconds show which task: {index})", markup=False)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        self.partial.unlink(missing_ok=True)


if __name__ == "__main__":  # `python -m benchmark.rollout_cli list ...` and so on
    from benchmark.cli import app as insertbench_app

    insertbench_app()
