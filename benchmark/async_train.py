"""Actor/learner split (SERL, paper 002, section IV-D): the learner trains while actors keep acting.

On a real robot the control loop must keep its rate while the learner runs many gradient steps
per env step. ``train_async`` runs:

- the **learner** in the calling process: it drains transitions from a queue into the agent
  (``agent.observe``), runs ``agent.update()`` as fast as it can, and publishes the agent's
  weights to every actor every ``publish_every`` updates;
- one or more **actors**, each in its own process (``multiprocessing`` spawn context): each builds
  the env (simulation, or the ``real/`` digital twin with ``backend="twin"``) and a copy of the
  agent, acts with the latest weights it received, lets the agent's simulated operator
  intervene if it has one, and sends every executed transition to the learner.

The update-to-data ratio is therefore not a config value but an outcome: the learner logs the
achieved UTD (critic gradient steps per env step) with the actors' env-step rate, every
``log_every_s`` seconds while it trains (``utd_log`` in ``async.json``) and for the whole run.
Actors die with the learner: they are daemons, ask the kernel for SIGKILL when their parent dies
(``PR_SET_PDEATHSIG``, Linux, set by ``benchmark.actor_boot`` before the agent's and env's
imports) and also exit when their parent's pid changes, so ``kill -9`` of the learner leaves
nothing behind. (A spawned process first re-imports the parent's ``__main__`` module and the
``benchmark`` package, which imports ``envs``; a learner killed in that window, ~0.4 s, leaves the
actor to exit when it reaches ``actor_boot``.)

No checkpoints: the learner saves the agent once, at the end (without its replay buffers), so an
interrupted run is lost, and running again into the same ``out_dir`` replaces it; ``train``
(``benchmark.train``) resumes, train-async does not.

Training episodes of actor i use the runner's seeds ``train_episode_seed(seed, k * actors + i)``;
results are not bit-reproducible (the interleaving of acting and learning depends on timing).
The learner evaluates the final agent on the fixed evaluation seeds and saves it (no pickle) in
``out_dir/agent``; ``out_dir/async.json`` holds the figures.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from agents import Transition, agent_spec, make_agent
from agents.config import config_to_dict
from agents.residual import ResidualMixin
from benchmark.actor_boot import run_actor
from benchmark.cells import MAX_EVAL_EPISODES, SEED_LIMIT, check_run_seed, standard_json
from benchmark.cli_options import file_in_the_way
from benchmark.evaluate import eval_seeds, evaluate
from benchmark.train import (
    DEFAULT_DEMO_EPISODES,
    act_and_step,
    collect_demos,
    make_base_policy,
    make_env,
    train_episode_seed,
)
from envs.episode import summarize
from envs.tether import available_cores

Backend = Literal["sim", "twin"]
INFO_KEYS = ("is_success", "intervened")  # the info entries actors forward
#: Actor processes allowed per CPU core this process may run on (each acts on one core at most).
MAX_ACTORS_PER_CORE = 4


def build_env(task_id: str, env_kwargs: Mapping[str, Any], backend: Backend, seed: int = 0):
    """The simulated task, or the task on the cell's digital twin (``real.make_twin``).

    On the twin the env kwargs are the robot env's (``real.env.RealInsertionEnv``: observation
    frame, goal noise, start offsets, reward, cameras), as ``insertbench real validate --twin``
    passes them; the twin's own simulation keeps the task's defaults.
    """
    if backend == "twin":
        from real.factory import make_twin

        pixels = "pixels" in str(env_kwargs.get("obs_mode", "state"))
        try:
            return make_twin(task_id, seed=seed, cameras=("wrist", "side") if pixels else (),
                             **dict(env_kwargs))
        except TypeError as err:  # a simulator-only kwarg the robot env does not take
            raise ValueError(f"the twin backend cannot apply these env kwargs: {err}") from None
    return make_env(task_id, env_kwargs)


def hand_controller(env: Any, backend: Backend) -> Any:
    """The task's hand controller (demonstrations, simulated operator): on the twin the robot
    env's (``real.p_controller``, steering to the calibrated socket), else the simulation's."""
    if backend == "twin":
        from real.env import p_controller

        return p_controller(env)
    return make_base_policy(env)


def _weights(agent: Any) -> dict[str, Any]:
    """Everything an actor needs to act like the learner: module tensors (numpy) + counters."""
    modules = {name: {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}
               for name, m in agent._checkpoint_modules().items()}
    return {"modules": modules, "env_steps": agent.env_steps}


def _load_weights(agent: Any, weights: Mapping[str, Any]) -> None:
    for name, module in agent._checkpoint_modules().items():
        module.load_state_dict({k: torch.as_tensor(v)
                                for k, v in weights["modules"][name].items()})
    agent.env_steps = int(weights["env_steps"])


def actor_loop(parent_pid: int, index: int, actors: int, task_id: str,
               env_kwargs: dict[str, Any], backend: Backend, agent_name: str,
               config: dict[str, Any], seed: int, transitions: Any, weights_queue: Any,
               stop: Any) -> None:
    """One actor process (started through ``benchmark.actor_boot.run_actor``): act with the
    latest weights, send every executed transition, until ``stop`` or the parent is gone."""
    torch.set_num_threads(1)
    actor_seed = (seed * 1000 + index + 1) % SEED_LIMIT  # torch's seeds stop at 2**64
    torch.manual_seed(actor_seed)
    env = build_env(task_id, env_kwargs, backend, seed)
    kwargs = ({"base_policy": hand_controller(env, backend)}
              if agent_spec(agent_name).needs_base_policy else {})
    agent = make_agent(agent_name, env.observation_space, env.action_space, config,
                       seed=actor_seed, **kwargs)
    residual = isinstance(agent, ResidualMixin)
    operator = getattr(agent, "operator", None)
    _load_weights(agent, weights_queue.get())
    episode = 0
    while not stop.is_set():
        episode_seed = train_episode_seed(seed, episode * actors + index)
        episode += 1
        agent.reset(seed=episode_seed)
        if operator is not None:
            operator.reset(episode_seed, agent.env_steps)
        obs, _ = env.reset(seed=episode_seed)
        done = False
        while not done and not stop.is_set():
            if os.getppid() != parent_pid:  # belt and braces next to PR_SET_PDEATHSIG
                os._exit(1)
            try:
                _load_weights(agent, weights_queue.get_nowait())
            except queue.Empty:
                pass
            # pi_H reads this actor's env (its start frame and believed goal): the learner's
            # own env cannot recompute it, so a residual agent's transition carries it.
            base_action = agent.base_action(obs) if residual else None
            action, next_obs, reward, terminated, truncated, info, intervened = act_and_step(
                env, agent, obs, operator
            )
            transition = Transition(obs, action, float(reward), next_obs, terminated, truncated,
                                    {k: info[k] for k in INFO_KEYS if k in info},
                                    intervened=intervened, base_action=base_action)
            while not stop.is_set():  # a full queue must not outlast the learner's stop
                try:
                    transitions.put(transition, timeout=0.1)
                    break
                except queue.Full:
                    pass
            agent.env_steps += 1  # keeps warm-up schedules moving between weight updates
            obs, done = next_obs, terminated or truncated
    env.close()
    # Exit without flushing what the learner will not read: the queue's feeder thread blocked
    # the exit on the pipe, and the learner waited 10 s per actor before killing it.
    transitions.cancel_join_thread()


def _stop_actors(processes: list, transitions: Any, grace_s: float = 10.0) -> None:
    """Join the actors (``stop`` is set), draining the queue meanwhile so that none waits on a
    full pipe; SIGKILL any still alive after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        try:
            while True:
                transitions.get_nowait()
        except (queue.Empty, OSError, EOFError):
            pass
        for p in processes:
            p.join(timeout=0.05)
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(timeout=1)


def train_async(
    task_id: str,
    agent_name: str,
    *,
    steps: int,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    actors: int = 1,
    backend: Backend = "sim",
    publish_every: int = 50,
    demo_episodes: int | None = None,
    eval_episodes: int = 10,
    out_dir: str | Path = "runs/async",
    timeout_s: float = 3_600.0,
    log_every_s: float = 10.0,
) -> dict[str, Any]:
    """Train with ``actors`` actor processes until the learner has ``steps`` transitions.

    Returns (and writes to ``out_dir/async.json``) env steps, gradient steps, the achieved UTD,
    env steps per second, wall-clock, the final evaluation summary (None with
    ``eval_episodes=0``) and ``utd_log``: the
    achieved UTD so far every ``log_every_s`` seconds of training and at the end. ``demo_episodes``
    defaults to ``DEFAULT_DEMO_EPISODES`` for agents that need demos (collected by the learner
    on its own env with the hand controller).
    """
    if actors < 1 or steps < 1 or publish_every < 1:
        raise ValueError(f"actors, steps and publish_every must be >= 1, got {actors}, {steps}, "
                         f"{publish_every}")
    cores = available_cores()
    if actors > MAX_ACTORS_PER_CORE * cores:
        # Each actor is a process with its own torch and env: --actors 100000 used to start
        # processes until the machine ran out of memory.
        raise ValueError(f"actors must be at most {MAX_ACTORS_PER_CORE} per core "
                         f"({MAX_ACTORS_PER_CORE * cores} on this machine's {cores}), "
                         f"got {actors}")
    if not log_every_s > 0:
        raise ValueError(f"log_every_s must be > 0, got {log_every_s}")
    if not timeout_s > 0:  # NaN included; inf: no limit
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if backend not in ("sim", "twin"):
        raise ValueError(f"backend must be 'sim' or 'twin', got {backend!r}")
    # Checked now, not after the training they would otherwise throw away.
    if (isinstance(eval_episodes, bool) or not isinstance(eval_episodes, int)
            or not 0 <= eval_episodes <= MAX_EVAL_EPISODES):
        raise ValueError(f"eval_episodes must be an integer in [0, {MAX_EVAL_EPISODES:,}] (0: no "
                         f"final evaluation), got {eval_episodes!r}")
    seed = check_run_seed(seed)  # torch.manual_seed overflowed in the actors
    spec = agent_spec(agent_name)
    env_kwargs, out_dir = dict(env_kwargs or {}), Path(out_dir)
    file = file_in_the_way(out_dir)
    if file is not None:  # under a file: the save after training failed, the run lost
        raise ValueError(f"out_dir {out_dir} is a file, not a directory" if file == out_dir else
                         f"out_dir {out_dir} lies under {file}, a file")
    if env_kwargs.get("reward") == "vice" or agent_name == "vice":
        raise ValueError("VICE (reward='vice') trains with `insertbench train` only: here the "
                         "actors' envs would need the learner's classifier at every step")
    torch.manual_seed(seed)
    env = build_env(task_id, env_kwargs, backend, seed)
    kwargs = {"base_policy": hand_controller(env, backend)} if spec.needs_base_policy else {}
    agent = make_agent(agent_name, env.observation_space, env.action_space, dict(config or {}),
                       seed=seed, **kwargs)
    if not hasattr(agent, "env_steps"):  # was "AttributeError: ... no attribute 'env_steps'"
        env.close()
        raise ValueError(f"{agent_name} does not learn from the actors' transitions: train-async "
                         "trains online learners (sac, rlpd, ...); evaluate it with "
                         "`insertbench train --steps 0`")
    full_config = dict(config or {})
    if demo_episodes is None:
        demo_episodes = DEFAULT_DEMO_EPISODES if spec.needs_demos else 0
    if demo_episodes > 0:
        expert = kwargs.get("base_policy") or hand_controller(env, backend)
        agent.pretrain(collect_demos(env, expert, demo_episodes, kwargs.get("base_policy")))
    ctx = mp.get_context("spawn")
    transitions = ctx.Queue(maxsize=10_000)
    weight_queues = [ctx.Queue(maxsize=1) for _ in range(actors)]
    stop = ctx.Event()
    processes = [
        ctx.Process(target=run_actor, daemon=True, name=f"insertbench-actor-{i}",
                    args=(os.getpid(), i, actors, task_id, env_kwargs, backend, agent_name,
                          full_config, seed, transitions, weight_queues[i], stop))
        for i in range(actors)
    ]
    for q in weight_queues:
        q.put(_weights(agent))
    # Started with SIGINT ignored, which a new Python keeps: a Ctrl-C while an actor imported
    # the package (`benchmark/__init__` imports envs: numpy, MuJoCo, ~0.4 s) printed its own
    # KeyboardInterrupt traceback. The learner's own handler is back at once.
    main = threading.current_thread() is threading.main_thread()  # signal() works there only
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        for p in processes:
            p.start()
    finally:
        if main:
            signal.signal(signal.SIGINT, handler)
    started = time.perf_counter()
    first_step_s = None
    steps_before, updates, successes, episodes = agent.env_steps, 0, 0, 0
    intervention_steps = 0  # executed by a human or the simulated operator
    gradient_steps_before = int(getattr(agent, "gradient_steps", 0))
    utd_log: list[dict[str, float]] = []

    def log_utd() -> None:
        env_steps = agent.env_steps - steps_before
        gradient_steps = int(getattr(agent, "gradient_steps", 0)) - gradient_steps_before
        utd_log.append({"wall_s": round(time.perf_counter() - started, 3),
                        "env_steps": env_steps, "gradient_steps": gradient_steps,
                        "achieved_utd": gradient_steps / max(env_steps, 1)})

    try:
        while agent.env_steps - steps_before < steps:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"async training did not reach {steps} env steps in "
                                   f"{timeout_s:g} s (timeout_s, `--timeout-s` on the command "
                                   "line)")
            dead = [p.name for p in processes if not p.is_alive()]
            if dead:
                raise RuntimeError(f"actor process(es) {dead} died; see their stderr")
            try:  # block briefly only when there is nothing to learn from yet
                batch = [transitions.get(timeout=0.0 if updates else 1.0)]
            except queue.Empty:
                batch = []
            while True:
                try:
                    batch.append(transitions.get_nowait())
                except queue.Empty:
                    break
            for t in batch[: steps - (agent.env_steps - steps_before)]:
                agent.observe(t)
                intervention_steps += int(bool(t.intervened))
                if t.terminated or t.truncated:
                    episodes += 1
                    successes += int(bool(t.info.get("is_success", False)))
            if batch and first_step_s is None:
                first_step_s = time.perf_counter() - started
            if time.perf_counter() - started >= log_every_s * (len(utd_log) + 1):
                log_utd()
            if agent.update():
                updates += 1
                if updates % publish_every == 0:
                    for q in weight_queues:
                        try:
                            q.get_nowait()  # drop weights the actor has not picked up yet
                        except queue.Empty:
                            pass
                        q.put(_weights(agent))
        wall_s = time.perf_counter() - started  # training only, not the actors' shutdown
        log_utd()  # the whole run's counts
    finally:
        stop.set()
        _stop_actors(processes, transitions)
    env_steps, gradient_steps = utd_log[-1]["env_steps"], utd_log[-1]["gradient_steps"]
    identity = {}
    if backend == "twin":  # the robot env has no gym spec: the simulated task's identity
        from envs.version_key import task_version_key

        identity = {"task_id": task_id,
                    "task_version_key": task_version_key(task_id, env_kwargs)}
    records = (evaluate(env, agent, eval_episodes, eval_seeds(eval_episodes), **identity)
               if eval_episodes else [])
    env.close()
    agent.save(out_dir / "agent")
    result = {
        "task_id": task_id, "agent": agent_name, "backend": backend, "actors": actors,
        "env_steps": env_steps, "gradient_steps": gradient_steps,
        "achieved_utd": utd_log[-1]["achieved_utd"],
        "env_steps_per_s": env_steps / max(wall_s - (first_step_s or 0.0), 1e-9),
        "wall_clock_s": wall_s, "training_episodes": episodes,
        "training_successes": successes,
        # As `train` logs them (its per-episode segments need one actor's episodes in order).
        "intervention_steps": intervention_steps,
        "intervention_rate": intervention_steps / max(env_steps, 1),
        "evaluation": summarize(records) if records else None,  # None: eval_episodes=0
        "utd_log": utd_log,
        # What `insertbench eval` reads to check the task and rebuild the env (as run.json).
        "seed": seed, "env_kwargs": env_kwargs, "config": config_to_dict(agent.config),
    }
    (out_dir / "async.json").write_text(standard_json(result, indent=1))  # NaN means: null
    return result
