"""A submitted ONNX policy's process of its own (`leaderboards.onnx_process`): it goes on after
one action was stopped, answers each action with its own observation's action, and imports
nothing from the working directory."""

from __future__ import annotations

import os
import signal

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401 - registers the tasks
import leaderboards.policy as policy_module
from envs.episode import PolicyError
from leaderboards.policy import _onnx_policy
from tests.leaderboards.builders import onnx_submission


@pytest.fixture
def onnx_policy(tmp_path):
    """An ONNX policy on USB-v0, action = tanh(tcp_pose[:3]) (its observation's own)."""
    onnx_submission(tmp_path / "sub", np.eye(6, 3))
    env = gym.make("InsertBench/USB-v0")
    policy = _onnx_policy(tmp_path / "sub" / "policy" / "policy.onnx", env)
    yield policy
    policy.close()
    env.close()


def _obs(value: float) -> dict[str, np.ndarray]:
    return {"tcp_pose": np.full(6, value, np.float32)}


def test_a_policy_stopped_at_an_actions_limit_goes_on_in_a_new_process(onnx_policy,
                                                                       monkeypatch):
    """After one stall (a busy machine) the killed process answered every later action with
    "process ended": each later episode of a sim-to-sim block failed (diff22)."""
    monkeypatch.setattr(policy_module, "ACTION_TIME_LIMIT_S", 0.5)
    first = onnx_policy.process.pid
    os.kill(first, signal.SIGSTOP)  # stalled, as under load
    with pytest.raises(PolicyError, match="took over 0.5 s for one action and was stopped"):
        onnx_policy(_obs(0.1))
    onnx_policy.reset(seed=1)
    np.testing.assert_allclose(onnx_policy(_obs(0.2)), np.tanh([0.2] * 3), rtol=1e-6)
    assert onnx_policy.process.pid != first


def test_an_interrupted_action_does_not_answer_the_next(onnx_policy, monkeypatch):
    """A Ctrl-C while waiting left the reply in the pipe: the next action was the previous
    observation's (diff22)."""
    process = onnx_policy.process
    poll = process._replies.poll

    def interrupted(timeout):
        poll(timeout)  # the reply arrived, but the wait ends in a Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(process._replies, "poll", interrupted)
    with pytest.raises(KeyboardInterrupt):
        onnx_policy(_obs(0.6))
    np.testing.assert_allclose(onnx_policy(_obs(-0.3)), np.tanh([-0.3] * 3), rtol=1e-6)


def test_the_policys_process_imports_nothing_from_the_working_directory(tmp_path,
                                                                        monkeypatch):
    """`python -m` put the working directory first on the path: a user's envs.py there was
    imported by the policy's process, and the submission blamed (diff22)."""
    monkeypatch.chdir(tmp_path)
    for name in ("envs", "onnxruntime", "numpy"):
        (tmp_path / f"{name}.py").write_text("raise SystemExit('imported from the cwd')\n")
    onnx_submission(tmp_path / "sub", np.eye(6, 3))
    env = gym.make("InsertBench/USB-v0")
    policy = _onnx_policy(tmp_path / "sub" / "policy" / "policy.onnx", env)
    np.testing.assert_allclose(policy(_obs(0.1)), np.tanh([0.1] * 3), rtol=1e-6)
    policy.close()


def test_an_output_too_large_for_an_action_is_refused_in_the_process(tmp_path):
    """A graph declaring [1, 3] returned 256 MB, three times that in both processes, and the
    transfer was outside the action's time limit (diff22)."""
    from onnx import TensorProto, helper

    from tests.leaderboards.test_bad_submissions import _onnx_submission

    state = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["action"],
                          value=helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0]))],
        "policy", [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [1, 100_000])])
    _onnx_submission(tmp_path / "sub", graph)
    env = gym.make("InsertBench/USB-v0")
    policy = _onnx_policy(tmp_path / "sub" / "policy" / "policy.onnx", env)
    with pytest.raises(PolicyError, match=r"its output has 100,000 values"):
        policy(_obs(0.0))
    policy.close()


def test_the_policys_process_holds_neither_mujoco_nor_envs(onnx_policy):
    """It imported the whole envs package (MuJoCo, Gymnasium) for two helpers: 95 MB and 0.65 s
    a policy, with every ranked entry of a track loaded at once (diff22)."""
    with open(f"/proc/{onnx_policy.process.pid}/maps") as maps:
        mapped = maps.read()
    assert "onnxruntime" in mapped and "mujoco" not in mapped.lower()
