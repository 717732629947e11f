"""Train one agent on one task: the runner that owns the env loop, seeds, evaluation and resumption.

``train(task_id, agent_name, seed, steps, ...)`` writes into ``out_dir``::

    run.json            what was run: task + env kwargs, agent + config, seed, code version
    tb/                 TensorBoard logs (losses, training episodes, evaluations)
    checkpoint/         latest checkpoint: agent/ (weights, optimizers, replay buffers),
                        runner.json (step, episode, evaluation history, current-episode actions),
                        runner_rng.safetensors (torch RNG), current_obs.npz
    evaluations.json    every evaluation: step, summary and raw per-episode records
    learning_curve.png  evaluation success rate (95% Wilson band) and return vs env steps
    demos.npz           the demonstrations given to ``agent.pretrain``, if any
    pretrain.json       the metrics ``agent.pretrain`` returned
    context.npz         the target task's demonstrations given to ``agent.adapt`` (paper 004:
                        ``oda``, ``awac``), recorded with the task's controller on the demo seeds

Seeds: training episode k of run seed s resets the env with ``TRAIN_SEED_BASE + 100_000 s + k``;
evaluation uses ``eval_seeds`` (default ``EVAL_SEED_BASE + i``; the matrix presets pass their
own), which must lie outside the run's training seeds; demonstrations ``DEMO_SEED_BASE + i``.
Torch is seeded with ``s``; agents seed their numpy streams from ``s``.

The returned ``TrainResult`` carries every evaluation as a typed ``benchmark.cells.Evaluation``
(env steps, training wall-clock, episode records), which ``benchmark.cells.run_cell`` stores as
it is.

Resumption: calling ``train`` again with the same ``out_dir`` (same task, agent, config, seed)
continues from the last checkpoint, also to a larger ``steps``. Checkpoints may fall inside an
episode: the runner then resets the env with that episode's seed and replays its executed
actions, and checks that it reaches the saved observation; an agent's per-episode state
(``episode_state_dict``, ``agents.base``) is saved in runner.json and loaded after the replay.
Evaluation happens at episode boundaries on the training env (seeded per episode, so it does not
disturb training) and restores the torch RNG, so an interrupted-and-resumed run ends in the same
state as an uninterrupted one (on CPU; checked for every registered agent by
tests/benchmark/test_resume_every_agent.py and the tests it names).

``num_envs`` > 1 trains on that many worlds at once: the env loop, its per-world checkpoints
and what it refuses are ``benchmark.vector_train``'s (evaluation then runs on its own env).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import shlex
import shutil
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from tqdm import tqdm

from agents import Agent, Transition, agent_spec, load_agent, make_agent, transitions_to_dataset
from agents.base import BasePolicy, Dataset, Observation
from agents.buffer import (
    check_dataset_values,
    check_image_dtypes,
    check_row_shapes,
    load_dataset,
    save_dataset,
)
from agents.checkpoint import read_json, read_tensors
from agents.config import build_config, check_config_device, config_to_dict
from agents.registry import AgentSpec, check_action_scale, check_seed, run_checkpoint_dir
from benchmark.cells import (
    MAX_EVAL_EPISODES,
    MAX_TRAIN_STEPS,
    Evaluation,
)
from benchmark.cli_options import innermost_message, warnings_if_made
from benchmark.evaluate import eval_seeds as eval_seed_list
from benchmark.evaluate import evaluate
from benchmark.folder_lock import run_lock
from benchmark.learned_reward import (
    FAILURE_SEED_BASE,
    add_failure_demos,
    bind_reward_classifier,
    check_reward_pairing,
    check_same_classifier,
    classifier_sha256,
    end_trials_on_own_verdict,
    same_but_classifier_path,
    scored_env,
    with_defaults,
)
from benchmark.store import suite_commit
from envs.episode import summarize
from envs.json_files import write_json, written_whole
from envs.task_options import REWARDS, check_max_episode_steps
from envs.version_key import task_version_key_if_any

TRAIN_SEED_BASE = 100_000_000
TRAIN_SEEDS_PER_RUN = 100_000
DEMO_SEED_BASE = 90_000_000
#: Demonstrations collected with the task's controller for an agent that needs demos and got
#: none (papers 003 and 004 use 20-30 demonstrations; paper 000 does not say).
DEFAULT_DEMO_EPISODES = 20
#: Episodes the controller may take per demonstration asked for before `collect_demos` gives up
#: (as `insertbench dataset collect --demos`'s `max_attempts_per_demo`).
MAX_DEMO_ATTEMPTS = 20
RUN_KEYS = ("task_id", "agent", "seed", "config", "env_kwargs", "eval_seeds", "demos",
            "num_envs", "interventions")


@dataclass(eq=False)
class TrainResult:
    """What ``train`` returns."""

    out_dir: Path  # where logs, checkpoints and plots went
    agent: Agent  # the trained agent
    steps: int  # env steps trained in total (including before a resume)
    episodes: int  # training episodes started
    wall_clock_s: float  # seconds spent training (pretrain + env loop, not evaluating)
    evaluations: list[Evaluation] = field(default_factory=list)  # in order of env steps
    summaries: list[dict[str, Any]] = field(default_factory=list)  # `summarize` of each
    demo_episodes: int = 0  # demonstration episodes given to pretrain (collected or loaded)
    intervention_steps: int = 0  # training steps whose action an intervention replaced


def check_dataset_fits(dataset: Mapping[str, Any], env: gym.Env, source: str) -> None:
    """ValueError unless ``dataset`` has rows, and its actions and the observation entries it
    shares with ``env`` have the env's shapes: checked before the run folder exists (a refusal
    in the agent's pretraining left run.json and a copy of the demos behind, and an empty file
    was "cannot reshape array of size 0")."""
    if flat := [part for part in ("obs", "next_obs")
                if not isinstance(dataset.get(part, {}), Mapping)]:  # .items() of an array
        raise ValueError(f"{source}: {' and '.join(flat)} must hold the observation's entries "
                         f"(stored as {flat[0]}/<key> in an .npz), not one array")
    columns = {k: v for k, v in dataset.items() if k not in ("obs", "next_obs")}
    columns |= {f"{part}[{k!r}]": v for part in ("obs", "next_obs")
                for k, v in dataset.get(part, {}).items()}
    if one := [k for k, v in columns.items() if np.ndim(v) == 0]:  # len() of unsized object
        raise ValueError(f"{source}: {', '.join(one)} hold{'s' * (len(one) == 1)} one value, "
                         "not a row per transition")
    rows = len(dataset["action"])
    if rows == 0:
        raise ValueError(f"{source} holds no transitions")
    # Every column a row per transition: an is_demo of another length was an IndexError in
    # ODA's pretraining, after the run folder was made (data21)
    uneven = {k: len(v) for k, v in columns.items() if len(v) != rows}
    if uneven:
        raise ValueError(f"{source}: columns differ in length: action has {rows} rows, {uneven}")
    # Every agent's buffer holds all of the env's observation entries: state-only demos for a
    # pixel run were refused by the agent, after the run folder was made.
    missing = [k for k in env.observation_space.spaces
               if k not in dataset.get("obs", {}) or k not in dataset.get("next_obs", {})]
    if missing:
        raise ValueError(f"{source} lack the observation entries {missing} of this run's env "
                         f"(they have {sorted(dataset.get('obs', {}))}): record them with the "
                         "run's obs_mode")
    check_row_shapes(dataset, {k: s.shape for k, s in env.observation_space.spaces.items()},
                     env.action_space.shape, f"{source}: rows")
    check_image_dtypes(dataset, [k for k, s in env.observation_space.spaces.items()
                                 if s.dtype == np.uint8], source)


def swap_in_checkpoint(out_dir: Path, fill: Callable[[Path], None]) -> None:
    """Write ``out_dir/checkpoint`` whole: ``fill`` builds it in checkpoint.tmp, which then
    replaces it (the previous one is checkpoint.old between the two renames), so a kill at any
    moment leaves one complete checkpoint (`agents.registry.run_checkpoint_dir` and train-async
    read checkpoint.old where checkpoint is missing)."""
    tmp, final, old = (out_dir / n for n in ("checkpoint.tmp", "checkpoint", "checkpoint.old"))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
    except (OSError, SafetensorError) as err:  # a full disk: its message named no file
        shutil.rmtree(tmp, ignore_errors=True)  # and gives back what the part written took
        raise OSError(f"could not write the checkpoint in {out_dir}: {err}") from err
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _warn_below_learning_starts(agent_name: str, steps: int, config: dict[str, Any]) -> None:
    """A warning where the run ends before the agent's first online gradient update; called
    once the agent is built (a config it refuses was this warning, then the error; agents24)."""
    learning_starts = config.get("learning_starts")
    if learning_starts is not None and 0 < steps < learning_starts:
        warnings.warn(f"{agent_name} makes no online gradient update in {steps} env steps: its "
                      f"learning_starts is {learning_starts} (train for more steps, or set the "
                      "config field learning_starts lower)", UserWarning, stacklevel=3)


def train_episode_seed(run_seed: int, episode: int) -> int:
    """Env reset seed of training episode ``episode`` of run ``run_seed``; ValueError past the
    run's ``TRAIN_SEEDS_PER_RUN`` (run seed 0's 100,001st episode replayed run seed 1's first,
    and the seeds of a matrix were no longer independent)."""
    if not 0 <= episode < TRAIN_SEEDS_PER_RUN:
        raise ValueError(f"training episode {episode + 1:,} of run seed {run_seed} is past the "
                         f"run's {TRAIN_SEEDS_PER_RUN:,} training seeds (the next are run seed "
                         f"{run_seed + 1}'s): train fewer steps in one run, or longer episodes")
    return TRAIN_SEED_BASE + TRAIN_SEEDS_PER_RUN * run_seed + episode


def read_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """The scalars a run wrote to ``run_dir/tb``: tag -> {env step: value}. A resumed run
    writes a second events file; later files win."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((run_dir / "tb").glob("events.out.tfevents.*"))
    if not files:
        raise ValueError(f"{run_dir}: no TensorBoard events under tb/")
    scalars: dict[str, dict[int, float]] = {}
    for f in files:
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return scalars


def _config_changes(before: Any, now: Any, alone: bool = True) -> str:
    """`: config key X was A, now B, ...` for the agent config fields a resume changes, with
    the options that give the run's values back (an agent default that changed since the
    run began read as "the same settings" to its user); they resume it only when the config is
    all that changed (`alone`: a seed changed as well was still refused after the advice) and
    every changed field is in both configs."""
    if not isinstance(before, dict) or not isinstance(now, dict) or before == now:
        return ""
    keys = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
    was = ", ".join(f"{k} was {before.get(k)!r}, now {now.get(k)!r}" for k in keys)
    # Fields of both configs only: one the agent no longer has would be refused as unknown.
    given = [k for k in keys if k in before and k in now]
    if not given:
        return f": config {was}"
    # Quoted for the shell: "-c hidden=[32, 32]" pasted was two arguments.
    give = " ".join("-c " + shlex.quote(f"{k}={json.dumps(before[k], separators=(',', ':'))}")
                    for k in given)
    resumes = alone and len(given) == len(keys)
    return f": config {was}; {give} {'resumes it' if resumes else 'gives back what it can'}"


def _run_changes(before: dict[str, Any], changed: list[str]) -> str:
    """What a refused resume's run recorded of its options, as the options that give it back:
    "differs in ['demos']" or "['eval_seeds']" named nothing a user had typed (agents17,
    newuser16)."""
    said = []
    if "demos" in changed:
        said.append(_demos_option(before))
    if "eval_seeds" in changed:
        seeds = before.get("eval_seeds")
        said.append(f"--eval-episodes {len(seeds)}" if isinstance(seeds, list) and seeds
                    and seeds == eval_seed_list(len(seeds)) else f"eval_seeds {seeds!r}")
    if "env_kwargs" in changed:
        said.append(f"env kwargs {before.get('env_kwargs')!r} (--env)")
    return f"; it ran with {', '.join(said)}" if said else ""


def _demos_option(run: dict[str, Any]) -> str:
    """The option that gives the demonstrations a run recorded (run.json's ``demos``)."""
    demos = run.get("demos")
    if isinstance(demos, dict) and "p_controller_episodes" in demos:
        return f"--demo-episodes {demos['p_controller_episodes']}"
    if "demos_path" in run:
        return f"--demos {shlex.quote(str(run['demos_path']))}"
    if demos is None:
        return "--demo-episodes 0"
    return f"demos {demos!r}"  # "dataset object": given in Python


def seed_clash(run_seed: int, eval_seeds: Sequence[int]) -> str | None:
    """Why ``eval_seeds`` cannot evaluate run ``run_seed`` (some are its training episodes'
    reset seeds), or None."""
    low = train_episode_seed(run_seed, 0)
    clash = [s for s in eval_seeds if low <= s < low + TRAIN_SEEDS_PER_RUN]
    if not clash:
        return None
    return (f"evaluation seeds {clash[:3]} are training seeds of run seed {run_seed} "
            f"([{low}, {low + TRAIN_SEEDS_PER_RUN})); choose evaluation seeds outside that range")


def demo_seed_clash(eval_seeds: Sequence[int], demo_episodes: int,
                    failure_episodes: int = 0) -> str | None:
    """Why ``eval_seeds`` cannot evaluate a run that collects ``demo_episodes`` demonstrations
    (their reset seeds are ``DEMO_SEED_BASE + i``, up to `MAX_DEMO_ATTEMPTS` a demonstration)
    or records ``failure_episodes``
    failures (VICE's negatives, ``FAILURE_SEED_BASE + i``), or None."""
    seeds = set(eval_seeds)
    attempts = demo_episodes * MAX_DEMO_ATTEMPTS  # a failed attempt takes the next seed
    if demo_episodes > 0 and seeds & {DEMO_SEED_BASE + i for i in range(attempts)}:
        return f"eval_seeds overlap the demonstration seeds from {DEMO_SEED_BASE}"
    if failure_episodes > 0 and seeds & {FAILURE_SEED_BASE + i
                                         for i in range(failure_episodes)}:
        return f"eval_seeds overlap the recorded failures' seeds from {FAILURE_SEED_BASE}"
    return None


def make_env(task_id: str, env_kwargs: Mapping[str, Any] | None = None) -> gym.Env:
    """``gym.make`` after importing ``envs`` (which registers the InsertBench tasks).

    ``task_id`` may be any registered ID, or ``"module:ID"`` to import a module that registers it.
    ``reward="classifier"`` with ``reward_classifier=<dir>`` replaces the reward by a learned
    success classifier (``benchmark.learned_reward.make_classifier_env``); ``reward="vice"``
    by the one the ``vice`` agent learns (``make_vice_env``). A kwarg the task does not take
    is a ValueError with the task's own message (Gymnasium re-raises the constructor's
    TypeError with every kwarg appended), as every other refused kwarg is.
    """
    try:
        importlib.import_module("envs")
    except ImportError:
        pass  # envs' dependencies missing: other registered IDs still work
    kwargs = dict(env_kwargs or {})
    if kwargs.get("max_episode_steps") is not None:  # gym.make's own: True passed as 1 step
        kwargs["max_episode_steps"] = check_max_episode_steps(kwargs["max_episode_steps"])
    if kwargs.get("reward") == "vice":
        from benchmark.learned_reward import make_vice_env

        return make_vice_env(task_id, kwargs)
    if "goal_hold_steps" in kwargs:  # was "unknown kwarg", as if no env took it
        raise ValueError("goal_hold_steps is a kwarg of the VICE reward: give it with "
                         "reward=vice")
    if kwargs.get("reward") == "classifier" or "reward_classifier" in kwargs:
        from benchmark.learned_reward import make_classifier_env

        return make_classifier_env(task_id, kwargs)
    reward = kwargs.get("reward")
    if task_id.startswith("InsertBench/") and isinstance(reward, str) and reward not in REWARDS:
        # The env's own list left out the learned rewards that this function makes.
        raise ValueError(f"reward must be one of {(*REWARDS, 'classifier', 'vice')}, got "
                         f"{reward!r}")
    try:
        with warnings_if_made():
            return gym.make(task_id, **kwargs)
    except TypeError as err:  # an unknown kwarg: "TypeError: ...", exit 1, in `train`
        raise ValueError(innermost_message(err)) from None


def make_base_policy(env: gym.Env, goal_offset_m: np.ndarray | None = None) -> BasePolicy:
    """The task's hand-designed controller (paper 000's P-controller) as a callable obs -> action,
    aimed ``goal_offset_m`` (x, y, z [m], world frame; default none) off the believed goal.

    InsertBench tasks provide it as ``envs.p_controller(env)``; other envs (the test
    stand-ins) as a ``p_controller()`` method.
    """
    offset = {} if goal_offset_m is None else {"goal_offset_m": goal_offset_m}
    try:
        envs = importlib.import_module("envs")
    except ImportError:
        envs = None
    if envs is not None and env.spec is not None and env.spec.id.startswith("InsertBench/"):
        return envs.p_controller(env, **offset)
    method = getattr(env.unwrapped, "p_controller", None)
    if callable(method):
        return method(**offset)
    if envs is not None and hasattr(envs, "p_controller"):
        return envs.p_controller(env, **offset)
    raise ValueError(f"{env.spec.id if env.spec else env} has no hand-designed controller")


def distinct_episodes(actions: Iterable[np.ndarray]) -> int:
    """How many of the episodes (each its actions, in order) differ: a deterministic policy on
    a task without start or goal noise replays one episode on every seed."""
    return len({hashlib.sha256(np.ascontiguousarray(a).tobytes()).digest() for a in actions})


def replayed_demos_warning(episodes: int, distinct: int) -> str | None:
    """The warning for `episodes` demonstrations that are `distinct` episodes, or None."""
    if distinct >= episodes:
        return None
    return (f"the {episodes} demonstrations are {distinct} distinct episode"
            f"{'s' if distinct != 1 else ''}: the task has no start or goal noise, so the "
            "controller replays one episode on every seed (give -e init_offset_mm=[lo,hi] or "
            "-e goal_noise_mm=... for varied ones)")


class DemonstrationsShort(ValueError):
    """The controller succeeded too rarely to record the demonstrations asked for."""


def collect_demos(env: gym.Env, policy: BasePolicy, episodes: int,
                  base_policy: BasePolicy | None = None, *,
                  own_demos: str | None = "demos of your own (`insertbench train --demos "
                                          "FOLDER`)") -> Dataset:
    """Roll out ``policy`` on the demo seeds (``DEMO_SEED_BASE`` + attempt) until ``episodes``
    of its episodes ended in success; returns those as a Dataset. Demonstrations solve the
    task (papers 002 and 003: 20 successful ones): every episode was kept, and 6 of 20 on
    USB-v1 at +-10 mm were jammed time-outs, 60% of the rows BC cloned and RLPD sampled as
    demos (serl18). ValueError when fewer succeed in ``episodes`` x `MAX_DEMO_ATTEMPTS`.

    With ``base_policy`` (a residual agent's pi_H) each row also gets ``base_action``: pi_H(s)
    [env action units] evaluated during its own episode. pi_H reads the episode's believed goal
    from the env, so it cannot be recomputed afterwards from the observation alone.
    ``own_demos``: how the caller's user gives demonstrations of their own, offered where a
    learned reward cut the controller's short (None: the command takes none).
    """
    transitions: list[Transition] = []
    kept = attempts = cut_short = 0
    kept_actions: list[np.ndarray] = []
    while kept < episodes:
        if attempts == episodes * MAX_DEMO_ATTEMPTS:
            # Ended by the env without the simulator's success: a learned reward (classifier,
            # VICE) that fired early, not the controller's time limit or noise (newuser19).
            instead = f", or {own_demos}" if own_demos else ""
            cut = (f"; {cut_short} of the failures were ended early by the env without a "
                   "success (a learned reward's false positives stop the controller short: a "
                   f"classifier with fewer false positives{instead})" if cut_short else "")
            raise DemonstrationsShort(
                f"the controller succeeded in {kept} of {attempts} episodes, short of the "
                f"{episodes} demonstrations asked for: a setting it solves (a longer time "
                f"limit, less noise) makes them{cut}")
        obs, _ = env.reset(seed=DEMO_SEED_BASE + attempts)  # never an evaluation seed (checked)
        attempts += 1
        episode: list[Transition] = []
        done, info = False, {}
        while not done:
            base = None if base_policy is None else np.asarray(base_policy(obs), np.float64)
            action = np.asarray(policy(obs), dtype=env.action_space.dtype)
            next_obs, reward, terminated, truncated, info = env.step(action)
            episode.append(Transition(obs, action, float(reward), next_obs, terminated,
                                      truncated, info, base_action=base))
            obs, done = next_obs, terminated or truncated
        if info.get("is_success"):
            transitions += episode
            kept += 1
            kept_actions.append(np.stack([t.action for t in episode]))
        elif terminated:
            cut_short += 1
    # N copies of one episode were counted as N demonstrations (data24).
    if (message := replayed_demos_warning(kept, distinct_episodes(kept_actions))) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    return transitions_to_dataset(transitions)


def _recorded_demos(env: gym.Env, policy: BasePolicy, episodes: int,
                    base_policy: BasePolicy | None, advice: str) -> Dataset:
    """`collect_demos`, its refusal followed by `advice` (what this run can do instead)."""
    try:
        return collect_demos(env, policy, episodes, base_policy)
    except DemonstrationsShort as err:
        raise DemonstrationsShort(f"{err}{advice}") from None


def dataset_from_minari(minari_dataset: Any) -> Dataset:
    """Flatten a Minari dataset (e.g. ``insertbench dataset collect``) into the agents' layout.

    Each episode's T + 1 observations give T rows of ``obs`` / ``next_obs``; ``is_success``
    (after the step) rides along from the recorded infos, for reward classifiers.
    """
    parts: dict[str, list] = {k: [] for k in ("action", "reward", "terminated", "truncated",
                                              "is_success")}
    obs: dict[str, list] = {}
    next_obs: dict[str, list] = {}
    for episode in minari_dataset.iterate_episodes():
        for key, values in episode.observations.items():
            obs.setdefault(key, []).append(np.asarray(values)[:-1])
            next_obs.setdefault(key, []).append(np.asarray(values)[1:])
        parts["action"].append(np.asarray(episode.actions, dtype=np.float32))
        parts["reward"].append(np.asarray(episode.rewards, dtype=np.float32))
        parts["terminated"].append(np.asarray(episode.terminations, dtype=bool))
        parts["truncated"].append(np.asarray(episode.truncations, dtype=bool))
        success = episode.infos.get("is_success")
        steps = len(episode.actions)
        parts["is_success"].append(
            np.zeros(steps, bool) if success is None else np.asarray(success)[1:].astype(bool)
        )
    if not parts["action"]:
        raise ValueError("the Minari dataset has no episodes")
    dataset: dict[str, Any] = {k: np.concatenate(v) for k, v in parts.items()}
    dataset["obs"] = {k: np.concatenate(v) for k, v in obs.items()}
    dataset["next_obs"] = {k: np.concatenate(v) for k, v in next_obs.items()}
    return dataset


def _same_task_settings(task_id: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether env kwargs `a` and `b` build `task_id` alike (its version key hashes every kwarg
    with its default); for an ID it cannot key, whether they are equal."""
    from envs.version_key import task_version_key

    try:
        return task_version_key(task_id, a) == task_version_key(task_id, b)
    except Exception:  # noqa: BLE001 - a stand-in or unkeyable task: compare as given
        return a == b


#: Rewards of 1 at a success and 0 elsewhere: the simulator's, or a success classifier's.
SUCCESS_REWARDS = {"sparse", "classifier", "vice"}


def _warn_other_settings(demos: Path, how: str, side: str, their_task: str | None,
                         their_kwargs: Mapping[str, Any], task_id: str,
                         env_kwargs: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> None:
    """Warn where demos were made on another task or with other env kwargs than the run's
    (those in `ignore` aside); ValueError where their rewards are another reward function's
    (unless `ignore` holds "reward")."""
    if "reward" not in ignore:
        theirs_r, ours_r = (with_defaults(k, ("reward",))["reward"]
                            for k in (their_kwargs, env_kwargs))
        # Sparse demos trained a dense run, rewards of both mixed. A success label is one,
        # the simulator's or a classifier's (as HIL-SERL's operators label their demos).
        if theirs_r != ours_r and not {theirs_r, ours_r} <= SUCCESS_REWARDS:
            raise ValueError(f"demos {demos} were {how} with reward={theirs_r}, this run's is "
                             f"reward={ours_r}: their rows' rewards are another function's, "
                             "which the agent would learn from beside its own; train with -e "
                             f"reward={theirs_r}, or give demos recorded with reward={ours_r}")
    if their_task not in (None, task_id):  # DT12 demos trained a USB run silently
        warnings.warn(f"demos {demos} were {how} on {their_task}, not {task_id}",
                      UserWarning, stacklevel=4)
        return
    # obs_frame='task' data trained a start-frame run: tcp_pose meant something else.
    # The version key resolves every kwarg with its default: obs_mode='state' given or
    # not, a tuple or its JSON list, build the same task.
    ours, theirs = (json.loads(json.dumps(dict(k))) for k in (env_kwargs, their_kwargs))
    # Not the episode length: where a transition ends changes nothing it means, and a
    # collection's (--max-steps) is not among its kwargs: a run given the collection's own
    # length was warned, and one left at the task's was not.
    for key in ("max_episode_steps", *ignore):
        ours.pop(key, None)
        theirs.pop(key, None)
    differ = {} if _same_task_settings(task_id, ours, theirs) else {
        k: (theirs.get(k), ours.get(k)) for k in {*ours, *theirs}
        if theirs.get(k) != ours.get(k)}
    if differ:
        warnings.warn(f"demos {demos} were {how} with other env kwargs than this run's "
                      f"({side}, run): "
                      f"{dict(sorted(differ.items()))}", UserWarning, stacklevel=4)


def _has_task_ids(demos: Any) -> bool:
    """Whether demos (a path or a Dataset) give each row's connector: a recipe folder, or an
    .npz or a Dataset with a ``task_id`` column (a recipe run's own demos.npz has one)."""
    if isinstance(demos, str | Path):
        from benchmark.recipes import is_recipe_dir

        path = Path(demos)
        if path.is_file() and path.suffix == ".npz":
            try:
                with np.load(path) as data:
                    return "task_id" in data.files
            except (OSError, ValueError):
                return False  # loading it says what is wrong with it
        return path.is_dir() and is_recipe_dir(path)
    return demos is not None and "task_id" in demos


def check_demos_folder(demos: Path, task_id: str, env_kwargs: dict[str, Any],
                       imitator: str | None = None, relabelled: bool = False,
                       demo_learner: str | None = None) -> None:
    """Before a run directory is made: ValueError for an unfinished or damaged collection or
    recipe in `demos`, and a warning where its task, env kwargs or task version are not the
    run's (they trained a run of another task without a word), or, for an agent that imitates
    every row (`imitator`: BC, HG-DAgger), where its episodes are not demonstrations. A run's
    demos.npz is checked against its run.json beside it; any other file passes. Demos whose
    rewards are another reward function's are refused (a ValueError), unless the agent
    imitates (`imitator`) or relabels them. `relabelled`: the agent rewards the rows itself
    (IQL with its reward classifier) or reads no rewards (Localize's regressor), so the
    `reward` kwarg they were recorded under does not matter (IQL's own refusal asks for
    reward=dense, and the warning then followed every run of it). `demo_learner`: the agent,
    where it learns from demonstrations of the run's task (RLPD, TD3 + LfD, BC, ...): a
    recipe's other connectors and rollouts are named (offline RL takes them on purpose)."""
    # The rewards they were recorded with do not matter to an agent that relabels them or
    # imitates the actions alone.
    ignore = ("reward",) if relabelled or imitator else ()
    if (demos / "collect_config.json").is_file():
        from benchmark.datasets import collection_dynamics_differ, read_finished_collection

        collected = read_finished_collection(demos)
        _warn_other_settings(demos, "collected", "collection", collected.task_id,
                             collected.env_kwargs, task_id, env_kwargs, ignore)
        if imitator and not collected.demos:  # 5 random-action failures cloned as demos
            warnings.warn(f"{imitator} imitates every step of demos {demos}, which are not "
                          f"demonstrations: collected without --demos (failures kept) and a "
                          f"random action on {collected.noise:.0%} of steps",
                          UserWarning, stacklevel=3)
        elif imitator and collected.noise > 0:  # --demos keeps its successes, noise and all
            warnings.warn(f"{imitator} imitates every step of demos {demos}, a random action "
                          f"on {collected.noise:.0%} of them (collected with --noise "
                          f"{collected.noise:g}; --noise 0 for the expert's actions alone)",
                          UserWarning, stacklevel=3)
        elif demo_learner and not collected.demos:  # RLPD sampled failures as demos (data19)
            warnings.warn(f"{demo_learner} learns from demos {demos} as demonstrations, but "
                          "they were collected without --demos: failed episodes kept, and a "
                          f"random action on {collected.noise:.0%} of steps (`insertbench "
                          "dataset collect --demos` keeps successes alone)",
                          UserWarning, stacklevel=3)
        try:
            other = collection_dynamics_differ(demos, collected)
        except ValueError:  # a damaged record: not compared, as a collection from before it
            other = None
        if other is not None:  # a timestep, clearance or gain changed since, or the expert
            warnings.warn(f"demos {demos} were {other}: episodes of another simulator or expert",
                          UserWarning, stacklevel=3)
    elif demos.name == "demos.npz" and (demos.parent / "run.json").is_file():
        # A run's own demos: a USB run's trained a Model-E run, in another frame, unsaid.
        try:
            run = json.loads((demos.parent / "run.json").read_text())
        except (OSError, json.JSONDecodeError):
            run = None
        if isinstance(run, dict) and isinstance(run.get("env_kwargs") or {}, dict):
            _warn_other_settings(demos, "recorded", "their run", run.get("task_id"),
                                 run.get("env_kwargs") or {}, task_id, env_kwargs, ignore)
            # As a collection's: recorded under dynamics this code no longer builds (data19).
            found = run.get("task_version_key")
            key = (task_version_key_if_any(run["task_id"], run.get("env_kwargs") or {})
                   if isinstance(found, str) and isinstance(run.get("task_id"), str) else None)
            if key is not None and key != found:
                warnings.warn(f"demos {demos} were recorded under task version key {found[:12]},"
                              f" where this InsertBench's {run['task_id']} is {key[:12]} (its "
                              "dynamics changed): episodes of another simulator or expert",
                              UserWarning, stacklevel=3)
    from benchmark.recipes import (
        is_recipe_dir,
        missing_parts,
        parts_made_otherwise,
        recipe_version,
        unfinished_message,
    )

    if demos.is_dir() and is_recipe_dir(demos):  # v1 data trained a v0 run without a word
        missing = missing_parts(demos)
        if missing:
            raise ValueError(unfinished_message(demos, missing))
        recorded, version = recipe_version(demos), task_id.rsplit("-", 1)[-1]
        if recorded != version:
            warnings.warn(f"demos {demos} were recorded on task version {recorded}, not "
                          f"{version} ({task_id})", UserWarning, stacklevel=3)
        try:
            otherwise = parts_made_otherwise(demos)
        except ValueError:  # a damaged record: not compared, as a recipe from before it
            otherwise = []
        for line in otherwise:  # as a collection's, below
            warnings.warn(f"demos {demos}: {line}: episodes of another simulator or expert",
                          UserWarning, stacklevel=3)
        # Its parts are other connectors on purpose, but their kwargs must build this run's
        # task alike (a start-frame recipe trained a task-frame run without a word).
        from benchmark.recipes import read_description

        parts = read_description(demos)["parts"]
        kwargs = {json.dumps(part["collect"].get("env_kwargs") or {}, sort_keys=True)
                  for part in parts}
        for theirs in sorted(kwargs):
            _warn_other_settings(demos, "recorded", "recipe", None, json.loads(theirs),
                                 task_id, env_kwargs, ignore)
        rollouts = [p["folder"] for p in parts if not p["is_demo"]]
        learner = imitator or demo_learner
        if learner and rollouts:
            warnings.warn(f"{learner} {'imitates every step of' if imitator else 'learns from'}"
                          f" demos {demos}, also of its parts that are not demonstrations "
                          f"({', '.join(rollouts)})", UserWarning, stacklevel=3)
        tasks = {p["collect"]["task_id"] for p in parts}
        others = sorted(tasks - {task_id})
        if learner and others:  # an RLPD run on DT12 took USB-A and D-sub demos alone
            warnings.warn(f"{learner} learns from demonstrations of {task_id}, but demos "
                          f"{demos} hold {', '.join(others)}"
                          f"{'' if len(others) < len(tasks) else ' only'}",
                          UserWarning, stacklevel=3)


def load_demos(path: str | Path) -> Dataset:
    """Demonstrations / offline data from a ``.npz`` Dataset, an ``insertbench dataset
    collect`` output directory (its Minari dataset) or an ``insertbench dataset recipe`` one
    (all its parts, with ``task_id`` and ``is_demo`` columns)."""
    path = Path(path)
    if path.is_dir():
        from benchmark.datasets import load_unaltered, read_finished_collection
        from benchmark.recipes import is_recipe_dir, load_recipe

        recipe = is_recipe_dir(path)
        if not recipe and not (path / "collect_config.json").is_file():
            raise ValueError(f"{path} is not an `insertbench dataset collect` output "
                             "(no collect_config.json)")
        try:
            if recipe:
                return load_recipe(path)
            return dataset_from_minari(load_unaltered(read_finished_collection(path), path))
        # A cut-off main_data.hdf5: h5py's OSError "Unable to ... open file"; one with a
        # damaged object: its KeyError "bad object header"; a cut-off metadata.json: Minari's
        # JSONDecodeError, naming no file.
        except (OSError, KeyError, json.JSONDecodeError) as err:
            command = "dataset recipe" if recipe else "dataset collect"
            raise ValueError(f"{path} holds a Minari dataset that is not readable (damaged? "
                             f"{err}): rerunning the `insertbench {command}` that wrote it "
                             "rebuilds it from its episode files") from None
    try:
        dataset = load_dataset(path)
    except (EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        # An empty file raised numpy's EOFError, which the command line reported as
        # "interrupted" (Click reads any EOFError as Ctrl-D at a prompt).
        raise ValueError(f"{path} is not a saved Dataset ({type(err).__name__}: {err}): give a "
                         "run's demos.npz or an `insertbench dataset collect` / `recipe` "
                         "folder") from None
    missing = [k for k in ("obs", "action", "reward", "next_obs", "terminated", "truncated")
               if k not in dataset]
    if missing:  # e.g. one episode file of `dataset collect`: a KeyError in pretrain before
        raise ValueError(f"{path} is not a saved Dataset (no {missing}): give a run's "
                         "demos.npz or an `insertbench dataset collect` / `recipe` folder")
    return dataset


def act_and_step(env: gym.Env, agent: Agent, obs: Any, hook: Callable | None = None):
    """One exploring step: the agent acts, `hook(obs, action)` (an operator) may override it,
    and the env steps. Returns (executed action, next obs, reward, terminated, truncated, info,
    intervened): an intervention wrapper on the env (envs.intervention) may have executed a
    human's action instead, and the transition must carry what was executed."""
    action = agent.act(obs, deterministic=False)
    override = hook(obs, action) if hook is not None else None
    if override is not None:
        action = np.asarray(override, dtype=env.action_space.dtype)
    next_obs, reward, terminated, truncated, info = env.step(action)
    intervened = override is not None or bool(info.get("intervened", False))
    if "action" in info and info.get("intervened", False):
        action = np.asarray(info["action"], dtype=env.action_space.dtype)
    return action, next_obs, reward, terminated, truncated, info, intervened


def _json_ready(value: Any) -> Any:
    """Tuples -> lists so a run description compares equal after a JSON round trip."""
    return json.loads(json.dumps(value))


def _default_out_dir(task_id: str, agent_name: str, seed: int) -> Path:
    safe_task = task_id.split(":")[-1].replace("/", "_")
    return Path("runs") / safe_task / agent_name / f"seed{seed}"


def check_checkpoint_numbers(state: Mapping[str, Any], counters: Mapping[str, int],
                             seconds: Sequence[str], where: Path,
                             optional: Sequence[str] = ()) -> None:
    """ValueError naming ``where`` unless each of ``counters`` is an integer at least its value
    there and each of ``seconds`` a finite number >= 0 (``optional`` counters may be missing:
    older checkpoints lack them). train's runner.json and train-async's learner.json."""
    for key, least in counters.items():
        value = state.get(key, least if key in optional else None)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{where}: {key} must be an integer >= {least}, got {value!r}")
    for key in seconds:
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 <= value < math.inf):
            raise ValueError(f"{where}: {key} must be a finite number of seconds >= 0, got "
                             f"{value!r}")


#: runner.json's counters and their least values.
_RUNNER_COUNTERS = {"step": 0, "episode": 0, "next_eval": 0, "next_checkpoint": 0,
                    "intervention_steps": 0, "demo_episodes": 0}


def read_saved_observations(path: Path, replayed: dict[str, Any]) -> dict[str, np.ndarray]:
    """The observations a checkpoint saved (current_obs.npz), checked to be what the replayed
    episodes reached in keys and shapes: a damaged file ("BadZipFile: File is not a zip file",
    no file named) or one of another env is a ValueError naming it, not the "not
    deterministic" of observations that differ."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = {k: saved[k] for k in saved.files}
        if sorted(arrays) != sorted(replayed) or any(
                arrays[k].shape != np.shape(replayed[k]) for k in replayed):
            held = sorted((k, v.shape) for k, v in arrays.items())
            raise ValueError(f"it holds {held}, not the observations replayed")
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not readable (a damaged checkpoint?): {err}") from None
    return arrays


def check_runner_state(state: Any, where: Path) -> dict[str, Any]:
    """runner.json's counters and history, checked: a step of -300 trained 550 steps past the
    budget with exit status 0, and other damage ended in a KeyError naming no file."""
    if not isinstance(state, dict):
        raise ValueError(f"{where} is not a training run's checkpoint (not a JSON object)")
    check_checkpoint_numbers(state, _RUNNER_COUNTERS, ("train_wall_s",), where,
                             optional=("intervention_steps", "demo_episodes"))
    evaluations = state.get("evaluations")
    if not isinstance(evaluations, list) or not all(
            isinstance(e, dict) and isinstance(e.get("env_steps"), int)
            and isinstance(e.get("episodes"), list) for e in evaluations):
        raise ValueError(f"{where}: evaluations must be a list of evaluation records")
    return state


class _Run:
    """State of one training run; ``train`` is its driver."""

    def __init__(self, out_dir: Path, description: dict[str, Any], env: gym.Env, agent: Agent):
        self.out_dir = out_dir
        self.description = description
        self.eval_seeds: list[int] = description["eval_seeds"]
        self.train_wall_s = 0.0  # seconds of pretraining and env loop so far
        self.env = env
        self.agent = agent
        self.step = 0
        self.episode = 0  # training episodes started
        self.episode_seed: int | None = None  # seed of the episode in progress
        self.episode_actions: list[list[float]] = []  # executed actions of the episode so far
        self.episode_return = 0.0
        self.episode_interventions = 0  # intervened steps of the episode so far
        self.episode_intervention_segments = 0  # maximal runs of intervened steps so far
        self.previous_intervened = False  # the previous step of this episode was intervened
        self.intervention_steps = 0  # intervened steps of the whole run
        # Learned rewards: the classifier's decisions on the training steps against the
        # simulator's success (the runner's measurement; the agent never sees it).
        self.reward_confusion: dict[str, int] = {}
        self.demo_episodes = 0  # demonstration episodes pretrain saw
        self.hook: Any = None  # the intervention hook; its state_dict() is checkpointed if any
        self.saved_hook_state: dict[str, Any] | None = None  # hook state read by restore()
        self.obs: dict[str, np.ndarray] | None = None  # None between episodes
        self.next_eval = 0
        self.next_checkpoint = 0
        self.evaluations: list[dict[str, Any]] = []
        # Latest value of each update metric since the last TensorBoard write: an agent's
        # update() may leave keys out (TD3's actor metrics come every policy_delay-th step,
        # which with one update per env step never fell on a logged step).
        self.pending_metrics: dict[str, float] = {}

    def log_update_metrics(self, metrics: dict[str, float], writer: Any, log_every: int) -> None:
        """Keep ``metrics`` (one ``agent.update()``); every ``log_every`` env steps, write the
        latest value of each key seen since the last write to ``writer`` as train/<key>."""
        self.pending_metrics |= metrics
        if self.pending_metrics and self.step % log_every == 0:
            for key, value in self.pending_metrics.items():
                writer.add_scalar(f"train/{key}", value, self.step)
            self.pending_metrics = {}

    def log_episode_end(self, writer: Any, episode_return: float, info: Mapping[str, Any],
                        length: int) -> None:
        """Write a finished training episode's return, success and length at this env step,
        and the learned reward's error rates so far (`count_reward`)."""
        writer.add_scalar("train/episode_return", episode_return, self.step)
        writer.add_scalar("train/episode_success", float(info.get("is_success", False)),
                          self.step)
        writer.add_scalar("train/episode_length", length, self.step)
        for key, value in confusion_rates(self.reward_confusion).items():
            writer.add_scalar(f"train/reward_{key}", value, self.step)

    def count_reward(self, info: Mapping[str, Any]) -> None:
        """Count a training step's learned-reward decision (none without a classifier)."""
        if "classifier_success" in info:
            count_reward_decision(self.reward_confusion, info)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (`swap_in_checkpoint`)."""
        swap_in_checkpoint(self.out_dir, self._fill_checkpoint)

    def _fill_checkpoint(self, tmp: Path) -> None:
        self.agent.save(tmp / "agent", include_replay=True)
        state = {
            "step": self.step,
            "episode": self.episode,
            "next_eval": self.next_eval,
            "next_checkpoint": self.next_checkpoint,
            "evaluations": self.evaluations,
            "train_wall_s": self.train_wall_s,
            "intervention_steps": self.intervention_steps,
            "demo_episodes": self.demo_episodes,
            "reward_confusion": self.reward_confusion,
        } | self.episode_state()
        if hasattr(self.agent, "episode_state_dict"):  # scripted phases, a task latent, ...
            state["agent_episode_state"] = self.agent.episode_state_dict()
        (tmp / "runner.json").write_text(json.dumps(state))
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng |= {f"torch_cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
        save_file(rng, str(tmp / "runner_rng.safetensors"))
        current_obs = self.current_obs()
        if current_obs:
            with open(tmp / "current_obs.npz", "wb") as f:
                np.savez(f, **current_obs)

    def episode_state(self) -> dict[str, Any]:
        """The episode in progress, for runner.json (its observation goes to current_obs.npz)."""
        state = {
            "episode_seed": self.episode_seed,
            "episode_actions": self.episode_actions,
            "episode_return": self.episode_return,
            "episode_interventions": self.episode_interventions,
            "episode_intervention_segments": self.episode_intervention_segments,
            "previous_intervened": self.previous_intervened,
            "in_episode": self.obs is not None,
        }
        if hasattr(self.hook, "state_dict"):  # a simulated operator, mid-episode
            state["hook_state"] = self.hook.state_dict()
        return state

    def current_obs(self) -> dict[str, np.ndarray]:
        """Arrays to save in current_obs.npz (empty between episodes)."""
        return dict(self.obs) if self.obs is not None else {}

    def restore(self, ckpt: Path) -> None:
        """Load runner state from ``ckpt`` and rebuild the episode in progress by replay."""
        where = ckpt / "runner.json"
        state = check_runner_state(read_json(where, "checkpoint"), where)
        try:
            self._restore(state, ckpt)
        except (KeyError, TypeError, AttributeError) as err:  # were bare, naming no file
            raise ValueError(f"{where} is damaged (an edited checkpoint?): "
                             f"{type(err).__name__}: {err}") from None

    def _restore(self, state: dict[str, Any], ckpt: Path) -> None:
        self.step = state["step"]
        self.episode = state["episode"]
        self.next_eval = state["next_eval"]
        self.next_checkpoint = state["next_checkpoint"]
        self.evaluations = state["evaluations"]
        self.train_wall_s = state["train_wall_s"]
        self.intervention_steps = state.get("intervention_steps", 0)
        self.demo_episodes = state.get("demo_episodes", 0)
        self.reward_confusion = state.get("reward_confusion", {})
        rng_file = ckpt / "runner_rng.safetensors"
        rng = read_tensors(rng_file, "checkpoint")
        try:  # a missing key blamed runner.json; a wrong size was torch's RuntimeError
            torch.set_rng_state(rng["torch_cpu"])
            if torch.cuda.is_available():
                states = [rng[k] for k in sorted(rng) if k.startswith("torch_cuda")]
                if states:
                    torch.cuda.set_rng_state_all(states)
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{rng_file} is damaged (an edited checkpoint?): "
                             f"{type(err).__name__}: {err}") from None
        self.restore_episodes(state, ckpt)
        # The replay stepped the env, not the agent: its per-episode state comes from the file
        # (after restore_episodes' agent.reset, which would otherwise start the script over).
        if hasattr(self.agent, "load_episode_state_dict"):
            if "agent_episode_state" in state:
                self.agent.load_episode_state_dict(state["agent_episode_state"])
            elif state.get("in_episode") or any(w.get("in_episode")
                                                for w in state.get("worlds", [])):
                warnings.warn(f"{ckpt} was written before agents' per-episode state was "
                              "checkpointed: the episode in progress continues from the agent's "
                              "reset, so this run will not equal an uninterrupted one",
                              UserWarning, stacklevel=2)

    def restore_episodes(self, state: dict[str, Any], ckpt: Path) -> None:
        """Rebuild the episode in progress: reset with its seed, replay its executed actions."""
        self.episode_seed = state["episode_seed"]
        self.episode_actions = state["episode_actions"]
        self.episode_return = state["episode_return"]
        self.episode_interventions = state["episode_interventions"]
        self.episode_intervention_segments = state.get("episode_intervention_segments", 0)
        self.previous_intervened = state.get("previous_intervened", False)
        self.saved_hook_state = state.get("hook_state")
        self.obs = None
        if state["in_episode"]:
            self.agent.reset(seed=self.episode_seed)
            obs, _ = self.env.reset(seed=self.episode_seed)
            for action in self.episode_actions:
                obs, *_ = self.env.step(np.asarray(action, dtype=self.env.action_space.dtype))
            saved = read_saved_observations(ckpt / "current_obs.npz", obs)
            if not all(np.array_equal(saved[k], obs[k]) for k in obs):
                raise RuntimeError(
                    "replaying the interrupted episode did not reproduce the saved "
                    "observation: the env is not deterministic under a fixed seed, so this "
                    "run cannot resume exactly; start a new out_dir"
                )
            self.obs = obs

    # ------------------------------------------------------------------ evaluation
    def run_evaluation(self, writer: Any) -> dict[str, Any]:
        """Evaluate on the training env (without a learner's own verdict on where trials
        end, `scored_env`); call between episodes or at the very end only.

        The agent's per-episode state (``episode_state_dict``) is put back afterwards: the final
        evaluation may cut a training episode that the checkpoint continues.
        """
        episode_state = (self.agent.episode_state_dict()
                         if hasattr(self.agent, "episode_state_dict") else None)
        records = evaluate(scored_env(self.env), self.agent, len(self.eval_seeds),
                           self.eval_seeds)
        if episode_state is not None:
            self.agent.load_episode_state_dict(episode_state)
        summary = summarize(records)
        entry = {"env_steps": self.step, "wall_clock_s": self.train_wall_s, "summary": summary,
                 "episodes": [r.to_dict() for r in records]}
        if self.reward_confusion:
            entry["reward_confusion"] = dict(self.reward_confusion)
        self.evaluations.append(entry)
        for key in ("success_rate", "mean_return", "cycle_time_s_mean", "peak_force_n_mean"):
            writer.add_scalar(f"eval/{key}", summary[key], self.step)
        write_json(self.out_dir / "evaluations.json", self.evaluations, non_finite="null")
        plot_learning_curve(self.evaluations, self.out_dir / "learning_curve.png",
                            title=f"{self.description['agent']} on {self.description['task_id']}")
        return summary


def check_agent_frame(spec: AgentSpec, env_kwargs: Mapping[str, Any]) -> None:
    """ValueError for a blind search baseline on `obs_frame="task"`: with `tcp_pose` measured
    from the nominal start above the socket, its "hold the start x, y" steered to the socket,
    and a baseline that must search scored as one told where the socket is."""
    if getattr(spec.cls, "holds_start_xy", False) and env_kwargs.get("obs_frame") == "task":
        raise ValueError(f"{spec.name} searches around the x, y an episode starts at, read from "
                         "tcp_pose in the start frame; with obs_frame='task' tcp_pose is "
                         "measured from above the socket, so it would be told where the "
                         "socket is: leave obs_frame at 'start'")


def check_demo_episodes(demo_episodes: int | None, agent_name: str,
                        needed: bool = False) -> None:
    """ValueError unless `demo_episodes` (None: the default) is a count in [0,
    MAX_EVAL_EPISODES], and, where the agent `needed` demonstrations and has no other data, at
    least 1 (`train` and `train-async`)."""
    if demo_episodes is None:
        return
    if (isinstance(demo_episodes, bool) or not isinstance(demo_episodes, int)
            or not 0 <= demo_episodes <= MAX_EVAL_EPISODES):
        # < 0 trained without any demos; 10^9 built a set of a billion seeds (MemoryError)
        raise ValueError(f"demo_episodes must be in [0, {MAX_EVAL_EPISODES:,}], got "
                         f"{demo_episodes}")
    if needed and demo_episodes == 0:  # it used to mean the default: an explicit 0 got 20
        raise ValueError(f"{agent_name} learns from demonstrations: give demo_episodes "
                         f">= 1 (default {DEFAULT_DEMO_EPISODES}) or demos")


def check_intervention_source(agent_name: str, config: Any, env: gym.Env,
                              hook: Any = None) -> None:
    """ValueError where an agent that learns from interventions would get none: its simulated
    operator turned off (``operator='none'``), and neither a hook (a device, ``--teleop``) nor
    an intervention wrapper on ``env`` to intervene instead (it trained as RLPD, HG-DAgger as
    BC, under its own name). A warning where its simulated operator can never act: no budget,
    or a reaction slower than an episode; said, not refused, as a budget of 0 is
    docs/results/serl.md's control (serl17: both ran with 0 interventions and no word)."""
    if hook is not None or _intervention_wrapped(env):  # a human's corrections: used how?
        # --teleop on an agent that ignores them ran without a word (serl21)
        cls = agent_spec(agent_name).cls  # a scripted baseline (learns=False): nothing to say
        demos = getattr(cls, "demos_from_interventions", False)
        if getattr(cls, "learns", True) and not demos:
            warnings.warn(f"{agent_name} keeps a human's corrections as its own transitions "
                          "(online buffer only); bc, hg_dagger, hil_serl and td3_lfd also "
                          "learn from them as demonstrations", UserWarning, stacklevel=3)
        elif demos and getattr(config, "online_updates_per_step", 1) == 0:
            warnings.warn(f"{agent_name} with online_updates_per_step=0 keeps a human's "
                          "corrections but never trains on them (hg_dagger, or -c "
                          "online_updates_per_step=1, does)", UserWarning, stacklevel=3)
    operator = getattr(config, "operator", None)
    if operator is None or hook is not None or _intervention_wrapped(env):
        return
    if operator == "none":
        raise ValueError(f"{agent_name} with operator='none' learns from a device's "
                         "interventions (--teleop) or an intervene hook, and none was given: "
                         "nothing would intervene")
    steps = env.spec.max_episode_steps if env.spec is not None else None
    idle = ("has no budget (operator_budget_start=0)" if config.operator_budget_start == 0 else
            f"reacts after operator_reaction_steps={config.operator_reaction_steps} straying "
            f"steps, and this task's episodes end after {steps}"
            if steps is not None and config.operator_reaction_steps >= steps else None)
    if idle:
        warnings.warn(f"{agent_name}'s simulated operator {idle}: nothing will intervene",
                      UserWarning, stacklevel=3)


def _intervention_wrapped(env: gym.Env) -> bool:
    """Whether a device intervenes through a wrapper of ``env`` (`envs.intervention`)."""
    from envs.intervention import InterventionWrapper

    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, InterventionWrapper):
            return True
        layer = layer.env
    return False


def count_reward_decision(confusion: dict[str, int], info: Mapping[str, Any]) -> None:
    """Add one step's learned-reward decision, judged by the simulator's success, to the counts
    {true,false}_{positives,negatives}."""
    truth, decision = bool(info.get("is_success", False)), bool(info["classifier_success"])
    key = f"{'true' if truth == decision else 'false'}_{'positives' if decision else 'negatives'}"
    confusion[key] = confusion.get(key, 0) + 1


def confusion_rates(confusion: Mapping[str, int]) -> dict[str, float]:
    """False-positive rate (of the steps that were not successes), false-negative rate (of
    those that were) and false-discovery rate (of the steps the classifier rewarded: the share
    of the learner's rewards that were false); empty without counts, a rate without its
    denominator is left out.

    The false-discovery rate is the one to read early in a run: the policy's states are nearly
    all failures, so 4 false positives among 1,535 such steps are a false-positive rate of
    0.003 but 4 of the 11 rewards the critic had seen (pixel VICE, Model-E-v1 at 1.5k steps).
    """
    negatives = confusion.get("true_negatives", 0) + confusion.get("false_positives", 0)
    positives = confusion.get("true_positives", 0) + confusion.get("false_negatives", 0)
    rewarded = confusion.get("true_positives", 0) + confusion.get("false_positives", 0)
    rates = {}
    if negatives:
        rates["false_positive_rate"] = confusion.get("false_positives", 0) / negatives
    if positives:
        rates["false_negative_rate"] = confusion.get("false_negatives", 0) / positives
    if rewarded:
        rates["false_discovery_rate"] = confusion.get("false_positives", 0) / rewarded
    return rates


def plot_learning_curve(evaluations: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Success rate with its 95% Wilson band, and mean return, against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [e["env_steps"] for e in evaluations]
    summaries = [e["summary"] for e in evaluations]
    fig, (ax_success, ax_return) = plt.subplots(1, 2, figsize=(9, 3.2))
    rates = [s["success_rate"] for s in summaries]
    lows = [s["success_ci95_low"] for s in summaries]
    highs = [s["success_ci95_high"] for s in summaries]
    ax_success.plot(steps, rates, marker="o")
    ax_success.fill_between(steps, lows, highs, alpha=0.25)
    if len(steps) == 1:  # a band over one step has no width: the interval as an error bar
        ax_success.errorbar(steps, rates, yerr=[[rates[0] - lows[0]], [highs[0] - rates[0]]],
                            capsize=4, color="C0")
    last = summaries[-1] if summaries else {}
    ax_success.set(xlabel="env steps", ylabel="success rate", ylim=(-0.02, 1.02),
                   title=f"band: 95% Wilson over {last.get('effective_trials', '?')} distinct "
                         f"of {last.get('episodes', '?')} episodes (last evaluation)")
    ax_success.title.set_fontsize(8)
    ax_return.plot(steps, [s["mean_return"] for s in summaries], marker="o")
    ax_return.set(xlabel="env steps", ylabel="mean evaluation return")
    fig.suptitle(title)
    fig.tight_layout()
    # Beside it, then renamed over it: savefig followed a symbolic link in a run folder handed
    # over for resuming, and wrote the PNG over the file it pointed to.
    with written_whole(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _new_run(out_dir: Path, description: dict[str, Any], env: gym.Env, agent: Agent,
             task_id: str, env_kwargs: Mapping[str, Any] | None, num_envs: int) -> _Run:
    """The run's state: one env (which also evaluates), or ``num_envs`` training worlds."""
    if num_envs == 1:
        return _Run(out_dir, description, env, agent)
    from benchmark.vector_train import VectorRun, make_worlds

    worlds = make_worlds(lambda: make_env(task_id, env_kwargs), num_envs)
    return VectorRun(out_dir, description, env, worlds, agent)


def intervention_source(hook: Callable[..., Any]) -> str:
    """What a run's ``intervene`` hook is, for its run.json: a teleop device by its class."""
    device = getattr(hook, "teleop", None)
    return type(device if device is not None else hook).__name__


def train(
    task_id: str,
    agent_name: str,
    seed: int = 0,
    steps: int = 10_000,
    config: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    eval_every: int = 5_000,
    eval_episodes: int = 10,
    checkpoint_every: int | None = None,
    demos: Dataset | str | Path | None = None,
    demo_episodes: int | None = None,
    log_every: int = 100,
    progress: bool | None = None,
    intervene: Callable[[Observation, np.ndarray], np.ndarray | None] | None = None,
    eval_seeds: Sequence[int] | None = None,
    num_envs: int = 1,
    stop_when: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> TrainResult:
    """Train ``agent_name`` on ``task_id`` for ``steps`` env steps, resuming if possible.

    Args:
        task_id: Gymnasium ID (``InsertBench/USB-v0``, or ``"module:ID"``).
        agent_name: registry name (``agents.agent_names()``).
        seed: run seed (torch, agent, training episode seeds).
        steps: total env steps of the run (a resumed run continues up to this).
        config: agent config overrides (dict; values may be strings from the CLI).
        env_kwargs: ``gym.make`` kwargs of the task.
        out_dir: run directory; default ``runs/<task>/<agent>/seed<seed>``.
        eval_every: evaluate at the first episode end after every ``eval_every`` steps; <= 0
            evaluates only at the end.
        eval_episodes: episodes per evaluation (fixed seeds, deterministic policy).
        eval_seeds: one env seed per evaluation episode; default ``EVAL_SEED_BASE + i``.
        checkpoint_every: checkpoint period [env steps]; default ``eval_every`` (or only at the
            end). A final checkpoint is always written.
        demos: a Dataset, a ``.npz`` dataset or an ``insertbench dataset collect`` directory
            (Minari), passed to ``agent.pretrain``.
        demo_episodes: if > 0 and ``demos`` is None, roll out the task's hand-designed
            controller for this many episodes as demonstrations. Agents that need demos
            (``td3_lfd``, ``bc``, ``rlpd``, ...) get ``DEFAULT_DEMO_EPISODES`` when neither is
            given (None) and refuse 0.
        log_every: TensorBoard period of the agent's update metrics [env steps].
        progress: show a progress bar; None (default) shows it only on a terminal.
        intervene: human-in-the-loop hook (HIL-SERL): called with (obs, agent action) every
            training step; a returned action is executed instead and the transition is marked
            ``intervened``. Without it, an agent's own ``operator`` attribute (a simulated
            operator, ``agents.operator``) is the hook. If the env itself executes a human
            action (``envs.intervention.InterventionWrapper``: ``info["intervened"]``), the
            executed ``info["action"]`` is what the transition stores. Per-episode intervention
            rate, steps and segments go to TensorBoard.
        num_envs: worlds stepped at once on threads (``benchmark.vector_train``, which says
            what it refuses); ``steps`` must be a multiple. 1 (default) is the single-env loop.
        stop_when: early stop: called with the summaries of the evaluations so far (oldest
            first) after every periodic evaluation; True ends training there, before ``steps``
            (the last evaluation is then the final one). A resumed run whose evaluations
            already meet it trains no further.
    """
    if not 0 <= steps <= MAX_TRAIN_STEPS:  # 2**63 - 1 started, with a 10^12-hour ETA
        raise ValueError(f"steps must be in [0, {MAX_TRAIN_STEPS:,}], got {steps}")
    seed = check_seed(seed)  # NumPy refuses < 0 and torch >= 2**64, once out_dir exists
    if not 0 <= eval_episodes <= MAX_EVAL_EPISODES:
        raise ValueError(f"eval_episodes must be in [0, {MAX_EVAL_EPISODES:,}], got "
                         f"{eval_episodes}")
    check_demo_episodes(demo_episodes, agent_name)
    if demos is not None and demo_episodes:  # else demo_episodes was silently ignored
        raise ValueError(f"give demos ({demos if isinstance(demos, str | Path) else 'a dataset'})"
                         f" or demo_episodes ({demo_episodes}), not both")
    out_dir = Path(out_dir) if out_dir is not None else _default_out_dir(task_id, agent_name, seed)
    # A resumed run reads its own copy (demos.npz), never the demos again: one whose folder had
    # moved, or was being extended, was refused ("do not exist", "unfinished collection").
    resuming = run_checkpoint_dir(out_dir) is not None and (out_dir / "run.json").is_file()
    if isinstance(demos, str | Path) and not resuming and not Path(demos).exists():
        # was a FileNotFoundError traceback line, after the run directory was made
        raise ValueError(f"demos {demos} do not exist: give a saved Dataset (.npz) or an "
                         "`insertbench dataset collect` / `recipe` folder")
    spec = agent_spec(agent_name)
    check_agent_frame(spec, env_kwargs or {})
    from torch.utils.tensorboard import SummaryWriter

    if eval_seeds is None:
        eval_seeds = eval_seed_list(eval_episodes)
    eval_seeds = [int(s) for s in eval_seeds]
    if len(eval_seeds) != eval_episodes:
        raise ValueError(f"got {len(eval_seeds)} eval_seeds for eval_episodes={eval_episodes}")
    clash = seed_clash(seed, eval_seeds)
    if clash:
        raise ValueError(clash)
    if not getattr(spec.cls, "learns", True) and (demos is not None or demo_episodes):
        # They were loaded, copied into the run (demos.npz) and ignored without a word.
        warnings.warn(f"{agent_name} is a scripted baseline and learns nothing: the "
                      f"{'demos' if demos is not None else 'demo_episodes'} given are ignored",
                      UserWarning, stacklevel=2)
        demos, demo_episodes = None, 0
    if spec.needs_context and resuming and not (out_dir / "context.npz").is_file():
        # An AWAC run from before it was given the target task's demos (2026-12-07): a
        # checkpoint of a newer one follows adapt, and its context.npz.
        warnings.warn(f"{out_dir} trained {agent_name} without the target task's "
                      "demonstrations (a run from before they were given): it resumes so; a "
                      "new run gets them", UserWarning, stacklevel=2)
    if spec.needs_labels and demos is None:  # trained and evaluated nothing: "learns online"
        raise ValueError(f"{agent_name} trains on calibrated offline data (a socket_offset_m "
                         "column): give demos from `insertbench dataset recipe paper001`")
    if spec.needs_demos and demos is None:
        check_demo_episodes(demo_episodes, agent_name, needed=True)
        demo_episodes = demo_episodes or DEFAULT_DEMO_EPISODES
    demo_episodes = demo_episodes or 0
    built = build_config(spec.config_cls, dict(config or {}))
    check_config_device(built)  # here, before out_dir is made (make_agent says it later)
    if isinstance(demos, str | Path) and not resuming:
        imitates = getattr(spec.cls, "imitates_every_row", False)
        # The built config's: "-c reward_classifier=false" is a truthy string until converted
        check_demos_folder(Path(demos), task_id, env_kwargs or {},
                           agent_name if imitates else None,
                           relabelled=bool(getattr(built, "reward_classifier", False))
                           or not getattr(spec.cls, "reads_rewards", True),
                           demo_learner=agent_name if spec.needs_demos else None)
    # ODA records DEFAULT_DEMO_EPISODES demonstrations of the target task to infer it from;
    # VICE may record failures, from seeds of their own.
    context_episodes = DEFAULT_DEMO_EPISODES if spec.needs_context else 0
    clash = demo_seed_clash(eval_seeds, max(demo_episodes, context_episodes),
                            getattr(built, "vice_failure_episodes", 0))
    if clash:
        raise ValueError(clash)
    full_config = config_to_dict(built)
    if num_envs != 1:
        from benchmark import vector_train

        vector_train.check_vector_training(spec, num_envs, steps, full_config, intervene,
                                           env_kwargs)
    if (getattr(built, "needs_task_ids", lambda: False)() and not resuming
            and not _has_task_ids(demos)):
        # The agent's pretrain said so, after demos were collected into a new run folder.
        raise ValueError(f"{agent_name} with these settings trains on a recipe's task_id "
                         "column (each row's connector); give --demos a folder from "
                         "`insertbench dataset recipe` (paper001 for IQL, paper004 for ODA)")
    if spec.needs_context and demo_episodes:  # the same episodes twice in AWAC's buffer
        raise ValueError(f"{agent_name} is given {DEFAULT_DEMO_EPISODES} demonstrations of the "
                         "target task before finetuning (adapt), from the seeds demo_episodes "
                         "would record: give offline data (demos) or neither")
    with run_lock(out_dir):
        description = _json_ready({
            "task_id": task_id,
            "agent": agent_name,
            "seed": seed,
            "config": full_config,
            "env_kwargs": dict(env_kwargs or {}),
            "eval_seeds": eval_seeds,
            "demos": (str(demos) if isinstance(demos, str | Path) else
                      "dataset object" if demos is not None else
                      {"p_controller_episodes": demo_episodes} if demo_episodes > 0 else None),
        } | ({"num_envs": num_envs} if num_envs != 1 else {})
            # The folder the demos name, as well as the name typed: resumed from another
            # working directory (or with ./data for data) the run read as another one.
            | ({"demos_path": str(Path(demos).resolve())} if isinstance(demos, str | Path)
               else {})
            # Who intervenes, when not the agent's own (simulated) operator: a resume with or
            # without --teleop changed the source mid-run, and run.json did not say which.
            | ({"interventions": intervention_source(intervene)} if intervene else {})
            # Which classifier rewards it: a relative reward_classifier is looked up anew.
            | ({"reward_classifier_sha256": digest}
               if (digest := classifier_sha256(task_id, env_kwargs or {})) else {}))
        ckpt = run_checkpoint_dir(out_dir)
        run_file = out_dir / "run.json"
        if ckpt is not None and not run_file.is_file():
            # Resuming would continue whatever agent the checkpoint holds, whatever was asked.
            raise ValueError(f"{out_dir} holds a checkpoint but no run.json, so it cannot be "
                             "checked to be this run; use another out_dir")
        if ckpt is not None:  # a damaged one said "Expecting value: line 1 column 1"
            previous = read_json(run_file, "run")
            changed = [k for k in RUN_KEYS if previous.get(k) != description.get(k)
                       and not (k == "demos" and "demos_path" in previous
                                and previous["demos_path"] == description.get("demos_path"))
                       and not (k == "env_kwargs"
                                and same_but_classifier_path(previous, description))]
            if changed:
                raise ValueError(
                    f"{out_dir} holds a different run (differs in {changed}"
                    # Another agent's config fields are no hint (td3 refuses sac's -c options).
                    + (f": a {previous.get('agent')} run, --agent {previous.get('agent')} "
                       "resumes it" if "agent" in changed else
                       _config_changes(previous.get('config'), description.get('config'),
                                       alone=changed == ["config"]))
                    + _run_changes(previous, changed)
                    + "); use another out_dir or the same settings to resume"
                )
            threads = previous.get("torch_threads")
            if isinstance(threads, int) and threads != torch.get_num_threads():
                # Its floats depend on the count: a resume under another one (another
                # machine's default) was taken without a word (newuser17).
                warnings.warn(f"{out_dir} trained on {threads} torch thread"
                              f"{'' if threads == 1 else 's'}, this resume on "
                              f"{torch.get_num_threads()}: its weights will not be an "
                              f"uninterrupted run's; --torch-threads {threads} resumes it as "
                              "one", UserWarning, stacklevel=2)
            check_same_classifier(previous.get("reward_classifier_sha256"),
                                  description.get("reward_classifier_sha256"), task_id,
                                  env_kwargs or {}, f"the run in {out_dir}")
            recorded = previous.get("task_version_key")
            key = (task_version_key_if_any(task_id, env_kwargs or {})
                   if isinstance(recorded, str) else None)
            if key is not None and key != recorded:  # a code change since (diff25)
                warnings.warn(f"{out_dir} was trained on {task_id} under task version key "
                              f"{recorded[:12]}; this code builds it as {key[:12]} (its "
                              "dynamics or score changed): the resumed run continues on the "
                              "new one, and its evaluations mix the two", UserWarning,
                              stacklevel=2)

        env = make_env(task_id, env_kwargs)
        dataset = None
        if ckpt is None:  # before the run exists: a NaN row trained NaN weights, +-50 actions ran
            try:
                dataset = load_demos(demos) if isinstance(demos, str | Path) else demos
                if dataset is not None:
                    source = f"demos {demos}" if isinstance(demos, str | Path) else "demos"
                    check_dataset_fits(dataset, env, source)
                    needed = getattr(spec.cls, "demo_columns", {})
                    missing = [f"{c!r} ({why})" for c, why in needed.items() if c not in dataset]
                    if missing:  # was refused by the agent, after the run folder was made
                        raise ValueError(f"{source} lack the column {', '.join(missing)} that "
                                         f"{agent_name} learns from")
                    check_dataset_values(dataset, [k for k in dataset["obs"]
                                                   if k in env.observation_space.spaces],
                                         env.action_space, source=source)
            except ValueError:
                env.close()
                raise
        # Only now: a bad task ID or kwarg is one error line, not a warning and an error.
        if ckpt is None and run_file.is_file():  # a rerun expects to resume: say it cannot
            warnings.warn(f"{out_dir} holds no checkpoint (the earlier run stopped before its "
                          f"first one): starting from step 0", UserWarning, stacklevel=2)
        kwargs: dict[str, Any] = {}
        if spec.needs_base_policy or (demo_episodes > 0 and demos is None and ckpt is None):
            base_policy = make_base_policy(env)
            if spec.needs_base_policy:
                kwargs["base_policy"] = base_policy
        torch.manual_seed(seed)
        if ckpt is not None:
            agent = load_agent(ckpt / "agent", **kwargs)
            # The runner's checkpoints hold every replay buffer: one missing (a damaged copy) used
            # to resume from an empty buffer without a word.
            missing = [f"replay_{name}.npz" for name in agent._checkpoint_buffers()
                       if not (ckpt / "agent" / f"replay_{name}.npz").is_file()]
            if missing:
                raise ValueError(f"{ckpt / 'agent'} lacks {', '.join(missing)} (a damaged "
                                 "checkpoint?): resuming would start from an empty replay buffer")
            check_reward_pairing(env, agent)
            check_action_scale(agent, env)
            _warn_below_learning_starts(agent_name, steps, full_config)
            env = end_trials_on_own_verdict(env, agent)
            run = _new_run(out_dir, description, env, agent, task_id, env_kwargs, num_envs)
            run.restore(ckpt)
            if run.step > steps:
                warnings.warn(
                    f"{out_dir} already holds {run.step} env steps, more than steps={steps}: "
                    "nothing to train (its evaluations are as they were)", UserWarning,
                    stacklevel=2,
                )
        else:
            try:
                agent = make_agent(agent_name, env.observation_space, env.action_space, full_config,
                                   seed=seed, **kwargs)
                check_reward_pairing(env, agent)
                check_action_scale(agent, env)
                env = end_trials_on_own_verdict(env, agent)
                check_intervention_source(agent_name, agent.config, env, intervene)
                # Before the run's folder holds anything: a controller that cannot make them
                # left run.json behind, and a rerun recorded them all again (diff23).
                if dataset is None and demo_episodes > 0:
                    dataset = _recorded_demos(env, base_policy, demo_episodes,
                                              kwargs.get("base_policy"), "; give demos")
                context = (_recorded_demos(env, make_base_policy(env), DEFAULT_DEMO_EPISODES,
                                           None, f": {agent_name} is given that many of the "
                                           "target task (paper 004)")
                           if spec.needs_context else None)
            except ValueError:
                # E.g. a config past the parameter budget: run_lock removes the folder it made.
                env.close()
                raise
            _warn_below_learning_starts(agent_name, steps, full_config)
            run = _new_run(out_dir, description, env, agent, task_id, env_kwargs, num_envs)
            run_file.write_text(json.dumps(
                description | {"git_commit": suite_commit(), "torch": torch.__version__,
                               "torch_threads": torch.get_num_threads(),
                               # what its demos.npz was recorded under (data19)
                               "task_version_key": task_version_key_if_any(task_id,
                                                                           env_kwargs or {})},
                indent=1
            ))
            run.next_eval = eval_every if eval_every > 0 else steps
            period = checkpoint_every if checkpoint_every is not None else eval_every
            run.next_checkpoint = period if period and period > 0 else steps
            if dataset is not None:
                dataset = add_failure_demos(env, agent, dataset)  # vice's recorded negatives
                save_dataset(out_dir / "demos.npz", dataset)
                ends = (np.asarray(dataset["terminated"], bool)
                        | np.asarray(dataset["truncated"], bool))
                recorded_failure = np.asarray(dataset.get("failure_demo", False), bool)
                run.demo_episodes = int(np.sum(ends & ~recorded_failure))  # demonstrations only
                started = time.perf_counter()
                offline_steps = full_config.get("pretrain_steps", 0)
                if offline_steps and (progress or progress is None and sys.stderr.isatty()):
                    # Minutes with no output read as a hung command (newuser22: AWAC's 10,000)
                    print(f"{agent_name}: {offline_steps:,} offline gradient steps on "
                          f"{len(dataset['action']):,} transitions before the first env step",
                          file=sys.stderr, flush=True)
                metrics = agent.pretrain(dataset)
                run.train_wall_s += time.perf_counter() - started
                write_json(out_dir / "pretrain.json", metrics, non_finite="null")
                if not spec.needs_context:  # else its checkpoint follows adapt(): one from before
                    # it (a kill while recording the context) resumed into "call adapt(demos)"
                    # Offline training can be long: keep it even if step 0 fails.
                    run.save_checkpoint()
            elif full_config.get("pretrain_steps", 0) > 0:  # else they were skipped without a word
                warnings.warn(
                    f"{agent_name} has no offline data (give demos or demo_episodes), so its "
                    f"pretrain_steps={full_config['pretrain_steps']} do not run: it learns online "
                    "only", UserWarning, stacklevel=2,
                )
            if spec.needs_context:
                # Paper 004: demonstrations of the target task, which ODA infers it from
                # (Algorithm 2) and AWAC finetunes with in its buffer (section 5.2).
                save_dataset(out_dir / "context.npz", context)
                agent.adapt(context)
                run.save_checkpoint()
        ckpt_period = checkpoint_every if checkpoint_every is not None else eval_every
        # VICE: from here on the env is rewarded by the agent's own classifier, not the
        # demonstrator.
        bind_reward_classifier(env, agent)

        # Interventions: the caller's hook, else the agent's own simulated operator (hil_serl,
        # hg_dagger), else none. Evaluation never intervenes.
        hook = intervene if intervene is not None else getattr(agent, "operator", None)
        run.hook = hook
        if run.saved_hook_state is not None and hasattr(hook, "load_state_dict"):
            hook.load_state_dict(run.saved_hook_state)  # after restore()'s agent.reset
        # Points logged after the checkpoint are purged; those at its own step (the episode
        # that ended there) came before it was written, and purge_step=run.step lost them.
        writer = SummaryWriter(str(out_dir / "tb"), purge_step=run.step + 1 if run.step else None)
        bar = tqdm(total=steps, initial=run.step,
                   disable=None if progress is None else not progress,
                   desc=f"{agent_name} {task_id.split(':')[-1]} s{seed}", unit="step")
        try:
            # A run that stopped early is finished: each rerun of its command trained another
            # evaluation period and changed its final evaluation (bench21)
            stopped = bool(stop_when is not None and run.evaluations
                           and stop_when([e["summary"] for e in run.evaluations]))
            if num_envs != 1 and not stopped:
                stopped = vector_train.run_loop(
                    run, seed=seed, steps=steps, eval_every=eval_every, eval_episodes=eval_episodes,
                    ckpt_period=ckpt_period, log_every=log_every, writer=writer, bar=bar,
                    stop_when=stop_when)
            while run.step < steps and not stopped:  # one env (a vector run has stopped already)
                started = time.perf_counter()
                if run.obs is None:
                    run.episode_seed = train_episode_seed(seed, run.episode)
                    run.episode += 1
                    agent.reset(seed=run.episode_seed)
                    if hasattr(hook, "reset"):  # a simulated operator: new episode, budget by step
                        hook.reset(run.episode_seed, run.step)
                    run.obs, _ = env.reset(seed=run.episode_seed)
                    run.episode_actions, run.episode_return = [], 0.0
                    run.episode_interventions = run.episode_intervention_segments = 0
                    run.previous_intervened = False
                action, next_obs, reward, terminated, truncated, info, intervened = act_and_step(
                    env, agent, run.obs, hook
                )
                if intervened:
                    run.episode_intervention_segments += int(not run.previous_intervened)
                    run.episode_interventions += 1
                    run.intervention_steps += 1
                run.previous_intervened = intervened
                run.count_reward(info)
                agent.observe(Transition(run.obs, action, float(reward), next_obs, terminated,
                                         truncated, info, intervened=intervened))
                metrics = agent.update()
                run.step += 1
                run.episode_actions.append(np.asarray(action, dtype=np.float64).tolist())
                run.episode_return += float(reward)
                run.train_wall_s += time.perf_counter() - started
                bar.update(1)
                run.log_update_metrics(metrics, writer, log_every)
                if terminated or truncated:
                    run.log_episode_end(writer, run.episode_return, info,
                                        len(run.episode_actions))
                    if hook is not None or run.episode_interventions:
                        writer.add_scalar("train/intervention_rate",
                                          run.episode_interventions / len(run.episode_actions),
                                          run.step)
                        writer.add_scalar("train/intervention_steps", run.episode_interventions,
                                          run.step)
                        writer.add_scalar("train/interventions", run.episode_intervention_segments,
                                          run.step)
                    run.obs = None
                    if (eval_every > 0 and eval_episodes > 0 and run.step >= run.next_eval
                            and run.step < steps):
                        summary = run.run_evaluation(writer)
                        bar.set_postfix(success=f"{summary['success_rate']:.2f}")
                        run.next_eval += eval_every * (1 + (run.step - run.next_eval) // eval_every)
                        stopped = stop_when is not None and stop_when(
                            [e["summary"] for e in run.evaluations])
                else:
                    run.obs = next_obs
                if ckpt_period and ckpt_period > 0 and run.step >= run.next_checkpoint:
                    run.next_checkpoint += ckpt_period
                    run.save_checkpoint()
            if eval_episodes > 0 and (
                not run.evaluations or run.evaluations[-1]["env_steps"] != run.step
            ):
                summary = run.run_evaluation(writer)  # the bar ended on an earlier one's rate
                bar.set_postfix(success=f"{summary['success_rate']:.2f}")
                if eval_every > 0 and run.step >= run.next_eval:  # owed no more: a run extended
                    # to more --steps evaluated this step again at its next episode end
                    run.next_eval += eval_every * (1 + (run.step - run.next_eval) // eval_every)
            # Evaluation may have cut the episode in progress; the checkpoint replays it on resume.
            run.save_checkpoint()
        finally:
            bar.close()
            writer.close()
            env.close()
            if num_envs != 1:
                run.worlds.close()
        return TrainResult(
            out_dir, agent, run.step, run.episode, run.train_wall_s,
            [Evaluation(e["env_steps"], e["wall_clock_s"], e["episodes"]) for e in run.evaluations],
            [e["summary"] for e in run.evaluations], run.demo_episodes, run.intervention_steps,
        )
