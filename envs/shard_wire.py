"""The wire between `envs.sharded_vector` (the parent) and its worker processes
(`envs.shard_worker`): a shared memory batch for every step's data, and messages over pipes.

A vector step crosses in shared memory (`SharedBatch`, a memory file both processes map): the
parent writes the actions, each worker writes its worlds' observations (images included),
rewards, terminations, truncations and infos; the pipe only carries a few bytes each way to say
"step" and "done". Infos of the usual form (the keys, value types and shapes of the first
reset's info, `InfoCodec`) are stored as bytes of the world's info row; any other info (a new
key, a final observation) travels pickled in the worker's reply.

A message is a pickle prefixed by its length, written to a plain pipe with `os.write`: one
request from the parent and one reply from the worker per command, nothing else on the pipe, so
a reply needs no polling and a worker's death is an end of file, never a hang. Both ends belong
to this package and to processes the parent itself started: nothing from outside is unpickled.
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import struct
import time
from typing import Any

import gymnasium as gym
import numpy as np

_LENGTH = struct.Struct("<Q")
_ALIGN = 64  # bytes: every array starts on its own cache line
_READ = 1 << 16  # bytes asked of a pipe at once (its usual capacity)
#: Seconds a process polls for a reply or the next command before it blocks (`Waiter`).
SPIN_S = 300e-6
#: Bytes of one world's info row; infos of the usual form that need more travel pickled.
INFO_ROW_BYTES = 1024


def send(fd: int, message: Any) -> None:
    """Write one message to the pipe `fd` (blocking until the reader has room)."""
    send_bytes(fd, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def send_bytes(fd: int, payload: bytes) -> None:
    """Write one already pickled message to the pipe `fd`."""
    data = memoryview(_LENGTH.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


def recv(fd: int) -> Any:
    """Read one message from the pipe `fd`; EOFError if the writer is gone."""
    data = _read_some(fd, _READ)
    while len(data) < _LENGTH.size:
        data += _read_some(fd, _LENGTH.size - len(data))
    (length,) = _LENGTH.unpack_from(data)
    chunks, have = [data], len(data)
    while have < _LENGTH.size + length:
        chunk = _read_some(fd, min(_READ, _LENGTH.size + length - have))
        chunks.append(chunk)
        have += len(chunk)
    return pickle.loads(b"".join(chunks)[_LENGTH.size:])


class Waiter:
    """Waits for a pipe to have data: polling it for up to `spin_s` first, then blocking.

    A process that blocks hands its core back, and on a virtual machine the idle core then
    takes tens of microseconds to wake for the next message (measured: 35-150 us of a 600 us
    vector step); a reply or the next command usually comes sooner than that, so a short poll
    (yielding to any other runnable process between polls) catches it on a warm core.
    """

    def __init__(self, fd: int, spin_s: float) -> None:
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self.spin_s = spin_s

    def wait(self, timeout_s: float | None = None) -> bool:
        """Whether data (or the end of the file) came within `timeout_s` (None: no limit)."""
        deadline = time.perf_counter() + self.spin_s
        while time.perf_counter() < deadline:
            if self._poll.poll(0):
                return True
            os.sched_yield()
        return bool(self._poll.poll(None if timeout_s is None else int(timeout_s * 1000)))


def _read_some(fd: int, size: int) -> bytes:
    chunk = os.read(fd, size)
    if not chunk:
        raise EOFError("the other end of the pipe closed")
    return chunk


class SharedBatch:
    """A vector step's data for `num_envs` worlds as NumPy arrays over the shared memory file
    `fd`, laid out alike in every process that maps it (the parent sizes the file first,
    `size_file`).

    `obs` maps each observation key (None for a Box space) to its (num_envs, *shape) array;
    `actions` (num_envs, *action shape) [float64 for a float space]; `rewards`,
    `terminations`, `truncations` (num_envs,); `info_rows` (num_envs, INFO_ROW_BYTES) bytes.
    """

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, num_envs: int,
                 fd: int) -> None:
        layout, nbytes = batch_layout(obs_space, act_space, num_envs)
        self._map = mmap.mmap(fd, nbytes)
        arrays = {
            name: np.ndarray(shape, dtype, buffer=self._map, offset=offset)
            for name, shape, dtype, offset in layout
        }
        self.actions = arrays.pop(("actions",))
        self.rewards = arrays.pop(("rewards",))
        self.terminations = arrays.pop(("terminations",))
        self.truncations = arrays.pop(("truncations",))
        self.info_rows = arrays.pop(("info_rows",))
        self.obs = {key: array for (_, key), array in arrays.items()}

    @staticmethod
    def size_file(obs_space: gym.Space, act_space: gym.Space, num_envs: int, fd: int) -> None:
        os.ftruncate(fd, batch_layout(obs_space, act_space, num_envs)[1])

    def put_obs(self, index: int, obs: Any) -> None:
        """Write one world's observation into row `index`."""
        if None in self.obs:
            self.obs[None][index] = obs
        else:
            for key, array in self.obs.items():
                array[index] = obs[key]

    def get_obs(self, copy: bool) -> Any:
        """The observation batch (views of the shared rows, or copies with `copy`): a dict for
        a Dict space, an array for a Box."""
        batch = {key: array.copy() if copy else array for key, array in self.obs.items()}
        return batch[None] if None in batch else batch

    def close(self) -> None:
        """Let go of the memory. It is unmapped once no array over it is left: observations
        handed out as views (`get_obs(copy=False)`) outlive the vector env, and unmapping them
        with `mmap.close()` made reading one a segmentation fault."""
        self.obs = {}
        self.actions = self.rewards = self.terminations = self.truncations = None
        self.info_rows = None
        self._map = None


def batch_layout(obs_space: gym.Space, act_space: gym.Space, num_envs: int
                 ) -> tuple[list[tuple[tuple, tuple[int, ...], np.dtype, int]], int]:
    """(name, shape, dtype, byte offset) of each array of a `SharedBatch`, and the total bytes;
    ValueError for spaces that are not a Box or a Dict of Boxes (observations), a Box
    (actions)."""
    if isinstance(obs_space, gym.spaces.Box):
        leaves: list[tuple[str | None, gym.spaces.Box]] = [(None, obs_space)]
    elif isinstance(obs_space, gym.spaces.Dict) and all(
        isinstance(sub, gym.spaces.Box) for sub in obs_space.values()
    ):
        leaves = list(obs_space.items())
    else:
        raise ValueError(
            f"worlds in worker processes need a Box or a Dict of Boxes observation space, got "
            f"{obs_space}; use processes=0 (worlds on threads)"
        )
    if not isinstance(act_space, gym.spaces.Box):
        raise ValueError(f"worlds in worker processes need a Box action space, got "
                         f"{act_space}; use processes=0 (worlds on threads)")
    # Float actions as float64: whatever float type the caller passes arrives unrounded.
    act_dtype = np.dtype(np.float64) if act_space.dtype.kind == "f" else act_space.dtype
    arrays = [(("obs", key), (num_envs, *box.shape), box.dtype) for key, box in leaves]
    arrays += [
        (("actions",), (num_envs, *act_space.shape), act_dtype),
        (("rewards",), (num_envs,), np.dtype(np.float64)),
        (("terminations",), (num_envs,), np.dtype(np.bool_)),
        (("truncations",), (num_envs,), np.dtype(np.bool_)),
        (("info_rows",), (num_envs, INFO_ROW_BYTES), np.dtype(np.uint8)),
    ]
    layout, offset = [], 0
    for name, shape, dtype in arrays:
        layout.append((name, shape, dtype, offset))
        size = int(np.prod(shape)) * dtype.itemsize
        offset += -(-size // _ALIGN) * _ALIGN
    return layout, offset


class InfoCodec:
    """Infos of one form as records of the info rows, and their merge across worlds.

    The form is an example info's: its keys in order, and for each a Python bool, int or float
    or a NumPy number (stored in the dtype `VectorEnv._add_info` gives it), an ndarray of a
    fixed shape and dtype, or a string that must stay the same (stored nowhere). An info fits
    when it has that form exactly; `merged` then builds what `envs.worlds.merge_world_infos` builds.
    """

    def __init__(self, example: dict[str, Any]) -> None:
        #: (key, kind, constant) per key; the stored ones are fields of `record`
        self.fields: list[tuple[str, type, Any]] = []
        names, formats = [], []
        for key, value in example.items():
            kind = type(value)
            if kind in (bool, int, float) or isinstance(value, np.number):
                names.append(key)
                formats.append(np.dtype(kind))
            elif kind is np.ndarray and value.dtype != object:
                names.append(key)
                formats.append(np.dtype((value.dtype, value.shape)))
            elif kind is not str:
                raise ValueError(f"info[{key!r}] of type {kind.__name__} has no fixed form")
            self.fields.append((key, kind, value if kind is str else None))
        packed = np.dtype({"names": names, "formats": formats})
        if packed.itemsize > INFO_ROW_BYTES:
            raise ValueError(f"the info needs {packed.itemsize} bytes, more than "
                             f"{INFO_ROW_BYTES}")
        #: One world's info row as a record (the fields packed, then padding).
        self.record = np.dtype({"names": names, "formats": formats,
                                "offsets": [packed.fields[n][1] for n in names],
                                "itemsize": INFO_ROW_BYTES})
        self._keys = list(example)
        self._stored = names

    @classmethod
    def of(cls, example: dict[str, Any]) -> InfoCodec | None:
        """The codec of `example`'s form, or None if it has no fixed form."""
        try:
            return cls(example)
        except ValueError:
            return None

    def records(self, rows: np.ndarray) -> np.ndarray:
        """The info rows (n, INFO_ROW_BYTES) as n records."""
        return rows.view(self.record)[:, 0]

    def fits(self, info: dict[str, Any]) -> bool:
        if list(info) != self._keys:
            return False
        record = self.record.fields
        for key, kind, constant in self.fields:
            value = info[key]
            if type(value) is not kind:
                return False
            if kind is np.ndarray:
                field = record[key][0]
                if value.shape != field.shape or value.dtype != field.base:
                    return False
            elif kind is str and value != constant:
                return False
            elif kind is int and not -(2**63) <= value < 2**63:
                return False
        return True

    def write(self, records: np.ndarray, index: int, info: dict[str, Any]) -> None:
        """Store a fitting info as record `index`."""
        records[index] = tuple(info[key] for key in self._stored)

    def decode(self, records: np.ndarray, index: int) -> dict[str, Any]:
        """The info stored as record `index`, as the world's env returned it."""
        record, info = records[index], {}
        for key, kind, constant in self.fields:
            if kind is str:
                info[key] = constant
            elif kind is np.ndarray:
                info[key] = record[key].copy()
            else:
                info[key] = kind(record[key])
        return info

    def merged(self, records: np.ndarray) -> dict[str, Any]:
        """Gymnasium's vector infos of the fitting infos in `records`, one per world."""
        n = len(records)
        everywhere = np.ones(n, dtype=np.bool_)
        merged = {}
        for key, kind, constant in self.fields:
            if kind is str:
                array = np.full(n, None, dtype=object)
                array[:] = constant
            else:
                array = records[key].copy()
            merged[key], merged[f"_{key}"] = array, everywhere.copy()
        return merged

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, InfoCodec) and self.fields == other.fields
                and self.record == other.record)
