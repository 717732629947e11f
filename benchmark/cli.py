"""The `insertbench` command line: one Typer app; each room mounts its own sub-commands here."""

from __future__ import annotations

import typer

from benchmark.dataset_cli import app as dataset_app

app = typer.Typer(
    name="insertbench",
    help="InsertBench: a benchmark for learned industrial insertion.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(dataset_app, name="dataset")
