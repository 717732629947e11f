"""One cell of a benchmark matrix: what it is, how it is identified, and how it is executed.

A cell is one run: a task ID with its env kwargs, an agent with its config, a training seed, a
budget of environment steps and an evaluation protocol (episodes and their seeds). Its identity is
the SHA-256 of its canonical JSON, so the same cell has the same hash in every preset, on every
machine and in every run of the matrix.

Executing a cell is one function, `CellFunction(cell, artifacts_dir) -> CellResult`. The default,
`run_cell`, trains and evaluates through `benchmark.train.train` (its typed `TrainResult`); the
executors and the store only ever see the function, so tests inject a cheap deterministic one.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

#: Agents that act by a fixed rule: they are evaluated, never trained (budget 0).
SCRIPTED_AGENTS = frozenset({"p_controller", "straight_down", "random_search", "spiral_search"})

#: Fields of `envs.episode.EpisodeRecord` every stored episode needs (the store keeps them in
#: typed columns; the record's other fields go to its `extra` column).
EPISODE_FIELDS = (
    "seed",
    "success",
    "steps_to_success",
    "time_to_success_s",
    "final_distance_mm",
    "peak_force_n",
)


#: More evaluation episodes than any paper's protocol: a typo beyond (10^12) listed its seeds
#: until the memory ran out.
MAX_EVAL_EPISODES = 100_000
#: The longest training budget [env steps]: three years at the 10 Hz policy rate.
MAX_TRAIN_STEPS = 10**9


#: The largest magnitude a stored time, distance or force may have [s, mm, N]: far beyond any
#: episode's, far below the 1e308 that printed as a 309-digit number.
MAX_STORED_MAGNITUDE = 1e9


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace and tuples as lists: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def first_unwritable(value: Any, key: str = "") -> tuple[str, Any] | None:
    """The dotted path (``a.b[2]``, below `key`) and value of the first NaN, +-inf or TOML
    date/time in nested dicts and lists, or None: what `canonical_json` cannot write."""
    if (isinstance(value, float) and not math.isfinite(value)) or isinstance(
            value, datetime.date | datetime.time):
        return key, value
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for sub_key, sub in items:
        if isinstance(sub_key, int):
            path = f"{key}[{sub_key}]"
        else:
            path = f"{key}.{sub_key}" if key else str(sub_key)
        found = first_unwritable(sub, path)
        if found is not None:
            return found
    return None


def _freeze(value: Any) -> Any:
    """Normalise TOML/JSON-like data: tuples become lists, integral floats stay floats."""
    if isinstance(value, Mapping):
        return {str(k): _freeze(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_freeze(v) for v in value]
    return value


@dataclass(frozen=True)
class Cell:
    """One run of the matrix.

    Attributes:
        task_id: Gymnasium ID, e.g. ``InsertBench/USB-v0``.
        env_kwargs: keyword arguments for ``gymnasium.make`` (reward, goal_noise_mm, ...).
        agent: registry name of the agent (``sac``, ``p_controller``, ...).
        agent_config: overrides of the agent's config dataclass.
        seed: training seed (environment and agent).
        budget_steps: environment steps of training; 0 means evaluation only.
        eval_every: environment steps between learning-curve evaluations (ignored at budget 0).
        eval_episodes: episodes per evaluation.
        eval_seeds: one reset seed per evaluation episode, disjoint from training seeds.
        method: label of the agent + config in reports (defaults to the agent name).
        task_label: label of the task variant in reports.
        num_envs: worlds trained on at once (``benchmark.vector_train``); in the identity
            only when not 1, so cells from before the field keep their hashes.
    """

    task_id: str
    env_kwargs: Mapping[str, Any]
    agent: str
    agent_config: Mapping[str, Any]
    seed: int
    budget_steps: int
    eval_every: int
    eval_episodes: int
    eval_seeds: tuple[int, ...]
    method: str = ""
    task_label: str = ""
    num_envs: int = 1

    def identity(self) -> dict[str, Any]:
        """Everything that determines the cell's results, as plain JSON data.

        Labels are left out on purpose: renaming a column in a report must not invalidate
        finished work.
        """
        return {
            "task_id": self.task_id,
            "env_kwargs": _freeze(self.env_kwargs),
            "agent": self.agent,
            "agent_config": _freeze(self.agent_config),
            "seed": self.seed,
            "budget_steps": self.budget_steps,
            "eval_every": self.eval_every if self.budget_steps > 0 else 0,
            "eval_episodes": self.eval_episodes,
            "eval_seeds": list(self.eval_seeds),
        } | ({"num_envs": self.num_envs} if self.num_envs != 1 else {})

    @functools.cached_property
    def config_hash(self) -> str:
        """Stable SHA-256 (hex) of the canonical JSON of `identity()`; computed once (the store
        asks it of every episode row: storing 20,000 episodes took 50 s, quadratic in them,
        with the store locked, matrix19)."""
        return hashlib.sha256(canonical_json(self.identity()).encode("ascii")).hexdigest()

    @property
    def short_hash(self) -> str:
        """First 12 hex digits of `config_hash`, for directory names and messages."""
        return self.config_hash[:12]

    def describe(self) -> str:
        """One line for progress bars and error messages."""
        return f"{self.task_label or self.task_id} | {self.method or self.agent} | seed {self.seed}"


@dataclass
class Evaluation:
    """One evaluation of a policy: N episodes on the cell's evaluation seeds.

    Attributes:
        env_steps: training environment steps consumed when the evaluation ran.
        wall_clock_s: training wall-clock seconds when the evaluation ran.
        episodes: one `envs.episode.EpisodeRecord.to_dict()` per episode (at least the keys
            of `EPISODE_FIELDS`; ``steps_to_success`` / ``time_to_success_s`` None when the
            episode failed).
    """

    env_steps: int
    wall_clock_s: float
    episodes: list[dict[str, Any]]


@dataclass
class CellResult:
    """What one finished cell produced.

    Attributes:
        curve: learning-curve evaluations in order of `env_steps`.
        final: the evaluation of the final policy (the one the success tables report).
        env_steps: total training environment steps.
        train_wall_clock_s: total training wall-clock seconds.
        artifacts_path: where checkpoints, logs and videos were written.
        info: anything else worth keeping (JSON-serialisable).
    """

    curve: list[Evaluation]
    final: Evaluation
    env_steps: int
    train_wall_clock_s: float
    artifacts_path: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def validate(self, cell: Cell) -> None:
        """Raise ValueError if the result cannot be stored or does not match the cell."""
        for name, evaluation in [("final", self.final)] + [
            (f"curve[{i}]", e) for i, e in enumerate(self.curve)
        ]:
            if not evaluation.episodes:
                raise ValueError(f"{name} evaluation of cell {cell.short_hash} has no episodes")
            # The store's NOT NULL columns: a NaN wall-clock was an IntegrityError that ended
            # the whole matrix run at this cell, every rerun (matrix18).
            steps, clock = evaluation.env_steps, evaluation.wall_clock_s
            if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 0:
                raise ValueError(f"{name} evaluation of cell {cell.short_hash}: env_steps must "
                                 f"be an integer >= 0, got {steps!r}")
            if isinstance(clock, bool) or not isinstance(clock, Real) or not (
                    0.0 <= clock <= MAX_STORED_MAGNITUDE):  # NaN fails the comparison
                raise ValueError(f"{name} evaluation of cell {cell.short_hash}: wall_clock_s "
                                 f"must be a number of seconds >= 0, got {clock!r}")
            for j, record in enumerate(evaluation.episodes):
                missing = [k for k in EPISODE_FIELDS if k not in record]
                if missing:
                    raise ValueError(
                        f"{name}.episodes[{j}] of cell {cell.short_hash} lacks {missing}; "
                        f"every episode record needs {list(EPISODE_FIELDS)}"
                    )
                # As the store reads them back: a peak of 3e12 N was stored, then refused on
                # every read, failing each report on the matrix.
                for key in ("time_to_success_s", "final_distance_mm", "peak_force_n"):
                    value = record[key]
                    if value is not None and not abs(float(value)) <= MAX_STORED_MAGNITUDE:
                        raise ValueError(f"{name}.episodes[{j}].{key} must be a number within "
                                         f"{MAX_STORED_MAGNITUDE:g}, got {value}")
                extra = {k: v for k, v in record.items() if k not in EPISODE_FIELDS}
                bad = first_unwritable(extra)
                if bad is not None:
                    raise ValueError(f"{name}.episodes[{j}].{bad[0]} is not finite: {bad[1]}")
        if len(self.final.episodes) != cell.eval_episodes:
            raise ValueError(
                f"final evaluation of cell {cell.short_hash} has {len(self.final.episodes)} "
                f"episodes, the protocol asks for {cell.eval_episodes}"
            )
        steps = [e.env_steps for e in self.curve]
        if steps != sorted(steps):
            raise ValueError(f"learning curve of cell {cell.short_hash} is not ordered: {steps}")


CellFunction = Callable[[Cell, Path], CellResult]


#: Beside a cell's run in its artifacts folder: what the run's floats depend on besides the cell
#: (code, libraries, torch threads, host), so that an attempt continues only its own kind.
CELL_HOST_FILE = "cell_host.json"


def _continue_or_clear(artifacts_dir: Path, keep: bool = True) -> int:
    """Keep a killed attempt's training run in ``artifacts_dir`` (unless not ``keep``) when
    ``train`` can continue it to the result an uninterrupted attempt gets: it has a checkpoint
    and was made by this clean commit of this suite version, these libraries, this many torch
    threads on this host. Otherwise empty the folder. Returns the env step the attempt
    continues from (0: from the start)."""
    import platform
    import shutil

    import torch

    from agents.registry import run_checkpoint_dir
    from benchmark.store import collect_provenance

    provenance = collect_provenance()
    here = {"suite_commit": provenance.suite_commit, "suite": provenance.suite_version,
            "mujoco": provenance.mujoco_version,
            "torch": provenance.torch_version, "python": provenance.python_version,
            "machine": platform.machine(), "hostname": provenance.hostname,
            "torch_threads": torch.get_num_threads()}
    marker = artifacts_dir / CELL_HOST_FILE
    checkpoint = run_checkpoint_dir(artifacts_dir)
    try:  # a dirty or unknown commit may be other code under the same name
        if (keep and checkpoint is not None and json.loads(marker.read_text()) == here
                and provenance.suite_commit != "unknown"
                and "-dirty" not in provenance.suite_commit):
            return int(json.loads((checkpoint / "runner.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shutil.rmtree(artifacts_dir, ignore_errors=True)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(here, indent=1))
    return 0


def run_cell(cell: Cell, artifacts_dir: Path) -> CellResult:
    """Train (unless scripted) and evaluate one cell through `benchmark.train.train`.

    The import is deferred so that the matrix layer, its store and its tests never need the
    training stack. Evaluation uses the cell's fixed seeds. A killed attempt's run in
    ``artifacts_dir`` is continued from its last checkpoint (every ``eval_every`` steps) where
    `_continue_or_clear` finds it the same code on the same host; ``train`` resumes exactly,
    so the result is what one uninterrupted attempt stores (``info["resumed_from_step"]``
    says where it picked up).
    """
    import torch

    from benchmark.train import train
    from envs.tasks import pinned_versions

    def attempt() -> Any:
        with pinned_versions():  # a preset pins its task versions (`--task-version` for others)
            return train(
                task_id=cell.task_id,
                agent_name=cell.agent,
                seed=cell.seed,
                steps=cell.budget_steps,
                config=dict(cell.agent_config),
                env_kwargs=dict(cell.env_kwargs),
                out_dir=artifacts_dir,
                eval_every=cell.eval_every,
                eval_episodes=cell.eval_episodes,
                eval_seeds=list(cell.eval_seeds),
                num_envs=cell.num_envs,
            )

    resumed_from = _continue_or_clear(Path(artifacts_dir))
    try:
        result = attempt()
    except Exception as err:  # noqa: BLE001 - any failure of a resume: start again once
        if not resumed_from:
            raise
        # A checkpoint that does not resume (a damaged file) failed the cell on every retry.
        warnings.warn(f"cell {cell.short_hash}: the killed attempt's checkpoint (step "
                      f"{resumed_from}) did not resume ({type(err).__name__}: {err}); "
                      "training again from step 0", UserWarning, stacklevel=2)
        resumed_from = _continue_or_clear(Path(artifacts_dir), keep=False)
        result = attempt()
    if not result.evaluations:
        raise ValueError(f"train returned no evaluation for cell {cell.short_hash}")
    return CellResult(
        curve=result.evaluations,
        final=result.evaluations[-1],
        env_steps=result.steps,
        train_wall_clock_s=result.wall_clock_s,
        artifacts_path=str(result.out_dir),
        info={"training_episodes": result.episodes, "agent": result.agent.name,
              "demo_episodes": result.demo_episodes,
              "intervention_steps": result.intervention_steps,
              # A learned cell's floats depend on it (the order of torch's sums); the local
              # executor gives each worker cores // workers threads, so it is recorded.
              "torch_threads": torch.get_num_threads(), "resumed_from_step": resumed_from},
    )


#: `benchmark.executors.execute_cell` leaves the artifacts folder to this cell function.
run_cell.resumes_artifacts = True


def load_cell_function(spec: str) -> CellFunction:
    """Resolve ``module:function`` (e.g. ``benchmark.testing:synthetic_cell_for_tests``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"cell function must be given as module:function, got {spec!r}")
    function = getattr(importlib.import_module(module_name), attr, None)
    if not callable(function):
        raise ValueError(f"{spec!r} is not a callable cell function")
    return function


def cells_by_hash(cells: Sequence[Cell]) -> dict[str, Cell]:
    """Index cells by config hash; raise ValueError on two cells with the same identity."""
    index: dict[str, Cell] = {}
    for cell in cells:
        other = index.setdefault(cell.config_hash, cell)
        if other is not cell:
            fix = ("remove the duplicate axis value from the preset" if cell.method == other.method
                   else f"agents {other.method!r} and {cell.method!r} are one agent with one "
                   "config and budget; remove one")
            raise ValueError(
                f"two cells are identical ({cell.describe()} and {other.describe()}); {fix}"
            )
    return index
