"""Learned rewards in the runner: frames labelled by rollouts, and the classifier-reward wrapper.

SERL / HIL-SERL replace the hand-written reward by a success classifier on camera images trained
from a few hundred labelled frames. Here:

- ``collect_frames`` rolls out the task's hand controller with per-episode action noise (so that
  some episodes succeed and some do not) with ``reward="dense"`` (no termination: a successful
  episode keeps producing positive frames) and labels every frame with the simulator's
  ``is_success``; frames keep their episode index so evaluation can hold out whole episodes.
- ``ClassifierRewardWrapper`` gives the learner ``reward = 1`` and ``terminated`` exactly when the
  classifier says success (threshold + optional sanity check), 0 otherwise. The simulator's
  success stays in ``info["is_success"]`` for evaluation only (no agent reads it); the
  classifier's output is in ``info["classifier_success"]`` / ``info["classifier_probability"]``.
- ``make_classifier_env`` is what ``benchmark.train.make_env`` does with the env kwargs
  ``reward="classifier", reward_classifier=<dir>``: it renders the cameras the classifier
  needs, at its image size, and hands the learner only the observation entries its
  ``obs_mode`` asked for.
- ``make_vice_env`` is what it does with ``reward="vice"``: the same wrapper around a
  state+pixels env, rewarded by the classifier that the ``vice`` agent trains online
  (``agents/vice.py``); ``bind_reward_classifier`` (called by the runner) plugs it in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.buffer import concat_batches
from agents.networks import is_image_space
from agents.reward_classifier import (
    CLASSIFIER_JSON,
    CLASSIFIER_WEIGHTS,
    load_classifier,
    select_space,
)
from benchmark.cells import MAX_EVAL_EPISODES, canonical_json
from envs.insertion_env import InsertionEnv
from envs.task_options import check_bool, check_cameras, check_image_size

#: Env reset seeds of classifier frames: disjoint from training, evaluation and demo seeds.
FRAME_SEED_BASE = 80_000_000
#: Env reset seeds of recorded failures (``collect_failure_demos``): disjoint from the others.
FAILURE_SEED_BASE = 85_000_000
#: Env kwargs of the frames that the run's env must share with them.
RENDER_KWARGS = ("image_size", "grayscale", "cameras")
#: Env kwargs that place `tcp_pose`'s origin (the start pose): a classifier that reads tcp_pose
#: (proprioception, the depth sanity check) must share them with the run. One trained 20 mm
#: above the seat rewarded nothing from 14 mm up, and from 50 mm up rewarded a plug 30 mm above
#: the socket, without a word.
FRAME_KWARGS = ("start_height_mm", "obs_frame")


def frame_settings(env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The `FRAME_KWARGS` of ``env_kwargs``, the env's defaults filled in."""
    return with_defaults(env_kwargs, FRAME_KWARGS)


def with_defaults(env_kwargs: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The kwargs ``names`` of ``env_kwargs``, `InsertionEnv`'s defaults where it has none."""
    params = inspect.signature(InsertionEnv).parameters
    return {k: env_kwargs.get(k, params[k].default) for k in names}


def collect_frames(
    task_id: str,
    env_kwargs: Mapping[str, Any],
    episodes: int,
    *,
    first_episode: int = 0,
    max_noise: float = 0.6,
    progress: str | None = None,
) -> dict[str, Any]:
    """Roll out the noisy hand controller; returns {"obs", "label", "episode"} per frame.

    Episode i uses seed ``FRAME_SEED_BASE + i`` and Gaussian action noise of std
    ``max_noise * u`` (``u`` uniform in [0, 1], seeded by the episode) in normalised units.
    ``progress``: a progress bar over the episodes, with this description.
    """
    from tqdm import tqdm

    from benchmark.train import make_base_policy

    importlib.import_module("envs")
    kwargs = dict(env_kwargs) | {"reward": "dense", "obs_mode": "state+pixels"}
    env = gym.make(task_id, **kwargs)
    controller = make_base_policy(env)
    low, high = env.action_space.low, env.action_space.high
    obs_rows: dict[str, list[np.ndarray]] = {k: [] for k in env.observation_space.spaces}
    labels: list[bool] = []
    episode_ids: list[int] = []
    for i in tqdm(range(first_episode, first_episode + episodes), desc=progress,
                  disable=progress is None):
        rng = np.random.default_rng(FRAME_SEED_BASE + i)
        noise = max_noise * rng.uniform()
        obs, info = env.reset(seed=FRAME_SEED_BASE + i)
        success, done = bool(info.get("is_success", False)), False
        while True:
            for k, v in obs.items():
                obs_rows[k].append(v)
            labels.append(success)
            episode_ids.append(i)
            if done:
                break
            action = controller(obs) + noise * rng.standard_normal(env.action_space.shape)
            obs, _, terminated, truncated, info = env.step(np.clip(action, low, high)
                                                           .astype(env.action_space.dtype))
            if info.get("physics_error"):  # the stand-in repeats the last frame, labelled False
                break  # (a seated frame went in twice, once labelled each way; data24)
            success, done = bool(info["is_success"]), terminated or truncated
    env.close()
    return {"obs": {k: np.stack(v) for k, v in obs_rows.items()},
            "label": np.asarray(labels, dtype=bool), "episode": np.asarray(episode_ids)}


def collect_failure_demos(env: gym.Env, episodes: int, radius_mm: tuple[float, float],
                          *, max_noise: float = 0.6) -> dict[str, Any]:
    """An operator's recorded failures, as a Dataset with a ``failure_demo`` column (all True).

    HIL-SERL's operators record negatives, and "potential false positive examples", for its
    success classifiers (paper 003, section 4.1). Here episode i (seed ``FAILURE_SEED_BASE + i``)
    is the hand controller aimed at the believed goal moved on x, y by a distance uniform in
    ``radius_mm`` [mm] in a uniform direction (world frame), with Gaussian action noise of std
    ``max_noise * u`` (``u`` uniform in [0, 1]) in normalised units: the plug goes down beside
    the socket, where a classifier that has only seen the demonstrations may call it seated.
    ``env`` is the run's VICE env before the classifier is bound, so ``reward`` is the
    demonstrator's success label; the ``vice`` agent keeps the unsuccessful frames.
    """
    from agents.base import Transition, transitions_to_dataset
    from benchmark.train import make_base_policy

    low, high = env.action_space.low, env.action_space.high
    transitions = []
    for i in range(episodes):
        rng = np.random.default_rng(FAILURE_SEED_BASE + i)
        radius, angle = rng.uniform(*radius_mm) / 1000.0, rng.uniform(0.0, 2.0 * np.pi)
        controller = make_base_policy(env, radius * np.array([np.cos(angle), np.sin(angle), 0.0]))
        noise = max_noise * rng.uniform()
        obs, _ = env.reset(seed=FAILURE_SEED_BASE + i)
        done = False
        while not done:
            action = np.clip(controller(obs) + noise * rng.standard_normal(low.shape), low, high)
            action = action.astype(env.action_space.dtype)
            next_obs, reward, terminated, truncated, info = env.step(action)
            transition = Transition(obs, action, float(reward), next_obs, terminated,
                                    truncated, info)
            if not transition.blown_up:
                transitions.append(transition)
            elif transitions and transitions[-1].next_obs is obs:  # the episode ends a step early
                transitions[-1] = dataclasses.replace(transitions[-1], truncated=True)
            obs, done = next_obs, terminated or truncated
    dataset = transitions_to_dataset(transitions)
    dataset["failure_demo"] = np.ones(len(transitions), dtype=bool)
    return dataset


def add_failure_demos(env: gym.Env, agent: Any, dataset: dict[str, Any]) -> dict[str, Any]:
    """``dataset`` plus the failure episodes a ``vice`` agent asks for
    (``vice_failure_episodes``), recorded on ``env``; unchanged for every other agent, or if it
    already holds recorded failures (a reused ``demos.npz``). The two share their columns."""
    episodes = getattr(getattr(agent, "config", None), "vice_failure_episodes", 0)
    if not episodes or "failure_demo" in dataset:
        return dataset
    failures = collect_failure_demos(env, episodes, agent.config.vice_failure_radius_mm)
    shared = {k: v for k, v in dataset.items() if k in failures}
    shared["failure_demo"] = np.zeros(len(dataset["action"]), dtype=bool)
    return concat_batches(shared, failures)


#: The first frame episode of a run's held-out check (`heldout_error_rates`): past every
#: episode `insertbench classifier train` can roll out (--episodes and --heldout-episodes are
#: each at most MAX_EVAL_EPISODES), so a static classifier is never scored on its own frames.
RUN_HELDOUT_FIRST_EPISODE = 2 * MAX_EVAL_EPISODES


def heldout_error_rates(task_id: str, env_kwargs: Mapping[str, Any], classifier: Any,
                        episodes: int, *, first_episode: int = RUN_HELDOUT_FIRST_EPISODE
                        ) -> dict[str, float]:
    """False-positive / false-negative rates of ``classifier``'s full decision (threshold +
    sanity check) on ``episodes`` noisy hand-controller rollouts (``collect_frames``) with the
    run's ``env_kwargs``, judged by the simulator's success.

    Held out from every classifier: a VICE classifier trains on the demonstrations and the
    policy's own states only, and a static one on frame episodes before
    `RUN_HELDOUT_FIRST_EPISODE` (episode 0 on was its own training frames). ``reward`` and
    ``reward_classifier`` of the run are dropped (the frames are labelled by the simulator).
    """
    from agents.reward_classifier import error_rates

    kwargs = {k: v for k, v in env_kwargs.items()
              if k not in ("reward", "reward_classifier", "obs_mode", "goal_hold_steps")}
    kwargs |= {k: v for k, v in classifier.meta.env_kwargs.items() if k in RENDER_KWARGS}
    frames = collect_frames(task_id, kwargs, episodes, first_episode=first_episode)
    return error_rates(classifier, frames) | {"episodes": float(episodes)}


def _decided_end(success: bool, terminated: bool, truncated: bool) -> tuple[bool, bool]:
    """(terminated, truncated) for the learner under a learned reward: terminated by the
    classifier's success alone. The env's own end is no decision of the classifier's:
    InsertionEnv's dense reward never terminates, but a NIST board part ends at the simulator's
    success, which as a termination the learner would read as a success worth nothing (and
    dropped, the episode ran on past the part's step limit, which stops counting once the part
    has ended). A truncation ends the episode without saying anything of its last state (the
    critic bootstraps through it)."""
    return bool(success), bool(truncated or (terminated and not success))


class ClassifierRewardWrapper(gym.Wrapper):
    """Reward and termination from a success classifier; see the module docstring."""

    def __init__(self, env: gym.Env, classifier: Any, keep_keys: list[str]):
        super().__init__(env)
        self.classifier = classifier
        self.keep_keys = list(keep_keys)
        self.observation_space = select_space(env.observation_space, self.keep_keys)

    def _keep(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: obs[k] for k in self.keep_keys}

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return self._keep(obs), info

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        success, probability = self.classifier.is_success(obs)
        info = dict(info) | {"classifier_success": success,
                             "classifier_probability": probability}
        return (self._keep(obs), float(success), *_decided_end(success, terminated, truncated),
                info)


class VICERewardWrapper(ClassifierRewardWrapper):
    """Rewarded by the classifier a VICE learner trains while it learns (``agents/vice.py``).

    The runner binds the agent's classifier with ``bind_reward_classifier`` after the
    demonstrations were recorded and before the first learner step. Until then the reward is
    the demonstrator's success label (``info["is_success"]``: a human demonstrator ends a
    demonstration when the plug is in, and VICE needs those goal frames); ``benchmark.train``
    binds it before its loop, so no learner transition carries that label.

    ``reward = terminated =`` the decision; the wrapped env's own ``terminated`` (a NIST board
    part's end at the simulator's success; InsertionEnv's dense reward never terminates) ends
    the episode as a truncation, which says nothing of the state to the learner.

    ``goal_hold_steps`` > 0: a demonstration goes on that many steps after its first success
    (the demonstrator holds the plug in, each frame labelled by whether it is still mated), so
    the goal frames also show the plug pushed home, not only at the first mated step. As
    HIL-SERL records its goal frames around the goal: on Model-E-v1 the first mated step is at
    8.7-8.9 mm and the seat at 9.75 mm, and VICE, whose negatives are every state the policy
    visits, learned to call the seated plug a failure (``benchmark.check_serl``,
    docs/results/serl.md).
    """

    def __init__(self, env: gym.Env, goal_hold_steps: int = 0):
        super().__init__(env, classifier=None, keep_keys=list(env.observation_space.spaces))
        self.goal_hold_steps = goal_hold_steps
        self.steps_since_goal = 0  # demonstration steps since its first success (0: none yet)

    def reset(self, **kwargs: Any):
        self.steps_since_goal = 0
        return super().reset(**kwargs)

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        if self.classifier is None:  # the demonstrator's label
            success = bool(info["is_success"])
            if success or self.steps_since_goal:
                self.steps_since_goal += 1
            done = self.steps_since_goal > self.goal_hold_steps
            return obs, float(success), done, truncated, info
        success, probability = self.classifier.is_success(obs)
        info = dict(info) | {"classifier_success": success, "classifier_probability": probability}
        return obs, float(success), *_decided_end(success, terminated, truncated), info


def make_vice_env(task_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env:
    """``task_id`` with ``reward="vice"``: state + camera observations (the policy picks its
    entries with the agent's ``obs_keys``, the classifier reads the cameras), dense reward
    underneath (it never terminates on the simulator's success) replaced by the wrapper's.
    ``goal_hold_steps`` (default 0) is the wrapper's, not the task's."""
    kwargs = dict(env_kwargs)
    kwargs.pop("reward")
    hold = kwargs.pop("goal_hold_steps", 0)
    if not isinstance(hold, int) or isinstance(hold, bool) or hold < 0:
        raise ValueError(f"goal_hold_steps must be an integer >= 0, got {hold!r}")
    obs_mode = kwargs.pop("obs_mode", "state+pixels")
    if obs_mode != "state+pixels":
        raise ValueError(f"reward='vice' observes state+pixels (its classifier reads the "
                         f"cameras), got obs_mode={obs_mode!r}: choose the policy's inputs "
                         "with the agent's obs_keys instead")
    return VICERewardWrapper(_env_under_a_learned_reward(task_id, kwargs), goal_hold_steps=hold)


def _task_kwargs_under_a_learned_reward(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The kwargs of the task env a learned reward wraps (``kwargs`` without the wrapper's
    own): the dense reward and cameras."""
    return dict(kwargs) | {"reward": "dense", "obs_mode": "state+pixels"}


def evaluated_task_kwargs(task_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The kwargs of the task env that a run with ``env_kwargs`` makes and scores (the ones its
    episodes' task version key is of): the run's own, or under a learned reward
    (``reward="vice"`` or ``"classifier"``) the task it wraps, at the classifier's image
    settings; None where a classifier's settings cannot be read (a moved folder)."""
    kwargs = dict(env_kwargs)
    wrapper_kwargs = ("reward", "obs_mode", "goal_hold_steps")  # make_vice_env's
    if kwargs.get("reward") == "vice":
        return _task_kwargs_under_a_learned_reward(
            {k: v for k, v in kwargs.items() if k not in wrapper_kwargs})
    if kwargs.get("reward") != "classifier" and "reward_classifier" not in kwargs:
        return kwargs
    wrapper_kwargs = ("reward", "obs_mode", "reward_classifier")  # make_classifier_env's
    try:
        directory = classifier_directory(task_id, kwargs["reward_classifier"])
        with open(directory / CLASSIFIER_JSON, encoding="utf-8") as file:
            trained_on = json.load(file)["meta"]["env_kwargs"]
        render = {k: v for k, v in trained_on.items() if k in RENDER_KWARGS}
    except (OSError, KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    return _task_kwargs_under_a_learned_reward(
        {k: v for k, v in kwargs.items() if k not in wrapper_kwargs} | render)


def _env_under_a_learned_reward(task_id: str, kwargs: Mapping[str, Any]) -> gym.Env:
    """The task with the dense reward and cameras, for a learned reward to wrap; ValueError for
    the NIST board's sequence of parts, which moves to its next part at the simulator's success
    (the learner would see the true success in the part it is given next)."""
    env = gym.make(task_id, **_task_kwargs_under_a_learned_reward(kwargs))
    try:
        check_one_part(env, task_id)
    except ValueError:
        env.close()
        raise
    return env


def check_one_part(env: gym.Env, task_id: str) -> None:
    """ValueError for a sequence of parts (the NIST board's), which moves to its next part at
    the simulator's success: no learned reward may run on it."""
    if len(getattr(env.unwrapped, "parts", ())) > 1:
        raise ValueError(f"{task_id} moves to its next part at the simulator's success, which a "
                         "learned reward must not reveal: learn each part on its own task "
                         "(InsertBench/NISTBoard-<Part>-v0)")


class OwnVerdictWrapper(gym.Wrapper):
    """Ends a trial where the learner's own success classifier says success, as paper 001's
    practice trials end (``benchmark.bench_offline``): reward and termination are that verdict,
    and the env's own end a truncation (`_decided_end`). The learner rewards its transitions
    itself; this wrapper only decides where a trial ends, which must not be the simulator's
    success either."""

    def __init__(self, env: gym.Env, success: Callable[[Mapping[str, np.ndarray]], bool]):
        super().__init__(env)
        self.success = success

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        success = bool(self.success(obs))
        info = dict(info) | {"classifier_success": success}
        return obs, float(success), *_decided_end(success, terminated, truncated), info


def end_trials_on_own_verdict(env: gym.Env, agent: Any) -> gym.Env:
    """``env`` for ``agent``: wrapped in `OwnVerdictWrapper` when the agent learns a reward
    classifier of its own and rewards itself with it (IQL with ``reward_classifier=true``),
    else ``env`` itself. ValueError for an env that ends trials at the simulator's success (the
    sparse reward) or moves to its next part there (the NIST board): under `insertbench train`
    such a learner's trials ended there, so the learner saw the true success after all."""
    own_verdict = getattr(agent, "classifier_success", None)
    rewards_itself = getattr(getattr(agent, "config", None), "reward_classifier", False)
    if not rewards_itself or own_verdict is None:
        return env
    name = getattr(agent, "name", type(agent).__name__)
    task = env.unwrapped  # a family or NIST board part: its active InsertionEnv's reward
    reward = getattr(task, "reward_type", getattr(getattr(task, "active", None), "reward_type",
                                                  None))
    if reward == "sparse":
        raise ValueError(f"{name} with reward_classifier=true rewards itself with its classifier, "
                         "and the sparse reward ends each trial at the simulator's success, "
                         "which it must not see: train it with -e reward=dense")
    if len(getattr(task, "parts", ())) > 1:
        raise ValueError(f"{name} with reward_classifier=true must not see the simulator's "
                         "success, at which this task moves to its next part: learn each part "
                         "on its own task (InsertBench/NISTBoard-<Part>-v0)")
    return OwnVerdictWrapper(env, own_verdict)


def scored_env(env: gym.Env) -> gym.Env:
    """The env evaluation scores: ``env`` without an `OwnVerdictWrapper`, whose verdict ends
    training trials only (evaluation episodes ended where the learner's classifier said
    success, their rates hostage to it; `bench_offline` evaluates on the plain env too)."""
    return env.env if isinstance(env, OwnVerdictWrapper) else env


def find_vice_wrapper(env: gym.Env) -> VICERewardWrapper | None:
    """The ``VICERewardWrapper`` in ``env``'s wrapper chain, if any."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, VICERewardWrapper):
            return env
        env = env.env
    return None


def check_reward_pairing(env: gym.Env, agent: Any) -> None:
    """ValueError unless a VICE env and an agent with a ``reward_classifier`` come together."""
    wrapper, classifier = find_vice_wrapper(env), getattr(agent, "reward_classifier", None)
    if wrapper is not None and classifier is None:
        raise ValueError(f"reward='vice' needs an agent that learns its reward classifier "
                         f"(vice), got {getattr(agent, 'name', type(agent).__name__)}")
    if wrapper is None and classifier is not None:
        raise ValueError(f"agent {getattr(agent, 'name', '')} learns its own reward: train it "
                         "with the env kwarg reward='vice'")


def bind_reward_classifier(env: gym.Env, agent: Any) -> None:
    """Reward ``env`` (if it is a VICE env) with ``agent.reward_classifier`` from now on."""
    check_reward_pairing(env, agent)
    wrapper = find_vice_wrapper(env)
    if wrapper is not None:
        wrapper.classifier = agent.reward_classifier


def check_classifier_task(directory: Path, task_id: str) -> None:
    """ValueError if the classifier in ``directory`` was trained on another task than
    ``task_id``, as its ``report.json`` (written by ``insertbench classifier train``) records:
    a USB-v1 classifier used to reward a D-sub run without a word. A directory without the
    report (a classifier saved from Python) is not checked."""
    report = directory / "report.json"
    if not report.is_file():
        return
    try:
        trained_on = json.loads(report.read_text()).get("task_id")
    except (json.JSONDecodeError, AttributeError):
        return
    if trained_on is not None and trained_on != task_id:
        raise ValueError(f"the reward classifier in {directory} was trained on {trained_on}, "
                         f"not {task_id}; train one on it (`insertbench classifier train "
                         f"--task {task_id} ...`)")


def classifier_directory(task_id: str, reward_classifier: Any) -> Path:
    """The folder ``reward_classifier`` names for ``task_id``, in which ``{task}`` stands for the
    task's name without its namespace; ValueError for another ``{...}`` field."""
    try:
        return Path(str(reward_classifier).format(task=task_id.split("/")[-1]))
    except (KeyError, IndexError, ValueError, AttributeError):  # "{name}": KeyError: 'name'
        raise ValueError(f"reward_classifier may hold {{task}} and no other {{...}} field, got "
                         f"{reward_classifier!r}") from None


def _looked_up(directory: Path) -> str:
    return "" if directory.is_absolute() else f" (a relative path, looked up from {Path.cwd()})"


def classifier_sha256(task_id: str, env_kwargs: Mapping[str, Any]) -> str | None:
    """SHA-256 of the reward classifier's files (its description and weights) that a run with
    ``env_kwargs`` is rewarded by on ``task_id``; None without one, or where its files cannot
    be read (building the env says why). A run records it: a relative ``reward_classifier`` is
    looked up from the working directory, where another classifier can stand under that name."""
    if env_kwargs.get("reward") != "classifier" or not env_kwargs.get("reward_classifier"):
        return None
    directory = classifier_directory(task_id, env_kwargs["reward_classifier"])
    digest = hashlib.sha256()
    try:
        for name in (CLASSIFIER_JSON, CLASSIFIER_WEIGHTS):
            digest.update((directory / name).read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def same_but_classifier_path(before: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether two run descriptions' env kwargs differ in `reward_classifier` alone, naming
    one classifier (its recorded SHA-256): a relative path is looked up from the working
    directory, so a run resumed from another one names its classifier otherwise (bench19:
    every spelling was refused there)."""
    recorded = before.get("reward_classifier_sha256")
    if recorded is None or recorded != now.get("reward_classifier_sha256"):
        return False
    kwargs = [dict(run.get("env_kwargs") or {}) for run in (before, now)]
    for k in kwargs:
        k.pop("reward_classifier", None)
    return kwargs[0] == kwargs[1]


def cells_with_another_classifier(cells: Sequence[Any], done: set[str],
                                  artifacts_root: Path) -> list[Any]:
    """The done cells (config hashes `done`) whose run recorded another reward classifier than
    the one their `reward_classifier` names now, from this working directory (the SHA-256 in
    their artifacts folder's run.json). A cell's hash names the classifier's folder, not its
    files: a store run on from another folder, or after a classifier was trained again in
    place, pooled two classifiers' results as one method without a word (serl23)."""
    now: dict[str, str | None] = {}
    other = []
    for cell in cells:
        if cell.config_hash not in done or not cell.env_kwargs.get("reward_classifier"):
            continue
        try:
            run = json.loads((artifacts_root / cell.short_hash / "run.json").read_text())
            recorded = run.get("reward_classifier_sha256")
        except (OSError, ValueError, AttributeError):  # no run.json: nothing recorded to compare
            continue
        identity = canonical_json([cell.task_id, dict(cell.env_kwargs)])
        if identity not in now:
            now[identity] = classifier_sha256(cell.task_id, cell.env_kwargs)
        if recorded and now[identity] and recorded != now[identity]:
            other.append(cell)
    return other


def check_same_classifier(recorded: str | None, now: str | None, task_id: str,
                          env_kwargs: Mapping[str, Any], what: str) -> None:
    """ValueError unless the classifier ``env_kwargs`` name now (``now``: its
    `classifier_sha256`) is the one ``what`` recorded (``recorded``; None, from before runs
    recorded it: unchecked). Resumed or evaluated from another folder, a relative path rewarded
    the run with another classifier of the same name without a word."""
    if recorded is None or now is None or now == recorded:
        return
    directory = classifier_directory(task_id, env_kwargs["reward_classifier"])
    raise ValueError(f"the reward classifier in {directory}{_looked_up(directory)} is not the "
                     f"one {what} was trained with (its files differ): run from the folder the "
                     "run was started in, or name that classifier's folder")


#: A render kwarg as the env takes it (its own checks): 32 and [32, 32] are one image size.
_RENDER_SETTING = {"image_size": check_image_size, "cameras": check_cameras,
                   "grayscale": lambda value: check_bool("grayscale", value)}


def make_classifier_env(task_id: str, env_kwargs: Mapping[str, Any]) -> gym.Env:
    """``task_id`` rewarded by a classifier; see the module docstring.

    ``env_kwargs`` are the run's: ``reward="classifier"`` and ``reward_classifier=<dir>``, a
    classifier directory (``insertbench classifier train``) in which ``{task}`` stands for the
    task's name without its namespace (``classifiers/{task}`` -> ``classifiers/USB-v0``).
    """
    kwargs = dict(env_kwargs)
    reward, directory = kwargs.pop("reward", None), kwargs.pop("reward_classifier", None)
    if reward != "classifier" or not directory:
        raise ValueError("a learned reward needs both reward='classifier' and "
                         f"reward_classifier=<dir>; got reward={reward!r}, "
                         f"reward_classifier={directory!r}")
    directory = classifier_directory(task_id, directory)
    try:
        classifier = load_classifier(directory)
    except FileNotFoundError as err:  # a user's typo, not an internal error
        raise ValueError(f"{err}{_looked_up(directory)}") from None
    check_classifier_task(directory, task_id)
    obs_mode = kwargs.pop("obs_mode", "state")
    # Every render setting, its default where the classifier's record leaves it out: a run's
    # `-e grayscale=true` passed this check and was refused later as the classifier file's
    # fault; `-e image_size=[32,32]` was refused beside a 32 px classifier (data17).
    render = {k: v for k, v in classifier.meta.env_kwargs.items() if k in RENDER_KWARGS}
    trained_on = with_defaults(render, RENDER_KWARGS)
    clash = {k: (kwargs[k], v) for k, v in trained_on.items()
             if k in kwargs and _RENDER_SETTING[k](kwargs[k]) != _RENDER_SETTING[k](v)}
    if clash:
        raise ValueError(f"env kwargs {clash} (run, classifier) differ from the frames the "
                         "classifier was trained on")
    frame = {k: v for k, v in classifier.meta.env_kwargs.items() if k in FRAME_KWARGS}
    run_frame = frame_settings(kwargs)
    clash = {k: (run_frame[k], v) for k, v in frame.items() if run_frame[k] != v}
    if clash:
        raise ValueError(f"env kwargs {clash} (run, classifier) differ from the frames the "
                         "classifier was trained on: it reads tcp_pose, whose origin they set")
    env = _env_under_a_learned_reward(task_id, kwargs | render)
    spaces = env.observation_space.spaces
    # An edited classifier.json (env_kwargs' image_size) built frames the classifier's CNN
    # cannot read: a torch shape error at the first step, naming no file.
    expected = classifier.observation_space.spaces
    problems = [f"{k} missing" if k not in spaces else
                f"{k} {spaces[k].shape} (classifier {expected[k].shape})"
                for k in classifier.meta.keys
                if k not in spaces or spaces[k].shape != expected[k].shape]
    if problems:
        env.close()
        detail = ", ".join(problems)
        raise ValueError(f"the reward classifier in {directory} reads observations this env "
                         f"does not make: {detail}; its env_kwargs "
                         f"{classifier.meta.env_kwargs} do not match its observation space")
    keep = [k for k, s in spaces.items()
            if (obs_mode == "state+pixels") or ((obs_mode == "pixels") == is_image_space(s))]
    return ClassifierRewardWrapper(env, classifier, keep)
