"""The worker processes of `ShardedVectorEnv`: they die with their parent (kill -9 included), a
worker's error or death reaches the caller as one exception, and infos cross in shared memory
exactly. (Results equal to single envs through autoreset: `test_vector.py`.)"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the tasks)
from envs.shard_wire import INFO_ROW_BYTES, InfoCodec
from envs.worlds import merge_world_infos

ENV_ID = "InsertBench/USB-v0"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("where", ["main thread", "other thread"])
def test_workers_die_when_the_parent_is_killed(where):
    """kill -9 of a process holding a vector env ends its workers: through PR_SET_PDEATHSIG
    when the env was made on the main thread, through the command pipe's end otherwise (there
    the starting thread has ended before the kill, which would fire PDEATHSIG too early)."""
    make = 'vec = gym.make_vec("InsertBench/USB-v0", num_envs=3, processes=3); vec.reset(seed=0)'
    if where == "other thread":
        make = textwrap.dedent(f"""
            import threading
            box = {{}}
            def build():
                {make.replace("vec =", "box['vec'] = vec =")}
            thread = threading.Thread(target=build); thread.start(); thread.join()
            vec = box["vec"]""")
    script = textwrap.dedent("""
        import sys, time
        import gymnasium as gym
        import envs
        {make}
        vec.step([[0.0, 0.0, 0.0]] * 3)
        print(*vec.unwrapped.worker_pids, flush=True)
        time.sleep(60)
    """).format(make=make)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": ROOT})
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)  # worlds 1 and 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(pids) == []
    finally:
        parent.kill()
        parent.wait()


def test_a_worker_error_surfaces_as_one_exception():
    """A world's own error in a worker. `reset` now refuses bad options before any world resets
    (`envs.worlds.batch_reset_args`), so the bad command goes to the worker past that check."""
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=2)  # here: worlds 0, 1; a worker: 2
    pids = vec.unwrapped.worker_pids
    vec.reset(seed=0)
    worker = vec.unwrapped._workers[0]
    with pytest.raises(ValueError, match=r"options\['tcp_offset_mm'\] must be a pair") as error:
        vec.unwrapped._request({worker: ("reset", ([None], {"tcp_offset_mm": "sideways"},
                                                   [True]))})
    note = "\n".join(error.value.__notes__)
    assert f"raised in world 2, worker process {pids[0]}" in note
    assert "requested_offset_mm" in note  # the worker's traceback
    assert vec.unwrapped.closed and _wait_gone(pids) == []
    with pytest.raises(RuntimeError, match="closed"):
        vec.step(np.zeros((3, 3), np.float32))


class _LockOnArrival:
    """Pickles as an instruction to make a lock, which cannot be pickled back."""

    def __reduce__(self):
        return threading.Lock, ()


def test_an_unpicklable_call_result_is_an_error_not_a_dead_worker(capfd):
    """`get_attr("unwrapped")` used to kill the worker with a pickling traceback on stderr and
    end in `worker process ... died (exit code 1)` (envs pickle since; a lock stands in)."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=2)  # here: world 0; a worker: world 1
    pids = vec.unwrapped.worker_pids
    vec.reset(seed=0)
    vec.set_attr("handle", [None, _LockOnArrival()])  # world 1's is a lock
    capfd.readouterr()
    with pytest.raises(TypeError, match="the reply to 'call' cannot cross to the parent "
                                        "process") as error:
        vec.get_attr("handle")
    assert f"worker process {pids[0]}" in "\n".join(error.value.__notes__)
    assert len(vec.get_attr("goal_noise_mm")) == 2  # the worker answers on: still in step
    assert not vec.unwrapped.closed  # a get_attr changed no world
    vec.close()
    assert _wait_gone(pids) == []
    assert "Traceback" not in capfd.readouterr().err


def test_set_attr_reaches_every_world_as_gymnasiums_vectors_do():
    """The default vector had `call` and `get_attr` but no `set_attr` (AttributeError)."""
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=2)  # worlds 0-1 here, 2 in a worker
    vec.set_attr("goal_noise_mm", [0.5, 1.0, 1.5])
    assert vec.get_attr("goal_noise_mm") == (0.5, 1.0, 1.5)
    vec.set_attr("goal_noise_mm", 2.0)
    assert vec.get_attr("goal_noise_mm") == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="one value per world \\(3\\), got 2"):
        vec.set_attr("goal_noise_mm", [1.0, 2.0])
    # It closed the vector and killed its workers, saying nothing of either.
    with pytest.raises(TypeError, match="set_attr: a value that cannot be pickled .* stays open"):
        vec.set_attr("goal_noise_mm", threading.Lock())
    assert vec.get_attr("goal_noise_mm") == (2.0, 2.0, 2.0)  # open, and no world was set
    vec.close()


def test_a_kwarg_no_worker_can_be_sent_says_the_vector_was_not_built():
    """It said "this vector env stays open" of a vector that was never built (engines17)."""

    class Locked(float):
        lock = threading.Lock()

    with pytest.raises(TypeError, match="build: a value that cannot be pickled .*; the vector "
                                        "env was not built"):
        gym.make_vec(ENV_ID, num_envs=3, processes=2, goal_noise_mm=Locked(1.0))
    # A kwarg the worlds refuse: "this vector env is closed", of one never built (engines20)
    with pytest.raises(TypeError) as refused:
        gym.make_vec(ENV_ID, num_envs=3, processes=3, timestp=0.002)
    assert refused.value.__notes__ == ["raised in worlds [0] (this process); the vector env "
                                       "was not built"]


def test_an_error_in_this_process_world_closes_the_workers_too():
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=2)
    pids = vec.unwrapped.worker_pids
    with pytest.raises(ValueError, match=r"must be a pair") as raised:  # world 0 raises first
        vec.call("reset", seed=0, options={"tcp_offset_mm": "sideways"})
    assert vec.unwrapped.closed and _wait_gone(pids) == []
    # It said nothing of the close (a worker's error did).
    assert raised.value.__notes__ == ["raised in world 0 (this process); this vector env is "
                                      "closed"]


def test_a_mistyped_get_attr_leaves_the_vector_open():
    """A typo in get_attr closed the vector and killed its workers (threads and Gymnasium's
    own vectors go on)."""
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=2)
    vec.reset(seed=0)
    with pytest.raises(AttributeError, match="max_episode_step") as raised:
        vec.get_attr("max_episode_step")
    assert "this vector env stays open" in raised.value.__notes__[0]
    vec.step(np.zeros((3, 3), np.float32))
    vec.close()


def test_a_dead_worker_is_an_error_not_a_hang():
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=3)
    vec.reset(seed=0)
    doomed, other = vec.unwrapped.worker_pids
    os.kill(doomed, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=rf"worker process {doomed} of worlds \[1\] died"):
        vec.step(np.zeros((3, 3), np.float32))
    assert vec.unwrapped.closed and _wait_gone([other]) == []


def test_a_worker_dead_before_the_command_is_the_same_error():
    """Dead before the command is sent, the worker's pipe raised BrokenPipeError (review)."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=2)
    vec.reset(seed=0)
    (doomed,) = vec.unwrapped.worker_pids
    os.kill(doomed, signal.SIGKILL)
    vec.unwrapped._workers[0].process.wait(10)  # reaped: its pipe ends are closed for sure
    with pytest.raises(RuntimeError, match=rf"worker process {doomed} of worlds \[1\] died "
                                           r"\(exit code -9\)"):
        vec.step(np.zeros((2, 3), np.float32))
    assert vec.unwrapped.closed


def test_close_ends_the_workers():
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=3, max_episode_steps=3)
    pids = vec.unwrapped.worker_pids
    assert all(_alive(p) for p in pids)
    vec.close()
    assert _wait_gone(pids, timeout_s=0.1) == []


def test_observations_handed_out_as_views_outlive_the_vector():
    """With copy=False, closing the vector unmapped the shared memory under the observations it
    had returned: reading one afterwards was a segmentation fault (review)."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=2, copy=False)
    obs, _ = vec.reset(seed=0)
    expected = obs["tcp_pose"].copy()
    vec.close()
    np.testing.assert_array_equal(obs["tcp_pose"], expected)
    with pytest.raises(RuntimeError, match="this vector env is closed"):  # was AttributeError
        vec.set_attr("goal_noise_mm", 1.0)


def test_info_codec_round_trips_and_merges_as_gymnasium():
    worlds = [
        {"name": "a", "flag": True, "count": 3, "depth": 1.5,
         "f32": np.float32(2.0), "pos": np.arange(3.0), "pixels": np.ones((2, 2), np.uint8)},
        {"name": "a", "flag": False, "count": -4, "depth": 0.5,
         "f32": np.float32(1.0), "pos": np.ones(3), "pixels": np.zeros((2, 2), np.uint8)},
    ]
    codec = InfoCodec(worlds[0])
    records = codec.records(np.zeros((2, INFO_ROW_BYTES), np.uint8))
    for i, info in enumerate(worlds):
        assert codec.fits(info)
        codec.write(records, i, info)
    for i, info in enumerate(worlds):
        decoded = codec.decode(records, i)
        assert list(decoded) == list(info)
        for key, value in info.items():
            assert type(decoded[key]) is type(value), key
            np.testing.assert_array_equal(decoded[key], value)
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=0)
    expected = merge_world_infos(vec.unwrapped, [(info, None) for info in worlds])
    vec.close()
    merged = codec.merged(records)
    assert list(merged) == list(expected)
    for key, value in expected.items():
        assert merged[key].dtype == value.dtype and merged[key].shape == value.shape, key
        assert merged[key].tolist() == value.tolist(), key
    # Any other form travels pickled: a new key, another type, shape or string, a huge int.
    first = worlds[0]
    for unfit in ({**first, "physics_error": "NaN"}, {**first, "count": 3.0},
                  {**first, "pos": np.arange(4.0)}, {**first, "name": "b"},
                  {**first, "count": 2**70}, {k: first[k] for k in reversed(first)}):
        assert not codec.fits(unfit)
    assert InfoCodec.of({"nested": {"a": 1}}) is None
    assert InfoCodec.of({"np_flag": np.bool_(True)}) is None  # Gymnasium merges it as objects
    assert InfoCodec.of({"big": np.zeros(INFO_ROW_BYTES)}) is None


def test_unfit_infos_cross_pickled():
    """Infos of another form than the codec's (a physics error adds a key) cross pickled and
    merge exactly: forced here by a codec that no step's info fits."""
    vec = gym.make_vec(ENV_ID, num_envs=2, max_episode_steps=3)
    single = [gym.make(ENV_ID, max_episode_steps=3) for _ in range(2)]
    vec.reset(seed=4)
    for i, env in enumerate(single):
        env.reset(seed=4 + i)
    unwrapped = vec.unwrapped
    unwrapped._codec, unwrapped._new_codec = InfoCodec({"other": 1.0}), True
    action = np.full((2, 3), 0.3, np.float32)
    for _ in range(3):
        _, _, _, _, infos = vec.step(action)
        for i, env in enumerate(single):
            info = env.step(action[i])[-1]
            assert infos["task_id"][i] == info["task_id"]
            for key in ("is_success", "distance_to_goal_mm", "tcp_pos_m"):
                np.testing.assert_array_equal(infos[key][i], info[key])
    vec.close()


def test_ctrl_c_while_workers_are_busy_does_not_wait_for_them():
    """An interrupted exchange kills the workers at once: asking them to close waited for their
    current command (here a 60 s build; a real pixel build took ~20 s on a loaded machine)."""
    import threading

    from envs.sharded_vector import ShardedVectorEnv

    # A shell's background job inherits SIGINT ignored (CI may run pytest as one): install
    # Python's own handler for the test, as an interactive run has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            # Built here at once; the two workers sleep 60 s in their build.
            ShardedVectorEnv("tests.envs.slow_build:SlowBuild-v0", 3, {"build_s": 60.0},
                             processes=3)
            time.sleep(30)  # not reached unless the build returned early
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 8.0


def test_workers_import_nothing_from_the_working_directory(tmp_path, monkeypatch):
    """`python -m` put the working directory first on the workers' path: a user's envs.py
    there was imported, and every worker died (exit code 1) at the vector's build (diff22)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "envs.py").write_text("raise SystemExit('imported from the cwd')\n")
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=2)
    vec.reset(seed=0)
    vec.close()
