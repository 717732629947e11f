"""``insertbench matrix``: run, inspect and report a preset's benchmark matrix.

Also runnable as ``python -m benchmark.matrix_cli``.
"""

from __future__ import annotations

import math
import shlex
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer._click.exceptions import ClickException  # Typer >= 0.29 vendors Click

from benchmark.cells import load_cell_function, run_cell
from benchmark.cli_options import check_output_dir, check_writable, file_in_the_way
from benchmark.executors import make_executor
from benchmark.matrix import default_artifacts_root, default_store_path, run_matrix
from benchmark.preset import (
    OfflinePresetGiven,
    PresetError,
    available_presets,
    check_runnable,
    check_task_versions,
    load_offline_preset,
    load_preset,
    offline_presets,
)
from benchmark.store import (
    DEFAULT_STALE_AFTER_S,
    Store,
    check_not_foreign,
    connect_read_only,
)
from benchmark.store import open_store as checked_store

matrix_app = typer.Typer(
    name="matrix",
    help="Run, inspect and report benchmark matrices (presets in benchmark/presets).",
    no_args_is_help=True,
)
console = Console()

PresetArg = Annotated[str, typer.Argument(help="Preset name (see `matrix list`) or TOML path.")]


#: The first bytes of every SQLite database file.
_SQLITE_HEADER = b"SQLite format 3\0"
#: The longest --heartbeat [s]: a day (a run's markers go stale at --stale-after, longer still).
HEARTBEAT_MAX_S = 86_400.0


def _check_store(path: Path | None) -> Path | None:
    """A store is a SQLite file: a folder ended in SQLite's "unable to open database file",
    another file in "DatabaseError: file is not a database", a path under a file in
    "FileExistsError: [Errno 17] File exists"."""
    if path is None:
        return path
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give the SQLite file, e.g. "
                                 f"{path / 'results.sqlite'}")
    under = file_in_the_way(path.parent)
    if under is not None:
        raise typer.BadParameter(f"{path} lies under {under}, a file")
    if path.exists() and not path.is_file():  # a FIFO blocked SQLite's open past any signal
        raise typer.BadParameter(f"{path} is not a regular file (a pipe, socket or device); "
                                 "give the SQLite file")
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise typer.BadParameter(f"{path} is not a matrix store (a SQLite file)")
        db = None
        try:
            db = connect_read_only(path)  # a WAL store in a read-only folder: as immutable
            check_not_foreign(db, path)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
        except sqlite3.OperationalError as err:
            raise typer.BadParameter(f"{path}: the store cannot be read ({err})") from None
        except sqlite3.DatabaseError as err:  # a cut-off copy: "disk image is malformed"
            raise typer.BadParameter(f"{path} is a damaged matrix store ({err})") from None
        finally:
            if db is not None:
                db.close()
    return path


def open_store(path: Path, **kwargs: Any) -> Store:
    """The store at ``path``, or one error line naming it (`benchmark.store.open_store`)."""
    try:
        return checked_store(path, **kwargs)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--store") from None


StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="SQLite store [default: runs/<preset>.sqlite].",
                              callback=_check_store)
]
VersionOpt = Annotated[list[int] | None, typer.Option(
    "--task-version", help="The preset's tasks at this task version instead of their own "
    "(repeatable: each task at each version, side by side on the same seeds; `status` and "
    "`report` name the versions `run` ran); the store and report default to "
    "runs/<preset>-v<N>... .")]


def _own_store_hint(preset: str, task_versions: list[int] | None) -> str:
    """Where `--task-version` cells may have gone instead of their default store: the preset's
    own store, which `matrix run ... --store` reuses as the README shows (its status read
    "64 cells pending", its report said to run them all again; newuser21). "" otherwise."""
    if not task_versions:
        return ""
    own = default_store_path(load_preset(preset).name)
    if not own.exists():
        return ""
    return (f"; the preset's own store {own} may hold them (`matrix run --task-version ... "
            f"--store` puts them there): add --store {shlex.quote(str(own))}")


def _load(preset: str, task_versions: list[int] | None = None):  # noqa: ANN202 - a Preset
    if task_versions:
        try:  # checked before loading, so the error names the option, not PRESET
            check_task_versions(task_versions)
        except PresetError as err:
            raise typer.BadParameter(str(err), param_hint="--task-version") from None
    try:
        spec = load_preset(preset, task_versions or ())
    except OfflinePresetGiven as err:  # its "see `matrix run --help`" said nothing of it
        raise ClickException(str(err)) from None
    except PresetError as err:
        raise typer.BadParameter(str(err), param_hint="PRESET") from None
    if task_versions:
        import gymnasium as gym

        import envs  # noqa: F401  (registers the task IDs)

        missing = sorted({c.task_id for c in spec.cells} - set(gym.registry))
        if missing:
            raise typer.BadParameter(f"{missing} are not registered task IDs",
                                     param_hint="--task-version")
    return spec


@matrix_app.command("list")
def list_presets() -> None:
    """List the shipped presets with their number of cells."""
    matrices, offline = available_presets(), offline_presets()
    width = max(map(len, [*matrices, *offline]))
    # One line a preset, in a narrow terminal or a pipe too (`matrix list | grep pixels`).
    for name in matrices:
        preset = load_preset(name)
        console.print(f"{name:{width}s} {len(preset.cells):5d} cells  {preset.description}",
                      soft_wrap=True, markup=False)
    for name in offline:  # not matrices: bench_offline runs them
        console.print(f"{name:{width}s}     offline  {load_offline_preset(name)['description']} "
                      f"(python -m benchmark.bench_offline --preset {name} --out DIR)",
                      soft_wrap=True, markup=False)


@matrix_app.command("run")
def run(
    preset: PresetArg,
    workers: Annotated[int, typer.Option(
        help="Cells in flight at once (local: at most 4 per core; ray: its CPUs).")] = 1,
    executor: Annotated[str, typer.Option(
        help="local (spawn pool), ray (needs the [ray] extra) or inline.")] = "local",
    store: StoreOpt = None,
    artifacts: Annotated[Path | None, typer.Option(
        help="Artifacts root [default: <store dir>/<store stem>-artifacts].")] = None,
    ray_address: Annotated[str | None, typer.Option(
        help="With --executor ray: the cluster's address (auto, ray://HOST:10001); "
             "default starts a local Ray.")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Run failed cells again.")] = True,
    stale_after: Annotated[float, typer.Option(
        help="Seconds without heartbeat before a running marker of another host is "
             "reclaimed (on this host: when its process has ended).")
    ] = DEFAULT_STALE_AFTER_S,
    heartbeat: Annotated[float, typer.Option(help="Heartbeat period in seconds.")] = 5.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    agent: Annotated[list[str] | None, typer.Option(
        help="Run only the cells of this agent (registry name or report label; repeatable).")
    ] = None,
    cell_fn: Annotated[str | None, typer.Option(
        hidden=True, help="module:function replacing benchmark.cells:run_cell (tests).")] = None,
    task_version: VersionOpt = None,
) -> None:
    """Run every cell of PRESET that is not done yet (resumes after any interruption)."""
    # Past threading.TIMEOUT_MAX (~9.2e9 s) a wait overflowed once the run had started.
    if not (math.isfinite(heartbeat) and 0 < heartbeat <= HEARTBEAT_MAX_S):
        raise typer.BadParameter(f"must be a number of seconds in (0, {HEARTBEAT_MAX_S:,.0f}], "
                                 f"got {heartbeat}", param_hint="--heartbeat")
    if not (math.isfinite(stale_after) and stale_after > heartbeat):
        # A marker reclaimed between two heartbeats would let a second runner redo a live cell.
        raise typer.BadParameter(
            f"must be a finite number of seconds above --heartbeat ({heartbeat}), "
            f"got {stale_after}", param_hint="--stale-after")
    spec = _load(preset, task_version)
    cells = _select_agents(spec.cells, agent) if agent else spec.cells
    store_path = _check_store(store or default_store_path(spec.name))  # the default too
    function = load_cell_function(cell_fn) if cell_fn else run_cell
    if function is run_cell:
        try:
            check_runnable(spec.cells)
        except PresetError as err:
            raise typer.BadParameter(str(err), param_hint="PRESET") from None
    artifacts_root = artifacts or default_artifacts_root(store_path)
    # Before any cell: an --artifacts that is a file, lies under one or cannot be written
    # failed every cell in turn (FileExistsError, NotADirectoryError, PermissionError).
    check_output_dir(artifacts_root, "--artifacts")
    for path, option in ((store_path.parent, "--store"), (artifacts_root, "--artifacts")):
        check_writable(path, option)
    # The executor first: a missing optional dependency (Ray) must not leave an empty store.
    try:
        pool = make_executor(executor, workers, ray_address)
    except ValueError as err:  # the user's --executor / --workers / --ray-address, not a crash
        raise typer.BadParameter(str(err), param_hint="--executor / --workers") from None
    except ConnectionError as err:  # nothing at the Ray address: the user's, not a crash
        raise typer.BadParameter(str(err), param_hint="--ray-address") from None
    try:
        db = open_store(store_path, stale_after_s=stale_after)
    except BaseException:
        pool.shutdown()
        raise
    from benchmark.learned_reward import cells_with_another_classifier

    with db:
        done = {h for h, state in db.statuses().items() if state == "done"}
        other = cells_with_another_classifier(cells, done, artifacts_root)
        if other:  # "already done" with another classifier: two pooled as one method (serl23)
            pool.shutdown()
            raise typer.BadParameter(
                f"{len(other)} done cell(s) of {spec.name} in {store_path} were rewarded by "
                f"another reward classifier than the one {other[0].env_kwargs['reward_classifier']}"
                " names from this folder (its files differ), e.g. "
                f"{other[0].describe()}: run from the folder they ran in (a relative path), or "
                "into a new --store (a classifier trained again in place)",
                param_hint="PRESET")
        summary = run_matrix(
            cells, db, pool,
            cell_fn=function,
            artifacts_root=artifacts_root,
            retry_failed=retry_failed, heartbeat_s=heartbeat, show_progress=progress,
        )
    console.print(
        f"{spec.name}: {summary.already_done} already done, {len(summary.done)} finished now, "
        f"{len(summary.failed)} failed"
        + (f", {len(summary.failed_before)} failed before (not retried)"
           if summary.failed_before else "")
        + f", {len(summary.busy_elsewhere)} running elsewhere (of {summary.total}); "
        f"store {store_path}", soft_wrap=True,  # one line in a log too
        markup=False,  # a path's "[v2]" was dropped, and "a[/]b" ended a finished run in error
    )
    if summary.busy_elsewhere:  # not this run's to finish: said, as the run did not wait
        busy = len(summary.busy_elsewhere)
        console.print(f"{busy} cell{' was' if busy == 1 else 's were'} running in another "
                      "`matrix run` on this store, which this run did not wait for: `matrix "
                      "status` shows them; run again to take over any whose runner has died",
                      soft_wrap=True, markup=False)
    # Failed cells left failed are not a finished matrix either: --no-retry-failed read as
    # "0 failed", status 0, to a script, while `matrix status` said 1 failed.
    if summary.failed or summary.failed_before:
        raise typer.Exit(1)


def _select_agents(cells, wanted: list[str]):  # noqa: ANN202 - list[Cell] in, list[Cell] out
    known = {c.agent for c in cells} | {c.method for c in cells}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise typer.BadParameter(
            f"{unknown} not in this preset; its agents: {sorted(known)}", param_hint="--agent"
        )
    return [c for c in cells if c.agent in wanted or c.method in wanted]


@matrix_app.command("status")
def status(
    preset: PresetArg,
    store: StoreOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List cells.")] = False,
    task_version: VersionOpt = None,
) -> None:
    """Show done / running / failed / pending cells of PRESET."""
    from benchmark.report import cells_on_another_task_version, collect

    spec = _load(preset, task_version)
    store_path = _check_store(store or default_store_path(spec.name))  # the default too
    if not store_path.exists():
        if store is not None:  # a typo read "4 cells pending", exit 0
            raise typer.BadParameter(f"no store at {store_path}; `"
                                     f"{_run_command(preset, task_version, store)}` "
                                     "makes it", param_hint="--store")
        try:  # "4 cells pending" of a preset `matrix run` refuses: they never would run
            check_runnable(spec.cells)
        except PresetError as err:
            raise typer.BadParameter(str(err), param_hint="PRESET") from None
        console.print(f"{spec.name}: no store at {store_path}; {len(spec.cells)} cells pending"
                      f"{_own_store_hint(preset, task_version)}", soft_wrap=True, markup=False)
        return
    with open_store(store_path, read_only=True) as db:
        _check_store_of(db, spec, store_path, preset, task_version)
        statuses = db.statuses()
        markers = {m.config_hash: m for m in db.running()}
        live = {h: m for h, m in markers.items() if not db.is_marker_stale(m)}
        rows = {r["config_hash"]: r for r in db.cell_rows()}
        metrics, _ = collect(spec, db)
    states: dict[str, list] = {"done": [], "running": [], "failed": [], "pending": [],
                               "interrupted": []}
    for cell in spec.cells:
        state = statuses.get(cell.config_hash)
        if state == "done":
            states["done"].append(cell)
        elif cell.config_hash in live:
            states["running"].append(cell)
        elif state == "failed":
            states["failed"].append(cell)
        elif cell.config_hash in markers:  # its run was killed (kill -9, a lost host)
            states["interrupted"].append(cell)
        else:
            states["pending"].append(cell)
    if not states["interrupted"]:
        del states["interrupted"]
    console.print(f"{spec.name} ({store_path}): " + ", ".join(
        f"{len(v)} {k}" for k, v in states.items()) + f" of {len(spec.cells)}", soft_wrap=True,
        markup=False)
    if states.get("interrupted"):
        # They read "pending", as if never started: `matrix run` takes them over and resumes
        # what each checkpointed.
        count = len(states["interrupted"])
        them = "it" if count == 1 else "them"
        console.print(f"{count} cell{' was' if count == 1 else 's were'} interrupted: the run "
                      f"that claimed {them} stopped without recording a result; `"
                      f"{_run_command(preset, task_version, store)}` resumes "
                      f"{them}", soft_wrap=True, markup=False)
    # The report's warning, here too: a resumed store reuses cells run before a task changed.
    moved = Counter(c.task_label or c.task_id for c in cells_on_another_task_version(spec, metrics))
    for task, count in moved.items():
        done = sum((c.task_label or c.task_id) == task for c in states["done"])
        console.print(f"[yellow]WARNING: {escape(task)}: {count} of its {done} done cells were "
                      "evaluated on another version of the task than this code builds (their "
                      "episodes' task version key differs); their numbers are not comparable "
                      "with the current task's: run the preset into a new store.[/yellow]",
                      soft_wrap=True)
    if not verbose:
        for cell in states["failed"]:
            console.print(f"[red]failed[/red] {escape(cell.describe())}: "
                          f"{escape(str(rows[cell.config_hash]['error']))}")
        return
    table = Table("state", "cell", "hash", "detail")
    for state, cells in states.items():
        for cell in cells:
            detail = ""
            if state in ("running", "interrupted"):
                marker = markers[cell.config_hash]
                detail = f"pid {marker.pid} on {marker.hostname}"
            elif state == "failed":
                detail = rows[cell.config_hash]["error"] or ""
            table.add_row(state, escape(cell.describe()), cell.short_hash, escape(detail))
    console.print(table)


@matrix_app.command("report")
def report(
    preset: PresetArg,
    store: StoreOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="Output folder [default: <store dir>/<store stem>-report, "
             "runs/<preset>-report for the default store; <store stem>-<preset>-report for a "
             "store named otherwise; with --task-version, the versions before -report].")] = None,
    reps: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs (1 or 2 gave "
                                      "'intervals' that missed their own point).",
                                      min=100, max=100_000)] = 2000,
    task_version: VersionOpt = None,
    artifacts: Annotated[Path | None, typer.Option(
        help="The run's artifacts root, if it gave `matrix run` one [default: <store dir>/"
             "<store stem>-artifacts]: each cell's run.json names the reward classifier it "
             "was rewarded by.")] = None,
) -> None:
    """Write report.md (+ PNG) and a self-contained report.html for PRESET."""
    from benchmark.report import REPORT_FIGURES, write_report

    # Was FileExistsError: [Errno 17] after the bootstrap; and a folder of the user's own
    # files had its report.md replaced without a word. A folder of its figures alone is a
    # report interrupted before report.md (they come first): its own.
    check_output_dir(out, "--out", own="report.md", what="report", ignore=REPORT_FIGURES)
    if artifacts is not None and not artifacts.is_dir():  # a typo checked nothing (diff34)
        raise typer.BadParameter(f"{artifacts} is not a folder (the artifacts root `matrix run "
                                 "--artifacts` was given)", param_hint="--artifacts")
    spec = _load(preset, task_version)
    store_path = _check_store(store or default_store_path(spec.name))  # the default too
    if not store_path.exists():
        hint = "" if store else _own_store_hint(preset, task_version)
        raise typer.BadParameter(
            f"no store at {store_path}"
            + (hint or f"; run `{_run_command(preset, task_version, store)}` first"),
            param_hint="--store" if store else "PRESET",
        )
    with open_store(store_path, read_only=True) as db:
        # Another preset's store (or --task-version without it) held none of these cells: the
        # empty report went to that store's report folder, over the other preset's report.
        _check_store_of(db, spec, store_path, preset, task_version)
        ours = {cell.config_hash for cell in spec.cells}
        if not db.statuses().keys() & ours:
            running = sum(m.config_hash in ours for m in db.running()
                          if not db.is_marker_stale(m))
            raise typer.BadParameter(
                f"{store_path} holds no finished cell of {spec.name} (of {len(spec.cells)})"
                + (f" yet: {running} running; report when one has finished" if running else
                   f"; run `{_run_command(preset, task_version, store_path)}` first"),
                param_hint="PRESET")
        out = out or _report_dir(store_path, task_version, spec.name)
        try:  # before the bootstrap: `--out /proc/x` failed after it, a bare FileNotFoundError
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise typer.BadParameter(f"{out} cannot be created: {err.strerror}",
                                     param_hint="--out") from None
        files = write_report(spec, db, out, reps=reps, artifacts_root=artifacts)
    for line in files.markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("WARNING:"):  # not only in a file the user may not open
            console.print(f"[yellow]{escape(line)}[/yellow]", soft_wrap=True)
    console.print(f"wrote {files.markdown} and {files.html}", soft_wrap=True, markup=False)


def _check_store_of(db, spec, store_path: Path, preset: str,  # noqa: ANN001 - Store, Preset
                    task_versions: list[int] | None) -> None:
    """BadParameter where the store holds cells, none of them the preset's (another preset's
    store, or its other task versions'): `status` called all of them pending, exit 0."""
    ours = {cell.config_hash for cell in spec.cells}
    held = db.statuses().keys() | {m.config_hash for m in db.running()}
    if held and not held & ours:
        versions = " ".join(f"--task-version {v}" for v in task_versions or ())
        raise typer.BadParameter(
            f"{store_path} holds {len(held)} cells, none of {spec.name}"
            + (f" {versions}" if versions else "")
            + ": another preset's store, or other task versions'? Give the store "
            f"`{_run_command(preset, task_versions)}` writes (--store)", param_hint="PRESET")


def _run_command(preset: str, task_versions: list[int] | None,
                 store: Path | str | None = None) -> str:
    """The `matrix run` command that makes the store `status` or `report` did not find, quoted
    for a shell (a path with a space, pasted as printed, ran another command: diff24)."""
    return " ".join([f"insertbench matrix run {shlex.quote(str(preset))}",
                     *(f"--task-version {v}" for v in task_versions or ()),
                     *([f"--store {shlex.quote(str(store))}"] if store is not None else [])])


def _report_dir(store_path: Path, task_versions: list[int] | None, preset_name: str) -> Path:
    """``<store dir>/<store stem>[-<preset>][-vA-vB]-report``: beside its store, so that a
    report of another store does not overwrite the default one; named for the preset when the
    store is not named for it (two presets sharing one store wrote one folder, the second
    replacing the first) and for the task versions it shows (as `load_preset` names the
    preset): a --task-version report of the preset's own store replaced the preset's report."""
    suffix = "".join(f"-v{v}" for v in sorted(set(task_versions or ())))
    stem, base = store_path.stem.removesuffix(suffix), preset_name.removesuffix(suffix)
    if stem != base:
        stem = f"{stem}-{base}"
    return store_path.parent / f"{stem}{suffix}-report"


if __name__ == "__main__":  # `python -m benchmark.matrix_cli ...` = `insertbench matrix ...`
    import sys

    from benchmark.cli import app

    app(["matrix", *sys.argv[1:]])
