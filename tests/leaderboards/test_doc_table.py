"""docs/results/leaderboard.md's table of entries is the ledger's (`leaderboards.doc_table`):
typed by hand, it kept PyBullet figures of an earlier PyBullet model (newuser19)."""

from __future__ import annotations

import shutil

from leaderboards import doc_table


def test_the_documented_table_is_the_ledgers(capsys):
    assert doc_table.main(["--check"]) == 0, capsys.readouterr().err


def test_a_figure_changed_by_hand_is_found_and_written_back(tmp_path, capsys):
    doc = tmp_path / "leaderboard.md"
    shutil.copy(doc_table.DOC, doc)
    text = doc.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `paper000` | P-contr"))
    doc.write_text(text.replace(row, row.replace("USB 31/50", "USB 32/50")), encoding="utf-8")
    assert doc_table.main(["--check", "--doc", str(doc)]) == 1
    assert "does not hold the ledger's table" in capsys.readouterr().err
    assert doc_table.main(["--doc", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == text
    doc.write_text(text.replace(doc_table.END, ""), encoding="utf-8")
    assert doc_table.main(["--doc", str(doc)]) == 2
    assert "expected one" in capsys.readouterr().err


def test_run_from_another_folder_it_reads_the_repositorys_ledger(tmp_path, monkeypatch, capsys):
    """The ledger's default was relative to the working directory: run elsewhere, it read no
    entries and wrote an empty table over the documented one (diff24)."""
    monkeypatch.chdir(tmp_path)
    assert doc_table.main(["--check"]) == 0, capsys.readouterr().err
    assert doc_table.main(["--check", "--ledger", "nowhere"]) == 2
    assert "nowhere is no ledger" in capsys.readouterr().err


def test_names_are_plain_text_and_the_controller_entries_marked_as_on_the_site():
    """Names went into Markdown with only `|` escaped: "[x](url)" read as a link, "<b>" as
    HTML; and the site's "(given the goal)" beside the P-controller and residual entries was
    missing (leader21)."""
    from leaderboards.site import given_the_goal

    assert doc_table._cell("[Best](https://x.org) <b>b</b> *y* A|B") == \
        "\\[Best\\](https\\://x.org) \\<b\\>b\\</b\\> \\*y\\* A\\|B"
    # Bare URLs and e-mail addresses GitHub would link (checked with cmark-gfm, GitHub's parser)
    assert doc_table._cell("https://x.org WWW.y.org a@b.org") == \
        "https\\://x.org WWW\\.y.org a<!---->@b.org"
    # An entity reference rendered as the character it names (leader24)
    assert doc_table._cell("P&minus;controller&nbsp;(seed 0)") == \
        "P\\&minus;controller\\&nbsp;(seed 0)"
    text = doc_table.DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `paper000` | P-contr"))
    assert "P-controller (seed 0) (given the goal) |" in row
    assert given_the_goal({"policy": {"agent": "residual_sac"}})
    assert not given_the_goal({"policy": {"agent": "sac"}})


def test_an_empty_or_damaged_ledger_is_one_line(tmp_path, capsys):
    """An empty entries/ folder wrote an empty table over the doc; an entry file nested
    100,000 deep was a traceback (leader21)."""
    (tmp_path / "empty" / "entries").mkdir(parents=True)
    doc = tmp_path / "leaderboard.md"  # refused, it must not write; nor a test the real doc
    shutil.copy(doc_table.DOC, doc)
    assert doc_table.main(["--ledger", str(tmp_path / "empty"), "--doc", str(doc)]) == 2
    assert "holds no entries" in capsys.readouterr().err
    deep = tmp_path / "deep" / "entries" / "tiny"
    deep.mkdir(parents=True)
    (deep / "x.json").write_text("[" * 100_000 + "]" * 100_000)
    assert doc_table.main(["--ledger", str(tmp_path / "deep"), "--doc", str(doc)]) == 2
    assert "x.json is not valid JSON" in capsys.readouterr().err
    assert doc.read_text(encoding="utf-8") == doc_table.DOC.read_text(encoding="utf-8")
