"""Learner throughput: gradient updates per second of the agents on InsertBench-shaped inputs.

    python -m benchmark.bench_agents [--threads 2] [--seconds 10] [--device cpu]

Prints gradient updates/s (one update = critic + actor (+ temperature) step on one batch) for
SAC on state observations (tcp_pose, tcp_vel, wrench: 18 numbers; 3-D action) with the default
config (2x256 MLPs, batch 256), and for comparison TD3 on state and SAC on 32x32 grayscale
wrist images. No env is stepped: the replay buffer is filled with random transitions, so this
measures the learner alone.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

from agents import Transition, make_agent


def insertbench_spaces(pixels: bool) -> tuple[gym.spaces.Dict, gym.spaces.Box]:
    """Observation / action spaces with the InsertBench contract's keys and shapes."""
    spaces: dict[str, gym.spaces.Space] = {
        k: gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        for k in ("tcp_pose", "tcp_vel", "wrench")
    }
    if pixels:
        spaces["wrist"] = gym.spaces.Box(0, 255, (32, 32, 1), np.uint8)
    return gym.spaces.Dict(spaces), gym.spaces.Box(-1, 1, (3,), np.float32)


def updates_per_second(
    name: str, pixels: bool, seconds: float, device: str, windows: int = 5
) -> list[float]:
    """Fill a buffer with random transitions, warm up, then time ``update()`` calls.

    Returns the rate of each of ``windows`` equal timing windows: on a shared machine the
    spread between them is part of the figure.
    """
    obs_space, act_space = insertbench_spaces(pixels)
    obs_space.seed(0)
    act_space.seed(0)
    agent = make_agent(name, obs_space, act_space,
                       {"learning_starts": 0, "random_steps": 0, "device": device})
    for _ in range(2_000):
        agent.observe(Transition(obs_space.sample(), act_space.sample(), 0.0, obs_space.sample(),
                                 False, False, {}))
    for _ in range(10):
        agent.update()
    rates = []
    for _ in range(windows):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / windows:
            agent.update()
            count += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rates.append(count / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="timing per case [s]")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads}, "
          f"batch 256, MLP 2x256")
    for name, pixels, label in [
        ("sac", False, "SAC, state obs"),
        ("td3", False, "TD3, state obs"),
        ("sac", True, "SAC, state + 32x32 gray wrist image"),
    ]:
        rates = updates_per_second(name, pixels, args.seconds, args.device)
        print(f"gradient updates/s for {label}: {np.median(rates):.0f} "
              f"(median of {len(rates)} windows; min {min(rates):.0f}, max {max(rates):.0f})")


if __name__ == "__main__":
    main()
