"""Learned success rewards: classifier training and checkpoints, the reward wrapper, the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents.reward_classifier import (
    ClassifierMeta,
    SuccessClassifier,
    error_rates,
    load_classifier,
    save_classifier,
    select_space,
    train_classifier,
)
from benchmark.cli import app
from benchmark.learned_reward import ClassifierRewardWrapper
from benchmark.train import make_base_policy, make_env, train

torch.set_num_threads(1)

STANDIN = "tests.standin_env:InsertBenchStandIn/PegPoint-v0"
SPACE = gym.spaces.Dict({
    "wrist": gym.spaces.Box(0, 255, (16, 16, 1), np.uint8),
    "tcp_pose": gym.spaces.Box(-1, 1, (6,), np.float32),
})


def _frames(n: int, positive_fraction: float, seed: int = 0) -> dict:
    """Positives show a bright 6x6 square somewhere in the image; negatives only noise."""
    rng = np.random.default_rng(seed)
    labels = rng.uniform(size=n) < positive_fraction
    images = rng.integers(0, 60, (n, 16, 16, 1)).astype(np.uint8)
    for i in np.flatnonzero(labels):
        r, c = rng.integers(2, 8, 2)
        images[i, r:r + 6, c:c + 6] = 250
    pose = np.zeros((n, 6), np.float32)
    pose[:, 2] = np.where(labels, 0.03, 0.0)
    return {"obs": {"wrist": images, "tcp_pose": pose}, "label": labels}


def _classifier(**meta) -> SuccessClassifier:
    torch.manual_seed(0)
    return SuccessClassifier(SPACE, ClassifierMeta(keys=("wrist",), hidden=(32,),
                                                   image_feature_dim=16, **meta))


def test_balanced_training_learns_a_rare_success_and_reports_error_rates():
    clf = _classifier()
    train_classifier(clf, _frames(400, 0.05), steps=100, batch_size=32, augment_pad=1)
    rates = error_rates(clf.eval(), _frames(200, 0.3, seed=1))
    assert rates["false_positive_rate"] <= 0.05 and rates["false_negative_rate"] <= 0.05
    assert rates["positives"] == pytest.approx(_frames(200, 0.3, seed=1)["label"].sum())


_TRAIN_TWO_CAMERAS = """
import hashlib, numpy as np, torch, gymnasium as gym
from agents.reward_classifier import ClassifierMeta, SuccessClassifier, train_classifier
torch.set_num_threads(1)
box = gym.spaces.Box(0, 255, (16, 16, 1), np.uint8)
space = gym.spaces.Dict({k: box for k in ("wrist", "side")})
rng = np.random.default_rng(0)
frames = {"obs": {k: rng.integers(0, 255, (40, 16, 16, 1)).astype(np.uint8) for k in space},
          "label": np.arange(40) % 2 == 0}
torch.manual_seed(0)
meta = ClassifierMeta(keys=("wrist", "side"), hidden=(8,), image_feature_dim=4)
clf = SuccessClassifier(space, meta)
train_classifier(clf, frames, steps=3, batch_size=8, seed=0)
h = hashlib.sha256()
for name, tensor in sorted(clf.state_dict().items()):
    h.update(name.encode() + tensor.numpy().tobytes())
print(h.hexdigest())
"""


def test_training_is_the_same_in_every_process():
    """`insertbench classifier train` twice with one --seed gave two classifiers: the image keys
    were shifted in a set's order, which follows each process's string hash seed."""
    import os
    import subprocess
    import sys

    def run(code: str, hash_seed: int) -> str:
        env = os.environ | {"PYTHONHASHSEED": str(hash_seed), "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    orders = {run("print(list({'wrist', 'side'}))", seed): seed for seed in range(20)}
    assert len(orders) == 2, "two hash seeds that order the cameras differently"
    digests = {run(_TRAIN_TWO_CAMERAS, seed) for seed in orders.values()}
    assert len(digests) == 1


def test_error_rates_count_false_positives_and_negatives():
    clf = _classifier(threshold=0.5)
    frames = _frames(40, 0.5)
    with torch.no_grad():  # a constant "always success" classifier
        clf.head[-1].bias.fill_(10.0)
        clf.head[-1].weight.zero_()
    rates = error_rates(clf.eval(), frames)
    assert rates["false_positive_rate"] == 1.0 and rates["false_negative_rate"] == 0.0


def test_sanity_check_vetoes_a_confident_success_below_the_insertion_depth():
    clf = _classifier(min_insertion_z_m=0.02)
    with torch.no_grad():
        clf.head[-1].bias.fill_(10.0)
        clf.head[-1].weight.zero_()
    frames = _frames(2, 1.0)
    obs = {k: v[0] for k, v in frames["obs"].items()}
    assert clf.is_success(obs)[0]
    obs["tcp_pose"] = np.zeros(6, np.float32)
    success, probability = clf.is_success(obs)
    assert not success and probability > 0.99


def test_training_needs_both_classes():
    with pytest.raises(ValueError, match="0 negative"):
        train_classifier(_classifier(), _frames(10, 1.0), steps=1)


def test_classifier_checkpoint_round_trip(tmp_path):
    clf = _classifier(threshold=0.7, min_insertion_z_m=0.01)
    train_classifier(clf, _frames(50, 0.5), steps=5, batch_size=8)
    save_classifier(clf.eval(), tmp_path / "clf")
    restored = load_classifier(tmp_path / "clf")
    assert restored.meta == clf.meta
    frames = _frames(5, 0.5, seed=3)
    for i in range(5):
        obs = {k: v[i] for k, v in frames["obs"].items()}
        assert restored.probability(obs) == clf.probability(obs)
    with pytest.raises(FileNotFoundError, match="no reward classifier"):
        load_classifier(tmp_path)


@pytest.mark.parametrize(("damaged", "message"), [
    ("classifier.json", "classifier.json is not valid JSON"),
    ("classifier.safetensors", "classifier.safetensors is not readable"),
])
def test_a_damaged_classifier_is_named(tmp_path, damaged, message):
    """`train -e reward_classifier=DIR` with a cut-off classifier.json said only "Invalid
    value: Expecting property name enclosed in double quotes", and a cut-off weights file
    "SafetensorError: Error while deserializing header"."""
    from agents.reward_classifier import CLASSIFIER_JSON, CLASSIFIER_WEIGHTS

    save_classifier(_classifier().eval(), tmp_path / "clf")
    assert {p.name for p in (tmp_path / "clf").iterdir()} == {CLASSIFIER_JSON, CLASSIFIER_WEIGHTS}
    assert damaged in {CLASSIFIER_JSON, CLASSIFIER_WEIGHTS}
    (tmp_path / "clf" / damaged).write_text("{")
    with pytest.raises(ValueError, match=f"{tmp_path / 'clf' / damaged} "):
        load_classifier(tmp_path / "clf")
    with pytest.raises(ValueError, match=message):
        load_classifier(tmp_path / "clf")


@pytest.mark.parametrize(("edit", "message"), [
    # 5.0 and NaN turned the learned reward off (every success a false negative), exit 0.
    ({"threshold": 5.0}, r"threshold must be in \(0, 1\), got 5.0"),
    ({"threshold": float("nan")}, r"threshold must be in \(0, 1\), got nan"),
    ({"min_insertion_z_m": float("inf")}, "min_insertion_z_m must be a finite number"),
    ({"keys": ["nope"]}, "KeyError: 'nope'"),
    ({"image_pool": 0}, "image_pool must be an integer"),
])
def test_an_edited_classifier_json_is_refused_naming_the_file(tmp_path, edit, message):
    from agents.reward_classifier import CLASSIFIER_JSON

    save_classifier(_classifier().eval(), tmp_path / "clf")
    path = tmp_path / "clf" / CLASSIFIER_JSON
    data = json.loads(path.read_text())
    data["meta"] |= edit
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{path} does not describe a classifier.*{message}"):
        load_classifier(tmp_path / "clf")


def test_a_classifier_json_with_other_widths_than_its_weights_is_named(tmp_path):
    from agents.reward_classifier import CLASSIFIER_JSON, CLASSIFIER_WEIGHTS

    save_classifier(_classifier().eval(), tmp_path / "clf")
    path = tmp_path / "clf" / CLASSIFIER_JSON
    data = json.loads(path.read_text())
    data["meta"]["hidden"] = [7]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path / 'clf' / CLASSIFIER_WEIGHTS} (for {path}): tensor 'head.0.bias' is "
            "torch.float32 (32,), this network's is torch.float32 (7,)")):
        load_classifier(tmp_path / "clf")


@pytest.mark.parametrize(("edit", "message"), [
    # Loaded before: NaN made every answer "no success", int64 every answer a success.
    (lambda t: {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                for k, v in t.items()}, "holds NaN or inf"),
    (lambda t: {k: v.to(torch.int64) for k, v in t.items()}, "is torch.int64"),
])
def test_classifier_weights_not_finite_or_of_another_dtype_are_refused(tmp_path, edit, message):
    from safetensors.torch import load_file, save_file

    from agents.reward_classifier import CLASSIFIER_WEIGHTS

    save_classifier(_classifier().eval(), tmp_path / "clf")
    weights = tmp_path / "clf" / CLASSIFIER_WEIGHTS
    save_file(edit(load_file(weights)), str(weights))
    with pytest.raises(ValueError, match=message):
        load_classifier(tmp_path / "clf")


@pytest.mark.parametrize(("directory", "message"), [
    ("classifiers/{name}", r"reward_classifier may hold \{task\} and no other"),
    ("classifiers/{task.x}", r"reward_classifier may hold \{task\} and no other"),
    ("nothing/here", "no reward classifier in nothing/here"),
])
def test_a_bad_reward_classifier_path_is_a_value_error(directory, message):
    """ "{name}" was KeyError: 'name', a missing folder a FileNotFoundError: both exit 1 in the
    command line, as internal errors."""
    from benchmark.learned_reward import make_classifier_env

    with pytest.raises(ValueError, match=message):
        make_classifier_env("InsertBench/USB-v0", {"reward": "classifier",
                                                   "reward_classifier": directory})


class _ThresholdOnDepth:
    """A stand-in classifier: success when the plug is 5 mm below the start along z."""

    def is_success(self, obs):
        return bool(obs["tcp_pose"][2] > 0.045), 0.5


def test_a_learned_reward_runs_version_key_is_computed_from_its_kwargs(tmp_path):
    """A learned reward's run scores the task env it wraps (dense reward, cameras at the
    classifier's size): the report computed the key of the run's own kwargs (reward 'vice')
    and called every such cell "evaluated on another version of its task"."""
    from benchmark.learned_reward import evaluated_task_kwargs
    from envs.episode import task_identity
    from envs.version_key import task_version_key

    task = "InsertBench/USB-v1"
    env = gym.make(task, obs_mode="state+pixels", image_size=16)
    clf = SuccessClassifier(select_space(env.observation_space, ["wrist"]),
                            ClassifierMeta(keys=("wrist",), hidden=(8,), image_feature_dim=8,
                                           env_kwargs={"image_size": 16}))
    env.close()
    save_classifier(clf, tmp_path / "clf")
    for kwargs in ({"reward": "vice", "goal_hold_steps": 5, "image_size": 32,
                    "goal_noise_mm": 1.0},
                   {"reward": "classifier", "reward_classifier": str(tmp_path / "clf"),
                    "goal_noise_mm": 1.0},
                   {"goal_noise_mm": 1.0}):
        env = make_env(task, kwargs)
        try:
            assert task_identity(env)[1] == \
                task_version_key(task, evaluated_task_kwargs(task, kwargs)), kwargs
        finally:
            env.close()
    moved = {"reward": "classifier", "reward_classifier": str(tmp_path / "moved")}
    assert evaluated_task_kwargs(task, moved) is None  # not checked, rather than flagged


def test_wrapper_rewards_and_terminates_on_the_classifier_not_the_simulator():
    inner = gym.make("InsertBenchStandIn/PegPoint-v0", obs_mode="state+pixels", reward="dense",
                     image_size=16)
    env = ClassifierRewardWrapper(inner, _ThresholdOnDepth(), ["tcp_pose", "tcp_vel", "wrench"])
    assert set(env.observation_space.spaces) == {"tcp_pose", "tcp_vel", "wrench"}
    controller = make_base_policy(inner)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"tcp_pose", "tcp_vel", "wrench"}
    saw_disagreement = False
    for _ in range(50):
        obs, reward, terminated, truncated, info = env.step(controller(obs))
        assert reward == float(info["classifier_success"]) == float(terminated)
        saw_disagreement |= info["classifier_success"] != info["is_success"]
        if terminated or truncated:
            break
    assert terminated and saw_disagreement  # rewarded 3 mm before the simulator says mated


def test_a_runs_heldout_check_never_scores_a_classifier_on_its_training_frames(monkeypatch):
    """check_serl scored a static classifier on frame episodes 0 on: its own training frames
    (the report's "train" figures, byte for byte), not held-out ones (review)."""
    from benchmark import learned_reward
    from benchmark.cells import MAX_EVAL_EPISODES

    asked = {}

    def frames(task_id, kwargs, episodes, first_episode=0):
        asked.update(first=first_episode, episodes=episodes)
        return _frames(20, 0.5)

    monkeypatch.setattr(learned_reward, "collect_frames", frames)
    learned_reward.heldout_error_rates(STANDIN, {}, _classifier(), 3)
    # `classifier train` rolls out episodes [0, --episodes + --heldout-episodes), each <= MAX.
    assert asked["first"] >= 2 * MAX_EVAL_EPISODES and asked["episodes"] == 3


class _NeverSuccess:
    def is_success(self, obs):
        return False, 0.0


def _last_step(env: gym.Env, controller) -> tuple:
    """(reward, terminated, truncated, info) of the step that ends a seed-0 episode of
    `controller` (at most 200 steps)."""
    obs, _ = env.reset(seed=0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(controller(obs))
        if terminated or truncated:
            break
    return reward, terminated, truncated, info


def test_an_env_that_ends_at_the_simulators_success_does_not_tell_the_learner():
    """An env that ends at the simulator's success also under the dense reward (the stand-in;
    NIST board parts did until they ran on as InsertionEnv does): the wrapper passed that on as
    a termination, so the learner saw the true success end its episodes with reward 0
    (review). Now it is a truncation, which says nothing of the state."""
    from benchmark.learned_reward import make_vice_env

    inner = gym.make(STANDIN, reward="dense", obs_mode="state+pixels")
    controller = make_base_policy(inner)
    learned = ClassifierRewardWrapper(inner, _NeverSuccess(),
                                      list(inner.observation_space.spaces))
    # VICE's wrapper alike: it dropped the env's end, and the episode ran on until its
    # classifier said success.
    vice = make_vice_env(STANDIN, {"reward": "vice"})
    vice.classifier = _NeverSuccess()  # bound, as bind_reward_classifier does after the demos
    for env in (learned, vice):
        reward, terminated, truncated, info = _last_step(env, controller)
        assert info["is_success"] and truncated and not terminated and reward == 0.0
    # The board's sequence moves to its next part at the simulator's success: refused.
    with pytest.raises(ValueError, match="moves to its next part at the simulator's success"):
        make_vice_env("InsertBench/NISTBoard-v0", {"reward": "vice"})


def test_cli_trains_a_classifier_and_a_run_uses_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["classifier", "train", "--task", STANDIN, "--out", "clf/PegPoint-v0",
                              "--episodes", "4", "--heldout-episodes", "2", "--image-size", "16",
                              "--steps", "20", "--sanity-margin-mm", "1", "--proprio"])
    assert res.exit_code == 0, res.output
    assert "false-positive rate" in res.output
    report = json.loads((tmp_path / "clf" / "PegPoint-v0" / "report.json").read_text())
    assert 0 <= report["heldout"]["false_negative_rate"] <= 1
    assert report["train_positive_frames"] > 0
    # Its weights depend on torch's thread count (one seed, 1 and 2 threads: other rates).
    assert report["settings"]["torch_threads"] == torch.get_num_threads()
    # Its own folder is trained again only with the same settings: another image size
    # replaced it without a word.
    again = ["classifier", "train", "--task", STANDIN, "--out", "clf/PegPoint-v0", "--episodes",
             "4", "--heldout-episodes", "2", "--steps", "20", "--sanity-margin-mm", "1",
             "--proprio", "--image-size"]
    res = runner.invoke(app, [*again, "32"])
    assert res.exit_code == 2 and "holds a classifier trained with other settings (image_size " \
        "16 -> 32); give another --out" in " ".join(res.output.split()), res.output
    assert json.loads((tmp_path / "clf" / "PegPoint-v0" / "report.json").read_text()) == report
    # A second run while one trains into the folder: both wrote it, the last one's stayed.
    from benchmark.classifier_cli import CLASSIFIER_LOCK
    from benchmark.folder_lock import run_lock

    with run_lock(tmp_path / "clf" / "PegPoint-v0", CLASSIFIER_LOCK, "classifier training"):
        res = runner.invoke(app, [*again, "16"])
    # One line (click's own ClickException, not Typer's, read as an internal error: data17).
    assert res.exit_code == 1 and "another classifier training is writing" in res.output, \
        res.output
    assert "ClickException" not in res.output
    assert runner.invoke(app, [*again, "16"]).exit_code == 0
    with pytest.raises(ValueError, match="needs both"):
        make_env(STANDIN, {"reward_classifier": "clf/{task}"})
    env = make_env(STANDIN, {"reward": "classifier", "reward_classifier": "clf/{task}"})
    assert "wrist" not in env.observation_space.spaces  # state run; the classifier sees pixels
    # The run's render kwargs against the classifier's frames, defaults included: grayscale
    # was refused as the classifier file's fault; [16, 16] beside 16 px refused (data17).
    learned = {"reward": "classifier", "reward_classifier": "clf/{task}"}
    with pytest.raises(ValueError, match=r"env kwargs \{'grayscale': \(True, False\)\} \(run, "
                                         r"classifier\) differ from the frames"):
        make_env(STANDIN, learned | {"grayscale": True})
    make_env(STANDIN, learned | {"image_size": [16, 16]}).close()
    # Every step's decision is counted against the simulator's success, on N worlds as on one
    # (the vector loop counted none: a run on 2 worlds reported no error rates).
    for num_envs in (1, 2):
        train(STANDIN, "sac", seed=0, steps=8, num_envs=num_envs, out_dir=f"run{num_envs}",
              env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
              config={"hidden": (16, 16), "batch_size": 4, "learning_starts": 4},
              eval_every=0, eval_episodes=1, progress=False)
        confusion = json.loads(Path(f"run{num_envs}/evaluations.json").read_text())[-1][
            "reward_confusion"]
        assert sum(confusion.values()) == 8, confusion
    # ... and with the actors in their own processes (train-async counted none).
    from benchmark.async_train import train_async

    result = train_async(STANDIN, "sac", steps=8, out_dir="async", eval_episodes=0,
                         env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
                         config={"hidden": (16, 16), "batch_size": 4, "learning_starts": 4})
    assert sum(result["reward_confusion"].values()) == 8 and "reward_false_positive_rate" in \
        json.loads(Path("async/async.json").read_text())
    # It reads tcp_pose (--proprio, the depth check), whose origin the start height sets: one
    # trained 50 mm up rewarded nothing from 14 mm up, or a plug far above the socket.
    with pytest.raises(ValueError, match=r"\{'start_height_mm': \(20.0, 50.0\)\} \(run, "
                                         r"classifier\) differ .* it reads tcp_pose"):
        make_env(STANDIN, {"reward": "classifier", "reward_classifier": "clf/{task}",
                           "start_height_mm": 20.0})
    # The same classifier named for another task (a copy whose report says so) is refused: a
    # USB-v1 classifier used to reward a D-sub run without a word.
    shutil.copytree(tmp_path / "clf" / "PegPoint-v0", tmp_path / "clf" / "usb")
    (tmp_path / "clf" / "usb" / "report.json").write_text(
        json.dumps(report | {"task_id": "InsertBench/USB-v1"}))
    assert report["task_id"] == STANDIN
    with pytest.raises(ValueError, match=r"clf/usb was trained on InsertBench/USB-v1, not "
                                         r".*InsertBenchStandIn/PegPoint-v0"):
        make_env(STANDIN, {"reward": "classifier", "reward_classifier": "clf/usb"})
    res = runner.invoke(app, ["train", "--task", STANDIN, "--agent", "sac", "--steps", "5",
                              "-e", "reward=classifier", "-e", "reward_classifier=clf/usb",
                              "--out", "other"])
    assert res.exit_code == 2 and "was trained on InsertBench/USB-v1" in res.output, res.output
    assert not (tmp_path / "other").exists()
    # An edited image size in classifier.json made 32x32 frames for a 16x16 CNN: a torch
    # shape error at the first step.
    shutil.copytree(tmp_path / "clf" / "PegPoint-v0", tmp_path / "clf" / "edited")
    meta_file = tmp_path / "clf" / "edited" / "classifier.json"
    data = json.loads(meta_file.read_text())
    data["meta"]["env_kwargs"]["image_size"] = 32
    meta_file.write_text(json.dumps(data))
    res = runner.invoke(app, ["train", "--task", STANDIN, "--agent", "sac", "--steps", "5",
                              "-e", "reward=classifier", "-e", "reward_classifier=clf/edited",
                              "--out", "edited"])
    assert res.exit_code == 2 and "clf/edited reads observations this env does not make: " \
        "side (32, 32, 3) (classifier (16, 16, 3))" in " ".join(res.output.split()), res.output
    result = train(STANDIN, "sac", steps=30, out_dir="run", eval_episodes=1, eval_every=0,
                   env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
                   progress=False,
                   config={"hidden": (16, 16), "batch_size": 8, "learning_starts": 10})
    assert result.steps == 30 and len(result.evaluations) == 1
    # The relative clf/{task} is looked up from the working directory: resumed or evaluated
    # from another folder holding another classifier of that name, the run was rewarded by
    # that one without a word. The runs record which one they were trained with.
    (tmp_path / "elsewhere" / "clf").mkdir(parents=True)
    copy = tmp_path / "elsewhere" / "clf" / "PegPoint-v0"
    shutil.copytree(tmp_path / "clf" / "PegPoint-v0", copy)
    other = copy / "classifier.json"
    other.write_text(json.dumps(json.loads(other.read_text()) | {"edited": True}))
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match=r"the reward classifier in clf/PegPoint-v0 \(a relative "
                                         r"path, looked up from .*elsewhere\) is not the one the "
                                         r"run in ../run was trained with"):
        train(STANDIN, "sac", steps=40, out_dir="../run", eval_episodes=1, eval_every=0,
              progress=False,
              env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
              config={"hidden": (16, 16), "batch_size": 8, "learning_starts": 10})
    with pytest.raises(ValueError, match="is not the one the run in ../async was trained with"):
        train_async(STANDIN, "sac", steps=12, out_dir="../async", eval_episodes=0,
                    env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
                    config={"hidden": (16, 16), "batch_size": 4, "learning_starts": 4})
    for run in ("../run", "../async"):
        res = runner.invoke(app, ["eval", "--task", STANDIN, "--checkpoint", run, "--episodes",
                                  "1"])
        assert res.exit_code == 2 and f"is not the one {run} was trained with" in res.output, \
            res.output
    # ... and named from here by the path that leads to it, it resumes: every spelling was
    # refused, the run's env kwargs compared as written (bench19).
    assert train(STANDIN, "sac", steps=35, out_dir="../run", eval_episodes=1, eval_every=0,
                 progress=False,
                 env_kwargs={"reward": "classifier", "reward_classifier": "../clf/{task}"},
                 config={"hidden": (16, 16), "batch_size": 8, "learning_starts": 10}).steps == 35
    monkeypatch.chdir(tmp_path)  # where it was started: the same classifier, resumed
    # Another task is another run (said as such), though {task} names another classifier there.
    shutil.copytree(copy, tmp_path / "clf" / "USB-v1")
    with pytest.raises(ValueError, match=r"differs in \['task_id'\]"):
        train("InsertBench/USB-v1", "sac", steps=40, out_dir="run", eval_episodes=1,
              eval_every=0, progress=False,
              env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
              config={"hidden": (16, 16), "batch_size": 8, "learning_starts": 10})
    # ... and an eval there (--allow-other-task) is not refused for {task}'s other classifier
    # (this copy then fails its own task check: its report names the stand-in).
    res = runner.invoke(app, ["eval", "--task", "InsertBench/USB-v1", "--checkpoint", "run",
                              "--allow-other-task", "--episodes", "1"])
    assert res.exit_code == 2 and "is not the one" not in res.output, res.output
    assert "PegPoint-v0, not InsertBench/USB-v1; train one on it" in \
        " ".join(res.output.split()), res.output
    assert train(STANDIN, "sac", steps=40, out_dir="run", eval_episodes=1, eval_every=0,
                 progress=False,
                 env_kwargs={"reward": "classifier", "reward_classifier": "clf/{task}"},
                 config={"hidden": (16, 16), "batch_size": 8, "learning_starts": 10}).steps == 40


@pytest.mark.parametrize("args,message", [
    (["--threshold", "1.5"], "threshold"),
    (["-e", "reward=dense"], "reward"),
    # review session: these were found only after the rollouts, or never (a NaN margin)
    (["--sanity-margin-mm", "nan"], "--sanity-margin-mm must be a finite number in [0, 100]"),
    (["--sanity-margin-mm", "-1"], "--sanity-margin-mm must be a finite number in [0, 100]"),
    (["--sanity-margin-mm", "1e308"], "--sanity-margin-mm must be a finite number in [0, 100]"),
    (["--steps", "0"], "--steps must be in [1, 1,000,000,000], got 0"),
    (["--steps", str(10**20)], "--steps must be in [1, 1,000,000,000]"),  # OverflowError, late
    (["--episodes", "1000000000"], "--episodes and --heldout-episodes must be in [1, 100000]"),
    (["--seed", "-1"], "seed must be an integer in [0, 2**63), got -1"),  # adv30: after all
    (["--seed", str(10**20)], "seed must be an integer in [0, 2**63)"),  # the rollouts
    (["--image-size", "8"], "8x8 images are too small for the 'drq' image encoder"),  # too
    # adv31: -e image_size=16 was replaced by --image-size's default 64 without a word
    (["-e", "image_size=16"], "give the image size as --image-size"),
])
def test_cli_rejects_bad_options_with_one_clear_line(tmp_path, args, message):
    res = CliRunner().invoke(app, ["classifier", "train", "--task", STANDIN, "--out",
                                   str(tmp_path / "c"), *args])
    assert res.exit_code != 0 and message in res.output
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("out", ["c", "c/classifier"])  # the second trained, then failed
def test_cli_refuses_an_out_that_is_a_file_before_rolling_out(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    Path("c").write_text("not a folder")
    res = CliRunner().invoke(app, ["classifier", "train", "--task", STANDIN, "--out", out])
    assert res.exit_code == 2 and f"Invalid value for --out: {out} is not a directory" in res.output
    assert Path("c").read_text() == "not a folder"


def test_cli_refuses_the_boards_sequence_before_rolling_out(tmp_path, monkeypatch):
    """It trained (exit 0, a false-negative rate of nan: no held-out success), then every run
    refused the task under a learned reward (data17)."""
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["classifier", "train", "--task", "InsertBench/NISTBoard-v0",
                                   "--out", "c", "--episodes", "2", "--steps", "2"])
    assert res.exit_code == 2 and "moves to its next part at the simulator's success" in \
        " ".join(res.output.split()), res.output
    assert not Path("c").exists()


def test_frames_stop_before_a_step_that_blew_up(monkeypatch):
    """data24: a blown-up step's stand-in (the last frame again) was kept, labelled False: a
    seated frame went into the classifier's data once labelled each way."""
    from benchmark.learned_reward import collect_frames
    from envs.insertion_env import InsertionEnv

    kwargs = {"image_size": 16, "cameras": ["wrist"]}
    whole = collect_frames("InsertBench/USB-v0", kwargs, 1, max_noise=0.0)
    calls = iter(range(1000))
    monkeypatch.setattr(InsertionEnv, "_physics_error",
                        lambda self: "unstable" if next(calls) == 3 else "")
    cut = collect_frames("InsertBench/USB-v0", kwargs, 1, max_noise=0.0)
    assert len(whole["label"]) > 4 and len(cut["label"]) == 4  # the reset's and 3 steps'
    np.testing.assert_array_equal(cut["obs"]["wrist"], whole["obs"]["wrist"][:4])
