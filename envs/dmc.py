"""Every InsertBench task as a `dm_env.Environment`, for agents built on dm_env (Acme, dm_control).

    import envs.dmc
    env = envs.dmc.load("InsertBench/USB-v0", seed=0, goal_noise_mm=1.0)
    timestep = env.reset()
    while not timestep.last():
        timestep = env.step(policy(timestep.observation))
    env.physics.named.data.site_xpos["tcp"]  # dm_control's named indexing on the live state

One thin adapter over the Gymnasium task (`gym.make`), not a second implementation: the same
model, controller, observations, rewards and seeding. Specs are the Gymnasium spaces: a Box
becomes a `BoundedArray` (an `Array` where a bound is infinite) of the same shape and dtype.

Episode semantics follow dm_env: `terminated` ends with discount 0 (termination), the time limit
with discount 1 (truncation), and the call after a LAST step starts a new episode. Seeding
follows Gymnasium: `seed` seeds the first reset and later resets continue that generator, so
`load(id, seed=s)` replays exactly the episodes of `gym.make(id)` reset with `seed=s` and then
without a seed.
"""

from __future__ import annotations

import functools
from typing import Any

import dm_env
import gymnasium as gym
import mujoco
import numpy as np
from dm_env import specs
from gymnasium import spaces

from envs.insertion_env import active_insertion_env
from envs.task_options import check_choice, check_seed, check_time_limit

__all__ = ["InsertBenchDmEnv", "load", "physics_of"]


def load(task_id: str, *, seed: int | None = None, **env_kwargs: Any) -> InsertBenchDmEnv:
    """The task `task_id` (any registered `InsertBench/...` ID) as a dm_env environment.

    `env_kwargs` are the task's `gym.make` kwargs (see `insertbench list` and the task docs).
    """
    import envs  # noqa: F401 - registers the task IDs

    if "max_episode_steps" in env_kwargs:  # gym.make's TimeLimit took True as 1 step
        env_kwargs["max_episode_steps"] = check_time_limit(env_kwargs["max_episode_steps"])
    if "render_mode" in env_kwargs:  # gym.make's own use of it raised AttributeError on 1
        check_choice("render_mode", env_kwargs["render_mode"], (None, "rgb_array"))
    seed = check_seed(seed)  # before the env (and its cameras) is built for nothing
    return InsertBenchDmEnv(gym.make(task_id, **env_kwargs), seed=seed)


class InsertBenchDmEnv(dm_env.Environment):
    """A Gymnasium InsertBench env behind the `dm_env.Environment` interface."""

    def __init__(self, env: gym.Env, *, seed: int | None = None) -> None:
        self._seed = check_seed(seed)  # here, not at the first reset()
        self.gym_env = env
        self._needs_reset = True
        self._observation_spec = _spec(env.observation_space, "observation")
        self._action_spec = _spec(env.action_space, "action")
        self._physics = None
        self._physics_data = None
        self._reset_once = False

    def reset(self) -> dm_env.TimeStep:
        obs, _ = self.gym_env.reset(seed=self._seed)
        self._seed = None  # later resets continue the seeded generator, as in Gymnasium
        self._needs_reset = False
        self._reset_once = True
        return dm_env.restart(obs)

    def step(self, action) -> dm_env.TimeStep:
        if self._needs_reset:
            return self.reset()
        obs, reward, terminated, truncated, _ = self.gym_env.step(np.asarray(action))
        reward = np.float32(reward)
        if terminated:
            self._needs_reset = True
            return dm_env.termination(reward, obs)
        if truncated:
            self._needs_reset = True
            return dm_env.truncation(reward, obs)
        return dm_env.transition(reward, obs)

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def reward_spec(self):
        return specs.Array((), np.float32, "reward")

    def close(self) -> None:
        self.gym_env.close()

    def __getstate__(self) -> dict[str, Any]:
        # The dm_control view is rebuilt on demand: its class is local to a cache, which
        # pickle cannot name, so a wrapper whose physics was read could not be pickled (envs21)
        return self.__dict__ | {"_physics": None, "_physics_data": None}

    @property
    def physics(self):
        """dm_control's `mujoco.Physics` over the live MuJoCo state of the active connector.

        It shares the task's `MjModel`/`MjData` (no copy): named indexing reads the current
        state, and `physics.render(camera_id="side")` renders it. Family and NIST-board envs
        switch connectors between episodes; the wrapper follows the active one.
        """
        if not self._reset_once:  # MuJoCo's zeros, not the start state
            raise RuntimeError("call reset() before reading physics: before it the state is "
                               "MuJoCo's initial one, nowhere near the task's start")
        data = getattr(active_insertion_env(self.gym_env), "data", None)
        if not isinstance(data, mujoco.MjData):  # a PyBullet env: AttributeError 'data'
            raise TypeError(f"{type(self.gym_env.unwrapped).__name__} has no MuJoCo state: "
                            "physics is dm_control's view of a MuJoCo task")
        if data is not self._physics_data:
            self._physics = physics_of(data)
            self._physics_data = data
        return self._physics


def physics_of(data: mujoco.MjData):
    """A dm_control `Physics` sharing `data` (and its model) with the caller."""
    from dm_control.mujoco import wrapper

    _align_dm_control_index_tables()
    # Physics() runs mj_forward with actuation off (its after_reset), which changed the next
    # steps by up to 0.2 um and 0.008 N when first read mid-episode: looking must not touch.
    saved = mujoco.MjData(data.model)
    mujoco.mj_copyData(saved, data.model, data)
    physics = _shared_physics_class()(wrapper.MjData(data))
    mujoco.mj_copyData(data, data.model, saved)
    return physics


@functools.cache
def _shared_physics_class() -> type:
    """dm_control's `Physics` whose reset is refused: it shares the env's state, and a reset
    moved the arm 1.35 m from the socket mid-episode, the env stepping on from there
    (engines18)."""
    from dm_control.mujoco import Physics

    class SharedPhysics(Physics):
        def reset(self, keyframe_id=None):
            raise RuntimeError("this Physics shares the env's MuJoCo state: reset the env "
                               "(env.reset()), which starts a task episode, not its physics")

    return SharedPhysics


def _spec(space: spaces.Space, name: str):
    if isinstance(space, spaces.Dict):
        return {key: _spec(sub, key) for key, sub in space.spaces.items()}
    if not isinstance(space, spaces.Box):
        raise TypeError(f"{name}: no dm_env spec for a {type(space).__name__} space")
    if np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
        return specs.BoundedArray(space.shape, space.dtype, space.low, space.high, name)
    return specs.Array(space.shape, space.dtype, name)


_aligned = False


def _align_dm_control_index_tables() -> None:
    """Drop the fields that this MuJoCo build lacks from dm_control's generated index tables.

    dm_control's named indexing walks a table of MjModel/MjData array fields generated for one
    MuJoCo release (1.0.50: MuJoCo 3.17); MuJoCo 4.0 removed a few flex fields
    (`flex_vertedge`, `flexvert_J`, ...), and building a `Physics` then fails on the first
    missing attribute. The fields are looked up on a real model, not listed by hand, so the
    table matches whichever MuJoCo is installed.
    """
    global _aligned
    if _aligned:
        return
    from dm_control.mujoco.wrapper.mjbindings import sizes

    model = mujoco.MjModel.from_xml_string("<mujoco/>")
    for struct_name, struct in (("mjmodel", model), ("mjdata", mujoco.MjData(model))):
        table = sizes.array_sizes[struct_name]
        for field in [f for f in table if not hasattr(struct, f)]:
            del table[field]
    _aligned = True
