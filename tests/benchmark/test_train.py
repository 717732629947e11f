"""The runner: evaluation protocol, Wilson intervals, logs and plots, exact resumption, CLI."""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import envs  # noqa: F401  (registers the InsertBench tasks)
import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents import make_agent
from benchmark.cells import Cell, run_cell
from benchmark.cli import app
from benchmark.evaluate import EVAL_SEED_BASE, evaluate
from benchmark.folder_lock import LOCK_FILE, RunInProgress, run_lock
from benchmark.train import (
    TRAIN_SEED_BASE,
    make_base_policy,
    read_scalars,
    train,
    train_episode_seed,
)
from envs.episode import EpisodeRecord, summarize, wilson_interval

torch.set_num_threads(1)

#: Task IDs the runner is tested on: the stand-in (as "module:ID") and a real task.
TASK_IDS = ["tests.standin_env:InsertBenchStandIn/PegPoint-v0", "InsertBench/USB-v0"]
TASK = TASK_IDS[0]
SAC_SMALL = {"hidden": (32, 32), "batch_size": 16, "learning_starts": 40, "random_steps": 40}
RUN = {"env_kwargs": {"goal_noise_mm": 1.0}, "eval_every": 100, "eval_episodes": 2,
       "progress": False}


@pytest.mark.parametrize(
    "successes,trials,low,high",
    [  # hand-computed: centre (p + z^2/2n) / (1 + z^2/n), z = 1.959964
        (8, 10, 0.490162, 0.943318),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (50, 100, 0.403832, 0.596168),
        (1, 20, 0.008881, 0.236136),
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes, trials, low, high):
    lo, hi = wilson_interval(successes, trials)
    assert lo == pytest.approx(low, abs=1e-5) and hi == pytest.approx(high, abs=1e-5)


def test_wilson_interval_rejects_impossible_counts():
    with pytest.raises(ValueError, match="successes must be in"):
        wilson_interval(11, 10)


def test_summary_cycle_time_counts_successes_only():
    def record(seed, steps_to_success, force):
        return EpisodeRecord(
            "InsertBench/USB-v0", "key", seed, steps_to_success is not None, 50,
            steps_to_success, None if steps_to_success is None else steps_to_success / 10,
            1.0, force, 0.0, 0.1, 0.05)

    records = [record(1, 10, 5.0), record(2, 20, 7.0), record(3, None, 30.0)]
    s = summarize(records)
    assert s["success_rate"] == pytest.approx(2 / 3)
    assert (s["success_ci95_low"], s["success_ci95_high"]) == wilson_interval(2, 3)
    assert s["cycle_steps_mean"] == 15.0 and s["cycle_time_s_mean"] == 1.5
    assert s["peak_force_n_max"] == 30.0 and s["peak_force_n_mean"] == pytest.approx(14.0)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_evaluate_uses_fixed_seeds_and_reports_cycle_time(task_id):
    env = gym.make(task_id)
    agent = make_agent("p_controller", env.observation_space, env.action_space,
                       base_policy=make_base_policy(env))
    records = evaluate(env, agent, 4)
    assert [r.seed for r in records] == [EVAL_SEED_BASE + i for i in range(4)]
    assert all(r.success for r in records)
    dt = env.unwrapped.dt
    assert all(r.time_to_success_s == pytest.approx(r.steps_to_success * dt) for r in records)
    again = evaluate(env, agent, 4)
    assert [r.episode_return for r in again] == [r.episode_return for r in records]


def test_evaluation_leaves_the_torch_rng_alone():
    env = gym.make(TASK)
    agent = make_agent("sac", env.observation_space, env.action_space, SAC_SMALL)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    evaluate(env, agent, 2)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("num_envs", [1, 2])
def test_actor_metrics_of_delayed_policy_updates_reach_tensorboard(tmp_path, num_envs):
    """TD3 updates its actor every second gradient step; with one step per env step that parity
    never met the logging period, and TD3 (+ LfD) logged no actor loss, BC loss or q_scale."""
    config = {"hidden": (32, 32), "batch_size": 16, "learning_starts": 40, "random_steps": 40}
    train(TASK, "td3", seed=0, steps=240, config=config, out_dir=tmp_path, log_every=50,
          num_envs=num_envs, eval_every=0, eval_episodes=1, progress=False)
    assert {"train/loss/critic", "train/loss/actor"} <= set(read_scalars(tmp_path))


def test_a_resumed_run_keeps_the_points_logged_at_its_checkpoint_step(tmp_path):
    """TensorBoard purged every point from the checkpoint's step on when a run resumed, those
    the episode that ended at that step logged before the checkpoint included."""
    kwargs = {"config": SAC_SMALL, "checkpoint_every": 50, "eval_every": 0,
              "eval_episodes": 1, "progress": False}
    train(TASK, "sac", seed=0, steps=100, out_dir=tmp_path / "straight", **kwargs)
    train(TASK, "sac", seed=0, steps=50, out_dir=tmp_path / "split", **kwargs)
    train(TASK, "sac", seed=0, steps=100, out_dir=tmp_path / "split", **kwargs)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def steps(name):  # as TensorBoard reads the folder: the resumed file's purge applied
        events = EventAccumulator(str(tmp_path / name / "tb"), size_guidance={"scalars": 0})
        events.Reload()
        return sorted(e.step for e in events.Scalars("train/episode_return"))

    assert 50 in steps("straight") and steps("split") == steps("straight")


def test_train_and_eval_seeds_are_disjoint(tmp_path):
    train_seeds = {train_episode_seed(s, k) for s in range(10) for k in range(5_000)}
    assert min(train_seeds) >= TRAIN_SEED_BASE > EVAL_SEED_BASE + 100_000
    assert min(train_seeds) > 1_000_000 + 10_000  # the matrix presets' evaluation seeds
    clash = [train_episode_seed(3, 7)]
    with pytest.raises(ValueError, match="are training seeds of run seed 3"):
        train(TASK, "sac", seed=3, steps=10, config=SAC_SMALL, out_dir=tmp_path,
              eval_episodes=1, eval_seeds=clash, progress=False)
    # Run seed 0's 100,001st episode replayed run seed 1's first start.
    assert train_episode_seed(0, 99_999) + 1 == train_episode_seed(1, 0)
    with pytest.raises(ValueError, match=r"training episode 100,001 of run seed 0 is past the "
                                         r"run's 100,000 training seeds"):
        train_episode_seed(0, 100_000)


def test_train_writes_logs_checkpoint_curve_and_evaluations(tmp_path):
    result = train(TASK, "sac", seed=0, steps=150, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    assert result.steps == 150
    assert [e.env_steps for e in result.evaluations][-1] == 150
    evals = json.loads((tmp_path / "evaluations.json").read_text())
    assert evals[0]["episodes"][0]["seed"] == EVAL_SEED_BASE
    assert (tmp_path / "learning_curve.png").stat().st_size > 1_000
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["hidden"] == [32, 32] and run["agent"] == "sac"
    assert (tmp_path / "checkpoint" / "agent" / "replay_online.npz").is_file()


def _weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoint" / "agent" / "weights.safetensors"))


def _assert_same_final_state(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    diverged = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not diverged, f"resumed run diverged in {diverged[:5]}"
    replays = sorted(p.name for p in (a / "checkpoint/agent").glob("replay_*.npz"))
    assert replays == sorted(p.name for p in (b / "checkpoint/agent").glob("replay_*.npz"))
    for name in replays:
        with np.load(a / "checkpoint/agent" / name) as ra, \
                np.load(b / "checkpoint/agent" / name) as rb:
            for key in ra.files:
                np.testing.assert_array_equal(ra[key], rb[key])


@pytest.mark.parametrize("agent_name", ["sac", "residual_td3"])
def test_extending_a_finished_run_equals_one_long_run(tmp_path, agent_name):
    """130 steps (checkpoint mid-episode), then resumed to 260 == 260 steps straight."""
    config = SAC_SMALL
    straight = train(TASK, agent_name, seed=1, steps=260, config=config,
                     out_dir=tmp_path / "a", **RUN)
    train(TASK, agent_name, seed=1, steps=130, config=config, out_dir=tmp_path / "b", **RUN)
    resumed = train(TASK, agent_name, seed=1, steps=260, config=config,
                    out_dir=tmp_path / "b", **RUN)
    assert resumed.steps == straight.steps == 260
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")
    assert straight.summaries[-1] == resumed.summaries[-1]


@pytest.mark.parametrize(
    "agent_name,extra,crash_at,checkpoint_step",
    [
        ("sac", {}, 170, 160),  # loses the work since the step-160 checkpoint, not the run
        ("td3_lfd", {"demo_episodes": 2}, 1, 0),  # pretraining survives a crash at step 1
    ],
)
def test_interrupted_run_resumes_from_its_last_checkpoint(
    tmp_path, monkeypatch, agent_name, extra, crash_at, checkpoint_step
):
    config = SAC_SMALL | ({"demo_batch_size": 8, "pretrain_steps": 5} if extra else {})
    kwargs = RUN | extra | {"checkpoint_every": 40}
    train(TASK, agent_name, seed=2, steps=240, config=config, out_dir=tmp_path / "a", **kwargs)

    cls = type(make_agent(agent_name, *_standin_spaces(), config))
    original_update = cls.update
    calls = {"n": 0}

    def crashing_update(self):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt
        return original_update(self)

    monkeypatch.setattr(cls, "update", crashing_update)
    with pytest.raises(KeyboardInterrupt):
        train(TASK, agent_name, seed=2, steps=240, config=config, out_dir=tmp_path / "b",
              **kwargs)
    runner = json.loads((tmp_path / "b" / "checkpoint" / "runner.json").read_text())
    assert runner["step"] == checkpoint_step
    monkeypatch.setattr(cls, "update", original_update)
    resumed = train(TASK, agent_name, seed=2, steps=240, config=config,
                    out_dir=tmp_path / "b", **kwargs)
    assert resumed.steps == 240
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")


def _standin_spaces():
    env = gym.make(TASK)
    return env.observation_space, env.action_space


def test_a_negative_seed_is_refused_before_the_run_directory_exists(tmp_path):
    """It failed with NumPy's "expected non-negative integer" after creating the run
    directory (review session)."""
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\), got -1"):
        train(TASK, "sac", seed=-1, steps=10, config=SAC_SMALL, out_dir=tmp_path / "run",
              eval_episodes=1, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"demo_episodes": -3}, r"demo_episodes must be in \[0, 100,000\], got -3"),
    # 10^9 built a billion demo seeds first: a bare MemoryError
    ({"demo_episodes": 10**9}, r"demo_episodes must be in \[0, 100,000\], got 1000000000"),
    ({"demo_episodes": 2, "demos": "demos.npz"}, r"give demos \(demos.npz\) or demo_episodes"),
    # An explicit 0 used to mean the default 20 for agents that learn from demonstrations.
    ({"demo_episodes": 0}, "td3_lfd learns from demonstrations: give demo_episodes >= 1"),
])
def test_demo_arguments_that_would_be_ignored_are_refused(tmp_path, kwargs, message):
    """`--demo-episodes -3` trained td3_lfd / rlpd without any demonstrations (the default 20
    are given only for 0); with --demos, --demo-episodes was silently ignored."""
    with pytest.raises(ValueError, match=message):
        train(TASK, "td3_lfd", seed=0, steps=10, config=SAC_SMALL, out_dir=tmp_path / "run",
              **kwargs, **RUN)
    assert not (tmp_path / "run").exists()


def test_demos_that_are_not_a_dataset_are_named_so(tmp_path):
    """One episode file of `dataset collect` (attempt_000000.npz) as --demos ended in
    `KeyError: 'terminated'` from pretrain."""
    np.savez(tmp_path / "attempt_000000.npz", actions=np.zeros((2, 3)), rewards=np.zeros(2))
    with pytest.raises(ValueError, match=r"attempt_000000.npz is not a saved Dataset \(no \["
                                         r"'obs', 'action', 'reward'"):
        train(TASK, "td3_lfd", seed=0, steps=10, config=SAC_SMALL, out_dir=tmp_path / "run",
              demos=tmp_path / "attempt_000000.npz", **RUN)


def test_demos_with_non_finite_values_or_actions_out_of_bounds_are_refused(tmp_path):
    """A NaN observation or inf reward pretrained NaN weights, found only at the first act
    ("the policy's action [nan nan nan] is not finite"); actions of +-50 trained silently."""
    from agents.buffer import load_dataset, save_dataset

    train(TASK, "td3_lfd", seed=0, steps=10, config=SAC_SMALL, out_dir=tmp_path / "a",
          demo_episodes=1, **RUN)
    good = load_dataset(tmp_path / "a" / "demos.npz")
    key = next(iter(good["obs"]))
    for name, edit, message in (
            ("nan_obs", lambda d: d["obs"][key].__setitem__((3, 0), np.nan),
             rf"nan_obs.npz: obs\['{key}'\] is not finite at row 3 \(1 rows\)"),
            ("inf_reward", lambda d: d["reward"].__setitem__(5, np.inf),
             r"inf_reward.npz: reward is not finite at row 5"),
            ("big_action", lambda d: d["action"].__setitem__((2, 1), 50.0),
             r"big_action.npz: action at row 2 \(1 rows\) lies outside the env's "
             r"action space \[-1, 1\]"),
            # rewards of 1e30 trained inf optimizer state (AWAC, IQL) and exit status 0
            ("huge_reward", lambda d: d["reward"].__setitem__(4, 1e30),
             r"huge_reward.npz: reward exceeds 1e\+06 in magnitude at row 4"),
            # AWAC and ODA met it in their normaliser: a tensor-size RuntimeError
            ("short_obs", lambda d: d["obs"].__setitem__(key, d["obs"][key][:, :-1]),
             rf"short_obs.npz: rows differ in shape from this env's .*obs\['{key}'\]"),
            # refused by the agent, after the run folder was made (state demos, pixel run)
            ("no_key", lambda d: d["obs"].pop(key),
             rf"no_key.npz lack the observation entries \['{key}'\] of this run's env"),
            # numbers as text passed the checks, then failed in torch after the run folder
            # was made (agents18); a complex reward lost its imaginary part
            ("text_obs", lambda d: d["obs"].__setitem__(key, d["obs"][key].astype(str)),
             rf"text_obs.npz: obs\['{key}'\] holds <U\d+ values, not numbers"),
            ("complex_reward", lambda d: d.__setitem__("reward", d["reward"] + 1j),
             r"complex_reward.npz: reward holds complex\d+ values, not numbers"),
            # data21: an is_demo of another length was an IndexError in ODA's pretraining after
            # the run folder was made; 0.5 read as True
            ("long_is_demo", lambda d: d.__setitem__("is_demo", np.ones(len(d["action"]) + 1)),
             r"long_is_demo.npz: columns differ in length: action has \d+ rows, \{'is_demo'"),
            ("half_is_demo", lambda d: d.__setitem__("is_demo", np.full(len(d["action"]), 0.5)),
             r"half_is_demo.npz: is_demo must be 0 or 1 \(a flag\), row 0 holds 0.5"),
            # data24: one value for a column was "len() of unsized object"; truncated 0.5 and
            # one True (every row an episode's end) trained unchecked
            ("scalar_reward", lambda d: d.__setitem__("reward", np.float32(0)),
             r"scalar_reward.npz: reward holds one value, not a row per transition"),
            ("scalar_obs", lambda d: d["obs"].__setitem__(key, np.float32(0)),
             rf"scalar_obs.npz: obs\['{key}'\] holds one value, not a row per transition"),
            # diff36: obs as one array was "'numpy.ndarray' object has no attribute 'items'"
            ("flat_obs", lambda d: d.__setitem__("obs", d["obs"][key]),
             r"flat_obs.npz: obs must hold the observation's entries \(stored as obs/<key> "
             r"in an .npz\), not one array"),
            ("half_truncated", lambda d: d.__setitem__("truncated",
                                                       np.full(len(d["action"]), 0.5)),
             r"half_truncated.npz: truncated must be 0 or 1 \(a flag\), row 0 holds 0.5"),
            # "cannot reshape array of size 0 into shape (0,newaxis)"
            ("empty", lambda d: d.update({k: (v[:0] if not isinstance(v, dict) else
                                              {kk: vv[:0] for kk, vv in v.items()})
                                          for k, v in d.items()}),
             r"empty.npz holds no transitions")):
        bad = load_dataset(tmp_path / "a" / "demos.npz")
        edit(bad)
        save_dataset(tmp_path / f"{name}.npz", bad)
        with pytest.raises(ValueError, match=message):
            train(TASK, "td3_lfd", seed=0, steps=10, config=SAC_SMALL,
                  out_dir=tmp_path / name, demos=tmp_path / f"{name}.npz", **RUN)
        assert not (tmp_path / name).exists()  # refused before the run


def test_odas_target_task_demonstrations_never_share_an_evaluation_seed(tmp_path):
    """ODA records demonstrations of the target task (DEMO_SEED_BASE + i) to infer it from:
    a run scored on those seeds passed, the clash checked only for demo_episodes (review)."""
    from benchmark.train import DEMO_SEED_BASE

    with pytest.raises(ValueError, match="eval_seeds overlap the demonstration seeds"):
        train("InsertBench/Connector-USACPlug-v1", "oda", seed=0, steps=1, eval_episodes=1,
              eval_seeds=[DEMO_SEED_BASE + 3], out_dir=tmp_path / "oda", progress=False)
    assert not (tmp_path / "oda").exists()
    # ... nor VICE's recorded failures, which reset from FAILURE_SEED_BASE + i.
    with pytest.raises(ValueError, match="eval_seeds overlap the recorded failures' seeds"):
        train(TASK, "vice", seed=0, steps=1, eval_episodes=1, eval_seeds=[85_000_001],
              config={"vice_failure_episodes": 2}, env_kwargs={"reward": "vice"},
              demo_episodes=1, out_dir=tmp_path / "vice", progress=False)
    assert not (tmp_path / "vice").exists()


def test_a_config_past_the_parameter_budget_leaves_no_run_folder(tmp_path, monkeypatch):
    """Refused when the agent was built, after the run folder was made: an empty folder
    (`hidden=16384,...` x 5 past 10^9 parameters; the budget is lowered here to keep it cheap)."""
    monkeypatch.setattr("agents.registry.MAX_PARAMETERS", 1_000)
    with pytest.raises(ValueError, match="more than 1,000 parameters"):
        train(TASK, "sac", seed=0, steps=10, out_dir=tmp_path / "big", config=SAC_SMALL,
              **RUN)
    assert not (tmp_path / "big").exists()


def test_pretraining_without_offline_data_is_said_not_skipped_silently(tmp_path):
    """`train --agent iql -c pretrain_steps=5000` without --demos learned online only, and
    nothing said that the offline phase never ran."""
    config = {"hidden": (32, 32), "batch_size": 16, "learning_starts": 40, "pretrain_steps": 50}
    with pytest.warns(UserWarning, match="iql has no offline data .* pretrain_steps=50 do not "
                                         "run: it learns online only"):
        train(TASK, "iql", seed=0, steps=20, config=config, out_dir=tmp_path / "a", **RUN)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(TASK, "iql", seed=0, steps=20, config=config, out_dir=tmp_path / "b",
              demo_episodes=2, **RUN)
    assert not [w for w in caught if "no offline data" in str(w.message)]  # it pretrained
    assert (tmp_path / "b" / "pretrain.json").is_file()


def test_a_rerun_without_a_checkpoint_says_it_starts_from_zero(tmp_path):
    """Stopped before its first checkpoint, a run was restarted from step 0 by the rerun that
    was meant to resume it, without a word."""
    import shutil

    train(TASK, "sac", seed=0, steps=20, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    shutil.rmtree(tmp_path / "checkpoint")  # as if killed before the first checkpoint
    with pytest.warns(UserWarning, match="holds no checkpoint .* starting from step 0"):
        result = train(TASK, "sac", seed=0, steps=20, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    assert result.steps == 20


def test_a_checkpoint_without_run_json_is_not_resumed_as_another_agent(tmp_path):
    """With run.json gone, `train --agent td3` resumed the SAC checkpoint silently (and kept
    training SAC under no run.json)."""
    train(TASK, "sac", seed=0, steps=20, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    (tmp_path / "run.json").unlink()
    with pytest.raises(ValueError, match="holds a checkpoint but no run.json"):
        train(TASK, "td3", seed=0, steps=40, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    # A damaged one was "Expecting value: line 1 column 1 (char 0)", naming no file.
    (tmp_path / "run.json").write_text("")
    with pytest.raises(ValueError, match=r"run.json is not valid JSON \(a damaged run\?\)"):
        train(TASK, "sac", seed=0, steps=40, config=SAC_SMALL, out_dir=tmp_path, **RUN)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fcntl locks")
def test_two_runs_into_one_folder_are_one_error(tmp_path, monkeypatch):
    """Neither was refused: one run's steps were lost, or its checkpoint stayed under the other
    run's run.json and a later resume trained it on the other seed's episodes."""
    import fcntl

    monkeypatch.chdir(tmp_path)
    Path("a").mkdir()
    with open("a/checkpoint.lock", "w") as held:  # another run, writing a/
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunInProgress, match="another run is writing a "):
            train(TASK, "sac", seed=1, steps=20, config=SAC_SMALL, out_dir="a", **RUN)
    assert [p.name for p in Path("a").iterdir()] == ["checkpoint.lock"]  # nothing written
    train(TASK, "sac", seed=1, steps=20, config=SAC_SMALL, out_dir="a", **RUN)  # once it ends
    # A run refused before it starts leaves no folder of its own behind.
    with pytest.raises(ValueError):
        train(TASK, "sac", steps=10, config={"hidden": "x"}, out_dir="b/c")
    assert not Path("b").exists()
    Path("empty").mkdir()  # and leaves a folder it was given as it was (other commands' --out
    with pytest.raises(ValueError):  # refused it for the lock file left in it)
        train(TASK, "sac", steps=10, config={"hidden": "x"}, out_dir="empty")
    assert not list(Path("empty").iterdir())
    # A lock left by a run killed before its run.json does not make --out "other files".
    Path("d").mkdir()
    Path("d/checkpoint.lock").touch()
    result = CliRunner().invoke(app, ["train", "--task", TASK, "--agent", "sac", "--steps",
                                      "10", "--eval-episodes", "0", "--out", "d", "-c",
                                      "hidden=8,8"])
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fcntl locks")
def test_a_lock_file_an_ending_run_unlinked_is_not_taken(tmp_path, monkeypatch):
    """A run that ended unlinked its lock file after releasing it: a run that had opened the
    file just before locked the unlinked one, and a third run locked a new one beside it."""
    import fcntl

    flock = fcntl.flock

    def tidied_away_first(fd, operation):  # the ending run unlinks it between open and lock
        monkeypatch.setattr(fcntl, "flock", flock)
        (tmp_path / LOCK_FILE).unlink()
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", tidied_away_first)
    with run_lock(tmp_path):
        with open(tmp_path / LOCK_FILE) as other, pytest.raises(BlockingIOError):
            flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_resuming_with_different_settings_is_refused(tmp_path):
    train(TASK, "sac", seed=0, steps=50, config=SAC_SMALL, out_dir=tmp_path, **RUN)
    # The field, both values and the option that resumes: a default changed since the run
    # began (RLPD's critic_actor_ratio, 2 -> None) read as "the same settings" to its user.
    gamma = SAC_SMALL.get("gamma", 0.99)
    with pytest.raises(ValueError, match=rf"differs in \['config'\]: config gamma was {gamma}, "
                                         rf"now 0.9; -c gamma={gamma} resumes it\)"):
        train(TASK, "sac", seed=0, steps=100, config=SAC_SMALL | {"gamma": 0.9},
              out_dir=tmp_path, **RUN)
    # ... which does not resume it when the seed changed too (it was still refused)
    with pytest.raises(ValueError, match=rf"-c gamma={gamma} gives back what it can\)"):
        train(TASK, "sac", seed=1, steps=100, config=SAC_SMALL | {"gamma": 0.9},
              out_dir=tmp_path, **RUN)
    # newuser16: "-c hidden=[32, 32] resumes it" pasted into a shell was two arguments
    hidden = SAC_SMALL.get("hidden", (256, 256))
    with pytest.raises(ValueError, match=re.escape(
            f"-c 'hidden=[{hidden[0]},{hidden[1]}]' resumes it")):
        train(TASK, "sac", seed=0, steps=100, config=SAC_SMALL | {"hidden": (8, 8)},
              out_dir=tmp_path, **RUN)
    # agents17, newuser16: "differs in ['demos']" and "['eval_seeds']" named nothing typed
    with pytest.raises(ValueError, match=re.escape(
            "differs in ['eval_seeds']; it ran with --eval-episodes 2); use another")):
        train(TASK, "sac", seed=0, steps=100, config=SAC_SMALL, out_dir=tmp_path,
              **(RUN | {"eval_episodes": 3}))
    with pytest.raises(ValueError, match=re.escape(
            "differs in ['demos']; it ran with --demo-episodes 0); use another")):
        train(TASK, "sac", seed=0, steps=100, config=SAC_SMALL, out_dir=tmp_path,
              demo_episodes=2, **RUN)
    # Another agent: sac's -c fields were offered, which td3 refuses as unknown.
    with pytest.raises(ValueError, match=r"differs in \['agent', 'config'\]: a sac run, "
                                         r"--agent sac resumes it\)"):
        train(TASK, "td3", seed=0, steps=100, config=SAC_SMALL, out_dir=tmp_path, **RUN)


def test_a_resume_with_another_intervention_source_is_refused(tmp_path):
    """Who intervened was no part of a run: a resume with or without --teleop changed the
    source mid-run, and run.json looked the same either way."""
    from envs.intervention import ScriptedTeleop, TeleopHook

    env = gym.make(TASK)
    hook = TeleopHook(ScriptedTeleop([None] * 100), env.action_space)
    env.close()
    # ... and a human intervening on an agent that keeps the corrections as its own
    # transitions alone, or never trains on them, is told so (serl21: ran without a word)
    with pytest.warns(UserWarning, match="sac keeps a human's corrections as its own "
                                         r"transitions \(online buffer only\)"):
        train(TASK, "sac", seed=0, steps=20, config=SAC_SMALL, out_dir=tmp_path,
              intervene=hook, **RUN)
    with pytest.warns(UserWarning, match="bc with online_updates_per_step=0 keeps a human's "
                                         "corrections but never trains on them"):
        train(TASK, "bc", seed=0, steps=5, config={"hidden": (8,), "pretrain_steps": 1},
              out_dir=tmp_path / "bc", intervene=hook, demo_episodes=1, **RUN)
    assert json.loads((tmp_path / "run.json").read_text())["interventions"] == "ScriptedTeleop"
    with pytest.raises(ValueError, match=r"differs in \['interventions'\]"):
        train(TASK, "sac", seed=0, steps=40, config=SAC_SMALL, out_dir=tmp_path, **RUN)


def test_iql_that_needs_each_rows_connector_is_refused_before_its_run_folder(tmp_path):
    """DAIB (and IQL's reward classifier) refused in pretrain: after the demos were collected
    into a new run folder, which a rerun then took for a run without a checkpoint."""
    with pytest.raises(ValueError, match="trains on a recipe's task_id column"):
        train(TASK, "iql", seed=0, steps=10, config={"daib": True}, demo_episodes=1,
              out_dir=tmp_path / "run", **RUN)
    assert not (tmp_path / "run").exists()
    # ODA always does: its --demo-episodes were recorded into the folder, then refused.
    with pytest.raises(ValueError, match=r"trains on a recipe's task_id column .*paper004"):
        train(TASK, "oda", seed=0, steps=10, demo_episodes=1, out_dir=tmp_path / "oda", **RUN)
    assert not (tmp_path / "oda").exists()
    # ... but a saved dataset with the column is what ODA learns from (a recipe run's demos.npz)
    from benchmark.train import _has_task_ids

    np.savez(tmp_path / "with_ids.npz", action=np.zeros((1, 3)), task_id=np.zeros(1, np.int64))
    np.savez(tmp_path / "without.npz", action=np.zeros((1, 3)))
    assert _has_task_ids(tmp_path / "with_ids.npz") and not _has_task_ids(tmp_path / "without.npz")


def test_residual_demos_without_the_base_action_are_refused_before_the_run_folder(tmp_path):
    """Residual pretraining needs pi_H(s) per row: demos without it were refused by the agent,
    after run.json was written."""
    train(TASK, "residual_sac", seed=0, steps=0, out_dir=tmp_path / "recorded",
          demo_episodes=1, **RUN)
    with np.load(tmp_path / "recorded" / "demos.npz") as data:
        assert "base_action" in data.files  # a residual run records it
        np.savez(tmp_path / "plain.npz", **{k: data[k] for k in data.files if k != "base_action"})
    with pytest.raises(ValueError, match="lack the column 'base_action' .* that residual_sac "
                                         "learns from"):
        train(TASK, "residual_sac", seed=0, steps=10, demos=tmp_path / "plain.npz",
              out_dir=tmp_path / "run", **RUN)
    assert not (tmp_path / "run").exists()


def test_demonstrations_from_the_p_controller_reach_pretrain(tmp_path, capsys):
    config = SAC_SMALL | {"demo_batch_size": 8, "pretrain_steps": 5}
    result = train(TASK, "td3_lfd", seed=0, steps=60, config=config, out_dir=tmp_path,
                   demo_episodes=2, **(RUN | {"progress": True}))
    assert (tmp_path / "demos.npz").is_file()
    assert len(result.agent.demo_buffer) > 0
    assert result.agent.gradient_steps > 5
    # The offline phase is announced: AWAC's 10,000 steps ran minutes without output (newuser22)
    assert re.search(r"td3_lfd: 5 offline gradient steps on \d+ transitions before the first "
                     r"env step", capsys.readouterr().err)


def _run_on_another_runs_demos(tmp_path, monkeypatch) -> dict:
    """`first` records demos (demos.npz), `run` (20 steps) trains on them, as typed from
    tmp_path: `first/demos.npz`. Returns the config to resume `run` with."""
    config = SAC_SMALL | {"demo_batch_size": 8, "pretrain_steps": 2}
    train(TASK, "td3_lfd", seed=0, steps=20, config=config, out_dir=tmp_path / "first",
          demo_episodes=1, **RUN)
    monkeypatch.chdir(tmp_path)
    train(TASK, "td3_lfd", seed=0, steps=20, config=config, out_dir="run",
          demos="first/demos.npz", **RUN)
    return config


def test_a_run_resumes_with_its_demos_spelled_another_way(tmp_path, monkeypatch):
    """run.json kept --demos as typed: resumed from another working directory, or with
    $PWD/data for data, the run read as another one ("differs in ['demos']")."""
    config = _run_on_another_runs_demos(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path / "first")
    result = train(TASK, "td3_lfd", seed=0, steps=40, config=config, out_dir="../run",
                   demos=tmp_path / "first" / "demos.npz", **RUN)
    assert result.steps == 40
    with pytest.raises(ValueError, match=r"differs in \['demos'\]"):  # other demos still not
        train(TASK, "td3_lfd", seed=0, steps=60, config=config, out_dir="../run",
              demos="../run/demos.npz", **RUN)


def test_demos_under_another_reward_are_refused_unless_the_agent_relabels_or_imitates(
        tmp_path):
    """Sparse demos trained a dense run with a warning alone, their rewards learnt beside the
    run's (matrix18). IQL with its reward classifier is refused under the sparse reward ("train
    it with -e reward=dense"), and then warned that its demos were recorded under another
    reward: every run of it, for rewards it replaces with its classifier's; BC reads none."""
    import warnings

    from benchmark.train import check_demos_folder

    (tmp_path / "demos.npz").write_bytes(b"")
    (tmp_path / "run.json").write_text(json.dumps({"task_id": TASK, "env_kwargs": {}}))
    with pytest.raises(ValueError, match=r"demos .*demos.npz were recorded with reward=sparse, "
                                         r"this run's is reward=dense: their rows' rewards are "
                                         r"another function's"):
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "dense"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "dense"}, relabelled=True)
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "dense"}, imitator="bc")
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "sparse"})  # the default
    with pytest.warns(UserWarning, match="other env kwargs"):  # both rewards success labels
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "classifier"})
    with pytest.warns(UserWarning, match="goal_noise_mm"):  # the others still count
        check_demos_folder(tmp_path / "demos.npz", TASK, {"reward": "dense",
                                                          "goal_noise_mm": 1.0},
                           relabelled=True)


def test_localize_takes_demos_of_any_reward_and_scripted_baselines_ignore_theirs(tmp_path):
    """Localize regresses the socket's offset and reads no reward: sparse demos were refused
    for its dense-reward run (agents19). A scripted baseline learns nothing: demos given to it
    were loaded, copied into the run and ignored without a word."""
    (tmp_path / "demos.npz").write_bytes(b"")
    (tmp_path / "run.json").write_text(json.dumps({"task_id": TASK, "env_kwargs": {}}))
    with pytest.raises(ValueError) as refused:  # past the demos' check: an empty file
        train(TASK, "localize", seed=0, steps=5, out_dir=tmp_path / "loc",
              demos=tmp_path / "demos.npz", **(RUN | {"env_kwargs": {"reward": "dense"}}))
    assert "another function's" not in str(refused.value)
    with pytest.warns(UserWarning, match="random_search is a scripted baseline and learns "
                                         "nothing: the demos given are ignored"):
        train(TASK, "random_search", seed=0, steps=5, out_dir=tmp_path / "rs",
              demos=tmp_path / "demos.npz", **RUN)
    assert not (tmp_path / "rs" / "demos.npz").exists()


@pytest.mark.parametrize("agent", ["straight_down", "random_search", "spiral_search"])
def test_a_blind_search_on_the_task_frame_is_refused(tmp_path, agent):
    """With obs_frame='task' the searches' "hold the start x, y" drove to the socket's axis:
    5/5 from a 10-20 mm start offset, where they score 0/5 in the start frame (agents20)."""
    with pytest.raises(ValueError, match=f"{agent} searches around the x, y an episode starts "
                                         "at, read from tcp_pose in the start frame; with "
                                         "obs_frame='task'"):
        train(TASK, agent, seed=0, steps=0, out_dir=tmp_path / agent,
              **(RUN | {"env_kwargs": {"obs_frame": "task"}}))
    assert not (tmp_path / agent).exists()


def test_a_run_resumes_after_its_demos_moved(tmp_path, monkeypatch):
    """A resumed run reads its own demos.npz, never --demos again: one whose folder had moved
    (or was being extended) was refused, "demos first/demos.npz do not exist"."""
    config = _run_on_another_runs_demos(tmp_path, monkeypatch)
    (tmp_path / "first" / "demos.npz").rename(tmp_path / "moved.npz")
    result = train(TASK, "td3_lfd", seed=0, steps=40, config=config, out_dir="run",
                   demos="first/demos.npz", **RUN)
    assert result.steps == 40
    with pytest.raises(ValueError, match="do not exist"):  # a new run still needs them
        train(TASK, "td3_lfd", seed=0, steps=20, config=config, out_dir="other",
              demos="first/demos.npz", **RUN)


def test_cli_train_then_eval(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(app, [
        "train", "--task", TASK, "--agent", "residual_sac", "--steps", "60", "--seed", "0",
        "-c", "hidden=32,32", "-c", "batch_size=16", "-c", "learning_starts=30",
        "-e", "goal_noise_mm=1", "-e", "init_offset_mm=[0,3]", "--out", str(out),
        "--eval-every", "0", "--eval-episodes", "2", "--no-progress",
    ])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["env_kwargs"]["init_offset_mm"] == [0, 3]
    report = tmp_path / "eval.json"
    res = runner.invoke(app, ["eval", "--task", TASK, "--checkpoint", str(out), "--episodes", "3",
                              "--json-out", str(report)])
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    assert len(data["episodes"]) == 3 and data["env_kwargs"]["goal_noise_mm"] == 1
    assert 0.0 <= data["summary"]["success_ci95_low"] <= data["summary"]["success_ci95_high"]
    assert not math.isnan(data["summary"]["peak_force_n_mean"])
    other = ["eval", "--task", "InsertBench/USB-v0", "--checkpoint", str(out), "--episodes", "1"]
    res = runner.invoke(app, other)
    assert res.exit_code != 0 and "--allow-other-task" in res.output
    res = runner.invoke(app, [*other, "--allow-other-task"])
    assert "--allow-other-task" not in res.output


def test_cli_rejects_bad_config_with_the_field_name(tmp_path):
    res = CliRunner().invoke(app, ["train", "--task", TASK, "--agent", "sac", "--steps", "10",
                                   "-c", "gama=0.9", "--out", str(tmp_path / "x"),
                                   "--no-progress"])
    assert res.exit_code != 0
    assert "gama" in res.output and "gamma" in res.output
    assert not (tmp_path / "x").exists()


def test_interventions_are_executed_flagged_and_become_demonstrations(tmp_path):
    taken = []  # a constant action every other step stands in for a human

    def human(obs, action):
        if len(taken) % 2:  # every other step
            taken.append(False)
            return None
        taken.append(True)
        return np.full(3, 0.25, np.float32)

    config = SAC_SMALL | {"demo_batch_size": 8, "pretrain_steps": 0}
    result = train(TASK, "td3_lfd", seed=0, steps=40, config=config, out_dir=tmp_path,
                   intervene=human, demo_episodes=1, **RUN)
    demo = result.agent.demo_buffer
    n_demo = int(json.loads((tmp_path / "pretrain.json").read_text())["pretrain/transitions"])
    assert len(demo) == n_demo + sum(taken) == n_demo + 20
    np.testing.assert_allclose(demo.action[n_demo:n_demo + 20], 0.25)
    assert demo.intervened[n_demo:n_demo + 20].all() and not demo.intervened[:n_demo].any()
    assert result.agent.buffer.intervened[:40].sum() == 20


def test_agents_that_need_demos_get_controller_demos_by_default(tmp_path):
    config = SAC_SMALL | {"demo_batch_size": 8, "pretrain_steps": 1}
    result = train(TASK, "td3_lfd", seed=0, steps=20, config=config, out_dir=tmp_path, **RUN)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["demos"] == {"p_controller_episodes": 20}
    assert len(result.agent.demo_buffer) >= 20


@pytest.mark.parametrize("task_id", TASK_IDS)
@pytest.mark.parametrize("agent_name,budget", [("p_controller", 0), ("residual_sac", 60)])
def test_matrix_run_cell_accepts_what_train_returns(tmp_path, task_id, agent_name, budget):
    """The matrix room's default cell function runs this runner and stores its result."""
    cell = Cell(
        task_id=task_id, env_kwargs={"goal_noise_mm": 1.0}, agent=agent_name,
        agent_config=SAC_SMALL if budget else {}, seed=0, budget_steps=budget, eval_every=30,
        eval_episodes=2, eval_seeds=(1_000_000, 1_000_001),
    )
    result = run_cell(cell, tmp_path)
    result.validate(cell)
    assert result.env_steps == budget
    assert [e["seed"] for e in result.final.episodes] == [1_000_000, 1_000_001]
    assert [e.env_steps for e in result.curve][-1] == budget
    assert result.artifacts_path == str(tmp_path)


def test_minari_demonstrations_from_dataset_collect_reach_pretrain(tmp_path):
    """`insertbench dataset collect` output (Minari) is a valid `demos=` for the runner."""
    from benchmark.datasets import CollectConfig, collect
    from benchmark.train import load_demos

    config = CollectConfig("InsertBench/USB-v0", episodes=2, noise=0.0, demos=True,
                           max_steps=20)
    collect(config, tmp_path / "data", progress=False)
    dataset = load_demos(tmp_path / "data")
    n = len(dataset["action"])
    assert dataset["obs"]["tcp_pose"].shape == (n, 6) == dataset["next_obs"]["tcp_pose"].shape
    assert dataset["terminated"].sum() == 2 and dataset["is_success"].sum() == 2
    np.testing.assert_array_equal(dataset["obs"]["tcp_pose"][1], dataset["next_obs"]["tcp_pose"][0])
    result = train("InsertBench/USB-v0", "td3_lfd", seed=0, steps=20,
                   config=SAC_SMALL | {"demo_batch_size": 8, "pretrain_steps": 2},
                   out_dir=tmp_path / "run", demos=tmp_path / "data",
                   env_kwargs={}, eval_episodes=1, progress=False)
    assert len(result.agent.demo_buffer) == n
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["demos"] == str(tmp_path / "data")


def test_a_checkpoint_that_cannot_be_written_names_its_folder_and_keeps_the_last_one(tmp_path):
    """A full disk ended training with safetensors' "No space left on device", naming no file,
    and left the part written in checkpoint.tmp, holding the space the next try needs."""
    from safetensors import SafetensorError

    from benchmark.train import swap_in_checkpoint

    swap_in_checkpoint(tmp_path, lambda tmp: (tmp / "weights").write_text("kept"))

    def disk_full(tmp: Path) -> None:
        (tmp / "weights").write_text("half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    with pytest.raises(OSError, match=f"could not write the checkpoint in {tmp_path}: .*space"):
        swap_in_checkpoint(tmp_path, disk_full)
    assert (tmp_path / "checkpoint/weights").read_text() == "kept"
    assert not (tmp_path / "checkpoint.tmp").exists()


def test_a_resume_on_another_torch_thread_count_is_warned_of(tmp_path):
    """A run's floats depend on torch's thread count, which run.json did not record: a resume
    with another --torch-threads (or on another machine's default) ended in other weights
    without a word (newuser17)."""
    import warnings

    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train(TASK, "sac", seed=0, steps=10, config=SAC_SMALL, out_dir=tmp_path / "r", **RUN)
        assert json.loads((tmp_path / "r" / "run.json").read_text())["torch_threads"] == 1
        with warnings.catch_warnings(record=True) as caught:  # the same count: no word
            warnings.simplefilter("always")
            train(TASK, "sac", seed=0, steps=12, config=SAC_SMALL, out_dir=tmp_path / "r",
                  **RUN)
        assert not [w for w in caught if "torch threads" in str(w.message)]
        torch.set_num_threads(2)
        with pytest.warns(UserWarning, match=r"trained on 1 torch thread, this resume on 2: "
                                             r"its weights will not be an uninterrupted run's; "
                                             r"--torch-threads 1 resumes it as one"):
            train(TASK, "sac", seed=0, steps=14, config=SAC_SMALL, out_dir=tmp_path / "r",
                  **RUN)
    finally:
        torch.set_num_threads(threads)


def test_collected_demonstrations_are_the_controllers_successes():
    """Every controller episode was kept: on USB-v1 at +-10 mm 6 of 20 were jammed time-outs,
    60% of the rows BC cloned and RLPD sampled as demonstrations (serl18). Papers 002 and 003
    train on successful demonstrations: failed attempts take the next seed."""
    from benchmark.train import collect_demos

    env = gym.make("InsertBench/USB-v1", goal_noise_mm=1.0, init_offset_mm=(0.0, 10.0),
                   obs_frame="task", max_episode_steps=50)
    demos = collect_demos(env, make_base_policy(env), 4)
    ends = np.flatnonzero(demos["terminated"] | demos["truncated"])
    assert len(ends) == 4 and demos["terminated"][ends].all()  # all four inserted
    short = gym.make("InsertBench/USB-v1", max_episode_steps=2)
    with pytest.raises(ValueError, match=r"the controller succeeded in 0 of 20 episodes, short "
                                         r"of the 1 demonstrations asked for") as refused:
        collect_demos(short, make_base_policy(short), 1)
    assert "ended early" not in str(refused.value)  # time-outs: the time limit's advice

    class FalsePositives(gym.Wrapper):  # a learned reward that fires at the first step
        def step(self, action):
            obs, reward, _, truncated, info = self.env.step(action)
            return obs, reward, True, truncated, info

    early = FalsePositives(gym.make("InsertBench/USB-v1"))
    with pytest.raises(ValueError, match=r"succeeded in 0 of 20 episodes, .*; 20 of the "
                                         r"failures were ended early by the env without a "
                                         r"success \(a learned reward's false positives"):
        collect_demos(early, make_base_policy(early), 1)


def test_a_run_whose_demonstrations_cannot_be_made_leaves_no_folder(tmp_path):
    """They were recorded after run.json: a failure left the folder, and a rerun recorded
    them all again before failing the same way (diff23)."""
    with pytest.raises(ValueError, match=r"short of the 1 demonstrations asked for: .*; give "
                                         r"demos"):
        train(TASK, "bc", seed=0, steps=5, out_dir=tmp_path / "run", demo_episodes=1,
              env_kwargs={"max_episode_steps": 2}, eval_episodes=0, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_curve_of_one_evaluation_draws_its_interval(tmp_path, monkeypatch):
    """A band over one step has no width: a run with one evaluation was a dot at 1.0 beside a
    table that read [0.207, 1.000] (bench19)."""
    import matplotlib.axes

    from benchmark.train import plot_learning_curve

    drawn = []
    errorbar = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, *a, **k: drawn.append(k["yerr"]) or errorbar(self, *a, **k))
    summary = {"success_rate": 1.0, "success_ci95_low": 0.207, "success_ci95_high": 1.0,
               "mean_return": 1.0, "effective_trials": 1, "episodes": 5}
    plot_learning_curve([{"env_steps": 100, "summary": summary}], tmp_path / "one.png")
    assert (tmp_path / "one.png").stat().st_size > 0
    assert len(drawn) == 1 and np.allclose(np.asarray(drawn[0], float), [[0.793], [0.0]])
    plot_learning_curve([{"env_steps": 100, "summary": summary},
                         {"env_steps": 200, "summary": summary}], tmp_path / "two.png")
    assert len(drawn) == 1  # two points: the band shows it


def test_a_runs_demos_recorded_under_other_dynamics_are_named(tmp_path):
    """A collection's dynamics were checked, a run's demos.npz not: recorded before a timestep
    or clearance changed, it trained a run of today's task without a word (data19)."""
    train("InsertBench/USB-v1", "bc", seed=0, steps=0, out_dir=tmp_path / "first",
          demo_episodes=1, eval_episodes=0, progress=False, config={"pretrain_steps": 1})
    run_json = tmp_path / "first" / "run.json"
    run = json.loads(run_json.read_text())
    assert len(run["task_version_key"]) == 64
    kwargs = {"seed": 0, "steps": 0, "eval_episodes": 0, "progress": False,
              "config": {"pretrain_steps": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the same dynamics: nothing said
        train("InsertBench/USB-v1", "bc", out_dir=tmp_path / "same",
              demos=tmp_path / "first" / "demos.npz", **kwargs)
    run_json.write_text(json.dumps(run | {"task_version_key": "0" * 64}))
    with pytest.warns(UserWarning, match=r"were recorded under task version key 000000000000, "
                                         r"where this InsertBench's InsertBench/USB-v1 is "):
        train("InsertBench/USB-v1", "bc", out_dir=tmp_path / "other",
              demos=tmp_path / "first" / "demos.npz", **kwargs)


def test_a_run_resumed_on_other_dynamics_says_so(tmp_path):
    """run.json records the task version key, but a resume never compared it: a run carried on
    across a change of the task's dynamics without a word (diff25)."""
    kwargs = {"seed": 0, "eval_episodes": 0, "progress": False, "checkpoint_every": 5,
              "config": SAC_SMALL | {"learning_starts": 5, "random_steps": 5}}
    train("InsertBench/USB-v1", "sac", steps=10, out_dir=tmp_path / "run", **kwargs)
    run_json = tmp_path / "run" / "run.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the same dynamics: nothing said
        train("InsertBench/USB-v1", "sac", steps=15, out_dir=tmp_path / "run", **kwargs)
    run_json.write_text(json.dumps(json.loads(run_json.read_text())
                                   | {"task_version_key": "0" * 64}))
    with pytest.warns(UserWarning, match=r"was trained on InsertBench/USB-v1 under task version "
                                         r"key 000000000000; this code builds it as"):
        train("InsertBench/USB-v1", "sac", steps=20, out_dir=tmp_path / "run", **kwargs)


class _EndsAtOnce(gym.Wrapper):
    """A learned reward that fires on the first step, without the simulator's success."""

    def step(self, action):
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, True, truncated, info | {"is_success": False}


@pytest.mark.parametrize(("own_demos", "advice"), [
    ("demos of your own", "fewer false positives, or demos of your own)"),
    (None, "a classifier with fewer false positives)")])  # train-async's: no --demos (serl24)
def test_demonstrations_cut_short_by_the_env_say_what_to_give_instead(own_demos, advice):
    from benchmark.train import DemonstrationsShort, collect_demos

    env = _EndsAtOnce(gym.make(tests.standin_env.ENV_ID))
    with pytest.raises(DemonstrationsShort) as err:
        collect_demos(env, env.unwrapped.p_controller(), 1, own_demos=own_demos)
    assert str(err.value).endswith(advice) and "ended early by the env" in str(err.value)


def test_demonstrations_that_replay_one_episode_are_said_to():
    """data24: on a task without start or goal noise the N demonstrations were N copies of one
    episode, counted as N without a word."""
    from benchmark.train import collect_demos, make_base_policy

    env = gym.make("InsertBench/USB-v0")
    with pytest.warns(UserWarning, match="the 2 demonstrations are 1 distinct episode: the task "
                                         "has no start or goal noise"):
        collect_demos(env, make_base_policy(env), 2)
    noisy = gym.make("InsertBench/USB-v0", init_offset_mm=(0.0, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collect_demos(noisy, make_base_policy(noisy), 2)
