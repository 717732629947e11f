"""The one Agent interface every InsertBench method implements.

The runner (``benchmark/``) owns the environment loop, the seeds and evaluation; an agent owns its
networks, replay buffers, data mixing and update-to-data (UTD) ratio. The runner drives every
method the same way::

    agent.pretrain(dataset)                  # offline phase (demos / offline data); {} if unused
    agent.adapt(context)                     # task inference from demos (meta-RL); no-op else
    for each episode:
        agent.reset(seed=episode_seed)       # clear per-episode state (scripted phases, latents)
        obs, _ = env.reset(seed=episode_seed)
        while not done:
            action = agent.act(obs, deterministic=False)
            # a human (HIL) may override `action` here; the runner then sets intervened=True
            next_obs, reward, terminated, truncated, info = env.step(action)
            agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, info,
                                     intervened=..., base_action=...))
            metrics = agent.update()         # zero, one or many gradient steps: the agent decides
    agent.save(path); load_agent(path)       # safetensors + JSON, never pickle

An agent with no per-episode state sets the class attribute ``concurrent_episodes = True``; the
runner may then interleave the episodes of N worlds (``train(..., num_envs=N)``), calling
``act`` / ``observe`` / ``update`` for each world's step in turn. A class whose per-episode
state depends on its config also defines ``vector_refusal(config) -> str | None`` (a static
method on the config dict), the reason that config cannot (None: it can).

An agent whose per-episode state changes during the episode (a scripted search's phase, ODA's
latent z inferred at ``reset``) also defines ``episode_state_dict()`` (JSON-able) and
``load_episode_state_dict(state)``: a checkpoint inside an episode is resumed by ``reset(seed)``
and a replay of the executed actions on the env, which never calls ``act``, so the runner stores
that state in its checkpoint and loads it after the replay (and puts it back after an
evaluation that cut the episode).

``Transition.action`` is always the action that was *executed* on the robot. Agents that learn on
a different action (residual RL learns on its residual) recover it themselves; see below.

How the papers' methods fit this interface (each implemented in the module named):

- **RLPD / SERL** (Ball et al. 2023; paper 002; ``rlpd.py``): an off-policy learner of its own
  (``OffPolicyAgent``) with LayerNorm critics (``networks.mlp``), a ``QEnsemble`` of ``num_qs``
  = 10 critics whose target takes the minimum over a random pair redrawn each update, the
  actor on the ensemble mean, ``utd_ratio`` gradient steps per ``update()`` call, and two
  ``ReplayBuffer`` s: ``pretrain(dataset)`` fills the demo buffer, ``observe`` the online
  buffer, and every batch is ``concat_batches`` of half from each (symmetric sampling). The
  runner does not change: UTD and mixing are config.
- **HIL-SERL** (paper 003; ``hil_serl.py``, operator in ``operator.py``):
  ``benchmark.train.train`` executes a human's action instead of the policy's when the hook (or
  an intervention wrapper) gives one and sets ``Transition.intervened=True`` (and logs the
  intervention rate); ``observe`` then adds the transition to *both* the demo and the online
  buffer, and policy transitions only to the online buffer. ``td3_lfd`` and ``bc`` route
  intervened transitions into their demo buffers the same way.
- **Residual RL** (paper 000, Algorithm 1; implemented in ``residual.py``): the executed action is
  ``clip(base_policy(obs) + residual)``; the agent stores the residual it sampled in ``act`` and
  puts (obs, residual) in its buffer. ``Transition.base_action`` lets a runner that already
  computed pi_H(s) pass it in; on an intervention the residual is re-derived from
  ``executed - base_action``.
- **IQL with a learned reward classifier** (LOTJ, paper 001; implemented in ``iql.py``):
  ``pretrain(dataset)`` trains the success classifier on the offline data's sparse rewards and
  runs the offline IQL phase (expectile value, AWR actor, DAIB from ``daib.py``); during online
  finetuning ``observe`` relabels ``reward`` and ``terminated`` with the classifier before
  storing (the env's reward is ignored). The domain labels are the dataset's ``task_id``.
- **AWAC** (Nair et al. 2020; paper 004's learner; ``awac.py``): ``pretrain`` = offline AWAC on
  the dataset, ``observe`` / ``update`` = online finetuning with the same loss; the offline data
  stays in the buffer; ``adapt(context)`` adds the new task's demonstrations to it before
  online finetuning (paper 004's baseline, section 5.2).
- **ODA / PEARL-style meta-RL** (paper 004; ``oda.py``): ``adapt(context)`` receives
  demonstrations of the new task (a ``Dataset``), runs the encoder q(z|c) and fixes the latent
  ``z`` that ``act`` and the critic are conditioned on; ``pretrain(dataset)`` meta-trains on a
  dataset with ``task_id`` and ``is_demo`` columns; online finetuning afterwards is ordinary
  ``observe`` / ``update``. The runner calls ``adapt`` for agents registered with
  ``needs_context=True`` (both).

Datasets (``pretrain`` and ``adapt``) are flat dictionaries of numpy arrays with one row per
transition, the same layout as ``ReplayBuffer`` storage and ``.npz`` files::

    {"obs": {"tcp_pose": (N, 6), "wrist": (N, 32, 32, 1) uint8, ...},
     "action": (N, A), "reward": (N,), "next_obs": {...},
     "terminated": (N,), "truncated": (N,), "intervened": (N,)}   # last three bool, optional

Extra columns (``is_success``, ``task_id``, ``base_action``: pi_H(s) for residual agents,
``failure_demo``: an operator's recorded failures for a reward classifier, ...) may ride along
for the methods that need them; ``ReplayBuffer`` ignores them. ``transitions_to_dataset``
builds a dataset from ``Transition`` s, ``take_rows`` selects rows, ``split_failure_demos``
separates the recorded failures (``vice``'s negatives, never a learner's demonstrations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: A dictionary observation as returned by the InsertBench envs (gymnasium ``Dict`` space sample).
Observation = Mapping[str, np.ndarray]
#: An offline dataset: one row per transition, see the module docstring.
Dataset = Mapping[str, Any]
#: A scripted / hand-designed controller: observation -> action in the env's action space.
BasePolicy = Callable[[Observation], np.ndarray]


@dataclass
class Transition:
    """One environment step as the runner saw it.

    Attributes:
        obs: observation before the step.
        action: the action that was executed on the env (after any human override or clipping).
        reward: the env's reward for this step.
        next_obs: observation after the step.
        terminated: the MDP reached a terminal state (no bootstrapping past it).
        truncated: the episode was cut by a time limit (bootstrapping continues).
        info: the env's info dict (``is_success``, ``max_force_n``, ...).
        intervened: True when a human (or any external controller) chose ``action`` instead of
            the agent (HIL-SERL interventions).
        base_action: pi_H(obs) of a residual agent's base controller if the runner computed it,
            else None.
    """

    obs: Observation
    action: np.ndarray
    reward: float
    next_obs: Observation
    terminated: bool
    truncated: bool
    info: Mapping[str, Any] = field(default_factory=dict)
    intervened: bool = False
    base_action: np.ndarray | None = None

    @property
    def blown_up(self) -> bool:
        """The step ended in a physics error: its reward and next observation are the last
        step's again (the env's stand-ins for a state MuJoCo reset), no outcome of ``action``,
        so no learner may store it; the episode ends there all the same."""
        return bool(self.info.get("physics_error"))


@runtime_checkable
class Agent(Protocol):
    """The interface every method implements. See the module docstring for the call order."""

    #: Registry name of the method (``"sac"``, ``"residual_td3"``, ...).
    name: str

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode: clear per-episode state; ``seed`` seeds per-episode randomness."""

    def act(self, obs: Observation, *, deterministic: bool) -> np.ndarray:
        """Action to execute for ``obs``, inside the action space (float32).

        ``deterministic=True`` is the evaluation policy (mean / noise-free action) and must not
        consume the training random streams.
        """

    def observe(self, transition: Transition) -> None:
        """Receive one executed env transition (store it; count env steps)."""

    def update(self) -> dict[str, float]:
        """Run the learner step(s) for one env step; returns scalar metrics ({} if none)."""

    def pretrain(self, dataset: Dataset) -> dict[str, float]:
        """Offline phase on demonstrations / offline data; returns scalar metrics."""

    def adapt(self, context: Dataset) -> None:
        """Infer the task from demonstrations of it (meta-RL); a no-op for other methods."""

    def save(self, path: str | Path, *, include_replay: bool = False) -> None:
        """Write a checkpoint directory (JSON + safetensors; replay buffers as .npz if asked)."""


def transitions_to_dataset(transitions: Sequence[Transition]) -> dict[str, Any]:
    """Stack a list of transitions into the flat ``Dataset`` layout (see module docstring)."""
    if not transitions:
        raise ValueError("transitions_to_dataset needs at least one transition, got none")
    keys = list(transitions[0].obs.keys())
    dataset = {
        "obs": {k: np.stack([np.asarray(t.obs[k]) for t in transitions]) for k in keys},
        "next_obs": {k: np.stack([np.asarray(t.next_obs[k]) for t in transitions]) for k in keys},
        "action": np.stack([np.asarray(t.action, dtype=np.float32) for t in transitions]),
        "reward": np.asarray([t.reward for t in transitions], dtype=np.float32),
        "terminated": np.asarray([t.terminated for t in transitions], dtype=bool),
        "truncated": np.asarray([t.truncated for t in transitions], dtype=bool),
        "intervened": np.asarray([t.intervened for t in transitions], dtype=bool),
    }
    if all(t.base_action is not None for t in transitions):  # residual agents' pi_H(s)
        dataset["base_action"] = np.stack([np.asarray(t.base_action, np.float64)
                                           for t in transitions])
    return dataset


def take_rows(dataset: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Rows ``rows`` (indices or a boolean mask) of every column of a dataset."""
    return {k: ({kk: np.asarray(vv)[rows] for kk, vv in v.items()} if isinstance(v, Mapping)
                else np.asarray(v)[rows]) for k, v in dataset.items()}


def split_failure_demos(dataset: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(demonstrations, recorded failures or None) by the ``failure_demo`` column; the
    demonstrations keep every other column, without it."""
    flags = dataset.get("failure_demo")
    if flags is None:
        return dict(dataset), None
    flags = np.asarray(flags, dtype=bool)
    columns = {k: v for k, v in dataset.items() if k != "failure_demo"}
    return take_rows(columns, ~flags), (take_rows(columns, flags) if flags.any() else None)
