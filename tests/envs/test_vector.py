"""`gym.make_vec` builds the vector env (worlds in worker processes by default, on threads with
``processes=0``), and both equal N single envs step for step."""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the tasks)
from envs.sharded_vector import ShardedVectorEnv
from envs.vector import ThreadedVectorEnv
from envs.worlds import merge_world_infos

ENV_ID = "InsertBench/USB-v0"
REPO_ROOT = str(Path(__file__).resolve().parents[2])
#: The infos a runner or an episode record reads.
#: Where the worlds step: the registered default (worker processes) and threads.
BACKENDS = pytest.mark.parametrize(("processes", "backend"),
                                   [(None, ShardedVectorEnv), (0, ThreadedVectorEnv)],
                                   ids=["processes", "threads"])
INFO_KEYS = ("is_success", "insertion_depth_mm", "distance_to_goal_mm", "max_force_n", "force_n",
             "tcp_pos_m")


def _actions(num_envs: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(-1, 1, (steps, num_envs, 3)).astype(np.float32)


def _single_env_rollouts(env_id: str, kwargs: dict, seed: int,
                         actions: np.ndarray) -> list[list[tuple]]:
    """What Gymnasium's NextStep autoreset does, with one plain env per world."""
    worlds = []
    for i in range(actions.shape[1]):
        env = gym.make(env_id, **kwargs)
        obs, info = env.reset(seed=seed + i)
        record, done = [(obs, 0.0, False, False, info)], False
        for action in actions[:, i]:
            if done:
                obs, info = env.reset()
                record.append((obs, 0.0, False, False, info))
                done = False
                continue
            obs, reward, terminated, truncated, info = env.step(action)
            record.append((obs, reward, terminated, truncated, info))
            done = terminated or truncated
        env.close()
        worlds.append(record)
    return worlds


def _check_same(vec_record, singles):
    for t, (obs, reward, terminated, truncated, infos) in enumerate(vec_record):
        for i, world in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = world[t]
            for key in s_obs:
                np.testing.assert_array_equal(obs[key][i], s_obs[key], err_msg=f"t={t} {key}")
            assert (reward[i], terminated[i], truncated[i]) == (s_reward, s_term, s_trunc)
            for key in INFO_KEYS:
                assert infos[f"_{key}"][i]
                np.testing.assert_array_equal(infos[key][i], s_info[key], err_msg=f"t={t} {key}")


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        (ENV_ID, dict(max_episode_steps=4, goal_noise_mm=1.0, init_offset_mm=(0.0, 3.0))),
        # v1: F/T filter and sensor noise (drawn from each world's own generator), dense reward
        ("InsertBench/USB-v1", dict(max_episode_steps=4, reward="dense", goal_noise_mm=1.0)),
        (ENV_ID, dict(max_episode_steps=3, obs_mode="state+pixels", image_size=24,
                      grayscale=True)),
    ],
    ids=["state", "v1", "pixels"],
)
@BACKENDS
def test_make_vec_matches_single_envs_through_autoreset(env_id, kwargs, processes, backend):
    num_envs, steps, seed = 3, 9, 11
    actions = _actions(num_envs, steps)
    vec = gym.make_vec(env_id, num_envs=num_envs, processes=processes, **kwargs)
    assert isinstance(vec.unwrapped, backend)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, infos = vec.reset(seed=seed)
    assert vec.observation_space.contains(obs)
    for key, space in vec.unwrapped.single_observation_space.items():
        assert obs[key].shape == (num_envs, *space.shape)
    if "pixels" in kwargs.get("obs_mode", ""):
        assert obs["wrist"].shape == obs["side"].shape == (num_envs, 24, 24, 1)
    record = [(obs, np.zeros(num_envs), np.zeros(num_envs, bool), np.zeros(num_envs, bool),
               infos)]
    for action in actions:
        obs, reward, terminated, truncated, infos = vec.step(action)
        record.append((obs, reward, terminated, truncated, infos))
    vec.close()
    _check_same(record, _single_env_rollouts(env_id, kwargs, seed, actions))
    assert any(r[3].any() for r in record)  # the episodes did end and restart


@BACKENDS
def test_same_step_autoreset_reports_the_final_observation(processes, backend):
    vec = gym.make_vec(ENV_ID, num_envs=2, max_episode_steps=2, autoreset_mode="SameStep",
                       processes=processes)
    assert isinstance(vec.unwrapped, backend)
    vec.reset(seed=0)
    action = np.full((2, 3), 0.8, np.float32)
    vec.step(action)
    obs, _, _, truncated, infos = vec.step(action)
    assert truncated.all()
    assert infos["_final_obs"].all()
    final = infos["final_obs"][0]["tcp_pose"]
    assert not np.array_equal(final, obs["tcp_pose"][0])  # obs is already the next episode's
    vec.close()


@BACKENDS
def test_partial_reset_and_bad_arguments(processes, backend):
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes)
    assert isinstance(vec.unwrapped, backend)
    first, _ = vec.reset(seed=5)
    vec.step(np.full((2, 3), 0.5, np.float32))
    obs, _ = vec.reset(seed=5, options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(obs["tcp_pose"][0], first["tcp_pose"][0])
    assert not np.array_equal(obs["tcp_pose"][1], first["tcp_pose"][1])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([False, False])})
    with pytest.raises(ValueError, match="seeds for num_envs=2"):
        vec.reset(seed=[1, 2, 3])
    vec.reset(seed=5)
    before = vec.unwrapped.call("_elapsed_s")  # [s] of each world's episode
    # One action for two worlds used to step world 0 alone and leave world 1 where it was.
    for bad in (np.zeros((1, 3)), np.zeros((3, 3)), np.zeros(3), np.zeros((2, 2))):
        with pytest.raises(ValueError, match=rf"actions must have shape \(2, 3\).*{bad.shape}"):
            vec.step(bad)
    assert vec.unwrapped.call("_elapsed_s") == before
    vec.step([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # a nested list is a batch too
    after = vec.unwrapped.call("_elapsed_s")
    assert all(a > b for a, b in zip(after, before, strict=True))
    vec.close()
    for bad in (0, -2, 2.5, "2", True, 100_000):  # 100,000: "can't start new thread"
        with pytest.raises(ValueError, match=re.escape(
                f"num_envs must be an integer in [1, 1024], got {bad!r}")):
            gym.make_vec(ENV_ID, num_envs=bad)
    for bad in (-1, 3, 1.5, True):
        with pytest.raises(ValueError, match=f"processes must be an integer .*got {bad!r}"):
            gym.make_vec(ENV_ID, num_envs=2, processes=bad)
    with pytest.raises(ValueError, match="copy must be True or False, got 'no'"):  # it copied
        gym.make_vec(ENV_ID, num_envs=2, processes=processes, copy="no")
    # Built directly (the README names it), processes=1.5 built a vector and num_envs="2"
    # ended in "'<' not supported between instances of 'int' and 'str'".
    for kwargs, message in (({"num_envs": "2"}, "num_envs must be an integer"),
                            ({"num_envs": 2, "processes": 1.5}, "processes must be an integer"),
                            ({"num_envs": 2, "copy": 1}, "copy must be True or False")):
        with pytest.raises(ValueError, match=message):
            ShardedVectorEnv(ENV_ID, **kwargs)
    # True truncated every world after one step; 0 and -2 were handed to TimeLimit unchecked.
    for bad in (True, 0, -2, 2.5):
        with pytest.raises(ValueError, match=f"max_episode_steps must be an integer .*got {bad!r}"):
            gym.make_vec(ENV_ID, num_envs=2, max_episode_steps=bad)
    gym.make_vec(ENV_ID, num_envs=1, max_episode_steps=np.int64(-1)).close()  # no limit
    vec = gym.make_vec(ENV_ID, num_envs=1, max_episode_steps=np.int64(1))  # TimeLimit refused it
    vec.reset(seed=0)
    assert vec.step(np.zeros((1, 3)))[3].all()
    vec.close()


@BACKENDS
def test_bad_action_rows_are_refused_before_any_world_steps(processes, backend):
    """A NaN or out-of-range row is refused for the whole batch, and the vector stays usable
    (in processes it used to step the other worlds, then close the vector)."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes, max_episode_steps=2)
    vec.reset(seed=np.int64(3))  # a numpy integer seeds as an int
    before = vec.unwrapped.call("_elapsed_s")  # [s] of each world's episode
    for bad in (np.nan, np.inf, 1.5):
        actions = np.zeros((2, 3))
        actions[1, 2] = bad
        with pytest.raises(ValueError, match=r"actions\[1\] = .* refused, no world stepped"):
            vec.step(actions)
    with pytest.raises(ValueError,
                       match=r"actions must be real numbers, got \[\[0, 0, 0\], \[0, 'a'"):
        vec.step([[0, 0, 0], [0, "a", 0]])  # "could not convert string to float: 'a'"
    with pytest.raises(ValueError, match=r"actions must be real numbers"):  # imaginary dropped
        vec.step(np.array([[0.5 + 7j, 0, 0], [0, 0, 0]]))
    assert not vec.unwrapped.closed and vec.unwrapped.call("_elapsed_s") == before
    vec.step(np.full((2, 3), 1.0))
    _, _, _, truncated, _ = vec.step(np.zeros((2, 3)))
    assert truncated.all()
    # NextStep: the worlds now reset and ignore their actions, as under SyncVectorEnv.
    vec.step(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="seed must be an int"):
        vec.reset(seed="7")
    with pytest.raises(ValueError, match="seed must be an int"):  # its keys were the seeds
        vec.reset(seed={1: 2, 3: 4})
    # Bad seeds are refused before any world resets: the vector stays usable.
    for bad, match in ((-1, "seed 0 must be"), ([0, 1.5], "seed 1 must be"),
                       ([0, "a"], "seed 1 must be")):
        with pytest.raises(ValueError, match=match):
            vec.reset(seed=bad)
    assert not vec.unwrapped.closed
    vec.reset(seed=[np.int64(2), None])
    vec.close()


@BACKENDS
def test_bad_reset_options_are_refused_before_any_world_resets(processes, backend):
    """A misspelt reset option closed a vector in processes (a world raised), and a string
    was "dictionary update sequence element #0 has length 1; 2 is required"."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes)
    vec.reset(seed=3)
    vec.step(np.full((2, 3), 0.5, np.float32))
    before = vec.unwrapped.call("_elapsed_s")  # [s] of each world's episode
    for bad, error, match in (
        ({"tcp_offset": (1.0, 2.0)}, ValueError, r"unknown reset option\(s\) \['tcp_offset'\]"),
        ({"tcp_offset_mm": (np.nan, 0.0)}, ValueError, "must be a finite number"),
        ("abc", TypeError, "options must be a dict or None, got 'abc'"),
    ):
        with pytest.raises(error, match=match):
            vec.reset(seed=0, options=bad)
    assert not vec.unwrapped.closed and vec.unwrapped.call("_elapsed_s") == before
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 3\).*ragged"):
        vec.step([[0.0, 0.0, 0.0], [0.0, 0.0]])  # numpy's "inhomogeneous shape"
    vec.reset(seed=0, options={"tcp_offset_mm": (1.0, 2.0)})
    vec.close()


@BACKENDS
def test_a_step_before_reset_is_refused_before_any_world_steps(processes, backend):
    """In processes each world refused it and the vector closed itself; on threads, after a
    first reset of some worlds only, the reset ones stepped while the others refused."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes)
    with pytest.raises(gym.error.ResetNeeded, match="world 0 has never been reset"):
        vec.step(np.zeros((2, 3)))
    vec.reset(seed=0, options={"reset_mask": np.array([False, True])})
    with pytest.raises(gym.error.ResetNeeded, match="no world stepped"):
        vec.step(np.zeros((2, 3)))
    assert not vec.unwrapped.closed
    vec.reset(seed=0, options={"reset_mask": np.array([True, False])})
    assert vec.unwrapped.call("_elapsed_s") == (0.0, 0.0)  # [s]: world 1 has not stepped
    vec.step(np.zeros((2, 3)))
    vec.close()


@BACKENDS
def test_stepping_an_ended_world_without_autoreset_is_refused(processes, backend):
    """Autoreset disabled: a step while a world's episode has ended steps no world (in
    processes the other worlds used to step, then the vector closed)."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes, max_episode_steps=1,
                       autoreset_mode="Disabled")
    vec.reset(seed=0)
    vec.step(np.zeros((2, 3)))
    before = vec.unwrapped.call("_elapsed_s")
    with pytest.raises(RuntimeError, match="world 0 ended its episode"):
        vec.step(np.zeros((2, 3)))
    assert not vec.unwrapped.closed and vec.unwrapped.call("_elapsed_s") == before
    vec.reset(seed=1)
    vec.step(np.zeros((2, 3)))
    vec.close()


@BACKENDS
def test_use_after_close_and_from_a_fork_is_one_clear_error(processes, backend):
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=processes)
    vec.reset(seed=0)
    pid = os.fork()
    if pid == 0:  # the child: the worlds are the parent's (threads did not survive the fork)
        code = 1
        try:
            vec.step(np.zeros((2, 3)))
        except RuntimeError as error:
            code = 0 if "made in process" in str(error) else 2
        vec.close()  # forgets its copy, leaves the parent's worlds alone
        os._exit(code)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0, "the child hung or failed"
    vec.step(np.zeros((2, 3)))  # the parent's vector still steps
    vec.close()
    vec.close()
    # set_attr on threads set the closed worlds' attribute without a word.
    for use in (lambda: vec.step(np.zeros((2, 3))), vec.reset, lambda: vec.call("spec"),
                vec.render, lambda: vec.set_attr("goal_noise_mm", 1.0)):
        with pytest.raises(RuntimeError, match="this vector env is closed"):
            use()


@BACKENDS
def test_the_vector_reports_its_worlds_seeds_and_a_mistyped_call_leaves_it_open(
        processes, backend):
    """Processes: np_random_seed was the vector's own unrelated 128-bit seed (Gymnasium's
    vectors and threads give the worlds'), and call("nope") closed the vector, killing its
    workers, though nothing had run."""
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=processes)
    vec.reset(seed=4)
    assert vec.np_random_seed == (4, 5, 6)
    for seed, generator in zip((4, 5, 6), vec.np_random, strict=True):
        single = gym.make(ENV_ID)
        single.reset(seed=seed)
        assert generator.bit_generator.state == single.np_random.bit_generator.state
    with pytest.raises(AttributeError, match="nope"):
        vec.call("nope")
    assert not vec.unwrapped.closed
    vec.step(np.zeros((3, 3), np.float32))
    vec.close()


def _world_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("insertbench-world")]


def test_worker_threads_end_with_close():
    before = len(_world_threads())
    vec = gym.make_vec(ENV_ID, num_envs=3, processes=0)
    vec.reset(seed=0)
    vec.step(np.zeros((3, 3), np.float32))
    assert len(_world_threads()) == before + 3
    vec.close()
    assert len(_world_threads()) == before


def test_a_world_that_fails_a_step_closes_the_threaded_vector():
    """The other worlds stepped, and the vector ran on with its worlds one step apart, their
    time limits and autoresets on different steps, without a word; the sharded vector closes
    (engines20)."""
    before = len(_world_threads())
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=0)
    vec.reset(seed=0)
    vec.set_attr("action_scale_m", [0.005, "x"])
    with pytest.raises(TypeError) as failed:
        vec.step(np.ones((2, 3), np.float32))
    assert "raised in world 1; this vector env is closed" in failed.value.__notes__[0]
    assert vec.closed and len(_world_threads()) == before
    with pytest.raises(RuntimeError, match="this vector env is closed"):
        vec.step(np.ones((2, 3), np.float32))


def test_merged_infos_are_gymnasiums():
    """The vector's one-pass info merge builds what `_add_info` builds, types included; mixed
    key sets and final observations take `_add_info` itself."""
    vec = gym.make_vec(ENV_ID, num_envs=2, processes=0)
    v = vec.unwrapped
    worlds = [
        {"flag": True, "np_flag": np.bool_(False), "count": 3, "depth": 1.5,
         "f64": np.float64(2.0), "pos": np.arange(3.0), "name": "a"},
        {"flag": False, "np_flag": np.bool_(True), "count": 4, "depth": 0.5,
         "f64": np.float64(1.0), "pos": np.ones(3), "name": "b"},
    ]
    mixed = [worlds[0], {**worlds[1], "physics_error": "boom"}]
    final = [(worlds[0], None), (worlds[1], {"final_obs": {"x": 1}, "final_info": worlds[1]})]
    for infos in ([(w, None) for w in worlds], [(w, None) for w in mixed], final):
        expected: dict = {}
        for i, (info, last) in enumerate(infos):
            if last is not None:
                expected = v._add_info(expected, last, i)
            expected = v._add_info(expected, info, i)
        merged = merge_world_infos(v, infos)
        assert merged.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, np.ndarray):
                assert merged[key].dtype == value.dtype, key
                assert merged[key].shape == value.shape, key
                if value.dtype == object:
                    assert list(merged[key]) == list(value), key
                else:
                    np.testing.assert_array_equal(merged[key], value, err_msg=key)
    vec.close()


def test_a_bad_autoreset_mode_is_one_error_and_leaves_nothing_running():
    """`autoreset_mode="bogus"` used to leave the worlds' threads running (threads), and to print
    an `Exception ignored in ShardedVectorEnv.__del__` traceback (processes) after the error."""
    code = (
        "import sys, threading, gymnasium as gym, envs\n"
        "from envs.sharded_vector import ShardedVectorEnv\n"
        "for make in (lambda: gym.make_vec('InsertBench/USB-v3', num_envs=2, processes=0,"
        " autoreset_mode='bogus'),\n"
        "             lambda: gym.make_vec('InsertBench/USB-v3', num_envs=2, processes=2,"
        " autoreset_mode='bogus'),\n"
        "             lambda: ShardedVectorEnv('InsertBench/USB-v3', 2, processes=2,"
        " autoreset_mode='bogus'),\n"
        "             lambda: ShardedVectorEnv('InsertBench/USB-v3', 2, processes=3)):\n"
        "    try:\n"
        "        make()\n"
        "    except ValueError as err:\n"
        "        print(err)\n"
        "import gc; gc.collect()\n"
        "print([t.name for t in threading.enumerate() if t.name.startswith('insertbench')])\n"
    )
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["autoreset_mode must be one of ['NextStep', 'SameStep', 'Disabled'], "
                         "got 'bogus'"] * 3, lines
    assert lines[3] == "processes must be an integer in [1, num_envs=2], got 3"
    assert lines[4] == "[]"


@pytest.mark.parametrize("processes", [None, 0], ids=["processes", "threads"])
def test_a_vector_env_refuses_to_be_copied_in_one_line(processes):
    """A copy failed with "cannot pickle 'select.poll' object" (threads: '_queue.SimpleQueue')
    and the half-made copy's __del__ printed a traceback."""
    import copy
    import pickle

    kwargs = {} if processes is None else {"processes": processes}
    vec = gym.make_vec("InsertBench/USB-v1", num_envs=2, **kwargs)
    try:
        for copy_vec in (copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="a vector env cannot be copied or pickled"):
                copy_vec(vec)
    finally:
        vec.close()
