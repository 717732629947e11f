"""A folder held by one writer at a time: a training run's or a dataset collection's."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Held by a run for as long as it writes its folder (`run_lock`).
LOCK_FILE = "checkpoint.lock"


class RunInProgress(RuntimeError):
    """Another run (or collection) holds the folder's lock file."""


@contextmanager
def run_lock(out_dir: Path, lock_file: str = LOCK_FILE, what: str = "run") -> Iterator[None]:
    """Hold ``out_dir/<lock_file>`` for a run (`train`, `train-async`) or a dataset collection:
    two runs into one folder deleted each other's checkpoint.tmp (one ended in a
    SafetensorError) or left one run's checkpoint under the other's run.json, resumed later
    under the wrong seed; two collections renamed each other's episode files away, or built
    one dataset twice over. A folder left holding only the lock (a run refused before its
    first checkpoint) is left as it was: the lock file removed, and the folders made for it
    too."""
    from benchmark.cli_options import file_in_the_way

    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # innermost first
    if (file := file_in_the_way(out_dir)) is not None:  # a recipe's part: FileExistsError
        raise ValueError(f"{file} is a file where the {what}'s folder belongs; remove it")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / lock_file
    if path.is_dir():  # an IsADirectoryError, as an internal error (data23)
        raise ValueError(f"{path} is a folder where the {what}'s lock file belongs; remove it")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # an ending run removed the empty folder it had made
            out_dir.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunInProgress(f"another {what} is writing {out_dir} (it holds {path}); "
                                f"wait for it to end, or give this {what} a folder of its "
                                "own") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # not a file that an ending run unlinked while we opened it
        os.close(fd)
    try:
        yield
    finally:
        try:  # tidied while still held: a run that starts meanwhile finds its lock intact
            if {p.name for p in out_dir.iterdir()} <= {lock_file}:
                path.unlink(missing_ok=True)
                for folder in made:  # the folders made for it, if nothing else went in
                    try:
                        folder.rmdir()
                    except OSError:
                        break
        finally:
            os.close(fd)  # releases the lock
