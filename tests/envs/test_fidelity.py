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


@pytest.mark.xfail(strict=True, reason="known gap of task versions 0-2 (README, 'Known fidelity "
                   "gaps'): a trapezoid's offset outline grows its top and bottom edges by the "
                   "same sideways amount, so the slanted socket walls are not parallel to the "
                   "plug's; to be fixed in a task version 3")
def test_a_trapezoid_socket_keeps_the_stated_clearance_along_its_slanted_walls():
    from envs.connectors import DSUB_DE9

    plug, cavity = DSUB_DE9.outline(), DSUB_DE9.outline(DSUB_DE9.clearance_mm)
    start, end = cavity[1], cavity[2]  # a slanted edge of the cavity
    tangent = (end - start) / np.linalg.norm(end - start)
    normal = np.array([tangent[1], -tangent[0]])
    gaps_mm = [float(-(vertex - start) @ normal) * 1e3 for vertex in (plug[1], plug[2])]
    assert gaps_mm == pytest.approx([DSUB_DE9.clearance_mm] * 2, abs=1e-3)  # 0.175, 0.125


@pytest.mark.xfail(strict=True, reason="known gap of task versions 0-2 (README, 'Known fidelity "
                   "gaps'): each spring actuator saturates on its own axis, so a diagonal push "
                   "reaches sqrt(3) x max_force_n, where real/ trips on the force vector")
def test_a_diagonal_push_is_limited_to_the_controllers_force():
    env = gym.make("InsertBench/USB-v1", noiseless=True)
    u = env.unwrapped
    env.reset(seed=0)
    for _ in range(40):  # 6 mm into the socket
        depth_mm = -u.data.site_xpos[u._face][2] * 1e3
        env.step(np.array([0.0, 0.0, np.clip((6.0 - depth_mm) / 5.0, -1.0, 1.0)], np.float32))
    for _ in range(30):  # then push down and sideways at once
        env.step(np.ones(3, np.float32))
    springs = [u.data.actuator(f"spring_{axis}").force[0] for axis in "xyz"]
    limit = u.scene_config.gains.max_force_n
    assert np.linalg.norm(springs) <= limit * 1.01  # 173 N against 100 N on v1
