"""Paper 000's hand controller, the impedance reference and the P-controller's success."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.insertion_env import P_CONTROLLER_KP
from tests.envs.helpers import FOUNDATION_IDS, run_p_controller


def test_p_controller_is_p_control_towards_the_believed_goal():
    env = gym.make("InsertBench/USB-v0", goal_noise_mm=1.0)
    controller = envs.p_controller(env)
    obs, _ = env.reset(seed=7)
    u = env.unwrapped
    # Place the observation 2 mm from the believed goal on each axis (start frame).
    goal_start = u.start_mat.T @ (u.believed_goal_pos - u.start_pos)
    obs = dict(obs, tcp_pose=np.concatenate([goal_start + 0.002, np.zeros(3)]).astype(np.float32))
    action = controller(obs)
    expected = -P_CONTROLLER_KP * 0.002 / u.action_scale_m  # TCP and start frames coincide here
    np.testing.assert_allclose(action, expected, rtol=1e-5)
    assert P_CONTROLLER_KP.tolist() == [1.0, 1.0, 0.3]


def test_p_controller_aims_goal_offset_m_off_the_believed_goal():
    """An operator recording failures beside the socket: the observation 2 mm past the shifted
    goal gets the same action as one 2 mm past the believed goal without the offset."""
    env = gym.make("InsertBench/USB-v0", goal_noise_mm=1.0)
    obs, _ = env.reset(seed=7)
    u = env.unwrapped
    offset = np.array([0.015, -0.02, 0.0])  # world frame [m]
    goal_start = u.start_mat.T @ (u.believed_goal_pos - u.start_pos)
    shifted = dict(obs, tcp_pose=np.concatenate(
        [goal_start + u.start_mat.T @ offset + 0.002, np.zeros(3)]).astype(np.float32))
    plain = dict(obs, tcp_pose=np.concatenate([goal_start + 0.002, np.zeros(3)]).astype(np.float32))
    np.testing.assert_allclose(envs.p_controller(env, goal_offset_m=offset)(shifted),
                               envs.p_controller(env)(plain), atol=1e-6)
    for bad in ([0.01, 0.0], [np.nan, 0.0, 0.0]):
        with pytest.raises(ValueError, match="goal_offset_m"):
            envs.p_controller(env, goal_offset_m=bad)


def test_p_controller_follows_resets():
    env = gym.make("InsertBench/USB-v0", goal_noise_mm=1.0)
    controller = envs.p_controller(env)
    obs, _ = env.reset(seed=1)
    a1 = controller(obs)
    obs, _ = env.reset(seed=2)
    assert not np.allclose(a1, controller(obs))


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
def test_p_controller_inserts_with_exact_goal(env_id):
    env = gym.make(env_id)
    for seed in range(3):
        info = run_p_controller(env, seed)
        assert info["is_success"], (env_id, seed, info)
        assert info["max_force_n"] < 60.0


def test_reference_is_limited_around_the_tcp():
    env = gym.make("InsertBench/USB-v0", action_mode="pose")
    env.reset(seed=0)
    u = env.unwrapped
    gains = u.scene_config.gains
    for _ in range(3):  # push into the board with the reference racing ahead
        env.step(np.array([0, 0, 1, 0, 0, 0], np.float32))
    lead = np.abs(u.reference.pos - u.tcp_pos)
    assert np.all(lead <= gains.translation_limit_m + 1e-9)


def test_measured_reference_mode_is_serl_rule():
    env = gym.make("InsertBench/USB-v0", reference_mode="measured")
    env.reset(seed=0)
    u = env.unwrapped
    before = u.tcp_pos
    env.unwrapped.reference.move(u.data, before, u.start_mat, np.array([0.001, 0, 0]), np.zeros(3))
    np.testing.assert_allclose(u.reference.pos, before + u.start_mat @ [0.001, 0, 0])
    with pytest.raises(ValueError, match="reference_mode must be one of"):
        gym.make("InsertBench/USB-v0", reference_mode="absolute")


def test_workspace_box_keeps_the_tcp_near_the_socket_axis():
    """SERL's safety box (issue 12): without it, exploration on USB-v1 wandered 200 mm away."""

    def max_lateral_mm(**kwargs):
        env = gym.make("InsertBench/USB-v1", noiseless=True, init_offset_mm=(0.0, 10.0),
                       obs_frame="task", **kwargs)
        env.reset(seed=0)
        base, worst = env.unwrapped, 0.0
        for _ in range(20):
            env.step(np.array([1.0, -1.0, -1.0], np.float32))  # sideways and up, full speed
            worst = max(worst, float(np.abs(base.tcp_pos[:2] - base._goal_face_pos[:2]).max()))
        return worst / 1e-3

    assert max_lateral_mm() > 50.0
    assert max_lateral_mm(workspace_mm=15.0) < 15.5
    with pytest.raises(ValueError, match="workspace_mm must be in"):
        gym.make("InsertBench/USB-v1", init_offset_mm=(0.0, 10.0), workspace_mm=8.0)


def test_a_straight_descent_swings_sideways_as_documented():
    """The README and `ImpedanceGains` give the swing of a straight-down command from rest
    (`benchmark.bench_descent_swing`); a change to the gains, the arm or the reference moves
    it, and it decides which near-edge starts go in."""
    from benchmark.bench_descent_swing import measure_swing

    first, later = measure_swing("InsertBench/USB-v3", 0.005, 13.0)
    assert 0.38 <= first <= 0.46 and 0.1 <= later <= 0.34, (first, later)
    first_fast, _ = measure_swing("InsertBench/USB-v3", 0.01, 13.0)
    assert first_fast == pytest.approx(2 * first, rel=0.1)  # the reference's step, doubled


def test_an_action_scale_past_v0s_reference_limit_is_warned():
    """USB-v0 moved 16.3 mm in three steps at action_scale_m 0.01 and 0.02 alike (6 mm limit)."""
    with pytest.warns(UserWarning, match=r"exceeds InsertBench/USB-v0's reference limit of "
                                         r"0.006 m"):
        gym.make("InsertBench/USB-v0", action_scale_m=0.01).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gym.make("InsertBench/USB-v1", action_scale_m=0.02).close()
        gym.make("InsertBench/USB-v0", action_scale_m=0.006).close()


def test_a_rotation_scale_past_the_reference_limit_is_warned():
    """envs24: at action_scale_rad 0.05, 0.1 and 0.2 a full yaw action turned USB-v1 0.167 rad
    in four steps alike (0.05 rad limit), without a word."""
    with pytest.warns(UserWarning, match=r"action_scale_rad=0.2 exceeds InsertBench/USB-v1's "
                                         r"reference limit of 0.05 rad"):
        gym.make("InsertBench/USB-v1", action_mode="pose", action_scale_rad=0.2).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gym.make("InsertBench/USB-v1", action_mode="pose", action_scale_rad=0.05).close()
        gym.make("InsertBench/USB-v1", action_scale_rad=0.2).close()  # xyz: never turns


def test_pybullet_warns_of_scales_past_the_reference_limit_as_mujoco_does():
    """engines23: the same kwargs warned in MuJoCo and built silently in PyBullet."""
    from envs.bullet import BulletInsertionEnv

    with pytest.warns(UserWarning) as caught:
        BulletInsertionEnv("InsertBench/USB-v0", action_scale_m=0.01, action_mode="pose",
                           action_scale_rad=0.1).close()
    messages = [str(w.message) for w in caught]
    assert any("action_scale_m=0.01 exceeds InsertBench/USB-v0's reference limit of 0.006 m"
               in m for m in messages), messages
    assert any("action_scale_rad=0.1 exceeds" in m for m in messages), messages
    assert all(w.filename == __file__ for w in caught if "exceeds" in str(w.message))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        BulletInsertionEnv("InsertBench/USB-v1", action_scale_m=0.02).close()
