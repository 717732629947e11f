"""The table of verified entries in `docs/results/leaderboard.md`, written from the ledger.

Typed by hand, that table kept the PyBullet figures of an earlier PyBullet model after the
ledger and the site had moved on (newuser19). It now sits between two markers and is written
by this module: ``python -m leaderboards.doc_table`` rewrites it, ``--check`` exits 1 when the
file differs from what the ledger gives (the test suite runs the check).

One row per verified entry ranked on its track's current keys (`scoring.track_tables`), in the
order of `leaderboards.tracks.TRACKS`, by name within a track: the training cost summed over
the track's tasks, successes per task on the hidden seeds, and in PyBullet on the same seeds
where it runs the task ("n/a" where it runs none).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leaderboards.ledger import Ledger, LedgerError
from leaderboards.scoring import sim2sim_scores, track_tables
from leaderboards.site import given_the_goal
from leaderboards.tracks import TRACKS

BEGIN = "<!-- begin: the table `python -m leaderboards.doc_table` writes from the ledger -->"
END = "<!-- end of the table written from the ledger -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "results" / "leaderboard.md"
#: The repository's ledger, found from this module as `DOC` is (the working directory's
#: `leaderboards/ledger`, run elsewhere, was no ledger: an empty table, written; diff24).
LEDGER = Path(__file__).resolve().parent / "ledger"
HEADER = ("| track | entry | training (per track: env steps, demo episodes, intervention "
          "steps) | success per task (hidden seeds) | PyBullet, same seeds |\n"
          "|---|---|---|---|---|")


#: What Markdown reads as markup in a cell ("[x](url)" a link, "*y*" italics, "<b>" HTML):
#: the site shows names as plain text, and so does the table (leader21). An escaped ":" also
#: stops GitHub's autolinks of bare "https://..." names, an escaped "&" entity references:
#: "P&minus;controller" read as "P−controller", past the look-alike check (leader24).
_MARKUP = "\\`*_[]<>|#!~:&"


def _cell(text: str) -> str:
    """A name as plain text in a Markdown table cell.

    GitHub also links a bare "www.x.org" (not with its "." escaped) and "a@b.org" (escapes
    don't stop it; an empty HTML comment before the "@" does, and shows nothing).
    """
    escaped = "".join(f"\\{c}" if c in _MARKUP else c for c in text.replace("\n", " "))
    escaped = re.sub(r"(?i)(www)\.", r"\1\\.", escaped)
    return escaped.replace("@", "<!---->@")


def _pybullet(entry: Mapping[str, Any]) -> str:
    tasks = [t for t in sim2sim_scores(entry) or () if t.supported]
    return ", ".join(f"{t.label} {t.pybullet_successes}/{t.episodes}" for t in tasks) or "n/a"


def table(entries: list[Mapping[str, Any]]) -> str:
    """The Markdown table of every verified, current entry among a ledger's `entries`."""
    rows = [HEADER]
    for name, track in TRACKS.items():
        for score in sorted(track_tables(track, entries).verified, key=lambda s: s.entry["name"]):
            entry = score.entry
            training = entry["training"]
            cost = (f"{training['env_steps']:,} / {training['demos']:,} / "
                    f"{training['intervention_steps']:,}")
            successes = ", ".join(f"{t.label} {t.successes}/{t.episodes}" for t in score.tasks)
            given = " (given the goal)" if given_the_goal(entry) else ""  # as the site says
            rows.append(f"| `{name}` | {_cell(entry['name'])}{given} | {cost} | {successes} | "
                        f"{_pybullet(entry)} |")
    return "\n".join(rows)


def with_table(text: str, ledger: Ledger) -> str:
    """`text` with the part between `BEGIN` and `END` replaced by `table`; ValueError without
    exactly one pair of markers, or when the ledger has no row to give (an empty table written
    over the documented one)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one {BEGIN!r} followed by one {END!r}")
    entries = list(ledger.entries())
    if not entries:
        raise ValueError(f"{ledger.root} holds no entries")
    rows = table(entries)
    if rows == HEADER:  # all stale, or none verified
        raise ValueError(f"{ledger.root} holds no verified entry on its tracks' current keys")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{rows}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboards.doc_table",
        description="Write the verified entries' table of docs/results/leaderboard.md from the "
                    "ledger (or, with --check, say whether the file holds it).")
    parser.add_argument("--ledger", type=Path, default=LEDGER,
                        help="the ledger folder [default: the repository's]")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the file's table is not the ledger's")
    args = parser.parse_args(argv)
    try:
        if not (args.ledger / "entries").is_dir():
            raise ValueError(f"{args.ledger} is no ledger (it has no entries/ folder)")
        text = args.doc.read_text(encoding="utf-8")
        updated = with_table(text, Ledger(args.ledger))
    except (OSError, ValueError, LedgerError) as err:
        print(f"doc_table: error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if updated != text:
            print(f"doc_table: {args.doc} does not hold the ledger's table: run "
                  "`python -m leaderboards.doc_table`", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        args.doc.write_text(updated, encoding="utf-8")
    print(f"{args.doc}: {'updated' if updated != text else 'already the ledger table'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
