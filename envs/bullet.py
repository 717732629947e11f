"""The insertion tasks in PyBullet: a second physics engine over the same connector data.

A policy that only works under MuJoCo's soft-contact model will not work on a real arm either.
This module builds a task's socket and plug in PyBullet (Bullet's rigid-body solver, a different
contact model: sequential impulses with split-impulse position correction) from exactly the
convex pieces MuJoCo uses (`envs.connectors.socket_pieces` / `plug_pieces`), with the same
action and observation semantics, the same 10 Hz policy over the same Cartesian impedance law,
the same reference limiting (`envs.controller.limited_reference`) and the same rewards.

What differs from the MuJoCo task, by design (this is a contact-model check, not a second robot):
- The arm is represented by its operational-space inertia at the TCP: the tool (gripper + plug)
  is one free body whose mass and rotational inertia are the UR5e's Cartesian inertia at the
  start pose, with the arm's joint damping mapped to the TCP, computed from the MuJoCo model
  (`tcp_inertia`), gravity-compensated as on the real controller. The arm's links never
  touch the board in these tasks. The board the socket housing stands on is there (a plug
  pushed down beside the housing lands on it); the table, which nothing reaches, is not.
- The impedance law (per-axis springs in the reference frame, saturating at stiffness x
  reference limit, and dampers on the TCP twist) is evaluated in Python at every physics step
  and applied as an external wrench; in MuJoCo it runs in C inside `mj_step`.
- `wrench` is the contact wrench on the tool (the sum of Bullet's contact impulses / dt),
  its torque about the wrist as MuJoCo's F/T sensor reads it (`tcp_offset_m` above the TCP);
  MuJoCo's sensor also sees the tool's own inertial force (small when quasi-static). Until
  model revision 2 (`envs.version_key.PYBULLET_REVISION`, 2026-12-06) the torque was about the
  TCP: pressed sideways with 30 N on USB, MuJoCo read 3.8 N m and PyBullet about 0, an input a
  policy reading torque met in one engine only.
- Connector contacts have no torsional friction (MuJoCo's have 0.005, `condim=4`): a plug
  turning about its own axis in a socket meets less resistance here.
- State observations only; camera observations are MuJoCo's. The task version's controller gains,
  geometry, retention springs and dense-reward form are used; its sensor variation (v1: F/T
  noise and drift, reset repeatability) and wrist F/T low-pass are not reproduced: readings and
  `max_force_n` are the raw per-step contact wrench.

Frames and units as in `envs.insertion_env`: world z up with its origin at the socket's cavity
mouth; the TCP is the plug's mating-face centre with z pointing down into the socket; metres,
newtons, seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import threading
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from envs.connectors import MM, ConnectorSpec, plug_pieces, socket_pieces
from envs.controller import limited_reference, mat_to_quat, quat_to_rotvec, workspace_box
from envs.geometry import Piece
from envs.insertion_env import TCP_DOWN, build_spaces
from envs.scene import ImpedanceGains, SpringParams, board_box, spring_params, tcp_offset_m
from envs.task_options import (
    FRICTION_SCALE_RANGE,
    OBS_FRAMES,
    TIMESTEP_RANGE_S,
    EpisodeSeeds,
    PlainSpec,
    RefusesCopies,
    check_action,
    check_bool,
    check_choice,
    check_options,
    check_pair,
    check_range,
    check_seed,
    check_time_limit,
    check_workspace,
    control_steps,
    is_mated,
    requested_offset_mm,
    sample_goal_noise_m,
    sample_start_offset_m,
    task_reward,
    warn_past_reference_limits,
)
from envs.tasks import TASKS, TaskSpec, task_spec

#: One `_quiet` at a time: two threads building envs at once each saved the descriptor the
#: other had pointed at /dev/null, and one of them restored that, silencing stdout for good.
_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet(*fds: int):
    """Silence C-level output on file descriptors `fds`: PyBullet's C code prints its build time
    on import (to fd 2) and argv on connect (to fd 1), which would land in a CLI's output. A
    descriptor that is closed (a process started with `>&-`) is left alone. Process-wide: what
    another thread prints meanwhile is lost too."""
    with _QUIET_LOCK:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None where the process has no such stream
                stream.flush()
        saved = {}
        for fd in fds:
            with contextlib.suppress(OSError):  # a closed descriptor: nothing to silence
                saved[fd] = os.dup(fd)
        with open(os.devnull, "w") as devnull:
            for fd in saved:
                os.dup2(devnull.fileno(), fd)
            try:
                yield
            finally:
                # C stdio buffers a pipe's or file's output until exit (unless Python runs
                # with -u): flush it while it still goes to /dev/null.
                ctypes.CDLL(None).fflush(None)
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
                    os.close(copy)


with _quiet(1, 2):  # Python errors while importing still raise; only the C banner is lost
    import pybullet
    from pybullet_utils.bullet_client import BulletClient

__all__ = ["UNSUPPORTED", "BulletInsertionEnv", "tcp_inertia", "probe_failure"]

#: What `python -m benchmark.sim2sim` measured of the connectors (by `ConnectorSpec.name`)
#: whose clearances PyBullet does not honour: offsets along +-x and +-y 0.1 mm inside the guide
#: window (`envs.connectors.guide_window_mm`) must slide in, 0.1 mm outside must stay at the
#: mouth (`benchmark.sim2sim.jammed`). Keyed by (name, task version). Building an unsupported
#: task raises unless `allow_unsupported=True` (`probe_failure`). Every connector of the
#: paper-000 tasks and the catalog passes the probe as in MuJoCo on v0 and v1 (measured
#: 2026-12-07, PyBullet model revision 4: the arm's damping without its coupling terms). Under
#: revision 3 the DDR4 DIMM (2/4) and the complex shape (3/4) slid in from one side only: the
#: coupling pushed the descending plug sideways. Under revision 2 Model-E and 16 catalog
#: connectors failed: their housings, one compound shape of up to 62 pieces, lost wall
#: contacts (a plug slid past an edge MuJoCo catches, or sank into a wall).
UNSUPPORTED: dict[tuple[str, int], str] = {}


def probe_failure(task: TaskSpec) -> str | None:
    """What the fidelity probe measured where PyBullet does not honour `task`'s clearances
    (`UNSUPPORTED`), or None where it does."""
    return UNSUPPORTED.get((task.connector.name, task.version))


#: Bullet's solver settings for millimetre clearances (`python -m benchmark.sim2sim` measures
#: what they achieve). Bullet's default convex collision margin (4 cm) is made for metre-sized
#: objects; every shape here gets `COLLISION_MARGIN_M`, far below the 0.15 mm clearances.
COLLISION_MARGIN_M = 1e-5
SOLVER_ITERATIONS = 100
#: Bullet's contact stiffness is set through ERP/CFM: ERP 0.2 pushes an overlap out in about
#: five steps; the split impulse keeps that correction from adding energy to the plug.
CONTACT_ERP = 0.2
#: The MuJoCo board's friction coefficient (MuJoCo's default, `envs.scene.build_spec` keeps it).
BOARD_FRICTION = 1.0


class BulletInsertionEnv(PlainSpec, RefusesCopies, gym.Env):
    """A task of `envs.tasks.TASKS` (paper 000 and the catalog) simulated by PyBullet.

    Same kwargs as `envs.InsertionEnv` for everything the contact check needs (`action_mode`,
    `reward` sparse/dense, `goal_noise_mm`, `init_offset_mm`, `friction_scale`,
    `start_height_mm`, `action_scale_m`, `action_scale_rad`, `control_hz`, `timestep`,
    `reference_mode`, `obs_frame`, `workspace_mm`), the same spaces (`obs_mode="state"`), the
    same `info` keys (and `engine`), and the same seeded start state: a seed gives the same
    start offset and goal noise in both engines, and so do the resets after it without a seed
    (each draws its seed from a stream the given one started, `envs.task_options.EpisodeSeeds`;
    on a v1 task MuJoCo adds its reset repeatability, up to 0.03 mm).
    """

    metadata = {"render_modes": []}
    engine = "pybullet"
    # Its PyBullet physics server, which a copy or a pickle shared by its id (stepping the copy
    # moved the original; collecting it disconnected the original) or lost (another process
    # had no server of that id).
    copy_refusal = ("a BulletInsertionEnv cannot be copied or pickled: it owns a PyBullet "
                    "physics server; make another with BulletInsertionEnv(task_id, ...)")

    def __init__(
        self,
        task: TaskSpec | str,
        *,
        action_mode: str = "xyz",
        obs_frame: str = "start",
        workspace_mm: float | None = None,
        reward: str = "sparse",
        goal_noise_mm: float = 0.0,
        init_offset_mm: tuple[float, float] = (0.0, 0.0),
        friction_scale: tuple[float, float] = (1.0, 1.0),
        start_height_mm: float = 50.0,
        action_scale_m: float = 0.005,
        action_scale_rad: float = 0.05,
        control_hz: float = 10.0,
        timestep: float | None = None,
        reference_mode: str = "accumulate",
        max_episode_steps: int | None = None,
        allow_unsupported: bool = False,
    ) -> None:
        if isinstance(task, str) and task.startswith("InsertBench/NISTBoard"):
            # task_spec knows single tasks only, and said "unknown task" with every ID.
            raise ValueError(f"{task}: NIST board layouts are not built in PyBullet")
        if isinstance(task, str):
            if task not in TASKS:  # task_spec's KeyError listed every task ID
                raise ValueError(f"{task!r} is not a single-connector task PyBullet can build "
                                 "(the paper-000 tasks and Connector-<Name>-vN; `insertbench "
                                 "list`)")
            task = task_spec(task)
        if not isinstance(task, TaskSpec):
            raise TypeError(f"task must be a task ID or a TaskSpec, got {task!r}")
        if task.dynamics.springs is not None:
            raise ValueError(
                f"{task.env_id}: PyBullet has no model of the contact springs of versions 2 and 3 "
                "(envs.scene.ContactSprings); use the task's -v1"
            )
        d = task.dynamics
        v3 = {"goal_at_seat": d.goal_at_seat, "orientation_limit_rad": d.orientation_limit_rad,
              "limit_per_axis=False": not d.gains.limit_per_axis,
              "rigid_board": d.contact.rigid_board}
        if any(v3.values()):  # a TaskSpec of one's own: these would be ignored without a word
            raise ValueError(f"{task.env_id}: PyBullet models task versions 0 and 1, not "
                             f"{', '.join(k for k, v in v3.items() if v)} (version 3's dynamics)")
        allow_unsupported = check_bool("allow_unsupported", allow_unsupported)  # "no" is truthy
        reason = probe_failure(task)
        if reason and not allow_unsupported:
            raise ValueError(
                f"{task.env_id} is not supported in PyBullet: {reason} "
                "(pass allow_unsupported=True to build it anyway)"
            )
        if reward == "goal_image":
            raise ValueError("reward='goal_image' needs cameras, which the PyBullet engine has not")
        options = check_options(
            task.connector,
            action_mode=action_mode,
            obs_mode="state",
            reward=reward,
            goal_noise_mm=goal_noise_mm,
            init_offset_mm=init_offset_mm,
            image_size=64,  # unused: state observations only
            grayscale=False,
            start_height_mm=start_height_mm,
            action_scale_m=action_scale_m,
            action_scale_rad=action_scale_rad,
            control_hz=control_hz,
            reference_mode=reference_mode,
        )
        check_choice("obs_frame", obs_frame, OBS_FRAMES)
        #: Wrist (F/T sensor) -> TCP, TCP frame [m]: the wrist is up the tool, against TCP z.
        self._wrist_to_tcp = np.array([0.0, 0.0, tcp_offset_m(task.connector)])
        self.workspace_mm = check_workspace(workspace_mm, options.init_offset_mm)
        f_lo, f_hi = check_pair("friction_scale", friction_scale, *FRICTION_SCALE_RANGE)
        # None: the task's own, as InsertionEnv takes it (refused here: sim2sim -e
        # timestep=null failed on this engine only, envs19).
        timestep = check_range("timestep", d.timestep if timestep is None else timestep,
                               *TIMESTEP_RANGE_S, " s")
        if task.board_sockets:
            raise ValueError(f"{task.env_id}: NIST board layouts are not built in PyBullet")
        self.task = task
        self.connector: ConnectorSpec = task.connector
        self.action_mode, self.reward_type = options.action_mode, options.reward
        self.obs_frame = obs_frame
        self.reference_mode = options.reference_mode
        self.goal_noise_mm, self.init_offset_mm = options.goal_noise_mm, options.init_offset_mm
        self.friction_scale = (f_lo, f_hi)
        self.start_height_m = options.start_height_mm * MM
        self.action_scale_m = options.action_scale_m
        self.action_scale_rad = options.action_scale_rad
        self.timestep = timestep
        self._episode_seeds = EpisodeSeeds()  # as InsertionEnv's: one seed, one start state
        self.frame_skip = control_steps(options.control_hz, timestep)
        self.dt = self.frame_skip * timestep
        # -1 used to truncate every episode at its first step, 2.5 at its third; now, as
        # gym.make takes it, no time limit (refused here alone: envs19)
        limit = check_time_limit(max_episode_steps)
        self.max_episode_steps = (task.max_episode_steps if limit is None
                                  else math.inf if limit == -1 else limit)
        self.gains: ImpedanceGains = task.dynamics.gains  # the task version's controller
        warn_past_reference_limits(task.env_id, self.gains, self.action_mode,
                                   self.action_scale_m, self.action_scale_rad)
        self._force_limit = self.gains.translational_stiffness * self.gains.translation_limit_m
        self._torque_limit = self.gains.rotational_stiffness * self.gains.rotation_limit_rad
        self.tool_mass_kg, self.tool_inertia, self._arm_damping = tcp_inertia(task, timestep)
        self.action_space, self.observation_space = build_spaces(
            action_mode, "state", reward, (), (1, 1, 1)
        )
        self._client: BulletClient | None = None
        self._connect()
        self._steps = 0

    def _connect(self) -> None:
        """A physics server of our own with the scene built in it."""
        with _quiet(1):
            self._client = BulletClient(connection_mode=pybullet.DIRECT)
        self._cid = self._client._client  # the hot path calls pybullet with this id directly
        self._build()

    # ----------------------------------------------------------------------------------------
    # Scene

    def _build(self) -> None:
        c, spec = self._client, self.connector
        c.setGravity(0.0, 0.0, 0.0)  # the tool is gravity-compensated, the socket is static
        c.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            numSolverIterations=SOLVER_ITERATIONS,
            numSubSteps=0,
            erp=CONTACT_ERP,
            contactERP=CONTACT_ERP,
            frictionERP=CONTACT_ERP,
            enableConeFriction=1,
            deterministicOverlappingPairs=1,
            useSplitImpulse=1,
            contactBreakingThreshold=1e-4,
        )
        pieces = socket_pieces(spec)
        # One static body per wall piece: as one compound, Bullet's compound-against-compound
        # test lost child pairs past ~30 children (XLR 3-pin's 61 walls let a plug 2.5 mm off
        # the axis sink 2.5 mm into the housing, where MuJoCo holds it above the mouth).
        self._walls = [self._wall(p) for p in pieces if p.spring_axis is None]
        springs = spring_params(spec, self.timestep)
        self._tab_stiffness, self._tab_damping = springs.stiffness, springs.damping
        self._tabs = [self._tab(p, springs) for p in pieces if p.spring_axis is not None]
        # The board the housing stands on: a plug pushed down beside the housing lands on it,
        # as in MuJoCo, instead of falling until the reference limit stops it ~150 mm lower.
        half, centre = board_box(spec)
        self._board = c.createMultiBody(
            0.0, c.createCollisionShape(c.GEOM_BOX, halfExtents=half), -1, centre)
        self._plug = c.createMultiBody(
            self.tool_mass_kg, self._compound(plug_pieces(spec)), -1, [0, 0, 0.1]
        )
        c.changeDynamics(
            self._plug,
            -1,
            localInertiaDiagonal=list(self.tool_inertia),
            linearDamping=0.0,
            angularDamping=0.0,
        )
        for body in (*self._walls, self._board, self._plug, *self._tabs):
            for link in range(-1, c.getNumJoints(body)):
                c.changeDynamics(body, link, collisionMargin=COLLISION_MARGIN_M)
        self._nominal_friction = spec.friction
        self._goal_face_pos = np.array([0.0, 0.0, -spec.mating_length_mm * MM])

    def _compound(self, pieces: list[Piece]) -> int:
        """One collision shape from convex pieces (frames as in `envs.geometry`)."""
        c = self._client
        kinds = {"box": c.GEOM_BOX, "capsule": c.GEOM_CAPSULE, "cylinder": c.GEOM_CYLINDER}
        types, halves, radii, lengths, positions, orientations = [], [], [], [], [], []
        for p in pieces:
            types.append(kinds[p.kind])
            halves.append(list(p.size) if p.kind == "box" else [0.0, 0.0, 0.0])
            radii.append(p.size[0] if p.kind != "box" else 0.0)
            lengths.append(2 * p.size[1] if p.kind != "box" else 0.0)
            positions.append(list(p.pos))
            orientations.append(_xyzw(p.quat))
        shape = c.createCollisionShapeArray(
            shapeTypes=types,
            halfExtents=halves,
            radii=radii,
            lengths=lengths,
            collisionFramePositions=positions,
            collisionFrameOrientations=orientations,
        )
        return shape

    def _piece_shape(self, piece: Piece) -> int:
        """The collision shape of one convex piece about its own position (its body's)."""
        return self._compound([Piece(piece.kind, piece.size, (0.0, 0.0, 0.0), piece.quat)])

    def _wall(self, piece: Piece) -> int:
        """A static body of one wall piece, placed at the piece's position."""
        return self._client.createMultiBody(0.0, self._piece_shape(piece), -1, list(piece.pos))

    def _tab(self, piece: Piece, springs: SpringParams) -> int:
        """A retention spring: the piece on a prismatic joint along its spring axis, pushed
        back into the cavity by a spring applied as a joint force at every physics step. The
        tab's mass is MuJoCo's armature for it (`envs.scene.spring_params`): omega * dt = 0.5
        keeps the explicit spring stable at the physics step."""
        c = self._client
        shape = self._piece_shape(piece)
        body = c.createMultiBody(
            baseMass=0.0,
            basePosition=list(piece.pos),
            linkMasses=[springs.armature],
            linkCollisionShapeIndices=[shape],
            linkVisualShapeIndices=[-1],
            linkPositions=[[0.0, 0.0, 0.0]],
            linkOrientations=[[0.0, 0.0, 0.0, 1.0]],
            linkInertialFramePositions=[[0.0, 0.0, 0.0]],
            linkInertialFrameOrientations=[[0.0, 0.0, 0.0, 1.0]],
            linkParentIndices=[0],
            linkJointTypes=[c.JOINT_PRISMATIC],
            linkJointAxis=[list(piece.spring_axis)],
        )
        c.changeDynamics(body, 0, jointLowerLimit=0.0, jointUpperLimit=springs.travel)
        c.setJointMotorControl2(body, 0, c.VELOCITY_CONTROL, force=0.0)  # free, spring-driven
        for wall in self._walls:  # a tab never hits the housing it is set in
            c.setCollisionFilterPair(body, wall, 0, -1, 0)
        return body

    # ----------------------------------------------------------------------------------------
    # Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Before the generator is reseeded.
        requested = requested_offset_mm(options, self.workspace_mm)
        super().reset(seed=self._episode_seeds(check_seed(seed)))
        if self._client is None:  # closed: reset builds the scene again, as MuJoCo's env allows
            self._connect()
        rng = self.np_random
        c = self._client
        # Draw the start state in InsertionEnv's order, so one seed means one start state in both
        # engines (grasp noise is not modelled here: its two draws are made and unused).
        rng.uniform(-1, 1, 2), rng.uniform(-1, 1)
        # Bullet multiplies the two bodies' coefficients (MuJoCo takes the larger): each body
        # gets the square root, so a contact sees the connector's coefficient.
        friction = np.sqrt(self._nominal_friction * rng.uniform(*self.friction_scale))
        offset = np.append(sample_start_offset_m(rng, self.init_offset_mm), 0.0)
        if requested is not None:
            offset = np.array([*requested, 0.0]) * MM
        goal_noise = sample_goal_noise_m(rng, self.goal_noise_mm)
        # The F/T drift rate InsertionEnv draws every reset (zero on a noiseless task): without
        # it the generators parted after the first reset, and unseeded resets started the two
        # engines up to 5.6 mm apart (engines18).
        rng.normal(0.0, 1.0, 6)

        for body in (*self._walls, self._plug):
            c.changeDynamics(body, -1, lateralFriction=friction)
        # MuJoCo's board keeps the default coefficient, and a plug-board contact takes the larger.
        c.changeDynamics(self._board, -1,
                         lateralFriction=max(friction**2, BOARD_FRICTION) / friction)
        for tab in self._tabs:
            c.changeDynamics(tab, 0, lateralFriction=friction)
            c.resetJointState(tab, 0, 0.0, 0.0)
        nominal_start = self.nominal_start_pos
        self.start_pos = nominal_start + offset
        self.start_mat = TCP_DOWN
        #: Origin of the observation frame (world) [m], as in `envs.insertion_env`.
        self.obs_origin = self.start_pos if self.obs_frame == "start" else nominal_start
        c.resetBasePositionAndOrientation(self._plug, list(self.start_pos), [0, 0, 0, 1])
        c.resetBaseVelocity(self._plug, [0, 0, 0], [0, 0, 0])
        self.ref_pos, self.ref_quat = self.start_pos.copy(), mat_to_quat(TCP_DOWN)
        self._ref_mat = TCP_DOWN
        self.goal_pos = self._goal_face_pos.copy()
        self.believed_goal_pos = self._goal_face_pos + goal_noise
        self._wrench = np.zeros(6)
        self._max_force = self._step_force = 0.0
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action):
        if not hasattr(self, "ref_pos"):  # set by reset(); an AttributeError otherwise
            raise RuntimeError("call reset() before step()")
        a = check_action(action, self.action_space.shape)
        pos, mat, _, _ = self._tcp_state()
        delta_rot = a[3:] * self.action_scale_rad if self.action_mode == "pose" else np.zeros(3)
        self.ref_pos, self.ref_quat = limited_reference(
            self.ref_pos,
            self.ref_quat,
            pos,
            mat,
            a[:3].astype(np.float64) * self.action_scale_m,
            np.asarray(delta_rot, np.float64),
            self.gains,
            self.reference_mode,
        )
        if self.workspace_mm is not None:
            self.ref_pos = np.clip(
                self.ref_pos, *workspace_box(self.nominal_start_pos, self.workspace_mm * MM)
            )
        self._ref_mat = _quat_mat(self.ref_quat)
        self._state = self._tcp_state()
        self._step_force = 0.0
        for _ in range(self.frame_skip):
            self._physics_step()
        self._steps += 1
        obs, info = self._observation(), self._info()
        inserted = info["is_success"]
        reward = self._reward(inserted)
        terminated = inserted and self.reward_type == "sparse"
        # As Gymnasium's TimeLimit on MuJoCo's: the limit truncates on a success's step too.
        truncated = self._steps >= self.max_episode_steps
        return obs, reward, terminated, truncated, info

    def render(self):
        """None to render: the PyBullet task has no cameras (`render_modes` is empty)."""
        raise NotImplementedError("the PyBullet engine renders nothing (no cameras, "
                                  "render_modes []): render the MuJoCo task")

    def close(self) -> None:
        """Disconnect the physics server; a later `reset` connects and builds again (it used
        to fail with AttributeError, `step` with pybullet's "Not connected")."""
        if self._client is not None:
            self._client.disconnect()
            self._client = None
        self.__dict__.pop("ref_pos", None)  # step() needs a reset() first

    # ----------------------------------------------------------------------------------------
    # Physics

    @property
    def nominal_start_pos(self) -> np.ndarray:
        """The start TCP position without the random offset (world) [m], as in
        `envs.insertion_env`."""
        return self._goal_face_pos + np.array([0.0, 0.0, self.start_height_m])

    @property
    def tcp_pos(self) -> np.ndarray:
        """TCP position [m], world (socket-mouth) frame, as `InsertionEnv.tcp_pos`."""
        return self._tcp_state()[0]

    def _tcp_state(self):
        """TCP position [m], orientation matrix, linear and angular velocity (world)."""
        cid = self._cid
        pos, quat_xyzw = pybullet.getBasePositionAndOrientation(self._plug, physicsClientId=cid)
        lin, ang = pybullet.getBaseVelocity(self._plug, physicsClientId=cid)
        plug_mat = np.array(pybullet.getMatrixFromQuaternion(quat_xyzw)).reshape(3, 3)
        return np.array(pos), plug_mat @ TCP_DOWN, np.array(lin), np.array(ang)

    def _physics_step(self) -> None:
        cid, g = self._cid, self.gains
        pos, mat, lin, ang = self._state
        # The impedance law of envs.scene, per axis of the reference frame: springs saturate
        # at stiffness x reference limit, dampers act on the TCP twist.
        ref_mat = self._ref_mat
        spring = g.translational_stiffness * (ref_mat.T @ (self.ref_pos - pos))
        force = ref_mat @ spring.clip(-self._force_limit, self._force_limit)
        force -= g.translational_damping * lin
        rot_error = quat_to_rotvec(mat_to_quat(mat.T @ ref_mat))  # TCP -> reference, TCP frame
        torque = mat @ (g.rotational_stiffness * rot_error).clip(
            -self._torque_limit, self._torque_limit
        )
        torque -= g.rotational_damping * ang
        arm = self._arm_damping @ np.concatenate([lin, ang])  # the arm's joint damping
        force, torque = force - arm[:3], torque - arm[3:]
        pybullet.applyExternalForce(
            self._plug, -1, force.tolist(), pos.tolist(), pybullet.WORLD_FRAME, physicsClientId=cid
        )
        pybullet.applyExternalTorque(
            self._plug, -1, torque.tolist(), pybullet.WORLD_FRAME, physicsClientId=cid
        )
        for tab in self._tabs:
            q, qd = pybullet.getJointState(tab, 0, physicsClientId=cid)[:2]
            pybullet.setJointMotorControl2(
                tab,
                0,
                pybullet.TORQUE_CONTROL,
                force=-self._tab_stiffness * q - self._tab_damping * qd,
                physicsClientId=cid,
            )
        pybullet.stepSimulation(physicsClientId=cid)
        self._state = self._tcp_state()
        self._wrench = self._contact_wrench(mat, lin, ang, force, torque)
        force = float(np.linalg.norm(self._wrench[:3]))
        self._step_force = max(self._step_force, force)
        self._max_force = max(self._max_force, force)

    def _contact_wrench(self, mat, lin, ang, force, torque) -> np.ndarray:
        """Force [N] and torque about the TCP [N m] the socket exerted on the plug during the
        last physics step (world frame), from the tool's momentum change minus the impedance
        wrench (split impulses correct positions without touching velocities). The force is
        exact for Bullet's semi-implicit step; the torque leaves out the gyroscopic term
        omega x I omega Bullet integrates, so a tool turning in free air reads it, with the sign
        flipped, as a contact torque (about 0.01 N m at pose mode's 0.2-0.3 rad/s, below
        MuJoCo's own inertial reading of such a turn; kept: adding it changes the model's
        episodes, a revision of its own). Bullet's contact-point query cannot serve here: it
        flips a pair's normal to the queried order but not its friction directions."""
        _, _, lin_after, ang_after = self._state
        plug_mat = mat @ TCP_DOWN  # TCP_DOWN is its own inverse
        inertia_world = (plug_mat * self.tool_inertia) @ plug_mat.T
        contact_force = self.tool_mass_kg * (lin_after - lin) / self.timestep - force
        contact_torque = inertia_world @ (ang_after - ang) / self.timestep - torque
        return np.concatenate([contact_force, contact_torque])

    # ----------------------------------------------------------------------------------------
    # Observations, rewards, info (the semantics of envs.insertion_env)

    def _observation(self) -> dict[str, np.ndarray]:
        pos, mat, lin, ang = self._tcp_state()
        r0 = self.start_mat
        tcp_pose = np.empty(6, np.float32)
        tcp_pose[:3] = r0.T @ (pos - self.obs_origin)
        tcp_pose[3:] = quat_to_rotvec(mat_to_quat(r0.T @ mat))
        force_tcp = mat.T @ self._wrench[:3]
        # About the wrist, as MuJoCo's F/T sensor: tau_w = tau_tcp + (p_tcp - p_w) x F.
        torque = mat.T @ self._wrench[3:] + np.cross(self._wrist_to_tcp, force_tcp)
        wrench_tcp = np.concatenate([force_tcp, torque])
        return {
            "tcp_pose": tcp_pose,
            "tcp_vel": np.concatenate([r0.T @ lin, r0.T @ ang]).astype(np.float32),
            "wrench": wrench_tcp.astype(np.float32),
        }

    def insertion_depth_mm(self) -> float:
        face = self._tcp_state()[0]
        c = self.connector
        inside = abs(face[0]) < c.width_mm / 2 * MM and abs(face[1]) < c.height_mm / 2 * MM
        return max(0.0, -float(face[2]) / MM) if inside else 0.0

    def _reward(self, inserted: bool) -> float:
        pos, mat, _, _ = self._tcp_state()
        press = -float((mat.T @ self._wrench[:3])[2])  # along TCP z, into the socket
        return task_reward(self.reward_type, inserted, pos, self.goal_pos, press, None, None,
                           dense_form=self.task.dynamics.dense_form)

    def _info(self) -> dict[str, Any]:
        depth = self.insertion_depth_mm()
        pos = self._tcp_state()[0]
        return {
            "task_id": self.task.env_id,
            "engine": self.engine,
            "is_success": is_mated(depth, self.connector),
            "insertion_depth_mm": depth,
            "distance_to_goal_mm": float(np.linalg.norm(pos - self.goal_pos) / MM),
            "max_force_n": self._max_force,
            "force_n": self._step_force,
            "tcp_pos_m": pos,
        }


def tcp_inertia(task: TaskSpec, timestep: float = 0.002) -> tuple[float, np.ndarray, np.ndarray]:
    """The UR5e's operational-space inertia and joint damping at the task's start pose, from the
    MuJoCo model: the default start, 50 mm above the seat, whatever `start_height_mm` an env
    is given (at 150 mm the true mass is 5% larger, 8.19 against 7.80 kg on USB-v1, and the
    moment about y 17% smaller: a gap of such envs' sim-to-sim comparison, kept so that one
    model revision is one tool body).

    Returns (mass [kg], rotational moments [kg m^2], damping (6, 6)): the mean eigenvalue of the
    translational block of Lambda = (J M^-1 J^T)^-1 at the TCP; the diagonal of its rotational
    block on the world axes, which are the tool body's at the start pose (the eigenvalues,
    sorted, put rotation about z 9.4x too heavy and about x 5.8x too light: pose-mode turns
    ran 10-40% ahead of MuJoCo's); and the diagonal of the arm's joint damping seen at the TCP
    twist, J^-T D J^-1 [N s/m, N m s/rad], world frame, which the arm adds to the impedance
    law's dampers (1-3 N m s/rad on 5). This is the inertia a wrench at the TCP accelerates, so
    the tool body in PyBullet responds to contacts and to the impedance law as the arm's end
    does on average: not its spread over the axes (eigenvalues 4.7, 6.2, 13.6 kg at USB's
    start) nor the coupling between them (-3.5 kg between x and z), the arm's sideways swing,
    which the sim-to-sim gap therefore includes (engines18: one full-rate step along x moved
    the tool 4.47 mm in PyBullet, 3.93 mm in MuJoCo). The damping's coupling terms are left
    out with the inertia's: alone they pushed a straight descent sideways, the other way to
    MuJoCo's swing (-0.27 mm at action_scale_m 0.02; model revision 3, engines22).
    """
    from envs.insertion_env import InsertionEnv

    env = InsertionEnv(task, timestep=timestep)
    env.reset(seed=0)
    m, d = env.model, env.data
    jac_p, jac_r = np.zeros((3, m.nv)), np.zeros((3, m.nv))
    mujoco.mj_jacSite(m, d, jac_p, jac_r, env._tcp)
    jac = np.vstack([jac_p, jac_r])[:, env._arm_dof]
    mass_matrix = np.zeros((m.nv, m.nv))
    mujoco.mj_fullM(m, d, mass_matrix)
    arm_m = mass_matrix[np.ix_(env._arm_dof, env._arm_dof)]
    lam = np.linalg.inv(jac @ np.linalg.solve(arm_m, jac.T))
    jac_inv = np.linalg.inv(jac)
    damping = jac_inv.T @ np.diag(m.dof_damping[env._arm_dof]) @ jac_inv
    env.close()
    mass = float(np.linalg.eigvalsh(lam[:3, :3]).mean())
    return mass, np.diag(lam[3:, 3:]).copy(), np.diag(np.diag(damping))


def _quat_mat(quat_wxyz: np.ndarray) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat_wxyz)
    return mat.reshape(3, 3)


def _xyzw(quat_wxyz) -> list[float]:
    w, x, y, z = quat_wxyz
    return [x, y, z, w]
