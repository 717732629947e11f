"""The default cell function's contract with `benchmark.train.train` (a stand-in module here)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from benchmark.cells import Cell, run_cell


def _records(n: int, successes: int) -> list[dict[str, Any]]:
    return [{"success": i < successes, "steps_to_success": 12 if i < successes else None,
             "seconds_to_success": 1.2 if i < successes else None,
             "final_distance_mm": 0.0, "peak_force_n": 4.0} for i in range(n)]


def _cell() -> Cell:
    return Cell("InsertBench/USB-v0", {"reward": "sparse"}, "sac", {"batch_size": 8}, 3, 200,
                100, 2, (900, 901))


def test_run_cell_passes_the_cell_to_train_and_reads_its_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def train(*, eval_seeds: list[int] | None = None, **kwargs: Any) -> dict[str, Any]:
        calls.append({**kwargs, "eval_seeds": eval_seeds})
        return {"curve": [{"env_steps": s, "wall_clock_s": s / 100, "episodes": _records(2, k)}
                          for s, k in ((0, 0), (100, 1), (200, 2))],
                "wall_clock_s": 2.5}

    monkeypatch.setitem(sys.modules, "benchmark.train", types.SimpleNamespace(train=train))
    result = run_cell(_cell(), tmp_path)
    assert calls == [{
        "task_id": "InsertBench/USB-v0", "agent_name": "sac", "seed": 3, "steps": 200,
        "config": {"batch_size": 8}, "env_kwargs": {"reward": "sparse"}, "out_dir": tmp_path,
        "eval_every": 100, "eval_episodes": 2, "eval_seeds": [900, 901],
    }]
    assert [e.env_steps for e in result.curve] == [0, 100, 200]
    assert result.final is result.curve[-1]
    assert result.env_steps == 200 and result.train_wall_clock_s == 2.5
    result.validate(_cell())


def test_run_cell_omits_eval_seeds_when_train_does_not_take_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def train(**kwargs: Any) -> dict[str, Any]:
        seen.extend(kwargs)
        return {"curve": [{"env_steps": 0, "episodes": _records(2, 1)}]}

    monkeypatch.setitem(sys.modules, "benchmark.train", types.SimpleNamespace(train=train))
    run_cell(_cell(), tmp_path)
    assert "eval_seeds" not in seen and "eval_episodes" in seen


def test_run_cell_rejects_output_it_cannot_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def train(**kwargs: Any) -> float:
        return 0.5

    monkeypatch.setitem(sys.modules, "benchmark.train", types.SimpleNamespace(train=train))
    with pytest.raises(TypeError, match="curve"):
        run_cell(_cell(), tmp_path)
