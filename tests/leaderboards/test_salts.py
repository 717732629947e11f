"""Salt rounds: opening, losing and revealing a track's salt, schema-1 files, verification under
the active round, rechecks with the entry's own round, and the site's labels."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from leaderboards.ledger import Ledger, LedgerError, verify
from leaderboards.salts import MIGRATED_NOTE, SALTS_SCHEMA, SaltError, SaltRounds, parse
from leaderboards.site import render_site
from leaderboards.tracks import hidden_seeds
from tests.leaderboards.builders import (
    TINY,
    agent_submission,
    list_hidden_as_verified,
    onnx_submission,
    write_toml,
)

runner = CliRunner()
SALT_1 = b"0123456789abcdef1032547698badcfe"
SALT_2 = b"fedcba98765432100123456789abcdef"
REASON = "maintainer machine reset; the salt file was not recoverable"


def _cli(*args: str):
    return runner.invoke(app, ["leaderboard", *args, "--ledger", "ledger"])


def _ok(*args: str):
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    return result


def _refused(expected: str, *args: str) -> None:
    """A user's mistake: exit code 1 and one line on stderr that says ``expected``."""
    result = _cli(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("insertbench: error: ") and expected in lines[0], lines


@pytest.fixture
def two_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_track) -> Ledger:
    """A ledger with two self-reported tiny entries (P-controller, an ONNX policy) and two salt
    files outside it."""
    monkeypatch.chdir(tmp_path)
    agent_submission(tmp_path / "pc")
    _ok("submit", "pc")
    weight = np.zeros((6, 3))
    weight[2, 2] = -50.0
    onnx_submission(tmp_path / "down", weight)
    write_toml(tmp_path / "down", kind="onnx", name="ONNX down")
    _ok("submit", "down")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "one").write_bytes(SALT_1)
    (tmp_path / "secret" / "two").write_bytes(SALT_2)
    return Ledger("ledger")


def _ids(ledger: Ledger) -> dict[str, str]:
    return {e["name"]: e["entry_id"] for e in ledger.entries()}


def _hidden(ledger: Ledger, name: str) -> dict:
    return next(e for e in ledger.entries() if e["name"] == name)["evaluations"]["hidden"]


def test_two_open_rounds_at_once_open_one(two_entries: Ledger):
    """Both said "opened round 1" and the salts file kept one commitment: the other maintainer
    kept a salt that verify then refused as "not the one committed"."""
    import threading

    barrier, first = threading.Barrier(2), threading.local()
    read = SaltRounds.read

    def slow_read(self):  # both read the empty file before either writes, if nothing waits
        rounds = read(self)
        if not getattr(first, "done", False):
            first.done = True
            try:
                barrier.wait(timeout=1)
            except threading.BrokenBarrierError:  # the other waits for the ledger's lock
                pass
        return rounds

    outcomes: list[str] = []

    def open_with(salt: bytes) -> None:
        try:
            two_entries.open_round(TINY, salt)
            outcomes.append("opened")
        except LedgerError as err:
            outcomes.append(str(err))

    SaltRounds.read = slow_read
    try:
        threads = [threading.Thread(target=open_with, args=(s,)) for s in (SALT_1, SALT_2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        SaltRounds.read = read
    assert outcomes.count("opened") == 1 and any("still active" in o for o in outcomes), outcomes
    assert len(two_entries.salt_rounds(TINY).read()) == 1


def test_rounds_open_lose_reveal_and_the_mistakes_they_refuse(two_entries: Ledger):
    pc = _ids(two_entries)["P-controller"]
    _refused("no active salt round", "verify", pc[:10], "--salt-file", "secret/one")
    _refused("no active salt round to declare lost", "lose-round", "--track", TINY,
             "--reason", REASON)
    _refused("unknown track", "open-round", "--track", "nope", "--salt-file", "secret/one")
    Path("secret/weak").write_bytes(b"a" * 32)  # opened a round: its seeds were guessable
    _refused("holds 1 distinct byte values (fewer than 6)", "open-round", "--track", TINY,
             "--salt-file", "secret/weak")
    Path("secret/weak").write_bytes(b"abcde" * 7)
    _refused("holds 5 distinct byte values", "open-round", "--track", TINY, "--salt-file",
             "secret/weak")
    Path("secret/weak").write_bytes(b"passwordpassword")
    _refused("looks guessable (it repeats a block of 8 bytes)", "open-round", "--track", TINY,
             "--salt-file", "secret/weak")
    # leader17: notes and reasons reached the site and the terminal unchecked
    _refused("the round's note (--note) holds a control character", "open-round", "--track",
             TINY, "--salt-file", "secret/one", "--note", "ok \u202eevil \x1b[31mred")
    _refused("the round's note (--note) has 100,000 characters; at most 500", "open-round",
             "--track", TINY, "--salt-file", "secret/one", "--note", "x" * 100_000)
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one", "--note", "first")
    _refused("the reason (--reason) holds a control character", "lose-round", "--track", TINY,
             "--reason", "gone \x1b]0;pwned\x07")
    _refused("round 1 is still active", "open-round", "--track", TINY,
             "--salt-file", "secret/two")
    _refused("not the one committed", "reveal", "--track", TINY, "--salt-file", "secret/two")
    _refused("say why", "lose-round", "--track", TINY, "--reason", "  ")
    _ok("lose-round", "--track", TINY, "--reason", REASON.replace(" ", "\n", 1))  # folded
    _refused("already tiny's round 1 (lost)", "open-round", "--track", TINY,
             "--salt-file", "secret/one")
    _ok("open-round", "--track", TINY, "--salt-file", "secret/two")
    _refused("round 1, which is lost", "verify", pc[:10], "--salt-file", "secret/one")
    _ok("reveal", "--track", TINY, "--salt-file", "secret/two")
    _refused("round 2, which is revealed", "reveal", "--track", TINY,
             "--salt-file", "secret/two")
    # On another track too: it opened, and its hidden seeds were public from the start.
    _refused("this salt was already tiny's round 2 (revealed)", "open-round", "--track",
             "paper000", "--salt-file", "secret/two")
    assert not Path("ledger/salts/paper000.json").exists()

    data = json.loads(Path("ledger/salts/tiny.json").read_text())
    assert data["schema"] == SALTS_SCHEMA and data["track"] == TINY
    one, two = data["rounds"]
    assert one["salt_sha256"] == hashlib.sha256(SALT_1).hexdigest()
    assert (one["status"], one["salt_hex"], one["note"]) == ("lost", None, f"first; lost: {REASON}")
    # diff19: a hand-edited salts file's note reached the site unchecked
    edited = copy.deepcopy(data)
    edited["rounds"][0]["note"] = "edited \u202e in"
    Path("ledger/salts/tiny.json").write_text(json.dumps(edited))
    _refused("tiny salt round 1's note holds a control character", "lose-round", "--track",
             TINY, "--reason", REASON)
    Path("ledger/salts/tiny.json").write_text(json.dumps(data))
    assert one["opened_at"] <= one["closed_at"] <= two["opened_at"] <= two["closed_at"]
    assert (two["status"], two["salt_hex"]) == ("revealed", SALT_2.hex())
    assert "hidden" not in two_entries.entries()[0]["evaluations"]  # every refusal wrote nothing
    # A mistyped --ledger: lose-round and reveal made it, an empty ledger folder.
    for args in (("lose-round", "--track", TINY, "--reason", REASON),
                 ("reveal", "--track", TINY, "--salt-file", "secret/two")):
        result = runner.invoke(app, ["leaderboard", *args, "--ledger", "typo/ledgr"])
        assert result.exit_code == 1 and "no ledger at typo/ledgr" in result.stderr
    assert not Path("typo").exists()


def test_schema_1_file_reads_as_one_round_and_is_written_back_as_schema_2(tmp_path: Path):
    path = tmp_path / "salts" / "paper000.json"
    path.parent.mkdir()
    digest = hashlib.sha256(SALT_1).hexdigest()
    path.write_text(json.dumps({"salt_sha256": digest, "salt_hex": None}))
    rounds = SaltRounds(path, "paper000")
    (only,) = rounds.read()
    assert (only.number, only.status, only.salt_sha256, only.opened_at, only.note) == \
        (1, "active", digest, None, MIGRATED_NOTE)
    assert rounds.by_digest(digest) == only and rounds.require_active(SALT_1) == only
    rounds.lose(REASON)
    written = json.loads(path.read_text())
    assert written["schema"] == SALTS_SCHEMA
    assert [r["status"] for r in written["rounds"]] == ["lost"]
    assert written["rounds"][0]["salt_sha256"] == digest
    revealed = {"salt_sha256": digest, "salt_hex": SALT_1.hex()}
    (old,) = parse(revealed, "paper000")
    assert old.status == "revealed" and old.salt() == SALT_1


def test_doctored_salts_files_are_refused(tmp_path: Path):
    digest = hashlib.sha256(SALT_1).hexdigest()

    def one(**changes) -> dict:
        return {"salt_sha256": digest, "salt_hex": None, "status": "active",
                "opened_at": "2026-12-02T00:00:00Z", "closed_at": None, "note": ""} | changes

    other = hashlib.sha256(SALT_2).hexdigest()
    for rounds, message in (
        ([one(status="revealed", salt_hex=SALT_2.hex(), closed_at="x")], "does not hash"),
        ([one(status="revealed", closed_at="x")], "exactly when the round is revealed"),
        ([one(), one(salt_sha256=other)], "only the last salt round may be active"),
        ([one(status="lost", closed_at="x"), one()], "share a salt"),
        ([one(status="lost")], "has no closed_at"),
        ([one(status="forgotten")], "salts schema"),
    ):
        with pytest.raises(SaltError, match=message):
            parse({"schema": SALTS_SCHEMA, "track": "t", "rounds": rounds}, "t")
    with pytest.raises(SaltError, match="names track"):
        parse({"schema": SALTS_SCHEMA, "track": "u", "rounds": []}, "t")


def test_recheck_uses_the_entrys_own_round_and_a_lost_round_cannot_be_recomputed(
    two_entries: Ledger, tmp_path: Path,
):
    ids = _ids(two_entries)
    pc, down = ids["P-controller"], ids["ONNX down"]
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    _ok("verify", pc[:10], "--salt-file", "secret/one", "--no-sim2sim")
    _ok("reveal", "--track", TINY, "--salt-file", "secret/one")
    _ok("open-round", "--track", TINY, "--salt-file", "secret/two")
    _ok("verify", down[:10], "--salt-file", "secret/two", "--no-sim2sim")
    assert _hidden(two_entries, "P-controller")["salt_sha256"] == \
        hashlib.sha256(SALT_1).hexdigest()
    assert [e["seed"] for e in _hidden(two_entries, "ONNX down")["episodes"]
            if e["task"] == "USB"] == hidden_seeds(SALT_2, TINY, "USB", 2, down)

    # Round 2 is active, yet the P-controller's recheck recomputes round 1's seeds: identical.
    before = Path(f"ledger/entries/tiny/{pc}.json").read_bytes()
    result = _ok("verify", pc[:10], "--no-sim2sim")
    assert "round 1" in result.stdout and "identical" in result.stdout
    assert Path(f"ledger/entries/tiny/{pc}.json").read_bytes() == before
    _refused("round 2, not revealed yet", "verify", down[:10], "--no-sim2sim")
    _refused("round 1, which is revealed", "verify", down[:10], "--salt-file", "secret/one")

    _ok("lose-round", "--track", TINY, "--reason", REASON)
    _refused("lost on 20", "verify", down[:10], "--no-sim2sim")
    with pytest.raises(LedgerError, match="cannot be recomputed"):
        verify(two_entries, down, None, sim2sim=False)
    # Verified again under a new round, the entry records the new round's salt.
    (tmp_path / "secret" / "three").write_bytes(b"a third salt, at least 16 bytes")
    _ok("open-round", "--track", TINY, "--salt-file", "secret/three")
    _ok("verify", down[:10], "--salt-file", "secret/three", "--no-sim2sim")
    assert _hidden(two_entries, "ONNX down")["salt_sha256"] == \
        hashlib.sha256(b"a third salt, at least 16 bytes").hexdigest()


def test_the_hidden_seeds_an_entry_publishes_are_not_the_next_entrys(two_entries: Ledger):
    """A verified entry's episodes, seeds included, are in the public ledger while its round is
    active: with one set of seeds per round, the next submitter could tune a policy on them."""
    ids = _ids(two_entries)
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    seeds = {}
    for name, entry_id in ids.items():
        _ok("verify", entry_id[:10], "--salt-file", "secret/one", "--no-sim2sim")
        hidden = _hidden(two_entries, name)
        assert hidden["per_entry_seeds"] is True
        seeds[name] = {e["seed"] for e in hidden["episodes"]}
        assert [e["seed"] for e in hidden["episodes"] if e["task"] == "USB"] == \
            hidden_seeds(SALT_1, TINY, "USB", 2, entry_id)
    assert not seeds["P-controller"] & seeds["ONNX down"]


def test_an_entry_verified_on_round_wide_seeds_is_rechecked_on_them(two_entries: Ledger):
    """Entries verified before seeds were keyed by the entry (no ``per_entry_seeds``) keep
    their round's shared seeds, and a recheck recomputes those."""
    from leaderboards.ledger import evaluate_policy, stored_policy_paths
    from leaderboards.tracks import get_track

    pc = _ids(two_entries)["P-controller"]
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    entry = two_entries.find(pc)
    old = evaluate_policy(get_track(TINY), "agent", stored_policy_paths(two_entries, entry),
                          lambda label: hidden_seeds(SALT_1, TINY, label, 2), "hidden",
                          salt_sha256=hashlib.sha256(SALT_1).hexdigest())
    entry["evaluations"]["hidden"] = old
    two_entries.replace(entry)
    list_hidden_as_verified(two_entries, entry)  # as the verify of that time wrote it
    _ok("reveal", "--track", TINY, "--salt-file", "secret/one")
    result = _ok("verify", pc[:10], "--no-sim2sim")
    assert "round 1" in result.stdout and "identical" in result.stdout


def test_site_says_which_hidden_seeds_can_be_recomputed(two_entries: Ledger, tmp_path: Path):
    ids = _ids(two_entries)
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    _ok("verify", ids["P-controller"][:10], "--salt-file", "secret/one", "--no-sim2sim")
    _ok("lose-round", "--track", TINY, "--reason", REASON)
    _ok("open-round", "--track", TINY, "--salt-file", "secret/two")
    _ok("verify", ids["ONNX down"][:10], "--salt-file", "secret/two", "--no-sim2sim")
    index = render_site(two_entries, tmp_path / "site", gifs=False)
    lost_page = (tmp_path / "site" / "entries" / f"{TINY}-{ids['P-controller']}.html").read_text()
    active_page = (tmp_path / "site" / "entries" / f"{TINY}-{ids['ONNX down']}.html").read_text()
    closed = json.loads(Path("ledger/salts/tiny.json").read_text())["rounds"][0]["closed_at"]
    assert "badge verified" in lost_page
    assert "salt round 1" in lost_page and "cannot be recomputed" in lost_page
    assert f"lost on {closed[:10]}" in lost_page and REASON in lost_page
    assert "round is active" in active_page and "cannot be recomputed" not in active_page
    assert "round 1 lost" in index.read_text() and "round 2 active" in index.read_text()

    _ok("reveal", "--track", TINY, "--salt-file", "secret/two")
    render_site(two_entries, tmp_path / "site", gifs=False)
    revealed_page = (tmp_path / "site" / "entries" / f"{TINY}-{ids['ONNX down']}.html").read_text()
    assert "anyone can recompute" in revealed_page and "round is active" not in revealed_page


def test_every_shipped_verified_entry_names_a_recorded_round_of_its_track(shipped):
    from leaderboards.tracks import TRACKS

    ledger, entries = shipped
    for track in TRACKS:
        rounds = ledger.salt_rounds(track).read()  # validated; schema-1 files migrate on read
        assert rounds, f"{track} has no salt round"
        assert sum(r.status == "active" for r in rounds) <= 1
    for entry in entries:
        if "hidden" in entry["evaluations"]:
            assert ledger.entry_round(entry) is not None, entry["entry_id"]
            if "sim2sim" in entry:
                assert entry["sim2sim"]["salt_sha256"] == \
                    entry["evaluations"]["hidden"]["salt_sha256"]


def test_a_writers_temporary_salts_file_left_by_a_kill_is_not_read_as_a_track(
        two_entries: Ledger):
    """A kill -9 inside a salts write left ".<track>.<pid>-<uuid>.tmp.json": opening a round
    on any track read it as a salts file of its own and refused ("names track 'tiny'")."""
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    salts = Path("ledger/salts")
    (salts / f".{TINY}.12345-0123456789ab.tmp.json").write_text(
        (salts / f"{TINY}.json").read_text())
    _ok("open-round", "--track", "paper000", "--salt-file", "secret/two")


def test_a_salt_file_inside_the_ledgers_git_repository_is_refused(two_entries: Ledger):
    """The check looked at the ledger folder only: a salt beside it in the repository (not
    git-ignored) was accepted, one `git add -A` away from publishing the hidden seeds."""
    Path(".git").mkdir()  # the ledger's folder and the salts' share this repository
    _refused("lies inside the git repository", "open-round", "--track", TINY,
             "--salt-file", "secret/one")


def test_a_round_opened_before_lists_and_a_cut_off_verify_keep_the_ledger_readable(
    two_entries: Ledger, monkeypatch: pytest.MonkeyPatch,
):
    """A round opened before rounds listed their verifications had no list: its next verify
    started one with only the new entry, and every entry verified earlier in it was refused
    wherever the ledger was read. A re-verify cut off between listing its blocks and writing
    the entry left the entry's blocks unlisted. A PyBullet block edited by hand was read as
    verified (the list covered the hidden block only)."""
    from leaderboards.ledger import Ledger as LedgerClass

    ids = _ids(two_entries)
    pc, down = ids["P-controller"], ids["ONNX down"]
    _ok("open-round", "--track", TINY, "--salt-file", "secret/one")
    _ok("verify", pc[:10], "--salt-file", "secret/one")
    salts = Path(f"ledger/salts/{TINY}.json")
    data = json.loads(salts.read_text())
    del data["rounds"][0]["verified"]  # as the round was written before lists
    salts.write_text(json.dumps(data))
    _ok("verify", down[:10], "--salt-file", "secret/one", "--no-sim2sim")
    assert len(two_entries.entries()) == 2
    assert sorted(json.loads(salts.read_text())["rounds"][0]["verified"]) == sorted([pc, down])

    def cut_off(self, entry):
        raise KeyboardInterrupt
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(LedgerClass, "replace", cut_off)
        verify(two_entries, pc, Path("secret/one"), sim2sim=False)
    assert len(two_entries.entries()) == 2  # the entry's previous blocks are still listed

    path = two_entries.entry_path(TINY, pc)
    entry = json.loads(path.read_text())
    for episode in entry["sim2sim"]["episodes"]:
        episode["success"] = True
    path.write_text(json.dumps(entry))
    with pytest.raises(LedgerError, match="hidden evaluation or sim-to-sim block is not one that "
                                          "`leaderboard verify` recorded under salt round 1"):
        two_entries.entries()


def test_a_salt_can_come_through_a_pipe(tmp_path: Path):
    """`--salt-file <(pass show salt)` keeps the secret off the disk; the pipe, no regular
    file, was refused as a salt file that "does not exist"."""
    import os

    salt = b"0123456789abcdef0123456789abcdef"
    read, write = os.pipe()
    os.write(write, salt + b"\n")
    os.close(write)
    try:
        assert Ledger(tmp_path / "ledger").read_salt(Path(f"/dev/fd/{read}")) == salt
    finally:
        os.close(read)
    with pytest.raises(LedgerError, match="salt file .*nowhere does not exist"):
        Ledger(tmp_path / "ledger").read_salt(tmp_path / "nowhere")
    with pytest.raises(LedgerError, match="/dev/zero holds more than 4096 bytes"):
        Ledger(tmp_path / "ledger").read_salt(Path("/dev/zero"))  # read no further
