"""Reading a submission without trusting it: a directory or ``.tar.gz`` with ``submission.toml``.

Layout::

    submission.toml
    policy/            (or any path named in submission.toml)
        agent.json + weights.safetensors      an InsertBench agent checkpoint, or
        policy.onnx                           an ONNX graph obs -> action

``submission.toml``::

    name = "My residual SAC"
    authors = ["A. Person"]
    method = "residual_sac"                   # free text: what the policy is
    paper_url = "https://..."                 # optional
    code_url = "https://..."                  # optional
    track = "paper000"

    [policy]
    kind = "agent"                            # "agent" (checkpoint) or "onnx"
    path = "policy"                           # one policy for every task of the track, or
    # [policy.per_task]                       # one per task label (not on zero-shot tracks)
    # USB = "usb"

    [training]
    env_steps = 20000
    demos = 0
    intervention_steps = 0
    wall_clock_s = 3600
    hardware = "2-core CPU"

Only these file types may appear: ``submission.toml``, ``agent.json``, ``*.safetensors``,
``*.onnx`` and ``README.md``/``*.txt``. Archives are read member by member: links, devices,
absolute paths and ``..`` are refused before anything is extracted, sizes are checked from
the headers, and the decompressed stream is read no further than those sizes allow. Nothing
from a submission is imported, unpickled or executed; the policy is run by `leaderboards.policy`
through safetensors + the agent registry, or onnxruntime.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import tempfile
import tomllib
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from leaderboards.tracks import Track, get_track

MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20
MAX_FILES = 200
ALLOWED_SUFFIXES = {".safetensors", ".onnx", ".txt"}
ALLOWED_NAMES = {"submission.toml", "agent.json", "README.md"}
#: Extensions that usually hold pickles (or code): named in the error so the submitter knows why.
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".joblib", ".bin",
                   ".py", ".pyc", ".so"}
POLICY_KINDS = ("agent", "onnx")
_TOP_KEYS = {"name", "authors", "method", "paper_url", "code_url", "track", "policy", "training"}
_TRAINING_KEYS = {"env_steps", "demos", "intervention_steps", "wall_clock_s", "hardware"}
#: Upper bounds of the reported training cost: far above any real run (10^12 env steps; ten
#: years), so that a typo or a hostile figure cannot overflow the site's arithmetic or print
#: a 300-digit wall-clock.
MAX_TRAINING_COUNT = 10**12
MAX_WALL_CLOCK_S = 10 * 365 * 24 * 3600.0


#: Tar headers, long-name and pax records and padding an archive may add per member [bytes]:
#: its decompressed stream may hold MAX_TOTAL_BYTES plus this for each of MAX_FILES members.
ARCHIVE_BYTES_PER_MEMBER = 8192
#: Longest member path [characters]: a name is printed in the error that refuses it.
PATH_LIMIT = 255

#: Longest name, method, author or hardware text [characters], URL and author list the site shows.
TEXT_LIMIT, URL_LIMIT, AUTHORS_LIMIT = 200, 2000, 100


class SubmissionError(ValueError):
    """A submission is malformed or unsafe; the message is one line for the submitter."""


@dataclass(frozen=True)
class Training:
    """Training cost as reported by the submitter."""

    env_steps: int
    demos: int = 0
    intervention_steps: int = 0
    wall_clock_s: float | None = None
    hardware: str = ""


@dataclass(frozen=True)
class Submission:
    """A validated submission, its files copied into ``root`` (a private temporary directory)."""

    root: Path
    name: str
    authors: tuple[str, ...]
    method: str
    track: Track
    policy_kind: str
    policy_paths: Mapping[str, Path]  # task label -> policy directory (inside root)
    training: Training
    paper_url: str = ""
    code_url: str = ""
    files: tuple[tuple[str, str, int], ...] = field(default=())  # policy (path, sha256, bytes)

    @property
    def policy_sha256(self) -> str:
        """SHA-256 over the policy files (relative path and content): the entry's identity."""
        return policy_files_sha256((path, digest) for path, digest, _ in self.files)


def policy_files_sha256(files: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over (relative path, SHA-256 of the content) of a policy's files, in order."""
    h = hashlib.sha256()
    for path, digest in files:
        h.update(f"{path}\0{digest}\n".encode())
    return h.hexdigest()


def _check_path_text(name: str) -> None:
    """A member path the errors below may print: short, and without control characters."""
    if len(name) > PATH_LIMIT:
        raise SubmissionError(f"path {name[:40]!r}... has {len(name):,} characters; at most "
                              f"{PATH_LIMIT}")
    try:  # a name's undecodable bytes come back as lone surrogates, which hashing cannot encode
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SubmissionError(f"path {name!r} is not valid UTF-8") from None
    if has_control(name):
        raise SubmissionError(f"path {name!r} holds a control character")


#: Unicode's bidirectional embeddings, overrides and isolates: they reorder the text after
#: them ("Trojan Source"), in a terminal line or beyond a name on the entry's page.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (newline, tab, escape, ...), a bidi control
    or a lone surrogate: echoed to the maintainer's terminal, an escape sequence in a name could
    rewrite what it shows; a surrogate (`"\\ud800"` in an entry file's JSON) cannot be encoded
    and stopped `render` halfway through the site."""
    return any(unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in text)


def check_file_name(name: str) -> PurePosixPath:
    """A policy file's path inside the submission: relative, no '..', an allowed kind."""
    _check_path_text(name)
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise SubmissionError(f"path {name!r} escapes the submission (absolute or '..')")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise SubmissionError(f"{name}: {suffix} files may hold pickles or code and are refused; "
                              "submit safetensors (agent checkpoint) or ONNX")
    if path.name not in ALLOWED_NAMES and suffix not in ALLOWED_SUFFIXES:
        raise SubmissionError(f"{name}: unknown file type; allowed: submission.toml, agent.json, "
                              "*.safetensors, *.onnx, README.md, *.txt")
    return path


class _BoundedGzip:
    """The decompressed stream of a .tar.gz for tarfile, refusing to be read or skipped past
    ``limit`` bytes.

    tarfile reads a long-name or pax header whole, sized by its own header, and skips a
    member's data by decompressing it: a 2 MB archive with a 2 GiB long name took 10 GB of
    memory and minutes before any member was checked.
    """

    def __init__(self, stream: gzip.GzipFile, path: Path, limit: int):
        self.stream, self.path, self.limit = stream, path, limit

    def _refuse_past(self, end: int) -> None:
        if end > self.limit:
            raise SubmissionError(f"{self.path} decompresses to more than {self.limit:,} bytes "
                                  f"(its files may hold {MAX_TOTAL_BYTES:,})")

    def read(self, size: int = -1) -> bytes:
        # At most one byte past the limit is read, and refused: a read asked for past it is no
        # fault by itself (the end-of-archive check asks for 1 MiB at a time, and an archive
        # of 256 MiB with large tar records was refused; diff27).
        room = self.limit + 1 - self.stream.tell()
        data = self.stream.read(room if size < 0 else min(size, room))
        self._refuse_past(self.stream.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self._refuse_past(offset if whence == 0 else self.stream.tell() + offset)
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


def _extract_archive(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz after checking every member's type, path and size."""
    limit = MAX_TOTAL_BYTES + (MAX_FILES + 2) * ARCHIVE_BYTES_PER_MEMBER
    size = archive.stat().st_size
    if size > limit:  # gzip reads a header's name byte by byte, unbounded (leader26)
        raise SubmissionError(f"{archive} is {size} bytes, more than a submission may be "
                              f"({limit} bytes, uncompressed)")
    try:
        with gzip.open(archive) as stream, tarfile.open(
            fileobj=_BoundedGzip(stream, archive, limit), mode="r:"
        ) as tar:
            members = []
            for member in tar:  # streamed: millions of empty members gzip to a few MB
                members.append(member)
                if len(members) > MAX_FILES:
                    raise SubmissionError(f"{archive} has more than {MAX_FILES} members")
            total, seen = 0, set()
            for m in members:
                _check_path_text(m.name)
                path = "/".join(p for p in PurePosixPath(m.name).parts if p != ".")
                if not m.isdir() and path in seen:  # the last copy won: not the one a reader sees
                    raise SubmissionError(f"{archive} holds {m.name} twice; each file once")
                seen.add(path)
                if m.issym() or m.islnk():
                    raise SubmissionError(f"{archive}: {m.name} is a link; links are refused")
                if not (m.isfile() or m.isdir()):
                    raise SubmissionError(f"{archive}: {m.name} is not a regular file")
                if m.isdir():
                    if PurePosixPath(m.name).is_absolute() or ".." in PurePosixPath(m.name).parts:
                        raise SubmissionError(f"path {m.name!r} escapes the submission")
                    continue
                check_file_name(m.name)
                if m.size > MAX_FILE_BYTES:
                    raise SubmissionError(f"{m.name} is {m.size} bytes (max {MAX_FILE_BYTES})")
                total += m.size
            if total > MAX_TOTAL_BYTES:
                raise SubmissionError(f"{archive} holds {total} bytes (max {MAX_TOTAL_BYTES})")
            _check_nothing_after(tar, archive)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise SubmissionError(f"{archive} is not a readable .tar.gz: {err}") from None


def _check_nothing_after(tar: tarfile.TarFile, archive: Path) -> None:
    """SubmissionError unless only zero blocks follow the last member, read to the end.

    tarfile takes a header it cannot read for the end of the archive and never reads gzip's
    trailer: an archive with one bit flipped was entered as its damaged weights, and one with
    a damaged header as its first members (leader22). Reading to the end checks gzip's CRC
    and length (OSError otherwise).
    """
    reader = tar.fileobj
    reader.seek(tar.offset)
    while chunk := reader.read(1 << 20):
        if chunk.count(0) != len(chunk):
            raise SubmissionError(f"{archive} holds data past its last readable member: a "
                                  "damaged or concatenated archive; pack it again")


def _copy_directory(src: Path, dest: Path) -> None:
    """Copy a submission directory file by file, refusing links and odd files."""
    count, total = 0, 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src).as_posix()
        _check_path_text(rel)
        if path.is_symlink():
            raise SubmissionError(f"{rel} is a symbolic link; links are refused")
        if path.is_dir():
            continue
        if not path.is_file():
            raise SubmissionError(f"{rel} is not a regular file")
        check_file_name(rel)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubmissionError(f"{rel} is {size} bytes (max {MAX_FILE_BYTES})")
        count, total = count + 1, total + size
        if count > MAX_FILES or total > MAX_TOTAL_BYTES:
            raise SubmissionError(f"{src} holds more than {MAX_FILES} files or "
                                  f"{MAX_TOTAL_BYTES} bytes")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())


def _require(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise SubmissionError(f"submission.toml: {where}{key} is missing")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SubmissionError(f"submission.toml: {where}{key} must be a {kind.__name__}, "
                              f"got {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str, where: str = "", limit: int = TEXT_LIMIT) -> str:
    """An optional text field ("" when absent); a number or table is refused, not str()-ed."""
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SubmissionError(f"submission.toml: {where}{key} must be a string, got {value!r}")
    return check_text(value, f"{where}{key}", limit)


def check_text(value: str, what: str, limit: int = TEXT_LIMIT) -> str:
    """``value`` if it has at most ``limit`` characters, none of them a control character: the
    site shows each in a table cell, and `submit` and `verify` print the name."""
    problem = text_problem(value, limit)
    if problem is not None:
        raise SubmissionError(f"submission.toml: {what} {problem}")
    return value


def text_problem(value: str, limit: int) -> str | None:
    """What keeps ``value`` from the site and the terminal ("has N characters; at most L",
    "holds a control character: ..."), or None: an entry's text and a salt round's note."""
    if len(value) > limit:
        return f"has {len(value):,} characters; at most {limit:,}"
    if has_control(value):
        return f"holds a control character: {value!r}"
    return None


def _url(table: Mapping[str, Any], key: str) -> str:
    """An optional http(s) URL: the site links it, so `javascript:` and other schemes are
    refused."""
    return check_url(_text(table, key, limit=URL_LIMIT).strip(), key)


def check_url(value: str, key: str) -> str:
    """``value`` if it is "" or an http(s) URL with a host and no whitespace (a space was
    refused by the entry schema only after the whole evaluation)."""
    check_text(value, key, URL_LIMIT)
    parts = urllib.parse.urlsplit(value)
    if value and (parts.scheme.lower() not in ("http", "https") or not parts.netloc
                  or any(c.isspace() for c in value)):
        raise SubmissionError(f"submission.toml: {key} must be an http(s) URL without spaces, "
                              f"got {value!r}")
    return value


def _count(table: Mapping[str, Any], key: str) -> int:
    value = table.get(key, 0)
    if (not isinstance(value, int) or isinstance(value, bool)
            or not 0 <= value <= MAX_TRAINING_COUNT):
        raise SubmissionError(f"submission.toml: training.{key} must be an integer from 0 to "
                              f"{MAX_TRAINING_COUNT:.0e}, got {value!r}")
    return value


def parse_training(table: Any) -> Training:
    if not isinstance(table, dict):
        raise SubmissionError("submission.toml: [training] (env_steps, ...) is missing")
    unknown = set(table) - _TRAINING_KEYS
    if unknown:
        raise SubmissionError(f"submission.toml: unknown [training] keys {sorted(unknown)}")
    if "env_steps" not in table:
        raise SubmissionError("submission.toml: training.env_steps is missing")
    wall = table.get("wall_clock_s")
    if wall is not None and (not isinstance(wall, int | float) or isinstance(wall, bool)
                             or not 0 <= wall <= MAX_WALL_CLOCK_S):
        raise SubmissionError(f"submission.toml: training.wall_clock_s must be a number of "
                              f"seconds from 0 to {MAX_WALL_CLOCK_S:.3g} (ten years), got {wall!r}")
    return Training(_count(table, "env_steps"), _count(table, "demos"),
                    _count(table, "intervention_steps"),
                    None if wall is None else float(wall), _text(table, "hardware", "training."))


def _policy_paths(root: Path, table: Any, track: Track) -> tuple[str, dict[str, Path]]:
    if not isinstance(table, dict):
        raise SubmissionError("submission.toml: [policy] (kind, path) is missing")
    kind = _require(table, "kind", str, "policy.")
    if kind not in POLICY_KINDS:
        raise SubmissionError(f"submission.toml: policy.kind must be one of {POLICY_KINDS}, "
                              f"got {kind!r}")
    if ("path" in table) == ("per_task" in table):
        raise SubmissionError("submission.toml: give exactly one of policy.path and "
                              "[policy.per_task]")
    if "path" in table:
        raw = {label: _require(table, "path", str, "policy.") for label in track.labels()}
    else:
        per_task = table["per_task"]
        if not isinstance(per_task, dict) or set(per_task) != set(track.labels()):
            got = sorted(per_task) if isinstance(per_task, dict) else per_task
            raise SubmissionError(f"submission.toml: [policy.per_task] must name every task of "
                                  f"track {track.name}: {track.labels()}, got {got}")
        raw = {label: per_task[label] for label in track.labels()}
    paths = {}
    for label, rel in raw.items():
        if not isinstance(rel, str):
            raise SubmissionError(f"submission.toml: policy path for {label} must be a string")
        _check_path_text(rel)
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            raise SubmissionError(f"submission.toml: policy path {rel!r} escapes the submission")
        path = root / pure
        needed = "agent.json" if kind == "agent" else "policy.onnx"
        if not (path / needed).is_file():
            raise SubmissionError(f"policy for {label}: {rel}/{needed} is missing")
        if kind == "agent" and not (path / "weights.safetensors").is_file():
            raise SubmissionError(f"policy for {label}: {rel}/weights.safetensors is missing")
        paths[label] = path
    policies = len(set(paths.values()))
    if track.training_task is not None and policies > 1:
        # A policy per task knows which test task it runs: no zero-shot result.
        raise SubmissionError(f"submission.toml: track {track.name} is zero-shot: one policy "
                              f"runs every task (policy.path); [policy.per_task] names "
                              f"{policies} policies")
    return kind, paths


#: How old a dead process's private copy must be before another command removes it [s].
ABANDONED_COPY_AGE_S = 24 * 3600.0


def private_folder(prefix: str) -> Path:
    """A new private temporary folder ``<prefix><pid>-<random>``, made after removing this
    user's folders of ``prefix`` that a process now gone made over a day ago: a ``kill -9``
    leaves its copy of a submission behind (~1 MB each), which nothing else removes."""
    import os
    import time

    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = old.name[len(prefix):].split("-", 1)[0]
        try:
            if (not pid.isdigit() or not old.is_dir() or old.stat().st_uid != os.getuid()
                    or time.time() - old.stat().st_mtime < ABANDONED_COPY_AGE_S):
                continue
            os.kill(int(pid), 0)  # raises if no such process
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except OSError:  # gone meanwhile, or another user's process (PermissionError): alive
            continue
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def load_submission(source: str | Path, track: str | None = None) -> Submission:
    """Validate ``source`` (a directory or .tar.gz) into a private copy; SubmissionError if bad.

    ``track`` (the command line's ``--track``) must agree with submission.toml's if both are
    given. The caller removes ``Submission.root`` when done.
    """
    source = Path(source)
    if not source.exists():
        raise SubmissionError(f"{source} does not exist")
    root = private_folder("insertbench-submission-")
    try:
        return _load(source, root, track)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _load(source: Path, root: Path, track: str | None) -> Submission:
    if source.is_dir():
        _copy_directory(source, root)
    elif source.name.endswith((".tar.gz", ".tgz")):
        _extract_archive(source, root)
    else:
        raise SubmissionError(f"{source} is neither a directory nor a .tar.gz")
    toml_path = root / "submission.toml"
    if not toml_path.is_file():
        raise SubmissionError(f"{source} has no submission.toml at its top level")
    try:  # utf-8-sig: an editor's "UTF-8 with BOM" read as an invalid statement at 1:1
        meta = tomllib.loads(toml_path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SubmissionError(f"submission.toml is not valid TOML: {err}") from None
    except RecursionError:  # thousands of nested arrays: "maximum recursion depth exceeded"
        raise SubmissionError("submission.toml is not valid TOML for a submission: its values "
                              "nest too deeply") from None
    unknown = set(meta) - _TOP_KEYS
    if unknown:
        raise SubmissionError(f"submission.toml: unknown keys {sorted(unknown)}; "
                              f"known: {sorted(_TOP_KEYS)}")
    track_name = _require(meta, "track", str, "")
    if track is not None and track != track_name:
        try:  # a typo in --track: say that first, not that the two differ
            get_track(track)
        except KeyError as err:
            raise SubmissionError(f"--track: {err.args[0]}") from None
        raise SubmissionError(f"--track {track} but submission.toml says track = {track_name!r}")
    try:
        track_obj = get_track(track_name)
    except KeyError as err:
        raise SubmissionError(str(err.args[0])) from None
    authors = _require(meta, "authors", list, "")
    if not authors or not all(isinstance(a, str) and a.strip() for a in authors):
        raise SubmissionError("submission.toml: authors must be a non-empty list of names")
    if len(authors) > AUTHORS_LIMIT:
        raise SubmissionError(f"submission.toml: {len(authors):,} authors; at most "
                              f"{AUTHORS_LIMIT}")
    for author in authors:
        check_text(author, "an author")
    kind, paths = _policy_paths(root, meta.get("policy"), track_obj)
    files = []
    policy_dirs = set(paths.values())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if not policy_dirs & set(path.parents):
            continue
        data = path.read_bytes()
        files.append((path.relative_to(root).as_posix(), hashlib.sha256(data).hexdigest(),
                      len(data)))
    return Submission(
        root=root,
        name=check_text(_require(meta, "name", str, ""), "name").strip() or "unnamed",
        authors=tuple(authors),
        method=check_text(_require(meta, "method", str, ""), "method"),
        track=track_obj,
        policy_kind=kind,
        policy_paths=paths,
        training=parse_training(meta.get("training")),
        paper_url=_url(meta, "paper_url"),
        code_url=_url(meta, "code_url"),
        files=tuple(files),
    )
