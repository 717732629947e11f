"""Speed of the simulated tasks: env steps/s, overhead over raw physics, cameras, vector envs.

    python -m benchmark.bench_env [--episodes 20] [--steps 200] [--rounds 5] [--num-envs 2]

Prints, in one run: the env/mj_step overhead per paper-000 task; env steps/s with cameras (one
render pass per step) against state only, also without frustum culling and "before" (every
box drawn on its own, no culling);
frames/s of the one-pass `CameraRig` beside a bare `mujoco.Renderer`, on both
models; `gym.make_vec` (worlds in worker processes, the default, and on threads) and
Gymnasium's async vector env against one env, with scaling models for more cores from the
measured serial parts of a step (`print_vector_scaling`); and the MuJoCo Warp batch's env
steps/s when a CUDA device is present.

The overhead ratio is measured in one run: right after each env step, the same starting
physics state (with the reference the step commanded) goes through bare `mujoco.mj_step`
(frame_skip steps), so both timings integrate the same contacts under the same machine load.
One process = one core for the overhead table.
"""

from __future__ import annotations

import argparse
import multiprocessing
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
from benchmark.script_args import at_least_two, doc_summary, positive_int
from envs import scene
from envs.tasks import PAPER000_TASKS, pinned_versions
from envs.tether import available_cores, die_with_parent


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
    """`steps` zero-action steps of a single env (num_envs=0, resetting itself) or a vector;
    the runner returns the env steps made. A world of a next-step autoreset vector only resets
    in the step after its episode ended: that is no env step (counting it inflated every
    vector ratio by ~2%), as a single env's resets are none."""
    action = np.zeros(((num_envs,) if num_envs else ()) + env.action_space.shape[-1:], np.float32)
    env.reset(seed=0)
    next_step = num_envs and env.metadata.get("autoreset_mode") in (
        gym.vector.AutoresetMode.NEXT_STEP, None)
    resetting = np.zeros(max(num_envs, 1), bool)  # worlds whose next step is a reset

    def run() -> int:
        nonlocal resetting
        made = 0
        for _ in range(steps):
            made += int(np.count_nonzero(~resetting))
            _, _, terminated, truncated, _ = env.step(action)
            if not num_envs and (terminated or truncated):
                env.reset()
            elif next_step:
                resetting = np.asarray(terminated) | np.asarray(truncated)
        return made

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


def _no_culling(env: gym.Env) -> gym.Env:
    """`env` with its rig drawing every geom in every camera (`CameraRig.culling` off)."""
    env.unwrapped.rig.culling = False
    return env


def measure_cameras(env_id: str, steps: int, rounds: int) -> dict[str, dict[str, float]]:
    """Env steps/s with and without cameras (one render pass per step), interleaved; "before"
    is the same env with every box drawn on its own and no frustum culling."""
    settings = {
        "state": {},
        "state + 2 cameras 64x64": {"obs_mode": "state+pixels"},
        "state + 1 camera 64x64": {"obs_mode": "state+pixels", "cameras": ("wrist",)},
        "state + 2 cameras 32x32 gray": {
            "obs_mode": "state+pixels", "image_size": 32, "grayscale": True
        },
    }
    made = {name: gym.make(env_id, **kwargs) for name, kwargs in settings.items()}
    made["state + 2 cameras 64x64, no culling"] = _no_culling(
        gym.make(env_id, obs_mode="state+pixels"))
    with boxes_drawn_one_by_one():
        made["state + 2 cameras 64x64, before"] = _no_culling(
            gym.make(env_id, obs_mode="state+pixels"))
    result = _rounds({name: _stepper(env, steps) for name, env in made.items()}, rounds)
    for env in made.values():
        env.close()
    return result


def measure_frames(env_id: str, frames: int, rounds: int) -> dict[str, dict[str, float]]:
    """Frames/s of the one-pass rig (both cameras) beside a bare `mujoco.Renderer`, on the
    env's model (boxes merged into meshes, frustum culling) and on the same cell drawn box by
    box without culling (before)."""
    env = gym.make(env_id, obs_mode="pixels", image_size=64)
    with boxes_drawn_one_by_one():
        before = _no_culling(gym.make(env_id, obs_mode="pixels", image_size=64))
    cameras = ("wrist", "side")
    passes = max(1, frames // len(cameras))  # --steps 1 rendered nothing: 0 frames/s
    runners, renderers = {}, []
    for label, made in (("", env), (", boxes (before)", before)):
        made.reset(seed=0)
        u = made.unwrapped
        bare = mujoco.Renderer(u.model, 64, 64)
        renderers.append(bare)
        # Its first frames set up its context (12 ms of CPU against 0.8 a pass), as the env's
        # reset did the rig's: timed, they put the rig 15% ahead at 200 steps (bench20).
        _renderer_frames(bare, u.data, cameras, 1)()
        runners[f"CameraRig, 2 cameras per pass{label}"] = _rig_frames(u, cameras, passes)
        runners[f"mujoco.Renderer, one per call{label}"] = _renderer_frames(
            bare, u.data, cameras, passes)
    result = _rounds(runners, rounds)
    for closing in (*renderers, env, before):
        closing.close()
    return result


def _rig_frames(u, cameras: tuple[str, ...], passes: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(passes):
            u.rig.render_all(u.data, cameras)
        return passes * len(cameras)

    return run


def _renderer_frames(bare: mujoco.Renderer, data, cameras, passes: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(passes):
            for camera in cameras:
                bare.update_scene(data, camera=camera)
                bare.render()
        return passes * len(cameras)

    return run


def measure_vector(
    env_id: str, worlds: tuple[int, ...], steps: int, rounds: int, processes: int = 0,
    env_kwargs: dict | None = None,
) -> dict[str, dict[str, float]]:
    """One env against `gym.make_vec` with each number of `worlds`, in worker processes (the
    default) and on threads, and, with `processes` > 0, Gymnasium's async vector env on that
    many processes; interleaved; every env made with `env_kwargs`. Beside them the ceiling of
    any vector here (`lone_case`): one single env per core, each in its own process, with no
    exchange at all; its ratio to one env is what the machine gives busy processes at once
    (shared caches, memory bandwidth, clock boost, the host's other tenants).

    Threaded cases also report, per world-step, the process CPU time spent inside the worlds'
    GIL-free rollouts (`free_s`) and outside them (`gil_s`: Python, the GIL's hand-offs, the
    vector's dispatch and merging) [s], summed over the rounds. Cases in processes report the
    wall time per vector step until the last process has stepped its worlds (`parallel_s`:
    this process's own worlds, then waiting for the workers) and the rest (`serial_s`:
    dispatch and merging, while the workers wait) [s]; their CPU rates count the workers' CPU
    too, their polling for commands included (`envs.shard_wire.Waiter`: up to 0.3 ms after
    each reply, time a blocked process would have left idle).
    """
    env_kwargs = env_kwargs or {}
    single = gym.make(env_id, **env_kwargs)
    made: list[gym.Env] = [single]
    runners = {"1 env": _stepper(single, steps)}
    cpu_clocks, tallies = {}, {}
    cores = available_cores()
    runners[lone_case(cores)], lone_workers, close_lone = _lone_envs(env_id, env_kwargs, steps,
                                                                      cores)
    lone_pids = [worker.pid for worker in lone_workers]
    cpu_clocks[lone_case(cores)] = lambda: time.process_time() + _cpu_s(lone_pids)
    for n in worlds:
        sharded = gym.make_vec(env_id, num_envs=n, **env_kwargs)
        threaded = gym.make_vec(env_id, num_envs=n, processes=0, **env_kwargs)
        made += [sharded, threaded]
        name = shard_case(n)
        runners[name], tallies[name] = _split_wall(sharded, _stepper(sharded, steps, n), steps)
        pids = sharded.unwrapped.worker_pids
        cpu_clocks[name] = lambda pids=pids: time.process_time() + _cpu_s(pids)
        runners[vector_case(n)], tallies[vector_case(n)] = _split_cpu(
            threaded, _stepper(threaded, steps, n))
    if processes:
        async_env = gym.make_vec(env_id, num_envs=processes, vectorization_mode="async",
                                 **env_kwargs)
        made.append(async_env)
        name = f"make_vec async, {processes} processes"
        runners[name] = _stepper(async_env, steps, processes)
        pids = [p.pid for p in async_env.unwrapped.processes]
        cpu_clocks[name] = lambda pids=pids: time.process_time() + _cpu_s(pids)
    result = _rounds(runners, rounds, cpu_clocks)
    for name, tally in tallies.items():
        if "free_s" in tally:
            result[name]["free_s"] = tally["free_s"] / tally["steps"]
            result[name]["gil_s"] = (tally["cpu_s"] - tally["free_s"]) / tally["steps"]
        else:
            result[name]["parallel_s"] = tally["parallel_s"] / tally["vector_steps"]
            result[name]["serial_s"] = ((tally["wall_s"] - tally["parallel_s"])
                                        / tally["vector_steps"])
    for env in made:
        env.close()
    close_lone()
    return result


def lone_case(processes: int) -> str:
    """The name of `measure_vector`'s ceiling case: `processes` single envs, one per process."""
    return f"{processes} lone envs in {processes} processes (no exchange)"


def _lone_env_worker(env_id: str, env_kwargs: dict, steps: int, conn, parent_pid: int) -> None:
    """A process stepping its own env `steps` times whenever the parent says so, never
    exchanging anything about the steps: what the machine gives a second busy process."""
    die_with_parent(parent_pid)
    with pinned_versions():  # as the parent's envs
        env = gym.make(env_id, **env_kwargs)
    run = _stepper(env, steps)
    conn.send("ready")
    while conn.recv():
        conn.send(run())
    env.close()


def _lone_envs(env_id: str, env_kwargs: dict, steps: int, processes: int
               ) -> tuple[Callable[[], int], list, Callable[[], None]]:
    """The ceiling of any vector on this machine: this process and `processes` - 1 workers
    each step a single env of their own, `steps` steps, started together and joined once a
    round (no per-step exchange). Returns the runner, the workers and a closer. The workers are
    spawned, so they import the caller's main module: a script calling this needs an
    ``if __name__ == "__main__":`` guard, as Python's multiprocessing asks."""
    context = multiprocessing.get_context("spawn")
    own = gym.make(env_id, **env_kwargs)
    run_own = _stepper(own, steps)
    workers = []
    for _ in range(processes - 1):
        parent_end, child_end = context.Pipe()
        worker = context.Process(target=_lone_env_worker, daemon=True,
                                 args=(env_id, env_kwargs, steps, child_end, os.getpid()))
        worker.start()
        child_end.close()
        workers.append((worker, parent_end))
    for _, conn in workers:
        conn.recv()  # "ready": the env is built, the clocks may start

    def run() -> int:
        for _, conn in workers:
            conn.send(True)
        count = run_own()
        return count + sum(conn.recv() for _, conn in workers)

    def close() -> None:
        for worker, conn in workers:
            conn.send(False)
            worker.join(timeout=10)
        own.close()

    return run, [worker for worker, _ in workers], close


def shard_case(num_envs: int) -> str:
    """The name of `measure_vector`'s case for `num_envs` worlds in worker processes."""
    return (f"make_vec, {num_envs} worlds in {min(num_envs, available_cores())} processes "
            "(default)")


class _Timed:
    """Stands in for a callable, adding up the wall time spent in it."""

    def __init__(self, inner: Callable) -> None:
        self.inner, self.seconds = inner, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _split_wall(vector, run: Callable[[], int], vector_steps: int
                ) -> tuple[Callable[[], int], dict[str, float]]:
    """`run` (of a `ShardedVectorEnv`, `vector_steps` steps a run) adding up its wall time and
    the part spent answering this process's own slice or waiting for a worker's reply. The
    vector steps are counted as made, not as env steps over worlds: a world's autoreset step
    is no env step but takes its vector step's time (bench23: 197 of 200 counted)."""
    sharded = vector.unwrapped
    timers = [_Timed(sharded._local.server.answer)]
    sharded._local.server.answer = timers[0]
    for worker in sharded._workers:
        timers.append(_Timed(worker.waiter.wait))
        worker.waiter.wait = timers[-1]
    tally = {"wall_s": 0.0, "parallel_s": 0.0, "vector_steps": 0}

    def counted() -> int:
        start, inside = time.perf_counter(), sum(t.seconds for t in timers)
        count = run()
        tally["wall_s"] += time.perf_counter() - start
        tally["parallel_s"] += sum(t.seconds for t in timers) - inside
        tally["vector_steps"] += vector_steps
        return count

    return counted, tally


def _split_cpu(vector, run: Callable[[], int]) -> tuple[Callable[[], int], dict[str, float]]:
    """`run` counting the process CPU time it takes and the part inside the worlds' rollouts
    (each world's `ControlPeriod` timed on its own thread)."""
    timers = []
    for env in vector.unwrapped.envs:
        period = env.unwrapped._period
        period._rollout = _TimedRollout(period._rollout)
        timers.append(period._rollout)
    tally = {"cpu_s": 0.0, "free_s": 0.0, "steps": 0}

    def counted() -> int:
        cpu_start, free_start = time.process_time(), sum(t.seconds for t in timers)
        count = run()
        tally["cpu_s"] += time.process_time() - cpu_start
        tally["free_s"] += sum(t.seconds for t in timers) - free_start
        tally["steps"] += count
        return count

    return counted, tally


def vector_case(num_envs: int) -> str:
    """The name of `measure_vector`'s case for `num_envs` worlds on threads."""
    return f"make_vec, {num_envs} worlds on threads"


class _TimedRollout:
    """Stands in for a `ControlPeriod`'s `mujoco.rollout.Rollout`, adding up the calling
    thread's CPU time inside it: the part of a step that runs without the GIL."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds = inner, 0.0

    def rollout(self, *args, **kwargs):
        start = time.thread_time()
        try:
            return self.inner.rollout(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - start


def measure_gil_share(env_id: str, steps: int, rounds: int) -> dict[str, float]:
    """Thread CPU time of a zero-action env step (resets included, as in a long run) [s], and
    the part of it inside the GIL-free rollout, median over rounds."""
    env = gym.make(env_id)
    period = env.unwrapped._period
    timed = period._rollout = _TimedRollout(period._rollout)
    run = _stepper(env, steps)
    step_s, physics_s = [], []
    for _ in range(rounds):
        timed.seconds, start = 0.0, time.thread_time()
        count = run()
        step_s.append((time.thread_time() - start) / count)
        physics_s.append(timed.seconds / count)
    env.close()
    return {"step_s": float(np.median(step_s)), "physics_s": float(np.median(physics_s))}


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
    """CPU seconds of other processes' threads (Linux /proc): from schedstat, in nanoseconds
    (stat's utime + stime count 10 ms ticks: +-9% a round of 200 steps, bench20), else from
    those ticks where the kernel keeps no schedstat. Live threads only: the measured workers
    keep theirs for their lives (a thread that exits between two reads would go uncounted)."""
    try:
        ns = 0
        for pid in pids:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as schedstat:
                    ns += int(schedstat.read().split()[0])
        return ns / 1e9
    except (OSError, ValueError, IndexError):
        ticks = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")


def thread_scaling_model(single_s: float, gil_s: float, free_s: float,
                         cores: int) -> tuple[float, float]:
    """Speed-up over one env of N >= `cores` worlds on threads: (Amdahl, GIL bound). A model.

    One env step costs `single_s` of a core; in the vector env a world-step costs `gil_s` with
    the GIL held (its Python, plus the vector's share of dispatch and merging) and `free_s`
    without it (the rollout). Amdahl treats `gil_s` as a serial fraction f that overlaps
    nothing: S = single / ((gil + free) (f + (1 - f) / cores)), the pessimistic end. The GIL
    bound lets one world's Python overlap the others' physics, so only the GIL's own capacity
    and the cores limit: S = min(cores / (gil + free), 1 / gil) x single, the optimistic end.
    """
    total = gil_s + free_s
    serial = gil_s / total
    amdahl = single_s / (total * (serial + (1.0 - serial) / cores))
    gil_bound = single_s * min(cores / total, 1.0 / gil_s)
    return amdahl, gil_bound


def process_scaling_model(single_s: float, world_s: float, serial_s: float, processes: int,
                          cores: int, worlds_per_core: int) -> float:
    """Speed-up over one env of N = `worlds_per_core` x `cores` worlds in `cores` processes
    (this one and cores - 1 workers) on an otherwise idle machine with `cores` cores. A model.

    One env step takes `single_s`; a vector step of m worlds per process takes
    m x `world_s` + `serial_s` (the worlds of all processes in parallel, then this process's
    dispatch and merging while the workers wait), both measured with `processes` processes
    (`measure_vector`). The serial part is taken to grow with the processes (one
    message and one poll each way per worker): s(c) = serial_s x c / processes. Then
    S = N single_s / (m world_s + s(c)). Memory bandwidth and caches shared by more cores are
    not modelled (on 2 cores they are within `world_s`).
    """
    serial = serial_s * cores / processes
    return worlds_per_core * cores * single_s / (worlds_per_core * world_s + serial)


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


def print_vector_scaling(console: Console, env_id: str, worlds: tuple[int, ...], steps: int,
                         rounds: int, processes: int = 0) -> dict[str, float]:
    """Print the vector table and the scaling models for `env_id`; return the figures.

    The models' inputs are measured: a single env step's thread CPU time
    (`measure_gil_share`); with the most worlds on threads, the process CPU per world-step
    inside the GIL-free rollouts and outside them; with the most worlds in processes, the wall
    time of a vector step until every process has stepped its worlds, and the rest
    (`measure_vector`).
    """
    rates = measure_vector(env_id, worlds, steps, rounds, processes)
    _print_rates(console, f"{env_id}, zero action: worlds in worker processes and on threads",
                 rates, "env steps", "1 env")
    share = measure_gil_share(env_id, steps, rounds)
    single_s = share["step_s"]
    most = rates[vector_case(max(worlds))]
    gil_s, free_s = most["gil_s"], most["free_s"]
    models = {c: thread_scaling_model(single_s, gil_s, free_s, c) for c in (2, 4, 8, 16)}
    console.print(
        f"{env_id}: one env's step costs {single_s * 1e6:.0f} us of CPU, "
        f"{(single_s - share['physics_s']) * 1e6:.0f} us of it outside the GIL-free rollout. "
        f"With {max(worlds)} worlds on threads a world-step costs {free_s * 1e6:.0f} us inside "
        f"rollouts and {gil_s * 1e6:.0f} us outside (serial fraction "
        f"{gil_s / (gil_s + free_s):.2f}). Model, N >= cores worlds, speed-up over one env "
        "(Amdahl .. GIL bound): "
        + ", ".join(f"{c} cores {a:.1f}..{b:.1f}x" for c, (a, b) in models.items())
    )
    n = max(worlds)
    shard_processes = min(n, available_cores())
    shards = rates[shard_case(n)]
    world_s = shards["parallel_s"] / -(-n // shard_processes)
    single_wall_s = 1.0 / rates["1 env"]["wall"]
    process_models = {
        c: tuple(process_scaling_model(single_wall_s, world_s, shards["serial_s"], shard_processes,
                                       c, m) for m in (1, 4))
        for c in (2, 4, 8, 16)
    }
    console.print(
        f"{env_id}: with {n} worlds in {shard_processes} processes a vector step takes "
        f"{(shards['parallel_s'] + shards['serial_s']) * 1e6:.0f} us: "
        f"{shards['parallel_s'] * 1e6:.0f} us until every process has stepped its worlds "
        f"({world_s * 1e6:.0f} us a world; one env: {single_wall_s * 1e6:.0f} us a step), "
        f"{shards['serial_s'] * 1e6:.0f} us serial. Model, idle machine, c processes on c "
        "cores, speed-up over one env with N = c .. 4c worlds: "
        + ", ".join(f"{c} cores {a:.1f}..{b:.1f}x" for c, (a, b) in process_models.items())
    )
    figures = {}
    for case in [vector_case(n) for n in worlds] + [shard_case(n) for n in worlds]:
        figures[f"{case} (wall)"] = rates[case]["wall"] / rates["1 env"]["wall"]
        figures[f"{case} (CPU)"] = rates[case]["cpu"] / rates["1 env"]["cpu"]
    figures["lone envs (wall)"] = (rates[lone_case(available_cores())]["wall"]
                                   / rates["1 env"]["wall"])
    figures["serial fraction"] = gil_s / (gil_s + free_s)
    figures.update({f"model {c} cores": models[c] for c in models})
    figures.update({f"process model {c} cores": process_models[c] for c in process_models})
    figures["process serial fraction"] = shards["serial_s"] / (shards["parallel_s"]
                                                               + shards["serial_s"])
    return figures



def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--episodes", type=positive_int, default=20,
                        help="P-controller episodes per task and goal noise (state-speed table)")
    parser.add_argument("--steps", type=positive_int, default=200,
                        help="env steps per case and round")
    parser.add_argument("--rounds", type=positive_int, default=5, help="interleaved timing rounds")
    parser.add_argument("--num-envs", type=at_least_two, default=2,
                        help="worlds of the vector envs")
    parser.add_argument("--gpu-worlds", type=positive_int, default=4096,
                        help="worlds of the GPU batch")
    args = parser.parse_args()
    console = Console(width=160)
    console.print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
                  f"(wall rates fall with other work; CPU rates are what a step costs)")
    table = Table(title="Env speed, one process; timings in thread CPU time")
    for column in ("task", "goal noise", "env steps", "env steps/s", "physics steps/s",
                   "env/mj_step ratio"):
        table.add_column(column, justify="right")
    for env_id in PAPER000_TASKS:
        for noise in (0.0, 1.0):
            r = measure_state_steps(env_id, args.episodes, noise)
            table.add_row(env_id, f"{noise:.0f} mm", str(r["steps"]),
                          f"{r['env_steps_per_s']:.0f}", f"{r['physics_steps_per_s']:.0f}",
                          f"{r['ratio']:.3f}")
    console.print(table)

    env_id = PAPER000_TASKS[0]
    _print_rates(console, f"{env_id}, zero action: cameras rendered in one pass per step",
                 measure_cameras(env_id, args.steps, args.rounds), "env steps", "state")
    _print_rates(console, f"{env_id}: 64x64 frames", measure_frames(env_id, args.steps,
                 args.rounds), "frames", "mujoco.Renderer, one per call, boxes (before)")
    print_vector_scaling(console, env_id, (args.num_envs,), args.steps, args.rounds,
                         processes=args.num_envs)
    console.print(measure_warp_gpu(env_id, args.gpu_worlds, 20), markup=False)


if __name__ == "__main__":
    with pinned_versions():  # the benchmark's versions are chosen: no "out of date" advice
        main()
