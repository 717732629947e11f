"""Submission builders and the tiny track of the leaderboard tests.

The real tracks evaluate 50 episodes per task; `tiny_track` keeps every test to a few episodes
while exercising the same code (it is inserted into `leaderboards.tracks.TRACKS`).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import envs
from agents import make_agent
from leaderboards import tracks
from leaderboards.tracks import Track, TrackTask

TINY = "tiny"
STATE = {"reward": "sparse", "goal_noise_mm": 1.0, "obs_mode": "state"}


@pytest.fixture
def tiny_track(monkeypatch: pytest.MonkeyPatch) -> Track:
    track = Track(TINY, "USB and D-sub, 2 episodes each (tests)",
                  (TrackTask("USB", "InsertBench/USB-v0", STATE),
                   TrackTask("DSub", "InsertBench/DSub-v0", STATE)), 2, "tests only")
    monkeypatch.setitem(tracks.TRACKS, TINY, track)
    return track


def write_toml(root: Path, *, kind: str = "agent", policy: str = 'path = "policy"',
               track: str = TINY, name: str = "P-controller") -> None:
    (root / "submission.toml").write_text(f'''
name = "{name}"
authors = ["A. Tester"]
method = "p_controller"
track = "{track}"

[policy]
kind = "{kind}"
{policy}

[training]
env_steps = 0
wall_clock_s = 0
hardware = "test"
''')


def p_controller_checkpoint(path: Path, **env_kwargs) -> Path:
    """Save paper 000's P-controller as an agent checkpoint for USB with ``env_kwargs``."""
    env = gym.make("InsertBench/USB-v0", **(STATE | env_kwargs))
    agent = make_agent("p_controller", env.observation_space, env.action_space,
                       base_policy=envs.p_controller(env))
    agent.save(path)
    return path


def agent_submission(root: Path, **env_kwargs) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    p_controller_checkpoint(root / "policy", **env_kwargs)
    write_toml(root)
    return root


def onnx_submission(root: Path, weight: np.ndarray, nan_output: bool = False,
                    offset: float = 0.0, noise: dict | None = None,
                    dropout: bool | None = None) -> Path:
    """An ONNX policy action = tanh(tcp_pose @ weight [+ RandomUniform(**noise)]) + offset
    (or sqrt(-1 - ...) = NaN); ``dropout``: a Dropout(0.5) on tcp_pose, in training mode or
    not."""
    x = helper.make_tensor_value_info("tcp_pose", TensorProto.FLOAT, [1, 6])
    y = helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, weight.shape[1]])
    nodes = [helper.make_node("MatMul", ["tcp_pose" if dropout is None else "d", "W"],
                              ["h" if noise is None else "m"])]
    if dropout is not None:
        nodes.insert(0, helper.make_node("Dropout", ["tcp_pose", "ratio", "training"], ["d"]))
    if noise is not None:
        nodes += [helper.make_node("RandomUniform", [], ["r"], shape=[1, weight.shape[1]],
                                   **noise),
                  helper.make_node("Add", ["m", "r"], ["h"])]
    if nan_output:
        nodes += [helper.make_node("Abs", ["h"], ["a"]),
                  helper.make_node("Sub", ["minus_one", "a"], ["n"]),
                  helper.make_node("Sqrt", ["n"], ["action"])]
    else:
        nodes += [helper.make_node("Tanh", ["h"], ["t"]),
                  helper.make_node("Add", ["t", "offset"], ["action"])]
    inits = [numpy_helper.from_array(weight.astype(np.float32), "W"),
             numpy_helper.from_array(np.array(-1.0, np.float32), "minus_one"),
             numpy_helper.from_array(np.array(offset, np.float32), "offset")]
    if dropout is not None:
        inits += [numpy_helper.from_array(np.array(0.5, np.float32), "ratio"),
                  numpy_helper.from_array(np.array(dropout), "training")]
    graph = helper.make_graph(nodes, "policy", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "policy").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(root / "policy" / "policy.onnx"))
    write_toml(root, kind="onnx", name="ONNX")
    return root


def tar_gz(source: Path, target: Path, extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
        for info in extra or []:
            tar.addfile(info)
    return target


def sac_submission(root: Path, **config) -> None:
    """A tiny SAC policy for the tiny track whose agent.json then claims ``config``: the agent
    it describes is built (from the submitter's config) before its weights are compared."""
    from agents import export_policy

    env = gym.make("InsertBench/USB-v0", **STATE)
    agent = make_agent("sac", env.observation_space, env.action_space,
                       {"hidden": (8, 8), "buffer_size": 16}, seed=0)
    agent.save(root / "full")
    export_policy(root / "full", root / "policy")
    for path in sorted((root / "full").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "full").rmdir()
    meta = json.loads((root / "policy" / "agent.json").read_text())
    meta["config"].update(config)
    (root / "policy" / "agent.json").write_text(json.dumps(meta))
    write_toml(root)


def make_stale(ledger, entry: dict) -> dict:
    """Mark ``entry``'s dev evaluation as made on other task version keys (the track's tasks
    changed since); returns the edited entry data."""
    path = ledger.entry_path(entry["track"], entry["entry_id"])
    data = json.loads(path.read_text())
    data["evaluations"]["dev"]["task_version_keys"] = {
        label: "0" * 64 for label in data["evaluations"]["dev"]["task_version_keys"]}
    for episode in data["evaluations"]["dev"]["episodes"]:
        episode["task_version_key"] = "0" * 64
    path.write_text(json.dumps(data))
    return data


def list_hidden_as_verified(ledger, entry: dict) -> None:
    """List ``entry``'s (edited) hidden block under its salt round as `verify` lists what it
    writes: the test stands in for a verification that wrote these numbers (on another
    machine, say), so that the recheck, not the ledger's reading, is what meets them."""
    import dataclasses

    from leaderboards.salts import verification_sha256

    rounds = ledger.salt_rounds(entry["track"])
    own = ledger.entry_round(entry)
    listed = {entry["entry_id"]: [verification_sha256(entry)]}
    rounds._write([dataclasses.replace(r, verified={**(r.verified or {}), **listed})
                   if r.number == own.number else r for r in rounds.read()])


def succeeded(episode: dict, steps: int | None = None) -> dict:
    """An episode record edited to a success after ``steps`` (its own length if None) at the
    tracks' 10 Hz, agreeing with itself as `envs.episode.record_problem` asks."""
    steps = episode["steps"] if steps is None else steps
    return {**episode, "success": True, "steps": max(steps, 1), "steps_to_success": max(steps, 1),
            "time_to_success_s": max(steps, 1) * 0.1, "failure": None, "safety_trip": None}


def flipped(episode: dict) -> dict:
    """An episode record with its outcome turned the other way, agreeing with itself."""
    if not episode["success"]:
        return succeeded(episode)
    return {**episode, "success": False, "steps_to_success": None, "time_to_success_s": None}
