"""Universal Robots UR5e constants (SI units) used by the simulated arm and the real adapter.

Kinematics are the manufacturer's published Denavit-Hartenberg parameters ("DH parameters for
calculations of kinematics and dynamics", Universal Robots support article, UR5e row); link masses
come from the same table. Collision shapes are capsules sized to the real links' outer diameters.
"""

from __future__ import annotations

import numpy as np

#: Standard DH parameters per joint: (d [m], a [m], alpha [rad]).
DH_PARAMS: tuple[tuple[float, float, float], ...] = (
    (0.1625, 0.0, np.pi / 2),
    (0.0, -0.425, 0.0),
    (0.0, -0.3922, 0.0),
    (0.1333, 0.0, np.pi / 2),
    (0.0997, 0.0, -np.pi / 2),
    (0.0996, 0.0, 0.0),
)
LINK_MASSES_KG = (3.761, 8.058, 2.846, 1.37, 1.3, 0.365)
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")
#: Rotor inertia reflected through the harmonic drives [kg m^2]; stabilises the stiff inner loop.
JOINT_ARMATURE = (0.1, 0.1, 0.1, 0.05, 0.05, 0.05)
JOINT_DAMPING_NMS = (2.0, 2.0, 2.0, 1.0, 1.0, 1.0)
#: Capsule radii of the link collision shapes [m] (UR5e link tubes are ~90/75/63 mm across).
LINK_RADII_M = (0.06, 0.054, 0.045, 0.038, 0.038, 0.032)
#: A "tool pointing down" configuration [rad]; the task's start pose is solved by IK around it.
HOME_QPOS = np.array([0.0, -1.9, 1.9, -1.57, -1.57, 0.0])
#: Where the arm base stands relative to the task-board's socket [m] (world frame, z up).
BASE_POS_M = np.array([-0.45, -0.13, 0.0])
#: Length of the F/T sensor between the wrist flange and the gripper, along the flange z axis
#: [m]. The flange-to-TCP distance adds the gripper's base and the plug (`envs.scene.tcp_offset_m`).
FT_SENSOR_LENGTH_M = 0.035
