"""benchmark.check_track: which matrix cell a track learning curve trains, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.check_track import CheckTrackError, main, track_cell

PRESET = Path(__file__).resolve().parents[2] / "benchmark" / "presets" / "paper000-leaderboard.toml"


def test_finds_the_leaderboard_cell_with_its_config_and_the_track_kwargs():
    cell, track, task = track_cell("paper000-leaderboard", "paper000", "ModelE", "rlpd")
    assert (cell.agent, cell.task_id, cell.budget_steps) == ("rlpd", task.task_id, 5000)
    assert dict(cell.agent_config) == {"num_qs": 2, "utd_ratio": 2}
    assert dict(cell.env_kwargs) == dict(task.env_kwargs)
    assert task.task_id == "InsertBench/ModelE-v1" and track.name == "paper000"


def test_accepts_the_preset_label_for_the_agent():
    cell, _, _ = track_cell("paper000-leaderboard", "paper000", "DSub",
                            "HIL-SERL (simulated operator, 2 critics, UTD 2)")
    assert cell.agent == "hil_serl" and cell.task_id == "InsertBench/DSub-v1"
    assert cell.agent_config["operator_budget_decay_steps"] == 2000


@pytest.mark.parametrize("task, agent, message", [
    ("Nope", "rlpd", "has no task 'Nope'"),
    ("ModelE", "p_controller", "no trained cell of agent 'p_controller'"),
    ("ModelE", "ppo", "no trained cell of agent 'ppo'"),
])
def test_refuses_what_names_no_trained_cell(task, agent, message):
    with pytest.raises(CheckTrackError, match=message):
        track_cell("paper000-leaderboard", "paper000", task, agent)


def test_refuses_a_preset_that_trains_under_other_kwargs_than_the_track(tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(PRESET.read_text().replace("goal_noise_mm = 1.0", "goal_noise_mm = 0.5"))
    with pytest.raises(CheckTrackError, match="track paper000 evaluates it with"):
        track_cell(str(other), "paper000", "ModelE", "rlpd")


@pytest.mark.parametrize("argv, message", [
    (["--track", "nope"], "unknown track 'nope'"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--steps", "0"], "--steps must be > 0"),
    (["--eval-every", "-5"], "--eval-every must be > 0"),
])
def test_cli_mistakes_exit_with_one_line(argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    text = str(exc.value.code)
    assert text.startswith("check_track: error: ") and message in text and "\n" not in text
