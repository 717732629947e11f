"""Running a preset's matrix: claim cells, hand them to an executor, store outcomes as they arrive.

Resuming is the normal case: a cell already ``done`` in the store is never run again; a cell
marked running by a live process elsewhere is skipped; a cell whose marker is stale (its process
was killed) is claimed again: `run_cell` continues its training from the last checkpoint when
the same code on the same host made it (`benchmark.cells._continue_or_clear`), and any other
cell function starts again from a clean artifacts folder.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.cells import Cell, CellFunction, run_cell
from benchmark.executors import Executor
from benchmark.store import Store, collect_provenance


@dataclass
class RunSummary:
    """What one `run_matrix` call did."""

    total: int
    already_done: int
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy_elsewhere: list[str] = field(default_factory=list)
    #: Cells recorded as failed before, left so (``retry_failed=False``).
    failed_before: list[str] = field(default_factory=list)


def default_store_path(preset_name: str) -> Path:
    """``runs/<preset>.sqlite`` relative to the working directory."""
    return Path("runs") / f"{preset_name}.sqlite"


def default_artifacts_root(store_path: Path) -> Path:
    """``<store folder>/<store stem>-artifacts``: one sub-folder per cell hash."""
    return store_path.parent / f"{store_path.stem}-artifacts"


@contextmanager
def _beating(store: Store, hashes: list[str], every_s: float, needed: bool) -> Iterator[None]:
    """While the block runs, refresh `hashes`' running markers every `every_s` from a thread
    with a connection of its own (if `needed`). An inline cell ran without heartbeats, so a
    second matrix process took it over as stale after `stale_after_s` and recorded it failed
    while it ran."""
    if not needed or not hashes:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        with Store(store.path, store.stale_after_s) as own:  # sqlite3 ties one to its thread
            while not stop.wait(every_s):
                try:
                    own.heartbeat(hashes)
                except sqlite3.Error:  # e.g. the store locked past its timeout: next beat
                    pass

    thread = threading.Thread(target=beat, name="matrix-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_matrix(
    cells: Sequence[Cell],
    store: Store,
    executor: Executor,
    *,
    cell_fn: CellFunction = run_cell,
    artifacts_root: Path,
    retry_failed: bool = True,
    heartbeat_s: float = 5.0,
    show_progress: bool = True,
) -> RunSummary:
    """Run every cell not yet done; return what happened.

    Args:
        cells: the preset's cells.
        store: where outcomes are committed (this process is its writer).
        executor: where cells run.
        cell_fn: the picklable function that executes a cell (`run_cell` by default).
        artifacts_root: each cell writes under ``artifacts_root/<config hash[:12]>`` (with Ray on
            several machines, a path every node can reach).
        retry_failed: run cells recorded as failed again.
        heartbeat_s: how often running markers are refreshed.
        show_progress: draw a progress bar over cells.
    """
    # Absolute: the store records each cell's folder, and `leaderboard submit --from-matrix`
    # reads it from wherever it runs; a relative path pointed into that working directory.
    artifacts_root = Path(os.path.abspath(artifacts_root))  # ".." folded: it outlives the cwd
    provenance = collect_provenance()
    statuses = store.statuses()
    todo = deque(
        c for c in cells
        if statuses.get(c.config_hash) != "done"
        and (retry_failed or statuses.get(c.config_hash) != "failed")
    )
    summary = RunSummary(total=len(cells), already_done=sum(
        statuses.get(c.config_hash) == "done" for c in cells), failed_before=[
        c.config_hash for c in cells
        if not retry_failed and statuses.get(c.config_hash) == "failed"])
    in_flight: dict[str, Cell] = {}
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        disable=not show_progress,
    )
    try:
        with progress:
            bar = progress.add_task("cells", total=len(todo), status="")
            last_beat = time.monotonic()
            while todo or in_flight:
                while todo and executor.in_flight() < executor.capacity:
                    cell = todo.popleft()
                    if not store.claim(cell, retry_failed=retry_failed):
                        # Finished by another run since the snapshot above, or running there.
                        status = store.status(cell.config_hash)
                        if status == "done":
                            summary.already_done += 1
                        elif status == "failed" and not retry_failed:
                            summary.failed_before.append(cell.config_hash)
                        else:
                            summary.busy_elsewhere.append(cell.config_hash)
                        progress.advance(bar)
                        continue
                    executor.submit(cell_fn, cell, artifacts_root / cell.short_hash)
                    in_flight[cell.config_hash] = cell
                # Until the next beat is due, not a whole period: a wait that returned early
                # and skipped its beat let markers age to ~2 periods (a live cell taken over).
                due_s = max(0.0, heartbeat_s - (time.monotonic() - last_beat))
                with _beating(store, list(in_flight), heartbeat_s, executor.blocks_in_wait):
                    outcomes = executor.wait(timeout_s=due_s)
                for outcome in outcomes:
                    # Out of in_flight once recorded: an interrupt while storing left the
                    # cell's running marker behind (the `finally` below releases in_flight's).
                    cell = in_flight[outcome.config_hash]
                    if outcome.result is not None:
                        try:
                            store.record_done(cell, outcome.result, provenance,
                                              outcome.wall_clock_s)
                            summary.done.append(cell.config_hash)
                        except ValueError as err:
                            store.record_failed(cell, f"invalid result: {err}", "", provenance,
                                                outcome.wall_clock_s)
                            summary.failed.append(cell.config_hash)
                    else:
                        store.record_failed(cell, outcome.error, outcome.traceback, provenance,
                                            outcome.wall_clock_s)
                        summary.failed.append(cell.config_hash)
                        # Escaped: "SAC [/w demos]" was read as a closing tag and ended the run.
                        progress.console.log(f"[red]failed[/red] {escape(cell.describe())}: "
                                             f"{escape(str(outcome.error))}")
                    del in_flight[outcome.config_hash]
                    progress.update(bar, advance=1, status=(
                        f"{len(summary.done)} done, {len(summary.failed)} failed"))
                    if show_progress and not progress.console.is_terminal:
                        # A bar off a terminal is drawn once, at the end: a log (nohup, tee,
                        # a batch job) stayed empty for the whole run (newuser21).
                        task = progress.tasks[0]
                        progress.console.print(
                            f"cell {task.completed:.0f}/{task.total:.0f} "
                            f"{'done' if outcome.result is not None else 'failed'}: "
                            f"{cell.describe()} ({outcome.wall_clock_s:.0f} s)",
                            markup=False, highlight=False, soft_wrap=True)
                if time.monotonic() - last_beat >= heartbeat_s:
                    with suppress(sqlite3.Error):  # locked past its timeout: the
                        store.heartbeat(in_flight)  # next beat (it ended the run, matrix19)
                    last_beat = time.monotonic()
    finally:
        executor.shutdown()
        for config_hash in in_flight:
            store.release(config_hash)
    return summary
