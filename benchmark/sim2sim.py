"""Sim-to-sim: the same task, policy and seeds in MuJoCo and in PyBullet, side by side.

`insertbench sim2sim --task ID` (or `--checkpoint RUN_DIR`; `benchmark/sim2sim_cli.py`)
evaluates a policy on the same evaluation seeds in both engines and prints success with 95%
Wilson intervals, cycle time and peak force. `python -m benchmark.sim2sim` measures contact
fidelity (jam beyond clearance + chamfer, slide within it, press force to insert) and env
steps/s in both engines for the paper-000 tasks and every catalog connector: the table behind
`envs.bullet.UNSUPPORTED`.
"""

from __future__ import annotations

import argparse
import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from agents.base import Agent
from benchmark.evaluate import evaluate
from envs.bullet import BulletInsertionEnv
from envs.connectors import guide_window_mm
from envs.episode import EpisodeRecord, outcome_key
from envs.task_options import check_bool
from envs.tasks import PAPER000_TASKS, TASKS, pinned_versions, task_spec
from envs.version_key import pybullet_key_prefix, task_version_key

ENGINES = ("mujoco", "pybullet")
#: Offsets are resolved to this much on either side of the clearance + chamfer window [mm].
RESOLUTION_MM = 0.1
#: How far below the socket mouth a jammed plug's mating face may end [mm] (measured
#: 2026-12-06: every catalog jam ends 0.1-1.5 mm above it, in both engines).
JAM_DEPTH_MM = 0.5


#: The env kwargs both engines take: PyBullet's own, and two that name what it always runs
#: (state observations, and no v1 sensor or reset variation), so `obs_mode="state"` and
#: `noiseless=True` leave those out of MuJoCo too (its force stays the filtered wrist F/T).
PYBULLET_KWARGS = frozenset(inspect.signature(BulletInsertionEnv.__init__).parameters) | {
    "obs_mode", "noiseless"}


def make_engine_env(engine: str, task_id: str, **kwargs) -> gym.Env:
    """The task in one engine: MuJoCo through the Gymnasium registry (its version pinned: the
    advice to upgrade to a version PyBullet refuses is no use here), or PyBullet."""
    if engine == "mujoco":
        with pinned_versions():
            return gym.make(task_id, **kwargs)
    if engine == "pybullet":
        from envs.insertion_env import check_env_kwargs

        # A kwarg no env takes is a typo (it read "PyBullet does not take ['timestp']: it runs
        # state observations ...", engines18): named with the closest known kwarg.
        check_env_kwargs(task_id, (k for k in kwargs if k not in PYBULLET_KWARGS))
        others = sorted(set(kwargs) - PYBULLET_KWARGS)
        if others:
            raise ValueError(
                f"PyBullet does not take the env kwarg(s) {others}: it runs state observations "
                "without v1's sensor model (envs/bullet.py)"
            )
        if kwargs.pop("obs_mode", "state") != "state":
            raise ValueError("PyBullet has no cameras: sim2sim compares state policies only "
                             "(obs_mode='state')")
        check_bool("noiseless", kwargs.pop("noiseless", True))  # PyBullet is noiseless
        return BulletInsertionEnv(task_id, **kwargs)
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def push_down(env: gym.Env, offset_mm=(0.0, 0.0), speed: float = 0.3,
              steps: int = 60) -> tuple[float, dict, int]:
    """Start offset sideways and push straight down at `speed` x the action scale
    (quasi-static: the lateral offset at contact is the commanded one) for at most `steps`.
    Returns the peak press force while inserting [N], the last info and the steps taken."""
    obs, info = env.reset(seed=0, options={"tcp_offset_mm": offset_mm})
    peak_press = 0.0
    mating = env.unwrapped.task.connector.success_depth_mm
    taken = 0
    while taken < steps:
        obs, _, terminated, _, info = env.step(np.array([0.0, 0.0, speed], np.float32))
        taken += 1
        if 0.05 < info["insertion_depth_mm"] < mating - 0.5:
            peak_press = max(peak_press, -float(obs["wrench"][2]))
        if terminated:
            break
    return peak_press, info, taken


def face_depth_mm(env: gym.Env) -> float:
    """How far the plug's mating face is below the socket mouth [mm], wherever it is over the
    board (the info's `insertion_depth_mm` counts only a face over the opening, so a plug that
    went through the housing's walls beside it read as not inserted). Measured from the goal,
    which lies at the mating length on v0 and v1, the versions PyBullet models (v3's goal is at
    the seat the plug can reach, 0.25 mm short of it on chamfered sockets)."""
    base = getattr(env.unwrapped, "active", env.unwrapped)  # a NIST board part's own task
    above_goal_mm = float(base.tcp_pos[2] - base.goal_pos[2]) * 1e3
    return base.task.connector.mating_length_mm - above_goal_mm


def jammed(env: gym.Env, info: dict) -> bool:
    """The push ended without inserting and with the plug held at the mouth. (A plug 2.5 mm
    into the housing beside the opening counted as a jam for being more than 1 mm off the
    goal: PyBullet's lost wall contacts passed the probe.)"""
    return not info["is_success"] and face_depth_mm(env) < JAM_DEPTH_MM


@dataclass
class Fidelity:
    """Contact fidelity of one task in one engine (offsets along +-x and +-y)."""

    slides_within: int  # of 4 offsets inside the window by RESOLUTION_MM: inserted
    jams_beyond: int  # of 4 offsets outside the window by RESOLUTION_MM: stuck at the mouth
    press_force_n: float  # peak press while an aligned plug is pushed in slowly
    steps_per_s: float  # env steps per second over the whole probe

    @property
    def holds(self) -> bool:
        return self.slides_within == 4 and self.jams_beyond == 4


def measure_fidelity(engine: str, task_id: str) -> Fidelity:
    """The catalog fidelity protocol (`tests/envs/test_catalog_fidelity.py`) in one engine,
    along +-x and +-y: inside `guide_window_mm` by RESOLUTION_MM it must insert; outside, stay
    at the mouth (`jammed`)."""
    c = task_spec(task_id).connector
    env = make_engine_env(
        engine, task_id, start_height_mm=c.lowest_start_mm + 9.0,
        **({"allow_unsupported": True} if engine == "pybullet" else {}),
    )
    slides_below, jams_above = guide_window_mm(c)
    slides = jams = 0
    start = time.perf_counter()
    # The steps each push takes (one that inserts ends early): counting the most each could
    # take overstated the rate 1.6-1.8x, and by how often each engine jams.
    press, _, steps = push_down(env, speed=0.25, steps=80)
    for axis in (0, 1):
        for sign in (-1.0, 1.0):
            inside, outside = [0.0, 0.0], [0.0, 0.0]
            inside[axis] = sign * (slides_below - RESOLUTION_MM)
            outside[axis] = sign * (jams_above + RESOLUTION_MM)
            _, slid, taken = push_down(env, inside)
            slides += bool(slid["is_success"])
            _, stuck, more = push_down(env, outside)
            jams += jammed(env, stuck)
            steps += taken + more
    env.close()
    return Fidelity(slides, jams, press, steps / (time.perf_counter() - start))


def engine_agent(env: gym.Env, checkpoint: Path | None) -> Agent:
    """The agent to compare: a checkpoint (any registered agent; residual ones get this engine's
    P-controller as their base policy) or, without one, paper 000's P-controller itself."""
    from agents import agent_spec, load_agent, make_agent
    from agents.checkpoint import read_meta
    from agents.registry import check_action_scale

    base = {"base_policy": envs.p_controller(env)}
    if checkpoint is None:
        return make_agent("p_controller", env.observation_space, env.action_space, **base)
    name = read_meta(checkpoint)["agent"]
    kwargs = base if agent_spec(name).needs_base_policy else {}
    agent = load_agent(checkpoint, allow_policy_only=True, device="cpu", acting_only=True,
                       **kwargs)
    check_action_scale(agent, env)
    return agent


def compare(
    task_id: str,
    checkpoint: Path | None,
    episodes: int,
    env_kwargs: dict[str, Any],
) -> dict[str, list[EpisodeRecord]]:
    """Evaluation records of the same policy on the same seeds in each engine."""
    out = {}
    key = task_version_key(task_id, env_kwargs)
    engine_envs: dict[str, gym.Env] = {}
    try:
        # Both engines first: a kwarg one of them refuses must not cost the other's evaluation.
        for engine in ENGINES:
            extra = {"allow_unsupported": True} if engine == "pybullet" else {}
            engine_envs[engine] = make_engine_env(engine, task_id, **env_kwargs, **extra)
        for engine, env in engine_envs.items():
            # Records name their engine in the version key: the same task in another contact
            # model is not the same benchmark task.
            out[engine] = evaluate(env, engine_agent(env, checkpoint), episodes, task_id=task_id,
                                   task_version_key=key if engine == "mujoco" else
                                   f"{pybullet_key_prefix()}-{key}")
    finally:
        for env in engine_envs.values():
            env.close()
    return out


def paired_difference(results: dict[str, list[EpisodeRecord]]) -> dict[str, Any]:
    """The engines compared seed by seed: how many distinct seed pairs succeeded in MuJoCo
    only and in PyBullet only, and the exact McNemar test's two-sided p of "as likely either
    way" over those discordant pairs. Two intervals that overlap can hide a difference the
    same seeds show at p = 0.001 (38/50 against 27/50: 11 and 0, engines18). A pair whose
    episodes both replay an earlier pair's counts once, as `distinct_episodes` counts."""
    from scipy.stats import binomtest

    mujoco_runs, bullet_runs = results["mujoco"], results["pybullet"]
    pairs: dict[tuple, tuple[bool, bool]] = {}
    for a, b in zip(mujoco_runs, bullet_runs, strict=True):
        if a.seed != b.seed:
            raise ValueError(f"the engines' records are not on the same seeds ({a.seed}, "
                             f"{b.seed})")
        pairs.setdefault((outcome_key(a), outcome_key(b)), (a.success, b.success))
    mujoco_only = sum(1 for m, p in pairs.values() if m and not p)
    bullet_only = sum(1 for m, p in pairs.values() if p and not m)
    discordant = mujoco_only + bullet_only
    p = binomtest(mujoco_only, discordant).pvalue if discordant else 1.0
    return {"pairs": len(pairs), "mujoco_only": mujoco_only, "pybullet_only": bullet_only,
            "p_value": float(p)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(
        "Contact fidelity in MuJoCo and PyBullet: offsets 0.1 mm inside the guide window slide "
        "in, 0.1 mm outside jam, the press to insert, env steps/s (the table behind "
        "envs.bullet.UNSUPPORTED); `insertbench sim2sim` compares a policy."))
    parser.add_argument("--task", action="append", help="task IDs (default: paper 000 + catalog)")
    args = parser.parse_args()
    unknown = [t for t in args.task or [] if t not in TASKS]
    if unknown:  # was a KeyError traceback listing every registered ID
        parser.error(f"not a single-connector task: {unknown}; the probe runs the paper-000 "
                     "tasks and the catalog's Connector-<Name>-v0/v1 (`insertbench list`)")
    springs = [t for t in args.task or [] if TASKS[t].dynamics.springs is not None]
    if springs:  # was a ValueError traceback from PyBullet, after the MuJoCo probe had run
        parser.error(f"PyBullet has no model of the contact springs of versions 2 and 3: "
                     f"{springs}; probe the tasks' -v1")
    # PyBullet models the slide-joint tabs of versions 0 and 1, not v2's and v3's contact springs.
    task_ids = args.task or [
        *PAPER000_TASKS,
        *(t for t in TASKS if "Connector-" in t and TASKS[t].dynamics.springs is None),
    ]
    print("| task | engine | slides in (of 4) | jams out (of 4) | press to insert | env steps/s |")
    print("|---|---|---|---|---|---|")
    for task_id in task_ids:
        for engine in ENGINES:
            f = measure_fidelity(engine, task_id)
            print(
                f"| {task_id} | {engine} | {f.slides_within} | {f.jams_beyond} | "
                f"{f.press_force_n:.1f} N | {f.steps_per_s:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
