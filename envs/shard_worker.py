"""A worker process of `envs.sharded_vector`: it owns a slice of the worlds and steps them with
the plain in-process env, one command of the parent at a time.

Started by the parent as ``python -m envs.shard_worker CMD_FD REPLY_FD MEMORY_FD PARENT_PID
DEATH_SIGNAL``. It dies with its parent, a ``kill -9`` included, in three ways: the kernel
sends it SIGKILL when the parent's thread that started it ends (``PR_SET_PDEATHSIG``, asked for
when that thread is the main thread, which lives as long as the process); the command pipe
reaches its end of file when the parent's process is gone; and while it waits for a command it
checks every second that its parent is still the process that started it.

Each command gets one reply: ``("ok", result)``, or ``("error", world, exception, traceback)``
where a world (or the worker itself, world None) raised.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import sys
import traceback
import warnings
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from envs.shard_wire import InfoCodec, SharedBatch, recv, send
from envs.worlds import step_world

_PR_SET_PDEATHSIG = 1
#: Seconds between two checks that the parent lives, while waiting for a command.
PARENT_CHECK_S = 1.0


class Shard:
    """The worlds `indices` of the vector (global world numbers), each a `gym.make` env."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], indices: list[int],
                 autoreset_mode: str) -> None:
        import envs  # noqa: F401  (registers the task IDs)

        self.indices = indices
        self.mode = AutoresetMode(autoreset_mode)
        with warnings.catch_warnings():
            # The parent's gym.make_vec has warned already if the ID has a newer version.
            warnings.filterwarnings("ignore", ".*out of date", DeprecationWarning)
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
        results = []
        for k, env in enumerate(self.worlds):
            attribute = env.get_wrapper_attr(name)
            results.append(self._guarded(k, attribute, *args, **kwargs)
                           if callable(attribute) else attribute)
        return results

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


def die_with_parent(parent_pid: int, death_signal: bool) -> None:
    """Ask the kernel for SIGKILL when the parent goes, then exit if it has gone already."""
    if death_signal:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        sys.exit(0)


def next_command(fd: int, parent_pid: int) -> Any:
    """The parent's next command; exits when the parent is gone."""
    while not select.select([fd], [], [], PARENT_CHECK_S)[0]:
        if os.getppid() != parent_pid:
            sys.exit(0)
    try:
        return recv(fd)
    except EOFError:
        sys.exit(0)


def serve(cmd_fd: int, reply_fd: int, memory_fd: int, parent_pid: int) -> None:
    """Answer the parent's commands until "close"."""
    shard: Shard | None = None
    while True:
        command, payload = next_command(cmd_fd, parent_pid)
        try:
            if command == "build":
                shard = Shard(**payload)
                result: Any = shard.spaces()
            elif command == "map":
                result = shard.map_batch(memory_fd, payload)
            elif command == "reset":
                result = shard.reset(*payload)
            elif command == "step":
                result = shard.step(payload)
            elif command == "call":
                result = shard.call(*payload)
            elif command == "close":
                if shard is not None:
                    shard.close()
                send(reply_fd, ("ok", None))
                return
            else:
                raise ValueError(f"unknown command {command!r}")
            send(reply_fd, ("ok", result))
        except Exception as error:
            world, cause = None, error
            if isinstance(error, WorldError):
                world, cause = error.world, error.__cause__
            send(reply_fd, ("error", world, _picklable(cause),
                            "".join(traceback.format_exception(cause))))


def _picklable(error: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def main(argv: list[str]) -> None:
    cmd_fd, reply_fd, memory_fd, parent_pid, death_signal = (int(a) for a in argv)
    # The parent handles Ctrl-C and closes the workers; a worker killed mid-command by the
    # terminal's SIGINT would only turn that into a confusing "worker died".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid, bool(death_signal))
    serve(cmd_fd, reply_fd, memory_fd, parent_pid)


if __name__ == "__main__":
    main(sys.argv[1:])
