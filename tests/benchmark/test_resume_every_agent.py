"""Exact resumption for every registered agent the other tests do not already resume.

test_train.py resumes sac, residual_td3 and td3_lfd; test_serl.py hil_serl; test_vice.py vice.
Here each remaining agent trains 100 steps on the stand-in straight, and again with a crash at
step 90 (after the mid-episode checkpoint at step 80) and a rerun: weights, optimizer state, rng
streams, replay buffers, runner state, evaluations and every executed training action must be
the same. Agents that need offline data get it the way ``train`` takes it (``demo_episodes``, or
``demos=`` a dataset with the columns they read). ODA, the one agent with per-episode state
that may train on several worlds, is also resumed with ``num_envs=2``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark.train as runner_module
import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents.registry import agent_names
from benchmark.recipes import socket_offsets
from benchmark.train import collect_demos, make_base_policy, make_env, train
from tests.benchmark.test_train import _assert_same_final_state

torch.set_num_threads(1)

TASK = "tests.standin_env:InsertBenchStandIn/PegPoint-v0"
STATE = {"goal_noise_mm": 1.0}
PIXELS = {"goal_noise_mm": 1.0, "obs_mode": "state+pixels", "image_size": 16}
SMALL = {"hidden": (16, 16), "batch_size": 16, "learning_starts": 30, "random_steps": 30}
AWAC_SMALL = {"actor_hidden": (16,), "critic_hidden": (16,), "batch_size": 16,
              "pretrain_steps": 5}
LOCALIZE_SMALL = {"hidden": (16,), "image_feature_dim": 8, "batch_size": 8, "pretrain_steps": 3,
                  "action_scale_m": 0.01}

#: agent -> (config, extra train() kwargs, env kwargs). "demos": "labelled" is the P-controller's
#: demonstrations with the columns localize / state_iql / oda read (socket_offset_m, task_id,
#: is_demo).
CASES = {
    "td3": (SMALL, {}, STATE),
    "residual_sac": (SMALL, {}, STATE),
    "rlpd": (SMALL | {"num_qs": 3, "utd_ratio": 2}, {"demo_episodes": 2}, STATE),
    "awac": (AWAC_SMALL, {"demos": "labelled"}, STATE),  # and its 20 context demos
    "iql": ({"hidden": (16,), "batch_size": 16, "pretrain_steps": 5}, {"demo_episodes": 2},
            STATE),
    "bc": ({"hidden": (16,), "batch_size": 16, "pretrain_steps": 5,
            "online_updates_per_step": 1}, {"demo_episodes": 2}, STATE),
    "hg_dagger": ({"hidden": (16,), "batch_size": 16, "pretrain_steps": 5},
                  {"demo_episodes": 2}, STATE),
    "oda": (AWAC_SMALL | {"context_hidden": (16,), "context_size": 8, "batch_per_task": 8},
            {"demos": "labelled"}, STATE),
    "localize": (LOCALIZE_SMALL | {"search": "spiral_search"}, {"demos": "labelled"}, PIXELS),
    "state_iql": ({"hidden": (16,), "batch_size": 8, "pretrain_steps": 3, "localize_steps": 3},
                  {"demos": "labelled"}, PIXELS),
    "p_controller": ({}, {}, STATE),
    "straight_down": ({}, {}, STATE),
    "random_search": ({}, {}, STATE),
    "spiral_search": ({}, {}, STATE),
}
#: Resumed exactly by the tests named in the module docstring.
COVERED_ELSEWHERE = {"sac", "residual_td3", "td3_lfd", "hil_serl", "vice"}
ACT_AND_STEP = runner_module.act_and_step  # the runner's, before a test patches it
RUN = {"eval_every": 50, "eval_episodes": 1, "checkpoint_every": 40, "progress": False}
STEPS, CRASH_AT, CHECKPOINT = 100, 90, 80


def test_every_registered_agent_is_resumed_by_some_test():
    assert set(agent_names()) == set(CASES) | COVERED_ELSEWHERE


def _labelled_demos(env_kwargs: dict) -> dict:
    env = make_env(TASK, env_kwargs)
    data = dict(collect_demos(env, make_base_policy(env), 2))
    data["is_success"] = data["terminated"]  # the stand-in terminates on success
    data["socket_offset_m"] = socket_offsets(data)
    data["task_id"] = np.zeros(len(data["action"]), np.int64)
    data["is_demo"] = np.ones(len(data["action"]), bool)
    return data


def _recording(actions: list, crash_at: int | None = None):
    """``act_and_step`` that records each executed training action (and crashes on call
    ``crash_at``, as a kill would)."""
    def act_and_step(env, agent, obs, hook=None):
        if crash_at is not None and len(actions) == crash_at:
            raise KeyboardInterrupt
        result = ACT_AND_STEP(env, agent, obs, hook)
        actions.append(np.asarray(result[0]).copy())
        return result

    return act_and_step


def _evaluations(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "wall_clock_s"}
            for e in json.loads((run_dir / "evaluations.json").read_text())]


def _assert_same_everything(a: Path, b: Path) -> None:
    _assert_same_final_state(a, b)  # weights, optimizer moments, replay buffers
    meta_a, meta_b = (json.loads((d / "checkpoint/agent/agent.json").read_text())
                      for d in (a, b))
    for key in ("rng_state", "extra", "optimizer_param_groups"):
        assert meta_a[key] == meta_b[key], key
    state_a, state_b = (json.loads((d / "checkpoint/runner.json").read_text()) for d in (a, b))
    for state in (state_a, state_b):
        del state["train_wall_s"]
        for e in state["evaluations"]:
            del e["wall_clock_s"]
    assert state_a == state_b
    assert _evaluations(a) == _evaluations(b)


def _run_kwargs(agent_name: str) -> dict:
    """`train` kwargs of `agent_name`'s case (labelled demos collected on the spot)."""
    config, extra, env_kwargs = CASES[agent_name]
    if extra.get("demos") == "labelled":
        extra = extra | {"demos": _labelled_demos(env_kwargs)}
    return RUN | extra | {"config": config, "env_kwargs": env_kwargs}


def _first_divergence(straight: list, other: list) -> int | None:
    """The first training step whose executed action differs, or None."""
    return next((i for i, (x, y) in enumerate(zip(straight, other, strict=True))
                 if not np.array_equal(x, y)), None)


@pytest.mark.parametrize("agent_name", sorted(CASES))
def test_a_crashed_run_resumes_exactly(tmp_path, monkeypatch, agent_name):
    kwargs = _run_kwargs(agent_name)
    straight: list = []
    monkeypatch.setattr(runner_module, "act_and_step", _recording(straight))
    train(TASK, agent_name, seed=1, steps=STEPS, out_dir=tmp_path / "a", **kwargs)

    crashed: list = []
    monkeypatch.setattr(runner_module, "act_and_step", _recording(crashed, CRASH_AT))
    with pytest.raises(KeyboardInterrupt):
        train(TASK, agent_name, seed=1, steps=STEPS, out_dir=tmp_path / "b", **kwargs)
    saved = json.loads((tmp_path / "b" / "checkpoint" / "runner.json").read_text())
    assert saved["step"] == CHECKPOINT and saved["in_episode"]  # the checkpoint cut an episode
    resumed = crashed[:CHECKPOINT]
    monkeypatch.setattr(runner_module, "act_and_step", _recording(resumed))
    result = train(TASK, agent_name, seed=1, steps=STEPS, out_dir=tmp_path / "b", **kwargs)
    assert result.steps == STEPS and len(resumed) == len(straight) == STEPS
    step = _first_divergence(straight, resumed)
    assert step is None, f"the resumed run acted differently from step {step}"
    _assert_same_everything(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("agent_name", ["spiral_search", "localize"])
def test_the_final_evaluation_does_not_restart_a_cut_episode(tmp_path, monkeypatch, agent_name):
    """A run that ends mid-episode evaluates (resetting the agent) before its last checkpoint;
    extended later, it must continue the training episode where the script was, not where the
    evaluation left the agent."""
    kwargs = _run_kwargs(agent_name)
    straight: list = []
    monkeypatch.setattr(runner_module, "act_and_step", _recording(straight))
    train(TASK, agent_name, seed=1, steps=STEPS, out_dir=tmp_path / "a", **kwargs)
    extended: list = []
    monkeypatch.setattr(runner_module, "act_and_step", _recording(extended))
    train(TASK, agent_name, seed=1, steps=75, out_dir=tmp_path / "b", **kwargs)
    assert json.loads((tmp_path / "b" / "checkpoint" / "runner.json").read_text())["in_episode"]
    train(TASK, agent_name, seed=1, steps=STEPS, out_dir=tmp_path / "b", **kwargs)
    assert len(extended) == len(straight) == STEPS
    step = _first_divergence(straight, extended)
    assert step is None, f"the extended run acted differently from step {step}"
    assert _evaluations(tmp_path / "a")[-1] == _evaluations(tmp_path / "b")[-1]


def test_oda_resumes_exactly_on_two_worlds(tmp_path, monkeypatch):
    """ODA may train on N worlds (concurrent_episodes) though every world's reset re-infers its
    one shared z; the checkpoint keeps the z in use, not the one the replays re-infer."""
    from agents.oda import ODAAgent

    config, extra, env_kwargs = CASES["oda"]
    kwargs = RUN | {"config": config, "env_kwargs": env_kwargs, "demos": _labelled_demos(STATE),
                    "num_envs": 2}
    train(TASK, "oda", seed=1, steps=80, out_dir=tmp_path / "a", **kwargs)
    original_update = ODAAgent.update
    calls = {"n": 0}

    def crashing_update(self):
        calls["n"] += 1
        if calls["n"] == 60:
            raise KeyboardInterrupt
        return original_update(self)

    monkeypatch.setattr(ODAAgent, "update", crashing_update)
    with pytest.raises(KeyboardInterrupt):
        train(TASK, "oda", seed=1, steps=80, out_dir=tmp_path / "b", **kwargs)
    saved = json.loads((tmp_path / "b" / "checkpoint" / "runner.json").read_text())
    assert saved["step"] == 40 and [w["in_episode"] for w in saved["worlds"]] == [True, True]
    monkeypatch.setattr(ODAAgent, "update", original_update)
    train(TASK, "oda", seed=1, steps=80, out_dir=tmp_path / "b", **kwargs)
    _assert_same_everything(tmp_path / "a", tmp_path / "b")


def test_oda_killed_while_recording_its_context_resumes(tmp_path, monkeypatch):
    """A checkpoint was saved after pretraining and before the target task's context demos
    were recorded and given to adapt(): a run killed in between resumed, every time, into
    "call adapt(demos) before online training"."""
    from agents.oda import ODAAgent

    config, extra, env_kwargs = CASES["oda"]
    kwargs = RUN | {"config": config, "env_kwargs": env_kwargs, "demos": _labelled_demos(STATE)}
    train(TASK, "oda", seed=1, steps=40, out_dir=tmp_path / "a", **kwargs)
    original_adapt = ODAAgent.adapt

    def killed(self, demos):
        raise KeyboardInterrupt

    monkeypatch.setattr(ODAAgent, "adapt", killed)
    with pytest.raises(KeyboardInterrupt):
        train(TASK, "oda", seed=1, steps=40, out_dir=tmp_path / "b", **kwargs)
    monkeypatch.setattr(ODAAgent, "adapt", original_adapt)
    train(TASK, "oda", seed=1, steps=40, out_dir=tmp_path / "b", **kwargs)
    _assert_same_everything(tmp_path / "a", tmp_path / "b")


def test_an_older_checkpoint_without_the_agents_episode_state_is_said_inexact(tmp_path):
    """Checkpoints written before the runner kept per-episode agent state resume a scripted
    episode from its start: said, not silently different."""
    kwargs = RUN | {"env_kwargs": STATE, "eval_episodes": 0}
    train(TASK, "spiral_search", seed=1, steps=CHECKPOINT, out_dir=tmp_path, **kwargs)
    runner_json = tmp_path / "checkpoint" / "runner.json"
    state = json.loads(runner_json.read_text())
    assert state["in_episode"]
    del state["agent_episode_state"]
    runner_json.write_text(json.dumps(state))
    with pytest.warns(UserWarning, match="written before agents' per-episode state was "
                                         "checkpointed"):
        train(TASK, "spiral_search", seed=1, steps=STEPS, out_dir=tmp_path, **kwargs)
