"""The task IDs on a physical UR arm: same spaces and semantics as `envs.InsertionEnv`."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from envs.connectors import MM
from envs.controller import limited_reference, mat_to_quat, quat_to_rotvec
from envs.insertion_env import build_spaces, p_controller_action
from envs.scene import ImpedanceGains
from envs.task_options import (
    CAMERAS,
    OBS_FRAMES,
    EpisodeSeeds,
    check_action,
    check_bool,
    check_choice,
    check_options,
    check_range,
    check_seed,
    check_workspace,
    control_steps,
    depth_in_socket_mm,
    is_mated,
    real_array,
    requested_offset_mm,
    sample_goal_noise_m,
    sample_start_offset_m,
    task_reward,
)
from envs.tasks import TaskSpec
from real.calibration import check_ft_bias
from real.camera import Camera, CameraError
from real.compliance import AdmittanceController, AdmittanceParams, check_compliance
from real.config import (
    SERVO_RATES_HZ,
    SafetyConfig,
    check_continuity_input,
    check_servo,
    check_watchdog_hz,
)
from real.poses import mat_to_rotvec, rotvec_to_mat
from real.robot import RobotBackend
from real.safety import RobotState, SafeRobot, SafetyTrip, UnsafeCommandError

_wall_clock = time.monotonic  # wall-clock beside a simulated `clock` (a test fakes it)

#: A vector's board-frame axes (the simulation's world: z out of the board) in the socket frame
#: (z into the socket), the one turned half a turn about x from the other.
BOARD_TO_SOCKET = np.array([1.0, -1.0, -1.0])
#: Speed of the moves between episodes (retract, approach) [m/s], below the safety cap.
RESET_SPEED_M_S = 0.03
#: Time the arm holds the start pose before the F/T zeroing [s].
SETTLE_S = 0.2
#: The release's check starts at the press it relaxes, at most this many times the limits (one
#: glitching reading must not switch the check off), and falls with the filtered wrench, to
#: within `RELEASE_MARGIN` x the limits above it and never below (1 + `RELEASE_MARGIN`) x the
#: limits: a press held at the measured pose after a stop may rise a little as the arm settles
#: (4.02 N m against 4 in a training run on the twin).
RELEASE_LIMIT_FACTOR = 1.5
RELEASE_MARGIN = 0.1
#: F/T samples averaged into the episode's wrench bias.
BIAS_SAMPLES = 10
#: How far [N, N m] an unzeroed sensor's free-air reading may move from the calibration's
#: before a reset warns of it (it is subtracted either way; a CB3's estimate drifts by ~10 N).
FT_DRIFT_WARN = (20.0, 2.0)
#: How much farther than its mating length from the calibrated seat [mm] a plug may be when its
#: continuity input counts as mated: room for the calibration's error; farther, it is a glitch.
CONTINUITY_SLACK_MM = 5.0
#: How far outside the safety box [m] and cone [rad] a reset may find the TCP: an arm resting
#: against a face of the box after an episode. It is brought in at the capped speeds; further
#: out, the reset refuses (a hand-jogged arm: jog it back).
RESET_MARGIN_M = 0.001
#: How far past the calibrated seated pose (socket frame +z, into the board) the safety
#: workspace may reach [m]: room for the calibration's error, not for driving into the board
#: (a box to +0.5 m was accepted, leaving only the force limit between the plug and it).
MAX_PAST_SEAT_M = 0.01
RESET_MARGIN_RAD = 0.02


class RealInsertionEnv(gym.Env):
    """Insert the pre-grasped plug of a task into its socket on a UR arm (ur_rtde).

    ## Description
    The physical counterpart of `envs.InsertionEnv`, built from the same `TaskSpec`. The policy
    acts at `control_hz` (10 Hz); in between, a compliance loop at `servo_hz` (500 Hz e-Series,
    125 Hz CB3) moves the arm with servoL under an admittance law (`real.compliance`) whose
    stiffness and damping are the simulation's impedance gains. Every command passes through
    the safety layer (`real.safety.SafeRobot`).

    Frames: base = the robot base; socket frame = the calibrated seated TCP pose (`socket_pose`,
    base frame), z into the socket; episode-start frame = the TCP pose at the end of reset.

    ## Action Space
    As in simulation: Box(-1, 1, (3,)) ("xyz") or (6,) ("pose"), a delta TCP pose in the TCP
    frame scaled by `action_scale_m` [m] and `action_scale_rad` [rad]. The reference moves by the
    delta and is limited around the measured TCP with the sim's math
    (`envs.controller.limited_reference`), then kept inside SERL's box around the socket axis
    when `workspace_mm` is set (as in simulation, in the socket frame). NaN/inf actions are
    refused (UnsafeCommandError, the arm holds); actions outside [-1, 1] raise ValueError like
    the simulation.

    ## Observation Space
    Identical to the simulation's for the same kwargs (`envs.insertion_env.build_spaces`):
    `tcp_pose`, `tcp_vel` in the observation frame (`obs_frame`: axes of the start pose, origin
    at the episode's start pose or at the nominal one), `wrench` (environment on tool, TCP frame,
    zeroed at reset, its torque moved from the TCP, where a UR reports it, to the wrist as
    the sim's is, by the robot's TCP offset: `real.safety.tcp_wrench`), camera images resized
    like the simulated ones, `goal_<cam>` images with `reward="goal_image"` (given as
    `goal_images`).

    ## Rewards
    `sparse`, `dense`, `goal_image` through `envs.task_options.task_reward`, as in simulation.
    Mated = the continuity input is closed (`continuity_input`) with the plug within its mating
    length + `CONTINUITY_SLACK_MM` of the calibrated seat (closed farther away is a glitch:
    warned, not a success), else the insertion depth from the calibrated socket pose is within
    the mating stroke (`envs.task_options.is_mated`).
    `info["max_force_n"]` is the peak F/T force magnitude as the safety layer sees it
    (low-passed, `SafetyConfig.wrench_filter_s`), including the reading that tripped the force
    limit; `info["force_n"]` its peak during the last control period, `info["tcp_pos_m"]` the TCP
    position (base frame [m]), both read by `envs.episode`.

    ## Starting State
    Each reset that finds the plug in or near the socket first stops and holds the measured
    pose for `SETTLE_S`, so that an arm still pressing the plug relaxes before the pull-out's
    force check starts. It retracts along the socket axis to `start_height_mm` above the seated
    pose, moves to the start pose in the socket orientation, settles, zeroes the F/T sensor and
    measures its bias. The lateral start offset has a uniform magnitude in `init_offset_mm` and
    a uniform direction, or is exactly `options={"tcp_offset_mm": (dx, dy)}` in the board frame (the
    simulation's world frame: the socket frame turned half a turn about x). The believed goal
    carries uniform noise of +-`goal_noise_mm` on x and y (for scripted policies). A seed draws
    the simulation's start offset and believed-goal error for that seed, in the board frame.

    ## Episode End
    Terminates on insertion with the sparse reward, or on a safety trip (`info["safety_trip"]`,
    one of `real.safety.TRIP_KINDS`: force, watchdog, protective_stop, emergency_stop,
    safety_mode, robot_refused, reading (a malformed, non-finite, implausible, discontinuous,
    stale or late reading), connection); after a trip `step` refuses until `reset`, and the
    observation is the last state that passed the reading checks. `real.make` adds the task's
    time limit.

    ## Arguments
    Those of `envs.InsertionEnv` that mean something on hardware (action_mode, obs_mode,
    obs_frame, workspace_mm, reward, goal_noise_mm, init_offset_mm, image_size, grayscale,
    start_height_mm, action_scale_m, action_scale_rad, control_hz, reference_mode), plus:
    | kwarg | default | unit / values |
    |---|---|---|
    | socket_pose | required | [m, rad], base frame: seated TCP pose from calibration |
    | cameras | {} | name -> `real.camera.Camera` ("wrist", "side") |
    | safety | SafetyConfig() | limits, see `real.config.SafetyConfig` |
    | admittance | AdmittanceParams() | virtual inertia and deadband, `real.compliance` |
    | continuity_input | None | digital input wired to connector continuity |
    | servo_hz | 500.0 | Hz |
    | gains | task.dynamics.gains | the task version's impedance gains and limits (v1: 100 N cap) |
    | ft_bias | None | [N, N m] base frame, the calibration's free-air F/T reading |
    | zero_ft_sensor | True | call zeroFtSensor at reset (e-Series); False: see below |
    | rtde_watchdog_hz | 5.0 | ur_rtde watchdog armed at the first reset; None: off |
    | disconnect_on_close | False | close() disconnects the robot (set by `real.make`) |
    | clock | time.monotonic | s; the software watchdog's clock |

    Without zeroFtSensor (`zero_ft_sensor=False`, a CB3) each reset's free-air reading at
    the start pose is the episode's F/T bias, as zeroing would make it; a reading moved
    from the calibration's `ft_bias` by more than `FT_DRIFT_WARN` is warned of.
    """

    metadata = {"render_modes": [], "render_fps": 10}

    def __init__(
        self,
        task: TaskSpec,
        robot: RobotBackend,
        *,
        socket_pose: np.ndarray | list[float],
        cameras: dict[str, Camera] | None = None,
        safety: SafetyConfig | None = None,
        continuity_input: int | None = None,
        servo_hz: float = 500.0,
        servo_lookahead_s: float = 0.1,
        servo_gain: float = 300.0,
        gains: ImpedanceGains | None = None,
        admittance: AdmittanceParams | None = None,
        ft_bias: np.ndarray | list[float] | None = None,
        zero_ft_sensor: bool = True,
        rtde_watchdog_hz: float | None = 5.0,
        disconnect_on_close: bool = False,
        action_mode: str = "xyz",
        obs_mode: str = "state",
        obs_frame: str = "start",
        workspace_mm: float | None = None,
        reward: str = "sparse",
        goal_noise_mm: float = 0.0,
        init_offset_mm: tuple[float, float] = (0.0, 0.0),
        image_size: int | tuple[int, int] = 64,
        grayscale: bool = False,
        goal_images: dict[str, np.ndarray] | None = None,
        start_height_mm: float = 50.0,
        action_scale_m: float = 0.005,
        action_scale_rad: float = 0.05,
        control_hz: float = 10.0,
        reference_mode: str = "accumulate",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        safety = SafetyConfig() if safety is None else safety
        if not isinstance(safety, SafetyConfig):  # a dict failed later with AttributeError
            raise TypeError(f"safety must be a real.SafetyConfig, got {safety!r}")
        if admittance is not None and not isinstance(admittance, AdmittanceParams):
            raise TypeError(f"admittance must be a real.compliance.AdmittanceParams, got "
                            f"{admittance!r}")
        gains = gains or task.dynamics.gains
        options = check_options(
            task.connector,
            action_mode=action_mode,
            obs_mode=obs_mode,
            reward=reward,
            goal_noise_mm=goal_noise_mm,
            init_offset_mm=init_offset_mm,
            image_size=image_size,
            grayscale=grayscale,
            start_height_mm=start_height_mm,
            action_scale_m=action_scale_m,
            action_scale_rad=action_scale_rad,
            control_hz=control_hz,
            reference_mode=reference_mode,
        )
        check_choice("obs_frame", obs_frame, OBS_FRAMES)
        self.obs_frame = obs_frame
        self.workspace_mm = check_workspace(workspace_mm, options.init_offset_mm)
        lo, hi = options.init_offset_mm
        cameras = dict(cameras or {})
        unknown = set(cameras) - set(CAMERAS)
        if unknown:
            raise ValueError(f"camera names must be among {CAMERAS}, got {sorted(unknown)}")
        camera_names = tuple(c for c in CAMERAS if c in cameras)
        if ("pixels" in obs_mode or reward == "goal_image") and not camera_names:
            raise ValueError(f"obs_mode={obs_mode!r}, reward={reward!r} need at least one camera")
        # The servo settings reach the arm with every servoL: checked like `URConfig`'s (NaN
        # used to crash in int(), 1e5 Hz ran, a lookahead of -1 s or a NaN gain reached servoL,
        # a watchdog of 0 or -3 Hz reached setWatchdog, continuity_input=2.5 failed mid-episode).
        servo_hz = check_range("servo_hz", servo_hz, options.control_hz, max(SERVO_RATES_HZ))
        if servo_hz <= control_hz:
            raise ValueError(f"servo_hz ({servo_hz}) must exceed control_hz ({control_hz})")
        check_servo(servo_lookahead_s, servo_gain)
        if rtde_watchdog_hz is not None:
            check_watchdog_hz(rtde_watchdog_hz, servo_hz)
            # While a camera waits for a frame nothing commands the arm or kicks the
            # watchdog: a wait as long as its period ends the controller's script.
            for cam in cameras.values():
                if cam.timeout_ms >= 1000.0 / rtde_watchdog_hz:
                    raise ValueError(
                        f"camera {cam.name!r} waits up to {cam.timeout_ms} ms for a frame, not "
                        f"less than the RTDE watchdog's period ({1000.0 / rtde_watchdog_hz:g} ms "
                        f"at rtde_watchdog_hz={rtde_watchdog_hz}); give it a shorter timeout_ms")
        continuity_input = check_continuity_input(continuity_input)
        if ft_bias is not None:
            ft_bias = check_ft_bias(ft_bias)
        zero_ft_sensor = check_bool("zero_ft_sensor", zero_ft_sensor)  # "no" is truthy
        self.image_shape = options.image_shape
        if reward == "goal_image":
            missing = [c for c in camera_names if goal_images is None or c not in goal_images]
            if missing:
                raise ValueError(
                    f"reward='goal_image' needs goal_images for {missing}: record them with the "
                    f"plug seated (`insertbench real record-goal`, `real.goal_images`)"
                )
        self.goal_images = (
            {c: np.asarray(goal_images[c]) for c in camera_names}
            if (reward == "goal_image" and goal_images is not None)
            else {}
        )
        for cam, image in self.goal_images.items():
            if image.shape != self.image_shape:
                raise ValueError(
                    f"goal image {cam!r} has shape {image.shape}, need {self.image_shape}"
                )

        self.task = task
        self.robot = robot
        self.camera_devices = cameras
        for cam in cameras.values():
            cam.between_tries = self._stop_for_frame
        self.cameras = camera_names
        self.action_mode, self.obs_mode, self.reward_type = action_mode, obs_mode, reward
        self.goal_noise_mm, self.init_offset_mm = goal_noise_mm, (lo, hi)
        self.grayscale = grayscale
        self.start_height_m = start_height_mm * MM
        self.action_scale_m, self.action_scale_rad = action_scale_m, action_scale_rad
        self.reference_mode = reference_mode
        self.gains = gains
        self.safety = safety
        self.continuity_input = continuity_input
        self.zero_ft_sensor = zero_ft_sensor
        self.rtde_watchdog_hz = rtde_watchdog_hz
        self._watchdog_armed = False
        self._episode_seeds = EpisodeSeeds()  # as the simulation's: one seed, one start
        # [s] of `_wall_clock` at the last step's end (or reset's): a reset refused after the
        # watchdog was armed left it unset, and the next reset failed on it.
        self._last_step_end_wall = _wall_clock()
        #: The calibration's free-air F/T reading [N, N m] (base frame), or None.
        self.calibrated_ft_bias = ft_bias
        #: The F/T bias [N, N m] (base frame) the episode's wrench is read against; until a
        #: reset measures it, the sensor's own zero (or, unzeroed, the calibration's).
        self._bias = ft_bias if not zero_ft_sensor and ft_bias is not None else np.zeros(6)
        self.clock = clock
        self.servo_dt = 1.0 / servo_hz
        # Servo cycles per policy step: 150 Hz at 500 Hz servoing ran at 167 Hz without a word.
        self.cycles_per_step = control_steps(control_hz, self.servo_dt, "servo period")
        self.dt = self.cycles_per_step * self.servo_dt
        self.socket_pose = np.asarray(socket_pose, dtype=np.float64)
        self.safe = SafeRobot(
            robot, safety, self.socket_pose, self.servo_dt, servo_lookahead_s, servo_gain, clock
        )
        box_lo, box_hi = np.asarray(safety.workspace_min_m), np.asarray(safety.workspace_max_m)
        if box_hi[2] > MAX_PAST_SEAT_M:
            raise ValueError(
                f"workspace_max_m[2] = {box_hi[2]} m lets the TCP go that far past the calibrated "
                f"seated pose, into the board; at most {MAX_PAST_SEAT_M} m"
            )
        self._lateral_room = min(-box_lo[0], box_hi[0], -box_lo[1], box_hi[1])
        if hi * MM > self._lateral_room or not box_lo[2] <= -self.start_height_m <= box_hi[2]:
            raise ValueError(
                f"start poses ({start_height_mm} mm up, offsets up to {hi} mm) leave the "
                f"safety workspace {safety.workspace_min_m}..{safety.workspace_max_m} m"
            )
        check_compliance(gains, admittance or AdmittanceParams(), self.servo_dt)
        self.admittance = AdmittanceController(gains, admittance or AdmittanceParams())
        self.action_space, self.observation_space = build_spaces(
            action_mode, obs_mode, reward, camera_names, self.image_shape
        )
        self.disconnect_on_close = disconnect_on_close
        self._closed = False
        self._state: RobotState | None = None
        self._trip: SafetyTrip | None = None
        self._needs_reset = True

    # ----------------------------------------------------------------------------------------
    # Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._check_open()
        # The episode ends here, whether or not this reset finishes: a refused one (a misspelt
        # option, the arm outside the workspace) let step() go on with the last episode on
        # the arm, past the time limit Gymnasium's TimeLimit had restarted (diff20).
        self._needs_reset = True
        # Before the robot is touched: a misspelt option stopped the arm and armed the RTDE
        # watchdog first, and a corrected reset more than 0.2 s later found the control
        # script ended (real19).
        requested = self._requested_offset_m(options)
        self._say_if_slow_between_episodes()
        # Checked as the simulation's: numpy's "expected non-negative integer" named no seed,
        # and a refused np.int64 had reseeded the unseeded resets' stream first (diff35).
        super().reset(seed=self._episode_seeds(check_seed(seed)))
        safe = self.safe
        safe.reset_trip()
        safe.reset_wrench_filter()
        try:
            if not safe.stopped:
                # Between episodes nothing servoes the arm: it may have been moved by hand, and
                # the reading is checked as a stopped arm's (a 10 mm move tripped as a jump,
                # and every later reset was refused); the reset then starts where it is. A
                # stopped controller says so before servoStop could fail on it.
                safe.check_status()
                safe.stop()
            state = safe.read()
            if self.rtde_watchdog_hz is not None and not self._watchdog_armed:
                safe.call("setWatchdog", self.rtde_watchdog_hz)
                self._watchdog_armed = True
        except SafetyTrip as trip:
            raise RuntimeError(f"cannot start an episode: {trip}") from trip
        if not safe.in_workspace(state.pos, margin_m=RESET_MARGIN_M):
            raise RuntimeError(
                f"the TCP is at {np.round(safe.socket_frame(state.pos), 4)} m in the socket frame,"
                f" outside the safety workspace; jog it above the socket first"
            )
        if (tilt := safe.tilt(state.mat)) > self.safety.max_tilt_rad + RESET_MARGIN_RAD:
            raise RuntimeError(
                f"the TCP is turned {tilt:.2f} rad from the socket's orientation,"
                f" outside the safety cone ({self.safety.max_tilt_rad} rad); jog it upright first"
            )
        rng = self.np_random
        # The simulation's draws in its order (the grasp's offset and yaw and the friction
        # scale, physical here, are drawn and unused) and in its board frame (the socket frame
        # turned half a turn about x: y flips): seed s started the cell, the twin and the
        # simulation from other offsets and believed goals, which validate pairs by seed (real28).
        rng.uniform(-1, 1, 2), rng.uniform(-1, 1), rng.uniform()
        offset = sample_start_offset_m(rng, self.init_offset_mm) * BOARD_TO_SOCKET[:2]
        if requested is not None:
            offset = requested
        self.goal_noise_m = sample_goal_noise_m(rng, self.goal_noise_mm) * BOARD_TO_SOCKET
        socket_pos, socket_mat = safe.socket_pos, safe.socket_mat
        try:
            local = safe.socket_frame(state.pos)
            near = local[2] > -self.start_height_m + 1e-4  # plug in or near the socket
            if near:  # stop pressing first: the pull-out's bias is the released arm's
                state = self._release()
            bias = self._resting_wrench(state)
            if near:  # pull out
                local = safe.socket_frame(state.pos)
                up = socket_pos + socket_mat @ np.array([local[0], local[1], -self.start_height_m])
                safe.move_linear(up, state.mat, self.safety.retract_speed_m_s, force_bias=bias)
            start_local = np.array([offset[0], offset[1], -self.start_height_m])
            start = socket_pos + socket_mat @ start_local
            safe.move_linear(start, socket_mat, RESET_SPEED_M_S, force_bias=bias)
            for _ in range(int(round(SETTLE_S / self.servo_dt))):
                self._hold(start, socket_mat, bias)
            if self.zero_ft_sensor:
                safe.call("zeroFtSensor")
                # The sensor now reads the wrench relative to this pose's: a contact that
                # grows while the bias is sampled still trips. One already there when the
                # sensor was zeroed cannot be told apart (the settle checked for it).
                bias = np.zeros(6)
            samples = []
            for _ in range(BIAS_SAMPLES):
                samples.append(self._hold(start, socket_mat, bias).wrench)
            # The median: one spike (+300 N on one sample) shifted a mean by 30 N, a phantom
            # contact in free air and 30 N off the force limit for the whole episode (real27).
            self._bias = np.median(samples, axis=0)
            if not self.zero_ft_sensor:
                # The free-air reading is the bias, as zeroing would make it: the calibration's,
                # subtracted instead, missed a CB3's drift (its wrench is estimated from joint
                # currents): 60 N of it held the plug off the socket, or hid 90 N of a press
                # from the force limit (real22).
                self._check_drift(self._bias)
        except SafetyTrip as trip:
            raise RuntimeError(f"safety trip while resetting: {trip}") from trip
        safe.reset_wrench_filter()
        state = safe.read()
        if self.continuity_input is not None and self._continuity_closed(state):
            raise RuntimeError(
                f"the continuity input {self.continuity_input} reads closed with the plug "
                f"{self.start_height_m / MM:.0f} mm above the socket: a stuck or miswired input "
                "(every episode would score a success at once); check its wiring"
            )
        self.start_pos, self.start_mat = state.pos.copy(), state.mat.copy()
        #: Origin of the observation frame (base frame) [m], as in `envs.insertion_env`: the
        #: measured start pose, or the nominal one (no offset) `start_height_mm` above the seat.
        nominal_start = socket_pos + socket_mat @ np.array([0.0, 0.0, -self.start_height_m])
        self.obs_origin = self.start_pos if self.obs_frame == "start" else nominal_start
        self.ref_pos, self.ref_quat = state.pos.copy(), mat_to_quat(state.mat)
        self._ref_mat = state.mat.copy()
        self.admittance.reset(*safe.clamp(state.pos, state.mat))
        self.goal_pos = socket_pos.copy()
        self.believed_goal_pos = socket_pos + socket_mat @ self.goal_noise_m
        self._state = state
        self._step_force = 0.0
        self._steps = 0
        self._t_start = self.clock()
        self._last_step_end = self.clock()
        self._last_step_end_wall = _wall_clock()
        self._slow_policy_said = False
        self._needs_reset = False
        self._trip = None
        try:
            obs = self._read_observation(state)
        except BaseException:  # a Ctrl-C while a camera waited: the episode open, the arm
            self._abandon_episode()  # servoing, the next step taken (real23)
            raise
        if self.safe.tripped is not None:  # the link failed while a camera waited
            self._needs_reset = True
            raise RuntimeError(f"safety trip while resetting: {self.safe.tripped}")
        return obs, self._info(state)

    def _requested_offset_m(self, options: dict | None) -> np.ndarray | None:
        """`options["tcp_offset_mm"]` as a start offset [m] in the board frame (the sim's
        world: the socket frame turned about x, z out of the board), or None; ValueError for
        another option or an offset outside the safety workspace."""
        requested = requested_offset_mm(options, self.workspace_mm)
        if requested is None:
            return None
        offset = np.asarray(requested) * MM * BOARD_TO_SOCKET[:2]
        if np.linalg.norm(offset) > self._lateral_room:
            raise ValueError(f"options['tcp_offset_mm'] = {requested} leaves the safety "
                             "workspace")
        return offset

    def step(self, action):
        self._check_open()
        if self._needs_reset or self._state is None:
            raise RuntimeError("call reset() before step() (a new episode, after a safety trip "
                               "or after a reset that did not finish)")
        try:
            a = real_array(action, np.float32)  # a complex action moved by its real part
        except (TypeError, ValueError):  # numpy's "could not convert string to float: 'abc'"
            raise ValueError(f"action must be {self.action_space.shape[0]} real numbers, got "
                             f"{action!r}") from None
        if a.shape == self.action_space.shape and not np.all(np.isfinite(a)):
            try:
                self.safe.stop()
            except SafetyTrip as trip:
                return self._tripped(trip)
            raise UnsafeCommandError(
                f"action contains NaN or inf: {a}; refused, the arm is holding its pose"
            )
        a = check_action(a, self.action_space.shape)
        gap = self.clock() - self._last_step_end
        try:
            self._say_if_slow_on_a_simulated_clock()
            if gap > self.safety.watchdog_timeout_s:
                self.safe.trip(
                    "watchdog",
                    f"{gap:.3f} s since the last step exceeds watchdog_timeout_s = "
                    f"{self.safety.watchdog_timeout_s} s (policy or camera too slow)",
                )
            self._move_reference(a, self._state)
            state = self._run_compliance()
        except SafetyTrip as trip:  # including bad readings and a lost connection
            return self._tripped(self._blame_the_rtde_watchdog(trip, gap))
        except BaseException:  # a Ctrl-C (or a bug) mid-motion left the arm servoing and the
            self._abandon_episode()  # episode open: the next step ran on without a reset
            raise
        self._state = state
        self._steps += 1
        self._last_step_end = self.clock()
        self._last_step_end_wall = _wall_clock()
        try:
            obs = self._read_observation(state)
            inserted = self._inserted(state)
            reward = self._reward(obs, state, inserted)
        except BaseException:  # a Ctrl-C while a camera waited for its frame, too (real22)
            self._abandon_episode()
            raise
        if self.safe.tripped is not None:  # the link failed while a camera waited
            return self._tripped(self.safe.tripped)
        terminated = inserted and self.reward_type == "sparse"
        return obs, reward, terminated, False, self._info(state)

    def _abandon_episode(self) -> None:
        """After an exception inside a step: the arm stopped, the episode over (a reset next)."""
        self._needs_reset = True
        with contextlib.suppress(Exception):
            self.safe.stop()

    def _check_open(self) -> None:
        if self._closed:  # a backend object outlives close(): a step after it servoed on
            raise RuntimeError("this env is closed; make a new one")

    def close(self) -> None:
        self._closed = True
        self._needs_reset = True
        try:
            self.safe.halt()
        finally:
            for cam in self.camera_devices.values():
                cam.close()
            self.camera_devices = {}
            if self.disconnect_on_close:
                self.robot.disconnect()
                self.disconnect_on_close = False

    # ----------------------------------------------------------------------------------------
    # Control

    def _move_reference(self, a: np.ndarray, state: RobotState) -> None:
        """The sim's reference update (TCP-frame delta, limited around the TCP), then the
        per-step caps and the workspace clamp.

        The reference is the anchor of the compliance spring, not a command: the admittance
        law pushes with stiffness x (reference - TCP), and the servo targets it produces are
        clamped to the safety box when sent (`SafeRobot.servo`). So the reference may lie up
        to the controller's translation limit past the box's face in the socket: clamped at
        the face (3 mm past the seat by default), a plug that binds short of the seat was
        pushed with at most stiffness x (3 mm + its gap), ~20-26 N, and Model-E-v1 (15-40 N
        to insert) stalled 2.2 mm short on the twin where the simulation, whose push reaches
        stiffness x limit (100 N), seats it."""
        delta_pos = _cap(a[:3].astype(np.float64) * self.action_scale_m, self.safety.max_step_m)
        delta_rot = (
            _cap(a[3:].astype(np.float64) * self.action_scale_rad, self.safety.max_step_rad)
            if self.action_mode == "pose"
            else np.zeros(3)
        )
        ref_pos, ref_quat = limited_reference(
            self.ref_pos,
            self.ref_quat,
            state.pos,
            state.mat,
            delta_pos,
            delta_rot,
            self.gains,
            self.reference_mode,
        )
        ref_mat = rotvec_to_mat(quat_to_rotvec(ref_quat))
        if self.action_mode == "xyz":  # the orientation reference stays at the start
            ref_mat = self.start_mat
        if self.workspace_mm is not None:  # SERL's box in the socket frame (z into the socket)
            half = self.workspace_mm * MM
            local = np.clip(
                self.safe.socket_frame(ref_pos),
                [-half, -half, -self.start_height_m - half],
                [half, half, np.inf],
            )
            ref_pos = self.safe.socket_pos + self.safe.socket_mat @ local
        ref_pos, ref_mat = self.safe.clamp(ref_pos, ref_mat, self.gains.translation_limit_m)
        self.ref_pos, self.ref_quat = ref_pos, mat_to_quat(ref_mat)
        self._ref_mat = ref_mat

    def _run_compliance(self) -> RobotState:
        """One policy period of the admittance loop; returns the final state."""
        self._step_force = 0.0
        if self.safe.stopped:
            # After a stop mid-episode (a camera retry, a refused action) the law restarts at
            # rest where the arm is: its velocity from before the stop pointed back at the last
            # target and reversed the arm at the speed cap within 2 ms.
            self.admittance.reset(*self.safe.clamp(*self.safe.measure()))
        for _ in range(self.cycles_per_step):
            t0 = self.safe.call("initPeriod")
            state = self._read_noting_stops()
            try:
                filtered = self.safe.check_wrench(self.safe.tool_wrench(state, self._bias))
            except SafetyTrip as trip:
                if trip.kind == "force":  # the step's force: a tripped episode counted no
                    filtered = self.safe.filtered_wrench  # time above the force limit
                    self._step_force = max(self._step_force, float(np.linalg.norm(filtered[:3])))
                raise
            self._step_force = max(self._step_force, float(np.linalg.norm(filtered[:3])))
            pos, mat = self.admittance.update(
                self.ref_pos, self._ref_mat, self.safe.compliance_wrench(state, self._bias),
                self.servo_dt
            )
            self.admittance.commit(*self.safe.servo(pos, mat), self.servo_dt)
            self.safe.call("waitPeriod", t0)
        return self._read_noting_stops()

    def _read_noting_stops(self) -> RobotState:
        """`SafeRobot.read`, noting the contact force a stop the controller made was read at.

        A protective stop (the controller's own force limit) tripped the read before the
        wrench was read, so the impact that stopped the arm was in no record: a USB plug
        pressed beside the opening stopped the twin at 198 N contact with the episode's
        `max_force_n` 0.7 N. The stop's reading is unfiltered (the controller judged it);
        the trip stays the stop's whatever that reading shows."""
        try:
            return self.safe.read()
        except SafetyTrip as trip:
            if trip.kind in ("protective_stop", "emergency_stop"):
                with contextlib.suppress(SafetyTrip):
                    wrench = self.safe.tool_wrench(self.safe.read(check=False), self._bias)
                    force = float(np.linalg.norm(wrench[:3]))
                    self.safe.peak_force_n = max(self.safe.peak_force_n, force)
                    self._step_force = max(self._step_force, force)
                self.safe.tripped = trip
            raise

    def _check_drift(self, bias: np.ndarray) -> None:
        """Warn when the free-air F/T reading `bias` moved from the calibration's by more than
        `FT_DRIFT_WARN`: it is subtracted all the same; the tool or payload may have changed."""
        if self.calibrated_ft_bias is None:
            return
        moved = np.abs(bias - self.calibrated_ft_bias)
        force, torque = float(moved[:3].max()), float(moved[3:].max())
        if force > FT_DRIFT_WARN[0] or torque > FT_DRIFT_WARN[1]:
            warnings.warn(
                f"the free-air F/T reading moved {force:.1f} N / {torque:.2f} N m from the "
                "calibration's ft_bias (subtracted: each reset's own reading is the bias); "
                "if the tool or payload changed, calibrate again", UserWarning, stacklevel=2)

    def _resting_wrench(self, state: RobotState) -> np.ndarray:
        """The wrench [N, N m] of the stopped arm: the median of `state`'s and
        `BIAS_SAMPLES` - 1 more readings, one a control period. A reset's moves took their force
        bias from one reading: a spike there read as the socket pulling the tool in at 300 N,
        or moved the move's force limit by its size (diff33), as the episode's bias had."""
        safe = self.safe
        samples = [state.wrench]
        for _ in range(BIAS_SAMPLES - 1):
            t0 = safe.call("initPeriod")
            samples.append(safe.read().wrench)
            safe.call("kickWatchdog")  # where the first reset armed it
            safe.call("waitPeriod", t0)
        return np.median(samples, axis=0)

    def _release(self) -> RobotState:
        """Stop pressing before pulling out, and return the released reading.

        An episode can end with the compliance reference past the seat, the arm still pushing
        the plug: with goal noise the P-controller seats it pressing sideways, up to the torque
        limit at the wrist (4.7 N m filtered to 4.0 on the twin's USB). The pull-out checks
        the wrench from the reading it starts at, so starting it from the press made the
        press's release read as a reverse wrench and trip. Stopping brings the command to the
        measured pose; holding there for `SETTLE_S` lets the press relax."""
        self.safe.stop()
        pos, mat = self.safe.measure()
        # Checked against the episode's bias, with the limits raised to the press being
        # relaxed: it may read above them unfiltered (4.7 N m against 4). The raised limits
        # are capped and fall with the filtered wrench, so a wrench that grows trips (a 5000 N
        # glitch at the start had switched the check off for the whole hold).
        limits = np.array([self.safety.force_limit_n, self.safety.torque_limit_nm])
        margin, floor = RELEASE_MARGIN * limits, (1.0 + RELEASE_MARGIN) * limits
        pressed = self.safe.tool_wrench(self.safe.read(), self._bias)
        allowed = np.clip(_magnitudes(pressed), floor, RELEASE_LIMIT_FACTOR * limits)
        for _ in range(int(round(SETTLE_S / self.servo_dt))):
            self._hold(pos, mat, self._bias, tuple(allowed))
            relaxed = _magnitudes(self.safe.filtered_wrench) + margin
            allowed = np.maximum(floor, np.minimum(allowed, relaxed))
        self.safe.reset_wrench_filter()  # the pull-out checks from the released reading
        return self.safe.read()

    def _hold(self, pos: np.ndarray, mat: np.ndarray, bias: np.ndarray,
              limits: tuple[float, float] | None = None) -> RobotState:
        """One servo period holding a pose, the wrench (less the base-frame `bias`) checked
        as while servoing (`SafeRobot.check_wrench`: over the limits, stop and trip)."""
        t0 = self.safe.call("initPeriod")
        state = self.safe.read()
        self.safe.check_wrench(self.safe.tool_wrench(state, bias), limits)
        self.safe.servo(pos, mat)
        self.safe.call("waitPeriod", t0)
        return state

    def _rtde_watchdog_period_s(self) -> float:
        """The armed RTDE watchdog's period [s] (inf when not armed): the longest gap between
        two steps a real arm survives, since nothing commands it between steps."""
        if self.rtde_watchdog_hz is None or not self._watchdog_armed:
            return math.inf
        return 1.0 / self.rtde_watchdog_hz

    def _blame_the_rtde_watchdog(self, trip: SafetyTrip, gap_s: float) -> SafetyTrip:
        """A robot that refused the step after a gap longer than the RTDE watchdog's period
        (`gap_s`, on the env's clock): the watchdog ended the control script. A 0.3 s gap,
        within watchdog_timeout_s = 0.5 s, tripped as "robot_refused ... reconnect the robot"
        without a word of why (the controller's own clock decides; a refusal is what says so)."""
        period = self._rtde_watchdog_period_s()
        if trip.kind != "robot_refused" or gap_s <= period:
            return trip
        self.safe.tripped = SafetyTrip(
            "watchdog",
            f"{gap_s:.3f} s since the last step exceeds the RTDE watchdog's period "
            f"({period:g} s at rtde_watchdog_hz="
            f"{self.rtde_watchdog_hz:g}; policy or camera too slow): the controller ended the "
            "control script; reconnect the robot, or give a lower rtde_watchdog_hz",
        )
        return self.safe.tripped

    def _say_if_slow_on_a_simulated_clock(self) -> None:
        """Warn (once an episode) when more wall-clock than the watchdog allows passed between
        two steps while the env keeps simulated time (the twin's clock runs only as the twin
        steps): a policy at 0.6 s a step inserted on the twin, where a real arm's watchdogs
        would have halted it."""
        if self.clock is time.monotonic or self._slow_policy_said:
            return
        wall = _wall_clock() - self._last_step_end_wall
        period = self._rtde_watchdog_period_s()
        if wall > min(self.safety.watchdog_timeout_s, period):
            self._slow_policy_said = True
            rtde = f"; the RTDE watchdog after {period:g} s" if math.isfinite(period) else ""
            warnings.warn(f"{wall:.3f} s of wall-clock passed between two steps (the policy's "
                          f"time): on a real arm the watchdog (watchdog_timeout_s = "
                          f"{self.safety.watchdog_timeout_s} s{rtde}) halts it; this env's "
                          "simulated clock did not count it",
                          UserWarning, stacklevel=3)

    def _say_if_slow_between_episodes(self) -> None:
        """Warn when more wall-clock than the RTDE watchdog's period passed since the last
        episode's last step while the env keeps simulated time: between episodes nothing
        kicks the watchdog, so on a real arm it ends the control script and this reset fails
        ("the ur_rtde control script is not running"), where the twin went on."""
        period = self._rtde_watchdog_period_s()
        if self.clock is time.monotonic or not math.isfinite(period):
            return
        wall = _wall_clock() - self._last_step_end_wall
        if wall > period:
            warnings.warn(f"{wall:.3f} s of wall-clock passed between the last step and this "
                          f"reset: on a real arm the RTDE watchdog (rtde_watchdog_hz = "
                          f"{self.rtde_watchdog_hz:g}, {period:g} s) ends "
                          "the control script in that time and the reset fails; this env's "
                          "simulated clock did not count it", UserWarning, stacklevel=3)

    def _tripped(self, trip: SafetyTrip):
        self._needs_reset = True
        self._trip = trip
        # After a trip the robot's readings may be what tripped it: report the last state that
        # passed the checks, never a fresh unchecked reading.
        state = self._state
        obs = self._observation(state, cameras=False)
        info = self._info(state)
        return obs, 0.0, True, False, info

    # ----------------------------------------------------------------------------------------
    # Quantities

    def insertion_depth_mm(self, state: RobotState) -> float:
        """How far the plug's mating face (the TCP) is below the socket mouth [mm], 0 when it
        is not over the opening; from the calibrated seated pose, `task.seat_depth_mm` below
        the mouth (as in simulation)."""
        local = self.safe.socket_frame(state.pos) / MM  # z into the socket, 0 at the seat
        mouth = np.array([local[0], local[1], -(self.task.seat_depth_mm + local[2])])
        return depth_in_socket_mm(mouth, self.task.connector)

    def _continuity_closed(self, state: RobotState) -> bool:
        return bool(state.input_bits >> self.continuity_input & 1)

    def _inserted(self, state: RobotState) -> bool:
        if self.continuity_input is None:
            return is_mated(self.insertion_depth_mm(state), self.task.connector)
        if not self._continuity_closed(state):
            return False
        # One glitched reading (a bounce, a shell brushing the socket's) ended an episode as a
        # success with the plug 50 mm up: closed that far from the seat, it cannot be mated.
        away_mm = float(np.linalg.norm(self.safe.socket_frame(state.pos))) / MM
        mating_mm = self.task.connector.mating_length_mm
        if away_mm > mating_mm + CONTINUITY_SLACK_MM:
            warnings.warn(
                f"the continuity input {self.continuity_input} reads closed with the plug "
                f"{away_mm:.1f} mm from the calibrated seat, beyond its {mating_mm:g} mm mating "
                f"length + {CONTINUITY_SLACK_MM:g} mm: taken as a glitch, not a success",
                stacklevel=2,
            )
            return False
        return True

    def _read_observation(self, state: RobotState) -> dict[str, np.ndarray]:
        """`_observation` with the cameras (`_camera_wait`)."""
        with self._camera_wait():
            return self._observation(state)

    def _reward_frame(self, cam: str) -> np.ndarray:
        """The reward's camera frame where the observation has none (state observations with
        a goal-image reward), read as the observation's are (`_camera_wait`)."""
        with self._camera_wait():
            self._kick_watchdog()
            return self.camera_devices[cam].read(*self.image_shape[:2], self.grayscale)

    @contextlib.contextmanager
    def _camera_wait(self):
        """A camera that delivers no new frame (FrameTimeoutError, after its retries) or one
        that cannot be the observation (CameraError) ends the episode: the arm is stopped and
        `step` refuses until a reset. It used to raise with the arm still servoing, and the
        next step ran on (the reward's camera did so until now)."""
        try:
            yield
        except CameraError:
            self._needs_reset = True
            self.safe.halt()
            raise

    def _stop_for_frame(self) -> None:
        """After a camera's wait timed out, before it waits again: stop the arm, which held its
        last servo target with nothing checking the wrench, and kick the RTDE watchdog (each
        wait is shorter than its period), so that a retry neither leaves the arm servoing
        unchecked nor ends the controller's script (the next step would have been refused).
        The next command starts from the measured pose, as after any stop."""
        self.safe.halt()
        self._kick_watchdog()

    def _kick_watchdog(self) -> None:
        """Kick the RTDE watchdog before a camera waits (each wait is shorter than its period;
        two cameras' waits back to back were not). A lost link trips, and the step or reset
        ends on that trip once the cameras are read."""
        if self.rtde_watchdog_hz is not None:
            with contextlib.suppress(SafetyTrip):
                self.safe.call("kickWatchdog")

    def _observation(self, state: RobotState, cameras: bool = True) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        r0 = self.start_mat
        if "state" in self.obs_mode:
            pos = r0.T @ (state.pos - self.obs_origin)
            rotvec = mat_to_rotvec(r0.T @ state.mat)
            obs["tcp_pose"] = np.concatenate([pos, rotvec]).astype(np.float32)
            obs["tcp_vel"] = np.concatenate(
                [r0.T @ state.speed[:3], r0.T @ state.speed[3:]]
            ).astype(np.float32)
            obs["wrench"] = self.safe.tool_wrench(state, self._bias).astype(np.float32)
        if "pixels" in self.obs_mode:
            h, w, _ = self.image_shape
            for cam in self.cameras:
                if cameras:
                    self._kick_watchdog()
                    obs[cam] = self.camera_devices[cam].read(h, w, self.grayscale)
                else:  # after a trip: no waiting on cameras, the episode is over
                    obs[cam] = np.zeros(self.image_shape, np.uint8)
        obs.update({f"goal_{k}": v for k, v in self.goal_images.items()})
        return obs

    def _reward(self, obs: dict[str, np.ndarray], state: RobotState, inserted: bool) -> float:
        cam = self.cameras[0] if self.cameras else None
        return task_reward(
            self.reward_type,
            inserted,
            state.pos,
            self.goal_pos,
            -float(self.safe.tool_wrench(state, self._bias)[2]),
            lambda: obs[cam] if cam in obs else self._reward_frame(cam),
            self.goal_images.get(cam),
            dense_form=self.task.dynamics.dense_form,
        )

    def _info(self, state: RobotState) -> dict[str, Any]:
        return {
            "is_success": self._inserted(state) if self._trip is None else False,
            "insertion_depth_mm": self.insertion_depth_mm(state),
            "distance_to_goal_mm": float(np.linalg.norm(state.pos - self.goal_pos) / MM),
            "max_force_n": self.safe.peak_force_n,
            "force_n": self._step_force,
            "tcp_pos_m": state.pos.copy(),
            "safety_trip": None if self._trip is None else self._trip.kind,
            "safety_message": None if self._trip is None else str(self._trip),
            "elapsed_s": self.clock() - self._t_start,
        }


def p_controller(env: gym.Env) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Paper 000's P-controller (`envs.p_controller`) for a real or a simulated InsertBench env:
    on the robot it steers towards the believed goal (calibrated socket pose + goal noise) with
    the shared law `envs.insertion_env.p_controller_action`; in simulation it is
    `envs.p_controller` itself."""
    base = env.unwrapped
    if not isinstance(base, RealInsertionEnv):
        return envs.p_controller(env)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        if "tcp_pose" in obs:  # observation frame -> start frame (same axes)
            pose = obs["tcp_pose"].astype(np.float64)
            pose[:3] += base.start_mat.T @ (base.obs_origin - base.start_pos)
        else:
            state = base._state
            pose = np.concatenate(
                [
                    base.start_mat.T @ (state.pos - base.start_pos),
                    mat_to_rotvec(base.start_mat.T @ state.mat),
                ]
            )
        goal_start = base.start_mat.T @ (base.believed_goal_pos - base.start_pos)
        return p_controller_action(
            pose, goal_start, base.action_scale_m, base.action_scale_rad, base.action_mode
        )

    return act


def _cap(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v if norm <= limit else v * (limit / norm)


def _magnitudes(wrench: np.ndarray) -> np.ndarray:
    """|force| [N] and |torque| [N m] of a wrench."""
    return np.array([np.linalg.norm(wrench[:3]), np.linalg.norm(wrench[3:])])
