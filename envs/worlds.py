"""What every InsertBench vector env does per world: step it under one of Gymnasium's autoreset
modes, and merge the worlds' infos into Gymnasium's vector infos.

Shared by the worlds on threads (`envs.vector`) and in worker processes (`envs.shard_worker`,
`envs.sharded_vector`), so both give what N single envs under `SyncVectorEnv` give.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from envs.task_options import check_seed, real_array, reset_options

#: A world's step: observation, reward, terminated, truncated, info, and with the "SameStep"
#: mode at an episode's end {"final_obs", "final_info"} (else None).
WorldStep = tuple[Any, float, bool, bool, dict, dict | None]


#: The most worlds one vector env builds: each is a MuJoCo model and data (and a thread or a
#: share of a worker process); 100,000 ended in "can't start new thread" after building
#: thousands. 1,024 CPU worlds already take gigabytes; GPU batching is another engine's job.
MAX_NUM_ENVS = 1024


def check_num_envs(num_envs: Any) -> int:
    """``num_envs`` as an int; ValueError unless it is an integer in [1, MAX_NUM_ENVS]."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) \
            or not 1 <= num_envs <= MAX_NUM_ENVS:
        raise ValueError(f"num_envs must be an integer in [1, {MAX_NUM_ENVS}], got {num_envs!r}")
    return int(num_envs)


def check_copy(copy: Any) -> bool:
    """A vector's ``copy`` flag; ValueError unless a bool (``copy="no"`` used to mean True)."""
    if not isinstance(copy, bool | np.bool_):
        raise ValueError(f"copy must be True or False, got {copy!r}")
    return bool(copy)


def autoreset_mode_of(mode: Any) -> AutoresetMode:
    """`mode` as an `AutoresetMode` (the enum or its value, e.g. "NextStep"); ValueError naming
    the modes otherwise."""
    try:
        return AutoresetMode(mode)
    except ValueError:
        raise ValueError(f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, "
                         f"got {mode!r}") from None


def step_world(env: gym.Env, index: int, action: Any, mode: AutoresetMode,
               ended: bool) -> WorldStep:
    """Step world `index` (whose last step `ended` its episode) as `SyncVectorEnv` would."""
    if mode == AutoresetMode.NEXT_STEP and ended:
        obs, info = env.reset()
        return obs, 0.0, False, False, info, None
    if mode == AutoresetMode.DISABLED and ended:
        raise RuntimeError(f"world {index} ended its episode: reset it (autoreset is disabled)")
    obs, reward, terminated, truncated, info = env.step(action)
    final = None
    if mode == AutoresetMode.SAME_STEP and (terminated or truncated):
        final = {"final_obs": obs, "final_info": info}
        obs, info = env.reset()
    return obs, reward, terminated, truncated, info, final


def merge_world_infos(vector: VectorEnv, infos: list[tuple[dict, dict | None]]) -> dict[str, Any]:
    """Gymnasium's vector infos (value array and ``_key`` mask per key) of every world's
    (info, final) pair, in world order. The usual case, the same flat keys in every world and
    no final observation, is built a key at a time, with `VectorEnv._add_info`'s types; the
    rest goes through `_add_info` itself."""
    first = infos[0][0]
    keys = first.keys()
    flat = all(
        final is None and info.keys() == keys for info, final in infos
    ) and not any(isinstance(v, dict) for v in first.values())
    if not flat:
        merged: dict[str, Any] = {}
        for i, (info, final) in enumerate(infos):
            if final is not None:
                merged = vector._add_info(merged, final, i)
            merged = vector._add_info(merged, info, i)
        return merged
    n = len(infos)
    merged = {}
    for key, value in first.items():
        if type(value) in (int, float, bool) or isinstance(value, np.number):
            array = np.array([info[key] for info, _ in infos], dtype=type(value))
        elif isinstance(value, np.ndarray):
            array = np.empty((n, *value.shape), dtype=value.dtype)
            for i, (info, _) in enumerate(infos):
                array[i] = info[key]
        else:
            array = np.full(n, None, dtype=object)
            for i, (info, _) in enumerate(infos):
                array[i] = info[key]
        merged[key], merged[f"_{key}"] = array, np.ones(n, dtype=np.bool_)
    return merged


def batch_reset_args(num_envs: int, seed: int | list[int | None] | None, options: dict | None,
                     world: gym.Env) -> tuple[list[int | None], dict | None, np.ndarray]:
    """A vector reset's per-world seeds (an int means ``seed + i``, as `SyncVectorEnv`), the
    options for the worlds, and the bool mask of worlds to reset (``options["reset_mask"]``,
    all by default); ValueError on a bad seed, a wrong count of seeds or a bad mask, and the
    error a world's reset gives for bad options (asked of `world`, one of the vector's)."""
    if seed is None:
        seed = [None] * num_envs
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        seed = [int(seed) + i for i in range(num_envs)]
    elif not isinstance(seed, list | tuple | np.ndarray):  # a dict lent its keys as seeds
        raise ValueError(f"seed must be an int, a list of num_envs={num_envs} ints or None, "
                         f"got {seed!r}")
    if len(seed) != num_envs:
        raise ValueError(f"got {len(seed)} seeds for num_envs={num_envs}")
    # Checked here, before any world resets (in processes a world's error closes the vector).
    seed = [check_seed(s, f"seed {i}") for i, s in enumerate(seed)]
    options = reset_options(options) or None
    mask = np.ones(num_envs, bool)
    if options is not None and "reset_mask" in options:
        mask = np.asarray(options.pop("reset_mask"))
        if mask.shape != (num_envs,) or mask.dtype != np.bool_ or not mask.any():
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({num_envs},) "
                f"with at least one True, got {mask!r}"
            )
    world.unwrapped.check_reset_options(options)
    return list(seed), options or None, mask


def check_batch_actions(space: gym.Space, actions: Any, stepping: np.ndarray) -> None:
    """ValueError, before any world steps, unless a Box batch of actions has shape (num_envs,
    action dim) (Gymnasium's `iterate` would hand a (1, dim) batch to world 0 only and leave the
    rest unstepped) and the rows of the worlds that will step (`stepping`, a bool per world)
    are finite and inside the space, as each world's env requires: refused here, a bad row no
    longer leaves the other worlds a step ahead (which closed a vector in processes)."""
    if not isinstance(space, gym.spaces.Box):
        return
    try:
        shape = np.shape(actions)
    except ValueError:  # numpy's "inhomogeneous shape after 1 dimensions"
        shape = "a ragged batch"
    if shape != space.shape:
        raise ValueError(
            f"actions must have shape {space.shape} (num_envs, action dim), got {shape}"
        )
    try:
        a = real_array(actions, np.float64)
    except (TypeError, ValueError):  # "could not convert string to float" named no action
        raise ValueError(f"actions must be real numbers, got {actions!r}; no world "
                         "stepped") from None
    ok = np.all((a >= space.low - 1e-6) & (a <= space.high + 1e-6), axis=1)  # NaN: False
    bad = np.flatnonzero(~ok & stepping)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"actions[{i}] = {a[i]} is not finite or outside the action space "
            f"[{space.low[i].min()}, {space.high[i].max()}]; refused, no world stepped"
        )


def check_worlds_reset(was_reset: np.ndarray) -> None:
    """Gymnasium's ResetNeeded, before any world steps, while a world (`was_reset`: a bool per
    world) has never been reset: its env would refuse the step after the others had stepped,
    and in processes that error closed the vector."""
    if not was_reset.all():
        raise gym.error.ResetNeeded(
            f"call reset() before step(): world {int(np.flatnonzero(~was_reset)[0])} has "
            "never been reset; no world stepped"
        )


def check_same_process(owner_pid: int) -> None:
    """RuntimeError in a process other than the one that made the vector env (a fork): its
    worlds (threads, worker pipes, shared memory) belong to that process."""
    if os.getpid() != owner_pid:
        raise RuntimeError(
            f"this vector env was made in process {owner_pid}, not in this one "
            f"({os.getpid()}, a fork?): its worlds live there; make a new vector env here"
        )


def stepping_worlds(mode: AutoresetMode, ended: np.ndarray) -> np.ndarray:
    """The worlds whose next vector step calls their env's step (not an autoreset), `ended`
    marking those whose last step ended their episode; RuntimeError, before any world steps,
    if autoreset is disabled and one has ended (else the others would step a step ahead)."""
    if mode == AutoresetMode.DISABLED and ended.any():
        raise RuntimeError(f"world {int(np.flatnonzero(ended)[0])} ended its episode: reset it "
                           f"(autoreset is disabled); no world stepped")
    return ~ended if mode == AutoresetMode.NEXT_STEP else np.ones_like(ended)
