"""`insertbench sim2sim`: one policy in MuJoCo and in PyBullet on the same seeds, side by side.

Heavy imports (MuJoCo, PyBullet, torch) happen inside the command, so `insertbench --help` and
the other commands do not load a second physics engine.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from benchmark.cells import MAX_EVAL_EPISODES
from benchmark.cli_options import EnvOption, innermost_message, parse_env_kwargs


def sim2sim_command(
    task: Annotated[str, typer.Option(help="Task ID, e.g. InsertBench/USB-v0.")],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Run, checkpoint or agent directory; default: the P-controller."),
    ] = None,
    episodes: Annotated[int, typer.Option(min=1, max=MAX_EVAL_EPISODES,
                                          help="Evaluation episodes (fixed seeds).")] = 20,
    env: EnvOption = None,
    allow_other_task: Annotated[
        bool, typer.Option(help="Compare a checkpoint trained on another task (transfer).")
    ] = False,
) -> None:
    """Evaluate one policy in MuJoCo and in PyBullet on the same seeds, side by side.

    With --checkpoint, as `insertbench eval`: the env kwargs are the run's (run.json), updated
    by any --env, and a checkpoint trained on another task is refused unless --allow-other-task.
    A kwarg of the run that PyBullet does not model is left out of both engines, with a warning.
    """
    from rich.console import Console
    from rich.table import Table

    from agents import agent_spec
    from agents.checkpoint import read_meta
    from benchmark.metrics import format_distinct_rate
    from benchmark.sim2sim import PYBULLET_KWARGS, compare, paired_difference
    from benchmark.train import check_agent_frame, make_env
    from benchmark.train_cli import check_policy_fits, resolve_checkpoint
    from envs.bullet import probe_failure
    from envs.episode import summarize
    from envs.tasks import TASKS, pinned_versions

    if task not in TASKS:  # "unknown task" named registered IDs too (the board, families)
        import gymnasium as gym

        what = (f"{task!r} is not a single-connector task" if task in gym.registry else
                f"unknown task {task!r}")
        raise typer.BadParameter(f"{what}: sim2sim runs single-connector tasks (see "
                                 "`insertbench list`)")
    agent_dir, run = resolve_checkpoint(checkpoint) if checkpoint is not None else (None, None)
    trained_on = run.get("task_id") if run else None
    if trained_on is not None and trained_on != task and not allow_other_task:
        raise typer.BadParameter(
            f"{checkpoint} was trained on {trained_on}, not {task}; pass --allow-other-task "
            "to compare it there anyway"
        )
    env_kwargs = dict(run.get("env_kwargs") or {}) if run else {}
    cameras = _camera_keys(agent_dir) if agent_dir is not None else []
    if "pixels" in str(env_kwargs.get("obs_mode", "state")) or cameras:  # else "left out" of
        # both, then "pass the --env kwargs it was trained with", which PyBullet refused (a
        # VICE run's observations hold its classifier's cameras in any obs_mode)
        raise typer.BadParameter(f"{checkpoint} was trained on camera observations "
                                 f"({', '.join(cameras) or env_kwargs['obs_mode']}); PyBullet "
                                 "has no cameras: sim2sim compares state policies only",
                                 param_hint="--checkpoint")
    explicit = parse_env_kwargs(env)
    if env_kwargs.get("reward") == "classifier" and "reward" not in explicit:
        # A classifier on the cameras has no PyBullet model: dropping reward_classifier alone
        # left reward='classifier' without it. Both engines end at the simulator's success.
        env_kwargs = {k: v for k, v in env_kwargs.items() if k != "reward_classifier"}
        env_kwargs["reward"] = "sparse"
        warnings.warn("the run's learned reward (a classifier on camera images) has no PyBullet "
                      "model: both engines run reward='sparse', ending at the simulator's "
                      "success", stacklevel=1)
    chosen = sorted({"task", "allow_unsupported"} & set(explicit))
    if chosen:  # task=x was a KeyError listing every ID; allow_unsupported reached MuJoCo
        raise typer.BadParameter(f"{', '.join(chosen)} cannot be an env kwarg here: --task "
                                 "names the task, and sim2sim runs only the tasks PyBullet "
                                 "supports", param_hint="--env")
    # A kwarg of the run that PyBullet has no model of (grasp noise, the sensor model's
    # `noiseless`, ...) is left out of both engines with a warning: no --env could drop it.
    dropped = sorted(k for k in env_kwargs if k not in PYBULLET_KWARGS and k not in explicit)
    if dropped:
        warnings.warn(f"the run's env kwarg(s) {dropped} have no PyBullet model: left out in "
                      "both engines", stacklevel=1)
    env_kwargs = {k: v for k, v in env_kwargs.items() if k not in dropped} | explicit
    try:
        if agent_dir is not None:  # as `insertbench eval`: not a broadcast error at step 0
            with pinned_versions():  # as `compare`: no advice to upgrade to what PyBullet refuses
                probe = make_env(task, env_kwargs)
            try:
                meta = read_meta(agent_dir)
                check_agent_frame(agent_spec(meta["agent"]), env_kwargs)  # as eval (diff25)
                check_policy_fits(meta, probe, env_kwargs)
            finally:
                probe.close()
        results = compare(task, agent_dir, episodes, env_kwargs)
    except (ValueError, TypeError) as err:  # Gymnasium appends every kwarg: the cause only
        raise typer.BadParameter(innermost_message(err)) from err
    policy = agent_dir or "P-controller (paper 000)"
    table = Table(title=f"{task} {env_kwargs or ''}: {policy}, {episodes} episodes per engine")
    for column in ("engine", "success [95% CI]", "cycle time", "peak force (mean)"):
        table.add_column(column, justify="right")
    for engine, records in results.items():
        s = summarize(records)
        table.add_row(
            engine,
            # The interval counts distinct episodes: a noiseless task replays one per seed.
            format_distinct_rate(s["successes"], s["episodes"], s["effective_trials"]),
            # A mean over successes: none is no time, not "nan s" (as `insertbench eval`).
            f"{s['cycle_time_s_mean']:.2f} s" if s["successes"] else "-",
            f"{s['peak_force_n_mean']:.1f} N",
        )
    console = Console()
    console.print(table)
    paired = paired_difference(results)
    console.print(f"same seeds: {paired['mujoco_only']} succeeded in MuJoCo only, "
                  f"{paired['pybullet_only']} in PyBullet only, of {paired['pairs']} distinct "
                  f"seed pairs (exact McNemar p = {paired['p_value']:.2g}; intervals that "
                  "overlap do not say the engines agree)")
    reason = probe_failure(TASKS[task])
    if reason:
        console.print(f"caveat: PyBullet does not honour this connector's clearances: {reason}")
    if not TASKS[task].dynamics.sensor.noiseless and not env_kwargs.get("noiseless"):
        console.print("caveat: MuJoCo runs this version's sensor and reset variation, PyBullet "
                      "none; --env noiseless=true leaves out the variation")
    # On every version: v0's 38 N beside PyBullet's 149 N read as a finding about the engines.
    console.print("caveat: the peak forces are not comparable: MuJoCo's is its force reading "
                  "(v0: the net contact force at 100 Hz; v1 on: the filtered wrist F/T), "
                  "PyBullet's the raw contact force of every physics step, spiking on impact")


def _camera_keys(agent_dir: Path) -> list[str]:
    """The image entries of the checkpoint's observations ([] where its agent.json cannot be
    read: the checks after this one say why in one line)."""
    from agents.checkpoint import read_meta, space_from_json
    from agents.networks import is_image_space

    try:
        space = space_from_json(read_meta(agent_dir)["observation_space"])
    except (ValueError, KeyError, TypeError):
        return []
    return sorted(k for k, sub in getattr(space, "spaces", {}).items() if is_image_space(sub))


if __name__ == "__main__":  # `python -m benchmark.sim2sim_cli ...` = `insertbench sim2sim ...`
    import sys

    from benchmark.cli import app as insertbench_app

    insertbench_app(["sim2sim", *sys.argv[1:]])
