"""The safety layer: the only path from the policy to the robot.

`SafeRobot` wraps a `RobotBackend` and owns every motion command. Each servo target is refused if
it is not finite, then clamped into the workspace box and the orientation cone around the socket
(socket frame, see `SafetyConfig`), then rate-limited to the speed caps relative to the previous
command, or, for the first command after a stop, relative to the last *valid* TCP reading; the
robot's safety state (e-stop, protective stop, safety mode, control script running) is read
before every command. What reaches `backend.servoL` is therefore always inside the limits,
whatever the policy or the compliance law asked for.

Readings are checked as well (`measure`): a TCP pose that is malformed, not finite,
implausibly far outside the workspace, discontinuous with the previous valid reading, or
drifting from where the joint readings put it (forward kinematics, `real.kinematics`), a
controller timestamp that goes back (late, out-of-order data) or has not advanced for
`SafetyConfig.max_reading_age_s` (stale data, a stalled link) trips the layer ("reading"); such
a reading is never used as a reference. Timestamps are only compared with each other, so a
controller clock running at another rate than ours is no fault. A backend call that raises
(a lost RTDE connection) trips it too ("connection"); the controller's own RTDE watchdog then
halts the arm.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from real.config import DIGITAL_INPUTS, MAX_REACH_M, SafetyConfig, check_vector
from real.kinematics import UR_DH, WRENCH_REFERENCES, tool_in_flange, wrench_reference
from real.poses import (
    mat_to_rotvec,
    pos_mat_to_pose,
    pose_to_pos_mat,
    rotation_angle,
    rotvec_to_mat,
)
from real.robot import SAFE_TO_MOVE, SAFETY_MODES, RobotBackend

#: While the arm is stopped (between episodes, after a stop), how much faster than the speed
#: caps (`SafetyConfig.max_speed_m_s`, `max_angular_speed_rad_s`) a genuine TCP reading may
#: move over the time since the last valid one: deceleration, or an operator's hand. While
#: servoing, a reading may move only as far as the commands since the last valid one (plus
#: `max_reading_jump_m`). The bound was the fastest a UR can move, 2 m/s, at all times, which
#: passed a reading 20 mm off the truth after a 20 ms pause of the policy (45 mm allowed); it
#: then became the reference of the first command after a stop.
READING_SPEED_FACTOR = 2.0

#: Largest plausible readings: TCP speed [m/s, rad/s] (a UR's joints turn at most 3.1 rad/s)
#: and wrench [N, N m] (past any F/T sensor a UR carries). A finite 1e39 m/s passed, and
#: reached the policy as inf in the float32 observation.
PLAUSIBLE_SPEED = (5.0, 12.0)
PLAUSIBLE_WRENCH = (5000.0, 500.0)
#: How far the controller's timestamp may run ahead of our clock since its last new value [s]:
#: one reading 1e6 s ahead was taken, and every genuine one after it read as "went back".
STAMP_LEAD_S = 1.0

#: New controller cycles in a row with a bit-identical F/T reading, while the arm is driven (the
#: controller reports the TCP moving faster than `FROZEN_POSE_SPEED_M_S`, or the last servo
#: target lies `FROZEN_WRENCH_PRESS_M` or more from the TCP: a push held against contact), that
#: make it a frozen one (a dead sensor, a stuck RTDE field): 0.1 s at 500 Hz. A real sensor's
#: noise changes its last digits every cycle, and the twin's solver while it is driven (longest
#: run: 2 reads, one cycle); a frozen or all-zero reading was accepted, and the force limit
#: never tripped. Held still in free air the twin's wrench settles bit-identical: a policy
#: holding still tripped it, which `validate` takes for the cell's failure (diff33); counted
#: only while moving, a dead sensor went unseen in a 30 N press against the board (diff34).
FROZEN_WRENCH_CYCLES = 50
#: How far the servo target may lie from the TCP before a still arm counts as pushing [m]: the
#: impedance law's push grows with it (a 30 N press held the target 6 mm into the board).
FROZEN_WRENCH_PRESS_M = 0.0005
#: Likewise a TCP pose reading bit-identical for this many new cycles while the controller
#: reports the TCP moving faster than `FROZEN_POSE_SPEED_M_S` [m/s]: a stuck pose field passed
#: every check while the arm moved 8.5 mm under the policy, and after the next stop the first
#: command was referenced to it (an 8.4 mm jump in one period). At rest a pose may repeat.
FROZEN_POSE_CYCLES = 50
FROZEN_POSE_SPEED_M_S = 0.002

#: Largest joint angle reading [rad]: a UR joint turns +-360 degrees (margin for rounding).
MAX_JOINT_RAD = 2 * np.pi + 0.01

#: Axial pull on the tool [N] (into the socket) above which a force trip does not retract.
RETRACT_TENSION_N = 5.0
#: How long a refusal (a servoL refused, the script ended) waits for the receive interface to
#: report a stop behind it [s]: a few of its packages even at a CB3's 125 Hz.
STOP_REPORT_WAIT_S = 0.05

TRIP_KINDS = (
    "force",
    "watchdog",
    "protective_stop",
    "emergency_stop",
    "safety_mode",
    "robot_refused",
    "reading",
    "connection",
)


def _moving(speed: np.ndarray) -> bool:
    """Whether a TCP speed reading [m/s, rad/s] says the arm moves (`FROZEN_POSE_SPEED_M_S`)."""
    return float(np.linalg.norm(speed[:3])) > FROZEN_POSE_SPEED_M_S


class SafetyTrip(RuntimeError):
    """The safety layer stopped the robot; `kind` is one of `TRIP_KINDS`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnsafeCommandError(ValueError):
    """A command that is not a finite pose was refused before reaching the robot."""


@dataclass(frozen=True)
class RobotState:
    """One reading of the robot, base frame: TCP position [m], rotation matrix, wrench of the
    environment on the tool [N, N m] (not zeroed), TCP velocity [m/s, rad/s], digital inputs."""

    pos: np.ndarray
    mat: np.ndarray
    wrench: np.ndarray
    speed: np.ndarray
    input_bits: int


class SafeRobot:
    """Checked access to a robot backend; see the module docstring.

    socket_pose: the socket frame as a base-frame pose [m, rad] (the calibrated seated TCP pose).
    servo_dt: control period [s] (1/500 on e-Series); each servo command lasts that long.
    """

    def __init__(
        self,
        backend: RobotBackend,
        safety: SafetyConfig,
        socket_pose: np.ndarray,
        servo_dt: float,
        servo_lookahead_s: float = 0.1,
        servo_gain: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Six finite numbers within a UR's reach of the base: a calibration in millimetres
        # (450 for 0.45 m) is refused here instead of placing the workspace box 450 m away.
        socket_pose = np.asarray(check_vector("socket_pose", socket_pose, 6, MAX_REACH_M))
        self.backend = backend
        self.dh_params = getattr(backend, "dh_params", None)
        if self.dh_params is None:
            raise TypeError(f"the robot backend {type(backend).__name__} does not say its "
                            "kinematics: give it a dh_params attribute "
                            "(real.kinematics.UR_DH[model])")
        #: The flange-to-TCP pose the backend set (position, rotation), if it says.
        offset = getattr(backend, "tcp_offset", None)
        self.tcp_offset = None if offset is None else pose_to_pos_mat(
            np.asarray(check_vector("tcp_offset", offset, 6, 1.0), dtype=np.float64))
        #: "flange" (e-Series) or "tcp" (CB3): the point the backend's wrench torque is about.
        self.wrench_reference = _wrench_reference_of(backend, self.dh_params)
        #: Flange to TCP in the TCP frame [m] (None: the backend does not say its offset).
        self.tcp_lever_m = (None if self.tcp_offset is None
                            else self.tcp_offset[1].T @ self.tcp_offset[0])
        #: The lever from a TCP torque (a CB3's) to the wrist's (`tool_wrench`); none where the
        #: torque is the flange's already.
        self.wrist_lever_m = self.tcp_lever_m if self.wrench_reference == "tcp" else None
        if self.tcp_offset is None:  # one of the two torques is another quantity
            read, wanted = (("the TCP", "the wrist as the simulated tasks read them")
                            if self.wrench_reference == "tcp" else
                            ("the flange", "the TCP as the compliance law turns the tool"))
            warnings.warn(f"the robot backend {type(backend).__name__} does not say its TCP "
                          f"offset (a tcp_offset attribute): its wrench torques are read about "
                          f"{read}, not {wanted}", UserWarning, stacklevel=2)
        self.safety = safety
        self.socket_pos, self.socket_mat = pose_to_pos_mat(socket_pose)
        self.servo_dt = servo_dt
        self.servo_lookahead_s = servo_lookahead_s
        self.servo_gain = servo_gain
        self._box_lo = np.asarray(safety.workspace_min_m, dtype=np.float64)
        self._box_hi = np.asarray(safety.workspace_max_m, dtype=np.float64)
        self.clock = clock
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self._wrench: np.ndarray | None = None
        self.tripped: SafetyTrip | None = None
        #: The last TCP reading that passed every check: (position, rotation, clock time).
        self.last_valid: tuple[np.ndarray, np.ndarray, float] | None = None
        #: Travel [m] and turn [rad] commanded since `last_valid` (servoL steps).
        self._commanded_since_valid = (0.0, 0.0)
        #: Newest controller timestamp seen [s] and when (our clock) it first arrived.
        self._last_stamp: float | None = None
        self._fresh_at = 0.0
        #: The last new cycle's raw F/T reading and how many new cycles in a row repeated it.
        self._last_raw_wrench: tuple[float, ...] | None = None
        self._same_wrench_cycles = 0
        #: Likewise the raw TCP pose, counted while the controller reports the TCP moving.
        self._last_raw_pose: tuple[float, ...] | None = None
        self._same_pose_cycles = 0
        #: The pose that tripped as frozen: never a reference again (the arm, stopped, reads
        #: no speed, and the stuck value would pass as the first command's start).
        self._frozen_pose: tuple[float, ...] | None = None
        #: A pose reading tripped: until one passes, the next must lie within
        #: `max_reading_jump_m` of `last_valid` whatever time has passed (the tripping reading,
        #: still there at the next reset 0.1 s later, passed the stopped arm's allowance, which
        #: grows with time, and became the first command's reference: a 20 mm jump).
        self._pose_suspect = False
        #: The flange-to-TCP transform the first valid reading implied (`tool_in_flange`):
        #: every later reading must imply nearly the same (`max_kinematic_drift_m`).
        self._tool_reference: tuple[np.ndarray, np.ndarray] | None = None
        #: Peak low-passed contact force [N] since `reset_wrench_filter`, including the
        #: reading that trips the force limit (and, noted by the env, the unfiltered reading
        #: at a stop the controller made: `RealInsertionEnv._read_noting_stops`).
        self.peak_force_n = 0.0

    # ----------------------------------------------------------------------------------------
    # Reading

    def read(self, check: bool = True) -> RobotState:
        """The robot's state with a checked TCP pose (`measure`); with `check`, first raises
        SafetyTrip if the robot is stopped or not safe."""
        if check:
            self.check_status()
        stamp_before = self._last_stamp
        pos, mat = self.measure()
        wrench = self.call("getActualTCPForce")
        speed = self.call("getActualTCPSpeed")
        for name, value, bounds in (("wrench", wrench, PLAUSIBLE_WRENCH),
                                    ("TCP speed", speed, PLAUSIBLE_SPEED)):
            if not _six_finite(value):
                self.trip("reading", f"the robot reports a malformed or non-finite {name} {value}")
            v = np.asarray(value, dtype=np.float64)
            if np.linalg.norm(v[:3]) > bounds[0] or np.linalg.norm(v[3:]) > bounds[1]:
                self.trip("reading", f"the robot reports an implausible {name} {value} (beyond "
                          f"{bounds[0]:g}, {bounds[1]:g})")
        if self._last_stamp != stamp_before:  # a new controller cycle
            speed_now = np.asarray(speed, dtype=np.float64)
            pushing = self._last is not None and \
                float(np.linalg.norm(self._last[0] - pos)) >= FROZEN_WRENCH_PRESS_M
            self._check_not_frozen(tuple(float(v) for v in wrench),
                                   _moving(speed_now) or pushing)
            self._check_pose_not_frozen(pos, mat, speed_now)
        return RobotState(
            pos=pos,
            mat=mat,
            wrench=np.asarray(wrench, dtype=np.float64),
            speed=np.asarray(speed, dtype=np.float64),
            input_bits=self._read_int("getActualDigitalInputBits", "digital input bits",
                                      1 << DIGITAL_INPUTS.stop),
        )

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """The TCP pose (base frame position [m], rotation matrix) after the reading checks of
        the module docstring; a reading that fails one trips ("reading") and is discarded."""
        pose = self.call("getActualTCPPose")
        joints = self.call("getActualQ")
        stamp = _as_float(self.call("getTimestamp"))
        now = self.clock()
        if not _six_finite(pose):
            self.trip("reading", f"the TCP pose reading {pose} is not six finite numbers")
        if not _six_finite(joints) or np.any(np.abs(joints) > MAX_JOINT_RAD):
            self.trip("reading", f"the joint angle reading {joints} is not six finite angles "
                      f"within +-{MAX_JOINT_RAD:.2f} rad")
        if not np.isfinite(stamp):
            self.trip("reading", f"the controller timestamp {stamp} is not finite")
        pos, mat = pose_to_pos_mat(np.asarray(pose, dtype=np.float64))
        if tuple(float(v) for v in (*pos, *mat.ravel())) == self._frozen_pose:
            self.trip("reading", "the TCP pose still reads the value it froze at: a stuck "
                      "field; restart the robot's RTDE interface, then run the command again")
        s = self.safety
        local = self.socket_frame(pos)
        outside = float(np.linalg.norm(local - np.clip(local, self._box_lo, self._box_hi)))
        if outside > s.reading_margin_m:
            self.trip(
                "reading",
                f"the TCP pose reading {np.round(pose, 4)} lies {outside * 1e3:.1f} mm outside the "
                f"safety workspace (socket frame {np.round(local, 4)} m): implausible, or the arm "
                "is not above the socket",
            )
        tilt = rotation_angle(self.socket_mat.T @ mat)
        if tilt > s.max_tilt_rad + s.reading_margin_rad:
            self.trip(
                "reading",
                f"the TCP orientation reading is {tilt:.2f} rad from the socket's "
                f"(limit {s.max_tilt_rad} rad): implausible",
            )
        if self.last_valid is not None:
            prev_pos, prev_mat, prev_t = self.last_valid
            jump = float(np.linalg.norm(pos - prev_pos))
            turn = rotation_angle(prev_mat.T @ mat)
            gap = max(0.0, now - prev_t)
            # Servoing, the arm moves only as commanded; after a reading tripped, time passing
            # earns no allowance either.
            if self._last is not None or self._pose_suspect:
                may_move, may_turn = self._commanded_since_valid
            else:  # stopped: decelerating, or moved by hand between episodes
                may_move = READING_SPEED_FACTOR * s.max_speed_m_s * gap
                may_turn = READING_SPEED_FACTOR * s.max_angular_speed_rad_s * gap
            if jump > s.max_reading_jump_m + may_move or turn > s.max_reading_jump_rad + may_turn:
                again = ("; a reading tripped before, and this session takes none far from "
                         "the last valid one: once the readings are right, run the command "
                         "again (a new session)") if self._pose_suspect else ""
                self._pose_suspect = True
                self.trip(
                    "reading",
                    f"the TCP pose reading jumped {jump * 1e3:.1f} mm / {turn:.3f} rad in "
                    f"{gap * 1e3:.1f} ms since the last valid one: discontinuous{again}",
                )
        tool = tool_in_flange(pos, mat, np.asarray(joints, dtype=np.float64), self.dh_params)
        if self.tcp_offset is not None:
            error = float(np.linalg.norm(tool[0] - self.tcp_offset[0]))
            error_turn = rotation_angle(self.tcp_offset[1].T @ tool[1])
            if error > s.max_tool_offset_error_m or error_turn > s.max_tool_offset_error_rad:
                self._pose_suspect = True
                self.trip(
                    "reading",
                    f"the TCP pose and joint readings put the TCP {error * 1e3:.1f} mm / "
                    f"{error_turn:.3f} rad from the flange offset set on the controller "
                    f"{np.round(pos_mat_to_pose(*self.tcp_offset), 4).tolist()} (limit "
                    f"{s.max_tool_offset_error_m * 1e3:g} mm / {s.max_tool_offset_error_rad:g} "
                    "rad): a robot model other than the arm's (URConfig.model, --model), a TCP "
                    "offset changed on the pendant, or a corrupt reading",
                )
        if self._tool_reference is not None:
            drift = float(np.linalg.norm(tool[0] - self._tool_reference[0]))
            drift_turn = rotation_angle(self._tool_reference[1].T @ tool[1])
            # The pose and the joints may come from consecutive controller cycles.
            skew = READING_SPEED_FACTOR * self.servo_dt
            if drift > s.max_kinematic_drift_m + skew * s.max_speed_m_s or \
                    drift_turn > s.max_kinematic_drift_rad + skew * s.max_angular_speed_rad_s:
                self._pose_suspect = True
                self.trip(
                    "reading",
                    f"the TCP pose reading lies {drift * 1e3:.1f} mm / {drift_turn:.3f} rad from "
                    f"where the joint readings put it, measured from the session's first "
                    f"reading (limit {s.max_kinematic_drift_m * 1e3:g} mm / "
                    f"{s.max_kinematic_drift_rad:g} rad): a corrupt pose or joint reading, a "
                    "TCP offset changed on the controller, or a robot model other than the "
                    "arm's (URConfig.model, --model)",
                )
        if self._last_stamp is not None and stamp < self._last_stamp:
            self.trip(
                "reading",
                f"the controller timestamp went back {(self._last_stamp - stamp) * 1e3:.0f} ms: "
                "late or out-of-order data",
            )
        since_fresh = max(0.0, now - self._fresh_at)
        if self._last_stamp is not None and \
                stamp - self._last_stamp > since_fresh + STAMP_LEAD_S:
            self.trip(  # before it is taken as the newest: the genuine ones go on passing
                "reading",
                f"the controller timestamp leapt {stamp - self._last_stamp:.3f} s ahead in "
                f"{since_fresh:.3f} s: a corrupt reading",
            )
        if self._last_stamp is None or stamp > self._last_stamp:
            self._last_stamp, self._fresh_at = stamp, now
        age = now - self._fresh_at
        if age > s.max_reading_age_s:
            self.trip(
                "reading",
                f"no new reading from the controller for {age * 1e3:.0f} ms (limit "
                f"{s.max_reading_age_s * 1e3:.0f} ms): stale data or a stalled link",
            )
        self.last_valid = (pos, mat, now)
        self._commanded_since_valid = (0.0, 0.0)
        self._pose_suspect = False
        if self._tool_reference is None:
            self._tool_reference = tool
        return pos, mat

    def _check_not_frozen(self, wrench: tuple[float, ...], driven: bool) -> None:
        """Trip on an F/T reading bit-identical for `FROZEN_WRENCH_CYCLES` new cycles in which
        the arm was driven (moving, or pushed by a servo target away from the TCP)."""
        same = driven and wrench == self._last_raw_wrench
        self._same_wrench_cycles = self._same_wrench_cycles + 1 if same else 0
        self._last_raw_wrench = wrench
        if self._same_wrench_cycles >= FROZEN_WRENCH_CYCLES:
            self._same_wrench_cycles = 0
            self.trip("reading", f"the F/T sensor read {list(wrench)} unchanged for "
                      f"{FROZEN_WRENCH_CYCLES} controller cycles: frozen (a dead sensor or a "
                      "stuck field; a live one's noise changes it every cycle)")

    def _check_pose_not_frozen(self, pos: np.ndarray, mat: np.ndarray,
                               speed: np.ndarray) -> None:
        """Trip on a TCP pose bit-identical for `FROZEN_POSE_CYCLES` new cycles in which the
        controller reported the TCP moving (a stuck pose field)."""
        pose = tuple(float(v) for v in (*pos, *mat.ravel()))
        same = _moving(speed) and pose == self._last_raw_pose
        self._same_pose_cycles = self._same_pose_cycles + 1 if same else 0
        self._last_raw_pose = pose
        if self._same_pose_cycles >= FROZEN_POSE_CYCLES:
            self._same_pose_cycles = 0
            self._pose_suspect = True
            self._frozen_pose = pose
            self.trip("reading", f"the TCP pose read {np.round(pos, 4).tolist()} unchanged for "
                      f"{FROZEN_POSE_CYCLES} controller cycles while the TCP speed read "
                      f"{float(np.linalg.norm(speed[:3])) * 1e3:.0f} mm/s: frozen (a stuck "
                      "field)")

    def _read_int(self, method: str, what: str, below: int | None = None) -> int:
        """An integer reading of the backend's `method` (in [0, `below`) where given); anything
        else (None, NaN, 2.5, a string, -1 input bits) trips "reading" rather than raising
        from int() or being read bit by bit."""
        value = self.call(method)
        whole = isinstance(value, int | np.integer) or (isinstance(value, float)
                                                        and value.is_integer())
        if isinstance(value, bool) or not whole or (below is not None
                                                    and not 0 <= value < below):
            self.trip("reading", f"the robot reports a malformed {what} {value!r}")
        return int(value)

    def _read_flag(self, method: str, what: str) -> bool:
        """A True/False reading of the backend's `method`; anything else (None, 0, "False")
        trips "reading": read by truthiness, a malformed stop flag read as all clear."""
        value = self.call(method)
        if not isinstance(value, bool | np.bool_):
            self.trip("reading", f"the robot reports a malformed {what} {value!r}")
        return bool(value)

    def check_status(self) -> None:
        """Raise SafetyTrip when the controller reports a stop or a non-normal safety mode."""
        self._check_stops()
        if not self._read_flag("isProgramRunning", "program-running flag"):
            self._trip_refused("the ur_rtde control script is not running (RTDE watchdog or a "
                               "stop ended it); reconnect the robot")

    def _trip_refused(self, message: str) -> None:
        """Trip "robot_refused", unless a stop shows up within `STOP_REPORT_WAIT_S`: the
        stop flags come on the receive interface, the script's end on the control one, and a
        protective stop mid-episode was recorded as "reconnect the robot" when the script's
        end arrived first (real20, serve-twin through ur_rtde)."""
        deadline = time.monotonic() + STOP_REPORT_WAIT_S
        while time.monotonic() < deadline:
            self._check_stops()
            time.sleep(STOP_REPORT_WAIT_S / 10)
        self._check_stops()
        if self._link_lost():  # a refusal when the link went meanwhile was blamed on the
            self.trip("connection", f"the link to the robot was lost ({message})")  # robot
        self.trip("robot_refused", message)

    def _link_lost(self) -> bool:
        """Whether the backend says its link is lost (`URBackend.link_lost`; others: no)."""
        try:
            return bool(getattr(self.backend, "link_lost", lambda: False)())
        except Exception:  # noqa: BLE001 - a backend in a bad state says nothing more
            return False

    def _check_stops(self) -> None:
        """Trip when the controller reports a stop or a non-normal safety mode."""
        if self._read_flag("isEmergencyStopped", "emergency-stop flag"):
            self.trip(
                "emergency_stop",
                "the robot is emergency stopped; release the e-stop, "
                "then power on and re-enable the arm on the teach pendant",
            )
        if self._read_flag("isProtectiveStopped", "protective-stop flag"):
            self.trip(
                "protective_stop",
                "the robot is in a protective stop; find the cause, "
                "then unlock it on the teach pendant",
            )
        mode = self._read_int("getSafetyMode", "safety mode")
        if mode not in SAFE_TO_MOVE:
            self.trip(
                "safety_mode",
                f"the robot's safety mode is {SAFETY_MODES.get(mode, mode)}"
                " (not normal or reduced); clear it on the teach pendant",
            )

    def socket_frame(self, pos: np.ndarray) -> np.ndarray:
        """A base-frame position [m] in the socket frame [m]."""
        return self.socket_mat.T @ (pos - self.socket_pos)

    def in_workspace(self, pos: np.ndarray, margin_m: float = 0.0) -> bool:
        p = self.socket_frame(pos)
        return bool(np.all(p >= self._box_lo - margin_m) and np.all(p <= self._box_hi + margin_m))

    def tilt(self, mat: np.ndarray) -> float:
        """Rotation of a TCP orientation (base frame) from the socket's [rad]."""
        return rotation_angle(self.socket_mat.T @ mat)

    def tool_wrench(self, state: RobotState, bias_base: np.ndarray) -> np.ndarray:
        """`tcp_wrench` of a reading with this robot's lever: the wrist's wrench, TCP frame."""
        return tcp_wrench(state, bias_base, self.wrist_lever_m)

    def compliance_wrench(self, state: RobotState, bias_base: np.ndarray) -> np.ndarray:
        """A reading less its base-frame bias, base frame, with the torque about the TCP [N,
        N m]: what the admittance law (`real.compliance`) yields to, as the simulated
        impedance does at the TCP. An e-Series' flange torque fed to it turned the tool by
        lever x force: ~18 mrad under a 15 N sideways push at a USB plug's tip (real18)."""
        w = state.wrench - bias_base
        if self.wrench_reference == "flange" and self.tcp_lever_m is not None:
            w[3:] = w[3:] - np.cross(state.mat @ self.tcp_lever_m, w[:3])
        return w

    def check_wrench(
        self, wrench_tcp: np.ndarray, limits: tuple[float, float] | None = None
    ) -> np.ndarray:
        """Low-pass a zeroed wrench [N, N m] (one sample per control period) and stop and
        retract if the filtered force or torque exceeds its limit (`limits`: (force [N],
        torque [N m]), the configured ones by default); returns the filtered wrench."""
        w = np.asarray(wrench_tcp, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            self.trip("reading", f"the F/T sensor reads a non-finite wrench {w}")
        if self._wrench is None:
            self._wrench = w.copy()
        else:
            alpha = self.servo_dt / (self.safety.wrench_filter_s + self.servo_dt)
            self._wrench = self._wrench + alpha * (w - self._wrench)
        force = float(np.linalg.norm(self._wrench[:3]))
        torque = float(np.linalg.norm(self._wrench[3:]))
        self.peak_force_n = max(self.peak_force_n, force)
        force_limit, torque_limit = limits or (self.safety.force_limit_n,
                                               self.safety.torque_limit_nm)
        if force > force_limit or torque > torque_limit:
            message = (
                f"contact wrench |F| = {force:.1f} N, |T| = {torque:.2f} N m exceeds the limits "
                f"{force_limit:.6g} N, {torque_limit:.6g} N m"
            )
            self.stop()
            # Backing off relieves a push into the socket (the environment pushing the tool
            # out, -z in the TCP frame, which is the socket's within the tilt cone); against a
            # pull (a plug the socket holds while the arm draws it out) it would pull harder,
            # with the force check off.
            if self._wrench[2] > RETRACT_TENSION_N:
                message += (f"; not retracted: the socket pulls the tool in with "
                            f"{self._wrench[2]:.1f} N, and backing off would pull harder")
            else:
                try:
                    self.retract()
                except SafetyTrip as failed:  # e.g. a bad reading: stay stopped, say why
                    message += f"; not retracted: {failed}"
            self.trip("force", message)
        return self._wrench.copy()

    @property
    def filtered_wrench(self) -> np.ndarray | None:
        """The low-passed wrench of the last `check_wrench` [N, N m], None after a reset."""
        return None if self._wrench is None else self._wrench.copy()

    @property
    def stopped(self) -> bool:
        """No servo target since the last stop: the next command starts from the measured
        pose."""
        return self._last is None

    def reset_wrench_filter(self) -> None:
        """Forget the filtered wrench and its peak (after the sensor was zeroed)."""
        self._wrench = None
        self.peak_force_n = 0.0

    # ----------------------------------------------------------------------------------------
    # Commanding

    def servo(self, pos: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Send one servo target (base frame) after the checks; returns what was sent."""
        if self.tripped is not None:
            raise self.tripped
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(mat))):
            raise UnsafeCommandError(f"refusing a non-finite servo target {pos}, {mat.ravel()}")
        self.check_status()
        return self._send(pos, mat)

    def stop(self) -> None:
        """Decelerate and end servoing (the next command starts from the measured pose)."""
        try:
            self.call("servoStop")
        finally:
            self._last = None

    def retract(self) -> None:
        """Back off `retract_m` along the socket axis (out of the socket) at the retract speed."""
        pos, mat = self.measure()
        target = pos - self.socket_mat[:, 2] * self.safety.retract_m
        self.move_linear(target, mat, self.safety.retract_speed_m_s, check_force=False)
        self.stop()

    def move_linear(
        self,
        target_pos: np.ndarray,
        target_mat: np.ndarray,
        speed_m_s: float,
        check_force: bool = True,
        force_bias: np.ndarray | None = None,
    ) -> None:
        """Servo along a straight line to a base-frame pose at `speed_m_s` (capped by the speed
        limit), checking the robot and, with `check_force`, the wrench on every cycle."""
        start = self._last or self.measure()
        distance = float(np.linalg.norm(target_pos - start[0]))
        angle = float(np.linalg.norm(mat_to_rotvec(start[1].T @ target_mat)))
        speed = min(speed_m_s, self.safety.max_speed_m_s)
        n = max(
            1,
            int(np.ceil(distance / (speed * self.servo_dt))),
            int(np.ceil(angle / (self.safety.max_angular_speed_rad_s * self.servo_dt))),
        )
        turn = mat_to_rotvec(start[1].T @ target_mat)
        bias = np.zeros(6) if force_bias is None else force_bias
        for i in range(1, n + 1):
            t0 = self.call("initPeriod")
            s = i / n
            if check_force:
                state = self.read()
                self.check_wrench(self.tool_wrench(state, bias))
            else:
                self.measure()
            self._send(start[0] + s * (target_pos - start[0]), start[1] @ rotvec_to_mat(s * turn))
            self.call("waitPeriod", t0)

    def _send(self, pos: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.tripped is not None:
            raise self.tripped
        pos, mat = self.clamp(pos, mat)
        # After a stop the reference is a reading taken now and checked, never a raw one.
        last = self._last or self.measure()
        step = pos - last[0]
        max_step = self.safety.max_speed_m_s * self.servo_dt
        norm = float(np.linalg.norm(step))
        if norm > max_step:
            pos = last[0] + step * (max_step / norm)
        turn = mat_to_rotvec(last[1].T @ mat)
        max_turn = self.safety.max_angular_speed_rad_s * self.servo_dt
        angle = float(np.linalg.norm(turn))
        if angle > max_turn:
            mat = last[1] @ rotvec_to_mat(turn * (max_turn / angle))
        # The capped step ends between `last` and a target inside the box and cone, so it is
        # inside them, or, when `last` is outside (the first command after a stop starts from
        # the measured pose), no further out than `last`: the arm is brought in at the capped
        # speeds. Clamping it again here made the first command jump to the box, 4 mm in one
        # 2 ms period from a pose 4 mm outside.
        pose = pos_mat_to_pose(pos, mat)
        if self._link_lost():  # servoL while ur_rtde reconnects crashed the process (diff28)
            self.trip("connection", "the link to the robot is lost (a pulled cable, a "
                                    "controller reboot?); reconnect")
        accepted = self.call(
            "servoL",
            [float(v) for v in pose],
            0.0,
            0.0,
            self.servo_dt,
            self.servo_lookahead_s,
            self.servo_gain,
        )
        self.call("kickWatchdog")
        if not isinstance(accepted, bool | np.bool_):  # None, 0: not an answer ur_rtde gives
            self.trip("reading", f"the robot answered a servoL command with {accepted!r}, not "
                      "True or False")
        if not accepted:
            self._trip_refused("the robot refused a servoL command (stopped, or the RTDE "
                               "watchdog ended the control script)")
        moved, turned = self._commanded_since_valid
        self._commanded_since_valid = (moved + float(np.linalg.norm(pos - last[0])),
                                       turned + rotation_angle(last[1].T @ mat))
        self._last = (pos, mat)
        return pos, mat

    def clamp(
        self, pos: np.ndarray, mat: np.ndarray, past_seat_m: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest pose (base frame) inside the workspace box and the tilt cone; with
        `past_seat_m` the box reaches that much further into the socket (+z, socket frame),
        for the compliance reference, which is never sent to the robot (see
        `real.env.RealInsertionEnv._move_reference`)."""
        hi = self._box_hi + np.array([0.0, 0.0, past_seat_m])
        local = np.clip(self.socket_frame(pos), self._box_lo, hi)
        pos = self.socket_pos + self.socket_mat @ local
        tilt = mat_to_rotvec(self.socket_mat.T @ mat)
        angle = float(np.linalg.norm(tilt))
        if angle > self.safety.max_tilt_rad:
            mat = self.socket_mat @ rotvec_to_mat(tilt * (self.safety.max_tilt_rad / angle))
        return pos, mat

    def trip(self, kind: str, message: str) -> None:
        """Stop the robot and raise SafetyTrip(kind, message); commands stay refused until
        `reset_trip`."""
        self.halt()
        self.tripped = SafetyTrip(kind, message)
        raise self.tripped

    def halt(self) -> None:
        """servoStop without raising: for paths that are already failing."""
        try:
            self.backend.servoStop()
        except Exception:  # noqa: BLE001, S110 - a dead link cannot stop the arm; RTDE's watchdog does
            pass
        finally:
            self._last = None

    def reset_trip(self) -> None:
        """Allow commands again after the cause of a trip was cleared (checked on next read)."""
        self.tripped = None

    def call(self, name: str, *args):
        """Call the backend method `name`; an exception from it (a lost connection) trips
        "connection". Every backend call of the real stack goes through here."""
        try:
            return getattr(self.backend, name)(*args)
        except SafetyTrip:
            raise
        except Exception as err:  # noqa: BLE001 - whatever the transport raises
            self.trip("connection", f"the robot interface failed in {name}: {err}")


def _wrench_reference_of(backend: RobotBackend, dh_params) -> str:
    """The backend's `wrench_reference`, or where it does not say, its model's (found by its
    kinematics; the TCP for an arm of no UR model, as a CB3 reports it)."""
    reference = getattr(backend, "wrench_reference", None)
    if reference is None:
        model = next((name for name, dh in UR_DH.items()
                      if np.allclose(np.asarray(dh), np.asarray(dh_params))), None)
        reference = "tcp" if model is None else wrench_reference(model)
    if reference not in WRENCH_REFERENCES:
        raise TypeError(f"the robot backend {type(backend).__name__} says wrench_reference="
                        f"{reference!r}; it must be 'flange' (e-Series) or 'tcp' (CB3)")
    return reference


def _six_finite(values) -> bool:
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return v.shape == (6,) and bool(np.all(np.isfinite(v)))


def tcp_wrench(state: RobotState, bias_base: np.ndarray,
               lever_m: np.ndarray | None = None) -> np.ndarray:
    """The environment's wrench on the tool in the TCP frame [N, N m], after subtracting a
    base-frame bias (the reading at the last zeroing); a torque about the TCP (a CB3's) is
    moved to the wrist by `lever_m` (flange to TCP, TCP frame [m]), an e-Series' is about the
    flange already (`lever_m` None): the simulated tasks' `wrench` is a wrist F/T sensor's, and
    a policy must read the same quantity on the arm (`SafeRobot.tool_wrench` passes the lever
    its robot needs)."""
    w = state.wrench - bias_base
    force, torque = state.mat.T @ w[:3], state.mat.T @ w[3:]
    if lever_m is not None:
        torque = torque + np.cross(lever_m, force)
    return np.concatenate([force, torque])


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
