"""Scores of ledger entries, recomputed from their episodes every time.

Per task: success rate with a 95% Wilson interval counted over the distinct episodes
(`envs.episode.replay_interval`: a deterministic policy on a noiseless task replays one episode
for every seed, and N replays are one trial).
Across tasks: the mean over tasks of the success rates, and their interquartile mean
(`scipy.stats.trim_mean` at 25%; with fewer than 4 tasks nothing is trimmed and the IQM equals
the mean), with 95% intervals: the mean's Wilson's at an effective sample size
(`_mean_interval`, calibrated near 0% and 100%), the IQM's over draws from the per-task rates'
Jeffreys posteriors at the same effective sample size (`_drawn_rates`). A bootstrap of the
episodes had no spread on
a task whose episodes all succeed (or all fail): its mean read "100% [100, 100]" beside the
task's own "[72, 100]", and ranks rested on it. Probability of improvement over the best
built-in baseline of the same table: rliable's `probability_of_improvement` (per task, P(a
random episode of X beats one of Y) + half the ties, averaged over tasks), in closed form,
1/2 + (mean_X - mean_Y) / 2, with Newcombe's interval of the difference of the two means
(`_improvement_interval`). The IQM interval's draws (20,000) are seeded from the entry's own
results (`_data_key`), and the others are computed from its results alone, so adding,
removing or reordering other entries never moves an interval, nor the ranks that rest on it,
and entries with equal results have equal intervals; of baselines tied on the mean, the first
by name is the best.

Tables: per track, entries whose task version keys equal the track's current keys are ranked,
verified ones on their hidden-seed evaluation, the others (self-reported) on the public dev
seeds, each in its own table; entries made under other keys or an earlier track version
(`leaderboards.tracks.TRACK_VERSION`) are stale and listed apart, unranked.
Ranks: entries sorted by mean; an entry whose mean interval overlaps that of its group's first
entry shares the group's rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from benchmark.metrics import keyed_seed
from envs.episode import (
    EpisodeRecord,
    distinct_success_summary,
    replay_counts,
    replay_interval,
    summarize,
    wilson_interval,
)
from leaderboards.tracks import TRACK_VERSION, Track

#: Draws per IQM and improvement interval (the mean's is computed: `_mean_interval`).
POSTERIOR_DRAWS = 20_000
DRAWS_SEED = 0


@dataclass(frozen=True)
class TaskScore:
    """Success of one entry on one task of its track, with secondary metrics. ``ci``: 95% Wilson
    interval over the distinct episodes (``summary["effective_trials"]`` of them)."""

    label: str
    successes: int
    episodes: int
    ci: tuple[float, float]
    summary: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.successes / self.episodes


@dataclass
class EntryScore:
    """Everything the site shows about one entry in one table."""

    entry: dict[str, Any]
    evaluation: str  # "hidden" or "dev"
    tasks: list[TaskScore]
    #: Per task, (success 0/1, replay count) of each distinct episode.
    distinct: list[np.ndarray]
    mean: float = float("nan")
    mean_ci: tuple[float, float] = (float("nan"), float("nan"))
    iqm: float = float("nan")
    iqm_ci: tuple[float, float] = (float("nan"), float("nan"))
    rank: int | None = None
    prob_improvement: float | None = None
    prob_improvement_ci: tuple[float, float] | None = None
    baseline: str | None = None
    overall: dict[str, Any] = field(default_factory=dict)

    @property
    def entry_id(self) -> str:
        return self.entry["entry_id"]

    @property
    def episodes(self) -> int:
        return sum(t.episodes for t in self.tasks)

    @property
    def distinct_episodes(self) -> int:
        """Episodes the aggregates' intervals count: fewer than `episodes` when some replay."""
        return sum(len(d) for d in self.distinct)


def records_of(evaluation: Mapping[str, Any], label: str) -> list[EpisodeRecord]:
    """The episode records of one task of an evaluation block."""
    return [EpisodeRecord.from_dict({k: v for k, v in e.items() if k != "task"})
            for e in evaluation["episodes"] if e["task"] == label]


def score_entry(entry: dict[str, Any], evaluation: str, labels: Sequence[str]) -> EntryScore:
    """Per-task scores and the distinct episodes of one evaluation."""
    block = entry["evaluations"][evaluation]
    tasks, distinct = [], []
    for label in labels:
        records = records_of(block, label)
        k = sum(r.success for r in records)
        tasks.append(TaskScore(label, k, len(records),
                               replay_interval(k, len(records),
                                               distinct_success_summary(records)[1]),
                               summarize(records)))
        distinct.append(np.array([(r.success, n) for r, n in replay_counts(records)], float))
    every = [r for label in labels for r in records_of(block, label)]
    return EntryScore(entry, evaluation, tasks, distinct, overall=summarize(every))


def _rates(distinct: list[np.ndarray]) -> np.ndarray:
    """(tasks,) success rates over all episodes, replays included."""
    return np.array([(d[:, 0] * d[:, 1]).sum() / d[:, 1].sum() for d in distinct])


def exact_mean(distinct: list[np.ndarray]) -> Fraction:
    """The mean per-task success rate (`_rates`) as an exact fraction. Summed as floats, equal
    results in another order differed in the last bit (0.1625 against 0.16250000000000003),
    and that bit, not the lower bound, decided who led a tied group (`rank`)."""
    return sum((Fraction(int((d[:, 0] * d[:, 1]).sum()), int(d[:, 1].sum())) for d in distinct),
               Fraction(0)) / len(distinct)


def _data_key(distinct: list[np.ndarray]) -> str:
    """What an entry's draws depend on, per task: the success rate over all episodes (as a
    fraction in lowest terms) and the number of distinct episodes. Seeding the draws from it
    (not from the entry's id) gives entries with the same results the same intervals: four
    entries at 150/150 had four lower bounds, and which led a rank group hung on the draws."""
    return ";".join(f"{Fraction(int((d[:, 0] * d[:, 1]).sum()), int(d[:, 1].sum()))}@{len(d)}"
                    for d in distinct)


def _posteriors(distinct: list[np.ndarray]) -> list[tuple[float, float]]:
    """Per task, the (a, b) of the Jeffreys posterior Beta(s + 1/2, f + 1/2) of its rate at the
    effective sample size of `replay_interval`: s + f distinct episodes, s / (s + f) the rate
    over all episodes."""
    return [(rate * len(d) + 0.5, (1 - rate) * len(d) + 0.5)
            for d, rate in zip(distinct, _rates(distinct), strict=True)]


def _drawn_rates(distinct: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(POSTERIOR_DRAWS, tasks) success rates, per task drawn from its `_posteriors`."""
    return np.stack([rng.beta(a, b, size=POSTERIOR_DRAWS) for a, b in _posteriors(distinct)],
                    axis=1)


def _widened(interval: Sequence[float], point: float) -> tuple[float, float]:
    """``interval`` widened to hold `point` (the observed value): a posterior stays below 1 for
    a task whose episodes all succeed, where its interval reaches 1 (Brown, Cai and DasGupta's
    Jeffreys interval does the same at the boundary)."""
    low, high = interval
    return min(float(low), point), max(float(high), point)


def _percentile_interval(samples: np.ndarray, point: float) -> tuple[float, float]:
    """The draws' 2.5 and 97.5 percentiles, `_widened` to hold `point`."""
    return _widened(np.percentile(samples, [2.5, 97.5]), point)


def _mean_and_iqm(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and IQM over the last axis (tasks) of success rates."""
    from scipy.stats import trim_mean  # here: scipy.stats costs ~1 s to import

    return rates.mean(axis=-1), trim_mean(rates, 0.25, axis=-1)


def _probability_of_improvement(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """rliable's `probability_of_improvement` of X over Y from their per-task success rates
    (last axis), in closed form (tested equal): per task the Mann-Whitney statistic P(X > Y) +
    P(X = Y) / 2 of two Bernoulli samples with rates p and q is (1 + p - q) / 2; averaged over
    tasks. rliable runs one Mann-Whitney test per task and bootstrap sample, 5 of the site's
    6.5 minutes."""
    return 0.5 + 0.5 * (p - q).mean(axis=-1)


def _mean_interval(distinct: list[np.ndarray]) -> tuple[float, float]:
    """95% interval of the mean success rate over tasks: Wilson's score interval at an
    effective sample size, the smaller of Kish's, T^2 / sum(1 / n_t) for T tasks of n_t
    distinct episodes, and the stratified one, p(1 - p) / sum(p_t (1 - p_t) / n_t) / T^2 (p_t
    shrunk to (s_t + 1/2) / (n_t + 1) so that a task at 0% or 100% still has a variance). With
    equal n_t Kish's is the smaller one and the interval is conservative for tasks of unequal
    rates; the stratified one takes over where replays leave tasks with unequal n_t and a few
    distinct episodes carry a spread-out rate (Kish's alone: 0.79 in one such case). One task:
    its own Wilson interval, as the per-task column shows.

    It replaced the mean of the per-task Jeffreys posteriors, which each sit ~0.5 / (n + 1)
    towards 1/2: summed over 8-9 tasks that bias outgrew the mean's spread, and its "95%"
    interval held the true mean 45-60% of the time near 0% and 100% (simulated: 9 tasks x 20
    episodes at p = 0.99; this one 0.96: `python -m benchmark.bench_interval_coverage`), the
    point estimate often outside it (review)."""
    rates = _rates(distinct)
    counts = np.array([len(d) for d in distinct], float)
    order = np.lexsort((counts, rates))  # float sums in one order: the same evidence in another
    rates, counts = rates[order], counts[order]  # task order gave another last bit
    tasks = len(distinct)
    shrunk = (rates * counts + 0.5) / (counts + 1)
    pooled = shrunk.mean()
    stratified = pooled * (1 - pooled) / (np.sum(shrunk * (1 - shrunk) / counts) / tasks**2)
    effective = min(tasks**2 / np.sum(1.0 / counts), float(stratified))
    low, high = wilson_interval(float(exact_mean(distinct)) * effective, effective)
    return float(low), float(high)


def aggregate(scores: list[EntryScore]) -> None:
    """Fill mean / IQM with their 95% intervals, in place: the mean's Wilson interval
    (`_mean_interval`), the IQM's from `_drawn_rates` (with fewer than 4 tasks the IQM is the
    mean, and so is its interval)."""
    for s in scores:
        s.iqm = float(_mean_and_iqm(_rates(s.distinct))[1])
        s.mean = float(exact_mean(s.distinct))  # equal results, bitwise equal means
        s.mean_ci = _widened(_mean_interval(s.distinct), s.mean)
        if len(s.distinct) < 4:
            s.iqm_ci = s.mean_ci
            continue
        rng = np.random.default_rng(keyed_seed(DRAWS_SEED, "iqm", _data_key(s.distinct)))
        s.iqm_ci = _percentile_interval(_mean_and_iqm(_drawn_rates(s.distinct, rng))[1], s.iqm)


def rank(scores: list[EntryScore]) -> list[EntryScore]:
    """Sort by mean (descending) and give overlapping entries their group's rank. Among equal
    means the tighter evidence (higher lower bound) leads its group: by name, a tied entry
    with a wide interval (one episode replayed) led, and a third entry's rank changed with
    the tied entry's name (rank 1 as "Aaa", 3 as "Zzz")."""
    ordered = sorted(scores, key=lambda s: (-s.mean, -s.mean_ci[0], s.entry["name"]))
    leader: EntryScore | None = None
    for position, s in enumerate(ordered, start=1):
        if leader is None or s.mean_ci[1] < leader.mean_ci[0]:
            leader, s.rank = s, position
        else:
            s.rank = leader.rank
    return ordered


def improvement_over_best_baseline(scores: list[EntryScore]) -> None:
    """Probability of improvement of every entry over the best built-in baseline, in place."""
    baselines = [s for s in scores if s.entry["builtin"]]
    if not baselines:
        return
    best = min(baselines, key=lambda s: (-s.mean, s.entry["name"]))  # ties: not by list order
    others = [s for s in scores if s is not best]
    if not others:
        return
    for s in others:
        s.prob_improvement = float(_probability_of_improvement(_rates(s.distinct),
                                                               _rates(best.distinct)))
        s.prob_improvement_ci = _improvement_interval(s.distinct, best.distinct)
        s.baseline = best.entry["name"]


def _improvement_interval(entry: list[np.ndarray], baseline: list[np.ndarray]
                          ) -> tuple[float, float]:
    """95% interval of the probability of improvement, 1/2 + (mean_X - mean_Y) / 2 in closed
    form: Newcombe's hybrid score interval of the difference of the two means, from their
    `_mean_interval`s. Drawn from the Jeffreys posteriors it held the true value 64% of the
    time for an entry near 0% against a baseline at 90% (9 tasks x 20 episodes); this one
    0.94-0.97 (`python -m benchmark.bench_interval_coverage`)."""
    p, q = _rates(entry).mean(), _rates(baseline).mean()
    (p_low, p_high), (q_low, q_high) = _mean_interval(entry), _mean_interval(baseline)
    low = (p - q) - math.hypot(p - p_low, q_high - q)
    high = (p - q) + math.hypot(p_high - p, q - q_low)
    return float(0.5 + 0.5 * low), float(0.5 + 0.5 * high)


@dataclass
class TrackTables:
    """The tables of one track."""

    track: Track
    verified: list[EntryScore]
    self_reported: list[EntryScore]
    stale: list[EntryScore]


def track_tables(track: Track, entries: Sequence[dict[str, Any]]) -> TrackTables:
    """Split a track's entries into verified, self-reported and stale tables, scored and ranked."""
    keys = track.version_keys()
    verified, self_reported, stale = [], [], []
    for entry in entries:
        if entry["track"] != track.name:
            continue
        use = "hidden" if "hidden" in entry["evaluations"] else "dev"
        block = entry["evaluations"][use]
        labels = list(block["task_version_keys"])
        score = score_entry(entry, use, labels)
        if block["task_version_keys"] != keys or block.get("track_version", 1) != TRACK_VERSION:
            stale.append(score)
        elif use == "hidden":
            verified.append(score)
        else:
            self_reported.append(score)
    tables = []
    for table in (verified, self_reported, stale):
        aggregate(table)
        tables.append(table)
    for table in tables[:2]:
        improvement_over_best_baseline(table)
    return TrackTables(track, rank(verified), rank(self_reported),
                       sorted(stale, key=lambda s: -s.mean))


@dataclass(frozen=True)
class Sim2SimTask:
    """One task of an entry's sim-to-sim block: MuJoCo (hidden evaluation) and MuJoCo without
    sensor variation beside PyBullet on the same seeds, or why PyBullet cannot run it
    (``reason``; the counts are then 0)."""

    label: str
    reason: str | None
    episodes: int = 0
    mujoco_successes: int = 0
    pybullet_successes: int = 0
    #: (successes, episodes) over PyBullet's distinct episodes: what its interval counts (a
    #: deterministic policy on a noiseless task replays one; 50 replays read "[93, 100]").
    pybullet_distinct: tuple[int, int] = (0, 0)
    #: Successes of MuJoCo with ``noiseless=True``, the reference PyBullet is compared with
    #: (None: a block from before 2026-12-05 has none).
    noiseless_successes: int | None = None
    #: Distinct episodes among those noiseless ones (a deterministic policy replays one).
    noiseless_distinct: int | None = None

    @property
    def supported(self) -> bool:
        return self.reason is None

    @property
    def pybullet_ci(self) -> tuple[float, float]:
        return replay_interval(self.pybullet_successes, self.episodes,
                               self.pybullet_distinct[1])


def sim2sim_scores(entry: Mapping[str, Any]) -> list[Sim2SimTask] | None:
    """Per task of the entry's sim-to-sim block (None when it has none). Shown beside the
    ranking, never in it."""
    block = entry.get("sim2sim")
    if block is None:
        return None
    hidden = entry["evaluations"]["hidden"]
    out = []
    for label, task in block["tasks"].items():
        if not task["supported"]:
            out.append(Sim2SimTask(label, task["reason"]))
            continue
        bullet = [e for e in block["episodes"] if e["task"] == label]
        mujoco = [e for e in hidden["episodes"] if e["task"] == label]
        quiet = None if "noiseless" not in block else [
            e for e in block["noiseless"]["episodes"] if e["task"] == label]
        out.append(Sim2SimTask(
            label, None, len(bullet), sum(e["success"] for e in mujoco),
            sum(e["success"] for e in bullet), distinct_success_summary(bullet),
            None if quiet is None else sum(e["success"] for e in quiet),
            None if quiet is None else distinct_success_summary(quiet)[1]))
    return out
