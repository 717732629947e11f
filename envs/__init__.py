"""InsertBench tasks: importing this package registers every task ID with Gymnasium.

import gymnasium as gym
import envs
env = gym.make("InsertBench/USB-v0", reward="sparse", goal_noise_mm=1.0)
"""

from __future__ import annotations

import functools
import os

# Headless by default: without a display, render offscreen through EGL (set MUJOCO_GL=osmesa
# for pure software rendering, or =glfw on a desktop).
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Without a GPU, EGL and OSMesa run on llvmpipe, which by default rasterises on a pool of threads
# per GL context; for 64x64 observation images the hand-offs cost more CPU than they save (camera
# cost per env step ~14% lower in paired runs). The same pixels either way (tested).
os.environ.setdefault("LP_NUM_THREADS", "0")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from envs.catalog import CATALOG  # noqa: E402
from envs.env_checker import EnvChecker  # noqa: E402
from envs.family import ConnectorFamilyEnv  # noqa: E402
from envs.insertion_env import InsertionEnv, check_env_kwargs, p_controller  # noqa: E402
from envs.nist_board import NIST_PARTS, NISTBoardEnv, nist_task  # noqa: E402
from envs.sharded_vector import ShardedVectorEnv  # noqa: E402
from envs.tasks import DYNAMICS, TASKS, TaskSpec, task_spec  # noqa: E402
from envs.vector import ThreadedVectorEnv, make_vector_env  # noqa: E402

__all__ = [
    "CATALOG",
    "ConnectorFamilyEnv",
    "InsertionEnv",
    "NISTBoardEnv",
    "NIST_PARTS",
    "TASKS",
    "ShardedVectorEnv",
    "TaskSpec",
    "ThreadedVectorEnv",
    "make_registered",
    "make_task_env",
    "make_vector_env",
    "p_controller",
    "task_spec",
]


def make_task_env(task: TaskSpec | str, **kwargs) -> InsertionEnv:
    """Entry point used by the Gymnasium registry (and by `real/` to read the same spec)."""
    spec = task_spec(task) if isinstance(task, str) else task
    check_env_kwargs(spec.env_id, kwargs)
    return InsertionEnv(spec, **kwargs)


# The kwargs that say which task a registered ID is: a different value would run another task
# under this ID's name (and its results would be filed under it).
IDENTITY_KWARGS = {
    "task": lambda v: task_spec(v).env_id if isinstance(v, str) else getattr(v, "env_id", None),
    "part": lambda v: nist_task(v).env_id if v in NIST_PARTS else None,
    "version": lambda v: (f"InsertBench/ConnectorFamily-v{v}" if isinstance(v, int | np.integer)
                          and not isinstance(v, bool) and v in DYNAMICS else None),
}


def make_registered(entry, env_id: str, **kwargs):
    """Gymnasium's entry point for ``env_id``: ``entry(**kwargs)``, refusing a kwarg that would
    change the task the ID names (``gym.make("InsertBench/USB-v0", task=...)``,
    ``NISTBoard-USBA-v0`` with ``part="DSub"``, ``ConnectorFamily-v1`` with ``version=2``).
    Gymnasium has merged the registered kwargs into ``kwargs`` already, so an unchanged value is
    the registered object itself. The env comes back in `envs.env_checker.EnvChecker`."""
    registered = gym.spec(env_id).kwargs
    for name, names_id in IDENTITY_KWARGS.items():
        if name not in registered or name not in kwargs:
            continue
        value, own = kwargs[name], registered[name]
        if value is own or (type(value) is type(own) and value == own):
            continue
        if name == "task" and isinstance(value, str) and value == own.env_id:
            continue  # the ID's own task, by name
        try:
            other = names_id(value)
        except (KeyError, TypeError):
            other = None
        if other == env_id:  # the same task by another type (version=np.int64(1))
            continue
        hint = f"; make {other} instead" if other else ""
        if name == "task":  # a TaskSpec by its ID, not its repr
            own, value = own.env_id, getattr(value, "env_id", value)
        raise ValueError(f"{env_id} is {name}={own!r}: {name}={value!r} would run another "
                         f"task under its name{hint}")
    return EnvChecker(entry(**kwargs))  # Gymnasium's own is off: see envs.env_checker


def registered_entry(spec: gym.envs.registration.EnvSpec):
    """The callable behind a spec's entry point (the class or `make_task_env`, not the
    `make_registered` wrapper)."""
    entry = spec.entry_point
    if isinstance(entry, str):
        entry = gym.envs.registration.load_env_creator(entry)
    if isinstance(entry, functools.partial) and entry.func is make_registered:
        return entry.args[0]
    return entry


for _id, _task in TASKS.items():
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point=functools.partial(make_registered, make_task_env, _id),
            kwargs={"task": _task},
            vector_entry_point=functools.partial(make_vector_env, env_id=_id),
            max_episode_steps=_task.max_episode_steps,
            disable_env_checker=True,  # make_registered applies envs.env_checker's
        )

# Connector families and the NIST board: environments over several connectors.
for _id, _entry, _steps, _kwargs in (
    ("InsertBench/ConnectorFamily-v0", ConnectorFamilyEnv, 50, {"version": 0}),
    ("InsertBench/ConnectorFamily-v1", ConnectorFamilyEnv, 50, {"version": 1}),
    ("InsertBench/ConnectorFamily-v2", ConnectorFamilyEnv, 50, {"version": 2}),
    ("InsertBench/ConnectorFamily-v3", ConnectorFamilyEnv, 50, {"version": 3}),
    ("InsertBench/NISTBoard-v0", NISTBoardEnv, None, {}),  # truncates itself per part
):
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point=functools.partial(make_registered, _entry, _id),
            vector_entry_point=functools.partial(make_vector_env, env_id=_id),
            max_episode_steps=_steps,
            kwargs=_kwargs,
            disable_env_checker=True,
        )
for _part in NIST_PARTS:
    _id = nist_task(_part).env_id  # InsertBench/NISTBoard-<Part>-v0
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point=functools.partial(make_registered, NISTBoardEnv, _id),
            vector_entry_point=functools.partial(make_vector_env, env_id=_id),
            kwargs={"part": _part},
            disable_env_checker=True,
        )
