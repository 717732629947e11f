"""The ledger: one JSON file per entry, the policies that produced them, and salt commitments.

Layout of a ledger directory (reviewable in a pull request)::

    entries/<track>/<sha256 of the policy files>.json   validated against schema/entry-v2.json
    entries/<track>/track-v<N>/<sha256>.json            entries of an earlier track version N
                                                        (stale; schema/entry-v1.json for N = 1)
    policies/<sha256>/...                               the policy files, for re-evaluation
    salts/<track>.json                                  the track's salt rounds
                                                        (`leaderboards.salts`, schema/salts-v2.json)

Writing is all-or-nothing: evaluation happens before anything touches the ledger, the policy
files are copied to a temporary directory and renamed into place, and the entry JSON is written
to a temporary file and renamed last. A failure at any point removes what this call created.

Hidden seeds: `verify` needs the secret salt of the track's active salt round, from a file
outside the ledger; only its SHA-256 is in ``salts/<track>.json``, and every hidden evaluation
records it, which names its round. The seeds are the entry's own (`tracks.hidden_seeds`): the
episodes written here name them while the round is still active. `reveal` publishes the
active round's salt, after which anyone can recompute the entries verified under it; a round
whose salt is gone is declared lost, its entries stay verified but cannot be recomputed
(`leaderboards.salts`).
Verification also runs the policy in PyBullet on the same hidden seeds (`leaderboards.sim2sim`,
the entry's ``sim2sim`` block; ``sim2sim=False`` skips it), shown beside the ranking, never in it.
"""

from __future__ import annotations

import fcntl
import functools
import glob
import hashlib
import json
import math
import os
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the tasks)
from benchmark.store import suite_commit
from envs.episode import PolicyError, record_problem, run_episode
from envs.json_files import write_json
from envs.tasks import pinned_versions
from envs.version_key import PYBULLET_REVISION, pybullet_key_prefix
from leaderboards.files import utc_now
from leaderboards.policy import load_policy, onnx_content
from leaderboards.recheck import EpisodeComparison, compare_episodes, describe, platform_fingerprint
from leaderboards.salts import SaltError, SaltRound, SaltRounds, salt_sha256, verification_sha256
from leaderboards.schemas import problem as schema_problem
from leaderboards.submission import (
    AUTHORS_LIMIT,
    TEXT_LIMIT,
    URL_LIMIT,
    Submission,
    SubmissionError,
    check_file_name,
    check_text,
    check_url,
    parse_training,
    policy_files_sha256,
)
from leaderboards.tracks import (
    DEV_SEED_BASE,
    HIDDEN_SEED_LOW,
    TRACK_VERSION,
    Track,
    get_track,
    hidden_seeds,
)

#: The schema new entries are written in; older entries stay valid under their own version.
ENTRY_SCHEMA = "insertbench-leaderboard-entry/2"
SCHEMA_FILES = {"insertbench-leaderboard-entry/1": "schema/entry-v1.json",
                "insertbench-leaderboard-entry/2": "schema/entry-v2.json"}
DEFAULT_LEDGER = Path("leaderboards/ledger")


class LedgerError(ValueError):
    """The ledger cannot do what was asked (unknown entry, salt mismatch, ...)."""


#: How far a verifying machine's clock may disagree with the one that opened or closed the
#: salt round [s]: the dates come from different machines.
CLOCK_SKEW_S = 3600.0
#: The most a salt file may hold [bytes]: a salt is a few dozen random bytes, and a pipe or
#: device (`--salt-file /dev/zero`) is read only this far.
MAX_SALT_BYTES = 4096


def _within_round(at: str, opened: str | None, closed: str | None) -> bool:
    """Whether the ISO 8601 time `at` lies in [opened, closed] (an end not recorded is open),
    give or take `CLOCK_SKEW_S`."""
    def seconds(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()  # "Z" and offsets alike

    try:
        t = seconds(at)
        return ((opened is None or t >= seconds(opened) - CLOCK_SKEW_S)
                and (closed is None or t <= seconds(closed) + CLOCK_SKEW_S))
    except ValueError:  # not a date: no verification wrote it
        return False


def validate_entry(entry: Mapping[str, Any]) -> None:
    """Raise LedgerError unless ``entry`` satisfies its schema and its own invariants."""
    version = entry.get("schema") if isinstance(entry, Mapping) else None
    if version not in SCHEMA_FILES:
        raise LedgerError(f"entry has schema {version!r}; known: {sorted(SCHEMA_FILES)}")
    wrong = schema_problem(SCHEMA_FILES[version], entry)
    if wrong is not None:
        raise LedgerError(f"entry does not match schema {version.rsplit('/', 1)[1]} {wrong}")
    for name, evaluation in entry["evaluations"].items():
        labels = set(evaluation["task_version_keys"])
        for episode in evaluation["episodes"]:
            if episode["task"] not in labels:
                raise LedgerError(f"{name} episode of unknown task {episode['task']!r}")
            if episode["task_version_key"] != evaluation["task_version_keys"][episode["task"]]:
                raise LedgerError(f"{name} episode of {episode['task']} has another version key")
        for label in labels:
            seeds = [e["seed"] for e in evaluation["episodes"] if e["task"] == label]
            if len(seeds) != evaluation["episodes_per_task"]:
                raise LedgerError(f"{name} evaluation has {len(seeds)} episodes of {label}, "
                                  f"expected {evaluation['episodes_per_task']}")
            # Public seeds are every entry's: a self-reported block on seeds of its own choosing
            # (its failures rerolled) was ranked beside the others.
            if evaluation["seeds"] == "public-dev" and seeds != [
                    DEV_SEED_BASE + i for i in range(len(seeds))]:
                raise LedgerError(f"{name} episodes of {label} are not on the public dev seeds "
                                  f"{DEV_SEED_BASE}, {DEV_SEED_BASE + 1}, ... in order")
        for episode in evaluation["episodes"]:
            if (problem := record_problem(episode)) is not None:
                raise LedgerError(f"{name} episode of {episode['task']} on seed "
                                  f"{episode['seed']}: {problem}")
    _check_track_episodes(entry)
    _check_metadata(entry)
    _check_policy_files(entry)
    if "sim2sim" in entry:
        _check_sim2sim(entry)


def _check_track_episodes(entry: Mapping[str, Any]) -> None:
    """A block on the track's current task version keys (one that ranks) holds the track's
    episodes per task: an entry file edited down to 1 episode a task (its failures deleted)
    ranked on half the episodes until `audit` recomputed it."""
    try:
        track = get_track(entry["track"])
    except KeyError:  # a track this version no longer has: its blocks rank nowhere
        return
    for name, evaluation in entry["evaluations"].items():
        if evaluation["episodes_per_task"] == track.episodes_per_task:
            continue
        current = (evaluation["task_version_keys"] == track.version_keys()
                   and evaluation.get("track_version", 1) == TRACK_VERSION)
        if current:
            raise LedgerError(f"{name} evaluation has {evaluation['episodes_per_task']} episodes "
                              f"per task; {track.name} evaluates {track.episodes_per_task}")


def _check_metadata(entry: Mapping[str, Any]) -> None:
    """What `submit` refuses in a submission, refused in an entry too: an entry file written or
    edited by hand (a pull request to the ledger) put a 6 MB page, a right-to-left override
    in the index and another entry's policy (files under '../<id>/') on the site."""
    try:
        if not name_key(entry["name"]):
            raise SubmissionError(f"name {entry['name']!r} shows no visible character")
        for what, value, limit in (("name", entry["name"], TEXT_LIMIT),
                                   ("method", entry["method"], TEXT_LIMIT),
                                   ("training.hardware", entry["training"]["hardware"],
                                    TEXT_LIMIT)):
            check_text(value, what, limit)
        for key in ("paper_url", "code_url"):
            check_url(entry.get(key, ""), key)
        if len(entry["authors"]) > AUTHORS_LIMIT:
            raise SubmissionError(f"{len(entry['authors']):,} authors; at most {AUTHORS_LIMIT}")
        for author in entry["authors"]:
            check_text(author, "an author")
        parse_training(dict(entry["training"]))  # a 42-digit env_steps printed on the site
        for file in entry["policy"]["files"]:
            check_file_name(file["path"])
        checked: set[str] = set()  # episodes repeat their labels, keys and platform
        for where, text in _strings(entry):  # source, code_version, platforms, reasons ...
            if text not in checked:
                check_text(text, where, URL_LIMIT)
                checked.add(text)
        # Only `from-matrix` enters the maintainers' baselines: a submission that said it is
        # one became every entry's P(improvement) baseline (leader25).
        if entry.get("builtin", False) != entry["source"].startswith("matrix:"):
            raise SubmissionError(f"builtin {entry.get('builtin')!r} with source "
                                  f"{entry['source']!r}: only entries from a matrix "
                                  "(source 'matrix:<preset>') are the maintainers' baselines")
    except SubmissionError as err:
        message = str(err).removeprefix("submission.toml: ")
        raise LedgerError(f"entry {entry['entry_id'][:12]}: {message}") from None


def _check_names_apart(entries: list[dict[str, Any]]) -> None:
    """LedgerError where two entries ranked in one table (a track version's entries on the same
    task version keys) have names alike (`name_key`), which `submit` refuses: an entry file
    renamed by hand put two rows of one name on the site (leader25)."""
    seen: dict[tuple[str, int, str, str], dict[str, Any]] = {}
    for entry in entries:
        keys = json.dumps(entry["evaluations"]["dev"]["task_version_keys"], sort_keys=True)
        table = (entry["track"], entry_track_version(entry), keys, name_key(entry["name"]))
        other = seen.setdefault(table, entry)
        if other is not entry:
            raise LedgerError(f"entries {other['entry_id'][:12]} and {entry['entry_id'][:12]} "
                              f"of {entry['track']} are both called {entry['name']!r} (as "
                              "names are compared); rename one")


def _strings(value: Any, where: str = "entry") -> Iterator[tuple[str, str]]:
    """Every string in an entry (keys included), with where it is: the site shows most of
    them, and a hand-edited one held a right-to-left override or megabytes."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key, f"{where} key")
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _check_policy_files(entry: Mapping[str, Any]) -> None:
    """The entry id is the SHA-256 of the policy files listed, and every file the evaluation
    loads is listed (`stored_policy_paths` checks the listed ones): other weights put in with
    an edited list, or in a file the list leaves out, would run under the entry's scores."""
    policy = entry["policy"]
    if policy_files_sha256((f["path"], f["sha256"]) for f in policy["files"]) != \
            entry["entry_id"]:
        raise LedgerError(f"entry {entry['entry_id'][:12]} is not the SHA-256 of the policy "
                          "files it lists")
    listed = {f["path"] for f in policy["files"]}
    loaded = ("agent.json", "weights.safetensors") if policy["kind"] == "agent" else \
        ("policy.onnx",)
    for label, folder in policy["per_task"].items():
        for name in loaded:
            file = PurePosixPath(folder, name).as_posix()  # folder "." (path = "."): name
            if file not in listed:
                raise LedgerError(f"the policy of {label} loads {file}, which is not among "
                                  "the entry's policy files")


def sim2sim_revision(block: Mapping[str, Any]) -> int:
    """The PyBullet model revision that ran the block's episodes
    (`envs.version_key.PYBULLET_REVISION`): 1 for a block stored before 2026-12-06, which
    records none."""
    return block.get("revision", 1)


def _check_sim2sim(entry: Mapping[str, Any]) -> None:
    """The PyBullet block covers the hidden evaluation's tasks, on its very seeds."""
    block, hidden = entry["sim2sim"], entry["evaluations"].get("hidden")
    if hidden is None:
        raise LedgerError("sim2sim block without a hidden evaluation")
    revision = sim2sim_revision(block)
    if set(block["tasks"]) != set(hidden["task_version_keys"]):
        raise LedgerError(f"sim2sim tasks {sorted(block['tasks'])} are not the hidden "
                          f"evaluation's {sorted(hidden['task_version_keys'])}")
    for label, task in block["tasks"].items():
        mine = [e for e in block["episodes"] if e["task"] == label]
        if task["supported"] != (task["reason"] is None):
            raise LedgerError(f"sim2sim task {label}: give a reason exactly when unsupported")
        if not task["supported"]:
            if mine:
                raise LedgerError(f"sim2sim task {label} is unsupported but has episodes")
            continue
        seeds = [e["seed"] for e in hidden["episodes"] if e["task"] == label]
        if [e["seed"] for e in mine] != seeds:
            raise LedgerError(f"sim2sim episodes of {label} are not on the hidden seeds")
        key = f"{pybullet_key_prefix(revision)}-{hidden['task_version_keys'][label]}"
        if any(e["task_version_key"] != key for e in mine):
            raise LedgerError(f"sim2sim episode of {label} has another version key")
        if "noiseless" in block:  # the MuJoCo reference (blocks before 2026-12-05 lack it)
            quiet = [e for e in block["noiseless"]["episodes"] if e["task"] == label]
            if [e["seed"] for e in quiet] != seeds:
                raise LedgerError(f"noiseless MuJoCo episodes of {label} are not on the "
                                  "hidden seeds")
            key = f"noiseless-{hidden['task_version_keys'][label]}"
            if any(e["task_version_key"] != key for e in quiet):
                raise LedgerError(f"noiseless MuJoCo episode of {label} has another version key")
    if "noiseless" in block:
        ran = {label for label, t in block["tasks"].items() if t["supported"]}
        extra = {e["task"] for e in block["noiseless"]["episodes"]} - ran
        if extra:
            raise LedgerError(f"noiseless MuJoCo episodes of {sorted(extra)}, which PyBullet "
                              "did not run")


def evaluate_policy(
    track: Track,
    kind: str,
    policy_paths: Mapping[str, Path],
    seeds_for: Callable[[str], list[int]],
    seeds_label: str,
    salt_sha256: str | None = None,
    progress: Callable[[str], None] | None = None,
    look_alikes: LookAlikes | None = None,
) -> dict[str, Any]:
    """Run the policy on every task of ``track`` and return the evaluation block of an entry;
    with ``look_alikes``, other entries act beside it on each observation (`LookAlikes`).

    Raises SubmissionError when the policy cannot be loaded for a task or acts out of bounds.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    keys = track.version_keys()
    episodes: list[dict[str, Any]] = []
    for task in track.tasks:
        with pinned_versions():  # a track pins its task versions
            env = gym.make(task.task_id, **dict(task.env_kwargs))
        try:
            policy = load_policy(kind, policy_paths[task.label], env)
            if look_alikes is not None and look_alikes.alike:
                policy = look_alikes.shadowing(policy, task.label, env)
            for seed in seeds_for(task.label):
                try:
                    record = run_episode(env, policy, seed, task_id=task.task_id,
                                         task_version_key=keys[task.label])
                except PolicyError as err:
                    raise SubmissionError(f"{task.label}, seed {seed}: {err}") from None
                episodes.append({"task": task.label, **record.to_dict()})
            if isinstance(policy, _Shadowed):
                look_alikes.settle(policy)
        finally:
            env.close()
        if progress is not None:
            progress(task.label)
    return {
        "seeds": seeds_label,
        "salt_sha256": salt_sha256,
        "track_version": TRACK_VERSION,
        "task_version_keys": keys,
        "episodes_per_task": track.episodes_per_task,
        "evaluated_at": utc_now(),
        "wall_clock_s": round(time.perf_counter() - started, 3),
        "cpu_s": round(time.process_time() - cpu_started, 3),
        "platform": platform_fingerprint(),
        "episodes": episodes,
    }


class Ledger:
    """A ledger directory (see the module docstring)."""

    def __init__(self, root: str | Path = DEFAULT_LEDGER):
        self.root = Path(root)

    @contextmanager
    def lock(self, create: bool = True) -> Iterator[None]:
        """Hold the ledger for a read-check-write, waiting for another command's turn (an flock
        on the ledger folder itself: no lock file in the repository). Two submits of one policy
        at once both entered it; two open-rounds both said "opened", one commitment lost.
        ``create=False``: a missing ledger is a LedgerError (a mistyped --ledger), not a new
        empty folder."""
        if not create and not self.root.is_dir():
            raise LedgerError(f"no ledger at {self.root} (a ledger starts with a submit or an "
                              "open-round)")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    # ------------------------------------------------------------------ paths
    def entry_path(self, track: str, entry_id: str, track_version: int = TRACK_VERSION) -> Path:
        """Where an entry lives: under its track, or, made under an earlier track version,
        archived under ``track-v<N>/`` (the same policy may be entered again on the new one)."""
        folder = self.root / "entries" / track
        if track_version != TRACK_VERSION:
            folder = folder / f"track-v{track_version}"
        return folder / f"{entry_id}.json"

    def archive_path(self, entry: Mapping[str, Any]) -> Path:
        """Where an entry stale by its task version keys goes when its policy is entered again
        on the current keys (same id, same track version): ``keys-<digest>/`` under its track."""
        folder = self.root / "entries" / entry["track"] / f"keys-{keys_digest(entry)}"
        return folder / f"{entry['entry_id']}.json"

    def policy_dir(self, entry_id: str) -> Path:
        return self.root / "policies" / entry_id

    def salt_path(self, track: str) -> Path:
        return self.root / "salts" / f"{track}.json"

    # ------------------------------------------------------------------ reading
    def entries(self, archived: bool = True, track: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of ``track``, if given), validated, in a stable order (track, name, id);
        without ``archived`` not those stale ones whose policy was entered again
        (`archive_path`)."""
        found = []
        entries = self.root / "entries"
        tracks = "*" if track is None else glob.escape(track)
        paths = [*entries.glob(f"{tracks}/*.json"), *entries.glob(f"{tracks}/track-v*/*.json")]
        if archived:
            paths += entries.glob(f"{tracks}/keys-*/*.json")
        # Not a writer's temporary file (`envs.json_files.written_whole`: ".<stem>.<pid>-<id>
        # .tmp.json"), which a kill -9 before its rename leaves: it blocked every command.
        for path in sorted(p for p in paths if not p.name.startswith(".")):
            try:  # a merge conflict or a cut-off copy: name the file
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
                # RecursionError: nested thousands deep, named by no file (leader21)
                raise LedgerError(f"{path} is not valid JSON: {err}") from None
            try:
                validate_entry(entry)
                self.check_hidden_seeds(entry)
            except LedgerError as err:
                raise LedgerError(f"{path}: {err}") from None
            if path not in (self.entry_path(entry["track"], entry["entry_id"],
                                            entry_track_version(entry)),
                            self.archive_path(entry)):
                raise LedgerError(f"{path} holds entry {entry['entry_id']} of {entry['track']} "
                                  f"(track version {entry_track_version(entry)})")
            if path == self.archive_path(entry) and entry_track_version(entry) == \
                    TRACK_VERSION and not is_stale(entry):
                # A copy of a current entry there was listed and ranked twice.
                right = self.entry_path(entry["track"], entry["entry_id"],
                                        entry_track_version(entry))
                raise LedgerError(f"{path} is an archive of stale entries, but entry "
                                  f"{entry['entry_id'][:12]} is not stale: it belongs at "
                                  f"{right}")
            try:
                self._check_agent(entry)
            except LedgerError as err:
                raise LedgerError(f"{path}: {err}") from None
            found.append(entry)
        _check_names_apart(found)
        return sorted(found, key=lambda e: (e["track"], -entry_track_version(e), e["name"],
                                            e["entry_id"]))

    def _check_agent(self, entry: Mapping[str, Any]) -> None:
        """LedgerError where the entry's `policy.agent` is not what its stored agent.json say
        (`submit` takes it from there): edited by hand, it dropped the site's "given the goal"
        mark off a residual policy (leader25). A missing file is `audit`'s to report."""
        policy = entry["policy"]
        if policy["kind"] != "agent":
            return
        for label, folder in policy["per_task"].items():
            meta = self.policy_dir(entry["entry_id"]) / folder / "agent.json"
            try:
                stored = json.loads(meta.read_text(encoding="utf-8")).get("agent")
            except (OSError, ValueError, AttributeError):
                continue
            if stored != policy["agent"]:
                raise LedgerError(f"entry {entry['entry_id'][:12]} names agent "
                                  f"{policy['agent']!r}, and its stored {label} policy is a "
                                  f"checkpoint of {stored!r}")

    def find(self, ref: str) -> dict[str, Any]:
        """The entry of the current track version whose id starts with ``ref`` (or whose file
        is ``ref``)."""
        if not ref.strip():  # an unset shell variable: '' is a prefix of every id
            raise LedgerError("give an entry id (a unique prefix of its SHA-256) or its JSON "
                              "file, not an empty string")
        path = Path(ref)
        file = path.resolve() if path.suffix == ".json" and path.is_file() else None
        if file is not None:
            ref = path.stem
        if not (self.root / "entries").is_dir():
            raise LedgerError(f"{self.root} is not a ledger (it has no entries/ folder)")
        matches = [e for e in self.entries(archived=False) if e["entry_id"].startswith(ref)
                   and entry_track_version(e) == TRACK_VERSION]
        if file is not None:  # the file names its track too: one policy may enter several
            matches = [e for e in matches
                       if self.entry_path(e["track"], e["entry_id"]).resolve() == file]
            if not matches:  # an archived stale entry's file, or one outside the ledger, was
                # taken for the current entry of the same id, which it then checked (leader23)
                raise LedgerError(f"{ref} is no current entry's file in {self.root} (an "
                                  "archived stale entry, or a file outside the ledger): give "
                                  "an entry id or a file under entries/<track>/")
        if not matches:
            raise LedgerError(f"no entry of track version {TRACK_VERSION} in {self.root} has an "
                              f"id starting with {ref!r} (entries of earlier track versions are "
                              "stale, not re-verified)")
        if len({e["entry_id"] for e in matches}) == 1 and len(matches) > 1:
            files = ", ".join(str(self.entry_path(e["track"], e["entry_id"])) for e in matches)
            raise LedgerError(f"policy {matches[0]['entry_id'][:12]} is an entry of "
                              f"{len(matches)} tracks; give the entry's JSON file: {files}")
        if len(matches) > 1:
            raise LedgerError(f"{len(matches)} entries of track version {TRACK_VERSION} match "
                              f"{ref!r} in {self.root}; give more of the entry's SHA-256")
        return matches[0]

    def resolve(self, ref: str | Mapping[str, Any]) -> dict[str, Any]:
        """`find(ref)`, or an entry this ledger's `entries` already read, as it is: a caller
        going through every entry (`leaderboard audit`) read the whole ledger again for each
        one (7 s for the shipped ledger)."""
        return dict(ref) if isinstance(ref, Mapping) else self.find(ref)

    # ------------------------------------------------------------------ writing
    def add(self, entry: dict[str, Any], policy_files: Mapping[str, Path]) -> Path:
        """Write a new entry and its policy files (relative path -> source file) atomically."""
        validate_entry(entry)
        entry_id, track = entry["entry_id"], entry["track"]
        target = self.entry_path(track, entry_id)
        if target.exists():
            # Stale by its keys, it makes way: verify tells the owner of a stale entry to submit
            # its policy again, which this used to refuse as "already entry".
            existing = json.loads(target.read_text(encoding="utf-8"))
            if not is_stale(existing):
                raise LedgerError(f"this policy is already entry {entry_id[:12]} of {track}")
            archive = self.archive_path(existing)
            archive.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, archive)
        policy_dir = self.policy_dir(entry_id)
        created_policy = False
        if not policy_dir.exists():
            policy_dir.parent.mkdir(parents=True, exist_ok=True)
            # A name of its own made with mkdir, which keeps the umask's mode (mkdtemp's 0700
            # folders could not be read by another account running render, audit or verify).
            tmp = policy_dir.parent / f".{entry_id}.{os.getpid()}-{uuid.uuid4().hex[:12]}"
            tmp.mkdir()
            try:
                for rel, source in policy_files.items():
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, tmp / rel)
                os.replace(tmp, policy_dir)
                created_policy = True
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        try:
            write_json(target, entry)
        except BaseException:
            if created_policy:
                shutil.rmtree(policy_dir, ignore_errors=True)
            raise
        return target

    def replace(self, entry: dict[str, Any]) -> Path:
        """Rewrite an existing entry (after verification) atomically."""
        validate_entry(entry)
        target = self.entry_path(entry["track"], entry["entry_id"])
        if not target.exists():
            raise LedgerError(f"no entry {entry['entry_id'][:12]} in {self.root}")
        write_json(target, entry)
        return target

    # ------------------------------------------------------------------ salts
    def salt_rounds(self, track: str) -> SaltRounds:
        """The salt rounds of ``track`` (`leaderboards.salts`)."""
        return SaltRounds(self.salt_path(track), track)

    def read_salt(self, salt_file: Path) -> bytes:
        """The salt in ``salt_file`` (outside the ledger), at least 16 bytes."""
        salt_file = Path(salt_file)
        # A pipe (`--salt-file <(pass show salt)`: the secret never on disk) is no regular file,
        # and was refused as one that "does not exist".
        if salt_file.is_dir() or not salt_file.exists():
            raise LedgerError(f"salt file {salt_file} "
                              f"{'is a directory' if salt_file.is_dir() else 'does not exist'}")
        root, folders = self.root.resolve(), salt_file.resolve().parents
        if root in folders:
            raise LedgerError(f"the salt file {salt_file} lies inside the ledger {self.root}; "
                              "keep it outside the repository")
        # Anywhere in the ledger's git work tree, one `git add -A` publishes it (the suite's
        # checkout holds the shipped ledger; a salt file beside it was accepted).
        tree = next((d for d in (root, *root.parents) if (d / ".git").exists()), None)
        if tree is not None and tree in folders:
            raise LedgerError(f"the salt file {salt_file} lies inside the git repository {tree} "
                              "that holds the ledger; keep it outside the repository")
        with salt_file.open("rb") as f:  # bounded: `--salt-file /dev/zero` never ends
            salt = f.read(MAX_SALT_BYTES + 1).strip()
        if len(salt) > MAX_SALT_BYTES:
            raise LedgerError(f"salt file {salt_file} holds more than {MAX_SALT_BYTES} bytes; "
                              "a salt is a few dozen random bytes (`openssl rand -hex 32`)")
        if len(salt) < 16:
            raise LedgerError(f"salt file {salt_file} holds {len(salt)} bytes; use >= 16 random "
                              "bytes (e.g. `openssl rand -hex 32 > salt`)")
        return salt

    def open_round(self, track: str, salt: bytes, note: str = "") -> SaltRound:
        """Open a new salt round of ``track`` (refused while one is active)."""
        return self._salt_op(track, lambda rounds: rounds.open(salt, note))

    def lose_round(self, track: str, reason: str) -> SaltRound:
        """Declare the active round's salt of ``track`` lost."""
        return self._salt_op(track, lambda rounds: self._closing(rounds).lose(reason),
                             create=False)

    def reveal(self, track: str, salt: bytes) -> SaltRound:
        """Publish the salt of the active round of ``track`` after checking its SHA-256."""
        return self._salt_op(track, lambda rounds: self._closing(rounds).reveal(salt),
                             create=False)

    def _closing(self, rounds: SaltRounds) -> SaltRounds:
        """``rounds``, after checking that no entry's hidden block of its active round is dated
        after this machine's clock (give or take `CLOCK_SKEW_S`): the round closed now would
        end before it, and every reader would refuse the ledger from then on (leader26)."""
        active = next((r for r in rounds.read() if r.status == "active"), None)
        if active is None:
            return rounds  # the operation says so
        now = utc_now()
        for entry in self.entries(track=rounds.track):  # another track's broken file blocked it
            hidden = entry["evaluations"].get("hidden")
            if hidden is not None and hidden["salt_sha256"] == active.salt_sha256 and \
                    not _within_round(hidden["evaluated_at"], None, now):
                raise LedgerError(f"entry {entry['entry_id'][:12]} of round {active.number} was "
                                  f"verified at {hidden['evaluated_at']}, after this machine's "
                                  f"clock ({now}): closing the round now would date it after "
                                  "the round; set this clock right, or, if it is right, verify "
                                  "that entry again here first (nothing was changed)")
        return rounds

    def _salt_op(self, track: str, op: Callable[[SaltRounds], SaltRound],
                 create: bool = True) -> SaltRound:
        try:
            get_track(track)
        except KeyError as err:  # it names the known tracks
            raise LedgerError(err.args[0]) from None
        try:
            with self.lock(create):
                return op(self.salt_rounds(track))
        except SaltError as err:
            raise LedgerError(str(err)) from None

    def check_hidden_seeds(self, entry: Mapping[str, Any]) -> None:
        """LedgerError unless an entry's hidden evaluation ran where verification runs: under a
        salt round the track records, on seeds in the hidden range, and, once the round's salt
        is revealed, on exactly the seeds it gives. An entry file whose hidden block was
        replaced (its dev episodes relabelled, say) was ranked "verified" on the site, which
        never ran anything to check it; `leaderboard verify` reruns the episodes too."""
        hidden = entry["evaluations"].get("hidden")
        if hidden is None:
            return
        if hidden["salt_sha256"] is None:
            raise LedgerError("its hidden evaluation records no salt")
        r = self.entry_round(entry)
        if r is None:
            raise LedgerError(f"its hidden evaluation names a salt (SHA-256 "
                              f"{hidden['salt_sha256']}) that no salt round of "
                              f"{entry['track']} records")
        at = hidden["evaluated_at"]
        if not _within_round(at, r.opened_at, r.closed_at):
            # Verification runs while the round is open; a block dated after a lost round had
            # closed was written by hand, and nothing could ever recompute it.
            raise LedgerError(f"its hidden evaluation is dated {at}, outside salt round "
                              f"{r.number} ({r.opened_at or 'opening not recorded'} to "
                              f"{r.closed_at or 'now'}): not what verification ran")
        salt = bytes.fromhex(r.salt_hex) if r.status == "revealed" and r.salt_hex else None
        per_entry = hidden.get("per_entry_seeds", False)
        for label in hidden["task_version_keys"]:
            seeds = [e["seed"] for e in hidden["episodes"] if e["task"] == label]
            if salt is not None:
                expected = hidden_seeds(salt, entry["track"], label, len(seeds),
                                        entry["entry_id"] if per_entry else None)
                if seeds != expected:
                    raise LedgerError(f"its hidden {label} episodes are not on the seeds of "
                                      f"salt round {r.number} (revealed): not what "
                                      "verification ran")
            elif not all(HIDDEN_SEED_LOW <= s < 2 * HIDDEN_SEED_LOW for s in seeds):
                raise LedgerError(f"its hidden {label} episodes have seeds outside the hidden "
                                  f"range [2^30, 2^31): not what verification ran")
        # Seeds in range, dated inside the round: a block written by hand into an entry file
        # (made-up episodes on a lost round, or run by the submitter on a revealed round's
        # public seeds) passed all of the above and ranked "verified".
        if r.verified is not None and \
                verification_sha256(entry) not in r.verified.get(entry["entry_id"], []):
            raise LedgerError(f"its hidden evaluation or sim-to-sim block is not one that "
                              f"`leaderboard verify` recorded under salt round {r.number} "
                              f"(salts/{entry['track']}.json lists every one it wrote): not "
                              "what verification ran")

    def entry_round(self, entry: Mapping[str, Any]) -> SaltRound | None:
        """The salt round of an entry's hidden evaluation (None: not verified, or a salt the
        track's rounds do not know)."""
        hidden = entry["evaluations"].get("hidden")
        if hidden is None or hidden["salt_sha256"] is None:
            return None
        try:
            return self.salt_rounds(entry["track"]).by_digest(hidden["salt_sha256"])
        except SaltError as err:
            raise LedgerError(str(err)) from None


def keys_digest(entry: Mapping[str, Any]) -> str:
    """12 hex digits naming the task version keys an entry was evaluated on."""
    keys = entry["evaluations"]["dev"]["task_version_keys"]
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:12]


def _ranked(entry: Mapping[str, Any]) -> bool:
    """Whether ``entry`` is of the current track version and its track's current keys."""
    return entry_track_version(entry) == TRACK_VERSION and not is_stale(entry)


def is_stale(entry: Mapping[str, Any]) -> bool:
    """Whether ``entry`` of the current track version was evaluated on other task version keys
    than its track's current ones (an earlier track version's entry is archived apart)."""
    return (entry_track_version(entry) == TRACK_VERSION
            and entry["evaluations"]["dev"]["task_version_keys"]
            != get_track(entry["track"]).version_keys())


def entry_track_version(entry: Mapping[str, Any]) -> int:
    """The track version an entry was made under (schema-1 entries: 1)."""
    return int(entry["evaluations"]["dev"].get("track_version", 1))


def new_entry(
    submission: Submission, evaluation: dict[str, Any], source: str = "submission",
    builtin: bool = False, agent: str | None = None,
) -> dict[str, Any]:
    """The ledger entry of a validated submission and its dev evaluation."""
    t = submission.training
    per_task = {label: path.relative_to(submission.root).as_posix()
                for label, path in submission.policy_paths.items()}
    return {
        "schema": ENTRY_SCHEMA,
        "entry_id": submission.policy_sha256,
        "track": submission.track.name,
        "name": submission.name,
        "authors": list(submission.authors),
        "method": submission.method,
        "paper_url": submission.paper_url,
        "code_url": submission.code_url,
        "source": source,
        "builtin": builtin,
        "policy": {"kind": submission.policy_kind, "agent": agent, "per_task": per_task,
                   "files": [{"path": p, "sha256": h, "bytes": n}
                             for p, h, n in submission.files]},
        "training": {"env_steps": t.env_steps, "demos": t.demos,
                     "intervention_steps": t.intervention_steps, "wall_clock_s": t.wall_clock_s,
                     "hardware": t.hardware},
        "created_at": utc_now(),
        "code_version": suite_commit(),
        "evaluations": {"dev": evaluation},
    }


def agent_name_of(submission: Submission) -> str | None:
    """The registry name in the agent checkpoints' agent.json (None for ONNX); SubmissionError
    where per-task checkpoints name different agents: an entry is one method, labelled and
    marked "given the goal" by its agent (a straight-down USB policy beside a P-controller for
    D-sub entered as "straight_down", unmarked; leader24)."""
    if submission.policy_kind != "agent":
        return None
    names = {label: json.loads((path / "agent.json").read_text()).get("agent")
             for label, path in submission.policy_paths.items()}
    if len(set(names.values())) > 1:
        found = ", ".join(f"{label} {name}" for label, name in names.items())
        raise SubmissionError(f"the per-task policies are checkpoints of different agents "
                              f"({found}): an entry is one method; submit each as its own")
    return next(iter(names.values()))


#: Unicode's default-ignorable code points outside category Cf (DerivedCoreProperties.txt):
#: variation selectors, the combining grapheme joiner, Mongolian free variation selectors,
#: unassigned ones among the format characters. A font shows them as nothing.
IGNORABLE = (range(0x034F, 0x0350), range(0x17B4, 0x17B6), range(0x180B, 0x1810),
             range(0x2060, 0x2070), range(0xFE00, 0xFE10), range(0xFFF0, 0xFFF9),
             range(0xE0000, 0xE1000),
             range(0x16FE4, 0x16FE5))  # last: the Khitan small script filler (leader21)
#: Characters a font draws as a blank about a space wide, which read as a space: the braille
#: blank and the Hangul fillers (dropped as invisible, "Plain⠀straight down" read as
#: "plainstraight down" and entered beside "Plain straight down"), and the musical null
#: notehead (leader21).
BLANKS = str.maketrans(dict.fromkeys("\u2800\u115f\u1160\u3164\uffa0\U0001d159", " "))


@functools.cache
def _latin_look_alikes() -> dict[int, str]:
    """Every non-ASCII character that Unicode's confusables (UTS #39's data, as
    `confusable_homoglyphs` ships it) read as one visible ASCII character, mapped to it (a
    letter where it reads as a letter and a digit, a letter or digit before punctuation):
    "Р-controller" with a Cyrillic Р, "Ꭰown" with a Cherokee Ꭰ, "Straiɡht" with a Latin script
    ɡ, and punctuation: "P˗controller" with a modifier minus U+02D7, "TD3 ᛭ LfD" with a runic
    cross U+16ED, "Alice’s" with a right single quotation mark (leader24)."""
    from confusable_homoglyphs.confusables import confusables_data

    table = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        # A digit where the character is one and Unicode pairs it with one, else a letter,
        # in lower case (case folding leaves Cherokee's capitals, and the key ignores case);
        # punctuation where Unicode pairs it with nothing else.
        digit = char.isdigit()
        plain = sorted((g["c"] for g in glyphs
                        if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isprintable()
                        and not g["c"].isspace()),
                       key=lambda g: (not g.isalnum(), g.isdigit() != digit))  # noqa: B023
        if plain:
            table[ord(char)] = plain[0].lower()
    return table | LOWER_LOOK_ALIKES


#: Lower-case letters that read as Latin ones but are not in Unicode's confusables (which pairs
#: a Cyrillic к or a Greek χ with nothing): Cyrillic, Greek, Armenian and Lisu, small capitals
#: ("ᴘ-controller"), dotless ı and script ɑ. Applied after case folding, so "ΧΑ" is "xa".
LOWER_LOOK_ALIKES = str.maketrans(
    "авекмнорстухіјѕԁԛԝѵӏ" "αβεζηικμνορτυχϲ" "օսհոցզ" "ıɑ"
    "ꓐꓑꓓꓔꓖꓗꓙꓚꓜꓝꓟꓠꓡꓢꓣꓦꓧꓪꓫꓬꓮꓰꓲꓳꓴ" "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ",
    "abekmhopctyxijsdqwvl" "abezhikmvoptyxc" "ouhngq" "ia"
    "bpdtgkjczfmnlsrvhwxyaeiou" "abcdefghijklmnoprstuvwyz")
#: Characters that read as a hyphen-minus: a non-breaking hyphen (U+2011) made "P‑controller"
#: a second "P-controller"; every dash (Unicode category Pd) and the minus sign fold to "-".
HYPHENS = "\u2212\u2043\ufe63\uff0d"
#: ASCII that Unicode's confusables pair with other ASCII (which `_latin_look_alikes` leaves
#: alone): a digit zero and the letter o, a one, a bar and the letter l (as i and l below), a
#: backtick and an apostrophe; "rn" reads as "m" (`name_key`). "TD3 (seed O)" and "Randorn
#: search" entered beside "TD3 (seed 0)" and "Random search".
ASCII_LOOK_ALIKES = str.maketrans("01|`", "oll'")


def name_key(name: str) -> str:
    """What an entry's name reads as on the site: compatibility forms folded (NFKC: full-width
    letters, ligatures), invisible characters (format characters such as a zero-width space,
    joiners and bidi marks; variation selectors: `IGNORABLE`) dropped, blank ones (`BLANKS`)
    read as spaces, case and runs of spaces ignored, look-alikes of Latin letters and digits
    (Unicode's confusables and `LOWER_LOOK_ALIKES`: `_latin_look_alikes`, before and after
    case folding) read as those, every dash as a hyphen-minus (`HYPHENS`), ASCII look-alikes
    as one character (`ASCII_LOOK_ALIKES`, "rn" as "m"), and
    i and l as one letter: a capital I is an l's one stroke in the site's sans-serif font, and
    case is ignored, so all four are (mapping I alone to l kept "HIL-SERL" and "hil-serl"
    apart)."""
    look_alikes = _latin_look_alikes()
    # Folded before NFKC as well: NFKC makes a lunate sigma Ϲ a Σ.
    compatible = unicodedata.normalize("NFKC", name.translate(look_alikes).translate(BLANKS))
    visible = "".join("-" if unicodedata.category(c) == "Pd" or c in HYPHENS else c
                      for c in compatible
                      if unicodedata.category(c) != "Cf"
                      and not any(ord(c) in r for r in IGNORABLE))
    folded = visible.translate(look_alikes).casefold().translate(look_alikes)
    ascii_folded = folded.replace("i", "l").translate(ASCII_LOOK_ALIKES).replace("rn", "m")
    return " ".join(ascii_folded.split())


#: The keys of agent.json that loading a checkpoint reads (`agents.load_agent`); the others
#: change nothing the evaluation runs.
CHECKPOINT_KEYS = ("format", "agent", "config", "seed", "observation_space", "action_space",
                   "rng_state", "extra", "contents", "optimizer_param_groups")


def _compact_bounds(space: Any) -> Any:
    """A space's JSON with every Box bound that is one number everywhere as that number, as
    `agents.checkpoint.space_to_json` writes it, without building the space (a few bytes of
    JSON can declare a shape of 10**9)."""
    if not isinstance(space, dict):
        return space
    space = {k: _compact_bounds(v) for k, v in space.items()}
    for key in ("low", "high"):
        flat, pending = [], [space.get(key)]
        while pending:
            value = pending.pop()
            if isinstance(value, list):
                pending.extend(value)
            else:
                flat.append(value)
        if isinstance(space.get(key), list) and flat and all(v == flat[0] for v in flat):
            space[key] = flat[0]
        if isinstance(space.get(key), int | float) and not isinstance(space[key], bool):
            space[key] = float(space[key])
    return space


def _acting_checkpoint(meta: Any, tensors: dict[str, Any]) -> tuple[dict[str, Any],
                                                                     dict[str, Any]]:
    """What of a checkpoint its actions depend on: what its policy-only export keeps (a full
    checkpoint and its export act alike: `policy_tensors`, bounds as one number), the keys
    loading reads, the config with its defaults filled in and the CPU as its device, no
    tensors for an agent without networks (the scripted baselines), floating tensors as float64
    (a float32 tensor and its float64 copy load the same). KeyError, TypeError, ValueError or
    RecursionError where the evaluation would refuse it."""
    import torch

    from agents import agent_spec
    from agents.checkpoint import POLICY_CONTENTS, CheckpointMixin
    from agents.config import build_config, config_to_dict
    from agents.registry import config_on_device, policy_tensors

    spec = agent_spec(meta["agent"])
    config = config_on_device(meta["config"], "cpu")  # as evaluation loads it (`load_agent`)
    tensors = policy_tensors(meta["agent"], tensors)
    if spec.cls._checkpoint_modules is CheckpointMixin._checkpoint_modules:
        tensors = {}
    # Not the training state loading restores and acting never reads: the seed, the random
    # streams and `extra`'s counters (`Agent.act(deterministic=True)` must not consume the
    # streams, and evaluation reseeds every episode). An entry re-entered with another seed or
    # counter in its agent.json was a new policy.
    meta = {k: meta[k] for k in CHECKPOINT_KEYS
            if k in meta and k not in ("seed", "rng_state", "extra")} | {
        "contents": POLICY_CONTENTS, "optimizer_param_groups": {},
        "observation_space": _compact_bounds(meta["observation_space"]),
        "action_space": _compact_bounds(meta["action_space"]),
        "config": config_to_dict(build_config(spec.config_cls, config))}
    return meta, {k: t.to(torch.float64) if t.is_floating_point() else t
                  for k, t in tensors.items()}


def policy_content(kind: str, paths: Mapping[str, Path]) -> str:
    """SHA-256 of what the evaluation runs, task by task: what of an agent checkpoint its
    actions depend on (`_acting_checkpoint`: agent.json as parsed JSON, the tensors by name) or
    the ONNX graph (`onnx_content`: without names, doc strings and metadata). Unlike the
    entry id, blind to folder names, README and .txt files beside the policy, JSON layout,
    keys and tensors loading never reads, safetensors' metadata and tensor order, and a full
    checkpoint against its policy-only export."""
    import torch

    from agents.checkpoint import AGENT_JSON, WEIGHTS, read_json, read_tensors

    h = hashlib.sha256()
    for label in sorted(paths):
        h.update(f"{label}\0{kind}\0".encode())
        path = paths[label]
        if kind != "agent":
            h.update(hashlib.sha256(onnx_content(path / "policy.onnx")).digest())
            continue
        try:
            meta, tensors = _acting_checkpoint(read_json(path / AGENT_JSON, "checkpoint"),
                                               read_tensors(path / WEIGHTS, "checkpoint"))
        except (KeyError, TypeError, ValueError, RecursionError):
            # the evaluation refuses it; its bytes stand for it until then
            for name in (AGENT_JSON, WEIGHTS):
                h.update(hashlib.sha256((path / name).read_bytes()).digest())
            continue
        h.update(json.dumps(meta, sort_keys=True).encode())
        for name in sorted(tensors):
            tensor = tensors[name].contiguous()
            h.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
            h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def task_policy_contents(kind: str, paths: Mapping[str, Path]) -> dict[str, str]:
    """`policy_content` of each task's policy alone, by task label; each folder hashed once a
    process while its files stay as they are (a submission compares every entry, twice)."""
    return {label: _folder_content(kind, label, str(path.resolve()), _files_state(path))
            for label, path in paths.items()}


def folder_contents(kind: str, paths: Mapping[str, Path]) -> frozenset[str]:
    """The `policy_content`s of a submission's or entry's policy folders, whatever tasks they
    are labelled by: the same policy on tracks of other task labels."""
    return frozenset(_folder_content(kind, "", str(path.resolve()), _files_state(path))
                     for path in set(paths.values()))


def _files_state(folder: Path) -> tuple:
    """The names and SHA-256 of `folder`'s files: a cache key that changes when they do
    (names, sizes and modification times did not where `cp -p`, `tar x` or `os.utime` set the
    time back; diff36). Hashing bytes is cheap beside loading the tensors it saves."""
    return tuple(sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                        for p in folder.iterdir() if p.is_file()))


@functools.lru_cache(maxsize=4096)
def _folder_content(kind: str, label: str, folder: str, state: tuple) -> str:
    return policy_content(kind, {label: Path(folder)})


def submit(
    ledger: Ledger, submission: Submission, source: str = "submission", builtin: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate ``submission`` on the public dev seeds and write a self-reported entry.

    Among the entries ranked on the track's current keys, a policy enters once (the same
    policy under other folder or file names would take as many places as it was submitted
    times) and a name is one entry's (`name_key`: a look-alike of another entry's name is it).
    """
    content = task_policy_contents(submission.policy_kind, submission.policy_paths)
    _check_new_on_track(ledger, submission, content, builtin)
    agent = agent_name_of(submission)
    track = submission.track
    # The maintainers' baselines are exempt: on paper000 random search, spiral search and
    # straight down act alike (every plug goes in before a search starts), elsewhere not.
    compared = [] if builtin else list(_current_entries(ledger, track))
    look_alikes = LookAlikes(ledger, compared)
    evaluation = evaluate_policy(track, submission.policy_kind, submission.policy_paths,
                                 lambda _: track.dev_seeds(), "public-dev", progress=progress,
                                 look_alikes=look_alikes)
    look_alikes.refuse_if_alike(track)
    entry = new_entry(submission, evaluation, source, builtin, agent)
    files = {p: submission.root / p for p, _, _ in submission.files}
    with ledger.lock():
        _check_new_on_track(ledger, submission, content, builtin)  # others may have entered
        several = len({p.resolve() for p in submission.policy_paths.values()}) > 1
        _check_acts_new(ledger, track, evaluation["episodes"], per_task=several and not builtin,
                        builtin_agent=agent if builtin else None)
        seen = {e["entry_id"] for e in compared}
        entered = [] if builtin else [e for e in _current_entries(ledger, track)
                                      if e["entry_id"] not in seen]
        if entered:  # meanwhile: two jittered copies submitted at once both entered
            again = LookAlikes(ledger, entered)
            evaluate_policy(track, submission.policy_kind, submission.policy_paths,
                            lambda _: track.dev_seeds(), "public-dev", look_alikes=again)
            again.refuse_if_alike(track)
        return ledger.add(entry, files), entry


def _check_new_on_track(ledger: Ledger, submission: Submission,
                        content: Mapping[str, str], builtin: bool = False) -> None:
    """LedgerError when the policy, a task's policy of it (`task_policy_contents`) or a
    look-alike of its name is already on the track: other entries' published policies,
    recombined task by task, entered as a new policy with hidden seeds of its own."""
    existing = ledger.entry_path(submission.track.name, submission.policy_sha256)
    if existing.exists() and not is_stale(json.loads(existing.read_text(encoding="utf-8"))):
        raise LedgerError(f"this policy is already entry {submission.policy_sha256[:12]} of "
                          f"{submission.track.name}")
    if not name_key(submission.name):  # blank on the site: an empty link
        raise LedgerError(f"submission.toml: name {submission.name!r} shows no visible "
                          "character")
    track = submission.track
    # The files of a stale entry, or of another track's entry, are public: entered under
    # another name they took the entry over and refused its owner's resubmission (leader27),
    # also with a file added (compared by what acting reads, not by the files' hash; diff35)
    # and on a track of other task labels (label-free; leader28).
    mine = folder_contents(submission.policy_kind, submission.policy_paths)
    every = ledger.entries()  # read once: 4 s for the shipped ledger
    for other in every:
        if (name_key(other["name"]) == name_key(submission.name)
                or (builtin and other.get("builtin"))
                or (other["track"] == track.name and _ranked(other))):
            continue  # the track's ranked entries: refused below as the entry they are
        if other["entry_id"] != submission.policy_sha256:
            if other["policy"]["kind"] != submission.policy_kind:
                continue  # another kind never acts from the same content
            try:
                theirs = folder_contents(other["policy"]["kind"],
                                         stored_policy_paths(ledger, other))
            except LedgerError:  # its stored files are gone: nothing to compare
                continue
            if theirs != mine:
                continue
        raise LedgerError(f"this policy is entry {other['entry_id'][:12]} of {other['track']} "
                          f"({other['name']!r}); it enters again, on this track or another, "
                          "under that name only")
    current = list(_current_entries(ledger, track, every))  # not a second 4 s read
    # A stale entry's policies are its owner's to enter again: taken into another submission
    # first, they refused the owner's own resubmission (leader21).
    # An earlier track version's entries are stale too (they were left out: leader28).
    stale = [e for e in every if e["track"] == track.name and not _ranked(e)]
    current_ids = {e["entry_id"] for e in current}
    for other in current + stale:
        is_current = other["entry_id"] in current_ids
        named_alike = name_key(other["name"]) == name_key(submission.name)
        if is_current and named_alike:
            raise LedgerError(f"entry {other['entry_id'][:12]} of {track.name} is already "
                              f"called {other['name']!r}; give the submission another name")
        # So is a stale entry's name, for its policy (another took it, and the owner's
        # resubmission was refused under its own name; leader25) or, a maintainers' baseline's,
        # for the matrix's new run. Not for its authors: anyone can write them (diff31).
        stale_name = LedgerError(
            f"stale entry {other['entry_id'][:12]} of {track.name} is called {other['name']!r}, "
            "a name kept for its policy to enter again; give the submission another name (a "
            "policy retrained on the new tasks too)")
        own = other["entry_id"] == submission.policy_sha256
        named_alike = named_alike and not own and not (builtin and other.get("builtin"))
        try:
            theirs = task_policy_contents(other["policy"]["kind"],
                                          stored_policy_paths(ledger, other))
        except LedgerError:
            if is_current:
                raise
            if named_alike:
                raise stale_name from None
            continue  # a stale entry whose stored files are gone: nothing to compare
        same = [label for label, c in content.items() if theirs.get(label) == c]
        if not is_current and (own or theirs == content):
            continue  # the stale entry's own policy, entered again (`Ledger.add` archives it)
        if named_alike:
            raise stale_name
        if theirs == content:
            raise LedgerError(f"this policy is already entry {other['entry_id'][:12]} of "
                              f"{track.name} ({other['name']!r}): the same actions, under "
                              "other file names or settings that do not change them; a policy "
                              "enters a track once")
        if same:
            raise LedgerError(f"this policy's {', '.join(same)} polic"
                              f"{'y is' if len(same) == 1 else 'ies are'} entry "
                              f"{other['entry_id'][:12]}'s of {track.name} ({other['name']!r}) "
                              "for the same task, under other file names or settings that do "
                              "not change its actions; a task's policy enters a track once "
                              "(its hidden seeds would be drawn again)")


def _current_entries(ledger: Ledger, track: Track,
                     entries: list[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """The entries ranked on ``track``'s current task version keys, of ``entries`` (the
    ledger's `entries()` where already read) or of the ledger."""
    keys = track.version_keys()
    for other in ledger.entries() if entries is None else entries:
        scored = other["evaluations"].get("hidden", other["evaluations"]["dev"])
        if (other["track"] == track.name and scored["task_version_keys"] == keys
                and scored.get("track_version", 1) == TRACK_VERSION):
            yield other


#: Relative tolerance within which two entries' dev episodes count as one policy's: a copy
#: with one weight per task moved by one unit in the last place entered as a new policy (its
#: peak forces differed in the 6th-7th significant digit), with hidden seeds of its own.
ACTS_ALIKE_REL_TOL = 1e-3


def _acts_alike(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Whether two lists of episode records agree: every outcome (success, steps, text) equal
    and every other number within `ACTS_ALIKE_REL_TOL`."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for key, u in x.items():
            v = y[key]
            if isinstance(u, float) and isinstance(v, float):  # bool is no float
                if not math.isclose(u, v, rel_tol=ACTS_ALIKE_REL_TOL, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def _check_acts_new(ledger: Ledger, track: Track, episodes: list[dict[str, Any]],
                    per_task: bool = False, builtin_agent: str | None = None) -> None:
    """LedgerError when an entry of the track recorded these dev episodes (`_acts_alike`): the
    same policy in a form `policy_content` does not see through (an ONNX graph with renamed
    tensors, an Identity node or another opset; a checkpoint whose training-only settings
    differ; weights moved in their last digits), which entered as often as it was repackaged,
    each copy with hidden seeds of its own (best of N). With `per_task` (a `[policy.per_task]`
    submission of several policies), also when one task's episodes are an entry's of that
    task: its policy for that task taken in such a form (leader21: a copied USB policy with
    another batch_size, or an Identity node, entered beside its own D-sub policy). A task on
    which two entries already act alike tells no policy apart, and is not compared (diff26: on
    families-test's EU plug straight down and both searches replay one another, and a search
    of one's own that descends first would have been refused there). The maintainers'
    baselines are not compared task by task, nor a built-in entry (`builtin_agent`, its agent)
    with another agent's built-in ones: on paper000 the three searches act alike, and the
    track's text reads scores against straight down, which `--from-matrix` refused after the
    spiral search (newuser22)."""
    def by_task(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        tasks: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            tasks.setdefault(record["task"], []).append(record)
        return tasks

    mine = by_task(episodes)
    entries = list(_current_entries(ledger, track))
    theirs_all = [by_task(e["evaluations"]["dev"]["episodes"]) for e in entries]
    undiscerning = {label for label in mine if any(
        _acts_alike(a.get(label, []), b.get(label, []))
        for i, a in enumerate(theirs_all) for b in theirs_all[i + 1:])} if per_task else set()
    for other, theirs_by_task in zip(entries, theirs_all, strict=True):
        theirs = other["evaluations"]["dev"]["episodes"]
        if (builtin_agent is not None and other.get("builtin")
                and other["policy"].get("agent") != builtin_agent):
            continue  # another of the maintainers' methods
        if _acts_alike(theirs, episodes):
            raise LedgerError(f"this policy acts as entry {other['entry_id'][:12]} of "
                              f"{track.name} ({other['name']!r}) does in all {len(episodes)} "
                              f"dev episodes (every outcome equal, every number within "
                              f"{ACTS_ALIKE_REL_TOL:.1%}): the same policy in another form; a "
                              "policy enters a track once")
        if not per_task or len(mine) < 2:  # one task: the whole-policy check said it
            continue
        alike = [label for label, records in mine.items() if label not in undiscerning
                 and _acts_alike(theirs_by_task.get(label, []), records)]
        if alike:
            raise LedgerError(f"this policy's {', '.join(alike)} polic"
                              f"{'y acts' if len(alike) == 1 else 'ies act'} as entry "
                              f"{other['entry_id'][:12]}'s of {track.name} ({other['name']!r}) "
                              "does in all its dev episodes of the same task (every outcome "
                              f"equal, every number within {ACTS_ALIKE_REL_TOL:.1%}): that "
                              "policy in another form; a task's policy enters a track once")


#: How close [action units; actions lie in [-1, 1]] another entry's actions must stay to a
#: submission's, on every observation of its dev episodes, for the two to count as one policy.
#: The episodes' numbers alone let weights moved by 1e-4 of their size in as a new policy (the
#: contacts amplify any difference), with hidden seeds of its own: best of N.
ACTS_ALIKE_ACTION_TOL = 0.01


class LookAlikes:
    """Other entries asked, beside a submission, for their actions on every observation of its
    dev episodes (`evaluate_policy`); `alike` keeps those whose actions stayed within
    `ACTS_ALIKE_ACTION_TOL` of its own so far. An entry told apart is not loaded again."""

    def __init__(self, ledger: Ledger, entries: list[dict[str, Any]]):
        self.ledger, self.alike = ledger, entries
        self.steps = 0  # observations compared

    def shadowing(self, policy: Callable[[Any], Any], label: str, env: gym.Env) -> _Shadowed:
        """`policy`, also asking every entry still alike (its policy for task `label`). An
        entry that no longer loads (a limit tightened since it entered) acts otherwise: it
        blocked every submission to its track, with its own error."""
        others = []
        for other in self.alike:
            try:
                others.append(load_policy(other["policy"]["kind"],
                                          stored_policy_paths(self.ledger, other)[label], env))
            except (SubmissionError, LedgerError):
                others.append(None)
        return _Shadowed(policy, others)

    def refuse_if_alike(self, track: Track) -> None:
        """LedgerError when an entry stayed alike over every step compared."""
        if self.alike:
            other = self.alike[0]
            raise LedgerError(f"this policy acts as entry {other['entry_id'][:12]} of "
                              f"{track.name} ({other['name']!r}) does: on all {self.steps:,} "
                              f"steps of its dev episodes their actions differ by at most "
                              f"{ACTS_ALIKE_ACTION_TOL:g}; a policy enters a track once")

    def settle(self, shadowed: _Shadowed) -> None:
        """Keep the entries that stayed alike over the episodes `shadowed` acted in."""
        self.alike = [o for o, gap in zip(self.alike, shadowed.gaps, strict=True)
                      if gap <= ACTS_ALIKE_ACTION_TOL]
        self.steps += shadowed.steps


class _Shadowed:
    """A policy that also asks other policies for their actions on every observation it acts
    on (in the same env, so hand controllers read the same goal) and keeps each one's largest
    difference from its own actions."""

    def __init__(self, policy: Callable[[Any], Any],
                 others: list[Callable[[Any], Any] | None]):
        """``others``: None for one that could not be loaded (it acts otherwise)."""
        self.policy, self.others = policy, others
        self.gaps = [0.0 if other is not None else math.inf for other in others]
        self.steps = 0

    def reset(self, seed: int | None = None) -> None:
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset(seed=seed)
        for i, other in enumerate(self.others):
            reset = getattr(other, "reset", None)
            if self.gaps[i] <= ACTS_ALIKE_ACTION_TOL and callable(reset):
                try:
                    reset(seed=seed)
                except Exception:  # noqa: BLE001 - the other entry's failure, not this one's
                    self.gaps[i] = math.inf

    def __call__(self, obs: Any) -> Any:
        action = self.policy(obs)
        self.steps += 1
        mine = np.asarray(action, dtype=np.float64)
        for i, other in enumerate(self.others):
            if self.gaps[i] > ACTS_ALIKE_ACTION_TOL:
                continue  # told apart already
            try:
                theirs = np.asarray(other(obs), dtype=np.float64)
            except Exception:  # noqa: BLE001 - a policy that fails here acts otherwise
                self.gaps[i] = math.inf
                continue
            gap = float(np.max(np.abs(theirs - mine))) if theirs.shape == mine.shape else math.inf
            self.gaps[i] = max(self.gaps[i], gap)
        return action


def stored_policy_paths(ledger: Ledger, entry: Mapping[str, Any]) -> dict[str, Path]:
    root = ledger.policy_dir(entry["entry_id"])
    for f in entry["policy"]["files"]:
        data = (root / f["path"]).read_bytes() if (root / f["path"]).is_file() else None
        if data is None or hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise LedgerError(f"stored policy file {f['path']} of entry "
                              f"{entry['entry_id'][:12]} is missing or altered")
    return {label: root / rel for label, rel in entry["policy"]["per_task"].items()}


def _compared(recorded: list[dict[str, Any]], recomputed: list[dict[str, Any]], what: str,
              bitwise_because: str | None) -> EpisodeComparison:
    """The comparison of a recheck; LedgerError when it fails (see `verify`).
    ``bitwise_because``: why the records must be bitwise the ledger's, or None where equal
    outcomes suffice."""
    try:
        comparison = compare_episodes(recorded, recomputed)
    except ValueError as err:
        raise LedgerError(f"recomputed {what}: {err}") from None
    if comparison.outcome_changes or (bitwise_because and not comparison.identical_all):
        raise LedgerError(describe(comparison, what) + ("" if comparison.outcome_changes else
                                                        f"; not bitwise identical, as required "
                                                        f"{bitwise_because}"))
    return comparison


@dataclass(frozen=True)
class Verification:
    """What `verify` did: the entry file, the entry, its salt round, and whether the hidden
    evaluation was recomputed and compared (``rechecked``) rather than written."""

    path: Path
    entry: dict[str, Any]
    salt_round: SaltRound
    rechecked: bool
    #: For a recheck: the recomputed MuJoCo (and PyBullet) episodes against the ledger's.
    comparisons: dict[str, EpisodeComparison] = field(default_factory=dict)
    #: For a recheck: the platform that evaluated the entry (None: not recorded) and this one.
    platforms: tuple[dict[str, str] | None, dict[str, str]] | None = None
    #: For a recheck: what was not recomputed, and why (a PyBullet block of an earlier model).
    not_recomputed: dict[str, str] = field(default_factory=dict)


def verify(
    ledger: Ledger, ref: str | Mapping[str, Any], salt_file: Path | None,
    progress: Callable[[str], None] | None = None, sim2sim: bool = True,
    exact: bool = False,
) -> Verification:
    """Re-evaluate an entry (``ref``: `Ledger.resolve`'s) on the hidden seeds of its track's
    active salt round and record the result, with the PyBullet sim-to-sim block on the same
    seeds unless ``sim2sim=False``.

    Recheck instead (nothing written): when the entry's hidden evaluation was made under a
    round that has since been revealed, and ``salt_file`` is that round's salt or None (the
    published salt is used), the ranked MuJoCo episodes (and the PyBullet episodes, when the
    entry has a sim-to-sim block and ``sim2sim`` is on) are recomputed with the salt of the
    entry's own round and compared (`leaderboards.recheck`): LedgerError if an episode's
    outcome differs, or if any record is not bitwise the ledger's with ``exact`` or on the
    platform that evaluated the entry (its recorded fingerprint equals this one's). An
    entry whose round's salt was lost cannot be rechecked; it can be verified again under the
    active round.
    """
    entry = ledger.resolve(ref)
    track = get_track(entry["track"])
    rounds = ledger.salt_rounds(track.name)
    own = ledger.entry_round(entry)
    short = entry["entry_id"][:12]
    if is_stale(entry):
        # Verified under today's keys it was ranked beside the current entry of the same
        # policy, which submit's duplicate checks would have refused; rechecked, every episode
        # was recomputed on today's tasks and "changed" (leader23).
        raise LedgerError(f"entry {short} was submitted on other versions of {track.name}'s "
                          "tasks (it is stale): its episodes cannot be recomputed by this code; "
                          "submit its policy again to enter it on the current ones")
    if salt_file is None:
        if own is None or own.status != "revealed":
            why = ("is not verified" if "hidden" not in entry["evaluations"] else
                   "was verified under a salt not in the track's rounds" if own is None else
                   f"was verified under {track.name} salt round {own.number}, whose salt was "
                   f"lost on {(own.closed_at or '?')[:10]}: its hidden seeds cannot be recomputed"
                   if own.status == "lost" else
                   f"was verified under {track.name} salt round {own.number}, not revealed yet")
            raise LedgerError(f"entry {short} {why}; give --salt-file (the active round's salt) "
                              "to verify it")
        salt = own.salt()
    else:
        salt = ledger.read_salt(salt_file)
    digest = salt_sha256(salt)
    recheck = own is not None and own.status == "revealed" and own.salt_sha256 == digest
    try:
        salt_round = own if recheck else rounds.require_active(salt)
    except SaltError as err:
        raise LedgerError(str(err)) from None
    if not recheck:  # before minutes of evaluation, and again on the block's own date
        _check_clock(short, utc_now(), salt_round)
    paths = stored_policy_paths(ledger, entry)
    # Seeds of this entry alone (`hidden_seeds`); a recheck recomputes the seeds it was given.
    per_entry = not recheck or entry["evaluations"]["hidden"].get("per_entry_seeds", False)

    def seeds(label: str) -> list[int]:
        return hidden_seeds(salt, track.name, label, track.episodes_per_task,
                            entry["entry_id"] if per_entry else None)

    evaluation = evaluate_policy(track, entry["policy"]["kind"], paths, seeds, "hidden",
                                 salt_sha256=digest, progress=progress)
    if per_entry:
        evaluation["per_entry_seeds"] = True

    def pybullet_block(noiseless: bool = True) -> dict[str, Any]:
        from leaderboards.sim2sim import evaluate_sim2sim  # imports PyBullet only when used

        return evaluate_sim2sim(track, entry["policy"]["kind"], paths, seeds,
                                evaluation["task_version_keys"], digest,
                                evaluation["evaluated_at"], progress, noiseless)
    path = ledger.entry_path(entry["track"], entry["entry_id"])
    if recheck:
        # Where a block was evaluated, nothing but an edit can change a bit.
        def bitwise_because(platform: Mapping[str, str] | None) -> str | None:
            return ("on the platform that evaluated it" if platform == evaluation["platform"]
                    else "by --exact" if exact else None)

        recorded = entry["evaluations"]["hidden"].get("platform")
        comparisons = {"MuJoCo": _compared(entry["evaluations"]["hidden"]["episodes"],
                                           evaluation["episodes"], f"hidden episodes of {short}",
                                           bitwise_because(recorded))}
        not_recomputed = {}
        stored = entry.get("sim2sim") if sim2sim else None
        if stored is not None:
            # Each part on its own platform where it records one (a part added or rerun later,
            # elsewhere); a PyBullet part without one ran with the hidden evaluation.
            if sim2sim_revision(stored) == PYBULLET_REVISION or not stored["episodes"]:
                block = pybullet_block(noiseless="noiseless" in stored)
                comparisons["PyBullet"] = _compared(
                    stored["episodes"], block["episodes"], f"PyBullet episodes of {short}",
                    bitwise_because(stored.get("platform", recorded)))
                quiet_now = block.get("noiseless")
            else:  # MuJoCo's noiseless reference still replays
                from leaderboards.sim2sim import evaluate_noiseless

                not_recomputed["PyBullet"] = (
                    f"its episodes ran on PyBullet model revision {sim2sim_revision(stored)}, "
                    f"which this code (revision {PYBULLET_REVISION}) cannot replay")
                quiet_now = None if "noiseless" not in stored else evaluate_noiseless(
                    track, entry["policy"]["kind"], paths, stored, seeds,
                    evaluation["task_version_keys"], progress)
            quiet = stored.get("noiseless")
            if quiet is not None:
                comparisons["MuJoCo (noiseless)"] = _compared(
                    quiet["episodes"], quiet_now["episodes"],
                    f"noiseless MuJoCo episodes of {short}", bitwise_because(quiet["platform"]))
        return Verification(path, entry, salt_round, rechecked=True, comparisons=comparisons,
                            platforms=(recorded, evaluation["platform"]),
                            not_recomputed=not_recomputed)
    entry = dict(entry)
    entry["evaluations"] = dict(entry["evaluations"]) | {"hidden": evaluation}
    entry.pop("sim2sim", None)  # it belonged to the previous hidden evaluation
    if sim2sim:
        entry["sim2sim"] = pybullet_block()
    # The date rule every reader applies (check_hidden_seeds): a clock an hour off wrote a
    # "verified" block that made every later command refuse the ledger (leader26).
    _check_clock(short, evaluation["evaluated_at"], salt_round)
    with ledger.lock():
        try:  # again: a reveal or lose-round may have closed the round during the evaluation
            # Listed first: cut off before the entry is written, the listing is harmless.
            earlier = {e["entry_id"]: [verification_sha256(e)] for e in ledger.entries()
                       if e["evaluations"].get("hidden", {}).get("salt_sha256") == digest}
            ledger.salt_rounds(track.name).record_verified(salt, entry, earlier)
        except SaltError as err:
            raise LedgerError(f"{err} (it closed while entry {short} was evaluated; nothing "
                              "was written)") from None
        return Verification(ledger.replace(entry), entry, salt_round, rechecked=False)


def _check_clock(short: str, at: str, salt_round: SaltRound) -> None:
    """LedgerError unless `at`, this machine's clock, lies after the round opened (give or take
    `CLOCK_SKEW_S`): a hidden block dated before it is refused by every reader."""
    if not _within_round(at, salt_round.opened_at, None):
        raise LedgerError(f"entry {short}: this machine's clock dates its hidden evaluation "
                          f"{at}, before salt round {salt_round.number} opened "
                          f"({salt_round.opened_at}, give or take an hour): set the clock right "
                          "and verify again; nothing was written")


@dataclass(frozen=True)
class DevRecheck:
    """What `recheck_dev` found: the entry, its recomputed dev episodes against the ledger's,
    and the platform that made the entry's dev block (None: not recorded) and this one."""

    entry: dict[str, Any]
    comparison: EpisodeComparison
    platforms: tuple[dict[str, str] | None, dict[str, str]]


def recheck_dev(ledger: Ledger, ref: str | Mapping[str, Any],
                progress: Callable[[str], None] | None = None,
                exact: bool = False) -> DevRecheck:
    """Recompute an entry's self-reported evaluation on the public dev seeds and compare it
    with the ledger's, as `verify` rechecks a revealed hidden one (the same tolerance: equal
    outcomes elsewhere, bitwise on the platform that made it or with ``exact``). Anyone can run
    it: the seeds are public. LedgerError when an outcome differs, or when the entry was made
    on other versions of the track's tasks (the same policy now faces other tasks)."""
    entry = ledger.resolve(ref)
    track = get_track(entry["track"])
    short = entry["entry_id"][:12]
    dev = entry["evaluations"]["dev"]
    if dev["task_version_keys"] != track.version_keys():
        raise LedgerError(f"entry {short} was evaluated on other versions of {track.name}'s "
                          "tasks (it is stale): its dev episodes cannot be recomputed here")
    evaluation = evaluate_policy(track, entry["policy"]["kind"],
                                 stored_policy_paths(ledger, entry),
                                 lambda label: track.dev_seeds(), "public-dev",
                                 progress=progress)
    recorded = dev.get("platform")
    comparison = _compared(dev["episodes"], evaluation["episodes"], f"dev episodes of {short}",
                           "on the platform that evaluated it"
                           if recorded == evaluation["platform"] else
                           "by --exact" if exact else None)
    return DevRecheck(entry, comparison, (recorded, evaluation["platform"]))
