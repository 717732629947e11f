"""Store: atomic cells, failures, running markers and their reclamation."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from matrix_helpers import write_tiny_preset

from benchmark.executors import InlineExecutor
from benchmark.matrix import run_matrix
from benchmark.preset import load_preset
from benchmark.store import SCHEMA_VERSION, Store, collect_provenance
from benchmark.testing import synthetic_cell_for_tests


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_cell_is_committed_with_all_rows_or_not_at_all(tmp_path: Path) -> None:
    _, preset = write_tiny_preset(tmp_path)
    cell = next(c for c in preset.cells if c.budget_steps > 0)
    result = synthetic_cell_for_tests(cell, tmp_path)
    provenance = collect_provenance()
    with Store(tmp_path / "s.sqlite") as store:
        broken = synthetic_cell_for_tests(cell, tmp_path)
        del broken.final.episodes[-1]["peak_force_n"]
        with pytest.raises(ValueError, match="peak_force_n"):
            store.record_done(cell, broken, provenance, 1.0)
        assert store.statuses() == {} and store.episode_count() == 0

        store.record_done(cell, result, provenance, 1.0)
        evaluations = store.evaluations(cell.config_hash)
        # 5 curve points (0, 100, ..., 400) plus the final evaluation, 6 episodes each.
        assert [e["env_steps"] for e in evaluations] == [0, 100, 200, 300, 400, 400]
        assert [e["is_final"] for e in evaluations] == [False] * 5 + [True]
        assert store.episode_count() == 6 * 6
        assert [r["seed"] for r in evaluations[-1]["episodes"]] == list(cell.eval_seeds)
        assert [r["success"] for r in evaluations[-1]["episodes"]] == [
            r["success"] for r in result.final.episodes]
        row = store.cell_rows("done")[0]
        assert row["config_hash"] == cell.config_hash
        assert row["mujoco_version"] and row["torch_version"] and row["suite_commit"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("peak_force_n", 3e12, r"final.episodes\[2\].peak_force_n must be a number within 1e\+09"),
    ("time_to_success_s", -2e9, "time_to_success_s must be a number within"),
    ("jerk", [0.0, float("nan")], r"final.episodes\[2\].jerk\[1\] is not finite: nan"),
])
def test_a_result_the_store_could_not_read_back_is_refused_on_write(
        tmp_path: Path, field: str, value, message: str) -> None:
    """A peak force of 3e12 N was stored, then refused by every read (the report of the whole
    matrix failed); a NaN in an extra field failed the cell naming no field."""
    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    result = synthetic_cell_for_tests(cell, tmp_path)
    result.final.episodes[2][field] = value
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match=message):
            store.record_done(cell, result, collect_provenance(), 1.0)
        assert store.statuses() == {}


def test_a_transaction_interrupted_midway_leaves_nothing(tmp_path: Path) -> None:
    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    result = synthetic_cell_for_tests(cell, tmp_path)
    result.final.episodes[3]["steps_to_success"] = "not a number"  # fails inside the insert
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError):
            store.record_done(cell, result, collect_provenance(), 1.0)
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        for table in ("cells", "evaluations", "episodes"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def test_markers_of_dead_processes_and_silent_ones_are_reclaimed(tmp_path: Path) -> None:
    _, preset = write_tiny_preset(tmp_path)
    first, second, third = preset.cells[:3]
    with Store(tmp_path / "s.sqlite", stale_after_s=30.0) as store:
        now = time.time()
        with store.transaction() as db:
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (first.config_hash, _dead_pid(), store.hostname, now, now, "dead"))
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (second.config_hash, os.getppid(), store.hostname, now, now, "alive"))
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (third.config_hash, os.getppid(), "other-host", now - 60, now - 60, "old"))
        assert store.claim(first)  # owner pid is gone
        assert not store.claim(second)  # owner alive with a fresh heartbeat
        assert store.claim(third)  # heartbeat older than stale_after_s
        assert {m.config_hash: m.pid for m in store.running()}[first.config_hash] == os.getpid()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc (Linux)")
def test_a_live_owner_on_this_host_keeps_its_cell_whatever_the_readers_stale_after(
        tmp_path: Path) -> None:
    """A second `matrix run` with a shorter --stale-after took over a cell whose owner was
    alive on this host, recorded it failed and deleted the owner's marker."""
    _, preset = write_tiny_preset(tmp_path)
    live, reused = preset.cells[:2]
    with Store(tmp_path / "s.sqlite", stale_after_s=2.0) as store:
        now = time.time()
        with store.transaction() as db:
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (live.config_hash, 1, store.hostname, now - 60, now - 60,
                        "silent but alive"))  # PID 1 started before the marker
            # A PID in use by a process that started after the marker was written: reused.
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (reused.config_hash, 1, store.hostname, 0.0, now, "reused"))
        assert not store.claim(live)
        assert store.claim(reused)


def test_a_marker_from_another_pid_namespace_of_this_hostname_is_not_taken_for_dead(
        tmp_path: Path) -> None:
    """Two containers with one hostname (`--uts host`) see each other's PIDs as absent: a
    second runner took the first's live cells over and failed them. Such a marker goes stale
    by its heartbeat alone."""
    import socket

    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    with Store(tmp_path / "s.sqlite", stale_after_s=30.0) as store:
        assert store.hostname.startswith(socket.gethostname())
        if os.path.exists("/proc/self/ns/pid"):  # Linux: the namespace is part of the host
            assert f"pid namespace {os.stat('/proc/self/ns/pid').st_ino}" in store.hostname
        other = f"{socket.gethostname()} (boot 00000000, pid namespace 1)"
        assert other != store.hostname
        now = time.time()
        with store.transaction() as db:
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (cell.config_hash, _dead_pid(), other, now, now, "elsewhere"))
        assert not store.claim(cell)  # its PID means nothing here; its heartbeat is fresh


def test_failed_cells_record_the_traceback_and_do_not_stop_the_matrix(tmp_path: Path) -> None:
    _, preset = write_tiny_preset(tmp_path, fail_seed=1)
    with Store(tmp_path / "s.sqlite") as store:
        summary = run_matrix(preset.cells, store, InlineExecutor(),
                             cell_fn=synthetic_cell_for_tests, artifacts_root=tmp_path / "a",
                             show_progress=False)
        failing = [c for c in preset.cells if c.budget_steps > 0 and c.seed == 1]
        assert len(summary.failed) == len(failing) == 4
        assert len(summary.done) == len(preset.cells) - 4
        failed_rows = store.cell_rows("failed")
        assert {r["config_hash"] for r in failed_rows} == {c.config_hash for c in failing}
        assert all("synthetic failure requested" in r["error"] for r in failed_rows)
        assert all("Traceback" in r["traceback"] and "RuntimeError" in r["traceback"]
                   for r in failed_rows)
        assert store.running() == []
        done_before = {r["config_hash"]: r["finished_at"] for r in store.cell_rows("done")}

        # Without retrying, nothing runs; with retrying, only the failed cells run again.
        again = run_matrix(preset.cells, store, InlineExecutor(), cell_fn=synthetic_cell_for_tests,
                           artifacts_root=tmp_path / "a", retry_failed=False, show_progress=False)
        assert again.done == [] and again.failed == []
        assert sorted(again.failed_before) == sorted(c.config_hash for c in failing)
        # Another run on the store finished or failed them after this run's snapshot: it
        # retried the failed cells under --no-retry-failed and counted the done ones as
        # "running elsewhere".
        stale_snapshot = store.statuses
        store.statuses = dict  # type: ignore[method-assign]
        again = run_matrix(preset.cells, store, InlineExecutor(), cell_fn=synthetic_cell_for_tests,
                           artifacts_root=tmp_path / "a", retry_failed=False, show_progress=False)
        store.statuses = stale_snapshot  # type: ignore[method-assign]
        assert again.done == [] and again.failed == [] and again.busy_elsewhere == []
        assert sorted(again.failed_before) == sorted(c.config_hash for c in failing)
        assert again.already_done == len(preset.cells) - 4
        again = run_matrix(preset.cells, store, InlineExecutor(), cell_fn=synthetic_cell_for_tests,
                           artifacts_root=tmp_path / "a", show_progress=False)
        assert sorted(again.failed) == sorted(c.config_hash for c in failing)
        assert {r["config_hash"]: r["finished_at"] for r in store.cell_rows("done")} == done_before


@pytest.mark.parametrize(("tables", "listed"), [
    (["CREATE TABLE parts (name TEXT)"], "parts"),
    # A `meta` table is a common name: this one got our schema_version row and tables.
    (["CREATE TABLE meta (key TEXT, value TEXT)", "CREATE TABLE cells (config_hash TEXT)"],
     "cells, meta"),
    (["CREATE TABLE meta (name TEXT)"], "meta"),
])
def test_another_programs_database_is_refused_and_left_as_it_was(
        tmp_path: Path, tables: list[str], listed: str) -> None:
    """Opening one as a store added the store's tables to it (and switched it to WAL)."""
    path = tmp_path / "inventory.db"
    db = sqlite3.connect(path)
    for table in tables:
        db.execute(table)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"of something else \(tables: {listed}\)"):
        Store(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.db"]
    Store(tmp_path / "empty.sqlite").close()  # a new store, and the same store reopened
    Store(tmp_path / "empty.sqlite").close()


def test_an_inline_cell_keeps_its_marker_fresh_while_it_runs(tmp_path: Path) -> None:
    """The inline executor runs a cell in the matrix's own thread, which never refreshed the
    marker meanwhile: a second matrix process took a live cell over as stale and recorded it
    failed."""
    _, preset = write_tiny_preset(tmp_path, seeds="[0]")
    path = tmp_path / "s.sqlite"
    beats: list[float] = []

    def slow_cell(cell, artifacts_dir):
        with Store(path) as other:  # what another process sees
            for _ in range(2):
                beats.append(next(m.heartbeat_at for m in other.running()
                                  if m.config_hash == cell.config_hash))
                time.sleep(0.6)
        return synthetic_cell_for_tests(cell, artifacts_dir)

    with Store(path) as store:
        summary = run_matrix(preset.cells[:1], store, InlineExecutor(), cell_fn=slow_cell,
                             artifacts_root=tmp_path / "a", show_progress=False, heartbeat_s=0.1)
    assert len(summary.done) == 1
    assert beats[1] > beats[0]  # beaten while the cell ran


def test_a_locked_damaged_or_mislabelled_store_is_one_line_that_says_so(
        tmp_path: Path, monkeypatch) -> None:
    """A store another process held locked read "must be a writable file in a writable
    folder" (it was); damaged pages were an internal error ("DatabaseError: database disk image
    is malformed"), a damaged schema_version "invalid literal for int() with base 10"."""
    import typer

    import benchmark.store as store_module
    from benchmark.matrix_cli import open_store

    Store(tmp_path / "locked.sqlite").close()
    holder = sqlite3.connect(tmp_path / "locked.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(store_module, "STORE_LOCK_WAIT_S", 0.2)
    try:
        with pytest.raises(typer.BadParameter, match="locked.sqlite is locked by another "
                                                     "process"):
            open_store(tmp_path / "locked.sqlite")
    finally:
        holder.close()

    Store(tmp_path / "label.sqlite").close()
    db = sqlite3.connect(tmp_path / "label.sqlite")
    db.execute("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match=r"label.sqlite has a damaged schema_version \('abc'\)"):
        Store(tmp_path / "label.sqlite")

    path = tmp_path / "pages.sqlite"
    Store(path).close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # every page after the header, overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(typer.BadParameter, match="pages.sqlite is damaged"):
        open_store(path)

    # matrix22: a dropped column ended `report` in "KeyError: 'info_json'"; a cut-off copy of a
    # store with results opened (its first pages intact), `run` resumed into it and `report`
    # ended in SQLite's "malformed", naming no file
    _store_with_one_done_cell(tmp_path / "column.sqlite")
    db = sqlite3.connect(tmp_path / "column.sqlite")
    db.execute("ALTER TABLE cells DROP COLUMN info_json")
    db.commit()
    db.close()
    for read_only in (False, True):
        with pytest.raises(ValueError, match="column.sqlite lacks the column.s. cells.info_json"):
            Store(tmp_path / "column.sqlite", read_only=read_only)
    whole = tmp_path / "whole.sqlite"
    _store_with_one_done_cell(whole)
    data = whole.read_bytes()
    assert len(data) > 8192
    (tmp_path / "cut.sqlite").write_bytes(data[:len(data) - 4096])  # its last page
    for read_only in (False, True):
        with pytest.raises(typer.BadParameter, match=r"cut.sqlite is damaged \("):
            open_store(tmp_path / "cut.sqlite", read_only=read_only)
    # ... and text in a number's column ended it in a TypeError or a read as a number
    for sql, column in (("UPDATE episodes SET final_distance_mm = 'abc'",
                         "episodes.final_distance_mm"),
                        ("UPDATE evaluations SET env_steps = 'abc'", "evaluations.env_steps"),
                        ("UPDATE cells SET seed = 'x'", "cells.seed")):
        _store_with_one_done_cell(tmp_path / "text.sqlite")
        db = sqlite3.connect(tmp_path / "text.sqlite")
        db.execute(sql)
        db.commit()
        db.close()
        with pytest.raises(ValueError, match=f"text.sqlite is damaged \\(text in {column}\\)"):
            Store(tmp_path / "text.sqlite", read_only=True)
        (tmp_path / "text.sqlite").unlink()


def test_storing_a_cell_hashes_its_identity_once(tmp_path: Path, monkeypatch) -> None:
    """Every episode row asked the cell's hash, computed again over its evaluation seeds:
    storing 20,000 episodes took 50 s, quadratic in them, with the store locked and a second
    runner's heartbeat failing (matrix19)."""
    from benchmark.cells import Cell

    _, preset = write_tiny_preset(tmp_path)
    cell = next(c for c in preset.cells if c.budget_steps > 0)
    result = synthetic_cell_for_tests(cell, tmp_path)
    identities = []
    identity = Cell.identity
    monkeypatch.setattr(Cell, "identity", lambda self: identities.append(1) or identity(self))
    with Store(tmp_path / "s.sqlite") as store:
        store.record_done(cell, result, collect_provenance(), 1.0)
        assert store.episode_count() == 36
    assert len(identities) <= 1


def _store_with_one_done_cell(path: Path):
    """A store at `path` holding one done cell of the tiny preset (returned), to damage."""
    _, preset = write_tiny_preset(path.parent)
    cell = preset.cells[0]
    with Store(path) as store:
        store.record_done(cell, synthetic_cell_for_tests(cell, path.parent),
                          collect_provenance(), 1.0)
    return cell


@pytest.mark.parametrize(("sql", "message"), [
    ("UPDATE episodes SET success = -3", "success must be 0 or 1, got -3"),  # read as a success
    ("UPDATE episodes SET peak_force_n = 1e308", r"peak_force_n must be a number within 1e\+09"),
    ("UPDATE episodes SET seed = -1", "seed must be an integer >= 0, got -1"),
    ("UPDATE episodes SET extra_json = '{bad'", "extra_json is not a JSON object"),
    ("UPDATE episodes SET extra_json = '[1, 2]'", "extra_json is not a JSON object"),
    # matrix25: printed as a time to threshold of -7 steps and "inf"; a final evaluation cut
    # to fewer episodes sat under the header's count
    ("UPDATE evaluations SET env_steps = -7", "env_steps must be an integer >= 0, got -7"),
    ("UPDATE evaluations SET wall_clock_s = 1e999", r"wall_clock_s must be a number in \[0, "
                                                    r"1e\+09\], got inf"),
    ("DELETE FROM episodes WHERE episode_index > 0", r"holds 1 episodes, the cell's protocol \d+"),
])
def test_an_edited_episode_row_is_refused_naming_the_store(tmp_path: Path, sql: str,
                                                           message: str) -> None:
    """The report read rows on trust: success -3 counted as a success, 1e308 N printed as a
    309-digit force, and the rest ended in a JSONDecodeError or TypeError naming no file."""
    cell = _store_with_one_done_cell(tmp_path / "s.sqlite")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute(sql)
    db.commit()
    db.close()
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(ValueError, match=message) as caught:
            store.evaluations(cell.config_hash)
    assert str(tmp_path / "s.sqlite") in str(caught.value)


def test_a_hand_damaged_store_is_refused_naming_the_damage(tmp_path: Path) -> None:
    """A store with its meta table alone, an evaluation without episodes and a cell's info_json
    that is not an object ended `matrix status` / `report` in "no such table: cells", "distinct
    episodes must be in [1, 0]" and "'list' object has no attribute 'get'"."""
    cell = _store_with_one_done_cell(tmp_path / "s.sqlite")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("DELETE FROM episodes WHERE eval_index = 0")
    db.execute("UPDATE cells SET info_json = '[1]'")
    db.commit()
    db.close()
    with Store(tmp_path / "s.sqlite", read_only=True) as store:
        with pytest.raises(ValueError, match="evaluation 0 of cell .* has no episodes"):
            store.evaluations(cell.config_hash)
        with pytest.raises(ValueError, match="info_json is not a JSON object: a damaged store"):
            store.cell_rows()

    db = sqlite3.connect(tmp_path / "meta.sqlite")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}')")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="meta.sqlite lacks the cells, evaluations, episodes, "
                                         "running table"):
        Store(tmp_path / "meta.sqlite", read_only=True)


def test_a_done_cell_without_its_final_evaluation_names_the_store_and_cell(tmp_path):
    """matrix17: `status` and `report` said only "a cell needs exactly one final evaluation,
    found 0" (exit 1), naming neither the store nor the cell."""
    from benchmark.report import collect

    _, preset = write_tiny_preset(tmp_path)
    cell = _store_with_one_done_cell(tmp_path / "s.sqlite")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("UPDATE evaluations SET is_final = 0")
    db.commit()
    db.close()
    with Store(tmp_path / "s.sqlite", read_only=True) as store:
        with pytest.raises(ValueError, match=rf"s.sqlite: cell {cell.config_hash[:12]}: a cell "
                                             r"needs exactly one final evaluation, found 0: a "
                                             r"damaged store"):
            collect(preset, store)


def test_a_store_read_without_its_write_ahead_log_says_so(tmp_path: Path) -> None:
    """Copied mid-run (its -wal without the -shm) into a folder the reader cannot write, a
    store read as immutable showed an older state with no word of the cells in its log."""
    import shutil
    import subprocess

    from benchmark.store import connect_read_only

    live = sqlite3.connect(tmp_path / "s.sqlite")
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("PRAGMA wal_autocheckpoint=0")
    live.execute("CREATE TABLE t (x)")
    live.execute("INSERT INTO t VALUES (1)")
    live.commit()
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "s.sqlite", copy / "s.sqlite")
    shutil.copy(tmp_path / "s.sqlite-wal", copy / "s.sqlite-wal")
    live.close()
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(copy)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.warns(UserWarning, match=r"s.sqlite: its write-ahead log \([\d,]+ bytes\) "
                                             r"cannot be read .* cells finished since may be "
                                             r"missing"):
            connect_read_only(copy / "s.sqlite").close()
    finally:
        subprocess.run(["chattr", "-i", str(copy)], check=True)


def test_a_marker_written_before_host_identities_is_still_reclaimed_by_pid(tmp_path: Path) -> None:
    """Markers of the previous code name the bare hostname: a dead owner's cells waited for the
    heartbeat window after an upgrade, shown as running elsewhere."""
    import socket

    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    with Store(tmp_path / "s.sqlite", stale_after_s=30.0) as store:
        now = time.time()
        with store.transaction() as db:
            db.execute("INSERT INTO running VALUES (?, ?, ?, ?, ?, ?)",
                       (cell.config_hash, _dead_pid(), socket.gethostname(), now, now, "old"))
        assert store.claim(cell)


def test_a_suite_installed_inside_another_repository_has_no_commit(monkeypatch):
    """Installed into a project's own git repository (a venv inside it), git answered for that
    repository: its commit was recorded as the suite's, and counted clean, so a matrix cell
    resumed a checkpoint of other code after an upgrade."""
    import subprocess
    import types

    import benchmark.store as store

    def run(command, **kwargs):
        out = "/home/user/project\n" + "a" * 40 + "\n" if "--show-toplevel" in command else ""
        return types.SimpleNamespace(stdout=out)

    monkeypatch.setattr(subprocess, "run", run)
    assert store.suite_commit(mark_dirty=True) is None


def test_two_trees_edited_differently_on_one_commit_are_two_codes(monkeypatch):
    """Both read "<commit>-dirty": a report pooled cells of two different uncommitted edits
    with no warning that different code made them (matrix20)."""
    import subprocess
    import types

    import benchmark.store as store

    root = str(Path(store.__file__).resolve().parent.parent)
    diff = {"now": b"-old\n+new one\n"}

    def run(command, **kwargs):
        if "--show-toplevel" in command:
            return types.SimpleNamespace(stdout=f"{root}\n" + "a" * 40 + "\n")
        if "status" in command:
            return types.SimpleNamespace(stdout=" M envs/scene.py\n")
        assert command[:3] == ["git", "diff", "HEAD"], command
        return types.SimpleNamespace(stdout=diff["now"])

    monkeypatch.setattr(subprocess, "run", run)
    first = store.suite_commit(mark_dirty=True)
    assert first.startswith("a" * 40 + "-dirty-")
    assert store.suite_commit(mark_dirty=True) == first  # the same edit: the same code
    diff["now"] = b"-old\n+new two\n"
    assert store.suite_commit(mark_dirty=True) != first
    assert store.suite_commit() == "a" * 40


def test_labels_and_errors_in_brackets_are_shown_as_written(tmp_path: Path) -> None:
    """Labels and error texts were Rich markup: "TD3 [lfd]" lost its bracket and a label with
    "[/w demos]" raised MarkupError, ending the run before its last cell."""
    import io

    from rich.console import Console

    import benchmark.matrix as matrix_module

    path, _ = write_tiny_preset(tmp_path, fail_seed=1)
    path.write_text(path.read_text().replace('label = "Learner"', 'label = "SAC [/w demos]"'))
    preset = load_preset(path)
    shown = io.StringIO()
    original = matrix_module.Progress

    def progress(*args, **kwargs):  # shown, and captured here
        kwargs["disable"] = False
        kwargs["console"] = Console(file=shown, width=200)
        return original(*args, **kwargs)
    matrix_module.Progress = progress
    try:
        with Store(tmp_path / "s.sqlite") as store:
            summary = run_matrix(preset.cells, store, InlineExecutor(),
                                 cell_fn=synthetic_cell_for_tests,
                                 artifacts_root=tmp_path / "a", show_progress=True)
    finally:
        matrix_module.Progress = original
    assert len(summary.done) + len(summary.failed) == len(preset.cells)
    assert "SAC [/w demos]" in shown.getvalue()


@pytest.mark.parametrize("threads", ['"x"', "[1]", "0"])
def test_a_damaged_thread_count_or_marker_pid_is_one_line(tmp_path: Path, threads: str) -> None:
    """matrix25: a torch_threads of "x" or [1] ended the report in a bare TypeError; a running
    marker's pid of 2**62 was an OverflowError in every matrix command, naming no store."""
    from envs.tether import pid_alive

    cell = _store_with_one_done_cell(tmp_path / "s.sqlite")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute(f"UPDATE cells SET info_json = '{{\"torch_threads\": {threads}}}'")
    db.commit()
    db.close()
    with Store(tmp_path / "s.sqlite", read_only=True) as store:
        with pytest.raises(ValueError, match=f"cell {cell.config_hash[:12]}'s info_json "
                                             "torch_threads .* is no thread count: a damaged"):
            store.cell_rows()
    assert not any(pid_alive(pid) for pid in (2**62, 0, -1))  # 0, -1: a group, every process
