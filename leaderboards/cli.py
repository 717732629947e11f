"""`insertbench leaderboard submit | verify | reveal | render`.

    insertbench leaderboard submit my_submission.tar.gz --track paper000
    insertbench leaderboard submit --from-matrix paper000-leaderboard
    insertbench leaderboard open-round --track paper000 --salt-file ~/secrets/paper000.salt
    insertbench leaderboard verify 3fa2c1 --salt-file ~/secrets/paper000.salt
    insertbench leaderboard reveal --track paper000 --salt-file ~/secrets/paper000.salt
    insertbench leaderboard verify 3fa2c1          # recompute from the revealed salt
    insertbench leaderboard lose-round --track paper000 --reason "machine reset"
    insertbench leaderboard render --out site

A user's mistake (a bad submission, an unknown entry, a wrong salt) is one line on stderr and
exit code 1; nothing is written to the ledger then. Salt rounds: `leaderboards.salts`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

leaderboard_app = typer.Typer(
    name="leaderboard",
    help="Submit, verify on hidden seeds, rank and publish leaderboard entries.",
    no_args_is_help=True,
)

LedgerOpt = Annotated[Path, typer.Option(help="Ledger directory.")]
DEFAULT_LEDGER = Path("leaderboards/ledger")


def _fail(message: str) -> None:
    """One line on stderr (multi-line library messages are joined) and exit code 1."""
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"insertbench: error: {one_line}", err=True)
    raise typer.Exit(1)


def _book(ledger: Path):  # noqa: ANN202 - a leaderboards.ledger.Ledger, imported lazily
    """The ledger at `ledger`. The default path is relative: from outside the repository root
    it would silently start a new, empty ledger in the working directory and write there, so
    it must exist; an explicit ``--ledger DIR`` may be new."""
    from leaderboards.ledger import Ledger

    if ledger == DEFAULT_LEDGER and not ledger.is_dir():
        _fail(f"no ledger at {ledger}: run from the repository root or pass --ledger DIR "
              "(a new directory starts a new ledger)")
    # Checked before any evaluation: a file here used to fail only when the entry was written,
    # the submission's whole evaluation lost.
    _check_dir(ledger, "--ledger")
    return Ledger(ledger)


def _check_dir(path: Path, option: str) -> None:
    """`check_output_dir` (a folder, or not yet made, and not under a file), failing with this
    command group's one line and exit code 1."""
    from benchmark.cli_options import check_output_dir

    try:
        check_output_dir(path, option)
    except typer.BadParameter as error:
        _fail(f"{option} {error.message}")


@leaderboard_app.command()
def submit(
    path: Annotated[Path | None, typer.Argument(help="Submission directory or .tar.gz.")] = None,
    track: Annotated[str | None, typer.Option(help="Track (must match submission.toml).")] = None,
    from_matrix: Annotated[str | None, typer.Option(
        help="Turn a matrix preset's finished cells into entries instead.")] = None,
    store: Annotated[Path | None, typer.Option(
        help="The preset's store (with --from-matrix) [default: runs/<preset>.sqlite].")] = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Validate a submission, evaluate it on the track's public dev seeds, write its entry."""
    from leaderboards.ledger import LedgerError
    from leaderboards.ledger import submit as submit_entry
    from leaderboards.submission import SubmissionError, load_submission

    if (path is None) == (from_matrix is None):
        _fail("give a submission PATH or --from-matrix PRESET (not both)")
    book = _book(ledger)
    if from_matrix is not None:
        from leaderboards.from_matrix import submit_matrix

        try:
            written = submit_matrix(book, from_matrix, store, track, echo=typer.echo)
        except (SubmissionError, LedgerError, KeyError, ValueError) as err:
            _fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
        typer.echo(f"{len(written)} entries written to {ledger}")
        return
    started = time.perf_counter()
    try:
        submission = load_submission(path, track)
    except SubmissionError as err:
        _fail(str(err))
    try:
        target, entry = submit_entry(book, submission,
                                     progress=lambda label: typer.echo(f"  evaluated {label}"))
    except (SubmissionError, LedgerError) as err:
        _fail(str(err))
    finally:
        shutil.rmtree(submission.root, ignore_errors=True)
    _echo_result(entry, "dev", target, time.perf_counter() - started)


@leaderboard_app.command()
def verify(
    entry: Annotated[str, typer.Argument(help="Entry id (a unique prefix) or its JSON file.")],
    salt_file: Annotated[Path | None, typer.Option(
        help="The secret salt of the track's active round (outside the repo). Without it, an "
             "entry of a revealed round is recomputed from the published salt.")] = None,
    ledger: LedgerOpt = DEFAULT_LEDGER,
    sim2sim: Annotated[bool, typer.Option(
        help="Also run the policy in PyBullet on the same hidden seeds (shown, never ranked).")
    ] = True,
    exact: Annotated[bool, typer.Option(
        "--exact",
        help="Recheck: require every recomputed episode to be bitwise the ledger's, as on the "
             "platform that evaluated the entry; elsewhere equal outcomes pass by default and "
             "the largest difference is shown.")
    ] = False,
    dev: Annotated[bool, typer.Option(
        "--dev",
        help="Recheck the entry's self-reported evaluation instead: recompute its episodes on "
             "the public dev seeds and compare (anyone can; nothing is written).")
    ] = False,
) -> None:
    """Re-evaluate an entry on hidden seeds of the active salt round; mark it verified (or,
    for an entry of a revealed round, recompute its hidden episodes and compare; with --dev,
    recompute its dev episodes and compare)."""
    from leaderboards.ledger import LedgerError, recheck_dev
    from leaderboards.ledger import verify as verify_entry
    from leaderboards.recheck import describe
    from leaderboards.submission import SubmissionError

    started = time.perf_counter()
    progress = lambda label: typer.echo(f"  evaluated {label}")  # noqa: E731
    try:
        if dev:
            if salt_file is not None:
                raise LedgerError("--dev rechecks the public dev seeds: give no --salt-file")
            found = recheck_dev(_book(ledger), entry, progress=progress, exact=exact)
        else:
            done = verify_entry(_book(ledger), entry, salt_file, progress=progress,
                                sim2sim=sim2sim, exact=exact)
    except (SubmissionError, LedgerError, KeyError) as err:
        _fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
    if dev:
        typer.echo(f"recomputed entry {found.entry['entry_id'][:12]} on the public dev seeds:")
        typer.echo("  MuJoCo: " + describe(found.comparison, "episodes"))
        _echo_platforms(*found.platforms)
        return
    if done.rechecked:
        typer.echo(f"recomputed entry {done.entry['entry_id'][:12]} with the revealed salt of "
                   f"{done.entry['track']} round {done.salt_round.number}:")
        for engine, comparison in done.comparisons.items():
            typer.echo(f"  {engine}: " + describe(comparison, "episodes"))
        for engine, why in done.not_recomputed.items():
            typer.echo(f"  {engine}: not recomputed: {why}")
        _echo_platforms(*done.platforms)
        return
    typer.echo(f"  hidden seeds of {done.entry['track']} salt round {done.salt_round.number}")
    _echo_result(done.entry, "hidden", done.path, time.perf_counter() - started)


def _echo_platforms(recorded: dict[str, str] | None, here: dict[str, str]) -> None:
    """Whether a recheck ran where the entry was evaluated, and if not, what differs."""
    if recorded == here:
        typer.echo("  on the platform that evaluated it")
        return
    differs = ("not recorded" if recorded is None else ", ".join(
        f"{k} {recorded.get(k, '-')} -> {here.get(k, '-')}"
        for k in sorted(set(recorded) | set(here)) if recorded.get(k) != here.get(k)))
    typer.echo(f"  on another platform than the one that evaluated it ({differs})")


@leaderboard_app.command()
def audit(
    ledger: LedgerOpt = DEFAULT_LEDGER,
    track: Annotated[str | None, typer.Option(help="Only this track's entries.")] = None,
) -> None:
    """Recompute every current entry's episodes that anyone can: the self-reported ones on the
    public dev seeds, and the hidden ones of a revealed salt round. One line per entry; exit
    status 1 if any outcome differs from the ledger's (an edited entry file, or a policy that
    no longer behaves as it did). MuJoCo only; hours on a large ledger."""
    from leaderboards.ledger import (
        TRACK_VERSION,
        LedgerError,
        entry_track_version,
        is_stale,
        recheck_dev,
    )
    from leaderboards.ledger import verify as verify_entry
    from leaderboards.recheck import platform_fingerprint
    from leaderboards.submission import SubmissionError
    from leaderboards.tracks import get_track

    book = _book(ledger)
    # Taken without torch loaded it lacked the thread count: every platform read as another.
    here = platform_fingerprint()
    try:
        if track is not None:
            get_track(track)
        entries = [e for e in book.entries(archived=False)
                   if entry_track_version(e) == TRACK_VERSION
                   and (track is None or e["track"] == track)]
    except (LedgerError, KeyError) as err:
        _fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
    failed = failed_elsewhere = stale = 0
    for entry in entries:
        short, lines = entry["entry_id"][:12], []
        if is_stale(entry):  # a FAIL each, for good: no audit of a ledger passed (leader23)
            stale += 1
            typer.echo(f"stale {short} {entry['name']}: evaluated on other versions of its "
                       "track's tasks, not recomputable by this code (not audited)")
            continue
        try:
            lines.append("dev " + _kept(recheck_dev(book, entry).comparison))
            round_ = book.entry_round(entry)  # a known round wherever there is a hidden block
            if round_ is not None and round_.status == "revealed":
                done = verify_entry(book, entry, None, sim2sim=False)
                lines.append("hidden " + _kept(done.comparisons["MuJoCo"]))
            elif round_ is not None:
                lines.append(f"hidden not recomputable (salt round {round_.number} "
                             f"{round_.status})")
        except (SubmissionError, LedgerError) as err:
            failed += 1
            made_on = [e.get("platform") for e in entry["evaluations"].values()
                       if isinstance(e, dict)]
            failed_elsewhere += any(platform != here for platform in made_on)
            typer.echo(f"FAIL {short} {entry['name']}: {err}")
            continue
        typer.echo(f"ok   {short} {entry['name']}: {'; '.join(lines)}")
    # The platform was blamed also where every failed entry had been evaluated on this one,
    # where a differing outcome means an edited entry or changed code.
    typer.echo(f"audited {len(entries) - stale} entries of {book.root}"
               + (f" ({stale} stale, left out)" if stale else "") + f": {failed} failed"
               + (" (on another platform than the one that evaluated an entry, an outcome near "
                  "the success boundary can change: README, Rechecks across machines)"
                  if failed_elsewhere else
                  " (each on the platform that evaluated it: an edited entry, a stored policy "
                  "file missing or altered, or code that changed since)" if failed else ""))
    if failed:
        raise typer.Exit(1)


def _kept(comparison) -> str:  # noqa: ANN001 - a leaderboards.recheck.EpisodeComparison
    return (f"{comparison.episodes} episodes, "
            + ("bitwise the ledger's" if comparison.identical_all else "the ledger's outcomes"))


TrackOpt = Annotated[str, typer.Option(help="Track whose salt rounds to change.")]
SaltFileOpt = Annotated[Path, typer.Option(help="The secret salt file (outside the repo).")]


@leaderboard_app.command("open-round")
def open_round(
    track: TrackOpt,
    salt_file: SaltFileOpt,
    note: Annotated[str, typer.Option(help="Shown with the round on the site.")] = "",
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Open a new salt round: commit to a new salt's SHA-256 (refused while one is active)."""
    from leaderboards.ledger import LedgerError

    book = _book(ledger)
    try:
        opened = book.open_round(track, book.read_salt(salt_file), note)
    except LedgerError as err:
        _fail(str(err))
    kept = salt_file if salt_file.is_file() else "the salt"  # a pipe's /dev/fd/63 is gone
    # The ledger named: a misspelt --ledger started a new one without a word (leader25).
    typer.echo(f"opened {track} salt round {opened.number} in {book.root} (SHA-256 "
               f"{opened.salt_sha256[:16]}...); keep {kept} secret, reveal it at the end of "
               "this session")


@leaderboard_app.command("lose-round")
def lose_round(
    track: TrackOpt,
    reason: Annotated[str, typer.Option(help="Why the salt is gone (shown on the site).")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Declare the active round's salt lost: its entries stay verified, not recomputable."""
    from leaderboards.ledger import LedgerError

    try:
        lost = _book(ledger).lose_round(track, reason)
    except LedgerError as err:
        _fail(str(err))
    typer.echo(f"declared {track} salt round {lost.number} lost; open a new round "
               "(`open-round`) and verify again")


@leaderboard_app.command()
def reveal(
    track: Annotated[str, typer.Option(help="Track whose active salt round to publish.")],
    salt_file: SaltFileOpt,
    ledger: LedgerOpt = DEFAULT_LEDGER,
) -> None:
    """Publish the active round's salt (checked against its SHA-256): its hidden seeds go
    public and the round closes."""
    from leaderboards.ledger import LedgerError

    book = _book(ledger)
    try:
        revealed = book.reveal(track, book.read_salt(salt_file))
    except LedgerError as err:
        _fail(str(err))
    typer.echo(f"revealed {track} salt round {revealed.number} in {book.salt_path(track)}; "
               "every entry verified under it can be recomputed (`verify ID`)")


@leaderboard_app.command()
def render(
    out: Annotated[Path, typer.Option(help="Directory for the static site.")],
    ledger: LedgerOpt = DEFAULT_LEDGER,
    gifs: Annotated[bool, typer.Option(help="Render best/worst episode GIFs.")] = True,
) -> None:
    """Write the static site: one table per track, one page per entry, a cost plot."""
    from leaderboards.ledger import Ledger, LedgerError
    from leaderboards.site import render_site

    # A mistyped path would render an empty leaderboard over the published one.
    if not ledger.is_dir():
        _fail(f"no ledger at {ledger}: run from the repository root or pass --ledger DIR")
    if not (ledger / "entries").is_dir():  # the ledger's parent, '.', any other folder
        _fail(f"{ledger} is not a ledger (it has no entries/ folder): pass --ledger DIR")
    _check_dir(out, "--out")  # was "NotADirectoryError: [Errno 20] ..."
    site, book = out.resolve(), ledger.resolve()
    if site == book or book in site.parents:  # its pages would land among the entries
        _fail(f"--out {out} is inside the ledger {ledger}: render the site elsewhere")
    try:
        index = render_site(Ledger(ledger), out, gifs=gifs)
    except LedgerError as err:
        _fail(str(err))
    typer.echo(f"wrote {index}")


def _echo_result(entry: dict, evaluation: str, target: Path, seconds: float) -> None:
    from envs.episode import success_text
    from leaderboards.scoring import score_entry

    block = entry["evaluations"][evaluation]
    score = score_entry(entry, evaluation, list(block["task_version_keys"]))
    for task in score.tasks:
        typer.echo(f"  {task.label}: {success_text(task.summary)}")
    if evaluation == "hidden" and "sim2sim" in entry:
        from leaderboards.scoring import sim2sim_scores

        for t in sim2sim_scores(entry):
            quiet = ("" if t.noiseless_successes is None else
                     f", noiseless {t.noiseless_successes}/{t.episodes}")
            typer.echo(f"  {t.label} in PyBullet: " + (
                f"{t.pybullet_successes}/{t.episodes} (MuJoCo {t.mujoco_successes}/{t.episodes}"
                f"{quiet})" if t.supported else f"n/a ({t.reason})"))
        sim = entry["sim2sim"]
        quiet = sim.get("noiseless")
        typer.echo(f"  sim-to-sim block: {sim['wall_clock_s']:.1f} s wall, "
                   f"{sim['cpu_s']:.1f} s CPU" + ("" if not (quiet and quiet["episodes"]) else
                                                  f" (+ noiseless MuJoCo "
                                                  f"{quiet['wall_clock_s']:.1f} s wall, "
                                                  f"{quiet['cpu_s']:.1f} s CPU)"))
    typer.echo(f"{'verified' if evaluation == 'hidden' else 'self-reported'} entry "
               f"{entry['entry_id'][:12]} ({entry['name']}) -> {target}; evaluation "
               f"{block['wall_clock_s']:.1f} s wall, {block['cpu_s']:.1f} s CPU; "
               f"total {seconds:.1f} s")


if __name__ == "__main__":  # `python -m leaderboards.cli ...` = `insertbench leaderboard ...`
    import sys

    from benchmark.cli import app as insertbench_app

    insertbench_app(["leaderboard", *sys.argv[1:]])
