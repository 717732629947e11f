"""Sim-vs-real validation: the same policy on the simulated task and on the cell, one table.

A policy is any callable obs -> action. `policy_for(env)` builds one per environment, since the
scripted controller reads its env's believed goal: `scripted_policy` is paper 000's
P-controller on either side (`envs.hand_controller` / `real.hand_controller`),
`checkpoint_policy` loads an agent through `agents` (imported only then).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from envs.episode import FORCE_LIMIT_N, EpisodeRecord, Policy, run_episode, summarize
from envs.version_key import task_version_key

PolicyFactory = Callable[[gym.Env], Policy]


def scripted_policy(env: gym.Env) -> Policy:
    """Paper 000's hand-designed controller for a simulated or a real InsertBench env."""
    from real.env import RealInsertionEnv

    if isinstance(env.unwrapped, RealInsertionEnv):
        from real.env import hand_controller

        return hand_controller(env)
    import envs

    return envs.hand_controller(env)


def checkpoint_policy(path: str | Path) -> PolicyFactory:
    """An agent checkpoint (`agents.load_agent`) acting deterministically; its spaces must be
    the env's."""
    try:
        import agents
    except ImportError as e:
        raise ImportError(
            f"loading {path} needs the `agents` package (and torch); use --policy scripted "
            f"to validate without one"
        ) from e
    load_agent = getattr(agents, "load_agent", None)
    if load_agent is None:
        raise ImportError(
            "this `agents` package has no load_agent(); use --policy scripted until it does"
        )
    agent = load_agent(path)

    def factory(env: gym.Env) -> Policy:
        for name in ("observation_space", "action_space"):
            theirs = getattr(agent, name, None)
            if theirs is not None and theirs != getattr(env, name):
                raise ValueError(
                    f"the checkpoint's {name} {theirs} differs from the env's "
                    f"{getattr(env, name)}; pass the env kwargs it was trained with"
                )
        return lambda obs: agent.act(obs, deterministic=True)

    return factory


def run_episodes(
    env: gym.Env, policy_for: PolicyFactory, task: str, episodes: int, seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> list[EpisodeRecord]:
    """Run `episodes` trials with seeds seed, seed + 1, ... through `envs.episode.run_episode`;
    a safety trip ends a trial as a failure and the next one starts with a reset. Records carry
    the simulated task's version key (the cell runs the same task)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy = policy_for(env)
    key = task_version_key(task, env_kwargs)
    return [run_episode(env, policy, seed + i, task_id=task, task_version_key=key)
            for i in range(episodes)]


def comparison_table(task: str, policy: str, columns: dict[str, dict[str, Any]]) -> str:
    """Markdown: one column per setting ("sim", "real" or "twin"), one row per metric of
    `envs.episode.summarize`."""
    names = list(columns)

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return "| " + " | ".join([label] + [fmt(columns[c]) for c in names]) + " |"

    def number(key: str, digits: int) -> Callable[[dict[str, Any]], str]:
        return lambda s: "-" if math.isnan(s[key]) else f"{s[key]:.{digits}f}"

    lines = [
        f"## {task}: sim vs real ({policy})",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
        row("episodes", lambda s: str(s["episodes"])),
        row(
            "success rate [95% CI]",
            lambda s: (
                f"{s['success_rate']:.0%} [{s['success_ci95_low']:.0%}, "
                f"{s['success_ci95_high']:.0%}]"
            ),
        ),
        row("cycle time [s] (successes)", number("cycle_time_s_mean", 2)),
        row("peak force mean [N]", number("peak_force_n_mean", 1)),
        row("peak force max [N]", number("peak_force_n_max", 1)),
        row(f"time above {FORCE_LIMIT_N:.0f} N [s]", number("time_above_force_limit_s_mean", 2)),
        row("path length [mm]", lambda s: "-" if math.isnan(s["path_length_m_mean"])
            else f"{1000 * s['path_length_m_mean']:.1f}"),
        row("RMS jerk [m/s^3]", number("jerk_rms_m_s3_mean", 2)),
        row("safety trips", lambda s: str(s["safety_trips"])),
        "",
        "Cycle time: policy steps to insertion x control period. Peak force: simulation = "
        "contact force on the plug; real = wrist F/T force magnitude, zeroed at reset. "
        "Jerk: third difference of the TCP position at the policy rate (envs.episode).",
        "",
    ]
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    task: str,
    policy: str,
    runs: dict[str, list[EpisodeRecord]],
) -> tuple[Path, Path]:
    """Write `<out_dir>/validate_<task>.md` (the table) and `.json` (summaries + episodes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "validate_" + task.replace("/", "_")
    summaries = {name: summarize(results) for name, results in runs.items()}
    md = out / f"{stem}.md"
    md.write_text(comparison_table(task, policy, summaries))
    js = out / f"{stem}.json"
    js.write_text(
        json.dumps(
            {
                "task": task,
                "policy": policy,
                "summary": {name: {k: None if isinstance(v, float) and math.isnan(v) else v
                                   for k, v in summary.items()}
                            for name, summary in summaries.items()},
                "episodes": {k: [r.to_dict() for r in v] for k, v in runs.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return md, js
