"""The runner's env loop on N worlds at once (``train(..., num_envs=N)``, ``--num-envs N``).

The N worlds are the single env ``make_env`` builds, each on its own thread of an
``envs.vector.ThreadedVectorEnv`` (the physics of the worlds overlaps; see ``envs.vector``). The
runner does not use the vector's autoreset: it starts every episode itself, so episode ``k`` of
the run is still reset with ``train_episode_seed(seed, k)`` (episodes are numbered in the order
they start; world order breaks ties), and the transition that ends an episode carries the
episode's final observation as ``next_obs``, never the next episode's first one.

Per world the runner keeps the episode's seed, executed actions and return (TensorBoard gets
each episode's return, success and length); after every vector step the agent observes the N
transitions in world order, with one ``update()`` after each, as after each step of one env, so
the update-to-data ratio per env step is the agent's own. Evaluation runs on a separate single
env (same kwargs, the fixed evaluation seeds) at the first vector step after every
``eval_every`` env steps and at the end. Checkpoints save every world's episode in progress;
resuming replays each on its own thread and checks it reaches the saved observation.

What cannot run on N worlds is refused with a ValueError, before anything is built:
agents without ``concurrent_episodes = True`` (per-episode state such as scripted phases: one
agent would mix N episodes) or whose ``vector_refusal(config)`` names a reason (IQL's
``policy_online_rows="classifier_success"``), agents that need a base policy (it reads one
world's believed goal), and intervention hooks or simulated operators (one operator per
episode). Such runs use ``num_envs=1``, whose loop (``benchmark.train``) is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from agents import Agent, Transition
from agents.registry import AgentSpec
from benchmark.train import _Run, read_saved_observations, train_episode_seed
from envs.vector import ThreadedVectorEnv, check_num_envs


def check_vector_training(spec: AgentSpec, num_envs: int, steps: int, config: Mapping[str, Any],
                          intervene: Any = None,
                          env_kwargs: Mapping[str, Any] | None = None) -> None:
    """ValueError with the reason when ``spec``'s agent (with its full ``config`` dict, the
    caller's ``intervene`` hook and the task's ``env_kwargs``) cannot train ``steps`` env steps
    on ``num_envs`` worlds."""
    check_num_envs(num_envs)  # 100,000 ended in "can't start new thread", a run dir left
    if num_envs == 1:
        return
    if steps % num_envs:
        raise ValueError(f"steps ({steps}) must be a multiple of num_envs ({num_envs}): "
                         "every vector step adds num_envs env steps")
    if spec.needs_base_policy:
        raise ValueError(f"{spec.name} cannot train on num_envs > 1: its base policy reads one "
                         "world's believed goal; use num_envs=1")
    if not getattr(spec.cls, "concurrent_episodes", False):
        raise ValueError(f"{spec.name} cannot train on num_envs > 1: it keeps per-episode state "
                         "(not marked concurrent_episodes); use num_envs=1")
    refusal = getattr(spec.cls, "vector_refusal", None)  # a config with per-episode state
    reason = refusal(config) if refusal is not None else None
    if reason:
        raise ValueError(f"{spec.name} cannot train on num_envs > 1: {reason}; use num_envs=1")
    if intervene is not None or config.get("operator") == "simulated":
        raise ValueError(f"{spec.name} cannot train on num_envs > 1 with an intervention hook or "
                         "simulated operator (one operator follows one episode); use num_envs=1")
    if dict(env_kwargs or {}).get("reward") == "vice":  # a matrix cell failed at run time
        raise ValueError("reward='vice' trains with one env (num_envs=1): the agent's "
                         "classifier is bound into that env")


def make_worlds(make_one: Callable[[], gym.Env], num_envs: int) -> ThreadedVectorEnv:
    """``num_envs`` worlds, each built (and later stepped) on its own thread."""
    return ThreadedVectorEnv([make_one] * num_envs, autoreset_mode=AutoresetMode.DISABLED)


@dataclass
class WorldEpisode:
    """The episode in progress in one world (``obs`` is None between episodes)."""

    seed: int | None = None
    actions: list[list[float]] = field(default_factory=list)  # executed, for replay
    episode_return: float = 0.0
    obs: dict[str, np.ndarray] | None = None


class VectorRun(_Run):
    """``_Run`` with one episode in progress per world; evaluation on its own single env."""

    def __init__(self, out_dir: Path, description: dict[str, Any], eval_env: gym.Env,
                 worlds: ThreadedVectorEnv, agent: Agent):
        super().__init__(out_dir, description, eval_env, agent)
        self.worlds = worlds
        self.episodes = [WorldEpisode() for _ in range(worlds.num_envs)]

    def episode_state(self) -> dict[str, Any]:
        return {"worlds": [{"episode_seed": e.seed, "episode_actions": e.actions,
                            "episode_return": e.episode_return, "in_episode": e.obs is not None}
                           for e in self.episodes]}

    def current_obs(self) -> dict[str, np.ndarray]:
        return {f"world{i}.{key}": value for i, e in enumerate(self.episodes)
                if e.obs is not None for key, value in e.obs.items()}

    def restore_episodes(self, state: dict[str, Any], ckpt: Path) -> None:
        """Replay every world's episode in progress on its thread; check the saved obs."""
        saved_worlds = state["worlds"]
        if len(saved_worlds) != len(self.episodes):
            raise RuntimeError(f"the checkpoint has {len(saved_worlds)} worlds, the run "
                               f"{len(self.episodes)}")
        replays: dict[int, Callable[[gym.Env], Any]] = {}
        for i, saved in enumerate(saved_worlds):
            self.episodes[i] = WorldEpisode(saved["episode_seed"], saved["episode_actions"],
                                            saved["episode_return"])
            if saved["in_episode"]:
                self.agent.reset(seed=saved["episode_seed"])
                replays[i] = _replay(saved["episode_seed"], saved["episode_actions"])
        if not replays:
            return
        reached = self.worlds.on_worlds(replays)
        saved_obs = read_saved_observations(
            ckpt / "current_obs.npz",
            {f"world{i}.{k}": v for i, obs in reached.items() for k, v in obs.items()})
        for i, obs in reached.items():
            if not all(np.array_equal(saved_obs[f"world{i}.{k}"], obs[k]) for k in obs):
                raise RuntimeError(
                    f"replaying world {i}'s interrupted episode did not reproduce the saved "
                    "observation: the env is not deterministic under a fixed seed, so this "
                    "run cannot resume exactly; start a new out_dir"
                )
            self.episodes[i].obs = obs


def _replay(seed: int, actions: list[list[float]]) -> Callable[[gym.Env], Any]:
    def replay(env: gym.Env):
        obs, _ = env.reset(seed=seed)
        for action in actions:
            obs, *_ = env.step(np.asarray(action, dtype=env.action_space.dtype))
        return obs

    return replay


def _reset(seed: int) -> Callable[[gym.Env], Any]:
    return lambda env: env.reset(seed=seed)[0]


def _step(action: np.ndarray) -> Callable[[gym.Env], Any]:
    return lambda env: env.step(action)


def run_loop(run: VectorRun, *, seed: int, steps: int, eval_every: int, eval_episodes: int,
             ckpt_period: int | None, log_every: int, writer: Any, bar: Any,
             stop_when: Callable[[list[dict[str, Any]]], bool] | None = None) -> bool:
    """Step all worlds until ``run.step >= steps`` (the final evaluation is the caller's) or
    ``stop_when`` (``train``'s early stop) says so after an evaluation; returns whether it did."""
    agent, worlds = run.agent, run.worlds
    dtype = worlds.single_action_space.dtype
    while run.step < steps:
        started = time.perf_counter()
        starting = [i for i, e in enumerate(run.episodes) if e.obs is None]
        for i in starting:  # number and seed the new episodes in world order
            episode = run.episodes[i]
            episode.seed = train_episode_seed(seed, run.episode)
            episode.actions, episode.episode_return = [], 0.0
            run.episode += 1
            agent.reset(seed=episode.seed)
        first_obs = worlds.on_worlds({i: _reset(run.episodes[i].seed) for i in starting})
        for i, obs in first_obs.items():
            run.episodes[i].obs = obs
        actions = [np.asarray(agent.act(e.obs, deterministic=False), dtype=dtype)
                   for e in run.episodes]
        results = worlds.on_worlds({i: _step(a) for i, a in enumerate(actions)})
        for i, episode in enumerate(run.episodes):
            next_obs, reward, terminated, truncated, info = results[i]
            action, intervened = actions[i], bool(info.get("intervened", False))
            if intervened and "action" in info:  # an env wrapper executed a human's action
                action = np.asarray(info["action"], dtype=dtype)
            run.intervention_steps += int(intervened)
            run.count_reward(info)
            agent.observe(Transition(episode.obs, action, float(reward), next_obs, terminated,
                                     truncated, info, intervened=intervened))
            metrics = agent.update()
            run.step += 1
            episode.actions.append(np.asarray(action, dtype=np.float64).tolist())
            episode.episode_return += float(reward)
            run.log_update_metrics(metrics, writer, log_every)
            if terminated or truncated:
                run.log_episode_end(writer, episode.episode_return, info, len(episode.actions))
                episode.obs = None
            else:
                episode.obs = next_obs
        run.train_wall_s += time.perf_counter() - started
        bar.update(len(run.episodes))
        if (eval_every > 0 and eval_episodes > 0 and run.step >= run.next_eval
                and run.step < steps):
            summary = run.run_evaluation(writer)
            bar.set_postfix(success=f"{summary['success_rate']:.2f}")
            run.next_eval += eval_every * (1 + (run.step - run.next_eval) // eval_every)
            if stop_when is not None and stop_when([e["summary"] for e in run.evaluations]):
                return True
        if ckpt_period and ckpt_period > 0 and run.step >= run.next_checkpoint:
            run.next_checkpoint += ckpt_period * (1 + (run.step - run.next_checkpoint)
                                                  // ckpt_period)
            run.save_checkpoint()
    return False
