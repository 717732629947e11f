"""Where a ``benchmark.check_serl`` run's interventions went, window by window of env steps.

    python -m benchmark.serl_interventions runs/serl_pix/usb_hil_serl_s2 [--window 500]

For each window of ``--window`` env steps (by the step at which a training episode ended) it
prints: training episodes, their mean length [env steps], how many succeeded, how many of those
successes ended on an intervened step (the operator, not the policy, finished the insertion),
intervened steps / env steps, episodes with any intervention, the operator's per-episode budget
at the window's start (``agents.operator.SimulatedOperator.budget``), and the evaluation
successes (of 20, no operator) at the first evaluation at or after the window's end. It reads
the run's TensorBoard scalars (``train/episode_*``, ``train/intervention_steps``), its
``evaluations.json`` and the online replay buffer of its last checkpoint (row i is env step
i + 1: RLPD-family online buffers hold only the run's own transitions). Runs without an
operator (``rlpd``) print zero interventions; HG-DAgger keeps no online buffer, and a buffer
that does not hold every step of the run (it wrapped around, or left out a step that blew up,
`agents.base.Transition.blown_up`) is no row-per-step record, so which of their successes the
operator finished is not known ("-"); a run without evaluations (``insertbench train
--eval-episodes 0``) has none to print after a window. The numbers behind the pixel trace in
docs/results/serl.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

from agents.operator import OperatorConfig, SimulatedOperator
from benchmark.script_args import doc_summary
from benchmark.train import read_scalars


def episodes(run_dir: Path) -> list[dict]:
    """Training episodes in order: end step, length, success, intervened steps, and whether the
    last step was intervened (from the checkpoint's online buffer)."""
    scalars = read_scalars(run_dir)
    lengths = scalars.get("train/episode_length", {})
    success = scalars.get("train/episode_success", {})
    steps_in = scalars.get("train/intervention_steps", {})
    replay = run_dir / "checkpoint/agent/replay_online.npz"
    intervened, size = None, 0  # HG-DAgger's: no online buffer (it failed, serl17)
    if replay.is_file():
        with np.load(replay) as data:
            intervened = data["intervened"].copy()
            _, size, capacity = (int(v) for v in data["ptr_size_capacity"])
        runner = json.loads((run_dir / "checkpoint/runner.json").read_text())
        if size == capacity or size != runner["step"]:
            # Rows are steps only while every step was stored, once: after a blown-up step
            # each episode's last step was read off the next episode's first row (serl24).
            intervened = None
    rows = []
    for end in sorted(lengths):
        last = end - 1  # buffer row of the episode's last step
        rows.append({"end": end, "length": int(lengths[end]),
                     "success": bool(success.get(end, 0.0)),
                     "intervened": int(steps_in.get(end, 0)),
                     "last_intervened": (None if intervened is None else
                                         bool(last < size and intervened[last]))})
    return rows


def operator_budget(run_dir: Path, step: int) -> int | None:
    """The simulated operator's per-episode budget at ``step`` from the run's config, or None."""
    config = json.loads((run_dir / "run.json").read_text()).get("config", {})
    if config.get("operator", "none") != "simulated":
        return None
    fields = {k: v for k, v in config.items() if k.startswith("operator_")}
    space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)  # the budget needs no expert or space
    return SimulatedOperator(None, space, OperatorConfig(**fields)).budget(step)


def summary(run_dir: Path, window: int) -> list[dict]:
    """One dict per window (see the module docstring)."""
    eps = episodes(run_dir)
    evaluations = run_dir / "evaluations.json"
    evals = ([(e["env_steps"], e["summary"]["successes"])
              for e in json.loads(evaluations.read_text())] if evaluations.is_file() else [])
    out = []
    last_end = eps[-1]["end"] if eps else 0
    for lo in range(0, last_end, window):
        hi = lo + window
        w = [e for e in eps if lo < e["end"] <= hi]
        steps = sum(e["length"] for e in w)
        after = [n for s, n in evals if s >= hi]
        out.append({
            "window": f"{lo}-{hi}", "episodes": len(w),
            "mean_length": round(steps / len(w), 1) if w else None,
            "successes": sum(e["success"] for e in w),
            "finished_by_operator": ("-" if any(e["last_intervened"] is None for e in w) else
                                     sum(e["success"] and e["last_intervened"] for e in w)),
            "intervened_steps": sum(e["intervened"] for e in w), "env_steps": steps,
            "episodes_intervened": sum(e["intervened"] > 0 for e in w),
            "budget": operator_budget(run_dir, lo),
            "eval_after": after[0] if after else None})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--window", type=int, default=500, help="env steps per row")
    args = parser.parse_args()
    if args.window <= 0:
        parser.error(f"--window must be > 0, got {args.window}")
    for run_dir in args.run_dirs:
        if (run_dir / "async.json").is_file() and not (run_dir / "tb").is_dir():
            parser.error(f"{run_dir} is a train-async run, which writes no per-episode "
                         "TensorBoard data: its async.json counts intervened steps")
        try:
            rows = summary(run_dir, args.window)
        except (OSError, ValueError, KeyError) as err:  # read_scalars names the folder itself
            parser.error(str(err) if str(err).startswith(str(run_dir)) else f"{run_dir}: {err}")
        print(f"{run_dir}")
        print("| env steps | episodes | mean length | train successes (by operator) "
              "| intervened / env steps | episodes intervened | budget | eval after |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            mean_length = "-" if r["mean_length"] is None else r["mean_length"]
            print(f"| {r['window']} | {r['episodes']} | {mean_length} | {r['successes']} "
                  f"({r['finished_by_operator']}) | {r['intervened_steps']} / {r['env_steps']} "
                  f"| {r['episodes_intervened']} | {'-' if r['budget'] is None else r['budget']} "
                  f"| {'-' if r['eval_after'] is None else r['eval_after']} |")


if __name__ == "__main__":
    main()
