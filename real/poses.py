"""Pose vectors as Universal Robots writes them: [x, y, z, rx, ry, rz] (m, rotation vector rad).

Every pose here is in the robot base frame unless a name says otherwise. Rotations go through
`envs.controller`'s quaternion helpers, so the real robot and the simulation share one
convention (MuJoCo's wxyz quaternions, rotation vectors = axis x angle).
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from envs.controller import mat_to_quat, quat_to_rotvec, rotvec_to_quat


def rotvec_to_mat(rotvec: Sequence[float] | np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a rotation vector [rad]."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, rotvec_to_quat(np.asarray(rotvec, dtype=np.float64)))
    return mat.reshape(3, 3)


def mat_to_rotvec(mat: np.ndarray) -> np.ndarray:
    """Rotation vector [rad] of a 3x3 rotation matrix, angle in [0, pi]."""
    return quat_to_rotvec(mat_to_quat(mat))


def pose_to_pos_mat(pose: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a UR pose vector into position [m] and rotation matrix."""
    p = np.asarray(pose, dtype=np.float64)
    if p.shape != (6,):
        raise ValueError(f"a pose is [x, y, z, rx, ry, rz], got shape {p.shape}")
    return p[:3].copy(), rotvec_to_mat(p[3:])


def pos_mat_to_pose(pos: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """UR pose vector [m, rad] from a position and a rotation matrix."""
    return np.concatenate([np.asarray(pos, dtype=np.float64), mat_to_rotvec(mat)])


def rotation_angle(mat: np.ndarray) -> float:
    """Angle [rad] of a rotation matrix (how far it turns, about any axis)."""
    return float(np.arccos(np.clip((np.trace(mat) - 1.0) / 2.0, -1.0, 1.0)))

