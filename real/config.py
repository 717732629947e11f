"""Configuration of the real cell: robot connection, cameras and safety limits (SI units)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from numbers import Real
from typing import Any

from envs.task_options import check_int, check_range
from envs.tasks import DYNAMICS_V1
from real.kinematics import CB3_MODELS, UR_DH, WRENCH_REFERENCES

#: The control rates of UR arms over RTDE [Hz]: 500 on e-Series, 125 on CB3.
SERVO_RATES_HZ = (125.0, 500.0)
#: servoL's lookahead time [s] and proportional gain, the ranges the UR controller accepts.
SERVO_LOOKAHEAD_RANGE_S = (0.03, 0.2)
SERVO_GAIN_RANGE = (100.0, 2000.0)
#: The slowest RTDE watchdog accepted [Hz]: the arm halts at most 1 s after commands stop.
#: A lower rate (0.001 Hz: 17 minutes) is no watchdog at all.
MIN_WATCHDOG_HZ = 1.0
#: The longest reach of a Universal Robots arm (UR20: 1.75 m) with margin [m]. A socket pose
#: or TCP offset farther out is a number in the wrong unit (mm for m) or frame.
MAX_REACH_M = 2.0
#: The heaviest UR payload (UR30: 30 kg) with margin [kg].
MAX_PAYLOAD_KG = 35.0
#: Digital inputs of a UR controller: 0-7 standard, 8-15 configurable, 16-17 tool.
DIGITAL_INPUTS = range(18)


def check_vector(name: str, value: Any, n: int, max_norm: float | None = None) -> tuple:
    """`value` as a tuple of `n` finite floats (the first three at most `max_norm` long)."""
    try:
        items = list(value)
    except TypeError:
        items = None
    if items is None or len(items) != n or not all(
        isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in items
    ):
        raise ValueError(f"{name} must be {n} finite numbers, got {value!r}")
    out = tuple(float(v) for v in items)
    if max_norm is not None and math.hypot(*out[:3]) > max_norm:
        raise ValueError(f"{name} {out} lies {math.hypot(*out[:3]):g} m out, more than "
                         f"{max_norm:g} m: implausible (millimetres given as metres?)")
    return out


#: The largest angle a pose's rotation vector (its last three numbers) may hold [rad]: a UR
#: controller's are at most pi; 90 or 179.99 is degrees.
MAX_ROTVEC_RAD = math.pi + 1e-3


def check_pose_rotation(name: str, pose: tuple | list) -> None:
    """ValueError unless the rotation vector `pose[3:6]` turns by at most pi (in radians)."""
    angle = math.hypot(*(float(v) for v in pose[3:6]))
    if angle > MAX_ROTVEC_RAD:
        raise ValueError(f"{name}'s rotation vector {tuple(pose[3:6])} turns {angle:g} rad, "
                         f"more than pi: implausible (degrees given as radians?)")


def check_continuity_input(value: Any) -> int | None:
    """None, or a digital input number of the controller (`DIGITAL_INPUTS`)."""
    if value is None:
        return None
    return check_int("continuity_input", value, DIGITAL_INPUTS.start, DIGITAL_INPUTS.stop - 1)


def check_servo(servo_lookahead_s: Any, servo_gain: Any) -> None:
    """servoL's lookahead [s] and gain within what the UR controller accepts."""
    check_range("servo_lookahead_s", servo_lookahead_s, *SERVO_LOOKAHEAD_RANGE_S)
    check_range("servo_gain", servo_gain, *SERVO_GAIN_RANGE)


def check_watchdog_hz(value: Any, servo_hz: float) -> float:
    """The RTDE watchdog's minimum command rate [Hz], in [MIN_WATCHDOG_HZ, servo_hz]."""
    return check_range("rtde_watchdog_hz", value, MIN_WATCHDOG_HZ, servo_hz)


#: A host name as RFC 1123 spells it: dot-separated labels of letters, digits and hyphens.
_HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_robot_host(host: object) -> str:
    """``host`` if it can name one UR controller: an IP address that is not unspecified,
    multicast or broadcast, or a host name. ur_rtde took "999.1.1.1", "192.168.1.10:99999" and
    "224.0.0.1" to the network and failed there in two lines ("Host not found", "Could not
    connect")."""
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"host must be the controller's IP address or name, got {host!r}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host) or host.replace(".", "").isdigit():
            raise ValueError(f"host must be the controller's IP address or name (no port), "
                             f"got {host!r}") from None
        return host
    if address.is_unspecified or address.is_multicast or address == ipaddress.ip_address(
            "255.255.255.255"):
        raise ValueError(f"host {host} is not one controller's address (unspecified, multicast "
                         f"or broadcast)")
    return host


def check_model_rate(model: str, frequency_hz: float) -> None:
    """ValueError for a CB3 model (`real.kinematics.CB3_MODELS`) above 125 Hz, which no CB3
    controller's RTDE runs at: a CB3 left at the 500 Hz default failed at the output setup, as
    if the arm were unreachable (real21)."""
    if model in CB3_MODELS and frequency_hz > 125.0:
        raise ValueError(f"a {model} is a CB3 arm, whose RTDE runs at 125 Hz: frequency "
                         f"{frequency_hz:g} Hz is for an e-Series")


@dataclass(frozen=True)
class URConfig:
    """How to reach and set up a Universal Robots arm through ur_rtde.

    host: controller IP. frequency_hz: RTDE and control-loop rate, 500 on e-Series, 125 on CB3.
    model: the arm's model (a key of `real.kinematics.UR_DH`: UR3e, UR5e, UR10e, UR16e, UR20,
    UR30, UR3, UR5, UR10), whose kinematics the safety layer checks the TCP pose readings against.
    tcp_offset: flange-to-TCP pose [m, rad] (flange frame) put on the controller with setTcp;
    None keeps the task's simulated offset (the TCP at the plug's mating face, along flange z).
    payload_kg / payload_cog_m: gripper + plug mass and centre of gravity (flange frame) for
    setPayload; None keeps what the pendant has. continuity_input: digital input (0-7 standard,
    8-15 configurable, 16-17 tool) wired to the connector's electrical continuity; None measures
    success by insertion depth from the calibrated socket pose. servo_lookahead_s and
    servo_gain: servoL smoothing (0.03-0.2 s) and proportional gain (100-2000).
    rtde_watchdog_hz: minimum rate of commands the controller accepts before it halts the arm
    (ur_rtde setWatchdog), armed at the environment's first reset; every control cycle kicks it;
    1 Hz to `frequency_hz`. wrench_reference: "flange" or "tcp", the point the controller's
    wrench carries its torque about; None: the model's (`real.kinematics.wrench_reference`:
    e-Series the flange, CB3 the TCP); "tcp" for an e-Series whose wrench comes from an
    external sensor through a URCap, which UR's driver reports at the TCP (its issue 1849).
    Every number is checked here, before anything reaches the arm:
    tcp_offset within 1 m of the flange, payload_kg in [0, 35], payload_cog_m (with a
    payload_kg) within 1 m; a NaN, inf or out-of-range value is a ValueError naming the field.
    """

    host: str
    frequency_hz: float = 500.0
    model: str = "UR5e"
    tcp_offset: tuple[float, float, float, float, float, float] | None = None
    payload_kg: float | None = None
    payload_cog_m: tuple[float, float, float] | None = None
    continuity_input: int | None = None
    servo_lookahead_s: float = 0.1
    servo_gain: float = 300.0
    rtde_watchdog_hz: float = 5.0
    wrench_reference: str | None = None

    def __post_init__(self) -> None:
        check_robot_host(self.host)
        if self.model not in UR_DH:
            raise ValueError(f"model must be one of {', '.join(UR_DH)}, got {self.model!r}")
        if self.frequency_hz not in SERVO_RATES_HZ:
            raise ValueError(
                f"frequency_hz must be 500 (e-Series) or 125 (CB3), got {self.frequency_hz}"
            )
        check_model_rate(self.model, self.frequency_hz)
        check_servo(self.servo_lookahead_s, self.servo_gain)
        check_continuity_input(self.continuity_input)
        # Unchecked, 0 or a negative rate reached setWatchdog on the arm, and 0.001 Hz armed
        # a watchdog that waits 17 minutes.
        check_watchdog_hz(self.rtde_watchdog_hz, self.frequency_hz)
        if self.wrench_reference not in (None, *WRENCH_REFERENCES):
            raise ValueError(f"wrench_reference must be 'flange', 'tcp' or None (the model's), "
                             f"got {self.wrench_reference!r}")
        if self.tcp_offset is not None:
            check_pose_rotation("tcp_offset",
                                check_vector("tcp_offset", self.tcp_offset, 6, max_norm=1.0))
        if self.payload_kg is not None:
            check_range("payload_kg", self.payload_kg, 0.0, MAX_PAYLOAD_KG)
        if self.payload_cog_m is not None:
            if self.payload_kg is None:  # URBackend calls setPayload only with a mass
                raise ValueError("payload_cog_m needs payload_kg (setPayload takes both)")
            check_vector("payload_cog_m", self.payload_cog_m, 3, max_norm=1.0)


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
    timeout_ms: int = 100  # below the RTDE watchdog's period (200 ms at 5 Hz)
    retries: int = 3

    def __post_init__(self) -> None:
        # Here, where the file or flag was read: width=-5 or a NaN timeout reached the SDK.
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a camera's name must be a non-empty string, got {self.name!r}")
        for field, high in (("width", 4096), ("height", 4096), ("fps", 300),
                            ("timeout_ms", 10_000), ("retries", 100)):
            check_int(f"camera {self.name}: {field}", getattr(self, field), 1, high)


#: The largest extent of the safety workspace from the socket on any axis [m].
MAX_WORKSPACE_M = 0.5
#: The most each `SafetyConfig` limit may be: beyond it the limit no longer limits anything a
#: UR arm in an insertion cell can do (units as in the field names).
SAFETY_MAXIMA = {
    "max_tilt_rad": math.pi / 2,
    "max_step_m": 0.05,
    "max_step_rad": 0.5,
    "max_speed_m_s": 1.0,
    "max_angular_speed_rad_s": math.pi,
    "force_limit_n": 500.0,
    "torque_limit_nm": 50.0,
    "wrench_filter_s": 0.1,
    "retract_m": 0.05,
    "retract_speed_m_s": 0.1,
    "watchdog_timeout_s": 60.0,
    "reading_margin_m": 0.1,
    "reading_margin_rad": 0.5,
    "max_reading_jump_m": 0.05,
    "max_reading_jump_rad": 0.5,
    "max_reading_age_s": 1.0,
    "max_kinematic_drift_m": 0.05,
    "max_kinematic_drift_rad": 0.5,
    "max_tool_offset_error_m": 0.2,
    "max_tool_offset_error_rad": 0.5,
}

#: Smallest speeds accepted [m/s, rad/s]: 10 um/s (a mm/s limit typed in m/s) made a reset's
#: 50 mm retreat creep for 83 minutes of servoing. At these floors it takes under a minute.
SAFETY_MINIMA = {
    "max_speed_m_s": 0.001,
    "max_angular_speed_rad_s": 0.01,
    "retract_speed_m_s": 0.001,
}

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
    | retract_speed_m_s | 0.01 | speed of that retreat and of a reset's pull-out [m/s] |
    | watchdog_timeout_s | 0.5 | longest gap between policy steps [s] (1/rtde_watchdog_hz first) |
    | reading_margin_m | 0.02 | a TCP reading further than this outside the box is implausible [m] |
    | reading_margin_rad | 0.1 | ... or further than this outside the tilt cone [rad] |
    | max_reading_jump_m | 0.005 | a reading's move from the last valid one past its allowance [m] |
    | max_reading_jump_rad | 0.05 | ... and turn [rad] |
    | max_reading_age_s | 0.05 | longest time without a new controller timestamp [s] |
    | max_kinematic_drift_m | 0.008 | drift of the TCP reading from the joints' kinematics [m] |
    | max_kinematic_drift_rad | 0.02 | ... and its turn [rad] |
    | max_tool_offset_error_m | 0.015 | the TCP offset readings imply, off the one set [m] |
    | max_tool_offset_error_rad | 0.05 | ... and its turn [rad] |

    The reading checks (`real.safety.SafeRobot.measure`): a TCP pose that is not six finite
    numbers, lies outside the box or cone by more than the margins, jumps from the previous
    valid reading by more than `max_reading_jump_m` plus the travel commanded since (while
    servoing) or twice `max_speed_m_s` times the time since (while stopped:
    `real.safety.READING_SPEED_FACTOR`; likewise for turns), or comes with a
    controller timestamp that went back or has not advanced for `max_reading_age_s` (50 ms: 25
    periods at 500 Hz, room for a non-realtime PC), stops the arm; it is never used as a
    reference for a command. So does a TCP pose that has drifted by more than
    `max_kinematic_drift_m` / `_rad` from where the joint readings put it, relative to the
    session's first valid reading (forward kinematics of the arm's model, `real.kinematics`):
    the check catches a pose field that walks, or jumps while the arm is stopped, below the
    other limits. A genuine reading drifts too, as far as the arm's factory calibration moves
    its true kinematics from the nominal ones: with every length off by 1 mm and every angle
    by 1 mrad (standard deviations), at most 2.3 mm and 2.4 mrad over the default box and cone
    on any of the nine models; with 3 mm and 3 mrad, 7.5 mm and 9.8 mrad
    (`python -m benchmark.bench_kinematic_drift`, 20 arms x 100 poses each), under the 8 mm
    and 20 mrad defaults; two published factory calibrations (a UR5e, a CB3 UR5) drift 0.44 and
    0.68 mm, 1.6 and 3.0 mrad (a review's measurement, 2026-12-06). Where the backend says the
    TCP offset it set (`tcp_offset`: `URBackend`, the twin), every reading's implied
    flange-to-TCP transform must also lie within `max_tool_offset_error_m` / `_rad` of it:
    absolute, so it holds the whole nominal-kinematics error (those two calibrations: 1.4 and
    1.9 mm; synthetic arms at 1 mm / 1 mrad per parameter: up to 8 mm, at 3 mm / 3 mrad up to
    31 mm, within 0.3 rad of a tool-down seat). It catches a wrong `URConfig.model` (57-190 mm
    off on a UR5e read as another model) and offsets present from the session's first reading,
    which the drift check takes as its reference. Tighten both for an arm whose calibration
    you know.

    Every limit must be a finite number above 0 (`wrench_filter_s`: 0 or more; the speeds at
    least their entry of `SAFETY_MINIMA`, 1 mm/s and 0.01 rad/s) and at most its entry of
    `SAFETY_MAXIMA` (the box corners within `MAX_WORKSPACE_M` of the socket): a
    limit so large that it limits nothing (inf, or a 10 s wrench filter that hides every impact)
    is refused, not honoured.
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
    max_kinematic_drift_m: float = 0.008
    max_kinematic_drift_rad: float = 0.02
    max_tool_offset_error_m: float = 0.015
    max_tool_offset_error_rad: float = 0.05

    def __post_init__(self) -> None:
        for name in ("workspace_min_m", "workspace_max_m"):
            corner = check_vector(name, getattr(self, name), 3)
            if max(abs(v) for v in corner) > MAX_WORKSPACE_M:
                raise ValueError(f"{name} must lie within {MAX_WORKSPACE_M} m of the socket on "
                                 f"every axis, got {getattr(self, name)}")
        for lo, hi in zip(self.workspace_min_m, self.workspace_max_m, strict=True):
            if not lo < hi:
                raise ValueError(
                    f"workspace_min_m must be below workspace_max_m on every axis, got "
                    f"{self.workspace_min_m} and {self.workspace_max_m}"
                )
        # Finite and below a plausible maximum: inf (or 1e9) used to pass "> 0" and switched a
        # check off without a word (force_limit_n=inf, wrench_filter_s=inf: no force trip ever;
        # max_tilt_rad >= pi: no orientation cone; max_reading_age_s=inf: no stale check).
        for name, high in SAFETY_MAXIMA.items():  # > 0 but a filter time (0: unfiltered)
            low = SAFETY_MINIMA.get(name, 0.0)
            check_range(name, getattr(self, name), low, high,
                        open_low=low == 0.0 and name != "wrench_filter_s")
