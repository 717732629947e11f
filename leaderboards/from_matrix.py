"""`submit --from-matrix PRESET`: a matrix's final checkpoints become leaderboard entries.

A finished cell belongs to a track task when its task version key (task ID + env kwargs) equals
the task's. A method with one training seed whose cells cover every task of a track becomes one
entry (one policy per task: each cell's final checkpoint, exported policy-only), evaluated afresh
on the track's public dev seeds like any submission; the matrix's own evaluation episodes are not
reused, since its seeds and episode count are the preset's, not the track's. Training cost: the
cells' env steps, demonstration episodes, intervention steps and training wall-clock, summed over
the track's tasks. Entries are marked built-in.

Zero-shot tracks (`Track.training_task`: families-test, offsets) take one policy for all their
tasks: a finished cell on the track's training task (the catalog's training split, the track's
kwargs) becomes one entry whose single exported checkpoint runs every task of the track.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

from agents import export_policy
from benchmark.matrix import default_store_path
from benchmark.preset import load_preset
from benchmark.store import open_store
from envs.version_key import task_version_key
from leaderboards.ledger import Ledger, LedgerError, is_stale, submit
from leaderboards.submission import Submission, Training, private_folder
from leaderboards.tracks import TRACKS, Track, get_track

#: Checkpoint files that make up a policy.
POLICY_FILES = ("agent.json", "weights.safetensors")


#: The policy directory of a zero-shot entry (one checkpoint for every task of the track).
SHARED_POLICY = "policy"


def _policy_submission(
    track: Track, method: str, agent: str, seed: int, cells: dict[str, dict], preset: str
) -> Submission:
    """A Submission whose per-task policies are the cells' final agent checkpoints, exported
    policy-only (`agents.export_policy`: the acting networks; critics, targets, optimizer state
    and replay are left behind, since re-verification only evaluates). ``cells`` maps task
    labels to cells, or holds one cell under `SHARED_POLICY`: its policy runs every task."""
    root = private_folder("insertbench-matrix-entry-")
    files = []
    for label, row in cells.items():
        source = Path(row["artifacts_path"]) / "checkpoint" / "agent"
        missing = [name for name in POLICY_FILES if not (source / name).is_file()]
        if missing:
            shutil.rmtree(root, ignore_errors=True)
            raise LedgerError(f"{preset}: cell {row['config_hash'][:12]} ({label}, {method}) "
                              f"has no {source / missing[0]}")
        try:
            export_policy(source, root / label)
        except ValueError as err:  # its folder was left behind, and the error named no cell
            shutil.rmtree(root, ignore_errors=True)
            raise LedgerError(f"{preset}: cell {row['config_hash'][:12]} ({label}, {method}): "
                              f"{err}") from None
        for name in POLICY_FILES:
            data = (root / label / name).read_bytes()
            files.append((f"{label}/{name}", hashlib.sha256(data).hexdigest(), len(data)))
    wall = sum(float(r["train_wall_clock_s"] or 0.0) for r in cells.values())
    infos = [json.loads(r["info_json"] or "{}") for r in cells.values()]
    return Submission(
        root=root,
        name=f"{method} (seed {seed})",
        authors=("InsertBench maintainers",),
        method=agent,
        track=track,
        policy_kind="agent",
        policy_paths=({label: root / SHARED_POLICY for label in track.labels()}
                      if set(cells) == {SHARED_POLICY} else
                      {label: root / label for label in cells}),
        training=Training(env_steps=sum(int(r["env_steps"] or 0) for r in cells.values()),
                          demos=sum(int(i.get("demo_episodes", 0)) for i in infos),
                          intervention_steps=sum(int(i.get("intervention_steps", 0))
                                                 for i in infos),
                          wall_clock_s=round(wall, 1),
                          hardware=f"{platform.machine()} CPU (matrix {preset})"),
        code_url="https://github.com/insertbench/insertbench",
        files=tuple(sorted(files)),
    )


def submit_matrix(
    ledger: Ledger, preset_name: str, store_path: Path | None = None,
    track_name: str | None = None, echo: Callable[[str], None] = print,
) -> list[Path]:
    """Write an entry for every (method, seed) of the preset that covers a whole track.

    Entries already in the ledger are skipped. Returns the written entry files.
    """
    preset = load_preset(preset_name)
    store_path = store_path or default_store_path(preset.name)
    if not store_path.exists():
        raise LedgerError(f"no store at {store_path}; run `insertbench matrix run {preset_name}`")
    tracks = [get_track(track_name)] if track_name else list(TRACKS.values())
    try:  # a damaged or locked store was a bare DatabaseError; read only: an empty file given
        # as the store was made one (leader18)
        opened = open_store(store_path, read_only=True)
    except ValueError as err:
        raise LedgerError(str(err)) from None
    with opened as store:
        rows = {r["config_hash"]: r for r in store.cell_rows("done")}
    by_key: dict[str, list[tuple[object, dict]]] = {}
    for cell in preset.cells:
        if cell.config_hash in rows:
            key = task_version_key(cell.task_id, cell.env_kwargs)
            by_key.setdefault(key, []).append((cell, rows[cell.config_hash]))
    written: list[Path] = []
    matched = 0  # (method, seed) groups with a cell on some task of some track
    for track in tracks:
        keys = track.version_keys()
        groups: dict[tuple[str, str, int], dict[str, dict]] = {}
        for label, key in keys.items():
            for cell, row in by_key.get(key, []):
                groups.setdefault((cell.method or cell.agent, cell.agent, cell.seed), {})[label] = \
                    row
        if track.training_task is not None:  # zero-shot: one cell on the training task
            for cell, row in by_key.get(track.training_task.version_key(), []):
                groups.setdefault((cell.method or cell.agent, cell.agent, cell.seed),
                                  {})[SHARED_POLICY] = row
        matched += len(groups)
        for (method, agent, seed), cells in sorted(groups.items()):
            if set(cells) != set(keys) and set(cells) != {SHARED_POLICY}:
                echo(f"  {track.name}: {method} seed {seed} covers {sorted(cells)} of "
                     f"{sorted(keys)}; skipped")
                continue
            submission = _policy_submission(track, method, agent, seed, cells, preset.name)
            try:
                existing = ledger.entry_path(track.name, submission.policy_sha256)
                # A stale one (the track's keys changed) is entered again, as `submit` does:
                # skipped, the baselines left the current board with "already in" (leader21).
                if existing.exists() and not is_stale(
                        json.loads(existing.read_text(encoding="utf-8"))):
                    echo(f"  {track.name}: {method} seed {seed} already in the ledger")
                    continue
                path, _ = submit(ledger, submission, source=f"matrix:{preset.name}",
                                 builtin=True)
            except LedgerError as err:  # on the track in another form, or its name taken: the
                echo(f"  {track.name}: {method} seed {seed} not entered: {err}")  # others go on
                continue
            finally:
                shutil.rmtree(submission.root, ignore_errors=True)
            echo(f"  {track.name}: {method} seed {seed} -> {path}")
            written.append(path)
    if not matched:  # used to print "0 entries written" and exit 0, without a reason
        raise LedgerError(
            f"no finished cell of {preset.name} in {store_path} runs a task of "
            f"{', '.join(t.name for t in tracks)} with the track's version key (task version "
            "and env kwargs; see `insertbench list`): nothing to enter")
    return written
