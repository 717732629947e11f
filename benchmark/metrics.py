"""Metrics of the evaluation protocol, always recomputed from raw per-episode records.

Per cell: success rate with a 95% Wilson score interval (`envs.episode.wilson_interval`, the one
every table uses), mean cycle time (steps and seconds to insertion, over successful episodes),
final distance, peak contact force, the environment steps and wall-clock seconds until the
learning curve first reaches 80% / 95% success, and the learning curve itself.

Across tasks and seeds: IQM and mean with stratified bootstrap confidence intervals and
performance profiles, computed by `rliable` on score matrices of shape (seeds, tasks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.episode import distinct_success_summary, replay_interval

THRESHOLDS = (0.8, 0.95)


@dataclass(frozen=True)
class CurvePoint:
    """One learning-curve evaluation."""

    env_steps: int
    wall_clock_s: float
    successes: int
    trials: int

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes."""
        return self.successes / self.trials


def time_to_threshold(
    curve: Sequence[CurvePoint], threshold: float
) -> tuple[int, float] | None:
    """(env steps, wall-clock s) of the first evaluation with success rate >= threshold.

    None if the curve never reaches it. Compared on counts so that 16/20 meets 0.8 exactly.
    """
    for point in curve:
        if point.successes >= threshold * point.trials - 1e-9:
            return point.env_steps, point.wall_clock_s
    return None


def _mean(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


@dataclass(frozen=True)
class CellMetrics:
    """Protocol metrics of one cell, from its final evaluation and its learning curve."""

    successes: int
    trials: int
    ci_low: float
    ci_high: float
    distinct_successes: int
    distinct_trials: int
    mean_steps_to_success: float | None
    mean_seconds_to_success: float | None
    mean_final_distance_mm: float | None
    mean_peak_force_n: float | None
    max_peak_force_n: float | None
    reach: Mapping[float, tuple[int, float] | None]
    curve: tuple[CurvePoint, ...]
    #: The final evaluation's episode records, for pooling cells (`pooled_distinct_summary`).
    final_episodes: tuple[Mapping[str, Any], ...] = ()

    @property
    def success_rate(self) -> float:
        """Fraction of successful final-evaluation episodes."""
        return self.successes / self.trials


def pooled_distinct_summary(cells: Sequence[CellMetrics]) -> tuple[int, int]:
    """(successes, trials) over the distinct episodes of several cells' final evaluations
    pooled: the cells of a method that ignores its training seed (a scripted baseline)
    evaluate on the same seeds and replay the same episodes, seed after seed. Summing each
    cell's distinct episodes counted those replays once per seed."""
    return distinct_success_summary([e for m in cells for e in m.final_episodes])


def replayed_seeds(cells: Sequence[CellMetrics]) -> bool:
    """Whether several cells (one task and method, one per training seed) hold the same
    distinct final episodes: seeds that replay one run measure no spread between seeds."""
    if len(cells) < 2:
        return False
    pooled = pooled_distinct_summary(cells)[1]
    return all(distinct_success_summary(m.final_episodes)[1] == pooled for m in cells)


def success_summary(episodes: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(successes, trials) of a list of episode records."""
    return sum(bool(e["success"]) for e in episodes), len(episodes)


def cell_metrics(evaluations: Sequence[Mapping[str, Any]]) -> CellMetrics:
    """Metrics of a cell from its stored evaluations (as returned by `Store.evaluations`)."""
    finals = [e for e in evaluations if e["is_final"]]
    if len(finals) != 1:
        raise ValueError(f"a cell needs exactly one final evaluation, found {len(finals)}")
    final = finals[0]["episodes"]
    successes, trials = success_summary(final)
    distinct_successes, distinct_trials = distinct_success_summary(final)
    low, high = replay_interval(successes, trials, distinct_trials)
    curve = tuple(
        CurvePoint(e["env_steps"], e["wall_clock_s"], *success_summary(e["episodes"]))
        for e in evaluations if not e["is_final"]
    )
    forces = [e["peak_force_n"] for e in final if e["peak_force_n"] is not None]
    won = [e for e in final if e["success"]]
    return CellMetrics(
        successes=successes,
        trials=trials,
        ci_low=low,
        ci_high=high,
        distinct_successes=distinct_successes,
        distinct_trials=distinct_trials,
        mean_steps_to_success=_mean([e["steps_to_success"] for e in won]),
        mean_seconds_to_success=_mean([e["time_to_success_s"] for e in won]),
        mean_final_distance_mm=_mean([e["final_distance_mm"] for e in final]),
        mean_peak_force_n=_mean(forces),
        max_peak_force_n=max(forces) if forces else None,
        reach={t: time_to_threshold(curve, t) for t in THRESHOLDS},
        curve=curve,
        final_episodes=tuple(final),
    )


@contextmanager
def global_numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for a block, then restore it.

    rliable's stratified bootstrap draws indices with ``np.random.choice`` (the global generator)
    whatever `random_state` says, so reproducible reports need the global seed.
    """
    state = np.random.get_state()  # noqa: NPY002 - rliable uses the legacy global generator
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def keyed_seed(seed: int, *names: str) -> int:
    """The bootstrap seed of one interval: a function of ``seed`` and the names of what the
    interval is about (a method, an entry, ...) only. One seed for a whole table would hand each
    row the random stream left by the rows before it, so that adding, removing or reordering
    another row moved its interval."""
    digest = hashlib.sha256("|".join((str(seed), *names)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def interval_estimate(data: np.ndarray | tuple[np.ndarray, ...], func: Callable[..., Any],
                      reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate and 95% stratified bootstrap interval (rliable) of one row's data (a score
    matrix, or a tuple of them for `func`'s arguments), bootstrapped from `seed` alone."""
    from rliable import library as rly  # here: rliable pulls scipy, pandas and arch (~1 s)

    with global_numpy_seed(seed):
        points, intervals = rly.get_interval_estimates({"row": data}, func, reps=reps)
    return np.asarray(points["row"]), np.asarray(intervals["row"])


@dataclass(frozen=True)
class Aggregate:
    """IQM and mean of one method's scores with stratified bootstrap 95% CIs."""

    iqm: float
    iqm_ci: tuple[float, float]
    mean: float
    mean_ci: tuple[float, float]
    runs: int
    tasks: int


def score_matrices(
    scores: Sequence[tuple[str, str, int, float]],
    tasks_of: Mapping[str, set[str]] | None = None,
    seeds_of: Mapping[str, set[int]] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Build rliable score matrices (seeds x tasks) per method.

    Args:
        scores: (method, task label, seed, score) per finished cell.
        tasks_of: per method, the tasks it was to run (its cells'); a method without a score
            on one of them is left out: its mean over the others is a mean over easier tasks
            when the missing one failed (default: the tasks it has scores on).
        seeds_of: per method, the seeds it was to run; likewise a method with a seed that has
            no score at all is left out (a seed that failed on every task dropped out without
            a word, the method aggregated over the seeds that had finished).

    Returns:
        The matrices of methods with a score for every (seed, task) of theirs, and for the
        others the reason they were left out (rliable needs complete matrices).
    """
    by_method: dict[str, dict[tuple[int, str], float]] = {}
    for method, task, seed, score in scores:
        by_method.setdefault(method, {})[(seed, task)] = score
    matrices: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for method, table in by_method.items():
        seeds = sorted({s for s, _ in table})
        tasks = sorted({t for _, t in table})
        missing = sorted(set((tasks_of or {}).get(method, ())) - set(tasks))
        if missing:
            skipped[method] = f"no finished cell on {', '.join(missing)}"
            continue
        lost = sorted(set((seeds_of or {}).get(method, ())) - set(seeds))
        if lost:
            skipped[method] = f"no finished cell of seed(s) {', '.join(map(str, lost))}"
            continue
        if len(table) != len(seeds) * len(tasks):
            skipped[method] = (
                f"{len(table)} of {len(seeds) * len(tasks)} (seed, task) scores present"
            )
            continue
        matrices[method] = np.array([[table[(s, t)] for t in tasks] for s in seeds])
    return matrices, skipped


def aggregate(
    matrices: Mapping[str, np.ndarray], reps: int = 2000, seed: int = 0
) -> dict[str, Aggregate]:
    """IQM and mean across tasks and seeds with stratified bootstrap CIs (rliable); each
    method's interval is seeded by ``keyed_seed(seed, ..., method)``."""
    if not matrices:
        return {}

    from rliable import metrics as rly_metrics

    def iqm_and_mean(scores: np.ndarray) -> np.ndarray:
        return np.array([rly_metrics.aggregate_iqm(scores), rly_metrics.aggregate_mean(scores)])

    result = {}
    for method, matrix in matrices.items():
        point, interval = interval_estimate(matrix, iqm_and_mean, reps,
                                            keyed_seed(seed, "iqm-mean", method))
        result[method] = Aggregate(
            iqm=float(point[0]),
            iqm_ci=(float(interval[0, 0]), float(interval[1, 0])),
            mean=float(point[1]),
            mean_ci=(float(interval[0, 1]), float(interval[1, 1])),
            runs=matrix.shape[0],
            tasks=matrix.shape[1],
        )
    return result


def performance_profile(
    matrices: Mapping[str, np.ndarray], taus: np.ndarray | None = None, reps: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score distributions (fraction of runs with score > tau) with bootstrap CIs (rliable).

    Returns:
        taus, profile per method (len(taus),), CI per method (2, len(taus)).
    """
    from rliable import library as rly

    if taus is None:
        taus = np.linspace(0.0, 1.0, 41)
    profiles, cis = {}, {}
    for method, matrix in matrices.items():
        with global_numpy_seed(keyed_seed(seed, "profile", method)):
            profile, ci = rly.create_performance_profile({method: matrix}, taus, reps=reps)
        profiles[method], cis[method] = profile[method], ci[method]
    return taus, profiles, cis


def percent(fraction: float) -> str:
    """``fraction`` in whole percent, with the decimals that keep a rate strictly between 0 and
    1 off "0" and "100" (199/200 is "99.5", which whole percent showed as 100)."""
    text = f"{100 * fraction:.0f}"
    digits = 0
    while 0 < fraction < 1 and float(text) in (0.0, 100.0) and digits < 6:
        digits += 1
        text = f"{100 * fraction:.{digits}f}"
    return text


def format_rate(successes: int, trials: int, low: float, high: float) -> str:
    """``16/20 (80% [58, 92])`` for tables."""
    return (f"{successes}/{trials} ({percent(successes / trials)}% "
            f"[{100 * low:.0f}, {100 * high:.0f}])")


def format_distinct_rate(successes: int, trials: int, distinct_trials: int) -> str:
    """`format_rate` with the interval counted over distinct episodes (`replay_interval`), and,
    when some replay, how many distinct episodes it counts: ``0/10 (0% [0, 79]; 1 distinct)``."""
    low, high = replay_interval(successes, trials, distinct_trials)
    text = format_rate(successes, trials, low, high)
    if distinct_trials < trials:
        text = text[:-1] + f"; {distinct_trials} distinct)"
    return text

