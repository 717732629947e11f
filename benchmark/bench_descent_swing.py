"""How far the TCP swings sideways while the policy commands a straight descent.

Paper 000's approach is straight down, but the impedance controller tracks its reference through
the UR5e's inertia, which couples the axes: a pure -z command moves the TCP sideways too, most
in the first env step, while the arm accelerates from rest towards a reference that jumped
`action_scale_m` down. Whether a plug started near the edge of the slide-in window (clearance +
chamfer) goes in or jams depends on that swing.

Each case starts a noiseless task (no start offset or goal noise) 100 mm up, so that nothing is
touched, and commands action (0, 0, 1) (down at `action_scale_m` per 0.1 s env step) until the
TCP has descended `--travel-mm`. Printed per task and speed: the largest horizontal distance of
the TCP from its start [mm] at any physics step (the rollout's recorded states) of the first
env step, and of the later ones. The lowest start height any task allows is 13 mm, so a plug
may touch the socket within the first env step at 20 cm/s.

    python -m benchmark.bench_descent_swing
    python -m benchmark.bench_descent_swing --tasks USB-v0,USB-v3 --scales 0.005
"""

from __future__ import annotations

import argparse
import math

import gymnasium as gym
import mujoco
import numpy as np

import envs  # noqa: F401  (registers the tasks)
from benchmark.script_args import doc_summary, positive_float
from envs import physics
from envs.task_options import ACTION_SCALE_MAX_M
from envs.tasks import TASKS


def measure_swing(task_id: str, action_scale_m: float, travel_mm: float) -> tuple[float, float]:
    """Largest horizontal TCP distance from the start [mm] within the first env step and
    within the later ones, commanding straight down from rest 100 mm above the seat until the
    TCP has descended `travel_mm` [mm]."""
    env = gym.make(task_id, action_scale_m=action_scale_m, start_height_mm=100.0,
                   noiseless=True, max_episode_steps=10_000)
    try:
        unwrapped = env.unwrapped
        env.reset(seed=0)
        start = unwrapped.data.site_xpos[unwrapped._tcp].copy()
        scratch = mujoco.MjData(unwrapped.model)
        swing, descended = [], 0.0
        while descended < travel_mm:
            env.step(np.array([0.0, 0.0, 1.0], np.float32))
            largest = 0.0
            for state in unwrapped._period._states[0]:  # every physics step of the period
                mujoco.mj_setState(unwrapped.model, scratch, state, physics._STATE)
                mujoco.mj_kinematics(unwrapped.model, scratch)
                tcp = scratch.site_xpos[unwrapped._tcp]
                largest = max(largest, float(np.hypot(*(tcp[:2] - start[:2]))) * 1e3)
            descended = (start[2] - unwrapped.data.site_xpos[unwrapped._tcp][2]) * 1e3
            swing.append(largest)
        return swing[0], max(swing[1:], default=float("nan"))
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--tasks", default="USB-v0,USB-v1,USB-v3,DSub-v3,ModelE-v3",
                        help="comma-separated task names (InsertBench/ is added)")
    parser.add_argument("--scales", default="0.005,0.01,0.02",
                        help="comma-separated action_scale_m values [m per step]")
    parser.add_argument("--travel-mm", type=positive_float, default=50.0,
                        help="descent measured [mm] (default 50: the default start height)")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        scales = [float(s) for s in args.scales.split(",")]
    except ValueError:
        parser.error(f"--scales must be numbers, got {args.scales!r}")
    if not all(0 < s <= ACTION_SCALE_MAX_M for s in scales):
        parser.error(f"--scales must lie in (0, {ACTION_SCALE_MAX_M}], got {scales}")
    task_ids = [t if "/" in t else f"InsertBench/{t}" for t in tasks]
    unknown = [t for t in task_ids if t not in gym.registry]
    if unknown or not task_ids:
        parser.error(f"--tasks: unknown task IDs {unknown}" if unknown else "--tasks is empty")
    several = [t for t in task_ids if t not in TASKS]  # a board or family: a traceback (diff25)
    if several:
        parser.error(f"--tasks: {several} are not single-connector tasks (see `insertbench "
                     "list`)")
    if not args.travel_mm <= 90:
        parser.error("--travel-mm must be at most 90 (the start is 100 mm up)")
    print("| task | action_scale_m | speed | swing in the first env step [mm] "
          "| largest later [mm] |")
    print("|---|---|---|---|---|")
    for task, task_id in zip(tasks, task_ids, strict=True):
        for scale in scales:
            first, later = measure_swing(task_id, scale, args.travel_mm)
            # One step covered the travel: no later step to show ("nan" read as a failure).
            shown = "- (one step)" if math.isnan(later) else f"{later:.2f}"
            # The reference limit caps the step: USB-v0's 0.02 rows read 20 cm/s at 6 (bench21)
            limit = TASKS[task_id].dynamics.gains.translation_limit_m
            speed = (f"{scale * 1e3:g} cm/s" if scale <= limit else
                     f"{limit * 1e3:g} cm/s (its reference limit)")
            print(f"| {task} | {scale:g} | {speed} | {first:.2f} | {shown} |", flush=True)


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the versions compared are chosen on purpose
        main()
