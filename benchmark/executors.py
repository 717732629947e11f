"""Executors run cells somewhere else and hand their outcomes back to the parent process.

Every executor runs the same picklable entry point, `execute_cell`, which never raises: an
exception inside a cell becomes a failed `CellOutcome` with its traceback. The parent process is
the only one that writes to the store.

- `LocalExecutor`: a process pool with the ``spawn`` start method (no forked MuJoCo/torch state);
  its workers die with the process that started them, ``kill -9`` included.
- `RayExecutor`: Ray remote tasks on a local or existing cluster (``ray.init(address=...)``).
- `InlineExecutor`: runs cells in the parent process, one at a time (debugging, profiling).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
import traceback
import warnings
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.cells import Cell, CellFunction, CellResult
from benchmark.store import process_host
from envs.tether import available_cores, children_ignore_sigint, die_with, die_with_parent


@dataclass
class CellOutcome:
    """What came back from running one cell: a result, or an error with its traceback."""

    config_hash: str
    result: CellResult | None
    error: str
    traceback: str
    wall_clock_s: float

    @property
    def ok(self) -> bool:
        """True when the cell produced a result."""
        return self.result is not None


def execute_cell(cell_fn: CellFunction, cell: Cell, artifacts_dir: str) -> CellOutcome:
    """Run one cell and capture any exception; the entry point of every executor's workers.

    Whatever an interrupted earlier attempt left in `artifacts_dir` is removed first (on the
    machine that runs the cell), so a restarted cell starts clean, unless ``cell_fn`` says it
    continues such an attempt itself (``resumes_artifacts``: `run_cell` continues a killed
    training run from its checkpoint). The folder has one writer at a
    time: an exclusive lock on `<artifacts_dir>.lock`, held while the cell runs and released by
    the kernel when its process dies; a second process finds it taken and fails the cell
    rather than write into the same folder.
    """
    start = time.perf_counter()
    lock = None
    try:
        path = Path(artifacts_dir)
        lock = _lock_artifacts(path)
        if path.exists() and not getattr(cell_fn, "resumes_artifacts", False):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        result = cell_fn(cell, path)
        if not isinstance(result, CellResult):
            raise TypeError(f"cell function returned {type(result).__name__}, not CellResult")
        result.validate(cell)
        return CellOutcome(cell.config_hash, result, "", "", time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - a failing cell must not stop the matrix
        return CellOutcome(
            cell.config_hash, None, f"{type(err).__name__}: {err}", traceback.format_exc(),
            time.perf_counter() - start,
        )
    finally:
        if lock is not None:
            lock.close()


def _lock_artifacts(path: Path):  # noqa: ANN202 - an open file holding the lock
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(f"{path}.lock", "a")  # noqa: SIM115 - held until the cell ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(
            f"another process is writing {path} (a worker of an earlier run still alive?); "
            "this cell was not started"
        ) from None
    return lock


class Executor(ABC):
    """Runs up to `capacity` cells at once; `wait` returns the ones that finished."""

    capacity: int
    #: Whether `wait` runs a cell in the calling thread, so that the matrix cannot refresh its
    #: running markers meanwhile (it does so from a thread of its own then).
    blocks_in_wait: bool = False

    @abstractmethod
    def submit(self, cell_fn: CellFunction, cell: Cell, artifacts_dir: Path) -> None:
        """Start a cell."""

    @abstractmethod
    def wait(self, timeout_s: float) -> list[CellOutcome]:
        """Block up to `timeout_s` for at least one outcome; return all that are ready."""

    @abstractmethod
    def in_flight(self) -> int:
        """Number of cells submitted and not yet returned by `wait`."""

    @abstractmethod
    def shutdown(self) -> None:
        """Release the workers; cells still running are abandoned."""


class InlineExecutor(Executor):
    """Runs each cell in the calling process when `wait` is called."""

    blocks_in_wait = True

    def __init__(self) -> None:
        self.capacity = 1
        self._queue: list[tuple[CellFunction, Cell, Path]] = []

    def submit(self, cell_fn: CellFunction, cell: Cell, artifacts_dir: Path) -> None:
        self._queue.append((cell_fn, cell, artifacts_dir))

    def wait(self, timeout_s: float) -> list[CellOutcome]:
        if not self._queue:
            return []
        cell_fn, cell, artifacts_dir = self._queue.pop(0)
        return [execute_cell(cell_fn, cell, str(artifacts_dir))]

    def in_flight(self) -> int:
        return len(self._queue)

    def shutdown(self) -> None:
        self._queue.clear()


def _env_threads() -> int | None:
    """OMP_NUM_THREADS as a positive int, or None when unset or not one."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def _init_worker(threads: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    import torch
    import tqdm

    # tqdm's default lock holds a multiprocessing semaphore, which a worker terminated on Ctrl-C
    # never unregisters: "resource_tracker: There appear to be 2 leaked semaphore objects"
    # after the one-line error. A worker's bars need no lock shared with other processes.
    tqdm.tqdm.set_lock(threading.RLock())

    from benchmark.cli_options import one_line_warning

    warnings.showwarning = one_line_warning  # as the parent's CLI prints them, not two lines

    torch.set_num_threads(threads)


#: The most local workers per core (as `train-async`'s actors).
MAX_WORKERS_PER_CORE = 4


def worker_threads(workers: int) -> int:
    """Torch intra-op threads of each of `workers` local workers: an equal share of the cores
    this process may run on (N workers at torch's default of one thread per core would
    oversubscribe N times; the host's count gave each of 2 workers in a 2-of-16-core container
    8). An explicit OMP_NUM_THREADS wins: on a loaded machine 2 threads per update ran 10-90x
    slower than 1 (`python -m benchmark.bench_throughput`, issue 14)."""
    return _env_threads() or max(1, available_cores() // workers)


class LocalExecutor(Executor):
    """A ``spawn`` process pool of `workers` processes.

    If a worker dies (segfault, out of memory) the pool breaks; the cells that were in flight are
    reported as failed with that reason, and a fresh pool serves the next submissions.
    """

    def __init__(self, workers: int = 1) -> None:
        cores = available_cores()
        if not 1 <= workers <= MAX_WORKERS_PER_CORE * cores:
            # Each worker is a process with its own torch and MuJoCo: --workers 1000 started
            # one per cell of the preset at once.
            raise ValueError(f"workers must be in [1, {MAX_WORKERS_PER_CORE * cores}] "
                             f"({MAX_WORKERS_PER_CORE} per core, {cores} here), got {workers}")
        self.capacity = workers
        self._context = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future[CellOutcome], Cell] = {}

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.capacity,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(worker_threads(self.capacity), os.getpid()),
            )
        return self._pool

    def submit(self, cell_fn: CellFunction, cell: Cell, artifacts_dir: Path) -> None:
        # The pool starts its workers in submit: a Ctrl-C while they imported printed 68-114
        # lines of their KeyboardInterrupt tracebacks under the one line.
        with children_ignore_sigint():
            try:
                future = self._ensure_pool().submit(execute_cell, cell_fn, cell,
                                                    str(artifacts_dir))
            except BrokenProcessPool:
                self._drop_pool()
                future = self._ensure_pool().submit(execute_cell, cell_fn, cell,
                                                    str(artifacts_dir))
        self._futures[future] = cell

    def _drop_pool(self) -> None:
        """Shut the pool down and forget it (a broken one merely forgotten left its semaphores
        to be reported as leaked at exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def wait(self, timeout_s: float) -> list[CellOutcome]:
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout_s, return_when=FIRST_COMPLETED)
        outcomes = []
        for future in done:
            cell = self._futures.pop(future)
            try:
                outcomes.append(future.result())
            except BrokenProcessPool as err:
                self._drop_pool()
                outcomes.append(CellOutcome(
                    cell.config_hash, None,
                    f"worker process died while this or a concurrent cell ran: {err}",
                    traceback.format_exc(), 0.0,
                ))
            except Exception as err:  # noqa: BLE001 - e.g. a result that cannot be unpickled
                outcomes.append(CellOutcome(
                    cell.config_hash, None, f"{type(err).__name__}: {err}",
                    traceback.format_exc(), 0.0,
                ))
        return outcomes

    def in_flight(self) -> int:
        return len(self._futures)

    def shutdown(self) -> None:
        if self._pool is not None and not self._futures:
            # Idle workers are joined here (~2.5 s), where a Ctrl-C or SIGTERM is one line; left
            # to the interpreter's exit, either printed a traceback there and exited 0.
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._pool is not None:
            # Cells still running (a Ctrl-C: the workers ignore SIGINT) are abandoned now: the
            # interpreter's exit joined the pool, so the command waited for every running cell
            # to finish, then dropped its work, and a second Ctrl-C left it hung. `_processes`
            # is the pool's own map of its workers (Python 3.14 has terminate_workers()).
            ended: set[int] = set()
            while live := [w for w in list((self._pool._processes or {}).values())
                           if w.pid not in ended]:  # again: the pool may replace a dead one
                for worker in live:
                    worker.terminate()
                for worker in live:
                    worker.join(timeout=5.0)
                    if worker.is_alive():  # a worker still starting up may miss the SIGTERM
                        worker.kill()
                        worker.join()
                    ended.add(worker.pid)
        self._drop_pool()
        self._futures.clear()


#: How long the Ray address check waits for a connection [s].
RAY_CONNECT_WAIT_S = 5.0


def _check_listening(address: str | None) -> None:
    """ConnectionError unless something listens at a ``host:port`` (or ``ray://host:port``)
    address: ray.init retried a wrong port for ever, silently, in C++ code that no Ctrl-C
    reached (SIGTERM took 18-37 s). ``auto`` and None: the RAY_ADDRESS Ray would read."""
    if address in (None, "auto"):  # ray.init reads RAY_ADDRESS then
        address = os.environ.get("RAY_ADDRESS")
    if address is None:
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_WAIT_S).close()
    except OSError as err:
        raise ConnectionError(f"nothing answers at the Ray address {address} "
                              f"({err.strerror or err}): is the cluster up, and is that its "
                              "port?") from None


class RayExecutor(Executor):
    """Ray remote tasks, `workers` at a time, each reserving `cpus_per_cell` CPUs.

    Args:
        workers: cells in flight at once.
        address: Ray cluster address (``auto``, ``ray://host:10001``); None starts a local
            cluster unless Ray is already initialised in this process.
        cpus_per_cell: CPUs each remote task reserves.
    """

    def __init__(self, workers: int = 1, address: str | None = None,
                 cpus_per_cell: float = 1.0) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError(
                "the ray executor needs Ray, which is the [ray] extra: pip install -e '.[ray]'"
            ) from None

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._ray = ray
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            _check_listening(address)
            # Ray installs its own SIGTERM handler (a crash dump, then death): the one it
            # replaced, the CLI's clean stop, is put back.
            sigterm = signal.getsignal(signal.SIGTERM)
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
            if callable(sigterm) and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, sigterm)
        # On a local Ray (no address), no more claimed at a time than its CPUs start: 6 workers
        # on 2 CPUs marked 4 cells running, 2 of them queued in Ray, and another runner on the
        # store skipped them. A cluster (--ray-address, RAY_ADDRESS) may grow (an autoscaler,
        # late nodes): there the queued cells are what asks for more.
        local = address is None and not os.environ.get("RAY_ADDRESS")
        fits = (int(ray.cluster_resources().get("CPU", 0.0) // cpus_per_cell)
                if local and cpus_per_cell > 0 else workers)
        self.capacity = max(1, min(workers, fits))
        if self.capacity < workers:
            warnings.warn(f"--workers {workers}: the Ray cluster has CPUs for {self.capacity} "
                          f"cell(s) at a time ({cpus_per_cell:g} CPU a cell); running "
                          f"{self.capacity}", UserWarning, stacklevel=2)
        self._remote = ray.remote(num_cpus=cpus_per_cell, max_retries=0)(execute_cell_for)
        self._driver = (process_host(), os.getpid())
        self._refs: dict[Any, Cell] = {}

    def submit(self, cell_fn: CellFunction, cell: Cell, artifacts_dir: Path) -> None:
        ref = self._remote.remote(self._driver, cell_fn, cell, str(artifacts_dir))
        self._refs[ref] = cell

    def wait(self, timeout_s: float) -> list[CellOutcome]:
        if not self._refs:
            return []
        refs = list(self._refs)
        ready, rest = self._ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        outcomes = []
        for ref in ready:
            cell = self._refs.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as err:  # noqa: BLE001 - worker died or task raised in Ray itself
                outcomes.append(CellOutcome(
                    cell.config_hash, None, f"{type(err).__name__}: {err}",
                    traceback.format_exc(), 0.0,
                ))
        return outcomes

    def in_flight(self) -> int:
        return len(self._refs)

    def shutdown(self) -> None:
        for ref in self._refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 - the task may have finished meanwhile
                continue
        self._refs.clear()
        if self._owns_ray:
            self._ray.shutdown()


def execute_cell_for(driver: tuple[str, int], cell_fn: CellFunction, cell: Cell,
                     artifacts_dir: str) -> CellOutcome:
    """`execute_cell` in a Ray worker for the matrix process `driver` (host name, pid), which
    it ends with when on that host. A worker is the child of Ray's raylet, not of the matrix:
    after kill -9 of the matrix it trained on for more than 10 s, holding the cell's artifacts
    lock, so a rerun failed that cell. (Ray's own processes still take a minute to go.)"""
    host, pid = driver
    # The host's PID namespace too (`process_host`): a worker in a container of the driver's
    # hostname took the driver's PID for a dead process and ended at once.
    if host == process_host() and pid not in _WATCHED:  # a worker runs many cells
        _WATCHED.add(pid)
        die_with(pid)
    return execute_cell(cell_fn, cell, artifacts_dir)


#: Matrix processes this Ray worker already watches.
_WATCHED: set[int] = set()


def make_executor(kind: str, workers: int = 1, ray_address: str | None = None) -> Executor:
    """Build an executor by name: ``local`` (default), ``ray`` or ``inline``."""
    if ray_address is not None and kind != "ray":
        raise ValueError(f"a Ray address needs the ray executor, not {kind!r}")
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address=ray_address)
    if kind == "inline":
        if workers != 1:  # it was silently one cell at a time
            raise ValueError(f"the inline executor runs one cell at a time in this process; "
                             f"workers must be 1, got {workers} (use --executor local)")
        return InlineExecutor()
    raise ValueError(f"unknown executor {kind!r}; choose local, ray or inline")
