"""The same task IDs on a physical UR arm with RealSense cameras (README: real robot).

    import real
    env = real.make("InsertBench/USB-v0", robot=real.URConfig(host="192.168.1.10"),
                    cameras=[real.CameraConfig("wrist", serial="...")],
                    calibration="calibration/usb.json", obs_mode="state+pixels")

Importing this package loads no hardware library: ur_rtde is imported when a robot connects,
pyrealsense2 when a camera opens. `real.make_twin` runs the whole stack on a digital twin.
"""

from __future__ import annotations

import envs  # noqa: F401  (first: sets the headless MUJOCO_GL default before MuJoCo loads)
from real.calibration import Calibration
from real.config import CameraConfig, SafetyConfig, URConfig
from real.env import RealInsertionEnv, p_controller
from real.factory import make, make_twin
from real.safety import SafetyTrip, UnsafeCommandError

__all__ = [
    "Calibration",
    "CameraConfig",
    "RealInsertionEnv",
    "SafetyConfig",
    "SafetyTrip",
    "URConfig",
    "UnsafeCommandError",
    "p_controller",
    "make",
    "make_twin",
]
