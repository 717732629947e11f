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
    doc.write_text(text.replace(row, row.replace("USB 30/50", "USB 31/50")), encoding="utf-8")
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
    assert doc_table.main(["--ledger", "nowhere"]) == 2
    assert "nowhere is no ledger" in capsys.readouterr().err
