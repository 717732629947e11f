"""Contact fidelity: the properties that make millimetre clearances mean something.

- penetration under the task's maximum push force stays far below the clearance;
- a plug offset beyond clearance + chamfer jams; one inside that window slides in;
- difficulty orders USB < D-sub < Model-E (paper 000, section 3.1).

The jam window is resolved to 0.1 mm: the tests approach quasi-statically (1.5 cm/s) so the
lateral offset at contact is the commanded one.
"""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from envs.tasks import TASKS
from tests.envs.helpers import FOUNDATION_IDS, push_down

RESOLUTION_MM = 0.1


def _window_mm(env) -> float:
    c = env.unwrapped.task.connector
    return c.clearance_mm + c.chamfer_mm


def _max_rigid_penetration_m(env) -> float:
    u = env.unwrapped
    deepest = 0.0
    for i in range(u.data.ncon):
        contact = u.data.contact[i]
        names = u.model.geom(contact.geom1).name + u.model.geom(contact.geom2).name
        if "plug" in names and "spring" not in names:
            deepest = max(deepest, -contact.dist)
    return deepest


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
def test_penetration_under_max_force_is_far_below_clearance(env_id):
    env = gym.make(env_id, start_height_mm=20.0)
    # Land on the rim, far outside the chamfer, and keep pushing until the force saturates.
    obs, _ = push_down(env, offset_mm=(3.0, 0.0), speed=1.0, steps=40)
    gains = env.unwrapped.scene_config.gains
    max_force = gains.translational_stiffness * gains.translation_limit_m
    press = -obs["wrench"][2]
    assert press == pytest.approx(max_force, rel=0.05)
    clearance_m = env.unwrapped.task.connector.clearance_mm * 1e-3
    assert _max_rigid_penetration_m(env) < 0.05 * clearance_m


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_offset_beyond_clearance_and_chamfer_jams(env_id, axis, sign):
    env = gym.make(env_id, start_height_mm=25.0)
    offset = [0.0, 0.0]
    offset[axis] = sign * (_window_mm(env) + RESOLUTION_MM)
    obs, info = push_down(env, offset)
    assert info["insertion_depth_mm"] < 0.05
    assert not info["is_success"]
    assert -obs["wrench"][2] > 25.0  # it is pushing with (nearly) all it has, and still stuck


@pytest.mark.parametrize("env_id", FOUNDATION_IDS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_offset_within_chamfer_slides_in(env_id, axis, sign):
    env = gym.make(env_id, start_height_mm=25.0)
    offset = [0.0, 0.0]
    offset[axis] = sign * (_window_mm(env) - RESOLUTION_MM)
    _, info = push_down(env, offset)
    assert info["is_success"]


def _press_force_to_insert(env_id) -> float:
    """Peak force the tool presses with while an aligned plug is pushed slowly through the
    stroke [N], up to the mating depth (so the body bottoming on its hard stop is not counted)."""
    env = gym.make(env_id, start_height_mm=25.0)
    obs, _ = env.reset(seed=0)
    peak = 0.0
    mating = env.unwrapped.task.connector.success_depth_mm
    for _ in range(80):
        obs, _, terminated, _, info = env.step(np.array([0.0, 0.0, 0.25], np.float32))
        if 0.05 < info["insertion_depth_mm"] < mating - 0.5:
            peak = max(peak, -float(obs["wrench"][2]))
        if terminated:
            break
    assert info["is_success"]
    return peak


def test_difficulty_orders_usb_dsub_modele():
    windows, forces = [], []
    for env_id in FOUNDATION_IDS:
        windows.append(_window_mm(gym.make(env_id)))
        forces.append(_press_force_to_insert(env_id))
    # Less lateral tolerance and more force needed, in the paper's order of difficulty.
    assert windows[0] > windows[1] > windows[2]
    assert forces[0] < forces[1] < forces[2]
    # The retention springs are calibrated: USB needs about its 2 N spec, not a jam's 30 N.
    assert 1.0 < forces[0] < 5.0


def test_retention_springs_are_springs():
    """A tab pushed back by the seated plug presses on it with stiffness x deflection."""
    env = gym.make("InsertBench/USB-v0", start_height_mm=25.0, reward="dense")  # no termination
    push_down(env, steps=45)
    for _ in range(15):  # hold still: static equilibrium of the tab
        env.step(np.zeros(3, np.float32))
    u = env.unwrapped
    joint = u.model.joint("socket_spring0_slide")
    deflection = u.data.qpos[joint.qposadr[0]]
    spec = u.task.connector
    assert deflection == pytest.approx(spec.spring_interference_mm * 1e-3, rel=0.15)
    tab = u.model.geom("socket_spring0").id
    normal = 0.0
    for i in range(u.data.ncon):
        if tab in (u.data.contact[i].geom1, u.data.contact[i].geom2):
            force = np.zeros(6)
            mujoco.mj_contactForce(u.model, u.data, i, force)
            normal += force[0]
    stiffness = u.model.jnt_stiffness[joint.id]
    assert normal == pytest.approx(stiffness * deflection, rel=0.02)


def test_physics_steps_per_policy_step_and_controller_in_c():
    env = gym.make("InsertBench/USB-v0")
    u = env.unwrapped
    assert u.frame_skip * u.model.opt.timestep == pytest.approx(0.1)  # 10 Hz policy
    assert 1 / u.model.opt.timestep >= 500  # 500 Hz - 1 kHz inner loop
    # Spring actuators saturate at stiffness x reference limit (SERL's clipped reference).
    springs = [i for i in range(u.model.nu) if u.model.actuator(i).name.startswith("spring_")]
    gains = u.scene_config.gains
    assert u.model.actuator_forcerange[springs[0], 1] == pytest.approx(
        gains.translational_stiffness * gains.translation_limit_m
    )
    assert u.model.actuator_trntype[springs[0]] == mujoco.mjtTrn.mjTRN_SITE


def _gap(reason: str):
    """Version 2 with a known fidelity gap (strict xfail: the day it passes, v2 has changed
    under its unchanged version key), version 3 without it."""
    return pytest.mark.parametrize("version", [
        pytest.param(2, marks=pytest.mark.xfail(strict=True, reason=(
            f"known gap of task versions 0-2 (README, 'Known fidelity gaps'): {reason}"))),
        3,
    ])


@_gap("a trapezoid's offset outline grows its top and bottom edges by the same sideways "
      "amount, so the slanted socket walls are not parallel to the plug's")
def test_a_trapezoid_socket_keeps_the_stated_clearance_along_its_slanted_walls(version):
    spec = TASKS[f"InsertBench/DSub-v{version}"].connector
    plug, cavity = spec.outline(), spec.outline(spec.clearance_mm)
    for edge in range(4):
        start, end = cavity[edge], cavity[(edge + 1) % 4]
        tangent = (end - start) / np.linalg.norm(end - start)
        normal = np.array([tangent[1], -tangent[0]])
        gaps_mm = [float(-(plug[i % 4] - start) @ normal) * 1e3 for i in (edge, edge + 1)]
        assert gaps_mm == pytest.approx([spec.clearance_mm] * 2, abs=1e-3)  # v2: 0.175, 0.125


@_gap("each spring actuator's reference is limited on its own axis, so a diagonal push reaches "
      "sqrt(3) x max_force_n, where real/ trips on the force vector")
def test_a_diagonal_push_is_limited_to_the_controllers_force(version):
    env = gym.make(f"InsertBench/USB-v{version}", noiseless=True)
    u = env.unwrapped
    env.reset(seed=0)
    for _ in range(40):  # 6 mm into the socket
        depth_mm = -u.data.site_xpos[u._face][2] * 1e3
        env.step(np.array([0.0, 0.0, np.clip((6.0 - depth_mm) / 5.0, -1.0, 1.0)], np.float32))
    for _ in range(30):  # then push down and sideways at once
        env.step(np.ones(3, np.float32))
    springs = [u.data.actuator(f"spring_{axis}").force[0] for axis in "xyz"]
    limit = u.scene_config.gains.max_force_n
    assert np.linalg.norm(springs) <= limit * 1.01  # v2: 173 N against 100 N
    assert np.linalg.norm(springs) >= limit * 0.99  # and it does push with all it has


@_gap("in pose mode each step turns at most 0.05 rad but nothing bounds the total, where real/ "
      "clamps every command into a 0.25 rad cone")
def test_pose_mode_keeps_the_orientation_in_the_real_cells_cone(version):
    from real.config import SafetyConfig
    from real.poses import rotation_angle

    env = gym.make(f"InsertBench/USB-v{version}", action_mode="pose", noiseless=True,
                   reward="dense")
    u = env.unwrapped
    env.reset(seed=0)
    for _ in range(50):  # roll and pitch at full rate, clear of the socket
        env.step(np.array([0, 0, 0, 1.0, 0.5, 0], np.float32))
    turned = rotation_angle(u.start_mat.T @ u.data.site_xmat[u._tcp].reshape(3, 3))
    assert turned == pytest.approx(SafetyConfig().max_tilt_rad, abs=0.01)  # v2: 1.7 rad


@_gap("the goal face lies the rim's 0.25 mm below where a seated plug's face can reach")
@pytest.mark.parametrize("task", ["USB", "DSub", "Connector-UKACPlug"])
def test_a_seated_plug_reaches_the_goal_depth(task, version):
    env = gym.make(f"InsertBench/{task}-v{version}", noiseless=True, reward="dense")
    u = env.unwrapped
    env.reset(seed=0)
    for _ in range(60):  # aim 2 mm past the goal, in the TCP frame
        error = u.start_mat.T @ (u.goal_pos - np.array([0, 0, 0.002]) - u.tcp_pos) / 0.005
        env.step(np.clip(error, -1, 1).astype(np.float32))
    face_z, goal_z = u.data.site_xpos[u._face][2], u._goal_face_pos[2]
    assert face_z == pytest.approx(goal_z, abs=2e-5)  # v2: 0.25 mm above


@_gap("the task board has MuJoCo's default contact, which sinks 16 um under the push force")
def test_the_board_is_as_rigid_as_the_socket(version):
    env = gym.make(f"InsertBench/USB-v{version}", noiseless=True, reward="dense")
    u = env.unwrapped
    env.reset(seed=0, options={"tcp_offset_mm": (30.0, 0.0)})  # beside the socket's housing
    for _ in range(40):
        env.step(np.array([0, 0, 1.0], np.float32))
    board = u.model.geom("board")
    sink_m = u.data.geom_xpos[board.id][2] + board.size[2] - u.data.site_xpos[u._face][2]
    assert u.data.actuator("spring_z").force[0] == pytest.approx(100.0, rel=0.01)
    assert sink_m < 2e-6  # v2: 16 um; v3 0.4 um
