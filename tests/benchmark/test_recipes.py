"""Dataset recipes of papers 001 and 004: what they collect, the CLI from a relative --out,
resumption, the labelled dataset they load as, and meta-RL training on it through the runner."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import asdict

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.recipes import (
    PAPER001_STEPS,
    PAPER004_ENV,
    PAPER004_STEPS,
    VERSIONS,
    collect_recipe,
    load_recipe,
    paper004_connectors,
    recipe_connectors,
    recipe_parts,
    socket_offsets,
)
from benchmark.train import load_demos, make_base_policy, make_env, train


def test_recipes_follow_the_papers():
    p004 = recipe_parts("paper004")
    assert len(paper004_connectors()) == 11
    assert sorted({p.task_id for p in p004}) == list(range(11))
    demos = [p for p in p004 if p.is_demo]
    assert len(demos) == 11 and all(p.collect.demos and p.collect.episodes == 20 for p in demos)
    assert all(p.collect.noise > 0 for p in p004 if not p.is_demo)
    assert {p.collect.episodes for p in recipe_parts("paper004", "full") if not p.is_demo} == {500}
    p001 = recipe_parts("paper001")
    assert len(p001) == len({p.connector for p in p001}) >= 11
    for part in p001:
        assert part.collect.max_steps == 20 and part.collect.noise == 0.2
        assert part.collect.env_kwargs["obs_mode"] == "state+pixels"
    assert {p.connector for p in p001}.isdisjoint({"DT12", "Megablock", "NEMA15", "Europlug"})
    assert {p.collect.episodes for p in recipe_parts("paper001", "full")} == {1400}
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_parts("paper002")
    with pytest.raises(ValueError, match="scale"):
        recipe_parts("paper001", "huge")
    with pytest.raises(ValueError, match="not in recipe"):
        recipe_parts("paper004", connectors=["DT12"])


def test_recipes_take_every_task_version_of_the_catalog():
    """`dataset recipe --version v2` was refused when -v2 landed (issue 17): VERSIONS listed
    v0 and v1 only."""
    from envs.tasks import TASKS

    catalog = {t.rsplit("-", 1)[1] for t in TASKS if t.startswith("InsertBench/Connector-")}
    assert set(VERSIONS) == catalog
    for version in VERSIONS:
        for part in recipe_parts("paper001", version=version) + recipe_parts(
                "paper004", version=version):
            assert part.collect.task_id in TASKS and part.collect.task_id.endswith(f"-{version}")


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory):
    """paper004 on one task with one rollout, collected through the CLI from a relative --out."""
    root = tmp_path_factory.mktemp("recipe")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        args = ["dataset", "recipe", "paper004", "--out", "data", "--episodes", "1",
                "--connector", "USBA"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        files = sorted((root / "data").rglob("attempt_*.npz"))
        stamps = [f.stat().st_mtime_ns for f in files]
        again = CliRunner().invoke(app, args)  # resumes: nothing is collected twice
        assert again.exit_code == 0, again.output
        assert [f.stat().st_mtime_ns for f in files] == stamps
        bad = CliRunner().invoke(app, ["dataset", "recipe", "paper9", "--out", "x"])
        assert bad.exit_code != 0 and "unknown recipe" in bad.output
        assert "Traceback" not in bad.output
    return root / "data"


@pytest.mark.parametrize(("args", "message"), [
    (["--episodes", "3"], "(episodes 2 (asked: 3)); use another --out or delete it"),
    (["--episodes", "2", "--connector", "DSubDE9"],
     "(parts ['USBA'] (asked: ['USBA', 'DSubDE9']; --connector))"),
    (["--episodes", "2", "--version", "v0"], "(tasks ['InsertBench/Connector-USBA-v1'] (asked: "
                                             "['InsertBench/Connector-USBA-v0']; --version))"),
    (["--episodes", "2", "--seed", "5"], "(seed 0 (asked: 5))"),
])
def test_a_recipe_folder_of_other_settings_names_what_differs(tmp_path, monkeypatch, args,
                                                              message):
    """A rerun with another --episodes, --connector, --version or --seed was refused with "holds
    a different recipe collection" alone; it now names the option. Nothing is collected."""
    monkeypatch.chdir(tmp_path)
    parts = recipe_parts("paper001", episodes=2, connectors=["USBA"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "recipe.json").write_text(json.dumps({
        "recipe": "paper001", "scale": "small", "seed": 0, "episodes": 2,
        "parts": [{"folder": p.folder, "connector": p.connector, "task_id": p.task_id,
                   "is_demo": p.is_demo, "collect": asdict(p.collect)} for p in parts]}))
    result = CliRunner().invoke(app, ["dataset", "recipe", "paper001", "--out", "data",
                                      "--connector", "USBA", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert {p.name for p in (tmp_path / "data").iterdir()} - {"recipe.lock"} == {"recipe.json"}


def test_a_recipe_run_into_a_folder_another_is_writing_is_one_line(tmp_path, monkeypatch):
    """Two runs with other connectors into one new folder both found recipe.json absent, and
    the last to write it listed its own parts alone: the other's user, told to train on the
    folder, trained on the wrong connectors (data17). The folder is one run's at a time."""
    from benchmark.folder_lock import run_lock
    from benchmark.recipes import RECIPE_LOCK

    monkeypatch.chdir(tmp_path)
    with run_lock(tmp_path / "data", RECIPE_LOCK, "recipe collection"):
        result = CliRunner().invoke(app, ["dataset", "recipe", "paper004", "--out", "data",
                                          "--connector", "HDMI", "--episodes", "1"])
    assert result.exit_code == 1, result.output
    assert "another recipe collection is writing" in result.output, result.output
    assert not (tmp_path / "data" / "recipe.json").exists()


def test_a_recipe_collects_its_pinned_version_without_the_out_of_date_advice(tmp_path):
    """Each -v1 part printed Gymnasium's "out of date, consider upgrading to v2" twice (22 lines
    for paper004): the version is the recipe's choice (--version), not a stale ID typed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect_recipe("paper004", tmp_path / "data", episodes=1, connectors=["USBA"],
                       progress=False)
    assert not [w for w in caught if "out of date" in str(w.message)]


def test_recipe_loads_as_one_labelled_dataset(recipe_dir):
    data = load_demos(recipe_dir)  # what `insertbench train --demos DIR` reads
    description = json.loads((recipe_dir / "recipe.json").read_text())
    assert [p["folder"] for p in description["parts"]] == ["USBA-demos", "USBA-rollouts"]
    usba = paper004_connectors().index("USBA")
    assert set(np.unique(data["task_id"])) == {usba}
    assert data["is_demo"].any() and not data["is_demo"].all()
    assert len(data["action"]) == len(data["obs"]["tcp_pose"]) == len(data["task_id"])
    assert recipe_connectors(recipe_dir) == ["USBA"]
    demo_rows = data["is_demo"]
    assert data["reward"][demo_rows].sum() == 20  # 20 successful demonstrations
    assert load_recipe(recipe_dir)["action"].shape == data["action"].shape


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda parts: parts[1]["collect"].pop("task_id"), r"parts\[1\] collect is no collection's"),
    (lambda parts: parts[1]["collect"].update(task_id=5), r"parts\[1\] collect.task_id 5 is not"),
    (lambda parts: parts.clear(), "lists no parts"),
    (lambda parts: parts.__setitem__(0, 1), r"parts\[0\] is not a table with a 'collect'"),
    (lambda parts: parts[0].update(is_demo="no"), r"parts\[0\] is_demo 'no' is not true or"),
    (lambda parts: parts[1].update(task_id=10**30), r"parts\[1\] task_id 1000000000000000000"),
    (lambda parts: parts[0].update(folder="/elsewhere"), r"parts\[0\] folder '/elsewhere' is not"),
])
def test_a_damaged_recipe_description_is_one_line_naming_it(recipe_dir, tmp_path, edit,
                                                           problem):
    """data22: a part that is no table, without `collect` or with an out-of-range task_id
    ended in a TypeError, KeyError or OverflowError naming no file, is_demo "no" read as
    true, and a folder elsewhere was read in without a word."""
    import shutil

    copy = tmp_path / "recipe"
    shutil.copytree(recipe_dir, copy)
    description = json.loads((copy / "recipe.json").read_text())
    edit(description["parts"])
    (copy / "recipe.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"recipe\.json:? " + problem):
        load_demos(copy)


def test_an_interrupted_recipe_is_named_unfinished_not_a_download(recipe_dir, tmp_path,
                                                                    monkeypatch, capsys):
    """recipe.json is written before the first part: an interrupted `dataset recipe` gave
    `train --demos` Minari's "not found locally ... Use download=True", and bench_offline a
    FileNotFoundError traceback after writing its bench.json."""
    import shutil

    from benchmark import bench_offline

    partial = tmp_path / "partial"
    shutil.copytree(recipe_dir, partial)
    shutil.rmtree(partial / "USBA-rollouts")  # the part the interruption never reached
    with pytest.raises(ValueError, match=r"unfinished `insertbench dataset recipe` collection "
                                         r"\(1 parts not written, or written before images "
                                         r"were stored losslessly, e.g. USBA-rollouts\)"):
        load_demos(partial)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_offline", "paper004", "--data", "partial",
                                      "--out", "out"])
    with pytest.raises(SystemExit) as exited:
        bench_offline.main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "unfinished" in err.splitlines()[-1], err
    assert not (tmp_path / "out").exists()


def test_oda_trains_through_the_runner_and_adapts_on_the_target_task(recipe_dir, tmp_path):
    config = {"pretrain_steps": 5, "batch_size": 8, "actor_hidden": "16", "critic_hidden": "16",
              "context_hidden": "8", "context_size": 4, "batch_per_task": 4,
              "buffer_size": 500, "offline_buffer_size": 2000, "demo_buffer_size": 2000}
    env_kwargs = PAPER004_ENV | {"max_episode_steps": PAPER004_STEPS}
    result = train("InsertBench/Connector-USACPlug-v1", "oda", steps=10, config=config,
                   env_kwargs=env_kwargs, out_dir=tmp_path / "run", demos=recipe_dir,
                   eval_episodes=0, progress=False)
    agent = result.agent
    assert (tmp_path / "run" / "context.npz").is_file()
    assert len(agent.context) > 0 and len(agent.online) == len(agent.context) + 10  # demos too
    assert agent.offline.task_ids == [paper004_connectors().index("USBA")]


def test_awac_finetunes_with_the_target_tasks_demos_as_paper_004_does(recipe_dir, tmp_path):
    """Paper 004's AWAC baseline finetunes with the new task's demos in its buffer (5.2), as
    bench_offline gives them; `insertbench train --agent awac` gave it none, ODA its 20, and
    the two compared unevenly (agents19)."""
    config = {"pretrain_steps": 2, "batch_size": 8, "actor_hidden": "16", "critic_hidden": "16",
              "buffer_size": 5000}
    env_kwargs = PAPER004_ENV | {"max_episode_steps": PAPER004_STEPS}
    result = train("InsertBench/Connector-USACPlug-v1", "awac", steps=10, config=config,
                   env_kwargs=env_kwargs, out_dir=tmp_path / "run", demos=recipe_dir,
                   eval_episodes=0, progress=False)
    context = np.load(tmp_path / "run" / "context.npz")
    offline = len(load_recipe(recipe_dir)["reward"])
    assert len(result.agent.buffer) == offline + len(context["reward"]) + 10
    # A run from before: resumed without them, and said so (diff22).
    (tmp_path / "run" / "context.npz").unlink()
    with pytest.warns(UserWarning, match="trained awac without the target task's demonstrations"):
        train("InsertBench/Connector-USACPlug-v1", "awac", steps=20, config=config,
              env_kwargs=env_kwargs, out_dir=tmp_path / "run", demos=recipe_dir,
              eval_episodes=0, progress=False)
    # The runner's own demos would be the same 20 episodes twice in its buffer.
    with pytest.raises(ValueError, match="awac is given 20 demonstrations of the target task"):
        train("InsertBench/Connector-USACPlug-v1", "awac", steps=10, config=config,
              env_kwargs=env_kwargs, out_dir=tmp_path / "other", demo_episodes=20,
              eval_episodes=0, progress=False)


def test_socket_offsets_label_successful_episodes_from_their_seated_pose():
    # Two episodes: rows 0-2 succeed (seated at x = 3 mm, z = 25 mm), rows 3-4 time out.
    tcp = np.array([[0, 0, 0], [1, 0, 10], [2, 0, 20], [0, 0, 0], [0, 1, 5]], float) / 1000
    nxt = np.array([[1, 0, 10], [2, 0, 20], [3, 0, 25], [0, 1, 5], [0, 2, 9]], float) / 1000
    data = {"obs": {"tcp_pose": np.c_[tcp, np.zeros((5, 3))]},
            "next_obs": {"tcp_pose": np.c_[nxt, np.zeros((5, 3))]},
            "action": np.zeros((5, 3)), "terminated": np.array([0, 0, 1, 0, 0], bool),
            "truncated": np.array([0, 0, 0, 0, 1], bool),
            "is_success": np.array([0, 0, 1, 0, 0], bool)}
    offsets = socket_offsets(data)
    np.testing.assert_allclose(offsets[:3], np.array([[3, 0, 25], [2, 0, 15], [1, 0, 5]]) / 1000)
    assert np.isnan(offsets[3:]).all()


def test_offline_presets_drive_bench_offline_not_the_matrix(tmp_path, monkeypatch, capsys):
    from benchmark.bench_offline import main
    from benchmark.preset import load_offline_preset, offline_presets

    assert {"paper001", "paper001-reduced", "paper004", "paper004-reduced"} <= set(
        offline_presets())
    for name in offline_presets():
        preset = load_offline_preset(name)
        recipe_parts(preset["paper"], **{k: v for k, v in preset["recipe"].items()
                                         if k in ("scale", "episodes", "version")})
        assert (preset["recipe"]["scale"] == "small") == name.endswith("-reduced")
    for command in ("status", "run"):  # no "see `matrix ... --help`": it says nothing of them
        result = CliRunner().invoke(app, ["matrix", command, "paper004"])
        assert result.exit_code != 0 and "bench_offline --preset paper004" in result.output
        assert "--help" not in result.output, result.output

    monkeypatch.chdir(tmp_path)
    (tmp_path / "typo.toml").write_text('name = "t"\npaper = "paper004"\n[bench]\nepochs = 3\n')
    monkeypatch.setattr(sys, "argv", ["bench_offline", "--preset", "typo.toml", "--out", "out"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2 and "unknown [bench] keys ['epochs']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # Values of another type: episodes = 0 collected the scale's 20 rollouts per connector
    # (recorded as 0), a string of tasks ran as its letters, a recipe string was checked as its
    # letters, and a bad recipe value was blamed on --out.
    for table, line, message in (
            ("recipe", "episodes = 0", "[recipe] episodes must be an integer >= 1, got 0"),
            ("recipe", "episodes = -3", "[recipe] episodes must be an integer >= 1, got -3"),
            ("recipe", "episodes = true", "[recipe] episodes must be an integer >= 1, got True"),
            ("recipe", "scale = 1", "[recipe] scale must be a string, got 1"),
            ("bench", 'tasks = "USACPlug"', "[bench] tasks must be a non-empty list of task "
                                            "names, got 'USACPlug'"),
            ("bench", "pretrain_steps = 2.5", "[bench] pretrain_steps must be an integer"),
            (None, 'recipe = "small"', "recipe must be a table ([recipe]), got 'small'"),
            ("recipe", 'scale = "huge"', "bad.toml: [recipe] scale must be one of"),
            ("recipe", 'version = "v9"', "bad.toml: [recipe] version must be one of")):
        body = f"[{table}]\n{line}\n" if table else f"{line}\n"
        (tmp_path / "bad.toml").write_text(f'name = "t"\npaper = "paper004"\n{body}')
        monkeypatch.setattr(sys, "argv", ["bench_offline", "--preset", "bad.toml", "--out", "out"])
        with pytest.raises(SystemExit) as exited:
            main()
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after argparse's usage
        assert exited.value.code == 2 and message in err and "--out" not in err, err
        assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="episodes must be an integer in"):
        recipe_parts("paper004", "small", episodes=0)
    # --tasks with no names ran every task (stored as "tasks": [])
    monkeypatch.setattr(sys, "argv", ["bench_offline", "paper004", "--data", "data", "--out",
                                      "out", "--tasks"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2 and "--tasks: expected at least one argument" in \
        capsys.readouterr().err


def test_bench_paper001_runs_every_method_beside_the_paper_and_resumes(tmp_path, monkeypatch,
                                                                        capsys):
    """Plumbing of Tables I, II and IV on a tiny budget: LOTJ, SAC from vision (finetuned on
    LOTJ's classifier), Localize + searches and State-IQL on one unseen connector; a rerun reads
    every stage back instead of recomputing it."""
    from benchmark.bench_offline import main

    monkeypatch.chdir(tmp_path)
    collect_recipe("paper001", tmp_path / "data", episodes=2, connectors=["USBA"],
                   progress=False)
    argv = ["bench_offline", "paper001", "--data", "data", "--out", "out", "--tasks", "DT12",
            "--pretrain-steps", "2", "--batch-size", "8", "--eval-episodes", "1",
            "--online-trials", "1", "--classifier-episodes", "1"]
    monkeypatch.setattr(sys, "argv", argv + ["--methods", "lotj"])  # LOTJ alone first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main()
    # The recipe's -v1 tasks, made on purpose: no "out of date, consider upgrading" advice.
    assert not [w for w in caught if "out of date" in str(w.message)]
    alone = capsys.readouterr().out
    assert "DT12" in alone and "online > offline on" in alone and "SAC" not in alone
    # One of the recipe's training connectors is not paper 001's setting: it read as if it were.
    assert alone.startswith("note: --data data holds 1 of the ") and "not the paper's setting" \
        in alone.splitlines()[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bench.json", "iql",
                                                                     "report.txt"]
    lotj = json.loads((tmp_path / "out" / "iql" / "DT12.json").read_text())
    monkeypatch.setattr(sys, "argv", argv)  # then all methods resume into the same --out
    main()
    report = capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "iql" / "DT12.json").read_text()) == lotj
    assert "SAC            DT12       ours   0 -> 0   paper 0 -> 0" in report
    assert "on training connectors (in distribution), successes/1 at +-10 mm: USBA" in report
    assert "State-IQL      DT12" in report and "spiral_search  DT12" in report
    sac = json.loads((tmp_path / "out" / "sac" / "DT12.json").read_text())
    # 20 practice steps in trials that end where LOTJ's (barely trained) R_psi says success.
    assert 1 <= sac["finetune"]["training_episodes"] <= 20 and sac["online"]["episodes"] == 1
    saved = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.json")
             if p.name != "bench.json"}
    main()
    assert capsys.readouterr().out == report
    assert saved == {p: p.stat().st_mtime_ns for p in saved}

    from benchmark.bench_lotj_policy import finetune_check

    check = finetune_check("out/iql/pretrained", "DT12", "v1", trials=1, episodes=1, seed=0)
    # 20 practice steps in trials that end on R_psi's verdict, as bench_offline's LOTJ rows: on
    # the sparse env one 20-step trial ended on the time limit or the true success (bench24)
    assert 1 <= check["finetune"]["training_episodes"] <= 20
    assert {check["mean"], check["sampled"], check["finetuned"]} <= {0, 1}
    assert 0 < check["weights"]["effective_fraction"] <= 1
    control = finetune_check("out/iql/pretrained", "DT12", "v1", trials=1, episodes=1, seed=0,
                             online_fraction=0.0)  # the same trial, offline rows only
    assert control["finetune"] == check["finetune"] and control["mean"] == check["mean"]

    # The classifier-only mode trains LOTJ's R_psi exactly: same probabilities, same scores.
    from agents import load_agent
    from benchmark.bench_lotj_policy import classifier_check, classifier_data, train_classifier
    from benchmark.recipes import PAPER001_ENV

    probe = make_env("InsertBench/Connector-DT12-v1", PAPER001_ENV)
    alone = train_classifier(load_recipe(tmp_path / "data"), probe.observation_space,
                             probe.action_space, steps=2, batch_size=8, seed=0)
    data = classifier_data("DT12", "v1", episodes=1)
    np.testing.assert_array_equal(alone.success_probability(data["next_obs"]), load_agent(
        "out/iql/pretrained").success_probability(data["next_obs"]))
    scores = classifier_check(alone, "DT12", data)
    stored = json.loads((tmp_path / "out" / "iql" / "DT12.json").read_text())["classifier"]
    np.testing.assert_equal({k: scores[k] for k in stored}, stored)
    assert scores["false_positive_rate"] == 1 - scores["true_negative_rate"]

    from benchmark import bench_lotj_policy

    monkeypatch.setattr(sys, "argv", ["bench_lotj_policy", "--data", "data", "--classifier",
                                      "--steps", "2", "--batch-size", "8", "--episodes", "1",
                                      "--config", "classifier_color_jitter=0"])
    bench_lotj_policy.main()
    table = capsys.readouterr().out
    assert "2 steps of 8, seed 0, classifier_color_jitter=0:" in table
    assert "| DT12 (unseen) |" in table and "| XT60 (training) |" in table


def test_bench_lotj_policy_trains_the_actor_alone_and_measures_it_against_the_expert(tmp_path):
    from benchmark.bench_lotj_policy import closed_loop, train_policy
    from benchmark.recipes import PAPER001_ENV

    collect_recipe("paper001", tmp_path, episodes=2, connectors=["USBA"], progress=False)
    space = make_env("InsertBench/Connector-USBA-v1", PAPER001_ENV).observation_space
    policy = train_policy(load_recipe(tmp_path), space, "nll", True, steps=2, batch_size=8,
                          seed=0)
    row = closed_loop(policy, "USBA", "v1", episodes=1)
    assert row["successes"] in (0, 1) and len(row["action_error"]) == 3
    assert 0 <= row["lateral_mm"] < 100

    # the config's policy_color_jitter reaches the training images (default: IQLConfig's)
    import torch

    from agents.iql import IQLConfig

    def trained(config: IQLConfig | None) -> list:
        return list(train_policy(load_recipe(tmp_path), space, "mse", False, steps=2,
                                 batch_size=8, seed=0, config=config).parameters())

    def same(a: list, b: list) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))

    zero, jittered = trained(IQLConfig(policy_color_jitter=0.0)), trained(
        IQLConfig(policy_color_jitter=0.4))
    assert not same(zero, jittered) and same(jittered, trained(IQLConfig(policy_color_jitter=0.4)))
    assert same(trained(None), trained(IQLConfig()))


def test_roc_auc_ranks_positives_above_negatives_ties_half():
    from benchmark.bench_lotj_policy import roc_auc

    y = np.array([1, 1, 0, 0], bool)
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), y) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), y) == 0.0  # ranked backwards
    assert roc_auc(np.array([0.01, 0.02, 0.0, 0.0]), y) == 1.0  # all below 0.5: still ranked
    assert roc_auc(np.array([0.5, 0.9, 0.5, 0.1]), y) == 0.875  # one tie of four pairs
    assert np.isnan(roc_auc(np.array([0.3, 0.4]), np.array([0, 0], bool)))


def test_bench_paper001_overrides_lotjs_config_and_counts_its_classifier_successes(
    tmp_path, monkeypatch, capsys,
):
    """``--lotj-config KEY=VALUE`` reaches LOTJ's IQLConfig (bad items fail in one line before
    anything runs); the finetuning result counts the trials R_psi called successful; a run
    without the option keeps the settings file of runs from before it."""
    from agents import load_agent
    from benchmark.bench_offline import lotj_config, main, parse_lotj_config

    assert parse_lotj_config(["policy_online_rows=classifier_success", "beta=10"], 2, 8) == {
        "policy_online_rows": "classifier_success", "beta": "10"}
    assert lotj_config(2, 8, {"beta": "10"})["beta"] == "10"
    assert lotj_config(2, 8)["daib"] and "policy_online_rows" not in lotj_config(2, 8)
    monkeypatch.chdir(tmp_path)
    argv = ["bench_offline", "paper001", "--data", "data", "--tasks", "DT12", "--methods",
            "lotj", "--pretrain-steps", "2", "--batch-size", "8", "--eval-episodes", "1",
            "--online-trials", "2", "--classifier-episodes", "1"]
    for bad, message in (("policy_online_rows", "expects KEY=VALUE, got 'policy_online_rows'"),
                         ("policy_online_rows=some", "policy_online_rows must be one of"),
                         ("gamma=2", "gamma must be in (0, 1]"), ("typo=1", "unknown IQLConfig")):
        monkeypatch.setattr(sys, "argv", argv + ["--out", "bad", "--lotj-config", bad])
        with pytest.raises(SystemExit) as exited:
            main()
        err = capsys.readouterr().err
        assert exited.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()

    collect_recipe("paper001", tmp_path / "data", episodes=2, connectors=["USBA"],
                   progress=False)
    monkeypatch.setattr(sys, "argv", argv + ["--out", "si", "--lotj-config",
                                             "policy_online_rows=classifier_success"])
    main()
    report = capsys.readouterr().out
    assert load_agent("si/iql/pretrained").config.policy_online_rows == "classifier_success"
    finetune = json.loads((tmp_path / "si" / "iql" / "DT12.json").read_text())["finetune"]
    # 2 trials' worth of steps; a trial also ends where R_psi says success (untrained: often)
    assert 2 <= finetune["training_episodes"] <= 2 * PAPER001_STEPS
    assert 0 <= finetune["classifier_successes"] <= finetune["training_episodes"]
    assert f"R_psi's {finetune['classifier_successes']}" in report
    assert json.loads((tmp_path / "si" / "bench.json").read_text())["lotj_config"] == [
        "policy_online_rows=classifier_success"]
    monkeypatch.setattr(sys, "argv", argv + ["--out", "plain"])
    main()
    assert "lotj_config" not in json.loads((tmp_path / "plain" / "bench.json").read_text())
    assert load_agent("plain/iql/pretrained").config.policy_online_rows == "all"
    # the oracle control: the default stays R_psi, the option is named in the report
    assert load_agent("plain/iql/pretrained").config.online_reward == "classifier"
    assert "ORACLE" not in report + capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", argv + ["--out", "oracle", "--lotj-config",
                                             "online_reward=ground_truth"])
    main()
    assert "ORACLE CONTROL, not paper 001" in capsys.readouterr().out
    assert load_agent("oracle/iql/pretrained").config.online_reward == "ground_truth"


class _ScriptedLearner:
    """The task's P-controller behind the agent calls `_finetune` makes; records what it is told."""

    def __init__(self, env):
        self.policy, self.told = make_base_policy(env), []

    def reset(self, seed=None):
        pass

    def act(self, obs, deterministic=False):
        return self.policy(obs)

    def observe(self, transition):
        self.told.append((transition.reward, transition.terminated, transition.truncated))

    def update(self):
        return {}


def test_practice_on_a_learned_reward_ends_trials_where_the_classifier_says_not_the_env():
    """Paper 001's online practice ended each trial where the simulator's success ended the
    episode: the trial's end told the learner the true success R_psi was meant to replace."""
    from benchmark.bench_offline import _finetune, _practice_env

    args = argparse.Namespace(version="v1")
    kwargs = {"max_episode_steps": 20, "init_offset_mm": [0.0, 0.0]}
    sparse = make_env("InsertBench/Connector-USBA-v1", kwargs)
    with pytest.raises(ValueError, match="does not end episodes on the true success"):
        _finetune(sparse, _ScriptedLearner(sparse), 1, seed=0, learned_success=lambda o: False)
    practice = _practice_env("USBA", kwargs, args)
    learner = _ScriptedLearner(practice)
    result = _finetune(practice, learner, 40, seed=0, learned_success=lambda obs: False)
    # The controller mates the plug in ~13 steps, yet every trial runs to its 20-step limit.
    assert result == {"training_episodes": 2, "training_successes": 2}
    assert [t for t in learner.told if t[1]] == [] and sum(t[2] for t in learner.told) == 2
    assert {t[0] for t in learner.told} == {0.0}
    learner = _ScriptedLearner(practice)
    _finetune(practice, learner, 3, seed=0, learned_success=lambda obs: True)
    assert learner.told == [(1.0, True, False)] * 3  # each step a trial the classifier ended


def test_bench_offline_refuses_other_data_under_the_same_folder_name(recipe_dir, tmp_path):
    """bench.json named --data by its folder alone: data collected again there (v0 instead of
    v1) was benchmarked with the old data's pretrained agents, without a word."""
    import shutil

    from benchmark.bench_offline import _check_args

    data = tmp_path / "data"
    shutil.copytree(recipe_dir, data)
    args = argparse.Namespace(paper="paper004", data=data, out=tmp_path / "out", seed=0)
    (tmp_path / "out").mkdir()
    _check_args(tmp_path / "out", args)
    _check_args(tmp_path / "out", args)  # the same data resumes
    recipe = json.loads((data / "recipe.json").read_text())
    (data / "recipe.json").write_text(json.dumps(recipe | {"seed": 7}))
    with pytest.raises(SystemExit, match=r"other settings \(\['data_recipe'\]\)"):
        _check_args(tmp_path / "out", args)


def test_a_recipe_part_that_holds_another_collection_is_refused(recipe_dir, tmp_path):
    """A part folder swapped for another collection (other version, noise, episodes) loaded
    under the recipe's label: nothing compared it with recipe.json."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(recipe_dir, data)
    part = data / "USBA-rollouts"
    settings = json.loads((part / "collect_config.json").read_text())
    (part / "collect_config.json").write_text(json.dumps(settings | {"noise": 1.0}))
    with pytest.raises(ValueError, match=r"USBA-rollouts holds another collection than "
                                         r"recipe.json lists \(differs in \['noise'\]\)"):
        load_recipe(data)


def test_a_recipe_made_by_another_simulator_or_expert_is_said_where_it_trains(
        recipe_dir, tmp_path, monkeypatch):
    """A recipe's parts record their task version key and expert (dynamics.json), but nothing
    read them back: a recipe collected under an older commit trained `train --demos` without
    a word (a collection's folder warned) and passed bench_offline's check."""
    import shutil

    from benchmark.recipes import check_recipe, parts_made_otherwise
    from benchmark.train import check_demos_folder
    from envs import insertion_env

    data = tmp_path / "data"
    shutil.copytree(recipe_dir, data)
    check_recipe(data, "paper004")
    assert parts_made_otherwise(data) == []
    dynamics = data / "USBA-rollouts" / "dynamics.json"
    dynamics.write_text(json.dumps(json.loads(dynamics.read_text())
                                   | {"task_version_key": "0" * 64}))
    with pytest.raises(ValueError, match=r"USBA-rollouts was collected under task version key "
                                         r"000000000000, .*; collect the recipe again"):
        check_recipe(data, "paper004")
    task = "InsertBench/Connector-USACPlug-v1"
    with pytest.warns(UserWarning, match="USBA-rollouts was collected under task version key "
                                         "000000000000.*episodes of another simulator"):
        check_demos_folder(data, task, PAPER004_ENV)
    shutil.rmtree(data)
    shutil.copytree(recipe_dir, data)
    monkeypatch.setattr(insertion_env, "P_CONTROLLER_KP", np.array([0.5, 0.5, 0.1]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_demos_folder(data, task, PAPER004_ENV)
    said = [str(w.message) for w in caught if "another expert" in str(w.message)]
    assert len(said) == 2, said  # both parts: the demos and the rollouts
