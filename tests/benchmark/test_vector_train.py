"""Training on N worlds (`train(..., num_envs=N)`): episode seeds and bookkeeping, the
transition at an episode boundary, exact resumption, refusals, the CLI and the preset field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import envs  # noqa: F401  (registers the InsertBench tasks)
import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents.registry import agent_spec
from agents.sac import SACAgent
from benchmark.cli import app
from benchmark.preset import PresetError, check_runnable, parse_preset
from benchmark.train import make_env, train, train_episode_seed
from benchmark.vector_train import check_vector_training
from tests.benchmark.test_train import RUN, SAC_SMALL, TASK, _assert_same_final_state

torch.set_num_threads(1)


def _record_transitions(monkeypatch) -> list:
    seen = []
    original = SACAgent.observe

    def observe(self, transition):
        seen.append(transition)
        original(self, transition)

    monkeypatch.setattr(SACAgent, "observe", observe)
    return seen


def _episodes_by_world(transitions, num_envs):
    """Split the transitions (world order within each vector step) into episodes, numbered as
    the runner numbers them: in the order they start, world order breaking ties."""
    open_episode: dict[int, list] = {}
    episodes: dict[int, list] = {}
    next_number = 0
    for step in range(len(transitions) // num_envs):
        for world in range(num_envs):
            if world not in open_episode:
                open_episode[world] = episodes.setdefault(next_number, [])
                next_number += 1
        for world in range(num_envs):
            t = transitions[step * num_envs + world]
            open_episode[world].append(t)
            if t.terminated or t.truncated:
                del open_episode[world]
    return episodes


@pytest.mark.parametrize("task_id,env_kwargs", [
    (TASK, {"goal_noise_mm": 1.0}),
    ("InsertBench/USB-v0", {"max_episode_steps": 8}),
])
def test_each_episode_is_the_single_env_episode_of_its_seed(
    tmp_path, monkeypatch, task_id, env_kwargs
):
    """Every stored transition, the one that ends an episode included (its next_obs is the
    episode's final observation, not the next episode's first), is what one env gives for that
    episode's seed and actions."""
    transitions = _record_transitions(monkeypatch)
    steps = 180 if task_id == TASK else 30  # 60 (episode: 50) or 10 (episode: 8) per world
    config = SAC_SMALL | {"learning_starts": 10, "random_steps": 10}
    result = train(task_id, "sac", seed=4, steps=steps, config=config, env_kwargs=env_kwargs,
                   out_dir=tmp_path, eval_every=0, eval_episodes=1, progress=False, num_envs=3)
    assert result.steps == len(transitions) == steps
    episodes = _episodes_by_world(transitions, 3)
    assert result.episodes == len(episodes)
    ended = [k for k, e in episodes.items() if e[-1].terminated or e[-1].truncated]
    assert len(ended) >= 3  # the boundary was crossed in every world
    env = make_env(task_id, env_kwargs)
    for number, episode in episodes.items():
        obs, _ = env.reset(seed=train_episode_seed(4, number))
        for t in episode:
            for key in obs:
                np.testing.assert_array_equal(t.obs[key], obs[key])
            obs, reward, terminated, truncated, _ = env.step(t.action)
            for key in obs:
                np.testing.assert_array_equal(t.next_obs[key], obs[key])
            assert (t.reward, t.terminated, t.truncated) == (reward, terminated, truncated)
    env.close()


def test_interrupted_vector_run_resumes_mid_episode(tmp_path, monkeypatch):
    """A crash after the step-60 checkpoint (every world mid-episode) resumes to the same final
    weights and replay buffer as an uninterrupted run."""
    kwargs = RUN | {"checkpoint_every": 60, "num_envs": 2}
    train(TASK, "sac", seed=5, steps=160, config=SAC_SMALL, out_dir=tmp_path / "a", **kwargs)
    original_update = SACAgent.update
    calls = {"n": 0}

    def crashing_update(self):
        calls["n"] += 1
        if calls["n"] == 90:
            raise KeyboardInterrupt
        return original_update(self)

    monkeypatch.setattr(SACAgent, "update", crashing_update)
    with pytest.raises(KeyboardInterrupt):
        train(TASK, "sac", seed=5, steps=160, config=SAC_SMALL, out_dir=tmp_path / "b", **kwargs)
    runner = json.loads((tmp_path / "b" / "checkpoint" / "runner.json").read_text())
    assert runner["step"] == 60
    assert [w["in_episode"] for w in runner["worlds"]] == [True, True]
    assert [len(w["episode_actions"]) for w in runner["worlds"]] == [30, 30]
    monkeypatch.setattr(SACAgent, "update", original_update)
    resumed = train(TASK, "sac", seed=5, steps=160, config=SAC_SMALL, out_dir=tmp_path / "b",
                    **kwargs)
    assert resumed.steps == 160
    _assert_same_final_state(tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match=r"differs in \['num_envs'\]"):
        train(TASK, "sac", seed=5, steps=160, config=SAC_SMALL, out_dir=tmp_path / "b",
              **(kwargs | {"num_envs": 1}))


@pytest.mark.parametrize("agent,kwargs,message", [
    ("residual_td3", {}, "base policy reads one world's believed goal"),
    ("spiral_search", {}, "per-episode state"),
    ("sac", {"steps": 61}, r"multiple of num_envs \(2\)"),
    ("sac", {"intervene": lambda obs, action: None}, "intervention hook"),
    ("sac", {"num_envs": 0}, r"num_envs must be an integer in \[1, 1024\]"),
    ("sac", {"num_envs": 100_000, "steps": 100_000}, r"num_envs must be an integer in \[1, "),
])
def test_what_cannot_run_on_several_worlds_is_refused_before_anything_runs(
    tmp_path, agent, kwargs, message
):
    args = {"steps": 60, "num_envs": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        train(TASK, agent, seed=0, config=SAC_SMALL if agent == "sac" else {},
              out_dir=tmp_path / "run", progress=False, **args)
    assert not (tmp_path / "run").exists()


def test_iql_labelling_trials_by_their_classifier_verdict_is_refused_on_several_worlds(
    tmp_path,
):
    """Regression: IQL is concurrent_episodes, but with policy_online_rows='classifier_success'
    it keeps the running trial's rows and labels them all by R_psi's verdict when a trial
    ends; N interleaved worlds put their rows in one trial, all labelled by whichever world's
    trial ended first. Refused, as per-episode state is; the other settings still run."""
    config = {"reward_classifier": True, "policy_online_rows": "classifier_success"}
    with pytest.raises(ValueError, match="iql cannot train on num_envs > 1: policy_online_rows="):
        train(TASK, "iql", seed=0, config=config, steps=60, num_envs=2,
              out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    spec = agent_spec("iql")
    # R_psi's verdict ends each trial (`end_trials_on_own_verdict`), bound into one env
    with pytest.raises(ValueError, match="reward_classifier=true ends each trial where its own "
                                         "classifier says success"):
        check_vector_training(spec, 2, 60, config | {"policy_online_rows": "all"})
    check_vector_training(spec, 2, 60, {"policy_online_rows": "all"})
    check_vector_training(spec, 1, 60, config)


def test_cli_train_on_two_worlds_from_a_relative_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["train", "--task", TASK, "--agent", "sac", "-c", "hidden=32,32",
              "-c", "batch_size=16", "-c", "learning_starts=20", "--eval-every", "0",
              "--eval-episodes", "1", "--no-progress", "--out", "run", "--num-envs", "2",
              "--torch-threads", "1"]
    res = runner.invoke(app, [*common, "--steps", "40"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["num_envs"] == 2
    res = runner.invoke(app, [*common, "--steps", "41"])
    assert res.exit_code != 0 and "multiple of num_envs" in res.output


def test_preset_num_envs_reaches_the_cell_and_is_checked():
    preset = {
        "name": "vec", "tasks": [TASK], "seeds": [0], "eval_episodes": 1, "eval_every": 40,
        "eval_seeds": {"start": 1_000_000},
        "agents": [{"name": "sac", "budget_steps": 80, "num_envs": 2},
                   {"name": "sac", "label": "one", "budget_steps": 80}],
    }
    cells = parse_preset(preset).cells
    assert [c.num_envs for c in cells] == [2, 1]
    assert cells[0].identity()["num_envs"] == 2 and "num_envs" not in cells[1].identity()
    bad = preset | {"agents": [{"name": "sac", "budget_steps": 81, "num_envs": 2}]}
    with pytest.raises(PresetError, match="multiple of num_envs"):
        parse_preset(bad)
    residual = preset | {"agents": [{"name": "residual_sac", "budget_steps": 80, "num_envs": 2}]}
    with pytest.raises(PresetError, match="base policy"):
        check_runnable(parse_preset(residual).cells)


def test_single_env_runs_leave_num_envs_out_of_their_description(tmp_path):
    train(TASK, "sac", seed=0, steps=0, config=SAC_SMALL, out_dir=tmp_path, eval_every=0,
          eval_episodes=0, progress=False)
    assert "num_envs" not in json.loads((tmp_path / "run.json").read_text())


@pytest.mark.parametrize("num_envs", [1, 2])
def test_stop_when_ends_the_run_at_the_evaluation_that_says_so(tmp_path, num_envs):
    seen = []

    def stop_when(summaries):
        seen.append(len(summaries))
        return len(summaries) == 2

    result = train(TASK, "sac", seed=0, steps=400, config=SAC_SMALL, out_dir=tmp_path,
                   num_envs=num_envs, stop_when=stop_when, **RUN | {"eval_every": 60})
    assert seen == [1, 2]  # asked after every periodic evaluation, not after the stop
    assert len(result.evaluations) == 2  # the stopping evaluation is the final one
    assert 120 <= result.steps < 400 and result.evaluations[-1].env_steps == result.steps
    evaluations = json.loads((tmp_path / "evaluations.json").read_text())
    assert [e["env_steps"] for e in evaluations] == [e.env_steps for e in result.evaluations]
    # A run that stopped early is finished: rerun, it trained another evaluation period and
    # changed its final evaluation each time (bench21)
    again = train(TASK, "sac", seed=0, steps=400, config=SAC_SMALL, out_dir=tmp_path,
                  num_envs=num_envs, stop_when=lambda s: len(s) >= 2,
                  **RUN | {"eval_every": 60})
    assert again.steps == result.steps
    assert json.loads((tmp_path / "evaluations.json").read_text()) == evaluations

