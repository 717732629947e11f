"""Sim-vs-real validation: the same policy on the simulated task and on the cell, one table.

A policy is any callable obs -> action. `policy_for(env)` builds one per environment, since
paper 000's P-controller reads its env's believed goal: `real.p_controller` serves either side,
`checkpoint_policy` loads an agent through `agents` (imported only then).

A session survives its trials: `run_episodes` records a trial whose policy returns garbage or
crashes, or whose robot trips, faults or disconnects, as failed with the reason, halts the arm
and goes on with the next one; each trial is appended to a `TrialLog` (JSON lines) as it
finishes, and a rerun with the same settings skips the seeds already there. Only a failed reset
(the robot cannot start an episode) ends the session, with every finished trial kept.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.episode import EpisodeRecord, outcome_key, replay_groups, run_episode, summarize
from envs.json_files import write_json

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
PolicyFactory = Callable[[gym.Env], Policy]


def _differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys whose values differ between `a` and `b`, nested ones as "cell.host"."""
    keys = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _differing_keys(x, y, f"{prefix}{key}.")
        elif x != y or (key in a) != (key in b):
            keys.append(f"{prefix}{key}")
    return keys


def checkpoint_policy(path: str | Path) -> PolicyFactory:
    """An agent checkpoint (`agents.load_agent`) acting deterministically; its spaces must be
    the env's. Agents that act on top of a base policy (residual RL, `p_controller`) get paper
    000's P-controller of the env they run on (`real.p_controller`), on either side."""
    try:
        import agents
        from agents.checkpoint import read_meta
        from agents.registry import check_action_scale, resolve_agent_dir
    except ImportError as e:
        raise ImportError(
            f"loading {path} needs the `agents` package (and torch); use --policy p_controller "
            f"to validate without one"
        ) from e
    agent_dir = resolve_agent_dir(path)
    name = read_meta(agent_dir)["agent"]  # a damaged agent.json named (agents23)
    needs_base_policy = agents.agent_spec(name).needs_base_policy

    def factory(env: gym.Env) -> Policy:
        from real.env import p_controller

        kwargs = {"base_policy": p_controller(env)} if needs_base_policy else {}
        agent = agents.load_agent(agent_dir, allow_policy_only=True, device="cpu",
                                  acting_only=True, **kwargs)
        check_action_scale(agent, env)
        for space in ("observation_space", "action_space"):
            theirs = getattr(agent, space, None)
            if theirs is not None and theirs != getattr(env, space):
                raise ValueError(
                    f"the checkpoint's {space} {theirs} differs from the env's "
                    f"{getattr(env, space)}; pass the env kwargs it was trained with (--env)"
                )
        return lambda obs: agent.act(obs, deterministic=True)

    return factory


class TrialLog:
    """Trials of one setting ("sim", "real", "twin") as JSON lines, written as they finish.

    The first line is the session's `header` (task, policy, env kwargs, ...); reopening a log
    whose header differs raises ValueError when it holds trials, so a resume never mixes two
    experiments (a log of another session without trials is started over).
    """

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.header = json.loads(json.dumps(header))
        self.results: list[EpisodeRecord] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            try:
                lines = self.path.read_text().splitlines()
                found = json.loads(lines[0])
            except (OSError, ValueError, IndexError) as err:  # also a folder, or bytes
                # It used to say only "Expecting value: line 1 column 1", naming no file.
                raise ValueError(f"{self.path} is not a trial log ({err}); give another --out "
                                 "or delete it to start over") from None
            # A header without trials (a session refused before its first trial, e.g. for a
            # policy that does not fit the env's kwargs) holds nothing to mix: start over.
            if found != self.header and any(line.strip() for line in lines[1:]):
                # Which settings differ: the whole header alone left the user to find them
                # (newuser22: a zero_ft_sensor left out)
                differ = _differing_keys(found, self.header) if isinstance(found, dict) else []
                raise ValueError(
                    f"{self.path} holds trials of another session (it differs in "
                    f"{differ or 'its form'}: {found}); give another --out or delete it to "
                    "start over"
                )
            trials = lines[1:] if found == self.header else []
            for number, line in enumerate(trials, start=2):
                try:
                    record = EpisodeRecord.from_dict(json.loads(line))
                    if record.seed in self.done_seeds():  # the last line's won (real28)
                        raise ValueError(f"a second trial of seed {record.seed}")
                    self.results.append(record)
                except (json.JSONDecodeError, TypeError, ValueError) as err:
                    # The last line, cut short by a crash: run again (a whole record of bad
                    # values is no crash's)
                    if number == len(lines) and isinstance(err, json.JSONDecodeError):
                        break
                    # Only the last line can be cut short (each open rewrites the file): every
                    # intact trial after a damaged one was dropped and run again (real22).
                    follow = ", and trials follow it" if number < len(lines) else ""
                    raise ValueError(
                        f"{self.path} line {number} is no trial record ({err}){follow}: "
                        "repair or delete that line, or give another --out"
                    ) from None
            self._rewrite()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite()

    def done_seeds(self) -> set[int]:
        return {r.seed for r in self.results}

    def check_version_key(self, key: str) -> None:
        """ValueError where the log's trials ran on another version of the task (`key`: its
        `envs.version_key.task_version_key` today): after an update that changed the task's
        dynamics or score, a resume mixed both in one table (real24)."""
        older = sorted({r.task_version_key for r in self.results} - {key})
        if older:
            raise ValueError(f"{self.path} holds trials of task version key {older[0][:12]}; "
                             f"this code builds the task as {key[:12]} (its dynamics or score "
                             "changed): give another --out, or delete the log to start over")

    def append(self, result: EpisodeRecord) -> None:
        """Record `result`; RuntimeError (a session that cannot go on, as a lost robot) where
        the log cannot be written: a full disk ended validate in "OSError: [Errno 28] No space
        left on device", naming no file (real26). A line cut short there is dropped on resume."""
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(result.to_dict()) + "\n")
                f.flush()
        except OSError as err:
            raise RuntimeError(f"the trial of seed {result.seed} could not be recorded in "
                               f"{self.path} ({err.strerror or err}): make room") from None
        self.results.append(result)

    def _rewrite(self) -> None:
        lines = [self.header] + [r.to_dict() for r in self.results]
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))
        tmp.replace(self.path)


def run_trial(
    env: gym.Env, policy: Policy, seed: int, task_id: str, task_version_key: str
) -> EpisodeRecord:
    """One trial from `env.reset(seed=seed)` to its end (`envs.episode.run_episode`, the record
    simulation, the matrix and the leaderboard keep). A failed reset raises; anything after it
    (a safety trip, a policy that raises or returns an action the env refuses) ends the trial as
    failed with the reason, the arm halted. A camera that fails mid-trial raises its
    `CameraError` once the arm is halted: the cell's failure, not the policy's (recorded, it
    counted in the success rate and a resume never ran that seed again; real24)."""
    from real.camera import CameraError

    failures: list[BaseException | None] = []

    def halt() -> None:  # called inside run_episode's handler: the exception is at hand
        failures.append(sys.exc_info()[1])
        _halt(env)

    record = run_episode(env, policy, seed, task_id=task_id, task_version_key=task_version_key,
                         on_failure=halt)
    if failures and isinstance(failures[0], CameraError):
        raise CameraError(f"{failures[0]} (the trial of seed {seed} is not recorded: no failure "
                          "of the policy)") from failures[0]
    return record


def _halt(env: gym.Env) -> None:
    """Stop a real arm after a trial failed outside the safety layer (no-op in simulation)."""
    safe = getattr(env.unwrapped, "safe", None)
    if safe is not None:
        safe.halt()


def run_episodes(
    env: gym.Env,
    policy_for: PolicyFactory,
    episodes: int,
    seed: int = 0,
    log: TrialLog | None = None,
    *,
    task_id: str,
    env_kwargs: dict[str, Any],
    on_trial: Callable[[EpisodeRecord], None] | None = None,
) -> list[EpisodeRecord]:
    """Run trials with seeds seed, seed + 1, ..., seed + episodes - 1 (those not yet in `log`),
    appending each to `log` as it ends (and handing it to `on_trial`: a session on an arm runs
    for minutes); returns all of them in seed order. Every record carries `task_id` and the
    version key of the simulated task with `env_kwargs`, on either side."""
    from envs.version_key import task_version_key

    key = task_version_key(task_id, env_kwargs)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if log is not None:
        log.check_version_key(key)
    policy = policy_for(env)
    done = log.done_seeds() if log is not None else set()
    results = {r.seed: r for r in (log.results if log is not None else [])}
    for s in range(seed, seed + episodes):
        if s in done:
            continue
        result = run_trial(env, policy, s, task_id, key)
        if result.safety_trip == "connection":
            # The network's failure, not the policy's: recorded, it counted in the success
            # rate, and a resume never ran that seed again (real23).
            raise RuntimeError(f"the link to the robot was lost during the trial of seed {s} "
                               "(not recorded: no failure of the policy); reconnect")
        if result.safety_trip == "reading":
            # Stale, late, frozen or corrupt data is the cell's too: the policy's commands are
            # clamped and rate-limited before they reach the arm (real27).
            raise RuntimeError(f"a reading from the robot was refused during the trial of seed "
                               f"{s} (not recorded: no failure of the policy): "
                               f"{result.failure}; once the readings are right, run the same "
                               "command again to resume")
        results[s] = result
        if log is not None:
            log.append(result)
        if on_trial is not None:
            on_trial(result)
    return [results[s] for s in range(seed, seed + episodes)]


def comparison_table(task: str, policy: str, columns: dict[str, dict[str, Any]]) -> str:
    """Markdown: one column per setting ("sim", "real" or "twin"), one row per metric."""
    names = list(columns)

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return "| " + " | ".join([label] + [fmt(columns[c]) for c in names]) + " |"

    lines = [
        # "sim vs twin" for a rehearsal: its report said "sim vs real" (newuser22)
        f"## {task}: {' vs '.join(names)} ({policy})",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
        # The interval below counts distinct episodes: a noiseless setting replays one per seed.
        row("episodes", lambda s: str(s["episodes"]) + (
            f" ({s['effective_trials']} distinct)"
            if s.get("effective_trials", s["episodes"]) < s["episodes"] else "")),
        row(
            "success rate [95% CI]",
            lambda s: (
                f"{s['success_rate']:.0%} [{s['success_ci95_low']:.0%}, "
                f"{s['success_ci95_high']:.0%}]"
            ),
        ),
        row(
            "cycle time [s] (successes)",
            lambda s: (
                "-" if math.isnan(s["cycle_time_s_mean"]) else f"{s['cycle_time_s_mean']:.2f}"
            ),
        ),
        row("peak force mean [N]", lambda s: f"{s['peak_force_n_mean']:.1f}"),
        row("peak force max [N]", lambda s: f"{s['peak_force_n_max']:.1f}"),
        row("safety trips", lambda s: str(s["safety_trips"])),
        row("failed trials (trip, fault, policy error)", lambda s: str(s["failures"])),
        "",
        "Cycle time: policy steps to insertion x control period. Peak force: simulation = "
        "contact force on the plug (task version 0) or, from version 1, the low-passed wrist "
        "F/T force, the tool's inertia included; real = wrist F/T force magnitude, zeroed at "
        "reset. "
        "Distinct: replays of one episode count once in the interval (twin: trials on seeds "
        "whose simulated episodes replay one, once per outcome). "
        # Two rules on two sides gave opposite verdicts for one cell error (newuser23)
        "Success: simulation, the plug mated; twin, its simulated continuity signal (the "
        "plug's true depth); real, the continuity input where one is wired "
        "(--continuity-input), else the insertion depth from the calibrated seat, which a "
        "calibration off by d mm moves by d mm.",
        "",
    ]
    return "\n".join(lines)


def twin_trials(twin: Sequence[EpisodeRecord],
                sim: Sequence[EpisodeRecord]) -> tuple[int, int]:
    """(successes, trials) the twin's interval may count. The twin runs the simulated task on
    the same seeds, each trial from the state the previous one's reset left (micrometres and
    hundredths of a newton apart), so its replays are never exact: trials on seeds whose
    simulated episodes are one replayed episode count once per outcome (success or not); a
    seed the simulation did not run counts as `distinct_success_summary` does."""
    groups = replay_groups(sim)
    seen = {(groups.get(r.seed, outcome_key(r)), r.success) for r in twin}
    return sum(bool(success) for _, success in seen), len(seen)


def write_report(
    out_dir: str | Path,
    task: str,
    policy: str,
    runs: dict[str, list[EpisodeRecord]],
) -> tuple[Path, Path]:
    """Write `<out_dir>/validate_<task>.md` (the table) and `.json` (summaries + episodes);
    with a "twin" run, `validate_<task>.twin.md` and `.json`: a rehearsal on the twin into the
    robot session's folder wrote over the robot's report (real22)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "validate_" + task.replace("/", "_") + (".twin" if "twin" in runs else "")
    summaries = {name: summarize(results) for name, results in runs.items()}
    if "twin" in runs and "sim" in runs:
        summaries["twin"] = summarize(runs["twin"], twin_trials(runs["twin"], runs["sim"]))
    md = out / f"{stem}.md"
    md.write_text(comparison_table(task, policy, summaries))
    js = out / f"{stem}.json"
    write_json(js, {  # a mean over no successes is null, not a bare NaN
        "task": task,
        "policy": policy,
        "summary": summaries,
        "episodes": {k: [r.to_dict() for r in v] for k, v in runs.items()},
    }, non_finite="null")
    return md, js
