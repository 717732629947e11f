"""A UR e-Series controller stand-in around the MuJoCo twin: what ur_rtde's control script does.

`RTDEControlInterface` (ur_rtde, the pinned version) uploads a URScript program,
`rtde_control`, and then talks to it through RTDE registers: it writes a command number to
`input_int_register_0` and the arguments to `input_double_register_0..`, and the program
answers in `output_int_register_0` (1: ready for a command, 2: done with it). Every control
cycle (2 ms) the program reads the command register and
- for the real-time commands (servoL among them) executes the command and signals ready in
  the same cycle, without waiting for the client;
- for the others executes the command once, signals done, and waits until the client clears
  the register (0) before it signals ready again;
- on 255 ends.
`EmulatedController` runs that loop in Python on the registers the RTDE server latched, and
executes the commands on a `real.twin.DigitalTwinRobot` (servoL moves the twin's impedance
reference; stops, F/T zeroing, payload, teach mode go to the twin). It also plays the parts of
the controller around the program: the TCP set with set_tcp (poses and speeds are reported
for it and servo targets read in it; the arm starts with the flange as TCP, like a robot
whose pendant has no TCP configured), the RTDE watchdog (rtde_set_watchdog with action
"stop": the program ends when `input_int_register_0` is not updated at the minimum rate),
protective and emergency stops (the program ends; an e-stop powers the arm off until it is
released, powered on and its brakes released), and the dashboard server's commands.

A command the emulation does not implement (anything outside the calls `real/` makes) ends the
program with an error instead of pretending to succeed. Registers are latched when the input
packages arrive and read once per cycle, as on the controller: two commands sent within one
cycle overwrite each other, and the program sees only the last.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.scene import tcp_offset_pose
from real.poses import pos_mat_to_pose, pose_to_pos_mat
from real.twin import DigitalTwinRobot

#: The controller version the twin reports (PolyScope 5.11, an e-Series UR5e).
CONTROLLER_VERSION = (5, 11, 1, 108318)
SERIAL_NUMBER = "20235500001"
#: Control cycle of an e-Series controller [s].
CYCLE_S = 0.002
#: Speed at which the operator hand-guides the arm in freedrive [m/s].
HAND_SPEED_M_S = 0.05

# RTDE runtime_state and robot_mode (RTDE guide).
RUNTIME_STOPPED, RUNTIME_PLAYING = 1, 2
ROBOT_MODE_POWER_OFF, ROBOT_MODE_IDLE, ROBOT_MODE_RUNNING = 3, 5, 7
JOINT_MODE_RUNNING = 253

# ur_rtde's command numbers (rtde.h, RobotCommand::Type) that the emulation executes.
CMD_NONE = 0
CMD_ZERO_FT_SENSOR = 8
CMD_SERVO_STOP = 16
CMD_SET_PAYLOAD = 17
CMD_TEACH_MODE = 18
CMD_END_TEACH_MODE = 19
CMD_SERVOL = 24
CMD_SET_TCP = 29
CMD_PROTECTIVE_STOP = 31
CMD_STOPL = 33
CMD_SET_WATCHDOG = 35
CMD_STOP_SCRIPT = 255
#: Commands the control script executes and answers within one cycle (rtde_control.script).
REALTIME_CMDS = frozenset({24, 11, 9, 10, 6, 25, 26, 27, 38, 58, 66, 67, 68, 69, 70, 71})
#: Signals in output_int_register_0.
READY_FOR_CMD, DONE_WITH_CMD = 1, 2

_PROGRAM = re.compile(r"^(def|sec)\s+(\w+)\s*\(\s*\)\s*:", re.MULTILINE)
_REG_OFFSET = re.compile(r"global\s+reg_offset_int\s*=\s*(\d+)")
#: Register offsets of rtde_control: the lower range, or the upper with ur_rtde's flag.
REGISTER_OFFSETS = (0, 24)


class NotEmulated(RuntimeError):
    """The control script was asked for something the emulation does not implement."""


@dataclass
class ControlProgram:
    """The running rtde_control program: its register offset (0, or 24 with ur_rtde's upper
    range flag), whether a regular command is being executed, servoing, the watchdog."""

    name: str
    reg_offset: int
    executing_cmd: bool = False
    servoing: bool = False
    watchdog_min_hz: float | None = None
    watchdog_fed_s: float = 0.0
    watchdog_expired: bool = False  # the operator's `watchdog`: fires at the next cycle


@dataclass
class ControllerLog:
    """What happened on the controller, for the operator: (controller time [s], line)."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    echo: Callable[[str], None] | None = None

    def add(self, time_s: float, line: str) -> None:
        self.lines.append((time_s, line))
        if self.echo is not None:
            self.echo(f"[{time_s:9.3f} s] {line}")


class EmulatedController:
    """The controller around `twin` (see the module docstring). Not thread-safe: the RTDE
    server calls it from its single event loop."""

    def __init__(self, twin: DigitalTwinRobot, log: ControllerLog | None = None) -> None:
        self.twin = twin
        self.log = log or ControllerLog()
        self.time_s = 0.0
        self.in_int = [0] * 48
        self.in_double = [0.0] * 48
        self.in_int_updated_s = [0.0] * 48
        self.out_int = [0] * 48
        self.out_double = [0.0] * 48
        self.program: ControlProgram | None = None
        self.powered = True
        self.brakes_released = True
        self.payload_kg = 0.0
        self.payload_cog_m = (0.0, 0.0, 0.0)
        connector = twin.sim.task.connector
        self._sim_tcp = _transform(tcp_offset_pose(connector))
        self.set_tcp([0.0] * 6)
        self._last_target: list[float] | None = None
        m = twin.sim.model
        self._arm_qpos = [int(m.joint(n).qposadr[0]) for n in _ARM_JOINTS]
        self._arm_dof = [int(m.joint(n).dofadr[0]) for n in _ARM_JOINTS]
        self._hand_path: list[np.ndarray] = []

    # ----------------------------------------------------------------------------------------
    # The control cycle

    def tick(self) -> None:
        """One 2 ms controller cycle: watchdog, one pass of the control script's loop, physics."""
        self.time_s += CYCLE_S
        program = self.program
        if program is not None and program.watchdog_min_hz is not None:
            fed = max(self.in_int_updated_s[program.reg_offset], program.watchdog_fed_s)
            if program.watchdog_expired or self.time_s - fed > 1.0 / program.watchdog_min_hz:
                self.stop_program(
                    f"RTDE watchdog: input_int_register_{program.reg_offset} not updated at "
                    f"{program.watchdog_min_hz:g} Hz"
                )
        if self.program is not None:
            try:
                self._script_cycle(self.program)
            except NotEmulated as e:
                self.stop_program(f"runtime error in {self.program.name}: {e}")
        if self._hand_path and self.twin.in_teach_mode:
            self.twin.operator_move_to(self._hand_path.pop(0), CYCLE_S)
        else:
            self._hand_path = []
            self.twin.waitPeriod(self.twin.initPeriod())
        self._check_safety()

    def _script_cycle(self, program: ControlProgram) -> None:
        reg = program.reg_offset
        cmd = self.in_int[reg]
        if cmd in REALTIME_CMDS:
            self._process(program, cmd)
            self.out_int[reg] = READY_FOR_CMD
        elif cmd == CMD_NONE:
            program.executing_cmd = False
            self.out_int[reg] = READY_FOR_CMD
        elif not program.executing_cmd:
            program.executing_cmd = True
            if self._process(program, cmd):
                self.out_int[reg] = DONE_WITH_CMD

    def _process(self, program: ControlProgram, cmd: int) -> bool:
        """Execute one command as rtde_control.script does; False when the program ends."""
        twin, reg = self.twin, program.reg_offset
        d = self.in_double[reg : reg + 12]
        if cmd == CMD_SERVOL:
            pose = [float(v) for v in d[:6]]
            if not all(math.isfinite(v) for v in d[:11]):
                raise NotEmulated(f"servoL with non-finite arguments {d[:11]}")
            program.servoing = True
            self._last_target = pose
            twin.servoL(self._to_sim_tcp(pose), d[6], d[7], d[8], d[9], d[10])
        elif cmd == CMD_SERVO_STOP:
            program.servoing = False
            twin.servoStop(d[0])
        elif cmd == CMD_STOPL:
            twin.stopL(d[0], bool(self.in_int[reg + 1]))
        elif cmd == CMD_ZERO_FT_SENSOR:
            twin.zeroFtSensor()
        elif cmd == CMD_SET_PAYLOAD:
            cog = tuple(float(v) for v in d[1:4])
            if cog == (0.0, 0.0, 0.0):  # the script keeps the active centre of gravity
                cog = self.payload_cog_m
            self.payload_kg, self.payload_cog_m = float(d[0]), cog
            twin.setPayload(self.payload_kg, list(cog))
        elif cmd == CMD_SET_TCP:
            self.set_tcp([float(v) for v in d[:6]])
            twin.setTcp([float(v) for v in d[:6]])
        elif cmd == CMD_TEACH_MODE:
            twin.teachMode()
        elif cmd == CMD_END_TEACH_MODE:
            twin.endTeachMode()
        elif cmd == CMD_PROTECTIVE_STOP:
            twin.triggerProtectiveStop()
        elif cmd == CMD_SET_WATCHDOG:
            if not d[0] > 0:
                raise NotEmulated(f"rtde_set_watchdog with min frequency {d[0]}")
            program.watchdog_min_hz = float(d[0])
            program.watchdog_fed_s = self.time_s
            twin.record("setWatchdog", float(d[0]))
        elif cmd == CMD_STOP_SCRIPT:
            self.stop_program("received stop script")
            return False
        else:
            raise NotEmulated(
                f"ur_rtde command {cmd} is not emulated by the rehearsal robot (it emulates "
                f"servoL, servoStop, stopL, zeroFtSensor, setPayload, setTcp, setWatchdog, "
                f"teachMode, endTeachMode, triggerProtectiveStop, stopScript)"
            )
        return True

    def _check_safety(self) -> None:
        twin = self.twin
        if twin.emergency_stopped or twin.protective_stopped:
            if self.program is not None:
                kind = "emergency stop" if twin.emergency_stopped else "protective stop"
                self.stop_program(f"{kind}: the program is halted")

    # ----------------------------------------------------------------------------------------
    # Inputs and outputs

    def apply_inputs(self, names: list[str], values: list) -> None:
        """Latch the values of one RTDE input package (arrives between cycles)."""
        for name, value in zip(names, values, strict=True):
            kind, _, index = name.rpartition("_")
            if kind == "input_int_register":
                self.in_int[int(index)] = int(value)
                self.in_int_updated_s[int(index)] = self.time_s
            elif kind == "input_double_register":
                self.in_double[int(index)] = float(value)
            # external_force_torque: accepted (ur_rtde sets up the recipe), not used.

    def outputs(self) -> dict[str, Callable[[], Any]]:
        """Name -> current value of every output variable the twin serves."""
        twin = self.twin
        sim = twin.sim
        zeros6 = [0.0] * 6
        return {
            "timestamp": lambda: self.time_s,
            "actual_TCP_pose": self.actual_tcp_pose,
            "target_TCP_pose": lambda: self._last_target or self.actual_tcp_pose(),
            "actual_TCP_speed": self.actual_tcp_speed,
            "target_TCP_speed": self.actual_tcp_speed,
            # About the flange, whatever TCP the client set: the twin is a UR5e (e-Series).
            "actual_TCP_force": twin.getActualTCPForce,
            "ft_raw_wrench": twin.getRawTCPForce,
            "actual_digital_input_bits": twin.getActualDigitalInputBits,
            "actual_digital_output_bits": lambda: 0,
            "actual_q": lambda: [float(sim.data.qpos[i]) for i in self._arm_qpos],
            "target_q": lambda: [float(sim.data.qpos[i]) for i in self._arm_qpos],
            "actual_qd": lambda: [float(sim.data.qvel[i]) for i in self._arm_dof],
            "target_qd": lambda: [float(sim.data.qvel[i]) for i in self._arm_dof],
            "target_qdd": lambda: zeros6,
            "target_current": lambda: zeros6,
            "target_moment": lambda: zeros6,
            "actual_current": lambda: zeros6,
            "joint_control_output": lambda: zeros6,
            "joint_temperatures": lambda: [35.0] * 6,
            "actual_execution_time": lambda: 0.0,
            "robot_mode": self.robot_mode,
            "joint_mode": lambda: [JOINT_MODE_RUNNING] * 6,
            "safety_mode": twin.getSafetyMode,
            "safety_status_bits": self.safety_status_bits,
            "robot_status_bits": self.robot_status_bits,
            "runtime_state": self.runtime_state,
            "actual_tool_accelerometer": lambda: [0.0, 0.0, -9.81],
            "speed_scaling": lambda: 1.0,
            "target_speed_fraction": lambda: 1.0,
            "actual_momentum": lambda: 0.0,
            "actual_main_voltage": lambda: 48.0,
            "actual_robot_voltage": lambda: 48.0,
            "actual_robot_current": lambda: 0.0,
            "actual_joint_voltage": lambda: [48.0] * 6,
            "standard_analog_input0": lambda: 0.0,
            "standard_analog_input1": lambda: 0.0,
            "standard_analog_output0": lambda: 0.0,
            "standard_analog_output1": lambda: 0.0,
            "payload": lambda: self.payload_kg,
            "payload_cog": lambda: list(self.payload_cog_m),
            "payload_inertia": lambda: zeros6,
            **{f"output_int_register_{i}": _getter(self.out_int, i) for i in range(48)},
            **{f"output_double_register_{i}": _getter(self.out_double, i) for i in range(48)},
        }

    def actual_tcp_pose(self) -> list[float]:
        """The TCP set with set_tcp, base frame [m, rad]."""
        site = _transform(self.twin.getActualTCPPose())
        return [float(v) for v in _pose(site @ self._site_to_tcp)]

    def actual_tcp_speed(self) -> list[float]:
        """[v, omega] of the set TCP, base frame [m/s, rad/s]."""
        speed = np.asarray(self.twin.getActualTCPSpeed())
        site = _transform(self.twin.getActualTCPPose())
        lever = site[:3, :3] @ self._site_to_tcp[:3, 3]
        linear = speed[:3] + np.cross(speed[3:], lever)
        return [float(v) for v in np.concatenate([linear, speed[3:]])]

    def robot_mode(self) -> int:
        if not self.powered:
            return ROBOT_MODE_POWER_OFF
        return ROBOT_MODE_RUNNING if self.brakes_released else ROBOT_MODE_IDLE

    def runtime_state(self) -> int:
        return RUNTIME_PLAYING if self.program is not None else RUNTIME_STOPPED

    def safety_status_bits(self) -> int:
        twin = self.twin
        if twin.emergency_stopped:
            return (1 << 6) | (1 << 7)  # robot emergency stopped, is emergency stopped
        if twin.protective_stopped:
            return 1 << 2
        return 1  # normal mode

    def robot_status_bits(self) -> int:
        bits = 1 if self.powered else 0
        if self.program is not None:
            bits |= 1 << 1
        return bits

    # ----------------------------------------------------------------------------------------
    # Programs, the TCP, operator actions

    def run_program(self, script: str) -> None:
        """Start a URScript program sent to the script port: only ur_rtde's rtde_control can
        run here (emulated); it replaces a running program."""
        match = _PROGRAM.search(script)
        name = match.group(2) if match else "<unnamed>"
        if name != "rtde_control" or "# HEADER_BEGIN" not in script:
            self.log.add(
                self.time_s,
                f"cannot run URScript program {name!r}: the rehearsal robot emulates only "
                f"ur_rtde's rtde_control script",
            )
            return
        if self.program is not None:
            self.stop_program("replaced by a new program")
        if self.twin.emergency_stopped or self.twin.protective_stopped:
            self.log.add(self.time_s, f"{name} not started: the robot is stopped")
            return
        if self.robot_mode() != ROBOT_MODE_RUNNING:
            self.log.add(self.time_s, f"{name} not started: the arm is not powered and released")
            return
        offset = _REG_OFFSET.search(script)
        reg = int(offset.group(1)) if offset else 0
        if reg not in REGISTER_OFFSETS:  # 1000 ended the server in an IndexError
            self.log.add(self.time_s, f"{name} not started: register offset {reg}; ur_rtde "
                         f"uses {' or '.join(map(str, REGISTER_OFFSETS))}")
            return
        self.program = ControlProgram(name, reg)
        reg = self.program.reg_offset
        self.out_int[reg + 2] = 1 << 16  # reset_async_progress(): count 1, no operation
        self.out_int[reg] = READY_FOR_CMD
        self.twin.program_running = True
        self.log.add(self.time_s, f"program {name} started (register offset {reg})")

    def stop_program(self, reason: str) -> None:
        program = self.program
        if program is None:
            return
        self.program = None
        self.out_int[program.reg_offset] = 0
        self.twin.servoStop()
        if self.twin.in_teach_mode:  # freedrive is the program's: it ended with a client
            self.twin.endTeachMode()  # killed at a calibration prompt, and the next session's
            # servo commands then moved nothing (the twin refuses servoL in teach mode)
        self.twin.program_running = False
        self.log.add(self.time_s, f"program {program.name} stopped: {reason}")

    def set_tcp(self, offset: list[float]) -> None:
        """The flange-to-TCP pose [m, rad] (flange frame) the controller reports poses for."""
        self.tcp_offset = list(offset)
        self._site_to_tcp = np.linalg.inv(self._sim_tcp) @ _transform(offset)
        self._tcp_to_site = np.linalg.inv(self._site_to_tcp)

    def _to_sim_tcp(self, pose: list[float]) -> list[float]:
        return [float(v) for v in _pose(_transform(pose) @ self._tcp_to_site)]

    def emergency_stop(self) -> None:
        self.twin.trigger_emergency_stop()
        self.powered = self.brakes_released = False
        self._check_safety()
        self.log.add(self.time_s, "EMERGENCY STOP pressed: the arm is powered off")

    def release_emergency_stop(self) -> None:
        self.twin.emergency_stopped = False
        self.log.add(self.time_s, "e-stop released: power on and release the brakes")

    def protective_stop(self) -> None:
        self.twin.triggerProtectiveStop()
        self._check_safety()

    def hand_guide(self, where: str) -> None:
        """The operator moves the plug by hand (freedrive) to `where` (`real.twin.
        HAND_TARGETS_M`: above the socket's mouth, or pushed home), at HAND_SPEED_M_S, over the
        next cycles."""
        target, mat = pose_to_pos_mat(self.twin.hand_target(where))
        if not self.twin.in_teach_mode:
            raise ValueError("the arm moves by hand only in teach mode (freedrive)")
        start = np.asarray(self.twin.getActualTCPPose()[:3])
        n = max(1, int(np.linalg.norm(target - start) / (HAND_SPEED_M_S * CYCLE_S)))
        self._hand_path = [
            pos_mat_to_pose(start + (target - start) * i / n, mat) for i in range(1, n + 1)
        ]
        self._hand_path += [self._hand_path[-1]] * int(0.2 / CYCLE_S)  # let the arm settle

    def expire_watchdog(self) -> bool:
        """Let the armed RTDE watchdog fire at the next cycle (as if the inputs had stopped);
        False if none. A flag, not the feed times: a client's package arriving before that
        cycle fed them again, and a servoing client's watchdog never fired (real25)."""
        program = self.program
        if program is None or program.watchdog_min_hz is None:
            return False
        program.watchdog_expired = True
        return True

    # ----------------------------------------------------------------------------------------
    # Dashboard server (port 29999): one command per line, one reply line

    def dashboard(self, line: str) -> str:
        cmd = line.strip()
        low = cmd.lower()
        if low == "polyscopeversion":
            v = CONTROLLER_VERSION
            return f"URSoftware {v[0]}.{v[1]}.{v[2]}.{v[3]} (rehearsal twin)"
        if low == "get serial number":
            return SERIAL_NUMBER
        if low == "get robot model":
            return "UR5"
        if low == "is in remote control":
            return "true"
        if low == "stop":
            self.stop_program("stopped from the dashboard")
            return "Stopped"
        if low == "running":
            return f"Program running: {str(self.program is not None).lower()}"
        if low == "programstate":
            name = self.program.name if self.program is not None else "<unnamed>"
            return f"{'PLAYING' if self.program is not None else 'STOPPED'} {name}"
        if low == "robotmode":
            names = {3: "POWER_OFF", 5: "IDLE", 7: "RUNNING"}
            return f"Robotmode: {names[self.robot_mode()]}"
        if low in ("safetymode", "safetystatus"):
            names = {1: "NORMAL", 3: "PROTECTIVE_STOP", 7: "ROBOT_EMERGENCY_STOP"}
            label = "Safetymode" if low == "safetymode" else "Safetystatus"
            return f"{label}: {names[self.twin.getSafetyMode()]}"
        if low == "unlock protective stop":
            if not self.twin.protective_stopped:
                return "Cannot unlock protective stop, robot is not in protective stop"
            self.twin.unlock()
            self.log.add(self.time_s, "protective stop unlocked from the dashboard")
            return "Protective stop releasing"
        if low == "close safety popup":
            return "closing safety popup"
        if low == "close popup":
            return "closing popup"
        if low == "power on":
            if self.twin.emergency_stopped:
                return "Failed to execute: power on (emergency stop active)"
            self.powered = True
            return "Powering on"
        if low == "power off":
            self.stop_program("powered off")
            self.powered = self.brakes_released = False
            return "Powering off"
        if low == "brake release":
            if not self.powered:
                return "Failed to execute: brake release (power is off)"
            self.brakes_released = True
            return "Brake releasing"
        if low.startswith("addtolog "):
            self.log.add(self.time_s, f"log: {cmd[9:]}")
            return "Added log message"
        return f"could not understand: '{cmd}'"


_ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3")


def _getter(registers: list, index: int) -> Callable[[], Any]:
    return lambda: registers[index]


def _transform(pose: list[float] | np.ndarray) -> np.ndarray:
    pos, mat = pose_to_pos_mat(np.asarray(pose, dtype=np.float64))
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = mat, pos
    return t


def _pose(t: np.ndarray) -> np.ndarray:
    return pos_mat_to_pose(t[:3, 3], t[:3, :3])
