"""The argparse types and help text shared by the scripts under ``benchmark/`` (``python -m
benchmark.bench_*`` and friends): a bad value is one usage line, not a traceback after minutes
of work."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import typer

from benchmark.cli_options import check_run_dir, check_task, file_in_the_way


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count of steps, rounds, worlds), else one clear
    usage line instead of a traceback after minutes of timing."""
    return _int_at_least(text, 1)


def at_least_two(text: str) -> int:
    """An argparse type: a vector's worlds, >= 2 (one world scored against the 1.8 target read
    1.48x one env, the warm-up's share, bench22; bench_env's process model then scaled a
    serial part measured with no worker, bench23)."""
    worlds = positive_int(text)
    if worlds < 2:
        raise argparse.ArgumentTypeError(f"a vector has 2 worlds or more, got {text!r}")
    return worlds


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (a count that may be zero: steps, demonstrations)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value


def task_id(text: str) -> str:
    """An argparse type: a task ID as `insertbench`'s commands take it (`check_task`; an
    unknown one was Gymnasium's traceback, at the end of a sweep for `bench_connectors
    --dataset-task`)."""
    try:
        check_task(text)
    except typer.BadParameter as err:
        raise argparse.ArgumentTypeError(err.message) from None
    return text


def output_dir(text: str) -> Path:
    """An argparse type: a folder to write into that is not a file and lies under no file
    (`--out notes.txt/run` was a NotADirectoryError traceback after the work)."""
    path = Path(text)
    file = file_in_the_way(path)
    if file is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file" if file == path else f"{text!r} lies under {file}, a file")
    return path


def run_dir(text: str) -> Path:
    """An argparse type: a training run's folder, as `insertbench train --out` takes one (new,
    empty, or a run's own: run.json); a folder of other files took the run among them, the
    repository's root for `--out .` (bench21)."""
    path = output_dir(text)
    try:
        check_run_dir(path)
    except typer.BadParameter as err:
        raise argparse.ArgumentTypeError(err.message) from None
    return path


def figure_file(text: str) -> Path:
    """An argparse type: a .png, .pdf or .svg file to write, not under a file."""
    path = Path(text)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise argparse.ArgumentTypeError(f"must end in .png, .pdf or .svg, got {text!r}")
    file = file_in_the_way(path.parent)
    if path.is_dir() or file is not None:
        raise argparse.ArgumentTypeError(f"{text!r} is a folder" if file is None else
                                         f"{text!r} lies under {file}, a file")
    return path


def doc_summary(doc: str) -> str:
    """A module docstring's first paragraph on one line: an argparse description (its first
    line alone stopped mid-sentence)."""
    return " ".join(doc.split("\n\n")[0].split())


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value
