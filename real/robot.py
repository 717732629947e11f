"""The robot interface of `real/`: the ur_rtde calls the environment uses, and the UR backend.

`RobotBackend` names exactly the RTDEControlInterface / RTDEReceiveInterface methods the stack
calls, with ur_rtde's names and units, so the physical arm (`URBackend`) and the digital twin
(`real.twin.DigitalTwinRobot`) are interchangeable. Poses are [x, y, z, rx, ry, rz] in the
robot base frame [m, rad]; `getActualTCPForce` is the wrench the environment applies at the TCP,
in base-frame coordinates [N, N m]; `getActualTCPSpeed` is [v, omega] in the base frame.

Nothing commands a backend directly except `real.safety.SafeRobot`, which checks every command;
calibration (`real.calibration`) also switches freedrive and reads the pose and F/T bias, which
it checks before they are written.
ur_rtde is imported when a `URBackend` connects, never at import time.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from real.config import URConfig
from real.kinematics import UR_DH, wrench_reference

#: UR safety modes (RTDE `safety_mode`); anything but NORMAL or REDUCED stops the stack.
SAFETY_MODES = {
    1: "normal",
    2: "reduced",
    3: "protective stop",
    4: "recovery",
    5: "safeguard stop",
    6: "system emergency stop",
    7: "robot emergency stop",
    8: "violation",
    9: "fault",
    10: "validate joint id",
    11: "undefined safety mode",
    12: "automatic mode safeguard stop",
    13: "system three position enabling stop",
}
SAFE_TO_MOVE = (1, 2)


#: UR robot modes (RTDE `robot_mode`) other than RUNNING (7), the one that runs a program.
ROBOT_MODES = {-1: "no controller", 0: "disconnected", 1: "confirm safety", 2: "booting",
               3: "power off", 4: "power on", 5: "idle (brakes on)", 6: "backdrive",
               8: "updating firmware"}
ROBOT_MODE_RUNNING = 7


def _mode_name(receive: Any, getter: str, fine: Sequence[int], names: dict[int, str],
               what: str) -> str | None:
    """The name of the mode a connected receive interface's `getter` reads when it is not
    among `fine`; None when it is, or cannot be read (a link lost too: the network hint
    stands)."""
    try:
        mode = getattr(receive, getter)() if receive is not None else None
    except Exception:  # noqa: BLE001 - a link lost, or a backend in a bad state
        return None
    if not isinstance(mode, int) or mode in fine:
        return None
    return names.get(mode, f"{what} {mode}")


def _not_running(receive: Any) -> str | None:
    """The robot mode when it is not RUNNING ("power off"): a powered-off arm, the usual state
    at the start of a day, read as "is it on this network?" (real25)."""
    return _mode_name(receive, "getRobotMode", (ROBOT_MODE_RUNNING,), ROBOT_MODES, "robot mode")


def _stopped_mode(receive: Any) -> str | None:
    """The safety mode that forbids motion ("protective stop")."""
    return _mode_name(receive, "getSafetyMode", SAFE_TO_MOVE, SAFETY_MODES, "safety mode")


class RobotBackend(Protocol):
    """The subset of ur_rtde the real environment needs (see the module docstring for units),
    `dh_params`: the arm's nominal kinematics (`real.kinematics.UR_DH`), and
    `wrench_reference`: "flange" or "tcp", the point its wrench's torque is about
    (`real.kinematics.wrench_reference`)."""

    dh_params: tuple[tuple[float, float, float], ...]
    wrench_reference: str

    def getActualTCPPose(self) -> list[float]: ...
    def getActualQ(self) -> list[float]: ...
    def getActualTCPForce(self) -> list[float]: ...
    def getActualTCPSpeed(self) -> list[float]: ...
    def getActualDigitalInputBits(self) -> int: ...
    def getTimestamp(self) -> float: ...
    def getSafetyMode(self) -> int: ...
    def isProtectiveStopped(self) -> bool: ...
    def isEmergencyStopped(self) -> bool: ...
    def isProgramRunning(self) -> bool: ...
    def servoL(
        self,
        pose: list[float],
        speed: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool: ...
    def servoStop(self, a: float = 10.0) -> bool: ...
    def stopL(self, a: float = 10.0, asynchronous: bool = False) -> None: ...
    def zeroFtSensor(self) -> bool: ...
    def setPayload(self, mass: float, cog: list[float]) -> bool: ...
    def setTcp(self, tcp_offset: list[float]) -> bool: ...
    def setWatchdog(self, min_frequency: float = 10.0) -> bool: ...
    def kickWatchdog(self) -> bool: ...
    def teachMode(self) -> bool: ...
    def endTeachMode(self) -> bool: ...
    def initPeriod(self) -> datetime.timedelta: ...
    def waitPeriod(self, t_cycle_start: datetime.timedelta) -> None: ...
    def disconnect(self) -> None: ...


_now = time.monotonic


@contextlib.contextmanager
def _c_stderr_captured() -> Iterator[Callable[[], list[str]]]:
    """Send what C code writes to file descriptor 2 to a file meanwhile; yields a function
    returning its lines (stripped, non-empty). What was captured is written back to stderr
    when the block ends without an exception, so nothing a working connection says is lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)

        def lines() -> list[str]:
            sink.seek(0)
            return [line.strip() for line in sink.read().decode(errors="replace").splitlines()
                    if line.strip()]
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        for line in lines():  # only reached without an exception
            print(line, file=sys.stderr)


def control_rate_hz(robot: Any) -> float | None:
    """The control rate [Hz] a backend's waitPeriod keeps, where it says (a `URBackend`'s
    config, the twin's period, either inside a `real.faults.FaultInjector`); None otherwise."""
    rate = getattr(getattr(robot, "config", None), "frequency_hz", None)
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        return float(rate)
    period = getattr(robot, "period_s", None)
    if isinstance(period, int | float) and not isinstance(period, bool) and period > 0:
        return 1.0 / period
    return None


def check_servo_rate(robot: Any, servo_hz: float | None) -> float:
    """The servo rate [Hz] to run `robot` at: `servo_hz`, which must be the backend's own rate
    where it says one, else that rate, else 500 (e-Series). A 125 Hz backend run at the
    default 500 Hz integrated 2 ms per 8 ms period: the policy ran 4x slower than `env.dt`
    said, every reported cycle time 4x short (real23)."""
    rate = control_rate_hz(robot)
    if servo_hz is None:
        return rate or 500.0
    if rate is not None and abs(servo_hz - rate) > 1e-9 * rate:
        raise ValueError(f"servo_hz={servo_hz:g} contradicts the robot backend's control rate "
                         f"of {rate:g} Hz; give servo_hz={rate:g} or leave it out")
    return servo_hz


class URBackend:
    """A physical UR arm over ur_rtde: one control and one receive interface at `frequency_hz`.

    Connecting sets the TCP offset (setTcp) and the payload (setPayload); the environment arms
    the RTDE watchdog (setWatchdog) at its first reset. The other methods forward to ur_rtde.
    """

    def __init__(self, config: URConfig, default_tcp_offset: list[float]) -> None:
        import rtde_control
        import rtde_receive

        self.config = config
        #: Nominal kinematics of the arm (`real.kinematics`), for the safety layer's check.
        self.dh_params = UR_DH[config.model]
        #: Where its actual_TCP_force's torque is taken: the flange (e-Series), the TCP (CB3).
        self.wrench_reference = config.wrench_reference or wrench_reference(config.model)
        self._period_s = 1.0 / config.frequency_hz
        self._servo_sent_s = -float("inf")
        # ur_rtde prints its own "connect: Connection refused" to the C stderr before raising
        # "Error: Could not connect to: HOST at PORT, verify the IP": two lines for one fault.
        with _c_stderr_captured() as printed:
            receive = None
            try:
                # The receive interface first: a stopped arm refuses the control script, and
                # only its safety mode says why (a protective stop read as "is it on this
                # network?" after 5 s: real20).
                receive = rtde_receive.RTDEReceiveInterface(config.host, config.frequency_hz)
                self.control = rtde_control.RTDEControlInterface(config.host, config.frequency_hz)
                self.receive = receive
            except RuntimeError as err:
                stopped, idle = _stopped_mode(receive), _not_running(receive)
                if receive is not None:  # its connection, not left to the collector
                    with contextlib.suppress(Exception):
                        receive.disconnect()
                if stopped is not None:
                    raise ConnectionError(
                        f"the robot at {config.host} is in a {stopped} and refuses the control "
                        "script: find the cause, clear it on the teach pendant, then run the "
                        "command again") from None
                if idle is not None:
                    raise ConnectionError(
                        f"the robot at {config.host} is not running (robot mode: {idle}) and "
                        "refuses the control script: power it on and release the brakes on the "
                        "teach pendant, then run the command again") from None
                if "already in use" in str(err):  # ur_rtde's advice is about fieldbus adapters
                    raise ConnectionError(
                        f"the robot at {config.host} has its RTDE input registers in use: "
                        "another session (insertbench, a ur_rtde script) or a fieldbus adapter "
                        "(EtherNet/IP, PROFINET, MODBUS) holds them; stop it, then run the "
                        "command again") from None
                said = "; ".join(printed())
                raise ConnectionError(
                    f"cannot reach the robot at {config.host}: {str(err).removeprefix('Error: ')}"
                    f"{f' ({said})' if said else ''}; is it on, in remote control, on this "
                    "network?") from None
        tcp = list(config.tcp_offset) if config.tcp_offset is not None else default_tcp_offset
        self.tcp_offset = tuple(float(v) for v in tcp)  # recorded by a calibration
        refused = None
        try:
            if not self.control.setTcp(tcp):
                refused = f"setTcp({tcp})"
            elif config.payload_kg is not None:
                cog = list(config.payload_cog_m or (0.0, 0.0, 0.0))
                if not self.control.setPayload(config.payload_kg, cog):
                    refused = f"setPayload({config.payload_kg}, {cog})"
        except BaseException:
            self._disconnect_quietly()
            raise
        if refused is not None:
            # Closed here: the caller never gets this backend to disconnect, and the uploaded
            # control script kept running with both connections open (real21).
            self._disconnect_quietly()
            raise ConnectionError(f"the controller at {config.host} refused {refused}: check "
                                  "the tool and payload settings on the teach pendant (a "
                                  "value outside its limits, a program holding them)")

    def _disconnect_quietly(self) -> None:
        """`disconnect`, each step whatever the one before did, while another error is being
        raised."""
        with contextlib.suppress(Exception):
            if self.control.isConnected():
                self.control.servoStop()
                self.control.stopScript()
        for end in (self.control.disconnect, self.receive.disconnect):
            with contextlib.suppress(Exception):
                end()
        self.control = self.receive = None

    # Receive interface.
    def getActualTCPPose(self) -> list[float]:
        return self.receive.getActualTCPPose()

    def getActualQ(self) -> list[float]:
        return self.receive.getActualQ()

    def getActualTCPForce(self) -> list[float]:
        return self.receive.getActualTCPForce()

    def getActualTCPSpeed(self) -> list[float]:
        return self.receive.getActualTCPSpeed()

    def getActualDigitalInputBits(self) -> int:
        return self.receive.getActualDigitalInputBits()

    def getTimestamp(self) -> float:
        return self.receive.getTimestamp()

    def getSafetyMode(self) -> int:
        return self.receive.getSafetyMode()

    def isProtectiveStopped(self) -> bool:
        return self.receive.isProtectiveStopped()

    def isEmergencyStopped(self) -> bool:
        return self.receive.isEmergencyStopped()

    # Control interface.
    def isProgramRunning(self) -> bool:
        # After a dropped connection ur_rtde (1.6.5) does not recover cleanly: the receive
        # interface stops (its readings freeze) and the control interface reconnects and
        # re-uploads its script again and again. A dropped link therefore raises: the safety
        # layer trips "connection" and stops, and the user reconnects (a new `real.make`).
        # (It read as a stopped script, a "robot_refused" trip sending the user to the pendant.)
        if not self.receive.isConnected():
            raise ConnectionError(f"the link to the robot at {self.config.host} is lost (a "
                                  "pulled cable, a controller reboot?); reconnect")
        self._require_link("isProgramRunning")
        return self.control.isProgramRunning()

    def servoL(
        self,
        pose: list[float],
        speed: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool:
        accepted = self.control.servoL(pose, speed, acceleration, time, lookahead_time, gain)
        self._servo_sent_s = _now()
        return accepted

    def servoStop(self, a: float = 10.0) -> bool:
        # On a lost link ur_rtde's command reconnects first, and waited for ever for a
        # controller that had gone (a reboot, a pulled cable): the trip that called it hung,
        # deaf to Ctrl-C. The controller's RTDE watchdog stops a script nobody feeds.
        if not self.control.isConnected():
            return False
        return self.control.servoStop(a)

    def stopL(self, a: float = 10.0, asynchronous: bool = False) -> None:
        if self.control.isConnected():  # as servoStop
            self.control.stopL(a, asynchronous)

    def link_lost(self) -> bool:
        """Whether ur_rtde's control interface has lost its connection (after which it
        reconnects in a loop, and tearing it down can crash the process: README)."""
        return self.control is not None and not (self.control.isConnected()
                                                 and self.receive.isConnected())

    def _require_link(self, command: str) -> None:
        # As servoStop: on a lost link ur_rtde's command reconnects first and waits for ever
        # (`endTeachMode` after a controller went at a calibration prompt hung, deaf to Ctrl-C).
        if not self.control.isConnected():
            raise ConnectionError(f"{command}: the link to the robot at {self.config.host} is "
                                  "lost (a pulled cable, a controller reboot?); reconnect")

    def zeroFtSensor(self) -> bool:
        self._require_link("zeroFtSensor")
        return self.control.zeroFtSensor()

    def setPayload(self, mass: float, cog: list[float]) -> bool:
        self._require_link("setPayload")
        return self.control.setPayload(mass, cog)

    def setTcp(self, tcp_offset: list[float]) -> bool:
        self._require_link("setTcp")
        return self.control.setTcp(tcp_offset)

    def setWatchdog(self, min_frequency: float = 10.0) -> bool:
        self._require_link("setWatchdog")
        return self.control.setWatchdog(min_frequency)

    def kickWatchdog(self) -> bool:
        # ur_rtde's kick is an input package that writes 0 ("no command") to
        # input_int_register_0, and its control script reads that register once per control
        # cycle: a kick sent right after servoL replaces the servoL before the script sees it
        # (on the RTDE twin, `insertbench real serve-twin`, most servo commands were lost).
        # The servoL package updates the same register, the one the RTDE watchdog watches,
        # so within a period of a servoL the watchdog is already fed.
        if _now() - self._servo_sent_s < self._period_s:
            return True
        return self.control.kickWatchdog()

    def teachMode(self) -> bool:
        self._require_link("teachMode")
        return self.control.teachMode()

    def endTeachMode(self) -> bool:
        self._require_link("endTeachMode")
        return self.control.endTeachMode()

    def initPeriod(self) -> datetime.timedelta:
        return self.control.initPeriod()

    def waitPeriod(self, t_cycle_start: datetime.timedelta) -> None:
        self.control.waitPeriod(t_cycle_start)

    def disconnect(self) -> None:
        if self.control.isConnected():  # else these waited for ever (see servoStop)
            self.control.servoStop()
            self.control.stopScript()
        self.control.disconnect()
        self.receive.disconnect()
        # Let go of ur_rtde's interfaces now: a safety trip's traceback keeps this backend in
        # a reference cycle, and their destructor (about 1 s, holding the GIL) ran whenever
        # the garbage collector came by, in the next env's 500 Hz loop, whose RTDE watchdog
        # then stopped the arm.
        self.control = self.receive = None
