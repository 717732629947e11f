"""benchmark.serl_curves: grouping check_serl runs by name, steps to target, median, errors."""

from __future__ import annotations

import json
import subprocess
import sys

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
