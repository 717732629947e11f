"""Fault injection around any robot backend, and the judge of what reached the robot.

`FaultInjector` is itself a `RobotBackend`: it wraps another one (the digital twin today, a
physical arm behind `URBackend` for a supervised bench test) and, once `inject` is called,
corrupts what the stack reads or how the robot behaves:

| fault | what the stack sees |
|---|---|
| dropped | pose, joint and wrench readings come back empty (no data) |
| late | readings (values and timestamp) from `late_s` ago |
| stale | readings frozen at the moment of injection, timestamp included |
| nan | NaN in the pose and wrench readings |
| zero | an all-zero TCP pose (the base origin) |
| jump | the TCP pose displaced by `jump_m` along base x |
| protective_stop | the controller reports a protective stop, refuses servoL, brakes |
| emergency_stop | the same with an emergency stop |
| connection_loss | every call raises ConnectionError; nothing reaches the robot |

Faults stack (`inject("protective_stop", "zero")`) and last until `clear`.

Every command that does reach the wrapped backend is logged with the robot's true TCP pose at
that moment (read from the wrapped backend, past the faults) and whether the last pose reading
the stack received was good. `unsafe_commands` judges that log: a servoL is unsafe when it is
not finite, moves faster than the speed caps from the previous command, or, as the first command
after a stop, from the robot's *true* pose, or lies further outside the workspace box or tilt
cone than the pose it starts from (`beyond_limits`, `comes_in`: outside only while bringing the
arm in); or when
the stack sent it after receiving a bad reading (one that is malformed, not finite, further than
`pose_tolerance_m` from the truth, or older than `age_tolerance_s`) without a good one since.

`StallingPolicy` and `GarbagePolicy` are the policy-side faults: a policy that hangs, and one
that returns NaN, inf, out-of-range, wrongly shaped or no actions, or raises.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from real.config import SafetyConfig
from real.poses import pose_to_pos_mat, rotation_angle
from real.robot import RobotBackend

#: The safety layer measures staleness on its own clock from the first arrival of a timestamp,
#: up to a period after the reading was taken; the judge allows 1 ms more than its limit.
AGE_SLACK_S = 0.001
READING_FAULTS = ("dropped", "late", "stale", "nan", "zero", "jump")
ROBOT_FAULTS = ("protective_stop", "emergency_stop", "connection_loss")
FAULT_KINDS = READING_FAULTS + ROBOT_FAULTS
#: Calls that command or configure the robot; they are logged when they reach it.
COMMANDS = frozenset(
    {
        "servoL",
        "servoStop",
        "stopL",
        "zeroFtSensor",
        "setPayload",
        "setTcp",
        "setWatchdog",
        "teachMode",
        "endTeachMode",
    }
)


@dataclass(frozen=True)
class Reading:
    """What the controller reported at one time: timestamp [s], TCP pose, wrench, speed,
    joint angles [rad]."""

    stamp: float
    pose: list[float]
    wrench: list[float]
    speed: list[float]
    q: list[float]


@dataclass(frozen=True)
class Forwarded:
    """A command that reached the wrapped backend. `true_pose`: the robot's TCP pose then
    [m, rad]; `after_bad_reading`: the last pose reading the stack got before it was bad."""

    name: str
    args: tuple[Any, ...]
    true_pose: np.ndarray
    after_bad_reading: bool
    faults: tuple[str, ...]


class FaultInjector:
    """A `RobotBackend` that forwards to `backend` and injects the faults of the module
    docstring. jump_m: displacement of the "jump" fault [m]; late_s: delay of "late" [s];
    pose_tolerance_m / age_tolerance_s: how far from the truth [m] and how old [s] a delivered
    pose may be before it counts as bad (defaults: the safety layer's jump and age limits, the
    latter plus AGE_SLACK_S)."""

    def __init__(
        self,
        backend: RobotBackend,
        *,
        jump_m: float = 0.02,
        late_s: float = 0.1,
        pose_tolerance_m: float = SafetyConfig.max_reading_jump_m,
        age_tolerance_s: float = SafetyConfig.max_reading_age_s + AGE_SLACK_S,
    ) -> None:
        self.backend = backend
        self.jump_m, self.late_s = jump_m, late_s
        self.pose_tolerance_m, self.age_tolerance_s = pose_tolerance_m, age_tolerance_s
        self.active: set[str] = set()
        self.log: list[Forwarded] = []
        self.bad_readings = 0
        self._history: deque[Reading] = deque(maxlen=4096)
        self._frozen: Reading | None = None
        self._last_reading_bad = False
        self._scheduled: tuple[int, tuple[str, ...]] | None = None
        for name in ("clock", "stall"):  # the twin's time, when the backend is the twin
            if hasattr(backend, name):
                setattr(self, name, getattr(backend, name))

    # ----------------------------------------------------------------------------------------
    # Test controls

    def inject(self, *kinds: str) -> None:
        """Start faults now (see FAULT_KINDS)."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
            if kind == "stale":
                self._frozen = self._now()
            if kind in ("protective_stop", "emergency_stop"):
                self.backend.servoStop()  # the controller brakes by itself
            self.active.add(kind)

    def inject_after(self, servo_commands: int, *kinds: str) -> None:
        """Start faults once `servo_commands` more servoL commands have reached the robot:
        in the middle of a policy step."""
        self._scheduled = (servo_commands, kinds)

    def clear(self, *kinds: str) -> None:
        """End the given faults (all without arguments): the pendant's unlock, a reconnect."""
        for kind in kinds or tuple(self.active):
            self.active.discard(kind)

    # ----------------------------------------------------------------------------------------
    # Readings

    def _now(self) -> Reading:
        b = self.backend
        stamp = float(b.getTimestamp())
        if self._history and self._history[-1].stamp == stamp:
            return self._history[-1]  # one controller packet per period
        reading = Reading(
            stamp,
            list(b.getActualTCPPose()),
            list(b.getActualTCPForce()),
            list(b.getActualTCPSpeed()),
            list(b.getActualQ()),
        )
        self._history.append(reading)
        return reading

    def _delivered(self) -> tuple[Reading, Reading]:
        """(what the stack gets, the truth)."""
        self._alive()
        true = self._now()
        if "stale" in self.active and self._frozen is not None:
            out = self._frozen
        elif "late" in self.active:
            old = [r for r in self._history if r.stamp <= true.stamp - self.late_s]
            out = old[-1] if old else self._history[0]
        else:
            out = true
        pose, wrench, q = list(out.pose), list(out.wrench), list(out.q)
        if "nan" in self.active:
            pose[0] = wrench[2] = float("nan")
        if "zero" in self.active:
            pose = [0.0] * 6
        if "jump" in self.active:
            pose[0] += self.jump_m
        if "dropped" in self.active:
            pose, wrench, q = [], [], []
        return Reading(out.stamp, pose, wrench, out.speed, q), true

    def getActualTCPPose(self) -> list[float]:
        out, true = self._delivered()
        self._last_reading_bad = self._is_bad(out, true)
        self.bad_readings += self._last_reading_bad
        return out.pose

    def getTimestamp(self) -> float:
        return self._delivered()[0].stamp

    def getActualTCPForce(self) -> list[float]:
        return self._delivered()[0].wrench

    def getActualTCPSpeed(self) -> list[float]:
        return self._delivered()[0].speed

    def getActualQ(self) -> list[float]:
        return self._delivered()[0].q

    def _is_bad(self, out: Reading, true: Reading) -> bool:
        pose = np.asarray(out.pose, dtype=np.float64)
        if pose.shape != (6,) or not np.all(np.isfinite(pose)):
            return True
        if np.linalg.norm(pose[:3] - np.asarray(true.pose[:3])) > self.pose_tolerance_m:
            return True
        return true.stamp - out.stamp > self.age_tolerance_s

    # ----------------------------------------------------------------------------------------
    # Status

    def isProtectiveStopped(self) -> bool:
        self._alive()
        return "protective_stop" in self.active or self.backend.isProtectiveStopped()

    def isEmergencyStopped(self) -> bool:
        self._alive()
        return "emergency_stop" in self.active or self.backend.isEmergencyStopped()

    def getSafetyMode(self) -> int:
        self._alive()
        if "emergency_stop" in self.active:
            return 7
        if "protective_stop" in self.active:
            return 3
        return self.backend.getSafetyMode()

    # ----------------------------------------------------------------------------------------
    # Commands and the rest

    def servoL(self, pose, speed, acceleration, time, lookahead_time, gain) -> bool:
        self._alive()
        if "protective_stop" in self.active or "emergency_stop" in self.active:
            return False  # a stopped controller refuses motion; nothing moves
        self._record("servoL", (list(pose), speed, acceleration, time, lookahead_time, gain))
        accepted = self.backend.servoL(pose, speed, acceleration, time, lookahead_time, gain)
        if self._scheduled is not None:
            left, kinds = self._scheduled
            self._scheduled = (left - 1, kinds) if left > 1 else None
            if left <= 1:
                self.inject(*kinds)
        return accepted

    def __getattr__(self, name: str):
        method = getattr(self.backend, name)
        if not callable(method):
            return method

        def forward(*args):
            self._alive()
            if name in COMMANDS:
                self._record(name, args)
            return method(*args)

        return forward

    def _alive(self) -> None:
        if "connection_loss" in self.active:
            raise ConnectionError("RTDE connection lost (injected fault)")

    def _record(self, name: str, args: tuple) -> None:
        true = np.asarray(self.backend.getActualTCPPose(), dtype=np.float64)
        self.log.append(
            Forwarded(name, args, true, self._last_reading_bad, tuple(sorted(self.active)))
        )


def beyond_limits(safety: SafetyConfig, socket_pos: np.ndarray, socket_mat: np.ndarray,
                  pos: np.ndarray, mat: np.ndarray) -> tuple[float, float]:
    """How far a pose (base frame) lies outside the workspace box [m] and the tilt cone [rad];
    0 inside. A command may lie outside only closer than the pose it starts from (`comes_in`):
    an arm found outside is brought in at the capped speeds, never jumped in."""
    local = socket_mat.T @ (pos - socket_pos)
    clipped = np.clip(local, safety.workspace_min_m, safety.workspace_max_m)
    tilt = rotation_angle(socket_mat.T @ mat)
    return float(np.linalg.norm(local - clipped)), max(0.0, tilt - safety.max_tilt_rad)


def comes_in(outside: float, reference_outside: float) -> bool:
    """Whether a command `outside` the box (or cone) by this much, from a pose outside it by
    `reference_outside`, is allowed: inside, or strictly closer than that pose (each capped step
    goes toward a target inside, so it gains; one that slides along the outside does not)."""
    return outside <= 1e-9 or outside < reference_outside - 1e-12


def unsafe_commands(
    log: list[Forwarded],
    safety: SafetyConfig,
    socket_pose: np.ndarray,
    servo_dt: float,
) -> list[str]:
    """The servoL commands in `log` that broke a rule of the module docstring, described."""
    socket_pos, socket_mat = pose_to_pos_mat(np.asarray(socket_pose, dtype=np.float64))
    max_step = safety.max_speed_m_s * servo_dt + 1e-9
    max_turn = safety.max_angular_speed_rad_s * servo_dt + 1e-9
    problems = []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    beyond = functools.partial(beyond_limits, safety, socket_pos, socket_mat)
    for i, command in enumerate(log):
        if command.name in ("servoStop", "stopL", "teachMode"):
            previous = None
            continue
        if command.name != "servoL":
            continue
        pose = np.asarray(command.args[0], dtype=np.float64)
        where = f"command {i} (faults {list(command.faults)})"
        if not np.all(np.isfinite(pose)):
            problems.append(f"{where}: non-finite servoL {pose}")
            continue
        if command.after_bad_reading:
            problems.append(f"{where}: servoL sent after a bad reading, without a good one since")
        pos, mat = pose_to_pos_mat(pose)
        reference = previous or pose_to_pos_mat(command.true_pose)
        (out_m, out_rad), (ref_out_m, ref_out_rad) = beyond(pos, mat), beyond(*reference)
        if not comes_in(out_m, ref_out_m):
            local = socket_mat.T @ (pos - socket_pos)
            problems.append(f"{where}: outside the workspace box at {np.round(local, 4)} m")
        if not comes_in(out_rad, ref_out_rad):
            problems.append(f"{where}: outside the tilt cone")
        step = float(np.linalg.norm(pos - reference[0]))
        turn = rotation_angle(reference[1].T @ mat)
        if step > max_step or turn > max_turn:
            frm = "the previous command" if previous is not None else "the true pose after a stop"
            problems.append(
                f"{where}: moves {step * 1e3:.2f} mm / {turn:.4f} rad from {frm} in one period "
                f"(cap {max_step * 1e3:.2f} mm / {max_turn:.4f} rad)"
            )
        previous = (pos, mat)
    return problems


class StallingPolicy:
    """`policy` that hangs for `seconds` (through `sleep`, e.g. the twin's `stall`) on call
    number `at_call` (0-based), then answers normally."""

    def __init__(
        self,
        policy: Callable[[dict[str, np.ndarray]], np.ndarray],
        sleep: Callable[[float], None],
        seconds: float,
        at_call: int,
    ) -> None:
        self.policy, self.sleep, self.seconds, self.at_call = policy, sleep, seconds, at_call
        self.calls = 0

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.calls == self.at_call:
            self.sleep(self.seconds)
        self.calls += 1
        return self.policy(obs)


GARBAGE = ("nan", "inf", "huge", "wrong_shape", "none", "raises")


class GarbagePolicy:
    """`policy` whose answer from call number `at_call` (0-based) on is garbage of `kind`
    (GARBAGE): NaN, inf, 1e9, an action of the wrong length, None, or an exception."""

    def __init__(
        self, policy: Callable[[dict[str, np.ndarray]], np.ndarray], kind: str, at_call: int
    ) -> None:
        if kind not in GARBAGE:
            raise ValueError(f"unknown garbage {kind!r}; choose from {GARBAGE}")
        self.policy, self.kind, self.at_call = policy, kind, at_call
        self.calls = 0

    def __call__(self, obs: dict[str, np.ndarray]):
        action = np.asarray(self.policy(obs), dtype=np.float32)
        self.calls += 1
        if self.calls <= self.at_call:
            return action
        if self.kind == "raises":
            raise RuntimeError("the policy crashed (injected fault)")
        if self.kind == "none":
            return None
        if self.kind == "wrong_shape":
            return np.append(action, 0.0)
        value = {"nan": np.nan, "inf": np.inf, "huge": 1e9}[self.kind]
        return np.full_like(action, value)
