"""One episode runner and one episode record for every place that runs episodes.

Rollout, evaluation during training, the benchmark matrix, sim-vs-real validation and the
leaderboard all call `run_episode` and keep `EpisodeRecord`s, in simulation and on the robot
alike, so their tables are comparable field by field. A policy is any callable
obs -> action; if it also has a ``reset(seed=...)`` method (agents do), it is called before
each episode.

Scorer (``SCORER_VERSION``; part of every task version key, see `envs.version_key`):

- success: ``info["is_success"]`` at any step; time to success = steps to the first success x
  the control period ``env.unwrapped.dt`` [s] (a family's or NIST board's: its running
  insertion env's).
- peak force: ``info["max_force_n"]`` at the end of the episode, the env's own episode peak
  (simulation v0: contact force on the plug sampled at 100 Hz; simulation from v1 and the robot:
  the low-passed wrist F/T force, which carries the tool's inertia as well as contact: a free-air
  zig-zag at 5 cm/s reads 7.5 N, README "Known fidelity gaps").
- time above the force limit: control periods whose peak force ``info["force_n"]`` exceeded
  the connector's limit `force_limit_n` (``FORCE_LIMIT_FACTOR`` = 1.5 x the upper bound of its
  documented insertion force range, `ConnectorSpec.mating.insertion_n`; ``FORCE_LIMIT_N`` =
  20 N for connectors without documented forces: version-0 tasks, NIST board parts), times the
  control period [s]. A normal insertion stays below it; time above it is force beyond what
  the connector's datasheet asks for. The connector is the one acting during that control
  period (`envs.insertion_env.active_insertion_env`: a family's member, a NIST sequence's
  current part). ``time_above_20n_s``: the same against a flat 20 N (the issue's figure, kept
  for comparison; v1 insertions cross it in normal use, USB-A needs up to 35 N).
- path length: summed distance between the TCP positions ``info["tcp_pos_m"]`` at reset and
  after every step [m]. A step whose info holds ``next_tcp_pos_m`` (a NIST sequence handing
  over to its next part, whose positions are in that part's frame) ends one stretch; the next
  starts there (``SEQUENCE_SCORER_VERSION``).
- jerk: RMS over the episode of the norm of the third finite difference of those TCP positions
  (within each stretch) divided by dt^3 [m/s^3]. Sampled at the policy rate (10 Hz), so it
  measures how jerky the policy's commands are, not vibration inside a control period; None
  for episodes without a stretch of more than 3 steps.

A quantity the env does not report (envs without ``force_n`` / ``tcp_pos_m`` in `info`) is None,
never a made-up zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.special import ndtri  # norm.ppf's own kernel; scipy.stats costs ~1 s to import

#: 1: flat 20 N force limit; 2: per-connector force limit (`force_limit_n`), ``time_above_20n_s``.
SCORER_VERSION = 2
#: Of a multi-part episode (a NIST board sequence), in that task's version key only. 1: the
#: peak force was the last part's, and path and jerk ran across each hand-over, a jump between
#: two parts' frames; 2: the episode's peak over all parts, path and jerk within each part.
SEQUENCE_SCORER_VERSION = 2
#: Flat contact-force threshold [N]: ``time_above_20n_s``, and the limit of connectors without
#: documented mating forces.
FORCE_LIMIT_N = 20.0
#: A connector's force limit is this factor x the upper bound of its documented insertion range.
FORCE_LIMIT_FACTOR = 1.5

Observation = dict[str, np.ndarray]
Policy = Callable[[Observation], np.ndarray]


class PolicyError(ValueError):
    """The policy returned something that is not an action of the env's action space."""


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode, as every table and the leaderboard ledger keep it.

    Attributes:
        task_id: Gymnasium ID, e.g. ``InsertBench/USB-v0``.
        task_version_key: `envs.version_key.task_version_key` of the task and its kwargs.
        seed: the env reset seed.
        success: the task reported success at some step.
        steps: policy steps taken.
        steps_to_success: policy steps until the first success; None if none.
        time_to_success_s: ``steps_to_success`` x control period [s]; None if none.
        episode_return: undiscounted sum of rewards.
        peak_force_n: the episode's peak contact force [N].
        time_above_force_limit_s: time in control periods whose peak force exceeded the acting
            connector's `force_limit_n` [s].
        jerk_rms_m_s3: RMS TCP jerk at the policy rate [m/s^3] (see the module docstring).
        path_length_m: TCP path length [m].
        final_distance_mm: ``info["distance_to_goal_mm"]`` at the end.
        final_insertion_depth_mm: ``info["insertion_depth_mm"]`` at the end.
        safety_trip: the real robot's safety trip that ended the episode, None otherwise.
        interventions: steps a human (or an intervention wrapper) overrode the policy.
        failure: why the episode failed other than by running out of time (a safety trip's
            message, a physics error, a policy's garbage or exception); None otherwise. A failed
            episode is never a success.
        force_limit_n: the force limit [N] of the connector acting at the episode's end (the
            task's; a NIST sequence's last part); None if the env names no connector.
        time_above_20n_s: time in control periods whose peak force exceeded 20 N [s].
    """

    task_id: str
    task_version_key: str
    seed: int
    success: bool
    steps: int
    steps_to_success: int | None
    time_to_success_s: float | None
    episode_return: float
    peak_force_n: float | None
    time_above_force_limit_s: float | None
    jerk_rms_m_s3: float | None
    path_length_m: float | None
    final_distance_mm: float | None = None
    final_insertion_depth_mm: float | None = None
    safety_trip: str | None = None
    interventions: int = 0
    failure: str | None = None
    force_limit_n: float | None = None
    time_above_20n_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the ledger's and the store's form)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeRecord:
        """Inverse of `to_dict`; unknown keys, and values not of their field's type (bool,
        int, float or str, or None where the field allows it), are a ValueError: a text peak
        force in a trial log ended a resumed session in numpy's "add.reduce" error, naming no
        file (real24)."""
        kinds = {f.name: f.type for f in fields(cls)}  # annotations as text (see the imports)
        unknown = set(data) - set(kinds)
        if unknown:
            raise ValueError(f"unknown episode record fields {sorted(unknown)}")
        for name, value in data.items():
            kind, optional = kinds[name].removesuffix(" | None"), kinds[name].endswith("None")
            if not (value is None and optional or _RECORD_TYPES[kind](value)):
                raise ValueError(f"episode record field {name} is {value!r}, not "
                                 f"{'a' if kind != 'int' else 'an'} {kind}"
                                 f"{' or null' if optional else ''}")
        if (problem := record_problem(data)) is not None:
            raise ValueError(f"episode record of seed {data.get('seed')}: {problem}")
        return cls(**dict(data))


#: Record fields that no episode writes below zero (counts, magnitudes, durations).
_NON_NEGATIVE = ("seed", "steps", "peak_force_n", "time_above_force_limit_s", "jerk_rms_m_s3",
                 "path_length_m", "final_distance_mm", "interventions", "force_limit_n",
                 "time_above_20n_s")


def record_problem(data: Mapping[str, Any]) -> str | None:
    """What makes a record (`EpisodeRecord.to_dict`'s form, its types checked) one that no
    episode writes, or None: a number not finite, or below zero where it cannot be; a success
    without its steps and time to success, or a failure with them; a success after the
    episode's end, or with a failure or safety trip recorded. A trial log or an entry file
    edited so read as successes, NaN forces and negative steps in their tables (real28,
    leader27)."""
    numbers = {k: v for k, v in data.items() if isinstance(v, int | float)
               and not isinstance(v, bool)}
    for name, value in numbers.items():
        if not math.isfinite(value) or (name in _NON_NEGATIVE and value < 0):
            return f"{name} is {value}"
    success, steps = data.get("success"), data.get("steps_to_success")
    timed = data.get("time_to_success_s")
    if success != (steps is not None) or (steps is None) != (timed is None):
        return (f"success {success} with steps_to_success {steps} and time_to_success_s "
                f"{timed} (a success has both, a failure neither)")
    if steps is not None and not (steps <= data.get("steps", 0) and timed > 0):
        return f"success after {steps} steps ({timed} s) of an episode of {data.get('steps')}"
    if success and (data.get("failure") or data.get("safety_trip")):
        return "a success with a failure or safety trip recorded"
    return None


#: The checks of an `EpisodeRecord` field's type, by its annotation (bool is no number here).
_RECORD_TYPES: dict[str, Callable[[Any], bool]] = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
}


def check_action(action: Any, space: gym.spaces.Box, step: int) -> np.ndarray:
    """The action as an array of the space's shape and dtype, finite and within its bounds;
    PolicyError if it is not one."""
    try:
        raw = np.asarray(action)
        if raw.dtype.kind in "US" or (raw.dtype.kind == "O" and any(
                isinstance(v, str | bytes) for v in raw.ravel().tolist())):
            raise TypeError("it holds text")  # numpy parsed "0.5   " as 0.5 (leader22, diff27)
        a = np.asarray(action, dtype=space.dtype)
    except (TypeError, ValueError) as err:
        why = str(err) if len(str(err)) <= 200 else f"{str(err)[:200]}..."  # it quoted 1 MB
        raise PolicyError(f"step {step}: the policy returned {type(action).__name__}, "
                          f"not an array of numbers: {why}") from None
    if a.shape != space.shape:
        raise PolicyError(f"step {step}: the policy returned an action of shape {a.shape}, "
                          f"the task's action space has shape {space.shape}")
    if not np.all(np.isfinite(a)):
        raise PolicyError(f"step {step}: the policy returned a non-finite action {a.tolist()}")
    # The envs' own tolerance (`envs.task_options.check_action`), which refused it in env.step
    # without the policy's name for it.
    if not np.all((a >= space.low - 1e-6) & (a <= space.high + 1e-6)):
        bounds = (f"[{space.low.flat[0]:g}, {space.high.flat[0]:g}]"
                  if np.ptp(space.low) == 0 and np.ptp(space.high) == 0 else "bounds")
        raise PolicyError(f"step {step}: the policy returned an action outside the action "
                          f"space {bounds}: {a.tolist()}")
    return a


def force_limit_n(connector: Any) -> float:
    """The force limit of `connector` (an `envs.connectors.ConnectorSpec`) [N]:
    ``FORCE_LIMIT_FACTOR`` x the upper bound of its documented insertion force, or
    ``FORCE_LIMIT_N`` when it documents none (`ConnectorSpec.mating` is None)."""
    mating = getattr(connector, "mating", None)
    if mating is None:
        return FORCE_LIMIT_N
    return FORCE_LIMIT_FACTOR * float(mating.insertion_n[1])


def acting_force_limit_n(env: gym.Env) -> float | None:
    """`force_limit_n` of the connector `env` is acting on now; None when it names none."""
    from envs.insertion_env import active_insertion_env

    try:
        task = active_insertion_env(env).task
    except TypeError:
        task = getattr(env.unwrapped, "task", None)  # the real robot's env
    return None if task is None else force_limit_n(task.connector)


def task_identity(env: gym.Env) -> tuple[str, str]:
    """(task ID, task version key) of an env made with ``gym.make``."""
    from envs.version_key import task_version_key

    spec = env.spec
    if spec is None:
        raise ValueError("the env has no spec (not made with gym.make); pass task_id and "
                         "task_version_key to run_episode")
    kwargs = {k: v for k, v in spec.kwargs.items() if k != "task"}
    kwargs["max_episode_steps"] = spec.max_episode_steps
    return spec.id, task_version_key(spec.id, kwargs)


def run_episode(
    env: gym.Env,
    policy: Policy,
    seed: int,
    *,
    task_id: str | None = None,
    task_version_key: str | None = None,
    frames: list[np.ndarray] | None = None,
    options: Mapping[str, Any] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> EpisodeRecord:
    """Run one episode from ``env.reset(seed=seed)`` until it terminates or is truncated.

    Args:
        env: a simulated or real InsertBench env (any Gymnasium env with a Box action space).
        policy: callable obs -> action; ``policy.reset(seed=seed)`` is called first if present.
        seed: env reset seed.
        task_id, task_version_key: default: from ``env.spec`` (`task_identity`).
        frames: if given, ``env.render()`` is appended at reset and after every step.
        options: passed to ``env.reset``.
        on_failure: if given, anything the policy or ``env.step`` raises after the reset ends
            the episode as failed (``record.failure`` says why) and calls ``on_failure()``
            (the real robot halts its arm there); a session of trials goes on past it.

    Raises:
        PolicyError: the policy returned a wrongly shaped or non-finite action (only without
            ``on_failure``; with it, that is the episode's failure).
    """
    if task_id is None or task_version_key is None:
        inferred_id, inferred_key = task_identity(env)
        task_id = task_id or inferred_id
        task_version_key = task_version_key or inferred_key
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset(seed=seed)
    dt = _control_period_s(env)
    obs, info = env.reset(seed=seed, options=dict(options) if options else None)
    if frames is not None:
        frames.append(env.render())
    # Stretches of TCP positions in one frame each (a NIST sequence's parts).
    stretches = [[info["tcp_pos_m"]]] if "tcp_pos_m" in info else None
    above_limit_steps = above_20n_steps = 0
    force_known = limit_known = True
    steps, episode_return, steps_to_success, interventions = 0, 0.0, None, 0
    failure = None
    while True:
        limit = acting_force_limit_n(env)  # a NIST sequence moves on to its next part
        try:
            action = check_action(policy(obs), env.action_space, steps)
            obs, reward, terminated, truncated, info = env.step(action)
        except Exception as err:
            if on_failure is None:
                raise
            on_failure()
            failure = f"{type(err).__name__}: {err}"
            break
        steps += 1
        episode_return += float(reward)
        interventions += int(bool(info.get("intervened", False)))
        if steps_to_success is None and bool(info.get("is_success", False)):
            steps_to_success = steps
        if "force_n" in info:
            force = float(info["force_n"])
            above_20n_steps += int(force > FORCE_LIMIT_N)
            if limit is None:
                limit_known = False
            else:
                above_limit_steps += int(force > limit)
        else:
            force_known = False
        if stretches is not None and "tcp_pos_m" in info:
            stretches[-1].append(info["tcp_pos_m"])
            if "next_tcp_pos_m" in info:
                stretches.append([info["next_tcp_pos_m"]])
        if frames is not None:
            frames.append(env.render())
        if terminated or truncated:
            break
    path_length, jerk = _kinematics(stretches, dt, steps)
    trip = info.get("safety_trip")
    if failure is None and trip is not None:
        failure = f"safety trip ({trip}): {info.get('safety_message')}"
    if failure is None and info.get("physics_error"):
        failure = f"physics error: {info['physics_error']}"
    if failure is not None:
        steps_to_success = None
    return EpisodeRecord(
        task_id=task_id,
        task_version_key=task_version_key,
        seed=int(seed),
        success=steps_to_success is not None,
        steps=steps,
        steps_to_success=steps_to_success,
        time_to_success_s=None if steps_to_success is None else steps_to_success * dt,
        episode_return=episode_return,
        peak_force_n=_optional_float(info.get("max_force_n")),
        time_above_force_limit_s=above_limit_steps * dt if force_known and limit_known else None,
        jerk_rms_m_s3=jerk,
        path_length_m=path_length,
        final_distance_mm=_optional_float(info.get("distance_to_goal_mm")),
        final_insertion_depth_mm=_optional_float(info.get("insertion_depth_mm")),
        safety_trip=trip,
        interventions=interventions,
        failure=failure,
        force_limit_n=limit,
        time_above_20n_s=above_20n_steps * dt if force_known else None,
    )


def _control_period_s(env: gym.Env) -> float:
    """The env's control period [s]: its own ``dt``, or that of the insertion env running inside
    it (a connector family, a NIST board sequence)."""
    dt = getattr(env.unwrapped, "dt", None)
    if dt is None:
        from envs.insertion_env import active_insertion_env

        dt = active_insertion_env(env).dt
    return float(dt)


def _kinematics(
    stretches: list[list[Any]] | None, dt: float, steps: int
) -> tuple[float | None, float | None]:
    """(path length [m], RMS jerk [m/s^3]) of stretches of TCP positions sampled every dt (a
    position for the start and after every step; each stretch after the first starts with its
    frame's position of the step that ended the previous one)."""
    if stretches is None or sum(len(s) for s in stretches) != steps + len(stretches):
        return None, None
    parts = [np.asarray(s, dtype=np.float64) for s in stretches]
    path = float(sum(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p in parts))
    jerks = [np.diff(p, n=3, axis=0) / dt**3 for p in parts if len(p) >= 4]
    if not jerks:
        return path, None
    jerk = np.concatenate(jerks)
    return path, float(np.sqrt(np.mean(np.sum(jerk**2, axis=1))))


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def wilson_interval(successes: float, trials: int,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for the binomial success rate
    `successes / trials`; `successes` may be fractional (`replay_interval`)."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    z = float(ndtri(0.5 + confidence / 2))
    p, shrink = successes / trials, 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    # Exact bounds at 0 and n successes (the formula's rounding left 2.8e-17 above a rate of 0)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def replay_interval(successes: int, episodes: int, distinct: int,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of the success rate over all `episodes`, counted as `distinct` trials:
    replays of one episode add no information (N replays are one trial, `distinct_episodes`),
    so the observed rate weighs as many trials as there are distinct episodes (an effective
    sample size). The interval over the distinct episodes alone when none or all replay one;
    in between the rate stays inside its interval (49 replays of a success and one failure
    read "98% [33, 100]", the interval of 1.96 successes in 2 trials)."""
    if not 1 <= distinct <= episodes:
        raise ValueError(f"distinct episodes must be in [1, {episodes}], got {distinct}")
    return wilson_interval(successes * distinct / episodes, distinct, confidence)


#: Record fields that name an episode rather than describe what happened in it.
IDENTITY_FIELDS = frozenset(
    {"task_id", "task_version_key", "seed", "eval_seed", "episode", "index", "wall_clock_s",
     "cell", "config_hash", "is_final"}
)


def outcome_key(record: Mapping[str, Any] | Any) -> tuple:
    """A record's outcome fields (all but `IDENTITY_FIELDS`), hashable: equal for replays."""
    values = record if isinstance(record, Mapping) else asdict(record)
    return tuple(sorted((k, repr(v)) for k, v in values.items() if k not in IDENTITY_FIELDS))


def replay_counts(records: Sequence[Mapping[str, Any] | Any]) -> list[tuple[Any, int]]:
    """Each distinct episode of `records` (see `distinct_episodes`) with how many records
    replay it, in order of first appearance."""
    groups: dict[tuple, list] = {}
    for record in records:
        groups.setdefault(outcome_key(record), [record, 0])[1] += 1
    return [(record, count) for record, count in groups.values()]


def replay_groups(records: Sequence[EpisodeRecord]) -> dict[int, int]:
    """Seed -> index of the distinct episode (see `distinct_episodes`) its record replays."""
    index: dict[tuple, int] = {}
    return {r.seed: index.setdefault(outcome_key(r), len(index)) for r in records}


def distinct_episodes(records: Sequence[Mapping[str, Any] | Any]) -> list:
    """The records with replays dropped: episodes that agree exactly on every outcome field
    (success, steps, return, forces, distances: all but `IDENTITY_FIELDS`) are one episode seen
    again, as a deterministic policy on a noiseless task replays it for every seed. Records are
    dicts or `EpisodeRecord`s; the first of each group is kept, in order."""
    return [record for record, _ in replay_counts(records)]


def distinct_success_summary(records: Sequence[Mapping[str, Any] | Any]) -> tuple[int, int]:
    """(successes, trials) over distinct episodes: what a confidence interval may count."""
    distinct = distinct_episodes(records)
    wins = sum(bool(r["success"] if isinstance(r, Mapping) else r.success) for r in distinct)
    return wins, len(distinct)


def summarize(records: Sequence[EpisodeRecord],
              distinct: tuple[int, int] | None = None) -> dict[str, Any]:
    """Aggregates of episode records: success with its 95% interval counted over the distinct
    episodes (`replay_interval`: N replays of one episode are one trial; `distinct`, the
    (successes, trials) to count instead, where replays are not exact); cycle time over the
    successes; means over the episodes that report a quantity (NaN when none does)."""
    n = len(records)
    if n == 0:
        raise ValueError("cannot summarise zero episodes")
    successes = sum(r.success for r in records)
    distinct_successes, distinct = distinct or distinct_success_summary(records)
    low, high = replay_interval(successes, n, distinct)
    won = [r for r in records if r.success]

    def mean(values: list[float | None]) -> float:
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present else math.nan

    forces = [r.peak_force_n for r in records if r.peak_force_n is not None]
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n,
        "effective_trials": distinct,
        "distinct_successes": distinct_successes,
        "success_ci95_low": low,
        "success_ci95_high": high,
        "mean_return": mean([r.episode_return for r in records]),
        "final_distance_mm_mean": mean([r.final_distance_mm for r in records]),
        "cycle_steps_mean": mean([r.steps_to_success for r in won]),
        "cycle_time_s_mean": mean([r.time_to_success_s for r in won]),
        "peak_force_n_mean": mean(forces),
        # NaN wherever one is (as the mean): the built-in max kept or dropped it by order.
        "peak_force_n_max": float(np.max(forces)) if forces else math.nan,
        "time_above_force_limit_s_mean": mean([r.time_above_force_limit_s for r in records]),
        "time_above_20n_s_mean": mean([r.time_above_20n_s for r in records]),
        "jerk_rms_m_s3_mean": mean([r.jerk_rms_m_s3 for r in records]),
        "path_length_m_mean": mean([r.path_length_m for r in records]),
        "safety_trips": sum(r.safety_trip is not None for r in records),
        "failures": sum(r.failure is not None for r in records),
        "interventions": sum(r.interventions for r in records),
    }


def success_text(summary: Mapping[str, Any]) -> str:
    """``16/20 [0.58, 0.92]`` from `summarize`'s dict, and ``; 1 distinct`` after it when some
    episodes replay (the interval counts the distinct ones: 50/50 of one replayed episode is
    ``[0.21, 1.00]``, not 50 trials)."""
    text = (f"{summary['successes']}/{summary['episodes']} "
            f"[{summary['success_ci95_low']:.2f}, {summary['success_ci95_high']:.2f}]")
    if summary["effective_trials"] < summary["episodes"]:
        text += f"; {summary['effective_trials']} distinct"
    return text
