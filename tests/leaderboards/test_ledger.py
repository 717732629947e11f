"""Ledger: entries named by the policy's SHA-256, hidden-seed verification, salt commit/reveal,
schema validation, scoring, rank groups and stale entries."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path
from unittest import mock

import mujoco
import numpy as np
import pytest
from typer.testing import CliRunner

import leaderboards.sim2sim
from benchmark.cli import app
from envs.episode import wilson_interval
from envs.tasks import PAPER000_TASKS_V1
from envs.version_key import PYBULLET_REVISION
from leaderboards import scoring, site, submission, tracks
from leaderboards.ledger import (
    Ledger,
    LedgerError,
    entry_track_version,
    keys_digest,
    stored_policy_paths,
    validate_entry,
)
from leaderboards.scoring import rank, score_entry, sim2sim_scores, track_tables
from leaderboards.sim2sim import unsupported_reason
from leaderboards.submission import policy_files_sha256
from leaderboards.tracks import HIDDEN_SEED_LOW, TrackTask, hidden_seeds
from tests.leaderboards.builders import (
    STATE,
    TINY,
    agent_submission,
    flipped,
    list_hidden_as_verified,
    make_stale,
    onnx_submission,
    sac_submission,
    succeeded,
    write_toml,
)

runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, ["leaderboard", *args, "--ledger", "ledger"])


@pytest.fixture
def submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track):
    """A ledger (cwd-relative) holding the P-controller, submitted through the CLI."""
    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "sub")
    result = _cli("submit", "sub")
    assert result.exit_code == 0, result.output
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "salt").write_text("0123456789abcdef1032547698badcfe\n")
    return Ledger("ledger")


def test_the_stored_policy_is_as_readable_as_the_entry(submitted: Ledger):
    """The policy folder was made by mkdtemp, mode 0700 whatever the umask: another account
    (a CI or web user running render, audit or verify) found its policy "missing or altered"."""
    import os
    import stat

    (entry,) = submitted.entries()
    umask = os.umask(0)
    os.umask(umask)
    folder = submitted.root / "policies" / entry["entry_id"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask


def test_entry_is_named_by_the_policy_bytes_and_holds_every_episode(submitted: Ledger):
    (entry,) = submitted.entries()
    digest = hashlib.sha256()
    for f in sorted(Path("sub").rglob("*")):
        if f.is_file() and f.parent.name == "policy":
            rel = f.relative_to("sub").as_posix()
            digest.update(f"{rel}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert entry["entry_id"] == digest.hexdigest()
    dev = entry["evaluations"]["dev"]
    assert [(e["task"], e["seed"]) for e in dev["episodes"]] == \
        [(t, 7_000_000 + i) for t in ("USB", "DSub") for i in range(2)]
    assert set(dev["episodes"][0]) >= {"task_id", "task_version_key", "success", "steps",
                                       "time_to_success_s", "peak_force_n", "jerk_rms_m_s3",
                                       "time_above_force_limit_s", "path_length_m",
                                       "episode_return"}
    assert dev["task_version_keys"] == tracks.TRACKS[TINY].version_keys()
    stored = submitted.policy_dir(entry["entry_id"])
    assert sorted(p.name for p in stored.rglob("*") if p.is_file()) == \
        ["agent.json", "weights.safetensors"]


def test_a_policy_at_the_submissions_root_is_entered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track,
):
    """`path = "."` (agent.json beside submission.toml) is a valid submission: its per_task
    folder is ".", and the entry's file check looked for "./agent.json" among the files listed
    as "agent.json", refusing it after its evaluation."""
    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "sub")
    for f in Path("sub/policy").iterdir():
        f.rename(Path("sub") / f.name)
    Path("sub/policy").rmdir()
    toml = Path("sub/submission.toml")
    toml.write_text(toml.read_text().replace('path = "policy"', 'path = "."'))
    result = _cli("submit", "sub")
    assert result.exit_code == 0, result.output
    (entry,) = Ledger("ledger").entries()
    assert entry["policy"]["per_task"] == {"USB": ".", "DSub": "."}
    assert {f["path"] for f in entry["policy"]["files"]} >= {"agent.json", "weights.safetensors"}


def test_a_policy_entered_while_another_submit_evaluated_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track,
):
    """Two submits of one policy at once both entered it, under one name: the checks ran
    before the evaluation (20-40 s), and nothing held the ledger from them to the write."""
    import leaderboards.ledger as ledger_module

    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "sub")
    shutil.copytree("sub", "again")  # the same policy under another folder name
    Path("again/policy").rename("again/weights")
    toml = Path("again/submission.toml")
    toml.write_text(toml.read_text().replace('path = "policy"', 'path = "weights"'))
    evaluate = ledger_module.evaluate_policy

    def meanwhile(*args, **kwargs):  # the other submit finishes while this one evaluates
        monkeypatch.setattr(ledger_module, "evaluate_policy", evaluate)
        assert _cli("submit", "again").exit_code == 0
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(ledger_module, "evaluate_policy", meanwhile)
    result = _cli("submit", "sub")
    assert result.exit_code == 1 and "is already called 'P-controller'" in result.stderr
    assert len(Ledger("ledger").entries()) == 1


def _jittered_copy(source: str, copy: str, name: str, scale: float = 1e-4) -> None:
    """The ONNX submission at ``source`` as ``name`` at ``copy``, its weights moved by ``scale``
    of their size."""
    import onnx

    shutil.copytree(source, copy)
    toml = Path(copy) / "submission.toml"
    toml.write_text(toml.read_text().replace('name = "ONNX"', f'name = "{name}"'))
    model = onnx.load(f"{copy}/policy/policy.onnx")
    weight = onnx.numpy_helper.to_array(model.graph.initializer[0])
    moved = weight * (1 + scale * np.random.default_rng(0).standard_normal(weight.shape))
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(
        moved.astype(np.float32), model.graph.initializer[0].name))
    onnx.save(model, f"{copy}/policy/policy.onnx")


def test_a_copy_entered_while_another_submit_evaluated_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track,
):
    """Two jittered copies submitted at once both entered: the entries acting beside a
    submission were those of the ledger before its evaluation (best of N in parallel)."""
    import leaderboards.ledger as ledger_module

    # Jittered weights make paper000's episodes differ past `_acts_alike` (122 of 150 for a
    # copy of BC); the tiny track's saturated policy cannot, so that check stands aside.
    monkeypatch.setattr(ledger_module, "_acts_alike", lambda a, b: False)
    monkeypatch.chdir(tmp_path)
    weight = np.zeros((6, 3))
    weight[2, 2] = -50.0
    onnx_submission(tmp_path / "sub", weight)
    _jittered_copy("sub", "again", "Copy")
    evaluate = ledger_module.evaluate_policy

    def meanwhile(*args, **kwargs):  # the copy enters while this one evaluates
        monkeypatch.setattr(ledger_module, "evaluate_policy", evaluate)
        assert _cli("submit", "again").exit_code == 0
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(ledger_module, "evaluate_policy", meanwhile)
    result = _cli("submit", "sub")
    assert result.exit_code == 1 and "acts as entry" in result.stderr, result.output
    assert [e["name"] for e in Ledger("ledger").entries()] == ["Copy"]


def test_an_entry_that_no_longer_loads_does_not_block_a_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track,
):
    """An entry that a limit tightened since refuses to load (an ONNX graph over today's node
    cap) acted beside every submission to its track: each was refused with its error."""
    import leaderboards.policy as policy_module

    monkeypatch.chdir(tmp_path)
    weight = np.zeros((6, 3))
    weight[2, 2] = -50.0
    onnx_submission(tmp_path / "old", weight)
    assert _cli("submit", "old").exit_code == 0
    monkeypatch.setattr(policy_module, "MAX_ONNX_NODES", 1)
    agent_submission(tmp_path / "new")
    result = _cli("submit", "new")
    assert result.exit_code == 0, result.output


def test_a_round_closed_while_verify_evaluated_is_not_written_to(
        submitted: Ledger, monkeypatch: pytest.MonkeyPatch):
    """verify checked the round before its evaluation (seconds to minutes) and wrote after it:
    an entry verified under a round lost meanwhile was ranked on seeds of a lost salt."""
    import leaderboards.ledger as ledger_module

    (entry,) = submitted.entries()
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    evaluate = ledger_module.evaluate_policy

    def meanwhile(*args, **kwargs):
        assert _cli("lose-round", "--track", TINY, "--reason", "a leak").exit_code == 0
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(ledger_module, "evaluate_policy", meanwhile)
    result = _cli("verify", entry["entry_id"][:8], "--salt-file", "secret/salt", "--no-sim2sim")
    assert result.exit_code == 1 and "nothing was written" in result.stderr, result.output
    assert "hidden" not in submitted.find(entry["entry_id"])["evaluations"]


def test_a_clock_an_hour_off_writes_no_block_the_ledger_then_refuses(
        submitted: Ledger, monkeypatch: pytest.MonkeyPatch):
    """verify wrote a block dated by a clock 2 h behind the round's opening, and every later
    command refused the ledger ("outside salt round 1"); a round revealed from a clock 2 h
    behind a verification did the same (leader26)."""
    from datetime import UTC, datetime, timedelta

    import leaderboards.ledger as ledger_module
    import leaderboards.salts as salts_module

    def clock(hours: float):
        at = datetime.now(UTC) + timedelta(hours=hours)
        return lambda: at.strftime("%Y-%m-%dT%H:%M:%SZ")

    (entry,) = submitted.entries()
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    monkeypatch.setattr(ledger_module, "utc_now", clock(-2))
    result = _cli("verify", entry["entry_id"][:8], "--salt-file", "secret/salt", "--no-sim2sim")
    assert result.exit_code == 1, result.output
    assert "before salt round 1 opened" in result.stderr and "nothing was written" in result.stderr
    assert "hidden" not in submitted.find(entry["entry_id"])["evaluations"]
    monkeypatch.setattr(ledger_module, "utc_now", clock(+2))  # ahead: inside the open round
    result = _cli("verify", entry["entry_id"][:8], "--salt-file", "secret/salt", "--no-sim2sim")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(ledger_module, "utc_now", clock(0))
    for closing in (("reveal", "--salt-file", "secret/salt"), ("lose-round", "--reason", "x")):
        result = _cli(closing[0], "--track", TINY, *closing[1:])
        assert result.exit_code == 1, result.output
        assert "after this machine's clock" in result.stderr, result.output
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0  # still readable
    monkeypatch.setattr(salts_module, "utc_now", clock(+2))  # a right clock: it closes
    monkeypatch.setattr(ledger_module, "utc_now", clock(+2))
    broken = Path("ledger/entries/another-track/x.json")  # not this track's: not read
    broken.parent.mkdir(parents=True)
    broken.write_text("{")
    result = _cli("reveal", "--track", TINY, "--salt-file", "secret/salt")
    assert result.exit_code == 0, result.output


def test_the_same_policy_under_other_names_is_not_entered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track,
):
    """Another folder name, a README beside the policy, re-indented JSON or safetensors
    metadata and tensor order gave the same policy another entry id: one policy could fill
    the board."""
    from safetensors.torch import load_file, save_file

    monkeypatch.chdir(tmp_path)
    sac_submission(tmp_path / "sub")
    assert _cli("submit", "sub").exit_code == 0
    shutil.copytree("sub", "again")
    Path("again/policy").rename("again/weights")
    toml = Path("again/submission.toml")
    toml.write_text(toml.read_text().replace('path = "policy"', 'path = "weights"')
                    .replace('name = "P-controller"', 'name = "Someone else"'))
    Path("again/weights/README.md").write_text("a new method")
    meta = Path("again/weights/agent.json")
    meta.write_text(json.dumps(json.loads(meta.read_text()), indent=4))
    weights = "again/weights/weights.safetensors"
    tensors = load_file(weights)
    assert len(tensors) > 1
    save_file(dict(reversed(tensors.items())), weights, metadata={"run": "2"})
    before = sorted(p for p in Path("ledger").rglob("*") if p.is_file())
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    (entry,) = Ledger("ledger").entries()
    assert f"this policy is already entry {entry['entry_id'][:12]} of tiny ('P-controller'): " \
        "the same actions, under other file names" in result.stderr
    assert sorted(p for p in Path("ledger").rglob("*") if p.is_file()) == before
    # A changed tensor that changes no action (a fresh normaliser's count: its statistics
    # are empty) is the same policy in another form: every dev episode bitwise the same.
    tensors = load_file(weights)
    tensors["obs_norm.count"] = tensors["obs_norm.count"] + 1e-3
    save_file(tensors, weights)
    result = _cli("submit", "again")
    assert result.exit_code == 1 and "acts as entry" in result.stderr, result.output
    # One actor layer changed enough to act otherwise is another policy (one acting within
    # 0.1% of the entry is the same: `_acts_alike`).
    tensors["actor.net.0.bias"] = tensors["actor.net.0.bias"] + 0.5
    save_file(tensors, weights)
    assert _cli("submit", "again").exit_code == 0


def _sac_full_and_exported(root: Path) -> None:
    """``root/full`` (a tiny SAC's full checkpoint) and ``root/policy`` (its export)."""
    import gymnasium as gym

    from agents import export_policy, make_agent

    env = gym.make("InsertBench/USB-v0", **STATE)
    agent = make_agent("sac", env.observation_space, env.action_space,
                       {"hidden": (8, 8), "buffer_size": 16}, seed=0)
    agent.save(root / "full")
    export_policy(root / "full", root / "policy")


def _add_key(policy: Path) -> None:
    meta = json.loads((policy / "agent.json").read_text())
    (policy / "agent.json").write_text(json.dumps(meta | {"note": "another method"}))


def _default_in_config(policy: Path) -> None:
    from agents.sac import SACConfig

    meta = json.loads((policy / "agent.json").read_text())
    assert meta["config"].pop("gamma") == SACConfig().gamma  # left out: its default
    (policy / "agent.json").write_text(json.dumps(meta))


def _edit_tensors(policy: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    file = str(policy / "weights.safetensors")
    save_file(edit(load_file(file)), file)


@pytest.mark.parametrize("change", [
    "key in agent.json", "default in config", "unused tensor", "optimizer tensor",
    "float64 copies", "full checkpoint", "bounds spelled out", "seed", "rng_state", "extra"])
def test_the_same_policy_with_what_loading_ignores_is_not_entered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track, change: str,
):
    """What the evaluation never reads gave the same policy another place on the board: a key
    of agent.json loading ignores, a config default spelled out or left out, a tensor of no
    module or of an optimizer, float32 weights stored as float64 (loaded as the same float32),
    the full checkpoint of an entered policy-only export (which acts exactly like it), a
    uniform bound spelled out element by element, or another seed, random state or counters
    (the shipped BC entry came back under a new name with "seed": 12345)."""
    import torch

    monkeypatch.chdir(tmp_path)
    _sac_full_and_exported(Path("sub"))
    write_toml(Path("sub"))
    assert _cli("submit", "sub").exit_code == 0
    shutil.copytree("sub", "again")
    toml = Path("again/submission.toml")
    toml.write_text(toml.read_text().replace('name = "P-controller"', 'name = "Someone else"'))
    policy = Path("again/policy")
    if change == "key in agent.json":
        _add_key(policy)
    elif change == "default in config":
        _default_in_config(policy)
    elif change == "unused tensor":
        _edit_tensors(policy, lambda t: t | {"notes.junk": torch.zeros(3)})
    elif change == "optimizer tensor":
        _edit_tensors(policy, lambda t: t | {"optim.actor.0.exp_avg": torch.ones(3)})
    elif change == "float64 copies":
        _edit_tensors(policy, lambda t: {k: v.double() if v.dtype == torch.float32 else v
                                         for k, v in t.items()})
    elif change == "full checkpoint":
        shutil.rmtree(policy)
        Path("again/full").rename(policy)
    elif change in ("seed", "rng_state", "extra"):  # state loading restores, acting never reads
        meta = json.loads((policy / "agent.json").read_text())
        meta[change] = {"seed": 12345, "rng_state": {"bit_generator": "PCG64", "state": {
            "state": 7, "inc": 9}, "has_uint32": 0, "uinteger": 0},
            "extra": {"env_steps": 0, "note": "zero-shot"}}[change]
        (policy / "agent.json").write_text(json.dumps(meta))
    else:  # element by element, as older checkpoints stored them
        meta = json.loads((policy / "agent.json").read_text())
        box = meta["action_space"]
        box.update(low=[box["low"]] * box["shape"][0], high=[box["high"]] * box["shape"][0])
        (policy / "agent.json").write_text(json.dumps(meta))
    before = sorted(p for p in Path("ledger").rglob("*") if p.is_file())
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    assert "settings that do not change them; a policy enters a track once" in result.stderr
    assert sorted(p for p in Path("ledger").rglob("*") if p.is_file()) == before


def test_an_entrys_task_policy_recombined_into_a_new_entry_is_refused(submitted: Ledger):
    """Every duplicate check compared whole policies: the published per-task policies of
    entries, recombined, entered as a new policy with hidden seeds of its own (leader20: RLPD's
    USB and D-sub with TD3+LfD's Model-E scored 150/150 beside the 146/150 it copied)."""
    sac_submission(Path("other"))
    Path("mixed").mkdir()
    shutil.copytree("sub/policy", "mixed/usb")  # the entered P-controller's, for USB
    shutil.copytree("other/policy", "mixed/dsub")
    write_toml(Path("mixed"), policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"',
               name="My new method")
    before = sorted(p for p in Path("ledger").rglob("*") if p.is_file())
    result = _cli("submit", "mixed")
    (entry,) = submitted.entries()
    assert result.exit_code == 1, result.output
    assert f"this policy's USB policy is entry {entry['entry_id'][:12]}'s of tiny " \
           "('P-controller') for the same task" in " ".join(result.stderr.split())
    assert sorted(p for p in Path("ledger").rglob("*") if p.is_file()) == before
    shutil.rmtree("mixed/usb")  # both its own: it enters
    shutil.copytree("other/policy", "mixed/usb")
    result = _cli("submit", "mixed")
    assert result.exit_code == 0, result.output


def test_per_task_checkpoints_of_different_agents_are_refused(submitted: Ledger):
    """An entry is labelled (and marked "given the goal") by its first task's agent: a SAC
    USB policy beside a D-sub straight-down search entered as "sac" (and a P-controller beside
    a search, unmarked; leader24)."""
    import gymnasium as gym

    from agents import make_agent

    sac_submission(Path("mixed"))
    Path("mixed/policy").rename("mixed/usb")
    env = gym.make("InsertBench/USB-v0", **STATE)
    make_agent("straight_down", env.observation_space, env.action_space).save(Path("mixed/dsub"))
    env.close()
    write_toml(Path("mixed"), policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"',
               name="Two methods")
    before = sorted(p for p in Path("ledger").rglob("*") if p.is_file())
    result = _cli("submit", "mixed")
    assert result.exit_code == 1, result.output
    assert "the per-task policies are checkpoints of different agents (USB sac, DSub " \
           "straight_down): an entry is one method" in " ".join(result.stderr.split())
    assert sorted(p for p in Path("ledger").rglob("*") if p.is_file()) == before


def test_a_scripted_baseline_with_a_tensor_is_not_entered_again(submitted: Ledger):
    """The P-controller has no networks: a tensor in its weights changes nothing it does."""
    import torch

    shutil.copytree("sub", "again")
    toml = Path("again/submission.toml")
    toml.write_text(toml.read_text().replace('name = "P-controller"', 'name = "Someone else"'))
    _edit_tensors(Path("again/policy"), lambda t: t | {"gain": torch.ones(1)})
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    assert "settings that do not change them; a policy enters a track once" in result.stderr


@pytest.mark.parametrize("name", ["P-controller", "p-controller", "P\u200b-controller",
                                  "\uff30-controller", "P-controller\u200f ",
                                  "P\ufe0f-controller", "P-\u034fcontroller",
                                  "P-controller\u3164", "P-control\U000e0100ler",
                                  "\u0420-controller", "\u03a1-c\u043entroller",
                                  # a non-breaking hyphen, a hyphen, a minus; an Armenian o
                                  "P\u2011controller", "P\u2010controller", "P\u2212controller",
                                  "P-c\u0585ntroller",
                                  # a Lisu letter pa, a small capital o
                                  "\ua4d1-controller", "P-contr\u1d0fller",
                                  # a capital I for an l, a braille blank after it
                                  "P-controIler", "P-controller\u2800"])
def test_a_name_that_reads_as_another_entrys_is_refused(submitted: Ledger, name: str):
    """Another policy under an entry's name, or one that looks the same on the site (a
    zero-width space, a full-width letter, a bidi mark; a variation selector, the combining
    grapheme joiner, a Hangul filler, which are not format characters), stood in the table
    beside it."""
    sac_submission(Path("other"))
    toml = Path("other/submission.toml")
    toml.write_text(toml.read_text().replace('name = "P-controller"', f'name = "{name}"'))
    result = _cli("submit", "other")
    assert result.exit_code == 1, result.output
    (entry,) = submitted.entries()
    assert f"entry {entry['entry_id'][:12]} of tiny is already called 'P-controller'; give the " \
        "submission another name" in result.stderr


def test_names_read_alike_across_case_and_the_i_l_stroke():
    """Mapping a capital I to an l alone split "HIL-SERL" from "hil-serl", which differ only in
    case (diff review): i, I, l and L are one letter to the key."""
    from leaderboards.ledger import name_key

    assert name_key("HIL-SERL") == name_key("hil-serl") == name_key("HlL-SERL")
    assert name_key("TD3 + LfD") == name_key("td3 + lfd") == name_key("TD3 + IfD")
    assert name_key("SAC") != name_key("SAG")


def test_names_read_alike_across_unicodes_confusables():
    """A hand-made table of look-alikes let "Ꭰown" (Cherokee Ꭰ), "Straigһt" (Cyrillic һ),
    "Straiɡht" (Latin script ɡ) and "HǀL-SERL" (a click letter) in beside the real names, and
    its lunate sigma never matched: case folding had made it a σ first."""
    from leaderboards.ledger import name_key

    for fake, real in (("Ꭰown", "Down"), ("Straigһt down", "Straight down"),
                       ("Straiɡht down", "Straight down"), ("HǀL-SERL", "HIL-SERL"),
                       ("ᏴᏟ (20 demos)", "BC (20 demos)"), ("BϹ", "BC"), ("Bϲ", "BC"),
                       ("Р-controller", "P-controller"), ("ᴘ-controller", "P-controller"),
                       # Folded before case alone (diff review), these got through: Unicode
                       # pairs a Cyrillic к or a Greek χ with nothing, and a capital Ԁ or a
                       # Cherokee ꭰ folds to a letter it maps only before folding.
                       ("sac-χ", "sac-x"), ("sac-κ", "sac-k"), ("τd3", "td3"),
                       ("ԀEMO", "demo"), ("ꭰown", "Down"), ("Һello", "hello"),
                       # leader17: digit look-alikes that Unicode pairs with the letter O
                       # folded to "o" while a digit 0 stayed; ASCII pairs were left alone.
                       ("TD3 (seed \U0001d7e2)", "TD3 (seed 0)"), ("TD3 (seed O)", "TD3 (seed 0)"),
                       ("P-contro11er", "P-controller"), ("P-contro||er", "P-controller"),
                       ("Randorn search", "Random search"),
                       # leader20: blank-looking characters, dropped as invisible, made
                       # "Plain⠀straight down" (a braille blank) "plainstraight down".
                       *((f"Straight{blank}down", "Straight down")
                         for blank in "\u2800\u115f\u1160\u3164\uffa0\U0001d159"),
                       ("Straight\U00016fe4down", "Straightdown"),
                       # leader24: look-alikes of ASCII punctuation were kept apart
                       ("My P\u02d7controller", "My P-controller"), ("TD3 \u16ed LfD", "TD3 + LfD"),
                       ("SAC \u2768seed 0\u2769", "SAC (seed 0)"), ("Alice\u2019s", "Alice's"),
                       ("runs\u2215a", "runs/a")):
        assert name_key(fake) == name_key(real), (fake, name_key(fake))
    assert name_key("BC") != name_key("BG") and name_key("Seed 0") != name_key("Seed 8")
    from confusable_homoglyphs.confusables import confusables_data

    for char in (c for c in confusables_data if len(c) == 1):  # a key is its own key
        assert name_key(name_key(char)) == name_key(char), char


def test_a_name_that_shows_nothing_is_refused(submitted: Ledger):
    """A braille blank (not whitespace to strip()) was entered: an empty link on the site."""
    sac_submission(Path("other"))
    toml = Path("other/submission.toml")
    toml.write_text(toml.read_text().replace('name = "P-controller"', 'name = "\u2800\u200b"'))
    result = _cli("submit", "other")
    assert result.exit_code == 1 and "shows no visible character" in result.stderr, result.output
    (entry,) = submitted.entries()
    with pytest.raises(LedgerError, match="shows no visible character"):
        validate_entry(entry | {"name": "\u2800"})


def test_schema_refuses_a_tampered_entry(submitted: Ledger):
    (entry,) = submitted.entries()
    for path, value, message in (
        (("evaluations", "dev", "episodes", 0, "success"), "yes", "is not of type 'boolean'"),
        (("evaluations", "dev", "episodes", 0, "peak_force_n"), "NaN", "is not of type"),
        (("training", "env_steps"), -1, "less than the minimum"),
        (("schema",), "insertbench-leaderboard-entry/0", "known: "),
        (("schema",), "insertbench-leaderboard-entry/1", "schema 1 at"),  # v2 fields in a v1
        # submit refuses it, but a hand-edited ledger file reached the site as a link
        (("paper_url",), "javascript:alert(4)", "at paper_url: 'javascript:alert"),
        (("code_url",), "data:text/html,x", "at code_url: 'data:"),
        # What submit refuses, in an entry written by hand (a pull request to the ledger):
        # 1 MB of text, a right-to-left override, 1,000 authors, another entry's policy files.
        (("training", "hardware"), "x" * 10**6, "training.hardware has 1,000,000 characters"),
        (("name",), "P-\u202econtroller", "name holds a control character"),
        (("authors",), ["A"] * 1000, "1,000 authors; at most 100"),
        (("method",), "a\x1b[2Jb", "method holds a control character"),
        # a lone surrogate passed and stopped `render` halfway; training figures past
        # submit's limits printed as 42 and 300 digits
        (("name",), "Bad \ud800 name", "name holds a control character"),
        (("training", "hardware"), "\udfff", "training.hardware holds a control character"),
        (("training", "env_steps"), 10**42, r"training.env_steps must be an integer from 0 "),
        (("training", "wall_clock_s"), 1e300, r"training.wall_clock_s must be a number of "),
        (("policy", "files", 0, "path"), "../0123/policy/agent.json", "escapes the submission"),
        # ... and in the fields submit fills in itself, which the site shows as well.
        (("source",), "matrix:\u202eDETREFIREV", r"entry.source holds a control character"),
        (("code_version",), "x" * 10**6, "entry.code_version has 1,000,000 characters"),
        (("created_at",), "yesterday", "at created_at: 'yesterday' is not a 'date-time'"),
    ):
        bad = copy.deepcopy(entry)
        target = bad
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(LedgerError, match=message):
            validate_entry(bad)
    bad = copy.deepcopy(entry)
    bad["evaluations"]["dev"]["episodes"].pop()
    with pytest.raises(LedgerError, match="1 episodes of DSub, expected 2"):
        validate_entry(bad)
    # leader17: ... and with the block's count edited to match, it ranked on half the episodes
    for episodes in (bad["evaluations"]["dev"]["episodes"], bad["evaluations"]["dev"]):
        if isinstance(episodes, list):
            episodes[:] = [e for e in episodes if e["seed"] == tracks.DEV_SEED_BASE]
        else:
            episodes["episodes_per_task"] = 1
    with pytest.raises(LedgerError, match="dev evaluation has 1 episodes per task; tiny "
                                          "evaluates 2"):
        validate_entry(bad)
    # Other weights under the entry's scores: the listed SHA-256 edited, or the weights left
    # out of the list (stored_policy_paths checks the listed files only).
    bad = copy.deepcopy(entry)
    bad["policy"]["files"][-1]["sha256"] = "0" * 64
    with pytest.raises(LedgerError, match="is not the SHA-256 of the policy files it lists"):
        validate_entry(bad)
    bad["policy"]["files"].pop()
    bad["entry_id"] = policy_files_sha256((f["path"], f["sha256"]) for f in bad["policy"]["files"])
    with pytest.raises(LedgerError, match="the policy of USB loads policy/weights.safetensors, "
                                          "which is not among the entry's policy files"):
        validate_entry(bad)


def test_an_entry_stale_by_its_task_version_keys_is_not_verified(submitted: Ledger):
    """Verified under today's keys, an entry submitted on older task versions was ranked beside
    the current entry of the same policy (two rank-1 P-controllers on nist-board)."""
    (entry,) = submitted.entries()
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    data = make_stale(submitted, entry)
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    before = path.read_text()
    result = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert result.exit_code == 1, result.output
    assert "was submitted on other versions of tiny's tasks (it is stale)" in result.stderr
    assert "submit its policy again" in result.stderr
    assert path.read_text() == before
    # ... which submit refused as "already entry": the advice led nowhere. The stale entry now
    # makes way (archived beside, by its keys), and the new one is found, verified, rendered.
    again = _cli("submit", "sub")
    assert again.exit_code == 0, again.output
    archived = submitted.archive_path(json.loads(before))
    assert archived.read_text() == before and archived.parent.name.startswith("keys-")
    assert len(submitted.entries()) == 2 and len(submitted.entries(archived=False)) == 1
    assert submitted.find(entry["entry_id"][:10])["evaluations"]["dev"]["task_version_keys"] \
        != data["evaluations"]["dev"]["task_version_keys"]
    assert _cli("submit", "sub").exit_code == 1  # current now: once
    verified = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt",
                    "--no-sim2sim")
    assert verified.exit_code == 0, verified.output
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0
    pages = sorted(p.name for p in Path("site/entries").glob(f"*{entry['entry_id']}*.html"))
    assert pages == [f"{TINY}-{entry['entry_id']}-keys-{keys_digest(data)}.html",
                     f"{TINY}-{entry['entry_id']}.html"]
    # The stale row says it was never verified (a stale badge alone read as either).
    index = Path("site/index.html").read_text()
    assert '<span class="badge stale">stale</span> <span class="badge self">' in index


def test_a_stale_revealed_entry_is_not_rechecked_audited_or_offered_for_either(
        submitted: Ledger):
    """A stale entry of a revealed round was rechecked on today's tasks (every episode
    "changed"), failed every audit for good (exit 1 on the shipped ledger), and its page
    offered a recheck command; its archived file, given to verify, checked the current entry
    of the same id instead (leader23)."""
    (entry,) = submitted.entries()
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    verified = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt",
                    "--no-sim2sim")
    assert verified.exit_code == 0, verified.output
    assert _cli("reveal", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    (entry,) = submitted.entries()
    data = make_stale(submitted, entry)
    for episode in data["evaluations"]["hidden"]["episodes"]:
        episode["task_version_key"] = "0" * 64
    data["evaluations"]["hidden"]["task_version_keys"] = \
        data["evaluations"]["dev"]["task_version_keys"]
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    path.write_text(json.dumps(data))
    list_hidden_as_verified(submitted, data)
    recheck = _cli("verify", entry["entry_id"][:10])
    assert recheck.exit_code == 1 and "(it is stale): its episodes cannot be recomputed by " \
        "this code" in recheck.stderr, recheck.output
    audit = _cli("audit")
    assert audit.exit_code == 0, audit.output
    assert f"stale {entry['entry_id'][:12]} " in audit.stdout
    assert "audited 0 entries of ledger (1 stale, left out): 0 failed" in audit.stdout
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0
    page = Path(f"site/entries/{TINY}-{entry['entry_id']}-keys-{keys_digest(data)}.html")
    page = page.read_text()
    assert "but not the episodes" in page and "leaderboard verify" not in page
    outside = Path("elsewhere") / path.name
    outside.parent.mkdir()
    outside.write_text(path.read_text())
    wrong = _cli("verify", str(outside))
    assert wrong.exit_code == 1 and "is no current entry's file in ledger" in wrong.stderr


def test_a_stale_entrys_task_policy_stays_its_owners(submitted: Ledger):
    """Stale entries were left out of the per-task check: another submission took a stale
    entry's published policy first, and the owner's resubmission was then refused as reusing
    it (leader21)."""
    (entry,) = submitted.entries()
    make_stale(submitted, entry)
    sac_submission(Path("other"))
    Path("mixed").mkdir()
    shutil.copytree(stored_policy_paths(submitted, entry)["USB"], "mixed/usb")  # published
    shutil.copytree("other/policy", "mixed/dsub")
    write_toml(Path("mixed"), policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"',
               name="Someone else")
    result = _cli("submit", "mixed")
    assert result.exit_code == 1, result.output
    assert "this policy's USB policy is entry" in result.stderr
    again = _cli("submit", "sub")  # the owner's: entered again
    assert again.exit_code == 0, again.output


def test_a_task_policy_in_another_form_is_refused_by_its_episodes(submitted: Ledger):
    """The per-task check compared what policy_content sees: an entry's USB policy with an
    Identity node added (or another training-only setting) entered beside a D-sub policy of
    the submitter's own (leader21)."""
    import onnx
    from onnx import helper

    rng = np.random.default_rng(0)
    onnx_submission(Path("a"), rng.normal(size=(6, 3)) * 0.3)
    write_toml(Path("a"), kind="onnx", name="Entry A")
    assert _cli("submit", "a").exit_code == 0
    onnx_submission(Path("b"), np.zeros((6, 3)), offset=-0.4)
    Path("mixed").mkdir()
    shutil.copytree("a/policy", "mixed/usb")
    model = onnx.load("mixed/usb/policy.onnx")
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
    model.graph.node.append(helper.make_node("Identity", [f"{out}_pre"], [out]))
    onnx.save(model, "mixed/usb/policy.onnx")
    shutil.copytree("b/policy", "mixed/dsub")
    write_toml(Path("mixed"), kind="onnx", name="Recombined",
               policy='[policy.per_task]\nUSB = "usb"\nDSub = "dsub"')
    before = sorted(p for p in Path("ledger").rglob("*") if p.is_file())
    result = _cli("submit", "mixed")
    assert result.exit_code == 1, result.output
    assert "this policy's USB policy acts as entry" in result.stderr
    assert "('Entry A') does in all its dev episodes of the same task" in \
        " ".join(result.stderr.split())
    assert sorted(p for p in Path("ledger").rglob("*") if p.is_file()) == before


def test_verify_uses_hidden_seeds_commits_the_salt_hash_and_reveal_publishes_it(
    submitted: Ledger, monkeypatch: pytest.MonkeyPatch,
):
    (entry,) = submitted.entries()
    opened = _cli("open-round", "--track", TINY, "--salt-file", "secret/salt")
    assert opened.exit_code == 0, opened.output
    assert f"opened {TINY} salt round 1 in ledger (SHA-256" in opened.stdout  # leader25
    result = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert result.exit_code == 0, result.output
    assert "verified entry" in result.stdout and "salt round 1" in result.stdout
    salt = b"0123456789abcdef1032547698badcfe"
    (verified,) = submitted.entries()
    hidden = verified["evaluations"]["hidden"]
    assert [e["seed"] for e in hidden["episodes"] if e["task"] == "USB"] == \
        hidden_seeds(salt, TINY, "USB", 2, entry["entry_id"])
    # The sim-to-sim block: both tiny tasks in PyBullet, on the very same hidden seeds.
    sim = verified["sim2sim"]
    assert sim["engine"] == "pybullet" and sim["salt_sha256"] == hidden["salt_sha256"]
    assert sim["tasks"] == {"USB": {"supported": True, "reason": None},
                            "DSub": {"supported": True, "reason": None}}
    assert [(e["task"], e["seed"]) for e in sim["episodes"]] == \
        [(e["task"], e["seed"]) for e in hidden["episodes"]]
    assert sim["revision"] == PYBULLET_REVISION == 4
    assert all(e["task_version_key"] == f"pybullet4-{hidden['task_version_keys'][e['task']]}"
               and e["failure"] is None and e["steps"] >= 1 for e in sim["episodes"])
    # The reference: MuJoCo with noiseless=True on the same seeds. The tiny track's v0 tasks
    # have no sensor variation, so it replays the ranked episodes under its own version key.
    quiet = sim["noiseless"]["episodes"]
    assert [{**e, "task_version_key": None} for e in quiet] == \
        [{**e, "task_version_key": None} for e in hidden["episodes"]]
    assert all(e["task_version_key"] == f"noiseless-{hidden['task_version_keys'][e['task']]}"
               for e in quiet)
    assert [s.noiseless_successes for s in sim2sim_scores(verified)] == \
        [sum(e["success"] for e in hidden["episodes"] if e["task"] == label)
         for label in ("USB", "DSub")]
    assert re.search(r"USB in PyBullet: \d/2 \(MuJoCo (\d)/2, noiseless \1/2\)", result.stdout)
    for change, message in (
            ({"seed": 7}, "noiseless MuJoCo episodes of USB are not on the hidden seeds"),
            ({"task_version_key": sim["episodes"][0]["task_version_key"]},
             "noiseless MuJoCo episode of USB has another version key")):
        bad = copy.deepcopy(verified)
        bad["sim2sim"]["noiseless"]["episodes"][0] |= change
        with pytest.raises(LedgerError, match=message):
            validate_entry(bad)
    # PyBullet's interval counts a replayed episode once, as MuJoCo's does: 50 replays of
    # one success read "50/50 100% [93, 100]" on shipped entry pages.
    replayed = copy.deepcopy(verified)
    usb = [e for e in replayed["sim2sim"]["episodes"] if e["task"] == "USB"]
    replayed["sim2sim"]["episodes"] = [usb[0] | {"seed": usb[0]["seed"] + i} for i in range(5)]
    replayed["sim2sim"]["tasks"] = {"USB": {"supported": True, "reason": None}}
    (score,) = sim2sim_scores(replayed)
    assert score.episodes == 5 and score.pybullet_distinct == (int(usb[0]["success"]), 1)
    assert score.pybullet_ci == wilson_interval(int(usb[0]["success"]), 1)
    for label, key in (("tasks", "USB"), ("episodes", 0)):
        bad = copy.deepcopy(verified)
        del bad["sim2sim"][label][key]
        with pytest.raises(LedgerError, match="sim2sim"):
            validate_entry(bad)
    assert all(HIDDEN_SEED_LOW <= e["seed"] < 2 * HIDDEN_SEED_LOW for e in hidden["episodes"])
    (commitment,) = json.loads(Path("ledger/salts/tiny.json").read_text())["rounds"]
    assert commitment["salt_sha256"] == hashlib.sha256(salt).hexdigest()
    assert commitment["salt_hex"] is None and commitment["status"] == "active"
    assert hidden["salt_sha256"] == commitment["salt_sha256"]
    everything = b"".join(p.read_bytes() for p in Path("ledger").rglob("*") if p.is_file())
    assert salt not in everything and salt.hex().encode() not in everything

    Path("secret/other").write_text("another salt of enough length")
    wrong = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/other")
    assert wrong.exit_code == 1 and "not the one committed" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    inside = Path("ledger/salt.txt")
    inside.write_text("0123456789abcdef1032547698badcfe")
    leaked = _cli("verify", entry["entry_id"][:10], "--salt-file", "ledger/salt.txt")
    assert leaked.exit_code == 1 and "inside the ledger" in leaked.stderr
    inside.unlink()

    revealed = _cli("reveal", "--track", TINY, "--salt-file", "secret/salt")
    assert revealed.exit_code == 0, revealed.output
    (published,) = json.loads(Path("ledger/salts/tiny.json").read_text())["rounds"]
    assert published["salt_hex"] == salt.hex() and published["status"] == "revealed"
    before = Path(f"ledger/entries/tiny/{entry['entry_id']}.json").read_bytes()
    recheck = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert recheck.exit_code == 0, recheck.output  # recomputed and identical
    assert "identical" in recheck.stdout
    assert Path(f"ledger/entries/tiny/{entry['entry_id']}.json").read_bytes() == before
    # A block stored before 2026-12-06 ran PyBullet model revision 1: it records no revision,
    # its keys start "pybullet-". This code cannot replay it: the recheck says so, builds no
    # PyBullet env, and still recomputes the MuJoCo episodes and the noiseless reference.
    legacy = json.loads(before)
    assert legacy["sim2sim"].pop("revision") == 4
    for episode in legacy["sim2sim"]["episodes"]:
        episode["task_version_key"] = episode["task_version_key"].replace("pybullet4-",
                                                                          "pybullet-")
    validate_entry(legacy)
    with pytest.raises(LedgerError, match="sim2sim episode of USB has another version key"):
        validate_entry({**legacy, "sim2sim": {**legacy["sim2sim"], "revision": 4}})
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(legacy))
    list_hidden_as_verified(submitted, legacy)
    built, make = [], leaderboards.sim2sim.make_engine_env

    def spied(engine, *args, **kwargs):
        built.append(engine)
        return make(engine, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(leaderboards.sim2sim, "make_engine_env", spied)
        old = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert old.exit_code == 0 and "MuJoCo: every one" in old.stdout, old.output
    assert "PyBullet: not recomputed: its episodes ran on PyBullet model revision 1, which " \
        "this code (revision 4) cannot replay" in old.stdout and built == ["mujoco"] * 2
    assert "MuJoCo (noiseless): every one of the 4 recomputed episodes is identical" in \
        old.stdout, old.stdout
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_bytes(before)
    list_hidden_as_verified(submitted, json.loads(before))
    # Anyone can: without a salt file, the published salt of the entry's round is used.
    public = _cli("verify", entry["entry_id"][:10], "--no-sim2sim")
    assert public.exit_code == 0 and "identical" in public.stdout, public.output
    assert "on the platform that evaluated it" in public.stdout
    assert hidden["platform"]["cpu"] and hidden["platform"]["mujoco"] == mujoco.__version__
    # The PyBullet block is recomputed too. On the platform that evaluated the entry, a
    # doctored number fails the recheck ...
    doctored = json.loads(before)
    doctored["sim2sim"]["episodes"][0]["peak_force_n"] += 1.0
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(doctored))
    list_hidden_as_verified(submitted, doctored)  # past the ledger's reading, to the recheck
    here = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert here.exit_code == 1 and "PyBullet episodes" in here.stderr
    assert "not bitwise identical, as required on the platform that evaluated it" in here.stderr
    doctored = json.loads(before)
    doctored["sim2sim"]["noiseless"]["episodes"][-1]["success"] ^= True
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(doctored))
    list_hidden_as_verified(submitted, doctored)
    here = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert here.exit_code == 1 and "noiseless MuJoCo episodes" in here.stderr, here.output
    doctored = json.loads(before)
    doctored["sim2sim"]["episodes"][0]["peak_force_n"] += 1.0
    # ... elsewhere (another recorded platform) it is shown as the largest difference, and
    # --exact refuses it ...
    doctored["evaluations"]["hidden"]["platform"]["cpu"] = "another CPU"
    # (The PyBullet part records its own platform, as a part rerun later elsewhere does: while
    # it is this one, the part is held bitwise here whatever the hidden evaluation recorded.)
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(doctored))
    list_hidden_as_verified(submitted, doctored)
    here = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert here.exit_code == 1 and "PyBullet episodes" in here.stderr, here.output
    assert "as required on the platform that evaluated it" in here.stderr
    doctored["sim2sim"]["platform"]["cpu"] = "another CPU"
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(doctored))
    list_hidden_as_verified(submitted, doctored)  # as if verified there
    shown = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert shown.exit_code == 0, shown.output
    assert "PyBullet: the" in shown.stdout and "1 differ" in shown.stdout
    assert "peak_force_n" in shown.stdout and "MuJoCo: every one" in shown.stdout
    assert "another platform than the one that evaluated it (cpu another CPU ->" in shown.stdout
    exact = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt", "--exact")
    assert exact.exit_code == 1 and "not bitwise identical, as required by --exact" in exact.stderr
    # ... and a doctored outcome fails every recheck, naming the episode and the counts.
    doctored = json.loads(before)
    first = doctored["evaluations"]["hidden"]["episodes"][0]
    steps = None if first["success"] else first["steps"]  # a record that agrees with itself
    first.update(success=not first["success"], steps_to_success=steps,
                 time_to_success_s=None if steps is None else steps * 0.1)
    Path(f"ledger/entries/tiny/{entry['entry_id']}.json").write_text(json.dumps(doctored))
    refused = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert refused.exit_code == 1 and "not one that `leaderboard verify` recorded" in \
        refused.stderr  # an edit of the block: the ledger's reading refuses it
    list_hidden_as_verified(submitted, doctored)  # as if a verification had written it
    caught = _cli("verify", entry["entry_id"][:10], "--salt-file", "secret/salt")
    assert caught.exit_code == 1 and "hidden episodes" in caught.stderr
    assert f"seed {first['seed']}: success" in caught.stderr and "successes" in caught.stderr
    assert len(caught.stderr.strip().splitlines()) == 1


def test_verify_refuses_an_altered_stored_policy(submitted: Ledger):
    (entry,) = submitted.entries()
    weights = submitted.policy_dir(entry["entry_id"]) / "policy" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    result = _cli("verify", entry["entry_id"], "--salt-file", "secret/salt")
    assert result.exit_code == 1 and "missing or altered" in result.stderr
    assert "hidden" not in submitted.entries()[0]["evaluations"]


def test_verify_names_a_missing_ledger_and_an_unknown_or_ambiguous_entry(submitted: Ledger):
    (entry,) = submitted.entries()
    result = runner.invoke(app, ["leaderboard", "verify", entry["entry_id"][:8],
                                 "--ledger", "no-such-dir"])
    assert result.exit_code == 1
    assert "no-such-dir is not a ledger (it has no entries/ folder)" in result.stderr
    result = _cli("verify", "ffffffff")
    assert result.exit_code == 1 and "no entry of track version" in result.stderr
    assert "starting with 'ffffffff'" in result.stderr and "give more" not in result.stderr
    # `verify "$ID"` with ID unset: '' is a prefix of every id, and the ledger's only entry
    # used to be verified (its hidden evaluation written) though none was named.
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    result = _cli("verify", "", "--salt-file", "secret/salt")
    assert result.exit_code == 1 and "not an empty string" in result.stderr, result.output
    assert "hidden" not in submitted.entries()[0]["evaluations"]
    result = _cli("open-round", "--track", TINY, "--salt-file", "secret")
    assert result.exit_code == 1 and "salt file secret is a directory" in result.stderr
    for n in range(10**6):  # another entry whose id starts as this one's
        twin = copy.deepcopy(entry)
        _list_another_file(twin, f"policy/{n}.txt")
        if twin["entry_id"][:3] == entry["entry_id"][:3]:
            twin["name"] = "P-controller again"  # two of one name are refused on reading
            break
    path = submitted.entry_path(twin["track"], twin["entry_id"])
    path.write_text(json.dumps(twin))
    result = _cli("verify", entry["entry_id"][:3])
    assert result.exit_code == 1 and "2 entries of track version" in result.stderr
    assert "give more of the entry's SHA-256" in result.stderr


def test_one_policy_on_two_tracks_has_a_page_and_a_verify_for_each(
    submitted: Ledger, monkeypatch: pytest.MonkeyPatch, tiny_track
):
    """Both entries had one page, entries/<id>.html (the track rendered last, linked from both
    tables), and `verify` could tell them apart by no id nor file: neither was verifiable."""
    monkeypatch.setitem(tracks.TRACKS, "tiny2", dataclasses.replace(tiny_track, name="tiny2"))
    write_toml(Path("sub"), track="tiny2")
    assert _cli("submit", "sub").exit_code == 0
    first, second = submitted.entries()
    assert first["entry_id"] == second["entry_id"] and {first["track"], second["track"]} == {
        TINY, "tiny2"}
    result = _cli("verify", first["entry_id"][:10], "--dev")
    assert result.exit_code == 1 and "is an entry of 2 tracks; give the entry's JSON file" in \
        " ".join(result.stderr.split()), result.output
    path = submitted.entry_path("tiny2", second["entry_id"])
    assert submitted.find(str(path))["track"] == "tiny2"
    assert _cli("verify", str(path), "--dev").exit_code == 0
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0
    index = Path("site/index.html").read_text()
    for track in (TINY, "tiny2"):
        page = Path(f"site/entries/{track}-{first['entry_id']}.html").read_text()
        assert f"Track <b>{track}</b>" in page and f'href="entries/{track}-' in index


@pytest.mark.parametrize("command", [("verify", "ffff"), ("render", "--out", "site", "--no-gifs")])
def test_a_damaged_entry_file_is_named(command: tuple[str, ...], submitted: Ledger):
    """An entry file cut off or left with merge-conflict markers ended `verify` and `render` in
    "JSONDecodeError: Expecting value: line 1 column 1 (char 0)", without the file."""
    damaged = submitted.entry_path(TINY, "f" * 64)
    damaged.write_text("<<<<<<< HEAD\n{")
    result = _cli(*command)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"insertbench: error: {damaged} is not valid JSON: "), \
        result.stderr


def test_a_writers_temporary_file_left_by_a_kill_is_not_read_as_an_entry(submitted: Ledger):
    """A kill -9 between writing an entry's temporary file and renaming it into place left
    ".<id>.<pid>-<uuid>.tmp.json" beside the entries: every later verify and render read it
    ("holds entry ... of tiny") and refused to go on until someone found the dotfile."""
    entry = next(e for e in submitted.entries())
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    (path.parent / f".{path.stem}.12345-0123456789ab.tmp.json").write_text(path.read_text())
    assert [e["entry_id"] for e in submitted.entries()].count(entry["entry_id"]) == 1
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0


@pytest.mark.parametrize("out, why", [
    ("site", "--out site is not a directory"),
    ("site/pages", "--out site/pages is not a directory (under site, a file)"),
])
def test_render_refuses_an_out_that_is_a_file(out: str, why: str, submitted: Ledger):
    """`render --out site` where site is a file ended in "NotADirectoryError: [Errno 20] Not a
    directory: 'site/entries'", and so did an --out under that file."""
    Path("site").write_text("a file")
    result = _cli("render", "--out", out, "--no-gifs")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"insertbench: error: {why}", result.stderr
    assert Path("site").read_text() == "a file"


def test_render_plots_a_submitted_name_as_text(tmp_path: Path, monkeypatch, tiny_track):
    """The cost plot annotates each entry with its submitted name, which matplotlib parsed as
    mathtext: a name such as "P-controller $_$" failed `render` for the whole leaderboard
    ("ValueError: ... ParseFatalException")."""
    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "sub")
    text = (tmp_path / "sub" / "submission.toml").read_text()
    (tmp_path / "sub" / "submission.toml").write_text(
        text.replace('name = "P-controller"', 'name = "P-controller $_$ <b>"'))
    assert _cli("submit", "sub").exit_code == 0
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 0, result.output
    assert "P-controller $_$ &lt;b&gt;" in Path("site/index.html").read_text()
    assert Path(f"site/plots/{TINY}.png").stat().st_size > 0


def test_render_plots_the_largest_training_cost_submit_accepts(tmp_path: Path, monkeypatch,
                                                              tiny_track):
    """The cost plot centred its log axis on sqrt(min * max) of int counts: one entry with
    10^10 env steps overflowed int64 and failed `render` for the whole ledger."""
    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "sub")
    text = (tmp_path / "sub" / "submission.toml").read_text()
    (tmp_path / "sub" / "submission.toml").write_text(
        text.replace("env_steps = 0", f"env_steps = {submission.MAX_TRAINING_COUNT}"))
    assert _cli("submit", "sub").exit_code == 0
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 0, result.output
    assert Path(f"site/plots/{TINY}.png").stat().st_size > 0


def _list_another_file(entry: dict, path: str) -> None:
    """List one more policy file in ``entry``, whose id becomes that of its files."""
    files = entry["policy"]["files"]
    files.append({"path": path, "sha256": hashlib.sha256(path.encode()).hexdigest(), "bytes": 1})
    entry["entry_id"] = policy_files_sha256((f["path"], f["sha256"]) for f in files)


def _synthetic(entry: dict, successes: dict[str, list[bool]], name: str, builtin: bool) -> dict:
    """A copy of ``entry`` with other successes (validated like any entry)."""
    out = copy.deepcopy(entry)
    out["name"], out["builtin"] = name, builtin
    out["source"] = "matrix:synthetic" if builtin else "submission"  # baselines come from one
    _list_another_file(out, f"policy/{name}.txt")
    episodes = []
    template = entry["evaluations"]["dev"]["episodes"][0]
    keys = entry["evaluations"]["dev"]["task_version_keys"]
    for label, outcomes in successes.items():
        for i, won in enumerate(outcomes):
            episodes.append(template | {"task": label, "task_version_key": keys[label],
                                        "seed": tracks.DEV_SEED_BASE + i, "success": won,
                                        "episode_return": float(i),
                                        "steps_to_success": 10 if won else None,
                                        "time_to_success_s": 1.0 if won else None})
    out["evaluations"]["dev"]["episodes"] = episodes
    count = len(next(iter(successes.values())))
    out["evaluations"]["dev"]["episodes_per_task"] = count
    track = tracks.TRACKS[TINY]  # validated as if the track evaluated `count` a task
    with mock.patch.dict(tracks.TRACKS, {TINY: dataclasses.replace(track,
                                                                   episodes_per_task=count)}):
        validate_entry(out)
    return out


def test_scores_rank_groups_improvement_and_stale_entries(
    submitted: Ledger, monkeypatch: pytest.MonkeyPatch
):
    (entry,) = submitted.entries()
    n = 40
    strong = _synthetic(entry, {"USB": [True] * n, "DSub": [True] * (n - 2) + [False] * 2},
                        "strong", False)
    close = _synthetic(entry, {"USB": [True] * (n - 1) + [False], "DSub": [True] * (n - 3)
                               + [False] * 3}, "close", False)
    weak = _synthetic(entry, {"USB": [False] * n, "DSub": [True] * 4 + [False] * (n - 4)},
                      "weak baseline", True)
    track = tracks.TRACKS[TINY]
    tables = track_tables(track, [strong, close, weak])
    assert [s.entry["name"] for s in tables.self_reported] == ["strong", "close",
                                                              "weak baseline"]
    assert [s.rank for s in tables.self_reported] == [1, 1, 3]
    top = tables.self_reported[0]
    assert top.mean == pytest.approx((1 + (n - 2) / n) / 2)
    assert top.mean_ci[0] < top.mean <= top.mean_ci[1] <= 1
    assert top.iqm == pytest.approx(top.mean)  # 2 tasks: nothing to trim
    assert top.tasks[1].ci == pytest.approx((0.8345, 0.9862), abs=1e-3)  # Wilson 38/40
    replays = _synthetic(entry, {"USB": [True] * n, "DSub": [True] * n}, "replays", False)
    for episode in replays["evaluations"]["dev"]["episodes"]:
        episode["episode_return"] = 1.0  # one episode seen n times: one trial, not n
    once = score_entry(replays, "dev", ["USB", "DSub"]).tasks[0]
    assert once.successes == n and once.ci == pytest.approx(wilson_interval(1, 1))
    assert top.prob_improvement > 0.9 and top.baseline == "weak baseline"
    assert tables.self_reported[2].prob_improvement is None
    assert tables.verified == [] and tables.stale == []

    # Change what USB means (another goal noise): every entry made before is stale.
    changed = track.tasks[0].__class__("USB", "InsertBench/USB-v0", STATE | {"goal_noise_mm": 2.0})
    monkeypatch.setitem(tracks.TRACKS, TINY, track.__class__(
        TINY, track.description, (changed, track.tasks[1]), 2, "tests only"))
    later = track_tables(tracks.TRACKS[TINY], [strong, close, weak])
    assert later.self_reported == [] and len(later.stale) == 3
    assert all(s.rank is None for s in later.stale)


def test_an_entrys_intervals_do_not_depend_on_the_other_entries(submitted: Ledger):
    """Adding or removing an entry, or listing the entries in another order, leaves every other
    entry's bootstrap intervals (and so the ranks resting on them) exactly as they were."""
    (entry,) = submitted.entries()
    rng = np.random.default_rng(0)
    entries = [_synthetic(entry, {"USB": [bool(v) for v in rng.random(30) < p],
                                  "DSub": [bool(v) for v in rng.random(30) < q]},
                          f"entry {i}", i == 0)  # entry 0: the baseline
               for i, (p, q) in enumerate([(0.3, 0.5), (0.6, 0.7), (0.8, 0.4), (0.5, 0.9)])]
    track = tracks.TRACKS[TINY]

    def intervals(listed):
        tables = track_tables(track, listed)
        return {s.entry["name"]: (s.mean_ci, s.iqm_ci, s.prob_improvement_ci)
                for s in tables.self_reported}

    everyone = intervals(entries)
    assert len({ci for ci, _, _ in everyone.values()}) == 4
    assert sum(poi is not None for _, _, poi in everyone.values()) == 3  # all but the baseline
    assert intervals(entries[::-1]) == everyone
    fewer = intervals([entries[0], entries[3], entries[2]])  # the baseline stays, entry 1 goes
    assert fewer == {name: everyone[name] for name in fewer}


def test_the_closed_form_improvement_equals_rliable():
    """The probability of improvement, written out for speed, against the library call."""
    from rliable import metrics as rly_metrics

    rng = np.random.default_rng(1)
    for tasks in (1, 2, 3, 4, 7, 9):
        x = (rng.random((40, tasks)) < rng.random(tasks)).astype(float)
        y = (rng.random((25, tasks)) < rng.random(tasks)).astype(float)
        p, q = x.mean(axis=0), y.mean(axis=0)
        assert scoring._probability_of_improvement(p, q) == pytest.approx(
            rly_metrics.probability_of_improvement(x, y), abs=1e-12)
        assert scoring._probability_of_improvement(p, p) == pytest.approx(0.5)


def test_replayed_episodes_count_once_in_the_aggregates(submitted: Ledger):
    """A deterministic policy on a noiseless task replays one episode for every seed: the
    aggregates' intervals count a replayed episode once, as the per-task Wilson interval does.
    Replaying every episode three times leaves every interval as it was (resampling the raw
    episodes had narrowed them as if three times as many had been run), and the site marks an
    aggregate that rests on replays."""
    (entry,) = submitted.entries()
    rng = np.random.default_rng(2)
    once = _synthetic(entry, {label: [bool(v) for v in rng.random(8) < 0.5]
                              for label in ("USB", "DSub")}, "once", False)
    baseline = _synthetic(entry, {"USB": [False] * 8, "DSub": [True] * 2 + [False] * 6},
                          "baseline", True)
    thrice = copy.deepcopy(once)
    block = thrice["evaluations"]["dev"]
    block["episodes"] = [e | {"seed": e["seed"] + 100 * k}
                         for k in range(3) for e in block["episodes"]]

    def scored(candidate: dict) -> scoring.EntryScore:
        scores = [score_entry(e, "dev", ["USB", "DSub"]) for e in (candidate, baseline)]
        scoring.aggregate(scores)
        scoring.improvement_over_best_baseline(scores)
        return scores[0]

    a, b = scored(once), scored(thrice)
    for field in ("mean", "iqm", "mean_ci", "iqm_ci", "prob_improvement",
                  "prob_improvement_ci"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), abs=1e-12), field
    assert a.mean_ci[1] - a.mean_ci[0] > 0.3  # 8 distinct episodes per task
    assert (b.episodes, b.distinct_episodes) == (48, 16)
    assert "(16 of 48 distinct)" in site._replayed(b) and site._replayed(a) == ""
    # Each task's cell is marked as the aggregates are (it read like 24 trials).
    table = site._table("tiny", "verified", [b], ["USB", "DSub"])
    assert table.count("(8 distinct)</small></td>") == 2, table


def test_a_task_all_successes_or_all_failures_still_has_an_interval(submitted: Ledger):
    """Bootstrapping the episodes gave such an entry's mean "100% [100, 100]" beside each
    task's "[91, 100]": nothing to resample, so any entry with a failure ranked below it."""
    (entry,) = submitted.entries()
    scores = [score_entry(_synthetic(entry, {"USB": [won] * 40, "DSub": [won] * 40},
                                     name, False), "dev", ["USB", "DSub"])
              for name, won in (("all", True), ("none", False))]
    scoring.aggregate(scores)
    full, empty = scores
    assert full.mean == 1.0 and 0.9 < full.mean_ci[0] < 0.99 and full.mean_ci[1] == 1.0
    assert empty.mean == 0.0 and empty.mean_ci[0] == 0.0 and 0.01 < empty.mean_ci[1] < 0.1
    assert full.iqm_ci == full.mean_ci  # two tasks: the IQM is the mean


def test_the_best_of_tied_baselines_does_not_depend_on_their_order(submitted: Ledger):
    """max() kept the first of tied baselines: reordering the entries changed the baseline
    every P(improvement) names, and its intervals."""
    (entry,) = submitted.entries()
    outcomes = {"USB": [True] * 8, "DSub": [True] * 8}
    entries = [_synthetic(entry, outcomes, "Zig", True), _synthetic(entry, outcomes, "Ant", True),
               _synthetic(entry, {"USB": [True, False] * 4, "DSub": [True] * 8}, "mine", False)]

    def improvement(order: list[dict]) -> tuple:
        scores = [score_entry(e, "dev", ["USB", "DSub"]) for e in order]
        scoring.aggregate(scores)
        scoring.improvement_over_best_baseline(scores)
        mine = next(s for s in scores if s.entry["name"] == "mine")
        return mine.baseline, mine.prob_improvement_ci

    assert improvement(entries) == improvement(entries[::-1])
    assert improvement(entries)[0] == "Ant"


def test_the_mean_interval_is_computed_the_same_for_equal_results(submitted: Ledger,
                                                                   monkeypatch):
    """Drawn and seeded by entry id, four shipped entries at 150/150 had four lower bounds, and
    whether residual SAC shared their rank (1st or 8th) hung on the draw seed."""
    (entry,) = submitted.entries()
    outcomes = {"USB": [True] * 30, "DSub": [True] * 29 + [False]}
    twins = [_synthetic(entry, outcomes, name, False) for name in ("a", "b")]

    def mean_ci(seed: int) -> list[tuple[float, float]]:
        monkeypatch.setattr(scoring, "DRAWS_SEED", seed)
        scores = [score_entry(e, "dev", ["USB", "DSub"]) for e in twins]
        scoring.aggregate(scores)
        return [s.mean_ci for s in scores]

    first = mean_ci(0)
    assert first[0] == first[1] == mean_ci(1)[0]
    # Wilson's interval of 59 successes at Kish's effective size 2^2 / (1/30 + 1/30) = 60.
    assert first[0] == pytest.approx(wilson_interval(59, 60))


def test_the_mean_interval_holds_the_true_mean_95_percent_of_the_time_near_0_and_1():
    """The mean of per-task Jeffreys posteriors, each pulled ~0.5 / (n + 1) towards 1/2, held
    the true mean of 9 tasks x 20 episodes at p = 0.99 in 45% of simulated evaluations (8 at
    p = 0.01: 52%), and ranks rested on it (review)."""
    rng = np.random.default_rng(0)
    for tasks, rate in ((9, 0.99), (8, 0.01), (3, 0.5)):
        held = 0
        for _ in range(400):
            successes = rng.binomial(20, rate, size=tasks)
            distinct = [np.array([(1.0, 1.0)] * k + [(0.0, 1.0)] * (20 - k)) for k in successes]
            low, high = scoring._mean_interval(distinct)
            held += low <= rate <= high
        assert held / 400 >= 0.92, (tasks, rate, held / 400)
    # Replays leave tasks with unequal distinct counts: Kish's size alone held 0.79 here.
    held = 0
    for _ in range(400):
        distinct = [np.array([(1.0, 1.0)] * k + [(0.0, 1.0)] * (n - k))
                    for n, rate in [(2, 0.5)] * 3 + [(50, 0.01)] * 6
                    for k in [rng.binomial(n, rate)]]
        low, high = scoring._mean_interval(distinct)
        held += low <= (3 * 0.5 + 6 * 0.01) / 9 <= high
    assert held / 400 >= 0.84, held / 400
    # P(improvement) = 1/2 + (mean_X - mean_Y) / 2: drawn from the posteriors, its interval held
    # an entry near 0% against a baseline at 90% 64% of the time.
    truth, held = 0.5 + 0.5 * (0.005 - 0.9), 0
    for _ in range(400):
        x, y = ([np.array([(1.0, 1.0)] * k + [(0.0, 1.0)] * (20 - k))
                 for k in rng.binomial(20, rate, size=9)] for rate in (0.005, 0.9))
        low, high = scoring._improvement_interval(x, y)
        held += low <= truth <= high
    assert held / 400 >= 0.92, held / 400


def test_rank_sorts_by_mean_and_splits_groups_at_disjoint_intervals(submitted: Ledger):
    (entry,) = submitted.entries()
    scores = [score_entry(entry, "dev", ["USB", "DSub"]) for _ in range(3)]
    for s, (mean, low, high) in zip(scores, [(0.5, 0.4, 0.6), (0.9, 0.8, 1.0),
                                            (0.75, 0.62, 0.85)], strict=True):
        s.mean, s.mean_ci = mean, (low, high)
    assert [(s.mean, s.rank) for s in rank(scores)] == [(0.9, 1), (0.75, 1), (0.5, 3)]


def test_onnx_policy_is_scored_like_a_checkpoint(tmp_path: Path, monkeypatch, tiny_track):
    monkeypatch.chdir(tmp_path)
    weight = np.zeros((6, 3))
    weight[2, 2] = -50.0  # push down while above the start height's plane: z error -> -1
    onnx_submission(tmp_path / "sub", weight)
    result = _cli("submit", "sub")
    assert result.exit_code == 0, result.output
    (entry,) = Ledger("ledger").entries()
    assert entry["policy"]["kind"] == "onnx" and entry["policy"]["agent"] is None
    assert all(e["steps"] >= 1 for e in entry["evaluations"]["dev"]["episodes"])


def _entered_and_copied(tmp_path: Path, monkeypatch, name: str):
    """An ONNX policy entered from ``sub``, copied to ``again`` under ``name``: its weight
    and the copy's loaded graph, to edit and save back."""
    import onnx

    monkeypatch.chdir(tmp_path)
    weight = np.zeros((6, 3))
    weight[2, 2] = -50.0
    onnx_submission(tmp_path / "sub", weight)
    assert _cli("submit", "sub").exit_code == 0
    shutil.copytree("sub", "again")
    toml = Path("again/submission.toml")
    toml.write_text(toml.read_text().replace('name = "ONNX"', f'name = "{name}"'))
    return weight, onnx.load("again/policy/policy.onnx")


def test_the_same_onnx_graph_with_other_metadata_is_not_entered_again(
    tmp_path: Path, monkeypatch, tiny_track,
):
    """The producer, doc strings, metadata properties and node names change the graph's bytes,
    not what onnxruntime computes: the same graph took another entry with each."""
    import onnx

    weight, model = _entered_and_copied(tmp_path, monkeypatch, "Another graph")
    model.producer_name, model.doc_string = "another exporter", "a new method"
    onnx.helper.set_model_props(model, {"run": "2"})
    model.graph.node[0].name = "renamed"
    onnx.save(model, "again/policy/policy.onnx")
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    assert "settings that do not change them; a policy enters a track once" in result.stderr
    # Another weight is another policy once it acts otherwise: twice this one acts the same
    # in every dev episode (refused as acting exactly as the entry does), another offset not.
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(
        (weight * 2).astype(np.float32), model.graph.initializer[0].name))
    onnx.save(model, "again/policy/policy.onnx")
    result = _cli("submit", "again")
    assert result.exit_code == 1 and "acts as entry" in result.stderr, result.output
    offset = next(i for i in model.graph.initializer if i.name == "offset")
    offset.CopyFrom(onnx.numpy_helper.from_array(np.array(0.2, np.float32), "offset"))
    onnx.save(model, "again/policy/policy.onnx")
    assert _cli("submit", "again").exit_code == 0


def test_the_same_policy_repackaged_is_not_entered_again(tmp_path: Path, monkeypatch,
                                                         tiny_track):
    """Renamed tensors, an Identity node or another opset change what `policy_content` reads,
    not the actions: each copy took an entry of its own, with hidden seeds of its own (best of
    N). A policy acting exactly as an entry in every dev episode is refused."""
    import onnx
    from onnx import helper

    _, model = _entered_and_copied(tmp_path, monkeypatch, "Repackaged")
    graph = model.graph
    for node in graph.node:  # W -> weights, and the output through an Identity
        node.input[:] = ["weights" if name == "W" else name for name in node.input]
        node.output[:] = ["raw" if name == "action" else name for name in node.output]
    next(i for i in graph.initializer if i.name == "W").name = "weights"
    graph.node.append(helper.make_node("Identity", ["raw"], ["action"]))
    model.opset_import[0].version = 18
    onnx.save(model, "again/policy/policy.onnx")
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    assert "acts as entry" in result.stderr and "a policy enters a track once" in \
        result.stderr
    assert len(Ledger("ledger").entries()) == 1


def test_a_policy_with_weights_moved_in_their_last_digits_is_not_entered_again(
        tmp_path: Path, monkeypatch, tiny_track):
    """A copy with a weight moved by one unit in the last place entered as a new policy, with
    hidden seeds of its own: its dev episodes differed in the 6th-7th significant digit."""
    import onnx

    from leaderboards.ledger import _acts_alike

    weight, model = _entered_and_copied(tmp_path, monkeypatch, "Nudged")
    nudged = weight.astype(np.float32)
    nudged[2, 2] = np.nextafter(nudged[2, 2], np.float32(0))  # -50 by one unit in the last place
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(
        nudged, model.graph.initializer[0].name))
    onnx.save(model, "again/policy/policy.onnx")
    result = _cli("submit", "again")
    assert result.exit_code == 1 and "acts as entry" in result.stderr, result.output
    record = {"success": True, "steps": 12, "peak_force_n": 20.0}
    assert _acts_alike([record], [record | {"peak_force_n": 20.0 * (1 + 1e-5)}])
    assert not _acts_alike([record], [record | {"peak_force_n": 20.5}])
    assert not _acts_alike([record], [record | {"steps": 13}])
    # Weights moved by 1e-4 of their size: the contacts amplify it past the episodes'
    # tolerance (a copy of paper000's BC entry differed by more in 122 of 150 episodes), and
    # the copy entered with hidden seeds of its own; its actions stay within 0.01 on every step.
    monkeypatch.setattr("leaderboards.ledger.ACTS_ALIKE_REL_TOL", 0.0)
    jittered = weight.astype(np.float32) * (1 + 1e-4 * np.random.default_rng(0).standard_normal(
        weight.shape)).astype(np.float32)
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(
        jittered, model.graph.initializer[0].name))
    onnx.save(model, "again/policy/policy.onnx")
    result = _cli("submit", "again")
    assert result.exit_code == 1, result.output
    assert re.search(r"acts as entry \w{12} of tiny \('ONNX'\) does: on all [\d,]+ steps of "
                     r"its dev episodes their actions differ by at most 0.01", result.stderr)


def test_a_hidden_block_no_verification_wrote_is_refused(tmp_path):
    """A submitter can add a hidden block to the entry file they send: made-up episodes on a
    lost round's seeds, or the policy run on a revealed round's public seeds. Both passed
    every check, `audit` included, and ranked "verified"."""
    shipped = Ledger(Path("leaderboards/ledger"))
    rounds = shipped.salt_rounds("paper000").read()
    lost, revealed = rounds[0], rounds[1]
    assert (lost.status, revealed.status) == ("lost", "revealed")
    entry = next(e for e in shipped.entries() if e["track"] == "paper000"
                 and shipped.entry_round(e) == revealed)
    root = tmp_path / "ledger"
    shutil.copytree(shipped.root / "salts", root / "salts")
    target = root / shipped.entry_path("paper000", entry["entry_id"], 2).relative_to(shipped.root)
    target.parent.mkdir(parents=True)
    ledger = Ledger(root)

    def write(hidden: dict) -> None:  # without the PyBullet block, whose seeds are checked
        target.write_text(json.dumps({**{k: v for k, v in entry.items() if k != "sim2sim"},
                                      "evaluations": {**entry["evaluations"], "hidden": hidden}}))

    hidden = entry["evaluations"]["hidden"]
    target.write_text(json.dumps(entry))
    assert len(ledger.entries()) == 1  # what verify wrote, listed under its round
    # The revealed round's own seeds, one outcome changed (a run of the submitter's).
    write({**hidden, "episodes": [succeeded(hidden["episodes"][0], steps=3),
                                  *hidden["episodes"][1:]]})
    with pytest.raises(LedgerError, match="not one that `leaderboard verify` recorded under "
                                          "salt round 2"):
        ledger.entries()
    # The lost round: any seeds in the hidden range, dated before it closed.
    write({**hidden, "salt_sha256": lost.salt_sha256, "evaluated_at": "2000-01-01T00:00:00Z",
           "episodes": [succeeded(e) for e in hidden["episodes"]]})
    with pytest.raises(LedgerError, match="not one that `leaderboard verify` recorded under "
                                          "salt round 1"):
        ledger.entries()


def test_a_current_entry_copied_into_an_archive_folder_is_refused(submitted: Ledger):
    """A copy under keys-<its own digest>/ (where stale entries go) was listed and ranked
    twice."""
    (entry,) = submitted.entries()
    copy_path = submitted.archive_path(entry)
    copy_path.parent.mkdir(parents=True)
    shutil.copy(submitted.entry_path(entry["track"], entry["entry_id"]), copy_path)
    with pytest.raises(LedgerError, match="is an archive of stale entries, but entry .* is not "
                                          "stale"):
        submitted.entries()


def test_a_tied_entrys_name_does_not_change_another_entrys_rank(submitted: Ledger):
    """Among equal means the group leader was the first by name: a tied entry with a wide
    interval (one episode replayed) put a third entry in its group as "Aaa", not as "Zzz"."""
    (entry,) = submitted.entries()
    for wide_name in ("Aaa", "Zzz"):
        scores = [score_entry({**entry, "name": name}, "dev", ["USB", "DSub"])
                  for name in (wide_name, "Middle", "Third")]
        for s, (mean, low, high) in zip(scores, [(1.0, 0.44, 1.0), (1.0, 0.98, 1.0),
                                                (0.92, 0.87, 0.95)], strict=True):
            s.mean, s.mean_ci = mean, (low, high)
        assert [(s.entry["name"], s.rank) for s in rank(scores)] == [
            ("Middle", 1), (wide_name, 1), ("Third", 3)]


def test_equal_means_summed_in_another_order_tie_and_the_tighter_entry_leads():
    """13/80 over 4 tasks as 1, 2, 3, 7 and as 2, 4, 6, 1 (one task replayed): as floats the
    means were 0.1625 and 0.16250000000000003, so the wide entry led the group and a third
    entry far below took rank 1; equal means are equal, and the tighter lower bound leads."""
    from leaderboards.scoring import EntryScore, _rates, aggregate, exact_mean

    def scored(name, successes, replayed=None):
        distinct = []
        for task, k in enumerate(successes):
            rows = [(1, k), (0, 20 - k)] if task == replayed else [(1, 1)] * k + [(0, 1)] * (20 - k)
            distinct.append(np.array(rows, float))
        return EntryScore({"name": name, "builtin": False}, "hidden", [], distinct)

    tight, wide, low = scored("B tight", (1, 2, 3, 7)), scored("A wide", (2, 4, 6, 1), 0), \
        scored("C", (0, 0, 1, 0))
    aggregate([tight, wide, low])
    assert _rates(wide.distinct).mean() > _rates(tight.distinct).mean()  # as floats
    assert wide.mean == tight.mean == float(exact_mean(tight.distinct)) == 13 / 80
    assert wide.mean_ci[0] <= low.mean_ci[1] < tight.mean_ci[0]
    assert [(s.entry["name"], s.rank) for s in rank([wide, low, tight])] == [
        ("B tight", 1), ("A wide", 1), ("C", 3)]
    # The same evidence in another task order: the same interval to the bit.
    shuffled = scored("D", (1, 7, 3, 2))  # summed in order, its lower bound was 1 ulp lower
    aggregate([shuffled])
    assert shuffled.mean_ci == tight.mean_ci and shuffled.mean == tight.mean


def test_entry_pages_say_when_and_on_which_pybullet_model_a_block_ran():
    """"measured at verification" was shown for blocks rerun days later, and a block of an
    earlier PyBullet model (whose figures differ) was not marked; replays are marked."""
    from leaderboards.scoring import Sim2SimTask
    from leaderboards.site import _noiseless_task, _sim2sim_run

    hidden = {"evaluations": {"hidden": {"platform": None}}}
    block = {"evaluated_at": "2026-12-07T11:00:00Z", "revision": 4, "episodes": [{}],
             "platform": {"cpu": "Some <CPU>"}}
    assert _sim2sim_run(hidden | {"sim2sim": block}) == (
        "PyBullet: run 2026-12-07 on Some &lt;CPU&gt; with model revision 4.")
    old = _sim2sim_run(hidden | {"sim2sim": {"evaluated_at": "2026-12-02T01:00:00Z",
                                             "episodes": [{}]}})
    assert old.startswith("PyBullet: run 2026-12-02 with model revision 1 (an earlier model "
                          "than this code's revision 4")
    # Without PyBullet episodes there is nothing of the earlier model to mark.
    assert _sim2sim_run(hidden | {"sim2sim": {"evaluated_at": "2026-12-02T01:00:00Z",
                                              "episodes": []}}).endswith("model revision 1.")
    replayed = Sim2SimTask("USB", None, 50, 50, 50, (50, 1), 50, 1)
    assert _noiseless_task(replayed).startswith("50/50 <small") and "(1 distinct)" in \
        _noiseless_task(replayed)
    assert _noiseless_task(Sim2SimTask("USB", None, 50, 50, 50, (50, 50), 49, 50)) == "49/50"


def test_track_tasks_are_the_papers_on_the_current_task_version():
    assert [t.task_id for t in tracks.TRACKS["paper000"].tasks] == list(PAPER000_TASKS_V1)
    assert tracks.TASK_VERSION == 1
    for track in tracks.TRACKS.values():
        for task in track.tasks:
            assert task.task_id == tracks.NIST_BOARD_ID or \
                task.task_id.endswith(f"-v{tracks.TASK_VERSION}"), task.task_id
    assert tracks.TRACKS["paper000-pixels"].tasks[0].env_kwargs["obs_mode"] == "pixels"
    assert "straight down" in tracks.TRACKS["paper000"].description.lower()
    families = tracks.TRACKS["families-test"].tasks
    assert len(families) == 9
    assert all(t.env_kwargs["init_offset_mm"] == (0.0, 1.0) for t in families)  # paper 004 §5
    assert len(tracks.TRACKS["offsets"].tasks) == 8
    keys = [t.version_key() for t in tracks.TRACKS["offsets"].tasks]
    assert len(set(keys)) == 8
    assert isinstance(tracks.TRACKS["nist-board"].tasks[0], TrackTask)


def test_pybullet_support_of_the_track_tasks_names_the_reason(monkeypatch):
    from envs.bullet import UNSUPPORTED

    assert all(unsupported_reason(task) is None for task in tracks.TRACKS["paper000"].tasks)
    dimm = TrackTask("DIMM", "InsertBench/Connector-RAMCard-v1")
    assert unsupported_reason(dimm) is None  # failed the probe under model revision 3
    monkeypatch.setitem(UNSUPPORTED, ("DDR4 DIMM", 1), "slides in 2/4")
    assert "DDR4 DIMM clearance: slides in 2/4" in unsupported_reason(dimm)
    pixels, board = tracks.TRACKS["paper000-pixels"].tasks[0], tracks.TRACKS["nist-board"].tasks[0]
    assert "state observations only" in unsupported_reason(pixels)
    assert "single-connector tasks only" in unsupported_reason(board)
    # engines21: v2/v3 were called supported, and PyBullet then refused them mid-verify; the
    # noiseless kwarg, which PyBullet runs anyway, was called unmodelled
    assert "contact springs of task versions 2 and 3" in unsupported_reason(
        TrackTask("USB", "InsertBench/USB-v3"))
    assert unsupported_reason(TrackTask("USB", "InsertBench/USB-v1", {"noiseless": True})) is None


def test_the_shipped_ledger_is_valid_and_earlier_track_versions_are_stale(shipped):
    _, entries = shipped
    archived = [e for e in entries if entry_track_version(e) < tracks.TRACK_VERSION]
    assert archived, "the track-v1 entries (-v0 tasks) are kept, as stale"
    for track in tracks.TRACKS.values():
        tables = track_tables(track, entries)
        ranked = tables.verified + tables.self_reported
        assert all(entry_track_version(s.entry) == tracks.TRACK_VERSION for s in ranked)
        assert {e["entry_id"] for e in archived if e["track"] == track.name} <= \
            {s.entry_id for s in tables.stale}
    # Every track keeps ranked entries: a change that moves a task's version key (a connector's
    # clearance, a gain, a default) turns all of a track's entries stale, and the checks above
    # pass on empty tables. Such a change reruns the track's entries.
    for track in tracks.TRACKS.values():
        tables = track_tables(track, entries)
        if any(e["track"] == track.name for e in entries):
            assert tables.verified + tables.self_reported, f"{track.name}: every entry is stale"



def test_every_shipped_entry_keeps_its_policy_files(shipped):
    """Entries share a policy directory when their policies are the same bytes (a track-v1
    entry and its successor): removing one entry must not take the other's policy with it."""
    ledger, entries = shipped
    for entry in entries:
        assert stored_policy_paths(ledger, entry)  # raises if a file is missing or altered


def test_an_entry_whose_hidden_evaluation_is_not_the_rounds_is_refused(tmp_path):
    """An entry file whose hidden block was replaced, its dev episodes relabelled as hidden, was
    ranked "verified" on the site: nothing checked the seeds against the revealed salt, and a
    salt no round records only added a note."""
    import json

    from leaderboards.ledger import Ledger, LedgerError

    shipped = Ledger(Path("leaderboards/ledger"))
    entry = next(e for e in shipped.entries() if e["track"] == "paper000"
                 and "hidden" in e["evaluations"]
                 and shipped.entry_round(e).status == "revealed")
    root = tmp_path / "ledger"
    shutil.copytree(shipped.root / "salts", root / "salts")
    path = shipped.entry_path(entry["track"], entry["entry_id"], 2)
    target = root / path.relative_to(shipped.root)
    target.parent.mkdir(parents=True)
    ledger = Ledger(root)

    def write(hidden: dict) -> None:  # without the PyBullet block, whose seeds are checked
        target.write_text(json.dumps({**{k: v for k, v in entry.items() if k != "sim2sim"},
                                      "evaluations": {**entry["evaluations"], "hidden": hidden}}))

    target.write_text(json.dumps(entry))
    assert len(ledger.entries()) == 1  # as verified
    dev = entry["evaluations"]["dev"]
    forged = {**entry["evaluations"]["hidden"], "episodes": [
        succeeded(e) for e in dev["episodes"]]}
    write(forged)
    with pytest.raises(LedgerError, match="hidden .* episodes are not on the seeds of salt round"):
        ledger.entries()
    write({**entry["evaluations"]["hidden"], "salt_sha256": "ab" * 32})
    with pytest.raises(LedgerError, match="names a salt .* that no salt round of paper000"):
        ledger.entries()
    write({**entry["evaluations"]["hidden"], "salt_sha256": None})
    with pytest.raises(LedgerError, match="its hidden evaluation records no salt"):
        ledger.entries()
    # Dated after its round closed: written by hand (under a lost round, never recomputable).
    closed = shipped.entry_round(entry).closed_at
    write({**entry["evaluations"]["hidden"], "evaluated_at": "2026-12-31T00:00:00Z"})
    with pytest.raises(LedgerError, match=f"dated 2026-12-31T00:00:00Z, outside salt round "
                                          f"2 \\(.* to {closed}\\)"):
        ledger.entries()


def test_a_self_reported_evaluation_off_the_public_seeds_is_refused(tmp_path):
    """Dev seeds are public and every entry's: a self-reported block whose failures were
    rerolled on seeds of the submitter's choosing was ranked beside the others."""
    import json

    from leaderboards.ledger import Ledger, LedgerError

    shipped = Ledger(Path("leaderboards/ledger"))
    entry = next(e for e in shipped.entries() if e["track"] == "paper000")
    path = shipped.entry_path(entry["track"], entry["entry_id"], 2)
    root = tmp_path / "ledger"
    target = root / path.relative_to(shipped.root)
    target.parent.mkdir(parents=True)
    dev = entry["evaluations"]["dev"]
    episodes = [dict(e) for e in dev["episodes"]]
    episodes[3]["seed"] = 123
    target.write_text(json.dumps({
        **{k: v for k, v in entry.items() if k != "sim2sim"},
        "evaluations": {"dev": {**dev, "episodes": episodes}}}))
    with pytest.raises(LedgerError, match="dev episodes of USB are not on the public dev seeds "
                                          "7000000, 7000001, ... in order"):
        Ledger(root).entries()


def test_a_render_into_an_earlier_site_shows_this_rounds_episodes_and_no_deleted_entry(
        submitted: Ledger):
    """Rendering into an existing site kept each GIF by its old name: after a verification in
    a new salt round the caption named the new best episode over the old round's GIF. And a
    deleted entry's page stayed published, unlinked."""
    (entry,) = submitted.entries()
    entry_id = entry["entry_id"]

    def gifs() -> set[str]:
        return {p.name for p in Path("site/media").glob("*.gif")}

    Path("secret/two").write_text("fedcba98765432100123456789abcdef\n")
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    assert _cli("verify", entry_id[:8], "--salt-file", "secret/salt", "--no-sim2sim"
                ).exit_code == 0
    assert _cli("render", "--out", "site").exit_code == 0
    first = gifs()
    assert len(first) == 2  # best and worst hidden episodes
    mine = [Path("site/plots/my_figure.png"), Path("site/entries/notes.html"),
            Path("site/media/talk.gif"),  # the user's own files: a render leaves them
            Path(f"site/entries/review-{entry_id}.html"),  # these two were deleted
            Path(f"site/entries/{entry_id}-notes.html")]
    for file in mine:
        file.write_text("mine")
    assert _cli("reveal", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/two").exit_code == 0
    assert _cli("verify", entry_id[:8], "--salt-file", "secret/two", "--no-sim2sim"
                ).exit_code == 0
    assert _cli("render", "--out", "site").exit_code == 0
    second = gifs() - {"talk.gif"}
    assert len(second) == 2 and not first & second  # other seeds: other GIFs, the old gone
    page = Path(f"site/entries/{TINY}-{entry_id}.html").read_text()
    assert all(f"../media/{name}" in page for name in second)
    # The same render with --no-gifs keeps the GIFs for the next full one.
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0
    assert gifs() == second | {"talk.gif"}
    Path(submitted.entry_path(entry["track"], entry_id)).unlink()
    assert _cli("render", "--out", "site", "--no-gifs").exit_code == 0
    assert not Path(f"site/entries/{TINY}-{entry_id}.html").exists()
    assert not list(Path("site/plots").glob("tiny*.png"))
    assert all(file.read_text() == "mine" for file in mine)


def test_a_replay_that_ends_otherwise_than_its_record_shows_no_gif(submitted: Ledger):
    """leader27: the GIF's replay was never compared with the record its caption describes: on
    another host (or of an edited entry) the "best" GIF could show another outcome."""
    (entry,) = submitted.entries()
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    edited = json.loads(path.read_text())
    episodes = edited["evaluations"]["dev"]["episodes"]
    best = min((e for e in episodes if e["success"]), key=lambda e: e["steps_to_success"])
    steps = best["steps_to_success"]
    best.update(steps_to_success=steps - 1,
                time_to_success_s=best["time_to_success_s"] * (steps - 1) / steps)
    path.write_text(json.dumps(edited))
    assert _cli("render", "--out", "site").exit_code == 0
    page = " ".join(Path(f"site/entries/{TINY}-{entry['entry_id']}.html").read_text().split())
    assert (f"best episode: no replay (replayed here it ends in success after {steps} steps, "
            f"evaluated in success after {steps - 1} steps)") in page
    assert len(list(Path("site").glob("media/*.gif"))) == 1  # the worst episode's


def test_a_gif_cut_short_by_a_full_disk_is_rendered_again(submitted: Ledger, monkeypatch):
    """GIFs were written in place, and a render keeps the GIFs it finds: one cut short by a full
    disk stayed on the site, truncated, through every later render."""
    import imageio.v2 as imageio

    (entry,) = submitted.entries()
    assert _cli("open-round", "--track", TINY, "--salt-file", "secret/salt").exit_code == 0
    assert _cli("verify", entry["entry_id"][:8], "--salt-file", "secret/salt", "--no-sim2sim"
                ).exit_code == 0
    mimsave = imageio.mimsave

    def disk_full(path, *args, **kwargs):
        Path(path).write_bytes(b"GIF89a")  # the first bytes made it
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio, "mimsave", disk_full)
    assert _cli("render", "--out", "site").exit_code == 0  # the page says "no replay"
    page = Path(f"site/entries/{TINY}-{entry['entry_id']}.html")
    assert "No space left on device" in page.read_text()
    assert not list(Path("site").glob("media/*"))
    monkeypatch.setattr(imageio, "mimsave", mimsave)
    assert _cli("render", "--out", "site").exit_code == 0
    gifs = list(Path("site/media").glob("*"))
    assert len(gifs) == 2 and all(len(imageio.mimread(g)) > 1 for g in gifs)


def test_a_damaged_ledger_is_refused_before_the_site_is_written(submitted: Ledger):
    (entry,) = submitted.entries()
    Path(submitted.entry_path(entry["track"], entry["entry_id"])).write_text("{")
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 1 and not Path("site").exists(), result.output


def test_entries_of_a_track_this_version_lacks_are_refused_not_left_out(
        submitted: Ledger, monkeypatch):
    """They vanished from the rendered site without a word (a mistyped or retired track)."""
    monkeypatch.delitem(tracks.TRACKS, TINY)
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 1 and "holds entries of tracks ['tiny'], which this version " \
        "of InsertBench does not have" in " ".join(result.stderr.split()), result.output
    assert not Path("site").exists()


def test_the_plots_names_stay_inside_the_figure(submitted: Ledger, monkeypatch):
    """A lone entry sits on the log axis's centre, where its name ran rightwards (and any long
    name ran off the figure)."""
    import matplotlib.figure

    from leaderboards.scoring import track_tables
    from leaderboards.site import _plot
    from leaderboards.tracks import get_track

    (entry,) = submitted.entries()
    entry["name"] = "A long name " * 16  # 192 characters
    outside = []

    def check(fig, *args, **kwargs):
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        for text in fig.axes[0].texts:
            extent = text.get_window_extent(renderer)
            if extent.x0 < box.x0 or extent.x1 > box.x1:
                outside.append(text.get_text())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", check)
    assert _plot(track_tables(get_track(TINY), [entry]), Path("plot.png"))
    assert outside == []


def test_the_plots_names_do_not_overlap(tmp_path: Path, monkeypatch, shipped):
    """Entries that share a point (paper000: four at 100% after 0 steps, two at 0% after 10k)
    had their names written over each other."""
    import matplotlib.figure

    from leaderboards.scoring import track_tables
    from leaderboards.site import _plot
    from leaderboards.tracks import get_track

    boxes = []

    def keep_boxes(fig, *args, **kwargs):
        renderer = fig.canvas.get_renderer()
        boxes.extend(t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_text())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep_boxes)
    _, entries = shipped
    assert _plot(track_tables(get_track("paper000"), entries), tmp_path / "plot.png")
    assert len(boxes) >= 10
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    assert overlapping == []


def test_audit_recomputes_what_anyone_can_and_catches_an_edited_entry(submitted: Ledger):
    """A self-reported block could not be rechecked by any command (its seeds are public), and
    an entry file edited after its round was revealed was ranked as it said until someone ran
    `verify` on that one entry."""
    import json

    (entry,) = submitted.entries()
    short = entry["entry_id"][:12]
    for args in (("open-round", "--track", TINY, "--salt-file", "secret/salt"),
                 ("verify", short, "--salt-file", "secret/salt", "--no-sim2sim"),
                 ("reveal", "--track", TINY, "--salt-file", "secret/salt")):
        assert _cli(*args).exit_code == 0
    result = _cli("verify", short, "--dev")
    assert result.exit_code == 0, result.output
    assert "recomputed entry" in result.stdout and "on the public dev seeds" in result.stdout
    assert "every one of the 4 recomputed episodes is identical" in result.stdout
    result = _cli("audit")
    assert result.exit_code == 0, result.output
    assert f"ok   {short} " in result.stdout
    assert "dev 4 episodes, bitwise the ledger's; hidden 4 episodes, bitwise" in result.stdout
    assert "audited 1 entries of ledger: 0 failed" in result.stdout

    path = submitted.entry_path(entry["track"], entry["entry_id"])
    edited = json.loads(path.read_text())
    for block in ("dev", "hidden"):
        episodes = edited["evaluations"][block]["episodes"]
        episodes[0] = flipped(episodes[0])
    path.write_text(json.dumps(edited))
    result = _cli("audit")  # the hidden block no verification wrote: refused on reading
    assert result.exit_code == 1 and "not one that `leaderboard verify` recorded" in \
        result.stderr
    list_hidden_as_verified(submitted, edited)  # as if a verification had written it
    result = _cli("audit")
    assert result.exit_code == 1
    assert re.search(rf"FAIL {short} .*: 1 of 4 recomputed dev episodes of {short} have another "
                     r"outcome than the ledger's", result.stdout)
    # Evaluated here: the platform, which the hint blamed whatever the entry's, is not it.
    assert "audited 1 entries of ledger: 1 failed (each on the platform that evaluated it: " \
        "an edited entry, a stored policy file missing or altered, or code that changed " \
        "since)" in result.stdout
    result = _cli("verify", short, "--dev", "--salt-file", "secret/salt")
    assert result.exit_code == 1 and "give no --salt-file" in result.output


def test_a_damaged_salts_file_or_a_lost_policy_stops_the_render_before_any_page_is_written(
        submitted: Ledger):
    """The salts were read track by track as the index was built: a damaged file stopped the
    render after the earlier tracks' pages and plots had been rewritten (over a published
    site: new pages beside the old index)."""
    from leaderboards.tracks import TRACKS

    last = [name for name in TRACKS if name != TINY][-1]
    Path("ledger/salts").mkdir(exist_ok=True)
    Path(f"ledger/salts/{last}.json").write_text("not json")
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 1 and "is not valid JSON" in str(result.exception)
    assert not Path("site").exists()
    # Nor was an entry whose stored policy is gone: its page said anyone could recompute it.
    Path(f"ledger/salts/{last}.json").unlink()
    (entry,) = submitted.entries()
    shutil.rmtree(submitted.policy_dir(entry["entry_id"]))
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 1 and "is missing or altered" in result.output, result.output
    assert not Path("site").exists()


def test_a_task_on_which_entries_already_act_alike_tells_no_policy_apart():
    """On families-test's EU plug (an aligned start) straight down and both searches replay one
    another: a search of one's own that descends first, other elsewhere, was refused as taken
    from them (diff26). Copied where entries differ, it still is."""
    import copy

    from leaderboards.ledger import _check_acts_new, is_stale
    from leaderboards.tracks import get_track

    ledger = Ledger(Path(__file__).resolve().parents[2] / "leaderboards" / "ledger")
    track = get_track("families-test")
    spiral = next(e for e in ledger.entries() if e["track"] == "families-test"
                  and e["name"].startswith("Spiral") and not is_stale(e))
    mine = copy.deepcopy(spiral["evaluations"]["dev"]["episodes"])
    for record in mine:
        if record["task"] != "EUACPlug":  # another search pattern on the other tasks
            record["path_length_m"] *= 1.3
    _check_acts_new(ledger, track, mine, per_task=True)
    for record in mine:
        if record["task"] == "MetalPegRect":  # the spiral's own there: refused
            record["path_length_m"] /= 1.3
    with pytest.raises(LedgerError, match="this policy's MetalPegRect policy acts as entry"):
        _check_acts_new(ledger, track, mine, per_task=True)


def test_an_entrys_published_policy_enters_again_under_its_name_only(
        submitted: Ledger, monkeypatch: pytest.MonkeyPatch, tiny_track):
    """leader27: a stale entry's published files, submitted by another under their own name,
    took the entry over (its owner's resubmission was then "already entry"); so could another
    track's entry's."""
    (entry,) = submitted.entries()
    monkeypatch.setitem(tracks.TRACKS, "tiny2", dataclasses.replace(tiny_track, name="tiny2"))
    Path("thief").mkdir()
    shutil.copytree(stored_policy_paths(submitted, entry)["USB"], "thief/policy")
    write_toml(Path("thief"), name="Totally mine", track="tiny2")
    result = _cli("submit", "thief")
    assert result.exit_code == 1, result.output
    assert " ".join(result.stderr.split()) == (
        f"insertbench: error: this policy is entry {entry['entry_id'][:12]} of {TINY} "
        "('P-controller'); it enters again, on this track or another, under that name only")
    make_stale(submitted, entry)
    write_toml(Path("thief"), name="Totally mine")
    assert "under that name only" in _cli("submit", "thief").stderr
    Path("thief/policy/NOTES.txt").write_text("mine\n")  # another entry id, the same actions
    assert "under that name only" in _cli("submit", "thief").stderr  # (diff35)
    write_toml(Path("thief"), name="Totally mine", track="tiny2")
    assert "under that name only" in _cli("submit", "thief").stderr
    again = _cli("submit", "sub")  # the owner's, under its name
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(("edit", "message"), [
    ({"success": True}, "success True with steps_to_success None and time_to_success_s None"),
    ({"success": True, "steps_to_success": 999, "time_to_success_s": 99.9},
     "success after 999 steps (99.9 s) of an episode of"),
    ({"success": True, "steps_to_success": 3, "time_to_success_s": 0.3,
      "failure": "physics error: x"}, "a success with a failure or safety trip recorded"),
])
def test_an_episode_record_edited_against_itself_is_refused(submitted: Ledger, edit, message):
    """leader27: dev failures edited to `success: true` (their steps to success left null)
    ranked as successes, and the site's caption then stopped `render` with a TypeError."""
    (entry,) = submitted.entries()
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    edited = json.loads(path.read_text())
    failed = next(e for e in edited["evaluations"]["dev"]["episodes"] if not e["success"])
    failed.update(edit)
    path.write_text(json.dumps(edited))
    result = _cli("render", "--out", "site", "--no-gifs")
    assert result.exit_code == 1 and message in " ".join(result.stderr.split()), result.output


def test_a_policy_enters_a_track_of_other_labels_under_its_entrys_name_only(
        submitted: Ledger, monkeypatch: pytest.MonkeyPatch, tiny_track):
    """leader28: the rule compared contents hashed with their task labels, which no two real
    tracks share: with a file added (another entry id), an entry's policy entered the other
    track under another name, and its owner was then refused there."""
    (entry,) = submitted.entries()
    relabelled = dataclasses.replace(tiny_track, name="tiny2", tasks=(
        TrackTask("usb", "InsertBench/USB-v0", STATE),
        TrackTask("dsub", "InsertBench/DSub-v0", STATE)))
    monkeypatch.setitem(tracks.TRACKS, "tiny2", relabelled)
    Path("thief").mkdir()
    shutil.copytree(stored_policy_paths(submitted, entry)["USB"], "thief/policy")
    Path("thief/policy/NOTES.txt").write_text("mine\n")
    write_toml(Path("thief"), name="Totally mine", track="tiny2")
    assert "under that name only" in _cli("submit", "thief").stderr
    write_toml(Path("sub"), track="tiny2")
    assert _cli("submit", "sub").exit_code == 0  # the owner's, under its name


def test_an_earlier_track_versions_entry_keeps_its_policy_and_name(submitted: Ledger):
    """leader28: an entry of an earlier track version is stale, yet was left out of both
    rules: its files under another name took it over, and another policy its name."""
    (entry,) = submitted.entries()
    path = submitted.entry_path(TINY, entry["entry_id"])
    old = json.loads(path.read_text())
    old["evaluations"]["dev"]["track_version"] = 1
    archived = submitted.entry_path(TINY, entry["entry_id"], 1)
    archived.parent.mkdir(parents=True)
    archived.write_text(json.dumps(old))
    path.unlink()
    Path("thief").mkdir()
    shutil.copytree(stored_policy_paths(submitted, entry)["USB"], "thief/policy")
    write_toml(Path("thief"), name="Totally mine")
    assert "under that name only" in _cli("submit", "thief").stderr
    sac_submission(Path("other"))  # another policy under the old entry's name
    assert "a name kept for its policy to enter again" in " ".join(
        _cli("submit", "other").stderr.split())
    assert _cli("submit", "sub").exit_code == 0  # the owner's, under its name


def test_a_stale_entrys_name_stays_its_owners(submitted: Ledger):
    """leader25: another policy entered under a stale entry's name, and the owner's
    resubmission was then refused as "already called" its own name. Copying the entry's
    authors does not open it (diff31: anyone can write them)."""
    (entry,) = submitted.entries()
    make_stale(submitted, entry)
    sac_submission(Path("other"))
    write_toml(Path("other"), name=" p-CONTROLLER ")  # the stale entry's, as name_key reads it
    assert entry["authors"] == ["A. Tester"]  # write_toml's, copied
    result = _cli("submit", "other")
    assert result.exit_code == 1, result.output
    assert " ".join(result.stderr.split()) == (
        f"insertbench: error: stale entry {entry['entry_id'][:12]} of {TINY} is called "
        "'P-controller', a name kept for its policy to enter again; give the submission "
        "another name (a policy retrained on the new tasks too)")
    again = _cli("submit", "sub")  # the owner's, under its name
    assert again.exit_code == 0, again.output


def test_a_stale_baselines_name_is_the_matrixs_to_enter_again(submitted: Ledger):
    """A matrix's baselines rerun on the new tasks are other policies under the stale ones'
    names (`submit --from-matrix`, builtin): they enter; a submission under them does not."""
    from leaderboards.ledger import submit
    from leaderboards.submission import load_submission

    (entry,) = submitted.entries()
    path = submitted.entry_path(entry["track"], entry["entry_id"])
    baseline = make_stale(submitted, entry) | {"builtin": True, "source": "matrix:tiny-seed"}
    path.write_text(json.dumps(baseline))
    sac_submission(Path("rerun"))
    write_toml(Path("rerun"), name="P-controller")
    with pytest.raises(LedgerError, match="a name kept for its policy to enter again"):
        submit(submitted, load_submission("rerun"))
    submit(submitted, load_submission("rerun"), source="matrix:tiny-seed", builtin=True)
    assert len(submitted.entries(archived=False)) == 2


def test_an_entry_edited_to_another_name_agent_or_baseline_is_refused_on_reading(
        submitted: Ledger):
    """leader25: an entry file edited by hand took a ranked entry's name, dropped "(given the
    goal)" by naming another agent, or made itself the P(improvement) baseline, and every
    check after `submit` passed."""
    (entry,) = submitted.entries()
    sac_submission(Path("other"))
    write_toml(Path("other"), name="Another")
    assert _cli("submit", "other").exit_code == 0
    other = next(e for e in submitted.entries() if e["entry_id"] != entry["entry_id"])
    path = submitted.entry_path(other["track"], other["entry_id"])
    original = path.read_text()
    for edit, message in (
        ({"name": "p-controller"}, "are both called"),  # ids in the order the files are read
        ({"policy": other["policy"] | {"agent": "p_controller"}},
         f"entry {other['entry_id'][:12]} names agent 'p_controller', and its stored USB "
         "policy is a checkpoint of 'sac'"),
        ({"builtin": True}, f"entry {other['entry_id'][:12]}: builtin True with source "
                            "'submission': only entries from a matrix"),
    ):
        path.write_text(json.dumps(json.loads(original) | edit))
        with pytest.raises(LedgerError) as err:
            submitted.entries()
        assert message in str(err.value)
        if "name" in edit:  # named by the second file read (they are read sorted)
            ids = sorted((entry["entry_id"][:12], other["entry_id"][:12]))
            assert re.fullmatch(rf"entries {ids[0]} and {ids[1]} of {TINY} are both called "
                                r"'[Pp]-controller' \(as names are compared\); rename one",
                                str(err.value))
        result = _cli("render", "--out", "site")
        assert result.exit_code == 1 and message in " ".join(result.stderr.split())
    path.write_text(original)
    assert len(submitted.entries()) == 2


def test_folder_contents_see_a_file_rewritten_with_its_size_and_time(tmp_path):
    """diff36: the cache was keyed by names, sizes and modification times, which `cp -p`,
    `tar x` or `os.utime` set back: a policy rewritten so kept its old content hash."""
    import os

    from leaderboards.ledger import folder_contents, policy_content

    folder = tmp_path / "policy"
    folder.mkdir()
    onnx = folder / "policy.onnx"
    onnx.write_bytes(b"A" * 100)  # not a graph: its bytes stand for it
    before = onnx.stat()
    first = folder_contents("onnx", {"x": folder})
    onnx.write_bytes(b"B" * 100)
    os.utime(onnx, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert folder_contents("onnx", {"x": folder}) == {policy_content("onnx", {"": folder})} \
        != first
