"""The connector-insertion environment: one class, parametrised by a `TaskSpec`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.connectors import MM
from envs.controller import (
    ImpedanceReference,
    mat_to_quat,
    quat_to_rotvec,
    rotvec_to_quat,
    solve_ik,
    workspace_box,
)
from envs.physics import ControlPeriod, low_pass_wrench, peak_norm_sq
from envs.rendering import CameraRig
from envs.scene import SceneConfig, build_model
from envs.task_options import (
    CAMERAS,
    FRICTION_SCALE_RANGE,
    GRASP_NOISE_MAX_DEG,
    GRASP_NOISE_MAX_MM,
    OBS_FRAMES,
    TIMESTEP_RANGE_S,
    EpisodeSeeds,
    PlainSpec,
    check_action,
    check_bool,
    check_cameras,
    check_choice,
    check_options,
    check_pair,
    check_range,
    check_seed,
    check_workspace,
    control_steps,
    depth_in_socket_mm,
    is_mated,
    requested_offset_mm,
    sample_goal_noise_m,
    sample_start_offset_m,
    task_reward,
    unknown_kwarg,
    warn_past_reference_limits,
)
from envs.tasks import SensorModel, TaskSpec
from envs.ur5e_constants import HOME_QPOS, JOINT_NAMES

#: Tool pointing down, plug outline aligned with the socket: TCP x = world x, z = -world z.
TCP_DOWN = np.diag([1.0, -1.0, -1.0])
_INSTABILITY_WARNINGS = (
    mujoco.mjtWarning.mjWARN_BADQPOS,
    mujoco.mjtWarning.mjWARN_BADQVEL,
    mujoco.mjtWarning.mjWARN_BADQACC,
)
#: Paper 000's P-controller gains (section 4.3, eq. 5) on x, y, z.
P_CONTROLLER_KP = np.array([1.0, 1.0, 0.3])


def check_env_kwargs(owner: str, kwargs: Iterable[str], own: Callable | None = None) -> None:
    """TypeError for the first of `kwargs` that neither `InsertionEnv` nor `own` (the `__init__`
    of an env over InsertionEnvs, `owner` its ID) takes by name, with the closest known name:
    such an env passed a misspelt kwarg on as "InsertionEnv.__init__() got an unexpected
    keyword argument", with no hint and naming an env the user never made."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    known = {
        name
        for init in (InsertionEnv.__init__, own) if init is not None
        for name, p in inspect.signature(init).parameters.items() if p.kind in named
    } - {"self", "task"}
    for name in kwargs:
        if name not in known:  # gym.make's time limit named too: "max_episode_step" (newuser22)
            raise unknown_kwarg(owner, name, known | {"max_episode_steps"})


def check_open(closed: bool) -> None:
    """RuntimeError when an env (or a board or family of them) was closed and would have to
    build what close() released."""
    if closed:
        raise RuntimeError("this env is closed: close() released its cameras; make a new env "
                           "with gym.make to go on")


class InsertionEnv(PlainSpec, gym.Env):
    """Insert a pre-grasped connector plug into its socket with a UR5e under impedance control.

    ## Description
    The arm starts with the plug `start_height_mm` above the seated position, optionally offset
    sideways; the policy moves the impedance controller's reference at `control_hz` (10 Hz) while
    MuJoCo integrates contacts at 1/`timestep` Hz (500 Hz) with the impedance law in C.

    ## Action Space
    Box(-1, 1, (3,)) for `action_mode="xyz"` (papers 000/001) or (6,) for `"pose"` (SERL): a
    delta TCP pose in the TCP frame, scaled by `action_scale_m` [m] and `action_scale_rad` [rad].
    In "xyz" mode actions do not turn the orientation reference: it starts at the start
    orientation and, like the position, is kept within `rotation_limit_rad` (0.05 rad) of the
    measured TCP, so a contact that twists the tool further drags it along and it does not come
    back (0.011 rad on RAMCard-v1 pushed sideways against its socket's edge; `real/` holds
    the start orientation instead; README, "Known fidelity gaps"). With `workspace_mm`
    the reference position is clipped to SERL's safety box: within `workspace_mm` of the socket
    axis in x and y, and at most `workspace_mm` above the nominal start height. From task
    version 3, in "pose" mode the orientation reference stays within 0.25 rad of the start
    orientation (`TaskDynamics.orientation_limit_rad`, the real cell's cone).

    ## Observation Space
    A Dict. State (`obs_mode` "state" or "state+pixels"): `tcp_pose` (6,) position [m] and
    rotation vector [rad] of the TCP in the observation frame; `tcp_vel` (6,) [m/s, rad/s] in
    the same axes. The observation frame (`obs_frame`) has the start orientation as its axes and
    its origin at the episode's start pose ("start", papers 000/001: every episode starts at
    `tcp_pose` 0, and the start offset is not observed) or at the nominal start pose, the start
    pose without the random offset ("task": a fixed frame, as the robot-base-frame pose that
    SERL observes, so the start offset shows in `tcp_pose`); `wrench` (6,) force [N] and torque
    [N m] the environment exerts on the tool, in the TCP frame, zeroed at reset; the torque is
    about the wrist F/T sensor at the flange (`envs.scene.tcp_offset_m` above the TCP along the
    tool axis), as a wrist sensor reads it, not about the TCP. Pixels
    ("pixels", "state+pixels"): `wrist` and `side` images, uint8 (H, W, 3), or (H, W, 1) with
    `grayscale=True`; with `reward="goal_image"` also `goal_wrist` / `goal_side`, the same
    cameras with the plug seated.

    ## Rewards
    `sparse`: 1 when mated, and the episode terminates. `dense`: paper 000 eq. 2 in the form the
    task version sets (v0: as printed; v1: the closeness-rewarding form). `dense_printed`: eq. 2
    exactly as printed, on every version. `goal_image`: negative mean pixel L1 of the first
    camera's rendered image (without the observations' camera noise, so the same in every
    `obs_mode`) to its goal image. See `envs.rewards`.

    ## Starting State
    Seeded by `reset(seed=)`: lateral start offset of uniform magnitude in `init_offset_mm`
    (lo, hi) and uniform direction, or exactly `options={"tcp_offset_mm": (dx, dy)}` (world);
    believed-goal noise uniform in +-`goal_noise_mm` on x and y;
    grasp noise uniform in +-`grasp_noise_mm` (x, y) and +-`grasp_noise_deg` about the plug axis;
    friction scaled by a uniform factor in `friction_scale`. From v1, real-world variation
    (`TaskSpec.dynamics.sensor`, off with `noiseless=True`): the start pose off by the arm's
    repeatability, F/T noise and drift, camera noise; all drawn from the same seeded generator.

    ## Info
    `is_success`, `insertion_depth_mm`, `distance_to_goal_mm`, `max_force_n` (episode peak
    force [N]: v0, of the plug's net contact force sampled at 100 Hz; v1, of the zeroed wrist F/T
    force through its 50 Hz low-pass at every physics step), `force_n` (its peak during the last
    control period [N]), `tcp_pos_m` (TCP position, world frame [m]); read by `envs.episode`.

    ## Episode End
    Terminates on insertion with the sparse reward. Truncated after `max_episode_steps` (the
    task's 50 steps: 5 s at the default 10 Hz, 0.5 s at `control_hz=100`), or on a physics
    blow-up (`info["physics_error"]`; the last observation, reward and pose are returned
    again, and step() refuses to go on until a reset; replay buffers store no such step and
    recorded datasets end the episode a step before it).

    ## Arguments
    | kwarg | default | unit / values |
    |---|---|---|
    | action_mode | "xyz" | "xyz", "pose" |
    | obs_mode | "state" | "state", "pixels", "state+pixels" |
    | obs_frame | "start" | "start", "task" (origin of `tcp_pose`) |
    | workspace_mm | None | mm > init offset: lateral half-width of the reference box; None: off |
    | reward | "sparse" | "sparse", "dense", "dense_printed" (eq. 2 as printed), "goal_image" |
    | goal_noise_mm | 0.0 | mm, 0-20 |
    | init_offset_mm | (0.0, 0.0) | mm, 0 <= lo <= hi <= 30 |
    | grasp_noise_mm | 0.0 | mm, 0-5 |
    | grasp_noise_deg | 0.0 | degrees, 0-15 |
    | friction_scale | (1.0, 1.0) | factor range (lo, hi), 0.05 <= lo <= hi <= 5 |
    | image_size | 64 | pixels (square) or (height, width), at least 8, at most 480 x 640 |
    | grayscale | False | 32x32 grayscale = paper 000's visual setting |
    | cameras | ("wrist", "side") | subset of those, each once |
    | start_height_mm | 50.0 | mm above the seated pose (paper 000: 5 cm), `lowest_start_mm`-150 |
    | action_scale_m | 0.005 | m per step at action 1 (5 cm/s at 10 Hz), 0-0.02 (not 0) (**) |
    | action_scale_rad | 0.05 | rad per step at action 1, 0-0.2 (not 0) |
    | control_hz | 10.0 | Hz, 1-100; its period a whole number of physics steps (within 5%) (*) |
    | timestep | task's (0.002); 1e-4 to 0.002 | s (physics; contacts tuned for 0.5-2 ms) |
    | noiseless | False | True: no sensor, camera or reset-pose noise (v1 on) |
    | reference_mode | "accumulate" | "accumulate", "measured" (SERL); see ImpedanceReference |
    | render_mode | None | "rgb_array" |

    (*) The action scales and the episode length count steps, not seconds: at `control_hz=100`
    the same actions move 10x as fast (the P-controller seats USB at ~800 N) for a tenth of the
    time. (**) v0 moves at most 6 mm a step.

    ## Version History
    v0: initial release.
    v1: documented mating forces (retention springs calibrated to each connector's insertion
    and withdrawal ranges, `ConnectorSpec.mating`), controller force limit 100 N, real-world
    variation on by default, `wrench` and `max_force_n` as a 50 Hz wrist F/T sensor reports
    them, `reward="dense"` rewards closeness (`envs.tasks.DYNAMICS_V1`).
    v2: v1 with contact springs for retention (`envs.scene.ContactSprings`) and impratio 30:
    the same documented ranges, a steady sliding plateau where v1's tabs chatter
    (`DYNAMICS_V2`).
    v3: v2 with the fidelity gaps of v0-v2 closed: trapezoid sockets offset exactly, the push
    limited in magnitude, the goal at the reachable seat, the pose-mode orientation within
    0.25 rad of the start, a rigid board (`DYNAMICS_V3`; README, "Known fidelity gaps").
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    engine = "mujoco"

    def __init__(
        self,
        task: TaskSpec,
        *,
        action_mode: str = "xyz",
        obs_mode: str = "state",
        obs_frame: str = "start",
        workspace_mm: float | None = None,
        reward: str = "sparse",
        goal_noise_mm: float = 0.0,
        init_offset_mm: tuple[float, float] = (0.0, 0.0),
        grasp_noise_mm: float = 0.0,
        grasp_noise_deg: float = 0.0,
        friction_scale: tuple[float, float] = (1.0, 1.0),
        image_size: int | tuple[int, int] = 64,
        grayscale: bool = False,
        cameras: tuple[str, ...] = CAMERAS,
        start_height_mm: float = 50.0,
        action_scale_m: float = 0.005,
        action_scale_rad: float = 0.05,
        control_hz: float = 10.0,
        timestep: float | None = None,
        noiseless: bool = False,
        reference_mode: str = "accumulate",
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(task, TaskSpec):  # an ID read `.connector` off a str
            raise TypeError(f"task must be a TaskSpec (envs.task_spec(ID) gives an ID's), got "
                            f"{task!r}; gym.make(ID) builds a registered task")
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
        check_choice("render_mode", render_mode, (None, "rgb_array"))
        check_choice("obs_frame", obs_frame, OBS_FRAMES)
        workspace_mm = check_workspace(workspace_mm, options.init_offset_mm)
        grasp_noise_mm = check_range("grasp_noise_mm", grasp_noise_mm, 0.0, GRASP_NOISE_MAX_MM)
        grasp_noise_deg = check_range(
            "grasp_noise_deg", grasp_noise_deg, 0.0, GRASP_NOISE_MAX_DEG
        )
        f_lo, f_hi = check_pair("friction_scale", friction_scale, *FRICTION_SCALE_RANGE)
        noiseless = check_bool("noiseless", noiseless)
        dynamics = task.dynamics
        timestep = dynamics.timestep if timestep is None else timestep
        timestep = check_range("timestep", timestep, *TIMESTEP_RANGE_S, " s")
        frame_skip = control_steps(options.control_hz, timestep)
        cameras = check_cameras(cameras)
        lo, hi = options.init_offset_mm
        height, width, _ = options.image_shape

        self.task = task
        self.action_mode, self.obs_mode, self.reward_type = action_mode, obs_mode, reward
        self.obs_frame = obs_frame
        self.workspace_mm = workspace_mm
        self.goal_noise_mm, self.init_offset_mm = goal_noise_mm, (lo, hi)
        self.grasp_noise_mm, self.grasp_noise_deg = grasp_noise_mm, grasp_noise_deg
        self.friction_scale = (f_lo, f_hi)
        self.start_height_m = start_height_mm * MM
        self.action_scale_m, self.action_scale_rad = action_scale_m, action_scale_rad
        warn_past_reference_limits(task.env_id, dynamics.gains, action_mode, action_scale_m,
                                   action_scale_rad)
        self.render_mode = render_mode
        self.scene_config = SceneConfig(
            timestep=timestep, contact=dynamics.contact, gains=dynamics.gains,
            springs=dynamics.springs,
        )
        #: Real-world variation in force (a noiseless model when switched off).
        self.sensor = (
            SensorModel(ft_bandwidth_hz=dynamics.sensor.ft_bandwidth_hz)
            if noiseless
            else dynamics.sensor
        )
        self._ft_noise_std = np.repeat(
            [self.sensor.ft_force_noise_n, self.sensor.ft_torque_noise_nm], 3
        )
        self._ft_drift_std = np.repeat(
            [self.sensor.ft_force_drift_n_per_s, self.sensor.ft_torque_drift_nm_per_s], 3
        )
        self.dense_form = "printed" if reward == "dense_printed" else dynamics.dense_form
        self._ft_alpha = (
            1.0 - np.exp(-2 * np.pi * self.sensor.ft_bandwidth_hz * timestep)
            if self.sensor.ft_bandwidth_hz
            else 1.0
        )
        self._peak_from_ft = dynamics.peak_force == "ft_sensor"

        self.model = build_model(task.connector, self.scene_config, task.board_sockets)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = frame_skip
        self._period = ControlPeriod(self.model, self.data, self.frame_skip)
        self.dt = self.frame_skip * timestep
        # A video plays in real time at one frame per control step (10 was fixed: a 50 Hz env's
        # videos played 5x slow in Gymnasium's RecordVideo).
        self.metadata = {**type(self).metadata, "render_fps": round(1.0 / self.dt, 3)}
        #: Physics steps between two samples of the plug's contact force (100 Hz) for the
        #: episode's peak force, `info["max_force_n"]`.
        self.force_sample_steps = max(1, int(round(0.01 / timestep)))
        whole, rest = divmod(self.frame_skip, self.force_sample_steps)
        self._physics_chunks = [self.force_sample_steps] * whole + ([rest] if rest else [])
        #: Physics steps of a policy step, counted from 0, that end a force-sampling chunk.
        self._force_sample_rows = np.cumsum(self._physics_chunks) - 1
        m = self.model
        self._tcp = m.site("tcp").id
        self._arm_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in JOINT_NAMES])
        self._arm_dof = np.array([m.jnt_dofadr[m.joint(n).id] for n in JOINT_NAMES])
        self._face = m.site("plug_face").id
        self._plug = m.body("plug").id
        self._wrench_adr = m.sensor_adr[m.sensor("ft_force").id]
        # Force then torque, adjacent in sensordata: the wrench is one slice.
        assert m.sensor_adr[m.sensor("ft_torque").id] == self._wrench_adr + 3
        self._contact_adr = m.sensor_adr[m.sensor("plug_contact").id]
        self._contact_geoms = np.array(
            [i for i in range(m.ngeom) if m.geom(i).name.startswith(("plug_", "socket_"))]
        )
        self._nominal_friction = m.geom_friction[self._contact_geoms, 0].copy()
        self._nominal_plug_pos = m.body_pos[self._plug].copy()
        self._nominal_plug_quat = m.body_quat[self._plug].copy()
        self.reference = ImpedanceReference(
            self.scene_config.gains, m.body("reference").mocapid[0], reference_mode
        )
        self._goal_face_pos = np.array([0.0, 0.0, -task.seat_depth_mm * MM])
        self._episode_seeds = EpisodeSeeds()
        #: The pose-mode reference's orientation limit around the start orientation [rad].
        self._orientation_limit = dynamics.orientation_limit_rad if action_mode == "pose" else None
        #: Scratch data of the start-pose IK, kept: allocating an MjData costs ~0.5 ms, as much
        #: as the IK itself. The IK writes only the arm's qpos and reads only kinematics, so
        #: what a previous solve left in it changes nothing.
        self._ik_data = mujoco.MjData(self.model)
        self._q_home = self._solve_start_qpos(HOME_QPOS, np.zeros(3))

        self.cameras = cameras
        self.image_shape = (height, width, 1 if grayscale else 3)
        needs_pixels = "pixels" in obs_mode or reward == "goal_image"
        buffer = (m.vis.global_.offheight, m.vis.global_.offwidth)
        if needs_pixels and (height > buffer[0] or width > buffer[1]):
            # CameraRig's own error did not name the kwarg.
            raise ValueError(f"image_size must fit the simulated cameras' offscreen buffer, "
                             f"{buffer[0]}x{buffer[1]} (height x width), got {image_size!r}")
        self.rig = CameraRig(m, height, width, grayscale, cameras) if needs_pixels else None
        self._needs_cameras = needs_pixels  # close() releases the rig: a closed env cannot see
        self.action_space, self.observation_space = build_spaces(
            action_mode, obs_mode, reward, cameras, self.image_shape
        )
        self._viewer: CameraRig | None = None
        self._closed = False
        self._goal_images: dict[str, np.ndarray] = {}
        self._rendered: dict[str, np.ndarray] = {}  # this step's images before camera noise
        self._last_obs: dict[str, np.ndarray] | None = None
        self._last_info: dict[str, Any] = {}
        #: Why step() is refused until a reset ("": an episode is running).
        self._step_refusal = "call reset() before step()"

    # ----------------------------------------------------------------------------------------
    # Gymnasium API

    def check_reset_options(self, options: dict | None) -> tuple[float, float] | None:
        """ValueError or TypeError for `options` that `reset` would refuse, changing nothing
        (vectors ask one world before any resets); else the requested offset [mm] or None."""
        return requested_offset_mm(options, self.workspace_mm)

    def end_episode(self, reason: str) -> None:
        """Refuse step() until the next reset, saying `reason` (a refused reset, a blow-up)."""
        self._step_refusal = f"{reason}; call reset() before step()"

    def checked_reset_args(self, check_options: Callable[[dict | None], Any],
                           seed: int | None, options: dict | None) -> tuple[int | None, Any]:
        """A reset's seed, checked, and what `check_options(options)` returns, before anything
        changes. A refusal leaves the state as it was but ends this env's episode: Gymnasium's
        TimeLimit restarts its count before it calls the env's reset, and an episode stepped
        on past a refused reset ran 95 steps under a limit of 50 (envs18). Families and the
        NIST board check theirs through their active member."""
        try:
            return check_seed(seed), check_options(options)
        except (TypeError, ValueError) as err:
            self.end_episode(f"the last reset was refused ({err})")
            raise

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Before anything changes: a refused option used to leave the arm at MuJoCo's qpos0
        # (1.3 m from the socket), and step() went on from there.
        seed, requested = self.checked_reset_args(self.check_reset_options, seed, options)
        # Until this reset finishes: one that failed midway (IK, a goal image, a Ctrl-C) left
        # the arm at MuJoCo's qpos0, and step() went on from there (diff20).
        self.end_episode("the last reset did not finish")
        self._check_cameras()
        super().reset(seed=self._episode_seeds(seed))
        rng = self.np_random
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)

        grasp_xy = rng.uniform(-1, 1, 2) * self.grasp_noise_mm * MM
        grasp_yaw = np.radians(rng.uniform(-1, 1) * self.grasp_noise_deg)
        # The plug frame is the TCP frame turned half a turn about x: its x, y offsets map to
        # the gripper's x, -y.
        m.body_pos[self._plug] = self._nominal_plug_pos + np.array([grasp_xy[0], -grasp_xy[1], 0])
        yaw = np.array([np.cos(grasp_yaw / 2), 0.0, 0.0, np.sin(grasp_yaw / 2)])
        quat = np.zeros(4)
        mujoco.mju_mulQuat(quat, self._nominal_plug_quat, yaw)
        m.body_quat[self._plug] = quat
        scale = rng.uniform(*self.friction_scale)
        m.geom_friction[self._contact_geoms, 0] = self._nominal_friction * scale

        offset = np.append(sample_start_offset_m(rng, self.init_offset_mm), 0.0)
        if requested is not None:
            offset = np.array([*requested, 0.0]) * MM
        self.goal_noise_m = sample_goal_noise_m(rng, self.goal_noise_mm)
        if self.sensor.reset_repeatability_mm:
            offset = offset + rng.uniform(-1, 1, 3) * self.sensor.reset_repeatability_mm * MM
        # The sensor is zeroed at reset; its bias then drifts at a rate drawn per episode.
        self._ft_drift_rate = rng.normal(0.0, 1.0, 6) * self._ft_drift_std
        self._elapsed_s = 0.0

        d.qpos[self._arm_qpos] = self._solve_start_qpos(self._q_home, offset)
        mujoco.mj_forward(m, d)
        self.start_pos = d.site_xpos[self._tcp].copy()
        self.start_mat = d.site_xmat[self._tcp].reshape(3, 3).copy()
        #: Origin of the observation frame (world) [m]; its axes are `start_mat`'s.
        self.obs_origin = self.start_pos if self.obs_frame == "start" else self.nominal_start_pos
        self._start_quat = mat_to_quat(self.start_mat)
        self.reference.reset(d, self.start_pos, self._start_quat)
        mujoco.mj_forward(m, d)
        self._wrench_bias = self._raw_wrench()
        self._ft_filtered = self._wrench_bias.copy()
        self._wrench_reading = self._read_wrench()
        # True seated TCP position (world) given the actual grasp; the believed goal is the
        # nominal one (the grasp error is unknown to the controller) plus the goal noise.
        face_in_tcp = self.start_mat.T @ (d.site_xpos[self._face] - self.start_pos)
        self.goal_pos = self._goal_face_pos - self.start_mat @ face_in_tcp
        self.believed_goal_pos = self._goal_face_pos + self.goal_noise_m
        self._max_force = self._step_force = 0.0
        if self.reward_type == "goal_image":
            self._goal_images = self._render_goal_images()
        obs = self._observation()
        info = self._info()
        self._last_obs, self._last_reward, self._last_info = obs, 0.0, info
        self._step_refusal = ""
        return obs, info

    def step(self, action):
        if self._step_refusal:
            raise RuntimeError(self._step_refusal)
        self._check_cameras()
        action = check_action(action, self.action_space.shape)
        d = self.data
        tcp_mat = d.site_xmat[self._tcp].reshape(3, 3)
        delta_pos = action[:3].astype(np.float64) * self.action_scale_m
        delta_rot = (
            action[3:].astype(np.float64) * self.action_scale_rad
            if self.action_mode == "pose"
            else np.zeros(3)
        )
        self.reference.move(d, d.site_xpos[self._tcp], tcp_mat, delta_pos, delta_rot)
        if self.workspace_mm is not None:
            self.reference.clip_position(d, *self._workspace_box_m())
        if self._orientation_limit is not None:
            self.reference.clip_orientation(d, self._start_quat, self._orientation_limit)

        self._step_force = self._step_physics()
        self._elapsed_s += self.dt
        self._wrench_reading = self._read_wrench()

        error = self._physics_error()
        if error:
            self._step_force = 0.0  # unknown, not the blow-up's 1e12 N (nor time above limits)
            # Truncated, not terminated: a blow-up is outside the task's MDP, and as an absorbing
            # state it would be worth more than going on under the negative dense rewards. The
            # state is MuJoCo's reset, the arm 1.3 m from the socket, so the last step's
            # observation, reward and pose stand in (the reset's pose went into the episode's
            # record, envs18) and no step goes on from there; its contact force (up to 1e12 N)
            # is no peak force the episode had.
            self.end_episode(f"the episode ended in a physics error ({error})")
            info = self._last_info | {"is_success": False, "force_n": 0.0,
                                      "tcp_pos_m": self._last_info["tcp_pos_m"].copy(),
                                      "physics_error": error}
            obs = {k: v.copy() for k, v in self._last_obs.items()}  # shares nothing (Gymnasium)
            return obs, self._last_reward, False, True, info
        self._max_force = max(self._max_force, self._step_force)
        obs = self._observation()
        info = self._info()
        inserted = info["is_success"]
        reward = self._reward(obs, inserted)
        self._last_obs, self._last_reward, self._last_info = obs, reward, info
        terminated = inserted and self.reward_type == "sparse"
        return obs, reward, terminated, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        check_open(self._closed)  # else a new 480x640 GL context that nothing would release
        if self._viewer is None:
            self._viewer = CameraRig(self.model, 480, 640, grayscale=False, cameras=("side",))
        return self._viewer.render(self.data, "side")

    def _check_cameras(self) -> None:
        """A clear error, before any physics, for a pixel env used after close(): it used to
        step and then fail on a bare `assert self.rig is not None`."""
        check_open(self._needs_cameras and self.rig is None)

    def close(self) -> None:
        for rig in (self.rig, self._viewer):
            if rig is not None:
                rig.close()
        self.rig = self._viewer = None
        self._closed = True

    # ----------------------------------------------------------------------------------------
    # Quantities

    @property
    def tcp_pos(self) -> np.ndarray:
        """TCP position [m], world (socket-mouth) frame."""
        return self.data.site_xpos[self._tcp].copy()

    def insertion_depth_mm(self) -> float:
        """How far the plug's mating face is below the socket mouth [mm], 0 when not in it."""
        return depth_in_socket_mm(self.data.site_xpos[self._face] / MM, self.task.connector)

    def _raw_wrench(self) -> np.ndarray:
        # MuJoCo reports the force and torque the child (tool side) exerts on the parent (wrist)
        # in the sensor frame; the environment's wrench on the tool is its negative. The sensor
        # frame and the TCP frame share their orientation.
        return -self.data.sensordata[self._wrench_adr : self._wrench_adr + 6]

    def _step_physics(self) -> float:
        """One policy step of physics (`ControlPeriod`: in C, without the GIL), then the wrist
        F/T sensor's first-order low-pass over the reading of every physics step. Returns the
        step's peak force [N]: with the "ft_sensor" peak model, of the zeroed, filtered force
        magnitude (noise-free: noise is added where the reading is observed); else of the
        plug's net contact force, at every physics step with a filter, at 100 Hz without."""
        sensordata = self._period.run()
        contact = sensordata[:, self._contact_adr : self._contact_adr + 3]
        if self._peak_from_ft or self._ft_alpha < 1.0:
            wrench = sensordata[:, self._wrench_adr : self._wrench_adr + 6]
            peak_sq = low_pass_wrench(
                self._ft_filtered, wrench, self._ft_alpha, self._wrench_bias[:3]
            )
            if not self._peak_from_ft:
                peak_sq = peak_norm_sq(contact)
        else:
            peak_sq = peak_norm_sq(contact[self._force_sample_rows])
        return peak_sq**0.5

    def _read_wrench(self) -> np.ndarray:
        """What the wrist F/T sensor reports [N, N m], TCP frame, zeroed at reset: the filtered
        reading (raw without a filter), plus drift and noise when the task models them."""
        reading = self._ft_filtered - self._wrench_bias
        if self._ft_alpha == 1.0:
            reading = self._raw_wrench() - self._wrench_bias
        if not self.sensor.noiseless:
            noise = self.np_random.normal(0.0, 1.0, 6) * self._ft_noise_std
            reading = reading + self._ft_drift_rate * self._elapsed_s + noise
        return reading

    def _observation(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        d = self.data
        if "state" in self.obs_mode:
            r0 = self.start_mat
            pos = (d.site_xpos[self._tcp] - self.obs_origin) @ r0  # = r0.T @ (p - p0)
            rel = r0.T @ d.site_xmat[self._tcp].reshape(3, 3)
            vel = np.empty(6)
            mujoco.mj_objectVelocity(self.model, d, mujoco.mjtObj.mjOBJ_SITE, self._tcp, vel, 0)
            tcp_pose = np.empty(6, np.float32)
            tcp_pose[:3], tcp_pose[3:] = pos, quat_to_rotvec(mat_to_quat(rel))
            obs["tcp_pose"] = tcp_pose
            # mj_objectVelocity gives [angular, linear] in world; the obs is [linear, angular].
            obs["tcp_vel"] = (vel.reshape(2, 3) @ r0)[::-1].ravel().astype(np.float32)
            obs["wrench"] = self._wrench_reading.astype(np.float32)
        if "pixels" in self.obs_mode:
            assert self.rig is not None
            images = self.rig.render_all(d, self.cameras)
            self._rendered = images  # the goal-image reward's: the render, without sensor noise
            if self.sensor.camera_noise:
                images = dict(images)
                for cam, image in images.items():
                    noise = self.np_random.normal(0.0, self.sensor.camera_noise, image.shape)
                    images[cam] = np.clip(image + noise, 0, 255).astype(np.uint8)
            obs.update(images)
        obs.update({f"goal_{k}": v.copy() for k, v in self._goal_images.items()})
        return obs

    def _reward(self, obs: dict[str, np.ndarray], inserted: bool) -> float:
        # The goal-image reward compares the rendered image, as the goal image is one: the
        # observation's camera noise made it depend on obs_mode (v1: -0.0098 seated with
        # pixels, -0.0039 without).
        cam = self.cameras[0]
        return task_reward(
            self.reward_type,
            inserted,
            self.tcp_pos,
            self.goal_pos,
            -float(self._wrench_reading[2]),
            lambda: (self._rendered[cam] if "pixels" in self.obs_mode
                     else self.rig.render(self.data, cam)),
            self._goal_images.get(cam),
            dense_form=self.task.dynamics.dense_form,
        )

    def _info(self) -> dict[str, Any]:
        """`is_success` means mated: the plug seated within its mating stroke (`is_mated`)."""
        depth = self.insertion_depth_mm()
        return {
            "task_id": self.task.env_id,
            "is_success": is_mated(depth, self.task.connector),
            "insertion_depth_mm": depth,
            "distance_to_goal_mm": float(np.linalg.norm(self.tcp_pos - self.goal_pos) / MM),
            "max_force_n": self._max_force,
            "force_n": self._step_force,
            "tcp_pos_m": self.tcp_pos,
        }

    # ----------------------------------------------------------------------------------------
    # Helpers

    @property
    def nominal_start_pos(self) -> np.ndarray:
        """The start TCP position without the random offset (world) [m]: `start_height` above
        the seated TCP (the nominal grasp puts the TCP on the plug face)."""
        return self._goal_face_pos + np.array([0.0, 0.0, self.start_height_m])

    def _workspace_box_m(self) -> tuple[np.ndarray, np.ndarray]:
        """SERL's safety box (world, [m]): the reference stays within `workspace_mm` of the
        socket axis sideways and at most `workspace_mm` above the nominal start height."""
        assert self.workspace_mm is not None
        return workspace_box(self.nominal_start_pos, self.workspace_mm * MM)

    def _solve_start_qpos(self, seed_q: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Arm joints for the start pose: `start_height` above the seated TCP, plus `offset`."""
        target = self.nominal_start_pos + offset
        return solve_ik(
            self.model, self._ik_data, self._tcp, target, TCP_DOWN, seed_q, self._arm_qpos,
            self._arm_dof,
        )

    def _physics_error(self) -> str:
        # MuJoCo checks qpos/qvel/qacc for NaN, inf and huge values on every step and resets the
        # state itself when it finds one, so its warning counters are the trace of a blow-up
        # (`ControlPeriod.run` zeroes them first: they count this step's warnings).
        # Read through self.data each time: a kept MjWarningStat view would not follow a copied
        # env's data (copy.deepcopy) and cannot be pickled.
        if sum(self.data.warning[w].number for w in _INSTABILITY_WARNINGS):
            return "MuJoCo found the simulation unstable (NaN/inf/huge qpos, qvel or qacc)"
        return ""

    def _render_goal_images(self) -> dict[str, np.ndarray]:
        """The cameras' view with the plug seated, rendered on a scratch copy of the state."""
        assert self.rig is not None
        scratch = mujoco.MjData(self.model)
        scratch.qpos[self._arm_qpos] = solve_ik(
            self.model,
            self._ik_data,
            self._tcp,
            self.goal_pos,
            TCP_DOWN,
            self.data.qpos[self._arm_qpos].copy(),
            self._arm_qpos,
            self._arm_dof,
        )
        mujoco.mj_forward(self.model, scratch)
        return self.rig.render_all(scratch, self.cameras)


def build_spaces(
    action_mode: str,
    obs_mode: str,
    reward: str,
    cameras: tuple[str, ...],
    image_shape: tuple[int, int, int],
) -> tuple[spaces.Box, spaces.Dict]:
    """The action and observation spaces of a task for these kwargs, without building MuJoCo.

    Shared with `real/`, so a policy trained in simulation sees identical spaces on hardware.
    `image_shape` is (height, width, channels) with 1 channel for grayscale.
    """
    n_act = 3 if action_mode == "xyz" else 6
    action_space = spaces.Box(-1.0, 1.0, (n_act,), np.float32)
    obs_spaces: dict[str, spaces.Space] = {}
    if "state" in obs_mode:
        for key in ("tcp_pose", "tcp_vel", "wrench"):
            obs_spaces[key] = spaces.Box(-np.inf, np.inf, (6,), np.float32)
    if "pixels" in obs_mode:
        for cam in cameras:
            obs_spaces[cam] = spaces.Box(0, 255, image_shape, np.uint8)
    if reward == "goal_image":
        for cam in cameras:
            obs_spaces[f"goal_{cam}"] = spaces.Box(0, 255, image_shape, np.uint8)
    return action_space, spaces.Dict(obs_spaces)


def p_controller_action(
    tcp_pose_start: np.ndarray,
    goal_pos_start: np.ndarray,
    action_scale_m: float,
    action_scale_rad: float,
    action_mode: str,
) -> np.ndarray:
    """Paper 000's P-controller (eq. 5) as a normalised action, from poses in the start frame.

    `tcp_pose_start`: TCP position [m] and rotation vector [rad] in the episode-start frame;
    `goal_pos_start`: believed goal TCP position [m] in the same frame. The delta is turned into
    the TCP frame; in "pose" mode the orientation is steered back to the start orientation.
    Shared by `p_controller` here and `real.p_controller` on the robot.
    """
    pos_start = np.asarray(tcp_pose_start[:3], dtype=np.float64)
    rotvec = np.asarray(tcp_pose_start[3:], dtype=np.float64)
    delta_start = -P_CONTROLLER_KP * (pos_start - goal_pos_start)
    rel_mat = np.zeros(9)
    mujoco.mju_quat2Mat(rel_mat, rotvec_to_quat(rotvec))
    action = rel_mat.reshape(3, 3).T @ delta_start / action_scale_m
    if action_mode == "pose":
        action = np.concatenate([action, -rotvec / action_scale_rad])
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def p_controller(env: gym.Env, goal_offset_m: np.ndarray | None = None,
                 ) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Paper 000's hand-designed P-controller (eq. 5): a = -kp * (x - x*), kp = [1, 1, 0.3].

    Returns a callable obs -> action (normalised, clipped to [-1, 1]) steering the TCP towards the
    goal the controller *believes* (the true goal plus `goal_noise_mm`). It reads the env's
    believed goal on every call, so it stays valid across resets, and follows a connector
    family or NIST board sequence to whichever connector is active (`active_insertion_env`).
    In "pose" mode it also steers the orientation back to the start orientation.
    `goal_offset_m` (x, y, z [m], world frame) aims it that far off the believed goal: an
    operator recording failures beside the socket (`benchmark.learned_reward`).
    `real.p_controller` is the same controller on the robot.
    """
    active_insertion_env(env)  # fail now, not at the first action, on a foreign env
    offset = np.zeros(3) if goal_offset_m is None else np.asarray(goal_offset_m, np.float64)
    if offset.shape != (3,) or not np.all(np.isfinite(offset)):
        raise ValueError(f"goal_offset_m must be 3 finite numbers [m], got {goal_offset_m!r}")

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        base = active_insertion_env(env)
        if "tcp_pose" in obs:  # observation frame -> start frame (same axes)
            pos_start = obs["tcp_pose"][:3].astype(np.float64) + base.start_mat.T @ (
                base.obs_origin - base.start_pos)
            rotvec = obs["tcp_pose"][3:].astype(np.float64)
        else:  # pixel-only observations: the controller still reads the robot's own kinematics
            pos_start = base.start_mat.T @ (base.tcp_pos - base.start_pos)
            rel = base.start_mat.T @ base.data.site_xmat[base._tcp].reshape(3, 3)
            rotvec = quat_to_rotvec(mat_to_quat(rel))
        goal_start = base.start_mat.T @ (base.believed_goal_pos + offset - base.start_pos)
        return p_controller_action(
            np.concatenate([pos_start, rotvec]),
            goal_start,
            base.action_scale_m,
            base.action_scale_rad,
            base.action_mode,
        )

    return act


def active_insertion_env(env: gym.Env) -> InsertionEnv:
    """The `InsertionEnv` currently running inside `env` (itself, a family's member, or a NIST
    board sequence's current part), or a PyBullet task (`envs.bullet`), which exposes the same
    start frame, believed goal and action scales."""
    base = env.unwrapped
    if getattr(base, "engine", None) in ("mujoco", "pybullet"):
        return base
    active = getattr(base, "active", None)
    if isinstance(active, InsertionEnv):
        return active
    raise TypeError(f"not an InsertBench insertion environment: {type(base).__name__}")
