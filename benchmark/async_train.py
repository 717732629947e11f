"""Actor/learner split (SERL, paper 002, section IV-D): the learner trains while actors keep acting.

On a real robot the control loop must keep its rate while the learner runs many gradient steps
per env step. ``train_async`` runs:

- the **learner** in the calling process: it drains transitions from the actors' pipes into the
  agent
  (``agent.observe``), runs ``agent.update()`` as fast as it can, and publishes the agent's
  weights to every actor every ``publish_every`` updates;
- one or more **actors**, each in its own process (``multiprocessing`` spawn context): each builds
  the env (simulation, or the ``real/`` digital twin with ``backend="twin"``) and a copy of the
  agent, acts with the latest weights it received, lets the agent's simulated operator
  intervene if it has one, and sends every executed transition to the learner, from a thread of
  its own (acting never waits on the learner), over a pipe only it writes: an actor that dies,
  mid-message too, reads as end of file there and stops the run with a checkpoint (on one
  shared queue a message cut off by a ``kill -9`` blocked the learner for good).

The update-to-data ratio is therefore not a config value but an outcome: the learner logs the
achieved UTD (critic gradient steps per env step) with the actors' env-step rate, every
``log_every_s`` seconds while it trains (``utd_log`` in ``async.json``) and for the whole run.
Actors die with the learner: they are daemons, ask the kernel for SIGKILL when their parent dies
(``PR_SET_PDEATHSIG``, Linux, set by ``benchmark.actor_boot`` before the agent's and env's
imports) and also exit when their parent's pid changes, so ``kill -9`` of the learner leaves
nothing behind. (A spawned process first re-imports the parent's ``__main__`` module and the
``benchmark`` package, which imports ``envs``; a learner killed in that window, ~0.4 s, leaves the
actor to exit when it reaches ``actor_boot``.)

Checkpoints: every ``checkpoint_every`` env steps and at the end the learner writes
``out_dir/checkpoint`` (the agent with its replay buffers, demonstrations included, and
``learner.json``: the run's settings and counters), built aside and swapped in whole. Running
again into the same ``out_dir`` with the same settings resumes from it, up to ``steps`` in all
(also a larger ``steps`` than before); other settings are refused. What a resume cannot bring
back: the episodes the actors were in (their transitions so far are in the buffer; the actors
start new episodes) and the transitions still in the pipes, up to ``checkpoint_every`` env
steps of learning since the checkpoint, and the timing, which no async run reproduces anyway.

Training episodes use the runner's seeds ``train_episode_seed(seed, n)``: actor i's k-th
episode has ``n = first + k * actors + i``, where ``first`` is 0 and, on a resume, one past the
highest ``n`` the learner has seen, so no start repeats. Results are not bit-reproducible (the
interleaving of acting and learning depends on timing). The learner evaluates the final agent
on the fixed evaluation seeds and saves it (no pickle, no replay) in ``out_dir/agent``;
``out_dir/async.json`` holds the figures.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from agents import Transition, agent_spec, load_agent, make_agent
from agents.checkpoint import read_json
from agents.config import build_config, config_to_dict
from agents.registry import SEED_LIMIT, check_seed
from agents.residual import ResidualMixin
from benchmark.actor_boot import run_actor
from benchmark.cells import MAX_EVAL_EPISODES, MAX_TRAIN_STEPS
from benchmark.cli_options import file_in_the_way
from benchmark.evaluate import eval_seeds, evaluate
from benchmark.folder_lock import LOCK_FILE, run_lock
from benchmark.learned_reward import (
    check_same_classifier,
    classifier_sha256,
    same_but_classifier_path,
)
from benchmark.train import (
    DEFAULT_DEMO_EPISODES,
    TRAIN_SEEDS_PER_RUN,
    act_and_step,
    check_checkpoint_numbers,
    check_demo_episodes,
    check_intervention_source,
    collect_demos,
    confusion_rates,
    count_reward_decision,
    make_base_policy,
    make_env,
    swap_in_checkpoint,
    train_episode_seed,
)
from envs.episode import summarize
from envs.json_files import standard_json, write_json
from envs.tether import available_cores, children_ignore_sigint
from envs.version_key import task_version_key, task_version_key_if_any

Backend = Literal["sim", "twin"]
# What actors forward (a physics error: the replay buffer stores no such step)
INFO_KEYS = ("is_success", "intervened", "classifier_success", "physics_error")
#: Actor processes allowed per CPU core this process may run on (each acts on one core at most).
MAX_ACTORS_PER_CORE = 4
#: The checkpoint's own file, beside its agent/ (a ``train`` checkpoint has runner.json instead).
LEARNER_JSON = "learner.json"
#: The file a run holds locked in its folder while it runs.
#: What a resume must share with the run it continues.
SETTINGS = ("task_id", "agent", "config", "env_kwargs", "seed", "backend")


def build_env(task_id: str, env_kwargs: Mapping[str, Any], backend: Backend, seed: int = 0):
    """The simulated task, or the task on the cell's digital twin (``real.make_twin``).

    On the twin the env kwargs are the robot env's (``real.env.RealInsertionEnv``: observation
    frame, goal noise, start offsets, reward, cameras), as ``insertbench real validate --twin``
    passes them; the twin's own simulation keeps the task's defaults.
    """
    if backend == "twin":
        from envs.task_options import CAMERAS, check_cameras
        from real.factory import make_twin

        env_kwargs = dict(env_kwargs)
        pixels = "pixels" in str(env_kwargs.get("obs_mode", "state"))
        # The simulation's cameras kwarg names the twin's cameras: with both always, a policy
        # on the wrist camera alone met another observation space.
        cameras = check_cameras(env_kwargs.pop("cameras", CAMERAS))
        # The robot's URConfig settings, checked as a robot's are (as `real validate --twin`
        # does): rtde_watchdog_hz=None trained on a twin with its watchdog off (diff29)
        from real.config import URConfig

        URConfig(host="127.0.0.1", frequency_hz=env_kwargs.get("servo_hz", 500.0),
                 **{k: env_kwargs[k] for k in ("servo_lookahead_s", "servo_gain",
                                               "rtde_watchdog_hz") if k in env_kwargs})
        try:
            return make_twin(task_id, seed=seed, cameras=cameras if pixels else (), **env_kwargs)
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
    """Everything an actor needs to act like the learner: the acting modules' tensors (numpy)
    + counters. Every module, critics and targets included, was pickled to each actor at each
    publish (RLPD: 6.1 MB for 0.29 MB, loaded inside the actor's control loop; serl21)."""
    modules = {name: {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}
               for name, m in agent._acting_modules().items()}
    return {"modules": modules, "env_steps": agent.env_steps}


def _load_weights(agent: Any, weights: Mapping[str, Any]) -> None:
    for name, module in agent._acting_modules().items():
        module.load_state_dict({k: torch.as_tensor(v)
                                for k, v in weights["modules"][name].items()})
    agent.env_steps = int(weights["env_steps"])


def actor_seed_of(seed: int, index: int, first_episode: int) -> int:
    """The torch and numpy seed of actor ``index`` in the part of run ``seed`` that starts at
    episode ``first_episode``: per part, since a resumed actor seeded as the first part was
    replayed its exploration action for action (the buffer got copies)."""
    state = np.random.SeedSequence([seed, index, first_episode]).generate_state(1, np.uint64)
    return int(state[0]) % SEED_LIMIT  # torch's seeds stop at 2**64


#: Transitions waiting to be sent, of all actors together (as many as the one queue held): past
#: it an actor waits for the learner.
OUTBOX_TRANSITIONS = 10_000
#: How long the learner waits to hand an actor its new weights [s] before going on without.
PUBLISH_TIMEOUT_S = 1.0


def _send_all(outbox: queue.Queue, connection: Any) -> None:
    """An actor's sender thread: every transition of ``outbox`` to the learner, in order, until
    the learner closes its end (it has stopped)."""
    while True:
        item = outbox.get()
        try:
            connection.send(item)
        except OSError:  # BrokenPipeError: the learner stopped reading
            return


def actor_loop(parent_pid: int, index: int, actors: int, task_id: str,
               env_kwargs: dict[str, Any], backend: Backend, agent_name: str,
               config: dict[str, Any], seed: int, first_episode: int, connection: Any,
               weights_queue: Any, stop: Any) -> None:
    """One actor process (started through ``benchmark.actor_boot.run_actor``): act with the
    latest weights, send every executed transition with its episode's number over
    ``connection`` (the write end of its own pipe), until ``stop`` or the parent is gone."""
    torch.set_num_threads(1)
    actor_seed = actor_seed_of(seed, index, first_episode)
    torch.manual_seed(actor_seed)
    env = build_env(task_id, env_kwargs, backend, seed)
    kwargs = ({"base_policy": hand_controller(env, backend)}
              if agent_spec(agent_name).needs_base_policy else {})
    agent = make_agent(agent_name, env.observation_space, env.action_space, config,
                       seed=actor_seed, **kwargs)
    residual = isinstance(agent, ResidualMixin)
    operator = getattr(agent, "operator", None)
    _load_weights(agent, weights_queue.get())
    outbox: queue.Queue = queue.Queue(maxsize=max(1, OUTBOX_TRANSITIONS // actors))
    threading.Thread(target=_send_all, args=(outbox, connection), daemon=True).start()
    episode = 0
    while not stop.is_set():
        episode_number = first_episode + episode * actors + index
        episode_seed = train_episode_seed(seed, episode_number)
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
            while not stop.is_set():  # a full outbox must not outlast the learner's stop
                try:
                    outbox.put((episode_number, transition), timeout=0.1)
                    break
                except queue.Full:
                    pass
            # Keeps warm-up schedules moving between weight updates, at all actors' pace (the
            # learner's count, which comes with the weights, is theirs together): counted by
            # one, N actors each acted at random for the whole random_steps, and the operator's
            # budget shrank N times slower (serl20).
            agent.env_steps += actors
            obs, done = next_obs, terminated or truncated
    env.close()
    # Exit without flushing what the learner will not read: the sender is a daemon thread,
    # which the exit does not wait for (a queue's feeder thread blocked it on the pipe, and the
    # learner waited 10 s per actor before killing it).


class ActorsDied(RuntimeError):
    """An actor process died mid-run: the learner checkpointed and stopped (a controlled stop,
    as its time limit's TimeoutError; the command says so in one line)."""


def _actors_died(names: list[str], trained: int) -> ActorsDied:
    return ActorsDied(f"actor process(es) {names} died (see their stderr); {trained} env "
                      "steps are checkpointed: the same command resumes")


class ActorGone(Exception):
    """An actor's pipe reached its end: the actor died (or closed it) while the run went on."""


def _receive(readers: list, timeout_s: float, limit: int) -> list:
    """Up to ``limit`` messages from the actors' pipes ``readers``, waiting up to ``timeout_s``
    for the first; `ActorGone` (with the pipe's index) at the end of one, mid-message too."""
    batch: list = []
    ready = mp_connection.wait(readers, timeout_s)
    while ready and len(batch) < limit:
        for reader in ready:
            try:
                batch.append(reader.recv())
            except (EOFError, OSError):
                raise ActorGone(readers.index(reader)) from None
        ready = mp_connection.wait(readers, 0)
    return batch


def _stop_actors(processes: list, readers: list, grace_s: float = 10.0) -> None:
    """Join the actors (``stop`` is set), draining their pipes meanwhile so that none waits on
    a full one; SIGKILL any still alive after ``grace_s``; close the pipes."""
    deadline = time.monotonic() + grace_s
    open_readers = list(readers)
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        for reader in list(open_readers):
            try:
                while reader.poll(0):
                    reader.recv()
            except (EOFError, OSError):
                open_readers.remove(reader)  # its actor is gone
        for p in processes:
            p.join(timeout=0.05)
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join(timeout=1)
    for reader in readers:
        reader.close()


def find_checkpoint(out_dir: Path) -> Path | None:
    """The train-async checkpoint a run in ``out_dir`` resumes from: ``checkpoint``, or
    ``checkpoint.old`` (a crash between the swap's renames leaves it), the first with its
    learner.json; None if there is none. A ``train`` checkpoint there is refused."""
    for name in ("checkpoint", "checkpoint.old"):
        ckpt = out_dir / name
        if (ckpt / LEARNER_JSON).is_file():
            return ckpt
        if (ckpt / "runner.json").is_file():
            raise ValueError(f"{out_dir} holds a checkpoint of `insertbench train`, not of "
                             "train-async: use another --out")
        if ckpt.is_dir():  # was taken for no checkpoint, and a fresh run replaced it
            raise ValueError(f"{ckpt} has no {LEARNER_JSON} (a damaged checkpoint?): resuming "
                             "cannot know where the run stood; use another --out")
    return None


def run_folder_entries(out_dir: Path) -> tuple[str, ...]:
    """What a train-async run's folder holds besides async.json: its checkpoints and lock, and
    once a checkpoint is there, agent/ (a kill during the final save leaves it without
    async.json)."""
    names = ("checkpoint", "checkpoint.old", "checkpoint.tmp", LOCK_FILE)
    if any((out_dir / name / LEARNER_JSON).is_file() for name in ("checkpoint", "checkpoint.old")):
        names += ("agent",)
    return names


def save_checkpoint(out_dir: Path, agent: Any, learner: Mapping[str, Any]) -> None:
    """Write ``out_dir/checkpoint`` (agent with replay buffers + learner.json) whole, as
    `train` writes its own (`benchmark.train.swap_in_checkpoint`)."""
    def fill(tmp: Path) -> None:
        agent.save(tmp / "agent", include_replay=True)
        write_json(tmp / LEARNER_JSON, dict(learner), non_finite="null")

    swap_in_checkpoint(out_dir, fill)


#: learner.json's counters: integers with their least value (last_episode: -1, none yet).
_COUNTERS = {"env_steps": 0, "training_episodes": 0, "training_successes": 0,
             "intervention_steps": 0, "gradient_steps_start": 0, "last_episode": -1,
             "resumes": 0}


def _check_learner(learner: Any, ckpt: Path) -> dict[str, Any]:
    """learner.json's fields, checked: an edited or damaged one resumed with wrong counters
    (env_steps -500 trained 500 steps too many) or ended in a TypeError."""
    where = ckpt / LEARNER_JSON
    if not isinstance(learner, dict):
        raise ValueError(f"{where} is not a train-async checkpoint's (not a JSON object)")
    check_checkpoint_numbers(learner, _COUNTERS, ("wall_clock_s", "acting_s"), where)
    if learner["last_episode"] >= TRAIN_SEEDS_PER_RUN:  # the run's seeds end there
        raise ValueError(f"{where}: last_episode {learner['last_episode']} is past the run's "
                         f"{TRAIN_SEEDS_PER_RUN:,} training seeds")
    log = learner.get("utd_log")
    if not isinstance(log, list) or not all(isinstance(e, dict) for e in log):
        raise ValueError(f"{where}: utd_log must be a list of objects")
    if not isinstance(learner.get("settings"), dict):
        raise ValueError(f"{where}: settings must be an object")
    return learner


def _resume(ckpt: Path, settings: Mapping[str, Any], **kwargs: Any) -> tuple[Any, dict]:
    """The agent and learner state of ``ckpt``, checked to be a run of ``settings``."""
    learner = _check_learner(read_json(ckpt / LEARNER_JSON, "train-async checkpoint"), ckpt)
    saved = learner["settings"]
    changed = [k for k in SETTINGS if saved.get(k) != settings[k]
               and not (k == "env_kwargs" and same_but_classifier_path(saved, settings))]
    if changed:
        raise ValueError(f"{ckpt.parent} holds a train-async run of other settings (differs "
                         f"in {changed}): use the same settings to resume it, or another --out")
    check_same_classifier(saved.get("reward_classifier_sha256"),
                          settings.get("reward_classifier_sha256"), settings["task_id"],
                          settings["env_kwargs"], f"the run in {ckpt.parent}")
    recorded, key = saved.get("task_version_key"), settings.get("task_version_key")
    if isinstance(recorded, str) and key is not None and key != recorded:  # as train (diff26)
        warnings.warn(f"{ckpt.parent} was trained on {settings['task_id']} under task version "
                      f"key {recorded[:12]}; this code builds it as {key[:12]} (its dynamics or "
                      "score changed): the resumed run continues on the new one",
                      UserWarning, stacklevel=3)
    agent = load_agent(ckpt / "agent", **kwargs)
    missing = [f"replay_{name}.npz" for name in agent._checkpoint_buffers()
               if not (ckpt / "agent" / f"replay_{name}.npz").is_file()]
    if missing:  # resuming from empty buffers would throw the demonstrations away unsaid
        raise ValueError(f"{ckpt / 'agent'} lacks {', '.join(missing)} (a damaged "
                         "checkpoint?): resuming would start from an empty replay buffer")
    if getattr(agent, "env_steps", learner["env_steps"]) != learner["env_steps"]:
        raise ValueError(f"{ckpt / LEARNER_JSON} says {learner['env_steps']} env steps, its agent "
                         f"learnt from {agent.env_steps}: a damaged checkpoint")
    return agent, learner


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
    checkpoint_every: int = 1_000,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train with ``actors`` actor processes until the learner has ``steps`` transitions in
    all (a run resumed from ``out_dir/checkpoint`` counts those it had).

    Returns (and writes to ``out_dir/async.json``) env steps, gradient steps, the achieved UTD,
    env steps per second, wall-clock (training, summed over resumes), the final evaluation
    summary (None with ``eval_episodes=0``) and ``utd_log``: the achieved UTD so far every
    ``log_every_s`` seconds of training and at the end. ``demo_episodes`` defaults to
    ``DEFAULT_DEMO_EPISODES`` for agents that need demos (collected by the learner on its own
    env with the hand controller; a resume has them in its checkpoint). ``checkpoint_every``
    [env steps]: period of the checkpoints (0: only the one at the end). ``progress``: a bar of
    the learner's env steps with the achieved UTD at each ``log_every_s`` entry (None: where
    stderr is a terminal; the command printed nothing for minutes until the end, newuser25).
    """
    for name, value in (("steps", steps), ("actors", actors), ("publish_every", publish_every)):
        if value < 1:  # one message named all three, publish_every no command-line option
            raise ValueError(f"{name} must be >= 1, got {value}")
    if steps > MAX_TRAIN_STEPS:  # 10^20 ran on until killed, as train refuses it
        raise ValueError(f"steps must be in [1, {MAX_TRAIN_STEPS:,}], got {steps}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or (
            checkpoint_every < 0):
        raise ValueError(f"checkpoint_every must be an integer >= 0 (0: only at the end), got "
                         f"{checkpoint_every!r}")
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
    seed = check_seed(seed)  # torch.manual_seed overflowed in the actors
    spec = agent_spec(agent_name)
    env_kwargs, out_dir = dict(env_kwargs or {}), Path(out_dir)
    file = file_in_the_way(out_dir)
    if file is not None:  # under a file: the save after training failed, the run lost
        raise ValueError(f"out_dir {out_dir} is a file, not a directory" if file == out_dir else
                         f"out_dir {out_dir} lies under {file}, a file")
    check_demo_episodes(demo_episodes, agent_name, spec.needs_demos)  # -3 trained on none
    if env_kwargs.get("reward") == "vice" or agent_name == "vice":
        raise ValueError("VICE (reward='vice') trains with `insertbench train` only: here the "
                         "actors' envs would need the learner's classifier at every step")
    # What `insertbench train` refuses or does first, which train-async cannot (it takes no
    # --demos and never calls adapt): IQL with its reward classifier ran on an untrained one,
    # every transition relabelled a terminal success; ODA failed 18 s in, its actors started.
    if spec.needs_context:
        raise ValueError(f"{agent_name} is given demonstrations of the target task (adapt) "
                         "before online training, as paper 004 does, which train-async does not "
                         "record; train it with `insertbench train`")
    built = build_config(spec.config_cls, dict(config or {}))
    if getattr(built, "needs_task_ids", lambda: False)():
        raise ValueError(f"{agent_name} with these settings trains on a recipe's task_id column "
                         "(each row's connector), which train-async has no --demos for; train "
                         "it with `insertbench train --demos DIR` (`insertbench dataset "
                         "recipe`)")
    with run_lock(out_dir):
        return _train_locked(
            task_id, agent_name, spec, steps=steps, seed=seed, config=config,
            env_kwargs=env_kwargs, actors=actors, backend=backend, publish_every=publish_every,
            demo_episodes=demo_episodes, eval_episodes=eval_episodes, out_dir=out_dir,
            timeout_s=timeout_s, log_every_s=log_every_s, checkpoint_every=checkpoint_every,
            progress=progress)


def _train_locked(task_id: str, agent_name: str, spec: Any, *, steps: int, seed: int,
                  config: Mapping[str, Any] | None, env_kwargs: dict[str, Any], actors: int,
                  backend: Backend, publish_every: int, demo_episodes: int | None,
                  eval_episodes: int, out_dir: Path, timeout_s: float, log_every_s: float,
                  checkpoint_every: int, progress: bool | None) -> dict[str, Any]:
    """``train_async`` after its checks, with ``out_dir`` locked."""
    full_config = dict(config or {})
    # The typed config, so that `-c hidden=16,16` resumes a run given hidden=(16, 16); in JSON
    # types, as learner.json reads back.
    typed = config_to_dict(build_config(spec.config_cls, full_config))
    settings = {"task_id": task_id, "agent": agent_name,
                "config": json.loads(standard_json(typed)),
                "env_kwargs": json.loads(standard_json(env_kwargs)), "seed": seed,
                "backend": backend}
    digest = classifier_sha256(task_id, env_kwargs)  # a relative path is looked up anew
    if digest is not None:
        settings["reward_classifier_sha256"] = digest
    # What the run is trained on; a resume on another is said (not in SETTINGS: a warning).
    if (key := task_version_key_if_any(task_id, env_kwargs)) is not None:
        settings["task_version_key"] = key
    ckpt = find_checkpoint(out_dir)
    torch.manual_seed(seed)
    env = build_env(task_id, env_kwargs, backend, seed)
    kwargs = {"base_policy": hand_controller(env, backend)} if spec.needs_base_policy else {}
    try:
        if ckpt is not None:
            agent, learner = _resume(ckpt, settings, **kwargs)
        else:
            agent = make_agent(agent_name, env.observation_space, env.action_space, full_config,
                               seed=seed, **kwargs)
            learner = {}
    except ValueError:
        env.close()
        raise
    if not hasattr(agent, "env_steps"):  # was "AttributeError: ... no attribute 'env_steps'"
        env.close()
        raise ValueError(f"{agent_name} does not learn from the actors' transitions: train-async "
                         "trains online learners (sac, rlpd, ...); evaluate it with "
                         "`insertbench train --steps 0`")
    if getattr(agent.config, "online_updates_per_step", None) == 0:  # bc: "UTD 0.00", silent
        env.close()
        raise ValueError(f"{agent_name} with online_updates_per_step=0 makes no update from "
                         "the actors' transitions: train-async would only collect them; give "
                         "-c online_updates_per_step=N, or train it with `insertbench train`")
    try:
        check_intervention_source(agent_name, agent.config, env)  # no device here
    except ValueError:
        env.close()
        raise
    if demo_episodes is None:
        demo_episodes = DEFAULT_DEMO_EPISODES if spec.needs_demos else 0
    if demo_episodes > 0 and ckpt is None:
        expert = kwargs.get("base_policy") or hand_controller(env, backend)
        # train-async takes no --demos: the advice for a learned reward's early ends leaves it out
        agent.pretrain(collect_demos(env, expert, demo_episodes, kwargs.get("base_policy"),
                                     own_demos=None))
    # Counters of the whole run: the checkpoint's, or the fresh run's start.
    trained = int(learner.get("env_steps", 0))  # transitions the agent has learnt from
    episodes = int(learner.get("training_episodes", 0))
    successes = int(learner.get("training_successes", 0))
    intervention_steps = int(learner.get("intervention_steps", 0))  # a human's or the operator's
    reward_confusion = dict(learner.get("reward_confusion", {}))  # a learned reward's decisions
    gradient_steps_start = int(learner.get("gradient_steps_start",
                                           getattr(agent, "gradient_steps", 0)))
    wall_before = float(learner.get("wall_clock_s", 0.0))
    acting_before = float(learner.get("acting_s", 0.0))
    utd_log: list[dict[str, float]] = list(learner.get("utd_log", []))
    first_episode = int(learner.get("last_episode", -1)) + 1
    last_episode = first_episode - 1
    # A part that trains nothing (the checkpoint already at `steps`) is no resume.
    resumes = int(learner.get("resumes", -1)) + (1 if trained < steps else 0)
    resumes = max(resumes, 0)
    if trained >= steps:
        warnings.warn(f"{out_dir} already holds {trained} env steps, not fewer than "
                      f"steps={steps}: nothing to train", UserWarning, stacklevel=2)

    def learner_state() -> dict[str, Any]:
        return {"settings": settings, "env_steps": trained, "training_episodes": episodes,
                "training_successes": successes, "intervention_steps": intervention_steps,
                "gradient_steps_start": gradient_steps_start, "wall_clock_s": wall_s,
                "acting_s": acting_s, "utd_log": utd_log, "last_episode": last_episode,
                "resumes": resumes, "actors": actors, "reward_confusion": reward_confusion}
    ctx = mp.get_context("spawn")
    # None when the checkpoint already holds `steps`: weights put in a queue no actor reads
    # would keep this process from exiting (the queue's feeder flushes them at exit).
    weight_queues = [ctx.Queue(maxsize=1) for _ in range(actors if trained < steps else 0)]
    pipes = [ctx.Pipe(duplex=False) for _ in weight_queues]  # (learner's end, actor's end)
    readers = [reader for reader, _ in pipes]
    stop = ctx.Event()
    processes = [
        ctx.Process(target=run_actor, daemon=True, name=f"insertbench-actor-{i}",
                    args=(os.getpid(), i, actors, task_id, env_kwargs, backend, agent_name,
                          full_config, seed, first_episode, pipes[i][1], weight_queues[i],
                          stop))
        for i in range(len(weight_queues))
    ]
    for q in weight_queues:
        q.put(_weights(agent))
    with children_ignore_sigint():  # a Ctrl-C while an actor imported printed its traceback
        for p in processes:
            p.start()
    for _, writer in pipes:  # the actor's alone now: its death is the pipe's end
        writer.close()
    started = time.perf_counter()
    first_step_s = None
    updates = 0
    utd_log_session: list[dict[str, float]] = []  # this process's periodic entries
    wall_s, acting_s = wall_before, acting_before  # training [s]; since the first transition
    next_checkpoint = (trained // checkpoint_every + 1) * checkpoint_every if (
        checkpoint_every) else None

    def log_utd() -> None:
        gradient_steps = int(getattr(agent, "gradient_steps", 0)) - gradient_steps_start
        utd_log.append({"wall_s": round(wall_before + time.perf_counter() - started, 3),
                        "env_steps": trained, "gradient_steps": gradient_steps,
                        "achieved_utd": gradient_steps / max(trained, 1)})

    def clock() -> None:
        nonlocal wall_s, acting_s
        now = time.perf_counter() - started
        wall_s = wall_before + now
        acting_s = acting_before + (now - first_step_s if first_step_s is not None else 0.0)

    bar = tqdm(total=steps, initial=trained, disable=None if progress is None else not progress,
               desc=f"{agent_name} {task_id.split(':')[-1]} async", unit="step")
    try:
        while trained < steps:
            # A controlled stop keeps what was learnt: the checkpoint first (between two
            # updates, so the agent is whole), then the error; the same command resumes.
            if time.perf_counter() - started > timeout_s:
                stopped = TimeoutError(f"async training did not reach {steps} env steps in "
                                       f"{timeout_s:g} s (timeout_s, `--timeout-s` on the command "
                                       f"line); {trained} are checkpointed: the same command "
                                       "resumes")
            elif dead := [p.name for p in processes if not p.is_alive()]:
                stopped = _actors_died(dead, trained)
            else:
                stopped = None
            if stopped is None:
                try:  # block briefly only when there is nothing to learn from yet
                    batch = _receive(readers, 0.0 if updates else 1.0, limit=steps - trained)
                except ActorGone as gone:
                    stopped, batch = _actors_died([processes[gone.args[0]].name], trained), []
            if stopped is not None:
                clock()
                log_utd()
                save_checkpoint(out_dir, agent, learner_state())
                raise stopped
            for number, t in batch[: steps - trained]:
                agent.observe(t)
                trained += 1
                last_episode = max(last_episode, number)
                intervention_steps += int(bool(t.intervened))
                if "classifier_success" in t.info:
                    count_reward_decision(reward_confusion, t.info)
                if t.terminated or t.truncated:
                    episodes += 1
                    successes += int(bool(t.info.get("is_success", False)))
                if trained == next_checkpoint and trained < steps:  # the last: after the loop
                    clock()
                    save_checkpoint(out_dir, agent, learner_state())
                    next_checkpoint += checkpoint_every
            if batch and first_step_s is None:
                first_step_s = time.perf_counter() - started
            bar.update(trained - bar.n)
            if time.perf_counter() - started >= log_every_s * (len(utd_log_session) + 1):
                log_utd()
                utd_log_session.append(utd_log[-1])
                bar.set_postfix(utd=f"{utd_log[-1]['achieved_utd']:.2f}")
            # No update before this part's first transition: on a resume (or from demos) the
            # learner took ~1,000 steps on the stale buffer while the actors started, which the
            # achieved UTD counted and an uninterrupted run never takes.
            if first_step_s is not None and agent.update():
                updates += 1
                if updates % publish_every == 0:
                    weights = _weights(agent)  # once, not once per actor
                    for q in weight_queues:
                        try:
                            q.get_nowait()  # drop weights the actor has not picked up yet
                        except queue.Empty:
                            pass
                        try:  # an actor killed inside its get holds the queue's lock for
                            # good: an unbounded put waited for ever, past the liveness
                            # check that names a dead actor (serl21)
                            q.put(weights, timeout=PUBLISH_TIMEOUT_S)
                        except queue.Full:
                            pass
        clock()  # training only, not the actors' shutdown
        gradient_steps = int(getattr(agent, "gradient_steps", 0)) - gradient_steps_start
        if not utd_log or (utd_log[-1]["env_steps"], utd_log[-1]["gradient_steps"]) != (
                trained, gradient_steps):  # a run with nothing left to train adds none
            log_utd()  # the whole run's counts
    finally:
        bar.close()
        stop.set()
        _stop_actors(processes, readers)
        for q in weight_queues:  # weights no actor will read: the exit must not flush them
            q.cancel_join_thread()
    save_checkpoint(out_dir, agent, learner_state())  # to continue to a larger --steps
    env_steps, gradient_steps = utd_log[-1]["env_steps"], utd_log[-1]["gradient_steps"]
    identity = {}
    if backend == "twin":  # the robot env has no gym spec: the simulated task's identity
        identity = {"task_id": task_id,
                    "task_version_key": task_version_key(task_id, env_kwargs)}
        if eval_episodes:
            # The learner's robot env sat idle through training: on an arm the RTDE watchdog
            # ends its control script meanwhile (the twin warned at the evaluation's reset).
            # The evaluation connects anew, as a cell would.
            env.close()
            env = build_env(task_id, env_kwargs, backend, seed)
            if "base_policy" in kwargs:
                agent.base_policy = hand_controller(env, backend)
    records = (evaluate(env, agent, eval_episodes, eval_seeds(eval_episodes), **identity)
               if eval_episodes else [])
    env.close()
    agent.save(out_dir / "agent")
    result = {
        "task_id": task_id, "agent": agent_name, "backend": backend, "actors": actors,
        "env_steps": env_steps, "gradient_steps": gradient_steps,
        "achieved_utd": utd_log[-1]["achieved_utd"],
        # Over the acting time of every part of the run, which starts at the part's first
        # transition: its steps less that one each (1 step read 174,277 env steps/s, serl18);
        # None where no part took two.
        "env_steps_per_s": ((env_steps - resumes - 1) / acting_s
                            if env_steps > resumes + 1 and acting_s > 0 else None),
        "wall_clock_s": wall_s, "training_episodes": episodes,
        "training_successes": successes,
        # As `train` logs them (its per-episode segments need one actor's episodes in order).
        "intervention_steps": intervention_steps,
        "intervention_rate": intervention_steps / max(env_steps, 1),
        # A learned reward's decisions against the simulator's success, as `train` counts them.
        "reward_confusion": reward_confusion, **{
            f"reward_{k}": v for k, v in confusion_rates(reward_confusion).items()},
        "evaluation": summarize(records) if records else None,  # None: eval_episodes=0
        "utd_log": utd_log, "resumes": resumes, "checkpoint_every": checkpoint_every,
        # What `insertbench eval` reads to check the task and rebuild the env (as run.json).
        "seed": seed, "env_kwargs": env_kwargs, "config": config_to_dict(agent.config),
        **({"reward_classifier_sha256": settings["reward_classifier_sha256"]}
           if "reward_classifier_sha256" in settings else {}),
    }
    write_json(out_dir / "async.json", result, non_finite="null")  # NaN means: null
    return result
