"""The benchmark scripts refuse nonsense arguments with one usage line, before any timing
(they used to time for minutes, then end in a ZeroDivisionError or ValueError traceback)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("benchmark.bench_throughput", ["--steps", "0"], "--steps: must be an integer >= 1"),
        ("benchmark.bench_throughput", ["--worlds", "2", "0"], "--worlds: must be an integer"),
        ("benchmark.bench_throughput", ["--seconds", "nan"], "--seconds: must be a finite"),
        ("benchmark.bench_env", ["--num-envs", "-1"], "--num-envs: must be an integer >= 1"),
        ("benchmark.bench_env", ["--num-envs", "1"], "--num-envs: a vector has 2 worlds or more"),
        ("benchmark.bench_env", ["--rounds", "1.5"], "--rounds: must be an integer >= 1"),
        # The scripts below ended in a traceback (ZeroDivisionError, torch's RuntimeError, a
        # KeyError listing every task ID, FileExistsError) or timed nothing for ever.
        ("benchmark.bench_connectors", ["--episodes", "0"], "--episodes: must be an integer"),
        ("benchmark.bench_connectors", ["--procedural", "-1"], "--procedural: must be an integer"),
        ("benchmark.check_learning", ["--threads", "0"], "--threads: must be an integer >= 1"),
        ("benchmark.check_learning", ["--steps", "-1"], "--steps: must be an integer >= 0"),
        ("benchmark.check_learning", ["--agent", "p_controller", "--steps", "10"],
         "--task pendulum checks an online learner (residual_sac, residual_td3, sac, td3); "
         "p_controller is scripted"),
        ("benchmark.bench_agents", ["--threads", "-2"], "--threads: must be an integer >= 1"),
        ("benchmark.bench_agents", ["--seconds", "0"], "--seconds: must be a finite number > 0"),
        ("benchmark.bench_rtde_twin", ["--seconds", "-1"], "--seconds: must be a finite number"),
        ("benchmark.sim2sim", ["--task", "USB"], "not a single-connector task: ['USB']"),
        ("benchmark.bench_leaderboard", ["--track", "nope"], "unknown track 'nope'"),
        ("benchmark.bench_leaderboard", ["--checkpoint", "runs/nothere"],
         "--checkpoint runs/nothere is not an agent directory"),
        ("benchmark.bench_leaderboard", ["--threads", "0"], "--threads: must be an integer >= 1"),
        ("benchmark.make_figures", ["--out", "a_file"], "argument --out: 'a_file' is a file"),
        ("benchmark.bench_recheck_rounding", ["nope"], "has an id starting with 'nope'"),
        # A board was an AttributeError / a bare ValueError (diff25).
        ("benchmark.bench_descent_swing", ["--tasks", "NISTBoard-v0"],
         "are not single-connector tasks"),
        ("benchmark.bench_spiral", ["InsertBench/NISTBoard-v0", "--episodes", "1"],
         "InsertBench/NISTBoard-v0 is not a single-connector task"),
        # bench20: a traceback for agents the USB check cannot give demos or labels; a timestep
        # refused by the env after rows were printed (test_bench_arguments); an IndexError
        # for a short servo loop
        ("benchmark.check_learning", ["--task", "usb", "--agent", "localize", "--steps", "10"],
         "this check takes no demos or env kwargs"),
        ("benchmark.bench_rtde_twin", ["--seconds", "0.002"], "--seconds: at least 0.01"),
        ("benchmark.bench_rtde_twin", ["--seconds", "1e9"], "--seconds: at most 300 (the twin's"),
        ("benchmark.bench_tab_chatter", ["--tasks"], "--tasks: name at least one task"),
        # The folder twice ("x: x: no TensorBoard events"; serl19).
        ("benchmark.serl_interventions", ["."], "error: .: no TensorBoard events under tb/"),
    ],
)
def test_bad_arguments_are_one_usage_line(tmp_path, module, args, message):
    (tmp_path / "a_file").write_text("not a folder")
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, timeout=120,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_bench_leaderboard_says_a_checkpoint_of_other_spaces_in_one_line(tmp_path):
    """A checkpoint of other spaces (6-D actions) ended in a SubmissionError traceback
    (bench20)."""
    done = subprocess.run(
        [sys.executable, "-c",
         "import gymnasium as gym, envs\n"
         "from agents import make_agent\n"
         "env = gym.make('InsertBench/USB-v1', action_mode='pose')\n"
         "make_agent('sac', env.observation_space, env.action_space, {'hidden': (8,)})"
         ".save('agent')"], cwd=tmp_path, timeout=120, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "benchmark.bench_leaderboard", "--checkpoint",
                           "agent"], cwd=tmp_path, timeout=120, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "is not the track task's" in done.stderr.splitlines()[-1]
    assert "out of date" not in done.stderr  # the track's pinned versions


def test_bench_recheck_rounding_says_an_altered_policy_file_in_one_line(tmp_path):
    """Its policy files were read after the first entry's episodes ran: a missing or altered
    one was a LedgerError traceback, losing the rows computed so far (bench23)."""
    import shutil

    shutil.copytree(Path(ROOT) / "leaderboards" / "ledger", tmp_path / "ledger")
    (weights,) = (tmp_path / "ledger" / "policies").glob("cd80ebde8067*/USB/weights.safetensors")
    with weights.open("ab") as f:
        f.write(b"\0")
    done = subprocess.run([sys.executable, "-m", "benchmark.bench_recheck_rounding", "cd80eb",
                           "--ledger", "ledger"], cwd=tmp_path, timeout=120, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "USB/weights.safetensors of entry cd80ebde8067 is missing or altered" in \
        done.stderr.splitlines()[-1]


@pytest.mark.parametrize(("variant", "message"), [
    ("tab_condim=2", "tab_condim must be one of (1, 3, 4, 6), got '2'"),
    ("noslip=2.5", "noslip must be a whole number, got '2.5'"),
])
def test_a_tab_chatter_knob_of_a_value_mujoco_does_not_take_is_one_line(tmp_path, variant,
                                                                        message):
    """bench24: tab_condim=2 was MuJoCo's error after the table's header; noslip=2.5 ran as 2
    under a row labelled 2.5."""
    done = subprocess.run([sys.executable, "-m", "benchmark.bench_tab_chatter", "--variant",
                           variant], cwd=tmp_path, timeout=120, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 1 and not done.stdout, done.stdout
    assert done.stderr.strip() == f"bench_tab_chatter: {message}", done.stderr
