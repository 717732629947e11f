"""The dm_env adapter: dm_env's own conformance tests, spec/space agreement, seeding, Physics."""

from __future__ import annotations

import unittest

import gymnasium as gym
import numpy as np
import pytest
from dm_env import StepType, test_utils

import envs
import envs.dmc as dmc

#: The paper-000 tasks, a catalog connector, the family env and the NIST board (one part and
#: the sequence), with short episodes and an action sequence (`_down_then_up`) under which
#: episodes end both ways: the mixin's own, 20 steps of the lowest action (up and sideways),
#: ended none on 50-step episodes.
SHORT = {"max_episode_steps": 16}
CONFORMANCE = {
    "USB": ("InsertBench/USB-v0", SHORT),
    "DSub": ("InsertBench/DSub-v0", SHORT),
    "ModelE": ("InsertBench/ModelE-v0", SHORT | {"goal_noise_mm": 1.0}),
    "RJ45": ("InsertBench/Connector-RJ45-v0", SHORT),
    "Family": ("InsertBench/ConnectorFamily-v0", SHORT | {"split": "test"}),
    "NISTBoard": ("InsertBench/NISTBoard-v0", {"steps_per_part": 5}),
}


def _down_then_up(spec) -> list[np.ndarray]:
    """Straight down for 20 steps (a plug started 50 mm up inserts in ~11: termination), then
    up for 20 (the next episode runs out of steps: truncation)."""
    down, up = np.zeros(spec.shape, spec.dtype), np.zeros(spec.shape, spec.dtype)
    down[2], up[2] = 1.0, -1.0
    return [down] * 20 + [up] * 20


def _conformance_case(task_id: str, kwargs: dict) -> type:
    class Case(test_utils.EnvironmentTestMixin, unittest.TestCase):
        def make_object_under_test(self):
            return dmc.load(task_id, seed=0, **kwargs)

        def make_action_sequence(self):
            return _down_then_up(self.environment.action_spec())

    return Case


def test_the_conformance_actions_end_episodes_both_ways():
    for task_id, kwargs in (CONFORMANCE["USB"], CONFORMANCE["Family"]):
        env = dmc.load(task_id, seed=0, **kwargs)
        ends = []
        timestep = env.reset()
        for action in _down_then_up(env.action_spec()):
            timestep = env.reset() if timestep.last() else env.step(action)
            if timestep.last():
                ends.append(timestep.discount)
        env.close()
        assert 0.0 in ends and 1.0 in ends, (task_id, ends)  # terminated and truncated


for _name, (_id, _kwargs) in CONFORMANCE.items():
    globals()[f"TestDmEnvConformance{_name}"] = _conformance_case(_id, _kwargs)


def test_specs_match_gymnasium_spaces():
    env = dmc.load("InsertBench/USB-v0", obs_mode="state+pixels", image_size=32)
    gym_env = env.gym_env
    obs_spec = env.observation_spec()
    assert set(obs_spec) == set(gym_env.observation_space.spaces)
    for key, space in gym_env.observation_space.spaces.items():
        assert obs_spec[key].shape == space.shape and obs_spec[key].dtype == space.dtype
    assert obs_spec["wrist"].minimum.max() == 0 and obs_spec["wrist"].maximum.min() == 255
    action = env.action_spec()
    np.testing.assert_array_equal(action.minimum, gym_env.action_space.low)
    np.testing.assert_array_equal(action.maximum, gym_env.action_space.high)
    env.close()


def test_seeding_replays_the_gymnasium_episodes():
    """load(id, seed=s) = gym.make(id) reset with seed s, then without a seed."""
    kwargs = {"goal_noise_mm": 1.0, "init_offset_mm": (0.0, 5.0)}
    dm = dmc.load("InsertBench/USB-v0", seed=3, **kwargs)
    ref = gym.make("InsertBench/USB-v0", **kwargs)
    for episode in range(2):
        ts = dm.reset()
        obs, _ = ref.reset(seed=3 if episode == 0 else None)
        np.testing.assert_array_equal(ts.observation["tcp_pose"], obs["tcp_pose"])
        controller = envs.p_controller(ref)
        for _ in range(5):
            action = controller(obs)
            ts = dm.step(action)
            obs, reward, *_ = ref.step(action)
            np.testing.assert_array_equal(ts.observation["wrench"], obs["wrench"])
            assert ts.reward == pytest.approx(reward)
    # The episodes differ: the seed drives the start offset and goal noise.
    assert dm.gym_env.unwrapped.goal_noise_m[0] != 0.0
    dm.close()
    ref.close()


def test_termination_and_truncation_discounts():
    env = dmc.load("InsertBench/USB-v0", seed=0)
    controller = envs.p_controller(env.gym_env)
    ts = env.reset()
    while not ts.last():
        ts = env.step(controller(ts.observation))
    assert ts.discount == 0.0 and ts.reward == 1.0  # inserted: termination
    assert env.step(np.zeros(3, np.float32)).step_type == StepType.FIRST

    still = dmc.load("InsertBench/USB-v0", seed=0)
    ts = still.reset()
    steps = 0
    while not ts.last():
        ts = still.step(np.zeros(3, np.float32))
        steps += 1
    assert steps == 50 and ts.discount == 1.0  # the time limit: truncation
    env.close()
    still.close()


def test_physics_is_the_live_state_with_named_indexing():
    env = dmc.load("InsertBench/ConnectorFamily-v0", seed=1, split="test")
    env.reset()
    physics = env.physics
    np.testing.assert_array_equal(
        physics.named.data.site_xpos["tcp"], env.gym_env.unwrapped.active.tcp_pos
    )
    env.step(np.array([0.0, 0.0, 1.0], np.float32))
    np.testing.assert_array_equal(
        physics.named.data.site_xpos["tcp"], env.gym_env.unwrapped.active.tcp_pos
    )
    frame = physics.render(height=32, width=32, camera_id="side")
    assert frame.shape == (32, 32, 3) and frame.std() > 0
    env.close()


def test_a_wrapper_whose_physics_was_read_pickles():
    """Its cached Physics, of a class local to a cache, made pickling fail once `physics` had
    been read ("Can't pickle local object", envs21); the copy builds its own view."""
    import pickle

    env = dmc.load("InsertBench/USB-v1", seed=0)
    env.reset()
    env.step(np.array([0.0, 0.0, 1.0], np.float32))
    tcp = env.physics.named.data.site_xpos["tcp"].copy()
    copy = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(copy.physics.named.data.site_xpos["tcp"], tcp)
    action = np.array([0.2, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(copy.step(action).observation["tcp_pose"],
                                  env.step(action).observation["tcp_pose"])
    assert copy.physics.data.ptr != env.physics.data.ptr


def test_physics_refuses_what_would_mislead():
    """Before the first reset physics read MuJoCo's zeros; physics.reset() moved the arm
    1.35 m from the socket mid-episode and the episode stepped on; over a PyBullet env it was
    AttributeError 'data' (engines18)."""
    from envs.bullet import BulletInsertionEnv

    env = dmc.load("InsertBench/USB-v0", seed=0)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before reading physics"):
        env.physics  # noqa: B018
    env.reset()
    before = env.physics.named.data.site_xpos["tcp"].copy()
    for reset in (lambda p: p.reset(), lambda p: p.reset_context().__enter__()):
        with pytest.raises(RuntimeError, match=r"shares the env's MuJoCo state: reset the env"):
            reset(env.physics)
    np.testing.assert_array_equal(env.physics.named.data.site_xpos["tcp"], before)
    while not env.step(np.array([0.0, 0.0, 0.5], np.float32)).last():
        pass
    env.physics.named.data.site_xpos["tcp"]  # noqa: B018 - after the episode (the README's)
    env.close()
    bullet = dmc.InsertBenchDmEnv(BulletInsertionEnv("InsertBench/USB-v0"), seed=0)
    bullet.reset()
    with pytest.raises(TypeError, match="BulletInsertionEnv has no MuJoCo state"):
        bullet.physics  # noqa: B018
    bullet.close()


def test_a_bad_seed_is_refused_when_loading():
    """`load(id, seed=-1)` (or 1.5, "0", NaN) used to be accepted and to fail at the first
    reset(); `seed=np.int64(3)`, as numpy hands seeds out, failed there too."""
    for bad in (-1, 1.5, "0", float("nan"), True):
        with pytest.raises(ValueError, match=f"seed must be None or an integer >= 0, got "
                                             f"{bad!r}"):
            dmc.load("InsertBench/USB-v0", seed=bad)
    first = dmc.load("InsertBench/USB-v0", seed=np.int64(3), goal_noise_mm=1.0).reset()
    again = dmc.load("InsertBench/USB-v0", seed=3, goal_noise_mm=1.0).reset()
    np.testing.assert_array_equal(first.observation["tcp_pose"], again.observation["tcp_pose"])


def test_a_bad_time_limit_is_refused_when_loading():
    """`max_episode_steps=True` went to gym.make's TimeLimit and ended every episode after one
    step; 10**7 was taken where a vector of the same task refused it."""
    for bad in (True, 0, 10**7, 2.5):
        with pytest.raises(ValueError, match=f"max_episode_steps must be an integer .*got "
                                             f"{bad!r}"):
            dmc.load("InsertBench/USB-v0", max_episode_steps=bad)
    env = dmc.load("InsertBench/USB-v0", max_episode_steps=np.int64(2))  # TimeLimit refused it
    env.reset()
    assert not env.step(np.zeros(3)).last() and env.step(np.zeros(3)).last()


@pytest.mark.parametrize("bad", [1, ["rgb_array"], "human"])
def test_a_bad_render_mode_is_refused_when_loading(bad):
    """gym.make read it first: `render_mode=1` was AttributeError "'int' object has no attribute
    'endswith'" from inside Gymnasium (envs25); "human" asked for pygame."""
    with pytest.raises(ValueError, match=r"render_mode must be one of \(None, 'rgb_array'\)"):
        dmc.load("InsertBench/USB-v0", render_mode=bad)


def test_looking_at_physics_mid_episode_does_not_change_the_episode():
    """dm_control's Physics() runs mj_forward with actuation off: built on the first read of
    `env.physics` mid-episode, it changed the next steps by up to 0.2 um and 0.008 N."""
    def run(look_at: int | None) -> np.ndarray:
        env = dmc.load("InsertBench/USB-v1", seed=5, goal_noise_mm=1.0)
        controller = envs.p_controller(env.gym_env)
        timestep, rows = env.reset(), []
        for i in range(12):
            if i == look_at:
                env.physics.named.data.qpos[:]
            timestep = env.step(controller(timestep.observation))
            rows.append(np.concatenate([timestep.observation["tcp_pose"],
                                        timestep.observation["wrench"]]))
        env.close()
        return np.array(rows)

    np.testing.assert_array_equal(run(3), run(None))
