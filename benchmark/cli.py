"""The `insertbench` command line: one Typer app; each room mounts its own sub-commands here.

Errors are handled once, here, for every command: a mistake (bad option, unknown task, misspelt
env kwarg, missing optional dependency, ...) prints one line on stderr and exits non-zero; the
traceback is shown only with the global `--debug` flag (`insertbench --debug train ...`).
Warnings are printed as one line each, too.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_errors  # Typer >= 0.29 vendors Click

from benchmark.cli_options import PROG, WARNED, innermost_message, one_line_warning
from benchmark.entry import Terminated, raise_on_sigterm

#: The message of the EOFError that `input()` raises on Ctrl-D (end of input at a prompt).
_INPUT_EOF = "EOF when reading a line"


class InsertBenchApp(typer.Typer):
    """The root Typer app, whose call turns any error into one line on stderr (see module doc)."""

    debug = False  # set by the root callback from `--debug`

    def __call__(self, args: list[str] | None = None, prog_name: str = PROG) -> Any:
        """Run the CLI with `args` (default: sys.argv[1:]) and exit with its status."""
        type(self).debug = False
        raise_on_sigterm()
        command = typer.main.get_command(self)
        _refuse_empty_paths(command)
        show_warning = warnings.showwarning
        warnings.showwarning = one_line_warning
        WARNED.clear()  # each command says its warnings (a test runs many in one process)
        try:
            code = command.main(args=args, prog_name=prog_name, standalone_mode=False)
        except click_errors.NoArgsIsHelpError as err:  # a bare group: its help, status 2
            typer.echo(err.ctx.get_help() if err.ctx else str(err), err=True)
            sys.exit(2)
        except typer.TyperException as err:  # usage errors and the commands' own user errors
            _error(_usage_message(err))
            sys.exit(err.exit_code)
        except (typer.Abort, KeyboardInterrupt) as err:
            cause = err.__cause__
            if Terminated.received:
                _error("terminated")
                sys.exit(143)
            if not (isinstance(cause, EOFError) and str(cause) not in ("", _INPUT_EOF)):
                _error("interrupted")
                sys.exit(130)
            # Click turns every EOFError of a command into Abort: numpy's "No data left in
            # file" (an empty .npz given as --goal-images or --demos) read as "interrupted".
            if type(self).debug:
                raise cause from None
            _error(f"EOFError: {cause} (an empty or truncated file?) "
                   f"(`{PROG} --debug ...` shows the traceback)")
            sys.exit(1)
        except Exception as err:  # noqa: BLE001 - every other error: one line unless --debug
            if type(self).debug:
                raise
            _error(f"{type(err).__name__}: {innermost_message(err)} "
                   f"(`{PROG} --debug ...` shows the traceback)")
            sys.exit(1)
        finally:
            warnings.showwarning = show_warning
        if code == 130 and Terminated.received:  # Typer's silent Exit(130) for a SIGTERM too
            _error("terminated")
            sys.exit(143)
        if code == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into a silent Exit(130)
            _error("interrupted")
        sys.exit(code if isinstance(code, int) else 0)


def _refuse_empty_paths(command: Any) -> None:
    """Make every path option and argument of `command` and its sub-commands refuse an empty
    string as a usage error, and read a leading ``~`` as the home folder. `--out ""` (an unset
    shell variable: `--out "$RUN_DIR"`) is `Path("")`, which is `Path(".")`: `train` wrote its
    run, `leaderboard render` its site and `leaderboard submit --ledger ""` a ledger into the
    working directory. The shell leaves the tilde of `--out=~/runs` alone (not that of
    `--out ~/runs`): the run went to a folder named "~" in the working directory."""
    for param in command.params:
        if getattr(getattr(param, "type_descriptor", None), "is_path", False):
            param.process_value = _nonempty_path(param, param.process_value)
    for sub in getattr(command, "commands", {}).values():
        _refuse_empty_paths(sub)


def _nonempty_path(param: Any, process_value: Any) -> Any:
    def process(ctx: Any, value: Any) -> Any:
        if isinstance(value, str):  # what was typed; defaults are Paths
            if not value.strip():
                raise click_errors.BadParameter(
                    "an empty path; name a file or folder ('.' for the working directory)",
                    ctx=ctx, param=param)
            value = os.path.expanduser(value)
        return process_value(ctx, value)

    return process


def _error(message: str) -> None:
    typer.echo(f"{PROG}: error: {' '.join(message.split())}", err=True)


def _usage_message(err: typer.TyperException) -> str:
    message = err.format_message()
    ctx = getattr(err, "ctx", None)
    if isinstance(err, click_errors.NoSuchOption) and err.option_name == "--debug":
        message += f" (--debug goes before the command: `{PROG} --debug COMMAND ...`)"
    elif ctx is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


app = InsertBenchApp(
    name=PROG,
    help="InsertBench: a benchmark for learned industrial insertion.",
    no_args_is_help=True,
    # Plain help text: Rich markup would eat every "[default: ...]" written in a help string.
    rich_markup_mode=None,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    """`--version`: the installed version and the checkout's commit, as stored results record
    them (`benchmark.store.Provenance`)."""
    if value:
        from importlib.metadata import version

        from benchmark.store import suite_commit

        commit = suite_commit(mark_dirty=True)
        typer.echo(f"{PROG} {version('insertbench')}"
                   + (f" (commit {commit})" if commit else ""))
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an unexpected error "
                                             "(a refused option or value stays one line).")
    ] = False,
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True,
                           help="Print the version and the git commit, then exit.")
    ] = False,
) -> None:
    """InsertBench: a benchmark for learned industrial insertion."""
    InsertBenchApp.debug = debug


from benchmark.matrix_cli import matrix_app  # noqa: E402 - sub-apps mount after `app` exists

app.add_typer(matrix_app, name="matrix")

from benchmark.rollout_cli import list_tasks, rollout  # noqa: E402

app.command("list")(list_tasks)
app.command("rollout")(rollout)

from benchmark.real_cli import real_app  # noqa: E402 - sub-apps mount after `app` exists

app.add_typer(real_app, name="real")

from benchmark.dataset_cli import app as dataset_app  # noqa: E402

app.add_typer(dataset_app, name="dataset")

from benchmark.train_cli import register as register_train_commands  # noqa: E402

register_train_commands(app)

from benchmark.classifier_cli import register as register_classifier_commands  # noqa: E402

register_classifier_commands(app)

from benchmark.sim2sim_cli import sim2sim_command  # noqa: E402

app.command("sim2sim")(sim2sim_command)

from leaderboards.cli import leaderboard_app  # noqa: E402

app.add_typer(leaderboard_app, name="leaderboard")

if __name__ == "__main__":
    app()
