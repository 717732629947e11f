"""`benchmark.bench_env`'s step counting, and the lone-envs ceiling: plumbing and its worker's
life (no timings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import gymnasium as gym

import envs  # noqa: F401  (registers the tasks)
from benchmark.bench_env import _lone_envs, _stepper
from tests.envs.test_sharded_vector import _alive, _wait_gone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_vector_step_in_which_a_world_only_resets_is_no_env_step():
    """Counted as one, it put every vector ratio ~2% high (review)."""
    single = gym.make("InsertBench/USB-v3", max_episode_steps=3)
    assert _stepper(single, 7)() == 7  # its resets happen beside the steps
    vec = gym.make_vec("InsertBench/USB-v3", num_envs=2, processes=0, max_episode_steps=3)
    run = _stepper(vec, 7, 2)
    # Steps 1-3 end the episodes, step 4 only resets, 5-7 end the next ones; step 8 (the next
    # run's first) resets again: the count carries over from one run to the next.
    assert run() == 2 * 6 and run() == 2 * 5
    vec.close()


def test_lone_envs_step_one_env_per_process_and_end_when_closed():
    run, workers, close = _lone_envs("InsertBench/USB-v0", {}, steps=3, processes=2)
    try:
        assert len(workers) == 1 and workers[0].is_alive()
        assert run() == 6 and run() == 6  # 3 steps here and 3 in the worker, each round
    finally:
        close()
    assert workers[0].exitcode == 0


def test_the_lone_env_worker_dies_when_the_benchmark_is_killed():
    """kill -9 mid-round: the worker is stepping (a minute's worth of steps), not waiting on
    its pipe, so only the tether (PR_SET_PDEATHSIG) ends it at once."""
    script = textwrap.dedent("""
        import threading, time
        from benchmark.bench_env import _lone_envs
        run, workers, close = _lone_envs("InsertBench/USB-v0", {}, steps=100_000, processes=2)
        threading.Thread(target=run, daemon=True).start()
        print(workers[0].pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT})
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone([pid]) == []
    finally:
        parent.kill()
        parent.wait()
