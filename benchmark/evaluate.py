"""Evaluation protocol: fixed seeds, per-episode records, success rate with a Wilson interval.

The Wilson interval is ``benchmark.metrics.wilson_interval`` (the matrix's), so a run and the
matrix report the same numbers.

Raw per-episode records are the source of truth; ``summarize`` recomputes aggregates from them.
Evaluation seeds are ``EVAL_SEED_BASE + i`` for episode i, disjoint from the training seeds of
``benchmark.train`` (which start at ``TRAIN_SEED_BASE``), so every method is scored on the same
initial states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import Agent
from benchmark.metrics import distinct_success_summary, wilson_interval

EVAL_SEED_BASE = 10_000
DEFAULT_CONTROL_PERIOD_S = 0.1  # the papers' 10 Hz policy rate, used if the env states none


@dataclass
class EpisodeRecord:
    """One evaluation episode.

    Field names follow the matrix store (``benchmark.cells.EPISODE_FIELDS``).

    Attributes:
        eval_seed: the env reset seed.
        success: ``info["is_success"]`` at any step of the episode.
        episode_return: undiscounted sum of rewards.
        steps: policy steps taken.
        steps_to_success: policy steps until the first success, None if none.
        seconds_to_success: ``steps_to_success`` times the control period [s], None if none.
        peak_force_n: largest contact force seen [N] (``info["max_force_n"]``, else |wrench|).
        final_distance_mm: ``info["distance_to_goal_mm"]`` at the end, None if absent.
        final_insertion_depth_mm: ``info["insertion_depth_mm"]`` at the end, None if absent.
    """

    eval_seed: int
    success: bool
    episode_return: float
    steps: int
    steps_to_success: int | None
    seconds_to_success: float | None
    peak_force_n: float
    final_distance_mm: float | None
    final_insertion_depth_mm: float | None


def eval_seeds(episodes: int, base: int = EVAL_SEED_BASE) -> list[int]:
    """The fixed evaluation seeds ``base, base + 1, ...``."""
    return [base + i for i in range(episodes)]


def control_period_s(env: gym.Env) -> float:
    """Seconds per policy step: the env's ``dt`` if it has one, else 0.1 s (10 Hz)."""
    dt = getattr(env.unwrapped, "dt", None)
    return float(dt) if dt is not None else DEFAULT_CONTROL_PERIOD_S


def run_episode(env: gym.Env, agent: Agent, seed: int, dt_s: float) -> EpisodeRecord:
    """One deterministic-policy episode from ``env.reset(seed=seed)``."""
    agent.reset(seed=seed)
    obs, info = env.reset(seed=seed)
    episode_return, steps, steps_to_success = 0.0, 0, None
    peak_force = float(info.get("max_force_n", 0.0))
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, deterministic=True))
        steps += 1
        episode_return += float(reward)
        done = terminated or truncated
        if "max_force_n" in info:
            peak_force = max(peak_force, float(info["max_force_n"]))
        elif "wrench" in obs:
            peak_force = max(peak_force, float(np.linalg.norm(np.asarray(obs["wrench"])[:3])))
        if steps_to_success is None and bool(info.get("is_success", False)):
            steps_to_success = steps
    return EpisodeRecord(
        eval_seed=seed,
        success=steps_to_success is not None,
        episode_return=episode_return,
        steps=steps,
        steps_to_success=steps_to_success,
        seconds_to_success=None if steps_to_success is None else steps_to_success * dt_s,
        peak_force_n=peak_force,
        final_distance_mm=_optional_float(info.get("distance_to_goal_mm")),
        final_insertion_depth_mm=_optional_float(info.get("insertion_depth_mm")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def evaluate(
    env: gym.Env,
    agent: Agent,
    episodes: int,
    seeds: Sequence[int] | None = None,
) -> list[EpisodeRecord]:
    """Run ``episodes`` deterministic episodes on ``seeds`` (default ``eval_seeds``).

    The torch random state is restored afterwards, so evaluating never changes what training
    does next.
    """
    seeds = eval_seeds(episodes) if seeds is None else list(seeds)
    if len(seeds) != episodes:
        raise ValueError(f"got {len(seeds)} seeds for {episodes} episodes")
    dt_s = control_period_s(env)
    torch_state = torch.get_rng_state()
    try:
        return [run_episode(env, agent, s, dt_s) for s in seeds]
    finally:
        torch.set_rng_state(torch_state)


def summarize(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """Aggregates of per-episode records (success CI: 95% Wilson; cycle time over successes)."""
    n = len(records)
    if n == 0:
        raise ValueError("cannot summarise zero episodes")
    successes = sum(r.success for r in records)
    # The interval counts distinct episodes: N replays of one episode are one trial.
    distinct_successes, distinct = distinct_success_summary(records)
    lo, hi = wilson_interval(distinct_successes, distinct)
    won = [r for r in records if r.success]

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else math.nan

    return {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n,
        "effective_trials": distinct,
        "success_ci95_low": lo,
        "success_ci95_high": hi,
        "mean_return": mean([r.episode_return for r in records]),
        "final_distance_mm_mean": mean([r.final_distance_mm for r in records
                                        if r.final_distance_mm is not None]),
        "cycle_steps_mean": mean([float(r.steps_to_success) for r in won]),
        "cycle_time_s_mean": mean([float(r.seconds_to_success) for r in won]),
        "peak_force_n_mean": mean([r.peak_force_n for r in records]),
        "peak_force_n_max": max((r.peak_force_n for r in records), default=math.nan),
    }


def records_to_dicts(records: Sequence[EpisodeRecord]) -> list[dict[str, Any]]:
    """JSON-ready list of records."""
    return [asdict(r) for r in records]
