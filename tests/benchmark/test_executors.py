"""Executors: the spawn pool and a real local Ray give identical stores for the same preset."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from matrix_helpers import write_tiny_preset

from benchmark.executors import LocalExecutor, RayExecutor, _env_threads, worker_threads
from benchmark.matrix import run_matrix
from benchmark.store import Store
from benchmark.testing import synthetic_cell_for_tests

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray with a single CPU for this module (the test machine has two cores)."""
    python_path = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": python_path}})
    yield
    ray.shutdown()


def _snapshot(store: Store) -> dict[str, tuple]:
    """Everything a cell produced except timing and provenance."""
    snapshot = {}
    for row in store.cell_rows():
        evaluations = store.evaluations(row["config_hash"])
        snapshot[row["config_hash"]] = (
            row["status"], row["error"], row["env_steps"],
            [(e["eval_index"], e["is_final"], e["env_steps"], e["wall_clock_s"], e["episodes"])
             for e in evaluations],
        )
    return snapshot


def test_a_dying_worker_fails_its_cell_and_the_pool_recovers(tmp_path: Path) -> None:
    _, preset = write_tiny_preset(tmp_path, crash_seed=1)
    with Store(tmp_path / "s.sqlite") as store:
        summary = run_matrix(preset.cells, store, LocalExecutor(workers=1),
                             cell_fn=synthetic_cell_for_tests, artifacts_root=tmp_path / "a",
                             show_progress=False, heartbeat_s=0.5)
        crashing = {c.config_hash for c in preset.cells if c.budget_steps > 0 and c.seed == 1}
        assert set(summary.failed) == crashing
        assert len(summary.done) == len(preset.cells) - len(crashing)
        assert all("worker process died" in r["error"] for r in store.cell_rows("failed"))
        assert store.running() == []


def test_the_workers_have_ended_when_the_matrix_returns(tmp_path: Path) -> None:
    """They were left to the interpreter's exit (~2.5 s): a Ctrl-C or SIGTERM there printed a
    traceback, and the command exited 0."""
    _, preset = write_tiny_preset(tmp_path)
    with Store(tmp_path / "s.sqlite") as store:
        run_matrix(preset.cells[:2], store, LocalExecutor(workers=1),
                   cell_fn=synthetic_cell_for_tests, artifacts_root=tmp_path / "a",
                   show_progress=False)
    assert multiprocessing.active_children() == []


def test_shutdown_ends_the_workers_of_cells_still_running(tmp_path: Path) -> None:
    """A Ctrl-C in `matrix run` left running cells to the interpreter's exit, which joined the
    pool: the command waited for every running cell to finish (81 s for two SAC cells), then
    dropped their work; a second Ctrl-C hung it (review)."""
    _, preset = write_tiny_preset(tmp_path, sleep_s=600.0)
    executor = LocalExecutor(workers=2)
    cells = [c for c in preset.cells if c.budget_steps > 0][:2]
    for cell in cells:
        executor.submit(synthetic_cell_for_tests, cell, tmp_path / "a" / cell.short_hash)
    assert executor.wait(timeout_s=2.0) == []  # both running (sleeping)
    workers = list(executor._pool._processes.values())
    assert len(workers) == 2 and all(w.is_alive() for w in workers)
    executor.shutdown()
    # The pool's own thread may be reaping a worker as shutdown joins it (both wait on the
    # pid): is_alive() can read True for a moment after the worker is gone (a CI run, once).
    deadline = time.monotonic() + 5.0
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executor.in_flight() == 0 and not any(w.is_alive() for w in workers)


def test_ray_and_local_pool_store_identical_results(tmp_path: Path, local_ray: None) -> None:
    _, preset = write_tiny_preset(tmp_path, fail_seed=0)
    snapshots = []
    # matrix17: 2 workers on the module's 1-CPU Ray marked 2 cells running, one queued in Ray
    with pytest.warns(UserWarning, match=r"--workers 2: the Ray cluster has CPUs for 1 cell"):
        ray_executor = RayExecutor(workers=2)
    assert ray_executor.capacity == 1
    for name, executor in (("local", LocalExecutor(workers=2)), ("ray", ray_executor)):
        with Store(tmp_path / f"{name}.sqlite") as store:
            summary = run_matrix(preset.cells, store, executor, cell_fn=synthetic_cell_for_tests,
                                 artifacts_root=tmp_path / f"{name}-artifacts",
                                 show_progress=False, heartbeat_s=0.5)
            assert len(summary.done) + len(summary.failed) == len(preset.cells)
            assert len(summary.failed) == 4  # the learner's seed-0 cells raise on purpose
            snapshots.append(_snapshot(store))
    local, remote = snapshots
    assert set(local) == {c.config_hash for c in preset.cells}
    assert local == remote
    assert ray.is_initialized(), "an executor must not shut down a Ray it did not start"


def test_one_writer_per_cell_artifacts_folder(tmp_path: Path) -> None:
    from benchmark.executors import _lock_artifacts, execute_cell

    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    folder = tmp_path / "artifacts" / cell.short_hash
    folder.mkdir(parents=True)
    (folder / "from_the_other_writer").write_text("still being written")
    held = _lock_artifacts(folder)  # another process's worker, still running this cell
    try:
        outcome = execute_cell(synthetic_cell_for_tests, cell, str(folder))
    finally:
        held.close()
    assert not outcome.ok and "another process is writing" in outcome.error
    assert (folder / "from_the_other_writer").exists()  # left alone
    outcome = execute_cell(synthetic_cell_for_tests, cell, str(folder))  # the lock is free now
    assert outcome.ok and sorted(p.name for p in folder.iterdir()) == ["synthetic_curve.json"]


def test_an_explicit_omp_num_threads_sets_the_workers_torch_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _env_threads() == 1
    for value in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert _env_threads() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _env_threads() is None


def test_a_workers_warnings_are_one_line_each(tmp_path: Path, capfd) -> None:
    """A cell's warning came out of a worker over two lines (message, then Python's echo of
    the source line), between the progress bar's redraws."""
    import dataclasses

    from benchmark.executors import LocalExecutor

    _, preset = write_tiny_preset(tmp_path)
    cell = preset.cells[0]
    cell = dataclasses.replace(cell, agent_config={**cell.agent_config,
                                                   "synthetic_warning": "slow\n   start"})
    executor = LocalExecutor(workers=1)
    try:
        executor.submit(synthetic_cell_for_tests, cell, tmp_path / "artifacts")
        outcomes = []
        while not outcomes:
            outcomes = executor.wait(5.0)
    finally:
        executor.shutdown()
    assert outcomes[0].ok, outcomes[0].error
    err = capfd.readouterr().err
    assert "insertbench: warning: slow start\n" in err
    assert "UserWarning" not in err and "warnings.warn" not in err, err


def test_a_ray_cell_on_the_matrix_host_ends_with_the_matrix(tmp_path: Path) -> None:
    """A Ray worker is the raylet's child, not the matrix's: after kill -9 of the matrix it
    trained on for more than 10 s, holding the cell's artifacts lock. Here a stand-in worker
    runs `execute_cell_for` for a stand-in matrix process, which is then killed."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    matrix = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from benchmark.executors import execute_cell_for
        from benchmark.store import process_host
        execute_cell_for((process_host(), {matrix.pid}),
                         lambda cell, path: time.sleep(60), None, {str(tmp_path / 'a')!r})
        """)])
    try:
        time.sleep(3.0)  # the worker imports and starts its cell
        assert worker.poll() is None
        matrix.send_signal(signal.SIGKILL)
        matrix.wait()
        assert worker.wait(timeout=10) == 1
    finally:
        for proc in (matrix, worker):
            if proc.poll() is None:
                proc.kill()


def test_workers_share_the_cores_this_process_may_use_not_the_hosts(monkeypatch):
    """A container given 2 of a host's 16 cores gave each of 2 workers 8 torch threads."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert worker_threads(2) == 1 and worker_threads(1) == 2 and worker_threads(8) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_threads(2) == 3


def test_a_ray_address_where_nothing_listens_is_one_error_at_once():
    """ray.init retried a wrong port for ever, silently, and no Ctrl-C reached it."""
    import socket

    from benchmark.executors import _check_listening  # RayExecutor's check before ray.init

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"nothing answers at the Ray address "
                                              f"ray://127.0.0.1:{port} .*is that its port"):
        _check_listening(f"ray://127.0.0.1:{port}")
