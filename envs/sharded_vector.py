"""A Gymnasium vector env whose N worlds are stepped by K processes: this one and K - 1 workers.

The worlds are cut into K contiguous slices (`envs.shard.Shard`): this process steps the first
itself, each worker process (`envs.shard_worker`) one other, each with the very env `gym.make`
builds. So the worlds' Python and physics run in K processes at once with no GIL shared between
them (on threads, MuJoCo's bindings hand the GIL over in every call and the Python outside the
physics stops overlapping: `envs.vector`), and on c cores K = c keeps every core busy with no
process waiting idle for the others. A vector step crosses in shared memory
(`envs.shard_wire.SharedBatch`: actions, observations with their images, rewards,
terminations, truncations and infos of the usual form); each worker's pipe carries a few bytes
each way.

Results are those of N single envs reset with seeds ``seed, seed + 1, ...`` through Gymnasium's
autoreset modes ("NextStep" by default), infos included (tested). An exception in a world
reaches the caller as that exception (a worker's with its traceback as a note); a worker that
dies makes the call raise RuntimeError; either way the vector env is closed, since its worlds no
longer step together. Workers end with `close()` and with this process, ``kill -9`` included
(`envs.shard_worker`). Linux only (memory files, ``prctl``).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.shard import ShardServer
from envs.shard_wire import SPIN_S, InfoCodec, SharedBatch, Waiter, recv, send, send_bytes
from envs.task_options import PlainSpec, RefusesCopies
from envs.tether import available_cores, package_environment
from envs.worlds import (
    autoreset_mode_of,
    batch_reset_args,
    check_batch_actions,
    check_copy,
    check_num_envs,
    check_same_process,
    check_worlds_reset,
    merge_world_infos,
    stepping_worlds,
)

#: The step command without a new info codec, and pickled once.
_STEP = ("step", None)
_STEP_BYTES = pickle.dumps(_STEP, protocol=pickle.HIGHEST_PROTOCOL)
#: Seconds a worker gets to close its worlds and exit before it is killed.
CLOSE_TIMEOUT_S = 10.0


class _Worker:
    """One worker process and the parent's ends of its two pipes."""

    def __init__(self, indices: list[int], memory_fd: int, death_signal: bool) -> None:
        self.indices = indices
        cmd_read, self.cmd = os.pipe()
        self.reply, reply_write = os.pipe()
        self.waiter = Waiter(self.reply, SPIN_S)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "envs.shard_worker", str(cmd_read), str(reply_write),
                 str(memory_fd), str(os.getpid()), str(int(death_signal))],
                pass_fds=(cmd_read, reply_write, memory_fd), env=package_environment(),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(cmd_read)  # the worker's ends: its exit must close them for good
            os.close(reply_write)

    def close_pipes(self) -> None:
        for fd in (self.cmd, self.reply):
            try:
                os.close(fd)
            except OSError:
                pass


class _Local:
    """The slice of worlds this process steps itself."""

    def __init__(self, indices: list[int], memory_fd: int) -> None:
        self.indices = indices
        self.server = ShardServer(memory_fd)


class ShardedVectorEnv(PlainSpec, RefusesCopies, VectorEnv):
    """N InsertBench worlds stepped by `processes` processes, this one included (module doc)."""

    # Its worker processes and their pipes: a copy failed on "cannot pickle 'select.poll'
    # object", then the half-made copy's __del__ printed a traceback.
    copy_refusal = ("a vector env cannot be copied or pickled: it owns its worker processes; "
                    "make another with gym.make_vec(...)")

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        env_kwargs: dict[str, Any] | None = None,
        *,
        processes: int | None = None,
        copy: bool = True,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        # Set before anything can raise: __del__ closes a half-built env through close_extras.
        self.closed = False
        self._owner_pid = os.getpid()  # a fork's copy must not touch the workers (close_extras)
        self._workers: list[_Worker] = []
        self._local: _Local | None = None
        self._batch: SharedBatch | None = None
        self._codec: InfoCodec | None = None
        self._new_codec = False  # the workers have yet to learn self._codec
        self._memory_fd = -1
        # Checked here too, not only by `gym.make_vec`: built directly, processes=1.5 built a
        # vector and num_envs="2" ended in a comparison error.
        num_envs, copy = check_num_envs(num_envs), check_copy(copy)
        processes = min(num_envs, available_cores()) if processes is None else processes
        if (isinstance(processes, bool) or not isinstance(processes, int | np.integer)
                or not 1 <= processes <= num_envs):
            raise ValueError(f"processes must be an integer in [1, num_envs={num_envs}], got "
                             f"{processes!r}")
        processes = int(processes)
        self.num_envs, self.copy = num_envs, copy
        self.autoreset_mode = autoreset_mode_of(autoreset_mode)
        self._memory_fd = os.memfd_create("insertbench-observations")
        # PR_SET_PDEATHSIG fires when the starting *thread* ends: only the main thread lives as
        # long as the process; from other threads the workers rely on the pipe and the ppid.
        death_signal = threading.current_thread() is threading.main_thread()
        try:
            local, *others = np.array_split(np.arange(num_envs), processes)
            for indices in others:
                self._workers.append(_Worker(indices.tolist(), self._memory_fd, death_signal))
            self._local = _Local(local.tolist(), self._memory_fd)
            built = self._request({
                w: ("build", {"env_id": env_id, "env_kwargs": dict(env_kwargs or {}),
                              "indices": w.indices, "autoreset_mode": self.autoreset_mode.value})
                for w in self._slices()
            })
            obs_space, act_space, metadata, render_mode = built[0]
            for other in built[1:]:
                if other[:2] != (obs_space, act_space):
                    raise RuntimeError(f"the worlds of {env_id} disagree on their spaces")
            SharedBatch.size_file(obs_space, act_space, num_envs, self._memory_fd)
            self._batch = SharedBatch(obs_space, act_space, num_envs, self._memory_fd)
            self._request({w: ("map", num_envs) for w in self._slices()})
        except BaseException:
            self._abort()
            raise
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = batch_space(obs_space, num_envs)
        self.action_space = batch_space(act_space, num_envs)
        self.metadata = {**metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self._autoreset_envs = np.zeros(num_envs, bool)
        self._was_reset = np.zeros(num_envs, bool)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset the (masked) worlds, each worker its slice; seeds as `SyncVectorEnv`."""
        self._check_open()
        seeds, options, mask = batch_reset_args(self.num_envs, seed, options,
                                                self._local.server.shard.worlds[0])
        requests = {
            w: ("reset", ([seeds[i] for i in w.indices], options,
                          [bool(mask[i]) for i in w.indices]))
            for w in self._slices() if mask[w.indices].any()
        }
        replies = self._request(requests)
        infos: dict[str, Any] = {}
        for w, world_infos in zip(requests, replies, strict=True):
            for i, info in zip(w.indices, world_infos, strict=True):
                if info is not None:
                    infos = self._add_info(infos, info, i)
        self._autoreset_envs[mask] = False
        self._was_reset[mask] = True
        if self._codec is None:
            first = next(info for world_infos in replies for info in world_infos if info)
            self._codec = InfoCodec.of(first)
            self._new_codec = self._codec is not None
        return self._batch.get_obs(self.copy), infos

    def step(self, actions):
        """Step every world in its worker (autoreset as Gymnasium); gather in world order."""
        self._check_open()
        check_worlds_reset(self._was_reset)
        check_batch_actions(self.action_space, actions,
                            stepping_worlds(self.autoreset_mode, self._autoreset_envs))
        batch = self._batch
        batch.actions[...] = actions
        step = ("step", self._codec) if self._new_codec else _STEP
        replies = self._request({w: step for w in self._slices()})
        self._new_codec = False
        unfit = {i: pair for reply in replies for i, pair in reply.items()}
        if self._codec is None:
            infos = merge_world_infos(self, [unfit[i] for i in range(self.num_envs)])
        elif unfit:
            records = self._codec.records(batch.info_rows)
            infos = merge_world_infos(self, [
                unfit[i] if i in unfit else (self._codec.decode(records, i), None)
                for i in range(self.num_envs)
            ])
        else:
            infos = self._codec.merged(self._codec.records(batch.info_rows))
        terminations, truncations = batch.terminations.copy(), batch.truncations.copy()
        self._autoreset_envs = terminations | truncations
        return (batch.get_obs(self.copy), batch.rewards.copy(), terminations, truncations,
                infos)

    def render(self) -> tuple:
        return self.call("render")

    @property
    def np_random_seed(self) -> tuple:
        """Each world's seed, as `SyncVectorEnv` reports (this vector holds no generator of
        its own: the worlds' seeds are what a run depends on)."""
        return self.get_attr("np_random_seed")

    @property
    def np_random(self) -> tuple:
        """Each world's generator (copies: they travel pickled from worker processes)."""
        return self.get_attr("np_random")

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple:
        """Call a sub-env method (or read an attribute) in every world; results in world order.
        Arguments and results travel pickled."""
        replies = self._request({w: ("call", (name, args, kwargs)) for w in self._slices()})
        return tuple(result for reply in replies for result in reply)

    def get_attr(self, name: str) -> tuple:
        """An attribute of every world (a method is called); a world without it raises with
        the vector left open."""
        replies = self._request({w: ("call", (name, (), {})) for w in self._slices()},
                                read_only=True)
        return tuple(result for reply in replies for result in reply)

    def set_attr(self, name: str, values: Any) -> None:
        """Set an attribute of every world: `values` a list or tuple of one value per world,
        in world order, or one value for all (as Gymnasium's vectors). Values travel pickled."""
        self._check_open()  # before the request is built from the (closed) worlds
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr needs one value per world ({self.num_envs}), got "
                             f"{len(values)}")
        self._request({w: ("set_attr", (name, [values[i] for i in w.indices]))
                       for w in self._slices()})

    @property
    def worker_pids(self) -> list[int]:
        """The worker processes' ids."""
        return [w.process.pid for w in self._workers]

    def close_extras(self, **kwargs: Any) -> None:
        if os.getpid() != self._owner_pid:
            # A fork's copy: the worlds, workers and pipes are the parent's; drop our handles.
            self._local, self._workers, self._batch = None, [], None
            return
        if self._local is not None:
            self._local.server.answer("close", None)
            self._local = None
        live = [w for w in self._workers if w.process.poll() is None]
        for w in live:
            try:
                send(w.cmd, ("close", None))
            except OSError:
                pass
        for w in self._workers:
            try:
                w.process.wait(CLOSE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.close_pipes()
        self._workers = []
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self._memory_fd >= 0:
            os.close(self._memory_fd)
            self._memory_fd = -1

    def __del__(self) -> None:
        # vars(): a half-made instance has Gymnasium's class-level closed=False and no workers.
        if "_owner_pid" in vars(self) and not self.closed:
            self.close()

    # ------------------------------------------------------------------ the wire
    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this vector env is closed")
        check_same_process(self._owner_pid)

    def _abort(self) -> None:
        """Close after an interrupted exchange: the workers may be deep in a command (a build
        takes seconds), so they are killed rather than asked to close; Ctrl-C acts at once."""
        if os.getpid() == self._owner_pid:
            for w in self._workers:
                if w.process.poll() is None:
                    w.process.kill()
        self.close()

    @staticmethod
    def _died(w: _Worker) -> RuntimeError:
        code = w.process.wait()
        return RuntimeError(f"the worker process {w.process.pid} of worlds {w.indices} died "
                            f"(exit code {code}); this vector env is closed")

    def _slices(self) -> list[_Local | _Worker]:
        return [self._local, *self._workers]

    def _request(self, requests: dict[_Local | _Worker, tuple[str, Any]],
                 read_only: bool = False) -> list[Any]:
        """Send each worker its command, answer this process's own, then collect every reply
        (results in the dict's order).

        An error in a world is raised once every reply is in, and closes the vector env unless
        the command was ``read_only`` (`get_attr`) or changed no world (`call` of a name the
        worlds lack: every world looks it up before any runs it); a dead
        worker, or anything that interrupts the exchange (Ctrl-C included), closes it first
        (killing the workers), since the worlds and the pipes are then out of step."""
        self._check_open()
        local = self._local  # close() forgets it
        payloads = {}  # pickled before anything is sent: an argument that cannot be is refused
        for w, message in requests.items():  # with the worlds still in step
            if w is not local:
                try:
                    payloads[w] = (_STEP_BYTES if message is _STEP else
                                   pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
                except Exception as err:
                    left = ("the vector env was not built" if message[0] == "build" else
                            "nothing was sent, and this vector env stays open")
                    raise TypeError(f"{message[0]}: a value that cannot be pickled cannot "
                                    f"reach a worker process ({err}); {left}") from None
        try:
            for w in requests:
                if w is local:
                    continue
                try:
                    send_bytes(w.cmd, payloads[w])
                except BrokenPipeError:  # it died before this command: no reader is left
                    raise self._died(w) from None
            replies = []
            for w, message in requests.items():
                if w is local:
                    replies.append(w.server.answer(*message))
                    continue
                try:
                    w.waiter.wait()
                    replies.append(recv(w.reply))
                except EOFError:
                    raise self._died(w) from None
        except BaseException:
            self._abort()
            raise
        # A name no world has (call("nope")) ran nothing anywhere: the worlds are in step.
        unchanged = read_only or all(reply[0] == "error" and not reply[4] for reply in replies)
        for w, reply in zip(requests, replies, strict=True):
            if reply[0] == "error":
                _, world, error, text, _ = reply
                where = f"world {world}" if world is not None else f"worlds {w.indices}"
                where += " (this process)" if w is local else f", worker process {w.process.pid}"
                if unchanged:
                    error.add_note(f"raised in {where}; this vector env stays open")
                else:
                    self.close()
                    message = requests[w]  # a build's: no vector env was made (engines20)
                    state = ("the vector env was not built" if isinstance(message, tuple)
                             and message[0] == "build" else "this vector env is closed")
                    error.add_note(f"raised in {where}; {state}"
                                   + ("" if w is local else f". The worker's traceback:\n{text}"))
                raise error
        return [reply[1] for reply in replies]
