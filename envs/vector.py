"""The `vector_entry_point` of every InsertBench ID (`make_vector_env`), and a Gymnasium vector
env that steps N InsertBench worlds on N threads of one process.

`gym.make_vec("InsertBench/USB-v1", num_envs=N)` steps the worlds in processes by default
(`envs.sharded_vector`: faster, measured), and on threads with ``processes=0``. On threads each
world is the very env `gym.make` builds (same wrappers, same seeding), owned by one worker
thread for its whole life. A world's step integrates its whole control
period in one `mujoco.rollout` call that holds no GIL (`envs.physics.ControlPeriod`: about 80%
of a step, `benchmark.bench_throughput`), so the physics of the N worlds runs in parallel in C
while their Python bookkeeping (reference, F/T filter, observation, info) takes turns on the GIL.
Each world's OpenGL context is created and used in its own thread only, as EGL requires, so
pixel observations work the same way. The threads live in this process: they end with
`close()`, and with the process whatever happens to it.

Compared with `AsyncVectorEnv` (one process per world) nothing is pickled or sent through pipes,
which costs as much as a 0.5 ms step; compared with `SyncVectorEnv` the physics overlaps; but
MuJoCo's bindings take and release the GIL in every call, so the worlds' Python hardly overlaps
(`benchmark.bench_throughput`: 0.9-1.2x one env on 2 cores).
Results are those of N single envs reset with seeds `seed, seed + 1, ...` (tested), with
Gymnasium's autoreset modes ("NextStep" by default).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from copy import deepcopy
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate

from envs.sharded_vector import ShardedVectorEnv
from envs.task_options import PlainSpec, RefusesCopies, check_time_limit
from envs.tether import available_cores
from envs.worlds import (  # noqa: F401  (MAX_NUM_ENVS, check_num_envs: imported from here)
    MAX_NUM_ENVS,
    autoreset_mode_of,
    batch_reset_args,
    check_batch_actions,
    check_copy,
    check_num_envs,
    check_same_process,
    check_worlds_reset,
    merge_world_infos,
    step_world,
    stepping_worlds,
)

T = TypeVar("T")


class ThreadedVectorEnv(PlainSpec, RefusesCopies, SyncVectorEnv):
    """`SyncVectorEnv`'s semantics, with every sub-env stepped and reset on its own thread."""

    # Its worlds' threads ("cannot pickle '_queue.SimpleQueue'").
    copy_refusal = ("a vector env cannot be copied or pickled: it owns its worlds' threads; "
                    "make another with gym.make_vec(...)")

    def __init__(
        self,
        env_fns: list[Callable[[], gym.Env]],
        *,
        copy: bool = True,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        autoreset_mode = autoreset_mode_of(autoreset_mode)  # before any thread starts
        check_num_envs(len(env_fns))
        copy = check_copy(copy)
        self._owner_pid = os.getpid()  # the threads exist in this process only (not in a fork)
        # One single-thread executor per world: a world never changes thread (GL contexts).
        self._workers = [
            ThreadPoolExecutor(1, thread_name_prefix=f"insertbench-world{i}")
            for i in range(len(env_fns))
        ]
        built = [self._workers[i].submit(fn) for i, fn in enumerate(env_fns)]
        try:
            envs = [future.result() for future in built]
        except BaseException:
            self._shutdown_workers()
            raise
        super().__init__([lambda e=e: e for e in envs], copy=copy, autoreset_mode=autoreset_mode)
        self._was_reset = np.zeros(self.num_envs, bool)
        space = self.single_observation_space
        #: A Dict of Boxes: worlds write their rows of the batch themselves.
        self._rows_in_place = isinstance(space, gym.spaces.Dict) and all(
            isinstance(sub, gym.spaces.Box) for sub in space.values()
        )

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset the worlds in parallel; seeds as `SyncVectorEnv` (int -> seed + i)."""
        self._check_usable()
        seed, options, mask = batch_reset_args(self.num_envs, seed, options, self.envs[0])
        if mask.all():
            self._terminations[:] = self._truncations[:] = False
        self._terminations[mask] = self._truncations[mask] = self._autoreset_envs[mask] = False
        futures = {
            i: self._workers[i].submit(self.envs[i].reset, seed=seed[i], options=options)
            for i in np.flatnonzero(mask)
        }
        infos: dict[str, Any] = {}
        for i, future in futures.items():
            obs, env_info = future.result()
            self._was_reset[i] = True
            self._put_obs(i, obs)
            infos = self._add_info(infos, env_info, i)
        if not self._rows_in_place:
            self._observations = concatenate(
                self.single_observation_space, self._env_obs, self._observations
            )
        return (self._copy_obs(), infos)

    def step(self, actions):
        """Step every world on its thread, then gather in world order (autoreset as Gymnasium).

        Each world writes its observation into the batch itself (row i, on its thread, while
        the others still integrate), so the gathering left for the end is small.
        """
        self._check_usable()
        check_worlds_reset(self._was_reset)
        check_batch_actions(self.action_space, actions,
                            stepping_worlds(self.autoreset_mode, self._autoreset_envs))
        futures = [
            self._workers[i].submit(self._step_world, i, action)
            for i, action in enumerate(iterate(self.action_space, actions))
        ]
        wait(futures)  # no world is still stepping when one world's error reaches the caller
        for i, future in enumerate(futures):
            error = future.exception()
            if error is not None:  # the others stepped: its worlds no longer step together,
                self.close()  # and it ran on one step apart without a word (engines20)
                error.add_note(f"raised in world {i}; this vector env is closed (its other "
                               "worlds stepped without it)")
                raise error
        results = [future.result() for future in futures]
        for i, (reward, terminated, truncated, _, _) in enumerate(results):
            self._rewards[i], self._terminations[i], self._truncations[i] = (
                reward, terminated, truncated
            )
        if not self._rows_in_place:
            self._observations = concatenate(
                self.single_observation_space, self._env_obs, self._observations
            )
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            self._copy_obs(),
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            merge_world_infos(self, [(info, final) for *_, info, final in results]),
        )

    def render(self) -> tuple:
        return tuple(self._on_each(lambda env: env.render()))

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple:
        """Call a sub-env method (or read an attribute) on each world's own thread."""

        def call_one(env: gym.Env):
            attribute = env.get_wrapper_attr(name)
            return attribute(*args, **kwargs) if callable(attribute) else attribute

        return tuple(self._on_each(call_one))

    def set_attr(self, name: str, values: Any) -> None:
        self._check_usable()  # SyncVectorEnv's set them on closed worlds without a word
        super().set_attr(name, values)

    def on_worlds(self, calls: Mapping[int, Callable[[gym.Env], T]]) -> dict[int, T]:
        """Run ``calls[i](env_i)`` on world i's thread, all worlds at once; results by world.

        A runner that starts its own episodes (``benchmark.vector_train``) steps and resets the
        worlds through this, bypassing the vector's autoreset and its merged infos.
        """
        self._check_usable()
        futures = {i: self._workers[i].submit(fn, self.envs[i]) for i, fn in calls.items()}
        return {i: future.result() for i, future in futures.items()}

    def close_extras(self, **kwargs: Any) -> None:
        if os.getpid() != self._owner_pid:
            self._workers = []  # a fork's copy: no thread runs these worlds here (a hang)
            return
        if hasattr(self, "envs"):
            self._on_each(lambda env: env.close())
        self._shutdown_workers()

    # ------------------------------------------------------------------ helpers
    def _step_world(self, i: int, action):
        """One world's step under the vector's autoreset mode (runs on the world's thread)."""
        obs, *rest = step_world(self.envs[i], i, action, self.autoreset_mode,
                                bool(self._autoreset_envs[i]))
        self._put_obs(i, obs)
        return rest

    def _put_obs(self, i: int, obs) -> None:
        """World i's observation into row i of the batch (a Dict of Boxes: in place)."""
        if self._rows_in_place:
            for key, value in obs.items():
                self._observations[key][i] = value
        else:
            self._env_obs[i] = obs

    def _check_usable(self) -> None:
        if self.closed:
            raise RuntimeError("this vector env is closed")
        check_same_process(self._owner_pid)

    def _on_each(self, fn: Callable[[gym.Env], Any]) -> list:
        self._check_usable()
        pairs = zip(self._workers, self.envs, strict=True)
        futures: list[Future] = [worker.submit(fn, env) for worker, env in pairs]
        return [f.result() for f in futures]

    def _copy_obs(self):
        if not self.copy:
            return self._observations
        if self._rows_in_place:
            return {key: value.copy() for key, value in self._observations.items()}
        return deepcopy(self._observations)

    def _shutdown_workers(self) -> None:
        for worker in getattr(self, "_workers", []):
            worker.shutdown(wait=True)
        self._workers = []


def make_vector_env(
    num_envs: int,
    *,
    env_id: str,
    processes: int | None = None,
    copy: bool = True,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    **env_kwargs: Any,
) -> ShardedVectorEnv | ThreadedVectorEnv:
    """The `vector_entry_point` of every InsertBench ID: N `gym.make(env_id, **env_kwargs)`.

    `processes` picks where the worlds step: k >= 1 processes, this one and k - 1 workers
    (`envs.sharded_vector.ShardedVectorEnv`), or 0, threads of this process
    (`ThreadedVectorEnv`). The default (None) is the fastest measured on 2 free cores
    (`python -m benchmark.bench_throughput`): min(N, cores) processes on Linux, threads
    elsewhere. Processes need cores of their own: every vector step waits for the slowest, so
    on a machine already busier than its cores (load average >= cores) they measured 0.53-0.78x
    one env; use processes=1 there (the worlds in turn in this process).

    `gym.make_vec` passes the ID's registered kwargs and `max_episode_steps` along; handing
    them back to `gym.make` builds each world exactly as a single env. `max_episode_steps` is
    checked as the command line checks it (an integer in [1, 1,000,000]), or -1 for no time
    limit as `gym.make` documents (which itself also takes True: one step).
    """
    check_num_envs(num_envs)
    check_copy(copy)  # copy="no" used to copy
    # Checked before any world is built: a bad mode used to leave the worlds' threads running.
    autoreset_mode = autoreset_mode_of(autoreset_mode)
    if "max_episode_steps" in env_kwargs:  # True truncated every world after 1 step
        env_kwargs = {**env_kwargs,
                      "max_episode_steps": check_time_limit(env_kwargs["max_episode_steps"])}
    if processes is None:
        processes = min(num_envs, available_cores()) if sys.platform == "linux" else 0
    if (isinstance(processes, bool) or not isinstance(processes, int | np.integer)
            or not 0 <= processes <= num_envs):
        raise ValueError(f"processes must be an integer in [0, num_envs={num_envs}] (0: worlds "
                         f"on threads), got {processes!r}")
    if processes:
        return ShardedVectorEnv(env_id, int(num_envs), env_kwargs, processes=int(processes),
                                copy=copy, autoreset_mode=autoreset_mode)
    return ThreadedVectorEnv(
        [lambda: gym.make(env_id, **env_kwargs) for _ in range(num_envs)],
        copy=copy,
        autoreset_mode=autoreset_mode,
    )
