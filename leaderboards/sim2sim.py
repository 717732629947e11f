"""The sim-to-sim block of a verified entry: the same policy, on the same hidden seeds, in PyBullet.

`verify` runs it after the hidden MuJoCo evaluation for every task of the track that PyBullet
can build (`envs.bullet.BulletInsertionEnv`: single-connector tasks, state observations, the
connectors that `envs.bullet.UNSUPPORTED` does not list with their measured reason). The block
is shown beside the MuJoCo success (index: over the supported tasks; entry page: per task) and
is never part of the ranking: PyBullet runs the task's geometry, controller and retention
springs, but not its version's sensor variation (v1: F/T noise and drift, reset
repeatability). The ranked MuJoCo episodes have that variation, so a gap between them and
PyBullet mixes two causes: the block also runs MuJoCo with ``noiseless=True`` on the same seeds
(its ``noiseless`` part; on a shipped TD3 + LfD entry 6/20 noisy, 11/20 noiseless, 0/20 in
PyBullet), and the gap from that reference to PyBullet is the one that measures how much the
policy leans on one simulator: its contact model, and its arm (PyBullet's tool moves with the
arm's mean inertia at the TCP, without the axes' spread and coupling: `envs.bullet.tcp_inertia`).

Episodes carry the MuJoCo task version key prefixed with the PyBullet model's revision,
``pybullet4-`` (`envs.version_key.pybullet_key_prefix`, as `insertbench sim2sim` does), or
``noiseless-`` for the reference: neither is the ranked benchmark task. The block records that
``revision`` and the ``platform`` it ran on; blocks stored before these existed (2026-12-06)
ran revision 1 (``pybullet-`` keys) where the hidden evaluation ran.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym

from benchmark.sim2sim import make_engine_env
from envs.bullet import BulletInsertionEnv, probe_failure
from envs.episode import run_episode
from envs.tasks import TASKS
from envs.version_key import PYBULLET_REVISION, pybullet_key_prefix
from leaderboards.files import utc_now
from leaderboards.policy import PolicyTooSlow, load_policy
from leaderboards.recheck import platform_fingerprint
from leaderboards.submission import SubmissionError
from leaderboards.tracks import Track, TrackTask

ENGINE = "pybullet"
#: Version-key prefix of the reference episodes: MuJoCo with ``noiseless=True``.
NOISELESS = "noiseless"
_BULLET_KWARGS = set(inspect.signature(BulletInsertionEnv).parameters) - {"task"}


def unsupported_reason(task: TrackTask) -> str | None:
    """Why PyBullet cannot run ``task`` (one sentence), or None when it can."""
    if task.task_id not in TASKS:
        return (f"PyBullet builds single-connector tasks only; {task.task_id} is a board or a "
                "family of several")
    kwargs = dict(task.env_kwargs)
    if kwargs.pop("obs_mode", "state") != "state":
        return "PyBullet builds state observations only; camera observations are MuJoCo's"
    kwargs.pop("noiseless", None)  # PyBullet runs noiseless, as `make_engine_env` takes it
    unknown = sorted(set(kwargs) - _BULLET_KWARGS)
    if unknown:
        return f"the PyBullet task does not model {', '.join(unknown)}"
    spec = TASKS[task.task_id]
    if spec.dynamics.springs is not None:  # a bare ValueError mid-verify (engines21)
        return "PyBullet has no model of the contact springs of task versions 2 and 3"
    reason = probe_failure(spec)
    if reason:
        return f"PyBullet does not honour the {spec.connector.name} clearance: {reason}"
    return None


def evaluate_sim2sim(
    track: Track,
    kind: str,
    policy_paths: Mapping[str, Path],
    seeds_for: Callable[[str], list[int]],
    version_keys: Mapping[str, str],
    salt_sha256: str | None,
    evaluated_at: str,
    progress: Callable[[str], None] | None = None,
    noiseless: bool = True,
) -> dict[str, Any]:
    """The ``sim2sim`` block: per task, supported or not (with the reason), the PyBullet
    episodes of the supported ones on ``seeds_for(label)``, and (with ``noiseless``) the
    reference MuJoCo episodes without sensor variation on the same seeds.

    An exception inside a PyBullet episode (a policy's garbage action, a solver error) is that
    episode's failure (``failure`` says what), not an error of the verification: the MuJoCo
    evaluation before it already accepted the policy. Raises SubmissionError only when the
    policy cannot be loaded for the PyBullet task.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    tasks: dict[str, dict[str, Any]] = {}
    episodes: list[dict[str, Any]] = []
    for task in track.tasks:
        reason = unsupported_reason(task)
        tasks[task.label] = {"supported": reason is None, "reason": reason}
        if reason is not None:
            continue
        env = make_engine_env("pybullet", task.task_id, **task.env_kwargs)
        episodes += _episodes(task, kind, policy_paths[task.label], env, seeds_for(task.label),
                              f"{pybullet_key_prefix()}-{version_keys[task.label]}", "PyBullet")
        if progress is not None:
            progress(f"{task.label} (PyBullet)")
    block = {
        "engine": ENGINE,
        "revision": PYBULLET_REVISION,
        "platform": platform_fingerprint(),
        "seeds": "hidden",
        "salt_sha256": salt_sha256,
        "evaluated_at": evaluated_at,
        "wall_clock_s": round(time.perf_counter() - started, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "tasks": tasks,
        "episodes": episodes,
    }
    if noiseless:
        block[NOISELESS] = evaluate_noiseless(track, kind, policy_paths, block, seeds_for,
                                              version_keys, progress)
    return block


def evaluate_noiseless(
    track: Track,
    kind: str,
    policy_paths: Mapping[str, Path],
    block: Mapping[str, Any],
    seeds_for: Callable[[str], list[int]],
    version_keys: Mapping[str, str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The reference part of a sim-to-sim ``block``: MuJoCo with ``noiseless=True`` (no v1
    sensor or reset variation, as PyBullet) on the seeds of each task PyBullet ran."""
    started, cpu_started = time.perf_counter(), time.process_time()
    episodes: list[dict[str, Any]] = []
    for task in track.tasks:
        if not block["tasks"][task.label]["supported"]:
            continue
        env = make_engine_env("mujoco", task.task_id,
                              **dict(task.env_kwargs) | {"noiseless": True})
        episodes += _episodes(task, kind, policy_paths[task.label], env,
                              seeds_for(task.label), f"{NOISELESS}-{version_keys[task.label]}",
                              "MuJoCo (noiseless)")
        if progress is not None:
            progress(f"{task.label} (MuJoCo, noiseless)")
    return {
        "evaluated_at": utc_now(),
        "wall_clock_s": round(time.perf_counter() - started, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "platform": platform_fingerprint(),
        "episodes": episodes,
    }


def _episodes(task: TrackTask, kind: str, policy_path: Path, env: gym.Env, seeds: list[int],
              version_key: str, engine: str) -> list[dict[str, Any]]:
    """The episodes of ``task`` on ``seeds`` in ``env`` (closed after). An exception inside
    an episode is that episode's failure; a policy that cannot load, or that went past its time
    limits (`PolicyTooSlow`), is a SubmissionError (scored, a busy machine's load was the
    engine's gap, and every later episode failed at its first step; leader26)."""
    def unless_too_slow() -> None:  # called inside run_episode's handler: the exception is at hand
        err = sys.exc_info()[1]
        if isinstance(err, PolicyTooSlow):
            raise SubmissionError(f"{err} (the sim-to-sim block stopped, nothing was written; "
                                  "a busy machine counts too: verify again on a quiet one, or "
                                  "with --no-sim2sim)") from None

    try:
        policy = load_policy(kind, policy_path, env)
        return [{"task": task.label, **run_episode(
            env, policy, seed, task_id=task.task_id, task_version_key=version_key,
            on_failure=unless_too_slow).to_dict()} for seed in seeds]
    except SubmissionError as err:
        raise SubmissionError(f"{task.label} in {engine}: {err}") from None
    finally:
        env.close()
