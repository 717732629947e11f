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

from envs import entry_points  # noqa: E402
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
    # A TaskSpec names its ID only unchanged: an edited copy is another task.
    "task": lambda v: task_spec(v).env_id if isinstance(v, str) else (
        v.env_id if isinstance(v, TaskSpec) and v == task_spec(v.env_id) else None),
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
        try:
            other = names_id(value)
        except (KeyError, TypeError):
            other = None
        if other == env_id:  # the same task by another type (version=np.int64(1), a TaskSpec)
            continue
        hint = f"; make {other} instead" if other else ""
        given = f"{name}={value!r}"
        if isinstance(value, TaskSpec):  # by its ID, not its repr
            given = f"a TaskSpec of {value.env_id}" + (" with other values" if other is None
                                                       and value.env_id in TASKS else "")
        raise ValueError(f"{env_id} is {name}={own!r}: {given} would run another task under "
                         f"its name{hint}")
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


def _register(env_id: str, entry, kwargs: dict, max_episode_steps: int | None) -> None:
    """Register `env_id` (once: a reload keeps the first) with entry points named by strings
    (`envs.entry_points`), so that its spec is plain data: kwargs name a task by its ID."""
    if env_id in gym.registry:
        return
    creator = functools.partial(make_registered, entry, env_id)
    # gym.make reads the creator's render modes to add its fallbacks (rgb_array_list through
    # RenderCollection, human through HumanRendering): a bare partial has none, and they were
    # refused as modes the env does not have.
    creator.metadata = getattr(entry, "metadata", InsertionEnv.metadata)  # every env's modes
    entry_point, vector_entry_point = entry_points.add(
        env_id, creator, functools.partial(make_vector_env, env_id=env_id))
    gym.register(
        id=env_id,
        entry_point=entry_point,
        vector_entry_point=vector_entry_point,
        kwargs=kwargs,
        max_episode_steps=max_episode_steps,
        disable_env_checker=True,  # make_registered applies envs.env_checker's
    )


for _id, _task in TASKS.items():
    _register(_id, make_task_env, {"task": _id}, _task.max_episode_steps)

# Connector families and the NIST board: environments over several connectors.
for _id, _entry, _steps, _kwargs in (
    ("InsertBench/ConnectorFamily-v0", ConnectorFamilyEnv, 50, {"version": 0}),
    ("InsertBench/ConnectorFamily-v1", ConnectorFamilyEnv, 50, {"version": 1}),
    ("InsertBench/ConnectorFamily-v2", ConnectorFamilyEnv, 50, {"version": 2}),
    ("InsertBench/ConnectorFamily-v3", ConnectorFamilyEnv, 50, {"version": 3}),
    ("InsertBench/NISTBoard-v0", NISTBoardEnv, None, {}),  # truncates itself per part
):
    _register(_id, _entry, _kwargs, _steps)
for _part in NIST_PARTS:
    _register(nist_task(_part).env_id, NISTBoardEnv, {"part": _part}, None)  # NISTBoard-<Part>-v0
