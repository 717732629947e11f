"""The PyBullet engine: same spaces and seeding as MuJoCo, the same contact fidelity where it is
supported, a clear refusal where it is not, and the sim2sim command."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from benchmark.sim2sim import push_down
from envs.bullet import UNSUPPORTED, BulletInsertionEnv
from envs.connectors import guide_window_mm
from envs.scene import tcp_offset_m
from envs.version_key import pybullet_key_prefix

RESOLUTION_MM = 0.1
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def usb():
    env = BulletInsertionEnv("InsertBench/USB-v0", start_height_mm=22.0)
    yield env
    env.close()


@pytest.fixture(scope="module")
def dsub():
    env = BulletInsertionEnv("InsertBench/DSub-v0", start_height_mm=16.0)
    yield env
    env.close()


def test_spaces_and_seeded_start_state_match_mujoco():
    kwargs = {"action_mode": "pose", "goal_noise_mm": 1.0, "init_offset_mm": (2.0, 6.0)}
    bullet = BulletInsertionEnv("InsertBench/USB-v0", **kwargs)
    mujoco_env = gym.make("InsertBench/USB-v0", **kwargs)
    assert bullet.action_space == mujoco_env.action_space
    assert bullet.observation_space == mujoco_env.observation_space
    # Seeded once, then not (Gymnasium's convention): the generators parted after the first
    # reset, MuJoCo's drawing an F/T drift rate that PyBullet did not (engines18).
    for seed in (0, 7, None, None):
        obs_b, _ = bullet.reset(seed=seed)
        obs_m, _ = mujoco_env.reset(seed=seed)
        u = mujoco_env.unwrapped
        # One seed, one start state: offset (to IK precision) and believed goal.
        np.testing.assert_allclose(bullet.start_pos, u.start_pos, atol=1e-6)
        np.testing.assert_allclose(bullet.believed_goal_pos, u.believed_goal_pos, atol=1e-12)
        np.testing.assert_allclose(obs_b["tcp_pose"], np.zeros(6), atol=1e-6)
    bullet.close()


def test_task_frame_observation_matches_mujoco_and_the_p_controller_reads_it():
    """obs_frame="task" (SERL's fixed frame): the start offset shows in `tcp_pose` as it does
    in MuJoCo, so a policy trained on it reads the same numbers in both engines."""
    kwargs = {"obs_frame": "task", "init_offset_mm": (2.0, 6.0), "start_height_mm": 22.0}
    bullet = BulletInsertionEnv("InsertBench/USB-v0", **kwargs)
    mujoco_env = gym.make("InsertBench/USB-v0", **kwargs)
    obs_b, _ = bullet.reset(seed=5)
    obs_m, _ = mujoco_env.reset(seed=5)
    assert 2.0 <= np.linalg.norm(obs_b["tcp_pose"][:2]) * 1e3 <= 6.0
    np.testing.assert_allclose(obs_b["tcp_pose"], obs_m["tcp_pose"], atol=1e-5)
    controller = envs.p_controller(bullet)
    for _ in range(25):
        obs_b, _, terminated, _, info = bullet.step(controller(obs_b))
        if terminated:
            break
    assert info["is_success"]
    bullet.close()
    with pytest.raises(ValueError, match="obs_frame"):
        BulletInsertionEnv("InsertBench/USB-v0", obs_frame="world")


def test_workspace_box_holds_in_pybullet_as_in_mujoco():
    """SERL's safety box (`workspace_mm`) clips the reference in both engines alike, so a
    policy trained inside it meets the same walls in PyBullet."""

    def worst_lateral_mm(env, steps=12):
        env.reset(seed=0)
        worst = 0.0
        for _ in range(steps):  # sideways and up at full speed; the pose is from the socket axis
            obs, *_ = env.step(np.array([1.0, -1.0, -1.0], np.float32))
            worst = max(worst, float(np.abs(obs["tcp_pose"][:2]).max()))
        return worst * 1e3

    task_frame = {"obs_frame": "task"}
    boxed = BulletInsertionEnv("InsertBench/USB-v1", workspace_mm=8.0, **task_frame)
    free = BulletInsertionEnv("InsertBench/USB-v1", **task_frame)
    mujoco_boxed = gym.make("InsertBench/USB-v1", noiseless=True, workspace_mm=8.0, **task_frame)
    assert worst_lateral_mm(boxed) < 8.5
    assert worst_lateral_mm(mujoco_boxed) < 8.5
    assert worst_lateral_mm(free) > 20.0
    # A start outside the box was accepted, and the arm pulled into it at the first step.
    with pytest.raises(ValueError, match="must lie in the workspace box"):
        boxed.reset(seed=0, options={"tcp_offset_mm": (20.0, 0.0)})
    boxed.close()
    free.close()
    with pytest.raises(ValueError, match="workspace_mm must be in"):
        BulletInsertionEnv("InsertBench/USB-v1", init_offset_mm=(0.0, 10.0), workspace_mm=8.0)


@pytest.mark.parametrize("offset_mm", [(25.0, 0.0), (0.0, -20.0)])
def test_a_plug_pushed_down_beside_the_housing_lands_on_the_board_as_in_mujoco(offset_mm):
    """PyBullet had the socket but not the board it stands on: the plug fell ~150 mm, with no
    force, where MuJoCo lands it on the board (paper 001's offsets reach 20 mm)."""

    def landed(env):
        env.reset(seed=0, options={"tcp_offset_mm": offset_mm})
        for _ in range(30):  # straight down at full speed (+z in the TCP frame)
            _, _, _, _, info = env.step(np.array([0.0, 0.0, 1.0], np.float32))
        base = env.unwrapped
        z = base.tcp_pos[2] if hasattr(base, "tcp_pos") else base._tcp_state()[0][2]
        return z * 1e3, info["max_force_n"]

    bullet = BulletInsertionEnv("InsertBench/USB-v1")
    mujoco_env = gym.make("InsertBench/USB-v1", noiseless=True)
    try:
        z_bullet, force_bullet = landed(bullet)
        z_mujoco, _ = landed(mujoco_env)
    finally:
        bullet.close()
        mujoco_env.close()
    assert z_mujoco == pytest.approx(-16.0, abs=0.3)  # the board's top: cavity depth + wall
    assert z_bullet == pytest.approx(z_mujoco, abs=0.3)
    assert force_bullet > 10.0  # pressed against the board by the impedance law


def _plug_distances_mm(task_id: str, poses_mm: list) -> tuple[np.ndarray, np.ndarray]:
    """The signed distance [mm] from the plug to the housing and board with the TCP at each of
    `poses_mm` (socket-mouth frame), in MuJoCo (`mj_geomDistance`) and in PyBullet."""
    import mujoco
    import pybullet

    mj = gym.make(task_id).unwrapped
    mj.reset(seed=0)
    m, d = mj.model, mj.data
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, i) or "" for i in range(m.ngeom)]
    solid = [i for i in range(m.ngeom) if m.geom_contype[i] or m.geom_conaffinity[i]]
    plug = [i for i in solid if names[i].startswith("plug")]
    fixed = [i for i in solid if names[i].startswith("socket") or names[i] == "board"]
    tcp, plug_xpos = mj.tcp_pos, d.geom_xpos[plug].copy()
    pb = BulletInsertionEnv(task_id)
    pb.reset(seed=0)
    mujoco_mm, bullet_mm = [], []
    for pose in poses_mm:
        pos = np.asarray(pose) * 1e-3
        d.geom_xpos[plug] = plug_xpos + (pos - tcp)
        mujoco_mm.append(min(mujoco.mj_geomDistance(m, d, a, b, 0.01, None)
                             for a in plug for b in fixed) * 1e3)
        pybullet.resetBasePositionAndOrientation(pb._plug, pos.tolist(), [0, 0, 0, 1],
                                                 physicsClientId=pb._cid)
        pybullet.performCollisionDetection(physicsClientId=pb._cid)
        bullet_mm.append(min(point[8] for body in (*pb._walls, pb._board, *pb._tabs)
                             for point in pybullet.getClosestPoints(
                                 pb._plug, body, 0.01, physicsClientId=pb._cid)) * 1e3)
    pb.close()
    mj.close()
    return np.array(mujoco_mm), np.array(bullet_mm)


@pytest.mark.parametrize("task_id", ["InsertBench/Connector-XLR3-v0",
                                     "InsertBench/Connector-EUACPlug-v0"])
def test_the_housing_stops_the_plug_where_mujocos_does(task_id):
    """With the housing's ~60 wall pieces in one compound shape, Bullet lost child pairs: a
    XLR 3-pin plug 2.5 mm off the axis read 1.1 mm free where MuJoCo has it 2 mm inside a
    wall, and a push sank it 2.5 mm into the housing, where MuJoCo holds it above the mouth."""
    poses = [(dx, dy, z) for z in (0.3, -0.5) for dx, dy in
             [(off, 0.0) for off in np.arange(-2.5, 2.51, 0.5)] +
             [(0.0, off) for off in np.arange(-2.5, 2.51, 0.5)]]
    mujoco_mm, bullet_mm = _plug_distances_mm(task_id, poses)
    assert (mujoco_mm < 0).any()  # the poses reach the walls
    near = (mujoco_mm > -0.5) | (bullet_mm > -0.5)  # deep overlaps are measured differently
    np.testing.assert_allclose(bullet_mm[near], mujoco_mm[near], atol=0.02)


def test_a_plug_sunk_beside_the_opening_is_no_jam():
    """The probe took a push that ended 2.5 mm deep in XLR 3-pin's housing beside the opening
    for a jam (not over the opening: insertion depth 0; more than 1 mm off the goal), so the
    lost wall contacts passed it."""
    from types import SimpleNamespace

    from benchmark.sim2sim import jammed
    from envs.tasks import task_spec

    task = task_spec("InsertBench/Connector-XLR3-v0")  # 6 mm mating length
    goal = np.array([0.0, 0.0, -0.006])
    info = {"is_success": False, "insertion_depth_mm": 0.0, "distance_to_goal_mm": 4.3}
    for tcp_z_mm, held in ((1.5, True), (0.3, True), (-2.5, False)):
        tcp = np.array([0.0, -0.0025, tcp_z_mm * 1e-3])
        env = SimpleNamespace(unwrapped=SimpleNamespace(tcp_pos=tcp, goal_pos=goal, task=task))
        assert jammed(env, info) is held, tcp_z_mm


def test_same_seed_same_trajectory(usb):
    def run():
        obs, _ = usb.reset(seed=3)
        controller = envs.p_controller(usb)
        return np.array([usb.step(controller(obs))[0]["tcp_pose"] for _ in range(8)])

    np.testing.assert_array_equal(run(), run())


def test_a_refused_reset_does_not_reseed():
    """A reset refused for its options reseeded the generator first: the next unseeded reset
    started another episode than the seeded stream's."""
    env = BulletInsertionEnv("InsertBench/USB-v0", init_offset_mm=(2.0, 6.0))
    env.reset(seed=3)
    env.reset()
    expected = env.start_pos.copy()
    env.reset(seed=3)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=4, options={"tcp_offset": (0.0, 0.0)})
    env.reset()
    np.testing.assert_array_equal(env.start_pos, expected)
    env.close()


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
@pytest.mark.parametrize("fixture", ["usb", "dsub"])
def test_jam_beyond_window_and_slide_within(fixture, axis, sign, request):
    env = request.getfixturevalue(fixture)
    window = guide_window_mm(env.connector)
    inside, outside = [0.0, 0.0], [0.0, 0.0]
    inside[axis] = sign * (window[0] - RESOLUTION_MM)
    outside[axis] = sign * (window[1] + RESOLUTION_MM)
    assert push_down(env, inside)[1]["is_success"]
    obs_info = push_down(env, outside, steps=30)
    stuck = obs_info[1]
    assert not stuck["is_success"] and stuck["insertion_depth_mm"] < 0.05
    # Stuck at the mouth, pressing with the impedance controller's saturated force.
    assert stuck["max_force_n"] > 25.0


def test_wrench_torque_is_read_about_the_wrist_as_in_mujoco():
    """A plug inserted and pushed sideways against the socket wall (100 N, the saturated
    impedance force) reads the same wrench in both engines: torque about the wrist, 127 mm up
    the tool on USB, -12.7 N m. PyBullet read it about the TCP (0 N m) before model revision 2;
    its episodes' version keys name the revision."""

    def pushed(env):
        obs, _ = env.reset(seed=0)
        for _ in range(25):
            obs, *_ = env.step(np.array([0.0, 0.0, 0.5], np.float32))
        for _ in range(6):
            obs, *_ = env.step(np.array([1.0, 0.0, 0.0], np.float32))
        return obs["wrench"].astype(np.float64)

    engines = [gym.make("InsertBench/USB-v1", noiseless=True),
               BulletInsertionEnv("InsertBench/USB-v1")]
    try:
        mujoco_w, bullet_w = (pushed(env) for env in engines)
    finally:
        for env in engines:
            env.close()
    assert mujoco_w[0] == pytest.approx(-100.0, rel=0.01)  # pressed into the wall
    lever = tcp_offset_m(engines[1].connector)  # r x F about y, the force at the TCP
    assert mujoco_w[4] == pytest.approx(lever * mujoco_w[0], rel=0.02)
    np.testing.assert_allclose(bullet_w, mujoco_w, atol=0.5)
    assert pybullet_key_prefix() == "pybullet4" and pybullet_key_prefix(1) == "pybullet"


def test_a_straight_descent_does_not_drift_sideways():
    """engines22: the arm's joint damping reached the tool with its coupling terms and without
    the inertia's, so a straight descent at action_scale_m 0.02 drifted 0.27 mm along -x (the
    other way to MuJoCo's swing) and a plug 0.5 mm off, inside USB's guide window, jammed."""
    env = BulletInsertionEnv("InsertBench/USB-v0", action_scale_m=0.02)
    try:
        env.reset(seed=0)
        start = env.tcp_pos.copy()
        for _ in range(3):  # 6 cm/s, stopping above the mouth
            env.step(np.array([0.0, 0.0, 1.0], np.float32))
        assert env.tcp_pos[2] < start[2] - 0.01
        np.testing.assert_allclose(env.tcp_pos[:2], start[:2], atol=1e-6)
    finally:
        env.close()


def test_press_force_orders_usb_dsub_modele(usb, dsub):
    """Paper 000's order of difficulty, with the retention springs' calibrated forces: the same
    figures as MuJoCo's (2.1 / 6.0 / 8-9 N, `tests/envs/test_fidelity.py`) within 25%."""
    model_e = BulletInsertionEnv("InsertBench/ModelE-v0", start_height_mm=20.0)
    forces = [push_down(env, speed=0.25, steps=80)[0] for env in (usb, dsub, model_e)]
    model_e.close()
    assert forces[0] < forces[1] < forces[2]
    assert forces[0] == pytest.approx(2.1, rel=0.25)
    assert forces[1] == pytest.approx(6.0, rel=0.25)


def test_unsupported_task_is_refused_with_its_reason(monkeypatch):
    """Since model revision 4 every catalog task passes the fidelity probe (the DDR4 DIMM and
    the complex shape failed it under revision 3); one that fails is refused with its figure."""
    assert set(UNSUPPORTED) <= {(t.connector.name, t.version) for t in envs.TASKS.values()}
    BulletInsertionEnv("InsertBench/Connector-RAMCard-v0").close()
    monkeypatch.setitem(UNSUPPORTED, ("DDR4 DIMM", 0), "slides in 2/4 at 0.1 mm inside")
    with pytest.raises(ValueError, match="not supported in PyBullet") as err:
        BulletInsertionEnv("InsertBench/Connector-RAMCard-v0")
    assert "slides in 2/4 at 0.1 mm inside" in str(err.value)
    BulletInsertionEnv("InsertBench/Connector-RAMCard-v0", allow_unsupported=True).close()
    with pytest.raises(ValueError, match="allow_unsupported must be True or False, got 'no'"):
        BulletInsertionEnv("InsertBench/ModelE-v0", allow_unsupported="no")  # built it before


def test_bad_kwargs_are_clear_errors():
    with pytest.raises(ValueError, match="needs cameras"):
        BulletInsertionEnv("InsertBench/USB-v0", reward="goal_image")
    with pytest.raises(ValueError, match="reward must be one of"):
        BulletInsertionEnv("InsertBench/USB-v0", reward="shaped")
    with pytest.raises(ValueError, match="goal_noise_mm"):
        BulletInsertionEnv("InsertBench/USB-v0", goal_noise_mm=float("nan"))
    with pytest.raises(ValueError, match="start_height_mm"):  # below the seated pose
        BulletInsertionEnv("InsertBench/USB-v0", start_height_mm=2.0)
    with pytest.raises(ValueError, match="control_hz .* would run at 83.33 Hz"):  # it did
        BulletInsertionEnv("InsertBench/USB-v0", control_hz=90.0, timestep=0.002)
    env = BulletInsertionEnv("InsertBench/USB-v0")
    with pytest.raises(ValueError, match="seed must be None or an integer >= 0, got True"):
        env.reset(seed=True)
    env.reset(seed=np.int64(0))  # as the vector envs take it; Gymnasium refused it
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0, 0.0], np.float32))
    env.close()


def test_p_controller_inserts_in_pybullet(usb):
    obs, _ = usb.reset(seed=0)
    controller = envs.p_controller(usb)
    for _ in range(50):
        obs, reward, terminated, truncated, info = usb.step(controller(obs))
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["engine"] == "pybullet"


def test_sim2sim_command_from_another_working_directory(tmp_path):
    def sim2sim(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from benchmark.cli import app; app()", "sim2sim", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )

    done = sim2sim("--task", "InsertBench/USB-v0", "--episodes", "2")
    assert done.returncode == 0, done.stderr
    assert "mujoco" in done.stdout and "pybullet" in done.stdout
    assert done.stdout.count("2/2") == 2  # the P-controller inserts in both engines
    bad = sim2sim("--task", "InsertBench/NoSuch-v0")
    assert bad.returncode != 0 and "unknown task" in bad.stderr


def test_importing_and_building_pybullet_prints_nothing():
    """PyBullet's C banner (build time, argv) would land in CLI output and piped results."""
    code = ("from envs.bullet import BulletInsertionEnv; "
            "BulletInsertionEnv('InsertBench/USB-v1').close()")
    # Without -u, C stdio buffers the connect message until exit, past any redirect.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True, env=env)
    assert done.stdout == "" and done.stderr == ""


def test_refuses_version_2_contact_springs():
    with pytest.raises(ValueError, match="contact springs"):
        BulletInsertionEnv("InsertBench/USB-v2")


def test_refuses_version_3_dynamics_it_would_ignore():
    """A TaskSpec of one's own with v1's tabs and v3's goal and limits ran with the goal at the
    mating length and the reference limited per axis, without a word."""
    import dataclasses

    from envs.tasks import DYNAMICS, TASKS

    v3_on_tabs = dataclasses.replace(DYNAMICS[3], springs=None)
    task = dataclasses.replace(TASKS["InsertBench/USB-v1"], dynamics=v3_on_tabs)
    with pytest.raises(ValueError, match="not goal_at_seat, orientation_limit_rad, "
                                         "limit_per_axis=False, rigid_board"):
        BulletInsertionEnv(task)


def test_refuses_the_nist_board_and_a_task_that_is_no_task_by_name():
    """A NIST part's ID was "unknown task" (with every known ID), 5 an AttributeError."""
    with pytest.raises(ValueError, match="^InsertBench/NISTBoard-USBA-v0: NIST board layouts "
                                         "are not built in PyBullet$"):
        BulletInsertionEnv("InsertBench/NISTBoard-USBA-v0")
    with pytest.raises(TypeError, match="task must be a task ID or a TaskSpec, got 5"):
        BulletInsertionEnv(5)


def test_episode_length_and_step_before_reset_are_clear_errors():
    """`max_episode_steps=-1` used to truncate every episode at its first step (2.5: at its
    third); it is no time limit, as gym.make takes it for MuJoCo (it was refused here alone:
    envs19); a step before reset() was an AttributeError. timestep=None is the task's own."""
    for bad in (-2, 2.5, True, "50", 10**12):  # 10**12 passed, past gym.make's bound
        with pytest.raises(ValueError, match=r"max_episode_steps must be"):
            BulletInsertionEnv("InsertBench/USB-v1", max_episode_steps=bad)
    unlimited = BulletInsertionEnv("InsertBench/USB-v1", max_episode_steps=-1, timestep=None)
    assert unlimited.max_episode_steps == math.inf and unlimited.timestep == 0.002
    unlimited.reset(seed=0)
    assert not unlimited.step(np.zeros(3, np.float32))[3]
    unlimited.close()
    # A family or a typo was a KeyError listing every task ID.
    for task in ("InsertBench/ConnectorFamily-v0", "InsertBench/USB-v9"):
        with pytest.raises(ValueError, match=f"{task!r} is not a single-connector task"):
            BulletInsertionEnv(task)
    env = BulletInsertionEnv("InsertBench/USB-v1", max_episode_steps=np.int64(2))
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(np.zeros(3, np.float32))
    env.reset(seed=0)
    truncated = [env.step(np.zeros(3, np.float32))[3] for _ in range(2)]
    assert truncated == [False, True]
    env.close()


def test_a_success_on_the_time_limits_step_is_truncated_in_both_engines():
    """engines24: MuJoCo's TimeLimit truncates the step that reaches the limit, a success's too;
    PyBullet's own limit did not, so the engines returned other flags for one episode."""
    from benchmark.sim2sim import make_engine_env

    flags = {}
    for engine in ("mujoco", "pybullet"):
        env = make_engine_env(engine, "InsertBench/USB-v0")
        obs, _ = env.reset(seed=0)
        controller = envs.p_controller(env)
        steps, terminated = 0, False
        while not terminated and steps < 40:
            obs, _, terminated, truncated, _ = env.step(controller(obs))
            steps += 1
        env.close()
        env = make_engine_env(engine, "InsertBench/USB-v0", max_episode_steps=steps)
        obs, _ = env.reset(seed=0)
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(controller(obs))
        flags[engine] = (steps, terminated, truncated)
        env.close()
    assert flags["mujoco"] == flags["pybullet"] == (flags["mujoco"][0], True, True), flags


def test_reset_after_close_builds_the_scene_again():
    """reset() after close() was `AttributeError: 'NoneType' object has no attribute
    'changeDynamics'` and step() pybullet's `Not connected to physics server`; MuJoCo's env
    can be reset after close, and so can this one, to the same episode."""
    env = BulletInsertionEnv("InsertBench/USB-v1", goal_noise_mm=1.0)

    def run():
        obs, _ = env.reset(seed=3)
        controller = envs.p_controller(env)
        return np.array([env.step(controller(obs))[0]["tcp_pose"] for _ in range(5)])

    first = run()
    env.close()
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(np.zeros(3, np.float32))
    np.testing.assert_array_equal(run(), first)
    env.close()
    env.close()


def test_the_fidelity_probe_refuses_version_2_before_probing():
    """`python -m benchmark.sim2sim --task InsertBench/USB-v2` ran MuJoCo's probe, then ended
    in a ValueError traceback from PyBullet."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmark.sim2sim", "--task", "InsertBench/USB-v2"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert ("no model of the contact springs of versions 2 and 3: ['InsertBench/USB-v2']"
            in done.stderr)
    assert done.stdout == ""


def test_a_copy_or_pickle_of_the_env_is_refused_not_sharing_its_server():
    """A deepcopy shared the original's physics server by id: stepping the copy moved the
    original, and collecting the copy disconnected it; a pickle loaded elsewhere had no server
    (review)."""
    import copy
    import pickle

    env = BulletInsertionEnv("InsertBench/USB-v0")
    env.reset(seed=0)
    for duplicate in (copy.deepcopy, pickle.dumps, copy.copy):
        with pytest.raises(TypeError, match="cannot be copied or pickled: it owns a PyBullet"):
            duplicate(env)
    env.step(np.zeros(3, np.float32))  # still connected
    env.close()


@pytest.mark.parametrize("axis", [3, 4, 5])
def test_free_space_rotation_follows_mujoco(axis):
    """The tool body took the arm's rotational inertia as sorted eigenvalues on the world axes
    (yaw 9.4x too heavy, roll 5.8x too light) and none of its joint damping: 6 full-rate
    pose-mode turns ran 0.27-0.29 rad against MuJoCo's 0.21-0.25 (pitch +38%)."""
    from benchmark.sim2sim import make_engine_env

    action = np.zeros(6, np.float32)
    action[axis] = 1.0
    turned = []
    for engine in ("mujoco", "pybullet"):
        env = make_engine_env(engine, "InsertBench/USB-v0", action_mode="pose")
        obs, _ = env.reset(seed=0)
        start = obs["tcp_pose"][axis]
        for _ in range(6):
            obs, *_ = env.step(action)
        turned.append(obs["tcp_pose"][axis] - start)
        env.close()
    assert turned[1] == pytest.approx(turned[0], rel=0.06), turned


def test_the_fidelity_probe_counts_the_steps_it_takes(monkeypatch):
    """It counted 80 + 120 per offset whatever happened, where a push that inserts ends early:
    its env steps/s were 1.6-1.8x too high, by how often each engine jams."""
    import benchmark.sim2sim as sim2sim

    taken = []
    make = sim2sim.make_engine_env

    def counted(*args, **kwargs):
        env = make(*args, **kwargs)
        step = env.step

        def counting_step(action):
            taken.append(1)
            return step(action)

        env.step = counting_step
        return env

    clock = iter(range(100))
    monkeypatch.setattr(sim2sim, "make_engine_env", counted)
    monkeypatch.setattr(sim2sim.time, "perf_counter", lambda: float(next(clock)))
    fidelity = sim2sim.measure_fidelity("mujoco", "InsertBench/USB-v0")
    assert fidelity.steps_per_s == len(taken) < 80 + 8 * 60  # one second on the fake clock



def test_render_says_the_pybullet_engine_has_no_cameras():
    """Gymnasium's bare NotImplementedError, with no message (engines17)."""
    env = BulletInsertionEnv("InsertBench/USB-v0")
    with pytest.raises(NotImplementedError, match="renders nothing .* render the MuJoCo task"):
        env.render()
    env.close()


def test_a_misspelt_kwarg_is_named_as_one_not_as_pybullets_limit():
    """`make_engine_env("pybullet", ..., timestp=...)` said PyBullet "runs state observations
    without v1's sensor model", no suggestion (engines18)."""
    from benchmark.sim2sim import make_engine_env

    with pytest.raises(TypeError, match="unknown kwarg 'timestp'; did you mean 'timestep'"):
        make_engine_env("pybullet", "InsertBench/USB-v0", timestp=0.001)
    with pytest.raises(ValueError, match=r"PyBullet does not take the env kwarg\(s\) "
                                         r"\['grasp_noise_mm'\]"):
        make_engine_env("pybullet", "InsertBench/USB-v0", grasp_noise_mm=1.0)


def test_two_threads_silencing_pybullet_at_once_leave_stdout_as_it_was():
    """`_quiet` swaps process-wide descriptors: a second thread entering while the first was
    inside saved /dev/null as "stdout" and restored it last, silencing the process for good
    (engines19: two envs built on a thread pool lost the printed result 9 runs in 10)."""
    import threading

    from envs.bullet import _quiet

    before = os.fstat(1)
    a_inside, b_inside = threading.Event(), threading.Event()

    def first():
        with _quiet(1):
            a_inside.set()
            b_inside.wait(1.0)  # the second inside too, unless it must wait its turn

    def second():
        a_inside.wait(5.0)
        with _quiet(1):
            b_inside.set()
            time.sleep(0.2)  # outlasts the first

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_pybullet_imports_in_a_process_without_stdout():
    """`_quiet` flushed sys.stdout, None in a process started with `>&-`: AttributeError."""
    result = subprocess.run([sys.executable, "-c", "import envs.bullet"], stdout=None,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1),
                            env=os.environ | {"PYTHONWARNINGS": "ignore"}, timeout=120)
    assert result.returncode == 0, result.stderr
