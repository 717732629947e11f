"""`insertbench dataset ...`: offline datasets from the P-controller (benchmark.datasets)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from typer._click.exceptions import ClickException  # Typer >= 0.29 vendors Click

from benchmark.cli_options import (
    EnvOption,
    build_env,
    check_output_dir,
    check_task,
    parse_env_kwargs,
    warnings_if_made,
)

app = typer.Typer(
    help="Collect offline datasets (Minari) with the noisy P-controller.",
    no_args_is_help=True,
)


@app.command()
def collect(
    task: Annotated[
        str, typer.Option("--task", help="Task ID, e.g. InsertBench/Connector-DT12-v0.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (a rerun resumes a partial collection).")
    ],
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Episodes to keep.")] = 100,
    noise: Annotated[
        float,
        # checked below, not with min/max: those called NaN "not less than or equal to 1"
        typer.Option("--noise", help="Probability of a random action, in [0, 1]."),
    ] = 0.2,
    demos: Annotated[
        bool, typer.Option("--demos", help="Keep only successful episodes (demonstrations).")
    ] = False,
    # min=0: -1 was an internal "ValueError: seed must be >= 0" line (exit 1).
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Attempt i is seeded from (seed, i).")
    ] = 0,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Steps per episode (paper 001: 20).")
    ] = 20,
    env: EnvOption = None,
    dataset_id: Annotated[
        str | None, typer.Option("--dataset-id", help="Minari dataset ID.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run the P-controller with noisy actions and write a Minari dataset under OUT/minari."""
    from benchmark.datasets import CollectConfig
    from benchmark.datasets import collect as run_collect

    if not 0.0 <= noise <= 1.0:
        raise typer.BadParameter(f"--noise must be a probability in [0, 1], got {noise}")
    from benchmark.datasets import COLLECT_LOCK, DYNAMICS_JSON

    # Its own lock does not count: one left by a collection killed before its settings were
    # written, or held by one running, refused the rerun as "other files"; nor its dynamics,
    # which an earlier version wrote before the settings.
    check_output_dir(out, "--out", own="collect_config.json", what="collection",
                     ignore=(COLLECT_LOCK, DYNAMICS_JSON))
    check_task(task)
    kwargs = parse_env_kwargs(env)
    if "max_episode_steps" in kwargs:  # was "make() got multiple values for keyword argument"
        raise typer.BadParameter("--max-steps sets the episode length",
                                 param_hint="--env max_episode_steps")
    try:
        config = CollectConfig(task_id=task, episodes=episodes, noise=noise, demos=demos,
                               max_steps=max_steps, seed=seed, env_kwargs=kwargs,
                               dataset_id=dataset_id)
    except ValueError as err:  # each named by its option: all read "--dataset-id" before
        field = str(err).split(" ", 1)[0]
        option = {"episodes": "--episodes", "noise": "--noise", "max_steps": "--max-steps",
                  "seed": "--seed", "dataset_id": "--dataset-id"}.get(field)
        raise typer.BadParameter(str(err), param_hint=option) from None
    import gymnasium as gym

    from envs import p_controller

    # A kwarg the task refuses is the user's mistake (exit 2), not an error of the collection;
    # so is a registered env that is no insertion task (CartPole-v1: an internal TypeError,
    # and a folder that refused the corrected rerun).
    probe = build_env(gym.make, task, max_episode_steps=max_steps, **kwargs)
    try:
        p_controller(probe)
    except TypeError as err:
        raise typer.BadParameter(str(err), param_hint="--task") from None
    finally:
        probe.close()
    from benchmark.datasets import CollectionGaveUp, NotEnoughSpace
    from benchmark.folder_lock import RunInProgress

    try:
        with warnings_if_made():  # the upgrade advice of each env it makes, once
            dataset = run_collect(config, out, progress)
    # Not a bad value: no "Invalid value", no "see --help"
    except (RunInProgress, CollectionGaveUp, NotEnoughSpace) as err:
        raise ClickException(str(err)) from None
    except ValueError as err:  # another collection's folder, a damaged episode file: named
        raise typer.BadParameter(str(err)) from None
    from benchmark.train import distinct_episodes

    # A noiseless v0 task gave N copies of one episode, printed as N (data24).
    distinct = distinct_episodes(np.asarray(e.actions) for e in dataset.iterate_episodes())
    apart = f" ({distinct} distinct)" if distinct < dataset.total_episodes else ""
    typer.echo(
        f"{config.minari_id}: {dataset.total_episodes} episodes{apart}, "
        f"{dataset.total_steps} steps; "
        f"load with MINARI_DATASETS_PATH={shlex.quote(str(Path(out).resolve() / 'minari'))} "
        f"minari.load_dataset('{config.minari_id}')"
    )


@app.command()
def recipe(
    name: Annotated[str, typer.Argument(help="paper001 or paper004.")],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (a rerun resumes a partial collection).")
    ],
    scale: Annotated[
        str, typer.Option("--scale", help="small (minutes on 2 cores) or full (papers' size).")
    ] = "small",
    episodes: Annotated[
        int | None,
        typer.Option("--episodes", min=1, help="Non-demo episodes per connector (overrides "
                     "the scale's)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Base seed of every part.")] = 0,
    connector: Annotated[
        list[str] | None,
        typer.Option("--connector", help="Collect only this connector (repeatable)."),
    ] = None,
    version: Annotated[
        str, typer.Option("--version", help="Task version to collect on (v0 to v3).")
    ] = "v1",
    progress: Annotated[bool, typer.Option(help="Show a progress bar per part.")] = True,
) -> None:
    """Collect paper 001's or 004's offline data on its training connectors (benchmark.recipes);
    train on it with `insertbench train --demos OUT`."""
    from benchmark.datasets import CollectionGaveUp, NotEnoughSpace
    from benchmark.folder_lock import RunInProgress
    from benchmark.recipes import RECIPE_LOCK, collect_recipe

    check_output_dir(out, "--out", own="recipe.json", what="recipe", ignore=(RECIPE_LOCK,))
    try:
        description = collect_recipe(name, out, scale=scale, seed=seed, episodes=episodes,
                                     connectors=connector, version=version, progress=progress)
    # another run collecting the same part, an expert failing, a full disk
    except (RunInProgress, CollectionGaveUp, NotEnoughSpace) as err:
        raise ClickException(str(err)) from None
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    connectors = sorted({p["connector"] for p in description["parts"]})
    parts = len(description["parts"])
    typer.echo(f"{name} ({scale}): {parts} part{'s' * (parts != 1)} on {len(connectors)} "
               f"connector{'s' * (len(connectors) != 1)} under {out}; train with --demos "
               f"{shlex.quote(str(out))}")


if __name__ == "__main__":  # `python -m benchmark.dataset_cli ...` = `insertbench dataset ...`
    import sys

    from benchmark.cli import app as insertbench_app

    insertbench_app(["dataset", *sys.argv[1:]])
