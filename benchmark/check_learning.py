"""Learning sanity checks through the runner: figures, not tests.

    python -m benchmark.check_learning --task pendulum --agent sac --steps 8000
    python -m benchmark.check_learning --task usb --agent residual_sac --steps 5000

``pendulum``: Gymnasium's Pendulum-v1 (swing-up; a return of about -150 to -200 per 200-step
episode is solved, a random policy gets about -1200) with its observation in a Dict, so the same
encoder, buffer and checkpoint code paths as on InsertBench run. For residual agents the base
controller is deliberately wrong (a constant 1 N m torque): the residual has to learn to cancel
it. Prints the evaluation mean return at every evaluation.

``usb``: ``InsertBench/USB-v0`` with the sparse reward and +-1 mm goal noise (paper 000's
residual-RL setting), agent defaults; prints the success rate (95% Wilson interval) at every
evaluation (20 episodes on the fixed evaluation seeds).

Learning quality is measured here, correctness in tests/.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from agents import agent_names, agent_spec
from benchmark.folder_lock import RunInProgress
from benchmark.script_args import doc_summary, non_negative_int, positive_int, run_dir
from benchmark.train import train
from envs.episode import success_text

CHECK_ENV_ID = "InsertBenchCheck/PendulumDict-v1"


class PendulumDictEnv(PendulumEnv):
    """Pendulum-v1 with a Dict observation {"state": (cos, sin, angular velocity)}."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.observation_space = gym.spaces.Dict({"state": self.observation_space})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return {"state": obs}, info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return {"state": obs}, reward, terminated, truncated, info

    def p_controller(self) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """A deliberately wrong base controller for residual agents: constant 1 N m."""
        return lambda obs: np.ones(1, dtype=np.float32)


if CHECK_ENV_ID not in gym.registry:
    gym.register(CHECK_ENV_ID, entry_point=PendulumDictEnv, max_episode_steps=200)


def pendulum_agents() -> list[str]:
    """The agents the Pendulum check trains: online learners configured by `learning_starts`
    and `random_steps` (residual ones on the deliberately wrong controller above), not those
    that need demonstrations, a target task's context or calibrated labels."""
    import dataclasses

    def fits(name: str) -> bool:
        spec = agent_spec(name)
        fields = {f.name for f in dataclasses.fields(spec.config_cls)}
        return ({"learning_starts", "random_steps"} <= fields
                and not (spec.needs_demos or spec.needs_context or spec.needs_labels))

    return [name for name in agent_names() if fits(name)]


def main() -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--task", default="pendulum", choices=["pendulum", "usb"])
    parser.add_argument("--agent", default="sac", choices=agent_names(), metavar="AGENT",
                        help="sac, td3, residual_sac, residual_td3, ...")
    parser.add_argument("--steps", type=non_negative_int, default=8_000, help="env steps")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=run_dir, default=None,
                        help="run directory (default runs/...)")
    args = parser.parse_args()
    if args.task == "pendulum" and args.agent not in (online := pendulum_agents()):
        # a traceback: unknown config fields (bench19)
        parser.error(f"--task pendulum checks an online learner ({', '.join(online)}); "
                     f"{args.agent} is scripted or needs demonstrations or labels Pendulum has "
                     "none of: use --task usb")
    torch.set_num_threads(args.threads)
    pendulum = args.task == "pendulum"
    try:  # a bad --steps, another run in --out: tracebacks on Pendulum (bench21)
        result = train(
            CHECK_ENV_ID, args.agent, seed=args.seed, steps=args.steps,
            config={"learning_starts": 1_000, "random_steps": 1_000}, out_dir=args.out,
            eval_every=2_000, eval_episodes=5,
        ) if pendulum else train(
            "InsertBench/USB-v0", args.agent, seed=args.seed, steps=args.steps,
            env_kwargs={"reward": "sparse", "goal_noise_mm": 1.0}, out_dir=args.out,
            eval_every=1_000, eval_episodes=20,
        )
    except (ValueError, RunInProgress) as err:  # RunInProgress: another run writes --out
        spec = agent_spec(args.agent)  # one that needs what this check gives no option for
        unfed = spec.needs_demos or spec.needs_context or spec.needs_labels
        parser.error(f"{err}" + (" (this check takes no demos or env kwargs: train such an "
                                 "agent with `insertbench train`)" if unfed else ""))
    if pendulum:
        for entry, s in zip(result.evaluations, result.summaries, strict=True):
            print(f"{args.agent} step {entry.env_steps:>6}: evaluation mean return "
                  f"{s['mean_return']:8.1f}")
        return
    for entry, s in zip(result.evaluations, result.summaries, strict=True):
        print(f"{args.agent} step {entry.env_steps:>6}: success {success_text(s)}")


if __name__ == "__main__":
    from envs.tasks import pinned_versions

    with pinned_versions():  # the script's task versions are chosen on purpose
        main()
