"""The default cell function's contract with `benchmark.train.train` (a stand-in module here)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.cells import Cell, Evaluation, run_cell


def _records(n: int, successes: int) -> list[dict[str, Any]]:
    return [{"seed": 900 + i, "success": i < successes,
             "steps_to_success": 12 if i < successes else None,
             "time_to_success_s": 1.2 if i < successes else None,
             "final_distance_mm": 0.0, "peak_force_n": 4.0} for i in range(n)]


def _cell() -> Cell:
    return Cell("InsertBench/USB-v0", {"reward": "sparse"}, "sac", {"batch_size": 8}, 3, 200,
                100, 2, (900, 901))


def _train_result(evaluations: list[Evaluation], tmp_path: Path) -> Any:
    return types.SimpleNamespace(
        out_dir=tmp_path, agent=types.SimpleNamespace(name="sac"), steps=200, episodes=4,
        wall_clock_s=2.5, evaluations=evaluations, summaries=[{}] * len(evaluations),
        demo_episodes=20, intervention_steps=7)


def test_run_cell_passes_the_cell_to_train_and_stores_its_evaluations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def train(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return _train_result([Evaluation(s, s / 100, _records(2, k))
                              for s, k in ((0, 0), (100, 1), (200, 2))], tmp_path)

    monkeypatch.setitem(sys.modules, "benchmark.train", types.SimpleNamespace(train=train))
    result = run_cell(_cell(), tmp_path)
    assert calls == [{
        "task_id": "InsertBench/USB-v0", "agent_name": "sac", "seed": 3, "steps": 200,
        "config": {"batch_size": 8}, "env_kwargs": {"reward": "sparse"}, "out_dir": tmp_path,
        "eval_every": 100, "eval_episodes": 2, "eval_seeds": [900, 901], "num_envs": 1,
    }]
    assert [e.env_steps for e in result.curve] == [0, 100, 200]
    assert result.final is result.curve[-1]
    assert result.env_steps == 200 and result.train_wall_clock_s == 2.5
    assert result.info == {"training_episodes": 4, "agent": "sac", "demo_episodes": 20,
                           "intervention_steps": 7,  # the training cost the leaderboard reports
                           "torch_threads": torch.get_num_threads()}
    result.validate(_cell())


def test_run_cell_refuses_a_run_without_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "benchmark.train",
                        types.SimpleNamespace(train=lambda **_: _train_result([], tmp_path)))
    with pytest.raises(ValueError, match="no evaluation"):
        run_cell(_cell(), tmp_path)


def test_a_preset_makes_its_pinned_task_version_without_upgrade_advice(
    tmp_path: Path, recwarn: pytest.WarningsChecker
) -> None:
    """`matrix run quick` (USB-v1) printed Gymnasium's "out of date, consider upgrading to v2"
    as a raw colour-coded line from every worker for every env it made."""
    from benchmark.preset import check_runnable

    cell = Cell("InsertBench/USB-v1", {}, "p_controller", {}, 0, 0, 0, 1, (900,))
    check_runnable([cell])
    result = run_cell(cell, tmp_path)
    assert result.final.episodes[0]["seed"] == 900
    assert not [w for w in recwarn if "out of date" in str(w.message)]
    with pytest.warns(DeprecationWarning, match="out of date"):  # a typed old ID still warns
        import gymnasium as gym

        import envs  # noqa: F401

        gym.make("InsertBench/USB-v1").close()
