"""Calibration of the cell: the socket pose (teach or touch-off) and the F/T bias, as JSON.

The socket pose is the TCP pose, in the robot base frame [m, rad], with the plug fully seated:
the origin of the socket frame in which the safety workspace, the start poses and the insertion
depth are defined. Two ways to find it:
- teach: freedrive, the operator seats the plug by hand, the pose is read;
- touch: the operator holds the plug aligned just above the opening, then the robot descends
  slowly along the tool axis under the safety layer until the contact force shows the plug has
  bottomed out; that pose is the seated one, once a sideways probe found the socket's walls
  around the plug (`free_direction`).
The F/T bias is the mean reading (base frame) with the plug free in the air; robots without
zeroFtSensor (CB3) read each reset's free-air reading as the episode's bias and compare it
with this one (`real.env.FT_DRIFT_WARN`).

The touch-off arms the controller's RTDE watchdog before the robot moves on its own, and every
control period kicks it, so that a calibration killed, hung or crashed mid-descent stops the
arm within its period (it used to hold the plug pressed into the socket, servoing, for as long
as nobody stopped the program on the pendant). Freedrive at the operator's prompts is not
watched: a calibration killed there leaves freedrive on until the program is stopped on the
pendant (the operator's hands are on the arm).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from envs.connectors import MM
from envs.tasks import TaskSpec
from real.config import (
    MAX_REACH_M,
    SafetyConfig,
    URConfig,
    check_pose_rotation,
    check_vector,
    check_watchdog_hz,
)
from real.poses import pos_mat_to_pose, pose_to_pos_mat, rotation_angle
from real.robot import RobotBackend, check_servo_rate
from real.safety import SafeRobot

#: Readings a calibration pose is taken from (one per control period), and how far apart
#: they may lie [m, rad] for an arm at rest.
POSE_READINGS = 10
POSE_SPREAD = (0.0005, 0.005)
#: How far outside the touch-off's lateral corridor a reading may lie [m]: the default 20 mm
#: let the descent run 14 mm beside a glitched approach reading, pressing on the socket wall.
TOUCH_READING_MARGIN_M = 0.003
#: How much less than the socket's depth (`TaskSpec.seat_depth_mm`) a touch-off's descent may
#: be [m]: the arm's compliance and a plug a little tilted. Less, it did not go in.
TOUCH_DEPTH_SLACK_M = 0.001
#: A touch-off's check that the socket holds the plug where it stopped: lifted this much off
#: the stop [m] (no press, no friction on a board), the plug is sent sideways in four
#: directions at `PROBE_SPEED_M_S`, each twice the connector's largest clearance plus
#: `PROBE_BEYOND_PLAY_M` [m], or until the force against the move exceeds `PROBE_FORCE_N` (a
#: stiff arm against a wall). Held there `PROBE_SETTLE_S`, a plug that followed to within
#: half of `PROBE_BEYOND_PLAY_M` is free: on the board or the rim. (A compliant arm, as the
#: twin's impedance, presses a wall with a few N only, but stays behind its target.)
PROBE_LIFT_M = 0.0003
PROBE_FORCE_N = 5.0
PROBE_BEYOND_PLAY_M = 0.0006
PROBE_SPEED_M_S = 0.003
PROBE_SETTLE_S = 0.1
#: How far a touch-off may descend beyond the plug's depth in the socket [m]: the few mm above
#: the mouth it starts at, and room for the servo target to run past the seat and press.
TOUCH_TRAVEL_PAST_MOUTH_M = 0.03
#: How far above the socket's mouth [m] `teach`'s "lift the plug clear" must leave its face.
LIFT_CLEARANCE_M = 0.002

#: Format 2 records the TCP offset the socket pose was measured with; format 1 files (without
#: it) are still read.
CALIBRATION_FORMAT = 2
READ_FORMATS = (1, 2)
METHODS = ("teach", "touch")
#: The largest F/T reading a calibration may hold with the plug free [N, N m]: the gripper's
#: weight and the sensor's drift are tens of N; a bias beyond would offset every wrench the
#: policy and the safety layer see on robots without zeroFtSensor.
MAX_FT_BIAS_N, MAX_FT_BIAS_NM = 500.0, 50.0


class CalibrationError(RuntimeError):
    """The procedure ended without a socket pose (no contact where it was expected)."""


@dataclass(frozen=True)
class Calibration:
    """What `insertbench real calibrate` records. socket_pose: seated TCP pose, base frame
    [m, rad]; ft_bias: F/T reading with the plug free [N, N m], base frame; tcp_offset: the
    TCP (flange to plug face, [m, rad]) the robot measured that pose with (None: not recorded,
    a format 1 file). The socket pose is where that TCP was: under another TCP the env reads
    every depth off by the difference (`real.make` refuses the mix)."""

    task: str
    socket_pose: tuple[float, ...]
    ft_bias: tuple[float, ...]
    method: str
    robot: str
    created_utc: str
    tcp_offset: tuple[float, ...] | None = None
    format: int = CALIBRATION_FORMAT

    def __post_init__(self) -> None:
        # Checked here, not only on load: calibrate() wrote a NaN force reading (bare NaN, not
        # JSON) or a 1e4 N bias to a file that only the next `validate` refused.
        for key in ("socket_pose", "ft_bias"):
            values = getattr(self, key)
            if len(values) != 6 or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{key} must be a list of 6 numbers, got {list(values)!r}")
            if not all(np.isfinite(values)):
                raise ValueError(f"{key} must be finite, got {list(values)!r}")
        check_pose_rotation("socket_pose", self.socket_pose)
        # What the file says of itself: method "magic", robot 123 and a null date loaded.
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        for key in ("task", "robot", "created_utc"):
            if not isinstance(getattr(self, key), str):
                raise ValueError(f"{key} must be a string, got {getattr(self, key)!r}")
        if self.tcp_offset is not None:
            check_pose_rotation("tcp_offset",
                                check_vector("tcp_offset", self.tcp_offset, 6, max_norm=1.0))
        check_ft_bias(self.ft_bias)
        with np.errstate(over="ignore"):  # 1e308 m is refused below, without a warning first
            reach = float(np.linalg.norm(np.asarray(self.socket_pose[:3], dtype=np.float64)))
        if reach > MAX_REACH_M:  # refused by the file's name, not later by `real.make`
            raise ValueError(f"socket_pose lies {reach:g} m from the robot base, beyond a UR "
                             f"arm's reach ({MAX_REACH_M:g} m): implausible (millimetres "
                             "written as metres?)")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no calibration at {path}; run `insertbench real calibrate` first"
            )
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            raise ValueError(f"{path} is not a calibration file (not JSON: {err}); calibrate "
                             "again") from None
        found = data.get("format") if isinstance(data, dict) else None
        if type(found) is not int or found not in READ_FORMATS:  # true == 1 was taken
            raise ValueError(
                f"{path} has calibration format {found!r}, expected one of "
                f"{list(READ_FORMATS)}; calibrate again"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        if found == 1 and data.get("tcp_offset", None) is None:  # written before it existed
            data["tcp_offset"] = None  # (or saved again since with null)
        if set(data) != fields:
            raise ValueError(f"{path}: a calibration holds the keys {sorted(fields)}; missing "
                             f"{sorted(fields - set(data))}, unknown {sorted(set(data) - fields)}")
        for key in ("socket_pose", "ft_bias", "tcp_offset"):
            if key == "tcp_offset" and data.get(key) is None:
                continue
            if not isinstance(data[key], list):
                raise ValueError(f"{path}: {key} must be a list of 6 numbers, got "
                                 f"{data[key]!r}")
            try:  # an integer too large for a float: OverflowError
                data[key] = tuple(float(v) if isinstance(v, int | float)
                                  and not isinstance(v, bool) else v for v in data[key])
            except OverflowError:
                raise ValueError(f"{path}: {key} holds a number too large for a float; "
                                 "calibrate again") from None
        try:
            return cls(**data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}; calibrate again") from None


def per_period(robot: RobotBackend, read: Callable[[], Any], periods: int) -> list[Any]:
    """`read()` once in each of `periods` control periods; ConnectionError when the
    controller's timestamp did not move over them: a lost or stalled link, over which ur_rtde's
    receive interface goes on returning its last readings (read outside `SafeRobot`, whose
    checks catch that in an episode). Ten frozen poses agreed perfectly: a teach calibration
    over a link lost at its prompt wrote the start pose, 50 mm above the seat, as the seat."""
    readings, stamps = [], []
    for _ in range(periods):
        t0 = robot.initPeriod()
        readings.append(read())
        stamps.append(float(robot.getTimestamp()))
        robot.kickWatchdog()  # where the touch-off armed it (a no-op where nothing did)
        robot.waitPeriod(t0)
    if periods > 1 and not stamps[-1] > stamps[0]:
        raise ConnectionError(f"the robot's readings did not change over {periods} control "
                              f"periods (controller timestamp {stamps[0]:.3f} s throughout): "
                              "the link to the controller is lost or stalled; reconnect and "
                              "calibrate again")
    return readings


def check_ft_bias(ft_bias: Any) -> np.ndarray:
    """`ft_bias` (6 finite numbers [N, N m]) as an array; ValueError beyond `MAX_FT_BIAS_N` /
    `MAX_FT_BIAS_NM`, which no free plug reads (1e12 N was taken, from a file and from
    ``--env ft_bias=...``)."""
    bias = np.asarray(check_vector("ft_bias", ft_bias, 6), dtype=np.float64)
    force, torque = float(np.abs(bias[:3]).max()), float(np.abs(bias[3:]).max())
    if force > MAX_FT_BIAS_N or torque > MAX_FT_BIAS_NM:
        raise ValueError(f"ft_bias reads {force:g} N / {torque:g} N m with the plug free, "
                         f"beyond {MAX_FT_BIAS_N:g} N / {MAX_FT_BIAS_NM:g} N m: implausible "
                         "(another unit, or a faulty sensor?)")
    return bias


def measure_ft_bias(robot: RobotBackend, samples: int = 50) -> np.ndarray:
    """Median F/T reading [N, N m], base frame, over `samples` control periods. The plug must
    be free of contact and the arm still. A median, as a reading at rest is noise about one
    value: a spike of 400 N among the touch-off's 10 samples made the descent press 40 N
    harder unseen (a mean of them), or stop in free air blaming the socket (real27)."""
    readings = per_period(robot, robot.getActualTCPForce, samples)
    return np.median(np.asarray(readings, dtype=np.float64), axis=0)


def tcp_pose_reading(robot: RobotBackend,
                     advice: str = "let go, wait, calibrate again") -> np.ndarray:
    """The TCP pose (base frame) [m, rad] of an arm at rest: the last of `POSE_READINGS`
    readings, one per control period; ValueError unless each is six finite numbers and all lie
    within `POSE_SPREAD` of it, ending in `advice` (read outside `SafeRobot`, whose checks
    need a reference pose: this is where it comes from). One reading used to be taken: a
    single glitch 8 mm into the board was recorded as the seated pose, and every episode then
    pressed on the socket floor."""
    poses = []
    for reading in per_period(robot, robot.getActualTCPPose, POSE_READINGS):
        pose = np.asarray(reading, dtype=np.float64)
        if pose.shape != (6,) or not np.isfinite(pose).all():
            raise ValueError(f"the robot reads a TCP pose that is not six finite numbers: "
                             f"{pose.tolist()}; check the robot's connection and calibrate again")
        poses.append(pose_to_pos_mat(pose))
    last_pos, last_mat = poses[-1]
    moved = max(float(np.linalg.norm(pos - last_pos)) for pos, _ in poses)
    turned = max(rotation_angle(last_mat.T @ mat) for _, mat in poses)
    if moved > POSE_SPREAD[0] or turned > POSE_SPREAD[1]:
        raise ValueError(f"the TCP pose readings of {POSE_READINGS} control periods lie "
                         f"{moved / MM:.2f} mm / {turned:.4f} rad apart (at most "
                         f"{POSE_SPREAD[0] / MM:g} mm / {POSE_SPREAD[1]:g} rad at rest): a "
                         f"glitching reading or an arm still moving; {advice}")
    return pos_mat_to_pose(last_pos, last_mat)


def teach_socket_pose(robot: RobotBackend, prompt: Callable[[str], None]) -> np.ndarray:
    """Freedrive; the operator seats the plug; returns the TCP pose (base frame)."""
    robot.teachMode()
    try:
        prompt("Freedrive is on: seat the plug fully in the socket by hand, let go, press Enter.")
    finally:
        robot.endTeachMode()
    return tcp_pose_reading(robot)


def touch_off_socket_pose(
    robot: RobotBackend,
    task: TaskSpec,
    prompt: Callable[[str], None],
    *,
    servo_hz: float = 500.0,
    speed_m_s: float = 0.005,
    max_travel_m: float | None = None,
    force_threshold_n: float | None = None,
    watchdog_hz: float | None = URConfig.rtde_watchdog_hz,
) -> np.ndarray:
    """Guarded descent along the tool axis from a taught pose above the opening until the
    zeroed contact force along that axis exceeds `force_threshold_n` (default: above any force
    mating can take, max(15, 1.5 x the documented maximum insertion force) N, or max(15, 3 x
    retention) N for a version-0 connector without documented forces): the plug has bottomed
    out. Returns that pose (base frame); the arm goes back up afterwards.

    The descent runs through `SafeRobot` with a workspace of 1 mm beyond the sideways probe
    (`probe_distance_m`) laterally and `max_travel_m` along the tool axis around the taught
    pose (default: the plug's depth in the socket + `TOUCH_TRAVEL_PAST_MOUTH_M`, from a few mm
    above the mouth). At the stop, `free_direction` probes sideways for the socket's walls.

    After the operator's prompt the controller's RTDE watchdog is armed at `watchdog_hz`
    (None: not armed, for a backend without one) and kicked every control period from then on.
    """
    if max_travel_m is None:
        # Fixed at 30 mm, the servo target ran only ~8 mm past a 19 mm Europlug's seat, and
        # the twin's impedance pressed too little to count as bottomed out.
        max_travel_m = task.seat_depth_mm * MM + TOUCH_TRAVEL_PAST_MOUTH_M
    connector = task.connector
    mating_n = (
        1.5 * connector.mating.insertion_n[1]
        if connector.mating is not None
        else 3.0 * connector.retention_force_n
    )
    threshold = force_threshold_n or max(15.0, mating_n)
    robot.teachMode()
    try:
        prompt(
            "Freedrive is on: hold the plug aligned with the socket, its face a few mm above "
            "the opening, let go, press Enter."
        )
    finally:
        robot.endTeachMode()
    if watchdog_hz is not None:  # from here on the robot moves on its own
        robot.setWatchdog(check_watchdog_hz(watchdog_hz, servo_hz))
    approach = tcp_pose_reading(robot)
    pos0, mat0 = pose_to_pos_mat(approach)
    probe_m = probe_distance_m(task)
    side = probe_m + 0.001  # the descent's corridor, and room for the sideways probe
    safety = SafetyConfig(
        workspace_min_m=(-side, -side, -0.002),
        workspace_max_m=(side, side, max_travel_m),
        max_tilt_rad=0.02,
        force_limit_n=threshold + 20.0,
        max_speed_m_s=max(speed_m_s, 0.01),
        reading_margin_m=TOUCH_READING_MARGIN_M,
    )
    dt = 1.0 / servo_hz
    clock = getattr(robot, "clock", time.monotonic)
    safe = SafeRobot(robot, safety, approach, dt, clock=clock)
    bias = measure_ft_bias(robot, samples=10)
    axis = mat0[:, 2]
    touched, unsettled, peak_n, travel_m = None, None, 0.0, 0.0
    for k in range(1, int(max_travel_m / (speed_m_s * dt)) + 1):
        t0 = robot.initPeriod()
        state = safe.read()
        wrench = safe.tool_wrench(state, bias)
        safe.check_wrench(wrench)
        # Along the tool axis, pushing the tool back (-z in the TCP frame): bottomed out. The
        # whole force counted a press on the socket's wall as touching its floor.
        force = float(-wrench[2])
        if force > threshold:
            # Read at rest against the floor, as `teach` does: the one reading taken here saved
            # a 3 mm glitch as the seat, and a plug 4.7 mm short then scored a success (real26).
            try:
                touched = tcp_pose_reading(robot, "calibrate again")
            except (ValueError, ConnectionError) as err:  # after the retreat below
                unsettled = err
            break
        peak_n = max(peak_n, force)
        travel_m = max(travel_m, float(axis @ (state.pos - pos0)))
        safe.servo(pos0 + axis * speed_m_s * dt * k, mat0)
        robot.waitPeriod(t0)
    descended_m = None if touched is None else float(axis @ (pose_to_pos_mat(touched)[0] - pos0))
    deep_enough = (descended_m is not None
                   and descended_m >= task.seat_depth_mm * MM - TOUCH_DEPTH_SLACK_M)
    free = free_direction(robot, safe, touched, bias, dt, probe_m) if deep_enough else None
    safe.move_linear(pos0, mat0, 0.01, check_force=False)
    safe.stop()
    if unsettled is not None:
        raise CalibrationError(f"at the stop, {unsettled}")
    if touched is None:
        # It said "raise max_travel_m", which no command line sets, also where the plug had gone
        # in and the controller could not press harder (the twin's servoL: ~78 N).
        raise CalibrationError(
            f"no contact force above {threshold:.0f} N (bottomed out) within "
            f"{max_travel_m / MM:.0f} mm of descent: the TCP went "
            f"{travel_m / MM:.1f} mm down and pressed at most {peak_n:.0f} N. Start closer to "
            "the socket, or, where the arm cannot press that hard, use --method teach"
        )
    # Landed on the board or the socket's rim (held off the axis), or started inside the
    # socket: the plug stopped short of its seat, and that stop was saved as the seat (a plug
    # resting on the board then scored a success).
    if not deep_enough:
        raise CalibrationError(
            f"the plug stopped {descended_m / MM:.1f} mm below where it was held, short of the "
            f"{task.seat_depth_mm:g} mm it goes into the socket: it landed on the rim or the "
            "board, or started inside the socket. Hold it aligned with the opening, its face a "
            "few mm above it, and run the command again"
        )
    # Held higher above the board than the socket is deep, a plug beside the opening went as
    # far down before landing on the board, and that stop was saved as the seat (real22).
    if free is not None:
        raise CalibrationError(
            f"the plug stopped {descended_m / MM:.1f} mm below where it was held, but moved "
            f"{probe_m / MM:.1f} mm sideways ({free}) without meeting a wall: it is not in the "
            "socket (it landed on the board or the rim). Hold it aligned with the opening, its "
            "face a few mm above it, and run the command again"
        )
    return touched


def probe_distance_m(task: TaskSpec) -> float:
    """How far [m] the touch-off's sideways probe goes before it calls the plug free: twice
    the connector's largest clearance (body, keys, tongue, pins: the plug may rest against the
    opposite wall) plus `PROBE_BEYOND_PLAY_M`."""
    c = task.connector
    play_mm = max(c.clearance_mm, c.key_clearance_mm if c.keys else 0.0,
                  c.tongue.clearance_mm if c.tongue else 0.0,
                  c.pin_clearance_mm if c.pins else 0.0)
    return 2 * play_mm * MM + PROBE_BEYOND_PLAY_M


def free_direction(robot: RobotBackend, safe: SafeRobot, touched: np.ndarray, bias: np.ndarray,
                   dt: float, probe_m: float) -> str | None:
    """The first tool-frame direction ("+x", "-x", "+y", "-y") in which the plug, lifted
    `PROBE_LIFT_M` off its stop at `touched`, follows a target `probe_m` sideways (see
    `PROBE_LIFT_M`); None when a wall holds it in all four. The arm ends at the lifted stop."""
    pos, mat = pose_to_pos_mat(touched)
    lifted = pos - mat[:, 2] * PROBE_LIFT_M
    safe.move_linear(lifted, mat, PROBE_SPEED_M_S, force_bias=bias)
    steps = int(np.ceil(probe_m / (PROBE_SPEED_M_S * dt)))
    settle = int(np.ceil(PROBE_SETTLE_S / dt))
    for name, local in (("+x", (1, 0, 0)), ("-x", (-1, 0, 0)), ("+y", (0, 1, 0)),
                        ("-y", (0, -1, 0))):
        unit = np.asarray(local, dtype=np.float64)  # TCP frame
        moved_m = 0.0
        for k in range(1, steps + settle + 1):
            t0 = robot.initPeriod()
            state = safe.read()
            moved_m = float(unit @ (mat.T @ (state.pos - lifted)))
            wrench = safe.check_wrench(safe.tool_wrench(state, bias))
            if -float(wrench[:3] @ unit) > PROBE_FORCE_N:  # the environment pushes back
                break
            safe.servo(lifted + mat @ unit * probe_m * min(k, steps) / steps, mat)
            robot.waitPeriod(t0)
        safe.move_linear(lifted, mat, PROBE_SPEED_M_S, force_bias=bias)
        if moved_m > probe_m - PROBE_BEYOND_PLAY_M / 2:
            return name
    return None


def check_clear_of_the_socket(robot: RobotBackend, task: TaskSpec, socket_pose: np.ndarray) -> None:
    """CalibrationError unless the plug's face is at least `LIFT_CLEARANCE_M` above the socket's
    mouth (`TaskSpec.seat_depth_mm` above the seated `socket_pose`), along the socket axis.

    The F/T bias is measured next, with the plug meant to be in the air: a plug left seated
    (the operator forgot to lift it) gave a bias of 23 N, where the free plug's is -7 N, and it
    was saved without a word."""
    pos, _ = pose_to_pos_mat(tcp_pose_reading(robot))
    seat_pos, seat_mat = pose_to_pos_mat(socket_pose)
    height_m = -float(seat_mat[:, 2] @ (pos - seat_pos))  # the TCP's z points into the socket
    needed_m = task.seat_depth_mm * MM + LIFT_CLEARANCE_M
    if height_m < needed_m:
        raise CalibrationError(
            f"after 'lift the plug clear' its face is {height_m / MM:.1f} mm above the seat, "
            f"less than the {needed_m / MM:g} mm that clears the socket's mouth by "
            f"{LIFT_CLEARANCE_M / MM:g} mm: the F/T bias would be measured with the plug "
            "touching. Lift it clear and run the command again"
        )


def calibrate(
    robot: RobotBackend,
    task: TaskSpec,
    method: str,
    prompt: Callable[[str], None],
    robot_name: str,
    servo_hz: float | None = None,
    watchdog_hz: float | None = URConfig.rtde_watchdog_hz,
) -> Calibration:
    """Find the socket pose with `method`, then measure the F/T bias with the plug in the air
    (the arm stays where `touch` left it; after `teach` the operator lifts the plug out).
    `servo_hz`: the touch-off's servo rate (None: the backend's, `real.robot.check_servo_rate`).
    `watchdog_hz`: the RTDE watchdog a touch-off arms (`touch_off_socket_pose`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    servo_hz = check_servo_rate(robot, servo_hz)
    if method == "teach":
        socket_pose = teach_socket_pose(robot, prompt)
        robot.teachMode()
        try:
            prompt("Freedrive: lift the plug clear of the socket, let go, press Enter.")
        finally:
            robot.endTeachMode()
        check_clear_of_the_socket(robot, task, socket_pose)
    else:
        socket_pose = touch_off_socket_pose(robot, task, prompt, servo_hz=servo_hz,
                                            watchdog_hz=watchdog_hz)
    bias = measure_ft_bias(robot)
    return Calibration(
        task=task.env_id,
        socket_pose=tuple(float(v) for v in socket_pose),
        ft_bias=tuple(float(v) for v in bias),
        method=method,
        robot=robot_name,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        tcp_offset=getattr(robot, "tcp_offset", None),
    )
