"""benchmark.serl_curves: grouping check_serl runs by name, steps to target, median, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmark.serl_curves import load_runs, median_steps, pairs_table, table


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
    assert "| usb_rlpd | USB-v1 | 0,1 | 500, 1,000 | 1,000 | 20, 20 |" in text
    assert "| usb_hil_serl | USB-v1 | 0 | > 750 | not reached | 17 |" in text
    assert list(load_runs(tmp_path, "_rlpd_s")) == ["usb_rlpd"]  # --match


def test_median_counts_runs_that_never_held_the_target_as_slowest():
    assert median_steps([1000, None, 500]) == "1,000"
    assert median_steps([None, None, 500]) == "not reached"
    assert median_steps([1000, 2000, None, None]) == "not reached"  # half is not a median
    assert median_steps([1000, 2000, 3000, None]) == "3,000"


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


def test_pairs_count_runs_never_too_far_behind_same_seed_and_other_seeds_apart(tmp_path):
    _run(tmp_path, "usb_rlpd_s0", [0, 6, 8, 18, 20, 20])
    _run(tmp_path, "usb_rlpd_s1", [0, 14, 19, 20])  # stopped early: 4 shared evaluations
    _run(tmp_path, "usb_vice_s0", [0, 7, 14, 16, 20, 19])
    _run(tmp_path, "usb_vice_s1", [2, 13, 18, 20, 20, 20])
    text = pairs_table(load_runs(tmp_path), 10)
    # rlpd s0 is 40 points behind s1 at the second evaluation; s1 never behind s0 by > 10
    assert "| USB-v1 | rlpd | rlpd | – | 1 of 2 | – |" in text
    # vice s0 vs rlpd s0: at most 10 behind (16 vs 18); vice s1 vs rlpd s1: 5 behind at most
    # mean differences: s0 (+1 +6 -2 0 -1) / 6 * 5 = +3.3; s1 (+2 -1 -1 0) / 4 * 5 = 0
    assert "| USB-v1 | vice | rlpd | 2 of 2 | 1 of 2 | +1.7 (2) |" in text
    # rlpd s0 is 30 points behind vice s0 (8 vs 14) and 35 behind vice s1 (6 vs 13)
    assert "| USB-v1 | rlpd | vice | 1 of 2 | 1 of 2 | -1.7 (2) |" in text


def test_pairs_of_runs_on_other_evaluation_schedules_are_refused(tmp_path):
    _run(tmp_path, "usb_rlpd_s0", [0, 6, 8])
    d = tmp_path / "usb_vice_s0"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"task_id": "InsertBench/USB-v1"}))
    (d / "evaluations.json").write_text(json.dumps(
        [{"env_steps": 500 * (i + 1), "summary": {"successes": n}} for i, n in enumerate([1, 2])]))
    with pytest.raises(ValueError, match="--eval-every"):
        pairs_table(load_runs(tmp_path), 10)
    cli = subprocess.run([sys.executable, "-m", "benchmark.serl_curves", str(tmp_path),
                          "--behind", "10"], capture_output=True, text=True)
    assert cli.returncode == 1 and "--eval-every" in cli.stderr and "Traceback" not in cli.stderr
    nan = subprocess.run([sys.executable, "-m", "benchmark.serl_curves", str(tmp_path),
                          "--behind", "nan"], capture_output=True, text=True)
    assert nan.returncode == 1 and "percentage points" in nan.stderr


def test_runs_of_one_schedule_pair_up_however_short_the_interval(tmp_path):
    """With --eval-every 50 on USB (50-step episodes) runs evaluated at 50, 100, 150 and 55,
    126, 150 were refused as "another --eval-every" (the bound was half the first step), and
    the message named "seed 1 and seed 1" without their methods."""
    for name, steps in (("usb_rlpd_s1", [50, 100, 150]), ("usb_hil_serl_s1", [55, 126, 150])):
        d = tmp_path / name
        d.mkdir()
        (d / "run.json").write_text(json.dumps({"task_id": "InsertBench/USB-v1"}))
        (d / "evaluations.json").write_text(json.dumps(
            [{"env_steps": s, "summary": {"successes": 10}} for s in steps]))
    assert "| USB-v1 | rlpd | hil_serl | 1 of 1 |" in pairs_table(load_runs(tmp_path), 10)
    (tmp_path / "usb_hil_serl_s1" / "evaluations.json").write_text(json.dumps(
        [{"env_steps": s, "summary": {"successes": 10}} for s in (500, 1000)]))
    with pytest.raises(ValueError, match="usb_hil_serl seed 1 and usb_rlpd seed 1 of USB-v1"):
        pairs_table(load_runs(tmp_path), 10)


@pytest.mark.parametrize(("damage", "message"), [
    ("no_run_json", "usb_rlpd_s0: not a check_serl run folder"),
    ("no_task", "usb_rlpd_s0: not a check_serl run folder (no 'task_id')"),
    ("no_summary", "usb_rlpd_s0: not a check_serl run folder (no 'summary')"),
    ("empty", "usb_rlpd_s0: evaluations.json holds no evaluation"),
    # serl24: 50 successes of 20 read as reaching the target; a text count was a traceback
    ([{"env_steps": 5, "summary": {"successes": 50, "episodes": 20}}],
     "usb_rlpd_s0: success counts [50] are not whole numbers in [0, 20]"),
    ([{"env_steps": 5, "summary": {"successes": "18"}}],
     "usb_rlpd_s0: success counts ['18'] are not whole numbers in [0, 20]"),
    ([{"env_steps": 500, "summary": {"successes": 1}}, {"env_steps": 250, "summary":
      {"successes": 2}}], "usb_rlpd_s0: evaluation env steps [500, 250] are not increasing"),
])
def test_a_damaged_run_folder_is_one_line_not_a_traceback(tmp_path, damage, message):
    _run(tmp_path, "usb_rlpd_s0", [0, 10])
    d = tmp_path / "usb_rlpd_s0"
    if damage == "no_run_json":
        (d / "run.json").unlink()
    elif damage == "no_task":
        (d / "run.json").write_text("{}")
    elif damage == "no_summary":
        (d / "evaluations.json").write_text(json.dumps([{"env_steps": 5}]))
    elif isinstance(damage, list):
        (d / "evaluations.json").write_text(json.dumps(damage))
    else:
        (d / "evaluations.json").write_text("[]")
    cli = subprocess.run([sys.executable, "-m", "benchmark.serl_curves", str(tmp_path)],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and message in cli.stderr, cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr
