"""`python -m benchmark.check_serl` refuses impossible counts with one usage line (exit 2) before
it trains, instead of a RuntimeError/ValueError traceback (review session)."""

from __future__ import annotations

import sys

import pytest

from benchmark import check_serl


@pytest.mark.parametrize(("args", "message"), [
    (["--threads", "0"], "argument --threads: must be an integer >= 1, got '0'"),
    (["--steps", "-1"], "argument --steps: must be an integer >= 0, got '-1'"),
    (["--demos", "-1"], "argument --demos: must be an integer >= 0, got '-1'"),
    (["--eval-every", "x"], "argument --eval-every: must be an integer >= 0, got 'x'"),
])
def test_bad_counts_are_one_usage_line(args, message, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["check_serl", *args, "--out", "run"])
    with pytest.raises(SystemExit) as stop:
        check_serl.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].endswith(message), err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "names"), [
    (["-e", "goal_noise_mm=NaN"], "goal_noise_mm"),
    (["-c", "no_such_field=1"], "no_such_field"),
])
def test_bad_env_or_agent_values_are_one_usage_line(args, names, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["check_serl", "--steps", "10", *args, "--out", "run"])
    with pytest.raises(SystemExit) as stop:
        check_serl.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert names in err.splitlines()[-1], err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
