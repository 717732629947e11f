"""Digital twins of the cell for tests and CI: the robot and the cameras without hardware.

`DigitalTwinRobot` implements the `RobotBackend` methods (ur_rtde's names and units) on top of
the simulated task (`envs.InsertionEnv`, MuJoCo): servoL moves the simulated impedance
reference to the commanded pose and integrates the physics for the command's duration, the
F/T reading is the simulated wrist sensor with a constant bias until zeroFtSensor, the
continuity input closes when the simulated plug is mated, and stops (protective, emergency,
RTDE watchdog) refuse motion like the controller does. Every call that could move or configure
the robot is recorded in `commands` (the most recent `COMMANDS_KEPT`), so tests can check what
reached the "robot".

`TwinCameraFeed` renders a simulated camera and pushes the frames through pyrealsense2's
`software_device` into a `syncer`, so cameras are read through the genuine library path.

Base frame of the twin: origin at the simulated UR5e's base, axes along the world axes.
"""

from __future__ import annotations

import datetime
import itertools
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from envs.connectors import MM
from envs.controller import rotvec_to_quat
from envs.insertion_env import InsertionEnv
from envs.rendering import CameraRig
from envs.scene import tcp_offset_pose
from envs.tasks import TaskSpec, task_spec
from envs.ur5e_constants import DH_PARAMS, JOINT_NAMES
from real.camera import Camera, import_realsense
from real.poses import pos_mat_to_pose

#: A plausible uncompensated F/T offset [N, N m] (base frame) until zeroFtSensor is called.
DEFAULT_FT_BIAS = (1.5, -0.8, 3.0, 0.05, -0.02, 0.01)
#: How far past the seat, along the socket axis, the simulated operator aims when seating a
#: plug by hand [m]: a hand pushes until the plug stops. Aimed at the seat itself, the arm's
#: impedance reference left plugs with mating forces short of it (USB-v1 1.8 mm, UK AC 3.8 mm,
#: NEMA 14-30 4.2 mm); 6-20 mm past it they bottom out within 0.3 mm.
HAND_PUSH_PAST_SEAT_M = 0.01
#: Where the operator's hand puts the plug (`hand_target`), along the socket axis [m]: "seated"
#: pushes it home (this far above the seated pose); "above" and "lifted" hold its face this far
#: above the socket's mouth, as calibration's prompts ask (a touch-off's descent must find the
#: mouth open; "above" used to be 4 mm above the seat, inside the socket).
HAND_TARGETS_M = {"seated": -HAND_PUSH_PAST_SEAT_M, "above": 0.003, "lifted": 0.008}
#: Time constant of the force estimate behind the twin's protective stop [s].
PROTECTIVE_STOP_FILTER_S = 0.01
#: Commands `CommandLog` keeps: 200 s of servoL at 500 Hz (~50 MB). Kept all, a serve-twin
#: grew by ~850 MB an hour, and the in-process twin by ~23 kB an env step (real18).
COMMANDS_KEPT = 100_000


@dataclass(frozen=True)
class TwinCommand:
    """One call received by the twin: method name, arguments, twin clock [s], and the TCP pose
    when it arrived (base frame, [m] and rotation vector [rad]): what a command after a stop
    starts from. None for a servoL right after another, which starts from that one (not read
    at every 2 ms servo command)."""

    name: str
    args: tuple[Any, ...]
    time_s: float
    tcp_pose: tuple[float, ...] | None


class CommandLog:
    """The twin's most recent commands (`COMMANDS_KEPT`), numbered from the first it received,
    as a list of all of them would be: ``log[len(log) - 3:]`` are the last three, whatever was
    dropped before them; asking for a dropped one is an IndexError. `counts`: every command's
    name, counted since the first."""

    def __init__(self, keep: int = COMMANDS_KEPT) -> None:
        self._kept: deque[TwinCommand] = deque(maxlen=keep)
        self._received = 0
        self.counts: Counter[str] = Counter()

    def append(self, command: TwinCommand) -> None:
        self._kept.append(command)
        self._received += 1
        self.counts[command.name] += 1

    def __len__(self) -> int:
        return self._received

    def __iter__(self):
        return iter(self._kept)

    def __reversed__(self):
        return reversed(self._kept)

    def __eq__(self, other: object) -> bool:
        return list(self._kept) == other if isinstance(other, list) else NotImplemented

    def __getitem__(self, index: int | slice):
        first = self._received - len(self._kept)
        if isinstance(index, slice):
            wanted = range(*index.indices(self._received))
            if wanted and min(wanted[0], wanted[-1]) < first:
                raise IndexError(f"commands before #{first} were dropped (the twin keeps the "
                                 f"last {self._kept.maxlen})")
            if wanted.step == 1:  # the usual log[start:], without indexing the deque
                return list(itertools.islice(self._kept, max(wanted.start - first, 0),
                                             max(wanted.stop - first, 0)))
            kept = list(self._kept)
            return [kept[i - first] for i in wanted]
        position = index + self._received if index < 0 else index
        if not first <= position < self._received:
            raise IndexError(f"no command #{index} kept (the twin keeps the last "
                             f"{self._kept.maxlen} of {self._received})")
        return self._kept[position - first]


class DigitalTwinRobot:
    """A UR arm stand-in driven by the MuJoCo task; see the module docstring.

    task: task ID or spec; seed: the simulated episode's seed (grasp noise, friction);
    sim_kwargs: `InsertionEnv` kwargs (e.g. grasp_noise_mm). protective_stop_force_n: net
    force on the tool [N] beyond which the twin enters a protective stop, like the controller's
    force limit (150 N on a UR by default). continuity_input: the digital input that closes
    when the plug is mated. frequency_hz: the control period waitPeriod integrates to.
    servoL only sets the target, as on the robot; time passes in waitPeriod.
    """

    def __init__(
        self,
        task: str | TaskSpec,
        *,
        seed: int = 0,
        ft_bias: tuple[float, ...] = DEFAULT_FT_BIAS,
        protective_stop_force_n: float = 150.0,
        continuity_input: int = 0,
        frequency_hz: float = 500.0,
        **sim_kwargs: Any,
    ) -> None:
        spec = task_spec(task) if isinstance(task, str) else task
        self.sim = InsertionEnv(spec, **sim_kwargs)
        self.sim.reset(seed=seed)
        m, d = self.sim.model, self.sim.data
        self.base_pos = d.xpos[m.body("base").id].copy()
        self._tcp = m.site("tcp").id
        self._arm_qpos = [int(m.joint(name).qposadr[0]) for name in JOINT_NAMES]
        #: The simulated arm's kinematics (its links are built from these DH parameters) and
        #: its flange-to-TCP pose [m, rad] (the simulated gripper's; setTcp leaves it).
        self.dh_params = DH_PARAMS
        self.tcp_offset = tuple(tcp_offset_pose(spec.connector))
        #: A UR5e's (e-Series) wrench carries its torque about the flange.
        self.wrench_reference = "flange"
        self._mocap = int(m.body("reference").mocapid[0])
        self._force = m.sensor("ft_force").id
        self._torque = m.sensor("ft_torque").id
        self._contact = m.sensor("plug_contact").id
        self.ft_bias = np.asarray(ft_bias, dtype=np.float64)
        self.protective_stop_force_n = protective_stop_force_n
        self.continuity_input = continuity_input
        self.period_s = 1.0 / frequency_hz
        self.commands = CommandLog()
        self.time_s = 0.0
        self._stall_s = 0.0
        self._ft_zero = np.zeros(6)
        self.protective_stopped = False
        self.emergency_stopped = False
        self.program_running = True
        self.in_teach_mode = False
        self.watchdog_fired = False
        self._watchdog_period_s: float | None = None
        self._last_kick_s: float | None = None
        self.peak_contact_force_n = 0.0
        self._filtered_force = 0.0
        #: The wrench (`_sensed_wrench`) averaged over the last period's physics steps; None
        #: before the first.
        self._period_wrench: np.ndarray | None = None

    # ----------------------------------------------------------------------------------------
    # Twin-only controls (what an operator or a fault would do)

    def clock(self) -> float:
        """The twin's clock [s]: simulated time plus injected stalls."""
        return self.time_s + self._stall_s

    def stall(self, seconds: float) -> None:
        """Let `seconds` pass without commands (a hung policy or a slow camera)."""
        self._stall_s += seconds

    def trigger_emergency_stop(self) -> None:
        self.emergency_stopped = True
        self._brake()

    def unlock(self) -> None:
        """Clear protective stops (the pendant's unlock)."""
        self.protective_stopped = False

    def socket_pose(self) -> np.ndarray:
        """True seated TCP pose of the simulated cell (base frame) [m, rad], for checking
        calibration."""
        return pos_mat_to_pose(self.sim.goal_pos - self.base_pos, self.sim.start_mat)

    def hand_target(self, where: str) -> np.ndarray:
        """The TCP pose (base frame) [m, rad] the operator's hand aims at for `where`, a key of
        `HAND_TARGETS_M` (the serve-twin's `hand-guide`, the CLI's twin operator)."""
        if where not in HAND_TARGETS_M:
            raise ValueError(f"hand-guide target must be one of {sorted(HAND_TARGETS_M)}")
        seat, mat = self.sim.goal_pos - self.base_pos, self.sim.start_mat  # `socket_pose`'s
        height = HAND_TARGETS_M[where]
        if where != "seated":  # above the mouth, `seat_depth_mm` above the seat
            height += self.sim.task.seat_depth_mm * MM
        return pos_mat_to_pose(seat - mat[:, 2] * height, mat)

    def operator_move_to(self, pose: np.ndarray, duration_s: float = 1.0) -> None:
        """Move the arm by hand (teach mode) to a base-frame pose, physically in the sim."""
        if not self.in_teach_mode:
            raise RuntimeError("the arm only moves by hand in teach mode (call teachMode first)")
        start = self.sim.data.mocap_pos[self._mocap].copy()
        target = np.asarray(pose[:3]) + self.base_pos
        steps = max(1, int(duration_s / self.sim.model.opt.timestep))
        self.sim.data.mocap_quat[self._mocap] = rotvec_to_quat(np.asarray(pose[3:], float))
        for i in range(1, steps + 1):
            self.sim.data.mocap_pos[self._mocap] = start + (target - start) * min(
                1.0, 2 * i / steps
            )
            self._step(1)

    # ----------------------------------------------------------------------------------------
    # RTDE receive interface

    def getActualTCPPose(self) -> list[float]:
        d = self.sim.data
        pose = pos_mat_to_pose(
            d.site_xpos[self._tcp] - self.base_pos, d.site_xmat[self._tcp].reshape(3, 3)
        )
        return [float(v) for v in pose]

    def getActualQ(self) -> list[float]:
        """The arm's joint angles [rad], base to wrist 3."""
        return [float(v) for v in self.sim.data.qpos[self._arm_qpos]]

    def getActualTCPForce(self) -> list[float]:
        """The environment's wrench on the tool [N, N m], base frame, its torque about the
        flange, as a UR5e (e-Series) reports it (`wrench_reference`; the safety layer turns it
        into the TCP frame, the sim's `wrench`: `real.safety.tcp_wrench`)."""
        # The mean over the control period, as a controller's estimate is: the last physics
        # step's alone made a 2 ms impact of ~250 N at the chamfer a whole 8 ms sample at
        # 125 Hz (CB3), which tripped the 120 N limit where 500 Hz read 41 N (real19).
        sensed = self._sensed_wrench() if self._period_wrench is None else self._period_wrench
        return [float(v) for v in sensed + self.ft_bias - self._ft_zero]

    def _sensed_wrench(self) -> np.ndarray:
        """The wrist sensor's wrench now [N, N m], base frame, about the flange, unbiased."""
        d = self.sim.data
        mat = d.site_xmat[self._tcp].reshape(3, 3)
        # As in envs.insertion_env: the sensors measure the tool on the wrist, in the TCP
        # orientation, about the wrist sensor (at the flange); the environment's wrench on the
        # tool is the negative. Until 2026-12-06 its torque was moved to the TCP, as a CB3
        # reports it, where an e-Series reports the flange's (real17).
        return np.concatenate([mat @ -d.sensor(self._force).data,
                               mat @ -d.sensor(self._torque).data])

    def getRawTCPForce(self) -> list[float]:
        """The F/T reading before zeroFtSensor's offset (RTDE `ft_raw_wrench`) [N, N m]."""
        return [float(v) for v in np.asarray(self.getActualTCPForce()) + self._ft_zero]

    def getActualTCPSpeed(self) -> list[float]:
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(
            self.sim.model, self.sim.data, mujoco.mjtObj.mjOBJ_SITE, self._tcp, vel, 0
        )
        return [float(v) for v in np.concatenate([vel[3:], vel[:3]])]

    def getActualDigitalInputBits(self) -> int:
        mated = self.sim.insertion_depth_mm() >= self.sim.task.connector.success_depth_mm
        return (1 << self.continuity_input) if mated else 0

    def getTimestamp(self) -> float:
        """The controller's clock [s]: it runs on through stalls of the policy."""
        return self.clock()

    def getSafetyMode(self) -> int:
        if self.emergency_stopped:
            return 7
        return 3 if self.protective_stopped else 1

    def isProtectiveStopped(self) -> bool:
        return self.protective_stopped

    def isEmergencyStopped(self) -> bool:
        return self.emergency_stopped

    # ----------------------------------------------------------------------------------------
    # RTDE control interface

    def isProgramRunning(self) -> bool:
        self._check_watchdog()
        return self.program_running

    def servoL(
        self,
        pose: list[float],
        speed: float,
        acceleration: float,
        time: float,
        lookahead_time: float,
        gain: float,
    ) -> bool:
        self.record("servoL", list(pose), speed, acceleration, time, lookahead_time, gain)
        if not self._can_move():
            return False
        p = np.asarray(pose, dtype=np.float64)
        d = self.sim.data
        d.mocap_pos[self._mocap] = p[:3] + self.base_pos
        d.mocap_quat[self._mocap] = rotvec_to_quat(p[3:])
        return True

    def servoStop(self, a: float = 10.0) -> bool:
        self.record("servoStop", a)
        self._brake()
        return True

    def stopL(self, a: float = 10.0, asynchronous: bool = False) -> None:
        self.record("stopL", a, asynchronous)
        self._brake()

    def zeroFtSensor(self) -> bool:
        self.record("zeroFtSensor")
        self._ft_zero = self._ft_zero + np.asarray(self.getActualTCPForce())
        return True

    def setPayload(self, mass: float, cog: list[float]) -> bool:
        self.record("setPayload", mass, list(cog))
        return True

    def setTcp(self, tcp_offset: list[float]) -> bool:
        self.record("setTcp", list(tcp_offset))
        return True

    def setWatchdog(self, min_frequency: float = 10.0) -> bool:
        self.record("setWatchdog", min_frequency)
        self._watchdog_period_s = 1.0 / min_frequency
        self._last_kick_s = self.clock()
        return True

    def kickWatchdog(self) -> bool:
        self._check_watchdog()
        self._last_kick_s = self.clock()
        return True

    def teachMode(self) -> bool:
        self.record("teachMode")
        self.in_teach_mode = True
        return True

    def endTeachMode(self) -> bool:
        """The hand lets go and the arm holds where it is: a hand that had pushed the plug
        towards a target past the seat went on pressing until the next servoL, and a touch-off
        measured its F/T bias under that press (real28)."""
        self.record("endTeachMode")
        self.in_teach_mode = False
        self._brake()
        return True

    def triggerProtectiveStop(self) -> bool:
        self.record("triggerProtectiveStop")
        self.protective_stopped = True
        self._brake()
        return True

    def initPeriod(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.clock())

    def waitPeriod(self, t_cycle_start: datetime.timedelta) -> None:
        """Integrate the physics to the end of the control period started at `t_cycle_start`
        (the twin's time passes here, as wall time does on the robot)."""
        remaining = t_cycle_start.total_seconds() + self.period_s - self.clock()
        self._step(max(0, round(remaining / self.sim.model.opt.timestep)))

    def disconnect(self) -> None:
        self.record("disconnect")

    # ----------------------------------------------------------------------------------------

    def record(self, name: str, *args: Any) -> None:
        """Log a call in `commands` (for a front end, such as the RTDE emulator, that takes
        it in another form)."""
        in_motion = name == "servoL" and self.commands and self.commands[-1].name == "servoL"
        pose = None if in_motion else tuple(self.getActualTCPPose())
        self.commands.append(TwinCommand(name, args, self.clock(), pose))

    def _can_move(self) -> bool:
        self._check_watchdog()
        return (
            self.program_running
            and not self.protective_stopped
            and not self.emergency_stopped
            and not self.in_teach_mode
        )

    def _check_watchdog(self) -> None:
        if self._watchdog_period_s is None or self._last_kick_s is None:
            return
        if self.clock() - self._last_kick_s > self._watchdog_period_s:
            # ur_rtde's watchdog action: the control script ends and the arm stops.
            self.watchdog_fired = True
            self.program_running = False
            self._brake()

    def _brake(self) -> None:
        d = self.sim.data
        d.mocap_pos[self._mocap] = d.site_xpos[self._tcp]
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[self._tcp])
        d.mocap_quat[self._mocap] = quat

    def _step(self, n: int) -> None:
        m, d = self.sim.model, self.sim.data
        wrench_sum = np.zeros(6)
        for _ in range(n):
            mujoco.mj_step(m, d)
            wrench_sum += self._sensed_wrench()
            contact = float(np.linalg.norm(d.sensor(self._contact).data[:3]))
            self.peak_contact_force_n = max(self.peak_contact_force_n, contact)
            # The controller's force limit acts on its (filtered) estimate of the net external
            # force at the tool, not on single-step contact impulses.
            force = float(np.linalg.norm(d.sensor(self._force).data))
            self._filtered_force += (force - self._filtered_force) * min(
                1.0, m.opt.timestep / PROTECTIVE_STOP_FILTER_S
            )
            if self._filtered_force > self.protective_stop_force_n and not self.protective_stopped:
                self.protective_stopped = True
                self._brake()
        if n:
            self._period_wrench = wrench_sum / n
        self.time_s += n * m.opt.timestep


class TwinCameraFeed:
    """A simulated RealSense: renders `name` from the twin and injects the frames into a
    pyrealsense2 software_device; `camera()` reads them back through a syncer.

    width/height: the native stream size [px]. `drop_next(n)` skips the next n injections, so
    the reader sees pyrealsense2's own timeout errors.
    """

    def __init__(
        self, twin: DigitalTwinRobot, name: str, width: int = 160, height: int = 120
    ) -> None:
        rs = import_realsense()

        self.twin = twin
        self.name = name
        self.width, self.height = width, height
        self.device = rs.software_device()
        self.sensor = self.device.add_sensor(f"{name} (digital twin)")
        intrinsics = rs.intrinsics()
        intrinsics.width, intrinsics.height = width, height
        intrinsics.fx = intrinsics.fy = float(width)
        intrinsics.ppx, intrinsics.ppy = width / 2, height / 2
        intrinsics.model = rs.distortion.none
        intrinsics.coeffs = [0.0] * 5
        stream = rs.video_stream()
        stream.type, stream.index, stream.uid = rs.stream.color, 0, 0
        stream.width, stream.height, stream.fps = width, height, 30
        stream.bpp, stream.fmt, stream.intrinsics = 3, rs.format.rgb8, intrinsics
        self.profile = self.sensor.add_video_stream(stream)
        self.syncer = rs.syncer()
        self.sensor.open(self.profile)
        self.sensor.start(self.syncer)
        self.rig = CameraRig(twin.sim.model, height, width, grayscale=False, cameras=(self.name,))
        self._frame_numbers = itertools.count(1)
        self._pixels: np.ndarray | None = None
        self._drop = 0

    def drop_next(self, n: int) -> None:
        self._drop += n

    def inject(self) -> None:
        """Render the current simulated view and hand it to the software device."""
        rs = import_realsense()

        if self._drop > 0:
            self._drop -= 1
            return
        self._pixels = np.ascontiguousarray(self.rig.render(self.twin.sim.data, self.name))
        frame = rs.software_video_frame()
        frame.pixels = self._pixels
        frame.bpp = 3
        frame.stride = self.width * 3
        number = next(self._frame_numbers)
        frame.timestamp = self.twin.time_s * 1000.0 + number * 1e-3
        frame.domain = rs.timestamp_domain.hardware_clock
        frame.frame_number = number
        frame.profile = self.profile.as_video_stream_profile()
        self.sensor.on_video_frame(frame)

    def camera(self, timeout_ms: int = 100, retries: int = 3) -> Camera:
        return Camera(
            self.name,
            self.syncer,
            timeout_ms=timeout_ms,
            retries=retries,
            before_wait=self.inject,
            on_close=self.close,
            describe="digital twin software_device",
        )

    def close(self) -> None:
        self.sensor.stop()
        self.sensor.close()
        self.rig.close()
