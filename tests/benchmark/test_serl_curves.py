"""benchmark.serl_curves: grouping check_serl runs by name, steps to target, median, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmark.serl_curves import load_runs, median_steps, table


def _run(root, name, successes, task="InsertBench/USB-v1"):
    d = root / name
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"task_id": task}))
    (d / "evaluations.json").write_text(json.dumps(
        [{"env_steps": 250 * (i + 1), "summary": {"successes": n}}
         for i, n in enumerate(successes)]))


def test_groups_by_name_and_reports_steps_to_target_per_seed(tmp_path):
    _run(tmp_path, "usb_rlpd_s1", [0, 19, 12, 18, 20, 20])
    _run(tmp_path, "usb_rlpd_s0", [0, 18, 19, 20])
    _run(tmp_path, "usb_hil_serl_s0", [5, 10, 17])
    groups = load_runs(tmp_path)
    assert [r["seed"] for r in groups["usb_rlpd"]] == [0, 1]
    text = table(groups, 18)
    assert "| usb_rlpd | USB-v1 | 0,1 | 500, 1,000 | 500 | 20, 20 |" in text
    assert "| usb_hil_serl | USB-v1 | 0 | > 750 | not reached | 17 |" in text
    assert list(load_runs(tmp_path, "_rlpd_s")) == ["usb_rlpd"]  # --match


def test_median_counts_runs_that_never_held_the_target_as_slowest():
    assert median_steps([1000, None, 500]) == "1,000"
    assert median_steps([None, None, 500]) == "not reached"


def test_a_folder_without_runs_or_a_badly_named_run_is_one_line_and_exit_1(tmp_path):
    def cli(root):
        return subprocess.run([sys.executable, "-m", "benchmark.serl_curves", str(root)],
                              capture_output=True, text=True)

    empty = cli(tmp_path)
    assert empty.returncode == 1 and "no run with evaluations.json" in empty.stderr
    _run(tmp_path, "usb_rlpd", [20])
    bad = cli(tmp_path)
    assert bad.returncode == 1 and "<group>_s<seed>" in bad.stderr
    assert "Traceback" not in bad.stderr


def _run_episodes(root, name, outcomes):
    """A run whose evaluations record every episode: ``outcomes`` are lists of 0/1 per episode."""
    d = root / name
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"task_id": "InsertBench/USB-v1"}))
    (d / "evaluations.json").write_text(json.dumps(
        [{"env_steps": 500 * (i + 1),
          "summary": {"successes": sum(ep), "episodes": len(ep)},
          "episodes": [{"seed": 10_000 + j, "success": bool(x)} for j, x in enumerate(ep)]}
         for i, ep in enumerate(outcomes)]))


def test_runs_of_50_episodes_are_held_to_45_and_first_20_rescores_them(tmp_path):
    """--target 18 (of 20) is 45 of 50 for a check_serl --eval-episodes 50 run; --first 20
    counts the first 20 episodes, the default evaluation's seeds."""
    # 1k: 19 of the first 20 but 44 of 50; 1.5k on: 20 of 20 and 46-50 of 50
    evals = [[0] * 50, [1] * 19 + [0] + [1] * 24 + [0] * 6, [1] * 46 + [0] * 4, [1] * 50,
             [1] * 48 + [0] * 2]
    _run_episodes(tmp_path, "usb_rlpd_s3", evals)
    text = table(load_runs(tmp_path), 18)
    assert "env steps to >= 45/50 held" in text
    assert "| usb_rlpd | USB-v1 | 3 | 1,500 | 1,500 | 48/50 |" in text
    first = table(load_runs(tmp_path, first=20), 18)
    assert "env steps to >= 18/20 held" in first
    assert "| usb_rlpd | USB-v1 | 3 | 1,000 | 1,000 | 20 |" in first


def test_first_more_episodes_than_recorded_is_refused(tmp_path):
    _run_episodes(tmp_path, "usb_rlpd_s3", [[1] * 10])
    with pytest.raises(ValueError, match="fewer than --first 20"):
        load_runs(tmp_path, first=20)
