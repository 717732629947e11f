"""Learning curve of one leaderboard-seeding matrix cell, evaluated on the track's dev seeds.

    python -m benchmark.check_track --preset paper000-leaderboard --track paper000 \
        --task ModelE --agent rlpd --seed 0 --steps 5000 --eval-every 1000

Trains the preset's cell for (agent, task) with its agent config and env kwargs (which must be
the track task's own) past the cell's budget, and evaluates the deterministic policy every
``--eval-every`` env steps on the track's public dev seeds (50 on ``paper000``), the seeds
``insertbench leaderboard submit`` scores. It answers "is the preset's budget enough for this
cell?" with the same episodes a leaderboard entry would hold, where the matrix's own evaluation
(5 episodes on the preset's seeds) is only a sanity check. Figures, not tests.
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmark.cells import Cell
from benchmark.folder_lock import RunInProgress
from benchmark.preset import PresetError, load_preset
from benchmark.script_args import doc_summary, non_negative_int, run_dir
from benchmark.train import train
from envs.episode import success_text
from envs.tasks import pinned_versions
from leaderboards.tracks import Track, TrackTask, get_track


class CheckTrackError(ValueError):
    """A preset, track, task or agent that does not name one cell of the track."""


def track_cell(preset_name: str, track_name: str, task: str,
               agent: str) -> tuple[Cell, Track, TrackTask]:
    """The preset's trained cell for ``agent`` on the track task labelled ``task``.

    ``agent`` is a registry name or the preset's label. Raises CheckTrackError when the
    preset has no such cell or trains it under other env kwargs than the track evaluates.
    """
    try:
        preset = load_preset(preset_name)
        track = get_track(track_name)
    except (PresetError, KeyError, ValueError) as err:
        raise CheckTrackError(str(err).strip("'\"")) from None
    track_task = next((t for t in track.tasks if t.label == task), None)
    if track_task is None:
        raise CheckTrackError(f"track {track.name} has no task {task!r} (its tasks: "
                              f"{', '.join(t.label for t in track.tasks)})")
    cells = [c for c in preset.cells if c.task_id == track_task.task_id
             and agent in (c.agent, c.method) and c.budget_steps > 0]
    if not cells:
        raise CheckTrackError(f"preset {preset.name} has no trained cell of agent {agent!r} on "
                              f"{track_task.task_id}")
    cell = cells[0]
    if dict(cell.env_kwargs) != dict(track_task.env_kwargs):
        raise CheckTrackError(f"preset {preset.name} trains {track_task.task_id} with "
                              f"{dict(cell.env_kwargs)}, track {track.name} evaluates it with "
                              f"{dict(track_task.env_kwargs)}")
    return cell, track, track_task


def main(argv: list[str] | None = None) -> None:
    # Defaults in the help: a bare `python -m benchmark.check_track` starts a 5k-step RLPD run.
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--preset", default="paper000-leaderboard",
                        help="the seeding preset (default paper000-leaderboard)")
    parser.add_argument("--track", default="paper000", help="the track (default paper000)")
    parser.add_argument("--task", default="ModelE",
                        help="the track's task label (default ModelE)")
    parser.add_argument("--agent", default="rlpd",
                        help="registry name or preset label (default rlpd)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="run seed (default 0)")
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps (default: the cell's budget, 5,000 for the defaults)")
    parser.add_argument("--eval-every", type=int, default=1000,
                        help="env steps between evaluations (default 1000)")
    parser.add_argument("--out", type=run_dir, default=None,
                        help="run directory (default runs/...)")
    args = parser.parse_args(argv)
    try:
        cell, track, task = track_cell(args.preset, args.track, args.task, args.agent)
        if args.steps is not None and args.steps <= 0:
            raise CheckTrackError(f"--steps must be > 0, got {args.steps}")
        if args.eval_every <= 0:
            raise CheckTrackError(f"--eval-every must be > 0, got {args.eval_every}")
    except CheckTrackError as err:
        sys.exit(f"check_track: error: {err}")
    torch.set_num_threads(1)
    dev = track.dev_seeds()
    steps = args.steps if args.steps is not None else cell.budget_steps
    try:  # a bad --steps or --seed, another run in --out: tracebacks (bench21)
        with pinned_versions():  # the track's task versions are chosen: no "out of date" advice
            result = train(task.task_id, cell.agent, seed=args.seed, steps=steps,
                           config=dict(cell.agent_config), env_kwargs=dict(cell.env_kwargs),
                           out_dir=args.out, eval_every=args.eval_every,
                           eval_episodes=len(dev), eval_seeds=dev, num_envs=cell.num_envs,
                           progress=False)
    except (ValueError, RunInProgress) as err:  # RunInProgress: another run writes --out
        sys.exit(f"check_track: error: {err}")
    for entry, s in zip(result.evaluations, result.summaries, strict=True):
        print(f"{cell.agent} {track.name}/{task.label} seed {args.seed} step "
              f"{entry.env_steps:>6} ({entry.wall_clock_s:6.0f} s): dev {success_text(s)}"
              f" (cell budget {cell.budget_steps})", flush=True)


if __name__ == "__main__":
    main()
