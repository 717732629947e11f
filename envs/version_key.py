"""Task version keys: a hash of everything that changes a task's dynamics or its score.

``task_version_key(task_id, env_kwargs)`` hashes, as canonical JSON:

- the registered ID, its entry point and time limit (episode length);
- every constructor argument after defaults are filled in (the registry's kwargs, the caller's,
  and the signature defaults of the env class, and of `InsertionEnv` for the envs that pass
  ``**env_kwargs`` on to it): goal noise, offsets, observation mode, reward, controller rates
  and scales, ...; one task spelled two ways is hashed once (`_canonical`: a timestep equal to
  the task's own, a square image size as a pair, camera settings where no camera is rendered);
- the task spec(s) with their connector geometry, clearances, forces and colours (the NIST
  board's parts, a family's member connectors);
- the scene and physics parameters (`envs.scene.SceneConfig`: timestep, contact solref/solimp,
  impedance gains and reference limits), the reward constants (`envs.rewards`);
- the scorer (`envs.episode.SCORER_VERSION`, `FORCE_LIMIT_N`, `FORCE_LIMIT_FACTOR`; a NIST
  sequence's also `SEQUENCE_SCORER_VERSION`).

Nothing here is a hand-maintained number: change a connector's clearance, a gain or a default
and the key changes. Leaderboard entries are ranked only against entries with equal keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

#: Hex digits shown in tables (`insertbench list`); the ledger stores the full key.
SHORT_KEY_LENGTH = 12
#: `dataclasses.field` metadata of a field added after keys were published: it is hashed only
#: where it differs from its default, so the keys of every task that leaves it at the default
#: (all that existed before it) stay as they were.
ADDED_FIELD = {"version_key": "hash_if_set"}

#: Revision of the PyBullet model (`envs.bullet`), raised by every change there that changes what
#: an episode does: its episodes' version keys name it, so that stored episodes of an earlier
#: model are not taken for this one's. 1: until 2026-12-06. 2: the tool body's inertia on its own
#: axes with the arm's joint damping, and `wrench`'s torque about the wrist, as MuJoCo's F/T
#: sensor reads it (it was about the TCP). 3 (2026-12-06): the housing's wall pieces one body
#: each (as one compound shape Bullet lost contacts between them and the plug's pieces). 4
#: (2026-12-07): the arm's joint damping on the tool's own axes only, as its inertia (the
#: coupling terms pushed a straight descent sideways, the other way to MuJoCo's swing).
PYBULLET_REVISION = 4


def pybullet_key_prefix(revision: int = PYBULLET_REVISION) -> str:
    """What a PyBullet episode's task version key starts with, before the MuJoCo task's key: the
    engine and its model's revision (the same task in another engine, or in another model of
    it, is another benchmark task). Revision 1's is "pybullet"."""
    return "pybullet" if revision == 1 else f"pybullet{revision}"


def _plain(value: Any) -> Any:
    """JSON-ready data: dataclasses -> dicts, tuples -> lists, numbers -> float (so 1 == 1.0)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata != ADDED_FIELD or getattr(value, f.name) != f.default
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        value = value.tolist()
        if isinstance(value, list):
            return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) + 0.0  # goal_noise_mm=1 and =1.0 are the same task, as -0.0 and 0.0
    return repr(value)


def _defaults(cls: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty and name != "render_mode"
    }


def _entry_class(spec: gym.envs.registration.EnvSpec) -> Any:
    from envs import InsertionEnv, make_task_env, registered_entry

    entry = registered_entry(spec)
    return InsertionEnv if entry is make_task_env else entry


def version_data(task_id: str, env_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything the key of ``task_id`` with ``env_kwargs`` is computed from (plain data)."""
    from envs import rewards
    from envs.episode import (
        FORCE_LIMIT_FACTOR,
        FORCE_LIMIT_N,
        SCORER_VERSION,
        SEQUENCE_SCORER_VERSION,
    )
    from envs.family import ConnectorFamilyEnv
    from envs.insertion_env import InsertionEnv
    from envs.nist_board import NISTBoardEnv, nist_task
    from envs.scene import SceneConfig
    from envs.tasks import task_spec

    module, _, plain_id = task_id.rpartition(":")
    if module:  # Gymnasium's "module:ID", as gym.make takes it (gym.spec does not)
        importlib.import_module(module)
    spec = gym.spec(plain_id)
    cls = _entry_class(spec)
    _check_kwargs(plain_id, cls, dict(env_kwargs or {}))
    kwargs = _defaults(cls) | dict(spec.kwargs) | dict(env_kwargs or {})
    if isinstance(kwargs.get("task"), str):  # registered by ID: the key hashes the spec itself
        kwargs["task"] = task_spec(kwargs["task"])
    kwargs.pop("render_mode", None)
    max_episode_steps = kwargs.pop("max_episode_steps", spec.max_episode_steps)  # gym.make's
    if cls is InsertionEnv:
        kwargs = _canonical(kwargs, [kwargs["task"]])
    members: list[Any] = []
    scorer = {"version": SCORER_VERSION, "force_limit_n": FORCE_LIMIT_N,
              "force_limit_factor": FORCE_LIMIT_FACTOR}
    if cls is not InsertionEnv:
        known = set(_defaults(cls))
        inner = {k: v for k, v in kwargs.items() if k not in known}
        kwargs = {k: v for k, v in kwargs.items() if k in known} | {
            "member_kwargs": _defaults(InsertionEnv) | inner
        }
        if cls is NISTBoardEnv:
            parts = kwargs["sequence"] if kwargs["part"] == "sequence" else (kwargs["part"],)
            members = [nist_task(p) for p in parts]
            steps_per_part = kwargs["steps_per_part"]
            if len(parts) == 1 and max_episode_steps not in (None, -1) and (
                    isinstance(steps_per_part, int | np.integer)
                    and not isinstance(steps_per_part, bool)
                    and max_episode_steps > steps_per_part):  # np.int64(50) skipped it
                # The part ends itself: the key (and the results) said 100 for 50-step episodes.
                raise ValueError(f"max_episode_steps={max_episode_steps} is never reached: "
                                 f"{plain_id} ends its part after steps_per_part="
                                 f"{steps_per_part} steps itself; give steps_per_part="
                                 f"{max_episode_steps}")
            if len(parts) > 1:  # only a sequence hands over between parts' frames
                scorer["sequence"] = SEQUENCE_SCORER_VERSION
        elif cls is ConnectorFamilyEnv:
            members = _family_members(kwargs)
        kwargs["member_kwargs"] = _canonical(kwargs["member_kwargs"], members)
    timestep = kwargs.get("timestep", kwargs.get("member_kwargs", {}).get("timestep", 0.002))
    return _plain({
        "task_id": task_id,
        "entry_point": f"{cls.__module__}.{cls.__qualname__}",
        "max_episode_steps": max_episode_steps,
        "kwargs": kwargs,
        "members": members,
        "scene": SceneConfig(timestep=timestep),
        "rewards": {k: v for k, v in vars(rewards).items() if k.isupper()},
        "scorer": scorer,
    })


def _check_kwargs(task_id: str, cls: Any, env_kwargs: dict[str, Any]) -> None:
    """TypeError for a kwarg the env does not take, ValueError for a non-finite number, each
    naming it: a misspelt kwarg had a key of its own (every env refuses it), and NaN failed
    as JSON's "Out of range float values are not JSON compliant" (envs19). Values are the
    env's to check when it is made."""
    from envs.insertion_env import InsertionEnv, check_env_kwargs

    check_env_kwargs(task_id, (k for k in env_kwargs if k != "max_episode_steps"),
                     None if cls is InsertionEnv else cls.__init__)
    for name, value in env_kwargs.items():
        numbers = np.asarray(_plain(value), dtype=object).ravel() if not isinstance(
            value, str) else []
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ValueError(f"{task_id}: {name} must be finite, got {value!r}")


def _canonical(kwargs: Mapping[str, Any], tasks: list[Any]) -> dict[str, Any]:
    """`InsertionEnv` kwargs with each way of spelling its default written as the default, so
    that one task has one key: a `timestep` equal to every task's own default (the signature's
    None), a square `image_size` as one number, the camera settings at their defaults where
    nothing is rendered for the observation or the reward, `obs_frame` at its default without
    a state observation (it places `tcp_pose` alone), and `action_scale_rad` at its default in
    `action_mode="xyz"` (no rotation is commanded)."""
    from envs.insertion_env import InsertionEnv
    from envs.task_options import TIMESTEP_RANGE_S, check_range

    if kwargs.get("timestep") is not None:  # as the env takes it: np.float32(0.002), the
        # bound, is 0.002 (widened, it was 0.0020000000949 and another key, envs18)
        kwargs = {**kwargs, "timestep": check_range("timestep", kwargs["timestep"],
                                                    *TIMESTEP_RANGE_S, " s")}
    kwargs = _plain(dict(kwargs))  # as hashed: np.array([64, 64]) is [64.0, 64.0], 1 is 1.0
    defaults = _defaults(InsertionEnv)
    if kwargs.get("noiseless") is True and tasks and all(
            t.dynamics.sensor.noiseless for t in tasks):  # v0: nothing to switch off
        kwargs["noiseless"] = defaults["noiseless"]
    timestep = kwargs.get("timestep")
    if (isinstance(timestep, float) and tasks
            and all(timestep == t.dynamics.timestep for t in tasks)):
        kwargs["timestep"] = None
    size = kwargs.get("image_size")
    if isinstance(size, list) and len(size) == 2 and isinstance(size[0], float) \
            and size[0] == size[1]:
        kwargs["image_size"] = size[0]
    if "pixels" not in str(kwargs.get("obs_mode")) and kwargs.get("reward") != "goal_image":
        for name in ("image_size", "grayscale", "cameras"):
            if name in kwargs:
                kwargs[name] = defaults[name]
    if "state" not in str(kwargs.get("obs_mode", defaults["obs_mode"])) and "obs_frame" in kwargs:
        kwargs["obs_frame"] = defaults["obs_frame"]
    if kwargs.get("action_mode", defaults["action_mode"]) == "xyz" \
            and "action_scale_rad" in kwargs:
        kwargs["action_scale_rad"] = _plain(defaults["action_scale_rad"])
    return kwargs


def _family_members(kwargs: Mapping[str, Any]) -> list[Any]:
    """The task specs of a connector family's members, without building their physics."""
    from envs.family import connector_names, connector_task, procedural_task

    version = kwargs.get("version", 0)
    if kwargs.get("connectors") is not None:
        return [connector_task(n, version) for n in kwargs["connectors"]]
    if kwargs["split"] == "procedural":
        first = kwargs["procedural_seed"]
        return [procedural_task(first + i) for i in range(kwargs["procedural_count"])]
    names = connector_names(kwargs["split"], kwargs["hold_out"])
    return [connector_task(n, version) for n in names]


def task_version_key(task_id: str, env_kwargs: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of `version_data`."""
    text = json.dumps(version_data(task_id, env_kwargs), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def task_version_key_if_any(task_id: str, env_kwargs: Mapping[str, Any] | None = None
                             ) -> str | None:
    """`task_version_key`, or None for a task it cannot key (a test's stand-in, an env that is
    no InsertBench task): what a record is compared with where it may be either."""
    try:
        return task_version_key(task_id, env_kwargs)
    except Exception:  # noqa: BLE001 - not an InsertBench task: nothing to compare
        return None
