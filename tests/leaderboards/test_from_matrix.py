"""`submit --from-matrix`: finished matrix cells covering a track become built-in entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.executors import InlineExecutor
from benchmark.matrix import run_matrix
from benchmark.preset import load_preset
from benchmark.store import Store
from leaderboards.ledger import Ledger
from tests.leaderboards.builders import make_stale

PRESET = """
name = "tiny-seed"
description = "leaderboard seeding test"
tasks = ["InsertBench/USB-v0", "InsertBench/DSub-v0"]
seeds = [0]
eval_episodes = 1
eval_seeds = { start = 1000000 }

[env_kwargs]
reward = "sparse"
goal_noise_mm = 1.0
obs_mode = "state"

[axes]
init_offset_mm = [[0, 0], [0, 5]]

[[agents]]
name = "p_controller"
label = "P-controller"
budget_steps = 0
"""


def test_matrix_cells_become_one_builtin_entry_per_method_covering_the_track(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny-seed.toml").write_text(PRESET)
    preset = load_preset("tiny-seed.toml")
    with Store("runs/tiny-seed.sqlite") as store:
        run_matrix(preset.cells, store, InlineExecutor(), artifacts_root=Path("runs/a"),
                   show_progress=False)
    args = ["leaderboard", "submit", "--from-matrix", "tiny-seed.toml", "--store",
            "runs/tiny-seed.sqlite", "--track", "tiny", "--ledger", "ledger"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # Only the (0, 0) mm offset cells have the track's version keys (its default offset).
    (entry,) = Ledger("ledger").entries()
    assert entry["builtin"] and entry["source"] == "matrix:tiny-seed"
    assert entry["name"] == "P-controller (seed 0)" and entry["policy"]["agent"] == "p_controller"
    assert sorted(entry["policy"]["per_task"]) == ["DSub", "USB"]
    assert len(entry["evaluations"]["dev"]["episodes"]) == 4  # the track's protocol, not 1
    stored = Ledger("ledger").policy_dir(entry["entry_id"]) / "USB" / "agent.json"
    assert json.loads(stored.read_text())["contents"] == "policy"  # exported policy-only
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already in the ledger" in again.stdout
    assert len(Ledger("ledger").entries()) == 1
    # Stale (the track's keys changed since: here, as if), it is entered again, as `submit`
    # would; it said "already in the ledger" and the baseline left the board (leader21).
    make_stale(Ledger("ledger"), entry)
    stale = CliRunner().invoke(app, args)
    assert stale.exit_code == 0 and "already in the ledger" not in stale.stdout, stale.output
    assert len(Ledger("ledger").entries()) == 2 and len(Ledger("ledger").entries(archived=False)) \
        == 1
    # A track the preset's cells do not run (paper000 is on -v1): "0 entries written", exit 0.
    other = CliRunner().invoke(app, [*args[:-4], "--track", "paper000", "--ledger", "ledger"])
    assert other.exit_code == 1, other.output
    assert "no finished cell of tiny-seed in runs/tiny-seed.sqlite runs a task of paper000" \
        in other.stderr


def test_a_method_refused_by_the_ledger_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    """The first method already on the track in another form (a name taken, the same policy
    exported otherwise) ended the batch: the methods after it were never entered."""
    monkeypatch.chdir(tmp_path)
    Path("two.toml").write_text(PRESET.replace('"tiny-seed"', '"two"') + """
[[agents]]
name = "straight_down"
label = "Straight down"
budget_steps = 0
""")
    with Store("runs/two.sqlite") as store:
        run_matrix(load_preset("two.toml").cells, store, InlineExecutor(),
                   artifacts_root=Path("runs/a"), show_progress=False)
    ledger = Ledger("ledger")
    monkeypatch.setattr("leaderboards.from_matrix.submit", _refusing_the_p_controller())
    result = CliRunner().invoke(app, ["leaderboard", "submit", "--from-matrix", "two.toml",
                                      "--store", "runs/two.sqlite", "--track", "tiny",
                                      "--ledger", "ledger"])
    assert result.exit_code == 0, result.output
    assert "P-controller seed 0 not entered: taken" in result.stdout
    assert [e["name"] for e in ledger.entries()] == ["Straight down (seed 0)"]


def _refusing_the_p_controller():
    from leaderboards.ledger import LedgerError, submit

    def refusing(book, submission, **kwargs):
        if submission.name.startswith("P-controller"):
            raise LedgerError("taken")
        return submit(book, submission, **kwargs)

    return refusing


def test_from_matrix_finds_the_checkpoints_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    """The store recorded `runs/a/<hash>` relative to where the matrix ran, so a submission with
    `--store` from anywhere else failed: "cell ... has no runs/a/.../checkpoint/agent"."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    Path("tiny-seed.toml").write_text(PRESET)
    with Store("runs/tiny-seed.sqlite") as store:
        run_matrix(load_preset("tiny-seed.toml").cells, store, InlineExecutor(),
                   artifacts_root=Path("runs/a"), show_progress=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, [
        "leaderboard", "submit", "--from-matrix", "work/tiny-seed.toml", "--store",
        "work/runs/tiny-seed.sqlite", "--track", "tiny", "--ledger", "ledger"])
    assert result.exit_code == 0, result.output
    assert len(Ledger("ledger").entries()) == 1


def test_from_matrix_without_a_store_is_one_line(tmp_path, monkeypatch, tiny_track) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny-seed.toml").write_text(PRESET)
    result = CliRunner().invoke(app, ["leaderboard", "submit", "--from-matrix", "tiny-seed.toml",
                                      "--ledger", "ledger"])
    assert result.exit_code == 1 and result.stderr.startswith("insertbench: error: no store at")
    assert not Path("ledger").exists()


ZERO_SHOT_PRESET = """
name = "tiny-zero-shot"
description = "one policy trained on a connector family, for every task of a track"
tasks = ["InsertBench/ConnectorFamily-v0"]
seeds = [0]
eval_episodes = 1
eval_seeds = { start = 1000000 }

[env_kwargs]
split = "train"
reward = "sparse"
goal_noise_mm = 1.0
obs_mode = "state"

[[agents]]
name = "p_controller"
label = "P-controller"
budget_steps = 0
"""


def test_a_cell_on_a_zero_shot_tracks_training_task_is_one_policy_for_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track
) -> None:
    from dataclasses import replace

    from leaderboards import tracks
    from leaderboards.tracks import TrackTask
    from tests.leaderboards.builders import STATE, TINY

    family = TrackTask("train split", "InsertBench/ConnectorFamily-v0", {"split": "train",
                                                                         **STATE})
    monkeypatch.setitem(tracks.TRACKS, TINY, replace(tiny_track, training_task=family))
    monkeypatch.chdir(tmp_path)
    Path("tiny-zero-shot.toml").write_text(ZERO_SHOT_PRESET)
    with Store("runs/z.sqlite") as store:
        run_matrix(load_preset("tiny-zero-shot.toml").cells, store, InlineExecutor(),
                   artifacts_root=Path("runs/a"), show_progress=False)
    args = ["leaderboard", "submit", "--from-matrix", "tiny-zero-shot.toml", "--store",
            "runs/z.sqlite", "--track", TINY, "--ledger", "ledger"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (entry,) = Ledger("ledger").entries()
    assert entry["policy"]["per_task"] == {"USB": "policy", "DSub": "policy"}
    assert [f["path"] for f in entry["policy"]["files"]] == ["policy/agent.json",
                                                             "policy/weights.safetensors"]
    assert {e["task"] for e in entry["evaluations"]["dev"]["episodes"]} == {"USB", "DSub"}
    from leaderboards.site import render_site

    index = render_site(Ledger("ledger"), "site", gifs=False).read_text()
    assert "Zero-shot: an entry is one policy, trained on <code>InsertBench/ConnectorFamily-v0" \
        in index
    # Without the training task, the family cell belongs to no track task: nothing is written.
    monkeypatch.setitem(tracks.TRACKS, TINY, tiny_track)
    other = CliRunner().invoke(app, [*args[:-1], "other-ledger"])
    assert other.exit_code == 1 and "nothing to enter" in other.stderr, other.output
    assert not Path("other-ledger").exists()


def test_a_damaged_store_is_named_in_one_line(tmp_path: Path, monkeypatch) -> None:
    """`submit --from-matrix` opened the store itself: damaged pages ended in
    "DatabaseError: database disk image is malformed", naming no file."""
    monkeypatch.chdir(tmp_path)
    Store("st.sqlite").close()
    data = bytearray(Path("st.sqlite").read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)
    Path("st.sqlite").write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["leaderboard", "submit", "--from-matrix",
                                      "paper000-leaderboard", "--store", "st.sqlite",
                                      "--ledger", "ledger"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["insertbench: error: st.sqlite is damaged (database disk image is "
                     "malformed); run the matrix into a new store"], result.stderr


@pytest.mark.parametrize("content", [b"", b"x"])
def test_a_file_that_is_no_store_is_left_as_it_was(tmp_path: Path, monkeypatch, content) -> None:
    """An empty or 1-byte file given as `--store` was opened for writing and made an empty
    store of 45 kB ("no finished cell ..."): a command that reads a store (leader18)."""
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_bytes(content)
    result = CliRunner().invoke(app, ["leaderboard", "submit", "--from-matrix",
                                      "paper000-leaderboard", "--store", "notes.txt",
                                      "--ledger", "ledger"])
    assert result.exit_code == 1 and "notes.txt" in result.stderr, result.output
    assert Path("notes.txt").read_bytes() == content and not Path("ledger").exists()


def test_the_maintainers_baselines_of_other_agents_may_act_alike() -> None:
    """On paper000 every plug goes in before a search starts: straight down, entered through
    `--from-matrix` after the spiral search, was refused as "the same policy in another form",
    and the track's text reads scores against it (newuser22). Another seed of the same
    baseline (or anyone's submission) acting alike is still refused."""
    from leaderboards.doc_table import LEDGER
    from leaderboards.ledger import LedgerError, _check_acts_new, _current_entries
    from leaderboards.tracks import get_track

    ledger, track = Ledger(LEDGER), get_track("paper000")
    (straight,) = [e for e in _current_entries(ledger, track)
                   if e["policy"]["agent"] == "straight_down"]
    episodes = straight["evaluations"]["dev"]["episodes"]
    _check_acts_new(ledger, track, episodes, builtin_agent="awac")  # no entry of its own
    for agent in (None, "straight_down"):
        with pytest.raises(LedgerError, match="the same policy in another form"):
            _check_acts_new(ledger, track, episodes, builtin_agent=agent)


def test_a_cell_whose_checkpoint_is_damaged_is_named_and_leaves_nothing(tmp_path,
                                                                        monkeypatch) -> None:
    """A cut-off weights file ended `submit --from-matrix` in a bare SafetensorError naming no
    cell (the other methods never entered) and left its temporary folder (agents23)."""
    import tempfile

    import gymnasium as gym

    from agents import make_agent
    from leaderboards.from_matrix import _policy_submission
    from leaderboards.ledger import LedgerError
    from leaderboards.tracks import get_track

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    agent_dir = tmp_path / "cell" / "checkpoint" / "agent"
    env = gym.make("InsertBench/USB-v1")
    make_agent("sac", env.observation_space, env.action_space, {"hidden": (8,)}).save(agent_dir)
    env.close()
    weights = agent_dir / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    row = {"artifacts_path": str(tmp_path / "cell"), "config_hash": "ab" * 32}
    with pytest.raises(LedgerError, match=r"p: cell abababababab \(USB, SAC\): .*weights"
                                          r".safetensors is not readable"):
        _policy_submission(get_track("paper000"), "SAC", "sac", 0, {"USB": row}, "p")
    assert not list((tmp_path / "tmp").glob("insertbench-matrix-entry-*"))
