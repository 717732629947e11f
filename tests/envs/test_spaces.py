"""Every task ID and mode passes Gymnasium's env checker and is deterministic under seeding."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from tests.envs.helpers import FOUNDATION_IDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODES = [
    dict(obs_mode="state", action_mode="xyz", reward="sparse"),
    dict(obs_mode="state", action_mode="pose", reward="dense"),
    dict(obs_mode="pixels", action_mode="xyz", reward="goal_image", image_size=32, grayscale=True),
    dict(obs_mode="state+pixels", action_mode="pose", reward="sparse", image_size=48),
]


def test_every_task_is_registered():
    for env_id in FOUNDATION_IDS:
        assert env_id in gym.registry
        assert env_id in envs.TASKS


def test_every_registered_spec_is_plain_data(tmp_path, monkeypatch):
    """Entry points were functools.partial objects and a task's kwargs its TaskSpec:
    `EnvSpec.to_json` refused every ID, and so did Minari's DataCollector."""
    ids = [i for i in gym.registry if i.startswith("InsertBench/")]
    for env_id in ids:
        spec = gym.spec(env_id)
        back = gym.envs.registration.EnvSpec.from_json(spec.to_json())
        assert back == spec, env_id
    for env_id in ("InsertBench/USB-v1", "InsertBench/ConnectorFamily-v1",
                   "InsertBench/NISTBoard-DSub-v0"):  # built from the JSON alone
        spec = gym.envs.registration.EnvSpec.from_json(gym.spec(env_id).to_json())
        env = gym.make(spec)
        assert env.spec.id == env_id and isinstance(env.reset(seed=0)[1]["task_id"], str)
        env.close()
        vec = gym.make_vec(spec, num_envs=2, processes=1)
        assert vec.reset(seed=0)[0]["tcp_pose"].shape[0] == 2
        vec.close()
    # A new process has nothing registered: the entry point's module registers the IDs.
    code = ("import json, gymnasium as gym; from gymnasium.envs.registration import EnvSpec; "
            "spec = EnvSpec.from_json(json.load(open('spec.json'))); "
            "print(gym.make(spec).reset(seed=0)[1]['task_id'])")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.json").write_text(json.dumps(gym.spec("InsertBench/DSub-v1").to_json()))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True).stdout
    assert out.strip() == "InsertBench/DSub-v1"


def test_minaris_data_collector_takes_a_registered_id():
    """Its constructor serialises the spec (stepping it needs minari[create]'s jax, which
    the project does not install: `insertbench dataset collect` writes Minari datasets)."""
    from minari import DataCollector

    env = DataCollector(gym.make("InsertBench/USB-v1", max_episode_steps=3))
    assert env.spec.id == "InsertBench/USB-v1"
    env.close()


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_check_env(env_id, mode):
    env = gym.make(env_id, render_mode="rgb_array", **mode)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    env.close()


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
def test_spaces_per_mode(env_id):
    env = gym.make(
        env_id,
        obs_mode="state+pixels",
        action_mode="pose",
        image_size=(24, 40),
        reward="goal_image",
        grayscale=True,
    )
    space = env.observation_space
    assert env.action_space.shape == (6,)
    assert set(space.spaces) == {
        "tcp_pose",
        "tcp_vel",
        "wrench",
        "wrist",
        "side",
        "goal_wrist",
        "goal_side",
    }
    assert space["wrist"].shape == (24, 40, 1) and space["wrist"].dtype == np.uint8
    assert gym.make(env_id).action_space.shape == (3,)


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
def test_same_seed_same_actions_identical_observations(env_id):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (25, 6)).astype(np.float32)
    kwargs = dict(
        action_mode="pose",
        goal_noise_mm=1.0,
        init_offset_mm=(0.0, 3.0),
        grasp_noise_mm=0.5,
        grasp_noise_deg=2.0,
        friction_scale=(0.8, 1.2),
    )

    def rollout():
        env = gym.make(env_id, **kwargs)
        obs, _ = env.reset(seed=42)
        trace = [obs]
        for a in actions:
            obs, reward, *_ = env.step(a)
            trace.append(obs | {"reward": np.array(reward)})
        return trace

    first, second = rollout(), rollout()
    for a, b in zip(first, second, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
def test_seeds_randomise_the_start(env_id):
    env = gym.make(env_id, init_offset_mm=(2.0, 5.0), goal_noise_mm=1.0)
    starts, goals = set(), set()
    for seed in range(5):
        env.reset(seed=seed)
        starts.add(tuple(np.round(env.unwrapped.start_pos, 6)))
        goals.add(tuple(np.round(env.unwrapped.believed_goal_pos, 6)))
        offset = np.linalg.norm(env.unwrapped.start_pos[:2]) * 1000
        assert 2.0 - 1e-3 <= offset <= 5.0 + 1e-3
    assert len(starts) == 5 and len(goals) == 5


def test_unseeded_resets_draw_episodes_the_policy_does_not_change():
    """envs24: steps drew their F/T noise from the generator resets draw goals from, so after
    one seed the next unseeded episode depended on how long the last one ran (two policies
    compared by "seed once, then reset" met different goals). A seeded episode is unchanged."""
    def goals(steps_per_episode: int) -> list[tuple[float, ...]]:
        env = gym.make("InsertBench/USB-v1", goal_noise_mm=1.0, init_offset_mm=(0.0, 5.0))
        env.reset(seed=0)
        drawn = []
        for _ in range(3):
            drawn.append(tuple(env.unwrapped.believed_goal_pos))
            for _ in range(steps_per_episode):
                env.step(np.zeros(3, np.float32))
            env.reset()
        return drawn

    short, long = goals(1), goals(4)
    assert short == long and len(set(short)) == 3
    env = gym.make("InsertBench/USB-v1", goal_noise_mm=1.0)
    env.reset(seed=7)
    np.testing.assert_allclose(env.unwrapped.goal_noise_m[:2] * 1e3, [-0.989, 0.642], atol=5e-4)


def test_the_nist_boards_next_unseeded_episode_does_not_depend_on_the_parts_inserted():
    """diff30: the board draws a part's seed when the policy reaches it, so after one seed the
    next unseeded episode depended on how many parts the last one inserted."""
    def next_member_seed(steps: int) -> int:
        env = gym.make("InsertBench/NISTBoard-v0", init_offset_mm=(0.0, 5.0))
        controller = envs.p_controller(env)
        obs, info = env.reset(seed=0)
        for _ in range(steps):
            obs, *_, info = env.step(controller(obs))
        assert info["parts_inserted"] >= (1 if steps else 0)
        env.reset()
        seed = env.unwrapped.active.np_random_seed
        env.close()
        return seed

    assert next_member_seed(0) == next_member_seed(40)


def test_observations_change_while_moving():
    env = gym.make("InsertBench/USB-v0", obs_mode="state+pixels", image_size=32)
    obs0, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.array([0.0, 0.0, 1.0], np.float32))
    assert obs["tcp_pose"][2] > 0.01  # TCP z points down: moving down is positive
    assert not np.array_equal(obs0["side"], obs["side"])
    assert obs["side"].std() > 5  # a real picture, not a constant frame


def test_render_rgb_array_headless():
    env = gym.make("InsertBench/ModelE-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and frame.std() > 5


def test_task_obs_frame_shows_the_start_offset_that_the_start_frame_hides():
    """Regression (issue 12): with random start offsets, the start frame puts every episode at
    tcp_pose 0, so a state policy cannot know where the socket is (BC from 20 P-controller demos
    scored 3/20 on USB-v1, 20/20 in the task frame). The task frame is fixed: the offset shows,
    and the P-controller acts the same on either frame."""
    kwargs = dict(init_offset_mm=(4.0, 10.0), goal_noise_mm=1.0, noiseless=True)
    start = gym.make("InsertBench/USB-v1", **kwargs)
    task = gym.make("InsertBench/USB-v1", obs_frame="task", **kwargs)
    controllers = envs.p_controller(start), envs.p_controller(task)
    for seed in range(3):
        obs_start, _ = start.reset(seed=seed)
        obs_task, _ = task.reset(seed=seed)
        np.testing.assert_allclose(obs_start["tcp_pose"][:3], 0.0, atol=1e-6)
        base = task.unwrapped
        offset_m = base.start_mat.T @ (base.start_pos - base.obs_origin)
        assert 4.0 - 1e-3 <= np.linalg.norm(offset_m) * 1e3 <= 10.0 + 1e-3
        np.testing.assert_allclose(obs_task["tcp_pose"][:3], offset_m, atol=1e-6)
        for _ in range(3):
            action = controllers[0](obs_start)
            np.testing.assert_allclose(controllers[1](obs_task), action, atol=1e-5)
            obs_start, *_ = start.step(action)
            obs_task, *_ = task.step(action)
    with pytest.raises(ValueError, match="obs_frame must be one of"):
        gym.make("InsertBench/USB-v1", obs_frame="world")
