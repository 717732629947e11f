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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]
PolicyFactory = Callable[[gym.Env], Policy]


@dataclass(frozen=True)
class EpisodeResult:
    """One trial. cycle_time_s: policy time to insertion (steps x control period) [s], None
    on failure; peak_force_n: the env's `max_force_n` [N]; safety_trip: kind or None."""

    seed: int
    success: bool
    steps: int
    cycle_time_s: float | None
    peak_force_n: float
    safety_trip: str | None
    interventions: int


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
    the env's. Agents that act on top of a base policy (residual RL, `p_controller`) get paper
    000's P-controller of the env they run on (`scripted_policy`), on either side."""
    try:
        import agents
        from agents.checkpoint import AGENT_JSON
        from agents.registry import resolve_agent_dir
    except ImportError as e:
        raise ImportError(
            f"loading {path} needs the `agents` package (and torch); use --policy scripted "
            f"to validate without one"
        ) from e
    agent_dir = resolve_agent_dir(path)
    name = json.loads((agent_dir / AGENT_JSON).read_text())["agent"]
    needs_base_policy = agents.agent_spec(name).needs_base_policy

    def factory(env: gym.Env) -> Policy:
        kwargs = {"base_policy": scripted_policy(env)} if needs_base_policy else {}
        agent = agents.load_agent(agent_dir, **kwargs)
        for space in ("observation_space", "action_space"):
            theirs = getattr(agent, space, None)
            if theirs is not None and theirs != getattr(env, space):
                raise ValueError(
                    f"the checkpoint's {space} {theirs} differs from the env's "
                    f"{getattr(env, space)}; pass the env kwargs it was trained with (--env)"
                )
        return lambda obs: agent.act(obs, deterministic=True)

    return factory


def run_episodes(
    env: gym.Env, policy_for: PolicyFactory, episodes: int, seed: int = 0
) -> list[EpisodeResult]:
    """Run `episodes` trials with seeds seed, seed + 1, ...; a safety trip ends a trial as a
    failure and the next one starts with a reset."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    policy = policy_for(env)
    dt = float(env.unwrapped.dt)
    results = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        steps = interventions = 0
        while True:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            steps += 1
            interventions += int(bool(info.get("intervened", False)))
            if terminated or truncated:
                break
        success = bool(info["is_success"])
        results.append(
            EpisodeResult(
                seed=seed + i,
                success=success,
                steps=steps,
                cycle_time_s=steps * dt if success else None,
                peak_force_n=float(info["max_force_n"]),
                safety_trip=info.get("safety_trip"),
                interventions=interventions,
            )
        )
    return results


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Success rate with its 95% Wilson interval, mean cycle time of the successes [s], mean
    and max peak force [N], safety trips."""
    n = len(results)
    k = sum(r.success for r in results)
    lo, hi = wilson_interval(k, n)
    times = [r.cycle_time_s for r in results if r.cycle_time_s is not None]
    forces = [r.peak_force_n for r in results]
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "success_ci95": [lo, hi],
        "cycle_time_s": float(np.mean(times)) if times else None,
        "peak_force_mean_n": float(np.mean(forces)),
        "peak_force_max_n": float(np.max(forces)),
        "safety_trips": sum(r.safety_trip is not None for r in results),
    }


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def comparison_table(task: str, policy: str, columns: dict[str, dict[str, Any]]) -> str:
    """Markdown: one column per setting ("sim", "real" or "twin"), one row per metric."""
    names = list(columns)

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return "| " + " | ".join([label] + [fmt(columns[c]) for c in names]) + " |"

    lines = [
        f"## {task}: sim vs real ({policy})",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
        row("episodes", lambda s: str(s["episodes"])),
        row(
            "success rate [95% CI]",
            lambda s: (
                f"{s['success_rate']:.0%} [{s['success_ci95'][0]:.0%}, {s['success_ci95'][1]:.0%}]"
            ),
        ),
        row(
            "cycle time [s] (successes)",
            lambda s: "-" if s["cycle_time_s"] is None else f"{s['cycle_time_s']:.2f}",
        ),
        row("peak force mean [N]", lambda s: f"{s['peak_force_mean_n']:.1f}"),
        row("peak force max [N]", lambda s: f"{s['peak_force_max_n']:.1f}"),
        row("safety trips", lambda s: str(s["safety_trips"])),
        "",
        "Cycle time: policy steps to insertion x control period. Peak force: simulation = "
        "contact force on the plug; real = wrist F/T force magnitude, zeroed at reset.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    out_dir: str | Path,
    task: str,
    policy: str,
    runs: dict[str, list[EpisodeResult]],
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
                "summary": summaries,
                "episodes": {k: [asdict(r) for r in v] for k, v in runs.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return md, js
