"""The results store: one SQLite database per matrix (WAL mode).

Tables:
    cells        one row per finished cell (status ``done`` or ``failed``), keyed by config hash,
                 with the cell's canonical config, code version, library versions and artifacts
    evaluations  the learning-curve evaluations and the final one, per cell
    episodes     raw per-episode records of every evaluation (the source of truth for metrics)
    running      markers of cells in progress: owner pid, host and heartbeat

A finished cell is written in one transaction (cell row, evaluations, episodes, marker removal),
so a process killed at any moment leaves either the whole cell or none of it. A marker whose owner
is gone (same host, pid not alive) or whose heartbeat is older than ``stale_after_s`` is stale and
is reclaimed by the next run, which restarts that cell from scratch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmark.cells import (
    EPISODE_FIELDS,
    MAX_STORED_MAGNITUDE,
    Cell,
    CellResult,
    canonical_json,
)
from envs.tether import pid_alive, process_started_at

SCHEMA_VERSION = 2  # 2: episodes carry `envs.episode.EpisodeRecord` names
DEFAULT_STALE_AFTER_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    config_hash TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    config_json TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_label TEXT NOT NULL,
    agent TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    budget_steps INTEGER NOT NULL,
    env_steps INTEGER,
    train_wall_clock_s REAL,
    cell_wall_clock_s REAL,
    suite_version TEXT,
    suite_commit TEXT,
    mujoco_version TEXT,
    torch_version TEXT,
    python_version TEXT,
    hostname TEXT,
    artifacts_path TEXT,
    info_json TEXT,
    error TEXT,
    traceback TEXT,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    config_hash TEXT NOT NULL REFERENCES cells(config_hash) ON DELETE CASCADE,
    eval_index INTEGER NOT NULL,
    is_final INTEGER NOT NULL,
    env_steps INTEGER NOT NULL,
    wall_clock_s REAL NOT NULL,
    PRIMARY KEY (config_hash, eval_index)
);
CREATE TABLE IF NOT EXISTS episodes (
    config_hash TEXT NOT NULL REFERENCES cells(config_hash) ON DELETE CASCADE,
    eval_index INTEGER NOT NULL,
    episode_index INTEGER NOT NULL,
    seed INTEGER,
    success INTEGER NOT NULL,
    steps_to_success INTEGER,
    time_to_success_s REAL,
    final_distance_mm REAL,
    peak_force_n REAL,
    extra_json TEXT,
    PRIMARY KEY (config_hash, eval_index, episode_index)
);
CREATE TABLE IF NOT EXISTS running (
    config_hash TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    description TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Provenance:
    """Code and library versions recorded with every cell."""

    suite_version: str
    suite_commit: str
    mujoco_version: str
    torch_version: str
    python_version: str
    hostname: str


@dataclass(frozen=True)
class RunningMarker:
    """A cell some process claims to be running."""

    config_hash: str
    pid: int
    hostname: str
    started_at: float
    heartbeat_at: float
    description: str


def suite_commit(mark_dirty: bool = False) -> str | None:
    """The git commit of this checkout of the suite (None outside a git checkout of its own:
    installed inside another repository, git answered with that one's commit), with
    ``-dirty-<digest>`` appended where ``mark_dirty`` and tracked files differ from it: the
    digest is of the difference (`git diff HEAD`), so two trees edited differently on one
    commit read as two codes (as one "-dirty", a report pooled their cells: matrix20)."""
    root = Path(__file__).resolve().parent.parent
    try:
        top, head = subprocess.run(["git", "rev-parse", "--show-toplevel", "HEAD"], cwd=root,
                                   capture_output=True, text=True, timeout=10,
                                   check=True).stdout.splitlines()
        if Path(top).resolve() != root:  # installed inside another repository: not ours
            return None
        dirty = mark_dirty and subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        if dirty:
            diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=root,
                                  capture_output=True, timeout=30, check=True).stdout
            return f"{head}-dirty-{hashlib.sha256(diff).hexdigest()[:12]}"
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return head


def collect_provenance() -> Provenance:
    """Versions of the suite (package version and git commit), MuJoCo, torch and Python.

    Library versions come from package metadata so recording them imports neither library.
    """
    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "not installed"

    return Provenance(
        suite_version=version("insertbench"),
        suite_commit=suite_commit(mark_dirty=True) or "unknown",
        mujoco_version=version("mujoco"),
        torch_version=version("torch"),
        python_version=platform.python_version(),
        hostname=socket.gethostname(),
    )


def _schema_version(db: sqlite3.Connection) -> str | None:
    """The store schema a database records (None: no schema_version row)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else str(row[0])


def check_not_foreign(db: sqlite3.Connection, path: Path) -> None:
    """ValueError if the SQLite database ``db`` (the file ``path``) holds tables but not a
    store's ``meta`` table with its ``schema_version`` row: another program's database, which
    opening it as a store would have added our tables to, silently. (A ``meta`` table alone
    is a common name: a foreign one got our schema_version row and tables, then failed.)"""
    tables = sorted(row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"))
    if not tables:
        return
    try:
        version = _schema_version(db)
    except sqlite3.Error:  # no meta table, or one without our columns
        version = None
    if version is None:
        raise ValueError(f"{path} is a SQLite database of something else (tables: "
                         f"{', '.join(tables)}), not a matrix store; use a new store file")


#: Seconds a store waits for another process's write lock before giving up.
STORE_LOCK_WAIT_S = 60.0


#: Write-ahead logs this process has warned of (`connect_read_only`).
_LOGS_WARNED_OF: set[Path] = set()


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store ``path``. SQLite reads a WAL-mode database
    read-only only where it can open or make the log's index beside it; where it cannot (a
    folder the reader may not write), the file is read as immutable: what its last checkpoint
    holds (a matrix checkpoints its log when it closes)."""
    uri = path.resolve().as_uri()

    def connect(mode: str) -> sqlite3.Connection:
        return sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=STORE_LOCK_WAIT_S,
                               isolation_level=None)

    db = connect("mode=ro")
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:  # "unable to open database file": no index to be had
        db.close()
    except sqlite3.Error:  # damaged: the caller names it
        db.close()
        raise
    log = path.with_name(path.name + "-wal")
    if log.is_file() and log.stat().st_size > 0 and log.resolve() not in _LOGS_WARNED_OF:
        _LOGS_WARNED_OF.add(log.resolve())  # a command opens a store 2-3 times: one warning
        # A run killed, or still running, left cells in the log that an immutable read
        # cannot see: the store read as an older state, with no word of it.
        warnings.warn(f"{path}: its write-ahead log ({log.stat().st_size:,} bytes) cannot be "
                      "read without write access to its folder: this shows the state last "
                      "merged into the store file; cells finished since may be missing",
                      UserWarning, stacklevel=2)
    return connect("immutable=1")


def process_host() -> str:
    """Where this process's PID means something: the hostname and, on Linux, the boot and the
    PID namespace. Two containers with one hostname (`--uts host`), or two hosts of one name
    sharing a store, do not see each other's PIDs: a second `matrix run` took the first's
    live cells for stale ones (its PIDs "not alive") and failed them."""
    name = socket.gethostname()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux: the hostname alone, as before
        return name
    return f"{name} (boot {boot}, pid namespace {namespace})"


class Store:
    """SQLite results store of one matrix. The matrix's parent process is its only writer.

    Args:
        path: database file; parent folders are created.
        stale_after_s: a running marker whose heartbeat is older than this is reclaimed.
        read_only: open an existing store for reading only (`matrix status`, `report`): a
            store in a folder its reader cannot write (a colleague's, an archive) could not be
            opened, since SQLite keeps its write-ahead log beside it.
    """

    def __init__(self, path: str | Path, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.stale_after_s = stale_after_s
        self.hostname = process_host()
        if read_only:
            self._db = connect_read_only(self.path)
            try:
                check_not_foreign(self._db, self.path)
                found = _schema_version(self._db)
            except (ValueError, sqlite3.Error):
                self._db.close()
                raise
            self._db.row_factory = sqlite3.Row
            self._check_schema(found)
            self._check_tables()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=STORE_LOCK_WAIT_S, isolation_level=None)
        try:  # before anything is written (WAL mode persists in the file)
            check_not_foreign(self._db, self.path)
        except ValueError:
            self._db.close()
            raise
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # The tables and the schema_version row in one transaction: a file with our tables and
        # no row (a crash between them) would read as another program's database.
        self._db.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} INSERT OR IGNORE INTO meta(key, value) "
            f"VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
        self._check_schema(_schema_version(self._db))
        self._check_tables()

    def _check_schema(self, found: str | None) -> None:
        if not str(found).isdigit():  # int('abc') was a ValueError naming no file
            self._db.close()
            raise ValueError(f"{self.path} has a damaged schema_version ({found!r}); run the "
                             "matrix into a new store")
        if int(found) != SCHEMA_VERSION:
            self._db.close()
            raise ValueError(
                f"{self.path} has store schema {found}, this InsertBench writes schema "
                f"{SCHEMA_VERSION}; run the matrix into a new store"
            )

    def _check_tables(self) -> None:
        # A read-only store is not given the tables a writer would create: one with its meta
        # table alone ended `matrix status` in "no such table: cells".
        found = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in ("cells", "evaluations", "episodes", "running") if t not in found]
        if missing:
            self._db.close()
            raise ValueError(f"{self.path} lacks the {', '.join(missing)} table(s): a damaged "
                             "store; run the matrix into a new store")
        # A dropped column ended `report` in "KeyError: 'info_json'"; damage past the first
        # pages (a cut-off copy) let `run` resume into it and `report` end in SQLite's
        # "database disk image is malformed", and text in a number's column (env_steps 'abc',
        # a heartbeat 'y') in a TypeError, naming no file (matrix22).
        lacking = [f"{table}.{column}" for table, columns in _schema_columns().items()
                   for column in columns
                   if column not in {row[1] for row in self._db.execute(
                       f"PRAGMA table_info({table})")}]
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
            if problems == ["ok"] and not lacking:
                problems = [f"text in {table}.{column}"
                            for table, columns in _schema_columns().items()
                            for column, kind in columns.items() if kind in ("INTEGER", "REAL")
                            and self._db.execute(f"SELECT 1 FROM {table} WHERE typeof({column}) "
                                                 "IN ('text', 'blob') LIMIT 1").fetchone()
                            ] or ["ok"]
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if lacking or problems != ["ok"]:
            self._db.close()
            what = (f"lacks the column(s) {', '.join(lacking)}" if lacking else
                    f"is damaged ({' '.join('; '.join(problems).split())})")
            raise ValueError(f"{self.path} {what}; run the matrix into a new store")

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: all statements inside commit together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- markers -------------------------------------------------------------------------

    def _is_stale(self, marker: RunningMarker, now: float) -> bool:
        # A bare hostname: a marker written before `process_host`, by a process of this host.
        if marker.hostname in (self.hostname, socket.gethostname()) \
                and marker.pid != os.getpid():
            if not pid_alive(marker.pid):
                return True
            # Its owner, alive on this host, is running the cell whatever this reader's
            # stale_after_s: a second run with a shorter one took a live cell over and
            # recorded it failed. A process started after the marker reuses its PID.
            started = process_started_at(marker.pid) if marker.hostname == self.hostname \
                else None
            if started is not None:
                return started > marker.started_at + _START_TIME_SLACK_S
        return now - marker.heartbeat_at > self.stale_after_s

    def running(self) -> list[RunningMarker]:
        """All running markers, stale or not."""
        rows = self._db.execute("SELECT * FROM running ORDER BY started_at").fetchall()
        return [RunningMarker(**dict(r)) for r in rows]

    def is_marker_stale(self, marker: RunningMarker) -> bool:
        """Whether a marker's owner is gone: ended, on this host, or silent for longer than
        `stale_after_s`, elsewhere (or on a system that does not say when a process started)."""
        return self._is_stale(marker, time.time())

    def claim(self, cell: Cell, retry_failed: bool = True) -> bool:
        """Mark a cell as running by this process; False if done, failed (unless
        `retry_failed`) or live-claimed by another. A stale marker is taken over.

        The status is read in the claim's transaction: a run's earlier snapshot missed cells
        that another run had finished or failed meanwhile (--no-retry-failed retried them).
        """
        now = time.time()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status FROM cells WHERE config_hash = ?", (cell.config_hash,)
            ).fetchone()
            if row is not None and (row["status"] == "done"
                                    or (row["status"] == "failed" and not retry_failed)):
                return False
            marker = db.execute(
                "SELECT * FROM running WHERE config_hash = ?", (cell.config_hash,)
            ).fetchone()
            if marker is not None and not self._is_stale(RunningMarker(**dict(marker)), now):
                return False
            db.execute(
                "INSERT OR REPLACE INTO running VALUES (?, ?, ?, ?, ?, ?)",
                (cell.config_hash, os.getpid(), self.hostname, now, now, cell.describe()),
            )
        return True

    def heartbeat(self, config_hashes: Iterable[str]) -> None:
        """Refresh this process's markers for the given cells."""
        hashes = list(config_hashes)
        if not hashes:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE running SET heartbeat_at = ? WHERE config_hash = ? AND pid = ?",
                [(time.time(), h, os.getpid()) for h in hashes],
            )

    def release(self, config_hash: str) -> None:
        """Drop this process's marker of a cell without recording a result."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM running WHERE config_hash = ? AND pid = ?", (config_hash, os.getpid())
            )

    # --- results ---------------------------------------------------------------------------

    def _replace_cell_row(
        self, db: sqlite3.Connection, cell: Cell, status: str, provenance: Provenance,
        values: dict[str, Any],
    ) -> None:
        db.execute("DELETE FROM episodes WHERE config_hash = ?", (cell.config_hash,))
        db.execute("DELETE FROM evaluations WHERE config_hash = ?", (cell.config_hash,))
        db.execute("DELETE FROM cells WHERE config_hash = ?", (cell.config_hash,))
        row = {
            "config_hash": cell.config_hash,
            "status": status,
            "config_json": canonical_json(cell.identity()),
            "task_id": cell.task_id,
            "task_label": cell.task_label or cell.task_id,
            "agent": cell.agent,
            "method": cell.method or cell.agent,
            "seed": cell.seed,
            "budget_steps": cell.budget_steps,
            "suite_version": provenance.suite_version,
            "suite_commit": provenance.suite_commit,
            "mujoco_version": provenance.mujoco_version,
            "torch_version": provenance.torch_version,
            "python_version": provenance.python_version,
            "hostname": provenance.hostname,
            "finished_at": time.time(),
            **values,
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        db.execute(f"INSERT INTO cells ({columns}) VALUES ({marks})", tuple(row.values()))
        db.execute("DELETE FROM running WHERE config_hash = ?", (cell.config_hash,))

    def record_done(
        self, cell: Cell, result: CellResult, provenance: Provenance, cell_wall_clock_s: float
    ) -> None:
        """Commit a finished cell with all its evaluations and episodes in one transaction."""
        result.validate(cell)
        evaluations = [(i, False, e) for i, e in enumerate(result.curve)]
        evaluations.append((len(result.curve), True, result.final))
        with self.transaction() as db:
            self._replace_cell_row(db, cell, "done", provenance, {
                "env_steps": result.env_steps,
                "train_wall_clock_s": result.train_wall_clock_s,
                "cell_wall_clock_s": cell_wall_clock_s,
                "artifacts_path": result.artifacts_path,
                "info_json": canonical_json(result.info),
            })
            for index, is_final, evaluation in evaluations:
                db.execute(
                    "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?)",
                    (cell.config_hash, index, int(is_final), evaluation.env_steps,
                     evaluation.wall_clock_s),
                )
                db.executemany(
                    "INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_episode_row(cell, index, j, record)
                     for j, record in enumerate(evaluation.episodes)],
                )

    def record_failed(
        self, cell: Cell, error: str, traceback: str, provenance: Provenance,
        cell_wall_clock_s: float,
    ) -> None:
        """Commit a failed cell with its error and traceback (retried by the next run)."""
        with self.transaction() as db:
            self._replace_cell_row(db, cell, "failed", provenance, {
                "cell_wall_clock_s": cell_wall_clock_s,
                "error": error,
                "traceback": traceback,
            })

    # --- queries ---------------------------------------------------------------------------

    def status(self, config_hash: str) -> str | None:
        """``done`` / ``failed`` for a recorded cell, else None."""
        row = self._db.execute("SELECT status FROM cells WHERE config_hash = ?",
                               (config_hash,)).fetchone()
        return None if row is None else row["status"]

    def statuses(self) -> dict[str, str]:
        """Config hash -> ``done`` / ``failed`` for every recorded cell."""
        rows = self._db.execute("SELECT config_hash, status FROM cells").fetchall()
        return {r["config_hash"]: r["status"] for r in rows}

    def cell_rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Recorded cells as dicts (optionally only one status), in config-hash order."""
        query = "SELECT * FROM cells"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        rows = [dict(r) for r in self._db.execute(query + " ORDER BY config_hash", args)]
        for row in rows:  # info_json '[1]' ended the report in "'list' object has no ..."
            try:
                info = json.loads(row["info_json"] or "{}")
            except ValueError:
                info = None
            if not isinstance(info, dict):
                raise ValueError(f"{self.path}: cell {str(row['config_hash'])[:12]}'s info_json "
                                 "is not a JSON object: a damaged store")
            threads = info.get("torch_threads")  # "x" or [1] ended the report in a TypeError
            if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                        or threads < 1):
                raise ValueError(f"{self.path}: cell {str(row['config_hash'])[:12]}'s info_json "
                                 f"torch_threads {threads!r} is no thread count: a damaged store")
        return rows

    def evaluations(self, config_hash: str) -> list[dict[str, Any]]:
        """A cell's evaluations in order, each with its list of episode records."""
        evaluations = [dict(r) for r in self._db.execute(
            "SELECT * FROM evaluations WHERE config_hash = ? ORDER BY eval_index", (config_hash,)
        )]
        episodes = self._db.execute(
            "SELECT * FROM episodes WHERE config_hash = ? ORDER BY eval_index, episode_index",
            (config_hash,),
        ).fetchall()
        by_eval: dict[int, list[dict[str, Any]]] = {e["eval_index"]: [] for e in evaluations}
        for row in episodes:
            record = self._episode_record(row)
            if row["eval_index"] not in by_eval:
                raise ValueError(f"{self.path}: an episode of cell {config_hash[:12]} belongs to "
                                 f"no evaluation (index {row['eval_index']!r}): a damaged store")
            by_eval[row["eval_index"]].append(record)
        asked = self._eval_episodes(config_hash)
        for evaluation in evaluations:
            where = (f"{self.path}: evaluation {evaluation['eval_index']!r} of cell "
                     f"{config_hash[:12]}")
            evaluation["is_final"] = bool(evaluation["is_final"])
            evaluation["episodes"] = by_eval[evaluation["eval_index"]]
            if not evaluation["episodes"]:  # written in one transaction with its episodes
                raise ValueError(f"{where} has no episodes: a damaged store")
            # As `CellResult.validate` checks them on writing: -7 steps and an infinite wall
            # clock were printed as a time to threshold, and a final evaluation cut to 3
            # episodes sat under a header of 10 (matrix25).
            steps, wall = evaluation["env_steps"], evaluation["wall_clock_s"]
            if not isinstance(steps, int) or steps < 0:
                raise ValueError(f"{where}: env_steps must be an integer >= 0, got {steps!r}: a "
                                 "damaged store")
            if not isinstance(wall, int | float) or not 0 <= wall <= MAX_STORED_MAGNITUDE:
                raise ValueError(f"{where}: wall_clock_s must be a number in [0, "
                                 f"{MAX_STORED_MAGNITUDE:g}], got {wall!r}: a damaged store")
            if (evaluation["is_final"] and asked is not None
                    and len(evaluation["episodes"]) != asked):
                raise ValueError(f"{where} holds {len(evaluation['episodes'])} episodes, the "
                                 f"cell's protocol {asked}: a damaged store")
        return evaluations

    def _eval_episodes(self, config_hash: str) -> int | None:
        """The episodes a final evaluation of the cell holds (its config's), or None."""
        row = self._db.execute("SELECT config_json FROM cells WHERE config_hash = ?",
                               (config_hash,)).fetchone()
        try:
            asked = json.loads(row["config_json"]).get("eval_episodes") if row else None
        except (ValueError, AttributeError):
            return None
        return asked if isinstance(asked, int) else None

    def _episode_record(self, row: sqlite3.Row) -> dict[str, Any]:
        """An episodes row as a record, checked as `_episode_row` wrote it: a success of -3
        counted as a success, a distance of 'abc' or extra_json '[1]' ended the report in a
        bare error."""
        record = {k: row[k] for k in EPISODE_FIELDS}
        where = (f"{self.path}: episode {row['episode_index']!r} of cell "
                 f"{str(row['config_hash'])[:12]}, evaluation {row['eval_index']!r}")
        if record["success"] not in (0, 1):
            raise ValueError(f"{where}: success must be 0 or 1, got {record['success']!r}")
        record["success"] = bool(record["success"])
        for key in ("seed", "steps_to_success"):
            value = record[key]
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{where}: {key} must be an integer >= 0, got {value!r}")
        for key in ("time_to_success_s", "final_distance_mm", "peak_force_n"):
            value = record[key]
            if value is not None and (not isinstance(value, int | float)
                                      or not abs(value) <= MAX_STORED_MAGNITUDE):
                raise ValueError(f"{where}: {key} must be a number within "
                                 f"{MAX_STORED_MAGNITUDE:g}, got {value!r}")
        try:
            extra = json.loads(row["extra_json"] or "{}")
        except ValueError:
            extra = None
        if not isinstance(extra, dict):
            raise ValueError(f"{where}: extra_json is not a JSON object: a damaged store")
        return record | {k: v for k, v in extra.items() if k not in EPISODE_FIELDS}

    def episode_count(self) -> int:
        """Total number of stored episode records."""
        return int(self._db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])


def _episode_row(cell: Cell, eval_index: int, episode_index: int, record: dict[str, Any]) -> tuple:
    extra = {k: v for k, v in record.items() if k not in EPISODE_FIELDS}

    def opt(value: Any, kind: type) -> Any:
        return None if value is None else kind(value)

    return (
        cell.config_hash,
        eval_index,
        episode_index,
        opt(record["seed"], int),
        int(bool(record["success"])),
        opt(record["steps_to_success"], int),
        opt(record["time_to_success_s"], float),
        opt(record["final_distance_mm"], float),
        opt(record["peak_force_n"], float),
        canonical_json(extra) if extra else None,
    )


#: How far a marker's owner may seem to have started after its marker: /proc's boot time is in
#: whole seconds.
_START_TIME_SLACK_S = 2.0

#: Why SQLite could not open or write a store file, in the user's terms.
UNWRITABLE = ("the store cannot be opened: it must be a writable file in a writable folder "
              "(SQLite keeps its write-ahead log beside it)")


@functools.cache
def _schema_columns() -> dict[str, dict[str, str]]:
    """The columns of each table `_SCHEMA` makes, with their declared types."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = "
                                               "'table'")]
        return {t: {row[1]: row[2] for row in db.execute(f"PRAGMA table_info({t})")}
                for t in tables}
    finally:
        db.close()


def open_store(path: str | Path, **kwargs: Any) -> Store:
    """``Store(path)``, or a ValueError that says what is wrong with the file: locked by
    another process, damaged, unwritable (SQLite's own errors name no file, and a locked store
    read as unwritable)."""
    try:
        return Store(path, **kwargs)
    except sqlite3.OperationalError as err:
        if "locked" in str(err):  # another process holds the write lock past SQLite's wait
            raise ValueError(f"{path} is locked by another process (SQLite waited "
                             f"{STORE_LOCK_WAIT_S:.0f} s for it); try again when it is "
                             "done") from None
        if kwargs.get("read_only"):
            raise ValueError(f"{path}: the store cannot be read ({err})") from None
        raise ValueError(f"{path}: {UNWRITABLE} ({err})") from None
    except sqlite3.DatabaseError as err:  # "database disk image is malformed"
        raise ValueError(f"{path} is damaged ({err}); run the matrix into a new "
                         "store") from None
