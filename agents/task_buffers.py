"""Offline data kept per task (per domain), sampled with every task equally represented.

Papers 001 and 004 train on data from many connectors: LOTJ's domain classifier needs the domain
label of every row, ODA samples each task's RL batch and context from that task's own data
(Algorithm 1, lines 3-5). One ``ReplayBuffer`` per task gives both, and keeps the rows of a
small task from drowning in a large one. Rows are labelled by the dataset's ``task_id`` column.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from agents.base import Dataset
from agents.buffer import Batch, ReplayBuffer, check_column_lengths, concat_batches


def buffer_rows(buffer: ReplayBuffer, idx: np.ndarray) -> Batch:
    """Rows ``idx`` of ``buffer`` in the layout of ``ReplayBuffer.sample``."""
    return {
        "obs": {k: v[idx] for k, v in buffer.obs.items()},
        "next_obs": {k: v[idx] for k, v in buffer.next_obs.items()},
        "action": buffer.action[idx],
        "reward": buffer.reward[idx],
        "terminated": buffer.terminated[idx],
        "intervened": buffer.intervened[idx],
    }


def check_task_ids(task_id: Any, rows: int) -> np.ndarray:
    """The ``task_id`` column as int64, or ValueError unless it holds one non-negative integer
    per row (0.5 was floored into task 0 and NaN failed in int() without naming the column)."""
    values = np.asarray(task_id)
    if values.ndim != 1 or len(values) != rows:
        raise ValueError(f"task_id must be one non-negative integer per dataset row ({rows}), "
                         f"got shape {values.shape}")
    if values.dtype.kind not in "iub":
        as_float = values.astype(np.float64) if values.dtype.kind == "f" else None
        bad = (np.arange(rows) if as_float is None
               else np.flatnonzero(~np.isfinite(as_float) | (as_float != np.round(as_float))))
        if len(bad):
            raise ValueError(f"task_id must be one non-negative integer per dataset row, got "
                             f"{values[bad[0]].item()!r} at row {int(bad[0])}")
    values = values.astype(np.int64)
    if (values < 0).any():
        row = int(np.flatnonzero(values < 0)[0])
        raise ValueError(f"task_id must be one non-negative integer per dataset row, got "
                         f"{values[row]} at row {row}")
    return values


class TaskBuffers:
    """One replay buffer per task id (a non-negative int)."""

    def __init__(self, observation_space: gym.spaces.Dict, action_dim: int, capacity: int):
        """``capacity``: transitions kept per task (the newest if a task has more)."""
        self.observation_space = observation_space
        self.action_dim = action_dim
        self.capacity = capacity
        self.buffers: dict[int, ReplayBuffer] = {}

    @property
    def task_ids(self) -> list[int]:
        """The tasks that have data, sorted."""
        return sorted(self.buffers)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def ensure(self, task_ids: list[int]) -> None:
        """Create (empty) buffers for ``task_ids``; used when restoring a checkpoint."""
        for task in task_ids:
            if task not in self.buffers:
                self.buffers[task] = ReplayBuffer(self.observation_space, self.action_dim,
                                                  self.capacity)

    def add_dataset(self, dataset: Dataset) -> int:
        """Split a dataset by its ``task_id`` column into the per-task buffers; rows stored."""
        if "task_id" not in dataset:
            raise ValueError("the dataset has no task_id column: per-task learners (LOTJ's "
                             "domain classifier, ODA) need one label per row; collect it with "
                             "`insertbench dataset recipe`")
        task_id = check_task_ids(dataset["task_id"], check_column_lengths(dataset))
        stored = 0
        for task in np.unique(task_id):
            rows = np.flatnonzero(task_id == task)
            part = {k: ({kk: np.asarray(vv)[rows] for kk, vv in v.items()} if isinstance(v, dict)
                        else np.asarray(v)[rows]) for k, v in dataset.items()}
            self.ensure([int(task)])
            stored += self.buffers[int(task)].add_dataset(part)
        return stored

    def sample_task(self, task: int, n: int, rng: np.random.Generator) -> Batch:
        """``n`` rows of one task, uniformly with replacement."""
        return self.buffers[task].sample(n, rng)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        """``n`` rows spread evenly over the tasks (the remainder to random tasks), with their
        task labels (n,)."""
        tasks = self.task_ids
        if not tasks:
            raise ValueError("no offline data: call pretrain(dataset) first")
        counts = np.full(len(tasks), n // len(tasks))
        counts[rng.choice(len(tasks), n % len(tasks), replace=False)] += 1
        parts, labels = [], []
        for task, count in zip(tasks, counts, strict=True):
            if count:
                parts.append(self.sample_task(task, int(count), rng))
                labels.append(np.full(count, task))
        return concat_batches(*parts), np.concatenate(labels)

    def sample_balanced(self, n: int, rng: np.random.Generator) -> tuple[Batch, np.ndarray]:
        """``n`` rows, half with reward > 0.5 and half without, from each task that has both
        (paper 001 section VI-B rebalances the reward classifier's data to 50/50 per
        connector); returns the rows and their task labels."""
        pools = []
        for task in self.task_ids:
            buffer = self.buffers[task]
            positive = buffer.reward[: len(buffer)] > 0.5
            if positive.any() and not positive.all():
                pools.append((task, np.flatnonzero(positive), np.flatnonzero(~positive)))
        if not pools:
            raise ValueError("no task has both successful and failed transitions: a reward "
                             "classifier cannot be trained on this data")
        picks = rng.integers(len(pools), size=n)
        parts, labels = [], []
        for i, (task, pos, neg) in enumerate(pools):
            count = int((picks == i).sum())
            if count == 0:
                continue
            n_pos = count // 2 + int(rng.integers(2)) * (count % 2)
            idx = np.concatenate([rng.choice(pos, n_pos), rng.choice(neg, count - n_pos)])
            parts.append(buffer_rows(self.buffers[task], idx))
            labels.append(np.full(count, task))
        return concat_batches(*parts), np.concatenate(labels)
