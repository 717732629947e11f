"""Offline dataset collection: Minari round trip, resume after an interruption, determinism,
demonstrations, and the `insertbench dataset collect` command."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.datasets import (
    CollectConfig,
    collect,
    collect_episodes,
    load,
    read_collect_config,
)

TASK = "InsertBench/Connector-DT12-v0"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _arrays(dataset) -> list[np.ndarray]:
    out = []
    for ep in dataset.iterate_episodes():
        out += [ep.actions, ep.rewards, ep.terminations, ep.truncations]
        out += [ep.observations[k] for k in sorted(ep.observations)]
    return out


def test_minari_round_trip(tmp_path):
    config = CollectConfig(TASK, episodes=6, noise=0.2, seed=1)
    collect(config, tmp_path, progress=False)
    dataset = load(config, tmp_path)
    assert dataset.total_episodes == 6
    assert set(dataset.observation_space.spaces) == {"tcp_pose", "tcp_vel", "wrench"}
    for ep in dataset.iterate_episodes():
        steps = len(ep.actions)
        assert 1 <= steps <= config.max_steps
        assert ep.observations["tcp_pose"].shape == (steps + 1, 6)
        assert np.all(np.abs(ep.actions) <= 1.0)
        assert set(np.unique(ep.rewards)) <= {0.0, 1.0}  # sparse
        # An episode ends on success (terminated) or after max_steps (truncated).
        assert ep.terminations[-1] or (ep.truncations[-1] and steps == config.max_steps)
        assert ep.terminations[-1] == bool(ep.infos["is_success"][-1])
    # Built as gym.make builds it: the task's identity check and our env checker, not
    # Gymnasium's passive one around a bare make_task_env.
    # What the episodes were made under, in the dataset itself (beside it only, two experts'
    # datasets differed in their step count alone and minari.combine_datasets merged them).
    from envs.version_key import task_version_key

    description = dataset.storage.metadata["description"]
    assert task_version_key(TASK, {}) in description and "p_controller_kp" in description
    recovered = dataset.recover_environment()
    assert recovered.spec.id == TASK
    assert recovered.spec.entry_point == gym.spec(TASK).entry_point
    assert str(recovered) == str(gym.make(TASK, max_episode_steps=config.max_steps))


def test_noise_replaces_actions_with_probability(tmp_path):
    clean = CollectConfig(TASK, episodes=3, noise=0.0)
    noisy = CollectConfig(TASK, episodes=3, noise=1.0)
    collect(clean, tmp_path / "a", progress=False)
    collect(noisy, tmp_path / "b", progress=False)
    a, b = load(clean, tmp_path / "a"), load(noisy, tmp_path / "b")
    assert all(ep.terminations[-1] for ep in a.iterate_episodes())  # the expert inserts
    assert not any(ep.terminations[-1] for ep in b.iterate_episodes())  # random flailing


def test_resume_gives_the_same_dataset_as_one_run(tmp_path):
    config = CollectConfig(TASK, episodes=8, seed=4)
    whole = tmp_path / "whole"
    collect(config, whole, progress=False)
    expected = _arrays(load(config, whole))

    # An interrupted run: some finished attempts on disk, a stale temporary file, no dataset.
    part = tmp_path / "part"
    files = collect_episodes(config, part, progress=False)
    for path in files[3:]:
        path.unlink()
    (part / "episodes" / "attempt_000003.tmp.npz").write_bytes(b"partial")
    shutil.rmtree(part / "minari", ignore_errors=True)
    collect(config, part, progress=False)
    got = _arrays(load(config, part))
    assert len(got) == len(expected)
    for x, y in zip(got, expected, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_rerun_rebuilds_a_minari_dataset_whose_build_was_killed(tmp_path):
    """Killed while Minari wrote it (data folder made, metadata.json not yet), the dataset is
    not listed by Minari, which still refused to write over it: every rerun failed with
    "A Minari dataset with ID ... already exists and it cannot be overridden"."""
    config = CollectConfig("InsertBench/USB-v0", episodes=2, max_steps=3)
    collect(config, tmp_path, progress=False)
    (tmp_path / "minari" / config.minari_id / "data" / "metadata.json").unlink()
    assert collect(config, tmp_path, progress=False).total_episodes == 2
    assert load(config, tmp_path).total_episodes == 2


@pytest.mark.parametrize("grayscale", [False, True])
def test_images_are_stored_as_the_env_rendered_them(tmp_path, grayscale):
    """Minari JPEG-encodes images by default: every frame agents pretrained on differed from
    the render (mean 6 of 255 per pixel, up to 199), and a grayscale camera's (H, W, 1) frames
    failed to encode after the whole collection."""
    config = CollectConfig(TASK, episodes=2, max_steps=4, env_kwargs={  # Minari encodes >= 32 px
        "obs_mode": "state+pixels", "image_size": 32, "grayscale": grayscale})
    collect(config, tmp_path, progress=False)
    episodes = sorted((tmp_path / "episodes").glob("*.npz"))
    rendered = [np.load(f)["obs/wrist"] for f in episodes][:2]
    loaded = [ep.observations["wrist"] for ep in load(config, tmp_path).iterate_episodes()]
    assert loaded[0].shape[-1] == (1 if grayscale else 3)
    for got, want in zip(loaded, rendered, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_finished_collections_rerun_leaves_its_dataset_alone(tmp_path):
    """It rebuilt the dataset on every rerun (bench_offline --preset reruns each recipe), and
    every reader meanwhile was refused it as "an unfinished collection"."""
    config = CollectConfig("InsertBench/USB-v0", episodes=2, max_steps=3)
    collect(config, tmp_path, progress=False)
    built = {p: p.stat().st_mtime_ns for p in (tmp_path / "minari").rglob("*") if p.is_file()}
    assert collect(config, tmp_path, progress=False).total_episodes == 2
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "minari").rglob("*")
            if p.is_file()} == built


def test_a_collection_built_before_lossless_images_is_rebuilt_by_its_rerun(tmp_path):
    """A dataset without the build marker (a build killed after Minari's metadata.json, which
    it writes first, or one with JPEG images) is unfinished until the rerun rebuilds it."""
    from benchmark.datasets import BUILT_JSON, read_finished_collection

    config = CollectConfig("InsertBench/USB-v0", episodes=2, max_steps=3)
    collect(config, tmp_path, progress=False)
    read_finished_collection(tmp_path)
    (tmp_path / BUILT_JSON).unlink()
    with pytest.raises(ValueError, match="holds an unfinished collection .* rerun the "):
        read_finished_collection(tmp_path)
    collect(config, tmp_path, progress=False)
    assert read_finished_collection(tmp_path) == config


def test_a_rerun_with_more_episodes_extends_the_collection_as_one_run_would(tmp_path):
    """`--episodes 5` after `--episodes 3` in the same folder was refused ("other settings"),
    although the first three episodes are exactly those of a five-episode collection."""
    collect(CollectConfig(TASK, episodes=3, seed=2), tmp_path / "grown", progress=False)
    grown = collect(CollectConfig(TASK, episodes=5, seed=2), tmp_path / "grown", progress=False)
    whole = collect(CollectConfig(TASK, episodes=5, seed=2), tmp_path / "whole", progress=False)
    assert grown.total_episodes == 5
    for x, y in zip(_arrays(grown), _arrays(whole), strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.warns(UserWarning, match="held 5 episodes"):
        fewer = collect(CollectConfig(TASK, episodes=2, seed=2), tmp_path / "grown",
                        progress=False)
    for x, y in zip(_arrays(fewer), _arrays(whole)[: len(_arrays(fewer))], strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_damaged_episode_or_settings_file_is_named_on_the_rerun(tmp_path):
    """A damaged episode file ended a resumed run with a bare `BadZipFile: File is not a zip
    file` or `KeyError: 'actions is not a file in the archive'`, a damaged
    collect_config.json with `Expecting value: line 1 column 1`, naming no file."""
    config = CollectConfig("InsertBench/USB-v0", episodes=3, max_steps=3)
    files = collect_episodes(config, tmp_path, progress=False)
    good = files[1].read_bytes()
    files[1].write_bytes(good[:100])
    with pytest.raises(ValueError, match=r"attempt_000001\.npz is damaged .*delete it and rerun"):
        collect(config, tmp_path, progress=False)
    with np.load(files[0]) as ep:  # readable, but without its actions
        np.savez(files[1], **{k: ep[k] for k in ep.files if k != "actions"})
    with pytest.raises(ValueError, match=r"attempt_000001\.npz is damaged"):
        collect(config, tmp_path, progress=False)
    files[1].unlink()  # as the message says: the rerun collects it again
    assert collect(config, tmp_path, progress=False).total_episodes == 3
    settings = tmp_path / "collect_config.json"
    for text in ("", "[1, 2]"):
        settings.write_text(text)
        with pytest.raises(ValueError, match="collect_config.json is not a collection's settings"):
            collect_episodes(config, tmp_path, progress=False)


@pytest.mark.parametrize(("field", "value", "message"), [
    # NaN collected nothing (`len(kept) < nan` is False) and 2.5 collected 3 episodes.
    ("episodes", float("nan"), "episodes must be an integer in [1, 100,000], got nan"),
    ("episodes", 2.5, "episodes must be an integer in [1, 100,000], got 2.5"),
    ("max_steps", float("nan"), "max_steps must be an integer in [1, 1,000,000], got nan"),
    ("max_steps", 10**11, "max_steps must be an integer in [1, 1,000,000], got 100000000000"),
    ("seed", 1.5, "seed must be an integer >= 0, got 1.5"),
    ("noise", "0.2", "noise must be a finite number in [0, 1] (a probability), got '0.2'"),
    ("max_attempts_per_demo", 0, "max_attempts_per_demo must be an integer >= 1, got 0"),
    ("env_kwargs", None, "env_kwargs must be a dict of gym.make kwargs, got None"),
])
def test_collect_config_refuses_numbers_that_are_not_counts(tmp_path, field, value, message):
    settings = {"task_id": TASK, "episodes": 2, field: value}
    with pytest.raises(ValueError, match=re.escape(message)):
        CollectConfig(**settings)
    # The same settings in a collection's file (JSON reads NaN) name the file.
    (tmp_path / "collect_config.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="collect_config.json is not a collection's settings"):
        read_collect_config(tmp_path)


def test_resume_refuses_a_different_config(tmp_path):
    collect_episodes(CollectConfig(TASK, episodes=2), tmp_path, progress=False)
    # The message names the field that differs, not the whole stored config.
    with pytest.raises(ValueError, match=r"other settings: noise 0\.2 \(asked: 0\.5\); use"):
        collect_episodes(CollectConfig(TASK, episodes=2, noise=0.5), tmp_path, progress=False)


def test_demos_keep_only_successes(tmp_path):
    config = CollectConfig(
        "InsertBench/ConnectorFamily-v0",
        episodes=5,
        noise=0.3,
        demos=True,
        env_kwargs={"split": "test"},
    )
    collect(config, tmp_path, progress=False)
    dataset = load(config, tmp_path)
    assert dataset.total_episodes == 5
    assert all(ep.rewards.sum() == 1.0 for ep in dataset.iterate_episodes())
    # Each episode names the member connector it was drawn (one per episode, every step).
    from envs.catalog import CATALOG

    for ep in dataset.iterate_episodes():
        (name,) = set(ep.infos["connector"])
        assert len(ep.infos["connector"]) == len(ep.actions) + 1
        assert CATALOG[name.decode()].split == "test"
    attempts = sorted((tmp_path / "episodes").glob("attempt_*.npz"))
    assert len(attempts) >= 5


def test_cli_collect_with_a_relative_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "dataset", "collect", "--task", "InsertBench/Connector-USBC-v0", "--episodes", "3",
            "--noise", "0.2", "--demos", "--out", "outputs/usbc", "--max-steps", "25",
            "--env", "goal_noise_mm=0.5",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "insertbench/connector-usbc-demos-v0: 3 episodes, " in result.output  # 3 distinct
    # Noiseless v0: 2 copies of one episode were printed as 2 episodes (data24)
    result = CliRunner().invoke(app, ["dataset", "collect", "--task",
                                      "InsertBench/Connector-USBC-v0", "--episodes", "2",
                                      "--noise", "0", "--demos", "--out", "same", "--max-steps",
                                      "25"])
    assert "-demos-v0: 2 episodes (1 distinct), " in result.output, result.output
    config = CollectConfig("InsertBench/Connector-USBC-v0", episodes=3, demos=True, max_steps=25,
                           env_kwargs={"goal_noise_mm": 0.5})
    assert load(config, "outputs/usbc").total_episodes == 3
    monkeypatch.setenv("MINARI_DATASETS_PATH", "outputs/usbc/minari")  # relative, as documented
    assert minari.load_dataset(config.minari_id).total_episodes == 3


def test_cli_collect_gives_its_advice_once_and_a_hint_the_shell_reads(tmp_path):
    """The out-of-date advice came three times (each env the collection made gave it), and the
    closing hint's path, unquoted, broke at a space when pasted into a shell."""
    import subprocess
    import sys

    (tmp_path / "my data").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "benchmark.entry", "dataset", "collect", "--task",
         "InsertBench/Connector-DT12-v1", "--episodes", "1", "--out", "out dir",
         "--no-progress"],
        cwd=tmp_path / "my data", capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("is out of date") == 1, done.stderr
    assert "it/s" not in done.stderr  # --no-progress, as train, rollout and matrix run take
    where = shlex.split(done.stdout.split("load with ")[1])[0]
    assert where == f"MINARI_DATASETS_PATH={tmp_path / 'my data' / 'out dir' / 'minari'}"


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset-id", "bad/id/x"], "--dataset-id: dataset_id must look like namespace/name-v0"),
    (["--dataset-id", "dt12"], "--dataset-id: dataset_id must look like namespace/name-v0"),
    (["--seed", "-1"], "'--seed': Input should be greater than or equal to 0"),
    # Were exit 1: Gymnasium's NameNotFound, and "make() got multiple values for keyword
    # argument 'max_episode_steps'".
    (["--task", "InsertBench/Nope-v0"], "--task: unknown task 'InsertBench/Nope-v0'"),
    (["--env", "max_episode_steps=5"], "--max-steps sets the episode length"),
    # Named --dataset-id; 10^11 episodes ran (an ETA of 130,000 hours).
    (["--max-steps", "99999999999"], "--max-steps: max_steps must be an integer in [1,"),
    (["--episodes", "99999999999"], "--episodes: episodes must be an integer in [1, 100,000]"),
])
def test_cli_collect_refuses_a_bad_id_or_seed_before_collecting(tmp_path, monkeypatch, capsys,
                                                                args, message):
    """Both failed only after the episodes were run: a bare TypeError from Minari's int(None),
    a ValueError "expected non-negative integer" from NumPy (review session). They are usage
    errors (exit 2; the id and the seed were exit 1)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:  # the installed script's call: errors are one line
        app(["dataset", "collect", "--task", "InsertBench/Connector-DT12-v0", "--episodes", "1",
             "--out", "d", *args])
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "d").exists()


def test_cli_collect_after_a_bad_env_kwarg_accepts_the_corrected_rerun(tmp_path, monkeypatch,
                                                                        capsys):
    """A typo in --env (or --task) used to leave d/collect_config.json behind, so the corrected
    command was refused: "d holds a collection made with other settings"."""
    monkeypatch.chdir(tmp_path)
    command = ["dataset", "collect", "--task", "InsertBench/USB-v0", "--episodes", "1",
               "--max-steps", "2", "--out", "d"]
    with pytest.raises(SystemExit) as stop:
        app([*command, "--env", "goal_noise_mm=abc"])
    err = capsys.readouterr().err  # a usage error, as in `train`: it was "ValueError: ...", exit 1
    assert stop.value.code == 2 and "Invalid value: goal_noise_mm" in err, err
    assert not (tmp_path / "d" / "collect_config.json").exists()
    with pytest.raises(SystemExit) as stop:
        app([*command, "--env", "goal_noise_mm=1.0"])
    assert stop.value.code == 0, capsys.readouterr().err


def test_cli_collect_into_another_collections_folder_is_one_usage_line(tmp_path, monkeypatch,
                                                                        capsys):
    """It was "ValueError: d holds a collection made with other settings ..." with exit 1 (an
    internal error), where `dataset recipe` says the same with exit 2."""
    monkeypatch.chdir(tmp_path)
    command = ["dataset", "collect", "--task", "InsertBench/USB-v0", "--episodes", "1",
               "--max-steps", "2", "--out", "d"]
    app_run = CliRunner().invoke(app, command)
    assert app_run.exit_code == 0, app_run.output
    with pytest.raises(SystemExit) as stop:
        app([*command, "--seed", "3"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1, lines
    assert "d holds a collection made with other settings: seed 0 (asked: 3)" in lines[0], lines


def test_a_damaged_minari_file_is_named_when_training_on_it(tmp_path):
    """A cut-off main_data.hdf5 was h5py's OSError "Unable to synchronously open file" (exit 1),
    after the run directory was made."""
    from benchmark.train import load_demos

    config = CollectConfig("InsertBench/USB-v0", episodes=1, max_steps=2)
    collect(config, tmp_path, progress=False)
    (data,) = (tmp_path / "minari").rglob("main_data.hdf5")
    data.write_bytes(data.read_bytes()[:100])
    # Its recorded SHA-256 finds it first (data23); a marker without one, the reading.
    with pytest.raises(ValueError, match="changed since it was built .* rerun the"):
        load_demos(tmp_path)
    built = tmp_path / "minari_built.json"
    marker = json.loads(built.read_text())
    built.write_text(json.dumps({k: v for k, v in marker.items() if k != "data_sha256"}))
    with pytest.raises(ValueError, match="holds a Minari dataset that is not readable .* "
                                         "rerunning the"):
        load_demos(tmp_path)
    collect(config, tmp_path, progress=False)  # as the message says
    assert len(load_demos(tmp_path)["action"]) == 2
    # Settings edited after the build (noise 0 on a noisy collection passed it to BC as
    # demonstrations, without the warning; data24)
    settings = tmp_path / "collect_config.json"
    original = settings.read_text()
    settings.write_text(json.dumps(json.loads(original) | {"noise": 0.0}))
    with pytest.raises(ValueError, match="or its collect_config.json changed since it was built"):
        load_demos(tmp_path)
    settings.write_text(original)
    # A zeroed block inside it (h5py's KeyError "bad object header"), a cut-off metadata.json
    # (Minari's JSONDecodeError): both named no file (review).
    (metadata,) = (tmp_path / "minari").rglob("metadata.json")
    metadata.write_text(metadata.read_text()[:100])
    with pytest.raises(ValueError, match="changed since it was built"):
        load_demos(tmp_path)
    collect(config, tmp_path, progress=False)
    size = data.stat().st_size
    with open(data, "r+b") as file:
        file.seek(size // 2)
        file.write(bytes(4096))
    with pytest.raises(ValueError, match="changed since it was built"):
        load_demos(tmp_path)


def test_an_extension_killed_before_its_dataset_leaves_the_folder_unfinished(tmp_path,
                                                                            monkeypatch):
    """A rerun with more episodes, killed while collecting, left the new settings beside the
    old dataset's "built" marker: the folder read as a finished 2000-episode collection and
    trained on its 3 episodes."""
    from benchmark import datasets

    collect(CollectConfig(TASK, episodes=3, seed=2), tmp_path, progress=False)
    bigger = CollectConfig(TASK, episodes=2000, seed=2)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "run_episode", killed)
    with pytest.raises(KeyboardInterrupt):
        collect(bigger, tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds an unfinished collection"):
        datasets.read_finished_collection(tmp_path)


def test_a_collection_is_not_extended_under_other_dynamics(tmp_path, monkeypatch):
    """No version was recorded: a resume after a timestep change mixed two simulators'
    episodes in one dataset."""
    from benchmark import datasets

    collect(CollectConfig(TASK, episodes=2, seed=3), tmp_path, progress=False)
    recorded = json.loads((tmp_path / datasets.DYNAMICS_JSON).read_text())
    assert len(recorded["task_version_key"]) == 64
    monkeypatch.setattr(datasets, "_dynamics_key", lambda config: "f" * 64)
    assert datasets.collection_dynamics_differ(tmp_path, read_collect_config(tmp_path))
    with pytest.raises(ValueError, match="collected under task version key .* collect into"):
        collect(CollectConfig(TASK, episodes=4, seed=3), tmp_path, progress=False)


def test_a_family_collection_begun_without_connector_names_extends(tmp_path):
    """Episodes collected before `info/connector` existed lack it: an extension builds the
    dataset from the info entries every episode has (Minari needs one set of keys)."""
    config = CollectConfig("InsertBench/ConnectorFamily-v0", episodes=2, noise=0.0,
                           env_kwargs={"split": "test"})
    collect(config, tmp_path, progress=False)
    first = tmp_path / "episodes" / "attempt_000000.npz"
    with np.load(first) as stored:
        kept = {k: stored[k] for k in stored.files if k != "info/connector"}
    np.savez(first, **kept)
    bigger = CollectConfig(config.task_id, episodes=3, noise=0.0, env_kwargs={"split": "test"})
    collect(bigger, tmp_path, progress=False)
    dataset = load(bigger, tmp_path)
    assert dataset.total_episodes == 3
    assert all("connector" not in ep.infos and "is_success" in ep.infos
               for ep in dataset.iterate_episodes())


def test_a_rerun_with_fewer_episodes_says_what_it_leaves_out(tmp_path):
    """It rebuilt a smaller dataset without a word (review)."""
    collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path, progress=False)
    with pytest.warns(UserWarning, match=r"held 3 episodes: its dataset is rebuilt from the "
                                         r"first 2 .* --episodes 3 builds them in again"):
        assert collect(CollectConfig(TASK, episodes=2, max_steps=3), tmp_path,
                       progress=False).total_episodes == 2


def test_a_rebuild_killed_midway_leaves_the_last_dataset_whole(tmp_path, monkeypatch):
    """Built in place, a rerun's rebuild first deleted the finished dataset: killed while
    Minari wrote, minari.load_dataset read the folder as 0 episodes (review)."""
    config = CollectConfig(TASK, episodes=3, max_steps=5)
    collect(config, tmp_path, progress=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", killed)
    more = CollectConfig(TASK, episodes=4, max_steps=5)  # a rerun that extends it rebuilds
    with pytest.raises(KeyboardInterrupt):
        collect(more, tmp_path, progress=False)
    assert load(config, tmp_path).total_episodes == 3  # Minari's own loader: the last build
    monkeypatch.undo()
    assert collect(more, tmp_path, progress=False).total_episodes == 4
    assert not (tmp_path / "minari.building").exists()


def test_a_second_collection_into_one_folder_is_refused_while_the_first_writes(
        tmp_path, monkeypatch):
    """Two collections into one --out renamed each other's episode files away (one ended in
    FileNotFoundError) or built one dataset twice over (review)."""
    from benchmark.datasets import COLLECT_LOCK
    from benchmark.folder_lock import RunInProgress, run_lock

    config = CollectConfig(TASK, episodes=1, max_steps=3)
    collect(config, tmp_path / "out", progress=False)
    with run_lock(tmp_path / "out", COLLECT_LOCK, "collection"):  # a rerun, extending it
        with pytest.raises(RunInProgress, match="another collection is writing"):
            collect(config, tmp_path / "out", progress=False)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, ["dataset", "collect", "--task", TASK, "--episodes",
                                          "1", "--max-steps", "3", "--out", "out"])
        assert result.exit_code == 1 and "another collection is writing out" in result.stderr
        assert "Usage" not in result.stderr  # not a bad value: no usage text
        # ... also on a fresh folder, where the lock is the only file (it read as "other
        # files": a usage error, and a stale lock refused every rerun).
        with run_lock(tmp_path / "fresh", COLLECT_LOCK, "collection"):
            result = CliRunner().invoke(app, ["dataset", "collect", "--task", TASK,
                                              "--episodes", "1", "--out", "fresh"])
            assert result.exit_code == 1 and "another collection is writing fresh" in \
                result.stderr, result.output
    (tmp_path / "fresh").mkdir(exist_ok=True)
    (tmp_path / "fresh" / COLLECT_LOCK).touch()  # a stale lock, its collection killed
    result = CliRunner().invoke(app, ["dataset", "collect", "--task", TASK, "--episodes", "1",
                                      "--max-steps", "3", "--out", "fresh"])
    assert result.exit_code == 0, result.output
    # Killed between its dynamics and its settings (written in that order until 2026-12-07):
    # "holds other files and no collection", and the folder could not be resumed (data19).
    from benchmark.datasets import DYNAMICS_JSON

    (tmp_path / "killed").mkdir()
    for name in (COLLECT_LOCK, DYNAMICS_JSON):
        (tmp_path / "killed" / name).write_bytes((tmp_path / "fresh" / name).read_bytes())
    result = CliRunner().invoke(app, ["dataset", "collect", "--task", TASK, "--episodes", "1",
                                      "--max-steps", "3", "--out", "killed"])
    assert result.exit_code == 0, result.output
    # Another task's killed collection is refused, and the refusal writes no settings there:
    # they blocked that collection's own resume (diff24).
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / DYNAMICS_JSON).write_text(json.dumps(
        {"task_version_key": "0" * 64, "expert": None}))
    result = CliRunner().invoke(app, ["dataset", "collect", "--task", TASK, "--episodes", "1",
                                      "--max-steps", "3", "--out", "theirs"])
    assert result.exit_code == 2 and "collected under task version key 000000000000" in \
        " ".join(result.output.split()), result.output
    assert sorted(p.name for p in (tmp_path / "theirs").iterdir()) == [COLLECT_LOCK,
                                                                      DYNAMICS_JSON]


def test_a_collection_is_not_extended_by_another_expert(tmp_path, monkeypatch):
    """The P-controller's gains are no part of the task's version key: a resume under changed
    ones mixed two experts' episodes in one dataset (review)."""
    from envs import insertion_env

    collect(CollectConfig(TASK, episodes=1, max_steps=3), tmp_path, progress=False)
    monkeypatch.setattr(insertion_env, "P_CONTROLLER_KP", np.array([2.0, 2.0, 0.3]))
    with pytest.raises(ValueError, match=r"collected by another expert \({'p_controller_kp': "
                                         r"\[1.0, 1.0, 0.3\]}"):
        collect(CollectConfig(TASK, episodes=2, max_steps=3), tmp_path, progress=False)
    from benchmark.train import check_demos_folder

    with pytest.warns(UserWarning, match="collected by another expert .*: episodes of another "
                                         "simulator or expert"):  # it trained without a word
        check_demos_folder(tmp_path, TASK, {})  # the refused rerun left it finished


def test_a_collections_bytes_do_not_follow_the_python_hash_seed(tmp_path):
    """Its info entries went into the HDF5 file in a set's order, which PYTHONHASHSEED sets:
    one config gave files of other bytes (equal content), and checksums of a released dataset
    differed (data17)."""
    import hashlib
    import os
    import subprocess
    import sys

    digests = set()
    for hash_seed in ("1", "2", "3"):
        out = tmp_path / f"h{hash_seed}"
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from benchmark.datasets import CollectConfig, collect; "
             "collect(CollectConfig('InsertBench/USB-v1', episodes=2, max_steps=3), "
             "sys.argv[1], progress=False)", str(out)],
            check=True, env=os.environ | {"PYTHONHASHSEED": hash_seed}, capture_output=True)
        data = next(out.rglob("main_data.hdf5")).read_bytes()
        digests.add(hashlib.sha256(data).hexdigest())
    assert len(digests) == 1


def test_a_nist_sequence_names_the_part_of_each_observation(tmp_path):
    """A board's collection dropped `info["part"]`: a sequence's episodes could not be split
    into their parts, and a one-part board's did not say which it was."""
    config = CollectConfig("InsertBench/NISTBoard-v0", episodes=1, noise=0.0, max_steps=200,
                           env_kwargs={"part": "sequence", "sequence": ["RoundPeg4", "RoundPeg8"],
                                       "init_offset_mm": [0.0, 0.0]})
    collect(config, tmp_path, progress=False)
    (ep,) = load(config, tmp_path).iterate_episodes()
    parts = [p.decode() for p in ep.infos["part"]]
    assert len(parts) == len(ep.actions) + 1
    # The first part's observations, then (from the hand-over step's) the second's.
    switch = parts.index("RoundPeg8")
    assert switch > 0 and set(parts[:switch]) == {"RoundPeg4"}
    assert set(parts[switch:]) == {"RoundPeg8"}
    assert ep.infos["is_success"][-1] == 1.0
    # The hand-over step seated RoundPeg4: its reward, and no is_success (data20)
    assert ep.infos["part_success"][switch] == 1.0 and ep.infos["is_success"][switch] == 0.0
    assert ep.rewards[switch - 1] > 0 and ep.infos["part_success"][-1] == 1.0


def test_an_episode_file_of_another_collection_is_named_not_built_in(tmp_path):
    """Episode files were trusted by name: another collection's, copied in, was built into the
    dataset under this one's task and seed, and a pixel one into a state collection broke every
    reader with advice that rebuilt it broken again (data19)."""
    collect(CollectConfig(TASK, episodes=2, max_steps=3), tmp_path / "ours", progress=False)
    collect(CollectConfig(TASK, episodes=2, max_steps=3, seed=7), tmp_path / "theirs",
            progress=False)
    foreign = tmp_path / "ours" / "episodes" / "attempt_000001.npz"
    shutil.copy(tmp_path / "theirs" / "episodes" / "attempt_000001.npz", foreign)
    with pytest.raises(ValueError, match=r"attempt_000001.npz is not an episode of this "
                                         r"collection \(its seed, its observations, its task"):
        collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path / "ours", progress=False)
    # At the same --seed another task's episode has the same seed and, from state, the same
    # observation shapes: its task is what tells it (diff24).
    collect(CollectConfig("InsertBench/DSub-v0", episodes=2, max_steps=3), tmp_path / "dsub",
            progress=False)
    shutil.copy(tmp_path / "dsub" / "episodes" / "attempt_000001.npz", foreign)
    with pytest.raises(ValueError, match=r"attempt_000001.npz is not an episode of this "
                                         r"collection"):
        collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path / "ours", progress=False)
    # ... as is the same task's at other settings: a noise-1, 2-step episode was built into
    # a noise-0.2, 3-step dataset (diff25).
    collect(CollectConfig(TASK, episodes=2, max_steps=2, noise=1.0), tmp_path / "noisy",
            progress=False)
    shutil.copy(tmp_path / "noisy" / "episodes" / "attempt_000001.npz", foreign)
    with pytest.raises(ValueError, match=r"attempt_000001.npz is not an episode of this "
                                         r"collection"):
        collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path / "ours", progress=False)
    foreign.unlink()  # as the message says: collected again, and built
    assert collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path / "ours",
                   progress=False).total_episodes == 3
    # data21: an edited episode file was built as it was; a 4-wide action then broke `train`
    # with numpy's message, and a mid-episode end split its episode in two
    built = tmp_path / "ours" / "minari_built.json"
    whole = dict(np.load(foreign))
    for edit, problem in (
            (lambda ep: ep.update(actions=np.zeros((3, 4), np.float32)),
             r"actions of shape \(4,\)"),
            (lambda ep: ep.update(terminations=np.array([True, False, False]),
                                  truncations=np.array([False, False, True])),
             "its end flags are not set at its last step alone"),
            (lambda ep: ep.update(rewards=np.zeros(2)), r"3 actions, and \{'rewards': 2\}"),
            (lambda ep: ep.update(actions=np.full((3, 3), np.nan, np.float32)),
             "actions not finite"),
            # data22: what an episode records beside its actions went in as it was
            (lambda ep: ep.update({"obs/tcp_pose": ep["obs/tcp_pose"].astype(np.float64)}),
             "obs/tcp_pose of dtype float64, the observation space's float32"),
            (lambda ep: ep.update({"obs/wrench": ep["obs/wrench"] * np.nan}),
             "obs/wrench not finite"),
            (lambda ep: ep.update({"info/max_force_n": ep["info/max_force_n"] + np.inf}),
             "info/max_force_n not finite"),
            (lambda ep: ep.update(success=~ep["success"]),
             "success (True|False), where its last step's is_success says otherwise")):
        episode = dict(whole)
        edit(episode)
        np.savez_compressed(foreign, **episode)
        built.unlink(missing_ok=True)
        with pytest.raises(ValueError, match=r"attempt_000001.npz is damaged \(" + problem):
            collect(CollectConfig(TASK, episodes=3, max_steps=3), tmp_path / "ours",
                    progress=False)


def test_a_dataset_altered_after_it_was_built_is_built_again(tmp_path):
    """data22: a rerun kept a finished dataset that still opened, whatever was written into it
    since (a NaN reward that then failed every `train`, a cut column, a flipped byte)."""
    import h5py

    config = CollectConfig(TASK, episodes=2, max_steps=3)
    collect(config, tmp_path, progress=False)
    (data,) = (tmp_path / "minari").rglob("main_data.hdf5")
    with h5py.File(data, "r+") as f:
        f["episode_0/rewards"][0] = np.nan
    altered = collect(config, tmp_path, progress=False)  # rebuilt from the episode files
    assert np.isfinite(next(altered.iterate_episodes()).rewards).all()
    written = data.stat()
    collect(config, tmp_path, progress=False)  # an unaltered one is kept, not written again
    assert (data.stat().st_ino, data.stat().st_mtime_ns) == (written.st_ino,
                                                             written.st_mtime_ns)


def test_a_dataset_altered_after_it_was_built_is_not_trained_on(tmp_path, monkeypatch):
    """data23: `collect` checked the build's hash, `train --demos` did not: another
    collection's Minari dataset copied in trained under this one's settings (a recipe's
    rollouts as paper 004's demonstrations)."""
    import shutil

    from benchmark.train import load_demos

    monkeypatch.chdir(tmp_path)
    config = CollectConfig(TASK, episodes=2, max_steps=3)
    collect(config, Path("ours"), progress=False)
    collect(CollectConfig(TASK, episodes=3, max_steps=3, noise=0.5), Path("theirs"),
            progress=False)
    assert len(load_demos(Path("ours"))["action"]) == 6
    ours = Path("ours/minari") / config.minari_id
    shutil.rmtree(ours)
    shutil.copytree(Path("theirs/minari") / config.minari_id, ours)
    with pytest.raises(ValueError, match=r"^ours: its Minari dataset .* changed since it was "
                                         r"built .*: rerun the `insertbench dataset collect` "
                                         r"that wrote it"):
        load_demos(Path("ours"))
    collect(config, Path("ours"), progress=False)  # as it advises: rebuilt
    assert len(load_demos(Path("ours"))["action"]) == 6


def test_a_full_disk_is_one_line_and_the_kept_episodes_stay(tmp_path, monkeypatch):
    """On a full disk h5py crashed the process while building the dataset (exit 139, ~330
    lines), and an episode's write failed with "[Errno 28]" naming no folder, leaving half a
    file (data20). The room is checked first; the same command goes on once there is room."""
    import collections

    import benchmark.datasets as datasets

    monkeypatch.chdir(tmp_path)
    command = ["dataset", "collect", "--task", "InsertBench/USB-v1", "--episodes", "2",
               "--max-steps", "5", "--out", "usb"]
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(datasets.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert re.search(r"usb has 0\.0 MB free, building the dataset needs about [\d.]+ MB: free "
                     r"some and run the command again \(the episodes kept so far stay\)",
                     " ".join(lines)), result.output
    assert len(list((tmp_path / "usb" / "episodes").glob("*.npz"))) == 2
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)

    def full(path, **arrays):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.np, "savez_compressed", full)
    result = CliRunner().invoke(app, [*command[:5], "3", *command[6:]])  # a third episode
    assert result.exit_code == 1 and "writing an episode failed" in result.output, result.output
    assert not list((tmp_path / "usb" / "episodes").glob("*.tmp.npz"))
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0 and ": 2 episodes" in result.output, result.output


@pytest.mark.parametrize("kwargs", [[], ["--env", "obs_mode=state+pixels", "--env",
                                         "image_size=32"]])
def test_the_room_checked_before_a_build_covers_what_it_writes(tmp_path, monkeypatch, kwargs):
    """The check took 2x the compressed episode files, where the HDF5 file Minari builds was
    2.4x (pixels) to 6.6x (state) them: h5py crashed on a full disk again (data21)."""
    import benchmark.datasets as datasets

    monkeypatch.chdir(tmp_path)
    asked = []
    check = datasets._check_room
    monkeypatch.setattr(datasets, "_check_room",
                        lambda folder, needed, what: asked.append(needed) or check(folder, needed,
                                                                                   what))
    result = CliRunner().invoke(app, ["dataset", "collect", "--task", "InsertBench/USB-v1",
                                      "--episodes", "3", "--max-steps", "8", "--out", "c",
                                      *kwargs])
    assert result.exit_code == 0, result.output
    written = sum(p.stat().st_size for p in (tmp_path / "c" / "minari").rglob("*")
                  if p.is_file())
    assert written <= asked[-1] <= 3 * written, (written, asked)


def test_a_recorded_episode_ends_before_a_step_that_blew_up(monkeypatch):
    """The blown-up step was recorded: an action whose reward and next observation were the
    env's stand-ins (the last step's again), a self-loop in every dataset built from it."""
    from benchmark.datasets import CollectionGaveUp, run_episode
    from envs import p_controller

    env = gym.make("InsertBench/USB-v0", max_episode_steps=10)
    calls = iter(range(100))
    monkeypatch.setattr(env.unwrapped, "_physics_error",
                        lambda: "unstable" if next(calls) == 3 else "")
    episode = run_episode(env, p_controller(env), 0, np.random.default_rng(0), 0.0)
    assert len(episode["actions"]) == 3 and len(episode["obs/tcp_pose"]) == 4
    assert episode["truncations"].tolist() == [False, False, True]
    assert not episode["terminations"].any() and not bool(episode["success"])
    assert len(episode["info/distance_to_goal_mm"]) == 4
    calls = iter(range(100))
    monkeypatch.setattr(env.unwrapped, "_physics_error",
                        lambda: "unstable" if next(calls) == 0 else "")
    # One line, as a collection that gives up (a RuntimeError was an internal error: diff32).
    with pytest.raises(CollectionGaveUp, match="blew up on the first step of the episode at "
                                               "seed 5"):
        run_episode(env, p_controller(env), 5, np.random.default_rng(0), 0.0)


@pytest.mark.parametrize("name", ["episodes", "minari", "minari.building", "collect.lock"])
def test_a_file_where_a_collections_folder_belongs_is_one_line(tmp_path, name):
    """FileExistsError, NotADirectoryError, IsADirectoryError: internal errors; for minari/
    the rerun `train --demos` advised failed again, in a loop (data23)."""
    config = CollectConfig(TASK, episodes=1, max_steps=3)
    collect(config, tmp_path, progress=False)
    (tmp_path / "minari_built.json").unlink()  # unfinished: the build runs again
    path = tmp_path / name
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    if name == "collect.lock":
        path.mkdir()
    else:
        path.write_text("x")
    kind = "folder where the collection's lock file" if name == "collect.lock" else \
        "file where the collection's folder"
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is a {kind} belongs"):
        collect(config, tmp_path, progress=False)
    path.unlink() if path.is_file() else path.rmdir()
    collect(config, tmp_path, progress=False)  # removed, as it says: it goes on


def test_a_file_where_a_recipe_part_belongs_is_one_line(tmp_path):
    from benchmark.folder_lock import run_lock

    (tmp_path / "part").write_text("x")
    with pytest.raises(ValueError, match=r"part is a file where the collection's folder "
                                         r"belongs"):
        with run_lock(tmp_path / "part", what="collection"):
            pass
