"""Steps to 90% and learning curves of ``benchmark.check_serl`` runs, grouped over seeds.

    python -m benchmark.serl_curves runs/serl_s2t --plot docs/serl_steps_to_90.png \
        --match "_(rlpd|hil_serl)_s"

Each run directory (``check_serl --out DIR``) must be named ``<group>_s<seed>`` with the group
``<task>_<method>``, e.g. ``usb_hil_serl_s3``; its task comes from its ``run.json``, and a
method has one colour in every panel. ``--match REGEX`` keeps the directories it matches.
For every group the table gives the env steps to the target (default 18 of 20 successes, 90%)
held to the end of the run (``check_serl.steps_to_target``) per seed, their median and the
successes at the last evaluation; ``--plot`` draws every seed's curve, one panel per task.
A run that never held the target is shown as "> its last evaluation" and counts as the
slowest for the median. ``--target`` is a rate written as successes of 20 (as in
``check_serl``): a run evaluated on N episodes (``check_serl --eval-episodes N``) is held to
``ceil(target * N / 20)`` of N (``check_serl.target_successes``), and its last evaluation is
shown as successes/N. ``--first K`` counts only the first K episodes of every evaluation
(``check_serl`` evaluates on seeds ``EVAL_SEED_BASE + i``, so ``--first 20`` of a 50-episode
run is what the default 20-episode evaluation would have scored).

``--behind POINTS`` adds a table of pairs for issue 12's "learned reward within 10 points of the
simulator's": for every task and every ordered pair of methods A, B (a method with itself
included), how many pairs of runs have A never more than POINTS percentage points of success
below B at any evaluation both reached (runs must share ``--eval-every``; compared evaluation by
evaluation), counted separately over runs of the same seed and of other seeds, and A's mean
success minus B's over those evaluations. A method against itself on other seeds is what the
criterion gives when nothing but the seed differs: its noise floor.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from benchmark.check_serl import EVAL_EPISODES, steps_to_target, target_successes
from benchmark.script_args import doc_summary, figure_file, positive_int

_NAME = re.compile(r"^(?P<group>.+)_s(?P<seed>\d+)$")


def _episode_steps(task_id: str, env_kwargs: dict) -> int:
    """The run's episode length [env steps]: its ``max_episode_steps`` or its task's."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)

    steps = env_kwargs.get("max_episode_steps")
    if steps is None:
        try:
            steps = gym.spec(task_id).max_episode_steps
        except gym.error.Error:
            raise ValueError(f"unknown task {task_id!r} in a run.json") from None
    return int(steps)


def _check_counts(name: str, steps: list, successes: list, episodes: object) -> None:
    """ValueError unless an evaluations.json's numbers are ones a run writes: 50 successes of
    20 episodes read as reaching the target, and a text count was a traceback (serl24)."""
    def whole(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not whole(episodes) or episodes == 0:
        raise ValueError(f"{name}: evaluations of {episodes!r} episodes")
    if not all(whole(n) and n <= episodes for n in successes):
        raise ValueError(f"{name}: success counts {successes} are not whole numbers in "
                         f"[0, {episodes}]")
    if not (all(whole(s) for s in steps) and steps == sorted(set(steps))):
        raise ValueError(f"{name}: evaluation env steps {steps} are not increasing whole "
                         "numbers")


def load_runs(root: Path, match: str = "", first: int | None = None) -> dict[str, list[dict]]:
    """``{group: [run, ...]}`` sorted by seed; a run is task, seed, env steps, successes and
    episodes per evaluation (of the first ``first`` episodes of each evaluation if given)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for d in sorted(p for p in root.iterdir() if (p / "evaluations.json").is_file()
                    and re.search(match, p.name)):
        name = _NAME.match(d.name)
        if name is None:
            raise ValueError(f"{d.name}: run directories must be named <group>_s<seed>")
        try:  # a damaged run folder was a FileNotFoundError or KeyError traceback
            entries = json.loads((d / "evaluations.json").read_text())
            run = json.loads((d / "run.json").read_text())
            task_id = run["task_id"]
            if first is None:
                successes = [e["summary"]["successes"] for e in entries]
                episodes = {e["summary"].get("episodes", EVAL_EPISODES) for e in entries}
            else:
                if any(len(e.get("episodes", [])) < first for e in entries):
                    raise ValueError(f"{d.name}: an evaluation has fewer than --first {first} "
                                     "episodes recorded")
                successes = [sum(bool(r["success"]) for r in e["episodes"][:first])
                             for e in entries]
                episodes = {first}
            steps = [e["env_steps"] for e in entries]
        except (OSError, KeyError, TypeError) as err:
            what = f"no {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{d.name}: not a check_serl run folder ({what})") from None
        if not entries:
            raise ValueError(f"{d.name}: evaluations.json holds no evaluation")
        if len(episodes) != 1:
            raise ValueError(f"{d.name}: evaluations of different sizes {sorted(episodes)}")
        _check_counts(d.name, steps, successes, next(iter(episodes)))
        groups[name["group"]].append({
            "group": name["group"], "task": task_id.split("/")[-1], "seed": int(name["seed"]),
            "episodes": episodes.pop(), "steps": steps, "successes": successes,
            "episode_steps": _episode_steps(task_id, run.get("env_kwargs") or {})})
    for runs in groups.values():
        runs.sort(key=lambda r: r["seed"])
    return dict(groups)


def median_steps(reached: list[int | None]) -> str:
    """Median steps-to-target, a run that never held the target counting as slowest; of an even
    count the upper of the middle two, as the matrix report's `median_reach`: "not reached"
    unless more than half of the runs reached it (the lower median read 2 of 4 as reached)."""
    keys = sorted(r if r is not None else float("inf") for r in reached)
    value = keys[len(keys) // 2]
    return "not reached" if value == float("inf") else f"{value:,}"


def table(groups: dict[str, list[dict]], target: int) -> str:
    """Markdown table: one row per group."""
    sizes = sorted({r["episodes"] for runs in groups.values() for r in runs})
    counts = " or ".join(f"{target_successes(target, n)}/{n}" for n in sizes)
    rows = [f"| group | task | seeds | env steps to >= {counts} held, per seed "
            "| median | last evaluation |", "|---|---|---|---|---|---|"]
    for group, runs in groups.items():
        reached = [steps_to_target(r["steps"], r["successes"],
                                   target_successes(target, r["episodes"])) for r in runs]
        last = [r["steps"][-1] for r in runs]
        per_seed = ", ".join(f"{x:,}" if x is not None else f"> {s:,}"
                             for x, s in zip(reached, last, strict=True))
        of_n = sizes != [EVAL_EPISODES]  # successes/N unless every run has the default 20
        finals = ", ".join(f"{r['successes'][-1]}" + (f"/{r['episodes']}" if of_n else "")
                           for r in runs)
        seeds = ",".join(str(r["seed"]) for r in runs)
        rows.append(f"| {group} | {runs[0]['task']} | {seeds} | {per_seed} "
                    f"| {median_steps(reached)} | {finals} |")
    return "\n".join(rows)


def shared_rates(a: dict, b: dict) -> tuple[list[float], list[float]]:
    """Success rates [%] of runs ``a`` and ``b`` at the evaluations both reached.

    Evaluation k of a ``check_serl`` run is the first episode end after k ``--eval-every``
    steps, so runs of one schedule differ there by less than an episode; runs further apart
    are refused (another schedule, or an ``--eval-every`` shorter than an episode, where several
    evaluations fall due in one episode and runs drift apart). (The bound was half the first
    evaluation's step: runs of one schedule with ``--eval-every`` under two episodes were
    refused.)
    """
    n = min(len(a["steps"]), len(b["steps"]))
    episode = max(a.get("episode_steps", 1), b.get("episode_steps", 1))
    if any(abs(x - y) >= episode for x, y in zip(a["steps"][:n], b["steps"][:n], strict=True)):
        raise ValueError(f"{a.get('group', '?')} seed {a['seed']} and {b.get('group', '?')} "
                         f"seed {b['seed']} of {a['task']} were not evaluated at the same env "
                         "steps (another --eval-every, or one shorter than an episode: "
                         "evaluations wait for an episode's end, so such runs drift apart)")
    rate = [100.0 * s / r["episodes"] for r in (a, b) for s in r["successes"][:n]]
    return rate[:n], rate[n:]


def pairs_table(groups: dict[str, list[dict]], points: float) -> str:
    """Markdown table: per task and ordered pair of methods, how often the first stayed within
    ``points`` of the second at every shared evaluation, same seed and other seeds apart."""
    rows = [f"| task | method | against | same seed: never > {points:g} points behind "
            f"| other seeds: never > {points:g} points behind "
            "| mean difference, same seed [points] |", "|---|---|---|---|---|---|"]
    tasks = dict.fromkeys(r["task"] for runs in groups.values() for r in runs)
    for task in tasks:
        of_task = {g: [r for r in runs if r["task"] == task] for g, runs in groups.items()}
        for a_group, a_runs in of_task.items():
            for b_group, b_runs in of_task.items():
                if not a_runs or not b_runs:
                    continue
                same, other, diffs = [], [], []
                for a in a_runs:
                    for b in b_runs:
                        if a is b:
                            continue
                        ra, rb = shared_rates(a, b)
                        within = max(y - x for x, y in zip(ra, rb, strict=True)) <= points
                        if a["seed"] == b["seed"]:
                            same.append(within)
                            diffs.append(sum(ra) / len(ra) - sum(rb) / len(rb))
                        else:
                            other.append(within)
                mean = f"{sum(diffs) / len(diffs):+.1f} ({len(diffs)})" if diffs else "–"
                rows.append(f"| {task} | {method(a_group)} | {method(b_group)} "
                            f"| {_count(same)} | {_count(other)} | {mean} |")
    return "\n".join(rows)


def _count(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)}" if flags else "–"


def method(group: str) -> str:
    """``<task>_<method>`` -> ``<method>``."""
    return group.split("_", 1)[-1]


def plot(groups: dict[str, list[dict]], target: int, path: Path) -> None:
    """Every seed's curve; one panel per task, one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark.report import method_colours

    tasks = list(dict.fromkeys(r["task"] for runs in groups.values() for r in runs))
    colours = method_colours(list(dict.fromkeys(method(g) for g in groups)))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False,
                             sharey=True)
    for ax, task in zip(axes[0], tasks, strict=True):
        for group, runs in groups.items():
            for i, r in enumerate(x for x in runs if x["task"] == task):
                ax.plot(r["steps"], [n * EVAL_EPISODES / r["episodes"] for n in r["successes"]],
                        color=colours[method(group)], alpha=0.7, lw=1,
                        label=method(group) if i == 0 else None)
        ax.axhline(target, color="grey", ls=":", lw=1)
        ax.set(title=task, xlabel="env steps", ylim=(-0.5, EVAL_EPISODES + 0.5))
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel(f"successes per {EVAL_EPISODES} episodes")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("root", type=Path, help="folder of check_serl run directories")
    parser.add_argument("--target", type=int, default=18, help="successes of 20")
    parser.add_argument("--plot", type=figure_file, default=None,
                        help="the curves as a figure (.png, .pdf or .svg)")
    parser.add_argument("--match", default="", help="keep run directories matching REGEX")
    parser.add_argument("--first", type=positive_int, default=None, metavar="K",
                        help="count only the first K episodes of every evaluation")
    parser.add_argument("--behind", type=float, default=None, metavar="POINTS",
                        help="also tabulate pairs of runs: never more than POINTS percentage "
                             "points behind at any shared evaluation")
    args = parser.parse_args()
    if not 0 < args.target <= EVAL_EPISODES:  # as check_serl: 25 printed ">= 2/1 held"
        parser.error(f"--target must be in 1..{EVAL_EPISODES} (successes of 20), "
                     f"got {args.target}")
    if args.behind is not None and not 0 <= args.behind <= 100:  # NaN fails too
        sys.exit(f"serl_curves: --behind {args.behind} is not 0-100 percentage points")
    if not args.root.is_dir():
        sys.exit(f"serl_curves: no folder {args.root}")
    try:
        groups = load_runs(args.root, args.match, args.first)
    except (ValueError, re.error) as e:
        sys.exit(f"serl_curves: {e}")
    if not groups:
        sys.exit(f"serl_curves: no run with evaluations.json under {args.root}")
    print(table(groups, args.target))
    if args.behind is not None:
        try:
            print(pairs_table(groups, args.behind))
        except ValueError as e:
            sys.exit(f"serl_curves: {e}")
    if args.plot is not None:
        plot(groups, args.target, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
