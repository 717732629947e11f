"""Forward kinematics of Universal Robots arms from their nominal Denavit-Hartenberg parameters.

The safety layer uses it to cross-check the controller's TCP pose reading against its joint
readings (`real.safety`). Nominal parameters are the ones Universal Robots publishes per model
("DH parameters for calculations of kinematics and dynamics"); each arm's factory calibration
moves its true kinematics from them by up to a few millimetres, so the check compares how the
two readings *change* over a session, not their absolute values.

Frames: the robot's base frame as the controller reports poses in it (DH frame 0), and the
flange frame (tool0: DH frame 6); lengths in metres, angles in radians.
"""

from __future__ import annotations

import numpy as np

from envs.ur5e_constants import DH_PARAMS as UR5E_DH

#: Standard DH parameters (d [m], a [m], alpha [rad]) per joint, by controller model name.
UR_DH: dict[str, tuple[tuple[float, float, float], ...]] = {
    "UR3e": ((0.15185, 0.0, np.pi / 2), (0.0, -0.24355, 0.0), (0.0, -0.2132, 0.0),
             (0.13105, 0.0, np.pi / 2), (0.08535, 0.0, -np.pi / 2), (0.0921, 0.0, 0.0)),
    "UR5e": UR5E_DH,
    "UR10e": ((0.1807, 0.0, np.pi / 2), (0.0, -0.6127, 0.0), (0.0, -0.57155, 0.0),
              (0.17415, 0.0, np.pi / 2), (0.11985, 0.0, -np.pi / 2), (0.11655, 0.0, 0.0)),
    "UR16e": ((0.1807, 0.0, np.pi / 2), (0.0, -0.4784, 0.0), (0.0, -0.36, 0.0),
              (0.17415, 0.0, np.pi / 2), (0.11985, 0.0, -np.pi / 2), (0.11655, 0.0, 0.0)),
    "UR20": ((0.2363, 0.0, np.pi / 2), (0.0, -0.862, 0.0), (0.0, -0.7287, 0.0),
             (0.201, 0.0, np.pi / 2), (0.1593, 0.0, -np.pi / 2), (0.1543, 0.0, 0.0)),
    "UR30": ((0.2363, 0.0, np.pi / 2), (0.0, -0.637, 0.0), (0.0, -0.5037, 0.0),
             (0.201, 0.0, np.pi / 2), (0.1593, 0.0, -np.pi / 2), (0.1543, 0.0, 0.0)),
    "UR3": ((0.1519, 0.0, np.pi / 2), (0.0, -0.24365, 0.0), (0.0, -0.21325, 0.0),
            (0.11235, 0.0, np.pi / 2), (0.08535, 0.0, -np.pi / 2), (0.0819, 0.0, 0.0)),
    "UR5": ((0.089159, 0.0, np.pi / 2), (0.0, -0.425, 0.0), (0.0, -0.39225, 0.0),
            (0.10915, 0.0, np.pi / 2), (0.09465, 0.0, -np.pi / 2), (0.0823, 0.0, 0.0)),
    "UR10": ((0.1273, 0.0, np.pi / 2), (0.0, -0.612, 0.0), (0.0, -0.5723, 0.0),
             (0.163941, 0.0, np.pi / 2), (0.1157, 0.0, -np.pi / 2), (0.0922, 0.0, 0.0)),
}

#: CB3 arms, whose RTDE wrench (actual_TCP_force) carries its torque about the TCP set with
#: setTcp; e-Series and later (UR3e ... UR30, the F/T sensor built into the flange) report it
#: about the tool flange, in base orientation, whatever the TCP (Universal Robots' own drivers
#: say so: Universal_Robots_ROS2_Driver pull requests 1287 and 1615, tested on a UR3e and a
#: UR10e; not yet checked on an arm of ours, see README "Validate on a real robot").
CB3_MODELS = ("UR3", "UR5", "UR10")
#: The points an RTDE wrench may carry its torque about.
WRENCH_REFERENCES = ("flange", "tcp")


def wrench_reference(model: str) -> str:
    """"tcp" or "flange": the point a `model`'s RTDE wrench carries its torque about."""
    if model not in UR_DH:
        raise ValueError(f"unknown UR model {model!r}; known: {sorted(UR_DH)}")
    return "tcp" if model in CB3_MODELS else "flange"


def flange_pose(q, dh: tuple[tuple[float, float, float], ...] = UR5E_DH
                ) -> tuple[np.ndarray, np.ndarray]:
    """The flange's position [m] and rotation matrix in the base frame for joint angles `q`
    [rad]: the product of Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i) over the joints."""
    pos, mat = np.zeros(3), np.eye(3)
    for angle, (d, a, alpha) in zip(np.asarray(q, dtype=np.float64), dh, strict=True):
        ct, st, ca, sa = np.cos(angle), np.sin(angle), np.cos(alpha), np.sin(alpha)
        link = np.array([[ct, -st * ca, st * sa], [st, ct * ca, -ct * sa], [0.0, sa, ca]])
        pos = pos + mat @ np.array([a * ct, a * st, d])
        mat = mat @ link
    return pos, mat


def tool_in_flange(pos: np.ndarray, mat: np.ndarray, q,
                   dh: tuple[tuple[float, float, float], ...] = UR5E_DH
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The flange-to-TCP transform (position [m], rotation; flange frame) that a TCP pose
    (base frame) and joint angles `q` [rad] imply through the kinematics `dh`."""
    flange_pos, flange_mat = flange_pose(q, dh)
    return flange_mat.T @ (pos - flange_pos), flange_mat.T @ mat
