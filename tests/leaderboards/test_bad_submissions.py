"""Bad submissions: one clear line on stderr, exit code 1, and nothing written to the ledger.

Run through the CLI from the submission's parent directory with relative paths, as users type.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from benchmark.cli import app
from leaderboards import submission as submission_module
from tests.leaderboards.builders import (
    TINY,
    agent_submission,
    onnx_submission,
    p_controller_checkpoint,
    sac_submission,
    tar_gz,
    write_toml,
)

runner = CliRunner()


def _submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, *extra: str):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["leaderboard", "submit", target, "--ledger", "ledger", *extra])
    return result


def _assert_refused(result, message: str, tmp_path: Path) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("insertbench: error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output
    ledger = tmp_path / "ledger"
    assert not ledger.exists() or not any(p.is_file() for p in ledger.rglob("*")), \
        sorted(ledger.rglob("*"))


def _member(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    return info


def _nan_weights(root: Path) -> None:
    tensors = load_file(str(root / "policy" / "weights.safetensors"))
    tensors["actor.bias"] = torch.tensor([float("nan"), 0.0])
    save_file(tensors, str(root / "policy" / "weights.safetensors"))


def _bad(tmp_path: Path, case: str) -> tuple[str, list[str], str]:
    """Build bad submission ``case`` under tmp_path; returns (path, extra args, message)."""
    sub = tmp_path / "sub"
    if case == "malformed_toml":
        agent_submission(sub)
        (sub / "submission.toml").write_text('name = "x\ntrack = ')
        return "sub", [], "not valid TOML"
    if case == "deep_toml":  # a RecursionError, "unexpected error" (leader20)
        agent_submission(sub)
        (sub / "submission.toml").write_text("name = " + "[" * 2000 + "]" * 2000 + "\n")
        return "sub", [], "submission.toml is not valid TOML for a submission: its values nest"
    if case == "unknown_track":
        agent_submission(sub)
        write_toml(sub, track="paper999")
        return "sub", [], "unknown track 'paper999'"
    if case == "track_mismatch":
        agent_submission(sub)
        return "sub", ["--track", "paper000"], "--track paper000 but submission.toml says"
    if case == "track_typo":  # it said the two differ, not that paper0000 is no track
        agent_submission(sub)
        return "sub", ["--track", "paper0000"], "--track: unknown track 'paper0000'; tracks: "
    if case == "missing_weights":
        agent_submission(sub)
        (sub / "policy" / "weights.safetensors").unlink()
        return "sub", [], "policy/weights.safetensors is missing"
    if case == "missing_toml":
        p_controller_checkpoint(sub / "policy")
        return "sub", [], "has no submission.toml"
    if case == "missing_path":
        return "nowhere", [], "does not exist"
    if case == "archive_traversal":
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz", [_member("../evil.txt", data=b"")])
        return "sub.tar.gz", [], "escapes the submission"
    if case == "archive_huge":  # gzip read a 20 MB header name byte by byte first (leader26)
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz")
        os.truncate(tmp_path / "sub.tar.gz", 2**30)  # sparse: no gigabyte written
        return "sub.tar.gz", [], "is 1073741824 bytes, more than a submission may be"
    if case == "archive_absolute":
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz", [_member("/etc/evil.txt")])
        return "sub.tar.gz", [], "escapes the submission"
    if case == "archive_symlink":
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz",
               [_member("policy/link.txt", kind=tarfile.SYMTYPE, link="/etc/passwd")])
        return "sub.tar.gz", [], "is a link"
    if case == "archive_hardlink":
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz",
               [_member("policy/hard.txt", kind=tarfile.LNKTYPE, link="submission.toml")])
        return "sub.tar.gz", [], "is a link"
    if case == "directory_symlink":
        agent_submission(sub)
        (sub / "policy" / "notes.txt").symlink_to("/etc/hostname")
        return "sub", [], "is a symbolic link"
    if case == "not_an_archive":
        (tmp_path / "sub.zip").write_bytes(b"PK\x03\x04")
        return "sub.zip", [], "neither a directory nor a .tar.gz"
    if case == "corrupt_archive":
        (tmp_path / "sub.tar.gz").write_bytes(b"\x1f\x8b garbage")
        return "sub.tar.gz", [], "not a readable .tar.gz"
    if case == "oversized":
        agent_submission(sub)
        (sub / "policy" / "README.txt").write_bytes(b"x" * 5000)
        return "sub", [], "bytes (max 4096)"
    if case == "pickle":
        agent_submission(sub)
        (sub / "policy" / "model.pkl").write_bytes(b"\x80\x04K\x01.")
        return "sub", [], "may hold pickles or code"
    if case == "torch_pickle":
        agent_submission(sub)
        buffer = io.BytesIO()
        torch.save({"w": torch.zeros(1)}, buffer)
        (sub / "policy" / "weights.pt").write_bytes(buffer.getvalue())
        return "sub", [], "may hold pickles or code"
    if case == "unknown_type":
        agent_submission(sub)
        (sub / "policy" / "run.sh").write_text("echo hi")
        return "sub", [], "unknown file type"
    if case == "nan_weights":
        agent_submission(sub)
        _nan_weights(sub)
        return "sub", [], "holds NaN or inf values"
    if case in ("float64_overflow", "float8_nan"):
        # Finite as float64, inf in the float32 networks: the policy acted NaN. torch has no
        # isfinite for float8: "NotImplementedError" instead of the line.
        sac_submission(sub)
        path = sub / "policy" / "weights.safetensors"
        tensors = load_file(str(path))
        name = next(n for n, t in tensors.items() if t.is_floating_point() and t.ndim == 2)
        tensors[name] = (torch.full_like(tensors[name], 1e300, dtype=torch.float64)
                         if case == "float64_overflow" else
                         torch.full_like(tensors[name], float("nan")).to(torch.float8_e4m3fn))
        save_file(tensors, str(path))
        return "sub", [], f"tensor {name} holds NaN or inf values (as float32)"
    if case == "other_task_spaces":
        agent_submission(sub, action_mode="pose")
        return "sub", [], "action space (6,) is not the track task's (3,)"
    if case == "onnx_nan_weights":
        onnx_submission(sub, np.full((6, 3), np.nan))
        return "sub", [], "initializer W holds NaN or inf"
    if case == "onnx_nan_actions":
        onnx_submission(sub, np.zeros((6, 3)), nan_output=True)
        return "sub", [], "USB, seed 7000000: step 0: the policy returned a non-finite action"
    if case == "onnx_out_of_range":
        # The env refused it: "ValueError: action [...] is outside the action space", naming
        # neither task nor seed, with the hint for internal errors.
        onnx_submission(sub, np.zeros((6, 3)), offset=2.0)
        return "sub", [], ("USB, seed 7000000: step 0: the policy returned an action outside "
                           "the action space [-1, 1]: [2.0, 2.0, 2.0]")
    if case == "onnx_unseeded_noise":
        # onnxruntime seeds it anew in every process: a recheck could not recompute the
        # verified episodes (a seed attribute makes it the same sequence every time).
        onnx_submission(sub, np.zeros((6, 3)), noise={})
        return "sub", [], ("policy.onnx: node RandomUniform draws random numbers without a "
                           "seed attribute")
    if case == "onnx_training_dropout":
        # Dropout in training mode zeroes random elements, seeded anew in every process.
        onnx_submission(sub, np.zeros((6, 3)), dropout=True)
        return "sub", [], ("policy.onnx: node Dropout draws random numbers without a seed "
                           "attribute")
    if case == "onnx_wrong_shape":
        onnx_submission(sub, np.zeros((6, 4)))
        return "sub", [], "action of shape (4,), the task's action space has shape (3,)"
    if case == "onnx_garbage":
        (sub / "policy").mkdir(parents=True)
        (sub / "policy" / "policy.onnx").write_bytes(b"not a protobuf")
        write_toml(sub, kind="onnx")
        return "sub", [], "not a valid ONNX model"
    if case == "unknown_agent":
        agent_submission(sub)
        text = (sub / "policy" / "agent.json").read_text()
        (sub / "policy" / "agent.json").write_text(text.replace('"p_controller"', '"my_net"'))
        return "sub", [], "names agent 'my_net', not a registered agent"
    if case == "fails_on_second_task":
        # USB's policy is fine and is evaluated first; D-sub's belongs to another task variant.
        p_controller_checkpoint(sub / "usb")
        p_controller_checkpoint(sub / "dsub", action_mode="pose")
        write_toml(sub, policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"')
        return "sub", [], "is not the track task's"
    if case == "huge_hidden":
        # 9000-wide layers: 81M parameters in one Linear, ~1.6 GB for SAC's five networks.
        sac_submission(sub, hidden=[9000, 9000])
        return "sub", [], "policy/agent.json: its config builds more than 67,108,864 parameters"
    if case == "huge_ensemble":
        sac_submission(sub, num_qs=5000)
        return "sub", [], "policy/agent.json: its config builds more than 10,000 modules"
    if case == "huge_space":
        # A few bytes of JSON declaring 10**9 observations: building the Box allocated its
        # bounds (16 GB) before its shape was compared with the task's.
        agent_submission(sub)
        _edit_agent_json(sub, lambda meta: meta["observation_space"]["spaces"]["tcp_pose"].update(
            shape=[10**9], low=0.0, high=1.0, dtype="float64"))
        return "sub", [], "observation space (tcp_pose (1000000000,), tcp_vel (6,), wrench (6,))"
    if case == "extra_not_a_table":
        # agent.json's counters read with .get(): "AttributeError: 'str' object has no
        # attribute 'get'", without the file.
        sac_submission(sub)
        _edit_agent_json(sub, lambda meta: meta.update(extra="counters"))
        return "sub", [], "agent.json: its extra state does not load"
    if case == "bad_training":
        agent_submission(sub)
        text = (sub / "submission.toml").read_text().replace("env_steps = 0", "env_steps = -5")
        (sub / "submission.toml").write_text(text)
        return "sub", [], "training.env_steps must be an integer from 0 to 1e+12, got -5"
    if case == "non_utf8_name":
        # Accepted as a .txt, then "UnicodeEncodeError: ... surrogates not allowed" naming no
        # file, from the entry id's hash.
        agent_submission(sub)
        os.close(os.open(bytes(sub / "policy") + b"/\xff\xfe.txt", os.O_CREAT | os.O_WRONLY))
        return "sub", [], "path 'policy/\\udcff\\udcfe.txt' is not valid UTF-8"
    if case == "huge_training":
        # 10^10 env steps passed, then `render` failed for the whole ledger: the cost plot's
        # log-axis centre multiplied two int64 counts (TypeError from numpy's sqrt).
        agent_submission(sub)
        text = (sub / "submission.toml").read_text().replace("env_steps = 0",
                                                             "env_steps = 10000000000000")
        (sub / "submission.toml").write_text(text)
        return "sub", [], "training.env_steps must be an integer from 0 to 1e+12"
    if case == "huge_wall_clock":
        agent_submission(sub)  # 1e308 s was stored and printed with 309 digits
        text = (sub / "submission.toml").read_text().replace("wall_clock_s = 0",
                                                             "wall_clock_s = 1e308")
        (sub / "submission.toml").write_text(text)
        return "sub", [], "training.wall_clock_s must be a number of seconds from 0 to 3.15e+08"
    if case == "javascript_url":
        # The site links paper_url and code_url: a javascript: URL ran in the visitor's page.
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        (sub / "submission.toml").write_text('paper_url = "javascript:alert(1)"\n' + text)
        return "sub", [], "paper_url must be an http(s) URL without spaces, got 'javascript:"
    if case == "url_with_space":  # refused by the entry schema only after the evaluation
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        (sub / "submission.toml").write_text('paper_url = "https://x.org/a b"\n' + text)
        return "sub", [], "paper_url must be an http(s) URL without spaces, got 'https://x.org/a b'"
    if case == "number_url":
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        (sub / "submission.toml").write_text("code_url = 42\n" + text)  # was stored as "42"
        return "sub", [], "code_url must be a string, got 42"
    if case == "table_hardware":
        agent_submission(sub)
        text = (sub / "submission.toml").read_text().replace('hardware = "test"',
                                                             "hardware = {cores = 2}")
        (sub / "submission.toml").write_text(text)  # was stored as "{'cores': 2}"
        return "sub", [], "training.hardware must be a string, got {'cores': 2}"
    if case in ("long_name", "long_url", "many_authors"):
        # Only submission.toml's 4 KB capped them: a 3,000-character name went into every
        # table of the site.
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        text = {
            "long_name": lambda: text.replace('name = "', 'name = "' + "x" * 300),
            "long_url": lambda: f'code_url = "https://a.b/{"x" * 2500}"\n' + text,
            "many_authors": lambda: text.replace('authors = ["A. Tester"]',
                                                 f"authors = {['A'] * 101}"),
        }[case]()
        (sub / "submission.toml").write_text(text)
        return "sub", [], {
            "long_name": "name has 312 characters; at most 200",
            "long_url": "code_url has 2,512 characters; at most 2,000",
            "many_authors": "101 authors; at most 100",
        }[case]
    if case == "bidi_override_in_method":
        # U+202E reversed what followed it: on the entry's page the method line read backwards,
        # in `submit`'s output the rest of the line.
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        (sub / "submission.toml").write_text(
            text.replace('method = "p_controller"', 'method = "\\u202edetaerc dnah"'))
        return "sub", [], "method holds a control character: '\\u202edetaerc dnah'"
    if case in ("escape_in_name", "newline_in_author"):
        # Printed by `submit` and `verify`: an escape sequence rewrote the maintainer's
        # terminal (here it set the window title), a newline split the one-line output.
        agent_submission(sub)
        text = (sub / "submission.toml").read_text()
        text = (text.replace('name = "P-controller"', 'name = "P\\u001b]0;owned\\u0007"')
                if case == "escape_in_name" else
                text.replace('authors = ["A. Tester"]', 'authors = ["A.\\nTester"]'))
        (sub / "submission.toml").write_text(text)
        return "sub", [], {
            "escape_in_name": "name holds a control character: 'P\\x1b]0;owned\\x07'",
            "newline_in_author": "an author holds a control character: 'A.\\nTester'",
        }[case]
    if case == "escape_in_member":
        agent_submission(sub)
        tar_gz(sub, tmp_path / "sub.tar.gz", [_member("policy/\x1b[2Jnotes.txt")])
        return "sub.tar.gz", [], "path 'policy/\\x1b[2Jnotes.txt' holds a control character"
    raise AssertionError(case)


CASES = [
    "malformed_toml", "deep_toml", "unknown_track", "track_mismatch", "track_typo",
    "missing_weights", "missing_toml",
    "missing_path", "archive_traversal", "archive_huge", "archive_absolute", "archive_symlink",
    "archive_hardlink", "directory_symlink", "not_an_archive", "corrupt_archive", "oversized",
    "pickle", "torch_pickle", "unknown_type", "nan_weights", "float64_overflow", "float8_nan",
    "other_task_spaces",
    "onnx_nan_weights", "onnx_nan_actions", "onnx_out_of_range", "onnx_unseeded_noise",
    "onnx_training_dropout", "onnx_wrong_shape", "onnx_garbage",
    "unknown_agent", "fails_on_second_task", "bad_training", "non_utf8_name", "huge_training",
    "huge_wall_clock", "huge_hidden", "huge_ensemble",
    "huge_space", "javascript_url", "url_with_space", "number_url", "table_hardware",
    "long_name", "long_url",
    "many_authors", "bidi_override_in_method", "escape_in_name", "newline_in_author",
    "escape_in_member", "extra_not_a_table",
]


def _edit_agent_json(root: Path, edit) -> None:
    import json

    path = root / "policy" / "agent.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("case", CASES)
def test_bad_submission_is_refused_and_nothing_is_written(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    monkeypatch.setattr(submission_module, "MAX_FILE_BYTES", 4096)
    target, extra, message = _bad(tmp_path, case)
    _assert_refused(_submit(tmp_path, monkeypatch, target, *extra), message, tmp_path)


def test_a_policy_per_task_is_refused_on_a_zero_shot_track(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    """One policy per test task is told which task it runs: families-test and offsets took
    nine and eight policies (each could be trained on its test connector) as one entry."""
    import dataclasses

    from leaderboards import tracks

    zero_shot = dataclasses.replace(tiny_track, training_task=tiny_track.tasks[0])
    monkeypatch.setitem(tracks.TRACKS, TINY, zero_shot)
    sub = tmp_path / "sub"
    p_controller_checkpoint(sub / "usb")
    p_controller_checkpoint(sub / "dsub")
    write_toml(sub, policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"')
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "track tiny is zero-shot: one policy runs every task (policy.path); "
                    "[policy.per_task] names 2 policies", tmp_path)
    write_toml(sub, policy='[policy.per_task]\nUSB = "usb"\nDSub = "./usb"')
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 0, result.output


def test_an_onnx_graph_with_dropout_in_inference_mode_is_accepted(tmp_path, monkeypatch,
                                                                   tiny_track):
    onnx_submission(tmp_path / "sub", np.zeros((6, 3)), dropout=False)
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 0, result.output


def test_an_onnx_graph_with_seeded_noise_is_accepted(tmp_path, monkeypatch, tiny_track):
    onnx_submission(tmp_path / "sub", np.zeros((6, 3)), noise={"seed": 3.0})
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 0, result.output


def test_a_seeded_noise_policy_starts_every_episode_from_its_seed(tmp_path):
    """A seeded random operator drew on across calls: an episode's actions depended on the
    episodes before it, and one replayed alone (the site's GIFs) was another episode."""
    import gymnasium as gym

    from leaderboards.policy import load_policy

    onnx_submission(tmp_path / "sub", np.zeros((6, 3)), noise={"seed": 3.0})
    env = gym.make("InsertBench/USB-v1")
    policy = load_policy("onnx", tmp_path / "sub" / "policy", env)
    obs, _ = env.reset(seed=0)
    episodes = []
    for _ in range(2):
        policy.reset(seed=0)
        episodes.append([policy(obs) for _ in range(3)])
    env.close()
    assert not np.array_equal(episodes[0][0], episodes[0][1])  # it does draw anew each call
    np.testing.assert_array_equal(np.array(episodes[0]), np.array(episodes[1]))


def test_torch_exported_policies_use_only_allowed_operators():
    """The allow-list refused ordinary exports: `y[:, 2] = -y[:, 2].abs()` (ScatterND),
    `F.interpolate` (Resize) and `torch.topk` (TopK)."""
    import io

    from leaderboards.policy import ONNX_OPERATORS

    class Policy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(6 + 4 * 4 * 4, 16),
                                           torch.nn.LayerNorm(16), torch.nn.ELU(),
                                           torch.nn.Linear(16, 3), torch.nn.Tanh())

        def forward(self, tcp_pose, wrist):
            image = torch.nn.functional.interpolate(wrist.permute(0, 3, 1, 2).float() / 255,
                                                    size=(9, 9), mode="bilinear")
            features = torch.relu(self.conv(image)).flatten(1)
            features = features + torch.topk(features, 2, dim=1).values[:, :1]
            y = self.mlp(torch.cat([tcp_pose, features], -1)).clone()
            y[:, 2] = -y[:, 2].abs()
            return y.clamp(-1, 1)

    graph = io.BytesIO()
    torch.onnx.export(Policy(), (torch.zeros(1, 6), torch.zeros(1, 16, 16, 3, dtype=torch.uint8)),
                      graph, input_names=["tcp_pose", "wrist"], output_names=["action"],
                      opset_version=17, dynamo=False)
    used = {node.op_type for node in onnx.load_from_string(graph.getvalue()).graph.node}
    assert {"ScatterND", "Resize", "TopK", "Conv", "Gemm"} <= used
    assert used <= ONNX_OPERATORS, used - ONNX_OPERATORS


def test_a_seeded_training_dropout_starts_every_episode_from_its_seed(tmp_path):
    """A seeded Dropout in training mode drew on across episodes, as a random operator did."""
    import gymnasium as gym

    from leaderboards.policy import load_policy

    onnx_submission(tmp_path / "sub", np.full((6, 3), 0.1), dropout=True)
    path = tmp_path / "sub" / "policy" / "policy.onnx"
    model = onnx.load(str(path))
    dropout = next(n for n in model.graph.node if n.op_type == "Dropout")
    dropout.attribute.append(onnx.helper.make_attribute("seed", 7))
    onnx.save(model, str(path))
    env = gym.make("InsertBench/USB-v1")
    policy = load_policy("onnx", tmp_path / "sub" / "policy", env)
    obs, _ = env.reset(seed=0)
    obs = {k: v + 1.0 for k, v in obs.items()}  # an observation the dropout can change
    episodes = []
    for _ in range(2):
        policy.reset(seed=0)
        episodes.append([policy(obs) for _ in range(4)])
    env.close()
    np.testing.assert_array_equal(np.array(episodes[0]), np.array(episodes[1]))


@pytest.mark.parametrize(("op", "domain", "named"), [
    ("NonMaxSuppression", "", "operator NonMaxSuppression"),
    ("Unique", "", "operator Unique"),  # 2.4 GB outside the capped arena over a 25M Range
    ("Gelu", "com.microsoft", "operator com.microsoft.Gelu"),
])
def test_an_onnx_operator_no_limit_can_stop_is_refused_by_name(tmp_path, monkeypatch,
                                                              tiny_track, op, domain, named):
    """One NonMaxSuppression over 200k boxes (a 4 MB graph) ran 51 s in a single kernel, which
    the 1 s limit cannot stop; RoiAlign took 1.8 GB outside the capped arena."""
    onnx_submission(tmp_path / "sub", np.zeros((6, 3)))
    path = tmp_path / "sub" / "policy" / "policy.onnx"
    model = onnx.load(str(path))
    inputs = ["tcp_pose", "tcp_pose"] if op == "NonMaxSuppression" else ["tcp_pose"]
    model.graph.node.append(onnx.helper.make_node(op, inputs, ["unused"], domain=domain))
    if domain:
        model.opset_import.append(onnx.helper.make_opsetid(domain, 1))
    onnx.save(model, str(path))
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 1 and named in result.stderr, result.output
    assert "is not among the neural-network operators a policy may use" in result.stderr


def test_an_onnx_graph_of_too_many_nodes_is_refused(tmp_path, monkeypatch, tiny_track):
    """Its session is built outside every action's time limit, once an episode where a seeded
    random operator is in the graph: 1M Identity nodes in an If's dead branch took 200 s and
    6.8 GB to build, and 150 dev episodes about 8 hours."""
    from leaderboards.policy import MAX_ONNX_NODES

    onnx_submission(tmp_path / "sub", np.zeros((6, 3)))
    path = tmp_path / "sub" / "policy" / "policy.onnx"
    model = onnx.load(str(path))
    chain = [onnx.helper.make_node("Identity", [f"x{i}"], [f"x{i + 1}"])
             for i in range(MAX_ONNX_NODES)]
    dead = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["tcp_pose"], ["x0"]), *chain], "dead", [],
        [onnx.helper.make_tensor_value_info(f"x{MAX_ONNX_NODES}", onnx.TensorProto.FLOAT, None)])
    live = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["tcp_pose"], ["y"])], "live", [],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(True), "always"))
    model.graph.node.append(onnx.helper.make_node("If", ["always"], ["unused"],
                                                  then_branch=live, else_branch=dead))
    onnx.save(model, str(path))
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"policy.onnx has more than 10,000 nodes \(subgraphs "
                                         r"included\), the most", lines[0]), lines


def test_an_onnx_graph_of_too_many_tensors_is_refused(tmp_path, monkeypatch, tiny_track):
    """Nothing counted them: a session's build time grows faster than their square (60,000
    unused 1-float initializers in a 1.2 MB file: a 57 s evaluation, and every later submission
    to the track loaded it again, 25 s for a 0.5 s policy; 200,000: over 5 minutes, leader18)."""
    from leaderboards.policy import MAX_ONNX_TENSORS

    onnx_submission(tmp_path / "sub", np.zeros((6, 3)))
    path = tmp_path / "sub" / "policy" / "policy.onnx"
    model = onnx.load(str(path))
    model.graph.initializer.extend(onnx.numpy_helper.from_array(np.zeros(1, np.float32),
                                                                f"unused{i}")
                                   for i in range(MAX_ONNX_TENSORS))
    onnx.save(model, str(path))
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"policy.onnx holds more than 10,000 tensors "
                                         r"\(initializers and constants, subgraphs included\), "
                                         r"the most", lines[0]), lines


def test_good_archive_is_accepted_with_its_policy_hash_as_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    agent_submission(tmp_path / "sub")
    tar_gz(tmp_path / "sub", tmp_path / "sub.tar.gz")
    result = _submit(tmp_path, monkeypatch, "sub.tar.gz", "--track", TINY)
    assert result.exit_code == 0, result.output
    assert "self-reported entry" in result.stdout
    entries = list((tmp_path / "ledger" / "entries" / TINY).glob("*.json"))
    assert len(entries) == 1 and len(entries[0].stem) == 64
    again = _submit(tmp_path, monkeypatch, "sub.tar.gz")
    _assert_refused_duplicate(again)


def test_a_submission_toml_with_a_byte_order_mark_is_read(tmp_path, monkeypatch, tiny_track):
    """Saved as "UTF-8 with BOM" (Windows editors), it was "not valid TOML: Invalid statement
    (at line 1, column 1)" (leader20)."""
    agent_submission(tmp_path / "sub")
    toml = tmp_path / "sub" / "submission.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    result = _submit(tmp_path, monkeypatch, "sub")
    assert result.exit_code == 0, result.output
    assert "self-reported entry" in result.stdout


def test_a_damaged_archive_is_refused(tmp_path, monkeypatch):
    """tarfile never reads gzip's trailer, and takes a header it cannot read for the end of
    the archive: one flipped bit was entered as its damaged weights, a damaged header as the
    members before it (leader22)."""
    import gzip
    import io

    agent_submission(tmp_path / "sub")
    tar_gz(tmp_path / "sub", tmp_path / "good.tar.gz")
    packed = (tmp_path / "good.tar.gz").read_bytes()
    crc = int.from_bytes(packed[-8:-4], "little") ^ 1  # the data's CRC-32, one bit off
    (tmp_path / "crc.tar.gz").write_bytes(packed[:-8] + crc.to_bytes(4, "little") + packed[-4:])
    _assert_refused(_submit(tmp_path, monkeypatch, "crc.tar.gz"),
                    "crc.tar.gz is not a readable .tar.gz: CRC check failed", tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for path in sorted((tmp_path / "sub").rglob("*")):
            archive.add(path, arcname=path.relative_to(tmp_path / "sub").as_posix(),
                        recursive=False)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as archive:
        last = archive.getmembers()[-1].offset
    tar = bytearray(buffer.getvalue())
    tar[last] ^= 0xFF  # submission.toml's header: its checksum fails
    (tmp_path / "header.tar.gz").write_bytes(gzip.compress(bytes(tar)))
    _assert_refused(_submit(tmp_path, monkeypatch, "header.tar.gz"),
                    "header.tar.gz holds data past its last readable member", tmp_path)


def test_an_archive_padded_up_to_its_limit_is_read(tmp_path, monkeypatch, tiny_track):
    """Reading to the end asked for 1 MiB at a time, and a read asked for past the limit was
    refused, not one that went past it: 256 MiB of files in a tar of 1 MiB records (`tar -b
    2048`) was refused (diff27). Zeros past the limit still are."""
    import gzip

    monkeypatch.setattr(submission_module, "MAX_FILES", 10)
    agent_submission(tmp_path / "sub")
    tar_gz(tmp_path / "sub", tmp_path / "plain.tar.gz")
    tar = gzip.decompress((tmp_path / "plain.tar.gz").read_bytes())
    monkeypatch.setattr(submission_module, "MAX_TOTAL_BYTES", len(tar))
    limit = len(tar) + 12 * submission_module.ARCHIVE_BYTES_PER_MEMBER
    (tmp_path / "padded.tar.gz").write_bytes(gzip.compress(tar + bytes(limit - len(tar))))
    result = _submit(tmp_path, monkeypatch, "padded.tar.gz", "--track", TINY)
    assert result.exit_code == 0, result.output
    (tmp_path / "over.tar.gz").write_bytes(gzip.compress(tar + bytes(limit + 1 - len(tar))))
    result = _submit(tmp_path, monkeypatch, "over.tar.gz", "--track", TINY)
    assert result.exit_code == 1 and "over.tar.gz decompresses to more than" in result.stderr


def _assert_refused_duplicate(result) -> None:
    assert result.exit_code == 1 and "already entry" in result.stderr


def test_render_refuses_a_ledger_that_does_not_exist(tmp_path, monkeypatch):
    """A mistyped --ledger used to render an empty leaderboard with exit status 0."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["leaderboard", "render", "--out", "site", "--ledger", "ledgr"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no ledger at ledgr" in lines[0], result.stderr
    assert not (tmp_path / "site").exists()
    # A folder that exists but holds no ledger (its parent, '.') rendered an empty board over
    # the published site, deleting every entry's page.
    (tmp_path / "site" / "entries").mkdir(parents=True)
    page = tmp_path / "site" / "entries" / f"{TINY}-{'a' * 64}.html"
    page.write_text("published")
    result = runner.invoke(app, ["leaderboard", "render", "--out", "site", "--ledger", "."])
    assert result.exit_code == 1 and ". is not a ledger (it has no entries/ folder)" in \
        result.stderr, result.output
    assert page.read_text() == "published"


@pytest.mark.parametrize("out", ["ledger", "ledger/site", "./ledger/entries"])
def test_render_refuses_to_write_the_site_into_the_ledger(out, tmp_path, monkeypatch):
    """`render --out leaderboards/ledger` used to write its pages among the entries."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ledger" / "entries").mkdir(parents=True)
    result = runner.invoke(app, ["leaderboard", "render", "--out", out, "--ledger", "ledger"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--out {Path(out)} is inside the ledger ledger" in lines[0], \
        result.stderr
    assert [p.name for p in (tmp_path / "ledger").rglob("*")] == ["entries"]


@pytest.mark.parametrize("args", [
    ["submit", "my_policy.tar.gz", "--track", TINY],
    ["open-round", "--track", TINY, "--salt-file", "salt"],
    ["verify", "3fa2c1"],
])
def test_the_default_ledger_must_exist(tmp_path, monkeypatch, args):
    """Run outside the repository root, `submit` used to start a new ledger in the working
    directory and write the entry there with exit status 0 (review session)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["leaderboard", *args])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no ledger at leaderboards/ledger" in lines[0], result.stderr
    assert not (tmp_path / "leaderboards").exists()


def test_an_archive_of_too_many_members_is_refused_while_reading(tmp_path, monkeypatch):
    """The member count is checked as the archive is read, not after every header was loaded
    (an archive of millions of empty members is a few MB of gzip; review session)."""
    monkeypatch.setattr(submission_module, "MAX_FILES", 3)
    agent_submission(tmp_path / "sub")
    tar_gz(tmp_path / "sub", tmp_path / "sub.tar.gz",
           [_member(f"policy/n{i}.txt") for i in range(10)])
    _assert_refused(_submit(tmp_path, monkeypatch, "sub.tar.gz"),
                    "sub.tar.gz has more than 3 members", tmp_path)


@pytest.mark.parametrize("name", ["policy/agent.json", "./policy/agent.json"])
def test_an_archive_holding_a_file_twice_is_refused(tmp_path, monkeypatch, name):
    """The last copy was extracted and scored, while a reader of the archive sees the first."""
    agent_submission(tmp_path / "sub")
    tar_gz(tmp_path / "sub", tmp_path / "sub.tar.gz", [_member(name)])
    _assert_refused(_submit(tmp_path, monkeypatch, "sub.tar.gz"),
                    f"sub.tar.gz holds {name} twice; each file once", tmp_path)


def _long_name_bomb(target: Path, name_bytes: int) -> None:
    """A .tar.gz whose first header is a GNU long name of ``name_bytes`` bytes (gzip keeps a
    GiB of them to about a MB), then a submission.toml."""
    import gzip

    with gzip.open(target, "wb") as stream:
        header = tarfile.TarInfo("././@LongLink")
        header.type, header.size = tarfile.GNUTYPE_LONGNAME, name_bytes
        stream.write(header.tobuf(format=tarfile.GNU_FORMAT))
        stream.write(b"a" * name_bytes + b"\0" * (-name_bytes % tarfile.BLOCKSIZE))
        stream.write(tarfile.TarInfo("submission.toml").tobuf() + b"\0" * 1024)


def test_an_archive_is_read_no_further_than_its_files_may_reach(tmp_path, monkeypatch):
    """tarfile reads a long-name header whole, sized by the header itself: a 2 MB archive
    naming its first member with 2 GiB took 10 GB of memory and minutes (then printed the name
    in its error). The decompressed stream is refused past MAX_TOTAL_BYTES and the headers
    that MAX_FILES members need (here 64 KiB + 12 x 8 KiB)."""
    monkeypatch.setattr(submission_module, "MAX_TOTAL_BYTES", 64 * 2**10)
    monkeypatch.setattr(submission_module, "MAX_FILES", 10)
    _long_name_bomb(tmp_path / "sub.tar.gz", 4 * 2**20)
    _assert_refused(_submit(tmp_path, monkeypatch, "sub.tar.gz"),
                    "sub.tar.gz decompresses to more than 163,840 bytes (its files may hold "
                    "65,536)", tmp_path)


def test_a_member_path_longer_than_the_limit_is_refused_with_its_start(tmp_path, monkeypatch):
    agent_submission(tmp_path / "sub")
    name = "policy/" + "n" * 300 + ".txt"
    tar_gz(tmp_path / "sub", tmp_path / "sub.tar.gz", [_member(name)])
    result = _submit(tmp_path, monkeypatch, "sub.tar.gz")
    _assert_refused(result, f"path '{name[:40]}'... has 311 characters; at most 255", tmp_path)
    assert len(result.stderr) < 200


def test_an_onnx_graph_failing_at_run_time_is_one_line(tmp_path: Path) -> None:
    """A graph that passes onnx's checker but fails in onnxruntime (a Reshape to 7 values of
    6) used to end in `Fail: [ONNXRuntimeError] ...` without the task or seed, after
    onnxruntime's own coloured log lines on the process's stderr. Run as a user runs it, in
    a fresh process (that log goes to file descriptor 2), from the submission's parent."""
    import os
    import subprocess
    import sys

    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("tcp_pose", TensorProto.FLOAT, [1, 6])
    y = helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Reshape", ["tcp_pose", "shape"], ["action"])],
                              "policy", [x], [y],
                              [numpy_helper.from_array(np.array([1, 7], np.int64), "shape")])
    model = onnx.helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "sub" / "policy").mkdir(parents=True)
    onnx.save(model, str(tmp_path / "sub" / "policy" / "policy.onnx"))
    write_toml(tmp_path / "sub", kind="onnx", track="paper000")  # fails on its first step
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "from benchmark.cli import app; app()",
         "leaderboard", "submit", "sub", "--ledger", "ledger"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("insertbench: error: USB, seed 7000000: policy.onnx failed to "
                               "run: [ONNXRuntimeError]"), lines[0]
    ledger = tmp_path / "ledger"
    assert not ledger.exists() or not any(p.is_file() for p in ledger.rglob("*"))


def _onnx_submission(root: Path, graph) -> None:
    """A paper000 submission whose policy is ``graph`` (opset 17)."""
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "policy").mkdir(parents=True)
    onnx.save(model, str(root / "policy" / "policy.onnx"))
    write_toml(root, kind="onnx", track="paper000")


def test_an_onnx_graph_that_never_returns_is_stopped_with_one_line(tmp_path, monkeypatch):
    """A Loop of 10^15 trips passes onnx's checker and used to hang `submit` for ever; each
    action now has ACTION_TIME_LIMIT_S (here 0.5 s) of wall-clock."""
    from onnx import TensorProto, helper

    import leaderboards.policy as policy

    monkeypatch.setattr(policy, "ACTION_TIME_LIMIT_S", 0.5)
    state = helper.make_tensor_value_info
    body = helper.make_graph(
        [helper.make_node("Identity", ["go"], ["go_on"]),
         helper.make_node("Identity", ["acc"], ["acc_out"])], "body",
        [state("i", TensorProto.INT64, []), state("go", TensorProto.BOOL, []),
         state("acc", TensorProto.FLOAT, [1, 3])],
        [state("go_on", TensorProto.BOOL, []), state("acc_out", TensorProto.FLOAT, [1, 3])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "go", "zero"], ["action"], body=body)], "policy",
        [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [10**15]),
         helper.make_tensor("go", TensorProto.BOOL, [], [True]),
         helper.make_tensor("zero", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.0])])
    _onnx_submission(tmp_path / "sub", graph)
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy.onnx took over 0.5 s for one action and was stopped", tmp_path)


def _long_kernel_graph():
    """A policy graph whose one MaxPool kernel (a 512x512 window over a 1024x1024 map: 439
    bytes of graph, 4 MB of memory) runs for minutes."""
    from onnx import TensorProto, helper

    state = helper.make_tensor_value_info
    return helper.make_graph(
        [helper.make_node("ConstantOfShape", ["side"], ["map"],
                          value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])),
         helper.make_node("MaxPool", ["map"], ["pooled"], kernel_shape=[512, 512]),
         helper.make_node("ReduceMax", ["pooled"], ["top"], keepdims=0),
         helper.make_node("Mul", ["top", "zero"], ["action"])], "policy",
        [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("side", TensorProto.INT64, [4], [1, 1, 1024, 1024]),
         helper.make_tensor("zero", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.0])])


def test_one_onnx_kernel_longer_than_the_limit_is_stopped_at_the_limit(tmp_path, monkeypatch):
    """onnxruntime stops a run only between kernels: one MaxPool ran 140 s as one action, and
    a bigger one would hold `submit` for days (leader19). The policy's process is killed at
    the limit (here 0.5 s; the kernel alone takes minutes)."""
    import leaderboards.policy as policy

    monkeypatch.setattr(policy, "ACTION_TIME_LIMIT_S", 0.5)
    _onnx_submission(tmp_path / "sub", _long_kernel_graph())
    start = time.monotonic()
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy.onnx took over 0.5 s for one action and was stopped", tmp_path)
    assert time.monotonic() - start < 30.0


@pytest.mark.parametrize("where", ["main thread", "other thread"])
def test_an_onnx_policys_process_dies_with_the_evaluator_mid_kernel(tmp_path, where):
    """kill -9 of the evaluator while its policy's process computes one long kernel ends that
    process too (the death signal from the main thread; else it watches its parent's pid)."""
    import signal
    import subprocess
    import sys
    import textwrap

    _onnx_submission(tmp_path / "sub", _long_kernel_graph())
    path = str(tmp_path / "sub" / "policy" / "policy.onnx")
    script = textwrap.dedent(f"""
        import threading, time
        import gymnasium as gym
        import envs
        import leaderboards.policy as policy
        policy.ACTION_TIME_LIMIT_S = 600.0
        env = gym.make("InsertBench/USB-v0")
        box = {{}}
        def load():
            box["act"] = policy._onnx_policy({path!r}, env)
        if {where == "other thread"}:
            thread = threading.Thread(target=load); thread.start(); thread.join()
        else:
            load()
        act = box["act"]
        print(act.process.pid, flush=True)
        act(env.reset(seed=0)[0])
    """)
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(root)})
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # into the kernel
        os.kill(child, 0)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()
        parent.wait()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_an_onnx_uint8_input_of_a_float_observation_is_refused(tmp_path, monkeypatch):
    """A float reading cast to uint8 wraps on x86 and saturates on ARM: the wrench [-1.5,
    300.7, -40] reached the graph as [255, 44, 216] here, another host's actions otherwise
    (leader19)."""
    from onnx import TensorProto, helper

    state = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Cast", ["tcp_pose"], ["pose"], to=TensorProto.FLOAT),
         helper.make_node("ReduceSum", ["pose"], ["total"], keepdims=1),
         helper.make_node("Mul", ["total", "zero"], ["action"])], "policy",
        [state("tcp_pose", TensorProto.UINT8, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.0])])
    _onnx_submission(tmp_path / "sub", graph)
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy.onnx input 'tcp_pose' has type tensor(uint8), but the observation "
                    "is float32: use tensor(float)", tmp_path)


def test_an_onnx_policy_slower_than_the_control_period_is_stopped_with_one_line(
        tmp_path, monkeypatch):
    """Under the 1 s limit on one action, a policy taking 0.9 s every action held `submit` and
    `verify` for hours; its mean time an action may not pass the 10 Hz controller's 100 ms
    (here 150 ms an action on a fake clock, stopped at the 20th action)."""
    from itertools import count

    from onnx import TensorProto, helper

    import leaderboards.policy as policy

    ticks = (0.15 * k for k in count())  # every reading 150 ms after the one before
    monkeypatch.setattr(policy, "_clock", lambda: next(ticks))
    state = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["tcp_pose"], ["sum"], keepdims=1),
         helper.make_node("Mul", ["sum", "zero"], ["action"])], "policy",
        [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.0])])
    _onnx_submission(tmp_path / "sub", graph)
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy.onnx took 150 ms an action on average over 20 actions, over the "
                    "100 ms period of the 10 Hz controller, and was stopped", tmp_path)


def test_an_agent_policy_slower_than_the_control_period_is_stopped_with_one_line(
        tmp_path, monkeypatch, tiny_track):
    """leader17: agent checkpoints had no time limit: 650-channel convolutions within every
    size limit took 0.56 s an action (about 1.5 h for a verification). Held to a mean of 3
    controller periods (350 ms an action on a fake clock, stopped at the 20th)."""
    from itertools import count

    import leaderboards.policy as policy

    ticks = (0.35 * k for k in count())
    monkeypatch.setattr(policy, "_clock", lambda: next(ticks))
    agent_submission(tmp_path / "sub")
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy/weights.safetensors took 350 ms an action on average over 20 "
                    "actions, over the 300 ms limit, and was stopped", tmp_path)


def test_a_policy_too_slow_in_the_sim2sim_block_stops_it_unscored(tmp_path, monkeypatch,
                                                                   tiny_track):
    """The MuJoCo evaluation refused a policy past its mean time an action; the sim-to-sim
    block scored the same refusal as a PyBullet failure, and every later episode failed at
    its first step (the mean counts every action so far): a busy machine's load shown as the
    engine's gap (leader26)."""
    from itertools import count

    import leaderboards.policy as policy
    from leaderboards.sim2sim import evaluate_sim2sim
    from leaderboards.submission import SubmissionError
    from leaderboards.tracks import get_track

    agent_submission(tmp_path / "sub")
    track = get_track(TINY)
    ticks = (0.35 * k for k in count())
    monkeypatch.setattr(policy, "_clock", lambda: next(ticks))
    with pytest.raises(SubmissionError, match=r"USB in PyBullet: policy/weights.safetensors took "
                                              r"350 ms an action .* \(the sim-to-sim block "
                                              r"stopped, nothing was written"):
        evaluate_sim2sim(track, "agent", {t.label: tmp_path / "sub" / "policy"
                                          for t in track.tasks},
                         lambda label: [1 << 30, (1 << 30) + 1], track.version_keys(), None,
                         "2026-12-07T00:00:00Z")


def test_an_onnx_graph_computed_while_it_loads_is_stopped_with_one_line(tmp_path, monkeypatch):
    """A chain of MatMuls on a ConstantOfShape was folded by onnxruntime while the session was
    made, before any action's time limit: a few thousand of them in a 1 kB graph held `submit`
    and `verify` for hours."""
    from onnx import TensorProto, helper

    import leaderboards.policy as policy

    monkeypatch.setattr(policy, "ACTION_TIME_LIMIT_S", 0.5)
    state = helper.make_tensor_value_info
    chain = [helper.make_node("ConstantOfShape", ["shape"], ["c0"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))]
    chain += [helper.make_node("MatMul", [f"c{k}", f"c{k}"], [f"c{k + 1}"]) for k in range(8)]
    graph = helper.make_graph(
        [*chain, helper.make_node("ReduceSum", ["c8"], ["s"], keepdims=0),
         helper.make_node("Mul", ["s", "zero"], ["z"]),
         helper.make_node("Tile", ["z", "three"], ["action_flat"]),
         helper.make_node("Reshape", ["action_flat", "action_shape"], ["action"])], "policy",
        [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [2048, 2048]),
         helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
         helper.make_tensor("three", TensorProto.INT64, [1], [3]),
         helper.make_tensor("action_shape", TensorProto.INT64, [2], [1, 3])])
    _onnx_submission(tmp_path / "sub", graph)
    # Stopped by the limit on one action or, on a machine fast enough to stay under it, by
    # the one on the mean: either way in the actions, not while the session was made.
    result = _submit(tmp_path, monkeypatch, "sub")
    _assert_refused(result, "policy.onnx took ", tmp_path)
    assert result.stderr.strip().endswith("and was stopped"), result.stderr


def test_an_onnx_graph_that_takes_all_memory_is_stopped_with_one_line(tmp_path, monkeypatch):
    """A ConstantOfShape whose shape the graph computes from the observation passes onnx's
    checker; it used to allocate whatever it asked for (here 1.2 GB, past the 1 GiB limit)."""
    from onnx import TensorProto, helper

    import leaderboards.policy as policy

    side = int((policy.ONNX_MEMORY_LIMIT_BYTES * 1.1 / 4) ** 0.5)
    state = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["tcp_pose"], ["sum"], keepdims=0),
         helper.make_node("Cast", ["sum"], ["sum_int"], to=TensorProto.INT64),
         helper.make_node("Mul", ["sum_int", "zeros"], ["no_shape"]),
         helper.make_node("Add", ["no_shape", "side"], ["shape"]),  # not foldable: from obs
         helper.make_node("ConstantOfShape", ["shape"], ["big"],
                          value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])),
         helper.make_node("ReduceMean", ["big"], ["mean"], keepdims=0),
         helper.make_node("Mul", ["zero", "mean"], ["action"])], "policy",
        [state("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [state("action", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("zeros", TensorProto.INT64, [2], [0, 0]),
         helper.make_tensor("side", TensorProto.INT64, [2], [side, side]),
         helper.make_tensor("zero", TensorProto.FLOAT, [1, 3], [0.0, 0.0, 0.0])])
    _onnx_submission(tmp_path / "sub", graph)
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    "policy.onnx needed over 1 GiB of memory for one action and was stopped",
                    tmp_path)


@pytest.mark.parametrize("where", ["initializer", "constant"])
def test_an_onnx_sparse_tensor_is_refused_before_it_is_made_dense(tmp_path, monkeypatch, where):
    """leader17: a 329-byte file holding one [23000, 23000] sparse initializer (one value) took
    4 GiB while onnxruntime built the session, outside the memory limit."""
    from onnx import TensorProto, helper, numpy_helper

    side = 1000  # dense, 4 MB (the repro: 23000, 2 GiB)
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.0], np.float32), "big"),
        numpy_helper.from_array(np.array([0], np.int64), "big_indices"), [side, side])
    info = helper.make_tensor_value_info
    nodes = [helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Mul", ["zero", "total"], ["action"])]
    if where == "constant":
        nodes.insert(0, helper.make_node("Constant", [], ["big"], sparse_value=sparse))
    graph = helper.make_graph(
        nodes, "policy", [info("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [info("action", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.zeros((1, 3), np.float32), "zero")],
        sparse_initializer=[sparse] if where == "initializer" else None)
    _onnx_submission(tmp_path / "sub", graph)
    name = "initializer big" if where == "initializer" else "node Constant"
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"),
                    f"policy.onnx: {name} is a sparse tensor, made dense outside the memory "
                    "limit while the session is built; store it dense", tmp_path)


@pytest.mark.parametrize("ledger, why", [
    ("notes.txt", "notes.txt is not a directory"),
    ("notes.txt/ledger", "notes.txt/ledger is not a directory (under notes.txt, a file)"),
])
def test_a_ledger_path_under_a_file_is_refused_before_evaluating(
    ledger: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    """It used to evaluate the whole submission, then fail with NotADirectoryError when the
    entry was written."""
    agent_submission(tmp_path / "sub")
    (tmp_path / "notes.txt").write_text("a file")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["leaderboard", "submit", "sub", "--ledger", ledger])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"insertbench: error: --ledger {why}"], result.stderr
    assert "evaluated" not in result.stdout


def _external_tensor(name: str, location: str):
    """A uint8[3] tensor whose bytes onnxruntime would read from ``location``."""
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=TensorProto.UINT8, dims=[3],
                         data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "3")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


@pytest.mark.parametrize("where", ["constant", "absent_file", "subgraph", "nan_constant"])
def test_no_tensor_of_an_onnx_graph_reads_the_evaluators_files_or_holds_nan(
        tmp_path, monkeypatch, where):
    """Only the top graph's initializers were checked: a Constant node's (or an If branch's)
    external data was read from the evaluator's working directory, and the file's bytes
    steered the published episodes (a different file there, other episodes); and the
    checker's error for a file that is not there said whether it was (leader25)."""
    from onnx import TensorProto, helper, numpy_helper

    (tmp_path / "secret.txt").write_bytes(b"TOPSECRET")
    info = helper.make_tensor_value_info
    tail = [helper.make_node("Cast", ["s"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["f", "k"], ["g"]),
            helper.make_node("Reshape", ["g", "shape"], ["action"])]
    weights = [numpy_helper.from_array(np.array(1000.0, np.float32), "k"),
               numpy_helper.from_array(np.array([1, 3], np.int64), "shape")]
    if where in ("constant", "absent_file"):
        file = "secret.txt" if where == "constant" else "absent.bin"
        nodes = [helper.make_node("Constant", [], ["s"], value=_external_tensor("c", file))]
        message = "node Constant uses external data"
    elif where == "nan_constant":
        nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(
            np.array([0.0, np.nan, 0.0], np.float32), "c"))]
        message = "node Constant holds NaN values"
    else:  # the external tensor inside an If branch that always runs
        branch = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "then", [],
                                   [info("y", TensorProto.UINT8, [3])],
                                   [_external_tensor("x", "secret.txt")])
        other = helper.make_graph([helper.make_node("Identity", ["z"], ["w"])], "else", [],
                                  [info("w", TensorProto.UINT8, [3])],
                                  [numpy_helper.from_array(np.zeros(3, np.uint8), "z")])
        weights.append(numpy_helper.from_array(np.array(True), "cond"))
        nodes = [helper.make_node("If", ["cond"], ["s"], then_branch=branch, else_branch=other)]
        message = "initializer x uses external data"
    graph = helper.make_graph(nodes + tail, "policy", [info("tcp_pose", TensorProto.FLOAT, [1, 6])],
                              [info("action", TensorProto.FLOAT, [1, 3])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "sub" / "policy").mkdir(parents=True)
    (tmp_path / "sub" / "policy" / "policy.onnx").write_bytes(model.SerializeToString())
    write_toml(tmp_path / "sub", kind="onnx", track="paper000")
    _assert_refused(_submit(tmp_path, monkeypatch, "sub"), message, tmp_path)


def test_an_onnx_constant_of_minus_infinity_is_accepted(tmp_path):
    """A one-sided clamp (torch.onnx.export writes `clamp(min=-inf)` as a Constant -inf) is a
    legitimate graph: the tensor walk refuses NaN there, and inf in weights only."""
    import gymnasium as gym
    from onnx import TensorProto, helper, numpy_helper

    import envs  # noqa: F401  (registers the tasks)
    from leaderboards.policy import _onnx_policy

    info = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["low"], value=numpy_helper.from_array(
            np.array(-np.inf, np.float32), "low")),
         helper.make_node("Constant", [], ["high"], value=numpy_helper.from_array(
             np.array(0.5, np.float32), "high")),
         helper.make_node("Slice", ["tcp_pose", "start", "end", "axis"], ["xyz"]),
         helper.make_node("Clip", ["xyz", "low", "high"], ["action"])],
        "policy", [info("tcp_pose", TensorProto.FLOAT, [1, 6])],
        [info("action", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array([0], np.int64), "start"),
         numpy_helper.from_array(np.array([3], np.int64), "end"),
         numpy_helper.from_array(np.array([1], np.int64), "axis")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "policy.onnx").write_bytes(model.SerializeToString())
    env = gym.make("InsertBench/USB-v1", obs_mode="state")
    obs, _ = env.reset(seed=0)
    policy = _onnx_policy(tmp_path / "policy.onnx", env.unwrapped)
    assert np.all(np.isfinite(policy(obs)))
    env.close()


@pytest.mark.parametrize("case", ["string_output", "string_cast", "value_strings",
                                  "BFLOAT16", "FLOAT8E4M3FN"])
def test_an_onnx_graph_of_strings_or_of_nan_in_narrow_floats_is_refused(tmp_path, case):
    """A string action was parsed as numbers, or its error quoted 1 MB of it on one line;
    strings live outside onnxruntime's memory limit. NaN in bfloat16 or float8 weights passed
    (ml_dtypes arrays are not np.floating) (leader22)."""
    import gymnasium as gym
    from onnx import TensorProto, helper, numpy_helper

    import envs  # noqa: F401  (registers the tasks)
    from leaderboards.policy import _onnx_policy
    from leaderboards.submission import SubmissionError

    info = helper.make_tensor_value_info
    inputs, out_type, weights = [info("tcp_pose", TensorProto.FLOAT, [1, 6])], TensorProto.FLOAT, []
    if case == "string_output":
        nodes = [helper.make_node("Constant", [], ["action"], value=numpy_helper.from_array(
            np.array([["0.5"] * 3], dtype=object), "s"))]
        out_type, message = TensorProto.STRING, "node Constant holds strings"
    elif case == "string_cast":
        nodes = [helper.make_node("Slice", ["tcp_pose", "start", "end", "axis"], ["xyz"]),
                 helper.make_node("Cast", ["xyz"], ["text"], to=TensorProto.STRING),
                 helper.make_node("Cast", ["text"], ["action"], to=TensorProto.FLOAT)]
        weights = [numpy_helper.from_array(np.array([v], np.int64), name)
                   for name, v in (("start", 0), ("end", 3), ("axis", 1))]
        message = "node Cast makes strings"
    elif case == "value_strings":
        nodes = [helper.make_node("Constant", [], ["s"], value_strings=["x" * 100]),
                 helper.make_node("Constant", [], ["action"], value=numpy_helper.from_array(
                     np.zeros((1, 3), np.float32), "z"))]
        message = "node Constant makes strings"
    else:
        weights = [helper.make_tensor("w", getattr(TensorProto, case), [1, 3],
                                      [float("nan"), 0.0, 0.0])]
        nodes = [helper.make_node("Cast", ["w"], ["action"], to=TensorProto.FLOAT)]
        message = "initializer w holds NaN or inf values"
    graph = helper.make_graph(nodes, "policy", inputs, [info("action", out_type, [1, 3])],
                              weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    (tmp_path / "policy.onnx").write_bytes(model.SerializeToString())
    env = gym.make("InsertBench/USB-v1", obs_mode="state")
    with pytest.raises(SubmissionError, match=re.escape(message)):
        _onnx_policy(tmp_path / "policy.onnx", env.unwrapped)
    env.close()


def test_a_killed_commands_private_copy_is_removed_by_a_later_one(tmp_path, monkeypatch):
    """A kill -9 during `leaderboard submit` left its copy of the submission in /tmp for good.
    A later command removes a day-old copy whose process is gone, never a live process's."""
    import os
    import subprocess
    import tempfile

    from leaderboards.submission import ABANDONED_COPY_AGE_S, private_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead_pid = subprocess.Popen(["true"])  # a pid that has ended
    dead_pid.wait()
    day_old = os.path.getmtime(tmp_path) - ABANDONED_COPY_AGE_S - 60
    abandoned = tmp_path / f"insertbench-submission-{dead_pid.pid}-abcd1234"
    live = tmp_path / f"insertbench-submission-{os.getpid()}-efgh5678"
    recent = tmp_path / f"insertbench-submission-{dead_pid.pid}-ijkl9012"
    for folder in (abandoned, live, recent):
        (folder / "policy").mkdir(parents=True)
    for folder in (abandoned, live):
        os.utime(folder, (day_old, day_old))
    mine = private_folder("insertbench-submission-")
    assert mine.name.startswith(f"insertbench-submission-{os.getpid()}-")
    assert not abandoned.exists() and live.is_dir() and recent.is_dir()
