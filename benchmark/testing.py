"""Test fixtures for the matrix layer. Nothing here is a benchmark result.

`synthetic_cell_for_tests` stands in for training and evaluation so that the store, executors,
resumption and reports can be tested in seconds without MuJoCo or torch. It is a deterministic,
seeded numpy simulation: a success probability that rises with training steps toward a ceiling
set by the agent and the task variant, sampled per evaluation episode. Its numbers mean nothing
about insertion; they only have the shape of real results.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np

from benchmark.cells import Cell, CellResult, Evaluation, canonical_json

#: Agent-config keys the fixture reads (a real agent would reject them).
SLEEP_KEY = "synthetic_sleep_s"
FAIL_SEED_KEY = "synthetic_fail_seed"
CRASH_SEED_KEY = "synthetic_crash_seed"
WARNING_KEY = "synthetic_warning"
REPLAY_KEY = "synthetic_replay_seeds"


def _unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by `text`."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def _evaluate(cell: Cell, eval_index: int, env_steps: int) -> Evaluation:
    ceiling = 0.35 + 0.6 * _unit_hash(cell.agent + "|" + cell.method)
    ceiling *= 1.0 - 0.5 * _unit_hash(cell.task_id + canonical_json(dict(cell.env_kwargs)))
    start = 0.3 * ceiling
    horizon = max(cell.budget_steps, 1) / 3.0
    p = ceiling - (ceiling - start) * math.exp(-env_steps / horizon)
    episodes = []
    for eval_seed in cell.eval_seeds:
        # A scripted baseline's episodes do not depend on the training seed.
        seed = 0 if cell.agent_config.get(REPLAY_KEY) else cell.seed
        rng = np.random.default_rng([seed, eval_seed, eval_index])
        success = bool(rng.random() < p)
        steps = int(rng.integers(8, 60)) if success else None
        episodes.append({
            "seed": eval_seed,
            "success": success,
            "steps_to_success": steps,
            "time_to_success_s": None if steps is None else steps * 0.1,
            "final_distance_mm": 0.0 if success else float(rng.uniform(1.0, 15.0)),
            "peak_force_n": float(rng.uniform(2.0, 25.0)),
        })
    # Simulated, not measured, so that results are identical on every executor.
    return Evaluation(env_steps=env_steps, wall_clock_s=env_steps * 0.004, episodes=episodes)


def synthetic_cell_for_tests(cell: Cell, artifacts_dir: Path) -> CellResult:
    """Test fixture cell function: deterministic fake training and evaluation of one cell.

    Agent-config keys: ``synthetic_sleep_s`` (seconds to sleep, to make a cell slow enough to
    be killed mid-run) and ``synthetic_fail_seed`` (raise for that training seed, to exercise
    failure recording) and ``synthetic_crash_seed`` (end the worker process abruptly for that
    training seed) and ``synthetic_warning`` (a UserWarning to issue) and
    ``synthetic_replay_seeds`` (the same episodes for every training seed, as a scripted
    baseline evaluated on fixed seeds gives).
    """
    if WARNING_KEY in cell.agent_config:
        warnings.warn(str(cell.agent_config[WARNING_KEY]), UserWarning, stacklevel=1)
    time.sleep(float(cell.agent_config.get(SLEEP_KEY, 0.0)))
    if cell.agent_config.get(CRASH_SEED_KEY) == cell.seed:
        os._exit(70)  # like a segfault in a simulator: the worker process vanishes
    if cell.agent_config.get(FAIL_SEED_KEY) == cell.seed:
        raise RuntimeError(f"synthetic failure requested for seed {cell.seed}")
    if cell.budget_steps > 0:
        points = list(range(0, cell.budget_steps + 1, cell.eval_every))
        if points[-1] != cell.budget_steps:
            points.append(cell.budget_steps)
    else:
        points = [0]
    curve = [_evaluate(cell, i, steps) for i, steps in enumerate(points)]
    (artifacts_dir / "synthetic_curve.json").write_text(json.dumps(
        [{"env_steps": e.env_steps, "successes": sum(r["success"] for r in e.episodes)}
         for e in curve]))
    return CellResult(
        curve=curve,
        final=curve[-1],
        env_steps=cell.budget_steps,
        train_wall_clock_s=curve[-1].wall_clock_s,
        artifacts_path=str(artifacts_dir),
        info={"fixture": "synthetic_cell_for_tests"},
    )
