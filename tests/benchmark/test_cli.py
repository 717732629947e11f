"""The `insertbench` command line as a user meets it: one-line errors, one `--env` syntax, help
texts that keep their defaults, every task listed. Commands run from a working directory with
relative paths, through the same `app(...)` call as the installed `insertbench` script."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import typer

import envs  # registers the tasks
from benchmark.cli import app
from benchmark.cli_options import parse_env_kwargs
from envs.tasks import DYNAMICS


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `insertbench ARGS`; its exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        app(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def all_commands():
    """(command path, click command) of every leaf command of the app."""
    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield path, command
            return
        for name, sub in subcommands.items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_misspelt_env_kwarg_is_one_line_with_a_suggestion(capsys, in_tmp):
    code, _, err = run_cli(capsys, "rollout", "--task", "InsertBench/USB-v0", "--episodes", "1",
                           "--env", "goal_nose_mm=1")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "did you mean 'goal_noise_mm'? (known: action_mode, " in err
    assert "Traceback" not in err and "TaskSpec(" not in err and "TypeError" not in err


@pytest.mark.parametrize("command", ["rollout", "eval"])
@pytest.mark.parametrize(("env", "message"), [
    ("goal_noise_mm=abc", "goal_noise_mm must be a finite number in [0, 20], got 'abc'"),
    ("goal_nose_mm=1", "did you mean 'goal_noise_mm'?"),
    # gym.make's own kwarg: its TimeLimit ran true as a 1-step episode and took 10^11
    ("max_episode_steps=true", "max_episode_steps must be an integer in [1, 1,000,000], got "
     "True"),
    ("max_episode_steps=100000000000", "max_episode_steps must be an integer in [1, 1,000,000]"),
])
def test_a_kwarg_the_task_refuses_is_a_usage_error(capsys, in_tmp, command, env, message):
    """`rollout` and `eval` printed it as an internal error, "ValueError: ..." with the --debug
    hint and exit 1, where `train` and `matrix run` said "Invalid value" with exit 2."""
    args = ["--task", "InsertBench/USB-v1", "--episodes", "1", "--env", env]
    if command == "eval":
        code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                               "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                               "runs/pc", "--no-progress")
        assert code == 0, err
        args += ["--checkpoint", "runs/pc"]
    code, out, err = run_cli(capsys, command, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Invalid value" in lines[0] and message in lines[0], err
    assert "Error:" not in err and "--debug" not in err and out == ""


def test_rollout_computes_a_tasks_version_key_once(capsys, in_tmp, monkeypatch):
    """Every episode computed it again: on a 100,000-connector procedural family that is
    ~40 s and ~1.3 GB an episode."""
    import envs.version_key as version_key

    calls = []
    compute = version_key.task_version_key
    monkeypatch.setattr(version_key, "task_version_key",
                        lambda *a, **k: calls.append(a) or compute(*a, **k))
    code, out, err = run_cli(capsys, "rollout", "--task", "InsertBench/USB-v1", "--episodes",
                             "4", "--env", "max_episode_steps=3")
    assert code == 0, err
    assert len(calls) <= 2, calls  # the episodes' records, and the table's short key


def test_rollout_refuses_a_negative_seed_before_building_the_tasks(capsys, in_tmp):
    """It built every task, started the progress bar and ended in NumPy's "Seed must be greater
    or equal to zero" (exit 1)."""
    code, out, err = run_cli(capsys, "rollout", "--task", "InsertBench/USB-v0", "--episodes",
                             "1", "--seed", "-1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "'--seed': Input should be greater than or equal to 0" in lines[0], lines[0]
    assert "rolling out" not in out + err


def test_debug_shows_the_traceback(capsys, in_tmp, monkeypatch):
    import benchmark.rollout_cli

    def crash(*args, **kwargs):
        raise RuntimeError("an internal error")

    monkeypatch.setattr(benchmark.rollout_cli, "run_episode", crash)
    args = ["rollout", "--task", "InsertBench/USB-v0", "--episodes", "1"]
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "RuntimeError: an internal error (`insertbench --debug" in err, err
    with pytest.raises(RuntimeError, match="an internal error"):
        app(["--debug", *args])


@pytest.mark.parametrize("versions", [["2", "2"], ["-1"]])
def test_a_bad_task_version_is_blamed_on_the_option_not_the_preset(capsys, in_tmp, versions):
    args = [a for v in versions for a in ("--task-version", v)]
    code, _, err = run_cli(capsys, "matrix", "status", "paper000-state", *args)
    assert code == 2
    assert "--task-version" in err and "PRESET" not in err, err


@pytest.mark.parametrize("args", [
    ["rollout", "--bogus"],
    ["rollout", "--task", "InsertBench/Nope-v0"],
    ["rollout", "--debug"],
    ["train", "--task", "InsertBench/USB-v0"],
    ["matrix", "run", "no-such-preset"],
    ["matrix", "run", "quick", "--agent", "nobody"],
    ["matrix", "run", "quick", "--ray-address", "auto"],
    ["matrix", "report", "quick", "--store", "missing.sqlite"],
    ["eval", "--task", "InsertBench/USB-v0", "--checkpoint", "no/such/run"],
    ["dataset", "collect", "--task", "InsertBench/USB-v0", "--out", "d", "--env", "x"],
    ["matrix", "run", "quick", "--agent", "p_controller", "--heartbeat", "nan"],
    # adv41: listed 10^12 seeds until the memory ran out / allocated 14.6 TiB / a 10^12-h ETA
    ["rollout", "--task", "InsertBench/USB-v0", "--episodes", "1000000000000"],
    ["matrix", "report", "quick", "--reps", "1000000000000"],
    ["train", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps",
     "9223372036854775807", "--out", "x"],
    ["matrix", "run", "quick", "--agent", "p_controller", "--heartbeat", "0"],
    # matrix19: past threading.TIMEOUT_MAX an OverflowError once the run had started
    ["matrix", "run", "quick", "--agent", "p_controller", "--heartbeat", "1e10",
     "--stale-after", "2e10"],
    ["matrix", "run", "quick", "--agent", "p_controller", "--stale-after", "-1"],
    ["matrix", "status", "paper000-state", "--task-version", "9"],
    ["matrix", "run", "paper000-state", "--task-version", "2", "--task-version", "2"],
])
def test_user_mistakes_are_one_line_on_stderr(capsys, in_tmp, args):
    code, _, err = run_cli(capsys, *args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("insertbench: error: "), err


def test_the_vice_rewards_kwarg_without_it_says_whose_it_is(capsys, in_tmp):
    """`-e goal_hold_steps=5` without reward=vice was "unknown kwarg", as if no env took it."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "bc",
                           "--steps", "0", "-e", "goal_hold_steps=5", "--out", "gh")
    assert code == 2 and "goal_hold_steps is a kwarg of the VICE reward: give it with " \
        "reward=vice" in err, err


def test_an_old_versions_advice_comes_only_with_an_env_made(monkeypatch):
    """`train --task InsertBench/USB-v0 --env goal_noise_mm=30` printed Gymnasium's "out of
    date, consider upgrading" line before the one-line usage error; then the Python API gave
    it once for every env made."""
    import warnings

    from benchmark.train import make_env

    monkeypatch.setattr("benchmark.cli_options.SHOWN_WARNINGS", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            make_env("InsertBench/USB-v0").close()
    assert len([w for w in caught if "out of date" in str(w.message)]) == 1
    # Through `build_env` (`eval`), whose recording held make_env's: the advice was lost.
    from benchmark.cli_options import build_env

    monkeypatch.setattr("benchmark.cli_options.SHOWN_WARNINGS", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_env(make_env, "InsertBench/USB-v0").close()
    assert len([w for w in caught if "out of date" in str(w.message)]) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="goal_noise_mm must be in"):
            make_env("InsertBench/USB-v0", {"goal_noise_mm": 30})
    assert not [w for w in caught if "out of date" in str(w.message)]


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_a_store_that_is_a_folder_is_named_so(capsys, in_tmp, command):
    """`--store runs` said SQLite's "OperationalError: unable to open database file"."""
    (in_tmp / "runs").mkdir()
    code, _, err = run_cli(capsys, "matrix", command, "quick", "--store", "runs")
    assert code == 2 and "runs is a folder; give the SQLite file" in err, err


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_a_store_that_is_a_pipe_is_refused_not_waited_on(capsys, in_tmp, command):
    """SQLite's open of a FIFO blocked for ever, past SIGTERM and Ctrl-C (matrix20)."""
    import os

    os.mkfifo(in_tmp / "fifo")
    code, _, err = run_cli(capsys, "matrix", command, "quick", "--store", "fifo")
    assert code == 2 and "fifo is not a regular file (a pipe, socket or device)" in err, err


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_the_default_store_is_checked_as_a_given_one(capsys, in_tmp, command):
    """runs/<preset>.sqlite as a folder was SQLite's "unable to open database file"."""
    (in_tmp / "runs" / "quick.sqlite").mkdir(parents=True)
    code, _, err = run_cli(capsys, "matrix", command, "quick")
    assert code == 2 and "runs/quick.sqlite is a folder; give the SQLite file" in err, err


@pytest.mark.parametrize(("artifacts", "message"), [
    ("afile", "afile is not a directory"),
    ("afile/sub", "afile/sub is not a directory (under afile, a file)"),
])
def test_an_artifacts_root_that_cannot_hold_folders_is_refused_before_any_cell(
        capsys, in_tmp, artifacts, message):
    """Every cell failed in turn (FileExistsError, NotADirectoryError), each recorded in the
    store as a failure."""
    (in_tmp / "afile").write_text("x")
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--store", "s.sqlite", "--artifacts", artifacts, "--no-progress")
    assert code == 2 and f"Invalid value for --artifacts: {message}" in err, err
    assert not (in_tmp / "s.sqlite").exists()


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_a_store_sqlite_cannot_open_is_one_line(capsys, in_tmp, monkeypatch, command):
    """A read-only store (or folder) was SQLite's "unable to open database file", exit 1."""
    from benchmark import store

    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store, "Store", refuse)  # what `store.open_store` opens
    (in_tmp / "runs").mkdir()
    (in_tmp / "runs" / "quick.sqlite").write_bytes(b"")  # exists: status and report open it
    code, _, err = run_cli(capsys, "matrix", command, "quick", "--agent", "p_controller",
                           "--no-progress") if command == "run" else run_cli(
        capsys, "matrix", command, "quick")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    expected = ("the store cannot be opened: it must be a writable file" if command == "run"
                else "the store cannot be read (attempt to write")  # they open it read-only
    assert f"runs/quick.sqlite: {expected}" in err


def test_a_store_path_with_brackets_is_printed_as_typed(capsys, in_tmp):
    """matrix17: rich read "odd [v2]/s.sqlite" as markup, and the summary, status and report
    named "odd /s.sqlite"; "a[/]b/s.sqlite" ended a finished run in a MarkupError, exit 1."""
    store = "a[/]b [v2]/s.sqlite"
    code, out, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                             "--executor", "inline", "--no-progress", "--store", store)
    assert code in (0, None) and f"store {store}" in out, err
    code, out, err = run_cli(capsys, "matrix", "status", "quick", "--store", store)
    assert code in (0, None) and f"quick ({store}): 2 done" in out, err
    code, out, err = run_cli(capsys, "matrix", "report", "quick", "--store", store, "--reps",
                             "100")
    assert code in (0, None) and "wrote a[/]b [v2]/s-quick-report/report.md" in out, err


def test_status_and_report_read_a_store_they_cannot_write(capsys, in_tmp):
    """A store in a folder the reader cannot write (a colleague's, an archive) was refused by
    status and report ("must be a writable file in a writable folder"): SQLite's WAL wants its
    index beside the file. Made unwritable with chattr +i, which binds root too."""
    import shutil
    import subprocess

    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--executor", "inline", "--no-progress")
    assert code == 0, err
    paths = ["runs/quick.sqlite", "runs"]
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", *paths], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        code, out, err = run_cli(capsys, "matrix", "status", "quick")
        assert code in (0, None) and "done" in out, err
        code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100",
                               "--out", "report")
        assert code in (0, None), err
        assert "| USB-v1 " in (in_tmp / "report" / "report.md").read_text()
    finally:
        subprocess.run(["chattr", "-i", *paths], check=True)


def test_a_folder_this_user_cannot_write_is_named(in_tmp, monkeypatch):
    from benchmark.cli_options import check_writable

    (in_tmp / "ro").mkdir()
    monkeypatch.setattr("os.access", lambda path, mode: Path(path).name != "ro")
    with pytest.raises(typer.BadParameter, match=r"ro/art cannot be written \(in ro\)"):
        check_writable(Path("ro/art"), "--artifacts")
    check_writable(Path("elsewhere/art"), "--artifacts")


@pytest.mark.parametrize("command", [
    ["classifier", "train", "--task", "InsertBench/USB-v1", "--episodes", "1",
     "--heldout-episodes", "1", "--steps", "1"],
    ["train", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps", "10"],
    ["train-async", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps", "10"],
    ["dataset", "collect", "--task", "InsertBench/USB-v1", "--episodes", "1"],
    ["matrix", "report", "quick"],
])
def test_an_out_folder_this_user_cannot_write_is_refused_before_the_work(
        capsys, in_tmp, monkeypatch, command):
    """Found when the first file was written: `classifier train` collected its frames and
    trained, then ended in "OSError: [Errno 30] Read-only file system" (exit 1), as did train,
    train-async, dataset collect/recipe, real validate and leaderboard render."""
    (in_tmp / "ro").mkdir()
    monkeypatch.setattr("os.access", lambda path, mode: Path(path).name != "ro")
    code, _, err = run_cli(capsys, *command, "--out", "ro/out")
    lines = err.strip().splitlines()
    assert code == 2 and "ro/out cannot be written (in ro)" in lines[-1], err


@pytest.mark.parametrize(("args", "message"), [
    (["rollout", "--task", "InsertBench/USB-v3", "--task", "InsertBench/USB-v3"],
     "Invalid value for --task: ['InsertBench/USB-v3'] given more than once"),  # ran twice
    (["matrix", "run", "."], "preset file . is a folder"),  # "does not exist"
    (["matrix", "report", "quick", "--store", "nope.sqlite"],  # "Invalid value for PRESET"
     "Invalid value for --store: no store at nope.sqlite"),
    (["matrix", "status", "quick", "--store", "runs/quikc.sqlite"],  # "4 cells pending", exit 0
     "Invalid value for --store: no store at runs/quikc.sqlite"),
])
def test_a_mistake_is_named_by_what_was_typed(capsys, in_tmp, args, message):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and message in err, err


def test_matrix_report_refuses_a_folder_of_other_files(capsys, in_tmp):
    """`matrix report --out myfolder` replaced the user's report.md among their files."""
    (in_tmp / "myfolder").mkdir()
    (in_tmp / "myfolder" / "thesis.tex").write_text("mine")
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--out", "myfolder")
    assert code == 2 and "--out myfolder holds other files and no report (report.md)" in err, err
    # A report interrupted after its figures (they come before report.md) is its own folder:
    # the same command was refused.
    (in_tmp / "interrupted").mkdir()
    (in_tmp / "interrupted" / "performance_profile.png").write_bytes(b"png")
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--out", "interrupted")
    assert "holds other files" not in err, err


@pytest.mark.parametrize("command", ["run", "status", "report"])
@pytest.mark.parametrize(("store", "message"), [
    ("notes.txt", "notes.txt is not a matrix store (a SQLite file)"),  # was "DatabaseError"
    ("notes.txt/q.sqlite", "notes.txt/q.sqlite lies under notes.txt, a file"),  # FileExistsError
])
def test_a_store_that_is_another_file_or_under_one_is_named_so(capsys, in_tmp, command, store,
                                                                message):
    (in_tmp / "notes.txt").write_text("my notes\n")
    code, _, err = run_cli(capsys, "matrix", command, "quick", "--store", store,
                           "--agent", "p_controller") if command == "run" else \
        run_cli(capsys, "matrix", command, "quick", "--store", store)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert (in_tmp / "notes.txt").read_text() == "my notes\n"
    assert sorted(p.name for p in in_tmp.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_another_programs_sqlite_database_is_not_taken_for_a_store(capsys, in_tmp, command):
    """It was: `status` and `report` added the store's tables to it, `run` a matrix, silently."""
    db = sqlite3.connect(in_tmp / "inventory.db")
    db.execute("CREATE TABLE parts (name TEXT)")
    db.commit()
    db.close()
    before = (in_tmp / "inventory.db").read_bytes()
    args = ("--agent", "p_controller") if command == "run" else ()
    code, _, err = run_cli(capsys, "matrix", command, "quick", "--store", "inventory.db", *args)
    assert code == 2, err
    assert "inventory.db is a SQLite database of something else (tables: parts)" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert (in_tmp / "inventory.db").read_bytes() == before
    assert sorted(p.name for p in in_tmp.iterdir()) == ["inventory.db"]


@pytest.mark.parametrize(("video", "message"), [
    ("notes.txt/x.mp4", "notes.txt is not a writable directory"),
    ("clip.gif", "must name an .mp4 file"),
    ("dir.mp4", "dir.mp4 is a directory"),
])
def test_a_bad_video_path_is_refused_before_rolling_out(capsys, in_tmp, video, message):
    """It used to fail only after the rollouts (minutes for every task), table printed."""
    (in_tmp / "dir.mp4").mkdir()
    (in_tmp / "notes.txt").write_text("a file, not a folder")
    code, out, err = run_cli(capsys, "rollout", "--task", "InsertBench/USB-v0", "--episodes",
                             "1", "--video", video)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["dir.mp4", "notes.txt"]


def test_a_rollout_video_is_written_task_by_task_with_its_index(capsys, in_tmp, monkeypatch):
    """Every task's frames were held until the end (2.3 GB for the default set) and the one
    MP4 did not say which seconds showed which task. An interrupted rollout leaves no video."""
    import imageio.v2 as imageio

    import benchmark.rollout_cli

    tasks = ["--task", "InsertBench/USB-v0", "--task", "InsertBench/DSub-v0"]
    code, out, err = run_cli(capsys, "rollout", *tasks, "--episodes", "1", "--video",
                             "videos/clip.mp4")
    assert code == 0, err
    index = json.loads((in_tmp / "videos" / "clip.tasks.json").read_text())
    assert [s["task_id"] for s in index] == ["InsertBench/USB-v0", "InsertBench/DSub-v0"]
    assert index[0]["start_s"] == 0.0 and index[1]["start_s"] == index[0]["frames"] / 10
    assert imageio.get_reader(in_tmp / "videos" / "clip.mp4").count_frames() == sum(
        s["frames"] for s in index)
    assert sorted(p.name for p in (in_tmp / "videos").iterdir()) == ["clip.mp4",
                                                                      "clip.tasks.json"]
    run = benchmark.rollout_cli._run_task

    def interrupted(task_id, *args):
        if task_id.endswith("DSub-v0"):
            raise KeyboardInterrupt
        return run(task_id, *args)

    monkeypatch.setattr(benchmark.rollout_cli, "_run_task", interrupted)
    code, out, err = run_cli(capsys, "rollout", *tasks, "--episodes", "1", "--video",
                             "videos/cut.mp4")
    assert code == 130
    assert sorted(p.name for p in (in_tmp / "videos").iterdir()) == ["clip.mp4",
                                                                      "clip.tasks.json"]


def test_eval_writes_a_video_of_a_trained_policy(capsys, in_tmp):
    """`rollout --video` records scripted policies only, and `eval` had no video: a trained
    policy's first episode could not be watched (Gymnasium's RecordVideo needs MoviePy)."""
    import imageio.v2 as imageio

    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pc", "--no-progress")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/pc", "--episodes", "2", "--video", "videos/pc.mp4")
    assert code == 0, err
    index = json.loads((in_tmp / "videos" / "pc.tasks.json").read_text())
    assert [s["task_id"] for s in index] == ["InsertBench/USB-v1"] and index[0]["frames"] > 2
    assert imageio.get_reader(in_tmp / "videos" / "pc.mp4").count_frames() == \
        index[0]["frames"]
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1", "--video", "videos/pc.gif")
    assert code == 2 and "--video" in err, err
    # --json-out on the video's index overwrote it without a word
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1", "--video", "videos/x.mp4",
                           "--json-out", "videos/x.tasks.json")
    assert code == 2 and "is the video's own file" in err, err


def test_a_kwarg_one_of_the_tasks_refuses_is_refused_before_rolling_out(capsys, in_tmp,
                                                                        monkeypatch):
    """start_height_mm=14 suits USB (12 mm mating length), not the 19 mm Europlug: the
    command used to roll out USB first and then fail, its results lost."""
    import benchmark.rollout_cli

    calls = []
    monkeypatch.setattr(benchmark.rollout_cli, "run_episode", lambda *a, **k: calls.append(a))
    code, out, err = run_cli(capsys, "rollout", "--task", "InsertBench/USB-v0", "--task",
                             "InsertBench/Connector-Europlug-v0", "--episodes", "1", "--env",
                             "start_height_mm=14")
    assert code == 2 and calls == [] and out == ""
    lines = err.strip().splitlines()
    assert "start_height_mm must be in [20, 150] (the plug must start out of the Europlug" \
        in lines[-1], err


def test_a_preset_of_a_module_id_task_reports(capsys, in_tmp):
    """`tasks = ["envs:InsertBench/USB-v1"]` (Gymnasium's module:ID, as `train` takes) ran,
    then `matrix status` and `report` failed: "Namespace envs:InsertBench not found"."""
    (in_tmp / "my presets").mkdir()
    (in_tmp / "my presets" / "modid.toml").write_text(BAD_PRESET.replace(
        '"bad"', '"modid"').replace('"InsertBench/USB-v1"', '"envs:InsertBench/USB-v1"') % "")
    for command in ("run", "status", "report"):
        code, _, err = run_cli(capsys, "matrix", command, "my presets/modid.toml")
        assert code == 0, (command, err)
    assert (in_tmp / "runs" / "modid-report" / "report.md").is_file()


BAD_PRESET = """name = "bad"
seeds = [0]
eval_episodes = 1
eval_seeds = { start = 1000000 }
tasks = ["InsertBench/USB-v1"]
[env_kwargs]
%s
[[agents]]
name = "p_controller"
budget_steps = 0
"""


def test_matrix_list_is_one_aligned_line_a_preset(capsys, in_tmp):
    """Piped (80 columns) every description wrapped onto a second line, and the 27-character
    paper000-pixels-leaderboard pushed its cell count out of the 24-character name column."""
    from benchmark.preset import available_presets, offline_presets

    code, out, _ = run_cli(capsys, "matrix", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [*available_presets(), *offline_presets()]
    assert len({line.index(" cells  ") for line in lines[:len(available_presets())]}) == 1, out
    assert "paper000-pixels-leaderboard     9 cells  paper000-pixels track seed" in out


@pytest.mark.parametrize(("kwarg", "message"), [
    ("goal_noise_mm = nan", "goal_noise_mm must be a finite number, got nan"),
    ("init_offset_mm = [0, inf]", "init_offset_mm[1] must be a finite number, got inf"),
    ("bogus = 3", "unknown kwarg 'bogus'"),
])
def test_bad_preset_file_is_one_line_naming_the_key(capsys, in_tmp, kwarg, message):
    """A preset's nan used to read "Out of range float values are not JSON compliant", and an
    unknown kwarg dumped the whole TaskSpec that Gymnasium appends to the constructor's error."""
    (in_tmp / "presets").mkdir()
    (in_tmp / "presets" / "bad.toml").write_text(BAD_PRESET % kwarg)
    code, _, err = run_cli(capsys, "matrix", "run", "presets/bad.toml", "--store", "runs/b.sqlite")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert "TaskSpec(" not in err and "JSON" not in err
    assert not (in_tmp / "runs").exists()


def test_python_m_matrix_cli_is_the_same_command(in_tmp):
    """`python -m benchmark.matrix_cli` (as the kill-and-resume test runs it) goes through the
    same one-line error handling as `insertbench matrix`."""
    import os
    import subprocess
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])  # this checkout, not an installed copy
    result = subprocess.run([sys.executable, "-m", "benchmark.matrix_cli", "run", "nope"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": repo})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("insertbench: error: "), result.stderr


@pytest.mark.parametrize(("module", "usage"), [
    ("benchmark.real_cli", "insertbench real"), ("leaderboards.cli", "insertbench leaderboard"),
    ("benchmark.dataset_cli", "insertbench dataset"),
    ("benchmark.classifier_cli", "insertbench classifier"),
    ("benchmark.sim2sim_cli", "insertbench sim2sim"), ("benchmark.train_cli", "insertbench"),
    ("benchmark.rollout_cli", "insertbench"),
])
@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy, imported
def test_every_cli_module_runs_its_commands_under_python_m(module, usage, capsys, monkeypatch):
    """`python -m real.cli --help` (now benchmark.real_cli) printed nothing and exited 0: the
    modules had no __main__."""
    import runpy

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module(module, run_name="__main__")
    assert exited.value.code == 0
    assert f"Usage: {usage} [OPTIONS]" in capsys.readouterr().out


def test_train_below_learning_starts_warns(capsys, in_tmp):
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v0", "--agent", "sac",
                           "--steps", "5", "--eval-episodes", "0", "--config", "hidden=8,8",
                           "--out", "runs/short", "--no-progress")
    assert code == 0
    assert "insertbench: warning: sac makes no online gradient update in 5 env steps" in err
    assert (in_tmp / "runs/short/run.json").is_file()
    # agents24: a config the agent refuses was this warning, then the error
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "rlpd",
                           "--steps", "10", "--config", "obs_keys=nope", "--out", "runs/keys")
    assert code == 2 and err.strip().splitlines() == [
        "insertbench: error: Invalid value: obs_keys ['nope'] not in the observation space; it "
        "has ['tcp_pose', 'tcp_vel', 'wrench'] (see `insertbench train --help`)"]


def test_env_values_are_json_with_bare_strings():
    assert parse_env_kwargs(["goal_noise_mm=1.0", "init_offset_mm=[0,10]", "reward=dense",
                             "grayscale=true", "cameras=[\"wrist\"]"]) == {
        "goal_noise_mm": 1.0, "init_offset_mm": [0, 10], "reward": "dense", "grayscale": True,
        "cameras": ["wrist"],
    }
    for bad, message in [("goal_noise_mm", "KEY=VALUE"), ("grayscale=True", "grayscale=true"),
                         ("init_offset_mm=(0,10)", "not valid JSON"),
                         ("init_offset_mm=[0,10", "not valid JSON")]:
        with pytest.raises(typer.BadParameter, match=message.replace("(", r"\(")):
            parse_env_kwargs([bad])
    with pytest.raises(typer.BadParameter, match="twice"):
        parse_env_kwargs(["reward=dense", "reward=sparse"])
    # render_mode=0 ended train in an AttributeError, "human" left a run folder behind.
    with pytest.raises(typer.BadParameter, match="render_mode is set by the command"):
        parse_env_kwargs(["render_mode=human"])
    with pytest.raises(typer.BadParameter, match="disable_env_checker is not a task setting"):
        parse_env_kwargs(["disable_env_checker=abc"])


def test_every_command_that_builds_a_task_takes_the_same_env_option():
    takes_env = {}
    for path, command in all_commands():
        names = {name for p in command.params for name in getattr(p, "opts", [])}
        assert not any("env-kwargs" in n or "env_kwargs" in n for n in names), path
        takes_env[" ".join(path)] = "--env" in names
    for command in ("rollout", "train", "eval", "dataset collect", "real validate"):
        assert takes_env[command], command


def test_help_keeps_every_help_text_and_default(capsys):
    for path, command in all_commands():
        code, out, _ = run_cli(capsys, *path, "--help")
        assert code == 0
        flat = "".join(out.split())  # help is wrapped at spaces and hyphens
        for param in command.params:
            if getattr(param, "help", None) and not getattr(param, "hidden", False):
                assert "".join(param.help.split()) in flat, (path, param.help)
    _, out, _ = run_cli(capsys, "matrix", "run", "--help")
    assert "[default:runs/<preset>.sqlite]" in "".join(out.split())


def test_a_warning_is_one_plain_line(capsys):
    """Gymnasium's advice came as "insertbench: warning: WARN: The environment ...", with its
    logger's colour codes in a Python session."""
    from benchmark.cli_options import WARNED, one_line_warning

    WARNED.clear()
    one_line_warning("\x1b[33mWARN: The environment InsertBench/USB-v1 is out of date.\x1b[0m",
                     DeprecationWarning, "x.py", 1)
    assert capsys.readouterr().err == \
        "insertbench: warning: The environment InsertBench/USB-v1 is out of date.\n"


def test_rollout_by_default_runs_each_connectors_newest_task():
    """The default was every version of every single-connector task (136): the README's first
    `rollout --episodes 20` ran 2,720 episodes."""
    from benchmark.rollout_cli import newest_single_connector_tasks

    chosen = newest_single_connector_tasks()
    names = {i.rsplit("-v", 1)[0] for i in envs.TASKS}
    assert len(chosen) == len(names) == 34
    for env_id in chosen:
        name, version = env_id.rsplit("-v", 1)
        assert int(version) == max(int(i.rsplit("-v", 1)[1]) for i in envs.TASKS
                                   if i.rsplit("-v", 1)[0] == name)
    assert {i.rsplit("-v", 1)[0] for i in chosen[:3]} == {
        "InsertBench/USB", "InsertBench/DSub", "InsertBench/ModelE"}


def test_train_help_names_every_agent_and_a_bad_reward_lists_the_learned_ones(capsys):
    """`train --help` pointed at `agents.agent_names()`, a Python call; a misspelt reward was
    refused listing the env's four, not classifier and vice, which train also takes."""
    from agents import agent_names
    from benchmark.train_cli import AGENT_NAMES

    assert list(AGENT_NAMES) == agent_names()
    _, out, _ = run_cli(capsys, "train", "--help")
    assert "Agent name: awac, bc," in " ".join(out.split()), out
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v3", "--agent", "sac",
                           "--env", "reward=dens", "--steps", "10", "--out", "x")
    assert code == 2 and "'goal_image', 'classifier', 'vice'), got 'dens'" in err, err


def test_list_prints_every_registered_task_one_line_each_paper_000_first(capsys):
    """The table wrapped each row over 5-6 lines (682 lines in all), the three main tasks last
    of the single connectors."""
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    registered = {i for i in gym.registry if i.startswith("InsertBench/")}
    assert len(registered) > 40
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("InsertBench/")]
    assert sorted(listed) == sorted(registered)  # each once, on its own line
    assert {i.rsplit("-v", 1)[0] for i in listed[:9]} == {
        "InsertBench/USB", "InsertBench/DSub", "InsertBench/ModelE"}
    usb = next(line for line in out.splitlines() if line.startswith("InsertBench/USB-v1 "))
    assert "0.25/0.5/12.0" in usb and "10-35 / 10-30 N" in usb, usb
    assert max(len(line) for line in out.splitlines()) <= 120  # the piped console width


def test_list_shows_the_tasks_that_match_and_refuses_a_text_none_matches(capsys):
    code, out, _ = run_cli(capsys, "list", "modele")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("InsertBench/")]
    assert code == 0 and listed == [f"InsertBench/ModelE-v{v}" for v in DYNAMICS], listed
    code, out, err = run_cli(capsys, "list", "xyzzy")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "no task ID or connector contains 'xyzzy'" in err, err


def test_ctrl_c_while_the_cli_imports_is_one_line_and_status_130(capsys, monkeypatch):
    """The console script imported the whole CLI (~3 s) before its error handling existed: a
    Ctrl-C then printed a traceback."""
    import importlib.abc

    from benchmark.entry import main

    class InterruptedImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "benchmark.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "benchmark.cli")
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "insertbench: error: interrupted\n"


def test_a_tilde_after_an_options_equals_sign_is_the_home_folder(capsys, tmp_path,
                                                                 monkeypatch):
    """The shell leaves `--store=~/x` alone: the command used a folder named "~" in the
    working directory and printed "store ~/x" as if it were in the home folder."""
    from benchmark.entry import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "argv", ["insertbench", "matrix", "status", "quick",
                                      "--store=~/mine.sqlite"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2  # a store named but not there: refused
    assert f"no store at {tmp_path / 'home' / 'mine.sqlite'};" in capsys.readouterr().err
    # Paths only: a text (a lost round's reason, shown on the site) keeps what was typed.
    from leaderboards.ledger import Ledger

    Path("secret").write_text("0123456789abcdef1032547698badcfe\n")
    Path("home").mkdir()
    for args in (["open-round", "--track", "paper000", "--salt-file=~/../secret"],
                 ["lose-round", "--track", "paper000", "--reason=~/.salt was on a laptop"]):
        monkeypatch.setattr(sys, "argv", ["insertbench", "leaderboard", *args,
                                          "--ledger=~/ledger"])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 0
    (lost,) = Ledger(tmp_path / "home" / "ledger").salt_rounds("paper000").read()
    assert lost.note.endswith("lost: ~/.salt was on a laptop")


def test_ray_executor_without_ray_names_the_extra_and_leaves_no_store(capsys, in_tmp,
                                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--executor", "ray",
                           "--store", "runs/quick.sqlite")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "pip install -e '.[ray]'" in err
    assert not (in_tmp / "runs").exists()


def test_inline_executor_refuses_more_workers_and_leaves_no_store(capsys, in_tmp):
    """`--executor inline --workers 4` ran one cell at a time without a word."""
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--executor", "inline", "--workers", "4")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "workers must be 1, got 4" in lines[0], err
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0"], r"workers must be in \[1, \d+\] \(4 per core, \d+ here\), got 0"),
    # 1000 started one worker process per cell at once (10 on a 2-core machine).
    (["--workers", "100000000"], r"workers must be in \[1, \d+\] \(4 per core"),
    (["--executor", "nope"], "unknown executor 'nope'"),
    (["--ray-address", "auto"], "a Ray address needs the ray executor"),
])
def test_bad_executor_options_are_usage_errors_naming_the_option(capsys, in_tmp, args, message):
    """They printed as an internal error: 'ValueError: ...' with the --debug hint, exit 1."""
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller", *args)
    assert code == 2 and "Invalid value for --executor / --workers" in err, err
    assert re.search(message, err), err
    assert "ValueError" not in err and not (in_tmp / "runs").exists()


@pytest.mark.parametrize(("env", "message"), [
    ("obs_mode=pixels", "trained on observations {'tcp_pose': (6,)"),
    ("action_mode=pose", "trained on actions (3,), but the env"),
])
def test_eval_refuses_an_env_the_checkpoint_was_not_trained_on(capsys, in_tmp, env, message):
    """`eval --env obs_mode=pixels` on a state checkpoint used to end in `KeyError: 'tcp_pose'`."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pc", "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1", "--env", env)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--env kwargs it was trained with" in err
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "0")
    assert code == 2 and "--episodes" in err and "zero episodes" not in err
    # --json-out into a folder not made yet: it used to fail after the whole evaluation.
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1", "--json-out", "evals/pc.json")
    assert code == 0, err
    assert '"episodes"' in (in_tmp / "evals" / "pc.json").read_text()
    # Into the evaluated run's own files: its history, description or checkpoint was
    # overwritten, and the run could not be resumed or evaluated again (bench19).
    before = {p: p.read_bytes() for p in (in_tmp / "runs" / "pc").rglob("*") if p.is_file()}
    for out, where in (("runs/pc/evaluations.json", "the evaluated run's own evaluations.json"),
                       ("runs/pc/run.json", "the evaluated run's own run.json"),
                       ("runs/pc/checkpoint/agent/agent.json", "the evaluated run's agent"),
                       ("runs/pc/checkpoint/new.json", "the evaluated run's checkpoint"),
                       ("runs/pc/checkpoint.lock", "the evaluated run's own checkpoint.lock")):
        code, _, err = run_cli(capsys, "eval", "--checkpoint", "runs/pc", "--episodes", "1",
                               "--json-out", out)
        assert code == 2 and where in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in (in_tmp / "runs" / "pc").rglob("*")
            if p.is_file()} == before
    code, _, err = run_cli(capsys, "eval", "--checkpoint", "runs/pc", "--episodes", "1",
                           "--json-out", "runs/pc/eval-usb.json")  # beside them: the user's
    assert code == 0, err


def test_eval_refuses_a_blind_search_the_task_frame_as_train_does(capsys, in_tmp):
    """`train` refused obs_frame='task' for the searches, `eval --env obs_frame=task` scored
    straight down 5/5 where it scores 0/5 (diff24)."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "straight_down", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/sd", "--no-progress")
    assert code == 0, err
    for command in (["eval", "--checkpoint", "runs/sd"],
                    # ... and sim2sim: 5/5 in both engines where it scores 0/5 (diff25)
                    ["sim2sim", "--task", "InsertBench/USB-v1", "--checkpoint", "runs/sd"]):
        code, _, err = run_cli(capsys, *command, "--episodes", "1", "--env", "obs_frame=task")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "straight_down searches around the x, y an episode starts at" in err, err


def test_eval_reads_only_the_checkpoints_own_run_description(capsys, in_tmp):
    """It took run.json from any ancestor folder, up to the working directory: an agent copied
    into another run's folder was refused as trained on that run's task, and a bare agent in
    the working directory of a D-sub run ran on D-sub without a word."""

    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "usb", "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/DSub-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "dsub", "--no-progress")
    assert code == 0, err
    shutil.copytree("usb/checkpoint/agent", "dsub/imported/agent")
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "dsub/imported/agent", "--episodes", "1")
    assert code == 0, err  # it was refused as "trained on InsertBench/DSub-v1"
    assert "dsub/imported/agent has no run.json of its own: the task and env kwargs it was " \
        "trained with are unknown" in err
    # ... as is one exported straight into the run's folder: it was scored on D-sub's task
    # and kwargs, without a word (agents23)
    shutil.copytree("usb/checkpoint/agent", "dsub/usb_policy")
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "dsub/usb_policy", "--episodes", "1")
    assert code == 0 and "dsub/usb_policy has no run.json of its own" in err, err
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "usb", "--episodes", "1")
    assert code == 0 and "no run.json" not in err, err
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/DSub-v1", "--checkpoint",
                           "usb/checkpoint/agent", "--episodes", "1")
    assert code == 2 and "was trained on InsertBench/USB-v1, not InsertBench/DSub-v1" in err


def test_eval_runs_on_the_runs_seeds_and_torch_threads(capsys, in_tmp, request):
    """A matrix cell evaluated on its preset's seeds, `eval` on the default ones: other
    episodes than the run's; and its actions depend on torch's thread count, which it could
    neither set nor record (agents21)."""
    import torch

    from benchmark.train import train

    train("InsertBench/USB-v1", "p_controller", steps=0, out_dir="cell", eval_episodes=2,
          eval_seeds=[1_000_000, 1_000_001], progress=False)
    run = json.loads((in_tmp / "cell" / "run.json").read_text())
    run["torch_threads"] = 1  # as the cell's worker ran
    (in_tmp / "cell" / "run.json").write_text(json.dumps(run))
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    torch.set_num_threads(2)
    code, out, err = run_cli(capsys, "eval", "--checkpoint", "cell", "--episodes", "3",
                             "--json-out", "e.json")
    assert code == 0, err
    assert "seeds 1000000-1000002, 1 torch thread(s)" in " ".join(out.split())
    evaluation = json.loads((in_tmp / "e.json").read_text())
    assert evaluation["eval_seeds"] == [1_000_000, 1_000_001, 1_000_002]
    assert evaluation["torch_threads"] == 1
    assert [e["seed"] for e in evaluation["episodes"]] == evaluation["eval_seeds"]
    code, _, err = run_cli(capsys, "eval", "--checkpoint", "cell", "--episodes", "1",
                           "--torch-threads", "2")
    assert code == 0 and "the run trained and evaluated on 1 torch thread, this evaluation " \
        "runs on 2" in " ".join(err.split()), err


def test_eval_json_and_evaluations_json_are_standard_json_without_successes(capsys, in_tmp):
    """A mean over no successes was written as a bare NaN, which JSON.parse refuses."""
    def strict(path):
        return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: {c}"))

    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "straight_down", "--steps", "0", "--eval-episodes", "1", "--out",
                           "down", "--no-progress", "--env", "init_offset_mm=[8, 9]")
    assert code == 0, err
    (evaluation,) = strict(in_tmp / "down" / "evaluations.json")
    assert evaluation["summary"]["successes"] == 0
    assert evaluation["summary"]["cycle_time_s_mean"] is None
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "down", "--episodes", "1", "--json-out", "e.json")
    assert code == 0, err
    assert strict(in_tmp / "e.json")["summary"]["cycle_steps_mean"] is None


@pytest.mark.parametrize(("damaged", "message"), [
    ("checkpoint/agent/agent.json", "runs/pc/checkpoint/agent/agent.json is not valid JSON"),
    ("checkpoint/agent/weights.safetensors",
     "runs/pc/checkpoint/agent/weights.safetensors is not readable"),
    ("run.json", "runs/pc/run.json is not valid JSON"),
])
def test_a_damaged_checkpoint_is_named_by_eval_and_train(capsys, in_tmp, damaged, message):
    """A cut-off checkpoint file ended `eval` in "JSONDecodeError: Expecting ..." or
    "SafetensorError: Error while deserializing header", without the file; `train`'s resume
    alike."""
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
             "--eval-episodes", "0", "--out", "runs/pc", "--no-progress"]
    code, _, err = run_cli(capsys, *train)
    assert code == 0, err
    (in_tmp / "runs" / "pc" / damaged).write_text("{")
    commands = [["eval", "--task", "InsertBench/USB-v1", "--checkpoint", "runs/pc",
                 "--episodes", "1"]]
    if damaged != "run.json":  # train reads its own run.json first
        commands.append(train)
    for command in commands:
        code, _, err = run_cli(capsys, *command)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize(("damage", "message"), [
    ("rm checkpoint/agent/replay_online.npz",
     "runs/s/checkpoint/agent lacks replay_online.npz (a damaged checkpoint?)"),
    ("cut checkpoint/agent/replay_online.npz",
     "runs/s/checkpoint/agent/replay_online.npz is not readable (a damaged checkpoint?)"),
    ("rm checkpoint/runner_rng.safetensors",
     "runs/s/checkpoint/runner_rng.safetensors is not readable (a damaged checkpoint?)"),
    ("cut checkpoint/runner.json", "runs/s/checkpoint/runner.json is not valid JSON"),
    # The episode in progress at the checkpoint: "BadZipFile: File is not a zip file".
    ("cut checkpoint/current_obs.npz",
     "runs/s/checkpoint/current_obs.npz is not readable (a damaged checkpoint?)"),
])
def test_a_resume_from_a_damaged_checkpoint_is_refused_naming_the_file(capsys, in_tmp, damage,
                                                                        message):
    """A missing replay file resumed from an empty buffer without a word; a cut-off one was
    "BadZipFile: File is not a zip file", the runner's files a FileNotFoundError or a bare
    JSON error."""
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps", "20",
             "--eval-episodes", "0", "-c", "hidden=8,8", "-c", "learning_starts=10",
             "-c", "random_steps=10", "-c", "batch_size=8", "--out", "runs/s", "--no-progress"]
    code, _, err = run_cli(capsys, *train)
    assert code == 0, err
    how, name = damage.split()
    file = in_tmp / "runs" / "s" / name
    if how == "rm":
        file.unlink()
    else:
        file.write_bytes(file.read_bytes()[:14])
    code, _, err = run_cli(capsys, *train[:6], "40", *train[7:])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize(("file", "edit", "message"), [
    # Trained 550 steps past the budget with exit status 0:
    ("runner.json", lambda s: s.update(step=-300),
     "runs/s/checkpoint/runner.json: step must be an integer >= 0, got -300"),
    # KeyError: 'next_eval' / TypeError, naming no file:
    ("runner.json", lambda s: s.pop("next_eval"),
     "runs/s/checkpoint/runner.json: next_eval must be an integer >= 0, got None"),
    ("runner.json", lambda s: s.update(evaluations="x"),
     "runs/s/checkpoint/runner.json: evaluations must be a list of evaluation records"),
    ("runner.json", lambda s: s.pop("episode_actions"),
     "runs/s/checkpoint/runner.json is damaged (an edited checkpoint?): KeyError"),
    # Rewards of 1e30 trained inf optimizer state with exit status 0:
    ("agent/replay_online.npz", lambda a: a.update(reward=a["reward"] + 1e30),
     "runs/s/checkpoint/agent/replay_online.npz: reward exceeds 1e+06 in magnitude"),
    # Blamed the env ("not deterministic under a fixed seed ... start a new out_dir", agents18):
    ("current_obs.npz", lambda a: a.update(tcp_pose=np.zeros(3, np.float32)),
     "runs/s/checkpoint/current_obs.npz is not readable (a damaged checkpoint?): it holds"),
    # torch's RuntimeError naming no file; a missing key blamed runner.json (agents18):
    ("runner_rng.safetensors", lambda r: r.update(torch_cpu=r["torch_cpu"][:10]),
     "runs/s/checkpoint/runner_rng.safetensors is damaged (an edited checkpoint?)"),
    ("runner_rng.safetensors", lambda r: r.pop("torch_cpu"),
     "runs/s/checkpoint/runner_rng.safetensors is damaged (an edited checkpoint?): KeyError"),
])
def test_a_resume_from_an_edited_checkpoint_is_refused_naming_the_file(capsys, in_tmp, file,
                                                                        edit, message):
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps", "20",
             "--eval-episodes", "0", "-c", "hidden=8,8", "-c", "learning_starts=10",
             "-c", "random_steps=10", "-c", "batch_size=8", "--out", "runs/s", "--no-progress"]
    code, _, err = run_cli(capsys, *train)
    assert code == 0, err
    path = in_tmp / "runs" / "s" / "checkpoint" / file
    if path.suffix == ".json":
        state = json.loads(path.read_text())
        edit(state)
        path.write_text(json.dumps(state))
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file, save_file

        tensors = load_file(path)
        edit(tensors)
        save_file(tensors, str(path))
    else:
        arrays = dict(np.load(path))
        edit(arrays)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    code, _, err = run_cli(capsys, *train[:6], "40", *train[7:])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_a_run_extended_to_more_steps_evaluates_where_the_whole_run_does(capsys, in_tmp):
    """A run ending on the --eval-every grid still owed that evaluation: extended to more
    --steps it evaluated again at its next episode end (150, 200, 300 against 150, 300)."""
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "sac", "--steps", "40",
             "--eval-every", "10", "--eval-episodes", "1", "-e", "max_episode_steps=5",
             "-c", "hidden=8,8", "-c", "learning_starts=10", "-c", "random_steps=10",
             "-c", "batch_size=8", "--out", "runs/whole", "--no-progress"]
    code, _, err = run_cli(capsys, *train)
    assert code == 0, err
    for steps in ("20", "40"):
        code, _, err = run_cli(capsys, *train[:6], steps, *train[7:-3], "--out", "runs/more",
                               "--no-progress")
        assert code == 0, err
    steps = [[e["env_steps"] for e in json.loads((in_tmp / "runs" / run /
                                                    "evaluations.json").read_text())]
             for run in ("whole", "more")]
    assert steps[0] == steps[1] == [10, 20, 30, 40]


def test_a_resume_replaces_a_symbolic_link_in_the_run_folder_not_what_it_points_to(capsys,
                                                                                   in_tmp):
    """learning_curve.png linked to ../victim.txt: the resume wrote its PNG over victim.txt.
    (A linked tb/ stays allowed: TensorBoard adds event files of its own names, a shared
    TensorBoard folder is a common set-up.)"""
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
             "--eval-episodes", "1", "--out", "runs/pc", "--no-progress"]
    code, _, err = run_cli(capsys, *train)
    assert code == 0, err
    victim = in_tmp / "runs" / "victim.txt"
    victim.write_text("mine")
    curve = in_tmp / "runs" / "pc" / "learning_curve.png"
    curve.unlink()
    curve.symlink_to("../victim.txt")
    code, _, err = run_cli(capsys, *train[:6], "5", *train[7:])
    assert code == 0, err
    assert victim.read_text() == "mine"
    assert not curve.is_symlink() and curve.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("option", ["--eval-every", "--checkpoint-every"])
def test_a_negative_evaluation_or_checkpoint_period_is_refused(capsys, in_tmp, option):
    """-1 was taken on trust, as "only at the end" (0 says that, and --help now too)."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "sac",
                           "--steps", "1", "--out", "runs/t", option, "-3")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert f"Invalid value for {option}: must be >= 0 env steps (0: only at the end), got -3" \
        in lines[0], err
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("threads", ["0", "100000"])
@pytest.mark.parametrize("command", ["train", "train-async"])  # the learner's (newuser17)
def test_torch_threads_is_bounded(capsys, in_tmp, threads, command):
    """100000 was a bare "MemoryError:" (exit 1)."""
    code, _, err = run_cli(capsys, command, "--task", "InsertBench/USB-v1", "--agent", "sac",
                           "--steps", "1", "--out", "runs/t", "--torch-threads", threads)
    assert code == 2 and "--torch-threads must be in [1, " in err and threads in err, err
    assert not (in_tmp / "runs").exists()


def test_eval_finds_the_checkpoint_a_crash_between_renames_left(capsys, in_tmp):
    """`train` resumes from checkpoint.old (a crash between the checkpoint's two renames), but
    `eval` said there was no agent checkpoint."""
    train = ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
             "--eval-episodes", "0", "--out", "runs/pc", "--no-progress"]
    assert run_cli(capsys, *train)[0] == 0

    (in_tmp / "runs/pc/checkpoint").rename(in_tmp / "runs/pc/checkpoint.old")
    code, out, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/pc", "--episodes", "1")
    assert code == 0 and "checkpoint.old/agent" in out, err
    # A new checkpoint/ cut off before its runner.json: train resumes from checkpoint.old, and
    # eval scores that one too (it took checkpoint/agent).
    shutil.copytree(in_tmp / "runs/pc/checkpoint.old", in_tmp / "runs/pc/checkpoint")
    (in_tmp / "runs/pc/checkpoint/runner.json").unlink()
    code, out, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/pc", "--episodes", "1")
    assert code == 0 and "checkpoint.old/agent" in out, err


@pytest.mark.parametrize(("json_out", "message"), [
    ("evals", "evals is a directory"),
    ("notes.txt/pc.json", "notes.txt is not a writable directory"),
])
def test_eval_refuses_a_json_out_it_cannot_write_before_evaluating(capsys, in_tmp, monkeypatch,
                                                                   json_out, message):
    """`--json-out DIR` failed with IsADirectoryError after every episode had run."""
    import benchmark.evaluate

    (in_tmp / "evals").mkdir()
    (in_tmp / "notes.txt").write_text("")
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pc", "--no-progress")
    assert code == 0, err

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated before refusing --json-out")

    monkeypatch.setattr(benchmark.evaluate, "evaluate", no_evaluation)
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1", "--json-out", json_out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_a_config_key_given_twice_is_refused(capsys, in_tmp):
    """`-c utd_ratio=1 -c utd_ratio=4` trained with 4 without a word, while `--env` refuses a
    key given twice; bench_offline's --lotj-config and bench_lotj_policy's --config alike."""
    from benchmark.cli_options import parse_key_values

    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "rlpd",
                           "--steps", "10", "-c", "utd_ratio=1", "-c", "utd_ratio=4",
                           "--out", "runs/x")
    assert code == 2 and "--config utd_ratio is given twice" in err, err
    assert not (in_tmp / "runs").exists()
    with pytest.raises(ValueError, match="--lotj-config beta is given twice"):
        parse_key_values(["beta=1", "beta=2"], "--lotj-config")


def test_train_mistakes_leave_no_run_directory(capsys, in_tmp):
    """A bad task ID or kwarg used to leave an empty --out directory behind, and to come after
    a warning that 10 steps are below SAC's learning_starts (two lines for one mistake)."""
    for extra in (["--task", "InsertBench/Nope-v1"],
                  ["--task", "InsertBench/USB-v1", "--env", "goal_noise_mm=-1"]):
        code, _, err = run_cli(capsys, "train", *extra, "--agent", "sac", "--steps", "10",
                               "--out", "runs/bad", "--no-progress")
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and lines[0].startswith("insertbench: error:"), err
    assert not (in_tmp / "runs").exists()


def test_train_refuses_an_out_folder_of_other_files(capsys, in_tmp):
    """`--out .` or `--out mydata` used to write run.json, checkpoint/ and tb/ among the
    user's own files; an empty folder and a run's own folder are still accepted."""
    (in_tmp / "mydata").mkdir()
    (in_tmp / "mydata" / "notes.txt").write_text("mine")
    args = ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
            "--eval-episodes", "0", "--no-progress", "--out"]
    for out in ("mydata", "."):
        code, _, err = run_cli(capsys, *args, out)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1, err
        assert f"--out {out} holds other files and no run (run.json)" in lines[0]
    assert sorted(p.name for p in in_tmp.rglob("*")) == ["mydata", "notes.txt"]
    (in_tmp / "empty").mkdir()
    for _ in range(2):  # a new run, then its resume
        assert run_cli(capsys, *args, "empty")[0] == 0
    assert (in_tmp / "empty" / "run.json").is_file()


def test_train_on_a_device_this_machine_lacks_is_one_line_and_makes_nothing(capsys, in_tmp):
    """`-c device=cuda` on a CPU machine warned about learning_starts, made runs/s, then
    failed building the agent."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has the device")
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "sac",
                           "--steps", "10", "-c", "device=cuda", "--out", "runs/s")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "SACConfig.device: 'cuda': this torch sees no CUDA device" in lines[0]
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("noise", ["nan", "1.5", "-0.1"])
def test_collect_names_a_noise_that_is_not_a_probability(capsys, in_tmp, noise):
    """NaN was refused as "Input should be less than or equal to 1"."""
    code, _, err = run_cli(capsys, "dataset", "collect", "--task", "InsertBench/USB-v0",
                           "--out", "d", "--noise", noise)
    assert code == 2 and f"--noise must be a probability in [0, 1], got {noise}" in err, err
    assert not (in_tmp / "d").exists()


@pytest.mark.parametrize(("command", "own"), [
    (["dataset", "collect", "--task", "InsertBench/Connector-DT12-v0", "--episodes", "1"],
     "no collection (collect_config.json)"),
    (["dataset", "recipe", "paper001", "--connector", "USBA", "--episodes", "1"],
     "no recipe (recipe.json)"),
    (["classifier", "train", "--task", "InsertBench/USB-v1", "--episodes", "1",
      "--heldout-episodes", "1", "--steps", "1", "--image-size", "16"],
     "no classifier (classifier.json)"),
])
def test_writers_refuse_an_out_folder_of_other_files(capsys, in_tmp, command, own):
    """They wrote their files among the user's: `dataset collect --out my_submission` made the
    submission folder one that `leaderboard submit` refuses; now they ask for a folder of their
    own, as `train` does, before any rollout."""
    (in_tmp / "mydata").mkdir()
    (in_tmp / "mydata" / "notes.txt").write_text("mine")
    for out in ("mydata", "."):
        code, _, err = run_cli(capsys, *command, "--out", out)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert f"{out} holds other files and {own}: give a new or empty folder" in lines[0]
    assert sorted(p.name for p in in_tmp.rglob("*")) == ["mydata", "notes.txt"]


def test_resuming_a_longer_run_with_fewer_steps_warns(capsys, in_tmp):
    """It used to print `trained 20 steps` for `--steps 10` without a word."""
    args = ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--eval-episodes",
            "0", "--out", "runs/pc", "--no-progress"]
    code, _, err = run_cli(capsys, *args, "--steps", "20")
    assert code == 0 and "warning" not in err, err
    code, _, err = run_cli(capsys, *args, "--steps", "10")
    assert code == 0
    assert "already holds 20 env steps, more than steps=10: nothing to train" in err


def test_failed_cells_left_failed_are_counted_and_fail_the_run(capsys, in_tmp):
    """`--no-retry-failed` printed "0 failed" and exited 0 while `matrix status` said 1 failed:
    a script took the matrix as finished."""
    args = ("matrix", "run", "quick", "--agent", "p_controller", "--executor", "inline",
            "--no-progress")
    assert run_cli(capsys, *args)[0] == 0
    with sqlite3.connect(in_tmp / "runs" / "quick.sqlite") as db:
        db.execute("UPDATE cells SET status = 'failed' WHERE rowid = (SELECT MIN(rowid) "
                   "FROM cells)")
    code, out, err = run_cli(capsys, *args, "--no-retry-failed")
    assert code == 1, err
    assert "quick: 1 already done, 0 finished now, 0 failed, 1 failed before (not retried), " \
           "0 running elsewhere (of 2)" in out, out


def test_cells_running_in_another_run_are_said_to_be_left_to_it(capsys, in_tmp):
    """Exit status 0 and "1 running elsewhere" alone, also once that runner had died: nothing
    took its cells up until someone ran the matrix again (matrix18)."""
    from benchmark.preset import load_preset
    from benchmark.store import Store

    cell = next(c for c in load_preset("quick").cells if c.agent == "p_controller")
    Path("runs").mkdir()
    with Store(Path("runs/quick.sqlite")) as store:
        assert store.claim(cell)  # a live marker: this process is alive
    code, out, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                             "--executor", "inline", "--no-progress")
    assert code == 0, err
    assert "1 running elsewhere (of 2)" in out, out
    assert ("1 cell was running in another `matrix run` on this store, which this run did "
            "not wait for: `matrix status` shows them; run again to take over any whose "
            "runner has died") in out, out


def test_the_commands_status_suggests_run_as_printed(capsys, in_tmp):
    """`--store my store.db` was printed unquoted: pasted, the command named another store and
    a stray argument (diff24)."""
    code, _, err = run_cli(capsys, "matrix", "status", "quick", "--store", "my runs/q.sqlite")
    assert code == 2 and "`insertbench matrix run quick --store 'my runs/q.sqlite'` makes it" \
        in " ".join(err.split()), err
    # report's left the store out: pasted, it ran into the default store (diff25)
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--store", "my runs/q.sqlite")
    assert code == 2 and "run `insertbench matrix run quick --store 'my runs/q.sqlite'` first" \
        in " ".join(err.split()), err


def test_report_while_the_first_cells_run_says_so(capsys, in_tmp):
    """It said "holds no finished cell; run `insertbench matrix run quick --store ...` first"
    while that run was running the preset's cells into this store."""
    from benchmark.preset import load_preset
    from benchmark.store import Store

    cell = load_preset("quick").cells[0]
    Path("runs").mkdir()
    with Store(Path("runs/quick.sqlite")) as store:
        assert store.claim(cell)  # a live marker: this process is alive
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    assert code == 2 and "holds no finished cell of quick (of 4) yet: 1 running; report " \
        "when one has finished" in err, err


def test_report_of_another_store_goes_beside_it(capsys, in_tmp):
    """`matrix report quick --store runs/other.sqlite` used to overwrite runs/quick-report."""
    code, out, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                             "--store", "runs/other.sqlite", "--executor", "inline",
                             "--no-progress")
    assert code == 0, err
    # One line, also in a pipe or a log (80 columns): it wrapped after "(of 2);".
    assert "quick: 0 already done, 2 finished now, 0 failed, 0 running elsewhere (of 2); store " \
           "runs/other.sqlite\n" in out, out
    code, out, err = run_cli(capsys, "matrix", "report", "quick", "--store", "runs/other.sqlite",
                             "--reps", "100")
    assert code == 0, err
    # Named for the preset too: two presets sharing a store wrote one folder (review).
    assert "wrote runs/other-quick-report/report.md and runs/other-quick-report/report.html\n" \
        in out, out
    assert (in_tmp / "runs" / "other-quick-report" / "report.md").is_file()
    assert not (in_tmp / "runs" / "quick-report").exists()
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--store", "runs/other.sqlite",
                           "--reps", "0")
    assert code == 2 and "--reps" in err
    # A store holding none of the preset's cells: the empty paper000 report used to be written
    # to runs/other-report, over quick's report.
    before = (in_tmp / "runs" / "other-quick-report" / "report.md").read_text()
    code, _, err = run_cli(capsys, "matrix", "report", "paper000", "--store",
                           "runs/other.sqlite", "--reps", "100")
    assert code == 2 and "runs/other.sqlite holds 2 cells, none of paper000: another " \
        "preset's store" in err, err
    assert (in_tmp / "runs" / "other-quick-report" / "report.md").read_text() == before
    # `status` called all of paper000's cells pending there, exit 0.
    code, _, err = run_cli(capsys, "matrix", "status", "paper000", "--store", "runs/other.sqlite")
    assert code == 2 and "holds 2 cells, none of paper000" in err, err
    code, _, err = run_cli(capsys, "matrix", "status", "quick", "--task-version", "2",
                           "--store", "runs/other.sqlite")
    assert code == 2 and "none of quick-v2 --task-version 2" in err, err
    assert "`insertbench matrix run quick --task-version 2` writes" in err, err
    # --out naming a file: "FileExistsError: [Errno 17] File exists" after the bootstrap.
    (in_tmp / "a file").write_text("kept")
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--store", "runs/other.sqlite",
                           "--reps", "100", "--out", "a file")
    assert code == 2 and "Invalid value for --out: a file is not a directory" in err, err
    assert "Errno" not in err and (in_tmp / "a file").read_text() == "kept"


@pytest.mark.parametrize(("env", "message"), [
    ("grasp_noise_deg=5", "PyBullet does not take the env kwarg(s) ['grasp_noise_deg']"),
    # It pointed a pixel policy at a kwarg it then refused.
    ("obs_mode=pixels", "PyBullet has no cameras: sim2sim compares state policies only"),
])
def test_sim2sim_refuses_a_kwarg_pybullet_lacks_before_evaluating(capsys, in_tmp, monkeypatch,
                                                                  env, message):
    """It used to evaluate MuJoCo first, then fail on `BulletInsertionEnv.__init__() got an
    unexpected keyword argument`."""
    import benchmark.sim2sim

    calls = []
    monkeypatch.setattr(benchmark.sim2sim, "evaluate", lambda *a, **k: calls.append(a))
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--episodes", "1",
                           "--env", env)
    assert code == 2 and calls == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize(("task", "message"), [
    ("InsertBench/NISTBoard-v0", "'InsertBench/NISTBoard-v0' is not a single-connector task"),
    ("InsertBench/USB-v9", "unknown task 'InsertBench/USB-v9'"),
])
def test_sim2sim_names_why_a_task_is_refused(capsys, in_tmp, task, message):
    """The registered board read as "unknown task"."""
    code, _, err = run_cli(capsys, "sim2sim", "--task", task, "--episodes", "1")
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("typed", "meant"), [
    ("USB-v1", "InsertBench/USB-v1"), ("InsertBench/usb-v1", "InsertBench/USB-v1"),
    ("InsertBench/DSub-v11", "InsertBench/DSub-v1")])
def test_a_mistyped_task_id_gets_the_closest_registered_one(capsys, in_tmp, typed, meant):
    """A misspelt --env kwarg got "did you mean ...?", a task ID typed in other case or without
    its namespace only "unknown task" (newuser17)."""
    for command in (["train", "--agent", "sac"], ["rollout", "--episodes", "1"]):
        code, _, err = run_cli(capsys, *command, "--task", typed)
        assert code == 2 and f"(did you mean {meant!r}?); see `insertbench list`" in err, err


def test_sim2sim_on_v1_compares_the_contact_models_alone_with_noiseless(capsys, in_tmp):
    """PyBullet has no v1 sensor or reset variation, and `noiseless=true`, the kwarg that makes
    MuJoCo run the same, was refused: every v1 comparison mixed sensor noise into the contact
    models' difference, without a word. Now it runs, and without it the table says so."""
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--episodes",
                             "1", "--env", "noiseless=true", "--env", "max_episode_steps=2")
    assert code == 0, err
    assert "out of date" not in err and "sensor and reset variation" not in out, out
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--episodes",
                             "1", "--env", "max_episode_steps=2")
    assert code == 0 and "caveat: MuJoCo runs this version's sensor and reset variation" in out


def test_sim2sim_without_a_success_has_no_cycle_time(capsys, in_tmp):
    """The cycle time is a mean over successes: with none the table read "nan s"."""
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v0", "--episodes",
                             "1", "--env", "max_episode_steps=2")
    assert code == 0, err
    assert out.count("0/1 (0% [0, 79])") == 2 and "nan" not in out, out
    assert ("same seeds: 0 succeeded in MuJoCo only, 0 in PyBullet only, of 1 distinct seed "
            "pairs (exact McNemar p = 1") in " ".join(out.split()), out
    # v0 too: 38 N beside PyBullet's 149 N read as a finding about the engines.
    assert "caveat: the peak forces are not comparable" in " ".join(out.split()), out
    for kwarg in ("task=InsertBench/DSub-v0", "allow_unsupported=true"):
        code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v0", "--episodes",
                               "1", "--env", kwarg)
        assert code == 2 and "cannot be an env kwarg here" in err, err


@pytest.mark.parametrize(("text", "message"), [
    ("{", "ck/agent.json is not valid JSON (a damaged checkpoint?)"),
    ("[]", "ck/agent.json is not an agent checkpoint (a JSON object)"),
    ('{"agent": "sac"}', "ck/agent.json has format None, expected 'insertbench-agent/1'"),
])
@pytest.mark.parametrize("command", ["sim2sim", "eval"])
def test_a_damaged_agent_json_is_named(capsys, in_tmp, command, text, message):
    """sim2sim read agent.json itself: "Expecting property name ...", "list indices must be
    integers" and, as eval, "KeyError: 'observation_space'" without the file."""
    (in_tmp / "ck").mkdir()
    (in_tmp / "ck" / "agent.json").write_text(text)
    code, _, err = run_cli(capsys, command, "--task", "InsertBench/USB-v0", "--checkpoint", "ck",
                           "--episodes", "1")
    lines = [line for line in err.strip().splitlines() if "out of date" not in line]
    assert code == 2 and len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize("command", ["sim2sim", "eval"])
def test_a_run_json_whose_env_kwargs_are_not_an_object_is_named(capsys, in_tmp, command):
    """A list there ended in "cannot convert dictionary update sequence element #0"."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v0", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out", "pc")
    assert code in (0, None), err
    run = json.loads((in_tmp / "pc" / "run.json").read_text())
    (in_tmp / "pc" / "run.json").write_text(json.dumps(run | {"env_kwargs": [["a", 1]]}))
    code, _, err = run_cli(capsys, command, "--task", "InsertBench/USB-v0", "--checkpoint", "pc",
                           "--episodes", "1")
    lines = [line for line in err.strip().splitlines() if "out of date" not in line]
    assert code == 2 and len(lines) == 1, err
    assert "pc/run.json is not a run description" in lines[0], err


def test_a_preset_runs_at_other_task_versions_beside_its_own(capsys, in_tmp):
    """Issue 17: rerun a preset on -v2 against -v1 in one matrix, stored and reported apart
    from the preset's own runs."""
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--task-version", "1", "--task-version", "2", "--executor", "inline",
                           "--no-progress")
    assert code == 0, err
    code, out, err = run_cli(capsys, "matrix", "report", "quick", "--task-version", "1",
                             "--task-version", "2", "--reps", "100")
    assert code == 0, err
    report = (in_tmp / "runs" / "quick-v1-v2-report" / "report.md").read_text()
    assert "| USB-v1 " in report and "| USB-v2 " in report
    # The versions were inside the file name's code span: "`quick.toml at task version(s) 1, 2`".
    assert "Preset file: `quick.toml` at task version(s) 1, 2;" in report
    assert not (in_tmp / "runs" / "quick.sqlite").exists()
    code, out, _ = run_cli(capsys, "matrix", "status", "quick", "--task-version", "2")
    assert code in (0, None) and "quick-v2" in out and "pending" in out
    # Into the preset's own store (as the README suggests): the versioned report replaced
    # the preset's, both being "<store stem>-report".
    for versions in ((), ("--task-version", "1", "--task-version", "2")):
        code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                               *versions, "--store", "runs/quick.sqlite", "--executor",
                               "inline", "--no-progress")
        assert code == 0, err
        code, _, err = run_cli(capsys, "matrix", "report", "quick", *versions, "--store",
                               "runs/quick.sqlite", "--reps", "100")
        assert code == 0, err
    own = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    assert "| USB-v1 " in own and "| USB-v2 " not in own
    # Without --store, status read "cells pending" and report said to run them all again,
    # though the preset's own store held them (newuser21).
    code, out, _ = run_cli(capsys, "matrix", "status", "quick", "--task-version", "2")
    assert code in (0, None) and "the preset's own store runs/quick.sqlite may hold them" in \
        " ".join(out.split()) and "add --store runs/quick.sqlite" in " ".join(out.split()), out
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--task-version", "2")
    assert code == 2 and "add --store runs/quick.sqlite" in " ".join(err.split()), err


def test_the_report_names_the_torch_threads_cells_ran_with(capsys, in_tmp, monkeypatch):
    """`--workers` sets each worker's torch threads (cores // workers), and a learned cell's
    floats depend on them: a store resumed with other --workers mixed them without a word."""
    code, out, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                             "--executor", "inline")
    assert code == 0, err
    # Off a terminal the bar is drawn once, at the end: a line per cell as it ends instead
    # (a log under nohup or tee stayed empty for the whole run; newuser21)
    assert re.search(r"cell 1/2 done: USB-v1 \| P-controller \| seed [01] \(\d+ s\)", out), out
    with sqlite3.connect("runs/quick.sqlite") as db:
        infos = [json.loads(i) for (i,) in db.execute("SELECT info_json FROM cells")]
        assert len(infos) == 2 and all(isinstance(i["torch_threads"], int) for i in infos)
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    report = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    assert code in (0, None) and "| Torch threads per cell |" in report
    assert "different torch thread counts" not in report
    with sqlite3.connect("runs/quick.sqlite") as db:
        config_hash = db.execute("SELECT config_hash FROM cells").fetchone()[0]
        db.execute("UPDATE cells SET info_json = json_set(info_json, '$.torch_threads', 97) "
                   "WHERE config_hash = ?", (config_hash,))
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    report = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    # A scripted method computes no torch floats: its numbers cannot differ by it (newuser22)
    assert "different torch thread counts" not in report
    from agents import agent_spec

    monkeypatch.setattr(agent_spec("p_controller").cls, "learns", True, raising=False)
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    report = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    assert "WARNING: cells of one method ran with different torch thread counts " \
           "(P-controller: " in report
    assert "97; `matrix run --workers`" in report
    # Another commit's cells pooled in one row without a word (review): said now.
    assert "made by different code or libraries" not in report
    with sqlite3.connect("runs/quick.sqlite") as db:
        db.execute("UPDATE cells SET suite_commit = 'abc1234' WHERE config_hash = ?",
                   (config_hash,))
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    report = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    warning = next(line for line in report.splitlines()
                   if line.startswith("WARNING: the done cells were made by different code or "
                                      "libraries (suite commit "))
    commits = warning.split("(suite commit ")[1].split(")")[0].split(", ")
    assert "abc1234" in commits and len(commits) == 2, warning  # sorted: either may come first
    # A folder named like a shipped preset in the working folder hid it (review).
    (in_tmp / "quick").mkdir()
    code, out, err = run_cli(capsys, "matrix", "status", "quick")
    assert code in (0, None) and "2 done" in out, (out, err)


def test_a_cut_off_store_is_named_as_damaged(capsys, in_tmp):
    """It was "DatabaseError: database disk image is malformed" as an internal error, exit 1."""
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--executor", "inline", "--no-progress")
    assert code == 0, err
    (in_tmp / "cut.sqlite").write_bytes((in_tmp / "runs" / "quick.sqlite").read_bytes()[:5000])
    for command in ("status", "report", "run"):
        code, _, err = run_cli(capsys, "matrix", command, "quick", "--store", "cut.sqlite")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert "cut.sqlite is a damaged matrix store (database disk image is malformed)" in err


def test_methods_run_one_at_a_time_on_other_thread_counts_are_not_warned_of(capsys, in_tmp,
                                                                            monkeypatch):
    """The README runs methods one at a time, each with its own --workers: the report warned
    that "the done cells ran with different torch thread counts" though every method's cells
    ran at one count (matrix20)."""
    (in_tmp / "two.toml").write_text(
        'name = "two"\ndescription = "x"\ntasks = ["InsertBench/USB-v0"]\nseeds = [0, 1]\n'
        'eval_episodes = 1\neval_seeds = { start = 500 }\neval_every = 5\n\n'
        '[[agents]]\nname = "p_controller"\nbudget_steps = 0\n\n'
        '[[agents]]\nname = "straight_down"\nbudget_steps = 0\n')
    code, _, err = run_cli(capsys, "matrix", "run", "two.toml", "--executor", "inline",
                           "--no-progress")
    assert code == 0, err
    with sqlite3.connect("runs/two.sqlite") as db:
        straight = [h for (h,) in db.execute(
            "SELECT config_hash FROM cells WHERE agent = 'straight_down'")]
        assert len(straight) == 2
        db.executemany("UPDATE cells SET info_json = json_set(info_json, '$.torch_threads', 97)"
                       " WHERE config_hash = ?", [(h,) for h in straight])
    from agents import agent_spec

    for name in ("p_controller", "straight_down"):  # as methods that learn: scripted ones are
        # never warned of (newuser22)
        monkeypatch.setattr(agent_spec(name).cls, "learns", True, raising=False)
    code, _, err = run_cli(capsys, "matrix", "report", "two.toml", "--reps", "100")
    report = (in_tmp / "runs" / "two-report" / "report.md").read_text()
    assert code in (0, None) and "torch thread counts" not in report, report
    with sqlite3.connect("runs/two.sqlite") as db:
        db.execute("UPDATE cells SET info_json = json_set(info_json, '$.torch_threads', 3)"
                   " WHERE config_hash = ?", (straight[0],))
    run_cli(capsys, "matrix", "report", "two.toml", "--reps", "100")
    report = (in_tmp / "runs" / "two-report" / "report.md").read_text()
    assert "different torch thread counts (straight_down: 3, 97;" in report, report


def test_status_of_a_preset_run_would_refuse_says_so(capsys, in_tmp):
    """It printed "no store ...; 2 cells pending" and exit 0 for cells that can never run."""
    (in_tmp / "typo.toml").write_text(
        'name = "typo"\ndescription = "x"\ntasks = ["InsertBench/USB-v0"]\nseeds = [0]\n'
        'eval_episodes = 1\neval_seeds = { start = 500 }\neval_every = 5\n\n'
        '[[agents]]\nname = "nosuch"\nbudget_steps = 10\n')
    code, _, err = run_cli(capsys, "matrix", "status", "typo.toml")
    lines = err.strip().splitlines()
    assert code == 2 and "unknown agent 'nosuch'" in err, err
    assert len(lines) == 1 and "Invalid value for PRESET: the preset cannot run" in err, err


def test_status_warns_of_done_cells_run_on_another_task_version_as_report_does(capsys, in_tmp):
    """A store resumed after a task changed reuses the cells run before; `matrix report` warned
    of them, `matrix status`, what a user checks first, said nothing. One line per task."""
    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--executor", "inline", "--no-progress")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "matrix", "status", "quick")
    assert code in (0, None) and "WARNING" not in out, out
    # One cell's episodes as an earlier version of USB-v1 left them.
    with sqlite3.connect("runs/quick.sqlite") as db:
        config_hash = db.execute("SELECT config_hash FROM episodes").fetchone()[0]
        db.execute("UPDATE episodes SET extra_json = json_set(extra_json, '$.task_version_key', "
                   "'earlier') WHERE config_hash = ?", (config_hash,))
    code, out, _ = run_cli(capsys, "matrix", "status", "quick")
    warnings = [line for line in out.splitlines() if line.startswith("WARNING")]
    assert code in (0, None) and len(warnings) == 1, out
    assert warnings[0].startswith("WARNING: USB-v1: 1 of its 2 done cells were evaluated on "
                                  "another version of the task than this code builds"), out


def test_status_names_cells_whose_run_was_killed_interrupted(capsys, in_tmp):
    """A run killed with -9 leaves its running markers; `status` called those cells pending, as
    if they had never started, with nothing that said a run died and that `run` resumes them."""
    import subprocess
    import time

    from benchmark.preset import load_preset
    from benchmark.store import process_host

    code, _, err = run_cli(capsys, "matrix", "run", "quick", "--agent", "p_controller",
                           "--executor", "inline", "--no-progress")
    assert code == 0, err
    sac = next(c for c in load_preset("quick").cells if c.agent == "sac")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with sqlite3.connect("runs/quick.sqlite") as db:
        now = time.time()
        db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                   (sac.config_hash, dead.pid, process_host(), now, now, "killed"))
    code, out, _ = run_cli(capsys, "matrix", "status", "quick")
    text = " ".join(out.split())
    assert code in (0, None), out
    assert "quick (runs/quick.sqlite): 2 done, 0 running, 0 failed, 1 pending, 1 interrupted " \
           "of 4" in text, out
    assert "1 cell was interrupted: the run that claimed it stopped without recording a " \
           "result; `insertbench matrix run quick` resumes it" in text, out
    code, out, _ = run_cli(capsys, "matrix", "status", "quick", "-v")
    assert f"pid {dead.pid}" in out and "interrupted" in out, out
    # The report's status table agrees (it said "Not started | 2": newuser20).
    code, _, err = run_cli(capsys, "matrix", "report", "quick", "--reps", "100")
    report = (in_tmp / "runs" / "quick-report" / "report.md").read_text()
    assert "| Interrupted (`matrix run` resumes them) | 1 |" in report, report
    assert "| Not started | 1 |" in report, report


def test_sim2sim_compares_a_checkpoint_as_eval_does(capsys, in_tmp):
    """`sim2sim --checkpoint` used to ignore run.json: a USB checkpoint ran on D-sub without a
    word, a checkpoint trained with --env action_mode=pose failed on its first step unless the
    user repeated that --env, and a misspelt kwarg printed the whole TaskSpec."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v0", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pose", "--no-progress", "--env", "action_mode=pose")
    assert code == 0, err
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/DSub-v0", "--checkpoint",
                           "runs/pose", "--episodes", "1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "runs/pose was trained on InsertBench/USB-v0, not InsertBench/DSub-v0" in lines[0]
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v0", "--checkpoint",
                             "runs/pose", "--episodes", "2")
    assert code == 0, err
    assert "'action_mode': 'pose'" in out
    # A noiseless task replays one episode per seed: the table says the interval counts one.
    assert out.count("2/2 (100% [21, 100]; 1 distinct)") == 2, out
    # An --env that changes the policy's spaces is refused as by eval, before any episode: it
    # used to end in "operands could not be broadcast together with shapes (6,) (3,) (3,)".
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v0", "--checkpoint",
                           "runs/pose", "--episodes", "1", "--env", "action_mode=xyz")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "the checkpoint was trained on actions (6,), but the env with" in lines[0], err
    # A run kwarg PyBullet does not model is left out, with one warning; no --env can drop it.
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/grasp", "--no-progress", "--env", "grasp_noise_mm=0.5")
    assert code == 0, err
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/grasp", "--episodes", "1")
    assert code == 0, err
    assert err.strip().splitlines() == ["insertbench: warning: the run's env kwarg(s) "
                                        "['grasp_noise_mm'] have no PyBullet model: left out in "
                                        "both engines"], err
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v0", "--episodes", "1",
                           "--env", "goal_nose_mm=1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "did you mean 'goal_noise_mm'?" in lines[0], err
    assert "TaskSpec(" not in err
    # A pixel checkpoint: its image kwargs were "left out", then "pass the --env kwargs it was
    # trained with", which PyBullet refused.
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pixels", "--no-progress", "--env", "obs_mode=state+pixels",
                           "--env", "image_size=16")
    assert code == 0, err
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pixels", "--episodes", "1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "PyBullet has no cameras" in lines[0], err


def test_eval_takes_the_runs_task_by_default(capsys, in_tmp):
    """`eval` required --task although run.json records it."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pc", "--no-progress")
    assert code == 0, err
    code, out, err = run_cli(capsys, "eval", "--checkpoint", "runs/pc", "--episodes", "1")
    assert code == 0 and "on InsertBench/USB-v1" in " ".join(out.split()), err
    shutil.copytree("runs/pc/checkpoint/agent", "bare")  # a copy, a submission's policy
    code, _, err = run_cli(capsys, "eval", "--checkpoint", "bare")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "bare has no run.json naming its task: give --task" in err, err


def _classifier_rewarded_run(capsys) -> None:
    """runs/pc: a P-controller run whose run.json says a classifier rewarded it."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/pc", "--no-progress")
    assert code == 0, err
    run_file = Path("runs/pc/run.json")
    run = json.loads(run_file.read_text())
    run["env_kwargs"] |= {"reward": "classifier", "reward_classifier": "clf/{task}"}
    run_file.write_text(json.dumps(run))


def test_eval_with_another_reward_scores_a_learned_reward_runs_policy_alone(capsys, in_tmp):
    """Under reward=classifier an evaluation episode ends at the classifier's verdict; `--env
    reward=sparse`, to score the policy alone, failed on "a learned reward needs both
    reward='classifier' and reward_classifier=<dir>" (the run's classifier was kept)."""
    _classifier_rewarded_run(capsys)
    code, out, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/pc", "--episodes", "1", "--env", "reward=sparse")
    assert code == 0, err
    assert "{'reward': 'sparse'}" in "".join(out.split()).replace(":", ": "), out


def test_sim2sim_runs_a_learned_reward_run_on_the_simulators_success(capsys, in_tmp):
    """A run rewarded by a classifier: sim2sim dropped its reward_classifier (no PyBullet model)
    but kept reward='classifier', and failed on "needs both". A VICE run's observations hold
    its classifier's cameras in any obs_mode: its --env advice went in circles."""
    _classifier_rewarded_run(capsys)
    code, out, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--checkpoint",
                             "runs/pc", "--episodes", "1")
    assert code == 0, err
    assert "the run's learned reward (a classifier on camera images) has no PyBullet model: " \
        "both engines run reward='sparse'" in " ".join(err.split()), err
    assert "'reward': 'sparse'" in out and "reward_classifier" not in out, out
    meta_file = Path("runs/pc/checkpoint/agent/agent.json")
    meta = json.loads(meta_file.read_text())
    meta["observation_space"]["spaces"]["side"] = {  # as a VICE run's
        "type": "Box", "shape": [32, 32, 3], "dtype": "uint8", "low": 0, "high": 255}
    meta_file.write_text(json.dumps(meta))
    code, _, err = run_cli(capsys, "sim2sim", "--task", "InsertBench/USB-v1", "--checkpoint",
                           "runs/pc", "--episodes", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "runs/pc was trained on camera observations (side); PyBullet has no cameras" in err


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
         "--eval-episodes", "0", "--out", ""],
        ["leaderboard", "render", "--out", "", "--no-gifs", "--ledger", "ledger"],
        ["leaderboard", "submit", "", "--track", "paper000", "--ledger", "ledger"],
        ["leaderboard", "render", "--out", "site", "--ledger", " "],
        ["dataset", "collect", "--task", "InsertBench/USB-v0", "--episodes", "1", "--out", ""],
    ],
)
def test_an_empty_path_is_refused_not_the_working_directory(capsys, in_tmp, args):
    """`--out ""` (an unset `--out "$RUN_DIR"`) is Path("."): train wrote run.json, tb/ and the
    checkpoint, render index.html, entries/ and plots/ into the working directory."""
    (in_tmp / "ledger").mkdir()
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    assert "an empty path" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["ledger"]
    assert not any((in_tmp / "ledger").iterdir())


def test_every_path_option_refuses_an_empty_string():
    """Each command's path options and arguments, not only those tested above."""
    from typer._click import Context

    from benchmark.cli import _refuse_empty_paths

    root = typer.main.get_command(app)
    _refuse_empty_paths(root)
    checked = 0
    for path, command in all_commands():
        command = root
        for name in path:
            command = command.commands[name]
        for param in command.params:
            if getattr(param.type_descriptor, "is_path", False):
                with pytest.raises(typer.BadParameter, match="an empty path"):
                    param.process_value(Context(command), "")
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize("command", ["run", "status", "report"])
def test_a_store_given_as_the_preset_is_one_clear_line(capsys, in_tmp, command):
    """`insertbench matrix report runs/quick.sqlite` (the store for the preset) ended in
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xf8 ..."."""
    (in_tmp / "runs").mkdir()
    (in_tmp / "runs" / "quick.sqlite").write_bytes(b"SQLite format 3\x00\x10\x00\x01\x01\xf8\xff")
    code, out, err = run_cli(capsys, "matrix", command, "runs/quick.sqlite")
    assert code == 2 and out == "", err
    assert len(err.strip().splitlines()) == 1, err
    assert "runs/quick.sqlite is not a TOML text file (a matrix store: give the preset's name " \
           "and --store FILE)" in err and "UnicodeDecodeError" not in err


def test_demos_that_are_missing_or_empty_are_one_clear_line(capsys, in_tmp):
    """`train --demos nothere.npz` ended in "FileNotFoundError: [Errno 2]" after making the run
    directory; `--demos empty.npz` (a zero-byte file) printed "interrupted" with status 130:
    numpy's EOFError, which Click reads as Ctrl-D."""
    args = ["train", "--task", "InsertBench/USB-v1", "--agent", "bc", "--steps", "10",
            "--eval-episodes", "0", "--no-progress"]
    code, _, err = run_cli(capsys, *args, "--demos", "nothere.npz", "--out", "runs/a")
    assert code == 2 and "demos nothere.npz do not exist" in err, err
    assert not (in_tmp / "runs").exists()
    (in_tmp / "empty.npz").write_bytes(b"")
    code, _, err = run_cli(capsys, *args, "--demos", "empty.npz", "--out", "runs/b")
    assert code == 2, err
    assert "empty.npz is not a saved Dataset (ValueError: not an .npz archive" in err
    assert "interrupted" not in err
    # A text file: numpy said it "contains pickled (object) data" and pointed at allow_pickle.
    (in_tmp / "notes.txt").write_text("hello")
    code, _, err = run_cli(capsys, *args, "--demos", "notes.txt", "--out", "runs/c")
    assert code == 2 and "notes.txt is not a saved Dataset (ValueError: not an .npz archive" \
        in err and "pickle" not in err, err


def test_ctrl_c_says_interrupted(capsys, in_tmp, monkeypatch):
    """Typer turns a KeyboardInterrupt into Exit(130) without a word, so Ctrl-C during a
    command exited silently; the one line "interrupted" was only printed for Click's Abort."""
    import benchmark.train

    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark.train, "train", pressed_ctrl_c)
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent",
                           "p_controller", "--steps", "0", "--out", "runs/x")
    assert code == 130 and err.strip() == "insertbench: error: interrupted", err


def test_an_eof_error_of_a_command_is_not_an_interruption(capsys, in_tmp, monkeypatch):
    """An empty --goal-images file: numpy's EOFError became Click's Abort, printed as
    "interrupted" with status 130, as if the user had pressed Ctrl-C. The file is now named
    as a --goal-images mistake; an EOFError no command expects is still no interruption."""
    (in_tmp / "goal.npz").write_bytes(b"")
    validate = ["real", "validate", "--task", "InsertBench/USB-v0", "--twin", "--policy",
                "p_controller", "--episodes", "1", "--out", "runs/rv", "--env",
                "reward=goal_image", "--goal-images", "goal.npz"]
    code, _, err = run_cli(capsys, *validate)
    assert code == 2 and "goal.npz is not a goal-image file (not an .npz archive" in err, err

    def empty(*_, **__):
        raise EOFError("No data left in file")

    monkeypatch.setattr("real.goal_images.load", empty)
    code, _, err = run_cli(capsys, *validate)
    assert code == 1, err
    assert "EOFError: No data left in file (an empty or truncated file?)" in err
    assert "interrupted" not in err and "Traceback" not in err


@pytest.mark.parametrize("args", [
    ["train", "--task", "InsertBench/USB-v1", "--agent", "p_controller", "--steps", "0",
     "--eval-episodes", "0"],
    ["dataset", "collect", "--task", "InsertBench/USB-v1", "--episodes", "1"],
    ["dataset", "recipe", "paper001", "--connector", "USBA", "--episodes", "1"],
    ["real", "validate", "--task", "InsertBench/USB-v0", "--twin", "--policy", "p_controller",
     "--episodes", "1"],
])
@pytest.mark.parametrize("out", ["a_file", "a_file/run"])
def test_an_output_folder_that_is_a_file_is_one_usage_line(capsys, in_tmp, args, out):
    """`--out FILE` ended in "FileExistsError: [Errno 17] File exists" after building the task."""
    (in_tmp / "a_file").write_text("kept")
    code, _, err = run_cli(capsys, *args, "--out", out)
    assert code == 2, err
    assert f"Invalid value for --out: {out} is not a directory" in err, err
    assert "Errno" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in in_tmp.iterdir()) == ["a_file"]
    assert (in_tmp / "a_file").read_text() == "kept"


def test_train_on_an_unfinished_or_damaged_collection_is_one_line(capsys, in_tmp):
    """A collection stopped before its Minari dataset was written ended `train --demos` in
    Minari's "not found locally ... Use download=True to download the dataset", after the run
    directory was made; a damaged collect_config.json in "'list' object has no attribute
    'get'"."""
    from benchmark.datasets import CollectConfig, collect_episodes

    collect_episodes(CollectConfig("InsertBench/USB-v1", episodes=1, max_steps=3),
                     in_tmp / "partial", progress=False)  # the episodes, not the dataset
    args = ["train", "--task", "InsertBench/USB-v1", "--agent", "bc", "--steps", "0",
            "--eval-episodes", "0", "--no-progress", "--out", "runs/bc", "--demos", "partial"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("partial holds an unfinished collection (no complete Minari dataset "
            "insertbench/usb-expert-v0 with lossless images yet): rerun the `insertbench "
            "dataset collect`") in err
    assert not (in_tmp / "runs").exists()
    (in_tmp / "partial" / "collect_config.json").write_text("[1, 2]")
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "partial/collect_config.json is not a collection's settings" in err, err
    assert not (in_tmp / "runs").exists()


def test_a_demos_collection_the_expert_cannot_fill_says_what_to_change(capsys, in_tmp):
    """It ended as an internal error ("RuntimeError: only 0 successful episodes ..."), and
    `train --demos` on its folder advised rerunning the collection, which gives up again from
    the same seeds (matrix18)."""
    collect = ["dataset", "collect", "--task", "InsertBench/USB-v1", "--out", "d2",
               "--episodes", "1", "--noise", "1.0", "--demos", "--max-steps", "3",
               "--no-progress"]
    code, _, err = run_cli(capsys, *collect)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert ("only 0 successful episodes in 20 attempts on InsertBench/USB-v1: the expert fails "
            "too often for --demos (noise 1, 3 steps an episode); collect into another --out "
            "with a lower --noise or more --max-steps") in lines[0], err
    assert "RuntimeError" not in err and "--debug" not in err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "bc",
                           "--steps", "0", "--eval-episodes", "0", "--no-progress", "--out",
                           "runs/bc", "--demos", "d2")
    assert code == 2 and "d2 holds a collection that gave up: only 0 successful" in err, err
    assert "rerun" not in err and not (in_tmp / "runs").exists()


def test_a_recipe_whose_part_gives_up_says_what_to_change(capsys, in_tmp, monkeypatch):
    """A recipe's part that gave up advised --noise and --max-steps, which `dataset recipe`
    has not, and `train --demos` on its folder advised rerunning it, which gives up again
    (diff21)."""
    import dataclasses

    import benchmark.recipes as recipes

    every_part = recipes.recipe_parts

    def failing_part(*args, **kwargs):  # an expert that fails: 2-step episodes
        part = next(p for p in every_part(*args, **kwargs) if p.is_demo)
        return [dataclasses.replace(part, collect=dataclasses.replace(
            part.collect, episodes=1, max_attempts_per_demo=2, max_steps=2))]

    monkeypatch.setattr(recipes, "recipe_parts", failing_part)
    code, _, err = run_cli(capsys, "dataset", "recipe", "paper004", "--out", "rec",
                           "--connector", "USBA", "--no-progress")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert "part USBA-demos: only 0 successful episodes in 2 attempts" in lines[-1], err
    assert "--noise" not in err and "another --version or --seed" in err, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/Connector-USBA-v1", "--agent",
                           "bc", "--steps", "0", "--eval-episodes", "0", "--no-progress",
                           "--out", "runs/bc", "--demos", "rec")
    assert code == 2 and "collection that gave up on part USBA-demos (only 0 successful" in err
    assert "rerun the command" not in err and not (in_tmp / "runs").exists()


def _collect_then_train_bc(capsys, task: str, out: str, *collect_env: str) -> str:
    """`dataset collect` one episode of `task` into `out`, then `train --agent bc --demos out`
    on USB-v1; the training's stderr."""
    code, _, err = run_cli(capsys, "dataset", "collect", "--task", task, "--episodes", "1",
                           "--out", out, *collect_env)
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "bc",
                           "--steps", "5", "--eval-episodes", "0", "--no-progress", "--demos",
                           out, "--out", f"runs/{Path(out).name}", "--config",
                           "pretrain_steps=2")
    assert code == 0, err
    return err


def test_demos_collected_on_another_task_are_named(capsys, in_tmp):
    """`train --task InsertBench/USB-v1 --demos outputs/dt12` (a DT12 collection) trained on
    another connector's demonstrations without a word."""
    err = _collect_then_train_bc(capsys, "InsertBench/Connector-DT12-v1", "outputs/dt12")
    assert ("warning: demos outputs/dt12 were collected on InsertBench/Connector-DT12-v1, not "
            "InsertBench/USB-v1") in err, err
    # BC clones every row: a collection without --demos (failures, random actions) was cloned
    # as demonstrations without a word (review); one with --demos is.
    assert "warning: bc imitates every step of demos outputs/dt12, which are not " \
        "demonstrations: collected without --demos (failures kept) and a random action on 20% " \
        "of steps" in " ".join(err.split()), err
    # RLPD and TD3 + LfD take them as demonstrations too (half of every batch, a BC loss):
    # nothing was said (data19).
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/Connector-DT12-v1", "--agent",
                           "td3_lfd", "--steps", "0", "--eval-episodes", "0", "--no-progress",
                           "--demos", "outputs/dt12", "--out", "runs/lfd")
    assert code == 0 and "warning: td3_lfd learns from demos outputs/dt12 as demonstrations, " \
        "but they were collected without --demos: failed episodes kept" in " ".join(err.split())
    err = _collect_then_train_bc(capsys, "InsertBench/USB-v1", "outputs/demos", "--demos",
                                 "--noise", "0")
    assert "imitates" not in err, err
    # Collected in the task frame, trained in the start frame: tcp_pose means another thing.
    err = _collect_then_train_bc(capsys, "InsertBench/USB-v1", "outputs/usb", "-e",
                                 "obs_frame=task")
    assert ("warning: demos outputs/usb were collected with other env kwargs than this run's "
            "(collection, run): {'obs_frame': ('task', None)}") in err, err
    # A default given on one side only builds the same task: no warning.
    err = _collect_then_train_bc(capsys, "InsertBench/USB-v1", "outputs/same", "-e",
                                 "obs_mode=state")
    assert "other env kwargs" not in err, err
    # Nor does the episode length, which is not among a collection's kwargs (--max-steps): a
    # run given the collection's own length was warned of it (review).
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "bc",
                           "--steps", "5", "--eval-episodes", "0", "--no-progress", "--demos",
                           "outputs/same", "--out", "runs/short", "-e", "max_episode_steps=20",
                           "--config", "pretrain_steps=2")
    assert code == 0 and "other env kwargs" not in err, err
    # A run's own demos.npz, named by its run.json beside it, passed as any file did.
    for task, env, warning in (
            ("InsertBench/ModelE-v1", (), "were recorded on InsertBench/USB-v1, not "
                                          "InsertBench/ModelE-v1"),
            ("InsertBench/USB-v1", ("-e", "obs_frame=task"), "were recorded with other env "
             "kwargs than this run's (their run, run): {'obs_frame': (None, 'task')}")):
        code, _, err = run_cli(capsys, "train", "--task", task, "--agent", "bc", "--steps",
                               "5", "--eval-episodes", "0", "--no-progress", "--demos",
                               "runs/dt12/demos.npz", "--out", f"runs/again-{len(env)}", *env,
                               "--config", "pretrain_steps=2")
        assert code == 0 and f"warning: demos runs/dt12/demos.npz {warning}" in err, err


def test_a_collection_refuses_a_registered_env_that_is_no_insertion_task(capsys, in_tmp):
    """CartPole-v1 passed --task's check: an internal TypeError (exit 1) and a folder whose
    settings refused the corrected rerun (data18)."""
    code, _, err = run_cli(capsys, "dataset", "collect", "--no-progress", "--episodes", "1",
                           "--task", "CartPole-v1", "--out", "foreign")
    assert code == 2 and "Invalid value for --task: not an InsertBench insertion environment" \
        in err, err
    assert not (in_tmp / "foreign").exists()


def test_demonstration_learners_are_told_what_a_folder_holds_besides(capsys, in_tmp):
    """BC imitated the random actions of a --demos collection (noise 0.2 by default) without
    a word, and an RLPD run on DT12 given a recipe of USB-A took its demonstrations and noisy
    rollouts alone as DT12's demos (data18)."""
    code, _, err = run_cli(capsys, "dataset", "collect", "--task", "InsertBench/USB-v1",
                           "--episodes", "1", "--demos", "--out", "noisy", "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v1", "--agent", "bc",
                           "--steps", "0", "--eval-episodes", "0", "--no-progress", "--demos",
                           "noisy", "--out", "runs/bc", "--config", "pretrain_steps=1")
    assert code == 0 and "bc imitates every step of demos noisy, a random action on 20% of " \
        "them (collected with --noise 0.2" in " ".join(err.split()), err
    code, _, err = run_cli(capsys, "dataset", "recipe", "paper004", "--out", "data",
                           "--connector", "USBA", "--episodes", "1")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/Connector-DT12-v1", "--agent",
                           "rlpd", "--steps", "0", "--eval-episodes", "0", "--no-progress",
                           "--demos", "data", "--out", "runs/rlpd", "-e", "obs_mode=state")
    said = " ".join(err.split())
    assert code == 0 and "rlpd learns from demonstrations of InsertBench/Connector-DT12-v1, " \
        "but demos data hold InsertBench/Connector-USBA-v1 only" in said, err
    assert "rlpd learns from demos data, also of its parts that are not demonstrations " \
        "(USBA-rollouts)" in said, err


def test_a_recipe_recorded_on_another_task_version_is_named(capsys, in_tmp):
    """v1 recipe data trained a v0 run without a word; a damaged recipe.json was named only
    as "Expecting value: line 1 column 1 (char 0)"."""
    code, _, err = run_cli(capsys, "dataset", "recipe", "paper004", "--out", "data",
                           "--connector", "USBA", "--episodes", "1")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/Connector-USACPlug-v0",
                           "--agent", "iql", "--steps", "2", "--eval-episodes", "0",
                           "--no-progress", "--demos", "data", "--out", "runs/iql",
                           "--config", "pretrain_steps=1", "-e", "obs_mode=state")
    assert "warning: demos data were recorded on task version v1, not v0" in err, err
    # Its kwargs were never compared (a single collection's were): the recipe's start height
    # and offsets are not this run's.
    assert "warning: demos data were recorded with other env kwargs than this run's (recipe, " \
        "run): {'init_offset_mm'" in err, err
    # BC clones every row, the recipe's noisy rollouts too (IQL weighs them: not warned).
    assert "imitates" not in err, err
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/Connector-USACPlug-v1",
                           "--agent", "bc", "--steps", "0", "--eval-episodes", "0",
                           "--no-progress", "--demos", "data", "--out", "runs/bc", "--config",
                           "pretrain_steps=1", "-e", "obs_mode=state")
    assert code == 0 and "warning: bc imitates every step of demos data, also of its parts " \
        "that are not demonstrations (USBA-rollouts)" in " ".join(err.split()), err
    args = ["train", "--task", "InsertBench/Connector-USACPlug-v1", "--agent", "iql", "--steps",
            "2", "--eval-episodes", "0", "--no-progress", "--demos", "data", "--out", "runs/iql2"]
    # A part's cut-off Minari file was h5py's OSError (exit 1), after the run folder was made.
    part = sorted((in_tmp / "data").rglob("main_data.hdf5"))[0]
    part.write_bytes(part.read_bytes()[:100])
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "changed since it was built (their SHA-256" in err, err
    assert "rerun the `insertbench dataset recipe` that wrote it" in err, err
    # A part written before lossless images (no build marker) is refused before the run folder.
    marker = sorted((in_tmp / "data").rglob("minari_built.json"))[0]
    marker.unlink()
    code, _, err = run_cli(capsys, *args[:-1], "runs/iql3")
    assert code == 2 and "or written before images were stored losslessly" in err, err
    assert not (in_tmp / "runs" / "iql3").exists()
    (in_tmp / "data" / "recipe.json").write_text("")
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "data/recipe.json is not valid JSON" in err, err


def test_version_names_the_version_and_the_commit(capsys):
    """`insertbench --version` was "No such option"; stored results record both."""
    from importlib.metadata import version

    from benchmark.store import suite_commit

    code, out, err = run_cli(capsys, "--version")
    commit = suite_commit(mark_dirty=True)
    assert code == 0 and err == ""
    assert out.strip() == f"insertbench {version('insertbench')}" + (
        f" (commit {commit})" if commit else "")


def test_eval_refuses_a_checkpoint_of_another_agent_than_its_run(capsys, in_tmp):
    """A policy exported into another run's checkpoint folder was scored under that run's task
    and kwargs ("sac from runs/td3/..."), without a word."""
    code, _, err = run_cli(capsys, "train", "--task", "InsertBench/USB-v0", "--agent",
                           "p_controller", "--steps", "0", "--eval-episodes", "0", "--out",
                           "runs/a", "--no-progress")
    assert code == 0, err
    run = json.loads(Path("runs/a/run.json").read_text())
    Path("runs/a/run.json").write_text(json.dumps(run | {"agent": "sac"}))
    code, _, err = run_cli(capsys, "eval", "--task", "InsertBench/USB-v0", "--checkpoint",
                           "runs/a", "--episodes", "1")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert ("runs/a/checkpoint/agent holds a p_controller checkpoint, but its run's run.json "
            "describes a sac run") in lines[0]


def test_eval_json_out_spares_an_interrupted_async_runs_checkpoint(tmp_path):
    """A train-async run killed before its async.json has only checkpoint/learner.json beside
    its agent: `eval --json-out run/checkpoint/learner.json` wrote over it, and the resume
    failed (diff24)."""
    from benchmark.train_cli import _check_not_the_runs

    agent = tmp_path / "run" / "checkpoint" / "agent"
    agent.mkdir(parents=True)
    (agent.parent / "learner.json").write_text("{}")
    with pytest.raises(typer.BadParameter, match="lies in the evaluated run's checkpoint"):
        _check_not_the_runs(agent.parent / "learner.json", agent)
    # ... and while it runs (no async.json yet), its lock and TensorBoard folder (diff25)
    with pytest.raises(typer.BadParameter, match="is the evaluated run's own checkpoint.lock"):
        _check_not_the_runs(tmp_path / "run" / "checkpoint.lock", agent)
    with pytest.raises(typer.BadParameter, match="lies in the evaluated run's tb folder"):
        _check_not_the_runs(tmp_path / "run" / "tb" / "x.json", agent)
    _check_not_the_runs(tmp_path / "run" / "eval.json", agent)  # beside it: the user's


def test_a_matrix_refuses_done_cells_another_reward_classifier_rewarded(capsys, in_tmp):
    """A cell's hash names its classifier's folder, not its files: run on into the same store
    from a folder whose clf/ was another classifier, its done cell counted as this one's and
    the report pooled both classifiers' results as one method, without a word (serl23)."""
    import os
    import shutil

    code, _, err = run_cli(capsys, "classifier", "train", "--task", "InsertBench/USB-v1",
                           "--episodes", "1", "--heldout-episodes", "1", "--steps", "1",
                           "--out", "A/clf")
    assert code == 0, err
    shutil.copytree("A/clf", "B/clf")
    description = json.loads(Path("B/clf/classifier.json").read_text())
    description["threshold"] = 0.99  # another classifier of the same render settings
    Path("B/clf/classifier.json").write_text(json.dumps(description))
    Path("p.toml").write_text(
        'name = "clfmix"\ntasks = ["InsertBench/USB-v1"]\nseeds = [0]\neval_episodes = 1\n'
        'eval_seeds = { start = 1000000 }\n[env_kwargs]\nreward = "classifier"\n'
        'reward_classifier = "clf"\n[[agents]]\nname = "p_controller"\nbudget_steps = 0\n')
    matrix = ["matrix", "run", "../p.toml", "--store", "../store.sqlite", "--executor",
              "inline", "--no-progress", "--artifacts", "../art"]
    os.chdir("A")
    code, _, err = run_cli(capsys, *matrix)
    assert code == 0, err
    os.chdir("../B")
    code, _, err = run_cli(capsys, *matrix)
    assert code == 2 and "1 done cell(s) of clfmix in ../store.sqlite were rewarded by another " \
        "reward classifier than the one clf names from this folder" in " ".join(err.split()), err
    code, _, err = run_cli(capsys, "matrix", "report", "../p.toml", "--store", "../store.sqlite",
                           "--out", "report", "--artifacts", "../art")  # the run's (diff32)
    assert code == 0, err
    assert "WARNING: 1 of the done cells were rewarded by another reward classifier" in \
        Path("report/report.md").read_text()
    code, _, err = run_cli(capsys, "matrix", "report", "../p.toml", "--store", "../store.sqlite",
                           "--out", "report", "--artifacts", "../artt")  # a typo checked nothing
    assert code == 2 and "../artt is not a folder" in err, err
    os.chdir("../A")
    assert run_cli(capsys, *matrix)[0] == 0  # from its own folder: the same classifier


def test_classifier_train_draws_no_bars_into_a_log(capsys, in_tmp):
    """Its three progress bars went into a log, stderr no terminal (newuser25)."""
    args = ["classifier", "train", "--task", "InsertBench/USB-v1", "--episodes", "1",
            "--heldout-episodes", "1", "--steps", "1"]
    code, _, err = run_cli(capsys, *args, "--out", "c")
    assert code == 0 and "frames:" not in err and "training the classifier" not in err, err
    code, _, err = run_cli(capsys, *args, "--out", "d", "--progress")
    assert code == 0 and "training frames:" in err and "training the classifier" in err, err


def test_a_command_says_each_warning_once(capsys):
    """The task's "out of date" advice, raised for each env `classifier train` made, was
    printed twice (newuser25); the next command says it again."""
    from benchmark.cli_options import WARNED, one_line_warning

    WARNED.clear()
    for _ in range(2):
        one_line_warning("WARN: The environment X-v1 is out of date.", DeprecationWarning,
                         "a.py", 1)
    assert capsys.readouterr().err == "insertbench: warning: The environment X-v1 is out of " \
        "date.\n"
    with pytest.raises(SystemExit):
        app(["--version"])  # a command: starts its own record
    one_line_warning("WARN: The environment X-v1 is out of date.", DeprecationWarning, "a.py", 1)
    assert "insertbench: warning: The environment X-v1" in capsys.readouterr().err
