"""Speed of the simulated tasks: env steps/s, overhead over raw physics, cameras, vector envs.

    python -m benchmark.bench_env [--episodes 20] [--steps 200] [--rounds 5] [--num-envs 2]

Prints, in one run: the env/mj_step overhead per paper-000 task; env steps/s with cameras (one
render pass per step) against state only, also "before" (every box drawn on its own);
frames/s of the one-pass `CameraRig` beside a bare `mujoco.Renderer`, on both
models; `gym.make_vec` (worlds on threads) and Gymnasium's async vector env against
one env; the thread-scaling bound that the overhead ratio implies for more cores; and the MuJoCo
Warp batch's env steps/s when a CUDA device is present.

The overhead ratio is measured in one run: right after each env step, the same starting
physics state (with the reference the step commanded) goes through bare `mujoco.mj_step`
(frame_skip steps), so both timings integrate the same contacts under the same machine load.
One process = one core for the overhead table.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import contextmanager

import gymnasium as gym
import mujoco
import numpy as np
from rich.console import Console
from rich.table import Table

import envs
from envs import scene
from envs.tasks import PAPER000_TASKS


def measure_state_steps(env_id: str, episodes: int, goal_noise_mm: float) -> dict[str, float]:
    """Time each env step and, right after it, bare physics from the same starting state.

    Timings are the thread's CPU time (both are single-threaded), so a loaded machine's
    preemptions do not count, and interleaving cancels any remaining drift (caches, clocks).
    """
    env = gym.make(env_id, goal_noise_mm=goal_noise_mm)
    u = env.unwrapped
    controller = envs.p_controller(env)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, spec))
    replay = mujoco.MjData(u.model)
    steps, step_time, physics_time = 0, 0.0, 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        for _ in range(u.task.max_episode_steps):
            action = controller(obs)
            mujoco.mj_getState(u.model, u.data, state, spec)  # mocap (the reference) included
            start = time.thread_time()
            obs, _, terminated, truncated, _ = env.step(action)
            step_time += time.thread_time() - start
            mujoco.mj_setState(u.model, replay, state, spec)
            replay.mocap_pos[:], replay.mocap_quat[:] = u.data.mocap_pos, u.data.mocap_quat
            start = time.thread_time()
            mujoco.mj_step(u.model, replay, nstep=u.frame_skip)
            physics_time += time.thread_time() - start
            steps += 1
            if terminated or truncated:
                break
    return {
        "steps": steps,
        "env_steps_per_s": steps / step_time,
        "physics_steps_per_s": steps * u.frame_skip / physics_time,
        "ratio": step_time / physics_time,
    }


def _rounds(
    runners: dict[str, Callable[[], int]],
    rounds: int,
    cpu_clocks: dict[str, Callable[[], float]] | None = None,
) -> dict[str, dict[str, float]]:
    """Run each case once per round, interleaved, so machine load drifts over all of them alike.

    Each runner returns the env steps (or frames) it made. Returns, per case, the median over
    rounds of the rate per wall second and per process CPU second (all threads: MuJoCo's, the
    vector env's workers, llvmpipe's rasteriser threads; `cpu_clocks` adds other processes).
    """
    cpu_clocks = cpu_clocks or {}
    wall: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            clock = cpu_clocks.get(name, time.process_time)
            start, cpu_start = time.perf_counter(), clock()
            count = run()
            wall[name].append(count / (time.perf_counter() - start))
            cpu[name].append(count / max(clock() - cpu_start, 1e-9))
    return {k: {"wall": float(np.median(wall[k])), "cpu": float(np.median(cpu[k]))}
            for k in runners}


def _stepper(env: gym.Env, steps: int, num_envs: int = 0) -> Callable[[], int]:
    """`steps` zero-action steps of a single env (num_envs=0, resetting itself) or a vector."""
    action = np.zeros(((num_envs,) if num_envs else ()) + env.action_space.shape[-1:], np.float32)
    env.reset(seed=0)

    def run() -> int:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(action)
            if not num_envs and (terminated or truncated):
                env.reset()
        return steps * max(num_envs, 1)

    return run


@contextmanager
def boxes_drawn_one_by_one():
    """Envs made inside draw every box as its own geom, as before `merge_visual_boxes`."""
    original = scene.merge_visual_boxes
    scene.merge_visual_boxes = lambda spec: 0
    try:
        yield
    finally:
        scene.merge_visual_boxes = original


def measure_cameras(env_id: str, steps: int, rounds: int) -> dict[str, dict[str, float]]:
    """Env steps/s with and without cameras (one render pass per step), interleaved; "before"
    is the same env with every box drawn on its own."""
    settings = {
        "state": {},
        "state + 2 cameras 64x64": {"obs_mode": "state+pixels"},
        "state + 1 camera 64x64": {"obs_mode": "state+pixels", "cameras": ("wrist",)},
        "state + 2 cameras 32x32 gray": {
            "obs_mode": "state+pixels", "image_size": 32, "grayscale": True
        },
    }
    made = {name: gym.make(env_id, **kwargs) for name, kwargs in settings.items()}
    with boxes_drawn_one_by_one():
        made["state + 2 cameras 64x64, before"] = gym.make(env_id, obs_mode="state+pixels")
    result = _rounds({name: _stepper(env, steps) for name, env in made.items()}, rounds)
    for env in made.values():
        env.close()
    return result


def measure_frames(env_id: str, frames: int, rounds: int) -> dict[str, dict[str, float]]:
    """Frames/s of the one-pass rig (both cameras) beside a bare `mujoco.Renderer`, on the
    env's model (boxes merged into meshes) and on the same cell drawn box by box (before)."""
    env = gym.make(env_id, obs_mode="pixels", image_size=64)
    with boxes_drawn_one_by_one():
        before = gym.make(env_id, obs_mode="pixels", image_size=64)
    cameras = ("wrist", "side")
    runners, renderers = {}, []
    for label, made in (("", env), (", boxes (before)", before)):
        made.reset(seed=0)
        u = made.unwrapped
        bare = mujoco.Renderer(u.model, 64, 64)
        renderers.append(bare)
        runners[f"CameraRig, 2 cameras per pass{label}"] = _rig_frames(u, cameras, frames)
        runners[f"mujoco.Renderer, one per call{label}"] = _renderer_frames(
            bare, u.data, cameras, frames)
    result = _rounds(runners, rounds)
    for closing in (*renderers, env, before):
        closing.close()
    return result


def _rig_frames(u, cameras: tuple[str, ...], frames: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(frames // len(cameras)):
            u.rig.render_all(u.data, cameras)
        return frames // len(cameras) * len(cameras)

    return run


def _renderer_frames(bare: mujoco.Renderer, data, cameras, frames: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(frames // len(cameras)):
            for camera in cameras:
                bare.update_scene(data, camera=camera)
                bare.render()
        return frames // len(cameras) * len(cameras)

    return run


def measure_vector(
    env_id: str, num_envs: int, steps: int, rounds: int
) -> dict[str, dict[str, float]]:
    """One env against `gym.make_vec` (threads) and Gymnasium's async (processes), interleaved."""
    single = gym.make(env_id)
    threaded = gym.make_vec(env_id, num_envs=num_envs)
    processes = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="async")
    async_name = f"make_vec async, {num_envs} processes"
    runners = {
        "1 env": _stepper(single, steps),
        f"make_vec, {num_envs} worlds on threads": _stepper(threaded, steps, num_envs),
        async_name: _stepper(processes, steps, num_envs),
    }
    pids = [p.pid for p in processes.unwrapped.processes]
    result = _rounds(runners, rounds, {async_name: lambda: time.process_time() + _cpu_s(pids)})
    for env in (single, threaded, processes):
        env.close()
    return result


def measure_warp_gpu(env_id: str, num_worlds: int, steps: int) -> str:
    """Env steps/s of `WarpInsertionBatch` on a CUDA device, or why it was not measured."""
    try:
        import warp as wp

        from envs.warp_batch import WarpInsertionBatch
    except ImportError:
        return "MuJoCo Warp GPU batch: not measured (pip install insertbench[warp])"
    wp.init()
    if not wp.is_cuda_available():
        return "MuJoCo Warp GPU batch: not measured (no CUDA device on this machine)"
    batch = WarpInsertionBatch(env_id, num_worlds, device="cuda:0")
    batch.reset(seed=0)
    actions = np.zeros((num_worlds, 3), np.float32)
    batch.step(actions)  # kernel compilation and warm-up
    start = time.perf_counter()
    for _ in range(steps):
        batch.step(actions)
    rate = num_worlds * steps / (time.perf_counter() - start)
    batch.close()
    return f"MuJoCo Warp GPU batch, {num_worlds} worlds: {rate:.0f} env steps/s (zero action)"


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of other processes (Linux /proc)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_scaling_model(step_over_physics: float, cores: int) -> float:
    """Speed-up over one env of N >= cores threaded worlds, bounded by the GIL (Amdahl).

    A step costs p (physics in C, GIL released) + s (Python, GIL held) of one core; with
    `step_over_physics` = (p + s) / p measured, N worlds on `cores` cores make at most
    min(cores, (p + s) / s) times one env's steps: the Python parts take turns on the GIL.
    """
    python_share = 1.0 - 1.0 / step_over_physics  # s / (p + s)
    return min(float(cores), 1.0 / python_share)


def _print_rates(console: Console, title: str, rates, unit: str, base: str) -> None:
    table = Table(title=title)
    for column in ("case", f"{unit}/s (wall)", f"{unit} per CPU-s", "vs " + base + " (wall)",
                   "vs " + base + " (CPU)"):
        table.add_column(column, justify="right")
    for name, r in rates.items():
        table.add_row(name, f"{r['wall']:.0f}", f"{r['cpu']:.0f}",
                      f"{r['wall'] / rates[base]['wall']:.2f}",
                      f"{r['cpu'] / rates[base]['cpu']:.2f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="env steps per case and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--num-envs", type=int, default=2, help="worlds of the vector envs")
    parser.add_argument("--gpu-worlds", type=int, default=4096, help="worlds of the GPU batch")
    args = parser.parse_args()
    console = Console(width=160)
    console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                  f"(wall rates fall with other work; CPU rates are what a step costs)")
    table = Table(title="Env speed, one process; timings in thread CPU time")
    for column in ("task", "goal noise", "env steps", "env steps/s", "physics steps/s",
                   "env/mj_step ratio"):
        table.add_column(column, justify="right")
    ratios = []
    for env_id in PAPER000_TASKS:
        for noise in (0.0, 1.0):
            r = measure_state_steps(env_id, args.episodes, noise)
            ratios.append(r["ratio"])
            table.add_row(env_id, f"{noise:.0f} mm", str(r["steps"]),
                          f"{r['env_steps_per_s']:.0f}", f"{r['physics_steps_per_s']:.0f}",
                          f"{r['ratio']:.3f}")
    console.print(table)

    env_id = PAPER000_TASKS[0]
    _print_rates(console, f"{env_id}, zero action: cameras rendered in one pass per step",
                 measure_cameras(env_id, args.steps, args.rounds), "env steps", "state")
    _print_rates(console, f"{env_id}: 64x64 frames", measure_frames(env_id, args.steps,
                 args.rounds), "frames", "mujoco.Renderer, one per call, boxes (before)")
    _print_rates(console, f"{env_id}, zero action: {args.num_envs} worlds",
                 measure_vector(env_id, args.num_envs, args.steps, args.rounds), "env steps",
                 "1 env")
    ratio = float(np.median(ratios))
    console.print(
        f"Thread scaling model (GIL-bound Amdahl, env/mj_step ratio {ratio:.2f}: "
        f"{1 - 1 / ratio:.0%} of a step holds the GIL): "
        + ", ".join(f"{c} cores -> {thread_scaling_model(ratio, c):.2f}x"
                    for c in (2, 4, 8, 16))
        + " one env. Beyond that, run several processes of threaded vector envs."
    )
    console.print(measure_warp_gpu(env_id, args.gpu_worlds, 20))


if __name__ == "__main__":
    main()
