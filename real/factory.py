"""`real.make`: a task ID on the physical cell, or on its digital twin."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from envs.insertion_env import InsertionEnv
from envs.scene import tcp_offset_pose
from envs.task_options import check_image_size, check_int, check_range, unknown_kwarg
from envs.tasks import task_spec
from real.calibration import Calibration
from real.camera import Camera, open_realsense
from real.config import (
    MAX_REACH_M,
    SERVO_RATES_HZ,
    CameraConfig,
    SafetyConfig,
    URConfig,
    check_pose_rotation,
    check_vector,
)
from real.env import RealInsertionEnv
from real.robot import RobotBackend, URBackend, check_servo_rate

#: The RobotBackend methods a backend must have (`real.robot.RobotBackend`).
_BACKEND_METHODS = tuple(
    name for name in vars(RobotBackend) if not name.startswith("_") and name[0].islower()
)


#: What `make` passes to `RealInsertionEnv` itself; the other kwargs come from `env_kwargs`.
_MAKE_ARGUMENTS = {"self", "task", "robot", "socket_pose", "cameras", "safety"}


def check_cell_kwargs(env_kwargs: dict[str, Any]) -> None:
    """Refuse a kwarg that the cell's environment does not take, naming it (TypeError): the
    simulation's own (noiseless, grasp_noise_mm, friction_scale, ...: the cell has real ones)
    or a misspelt one. `make` calls it before connecting to the robot; it used to connect,
    set the TCP and then fail with "unexpected keyword argument"."""
    known = set(inspect.signature(RealInsertionEnv.__init__).parameters) - _MAKE_ARGUMENTS
    sim_only = set(inspect.signature(InsertionEnv.__init__).parameters) - known
    for name in env_kwargs:
        if name in known:
            continue
        if name in sim_only:
            raise TypeError(f"{name!r} is a kwarg of the simulated task only; the cell's "
                            f"environment does not take it")
        raise unknown_kwarg("the cell's environment", name, known)


def make(
    env_id: str,
    *,
    robot: URConfig | RobotBackend,
    cameras: Sequence[CameraConfig | Camera] = (),
    socket_pose: Sequence[float] | np.ndarray | None = None,
    calibration: Calibration | str | Path | None = None,
    safety: SafetyConfig | None = None,
    max_episode_steps: int | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """The task `env_id` on a UR arm, with the simulated task's spaces and semantics.

    robot: a `URConfig` (connects with ur_rtde: setTcp, setPayload, setWatchdog) or any
    `RobotBackend` (e.g. `real.twin.DigitalTwinRobot`). cameras: `CameraConfig`s (RealSense,
    opened here) or ready `Camera`s, named "wrist" / "side". socket_pose: seated TCP pose, base
    frame [m, rad]; or give the `calibration` (object or JSON path) that recorded it, which also
    provides the F/T bias. env_kwargs: those of `RealInsertionEnv` (the simulation's
    action_mode, obs_mode, reward, image_size, grayscale, ...). Wrapped in the task's time limit.
    """
    spec = task_spec(env_id)
    # A host string (or None) in place of URConfig(host=...) used to build an env whose first
    # reset failed with "'str' object has no attribute 'getActualTCPPose'".
    if not isinstance(robot, URConfig) and not all(
        callable(getattr(robot, name, None)) for name in _BACKEND_METHODS
    ):
        raise TypeError(f"robot must be a real.URConfig(host=...) or a RobotBackend "
                        f"(real.robot), got {robot!r}")
    for cam in cameras:
        if not isinstance(cam, CameraConfig | Camera):
            raise TypeError(f"cameras must be real.CameraConfig or real.camera.Camera objects, "
                            f"got {cam!r}")
    if max_episode_steps is not None:  # 0 fell back to the task's limit without a word
        max_episode_steps = check_int("max_episode_steps", max_episode_steps, 1)
    check_cell_kwargs(env_kwargs)
    ft_bias = env_kwargs.pop("ft_bias", None)
    calib = None
    if calibration is not None:
        calib = (
            calibration if isinstance(calibration, Calibration) else Calibration.load(calibration)
        )
        if calib.task != env_id:
            raise ValueError(
                f"the calibration is for {calib.task}, not {env_id}; calibrate this task's socket"
            )
        socket_pose = calib.socket_pose if socket_pose is None else socket_pose
        ft_bias = calib.ft_bias if ft_bias is None else ft_bias
    if socket_pose is None:
        raise ValueError("give socket_pose or a calibration (run `insertbench real calibrate`)")
    # Before connecting (SafeRobot checks it again): a pose in millimetres used to be refused
    # only after the robot was connected and its TCP set.
    socket_pose = check_vector("socket_pose", socket_pose, 6, MAX_REACH_M)
    check_pose_rotation("socket_pose", socket_pose)
    # The cameras before the robot: a missing or misnamed camera was found after the
    # connection was made and the control script uploaded.
    opened: dict[str, Camera] = {}
    backend: RobotBackend | None = None
    try:
        for cam in cameras:
            device = open_realsense(cam) if isinstance(cam, CameraConfig) else cam
            if device.name in opened:
                raise ValueError(f"two cameras named {device.name!r}")
            opened[device.name] = device
        if isinstance(robot, URConfig):
            # The robot's settings come from its URConfig (checked there); a kwarg that says
            # otherwise used to win silently: servo_hz=125 on a 500 Hz RTDE link ran the
            # compliance loop at the wrong period, servo_gain=5000 reached servoL unchecked.
            from_config = {
                "servo_hz": ("frequency_hz", robot.frequency_hz),
                "servo_lookahead_s": ("servo_lookahead_s", robot.servo_lookahead_s),
                "servo_gain": ("servo_gain", robot.servo_gain),
                "continuity_input": ("continuity_input", robot.continuity_input),
                "rtde_watchdog_hz": ("rtde_watchdog_hz", robot.rtde_watchdog_hz),
            }
            for kwarg, (field, value) in from_config.items():
                if kwarg in env_kwargs and env_kwargs[kwarg] != value:
                    raise ValueError(f"{kwarg}={env_kwargs[kwarg]!r} contradicts the robot's "
                                     f"URConfig({field}={value!r}); set it in the URConfig")
                env_kwargs[kwarg] = value
            default_tcp = tcp_offset_pose(spec.connector)
            _check_calibration_tcp(calib, robot.tcp_offset or default_tcp)
            backend = URBackend(robot, default_tcp)
            env_kwargs.setdefault("disconnect_on_close", True)
        else:
            backend = robot
            env_kwargs["servo_hz"] = check_servo_rate(robot, env_kwargs.get("servo_hz"))
            # The backend's TCP, where it says (the twin, a connected URBackend, a FaultInjector
            # around either): a calibration of another TCP passed on all but a URConfig.
            if getattr(robot, "tcp_offset", None) is not None:
                _check_calibration_tcp(calib, robot.tcp_offset)
            clock = getattr(robot, "clock", None)
            if clock is not None:  # a twin keeps its own (simulated) time
                env_kwargs.setdefault("clock", clock)
        env = RealInsertionEnv(
            spec,
            backend,
            socket_pose=np.asarray(socket_pose, dtype=np.float64),
            cameras=opened,
            safety=safety,
            ft_bias=ft_bias,
            **env_kwargs,
        )
    except BaseException:
        for device in opened.values():
            device.close()
        if backend is not None and backend is not robot:  # the connection this call opened:
            # a refused kwarg (a start height outside the workspace, ...) used to leave it
            # open, its script running
            with contextlib.suppress(Exception):
                backend.disconnect()
        raise
    return TimeLimit(env, max_episode_steps or spec.max_episode_steps)


def make_twin(
    env_id: str,
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    camera_size: tuple[int, int] | None = None,
    sim_kwargs: dict[str, Any] | None = None,
    twin_kwargs: dict[str, Any] | None = None,
    **make_kwargs: Any,
) -> gym.Env:
    """`make` on a digital twin of the cell (no hardware): the robot is
    `real.twin.DigitalTwinRobot` on the simulated task, the cameras are simulated RealSense
    streams through pyrealsense2's software_device (native `camera_size` (height, width);
    default: 120x160, or the smallest multiple of it that covers `image_size`).
    Without `socket_pose`/`calibration` the twin's true socket pose is used (a perfect
    calibration). The twin is `env.unwrapped.robot`."""
    from real.twin import DigitalTwinRobot, TwinCameraFeed

    # The twin's control period is the env's servo period: servo_hz=125 alone ran a 125 Hz
    # compliance loop on a twin that integrated 2 ms (500 Hz) per waitPeriod, a quarter of the
    # time each servoL asked for. (RealInsertionEnv checks servo_hz against control_hz too.)
    twin_kwargs = dict(twin_kwargs or {})
    servo_hz = check_range("servo_hz", make_kwargs.get("servo_hz", 500.0), 1.0,
                           max(SERVO_RATES_HZ))
    if twin_kwargs.setdefault("frequency_hz", servo_hz) != servo_hz:
        raise ValueError(f"twin_kwargs frequency_hz={twin_kwargs['frequency_hz']!r} contradicts "
                         f"servo_hz={servo_hz!r}; give one of them")
    if camera_size is None:  # image_size=128 was refused at the first reset (a 120x160 stream)
        height, width = check_image_size(make_kwargs.get("image_size", 64))
        scale = max(1, math.ceil(height / 120), math.ceil(width / 160))
        camera_size = (120 * scale, 160 * scale)
    twin = DigitalTwinRobot(env_id, seed=seed, **twin_kwargs, **(sim_kwargs or {}))
    feeds = [TwinCameraFeed(twin, name, camera_size[1], camera_size[0]) for name in cameras]
    if make_kwargs.get("socket_pose") is None and make_kwargs.get("calibration") is None:
        make_kwargs["socket_pose"] = twin.socket_pose()
    make_kwargs.setdefault("continuity_input", twin.continuity_input)
    return make(env_id, robot=twin, cameras=[f.camera() for f in feeds], **make_kwargs)


class CalibrationTcpError(ValueError):
    """The calibration measured its socket pose with another TCP than the robot is set to."""


def _check_calibration_tcp(calib: Calibration | None, tcp: Sequence[float]) -> None:
    """ValueError, before connecting, when the calibration measured its socket pose with
    another TCP than the robot is set to: the pose is where that TCP was, so every depth read
    off by the difference (10 mm longer: a plug 2 mm in scored a success; shorter: a seated
    plug pressed at 190 N all episode, never a success)."""
    if calib is None or calib.tcp_offset is None:
        return
    if not np.allclose(calib.tcp_offset, tcp, rtol=0.0, atol=1e-6):
        offset = ",".join(f"{v:g}" for v in calib.tcp_offset)
        raise CalibrationTcpError(
            f"the calibration measured the socket with TCP offset {list(calib.tcp_offset)}, "
            f"and this robot is set to {list(tcp)}: calibrate again with this TCP, or run with "
            f"the calibration's (URConfig(tcp_offset=...), --tcp-offset {offset})")
