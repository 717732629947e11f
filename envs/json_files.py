"""JSON that every reader can parse, and files (JSON or any other) written whole.

Here, at the bottom of the layering, because every room above writes such files: `benchmark`'s
run folders and caches, `real`'s validation reports, `leaderboards`' ledger.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

#: What a writer does with NaN and +-inf: refuse them (ValueError, nothing written), write them
#: as null (`standard_json`), or keep Python's bare ``NaN`` / ``Infinity`` (which JavaScript's
#: JSON.parse refuses: only for files read back by Python alone, such as stage caches).
NonFinite = Literal["refuse", "null", "keep"]


def standard_json(value: Any, **dumps: Any) -> str:
    """JSON that every parser reads: NaN and +-inf (a mean over no successes) as null, where
    Python's default wrote the bare ``NaN`` that JavaScript's JSON.parse refuses."""
    return json.dumps(_finite_or_null(value), allow_nan=False, **dumps)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite_or_null(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(x) for x in value]
    return value


def write_json(path: Path, data: Any, non_finite: NonFinite = "refuse") -> None:
    """Write ``data`` to ``path`` through a temporary file of its own renamed into place: a
    reader sees the old file or the new one, never half of one, and two writers of one file do
    not share a temporary file. ``non_finite`` says what becomes of NaN and +-inf."""
    if non_finite == "null":
        data = _finite_or_null(data)
    text = json.dumps(data, indent=1, allow_nan=non_finite == "keep") + "\n"
    with written_whole(path) as tmp:
        tmp.write_text(text)


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, for writers that pick a format by it) to
    write into; renamed to ``path`` when the block ends, removed if it raises. A full disk or a
    crash leaves the old file or none, never a truncated one that a later run takes as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own, created with open's "x" (mkstemp's files are 0600, not the umask's).
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        open(tmp, "x").close()
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None and err.filename is None:
            # A write's error (a full disk, a lost mount) names no file: name the one it was.
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
