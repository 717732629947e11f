"""A ring replay buffer with numpy storage for dictionary observations.

Images stay uint8 in storage (a 64x64x3 frame is 12 KiB, not 48 KiB as float32); encoders convert
them on the fly. Batches are plain dicts in the ``Dataset`` layout of ``agents.base``, so offline
datasets, demo buffers and online buffers mix freely (``concat_batches`` is RLPD's 50/50 sampling).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.base import Dataset, Transition

Batch = dict[str, Any]


def _obs_row(field: str, obs: Mapping[str, Any], key: str, store: np.ndarray) -> np.ndarray:
    """``obs[key]`` checked to fit one row of ``store``; ``field`` is "obs" or "next_obs"."""
    return check_observation_entry(f"transition {field}", obs, key, store.shape[1:], store.dtype)


def _row(field: str, value: Any, store: np.ndarray) -> np.ndarray:
    """``value`` checked to fit one row of ``store`` (see ``ReplayBuffer.add``)."""
    return check_entry(f"transition {field}", value, store.shape[1:], store.dtype)


def _flag(field: str, value: Any) -> bool:
    """A transition's boolean: True, False, or a number 0 or 1 (numpy's too); anything else
    (NaN, 0.2, "no") was stored as True, cutting the bootstrap without a word."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool | np.bool_) or (
            isinstance(value, int | float | np.integer | np.floating) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"transition {field} must be True or False, got {value!r}")


def check_observation_entry(what: str, obs: Mapping[str, Any], key: str,
                            shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``obs[key]`` checked by ``check_entry``; a missing key is a ValueError too."""
    if key not in obs:
        raise ValueError(f"{what} has no {key!r}; it has {sorted(obs)}")
    return check_entry(f"{what}[{key!r}]", obs[key], shape, dtype)


def check_entry(what: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``value`` as an array, checked to have ``shape`` and to be a uint8 image if ``dtype`` is
    uint8, or else finite numbers; errors name ``what``. A NaN, or an image wrapped into uint8,
    poisons every update and action that follows, so it is refused where it enters."""
    value = np.asarray(value)
    if value.shape != tuple(shape):
        raise ValueError(f"{what} has shape {value.shape}, expected {tuple(shape)}")
    if np.dtype(dtype) == np.uint8:
        if value.dtype != np.uint8:
            raise ValueError(f"{what} must be a uint8 image (0-255), got {value.dtype}")
    elif not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
              or value.dtype == np.bool_):  # complex too: torch drops the imaginary part
        raise ValueError(f"{what} must be real numbers, got {value.dtype}")
    elif not np.all(np.isfinite(value)):
        raise ValueError(f"{what} is not finite ({value}); refused")
    return value


def check_has_rows(dataset: Dataset, what: str = "transitions") -> int:
    """The number of rows of ``dataset``; ValueError when it has none (pretraining on an empty
    dataset failed inside numpy or torch: "zero-size array", "tuple index out of range")."""
    n = len(dataset["action"])
    if n == 0:
        raise ValueError(f"the dataset holds no {what}")
    return n


def check_column_lengths(dataset: Dataset) -> int:
    """The number of rows of ``dataset`` (its actions); ValueError naming every column of
    another length. Each column holds one entry a row (each ``obs``/``next_obs`` entry too): a
    short one was cut to or an IndexError where rows are picked (a per-task split, the labelled
    rows of ``socket_offset_m``), and a column no learner reads was no exception (agents25)."""
    n = len(dataset["action"])
    lengths: dict[str, int] = {}
    for name, column in dataset.items():
        if isinstance(column, Mapping):
            lengths |= {f"{name}[{k!r}]": len(v) for k, v in column.items()}
        elif np.ndim(column) >= 1:
            lengths[name] = len(column)
    uneven = {k: v for k, v in lengths.items() if v != n}
    if uneven:
        raise ValueError(f"dataset columns differ in length: action has {n} rows, {uneven}")
    return n


def check_row_shapes(dataset: Dataset, obs_shapes: Mapping[str, tuple[int, ...]],
                     action_shape: tuple[int, ...], what: str) -> None:
    """ValueError, its message starting with ``what``, unless the rows of ``dataset``'s actions
    and of those of its ``obs``/``next_obs`` entries named in ``obs_shapes`` have those shapes
    (an entry the dataset lacks is not checked here)."""
    shapes = {f"{part}[{k!r}]": (tuple(np.shape(dataset[part][k])[1:]), tuple(shape))
              for part in ("obs", "next_obs") for k, shape in obs_shapes.items()
              if k in dataset.get(part, {})}
    shapes["action"] = (tuple(np.shape(dataset["action"])[1:]), tuple(action_shape))
    # One number a row: a (N, 3) reward column was numpy's "could not be broadcast", late.
    shapes |= {k: (tuple(np.shape(dataset[k])[1:]), ()) for k in SCALAR_COLUMNS if k in dataset}
    other = {k: v for k, v in shapes.items() if v[0] != v[1]}
    if other:
        raise ValueError(f"{what} differ in shape from this env's (dataset, env): {other}; was "
                         "it recorded with other env kwargs?")


#: A dataset's columns of one number a row; the flags among them are 0 or 1.
SCALAR_COLUMNS = ("reward", "terminated", "intervened")
#: is_demo 0.5 was True; truncated 0.5 trained, and a run counted its episodes by it (data24)
FLAG_COLUMNS = ("terminated", "truncated", "intervened", "is_demo", "failure_demo")
#: The largest magnitude of a number in a dataset's float columns: far above any reading of the
#: tasks (forces of 10^4 N, rewards of a few hundred), far below float32's overflow.
MAX_DATASET_MAGNITUDE = 1e6


def check_image_dtypes(dataset: Dataset, image_keys: Iterable[str], what: str) -> None:
    """ValueError unless the observation entries `image_keys` (the env's uint8 images) are
    uint8 in `dataset`'s obs and next_obs: float images in [0, 1] were cast into the uint8
    buffer as black frames, and integers above 255 wrapped, without a word (data21)."""
    for part in ("obs", "next_obs"):
        for key in image_keys:
            dtype = np.asarray(dataset[part][key]).dtype
            if dtype != np.uint8:
                raise ValueError(f"{what}: {part}[{key!r}] holds {dtype} images, where the env's "
                                 "are uint8 (0-255); convert them (a float image in [0, 1] "
                                 "would be stored black)")


def check_column_values(name: str, values: np.ndarray, source: str) -> None:
    """ValueError naming ``source`` and the column ``name`` unless its numbers are finite and
    within ``MAX_DATASET_MAGNITUDE`` (uint8 images pass) and, for a ``FLAG_COLUMNS`` column,
    0 or 1 (see ``check_dataset_values``)."""
    if values.ndim == 0:  # "len() of unsized object", exit 1 (data24)
        raise ValueError(f"{source}: {name} is one value ({values.tolist()!r}), not a column "
                         "of one per transition; refused")
    if values.dtype == np.uint8 or len(values) == 0:
        return
    if values.dtype.kind not in "biuf":  # numbers as text passed astype, then failed in torch
        raise ValueError(f"{source}: {name} holds {values.dtype} values, not numbers (bool, "
                         "integer or float); refused")
    if name in FLAG_COLUMNS:
        wrong = ~np.isin(values, (0, 1))
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise ValueError(f"{source}: {name} must be 0 or 1 (a flag), row {row} holds "
                             f"{values[row].tolist()}; refused")
        return
    flat = values.reshape(len(values), -1).astype(np.float64)
    bad = ~(np.abs(flat) <= MAX_DATASET_MAGNITUDE).all(axis=1)  # NaN fails the comparison
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = ("is not finite" if not np.isfinite(flat[row]).all() else
                f"exceeds {MAX_DATASET_MAGNITUDE:g} in magnitude")
        raise ValueError(f"{source}: {name} {what} at row {row} ({bad.sum()} rows): "
                         f"{values[row].tolist()}; refused")


def check_dataset_values(dataset: Dataset, keys: Sequence[str],
                         action_space: gym.spaces.Box | None = None,
                         source: str = "dataset") -> None:
    """ValueError naming ``source``, the column and the first row where ``dataset`` holds a
    NaN or inf, or a number beyond ``MAX_DATASET_MAGNITUDE`` (in ``obs``/``next_obs`` entries
    ``keys``, ``action``, ``reward``) or, given ``action_space``, an action outside its bounds:
    a NaN poisons every update that samples it (NaN weights, found only at the first act),
    rewards of 1e30 trained inf optimizer state without a word, and a demo of +-50 in a
    [-1, 1] space is no demonstration."""
    columns = {"action": dataset["action"], "reward": dataset["reward"]}
    columns |= {f"{part}[{k!r}]": dataset[part][k] for part in ("obs", "next_obs") for k in keys}
    columns |= {name: dataset[name] for name in FLAG_COLUMNS if name in dataset}
    for name, column in columns.items():
        check_column_values(name, np.asarray(column), source)
    if action_space is not None and len(dataset["action"]):
        actions = np.asarray(dataset["action"], dtype=np.float64)
        outside = ((actions < action_space.low - 1e-6) | (actions > action_space.high + 1e-6))
        outside = outside.reshape(len(actions), -1).any(axis=1)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise ValueError(f"{source}: action at row {row} ({outside.sum()} rows) lies outside "
                             f"the env's action space [{action_space.low.min():g}, "
                             f"{action_space.high.max():g}]: {actions[row].tolist()}; refused")


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions (s, a, r, s', terminated, intervened)."""

    def __init__(self, observation_space: gym.spaces.Dict, action_dim: int, capacity: int):
        """Allocate storage for ``capacity`` transitions.

        Args:
            observation_space: the Dict space; one array per key with the key's dtype and shape.
            action_dim: length of the stored action vector.
            capacity: maximum number of transitions; the oldest are overwritten first.
        """
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = int(capacity)
        self.keys = list(observation_space.spaces)
        self.obs = {
            k: np.zeros((capacity, *s.shape), dtype=s.dtype)
            for k, s in observation_space.spaces.items()
        }
        # np.zeros, not zeros_like: untouched rows stay unallocated pages (lazy calloc).
        self.next_obs = {k: np.zeros(v.shape, v.dtype) for k, v in self.obs.items()}
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros((capacity,), dtype=np.float32)
        self.terminated = np.zeros((capacity,), dtype=bool)
        self.intervened = np.zeros((capacity,), dtype=bool)
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, transition: Transition, action: np.ndarray | None = None) -> None:
        """Store one transition; ``action`` overrides ``transition.action`` (residual RL). A
        step that ended in a physics error (``Transition.blown_up``) is left out: its reward
        and next observation are stand-ins, and a self-loop bootstrapping from the last real
        state would be learnt as the action's outcome (the buffer keeps no episode bounds).

        ValueError, storing nothing, for a missing key, a wrong shape, a non-finite number or
        an image that is not uint8: one NaN reward or observation made every later update and
        action NaN, and an int or float image was wrapped into uint8 (1000 -> 232).
        """
        if transition.blown_up:
            return
        i = self.ptr
        obs = {k: _obs_row("obs", transition.obs, k, self.obs[k]) for k in self.keys}
        next_obs = {k: _obs_row("next_obs", transition.next_obs, k, self.next_obs[k])
                    for k in self.keys}
        act = _row("action", transition.action if action is None else action, self.action)
        reward = _row("reward", transition.reward, self.reward)
        terminated = _flag("terminated", transition.terminated)
        intervened = _flag("intervened", transition.intervened)
        for k in self.keys:
            self.obs[k][i] = obs[k]
            self.next_obs[k][i] = next_obs[k]
        self.action[i] = act
        self.reward[i] = reward
        self.terminated[i] = terminated
        self.intervened[i] = intervened
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add_dataset(self, dataset: Dataset) -> int:
        """Append the rows of a ``Dataset`` (only the newest ``capacity`` if it is larger),
        checked first (``check_dataset``). Returns the number of rows stored."""
        n = self.check_dataset(dataset)
        skipped = max(0, n - self.capacity)  # only the newest rows fit
        if skipped:  # datasets ordered by task lost whole tasks without a word
            warnings.warn(f"the dataset's {n:,} rows exceed the buffer's {self.capacity:,}: "
                          f"only the last {self.capacity:,} are kept (raise the agent's "
                          "buffer size setting)",
                          stacklevel=2)
        rows = np.arange(skipped, n)
        idx = (self.ptr + skipped + np.arange(len(rows))) % self.capacity
        zeros = np.zeros(n, dtype=bool)
        for k in self.keys:
            self.obs[k][idx] = np.asarray(dataset["obs"][k])[rows]
            self.next_obs[k][idx] = np.asarray(dataset["next_obs"][k])[rows]
        self.action[idx] = np.asarray(dataset["action"])[rows]
        self.reward[idx] = np.asarray(dataset["reward"])[rows]
        self.terminated[idx] = np.asarray(dataset.get("terminated", zeros))[rows]
        self.intervened[idx] = np.asarray(dataset.get("intervened", zeros))[rows]
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + len(rows), self.capacity)
        return len(rows)

    def check_dataset(self, dataset: Dataset) -> int:
        """The number of rows of ``dataset``; ValueError unless it fits this buffer: every
        observation key, columns of one length, rows of this env's shapes, plausible values
        (``check_dataset_values``). Agents call it before anything else reads the data (AWAC's
        normaliser met a short row first, as a tensor-size RuntimeError)."""
        missing = [k for k in self.keys
                   if k not in dataset.get("obs", {}) or k not in dataset.get("next_obs", {})]
        if missing:
            raise ValueError(f"dataset lacks observation keys {missing}; it has "
                             f"{sorted(dataset.get('obs', {}))}")
        # Shorter columns were cut to the action's rows or failed with an IndexError.
        n = check_column_lengths(dataset)
        # 32 px frames into a 48 px env's buffer were numpy's "could not be broadcast".
        check_row_shapes(dataset, {k: self.obs[k].shape[1:] for k in self.keys},
                         self.action.shape[1:], "dataset rows")
        check_image_dtypes(dataset, [k for k in self.keys if self.obs[k].dtype == np.uint8],
                           "dataset")
        check_dataset_values(dataset, self.keys)
        return n

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniformly sample ``batch_size`` transitions (with replacement) as numpy arrays."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.rows(rng.integers(0, self.size, size=batch_size))

    def rows(self, idx: np.ndarray) -> Batch:
        """The transitions at storage positions ``idx`` (ints in [0, len)) as numpy arrays."""
        return {
            "obs": {k: v[idx] for k, v in self.obs.items()},
            "next_obs": {k: v[idx] for k, v in self.next_obs.items()},
            "action": self.action[idx],
            "reward": self.reward[idx],
            "terminated": self.terminated[idx],
            "intervened": self.intervened[idx],
        }

    def save(self, path: str | Path) -> None:
        """Write the filled part to ``path`` (.npz, uncompressed, no pickled objects)."""
        n = self.size
        arrays = {f"obs/{k}": v[:n] for k, v in self.obs.items()}
        arrays |= {f"next_obs/{k}": v[:n] for k, v in self.next_obs.items()}
        arrays |= {
            "action": self.action[:n],
            "reward": self.reward[:n],
            "terminated": self.terminated[:n],
            "intervened": self.intervened[:n],
            "ptr_size_capacity": np.asarray([self.ptr, self.size, self.capacity], dtype=np.int64),
        }
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def load(self, path: str | Path) -> None:
        """Restore contents saved by ``save`` into this (same-shaped) buffer, one column at a
        time (a whole pixel buffer read at once needed twice its size in memory); ValueError
        naming ``path`` for counters or columns that ``save`` cannot have written: a resumed
        run trained on a damaged file's zero rows, or on rewards of 1e30, without a word."""
        with np.load(path, allow_pickle=False) as data:
            counters = np.asarray(data["ptr_size_capacity"] if "ptr_size_capacity" in data
                                  else None)
            if counters.shape != (3,) or not np.issubdtype(counters.dtype, np.integer):
                raise ValueError(f"{path}: ptr_size_capacity must be 3 integers, got "
                                 f"{counters.tolist()} (a damaged or edited file?)")
            ptr, size, capacity = (int(x) for x in counters)
            if capacity != self.capacity:
                raise ValueError(f"{path} holds a buffer of capacity {capacity}, "
                                 f"this one has {self.capacity}")
            # Filled in order from row 0, so while not full the next row is the size.
            if not (0 <= size <= capacity and 0 <= ptr < capacity
                    and (size == capacity or ptr == size)):
                raise ValueError(f"{path}: pointer {ptr} and size {size} cannot belong to a "
                                 f"buffer of capacity {capacity}")
            self.ptr = self.size = 0  # until every column is in: a refused file leaves it empty
            targets = {f"obs/{k}": self.obs[k] for k in self.keys}
            targets |= {f"next_obs/{k}": self.next_obs[k] for k in self.keys}
            targets |= {name: getattr(self, name) for name in ("action", *SCALAR_COLUMNS)}
            for name, target in targets.items():
                if name not in data:
                    raise ValueError(f"{path} lacks {name} (a damaged file, or one of another "
                                     "env's buffer)")
                values = data[name]
                want = (size, *target.shape[1:])
                if values.shape != want:
                    raise ValueError(f"{path}: {name} has shape {values.shape}, this buffer's "
                                     f"{size} rows need {want} (a damaged or edited file?)")
                check_column_values(name, values, str(path))
                target[:size] = values
        self.ptr, self.size = ptr, size


def concat_batches(*batches: Batch) -> Batch:
    """Concatenate batches row-wise (e.g. half demo, half online: RLPD's symmetric sampling)."""
    out: Batch = {}
    for key, value in batches[0].items():
        if isinstance(value, Mapping):
            out[key] = {k: np.concatenate([b[key][k] for b in batches]) for k in value}
        else:
            out[key] = np.concatenate([b[key] for b in batches])
    return out


def batch_to_torch(batch: Batch, device: torch.device | str = "cpu") -> Batch:
    """numpy batch -> torch tensors on ``device`` (images stay uint8; floats float32)."""
    out: Batch = {}
    for key, value in batch.items():
        if isinstance(value, Mapping):
            out[key] = {k: torch.as_tensor(v, device=device) for k, v in value.items()}
        elif value.dtype == np.bool_:
            out[key] = torch.as_tensor(value, device=device, dtype=torch.float32)
        else:
            out[key] = torch.as_tensor(value, device=device)
    return out


def save_dataset(path: str | Path, dataset: Dataset) -> None:
    """Write a ``Dataset`` to .npz (observation entries as ``obs/<key>``, ``next_obs/<key>``)."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in dataset.items():
        if isinstance(value, Mapping):
            arrays |= {f"{key}/{k}": np.asarray(v) for k, v in value.items()}
        else:
            arrays[key] = np.asarray(value)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_dataset(path: str | Path) -> dict[str, Any]:
    """Read a ``Dataset`` written by ``save_dataset`` (no pickled objects are accepted)."""
    with open(path, "rb") as file:  # a text file was numpy's "contains pickled (object) data"
        if file.read(4) != b"PK\x03\x04":
            raise ValueError("not an .npz archive (its bytes do not begin as a zip file's)")
    dataset: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            if "/" in name:
                group, key = name.split("/", 1)
                dataset.setdefault(group, {})[key] = data[name]
            else:
                dataset[name] = data[name]
    return dataset
