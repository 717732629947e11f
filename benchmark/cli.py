"""The `insertbench` command line: one Typer app; each room mounts its own sub-commands here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="insertbench",
    help="InsertBench: a benchmark for learned industrial insertion.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

from benchmark.matrix_cli import matrix_app  # noqa: E402 - sub-apps mount after `app` exists

app.add_typer(matrix_app, name="matrix")

from benchmark.rollout_cli import list_tasks, rollout  # noqa: E402

app.command("list")(list_tasks)
app.command("rollout")(rollout)

from real.cli import real_app  # noqa: E402 - sub-apps mount after `app` exists

app.add_typer(real_app, name="real")

from benchmark.dataset_cli import app as dataset_app  # noqa: E402

app.add_typer(dataset_app, name="dataset")

from benchmark.train_cli import register as register_train_commands  # noqa: E402

register_train_commands(app)

from benchmark.sim2sim import sim2sim_command  # noqa: E402

app.command("sim2sim")(sim2sim_command)

from leaderboards.cli import leaderboard_app  # noqa: E402

app.add_typer(leaderboard_app, name="leaderboard")
