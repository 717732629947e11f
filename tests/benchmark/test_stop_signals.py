"""How commands stop: a SIGTERM as a Ctrl-C (one line, status 143), children started without
a Ctrl-C of their own."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

from envs.tether import children_ignore_sigint

ROOT = Path(__file__).resolve().parents[2]


def _sigint_disposition(queue) -> None:
    queue.put(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


def test_children_started_inside_ignore_sigint_and_the_parent_keeps_its_handler():
    """A Ctrl-C while matrix workers imported printed 68-114 lines of their tracebacks."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # From Python's own Ctrl-C handler: a shell's background job (pytest run with `&`) starts
    # with SIGINT ignored, which Python keeps, and the "outside" child inherited it.
    suite = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with children_ignore_sigint():
            child = context.Process(target=_sigint_disposition, args=(queue,))
            child.start()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert queue.get(timeout=60) is True
        child.join(timeout=60)
        outside = context.Process(target=_sigint_disposition, args=(queue,))
        outside.start()
        assert queue.get(timeout=60) is False
        outside.join(timeout=60)
    finally:
        signal.signal(signal.SIGINT, suite)


def test_a_sigterm_stops_a_command_with_one_line_and_status_143(tmp_path):
    """SIGTERM (timeout, batch schedulers, systemd) killed every command without a line, and
    `real validate` without the robot's stop that a Ctrl-C runs."""
    command = [sys.executable, "-c", "import sys; sys.argv = ['insertbench'] + sys.argv[1:]; "
               "import benchmark.entry as e; e.main()", "train", "--task", "InsertBench/USB-v1",
               "--agent", "sac", "--steps", "1000000", "--eval-every", "0", "-c",
               "hidden=8,8", "--out", "run", "--no-progress"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "run.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # into the training loop
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "insertbench: error: terminated", err
    assert "Traceback" not in err


def _tqdm_lock_is_of_this_process() -> bool:
    import threading

    import tqdm

    with tqdm.tqdm(total=1, disable=True):  # a bar creates tqdm's lock on first use
        pass
    return isinstance(tqdm.tqdm.get_lock(), type(threading.RLock()))


def test_a_matrix_worker_holds_no_semaphore_a_ctrl_c_would_leak():
    """tqdm's default lock is a multiprocessing semaphore, which a worker terminated on Ctrl-C
    never unregistered: "resource_tracker: There appear to be 2 leaked semaphore objects"
    followed the one-line "interrupted"."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    from benchmark.executors import _init_worker

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(1, os.getpid())) as pool:
        assert pool.submit(_tqdm_lock_is_of_this_process).result(timeout=120)
