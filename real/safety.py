"""The safety layer: the only path from the policy to the robot.

`SafeRobot` wraps a `RobotBackend` and owns every motion command. Each servo target is refused if
it is not finite, then clamped into the workspace box and the orientation cone around the socket
(socket frame, see `SafetyConfig`), then rate-limited to the speed caps relative to the previous
command; the robot's safety state (e-stop, protective stop, safety mode, control script running)
is read before every command. What reaches `backend.servoL` is therefore always inside the limits,
whatever the policy or the compliance law asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from real.config import SafetyConfig
from real.poses import mat_to_rotvec, pos_mat_to_pose, pose_to_pos_mat, rotvec_to_mat
from real.robot import SAFE_TO_MOVE, SAFETY_MODES, RobotBackend


class SafetyTrip(RuntimeError):
    """The safety layer stopped the robot. `kind`: "force", "watchdog", "protective_stop",
    "emergency_stop", "safety_mode", "robot_refused" or "workspace"."""

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
    ) -> None:
        if not np.all(np.isfinite(socket_pose)):
            raise ValueError(f"socket_pose must be finite, got {socket_pose}")
        self.backend = backend
        self.safety = safety
        self.socket_pos, self.socket_mat = pose_to_pos_mat(socket_pose)
        self.servo_dt = servo_dt
        self.servo_lookahead_s = servo_lookahead_s
        self.servo_gain = servo_gain
        self._box_lo = np.asarray(safety.workspace_min_m, dtype=np.float64)
        self._box_hi = np.asarray(safety.workspace_max_m, dtype=np.float64)
        self._last: tuple[np.ndarray, np.ndarray] | None = None
        self._wrench: np.ndarray | None = None
        self.tripped: SafetyTrip | None = None

    # ----------------------------------------------------------------------------------------
    # Reading

    def read(self, check: bool = True) -> RobotState:
        """The robot's state; with `check`, raises SafetyTrip if it is stopped or not safe."""
        if check:
            self.check_status()
        pos, mat = pose_to_pos_mat(self.backend.getActualTCPPose())
        return RobotState(
            pos=pos,
            mat=mat,
            wrench=np.asarray(self.backend.getActualTCPForce(), dtype=np.float64),
            speed=np.asarray(self.backend.getActualTCPSpeed(), dtype=np.float64),
            input_bits=int(self.backend.getActualDigitalInputBits()),
        )

    def check_status(self) -> None:
        """Raise SafetyTrip when the controller reports a stop or a non-normal safety mode."""
        b = self.backend
        if b.isEmergencyStopped():
            self.trip(
                "emergency_stop",
                "the robot is emergency stopped; release the e-stop, "
                "then power on and re-enable the arm on the teach pendant",
            )
        if b.isProtectiveStopped():
            self.trip(
                "protective_stop",
                "the robot is in a protective stop; find the cause, "
                "then unlock it on the teach pendant",
            )
        mode = int(b.getSafetyMode())
        if mode not in SAFE_TO_MOVE:
            self.trip(
                "safety_mode",
                f"the robot's safety mode is {SAFETY_MODES.get(mode, mode)}"
                " (not normal or reduced); clear it on the teach pendant",
            )
        if not b.isProgramRunning():
            self.trip(
                "robot_refused",
                "the ur_rtde control script is not running (RTDE "
                "watchdog or a stop ended it); reconnect the robot",
            )

    def socket_frame(self, pos: np.ndarray) -> np.ndarray:
        """A base-frame position [m] in the socket frame [m]."""
        return self.socket_mat.T @ (pos - self.socket_pos)

    def in_workspace(self, pos: np.ndarray, margin_m: float = 0.0) -> bool:
        p = self.socket_frame(pos)
        return bool(np.all(p >= self._box_lo - margin_m) and np.all(p <= self._box_hi + margin_m))

    def check_wrench(self, wrench_tcp: np.ndarray) -> np.ndarray:
        """Low-pass a zeroed wrench [N, N m] (one sample per control period) and stop and
        retract if the filtered force or torque exceeds its limit; returns the filtered wrench."""
        w = np.asarray(wrench_tcp, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            self.trip("force", f"the F/T sensor reads a non-finite wrench {w}")
        if self._wrench is None:
            self._wrench = w.copy()
        else:
            alpha = self.servo_dt / (self.safety.wrench_filter_s + self.servo_dt)
            self._wrench = self._wrench + alpha * (w - self._wrench)
        force = float(np.linalg.norm(self._wrench[:3]))
        torque = float(np.linalg.norm(self._wrench[3:]))
        if force > self.safety.force_limit_n or torque > self.safety.torque_limit_nm:
            message = (
                f"contact wrench |F| = {force:.1f} N, |T| = {torque:.2f} N m exceeds the limits "
                f"{self.safety.force_limit_n} N, {self.safety.torque_limit_nm} N m"
            )
            self.stop()
            self.retract()
            self.trip("force", message)
        return self._wrench.copy()

    def reset_wrench_filter(self) -> None:
        """Forget the filtered wrench (after the sensor was zeroed)."""
        self._wrench = None

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
        self.backend.servoStop()
        self._last = None

    def retract(self) -> None:
        """Back off `retract_m` along the socket axis (out of the socket) at the retract speed."""
        pos, mat = pose_to_pos_mat(self.backend.getActualTCPPose())
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
        start = self._last or pose_to_pos_mat(self.backend.getActualTCPPose())
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
            t0 = self.backend.initPeriod()
            s = i / n
            if check_force:
                state = self.read()
                self.check_wrench(tcp_wrench(state, bias))
            self._send(start[0] + s * (target_pos - start[0]), start[1] @ rotvec_to_mat(s * turn))
            self.backend.waitPeriod(t0)

    def _send(self, pos: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, mat = self.clamp(pos, mat)
        last = self._last or pose_to_pos_mat(self.backend.getActualTCPPose())
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
        # Clamp again: the previous command may lie outside the box (the first one after a
        # stop starts from the measured pose), and then so may a point on the way from it.
        pos, mat = self.clamp(pos, mat)
        pose = pos_mat_to_pose(pos, mat)
        accepted = self.backend.servoL(
            [float(v) for v in pose],
            0.0,
            0.0,
            self.servo_dt,
            self.servo_lookahead_s,
            self.servo_gain,
        )
        self.backend.kickWatchdog()
        if accepted is False:
            self.trip(
                "robot_refused",
                "the robot refused a servoL command (stopped, or the "
                "RTDE watchdog ended the control script)",
            )
        self._last = (pos, mat)
        return pos, mat

    def clamp(self, pos: np.ndarray, mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest pose (base frame) inside the workspace box and the tilt cone."""
        local = np.clip(self.socket_frame(pos), self._box_lo, self._box_hi)
        pos = self.socket_pos + self.socket_mat @ local
        tilt = mat_to_rotvec(self.socket_mat.T @ mat)
        angle = float(np.linalg.norm(tilt))
        if angle > self.safety.max_tilt_rad:
            mat = self.socket_mat @ rotvec_to_mat(tilt * (self.safety.max_tilt_rad / angle))
        return pos, mat

    def trip(self, kind: str, message: str) -> None:
        """Stop the robot and raise SafetyTrip(kind, message); commands stay refused until
        `reset_trip`."""
        self._stop_quietly()
        self.tripped = SafetyTrip(kind, message)
        raise self.tripped

    def _stop_quietly(self) -> None:
        try:
            self.backend.servoStop()
        finally:
            self._last = None

    def reset_trip(self) -> None:
        """Allow commands again after the cause of a trip was cleared (checked on next read)."""
        self.tripped = None


def tcp_wrench(state: RobotState, bias_base: np.ndarray) -> np.ndarray:
    """The environment's wrench on the tool in the TCP frame [N, N m], after subtracting a
    base-frame bias (the reading at the last zeroing)."""
    w = state.wrench - bias_base
    return np.concatenate([state.mat.T @ w[:3], state.mat.T @ w[3:]])
