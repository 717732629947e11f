"""The default cell function's contract with `benchmark.train.train` (a stand-in module here)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark.cells import Cell, CellResult, Evaluation, run_cell


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
                           "torch_threads": torch.get_num_threads(), "resumed_from_step": 0}
    result.validate(_cell())


@pytest.mark.parametrize(("steps", "clock", "message"), [
    (100, float("nan"), "wall_clock_s must be a number of seconds >= 0, got nan"),
    (100, -1.0, "wall_clock_s must be a number of seconds >= 0, got -1.0"),
    (100.5, 1.0, "env_steps must be an integer >= 0, got 100.5"),
    (-1, 1.0, "env_steps must be an integer >= 0, got -1"),
])
def test_an_evaluation_the_store_cannot_hold_is_an_invalid_result(steps, clock, message):
    """A NaN wall-clock passed, then the store's NOT NULL column raised an IntegrityError that
    ended the whole matrix run at that cell, on every rerun (matrix18)."""
    result = CellResult(final=Evaluation(steps, clock, _records(2, 0)), curve=[], env_steps=0,
                        train_wall_clock_s=1.0)
    with pytest.raises(ValueError, match=re.escape(message)):
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


def _cut_off_at(step: int):
    """The runner's ``act_and_step``, killed (KeyboardInterrupt, which no executor catches) on
    call ``step``."""
    import benchmark.train as runner

    calls = [0]
    act_and_step = runner.act_and_step

    def cut(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == step:
            raise KeyboardInterrupt
        return act_and_step(*args, **kwargs)

    return cut


def test_a_cell_cut_off_mid_training_continues_to_what_one_attempt_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stale cell claimed again used to train from step 0; now it continues the killed
    attempt's checkpoint (made at eval_every) when the same code on the same host made it,
    and stores what an uninterrupted attempt stores. Otherwise it starts again."""
    import json

    import benchmark.store
    import benchmark.train as runner
    import tests.standin_env  # noqa: F401  (registers the stand-in)
    from benchmark.cells import CELL_HOST_FILE
    from benchmark.executors import execute_cell
    from tests.benchmark.test_train import _assert_same_final_state

    # The check in the clean commit CI runs; a dirty tree (a developer's) never continues.
    clean = benchmark.store.collect_provenance()
    clean = type(clean)(**(vars(clean) | {"suite_commit": "0" * 40}))
    monkeypatch.setattr(benchmark.store, "collect_provenance", lambda: clean)
    torch.set_num_threads(1)
    cell = Cell("tests.standin_env:InsertBenchStandIn/PegPoint-v0", {"goal_noise_mm": 1.0},
                "sac", {"hidden": (16, 16), "batch_size": 16, "learning_starts": 30,
                        "random_steps": 30}, 1, 200, 100, 2, (10_000, 10_001))
    straight = execute_cell(run_cell, cell, str(tmp_path / "straight"))
    assert straight.ok, straight.traceback

    def cut_then_rerun(folder: Path, between: Any = None) -> Any:
        with monkeypatch.context() as patch:
            patch.setattr(runner, "act_and_step", _cut_off_at(150))
            with pytest.raises(KeyboardInterrupt):
                execute_cell(run_cell, cell, str(folder))
        assert json.loads((folder / "checkpoint/runner.json").read_text())["step"] == 100
        if between is not None:
            between(folder)
        outcome = execute_cell(run_cell, cell, str(folder))
        assert outcome.ok, outcome.traceback
        assert outcome.result.env_steps == 200
        assert ([e.episodes for e in outcome.result.curve]
                == [e.episodes for e in straight.result.curve])
        _assert_same_final_state(tmp_path / "straight", folder)
        return outcome.result.info["resumed_from_step"]

    assert cut_then_rerun(tmp_path / "continued") == 100

    def other_threads(folder: Path) -> None:
        marker = folder / CELL_HOST_FILE
        marker.write_text(json.dumps(json.loads(marker.read_text()) | {"torch_threads": 2}))

    assert cut_then_rerun(tmp_path / "restarted", other_threads) == 0

    def damage(folder: Path) -> None:  # failed the cell on every retry
        (folder / "checkpoint/agent/weights.safetensors").write_bytes(b"junk")

    with pytest.warns(UserWarning, match=r"checkpoint \(step 100\) did not resume"):
        assert cut_then_rerun(tmp_path / "damaged", damage) == 0
    assert straight.result.info["resumed_from_step"] == 0
