"""Options shared by the `insertbench` commands: one `--env KEY=VALUE` syntax for env kwargs,
and the one-line message of a failed `gym.make`.

Every command that builds a task (`rollout`, `train`, `eval`, `dataset collect`,
`real validate`) takes env kwargs the same way, parsed here:

    --env goal_noise_mm=1.0 --env init_offset_mm=[0,10] --env reward=dense --env grayscale=true

VALUE is JSON (numbers, `true`/`false`/`null`, lists, objects, quoted strings); a bare word that
is not JSON is a string (`reward=dense`). Python spellings (`True`, `(0, 10)`) are refused with
the JSON spelling, so a value never silently becomes a string it was not meant to be.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from benchmark.cells import first_unwritable
from envs.task_options import check_max_episode_steps

#: The command's name, as users type it and as errors and warnings begin.
PROG = "insertbench"

ENV_HELP = (
    "Env kwarg KEY=VALUE for gym.make, VALUE in JSON (a bare word is a string); repeatable: "
    "--env goal_noise_mm=1.0 --env init_offset_mm=[0,10]."
)

EnvOption = Annotated[list[str] | None, typer.Option("--env", "-e", help=ENV_HELP)]

_PYTHON_SPELLINGS = {"True": "true", "False": "false", "None": "null"}
#: gym.make's own kwargs that a command sets or that no env checks: render_mode=0 ended train
#: in an AttributeError, "human" (pygame) left a run folder behind, and rollout's own
#: render_mode clashed; disable_env_checker took any string as true.
_SET_BY_COMMANDS = {
    "render_mode": "is set by the command that renders (`insertbench rollout --video`)",
    "disable_env_checker": "is not a task setting (the env checker is Gymnasium's)",
}


def parse_env_kwargs(pairs: list[str] | None) -> dict[str, Any]:
    """`["goal_noise_mm=1.0", "init_offset_mm=[0,10]", "reward=dense"]` -> kwargs dict.

    Raises `typer.BadParameter` (one line on the command line) for a pair without `=`, a key
    given twice, a Python literal, a value that looks like a JSON list/object but is not one,
    or NaN / Infinity anywhere in a value.
    """
    kwargs: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise typer.BadParameter(f"--env expects KEY=VALUE, got {pair!r}")
        if key in kwargs:
            raise typer.BadParameter(f"--env {key} is given twice")
        if raw in _PYTHON_SPELLINGS:
            raise typer.BadParameter(
                f"--env {pair}: values are JSON, write {key}={_PYTHON_SPELLINGS[raw]}"
            )
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError as err:
            if raw.lstrip()[:1] in "[{(\"'" and raw.strip():
                raise typer.BadParameter(
                    f"--env {pair}: not valid JSON ({err.msg}); lists are written [0,10]"
                ) from None
            kwargs[key] = raw
        if first_unwritable(kwargs[key]) is not None:
            # json.loads reads NaN and Infinity as floats: they passed as values and failed
            # later as "Out of range float values are not JSON compliant", naming nothing.
            raise typer.BadParameter(f"--env {pair}: NaN and Infinity are not finite numbers")
        if key in _SET_BY_COMMANDS:
            raise typer.BadParameter(f"--env {key} {_SET_BY_COMMANDS[key]}")
        if key == "max_episode_steps" and kwargs[key] is not None:
            # gym.make's own kwarg, which no env checks: its TimeLimit took true as 1 step
            try:
                check_max_episode_steps(kwargs[key])
            except ValueError as err:
                raise typer.BadParameter(f"--env {err}") from None
    return kwargs


def innermost_message(err: BaseException) -> str:
    """The message of the innermost cause that the error only re-words: Gymnasium re-raises an
    env constructor's error with the whole kwargs dict appended; the user needs the original."""
    while (
        err.__cause__ is not None
        and type(err.__cause__) is type(err)
        and str(err).startswith(str(err.__cause__))
    ):
        err = err.__cause__
    return str(err)


def build_env(make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``make(*args, **kwargs)`` (``gym.make`` or ``benchmark.train.make_env``) for a command
    whose env kwargs the user gave: a kwarg the task refuses (ValueError, TypeError) is a usage
    error, one line and exit 2, as `train` and `matrix run` report it. `rollout` and `eval`
    printed it as an internal error ("ValueError: ..." with the --debug hint, exit 1)."""
    from envs.episode import task_identity

    try:
        with warnings_if_made():
            env = make(*args, **kwargs)
    except (ValueError, TypeError) as err:  # Gymnasium appends every kwarg: the cause only
        raise typer.BadParameter(innermost_message(err)) from err
    try:  # what only the task's version key can tell (a time limit a part never reaches)
        if env.spec is not None:
            task_identity(env)
    except (ValueError, TypeError) as err:
        env.close()
        raise typer.BadParameter(innermost_message(err)) from err
    return env


#: The warnings `warnings_if_made` has shown (text, category): each once a process, as Python
#: shows a warning once a place (recording them undoes that: the advice came once an env).
SHOWN_WARNINGS: set[tuple[str, type[Warning]]] = set()


#: Whether a `warnings_if_made` is recording in this thread: one inside it (`build_env` of
#: `make_env`) leaves the recording to it (its warnings, re-shown into the outer record and
#: already counted shown, were lost: `eval` of a v0 task gave no advice).
_RECORDING = threading.local()


@contextlib.contextmanager
def warnings_if_made() -> Iterator[None]:
    """Show the warnings of making an env (an old task version's "consider upgrading") only
    if it was made: before a refused kwarg they made the one-line usage error two lines."""
    if getattr(_RECORDING, "on", False):
        yield
        return
    _RECORDING.on = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield
    finally:
        _RECORDING.on = False
    for warning in caught:
        key = (str(warning.message), warning.category)
        if key not in SHOWN_WARNINGS:
            SHOWN_WARNINGS.add(key)
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)


def check_task(task: str) -> None:
    """A registered task ID (or Gymnasium's ``module:ID``, the module imported to register
    it), as `rollout` asks: an unknown one was Gymnasium's NameNotFound line (exit 1)."""
    import importlib

    import gymnasium as gym

    import envs  # noqa: F401  (registers the InsertBench IDs)

    module, _, env_id = task.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise typer.BadParameter(f"{task!r}: cannot import {module!r} ({err})",
                                     param_hint="--task") from None
    if env_id not in gym.registry:
        raise typer.BadParameter(f"unknown task {task!r}{closest_task(env_id)}; see "
                                 "`insertbench list`", param_hint="--task")


def closest_task(env_id: str) -> str:
    """" (did you mean ...?)" for a task ID typed in other case or without its namespace
    (`USB-v1`, `InsertBench/usb-v1`) or close to one, as a misspelt --env kwarg gets; else
    ""."""
    import difflib

    import gymnasium as gym

    ids = [i for i in gym.registry if i.startswith("InsertBench/")]
    folded = {i.casefold(): i for i in ids}
    for guess in (env_id, f"InsertBench/{env_id}"):
        if guess.casefold() in folded:
            return f" (did you mean {folded[guess.casefold()]!r}?)"
    close = difflib.get_close_matches(env_id, ids, n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_key_values(items: list[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` items of a repeatable ``option`` -> {key: value} (strings, converted by
    the config that takes them); ValueError (one line) for a malformed item or a key given
    twice (the first value used to be dropped silently)."""
    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} expects KEY=VALUE, got {item!r}")
        if key in pairs:
            raise ValueError(f"{option} {key} is given twice")
        pairs[key] = value
    return pairs

def check_output_file(path: Path, option: str) -> None:
    """Refuse an output file that cannot be written (a directory, or under a file or an
    unwritable folder) before the work that produces it, not after; creates nothing."""
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory", param_hint=option)
    existing = path.absolute().parent
    while not existing.exists():  # the folders the write will create
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write {path}: {existing} is not a writable directory",
                                 param_hint=option)


def file_in_the_way(path: Path) -> Path | None:
    """The existing file that ``path`` is or lies under, if any; None when its nearest existing
    ancestor (or itself) is a folder, so that a folder can be made there."""
    for folder in (path, *path.parents):
        if folder.exists():
            return None if folder.is_dir() else folder
    return None


def check_output_dir(path: Path | None, option: str, own: str | None = None,
                     what: str = "", ignore: tuple[str, ...] = ()) -> None:
    """Refuse an output folder that is an existing file, or lies under one, or that this user
    cannot write (`check_writable`), before the work that fills it (`train --out FILE` and
    `dataset collect --out FILE` ended in "FileExistsError: [Errno 17] File exists" after
    building the task, a read-only one in an OSError after it); creates nothing.

    With ``own`` (the file the command writes first, e.g. ``recipe.json``), also refuse a folder
    that holds other files and not that one: `dataset collect --out my_submission` wrote its
    files among the user's (`--out .` among everything), where a folder of its own resumes.
    Entries named in ``ignore`` do not count as other files.
    """
    file = None if path is None else file_in_the_way(path)
    if file is not None:
        where = "" if file == path else f" (under {file}, a file)"
        raise typer.BadParameter(f"{path} is not a directory{where}", param_hint=option)
    if (own is not None and path is not None and path.is_dir() and not (path / own).is_file()
            and any(p.name not in ignore for p in path.iterdir())):
        raise typer.BadParameter(f"{option} {path} holds other files and no {what} ({own}): "
                                 "give a new or empty folder, or one of its own to resume or "
                                 "replace it")
    if path is not None:  # else found after the work: an OSError, minutes of rollouts lost
        check_writable(path, option)


def check_run_dir(path: Path | None, option: str = "--out") -> None:
    """`check_output_dir` for a training run's folder: new, empty (but for a TensorBoard folder
    or a lock), or a run's own (run.json); `--out .` took the run among the user's files."""
    from benchmark.folder_lock import LOCK_FILE

    check_output_dir(path, option, own="run.json", what="run", ignore=("tb", LOCK_FILE))


def check_writable(path: Path, option: str) -> None:
    """Refuse a folder (to be made) that this user cannot write: its nearest existing
    ancestor must be a writable folder."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (in {existing})"
        raise typer.BadParameter(f"{path} cannot be written{where}", param_hint=option)


def one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` of the command line and of the matrix's worker processes: each
    warning one line on stderr, without Python's source-line echo, nor the colour codes and
    "WARN:" of Gymnasium's logger ("insertbench: warning: WARN: The environment ..."), and
    once a process: the same advice, raised from two places (each env a command makes), was
    printed twice (newuser25)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(message).split()))
    text = text.removeprefix("WARN: ")
    if text in WARNED:
        return
    WARNED.add(text)
    typer.echo(f"{PROG}: warning: {text}", err=True)


WARNED: set[str] = set()  # what `one_line_warning` printed (a command starts it anew)


TorchThreadsOpt = Annotated[
    int | None,
    typer.Option(help="torch CPU threads (default: torch's, one per core). On a machine "
                 "shared with other jobs use 1: `python -m benchmark.bench_throughput` "
                 "measured 2 threads 10-90x slower per update than 1 at load 9 on 2 cores."),
]


def set_torch_threads(threads: int | None) -> None:
    """torch's CPU thread count for this process, checked (None: torch's default)."""
    if threads is None:
        return
    from envs.tether import available_cores

    cores = available_cores()
    if not 1 <= threads <= 4 * cores:  # 100000 was a bare "MemoryError:"
        raise typer.BadParameter(f"--torch-threads must be in [1, {4 * cores}] (4 per core "
                                 f"of this machine's {cores}), got {threads}")
    import torch

    torch.set_num_threads(threads)
