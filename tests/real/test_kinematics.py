"""The TCP pose reading checked against the joint readings (`real.kinematics`, `real.safety`)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import real
from benchmark.bench_kinematic_drift import worst_drift
from real.config import SafetyConfig, URConfig
from real.faults import FaultInjector, unsafe_commands
from real.kinematics import UR_DH, flange_pose
from real.poses import pos_mat_to_pose, rotvec_to_mat
from real.safety import SafeRobot, SafetyTrip, UnsafeCommandError
from real.twin import DigitalTwinRobot
from tests.real.conftest import USB

FROM_JOINTS = "from where the joint readings put it"


def test_forward_kinematics_is_the_simulated_arms_flange_everywhere():
    """The twin's UR5e is built from the DH table: its flange (link6) is where `flange_pose`
    puts it, at random joint angles as at the task's start."""
    twin = DigitalTwinRobot(USB, seed=0)
    m, d = twin.sim.model, twin.sim.data
    rng = np.random.default_rng(0)
    for q in [np.asarray(twin.getActualQ()), *rng.uniform(-np.pi, np.pi, size=(5, 6))]:
        d.qpos[twin._arm_qpos] = q
        mujoco.mj_kinematics(m, d)
        pos, mat = flange_pose(q, UR_DH["UR5e"])
        link6 = m.body("link6").id
        np.testing.assert_allclose(pos, d.xpos[link6] - twin.base_pos, atol=1e-12)
        np.testing.assert_allclose(mat, d.xmat[link6].reshape(3, 3), atol=1e-12)


def test_every_model_reaches_as_far_as_its_published_arm():
    """A wrong length in a table (a typo) shows in the reach: the stretched-out arm's flange
    lies at the sum of the links from the shoulder."""
    reach = {"UR3e": 0.5, "UR5e": 0.85, "UR10e": 1.3, "UR16e": 0.9, "UR20": 1.75, "UR30": 1.3,
             "UR3": 0.5, "UR5": 0.85, "UR10": 1.3}  # the data sheets' reach [m], rounded
    for model, dh in UR_DH.items():
        pos, _ = flange_pose([0.0, -np.pi / 2, 0.0, -np.pi / 2, 0.0, 0.0], dh)
        # Straight up: the flange above the shoulder by the two long links and wrist 1.
        assert pos[2] == pytest.approx(dh[0][0] - dh[1][1] - dh[2][1] + dh[4][0], abs=1e-9)
        # The two long links make up all but the wrist's 0.1-0.2 m of the reach.
        assert reach[model] - 0.2 < -dh[1][1] - dh[2][1] < reach[model], model


class _PoseOffset(FaultInjector):
    """The TCP pose field off by `offset` [m] along base x (the joints read true), or walking
    `per_cycle` [m] further each controller cycle once `start` is set."""

    offset, per_cycle, start = 0.0, 0.0, None

    def getActualTCPPose(self):
        pose = list(super().getActualTCPPose())
        walked = 0.0
        if self.start is not None:
            walked = self.per_cycle * round((self.backend.getTimestamp() - self.start)
                                            / self.backend.period_s)
        pose[0] += self.offset + walked
        return pose


def _env():
    twin = DigitalTwinRobot(USB, seed=0, start_height_mm=15.0)
    faulty = _PoseOffset(twin)
    env = real.make(USB, robot=faulty, socket_pose=twin.socket_pose(),
                    continuity_input=twin.continuity_input, start_height_mm=15.0)
    return env, twin, faulty


def _unsafe(env, faulty):
    base = env.unwrapped
    return unsafe_commands(faulty.log, base.safety, base.socket_pose, base.servo_dt)


def test_a_pose_offset_that_appears_while_the_arm_is_stopped_trips():
    """A 30 mm offset appearing in a 0.15 s pause after a refused action passed the stopped
    arm's allowance (2 x the speed cap x the time) and was the first command's reference: a
    29.8 mm jump in one period. 12 mm, under the absolute check's limit, trips on drift."""
    env, twin, faulty = _env()
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    with pytest.raises(UnsafeCommandError):
        env.step(np.array([np.nan, 0.0, 0.0], np.float32))  # refused: the arm stops
    twin.stall(0.15)
    faulty.offset = 0.012  # under the absolute check's 15 mm: the drift check's to catch
    *_, terminated, _, info = env.step(policy(obs))
    assert terminated and info["safety_trip"] == "reading"
    assert FROM_JOINTS in info["safety_message"]
    assert _unsafe(env, faulty) == []


def test_a_pose_reading_that_walks_below_the_jump_limit_trips():
    """A pose walking 4 mm a cycle (under the 5 mm jump limit) passed every check while the
    arm servoed: 24 mm off in 12 ms, then the reference of the next reset's first command."""
    env, twin, faulty = _env()
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    faulty.per_cycle, faulty.start = 0.004, twin.getTimestamp()
    *_, terminated, _, info = env.step(policy(obs))
    assert terminated and FROM_JOINTS in info["safety_message"]
    message = info["safety_message"]
    drift_mm = float(message.split("lies ")[1].split(" mm")[0])
    assert drift_mm < 8.0 + 4.0 + 0.4  # caught within a cycle of passing the limit
    faulty.start = None
    faulty.offset = 0.024
    with pytest.raises(RuntimeError, match="cannot start an episode"):
        env.reset(seed=1)
    assert _unsafe(env, faulty) == []


def _jog(env, twin, local, tilt_rad):
    """The operator moves the arm by hand to `local` (socket frame [m]), turned `tilt_rad`
    about the socket's x and y axes."""
    safe = env.unwrapped.safe
    pose = pos_mat_to_pose(safe.socket_pos + safe.socket_mat @ np.asarray(local),
                           safe.socket_mat @ rotvec_to_mat(np.array([tilt_rad, tilt_rad, 0.0])))
    twin.teachMode()
    twin.operator_move_to(pose)
    twin.endTeachMode()


@pytest.mark.parametrize(("local", "tilt_rad"), [((0.02, -0.02, -0.05), 0.15),
                                                 ((-0.025, 0.02, -0.09), -0.15)])
def test_an_arm_moved_by_hand_and_tilted_passes_the_check(local, tilt_rad):
    """Genuine readings agree with the joints wherever the arm goes: from an operator's jog
    across the box, tilted, the reset brings it to the start and an episode runs."""
    env, twin, faulty = _env()
    _jog(env, twin, local, tilt_rad)
    obs, _ = env.reset(seed=0)
    policy = real.p_controller(env)
    for _ in range(3):
        obs, *_, info = env.step(policy(obs))
        assert info["safety_trip"] is None
    assert _unsafe(env, faulty) == []


@pytest.mark.parametrize("joints", [[0.0] * 5, [np.nan, 0, 0, 0, 0, 0], [7.0, 0, 0, 0, 0, 0],
                                    None])
def test_a_malformed_joint_reading_trips(joints):
    twin = DigitalTwinRobot(USB, seed=0)
    twin.getActualQ = lambda: joints
    safe = SafeRobot(twin, SafetyConfig(), twin.socket_pose(), 0.002, clock=twin.clock)
    with pytest.raises(SafetyTrip, match="joint angle reading .* is not six finite angles"):
        safe.measure()


def test_a_backend_must_say_its_kinematics_and_a_config_its_model():
    twin = DigitalTwinRobot(USB, seed=0)
    del twin.dh_params
    with pytest.raises(TypeError, match="does not say its kinematics"):
        SafeRobot(twin, SafetyConfig(), twin.socket_pose(), 0.002)
    with pytest.raises(ValueError, match="model must be one of UR3e, UR5e"):
        URConfig(host="10.0.0.2", model="UR7e")


def test_the_wrong_model_trips_as_soon_as_the_arm_moves():
    """A UR5e read through a UR10e's kinematics: the readings disagree once it moves (here,
    from where the operator left it to the start pose)."""
    env, twin, faulty = _env()
    env.unwrapped.safe.dh_params = UR_DH["UR10e"]
    _jog(env, twin, (0.02, -0.02, -0.05), 0.15)
    with pytest.raises(RuntimeError, match=r"URConfig\.model"):
        env.reset(seed=0)
    assert _unsafe(env, faulty) == []


def test_the_default_limit_holds_a_calibrated_arms_genuine_drift():
    """Arms whose true kinematics are 1 mm / 1 mrad off the nominal ones per parameter drift
    well under the default limits over the workspace (the benchmark's worst: 2.3 mm)."""
    limits = SafetyConfig()
    drift_m, drift_rad = worst_drift("UR5e", 1e-3, 1e-3, arms=3, poses=20,
                                     rng=np.random.default_rng(0))
    assert 0 < drift_m < limits.max_kinematic_drift_m / 2
    assert 0 < drift_rad < limits.max_kinematic_drift_rad / 2


def test_an_offset_present_from_the_first_reading_or_a_wrong_model_trips_absolutely():
    """The drift check takes the session's first reading as its reference: a 20 mm pose offset
    already there at the first reset passed, and the first command jumped by it; a UR5e read
    through a UR10e's kinematics was off by 190 mm and drifted only 6 mm. Both lie far from
    the TCP offset the backend set."""
    env, twin, faulty = _env()
    faulty.offset = 0.02
    with pytest.raises(RuntimeError, match="from the flange offset set on the controller"):
        env.reset(seed=0)
    assert _unsafe(env, faulty) == []
    env, twin, faulty = _env()
    env.unwrapped.safe.dh_params = UR_DH["UR10e"]
    with pytest.raises(RuntimeError, match=r"URConfig\.model, --model"):
        env.reset(seed=0)
    assert _unsafe(env, faulty) == []


def test_an_arm_moved_by_hand_between_episodes_starts_the_next_one_where_it_is():
    """An episode ended with the layer still counting the arm as servoed: a 10 mm hand move
    before the next reset tripped as a jump ("discontinuous"), and every later reset was
    refused as a new session's business."""
    env, twin, faulty = _env()
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(policy(obs))
    safe = env.unwrapped.safe
    pos, mat = safe.measure()
    twin.kickWatchdog()
    twin.teachMode()
    twin.operator_move_to(pos_mat_to_pose(pos - mat[:, 2] * 0.01, mat), duration_s=0.15)
    twin.endTeachMode()
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs, *_, info = env.step(policy(obs))
        assert info["safety_trip"] is None
    assert _unsafe(env, faulty) == []
