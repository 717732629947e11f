"""Replay buffer and dataset storage: dict observations (vectors + uint8 images) round-trip."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents import Transition, transitions_to_dataset
from agents.buffer import ReplayBuffer, concat_batches, load_dataset, save_dataset

SPACE = gym.spaces.Dict({
    "tcp_pose": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32),
    "wrist": gym.spaces.Box(0, 255, (8, 8, 1), np.uint8),
})


def _transition(i: int, intervened: bool = False) -> Transition:
    rng = np.random.default_rng(i)
    obs = {"tcp_pose": rng.normal(size=6).astype(np.float32),
           "wrist": rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)}
    nxt = {"tcp_pose": obs["tcp_pose"] + 1, "wrist": 255 - obs["wrist"]}
    return Transition(obs, np.full(3, i / 10, np.float32), float(i), nxt, i % 3 == 0, False, {},
                      intervened=intervened)


def test_buffer_round_trip_through_npz(tmp_path):
    buf = ReplayBuffer(SPACE, 3, capacity=5)
    for i in range(7):  # wraps: holds transitions 2..6
        buf.add(_transition(i, intervened=i == 4))
    assert len(buf) == 5 and buf.ptr == 2
    assert sorted(buf.reward.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    buf.save(tmp_path / "b.npz")
    other = ReplayBuffer(SPACE, 3, capacity=5)
    other.load(tmp_path / "b.npz")
    assert (other.ptr, other.size) == (buf.ptr, buf.size)
    for k in SPACE.spaces:
        np.testing.assert_array_equal(other.obs[k], buf.obs[k])
        np.testing.assert_array_equal(other.next_obs[k], buf.next_obs[k])
    for name in ("action", "reward", "terminated", "intervened"):
        np.testing.assert_array_equal(getattr(other, name), getattr(buf, name))
    assert other.obs["wrist"].dtype == np.uint8
    with pytest.raises(ValueError, match="capacity 5"):
        ReplayBuffer(SPACE, 3, capacity=6).load(tmp_path / "b.npz")


def test_sample_keeps_rows_aligned_and_dtypes():
    buf = ReplayBuffer(SPACE, 3, capacity=10)
    for i in range(10):
        buf.add(_transition(i))
    batch = buf.sample(32, np.random.default_rng(0))
    assert batch["obs"]["wrist"].dtype == np.uint8 and batch["obs"]["wrist"].shape == (32, 8, 8, 1)
    # every row's parts come from the same transition
    np.testing.assert_allclose(batch["next_obs"]["tcp_pose"], batch["obs"]["tcp_pose"] + 1)
    np.testing.assert_allclose(batch["action"][:, 0] * 10, batch["reward"], atol=1e-5)
    mixed = concat_batches(batch, buf.sample(8, np.random.default_rng(1)))
    assert mixed["obs"]["tcp_pose"].shape == (40, 6) and mixed["reward"].shape == (40,)


def test_dataset_save_load_and_add(tmp_path):
    data = transitions_to_dataset([_transition(i) for i in range(4)])
    save_dataset(tmp_path / "d.npz", data)
    loaded = load_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(loaded["obs"]["wrist"], data["obs"]["wrist"])
    np.testing.assert_array_equal(loaded["terminated"], [True, False, False, True])
    buf = ReplayBuffer(SPACE, 3, capacity=10)
    assert buf.add_dataset(loaded) == 4
    np.testing.assert_array_equal(buf.next_obs["tcp_pose"][:4], data["next_obs"]["tcp_pose"])
    small = loaded | {"obs": loaded["obs"] | {"wrist": loaded["obs"]["wrist"][:, :-1]}}
    with pytest.raises(ValueError, match=r"dataset rows differ in shape from this env's .*"
                                         r"obs\['wrist'\]"):  # was numpy's "broadcast"
        buf.add_dataset(small)
    # add() refused a NaN; a dataset's rows went in unchecked and trained NaN weights.
    poisoned = loaded | {"next_obs": loaded["next_obs"] | {
        "tcp_pose": np.where(np.arange(4)[:, None] == 2, np.inf, loaded["next_obs"]["tcp_pose"])}}
    with pytest.raises(ValueError, match=r"dataset: next_obs\['tcp_pose'\] is not finite at "
                                         r"row 2 \(1 rows\)"):
        buf.add_dataset(poisoned)
    assert buf.size == 4  # nothing of it stored
    del loaded["obs"]["wrist"]
    with pytest.raises(ValueError, match="lacks observation keys \\['wrist'\\]"):
        buf.add_dataset(loaded)


@pytest.mark.parametrize("rows", [3, 7, 12])
def test_add_dataset_equals_adding_row_by_row(rows):
    transitions = [_transition(i) for i in range(rows)]
    one_by_one, bulk = ReplayBuffer(SPACE, 3, 5), ReplayBuffer(SPACE, 3, 5)
    for buf in (one_by_one, bulk):
        buf.add(_transition(100))
        buf.add(_transition(101))
    for t in transitions:
        one_by_one.add(t)
    if rows > 5:  # more rows than fit: said, and the newest kept as row by row
        with pytest.warns(UserWarning, match=f"the dataset's {rows} rows exceed the buffer's 5"):
            bulk.add_dataset(transitions_to_dataset(transitions))
    else:
        bulk.add_dataset(transitions_to_dataset(transitions))
    assert (bulk.ptr, bulk.size) == (one_by_one.ptr, one_by_one.size)
    for k in SPACE.spaces:
        np.testing.assert_array_equal(bulk.obs[k], one_by_one.obs[k])
    np.testing.assert_array_equal(bulk.reward, one_by_one.reward)
    np.testing.assert_array_equal(bulk.terminated, one_by_one.terminated)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.update(reward=a["reward"] * 1e30), r"reward exceeds 1e\+06 in magnitude"),
    (lambda a: a.update(reward=np.zeros((3, 2), np.float32)),
     r"reward has shape \(3, 2\), this buffer's 3 rows need \(3,\) \(a damaged or edited"),
    (lambda a: a.update(terminated=np.full(3, 0.5)), "terminated must be 0 or 1"),
    (lambda a: a.update(ptr_size_capacity=np.array([-50, 3, 5])), "pointer -50 and size 3"),
    (lambda a: a.update(ptr_size_capacity=np.array([3, 4, 5])), "pointer 3 and size 4"),
    (lambda a: a.update(ptr_size_capacity=np.array([2, 2, 5])),
     r"obs/tcp_pose has shape \(3, 6\), this buffer's 2 rows need \(2, 6\)"),
    (lambda a: a.pop("ptr_size_capacity"), "ptr_size_capacity must be 3 integers"),
    (lambda a: a.pop("next_obs/wrist"), "lacks next_obs/wrist"),
    (lambda a: a.update(action=np.full((3, 3), np.nan, np.float32)), "action is not finite"),
])
def test_a_damaged_replay_file_is_refused_by_name(tmp_path, damage, message):
    """A resumed run loaded replay files unchecked: rewards of 1e30 trained inf optimizer
    state, and a pointer beyond the rows filled sampled zero rows, both with exit status 0."""
    buf = ReplayBuffer(SPACE, 3, capacity=5)
    for i in range(3):
        buf.add(_transition(i))
    buf.save(tmp_path / "b.npz")
    arrays = dict(np.load(tmp_path / "b.npz"))
    damage(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    fresh = ReplayBuffer(SPACE, 3, capacity=5)
    with pytest.raises(ValueError, match=message) as caught:
        fresh.load(tmp_path / "bad.npz")
    assert str(tmp_path / "bad.npz") in str(caught.value)
    assert fresh.size == 0


def test_a_dataset_with_two_dimensional_rewards_is_refused_by_its_row_shapes():
    dataset = transitions_to_dataset([_transition(i) for i in range(3)])
    dataset["reward"] = np.stack([dataset["reward"]] * 3, axis=1)
    with pytest.raises(ValueError, match=r"'reward': \(\(3,\), \(\)\)"):
        ReplayBuffer(SPACE, 3, capacity=5).add_dataset(dataset)


@pytest.mark.parametrize("flag", ["terminated", "intervened"])
@pytest.mark.parametrize("value", [float("nan"), 0.2, "no", None, np.array([1])])
def test_a_transition_flag_that_is_not_a_boolean_is_refused(flag, value):
    """NaN, 0.2 and "no" were stored as True: a cut bootstrap (or a row counted a human
    correction) without a word, where datasets refuse flags other than 0 and 1."""
    import dataclasses

    buf = ReplayBuffer(SPACE, 3, capacity=4)
    with pytest.raises(ValueError, match=f"transition {flag} must be True or False"):
        buf.add(dataclasses.replace(_transition(0), **{flag: value}))
    assert len(buf) == 0
    for fine in (True, np.bool_(False), 1, np.float32(0.0), np.array(True)):
        buf.add(dataclasses.replace(_transition(0), **{flag: fine}))
    assert getattr(buf, flag)[:4].tolist() == [True, False, True, False]


def test_a_step_that_blew_up_is_not_stored(tmp_path, monkeypatch):
    """It was stored as (s, a, the last reward, s): the env's stand-ins for a state MuJoCo reset,
    a self-loop every off-policy learner bootstrapped from as if `a` had led back to s."""
    import envs  # noqa: F401

    monkeypatch.chdir(tmp_path)  # MUJOCO_LOG.TXT
    env = gym.make("InsertBench/USB-v0")
    buf = ReplayBuffer(env.observation_space, 3, capacity=4)
    obs, _ = env.reset(seed=0)
    for blow_up in (False, True):
        if blow_up:
            env.unwrapped.data.qvel[:] = 1e12
        action = np.zeros(3, np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        buf.add(Transition(obs, action, float(reward), next_obs, terminated, truncated, info))
        obs = next_obs
    assert truncated and "physics_error" in info
    assert len(buf) == 1 and buf.ptr == 1


def test_iql_files_no_row_of_a_step_that_blew_up_under_its_trial():
    """IQL labelled the slot the unstored step would have taken with the trial's verdict: once
    the buffer had wrapped, the oldest row of an earlier trial (diff32)."""
    from agents.iql import IQLAgent, IQLConfig

    space = gym.spaces.Dict({"tcp_pose": gym.spaces.Box(-1, 1, (6,), np.float32)})
    agent = IQLAgent(space, gym.spaces.Box(-1, 1, (3,), np.float32),
                     IQLConfig(reward_classifier=True, buffer_size=4, hidden=(8,),
                               pretrain_steps=0, classifier_steps=0, batch_size=2))
    verdict = [False]
    agent.classifier_success = lambda obs: verdict[0]
    obs, action = {"tcp_pose": np.zeros(6, np.float32)}, np.zeros(3, np.float32)
    for i in range(4):  # trial 1, a failure, fills the buffer
        agent.observe(Transition(obs, action, 0.0, obs, False, i == 3, {}))
    verdict[0] = True
    agent.observe(Transition(obs, action, 0.0, obs, False, False, {}))
    agent.observe(Transition(obs, action, 0.0, obs, False, True, {"physics_error": "unstable"}))
    assert agent.online.ptr == 1 and agent.online_trials == 2
    assert agent.online_trial_success.tolist() == [True, False, False, False]
