"""Learner throughput: gradient updates per second on InsertBench-shaped inputs, state and pixels.

    python -m benchmark.bench_agents [--threads 2] [--seconds 10] [--device cpu]

One update = critic + actor + temperature (+ target) step on one batch of 256, 2x256 MLPs; for
RLPD one critic step (2 LayerNorm critics, as ``benchmark.check_serl`` runs it) plus an actor
and temperature step every second one (its ``critic_actor_ratio``). Cases, side by side: SAC,
TD3 and RLPD on state (tcp_pose, tcp_vel, wrench: 18 numbers; 3-D action), and pixel SAC and
RLPD (one encoder shared by actor and critics, trained by the critic loss, DrQ random shift)
on paper 000's 32x32 grayscale wrist image plus state, and on the env's default pixels (wrist
and side, 64x64 RGB) with the default "drq" encoder (three 3x3 convs) and the "strided" one
(8x8/4 + 4x4/2 convs), with and without bfloat16 convolutions.
No env is stepped: the replay buffer holds random transitions, so this measures the learner.

Each case prints the median over timing windows of updates per wall second and per CPU second
of the process (all torch threads). On a machine shared with other work the wall figure falls
with the load; the CPU figure is what one update costs on one thread. With more threads than
the machine has idle cores, both mean nothing: torch's OpenMP threads spin while they wait
for each other, and SAC's 2-thread rate fell 90x in wall and CPU alike at load 4-7 on 2 cores
(bench22); `oversubscribed` says so before the figures.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
import torch

from agents import Transition, make_agent
from agents.config import check_torch_device
from agents.networks import ImageEncoder
from benchmark.script_args import doc_summary, positive_float, positive_int

_GRAY_WRIST = (("wrist", (32, 32, 1)),)
_TWO_RGB = (("wrist", (64, 64, 3)), ("side", (64, 64, 3)))
_STRIDED = {"image_encoder": "strided"}
#: RLPD as benchmark.check_serl runs it (UTD 2: an actor step every second critic step);
#: utd_ratio 1 makes one update() one critic step.
_RLPD = {"num_qs": 2, "utd_ratio": 1, "critic_actor_ratio": 2}
#: (label, agent, image entries as (name, shape), config overrides).
CASES = [
    ("SAC, state", "sac", (), {}),
    ("TD3, state", "td3", (), {}),
    ("RLPD, state", "rlpd", (), _RLPD),
    ("pixel SAC, state + 32x32 gray wrist", "sac", _GRAY_WRIST, {}),
    ("  same, image_channels=16", "sac", _GRAY_WRIST, {"image_channels": 16}),
    ("pixel SAC, 2 cameras 64x64 RGB", "sac", _TWO_RGB, {}),
    ("  same, strided encoder", "sac", _TWO_RGB, _STRIDED),
    ("  same, strided encoder, bf16 convs", "sac", _TWO_RGB, _STRIDED | {"bf16_convs": True}),
    ("pixel RLPD, 2 cameras 64x64 RGB, strided", "rlpd", _TWO_RGB, _RLPD | _STRIDED),
]


def insertbench_spaces(images=()) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
    """Observation / action spaces with the InsertBench contract's keys and shapes."""
    spaces: dict[str, gym.spaces.Space] = {
        k: gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        for k in ("tcp_pose", "tcp_vel", "wrench")
    }
    for name, shape in images:
        spaces[name] = gym.spaces.Box(0, 255, shape, np.uint8)
    return gym.spaces.Dict(spaces), gym.spaces.Box(-1, 1, (3,), np.float32)


def oversubscribed(threads: int) -> str | None:
    """A warning where `threads` torch threads want more cores than the machine has idle (its
    1-minute load average counted as busy cores, with one to spare: this process's own start
    counts in it); None otherwise."""
    cores, load = os.cpu_count() or 1, os.getloadavg()[0]
    if threads <= 1 or load + threads <= cores + 1:
        return None
    return (f"load average {load:.1f} on {cores} cores leaves fewer than {threads} idle: the "
            f"{threads}-thread figures below, wall and CPU alike, are torch's OpenMP threads "
            "waiting for each other, not the work's cost (measure on an idle machine, or with "
            "one thread)")


def updates_per_second(
    name: str, images, seconds: float, device: str, config=None, windows: int = 5,
    compile_convs: bool = False,
) -> tuple[list[float], list[float]]:
    """Fill a buffer with random transitions, warm up, then time ``update()`` calls.

    ``compile_convs`` wraps each image encoder's conv stack in ``torch.compile`` (the warm-up
    pays the compilation). Returns the rates of ``windows`` equal timing windows, per wall
    second and per process CPU second: on a shared machine the spread between windows is part
    of the figure.
    """
    obs_space, act_space = insertbench_spaces(images)
    obs_space.seed(0)
    act_space.seed(0)
    agent = make_agent(name, obs_space, act_space,
                       {"learning_starts": 0, "random_steps": 0, "device": device,
                        **(config or {})})
    if compile_convs:
        for module in agent.encoder.modules():
            if isinstance(module, ImageEncoder):
                module.convs = torch.compile(module.convs)
    for _ in range(2_000):
        agent.observe(Transition(obs_space.sample(), act_space.sample(), 0.0, obs_space.sample(),
                                 False, False, {}))
    for _ in range(5):
        agent.update()
    wall_rates, cpu_rates = [], []
    for _ in range(windows):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        count, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds / windows:
            agent.update()
            count += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall_rates.append(count / (time.perf_counter() - start))
        cpu_rates.append(count / max(time.process_time() - cpu_start, 1e-9))
    return wall_rates, cpu_rates


def torch_device(text: str) -> str:
    """An argparse type: a torch device this torch can use (a bad name or CUDA on a CPU build
    was a traceback after the header)."""
    try:
        return check_torch_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
    parser.add_argument("--seconds", type=positive_float, default=10.0,
                        help="timing per case [s]")
    parser.add_argument("--device", type=torch_device, default="cpu",
                        help="torch device (cpu, cuda)")
    parser.add_argument("--rank-by", choices=("wall", "cpu"), default="wall",
                        help="rates the ratios use (cpu on a machine shared with other work, "
                             "with --threads 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warning = oversubscribed(args.threads)
    if warning:
        print(f"warning: {warning}")
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads}, "
          f"batch 256, MLP 2x256; load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':40s} {'updates/s (wall)':>17s} {'per CPU-s':>10s}   min-max (wall)")
    rates = {}
    for label, name, images, config in CASES:
        wall, cpu = updates_per_second(name, images, args.seconds, args.device, config)
        rates[label] = float(np.median(cpu if args.rank_by == "cpu" else wall))
        print(f"{label:40s} {np.median(wall):17.1f} {np.median(cpu):10.1f}   "
              f"{min(wall):.1f}-{max(wall):.1f}")
    for label, name, images, _ in CASES:
        if images:
            reference = "RLPD, state" if name == "rlpd" else "SAC, state"
            print(f"{label.strip():45s} / {reference}: {rates[label] / rates[reference]:.2f}")


if __name__ == "__main__":
    main()
