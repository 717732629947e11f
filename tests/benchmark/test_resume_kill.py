"""`kill -9` a real `matrix run` mid-way, run it again: nothing lost, nothing repeated."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from matrix_helpers import SYNTHETIC, write_tiny_preset

from benchmark.store import Store
from benchmark.testing import synthetic_cell_for_tests

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _sweep_semaphores_of_killed_runs():
    """A kill -9 of a run's whole process group kills multiprocessing's resource tracker too,
    which would have unlinked the pool's named semaphores: each test left 5-10 files in
    /dev/shm for good. Those that appeared during the test and no live process maps go."""
    shm = Path("/dev/shm")
    before = set(shm.glob("sem.mp-*"))
    yield
    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(line.split()[-1] for line in maps.read_text().splitlines()
                          if "/dev/shm/sem.mp-" in line)
        except OSError:  # a process that ended meanwhile, or another user's
            continue
    for path in set(shm.glob("sem.mp-*")) - before:
        if str(path) not in mapped:
            path.unlink(missing_ok=True)


def _command(preset: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "benchmark.matrix_cli", "run", str(preset),
            "--store", str(store), "--workers", "2", "--cell-fn", SYNTHETIC,
            "--no-progress", "--heartbeat", "0.2"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _done_count(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0]
        except sqlite3.OperationalError:  # schema not created yet
            return 0


def _run_and_kill(preset: Path, store: Path, kill_after_done: int) -> int:
    """Start a matrix run in its own process group; SIGKILL the whole group mid-run."""
    process = subprocess.Popen(_command(preset, store), cwd=REPO, env=_env(),
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while _done_count(store) < kill_after_done:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "matrix run made no progress"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()  # reap it, so its pid is really gone
        process.stderr.close()
    return process.pid


def test_kill_minus_9_then_rerun_loses_and_repeats_nothing(tmp_path: Path) -> None:
    preset_path, preset = write_tiny_preset(tmp_path, seeds="[0, 1, 2]", sleep_s=0.25)
    store_path = tmp_path / "runs" / "tiny.sqlite"
    total = len(preset.cells)
    assert total == 24

    killed_pid = _run_and_kill(preset_path, store_path, kill_after_done=4)
    with Store(store_path) as store:
        first = {r["config_hash"]: r["finished_at"] for r in store.cell_rows("done")}
        markers = store.running()
    assert 4 <= len(first) < total, "the run must be killed mid-way"
    assert markers and all(m.pid == killed_pid for m in markers), "half-finished cells left"
    assert not {m.config_hash for m in markers} & set(first)

    _run_and_kill(preset_path, store_path, kill_after_done=len(first) + 6)
    with Store(store_path) as store:
        second = {r["config_hash"]: r["finished_at"] for r in store.cell_rows("done")}
    assert len(second) < total
    assert {h: second[h] for h in first} == first, "finished cells must not be rerun"

    finished = subprocess.run(_command(preset_path, store_path), cwd=REPO, env=_env(),
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr

    with Store(store_path) as store:
        rows = {r["config_hash"]: r for r in store.cell_rows()}
        assert set(rows) == {c.config_hash for c in preset.cells}
        assert all(r["status"] == "done" for r in rows.values())
        assert {h: rows[h]["finished_at"] for h in second} == second
        assert store.running() == []
        expected_episodes = 0
        (tmp_path / "reference").mkdir()
        for cell in preset.cells:
            # Each cell holds exactly what one uninterrupted execution produces (the fixture's
            # numbers do not depend on its sleep, so skip it here).
            quick = dataclasses.replace(cell, agent_config={})
            reference = synthetic_cell_for_tests(quick, tmp_path / "reference")
            evaluations = [*reference.curve, reference.final]
            stored = store.evaluations(cell.config_hash)
            assert [e["env_steps"] for e in stored] == [e.env_steps for e in evaluations]
            for got, want in zip(stored, evaluations, strict=True):
                assert [r["success"] for r in got["episodes"]] == [
                    r["success"] for r in want.episodes]
                assert [r["peak_force_n"] for r in got["episodes"]] == [
                    r["peak_force_n"] for r in want.episodes]
            expected_episodes += sum(len(e.episodes) for e in evaluations)
            assert (Path(rows[cell.config_hash]["artifacts_path"])
                    / "synthetic_curve.json").is_file()
        assert store.episode_count() == expected_episodes


def _alive_children(pid: int) -> set[int]:
    """Processes whose parent is `pid` and that have not exited (zombies count as exited)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_kill_minus_9_of_the_parent_alone_leaves_no_orphan_and_loses_nothing(tmp_path: Path):
    preset_path, preset = write_tiny_preset(tmp_path, seeds="[0]", sleep_s=0.5)
    store_path = tmp_path / "runs" / "tiny.sqlite"
    process = subprocess.Popen(_command(preset_path, store_path), cwd=REPO, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _done_count(store_path) < 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    workers = _alive_children(process.pid)
    assert len(workers) >= 2  # the pool (and multiprocessing's resource tracker)
    os.kill(process.pid, signal.SIGKILL)  # the parent only, not its process group
    process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)], "orphaned workers outlived a kill -9"
    with Store(store_path) as store:
        before = {r["config_hash"]: r["finished_at"] for r in store.cell_rows("done")}

    finished = subprocess.run(_command(preset_path, store_path), cwd=REPO, env=_env(),
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    with Store(store_path) as store:
        rows = {r["config_hash"]: r for r in store.cell_rows()}
        assert set(rows) == {c.config_hash for c in preset.cells}  # none lost
        assert all(r["status"] == "done" for r in rows.values())
        assert {h: rows[h]["finished_at"] for h in before} == before  # none repeated
        expected = 0
        for cell in preset.cells:
            expected += sum(len(e["episodes"]) for e in store.evaluations(cell.config_hash))
            folder = Path(rows[cell.config_hash]["artifacts_path"])
            assert sorted(p.name for p in folder.iterdir()) == ["synthetic_curve.json"]
        assert store.episode_count() == expected
        assert store.running() == []
