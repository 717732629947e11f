"""The mating-force, tab-chatter and LOTJ-policy benchmarks refuse arguments they would silently
misapply, in one line and before the first (minutes-long) measurement."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark import bench_lotj_policy, bench_mating_forces, bench_tab_chatter


def _exit_message(capsys, monkeypatch, main, *args) -> tuple[object, str]:
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    assert "|---" not in out  # refused before the table's first row
    code = exit_info.value.code
    return code, err + (code if isinstance(code, str) else "")  # sys.exit(text): text is code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "2", "InsertBench/USB-v1"], "are not -v2 task IDs"),
        (["--version", "2", "USB"], "are not -v2 task IDs"),
        (["--episodes", "0"], "--episodes must be >= 1"),
    ],
)
def test_bench_mating_forces_refuses_tasks_of_another_version(capsys, monkeypatch, args, message):
    """`--version 2 InsertBench/USB-v1` used to print v1 against v0 under a v2 heading; `USB`
    ended in a KeyError traceback."""
    code, err = _exit_message(capsys, monkeypatch, bench_mating_forces.main, *args)
    assert code == 2 and message in err, err


def test_bench_mating_forces_counts_replayed_episodes_once():
    """v0 with an exact goal replays one episode for every seed: "10/10" read as ten trials
    (bench19)."""
    assert bench_mating_forces.p_controller_successes("InsertBench/USB-v0", 0.0, 2) == \
        "2/2 (1 distinct)"
    assert bench_mating_forces.p_controller_successes("InsertBench/USB-v1", 0.0, 2) == "2/2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1", "--variant", "spring_impedance=0.5"], "are v2 knobs"),
        (["--version", "1", "--variant", "spring_damping=20"], "are v2 knobs"),
        (["--version", "2", "--variant", "armature=4"], "need v1's tabs"),
        (["--version", "2", "--variant", "spring_impedance=1"], "must be in (0, 1)"),
        # The env's own check came after the header and the first rows (bench20)
        (["--variant", "task", "--variant", "timestep=0.005"],
         "timestep must be in [0.0001, 0.002] s, got 0.005"),
    ],
)
def test_bench_tab_chatter_refuses_knobs_of_the_other_version(capsys, monkeypatch, args, message):
    """v1 with spring_impedance used to run the task unchanged under that variant's name."""
    code, err = _exit_message(
        capsys, monkeypatch, bench_tab_chatter.main, "--tasks", "USB", "--no-rate", *args
    )
    assert code != 0 and message in err, err


def test_bench_lotj_policy_refuses_config_fields_its_policy_study_does_not_read(
        capsys, monkeypatch):
    """`--config device=cuda batch_size=4096` was printed as applied, and the study ran on the
    CPU with its own --batch-size, exit 0 (bench18)."""
    code, err = _exit_message(capsys, monkeypatch, bench_lotj_policy.main, "--data", "nowhere",
                              "--config", "device=cuda", "--config", "batch_size=4096")
    assert code == 2 and "--config batch_size, device: the policy study does not read them" \
        in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--online-fraction", "1.5"], "IQLConfig.online_fraction must be in [0, 1], got 1.5"),
        (["--beta", "-1"], "IQLConfig.beta must be > 0, got -1.0"),
    ],
)
def test_bench_lotj_policy_refuses_finetuning_overrides_its_config_refuses(
    capsys, monkeypatch, args, message,
):
    """Set on the loaded agent's config, an online share of 1.5 used to run 200 trials."""
    code, err = _exit_message(capsys, monkeypatch, bench_lotj_policy.main,
                              "--finetune", "no/such/checkpoint", *args)
    assert code == 2 and message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--classifier"], "--classifier needs --data and no --finetune"),
        (["--finetune", "c", "--config", "policy_color_jitter=0.4"],
         "--config does not apply with --finetune"),
        (["--data", "d", "--config", "policy_color_jitter=1"],
         "IQLConfig.policy_color_jitter must be in [0, 1), got 1.0"),
        (["--data", "d", "--config", "policy_color_jitter"],
         "--config expects KEY=VALUE, got 'policy_color_jitter'"),
        (["--data", "d", "--classifier", "--config", "classifier_color_jitter"],
         "--config expects KEY=VALUE, got 'classifier_color_jitter'"),
        (["--data", "d", "--classifier", "--config", "classifier_color_jitter=1"],
         "IQLConfig.classifier_color_jitter must be in [0, 1), got 1.0"),
        (["--data", "d", "--classifier", "--config", "no_such_field=1"],
         "unknown IQLConfig field(s) ['no_such_field']"),
        # Ignored outside their mode, exit 0: the policy study ran over all 8 connectors.
        (["--data", "d", "--connector", "HDMI"], "--connector applies with --finetune only"),
        (["--data", "d", "--trials", "7"], "--trials applies with --finetune only"),
        (["--data", "d", "--beta", "3"], "--beta applies with --finetune only"),
        (["--data", "d", "--classifier", "--loss", "nll"], "--loss and --daib apply to the "
         "policy study only"),
        (["--finetune", "c", "--daib"], "--loss and --daib apply to the policy study only"),
    ],
)
def test_bench_lotj_policy_refuses_classifier_arguments_before_loading_data(
    capsys, monkeypatch, args, message,
):
    """The classifier-only and actor-alone modes check their IQLConfig overrides before the
    recipe loads."""
    code, err = _exit_message(capsys, monkeypatch, bench_lotj_policy.main, *args)
    assert code == 2 and message in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["paper004", "--data", "no_such_dir"], "--data no_such_dir is not an `insertbench "
         "dataset recipe` folder (no recipe.json)"),
        (["paper001", "--data", "data"], "--data data holds the paper004 recipe, not "
         "paper001's"),
        (["paper004", "--data", "data", "--threads", "0"], "--threads must be an integer >= 1"),
        (["paper004", "--data", "data", "--batch-size", "0"], "--batch-size must be an integer"),
        (["paper004", "--data", "data", "--pretrain-steps", "-5"], "--pretrain-steps must be"),
        (["paper004", "--data", "data", "--eval-episodes", "0"], "--eval-episodes must be"),
        (["paper004", "--data", "data", "--tasks", "USACPlug", "Bogus"],
         "--tasks ['Bogus'] are not paper004 tasks"),
        (["paper001", "--data", "data", "--tasks", "DT12x"], "--tasks ['DT12x'] are not paper001"),
        # a training connector, reported as a held-out row of Tables I and IV
        (["paper001", "--data", "data", "--tasks", "USBA"], "--tasks ['USBA'] are not paper001"),
        # stored in bench.json, then the doc's command without it was "other settings"
        (["paper004", "--data", "data", "--online-trials", "5"],
         "--online-trials does not apply to paper004"),
        (["paper004", "--data", "data", "--classifier-episodes", "3"],
         "--classifier-episodes does not apply to paper004"),
        (["paper001", "--data", "data", "--finetune-steps", "400"],
         "--finetune-steps does not apply to paper001"),
    ],
)
def test_bench_offline_refuses_bad_data_counts_and_tasks_before_writing_out(
    capsys, monkeypatch, tmp_path, args, message,
):
    """Each ended in a traceback (a missing recipe.json, torch's set_num_threads(0), AWACConfig's
    check after loading the data) with bench.json already written, so the corrected rerun was
    refused as "other settings"; unknown paper004 --tasks were dropped silently."""
    from benchmark import bench_offline

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "recipe.json").write_text('{"recipe": "paper004", "parts": []}')
    code, err = _exit_message(capsys, monkeypatch, bench_offline.main, *args, "--out", "out")
    assert code == 2 and message in err.splitlines()[-1], err
    assert not (tmp_path / "out").exists()


def test_bench_offline_preset_names_data_of_another_recipe_in_one_line(
    capsys, monkeypatch, tmp_path,
):
    """`--preset` over an --out whose data holds another recipe (or was collected under other
    dynamics) ended in a traceback, whose advice ("collect into another --out") a preset run
    could not follow."""
    from benchmark import bench_offline

    def other_recipe(preset, out):
        raise ValueError(f"{out}/data holds a different recipe collection")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench_offline, "_data_from_preset", other_recipe)
    code, err = _exit_message(capsys, monkeypatch, bench_offline.main, "--preset",
                              "paper004-reduced", "--out", "out")
    assert code == 2 and "holds a different recipe collection (its data is out/data: give " \
        "another --out)" in err.splitlines()[-1], err


def test_bench_offline_refuses_an_out_that_is_a_file_before_collecting(
    capsys, monkeypatch, tmp_path,
):
    """`--preset paper004-reduced --out FILE` ended in a NotADirectoryError traceback when the
    preset's data collection tried to create FILE/data."""
    from benchmark import bench_offline

    monkeypatch.chdir(tmp_path)
    Path("results.txt").write_text("mine")
    code, err = _exit_message(capsys, monkeypatch, bench_offline.main, "--preset",
                              "paper004-reduced", "--out", "results.txt")
    assert code == 2 and "argument --out: 'results.txt' is a file" in err.splitlines()[-1]
    assert Path("results.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "p001", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["--data", "p001", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["--data", "p001", "--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
        (["--data", "no_such_dir"], "--data no_such_dir is not an `insertbench dataset recipe`"),
        (["--data", "p004"], "--data p004 holds the paper004 recipe, not paper001's"),
        (["--data", "p004", "--classifier"], "holds the paper004 recipe"),
        (["--finetune", "no_such_dir"], "no agent checkpoint under no_such_dir"),
        (["--finetune", "rlpd"], "--finetune rlpd holds a rlpd checkpoint, not LOTJ's (iql)"),
        (["--finetune", "iql", "--connector", "Bogus"], "--connector 'Bogus' is not a catalog"),
        (["--finetune", "iql", "--version", "v9"],
         "--version must be one of ['v0', 'v1', 'v2', 'v3']"),
    ],
)
def test_bench_lotj_policy_refuses_bad_data_checkpoints_and_counts(
    capsys, monkeypatch, tmp_path, args, message,
):
    """`--steps 0` used to train 3000 steps (`args.steps or 3000`); the others ended in a
    FileNotFoundError, KeyError 'wrist' or gymnasium NameNotFound traceback."""
    monkeypatch.chdir(tmp_path)
    for name, recipe in (("p001", "paper001"), ("p004", "paper004")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "recipe.json").write_text(f'{{"recipe": "{recipe}", "parts": []}}')
    for agent in ("rlpd", "iql"):
        (tmp_path / agent).mkdir()
        (tmp_path / agent / "agent.json").write_text(f'{{"agent": "{agent}"}}')
    code, err = _exit_message(capsys, monkeypatch, bench_lotj_policy.main, *args)
    assert code == 2 and message in err.splitlines()[-1], err


def test_odas_wrong_context_is_another_task_whatever_the_subset():
    """With `--tasks USACPlug` alone, ODA's "other task's demos" were USACPlug's own."""
    from benchmark.bench_offline import PAPER004_CHALLENGE, PAPER004_FIG3, shuffled_context_task

    order = list(PAPER004_FIG3) + list(PAPER004_CHALLENGE)
    others = [shuffled_context_task(t) for t in order]
    assert all(o != t for o, t in zip(others, order, strict=True))
    assert others == order[1:] + order[:1]  # the full run's choice, as before


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("check_learning", ["--out", "notes.txt"], "argument --out: 'notes.txt' is a file"),
        ("check_learning", ["--out", "notes.txt/run"], "lies under notes.txt, a file"),
        ("check_learning", ["--agent", "bogus"], "argument --agent: invalid choice: 'bogus'"),
        ("check_serl", ["--out", "notes.txt"], "argument --out: 'notes.txt' is a file"),
        ("check_track", ["--out", "notes.txt"], "argument --out: 'notes.txt' is a file"),
        ("check_track", ["--seed", "-1"], "argument --seed: must be an integer >= 0"),
        # bench21: a run written among the user's files (`--out .`: the working folder), and
        # train's refusals as tracebacks
        *((module, ["--out", "."], "argument --out: --out . holds other files and no run")
          for module in ("check_learning", "check_serl", "check_track")),
        ("check_learning", ["--steps", "99999999999"], "steps must be in [0, 1,000,000,000]"),
        ("make_figures", ["--out", "notes.txt/figs"], "lies under notes.txt, a file"),
        ("bench_offline", ["--preset", "paper001-reduced", "--out", "notes.txt/b"],
         "lies under notes.txt, a file"),
        ("serl_curves", [".", "--plot", "notes.txt/c.png"], "lies under notes.txt, a file"),
        ("serl_curves", [".", "--plot", "curves"], "must end in .png, .pdf or .svg"),
        ("serl_curves", [".", "--target", "25"], "--target must be in 1..20"),
        ("bench_spiral", ["Bogus-v9"], "argument task: unknown task 'Bogus-v9'"),
        ("bench_spiral", ["InsertBench/USB-v1", "--episodes", "0"], "must be an integer >= 1"),
        ("bench_connectors", ["--dataset-task", "Bogus-v9"], "unknown task 'Bogus-v9'"),
        ("bench_agents", ["--device", "bogus"], "not a torch device: 'bogus'"),
        ("bench_throughput", ["--worlds", "1"], "a vector has 2 worlds or more, got '1'"),
        # numpy's "expected non-negative integer" traceback (bench18)
        ("bench_interval_coverage", ["--seed", "-1"], "argument --seed: must be an integer >= 0"),
        ("bench_kinematic_drift", ["--seed", "-1"], "argument --seed: must be an integer >= 0"),
    ],
)
def test_scripts_refuse_bad_arguments_in_one_line_before_any_work(
        capsys, monkeypatch, tmp_path, module, args, message):
    """Each was a traceback (FileExistsError, NotADirectoryError, ValueError, NameNotFound,
    RuntimeError), some after minutes of work; a target of 25 printed ">= 2/1 held"."""
    import importlib

    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("a file")
    code, err = _exit_message(capsys, monkeypatch, importlib.import_module(f"benchmark.{module}")
                              .main, *args)
    assert code == 2 and message in err.strip().splitlines()[-1], err  # after the usage
    assert "Traceback" not in err


def test_check_track_says_trains_refusal_in_one_line(capsys, monkeypatch):
    """`--steps 99999999999` was train's ValueError as a traceback (bench21)."""
    from benchmark import check_track

    code, err = _exit_message(capsys, monkeypatch, check_track.main, "--agent", "sac",
                              "--steps", "99999999999")
    assert code == "check_track: error: steps must be in [0, 1,000,000,000], got 99999999999"
    assert "Traceback" not in err


def test_script_descriptions_are_whole_sentences():
    """`--help` printed the docstring's first line: "... success of the"."""
    from benchmark.script_args import doc_summary

    assert doc_summary("One sentence\nover two lines.\n\nMore.") == "One sentence over two lines."


@pytest.mark.parametrize("connector", ["DT12", "Megablock", "Europlug", "NEMA15"])
def test_every_bench_spiral_variant_builds_on_paper_001s_connectors(connector):
    """The last variant's fixed 15 mm start was below DT12's and Megablock's lowest start (19
    and 16 mm), and it ended the documented Megablock run in a traceback after the others."""
    import gymnasium as gym

    from benchmark.bench_spiral import VARIANTS, variant_env

    task = f"InsertBench/Connector-{connector}-v1"
    for label, env_change, _ in VARIANTS:
        label, env_kwargs = variant_env(task, label, env_change)
        gym.make(task, **env_kwargs).close()
    assert "mm above seated (the lowest)" in label


def test_bench_offline_stages_are_written_whole_and_a_run_resumes_from_anywhere(
    monkeypatch, tmp_path,
):
    """A kill while the pretrained agent was saved (agent.json, the "done" mark, is written
    before the replay buffers) or while a stage's JSON was written left an --out that failed
    every rerun; and the same run from another directory, or a moved --out, was refused as
    "other settings" (the paths were compared as typed)."""
    import argparse

    import gymnasium as gym

    from agents.checkpoint import CheckpointMixin
    from benchmark import bench_offline
    from tests.standin_env import ENV_ID

    env = gym.make(ENV_ID)
    rows = 8
    dataset = {"obs": {k: np.zeros((rows, *s.shape), s.dtype)
                       for k, s in env.observation_space.spaces.items()},
               "next_obs": {k: np.zeros((rows, *s.shape), s.dtype)
                            for k, s in env.observation_space.spaces.items()},
               "action": np.zeros((rows, 3), np.float32), "reward": np.zeros(rows, np.float32),
               "terminated": np.zeros(rows, bool), "truncated": np.zeros(rows, bool)}
    config = {"hidden": (8, 8), "batch_size": 4, "pretrain_steps": 2}
    save = CheckpointMixin.save

    def killed_after_agent_json(self, path, *, include_replay=False):
        save(self, path)  # weights and agent.json, no replay buffers
        raise KeyboardInterrupt  # as a kill would leave it

    monkeypatch.setattr(CheckpointMixin, "save", killed_after_agent_json)
    with pytest.raises(KeyboardInterrupt):
        bench_offline._pretrained("iql", config, dataset, env, tmp_path, 0)
    assert not (tmp_path / "iql" / "pretrained").exists()  # not taken for done
    monkeypatch.setattr(CheckpointMixin, "save", save)
    path = bench_offline._pretrained("iql", config, dataset, env, tmp_path, 0)
    assert sorted(p.name for p in path.glob("replay_*.npz"))  # the rerun saved it whole
    for replay in path.glob("replay_*.npz"):  # as a kill mid-save left it before the fix:
        replay.unlink()  # agent.json without its buffers, and no pretrain.json yet
    (tmp_path / "iql" / "pretrain.json").unlink()
    path = bench_offline._pretrained("iql", config, dataset, env, tmp_path, 0)
    assert sorted(p.name for p in path.glob("replay_*.npz"))  # pretrained again, not "done"
    # A stage's JSON is written whole; a damaged one is named, not a JSONDecodeError.
    assert bench_offline._json(tmp_path / "stage.json", lambda: {"a": 1}) == {"a": 1}
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "stage.json").write_text('{"a": ')
    with pytest.raises(ValueError, match="stage.json is damaged"):
        bench_offline._json(tmp_path / "stage.json", lambda: {"a": 1})

    (tmp_path / "work" / "data").mkdir(parents=True)
    args = argparse.Namespace(paper="paper004", data=Path("data"), out=Path("out"), seed=0)
    monkeypatch.chdir(tmp_path / "work")
    bench_offline._check_args(Path("out"), args)
    monkeypatch.chdir(tmp_path)
    elsewhere = argparse.Namespace(paper="paper004", data=Path("work/data"),
                                   out=Path("work/out"), seed=0)
    bench_offline._check_args(Path("work/out"), elsewhere)  # the same run, typed otherwise
    (tmp_path / "work" / "out").rename(tmp_path / "moved")
    bench_offline._check_args(Path("moved"), elsewhere)  # a moved --out resumes
    with pytest.raises(SystemExit, match=r"other settings \(\['seed'\]\)"):
        bench_offline._check_args(Path("moved"), argparse.Namespace(
            paper="paper004", data=Path("work/data"), out=Path("moved"), seed=1))
    # A preset's data lies in <out>/data and moves with it.
    (tmp_path / "runs" / "a" / "data").mkdir(parents=True)
    preset_run = argparse.Namespace(paper="paper004", data=Path("runs/a/data"),
                                    out=Path("runs/a"), seed=0)
    bench_offline._check_args(Path("runs/a"), preset_run)
    (tmp_path / "runs" / "a").rename(tmp_path / "runs" / "b")
    bench_offline._check_args(Path("runs/b"), argparse.Namespace(
        paper="paper004", data=Path("runs/b/data"), out=Path("runs/b"), seed=0))


@pytest.mark.parametrize(("raised", "code", "message"), [
    (ValueError("dataset: action is not finite at row 154"), None,
     "error: dataset: action is not finite at row 154"),
    (KeyboardInterrupt(), 130, "interrupted (the same command resumes from the stages done)"),
])
def test_bench_offline_prints_a_refused_dataset_or_a_ctrl_c_in_one_line(
    capsys, monkeypatch, tmp_path, raised, code, message,
):
    """Both ended in tracebacks (29 lines for a Ctrl-C during pretraining)."""
    from benchmark import bench_offline

    def bench(args):
        raise raised

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "recipe.json").write_text('{"recipe": "paper004", "parts": []}')
    monkeypatch.setattr(bench_offline, "check_recipe", lambda data, paper: None)
    monkeypatch.setattr(bench_offline, "recipe_version", lambda data: "v1")
    monkeypatch.setattr(bench_offline, "bench_paper004", bench)
    exit_code, err = _exit_message(capsys, monkeypatch, bench_offline.main, "paper004",
                                   "--data", "data", "--out", "out")
    assert (exit_code == code if code else isinstance(exit_code, str)), exit_code
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_descent_swing_labels_a_speed_its_reference_limit_caps(capsys, monkeypatch):
    """USB-v0's 0.02 rows read "20 cm/s", where its 6 mm reference limit moves the TCP ~5.5 mm
    a step, as in its 0.01 rows (bench21)."""
    from benchmark import bench_descent_swing

    monkeypatch.setattr(bench_descent_swing, "measure_swing", lambda *args: (0.5, 0.3))
    monkeypatch.setattr(sys, "argv", ["bench", "--tasks", "USB-v0,USB-v1", "--scales", "0.02"])
    bench_descent_swing.main()
    out = capsys.readouterr().out
    assert "| USB-v0 | 0.02 | 6 cm/s (its reference limit) |" in out
    assert "| USB-v1 | 0.02 | 20 cm/s |" in out


@pytest.mark.parametrize("module", ["check_learning", "check_serl", "check_track"])
def test_a_run_another_process_writes_is_one_line(capsys, monkeypatch, tmp_path, module):
    """Another run writing --out (train's RunInProgress, a RuntimeError) was a traceback
    (diff29)."""
    import importlib
    import multiprocessing

    monkeypatch.chdir(tmp_path)
    held, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold_lock, args=(tmp_path / "busy", held, release))
    holder.start()
    try:
        assert held.wait(30)
        args = ["--out", "busy", "--steps", "10"] + (["--agent", "sac"] if module ==
                                                       "check_track" else [])
        code, err = _exit_message(capsys, monkeypatch,
                                  importlib.import_module(f"benchmark.{module}").main, *args)
    finally:
        release.set()
        holder.join(30)
    assert code and "another run is writing busy" in err, err
    assert "Traceback" not in err


def _hold_lock(folder, held, release) -> None:
    from benchmark.folder_lock import run_lock

    with run_lock(folder):
        held.set()
        release.wait(60)


def test_thread_rates_on_a_machine_without_idle_cores_are_warned(monkeypatch):
    """bench22: at load 4-7 on 2 cores SAC's 2-thread rate fell 90x in wall and CPU alike
    (OpenMP's threads spinning), and the docs called the CPU figure the update's cost."""
    import os

    from benchmark.bench_agents import oversubscribed

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (4.5, 4.0, 3.0))
    assert oversubscribed(2).startswith("load average 4.5 on 2 cores leaves fewer than 2 idle")
    assert oversubscribed(1) is None  # one thread waits for no other
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert oversubscribed(2) is None
