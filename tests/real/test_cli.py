"""`insertbench real calibrate` and `insertbench real validate` on the digital twin."""

from __future__ import annotations

import json
import os
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import real
from benchmark.cli import app
from real.calibration import Calibration
from real.goal_images import load as load_goal_images
from real.goal_images import record as record_goal_images
from real.goal_images import save as save_goal_images
from tests.real.conftest import USB

runner = CliRunner()
#: A calibration of USB at a plausible socket pose (no robot needs to reach it).
PLAUSIBLE = Calibration(USB, (0.45, 0.13, 0.014, 3.14, 0.0, 0.0), (0.0,) * 6, "touch", "10.0.0.2",
                        "t")


def test_calibrate_then_validate(tmp_path):
    calib_path = tmp_path / "usb.json"
    result = runner.invoke(
        app, ["real", "calibrate", "--task", USB, "--twin", "--out", str(calib_path)]
    )
    assert result.exit_code == 0, result.output
    assert Calibration.load(calib_path).task == USB

    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "real",
            "validate",
            "--task",
            USB,
            "--policy",
            "p_controller",
            "--twin",
            "--episodes",
            "2",
            "--calibration",
            str(calib_path),
            "--out",
            str(out),
            "--env",
            "goal_noise_mm=0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    table = (out / "validate_InsertBench_USB-v0.twin.md").read_text()
    assert "| metric | sim | twin |" in table
    assert "## InsertBench/USB-v0: sim vs twin (" in table  # "sim vs real" (newuser22)
    # Which rule scored each side: the twin's continuity against the robot's depth from its
    # calibration gave opposite verdicts for one cell error, unsaid (newuser23)
    assert "twin, its simulated continuity signal" in table and "else the insertion depth " \
        "from the calibrated seat" in table
    # The robot's report keeps its name: a rehearsal into its folder wrote over it (real22)
    assert not (out / "validate_InsertBench_USB-v0.md").exists()
    for row in ("success rate", "cycle time", "peak force", "safety trips"):
        assert row in table
    report = json.loads((out / "validate_InsertBench_USB-v0.twin.json").read_text())
    assert report["summary"]["twin"]["episodes"] == 2
    assert report["summary"]["sim"]["episodes"] == 2
    # Each trial as it ends: the session printed nothing until its last (minutes on an arm).
    for setting in ("twin", "sim"):
        assert re.search(rf"{setting} trial seed 1001: (success at step \d+ of \d+|failure "
                         r"after \d+ steps)", result.stderr), result.stderr
    assert report["summary"]["twin"]["successes"] == 2
    assert len(report["episodes"]["twin"]) == 2


def test_validate_with_pixels_runs_the_cameras(tmp_path):
    result = runner.invoke(
        app,
        [
            "real",
            "validate",
            "--task",
            USB,
            "--policy",
            "p_controller",
            "--twin",
            "--episodes",
            "1",
            "--out",
            str(tmp_path),
            "--env", "obs_mode=state+pixels", "--env", "image_size=32", "--env", "grayscale=true",
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_policy_on_the_wrist_camera_alone_validates(tmp_path, monkeypatch, capsys):
    """Paper 001's recipe and the paper000 preset train on `cameras=["wrist"]`: the cell read
    both cameras, so the observation spaces differed, and `--env cameras=...` was refused as a
    kwarg of the simulation only."""
    monkeypatch.chdir(tmp_path)
    pixels = ["--env", "obs_mode=state+pixels", "--env", "image_size=16",
              "--env", 'cameras=["wrist"]']
    result = runner.invoke(app, ["train", "--task", USB, "--agent", "p_controller", "--steps",
                                 "0", "--eval-episodes", "0", "--out", "runs/pc", *pixels])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--twin", "--checkpoint",
                                 "runs/pc", "--episodes", "1", "--sim-episodes", "1", "--out",
                                 "val", *pixels])
    assert result.exit_code == 0, result.output
    _assert_usage_errors(capsys, [
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--checkpoint", "runs/pc",
          "--side-serial", "123", *pixels],
         "Invalid value for --wrist-serial: --env cameras=['wrist'] needs the wrist camera"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--checkpoint", "runs/pc",
          "--wrist-serial", "1", "--side-serial", "2", *pixels],
         "Invalid value for --side-serial: --env cameras=['wrist'] leaves out the side camera"),
    ])


def test_validate_needs_a_policy(tmp_path):
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--twin"])
    assert result.exit_code != 0
    assert "--checkpoint" in result.output


def test_validate_on_hardware_needs_a_host_and_calibration(tmp_path):
    result = runner.invoke(
        app,
        [
            "real",
            "validate",
            "--task",
            USB,
            "--policy",
            "p_controller",
            "--episodes",
            "1",
            "--sim-episodes",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "give --host (the robot's IP) or --twin" in result.output
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--host", "10.0.0.2",
                                 "--policy", "p_controller", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "give --calibration" in result.output


def test_validate_a_residual_checkpoint_from_a_relative_path(tmp_path, monkeypatch):
    """Residual agents need a base policy on each side (sim and twin): paper 000's P-controller
    of that env. An untrained residual (zero-initialised output) leaves the P-controller."""
    import gymnasium as gym

    import envs
    from agents import make_agent

    monkeypatch.chdir(tmp_path)
    env = gym.make(USB)
    agent = make_agent("residual_sac", env.observation_space, env.action_space,
                       {"hidden": (16, 16)}, base_policy=envs.p_controller(env))
    agent.save("runs/usb-rsac")
    env.close()
    result = runner.invoke(app, [
        "real", "validate", "--task", USB, "--twin", "--checkpoint", "runs/usb-rsac",
        "--episodes", "1", "--out", "report",
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report/validate_InsertBench_USB-v0.twin.json").read_text())
    assert report["summary"]["twin"]["episodes"] == 1
    assert report["summary"]["twin"]["successes"] == 1  # the P-controller alone inserts
    # The session names the checkpoint by its content (real21): resumed from its absolute path
    # it is the same session (refused as another before), another policy saved to the same
    # path is another (it resumed into this one, and one table reported the two).
    resumed = runner.invoke(app, [
        "real", "validate", "--task", USB, "--twin", "--checkpoint",
        str(tmp_path / "runs/usb-rsac"), "--episodes", "2", "--out", "report",
    ])
    assert resumed.exit_code == 0, resumed.output
    env = gym.make(USB)
    make_agent("sac", env.observation_space, env.action_space, {"hidden": (16, 16)}).save(
        "runs/usb-rsac")
    env.close()
    other = runner.invoke(app, [
        "real", "validate", "--task", USB, "--twin", "--checkpoint", "runs/usb-rsac",
        "--episodes", "3", "--out", "report",
    ])
    assert other.exit_code == 2, other.output
    assert "holdstrialsofanothersession" in "".join(other.output.replace("│", "").split())
    # A run trained with goal noise, validated without: it ran on an easier task unsaid.
    Path("runs/noisy").mkdir()
    shutil.copytree("runs/usb-rsac", "runs/noisy/agent")
    Path("runs/noisy/run.json").write_text(json.dumps(
        {"task_id": USB, "env_kwargs": {"goal_noise_mm": 1.0}}))
    with pytest.warns(UserWarning, match=r"trained with env kwargs \{'goal_noise_mm': 1.0\}; "
                      r"this session runs with \{\}"):
        result = runner.invoke(app, [
            "real", "validate", "--task", USB, "--twin", "--checkpoint", "runs/noisy",
            "--episodes", "1", "--out", "report2",
        ])
    assert result.exit_code == 0, result.output


def test_validate_refuses_a_blind_search_the_task_frame(tmp_path, monkeypatch, capsys):
    """train and eval refused obs_frame='task' for the searches; `real validate` scored
    straight down 100% on twin and sim with it, 0% without (diff25)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--task", USB, "--agent", "straight_down", "--steps",
                                 "0", "--eval-episodes", "0", "--out", "runs/sd"])
    assert result.exit_code == 0, result.output
    _assert_usage_errors(capsys, [
        (["real", "validate", "--task", USB, "--twin", "--checkpoint", "runs/sd", "--episodes",
          "1", "--env", "obs_frame=task"],
         "straight_down searches around the x, y an episode starts at"),
    ])


def test_a_second_validate_session_into_one_folder_is_refused(tmp_path, monkeypatch):
    """Two sessions into one --out both ran every seed into one trial log (18 twin lines for
    --episodes 10), and a second one opening it could drop a trial line (newuser20)."""
    from benchmark.folder_lock import run_lock
    from benchmark.real_cli import validate_lock

    monkeypatch.chdir(tmp_path)
    args = ["real", "validate", "--task", USB, "--policy", "p_controller", "--twin",
            "--episodes", "1", "--out", "out"]
    with run_lock(Path("out"), validate_lock(USB), "validate session"):  # one running
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert f"another validate session of {USB} is writing out" in result.stderr
        assert not list(Path("out").glob("*.jsonl"))
        other = [*args[:3], "InsertBench/DSub-v0", *args[4:]]  # another task's: its own files
        assert runner.invoke(app, other).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0  # once it has ended


def test_validate_writes_each_trial_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["real", "validate", "--task", USB, "--policy", "p_controller", "--twin", "--out", "out"]
    assert runner.invoke(app, [*args, "--episodes", "1"]).exit_code == 0
    log = tmp_path / "out" / "validate_InsertBench_USB-v0.twin.jsonl"
    first = log.read_text().splitlines()
    assert len(first) == 2  # the session's header, one trial
    result = runner.invoke(app, [*args, "--episodes", "2"])
    assert result.exit_code == 0, result.output
    again = log.read_text().splitlines()
    assert again[:2] == first and len(again) == 3  # trial 1 kept, only trial 2 ran
    report = json.loads((tmp_path / "out" / "validate_InsertBench_USB-v0.twin.json").read_text())
    assert [e["seed"] for e in report["episodes"]["twin"]] == [1000, 1001]
    other = runner.invoke(app, [*args, "--episodes", "2", "--env", "goal_noise_mm=1"])
    assert other.exit_code == 2
    assert "holdstrialsofanothersession" in "".join(other.output.replace("│", "").split())
    # The cell's settings are the twin log's too: a resume at another rate, or after
    # recalibrating, was one session with the trials before (the sim log stays valid).
    calibrated = runner.invoke(app, ["real", "calibrate", "--task", USB, "--twin", "--out",
                                     "usb.json"])
    assert calibrated.exit_code == 0, calibrated.output
    for changed in (["--frequency", "125"], ["--calibration", "usb.json"]):
        other = runner.invoke(app, [*args, "--episodes", "3", *changed])
        assert other.exit_code == 2, other.output
        assert "twin.jsonlholdstrialsofanothersession" in "".join(
            other.output.replace("│", "").split())
    assert log.read_text().splitlines() == again


def _cli(capsys, *args: str) -> tuple[int, str]:
    """`insertbench ARGS` as the installed script runs it: exit status and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        app(list(args))
    return exit_info.value.code, capsys.readouterr().err


def _assert_usage_errors(capsys, cases) -> None:
    """Each (args, message) of `cases` is one line on stderr holding `message`, exit 2."""
    for args, message in cases:
        code, err = _cli(capsys, *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert message in lines[0], lines[0]


def test_bad_task_frequency_and_max_seconds_are_one_short_line(tmp_path, monkeypatch, capsys):
    """An unknown task used to end in a KeyError listing all ~120 task IDs; `calibrate --twin
    --frequency nan` in `cannot convert float NaN to integer` and `--frequency -5` in a made-up
    `no contact above 15 N` after a descent; `serve-twin --max-seconds inf` served unbounded."""
    monkeypatch.chdir(tmp_path)
    cases = [
        (["real", "calibrate", "--task", "InsertBench/Nope-v0", "--twin", "--out", "c.json"],
         "'InsertBench/Nope-v0' is an unknown task: the cell runs single-connector tasks"),
        (["real", "validate", "--task", "Nope", "--twin", "--policy", "p_controller",
          "--episodes", "1", "--out", "report"], "'Nope' is an unknown task"),
        # A registered task the cell does not run read as "unknown".
        (["real", "serve-twin", "--task", "InsertBench/NISTBoard-v0", "--max-seconds", "1"],
         "'InsertBench/NISTBoard-v0' is no single-connector task"),
        (["real", "calibrate", "--task", USB, "--twin", "--frequency", "nan", "--out", "c.json"],
         "must be 500 (e-Series) or 125 (CB3) Hz, got nan"),
        (["real", "calibrate", "--task", USB, "--twin", "--frequency", "-5", "--out", "c.json"],
         "must be 500 (e-Series) or 125 (CB3) Hz, got -5.0"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--frequency", "200",
          "--calibration", "c.json", "--policy", "p_controller", "--out", "report"],
         "got 200.0"),
        (["real", "serve-twin", "--task", USB, "--max-seconds", "inf"],
         "--max-seconds must be in (0, 604800] (a week), got inf"),
        (["real", "serve-twin", "--task", USB, "--max-seconds", "1e308"],  # adv41: it served
         "--max-seconds must be in (0, 604800] (a week), got 1e+308"),
        (["real", "validate", "--task", USB, "--twin", "--policy", "p_controller", "--seed",
          "99999999999999999999999", "--out", "report"], "'--seed'"),
        # --host with --twin ran on the twin and ignored --host.
        (["real", "validate", "--task", USB, "--twin", "--host", "10.0.0.2", "--policy",
          "p_controller", "--episodes", "1", "--out", "report"],
         "give --host (10.0.0.2) or --twin, not both"),
        (["real", "calibrate", "--task", USB, "--twin", "--host", "10.0.0.2", "--out", "c.json"],
         "give --host (10.0.0.2) or --twin, not both"),
        # An unset shell variable: URConfig's internal error; in validate blamed on --env.
        (["real", "validate", "--task", USB, "--host", "", "--calibration", "c.json",
          "--policy", "p_controller", "--out", "report"], "'--host': an empty address"),
        (["real", "calibrate", "--task", USB, "--host", " ", "--out", "c.json"],
         "'--host': an empty address"),
        (["real", "calibrate", "--task", USB, "--host", "192.168.1.10:99999", "--out", "c.json"],
         "'--host': host must be the controller's IP address or name (no port)"),
        # Neither --host nor --twin: the calibration was blamed first (newuser21)
        (["real", "validate", "--task", USB, "--calibration", "c.json", "--policy",
          "p_controller", "--out", "report"], "give --host (the robot's IP) or --twin"),
        # The checkpoint was ignored and the P-controller ran in its place.
        (["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
          "--checkpoint", "runs/pc", "--episodes", "1", "--out", "report"],
         "give --checkpoint (runs/pc) or --policy p_controller, not both"),
        # `--sim-episodes 0` ran --episodes trials in sim, without a word.
        (["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
          "--sim-episodes", "0", "--out", "report"],
         "'--sim-episodes': Input should be greater than or equal to 1"),
        # real28: the twin's 4 replays of seeds the simulation did not run made 4 trials
        (["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
          "--episodes", "4", "--sim-episodes", "1", "--out", "report"],
         "Invalid value for --sim-episodes: with --twin at least --episodes (4), 1 given: the "
         "twin's trials are counted against the simulated episodes on the same seeds"),
    ]
    for args, message in cases:
        code, err = _cli(capsys, *args)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith("insertbench: error: ") and message in lines[0], lines[0]
        assert "known tasks" not in err
    assert list(tmp_path.iterdir()) == []


def test_tcp_offset_mistakes_and_a_calibration_made_with_another_tcp_are_one_line(
        tmp_path, monkeypatch, capsys):
    """The CLI had no TCP option, so a cell with another gripper could not calibrate or
    validate from it; a calibration under another TCP read every depth off by the difference
    (a plug 2 mm in scored a success). Each is refused before connecting (10.0.0.2 is none)."""
    monkeypatch.chdir(tmp_path)
    Calibration(USB, (0.4, 0.1, 0.2, 3.1416, 0.0, 0.0), (0.0,) * 6, "teach", "10.0.0.2",
                "2026-01-01T00:00:00+00:00", tcp_offset=(0.0, 0.0, 0.137, 0.0, 0.0, 0.0)
                ).save("c.json")
    validate = ["real", "validate", "--task", USB, "--calibration", "c.json", "--policy",
                "p_controller", "--episodes", "1", "--out", "report"]
    _assert_usage_errors(capsys, [
        (["real", "calibrate", "--task", USB, "--twin", "--tcp-offset", "0,0,0.137,0,0,0",
          "--out", "d.json"], "--tcp-offset: the twin grasps the plug as the simulation does; the "
                              "offset is for the robot's own gripper"),
        (["real", "calibrate", "--task", USB, "--twin", "--model", "UR10e", "--out", "d.json"],
         "--model: UR10e is the robot's model; the twin is a UR5e"),
        ([*validate, "--host", "10.0.0.2", "--tcp-offset", "0,0,0.127,0,0,90"],
         "turns 90 rad, more than pi: implausible (degrees given as radians?)"),
        ([*validate, "--host", "10.0.0.2", "--tcp-offset", "0,0,127,0,0,0"],
         "lies 127 m out, more than 1 m: implausible (millimetres given as metres?)"),
        ([*validate, "--host", "10.0.0.2", "--tcp-offset", "0,0.1"],
         "--tcp-offset must be 6 finite numbers"),
        ([*validate, "--host", "10.0.0.2"],
         "Invalid value for --calibration: the calibration measured the socket with TCP offset "
         "[0.0, 0.0, 0.137, 0.0, 0.0, 0.0], and this robot is set to [0.0, 0.0, 0.127"),
    ])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_validate_table_says_how_many_episodes_are_distinct(tmp_path, monkeypatch):
    """Noiseless sim replays one episode per seed: the interval counts one, and the table used
    to say `episodes | 2` beside `100% [21%, 100%]` without saying why. The twin's trials in one
    session, apart only by what each reset left, are one trial too (they counted as 3)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--policy", "p_controller",
                                 "--twin", "--episodes", "3", "--out", "report"])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "report" / "validate_InsertBench_USB-v0.twin.md").read_text()
    assert "| episodes | 3 (1 distinct) | 3 (1 distinct) |" in table, table
    assert "| success rate [95% CI] | 100% [21%, 100%] | 100% [21%, 100%] |" in table
    report = json.loads((tmp_path / "report" / "validate_InsertBench_USB-v0.twin.json").read_text())
    assert len({e["peak_force_n"] for e in report["episodes"]["twin"]}) > 1  # not replays
    assert report["summary"]["twin"]["effective_trials"] == 1


def test_validate_refuses_another_tasks_checkpoint(tmp_path, monkeypatch, capsys):
    """A checkpoint trained on USB used to run on the D-sub cell without a word."""
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "train", "--task", USB, "--agent", "p_controller", "--steps", "0",
                     "--eval-episodes", "0", "--out", "runs/pc", "--no-progress")
    assert code == 0, err
    args = ["real", "validate", "--task", "InsertBench/DSub-v0", "--twin", "--checkpoint",
            "runs/pc", "--episodes", "1", "--out", "report"]
    code, err = _cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "runs/pc was trained on InsertBench/USB-v0, not InsertBench/DSub-v0" in lines[0]
    assert not (tmp_path / "report").exists()
    code, err = _cli(capsys, *args, "--allow-other-task")
    assert code == 0, err
    assert (tmp_path / "report" / "validate_InsertBench_DSub-v0.twin.md").is_file()


def test_a_refused_session_does_not_block_the_corrected_command(tmp_path, monkeypatch, capsys):
    """A checkpoint refused for the env's kwargs (before any trial) used to leave its session
    header in --out, so the corrected command was refused as "another session" with no trial
    in it."""
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "train", "--task", USB, "--agent", "p_controller", "--steps", "0",
                     "--eval-episodes", "0", "--out", "runs/pc", "--no-progress")
    assert code == 0, err
    args = ["real", "validate", "--task", USB, "--twin", "--checkpoint", "runs/pc",
            "--episodes", "1", "--out", "report"]
    code, err = _cli(capsys, *args, "--env", "action_mode=pose")
    assert code == 2 and "pass the env kwargs it was trained with" in err, err
    code, err = _cli(capsys, *args)
    assert code == 0, err
    log = (tmp_path / "report" / "validate_InsertBench_USB-v0.twin.jsonl").read_text()
    assert json.loads(log.splitlines()[0])["env_kwargs"] == {}
    assert len(log.splitlines()) == 2  # this session's header and its one trial


def test_calibrate_refuses_an_unwritable_out_before_calibrating(tmp_path, monkeypatch, capsys):
    """`--out` naming a directory, or a path under a file, used to fail with IsADirectoryError
    or FileExistsError after the whole calibration (on the robot: the operator's freedrive or
    touch-off lost)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calib").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    for out, message in (("calib", "calib is a directory"),
                         ("notes.txt/usb.json", "notes.txt is not a writable directory")):
        with pytest.raises(SystemExit) as exit_info:
            app(["real", "calibrate", "--task", USB, "--twin", "--out", out])
        printed, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert exit_info.value.code == 2 and len(lines) == 1 and "--out" in lines[0], err
        assert message in lines[0], lines[0]
        assert "[twin operator]" not in printed  # refused before the calibration began


def test_record_goal_images_then_validate_with_the_goal_image_reward(tmp_path, monkeypatch):
    """`reward=goal_image` on the cell used to be impossible from the CLI: validate built the
    env without goal images and the error pointed to a file that does not exist."""
    monkeypatch.chdir(tmp_path)
    image_kwargs = ["--env", "image_size=32", "--env", "grayscale=true"]
    result = runner.invoke(app, ["real", "record-goal", "--task", USB, "--twin",
                                 "--out", "goals/usb.npz", *image_kwargs])
    assert result.exit_code == 0, result.output
    images = load_goal_images("goals/usb.npz", USB)
    assert {k: v.shape for k, v in images.items()} == {"wrist": (32, 32, 1), "side": (32, 32, 1)}
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--twin", "--policy",
                                 "p_controller", "--episodes", "1", "--out", "report",
                                 "--env", "reward=goal_image", *image_kwargs,
                                 "--goal-images", "goals/usb.npz"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "validate_InsertBench_USB-v0.twin.json").read_text())
    assert report["summary"]["twin"]["successes"] == 1
    # The goal-image episode runs on past the mating: its line said "success in 50 steps".
    (twin,) = report["episodes"]["twin"]
    assert f"twin trial seed 1000: success at step {twin['steps_to_success']} of 50" in \
        result.stderr and twin["steps_to_success"] < 50, result.stderr


def test_a_camera_that_will_not_start_is_one_line_before_the_robot_is_reached(
    tmp_path, monkeypatch, capsys
):
    """A missing or wrong RealSense serial was an internal-error line (RuntimeError, exit 1),
    and only after the robot was connected and the control script uploaded."""
    import real.camera
    import real.factory

    monkeypatch.chdir(tmp_path)
    PLAUSIBLE.save("c.json")
    connected = []
    monkeypatch.setattr(real.factory, "URBackend", lambda *a: connected.append(a))

    class NoDevice:  # pyrealsense2 without a camera plugged in (it searches for ~15 s)
        def start(self, config):
            raise RuntimeError("No device connected")

    rs = real.camera.import_realsense()
    monkeypatch.setattr(real.camera, "import_realsense", lambda: types.SimpleNamespace(
        pipeline=NoDevice, config=rs.config, stream=rs.stream, format=rs.format))
    validate = ["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration",
                "c.json", "--policy", "p_controller", "--episodes", "1", "--out", "report",
                "--env", "obs_mode=state+pixels"]
    code, err = _cli(capsys, *validate, "--wrist-serial", "123", "--side-serial", "123")
    assert code == 2 and "one camera (123) cannot be both the wrist and the side camera" in err
    code, err = _cli(capsys, *validate, "--wrist-serial", "123", "--side-serial", "456")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "could not start RealSense camera 'wrist' (serial 123" in lines[0], lines[0]
    assert "--debug" not in lines[0] and connected == []


def test_the_arms_servo_settings_in_env_reach_its_urconfig(tmp_path, monkeypatch, capsys):
    """`--env servo_gain=400` went to real.make beside a default URConfig, which refused it as
    a contradiction: the cell's servo settings could be given on the twin only."""
    import real.factory

    monkeypatch.chdir(tmp_path)
    PLAUSIBLE.save("c.json")
    configs = []

    def backend(config, tcp):
        configs.append(config)
        raise ConnectionError("no robot here")

    monkeypatch.setattr(real.factory, "URBackend", backend)
    validate = ["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration",
                "c.json", "--policy", "p_controller", "--episodes", "1", "--out", "report"]
    code, err = _cli(capsys, *validate, "--env", "servo_gain=400", "--env", "rtde_watchdog_hz=10",
                     "--env", "zero_ft_sensor=false")
    assert code == 1 and "no robot here" in err, err
    assert (configs[0].servo_gain, configs[0].rtde_watchdog_hz) == (400, 10)
    code, err = _cli(capsys, *validate, "--env", "servo_gain=5")
    assert code == 2 and "--env: the cell refuses it: " in err and "servo_gain" in err, err
    code, err = _cli(capsys, "real", "record-goal", "--task", USB, "--twin", "--env",
                     "goal_images=1")
    assert code == 2 and "goal_images is set with `validate --goal-images FILE`" in err, err


def test_the_twins_cameras_stream_at_least_the_observations_size():
    """The twin streamed 120x160 whatever the observation: `image_size=128`, which the
    simulation and a real cell (640x480) take, was refused at the first reset ("delivers
    (120, 160, 3) frames ... check its stream")."""
    env = real.make_twin(USB, cameras=("wrist",), obs_mode="state+pixels", image_size=128)
    try:
        obs, _ = env.reset(seed=0)
        assert obs["wrist"].shape == (128, 128, 3)
    finally:
        env.close()


def test_a_seated_plug_that_never_reads_mated_is_blamed_on_the_continuity_input():
    """With a continuity input that never closed, record-goal said the P-controller "did not
    seat the plug (closest 0.02 mm to the calibrated seated pose, need <= 0.5 mm)"."""
    recorder = real.make_twin(USB, cameras=("wrist",), reward="dense", obs_mode="state+pixels",
                              image_size=32, continuity_input=5)  # the twin wires input 0
    with pytest.raises(RuntimeError, match=r"came within 0\.\d\d mm of the calibrated seated "
                       r"pose but was never read as mated \(continuity input 5 stayed open"):
        record_goal_images(recorder)
    recorder.close()


def test_the_recorded_goal_images_reward_the_seated_plug():
    """The pictures are of the plug seated: the goal-image reward rises as the P-controller
    inserts: at the seat it is a fifth or less of its distance at the start (it is minus the
    mean absolute pixel difference, 0 for identical pictures)."""
    kwargs = {"image_size": 32, "grayscale": True}
    recorder = real.make_twin(USB, cameras=("wrist", "side"), reward="dense",
                              obs_mode="state+pixels", **kwargs)
    images = record_goal_images(recorder)
    recorder.close()
    env = real.make_twin(USB, cameras=("wrist", "side"), reward="goal_image", goal_images=images,
                         **kwargs)
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    rewards = []
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    assert info["is_success"]
    assert rewards[0] < rewards[-1] <= 0 and rewards[-1] >= 0.2 * rewards[0], rewards


def test_goal_image_mistakes_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save_goal_images("dsub.npz", "InsertBench/DSub-v0", {"wrist": np.zeros((64, 64, 3), np.uint8)})
    np.save("one.npy", np.zeros(3))
    Path("usb.json").write_text('{"format": "insertbench-calibration"}')
    save_goal_images("usb.npz", USB, {"wrist": np.zeros((64, 64, 3), np.uint8)})
    whole = Path("usb.npz").read_bytes()
    Path("cut.npz").write_bytes(whole[:len(whole) // 2])
    middle = len(whole) // 2  # inside the image: its CRC no longer matches
    Path("crc.npz").write_bytes(whole[:middle] + b"\x01" + whole[middle + 1:])
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--episodes", "1", "--out", "report"]
    cases = [
        *[([*validate, "--env", "reward=goal_image", "--goal-images", name],
           f"{name} is not a goal-image file")  # a BadZipFile naming no file (real18)
          for name in ("cut.npz", "crc.npz")],
        ([*validate, "--env", "reward=goal_image"],
         "--env reward=goal_image needs the cell's goal images: record them with"),
        ([*validate, "--env", "reward=goal_image", "--goal-images", "dsub.npz"],
         "dsub.npz holds goal images of InsertBench/DSub-v0, not InsertBench/USB-v0"),
        ([*validate, "--env", "reward=goal_image", "--goal-images", "one.npy"],
         "one.npy is not a goal-image file"),
        # numpy's advice for a calibration file given instead: load it with allow_pickle (real28)
        ([*validate, "--env", "reward=goal_image", "--goal-images", "usb.json"],
         "usb.json is not a goal-image file (not an .npz archive; record one with"),
        ([*validate, "--env", "reward=goal_image", "--goal-images", "none.npz"],
         "no goal-image file none.npz"),
        ([*validate, "--goal-images", "dsub.npz"], "is used only with --env reward=goal_image"),
        (["real", "record-goal", "--task", USB, "--twin", "--env", "reward=sparse"],
         "record-goal sets reward itself"),
        (["real", "record-goal", "--task", USB, "--host", "10.0.0.2", "--calibration", "c.json"],
         "give --wrist-serial and/or --side-serial"),
        (["real", "record-goal", "--task", USB, "--twin", "--out", "goal.png"],
         "goal.png must end in .npz"),  # it wrote a zip archive under that name
    ]
    _assert_usage_errors(capsys, cases)
    assert not (tmp_path / "report").exists() and not (tmp_path / "goal_images.npz").exists()


def test_validate_checks_the_env_kwargs_against_the_simulation_before_the_robot(
    tmp_path, monkeypatch, capsys
):
    """The sim half takes the same --env kwargs; one it refuses (servo_hz, a typo, a value out
    of range) used to fail only after every trial had run on the robot. NaN and Infinity
    (which JSON parsing accepts) ended in `Out of range float values are not JSON compliant`."""
    monkeypatch.chdir(tmp_path)
    base = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
            "--episodes", "1", "--out", "report"]
    for env, message in (
        ("servo_hz=125", "--env: servo_hz is set with --frequency, not --env"),
        ("gains=1", "--env: gains is for scripts that build the cell with real.make"),
        ("typo=1", "the simulated session refuses it: InsertBench/USB-v0 got an unknown "
                   "kwarg 'typo'"),
        ("goal_noise_mm=-1", "the simulated session refuses it: goal_noise_mm must be in"),
        ("servo_gain=NaN", "--env servo_gain=NaN: NaN and Infinity are not finite numbers"),
        ("init_offset_mm=[0,Infinity]", "NaN and Infinity are not finite numbers"),
    ):
        code, err = _cli(capsys, *base, "--env", env)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert message in lines[0], lines[0]
    assert not (tmp_path / "report").exists()  # no trial ran, on the robot or in sim


def test_a_negative_seed_is_refused_before_the_robot_is_reached(tmp_path, monkeypatch, capsys):
    """`--seed -1` connected to the robot and failed at the first reset with NumPy's "Seed must
    be greater or equal to zero", after the session's header was in --out (so the corrected
    command was refused as another session); on the twin it was a NumPy error line."""
    monkeypatch.chdir(tmp_path)
    for args in (
        ["validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "c.json",
         "--policy", "p_controller", "--episodes", "1", "--out", "report"],
        ["record-goal", "--task", USB, "--twin", "--out", "goal.npz"],
        ["calibrate", "--task", USB, "--twin", "--out", "c.json"],
        ["serve-twin", "--task", USB, "--max-seconds", "1"],
    ):
        code, err = _cli(capsys, "real", *args, "--seed", "-1")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert "'--seed': Input should be greater than or equal to 0" in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []


def test_what_the_cell_refuses_is_a_usage_error_before_the_robot(tmp_path, monkeypatch, capsys):
    """A simulation-only --env kwarg ended in "TypeError: RealInsertionEnv.__init__() got an
    unexpected keyword argument", a start height
    outside the safety workspace and a missing, damaged, implausible or other task's
    --calibration in internal-error lines (exit 1); --continuity-input 99 ran on the twin."""
    monkeypatch.chdir(tmp_path)
    PLAUSIBLE.save("usb.json")
    Path("mm.json").write_text(json.dumps(  # Calibration() itself refuses it
        PLAUSIBLE.__dict__ | {"socket_pose": [450.0, 130.0, 14.0, 3.14, 0.0, 0.0]}))
    Calibration(**{**PLAUSIBLE.__dict__, "task": "InsertBench/DSub-v0"}).save("dsub.json")
    Calibration(**{**PLAUSIBLE.__dict__, "robot": "digital-twin"}).save("twin.json")
    Calibration(**{**PLAUSIBLE.__dict__, "robot": "127.0.0.1"}).save("local.json")
    Calibration(**{**PLAUSIBLE.__dict__, "robot": "10.0.0.3"}).save("arm-b.json")
    Calibration(**{**PLAUSIBLE.__dict__, "robot": "digital-twin",
                   "tcp_offset": (0.0, 0.0, 0.2, 0.0, 0.0, 0.0)}).save("long-tcp.json")
    save_goal_images("twin-goal.npz", USB, {"wrist": np.ones((64, 64, 3), np.uint8)},
                     on_twin=True)
    (tmp_path / "damaged.json").write_text('{"task": ')
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--episodes", "1", "--out", "report"]
    cases = [
        ([*validate, "--env", "noiseless=true"],
         "--env: 'noiseless' is a kwarg of the simulated task only"),
        (["real", "record-goal", "--task", USB, "--twin", "--env", "friction_scale=[1,2]"],
         "--env: 'friction_scale' is a kwarg of the simulated task only"),
        ([*validate, "--env", "start_height_mm=150"],
         "--env: the cell refuses it: start poses (150 mm up, offsets up to 0.0 mm) leave"),
        ([*validate, "--calibration", "none.json"], "--calibration: no calibration at none.json"),
        ([*validate, "--calibration", "damaged.json"],
         "--calibration: damaged.json is not a calibration file"),
        ([*validate, "--calibration", "mm.json"],
         "--calibration: mm.json: socket_pose lies 468.611 m from the robot base"),
        ([*validate, "--calibration", "dsub.json"],
         "--calibration: dsub.json calibrates InsertBench/DSub-v0, not InsertBench/USB-v0"),
        ([*validate, "--continuity-input", "99"],
         "'--continuity-input': Input should be less than or equal to 17"),
        # ... and any input was ignored on the twin, whose continuity signal is simulated.
        ([*validate, "--continuity-input", "3"],
         "--continuity-input: is the robot's wiring; the twin's continuity signal is simulated"),
        # As were camera serials, on the twin and with observations without pixels.
        ([*validate, "--wrist-serial", "123", "--side-serial", "456"],
         "--wrist-serial / --side-serial: the twin simulates its cameras"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "usb.json",
          "--policy", "p_controller", "--out", "report", "--side-serial", "456"],
         "--side-serial: no camera is read: the observations have no pixels"),
        # On hardware these are refused before connecting to the robot.
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "mm.json",
          "--policy", "p_controller", "--out", "report"], "--calibration: mm.json: socket_pose"),
        ([*validate, "--env", "wrench_reference=tcp"],
         "--env wrench_reference: is the robot's: the twin is a UR5e"),
        # real24: the twin ran with its watchdog off, a setting the robot's URConfig refuses
        ([*validate, "--env", "rtde_watchdog_hz=null"],
         "--env: the cell refuses it: rtde_watchdog_hz must be a finite number in [1, 500]"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "usb.json",
          "--policy", "p_controller", "--out", "report", "--env", "wrench_reference=wrist"],
         "the cell refuses it: wrench_reference must be 'flange', 'tcp' or None"),
        # real17: the twin's calibration was taken for a robot's
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "twin.json",
          "--policy", "p_controller", "--out", "report"],
         "--calibration: twin.json was recorded on the digital twin, not on a robot"),
        # real24: one made over the RTDE twin (or URSim) on this machine, and goal images the
        # twin rendered, passed for a robot's
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "local.json",
          "--policy", "p_controller", "--out", "report"],
         "--calibration: local.json was recorded on this machine (127.0.0.1: the RTDE twin or "
         "URSim), not on the robot at 10.0.0.2"),
        # real26: another robot's socket pose drove this one, and the twin's refusal of a
        # calibration made with another TCP advised --tcp-offset, which the twin refuses
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "arm-b.json",
          "--policy", "p_controller", "--out", "report"],
         "--calibration: arm-b.json was recorded on the robot at 10.0.0.3, not at 10.0.0.2"),
        ([*validate, "--calibration", "long-tcp.json"],
         "--calibration: long-tcp.json measured the socket with TCP offset [0.0, 0.0, 0.2, 0.0, "
         "0.0, 0.0], and the twin holds the plug at the simulation's TCP: it cannot rehearse"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "usb.json",
          "--policy", "p_controller", "--out", "report", "--env", "reward=goal_image",
          "--env", "obs_mode=state+pixels", "--wrist-serial", "1",
          "--goal-images", "twin-goal.npz"],
         "--goal-images: twin-goal.npz holds goal images the digital twin rendered"),
        (["real", "validate", "--task", USB, "--host", "10.0.0.2", "--calibration", "usb.json",
          "--policy", "p_controller", "--out", "report", "--env", "grasp_noise_mm=1"],
         "--env: 'grasp_noise_mm' is a kwarg of the simulated task only"),
    ]
    _assert_usage_errors(capsys, cases)
    assert not (tmp_path / "report").exists() and not (tmp_path / "goal_images.npz").exists()
    code, err = _cli(capsys, *validate, "--calibration", "usb.json", "--out", "report")
    assert code == 0, err


def test_a_log_of_another_session_or_a_damaged_one_is_refused_before_any_trial(
    tmp_path, monkeypatch, capsys
):
    """A sim log of another session in --out was found only after every trial on the robot
    had run; a damaged log said only "Expecting value: line 1 column 1", naming no file."""
    monkeypatch.chdir(tmp_path)
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--episodes", "1", "--out", "report"]
    code, err = _cli(capsys, *validate, "--env", "goal_noise_mm=1")
    assert code == 0, err
    twin_log = tmp_path / "report" / "validate_InsertBench_USB-v0.twin.jsonl"
    twin_log.unlink()  # to run the robot's trials again, without the sim's
    code, err = _cli(capsys, *validate)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert ("--out: report/validate_InsertBench_USB-v0.sim.jsonl holds trials of another "
            "session") in lines[0], lines[0]
    assert len(twin_log.read_text().splitlines()) == 1  # its header: no trial ran
    for damage in (b'{"task": "Insert', b"\xff\xfe"):
        twin_log.write_bytes(damage)
        code, err = _cli(capsys, *validate, "--env", "goal_noise_mm=1")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert "--out: report/validate_InsertBench_USB-v0.twin.jsonl is not a trial log (" \
            in lines[0], lines[0]


def test_a_log_of_another_task_version_is_not_resumed(tmp_path, monkeypatch, capsys):
    """After an update that changed the task (a new version key) the same command resumed both
    logs: one table of trials on two tasks (real24)."""
    monkeypatch.chdir(tmp_path)
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--out", "report"]
    code, err = _cli(capsys, *validate, "--episodes", "1")
    assert code == 0, err
    sim_log = tmp_path / "report" / "validate_InsertBench_USB-v0.sim.jsonl"
    header, trial = sim_log.read_text().splitlines()
    sim_log.write_text(header + "\n" + json.dumps(json.loads(trial) | {
        "task_version_key": "deadbeef" * 8}) + "\n")
    before = {p: p.read_bytes() for p in (tmp_path / "report").iterdir()}
    code, err = _cli(capsys, *validate, "--episodes", "2")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "--out: report/validate_InsertBench_USB-v0.sim.jsonl holds trials of task version " \
        "key deadbeefdead; this code builds the task as" in lines[0], lines[0]
    assert {p: p.read_bytes() for p in (tmp_path / "report").iterdir()} == before  # no trial


@pytest.fixture
def twins(monkeypatch) -> list:
    """Every `DigitalTwinRobot` the commands of the test build, in order."""
    import real.twin

    built = []

    class Twin(real.twin.DigitalTwinRobot):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(real.twin, "DigitalTwinRobot", Twin)
    return built


def test_calibrate_disconnects_the_robot_also_when_interrupted(tmp_path, monkeypatch, capsys,
                                                               twins):
    """calibrate never disconnected: ur_rtde's control script kept running on the controller
    after the command had ended, finished, failed or interrupted (on the rehearsal robot,
    `insertbench real serve-twin`, `state` still showed "program": "rtde_control")."""
    import benchmark.real_cli

    monkeypatch.chdir(tmp_path)
    robots = twins
    code, err = _cli(capsys, "real", "calibrate", "--task", USB, "--twin", "--out", "c.json")
    assert code == 0, err
    assert robots[-1].commands[-1].name == "disconnect"

    def interrupted(robot, method):
        def prompt(message):
            raise KeyboardInterrupt

        return prompt

    monkeypatch.setattr(benchmark.real_cli, "_twin_operator", interrupted)
    code, err = _cli(capsys, "real", "calibrate", "--task", USB, "--twin", "--out", "d.json")
    assert code == 130 and err.strip() == "insertbench: error: interrupted", err
    names = [c.name for c in robots[-1].commands]
    assert names[-2:] == ["endTeachMode", "disconnect"], names
    assert not (tmp_path / "d.json").exists()


def test_calibrate_with_stdin_closed_at_the_prompt_says_so(tmp_path, monkeypatch, capsys):
    """`calibrate --host ... < /dev/null` ended in "error: interrupted", status 130: typer's
    prompt takes a closed stdin for a Ctrl-C."""
    import io

    import benchmark.real_cli
    from real.twin import DigitalTwinRobot

    monkeypatch.chdir(tmp_path)
    robot = DigitalTwinRobot(USB)
    monkeypatch.setattr(benchmark.real_cli, "_robot", lambda *args, **kwargs: (robot, "cell"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, err = _cli(capsys, "real", "calibrate", "--task", USB, "--host", "10.0.0.2", "--out",
                     "c.json")
    assert code == 1 and err.strip().endswith("stdin closed at the operator's prompt: "
                                              "calibration needs someone at a terminal to "
                                              "press Enter"), err
    assert not robot.in_teach_mode and not (tmp_path / "c.json").exists()


def test_the_twin_runs_at_the_given_frequency(tmp_path, monkeypatch, twins):
    """`validate --twin --frequency 125` (a CB3 rehearsal) ran the compliance loop at 500 Hz;
    `calibrate --twin --frequency 125` servoed every 8 ms on a twin that advanced 2 ms."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["real", "calibrate", "--task", USB, "--twin", "--frequency",
                                 "125", "--out", "c.json"])
    assert result.exit_code == 0, result.output
    assert twins[-1].period_s == pytest.approx(1 / 125)
    made = []
    make_twin = real.make_twin

    def recording_make_twin(*args, **kwargs):
        made.append(make_twin(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(real, "make_twin", recording_make_twin)
    result = runner.invoke(app, ["real", "validate", "--task", USB, "--twin", "--policy",
                                 "p_controller", "--episodes", "1", "--frequency", "125",
                                 "--out", "report"])
    assert result.exit_code == 0, result.output
    assert made[0].unwrapped.servo_dt == pytest.approx(1 / 125)
    assert made[0].unwrapped.robot.period_s == pytest.approx(1 / 125)


@pytest.mark.parametrize(("commands", "replies"), [
    ("state\nquit\n", 2),  # the state, then quit's "ok"
    ("", 0),  # /dev/null: stdin's end at once
])
def test_serve_twin_runs_operator_commands_from_a_file(tmp_path, commands, replies):
    """`serve-twin --exit-on-eof < ops.txt` (or < /dev/null) ignored the file, which epoll
    cannot wait on, and its end: it served to --max-seconds."""
    import subprocess
    import sys
    import time

    ops = tmp_path / "ops.txt"
    ops.write_text(commands)
    start = time.monotonic()
    with ops.open() as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "benchmark.entry", "real", "serve-twin", "--task", USB,
             "--exit-on-eof", "--max-seconds", "60", "--quiet"],
            stdin=stdin, capture_output=True, text=True, timeout=50, check=True)
    assert time.monotonic() - start < 30  # not the 60 s of --max-seconds
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ready") and lines[-1] == "stopped after 0 cycles, 0 overruns"
    assert len(lines) == 2 + replies and all(r.startswith("ok") for r in lines[1:-1]), lines
    if replies:
        assert json.loads(lines[1].removeprefix("ok "))["cycles"] == 0


def test_serve_twin_reads_an_endless_unpollable_stdin_a_line_at_a_time():
    """`< /dev/zero` (no line end, no end) was read whole until memory ran out (real25)."""
    import subprocess
    import sys

    with open("/dev/zero") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "benchmark.entry", "real", "serve-twin", "--task", USB,
             "--max-seconds", "1", "--quiet"],
            stdin=stdin, capture_output=True, text=True, timeout=50, check=True)
    assert "error: operator input has a line over 1048576 characters; the rest of it is not " \
        "read" in done.stdout, done.stdout


def test_serve_twin_stopped_by_sigterm_says_so_in_its_status(tmp_path):
    """It stopped cleanly with status 0 and no line: a batch script could not tell a timeout's
    kill from `quit` or --max-seconds (every other command: 143, "terminated")."""
    import signal
    import subprocess
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "benchmark.entry", "real", "serve-twin", "--task", USB,
         "--max-seconds", "60", "--quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("ready")
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 143, err
    assert out.startswith("stopped after") and err.strip() == "insertbench: error: terminated"


def test_serve_twin_dies_with_a_parent_killed_while_it_imports(tmp_path):
    """The server took its parent's pid after the second of imports that `benchmark` begins
    with: a parent killed -9 meanwhile left it serving, init its parent, holding the
    controller's ports for --max-seconds (real18). Killed here once MuJoCo is loaded."""
    import signal
    import subprocess
    import sys
    import time

    from benchmark.twin_process import ports_taken

    if ports_taken():
        pytest.skip(f"ports {ports_taken()} on 127.0.0.1 are in use (a URSim or another twin?)")
    shell = subprocess.Popen(
        ["bash", "-c", f"{sys.executable} -m benchmark.entry real serve-twin --task {USB} "
                       "--max-seconds 60 --quiet </dev/null >/dev/null 2>&1 & echo $!; sleep 60"],
        stdout=subprocess.PIPE, text=True)
    server = int(shell.stdout.readline())
    try:
        deadline = time.monotonic() + 30
        while "mujoco" not in Path(f"/proc/{server}/maps").read_text():  # importing envs
            assert time.monotonic() < deadline
            time.sleep(0.005)
        shell.kill()
        shell.wait()
        deadline = time.monotonic() + 20
        while _running(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(server), "the server outlived its parent"
    finally:
        shell.kill()
        if _running(server):
            os.kill(server, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_touch_off_that_finds_no_contact_is_one_plain_line(tmp_path, monkeypatch, capsys):
    """It printed as an internal error ("RuntimeError: ... --debug shows the traceback")."""
    monkeypatch.chdir(tmp_path)
    # Its servo target 5 mm past the seat at most: the twin's impedance presses too little.
    monkeypatch.setattr("real.calibration.TOUCH_TRAVEL_PAST_MOUTH_M", 0.008)
    code, err = _cli(capsys, "real", "calibrate", "--task", "InsertBench/Connector-NEMA15-v1",
                     "--twin", "--out", "calibration/nema15.json")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "no contact force above 82 N" in lines[0] and "use --method teach" in lines[0]
    assert "RuntimeError" not in err and "--debug" not in err
    assert not (tmp_path / "calibration").exists()


def test_the_twins_operator_seats_a_high_force_plug_for_a_teach_calibration(tmp_path):
    """The simulated operator aimed at the seat itself, through the arm's impedance reference:
    NEMA 14-30 (82-90 N to insert) was recorded 4.2 mm short, and validating on that file
    failed where the twin's own socket pose succeeded. A hand pushes until the plug stops."""
    from real.poses import pose_to_pos_mat
    from real.twin import DigitalTwinRobot

    task = "InsertBench/Connector-NEMA1430P-v1"
    path = tmp_path / "nema.json"
    result = runner.invoke(app, ["real", "calibrate", "--task", task, "--twin", "--method",
                                 "teach", "--out", str(path)])
    assert result.exit_code == 0, result.output
    seat_pos, seat_mat = pose_to_pos_mat(DigitalTwinRobot(task).socket_pose())
    recorded = pose_to_pos_mat(Calibration.load(path).socket_pose)[0]
    assert abs(float((recorded - seat_pos) @ seat_mat[:, 2])) < 0.5e-3  # was 4.2 mm short


def test_validate_gives_the_cells_own_kwargs_to_the_cell_alone(tmp_path, monkeypatch, capsys,
                                                                 twins):
    """`--env zero_ft_sensor=false` (a CB3 cell, whose controller has no zeroFtSensor) was
    refused by the simulated session as an unknown kwarg, so the CLI could not run such a cell.
    The cell's own settings go to its session and into its log's header, so a resume under
    others is another session."""
    monkeypatch.chdir(tmp_path)
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--episodes", "1", "--out", "report"]
    code, err = _cli(capsys, *validate, "--env", "zero_ft_sensor=false", "--env",
                     "servo_gain=400")
    assert code == 0, err
    assert [c.name for c in twins[0].commands].count("zeroFtSensor") == 0
    headers = {setting: json.loads(
        (tmp_path / "report" / f"validate_InsertBench_USB-v0.{setting}.jsonl")
        .read_text().splitlines()[0]) for setting in ("twin", "sim")}
    assert headers["sim"]["env_kwargs"] == headers["twin"]["env_kwargs"] == {}
    assert headers["twin"]["cell"]["env_kwargs"] == {"zero_ft_sensor": False, "servo_gain": 400}
    code, err = _cli(capsys, *validate)
    assert code == 2 and "holds trials of another session" in err, err
    # ... naming what differs: the whole header alone left it to the user (newuser22)
    assert "holds trials of another session (it differs in ['cell.env_kwargs']: " \
        in " ".join(err.split()), err
    code, err = _cli(capsys, *validate, "--out", "zeroed")
    assert code == 0, err
    assert [c.name for c in twins[-1].commands].count("zeroFtSensor") == 1


def test_calibrate_says_a_glitching_pose_reading_in_one_line(tmp_path, monkeypatch, capsys):
    """Readings that moved while the pose was taken (a glitch, an arm still moving) raised a
    ValueError, shown as an internal error's line (real23)."""
    from real.twin import DigitalTwinRobot

    read, calls = DigitalTwinRobot.getActualTCPPose, [0]

    def glitch(self):
        pose = list(read(self))
        if not self.in_teach_mode:
            calls[0] += 1
            pose[0] += 0.015 if calls[0] == 3 else 0.0
        return pose

    monkeypatch.setattr(DigitalTwinRobot, "getActualTCPPose", glitch)
    monkeypatch.chdir(tmp_path)
    code, err = _cli(capsys, "real", "calibrate", "--task", USB, "--twin", "--out", "c.json")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "the TCP pose readings of 10 control periods lie 14.99 mm" in lines[0]
    assert "ValueError" not in lines[0] and not (tmp_path / "c.json").exists()


def test_a_damaged_checkpoint_is_one_line_that_names_it(tmp_path, monkeypatch, capsys):
    """A damaged agent.json was "KeyError: 'agent'" or JSONDecodeError lines naming no file,
    where `eval` names it (agents23)."""
    import gymnasium as gym

    from agents import make_agent

    monkeypatch.chdir(tmp_path)
    env = gym.make(USB)
    make_agent("sac", env.observation_space, env.action_space, {"hidden": (8,)}).save("ck")
    env.close()
    meta = json.loads(Path("ck/agent.json").read_text())
    for text, message in ((json.dumps(meta | {"agent": ["sac"]}), "agent must be a JSON string"),
                          ("{bad", "ck/agent.json is not valid JSON")):
        Path("ck/agent.json").write_text(text)
        code, err = _cli(capsys, "real", "validate", "--task", USB, "--twin", "--checkpoint",
                         "ck", "--episodes", "1", "--out", "report")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_a_full_disk_mid_session_stops_it_naming_the_log_and_a_rerun_resumes(
        tmp_path, monkeypatch, capsys):
    """real26: a full disk ended validate in "OSError: [Errno 28] No space left on device",
    naming no file and not saying the finished trials are kept; so did a report path that is a
    folder, after every trial had run."""
    import errno

    monkeypatch.chdir(tmp_path)
    validate = ["real", "validate", "--task", USB, "--twin", "--policy", "p_controller",
                "--episodes", "2", "--sim-episodes", "2", "--out", "my report"]
    opened = Path.open
    appends = []

    def disk_fills_after_one_trial(self, mode="r", *args, **kwargs):
        if mode == "a" and self.suffix == ".jsonl":
            appends.append(self.name)
            if len(appends) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        return opened(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", disk_fills_after_one_trial)
    code, err = _cli(capsys, *validate)
    log = Path("my report") / "validate_InsertBench_USB-v0.twin.jsonl"
    assert code == 1 and err.strip().splitlines()[-1] == (
        f"insertbench: error: twin session stopped after 1 trials (kept in {log}; rerun the same "
        f"command to resume): the trial of seed 1001 could not be recorded in {log} (No space "
        "left on device): make room")
    monkeypatch.setattr(Path, "open", opened)
    Path("my report/validate_InsertBench_USB-v0.twin.md").mkdir()
    code, err = _cli(capsys, *validate)
    assert code == 1 and err.strip().splitlines()[-1].startswith(
        "insertbench: error: the report could not be written ([Errno 21] Is a directory")
    assert "twin trial seed 1000" not in err and "twin trial seed 1001" in err  # resumed
    assert len(log.read_text().splitlines()) == 3  # the header and two trials
