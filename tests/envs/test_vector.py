"""`gym.make_vec` builds the threaded vector env, and it equals N single envs step for step."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the tasks)
from envs.vector import ThreadedVectorEnv

ENV_ID = "InsertBench/USB-v0"


def _actions(num_envs: int, steps: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(-1, 1, (steps, num_envs, 3)).astype(np.float32)


def _single_env_rollouts(kwargs: dict, seed: int, actions: np.ndarray) -> list[list[tuple]]:
    """What Gymnasium's NextStep autoreset does, with one plain env per world."""
    worlds = []
    for i in range(actions.shape[1]):
        env = gym.make(ENV_ID, **kwargs)
        obs, _ = env.reset(seed=seed + i)
        record, done = [(obs, 0.0, False, False)], False
        for action in actions[:, i]:
            if done:
                obs, _ = env.reset()
                record.append((obs, 0.0, False, False))
                done = False
                continue
            obs, reward, terminated, truncated, _ = env.step(action)
            record.append((obs, reward, terminated, truncated))
            done = terminated or truncated
        env.close()
        worlds.append(record)
    return worlds


def _check_same(vec_record, singles):
    for t, (obs, reward, terminated, truncated) in enumerate(vec_record):
        for i, world in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc = world[t]
            for key in s_obs:
                np.testing.assert_array_equal(obs[key][i], s_obs[key], err_msg=f"t={t} {key}")
            assert (reward[i], terminated[i], truncated[i]) == (s_reward, s_term, s_trunc)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_episode_steps=4, goal_noise_mm=1.0, init_offset_mm=(0.0, 3.0)),
        dict(max_episode_steps=3, obs_mode="state+pixels", image_size=24, grayscale=True),
    ],
    ids=["state", "pixels"],
)
def test_make_vec_matches_single_envs_through_autoreset(kwargs):
    num_envs, steps, seed = 3, 9, 11
    actions = _actions(num_envs, steps)
    vec = gym.make_vec(ENV_ID, num_envs=num_envs, **kwargs)
    assert isinstance(vec.unwrapped, ThreadedVectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, infos = vec.reset(seed=seed)
    assert vec.observation_space.contains(obs)
    record = [(obs, np.zeros(num_envs), np.zeros(num_envs, bool), np.zeros(num_envs, bool))]
    for action in actions:
        obs, reward, terminated, truncated, infos = vec.step(action)
        record.append((obs, reward, terminated, truncated))
        assert infos["is_success"].shape == (num_envs,)
    vec.close()
    _check_same(record, _single_env_rollouts(kwargs, seed, actions))
    assert any(r[3].any() for r in record)  # the episodes did end and restart


def test_same_step_autoreset_reports_the_final_observation():
    vec = gym.make_vec(ENV_ID, num_envs=2, max_episode_steps=2, autoreset_mode="SameStep")
    vec.reset(seed=0)
    action = np.full((2, 3), 0.8, np.float32)
    vec.step(action)
    obs, _, _, truncated, infos = vec.step(action)
    assert truncated.all()
    assert infos["_final_obs"].all()
    final = infos["final_obs"][0]["tcp_pose"]
    assert not np.array_equal(final, obs["tcp_pose"][0])  # obs is already the next episode's
    vec.close()


def test_partial_reset_and_bad_arguments():
    vec = gym.make_vec(ENV_ID, num_envs=2)
    first, _ = vec.reset(seed=5)
    vec.step(np.full((2, 3), 0.5, np.float32))
    obs, _ = vec.reset(seed=5, options={"reset_mask": np.array([True, False])})
    np.testing.assert_array_equal(obs["tcp_pose"][0], first["tcp_pose"][0])
    assert not np.array_equal(obs["tcp_pose"][1], first["tcp_pose"][1])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([False, False])})
    with pytest.raises(ValueError, match="seeds for num_envs=2"):
        vec.reset(seed=[1, 2, 3])
    vec.close()
    with pytest.raises(ValueError, match="num_envs must be >= 1"):
        gym.make_vec(ENV_ID, num_envs=0)


def test_mj_step_lets_other_threads_run_python():
    """The vector env's speed rests on `mj_step` releasing the GIL: while one thread integrates,
    another keeps running Python (with the GIL held, it would not iterate at all)."""
    import threading
    import time

    import mujoco

    u = gym.make(ENV_ID).unwrapped
    u.reset(seed=0)
    window: dict[str, float] = {}

    def integrate():
        window["start"] = time.perf_counter()
        mujoco.mj_step(u.model, u.data, nstep=3000)
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=integrate)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inside = sum(window["start"] < t < window["end"] for t in ticks)
    assert inside > 100, f"only {inside} Python iterations during a {window} mj_step"
