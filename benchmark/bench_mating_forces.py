"""Mating forces per connector: documented ranges, simulated quasi-static peaks, and the paper-000
P-controller's success before (v0) and after (v1, v2 or v3) the datasheet forces (issue 17).

For every task with a `-v1` version (`--version 2`: `-v2`, the contact springs; `--version 3`:
`-v3`, v2 with the fidelity gaps closed): the aligned
quasi-static press and pull of `envs.mating_forces.measure_peaks` (noiseless), and the
P-controller's success over `--episodes` evaluation seeds with an exact goal and with +-1 mm
goal noise, on the baseline (v0, or an older `--baseline`) and on the version asked for. A
baseline with documented ranges (v1 on) has its peaks printed too, as "v1 → v2".

    python -m benchmark.bench_mating_forces --episodes 10 > mating.md
    python -m benchmark.bench_mating_forces --version 2 --episodes 10
    python -m benchmark.bench_mating_forces --version 2 --baseline 1 --episodes 10
    python -m benchmark.bench_mating_forces --version 3 --baseline 2 --episodes 10
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import envs
from benchmark.script_args import doc_summary
from envs.episode import distinct_success_summary, run_episode
from envs.mating_forces import measure_peaks
from envs.tasks import DYNAMICS, TASKS

EVAL_SEED_BASE = 10_000


def p_controller_successes(env_id: str, goal_noise_mm: float, episodes: int) -> str:
    """``wins/episodes``, with ``(k distinct)`` where episodes replay: on a noiseless task the
    controller with an exact goal replays one episode for every seed (bench19: "10/10" read
    as ten trials)."""
    env = gym.make(env_id, goal_noise_mm=goal_noise_mm)
    controller = envs.p_controller(env)
    records = [run_episode(env, controller, seed)
               for seed in range(EVAL_SEED_BASE, EVAL_SEED_BASE + episodes)]
    env.close()
    wins = sum(r.success for r in records)
    _, distinct = distinct_success_summary(records)
    return f"{wins}/{episodes}" + (f" ({distinct} distinct)" if distinct < episodes else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--episodes", type=int, default=10, help="P-controller episodes per task")
    parser.add_argument("--version", type=int, choices=sorted(DYNAMICS)[1:], default=1,
                        help="the datasheet-force version to measure (v0 is the baseline)")
    parser.add_argument("--baseline", type=int, choices=sorted(DYNAMICS)[:-1], default=0,
                        help="the version compared against (older than --version)")
    parser.add_argument("tasks", nargs="*", help="task IDs of that version (default: all)")
    args = parser.parse_args()
    v, b = args.version, args.baseline
    if b >= v:
        parser.error(f"--baseline {b} must be older than --version {v}")
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    ids = args.tasks or [k for k in TASKS if k.endswith(f"-v{v}")]
    # A task of another version would be measured and labelled as it is, against the wrong
    # baseline (USB-v1 with --version 2 compared v1 with v0 under a v2 heading).
    wrong = [t for t in ids if t not in TASKS or not t.endswith(f"-v{v}")]
    if wrong:
        parser.error(f"{wrong} are not -v{v} task IDs (e.g. InsertBench/USB-v{v})")
    n = args.episodes
    versions = f"v{b} → v{v}" if b else f"v{v}"
    print(f"| Task | Insertion range [N] | Sim peak in [N] {versions} | Withdrawal range [N] "
          f"| Sim peak out [N] {versions} | P exact v{b} | P exact v{v} | P ±1 mm v{b} "
          f"| P ±1 mm v{v} | Source |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task_id in ids:
        baseline = task_id[:-1] + str(b)
        mating = TASKS[task_id].connector.mating
        peaks = [measure_peaks(TASKS[t]) for t in ((baseline,) if b else ()) + (task_id,)]
        peak_in, peak_out = (" → ".join(f"{p[i]:.1f}" for p in peaks) for i in (0, 1))
        cells = [
            p_controller_successes(env_id, noise, n)
            for noise in (0.0, 1.0)
            for env_id in (baseline, task_id)
        ]
        ins, out = mating.insertion_n, mating.withdrawal_n
        print(
            f"| {task_id.removeprefix('InsertBench/')} | {ins[0]:g}–{ins[1]:g} | {peak_in} "
            f"| {out[0]:g}–{out[1]:g} | {peak_out} | " + " | ".join(cells)
            + f" | {mating.source} |",
            flush=True,
        )


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the versions compared are chosen on purpose
        main()
