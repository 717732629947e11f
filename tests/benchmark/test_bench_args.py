"""The benchmark scripts refuse nonsense arguments with one usage line, before any timing
(they used to time for minutes, then end in a ZeroDivisionError or ValueError traceback)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("benchmark.bench_throughput", ["--steps", "0"], "--steps: must be an integer >= 1"),
        ("benchmark.bench_throughput", ["--worlds", "2", "0"], "--worlds: must be an integer"),
        ("benchmark.bench_throughput", ["--seconds", "nan"], "--seconds: must be a finite"),
        ("benchmark.bench_env", ["--num-envs", "-1"], "--num-envs: must be an integer >= 1"),
        ("benchmark.bench_env", ["--rounds", "1.5"], "--rounds: must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_one_usage_line(tmp_path, module, args, message):
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, timeout=120,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr and done.stdout == ""
