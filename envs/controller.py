"""Arm control: start-pose IK, the impedance reference with SERL limiting, and paper 000's
hand-designed P-controller.

The impedance law itself runs in C (see `envs.scene`); Python only moves its reference once per
policy step. Frames: "world" is the socket-mouth frame of `envs.scene`; the TCP frame has z along
the tool (pointing down into the socket at the start pose).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.scene import ImpedanceGains

REFERENCE_MODES = ("accumulate", "measured")


def rotvec_to_quat(rotvec: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    mujoco.mju_axisAngle2Quat(quat, rotvec / angle, angle)
    return quat


def quat_to_rotvec(quat: np.ndarray) -> np.ndarray:
    rotvec = np.zeros(3)
    q = quat if quat[0] >= 0 else -quat  # the short way round
    mujoco.mju_quat2Vel(rotvec, q, 1.0)
    return rotvec


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(mat).ravel())
    return quat


def solve_ik(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    site_id: int,
    pos: np.ndarray,
    mat: np.ndarray,
    q_seed: np.ndarray,
    qpos_adr: np.ndarray,
    dof_adr: np.ndarray,
    iterations: int = 100,
    tolerance: float = 1e-7,
) -> np.ndarray:
    """Arm joint angles [rad] putting site `site_id` at `pos` [m] with orientation `mat` (world).

    Damped least squares on the site Jacobian over the arm joints (`qpos_adr`, `dof_adr`); used
    only at reset, never in the control loop. Raises RuntimeError if the pose is out of reach.
    """
    q = q_seed.copy()
    jac = np.zeros((6, model.nv))
    target_quat = mat_to_quat(mat)
    for _ in range(iterations):
        data.qpos[qpos_adr] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err = np.zeros(6)
        err[:3] = pos - data.site_xpos[site_id]
        site_quat = mat_to_quat(data.site_xmat[site_id].reshape(3, 3))
        diff = np.zeros(4)
        mujoco.mju_mulQuat(diff, target_quat, _conj(site_quat))
        err[3:] = quat_to_rotvec(diff)
        if err @ err < tolerance**2:
            return q
        mujoco.mj_jacSite(model, data, jac[:3], jac[3:], site_id)
        j = jac[:, dof_adr]
        q = q + j.T @ np.linalg.solve(j @ j.T + 1e-6 * np.eye(6), err)
    raise RuntimeError(f"IK did not converge to {pos} (residual {np.linalg.norm(err):.2e})")


def _conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def limited_reference(
    ref_pos: np.ndarray,
    ref_quat: np.ndarray,
    tcp_pos: np.ndarray,
    tcp_mat: np.ndarray,
    delta_pos_tcp: np.ndarray,
    delta_rotvec_tcp: np.ndarray,
    gains: ImpedanceGains,
    mode: str = "accumulate",
) -> tuple[np.ndarray, np.ndarray]:
    """The next impedance reference (position [m], quaternion wxyz) after a delta pose command.

    Pure math shared by the simulated and the real robot (`real/`): all poses in one fixed frame
    (sim: world; real: robot base), the delta (m, rad) in the TCP frame. The new reference is
    the previous reference ("accumulate") or the measured TCP ("measured") moved by the delta,
    then clipped to `gains.translation_limit_m` (per axis, or in length without
    `gains.limit_per_axis`) and in angle to `gains.rotation_limit_rad` around the measured TCP
    pose (SERL's reference limiting).
    """
    if mode not in REFERENCE_MODES:
        raise ValueError(f"reference_mode must be one of {REFERENCE_MODES}, got {mode!r}")
    # Translation and rotation deltas are expressed in the TCP frame, like SERL's actions.
    base_pos = ref_pos if mode == "accumulate" else tcp_pos
    pos = base_pos + tcp_mat @ delta_pos_tcp
    offset = pos - tcp_pos
    if gains.limit_per_axis:
        offset = np.clip(offset, -gains.translation_limit_m, gains.translation_limit_m)
    elif (length := float(np.linalg.norm(offset))) > gains.translation_limit_m:
        offset *= gains.translation_limit_m / length
    pos = tcp_pos + offset
    tcp_quat = mat_to_quat(tcp_mat)
    base_quat = ref_quat if mode == "accumulate" else tcp_quat
    new_quat = base_quat
    if delta_rotvec_tcp.any():
        new_quat = np.zeros(4)
        mujoco.mju_mulQuat(new_quat, base_quat, rotvec_to_quat(delta_rotvec_tcp))
    return pos, limit_rotation(new_quat, tcp_quat, gains.rotation_limit_rad)


def limit_rotation(quat: np.ndarray, centre: np.ndarray, max_angle_rad: float) -> np.ndarray:
    """`quat` (wxyz) turned back along the shortest way to within `max_angle_rad` (a rotation
    about any axis) of `centre`; `quat` itself when it is within."""
    # The angle between them, 2 acos|<q1, q2>|: clip only when needed.
    cos_half = min(1.0, abs(float(quat @ centre)))
    if 2.0 * np.arccos(cos_half) <= max_angle_rad:
        return quat
    rel = np.zeros(4)
    mujoco.mju_mulQuat(rel, _conj(centre), quat)
    rel_vec = quat_to_rotvec(rel)
    rel_vec *= max_angle_rad / np.linalg.norm(rel_vec)
    limited = np.zeros(4)
    mujoco.mju_mulQuat(limited, centre, rotvec_to_quat(rel_vec))
    return limited


def workspace_box(top: np.ndarray, half_m: float) -> tuple[np.ndarray, np.ndarray]:
    """SERL's safety box (serl_robot_infra franka_env `clip_safety_box`) as (low, high) for a
    socket whose axis is the world z axis [m]: within `half_m` of the axis sideways, at most
    `half_m` above `top` (the nominal start position), unbounded downwards."""
    low = np.array([top[0] - half_m, top[1] - half_m, -np.inf])
    high = np.array([top[0] + half_m, top[1] + half_m, top[2] + half_m])
    return low, high


class ImpedanceReference:
    """The reference pose the C-side impedance controller pulls the TCP towards.

    Each policy step moves the reference by the commanded delta (expressed in the TCP frame) and
    clips it to within `translation_limit_m` / `rotation_limit_rad` of the measured TCP pose, as
    SERL does; the actuators' force limits repeat that clip, per axis, at every physics step.
    With `gains.limit_per_axis` off (task version 3) the reference's offset is limited in
    length, so a held push is at most `max_force_n` in any direction; while the TCP moves
    between policy steps the offset can grow, and the per-axis clip is then the bound.

    mode "accumulate" (default): the delta is added to the previous reference, so a plug held up
    by friction is pressed harder each step until the limit (stiffness x limit = the maximum push
    force), like a compliant position controller (paper 000's IK + joint impedance).
    mode "measured": the delta is added to the measured TCP pose, exactly SERL's rule; the push
    force is then stiffness x |delta|, which is too little for paper 000's P-controller to get
    through a connector's retention springs near the goal (it scores 0% on D-sub and Model-E).
    """

    def __init__(self, gains: ImpedanceGains, mocap_id: int, mode: str = "accumulate") -> None:
        if mode not in REFERENCE_MODES:
            raise ValueError(f"reference_mode must be one of {REFERENCE_MODES}, got {mode!r}")
        self.mode = mode
        self.gains = gains
        self.mocap_id = mocap_id
        self.pos = np.zeros(3)
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])

    def reset(self, data: mujoco.MjData, tcp_pos: np.ndarray, tcp_quat: np.ndarray) -> None:
        self.pos, self.quat = tcp_pos.copy(), tcp_quat.copy()
        self._write(data)

    def move(
        self,
        data: mujoco.MjData,
        tcp_pos: np.ndarray,
        tcp_mat: np.ndarray,
        delta_pos_tcp: np.ndarray,
        delta_rotvec_tcp: np.ndarray,
    ) -> None:
        """Apply a delta pose (m, rad; TCP frame) and limit the reference around the TCP."""
        self.pos, self.quat = limited_reference(
            self.pos,
            self.quat,
            tcp_pos,
            tcp_mat,
            delta_pos_tcp,
            delta_rotvec_tcp,
            self.gains,
            self.mode,
        )
        self._write(data)

    def clip_position(self, data: mujoco.MjData, low: np.ndarray, high: np.ndarray) -> None:
        """Keep the reference position inside the box [low, high] (world, m): SERL's safety box
        (serl_robot_infra franka_env `clip_safety_box`)."""
        self.pos = np.clip(self.pos, low, high)
        self._write(data)

    def clip_orientation(
        self, data: mujoco.MjData, centre_quat: np.ndarray, max_angle_rad: float
    ) -> None:
        """Keep the reference orientation within `max_angle_rad` (a rotation about any axis) of
        `centre_quat` (world, wxyz), turning it back towards it along the shortest way: the
        orientation cone of `real.safety.SafeRobot.clamp`."""
        quat = limit_rotation(self.quat, centre_quat, max_angle_rad)
        if quat is not self.quat:
            self.quat = quat
            self._write(data)

    def _write(self, data: mujoco.MjData) -> None:
        data.mocap_pos[self.mocap_id] = self.pos
        data.mocap_quat[self.mocap_id] = self.quat
