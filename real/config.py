"""Configuration of the real cell: robot connection, cameras and safety limits (SI units)."""

from __future__ import annotations

from dataclasses import dataclass

from envs.tasks import DYNAMICS_V1


@dataclass(frozen=True)
class URConfig:
    """How to reach and set up a Universal Robots arm through ur_rtde.

    host: controller IP. frequency_hz: RTDE and control-loop rate, 500 on e-Series, 125 on CB3.
    tcp_offset: flange-to-TCP pose [m, rad] (flange frame) put on the controller with setTcp;
    None keeps the task's simulated offset (the TCP at the plug's mating face, along flange z).
    payload_kg / payload_cog_m: gripper + plug mass and centre of gravity (flange frame) for
    setPayload; None keeps what the pendant has. continuity_input: digital input (0-7 standard,
    8-15 configurable, 16-17 tool) wired to the connector's electrical continuity; None measures
    success by insertion depth from the calibrated socket pose. servo_lookahead_s and
    servo_gain: servoL smoothing (0.03-0.2 s) and proportional gain (100-2000).
    rtde_watchdog_hz: minimum rate of commands the controller accepts before it halts the arm
    (ur_rtde setWatchdog), armed at the environment's first reset; every control cycle kicks it.
    """

    host: str
    frequency_hz: float = 500.0
    tcp_offset: tuple[float, float, float, float, float, float] | None = None
    payload_kg: float | None = None
    payload_cog_m: tuple[float, float, float] | None = None
    continuity_input: int | None = None
    servo_lookahead_s: float = 0.1
    servo_gain: float = 300.0
    rtde_watchdog_hz: float = 5.0

    def __post_init__(self) -> None:
        if self.frequency_hz not in (125.0, 500.0):
            raise ValueError(
                f"frequency_hz must be 500 (e-Series) or 125 (CB3), got {self.frequency_hz}"
            )
        if not 0.03 <= self.servo_lookahead_s <= 0.2:
            raise ValueError(
                f"servo_lookahead_s must be in [0.03, 0.2], got {self.servo_lookahead_s}"
            )
        if not 100 <= self.servo_gain <= 2000:
            raise ValueError(f"servo_gain must be in [100, 2000], got {self.servo_gain}")
        if self.continuity_input is not None and not 0 <= self.continuity_input <= 17:
            raise ValueError(f"continuity_input must be in 0..17, got {self.continuity_input}")


@dataclass(frozen=True)
class CameraConfig:
    """One RealSense camera: `name` is the observation key ("wrist" or "side"), `serial` picks
    the device (None: the only one connected). width/height/fps: the native color stream.
    timeout_ms per wait and retries before a frame timeout is an error."""

    name: str
    serial: str | None = None
    width: int = 640
    height: int = 480
    fps: int = 30
    timeout_ms: int = 200
    retries: int = 3


#: The force limit sits this far above the most the impedance controller can push (v1: 100 N,
#: itself 1.67x the largest documented insertion force, 60 N). A policy may legitimately press
#: with anything up to the controller's limit (it does in simulation), so a lower trip would stop
#: insertions that the task needs; the trip catches what the controller did not command:
#: impacts, collisions and runaway motion.
SAFETY_FORCE_FACTOR = 1.2


@dataclass(frozen=True)
class SafetyConfig:
    """Limits enforced between the policy and the robot; all on by default.

    The workspace box is in the socket frame: the TCP frame at the calibrated seated pose, z
    pointing into the socket (so the approach side is z < 0). Every command sent to the robot
    lies inside it and within `max_tilt_rad` of the socket orientation.

    | field | default | meaning |
    |---|---|---|
    | workspace_min_m | (-0.03, -0.03, -0.1) | box corner [m], socket frame |
    | workspace_max_m | (0.03, 0.03, 0.003) | box corner [m], socket frame |
    | max_tilt_rad | 0.25 | largest rotation from the socket orientation [rad] |
    | max_step_m | 0.01 | per policy step translation cap on the delta [m] |
    | max_step_rad | 0.05 | per policy step rotation cap on the delta [rad] |
    | max_speed_m_s | 0.1 | TCP command speed cap [m/s] |
    | max_angular_speed_rad_s | 0.5 | TCP command angular speed cap [rad/s] |
    | force_limit_n | 120 | zeroed F/T force magnitude that stops and retracts [N] |
    | torque_limit_nm | 4 | zeroed F/T torque magnitude that stops and retracts [N m] |
    | wrench_filter_s | 0.01 | time constant of the low-pass on the wrench those limits see [s] |
    | retract_m | 0.005 | retreat along the socket axis after a force trip [m] |
    | retract_speed_m_s | 0.01 | speed of that retreat and of resets [m/s] |
    | watchdog_timeout_s | 0.5 | longest gap between two policy steps while servoing [s] |
    | reading_margin_m | 0.02 | a TCP reading further than this outside the box is implausible [m] |
    | reading_margin_rad | 0.1 | ... or further than this outside the tilt cone [rad] |
    | max_reading_jump_m | 0.005 | largest TCP jump between two readings 2 ms apart [m] |
    | max_reading_jump_rad | 0.05 | largest TCP turn between two readings 2 ms apart [rad] |
    | max_reading_age_s | 0.05 | longest time without a new controller timestamp [s] |

    The reading checks (`real.safety.SafeRobot.measure`): a TCP pose that is not six finite
    numbers, lies outside the box or cone by more than the margins, jumps from the previous
    valid reading by more than `max_reading_jump_m` plus `READING_SPEED_BOUND_M_S` times the
    time between them, or comes with a controller timestamp that went back or has not advanced
    for `max_reading_age_s` (50 ms: 25 periods at 500 Hz, room for a non-realtime PC), stops
    the arm; it is never used as a reference for a command.
    """

    workspace_min_m: tuple[float, float, float] = (-0.03, -0.03, -0.1)
    workspace_max_m: tuple[float, float, float] = (0.03, 0.03, 0.003)
    max_tilt_rad: float = 0.25
    max_step_m: float = 0.01
    max_step_rad: float = 0.05
    max_speed_m_s: float = 0.1
    max_angular_speed_rad_s: float = 0.5
    force_limit_n: float = SAFETY_FORCE_FACTOR * DYNAMICS_V1.gains.max_force_n
    torque_limit_nm: float = 4.0
    wrench_filter_s: float = 0.01
    retract_m: float = 0.005
    retract_speed_m_s: float = 0.01
    watchdog_timeout_s: float = 0.5
    reading_margin_m: float = 0.02
    reading_margin_rad: float = 0.1
    max_reading_jump_m: float = 0.005
    max_reading_jump_rad: float = 0.05
    max_reading_age_s: float = 0.05

    def __post_init__(self) -> None:
        for lo, hi in zip(self.workspace_min_m, self.workspace_max_m, strict=True):
            if not lo < hi:
                raise ValueError(
                    f"workspace_min_m must be below workspace_max_m on every axis, got "
                    f"{self.workspace_min_m} and {self.workspace_max_m}"
                )
        for name in (
            "max_tilt_rad",
            "max_step_m",
            "max_step_rad",
            "max_speed_m_s",
            "max_angular_speed_rad_s",
            "force_limit_n",
            "torque_limit_nm",
            "retract_m",
            "retract_speed_m_s",
            "watchdog_timeout_s",
            "reading_margin_m",
            "reading_margin_rad",
            "max_reading_jump_m",
            "max_reading_jump_rad",
            "max_reading_age_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.wrench_filter_s >= 0:
            raise ValueError(f"wrench_filter_s must be >= 0, got {self.wrench_filter_s}")
