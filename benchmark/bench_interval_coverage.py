"""How often the leaderboard's and the matrix report's 95% intervals hold the true value, by
simulation.

Each case draws every task's successes from a binomial at known rates, scores them as the
leaderboard does (`leaderboards.scoring`: the mean over tasks with `_mean_interval`, the
probability of improvement over a baseline with `_improvement_interval`), and counts the
evaluations whose interval holds the true value. A calibrated 95% interval holds it in about
95% of them; the figures the README and docs/results/leaderboard.md quote come from here. The
matrix report's mean over (seed, task) scores, with its stratified bootstrap over seeds
(`benchmark.metrics.aggregate`), is checked the same way, by the number of seeds (the report's
text quotes these): matrices whose seeds all agree, where the report shows no interval, are
left out.

    python -m benchmark.bench_interval_coverage [--evaluations 2000] [--matrices 300] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmark.metrics import aggregate
from benchmark.script_args import doc_summary, non_negative_int, positive_int
from leaderboards import scoring

#: (label, per task: its true rate and its number of distinct episodes) for the mean's interval.
#: Unequal counts are what replays leave (a deterministic policy on some noiseless tasks).
MEAN_CASES = (
    ("8 tasks x 20 at 1%", [0.01] * 8, [20] * 8),
    ("8 tasks x 20 at 5%", [0.05] * 8, [20] * 8),
    ("9 tasks x 20 at 98%", [0.98] * 9, [20] * 9),
    ("9 tasks x 20 at 99%", [0.99] * 9, [20] * 9),
    ("3 tasks x 50 at 99%", [0.99] * 3, [50] * 3),
    ("3 tasks x 50 at 50%", [0.5] * 3, [50] * 3),
    ("1 task x 10 at 90%", [0.9], [10]),
    ("9 tasks x 20, 5% to 95%", [0.1, 0.9, 0.5, 0.2, 0.8, 0.95, 0.05, 0.6, 0.4], [20] * 9),
    ("50% x 4 + 2% x 100", [0.5, 0.02], [4, 100]),
    ("3 x 2 at 50% + 6 x 50 at 1%", [0.5] * 3 + [0.01] * 6, [2] * 3 + [50] * 6),
)
#: (label, tasks, episodes per task, entry's rate, baseline's rate) for P(improvement).
IMPROVEMENT_CASES = (
    ("9 tasks x 20, 0.5% against 90%", 9, 20, 0.005, 0.9),
    ("9 tasks x 20, 50% against 50%", 9, 20, 0.5, 0.5),
    ("3 tasks x 50, 99% against 95%", 3, 50, 0.99, 0.95),
    ("2 tasks x 30, 70% against 30%", 2, 30, 0.7, 0.3),
)

#: (label, true rate per task, episodes per cell) for the matrix report's bootstrap, each at
#: `MATRIX_SEEDS` training seeds.
MATRIX_CASES = (
    ("3 tasks x 25 at 50%", [0.5] * 3, 25),
    ("3 tasks x 25 at 90%", [0.9] * 3, 25),
    ("3 tasks x 5, 90% / 50% / 20%", [0.9, 0.5, 0.2], 5),
)
MATRIX_SEEDS = (2, 3, 5)
#: Bootstrap resamples per simulated matrix (the report uses 2,000; coverage barely moves).
MATRIX_REPS = 500


def _distinct(successes: np.ndarray, episodes: int) -> list[np.ndarray]:
    """Per task, its distinct episodes as `scoring` reads them: (success, replays) rows."""
    return [np.array([(1.0, 1.0)] * int(k) + [(0.0, 1.0)] * (episodes - int(k)))
            for k in successes]


def mean_coverage(rates: list[float], counts: list[int], evaluations: int,
                  rng: np.random.Generator) -> float:
    """Share of simulated evaluations whose mean interval holds the true mean of `rates`, task
    t with `counts[t]` distinct episodes."""
    truth, held = float(np.mean(rates)), 0
    for _ in range(evaluations):
        distinct = [_distinct(np.array([rng.binomial(n, r)]), n)[0]
                    for r, n in zip(rates, counts, strict=True)]
        low, high = scoring._mean_interval(distinct)
        held += low <= truth <= high
    return held / evaluations


def improvement_coverage(tasks: int, episodes: int, rate: float, baseline: float,
                         evaluations: int, rng: np.random.Generator) -> float:
    """Share of simulated evaluations whose P(improvement) interval holds its true value."""
    truth, held = 0.5 + 0.5 * (rate - baseline), 0
    for _ in range(evaluations):
        entry, best = (_distinct(rng.binomial(episodes, r, tasks), episodes)
                       for r in (rate, baseline))
        low, high = scoring._improvement_interval(entry, best)
        held += low <= truth <= high
    return held / evaluations


def matrix_coverage(seeds: int, rates: list[float], episodes: int, matrices: int,
                    rng: np.random.Generator) -> tuple[float, int]:
    """Share of simulated (seeds x tasks) matrices of success rates whose report interval of
    the mean holds the true mean, and how many matrices showed an interval."""
    truth, held, shown = float(np.mean(rates)), 0, 0
    for i in range(matrices):
        scores = rng.binomial(episodes, rates, size=(seeds, len(rates))) / episodes
        low, high = aggregate({"m": scores}, reps=MATRIX_REPS, seed=i)["m"].mean_ci
        if low == high:  # every seed alike on every task: the report shows no interval
            continue
        shown += 1
        held += low <= truth <= high
    return held / max(shown, 1), shown


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--evaluations", type=positive_int, default=2000,
                        help="simulated evaluations per case")
    parser.add_argument("--matrices", type=positive_int, default=300,
                        help="simulated matrices per matrix-report case")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the simulated outcomes")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"coverage of the leaderboard's 95% intervals ({args.evaluations} simulated "
          "evaluations per case)")
    for label, rates, counts in MEAN_CASES:
        print(f"  mean, {label:32s} {mean_coverage(rates, counts, args.evaluations, rng):.3f}")
    for label, tasks, episodes, rate, baseline in IMPROVEMENT_CASES:
        coverage = improvement_coverage(tasks, episodes, rate, baseline, args.evaluations, rng)
        print(f"  P(improvement), {label:32s} {coverage:.3f}")
    print(f"coverage of the matrix report's 95% interval of the mean ({args.matrices} simulated "
          f"matrices per case, {MATRIX_REPS} bootstrap resamples each)")
    for seeds in MATRIX_SEEDS:
        for label, rates, episodes in MATRIX_CASES:
            coverage, shown = matrix_coverage(seeds, rates, episodes, args.matrices, rng)
            held = f"{coverage:.3f}" if shown else "-"  # no interval shown: nothing held
            print(f"  {seeds} seeds, {label:30s} {held} (interval shown for {shown})")


if __name__ == "__main__":
    main()
