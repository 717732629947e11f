"""A slice of a vector's worlds, stepped one command at a time: the part of
`envs.sharded_vector` that runs where the worlds live, in a worker process (`envs.shard_worker`)
or in the vector's own process.

Every world is the very env `gym.make` builds; a step reads the world's actions from the
`SharedBatch` and writes its observation, reward, termination, truncation and info there. A
command's answer is ``("ok", result)``, or ``("error", world, exception, traceback, ran)``
where a world (or the shard itself, world None) raised; ``ran`` is False when the command
changed no world (a `call` of a name the worlds lack).
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from envs.shard_wire import InfoCodec, SharedBatch
from envs.tasks import pinned_versions
from envs.worlds import step_world


class Shard:
    """The worlds `indices` of the vector (global world numbers), each a `gym.make` env."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], indices: list[int],
                 autoreset_mode: str) -> None:
        self.indices = indices
        self.mode = AutoresetMode(autoreset_mode)
        with pinned_versions():  # the parent's gym.make_vec has warned already
            self.worlds: list[gym.Env] = [gym.make(env_id, **env_kwargs) for _ in indices]
        self.ended = [False] * len(indices)  # the world's last step ended its episode
        self.batch: SharedBatch | None = None
        self.codec: InfoCodec | None = None

    def spaces(self) -> tuple[gym.Space, gym.Space, dict[str, Any], str | None]:
        first = self.worlds[0]
        return (first.observation_space, first.action_space, dict(first.metadata),
                first.render_mode)

    def map_batch(self, fd: int, num_envs: int) -> None:
        first = self.worlds[0]
        self.batch = SharedBatch(first.observation_space, first.action_space, num_envs, fd)

    def reset(self, seeds: list[int | None], options: dict | None, mask: list[bool]
              ) -> list[dict | None]:
        """Reset the masked worlds; their infos (None for the others)."""
        infos: list[dict | None] = []
        for k, (env, seed, masked) in enumerate(zip(self.worlds, seeds, mask, strict=True)):
            info = None
            if masked:
                obs, info = self._guarded(k, env.reset, seed=seed, options=options)
                self.batch.put_obs(self.indices[k], obs)
                self.ended[k] = False
            infos.append(info)
        return infos

    def step(self, codec: InfoCodec | None) -> dict[int, tuple[dict, dict | None]]:
        """Step every world on its row of `batch.actions` (autoreset as the vector's mode),
        writing its results into the batch; `codec`, when given, is the parent's new info
        form. Returns the (info, final) pairs that did not fit the form, by world."""
        if codec is not None:
            self.codec = codec
        batch, unfit = self.batch, {}
        for k, env in enumerate(self.worlds):
            i = self.indices[k]
            obs, reward, terminated, truncated, info, final = self._guarded(
                k, step_world, env, i, batch.actions[i], self.mode, self.ended[k])
            batch.put_obs(i, obs)
            batch.rewards[i], batch.terminations[i], batch.truncations[i] = (
                reward, terminated, truncated)
            self.ended[k] = terminated or truncated
            if final is None and self.codec is not None and self.codec.fits(info):
                self.codec.write(self.codec.records(batch.info_rows), i, info)
            else:
                unfit[i] = (info, final)
        return unfit

    def call(self, name: str, args: tuple, kwargs: dict) -> list[Any]:
        """A method of every world called (or an attribute read), through its wrappers."""
        attributes = []
        for k, env in enumerate(self.worlds):  # every name looked up before anything runs
            try:
                attributes.append(env.get_wrapper_attr(name))
            except Exception as error:
                raise NothingRan(self.indices[k]) from error
        return [self._guarded(k, attribute, *args, **kwargs) if callable(attribute)
                else attribute for k, attribute in enumerate(attributes)]

    def set_attr(self, name: str, values: list[Any]) -> None:
        """Set an attribute of every world (through its wrappers), one value each."""
        for k, env in enumerate(self.worlds):
            self._guarded(k, env.set_wrapper_attr, name, values[k])

    def close(self) -> None:
        for env in self.worlds:
            env.close()
        if self.batch is not None:
            self.batch.close()

    def _guarded(self, k: int, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            raise WorldError(self.indices[k]) from error


class WorldError(Exception):
    """Carries the number of the world whose env raised (the cause)."""

    def __init__(self, world: int) -> None:
        super().__init__(world)
        self.world = world


class NothingRan(WorldError):
    """A world raised before the command changed any world of the shard."""


class ShardServer:
    """Answers a vector's commands for one shard: "build" (the `Shard`'s arguments; answers
    the spaces), "map" (num_envs: map the shared batch), "reset", "step", "call", "set_attr",
    "close"."""

    def __init__(self, memory_fd: int) -> None:
        self.memory_fd = memory_fd
        self.shard: Shard | None = None

    def answer(self, command: str, payload: Any) -> tuple:
        try:
            if command == "build":
                self.shard = Shard(**payload)
                return "ok", self.shard.spaces()
            if command == "map":
                return "ok", self.shard.map_batch(self.memory_fd, payload)
            if command == "reset":
                return "ok", self.shard.reset(*payload)
            if command == "step":
                return "ok", self.shard.step(payload)
            if command == "call":
                return "ok", self.shard.call(*payload)
            if command == "set_attr":
                return "ok", self.shard.set_attr(*payload)
            if command == "close":
                if self.shard is not None:
                    self.shard.close()
                return "ok", None
            raise ValueError(f"unknown command {command!r}")
        except Exception as error:
            world, cause = None, error
            if isinstance(error, WorldError):
                world, cause = error.world, error.__cause__
            return ("error", world, cause, "".join(traceback.format_exception(cause)),
                    not isinstance(error, NothingRan))


def picklable(error: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
