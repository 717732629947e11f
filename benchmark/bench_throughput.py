"""Every throughput ratio of issue 14 in one run: cameras, vector envs, learners, vs targets.

    python -m benchmark.bench_throughput [--steps 200] [--rounds 5] [--worlds 2 4 8]
                                         [--seconds 6] [--compile]

Prints, on USB-v0 and USB-v1 (zero action) and InsertBench-shaped learner batches of 256:

- env steps/s with cameras against state only, now, without frustum culling, and "before"
  (neither culling nor merged boxes: `benchmark.bench_env.boxes_drawn_one_by_one`), and 64x64
  frames per CPU-second of `CameraRig` beside a bare `mujoco.Renderer` on both models;
- `gym.make_vec` with each number of `--worlds` in worker processes (the default,
  `envs.sharded_vector`) and on threads (``processes=0``), and, on USB-v0, Gymnasium's async
  vector env, against one env, per wall second and per CPU-second (workers' CPU included; the
  CPU ratio is the vector's efficiency: on an idle machine with c cores, N >= c worlds reach
  about c x efficiency, less the parent's serial part), beside the ceiling of any vector here:
  one lone env per core, each in its own process, with no exchange (`bench_env.lone_case`);
- the part of a world-step that holds the GIL (the process CPU outside the worlds' rollouts,
  with the most worlds on threads) and the speed-up that serial fraction allows on 2, 4, 8, 16
  cores, Amdahl .. GIL bound (`bench_env.thread_scaling_model`, a model); the same cores for
  worlds in processes, from the wall time of a vector step (the most worlds) split into the
  worlds' parallel part and the serial rest (`bench_env.process_scaling_model`, a model);
- the same vectors on USB-v1 with both cameras (64x64 RGB), half the steps;
- SAC gradient updates/s from state and from pixels at batch 256 with 1 and 2 torch threads, the
  convolutions under bfloat16 autocast (``bf16_convs``), the smaller encoder (image_channels=16)
  and, with ``--compile``, ``torch.compile``d convolutions.

Wall rates fall with the machine's load (printed before and after); CPU rates are what the work
costs, on one thread: 2-thread learner rows on a machine without 2 idle cores are OpenMP's
spinning threads, and say so (`bench_agents.oversubscribed`). Cases run interleaved in rounds,
so load drift hits all of them alike.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmark.bench_agents import _GRAY_WRIST, oversubscribed, updates_per_second
from benchmark.bench_env import (
    _print_rates,
    lone_case,
    measure_cameras,
    measure_frames,
    measure_vector,
    print_vector_scaling,
    shard_case,
    vector_case,
)
from benchmark.script_args import at_least_two, doc_summary, positive_float, positive_int
from envs.tasks import PAPER000_TASKS, PAPER000_TASKS_V1
from envs.tether import available_cores

#: Targets of issue 14.
CAMERA_TARGET = 0.6  # state + 2 cameras 64x64 vs state only
VECTOR_TARGET = 1.8  # N worlds on 2 cores vs one env
PIXEL_SAC_TARGET = 60.0  # gradient updates/s at batch 256 on 2 cores

BF16 = {"bf16_convs": True}
PIXELS = {"obs_mode": "state+pixels"}  # the env's default cameras: wrist and side, 64x64 RGB
_TWO_RGB = (("wrist", (64, 64, 3)), ("side", (64, 64, 3)))


def _load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def learner_rates(seconds: float, compile_convs: bool) -> dict[str, dict[str, float]]:
    """Median updates/s (wall, CPU) of SAC from state and pixels, batch 256, per thread count."""
    cases = []
    for threads in (1, 2):
        cases += [
            (f"SAC, state, {threads} thread(s)", threads, (), {}, False),
            (f"pixel SAC, 32x32 gray wrist, {threads} thread(s)", threads, _GRAY_WRIST, {},
             False),
            (f"pixel SAC, 32x32 gray, bf16 convs, {threads} thread(s)", threads, _GRAY_WRIST,
             BF16, False),
            (f"pixel SAC, 32x32 gray, bf16 convs, 16 channels, {threads} thread(s)", threads,
             _GRAY_WRIST, {**BF16, "image_channels": 16}, False),
        ]
    cases += [
        ("pixel SAC, 32x32 gray, image_channels=16, 1 thread", 1, _GRAY_WRIST,
         {"image_channels": 16}, False),
        ("pixel SAC, 2 cameras 64x64 RGB, 1 thread", 1, _TWO_RGB, {}, False),
        ("pixel SAC, 2 cameras 64x64 RGB, bf16 convs, 1 thread", 1, _TWO_RGB, BF16, False),
    ]
    if compile_convs:
        cases.append(("pixel SAC, 32x32 gray, torch.compile convs, 1 thread", 1, _GRAY_WRIST,
                      {}, True))
    rates = {}
    for label, threads, images, config, compiled in cases:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        wall, cpu = updates_per_second("sac", images, seconds, "cpu", config, windows=3,
                                       compile_convs=compiled)
        rates[label] = {"wall": float(np.median(wall)), "cpu": float(np.median(cpu))}
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--steps", type=positive_int, default=200,
                        help="env steps per case and round")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="interleaved timing rounds (medians over them)")
    parser.add_argument("--worlds", type=at_least_two, nargs="+", default=[2, 4, 8],
                        help="numbers of worlds of the vector envs (>= 2)")
    parser.add_argument("--seconds", type=positive_float, default=6.0,
                        help="timing per learner case")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile'd encoder convolutions (compiles ~30 s)")
    args = parser.parse_args()
    console = Console(width=160)
    env_id = PAPER000_TASKS[0]
    console.print(f"{env_id}; {os.cpu_count()} CPUs; {_load()} (start)")

    cameras = measure_cameras(env_id, args.steps, args.rounds)
    _print_rates(console, f"{env_id}, zero action: cameras, one render pass per step", cameras,
                 "env steps", "state")
    frames = measure_frames(env_id, args.steps, args.rounds)
    _print_rates(console, "64x64 frames (per CPU-s = per core)", frames, "frames",
                 "mujoco.Renderer, one per call, boxes (before)")
    worlds = tuple(args.worlds)
    vectors = {task: print_vector_scaling(console, task, worlds, args.steps, args.rounds,
                                          processes=min(worlds) if task == env_id else 0)
               for task in (env_id, PAPER000_TASKS_V1[0])}
    pixel_task = PAPER000_TASKS_V1[0]
    pixel_vectors = measure_vector(pixel_task, worlds, max(args.steps // 2, 1), args.rounds,
                                   env_kwargs=PIXELS)
    _print_rates(console, f"{pixel_task}, state + 2 cameras 64x64 RGB, zero action: vectors",
                 pixel_vectors, "env steps", "1 env")
    warning = oversubscribed(2)  # before the rows it is about
    if warning:
        console.print(f"warning: {warning}", highlight=False)
    learners = learner_rates(args.seconds, args.compile)
    _print_rates(console, "SAC gradient updates at batch 256, 2x256 MLP", learners, "updates",
                 "SAC, state, 1 thread(s)")

    pixel = "pixel SAC, 32x32 gray wrist, 1 thread(s)"
    summary = Table(title=f"Issue 14 ratios ({_load()} at the end)")
    for column in ("figure", "now", "target", "note"):
        summary.add_column(column, justify="right")

    def camera_ratio(case: str) -> float:
        return cameras[case]["cpu"] / cameras["state"]["cpu"]

    summary.add_row("state + 2 cameras 64x64 / state (CPU)",
                    f"{camera_ratio('state + 2 cameras 64x64'):.2f}", f"{CAMERA_TARGET}",
                    f"no culling: {camera_ratio('state + 2 cameras 64x64, no culling'):.2f}, "
                    f"before: {camera_ratio('state + 2 cameras 64x64, before'):.2f}")
    rig, bare = (frames["CameraRig, 2 cameras per pass"],
                 frames["mujoco.Renderer, one per call, boxes (before)"])
    summary.add_row("CameraRig frames per CPU-s / bare Renderer (before)",
                    f"{rig['cpu'] / bare['cpu']:.2f}", "", f"{rig['cpu']:.0f} vs "
                    f"{bare['cpu']:.0f} frames per CPU-s")
    cores = available_cores()
    for task, figures in vectors.items():
        ceiling = figures["lone envs (wall)"]
        summary.add_row(f"{task}: {lone_case(cores)} / 1 env (wall)", f"{ceiling:.2f}", "",
                        "the ceiling of any vector on this machine")
        for n in worlds:
            case = shard_case(n)
            summary.add_row(f"{task}: {case.replace('make_vec, ', '')} / 1 env (wall)",
                            f"{figures[f'{case} (wall)']:.2f}", f"{VECTOR_TARGET}",
                            f"{figures[f'{case} (wall)'] / ceiling:.2f} of the ceiling; "
                            f"threads: {figures[f'{vector_case(n)} (wall)']:.2f}")
            summary.add_row(f"{task}: {n} worlds in processes / 1 env (CPU)",
                            f"{figures[f'{case} (CPU)']:.2f}", "",
                            "workers' polling for commands included")
        summary.add_row(f"{task}: in processes, serial fraction of a vector step",
                        f"{figures['process serial fraction']:.2f}", "",
                        "model (N = c .. 4c worlds): " + ", ".join(
                            f"{c} cores {figures[f'process model {c} cores'][0]:.1f}.."
                            f"{figures[f'process model {c} cores'][1]:.1f}x"
                            for c in (2, 4, 8, 16)))
        for n in worlds:
            summary.add_row(f"{task}: {n} worlds on threads / 1 env (wall)",
                            f"{figures[f'{vector_case(n)} (wall)']:.2f}", f"{VECTOR_TARGET}",
                            "falls with other processes' load")
            summary.add_row(f"{task}: {n} worlds on threads / 1 env (CPU: efficiency)",
                            f"{figures[f'{vector_case(n)} (CPU)']:.2f}", "",
                            f"idle 2 cores: about "
                            f"{min(n, 2) * figures[f'{vector_case(n)} (CPU)']:.2f}x")
        summary.add_row(f"{task}: serial (GIL-held) fraction of a world-step",
                        f"{figures['serial fraction']:.2f}", "",
                        "model: " + ", ".join(
                            f"{c} cores {figures[f'model {c} cores'][0]:.1f}.."
                            f"{figures[f'model {c} cores'][1]:.1f}x" for c in (2, 4, 8, 16)))
    ceiling = pixel_vectors[lone_case(cores)]["wall"] / pixel_vectors["1 env"]["wall"]
    summary.add_row(f"{pixel_task}, 2 cameras 64x64: {lone_case(cores)} / 1 env (wall)",
                    f"{ceiling:.2f}", "", "the ceiling of any vector on this machine")
    for n in worlds:
        ratios = {case: pixel_vectors[case]["wall"] / pixel_vectors["1 env"]["wall"]
                  for case in (shard_case(n), vector_case(n))}
        summary.add_row(f"{pixel_task}, 2 cameras 64x64: {n} worlds in processes / 1 env "
                        "(wall)", f"{ratios[shard_case(n)]:.2f}", f"{VECTOR_TARGET}",
                        f"{ratios[shard_case(n)] / ceiling:.2f} of the ceiling; "
                        f"threads: {ratios[vector_case(n)]:.2f}")
    summary.add_row("pixel SAC updates/s, 32x32 gray, 1 thread (wall | per CPU-s)",
                    f"{learners[pixel]['wall']:.1f} | {learners[pixel]['cpu']:.1f}",
                    f"{PIXEL_SAC_TARGET:.0f}",
                    f"state SAC: {learners['SAC, state, 1 thread(s)']['cpu']:.1f} per CPU-s")
    for label in ("pixel SAC, 32x32 gray, bf16 convs, 2 thread(s)",
                  "pixel SAC, 32x32 gray, bf16 convs, 16 channels, 2 thread(s)"):
        summary.add_row(label.replace("pixel SAC, ", "pixel SAC updates/s, ") + " (wall)",
                        f"{learners[label]['wall']:.1f}", f"{PIXEL_SAC_TARGET:.0f}",
                        "2 cores: needs an otherwise idle machine")
    console.print(summary)


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the benchmark's versions are chosen: no "out of date" advice
        main()
