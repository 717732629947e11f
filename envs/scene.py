"""Builds the MuJoCo model of an insertion cell with `mujoco.MjSpec`: arm, gripper, plug, board.

World frame: z up, origin at the centre of the socket's cavity mouth. The UR5e stands on the
table at `ur5e_constants.BASE_POS_M`; its kinematic chain is built from the published DH
parameters. The plug is pre-grasped: a body fixed in the gripper whose pose in the gripper is
the grasp (and the grasp noise), so the wrist F/T sensor sees every contact force on it.

The Cartesian impedance controller runs in C, inside `mj_step`: twelve actuators with a site
transmission between the TCP site and a reference site on a mocap body. Six are springs whose
`forcerange` is stiffness x reference limit, so the force never exceeds what SERL's clipped
reference |e| <= delta would produce; six are dampers on the TCP velocity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from envs import ur5e_constants as ur
from envs.connectors import MM, ConnectorSpec, plug_pieces, socket_pieces, spring_rails
from envs.geometry import Piece
from envs.rendering import merge_visual_boxes
from envs.version_key import ADDED_FIELD


@dataclass(frozen=True)
class ContactParams:
    """Solver settings that make millimetre clearances meaningful (see DESIGN.md, measured facts).

    Rigid contacts: a time constant of two physics steps (the smallest MuJoCo keeps stable),
    critically damped, and an impedance close to 1 over 0.1 mm, which holds static penetration
    to micrometres under the task's maximum push. An impact still sinks in by about
    velocity x time constant (0.1 mm at 5 cm/s), which `geometry.RIM_PROUD` accounts for.
    """

    rigid_timeconst_steps: float = 2.0
    rigid_solimp: tuple[float, float, float] = (0.99, 0.999, 1e-4)
    impratio: float = 10.0
    #: The task board's contacts are as rigid as the socket's (task version 3 on). Versions 0-2
    #: leave it at MuJoCo's default contact, which mixed with the plug's sinks 16 um under 100 N
    #: (the socket: 1.5 um).
    rigid_board: bool = field(default=False, metadata=ADDED_FIELD)


@dataclass(frozen=True)
class ImpedanceGains:
    """Cartesian impedance of the TCP (SERL's controller): spring, damping and reference limit.

    Stiffness in N/m and N m/rad, damping in N s/m and N m s/rad, limits in m and rad. The spring
    force saturates at stiffness x limit: with the defaults, 30 N and 5 N m. The spring acts
    through the UR5e's inertia, which couples the axes: commanded straight down from rest, the
    TCP swings sideways from its start by up to 0.42 mm in the first 0.1 s env step at 5 cm/s,
    0.84 mm at 10 cm/s and 1.7 mm at 20 cm/s (v1 on; v0's 6 mm limit holds it to 0.5 mm), and
    by up to 0.30 / 0.61 / 1.06 mm in the later steps (`python -m
    benchmark.bench_descent_swing`, every physics step, 2026-12-06).
    """

    translational_stiffness: float = 5000.0
    rotational_stiffness: float = 100.0
    translational_damping: float = 250.0
    rotational_damping: float = 5.0
    translation_limit_m: float = 0.006
    rotation_limit_rad: float = 0.05
    #: Where the reference's position offset from the TCP is limited: on each axis (as SERL
    #: clips, versions 0-2: a diagonal push reaches sqrt(3) x `max_force_n`) or on its length
    #: (task version 3 on: the push force's magnitude is at most `max_force_n`, as `real/`
    #: bounds it).
    limit_per_axis: bool = field(default=True, metadata=ADDED_FIELD)

    @property
    def max_force_n(self) -> float:
        """The largest force the controller pushes with [N]: stiffness x reference limit,
        along one axis or, without `limit_per_axis`, in any direction."""
        return self.translational_stiffness * self.translation_limit_m


@dataclass(frozen=True)
class ContactSprings:
    """Retention springs whose contact is the spring (task version 2 on).

    Each spring is a rigid sphere of the socket standing `spring_interference_mm` into the
    plug's path (where version 1 hangs a light tab on a slide joint), and it touches only a
    rail on the plug: a box flush with the plug's side under the sphere, so there is one
    contact per spring whatever convex pieces the plug is made of. The contact's reference
    stiffness is chosen so that its penetration force is the spring's, N = k x interference
    (MuJoCo's direct solref: with impedance d the static force is stiffness x depth /
    ((1 - d) x diagApprox)), so friction on the deflected spring sets the plateau as in v1, but
    there is no light body for the soft contact's sliding push-off to knock away: v1's tabs
    lose contact in every env step of a slide, these stay on the plug from touch-down to
    release (`benchmark/bench_tab_chatter.py`; one bounce at the RAM card's touch-down).

    impedance: solimp's constant d. The convex model's sliding push-off, an extra normal force
    of about friction x damping x slip speed / (A + R), falls as the constraint's regulariser
    R = (1 - d) / d x diagApprox grows: at 0.9 the plateau rose 8% (at most 17%) from 0.25 to
    1 mm per env step, at 0.7 2% (at most 4%). Softer still lets the friction rows creep below
    mu N at slow slips (0.5: USB's slow pull dips to 0.78 of its mean), which the version's
    impratio of 30 (`envs.tasks.DYNAMICS_V2`) holds off at 0.7.
    damping_per_s: the contact's reference damping [1/s], which also sets how hard its
    friction rows hold: well above ~10/s, so friction resists the slip velocity rather than the
    arm's accelerations within a 10 Hz step (a 0.5 N peg reads friction along the motion at
    1 mm per step below that), and well below the rigid 2/timeconst = 500/s, which would
    multiply the push-off. rail_thickness_mm: the rails' depth into the plug (inside its body:
    the rails touch nothing but the springs).
    """

    impedance: float = 0.7
    damping_per_s: float = 40.0
    rail_thickness_mm: float = 0.6


@dataclass(frozen=True)
class SceneConfig:
    """timestep [s], contact solver, impedance gains, offscreen frame size, and the retention
    springs' model (None: version 1's slide-joint tabs, `spring_params`)."""

    timestep: float = 0.002
    contact: ContactParams = ContactParams()
    gains: ImpedanceGains = ImpedanceGains()
    offscreen_width: int = 640
    offscreen_height: int = 480
    springs: ContactSprings | None = field(default=None, metadata=ADDED_FIELD)


#: Distance from the flange to the gripper's palm (F/T sensor + 60 mm gripper base) [m].
PALM_OFFSET_M = ur.FT_SENSOR_LENGTH_M + 0.06


def tcp_offset_m(spec: ConnectorSpec) -> float:
    """Flange-to-TCP distance: the TCP is the nominal centre of the plug's mating face."""
    return PALM_OFFSET_M + (spec.mating_length_mm + spec.body_length_mm) * MM


def tcp_offset_pose(spec: ConnectorSpec) -> list[float]:
    """The flange-to-TCP pose [m, rad] of the simulated grasp, as UR's setTcp takes it: along
    the flange axis, unturned."""
    return [0.0, 0.0, tcp_offset_m(spec), 0.0, 0.0, 0.0]


def _dh_transform(d: float, a: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Fixed part Tz(d) Tx(a) Rx(alpha) of one DH link, as (pos, quat)."""
    return np.array([a, 0.0, d]), np.array([np.cos(alpha / 2), np.sin(alpha / 2), 0.0, 0.0])


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, q)
    return m.reshape(3, 3)


def _add_pieces(
    body,
    pieces: list[Piece],
    prefix: str,
    rgba,
    friction: float,
    solref: list[float],
    solimp: list[float],
    spring: SpringParams | None = None,
    bits: tuple[int, int] | None = None,
) -> None:
    """Add pieces as rigid geoms of `body`; spring pieces become spring-loaded tabs. `bits`
    (contype, conaffinity) overrides `_collision_bits`."""
    kinds = {
        "box": mujoco.mjtGeom.mjGEOM_BOX,
        "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
        "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    }
    for i, p in enumerate(pieces):
        owner, pos = body, p.pos
        if p.spring_axis is not None:
            if spring is None:
                raise ValueError(f"{prefix}: spring piece {p.name!r} needs SpringParams")
            owner = body.add_body()
            owner.name = f"{prefix}_{p.name or i}_tab"
            owner.pos, pos = p.pos, (0.0, 0.0, 0.0)
            joint = owner.add_joint()
            joint.name = f"{prefix}_{p.name or i}_slide"
            joint.type = mujoco.mjtJoint.mjJNT_SLIDE
            joint.axis = p.spring_axis
            joint.stiffness = [spring.stiffness, 0.0, 0.0]
            joint.damping = [spring.damping, 0.0, 0.0]
            joint.armature = spring.armature
            joint.limited = mujoco.mjtLimited.mjLIMITED_TRUE
            joint.range = [0.0, spring.travel]
            joint.solref_limit = solref
        geom = owner.add_geom()
        geom.name = f"{prefix}_{p.name or i}"
        geom.type = kinds[p.kind]
        geom.size[: len(p.size)] = p.size
        geom.pos = pos
        geom.quat = p.quat
        geom.rgba = (0.9, 0.75, 0.2, 1.0) if p.spring_axis is not None else rgba
        geom.friction = [friction, 0.005, 0.0001]
        geom.contype, geom.conaffinity = bits or _collision_bits(prefix, p.spring_axis is not None)
        geom.condim = 4
        geom.mass = 0.002
        geom.solref = solref
        geom.solimp = solimp


#: Collision bits: the static socket and board (1), the arm (2), the spring tabs (4). The plug
#: touches all of the socket; a tab touches only the plug, never the walls it is mounted in.
#: With contact springs (`ContactSprings`) a spring touches only the plug's rails, and the rails
#: nothing else.
_SOCKET, _ARM, _TAB = 1, 2, 4


def _add_contact_springs(body, pieces: list[Piece], friction: float) -> None:
    """The socket's spring pieces as rigid spheres of `body` (their capsules' radius and centre),
    touching only the plug's rails; `tune_contact_springs` sets their stiffness once the model
    is compiled."""
    for p in pieces:
        geom = body.add_geom()
        geom.name = f"socket_{p.name}"
        geom.type = mujoco.mjtGeom.mjGEOM_SPHERE
        geom.size[0] = p.size[0]
        geom.pos = p.pos
        geom.rgba = (0.9, 0.75, 0.2, 1.0)
        geom.friction = [friction, 0.005, 0.0001]
        geom.contype = geom.conaffinity = _TAB
        geom.condim = 4
        geom.priority = 1  # the spring's solref and solimp rule its contact with the rail


def tune_contact_springs(
    model: mujoco.MjModel, spec: ConnectorSpec, springs: ContactSprings, timestep: float
) -> None:
    """Give the compiled model's contact springs `spring_params`' stiffness [N/m].

    MuJoCo's direct solref (-k, -b) with a constant impedance d holds a static penetration x
    with force k x / ((1 - d) diagApprox), where diagApprox of a plug-socket contact is the
    plug's translational `body_invweight0` (the socket is static), known only after compiling.
    """
    stiffness = spring_params(spec, timestep).stiffness
    inv_weight = model.body_invweight0[model.body("plug").id, 0]
    d = springs.impedance
    for name in ("socket_spring0", "socket_spring1"):
        geom = model.geom(name).id
        model.geom_solref[geom] = (-stiffness * (1 - d) * inv_weight, -springs.damping_per_s)
        model.geom_solimp[geom] = (d, d, 1e-3, 0.5, 2.0)


def _collision_bits(prefix: str, is_tab: bool) -> tuple[int, int]:
    if is_tab:
        return _TAB, _TAB
    if prefix == "plug":
        return _SOCKET | _TAB, _SOCKET | _TAB
    return _SOCKET, _SOCKET


@dataclass(frozen=True)
class SpringParams:
    """A connector's retention spring as a tab on a slide joint: stiffness [N/m], damping
    [N s/m], armature [kg] (keeps the stiff spring stable at the physics step), travel [m]."""

    stiffness: float
    damping: float
    armature: float
    travel: float


def spring_params(spec: ConnectorSpec, timestep: float) -> SpringParams:
    """Tabs whose friction resists insertion with `retention_force_n`: two tabs, each pushed
    back by the interference and pressing with N = k * interference on the plug, so that
    2 * friction * N = retention force."""
    normal_per_tab = spec.retention_force_n / (2 * spec.friction)
    stiffness = normal_per_tab / (spec.spring_interference_mm * MM)
    # Semi-implicit Euler needs omega * dt well below 2: choose the inertia for omega * dt = 0.5.
    armature = stiffness * (timestep / 0.5) ** 2
    damping = 2.0 * np.sqrt(stiffness * armature)  # critically damped: no ringing tab
    return SpringParams(stiffness, damping, armature, spec.spring_travel_mm * MM)


#: A socket placed on the board besides the task's own: its spec and mouth centre (x, y) [m] in
#: the world frame (the active socket's mouth is the origin).
BoardSocket = tuple[ConnectorSpec, tuple[float, float]]


def board_box(spec: ConnectorSpec, board_sockets: tuple[BoardSocket, ...] = ()
              ) -> tuple[list[float], list[float]]:
    """Half sizes and centre (world, metres) of the task board: 300 mm square (grown to hold a
    NIST layout's sockets), 10 mm thick, its top at the foot of the socket housing, z = -(cavity
    depth + wall). Shared with the PyBullet scene (`envs.bullet`)."""
    half = 0.15
    if board_sockets:
        reach = max(max(abs(x), abs(y)) for _, (x, y) in board_sockets)
        half = max(half, reach + 0.04)
    depth = spec.cavity_depth_mm * MM + spec.wall_mm * MM
    return [half, half, 0.005], [0.0, 0.0, -depth - 0.005]


def build_spec(
    spec: ConnectorSpec,
    config: SceneConfig = SceneConfig(),
    board_sockets: tuple[BoardSocket, ...] = (),
) -> mujoco.MjSpec:
    """The full cell as an editable `MjSpec` (`build_model` compiles it and sets the contact
    springs' stiffness, which needs the compiled model).

    `board_sockets` adds further sockets (NIST task board layout) as static obstacles with their
    mouths at z = 0; the board grows to hold them. Colours come from the connector spec.
    """
    s = mujoco.MjSpec()
    s.modelname = f"insertbench_{spec.name}"
    s.option.timestep = config.timestep
    s.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    s.option.impratio = config.contact.impratio
    s.option.noslip_iterations = 0
    s.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    s.visual.quality.shadowsize = 0  # shadows and multisampling dominate offscreen cost
    s.visual.quality.offsamples = 0
    # Vertex work on tessellated capsules dominates small software-rendered frames: 12 x 4
    # instead of 28 x 16 renders a 64x64 D-sub frame 2.5x faster (benchmark/bench_env.py).
    s.visual.quality.numslices = 12
    s.visual.quality.numstacks = 4
    s.visual.global_.offwidth = config.offscreen_width
    s.visual.global_.offheight = config.offscreen_height
    s.visual.headlight.ambient = [0.4, 0.4, 0.4]
    s.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    world = s.worldbody
    light = world.add_light()
    light.pos, light.dir = [0.1, -0.2, 0.6], [-0.15, 0.3, -1.0]

    # Table and the task board the socket housing stands on.
    depth = spec.cavity_depth_mm * MM + spec.wall_mm * MM
    board = world.add_geom()
    board.name = "board"
    board.type = mujoco.mjtGeom.mjGEOM_BOX
    board.size, board.pos = board_box(spec, board_sockets)
    board.rgba = list(spec.board_rgba)
    if spec.board_checker_rgba is not None:
        board.material = _checker_material(s, spec.board_rgba, spec.board_checker_rgba)
    board.contype, board.conaffinity = _SOCKET, _SOCKET | _ARM
    solref = [config.contact.rigid_timeconst_steps * config.timestep, 1.0]
    solimp = [*config.contact.rigid_solimp, 0.5, 2.0]
    if config.contact.rigid_board:
        board.solref, board.solimp = solref, solimp
    table = world.add_geom()
    table.name = "table"
    table.type = mujoco.mjtGeom.mjGEOM_BOX
    table.size = [0.7, 0.5, 0.02]
    table.pos = [-0.25, 0.0, -depth - 0.03]
    table.rgba = list(spec.table_rgba)
    table.contype, table.conaffinity = 0, 0

    socket = world.add_body()
    socket.name = "socket"
    pieces = socket_pieces(spec)
    springs = config.springs
    _add_pieces(
        socket,
        [p for p in pieces if springs is None or p.spring_axis is None],
        "socket",
        spec.socket_rgba,
        spec.friction,
        solref,
        solimp,
        spring_params(spec, config.timestep),
    )
    if springs is not None:
        springs_pieces = [p for p in pieces if p.spring_axis is not None]
        _add_contact_springs(socket, springs_pieces, spec.friction)
    for i, (other, (x, y)) in enumerate(board_sockets):
        holder = world.add_body()
        holder.name = f"board{i}"
        holder.pos = [x, y, 0.0]
        _add_pieces(
            holder,
            [p for p in socket_pieces(other) if p.spring_axis is None],
            f"board{i}",
            other.socket_rgba,
            other.friction,
            solref,
            solimp,
        )

    # UR5e from DH parameters.
    parent = world.add_body()
    parent.name = "base"
    parent.pos = ur.BASE_POS_M + np.array([0.0, 0.0, -depth - 0.01])
    base_geom = parent.add_geom()
    base_geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
    base_geom.size = [0.075, 0.04, 0]
    base_geom.pos = [0, 0, 0.04]
    base_geom.rgba = [0.3, 0.3, 0.32, 1]
    base_geom.contype = base_geom.conaffinity = 0
    for i, ((d, a, alpha), name) in enumerate(zip(ur.DH_PARAMS, ur.JOINT_NAMES, strict=True)):
        pos, quat = _dh_transform(d, a, alpha)
        body = parent.add_body()
        body.name = f"link{i + 1}"
        body.pos, body.quat = pos, quat
        body.gravcomp = 1.0  # the real controller compensates gravity too
        rot = _quat_to_mat(quat)
        anchor = -rot.T @ pos  # the parent frame's origin, seen from this link
        joint = body.add_joint()
        joint.name = name
        joint.type = mujoco.mjtJoint.mjJNT_HINGE
        joint.pos = anchor
        joint.axis = rot.T @ np.array([0.0, 0.0, 1.0])
        joint.armature = ur.JOINT_ARMATURE[i]
        joint.damping = [ur.JOINT_DAMPING_NMS[i], 0.0, 0.0]
        link = body.add_geom()
        link.type = mujoco.mjtGeom.mjGEOM_CAPSULE
        link.fromto = (
            [*anchor, 0.0, 0.0, 0.0] if np.linalg.norm(anchor) > 1e-6 else [0, 0, -0.03, 0, 0, 0.03]
        )
        link.size = [ur.LINK_RADII_M[i], 0, 0]
        link.mass = ur.LINK_MASSES_KG[i]
        link.rgba = [0.62, 0.66, 0.72, 1.0] if i % 2 else [0.2, 0.35, 0.6, 1.0]
        link.contype, link.conaffinity = _ARM, 0
        parent = body

    gripper = parent.add_body()
    gripper.name = "gripper"
    gripper.gravcomp = 1.0
    ft = gripper.add_site()
    ft.name = "ft_sensor"
    ft.group = 4
    ft_geom = gripper.add_geom()
    ft_geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
    ft_geom.size = [0.035, ur.FT_SENSOR_LENGTH_M / 2, 0]
    ft_geom.pos = [0, 0, ur.FT_SENSOR_LENGTH_M / 2]
    ft_geom.mass = 0.25
    ft_geom.rgba = [0.15, 0.15, 0.15, 1]
    ft_geom.contype = ft_geom.conaffinity = 0
    palm = gripper.add_geom()
    palm.type = mujoco.mjtGeom.mjGEOM_BOX
    palm.size = [0.035, 0.02, 0.025]
    palm.pos = [0, 0, PALM_OFFSET_M - 0.025]
    palm.mass = 0.6
    palm.rgba = [0.25, 0.25, 0.27, 1]
    palm.contype, palm.conaffinity = _ARM, 0
    body_half_x = (spec.width_mm / 2 + spec.body_margin_mm) * MM
    for side in (-1.0, 1.0):
        finger = gripper.add_geom()
        finger.type = mujoco.mjtGeom.mjGEOM_BOX
        finger.size = [0.004, 0.01, 0.018]
        finger.pos = [side * (body_half_x + 0.004), 0, PALM_OFFSET_M + 0.018]
        finger.mass = 0.05
        finger.rgba = [0.35, 0.35, 0.38, 1]
        finger.contype = finger.conaffinity = 0
    tcp_z = tcp_offset_m(spec)
    tcp = gripper.add_site()
    tcp.name = "tcp"
    tcp.group = 4  # bookkeeping sites live in a group no camera draws
    tcp.pos = [0, 0, tcp_z]
    wrist_cam = gripper.add_camera()
    wrist_cam.name = "wrist"
    # Beside the fingers, looking past the plug tip at the socket (gripper z points down).
    cam_pos = np.array([0.0, -0.055, PALM_OFFSET_M + 0.005])
    wrist_cam.pos = cam_pos
    wrist_cam.quat = _look_quat(
        cam_pos, np.array([0.0, 0.0, tcp_z + 0.025]), up=np.array([0.0, 1.0, 0.0])
    )
    wrist_cam.fovy = 55

    plug = gripper.add_body()
    plug.name = "plug"
    plug.pos = [0, 0, tcp_z]
    plug.quat = [0.0, 1.0, 0.0, 0.0]  # plug z (towards the gripper) = -flange z
    plug.gravcomp = 1.0
    if springs is None:
        _add_pieces(plug, plug_pieces(spec), "plug", spec.plug_rgba, spec.friction, solref, solimp)
    else:
        plug_bits, rail_bits = (_SOCKET, _SOCKET), (_TAB, _TAB)
        _add_pieces(
            plug,
            plug_pieces(spec),
            "plug",
            spec.plug_rgba,
            spec.friction,
            solref,
            solimp,
            bits=plug_bits,
        )
        rails = spring_rails(spec, springs.rail_thickness_mm)
        _add_pieces(
            plug, rails, "plug", spec.plug_rgba, spec.friction, solref, solimp, bits=rail_bits
        )
    for geom in plug.geoms:
        geom.mass = 0.0
    plug_mass = plug.add_geom()  # one mass carrier keeps the plug's inertia independent of pieces
    plug_mass.type = mujoco.mjtGeom.mjGEOM_SPHERE
    plug_mass.size = [0.004, 0, 0]
    plug_mass.pos = [0, 0, (spec.mating_length_mm + spec.body_length_mm / 2) * MM]
    plug_mass.mass = 0.03
    plug_mass.contype = plug_mass.conaffinity = 0
    plug_mass.group = 3
    plug_mass.rgba = [0, 0, 0, 0]  # a mass, not a part: never drawn
    face = plug.add_site()
    face.name = "plug_face"
    face.group = 4
    contact_sensor = s.add_sensor()  # net force of all contacts on the plug, reduced in C
    contact_sensor.name = "plug_contact"
    contact_sensor.type = mujoco.mjtSensor.mjSENS_CONTACT
    contact_sensor.objtype = mujoco.mjtObj.mjOBJ_BODY
    contact_sensor.objname = "plug"
    contact_sensor.intprm[:3] = [2, 3, 1]  # data="force", reduce="netforce", num=1

    side_cam = world.add_camera()
    side_cam.name = "side"
    # Low and in front, between the fingers (they close along x), so the socket stays in view.
    eye = np.array([0.02, -0.13, 0.03])
    side_cam.pos = eye
    side_cam.quat = _look_quat(eye, np.array([0.0, 0.0, 0.004]), up=np.array([0, 0, 1.0]))
    side_cam.fovy = 28

    target = world.add_body()
    target.name = "reference"
    target.mocap = True
    ref_site = target.add_site()
    ref_site.name = "reference"
    ref_site.group = 4

    gains = config.gains
    k_lin, k_rot = gains.translational_stiffness, gains.rotational_stiffness
    for axis in range(6):
        gear = np.zeros(6)
        gear[axis] = 1.0
        k = k_lin if axis < 3 else k_rot
        limit = gains.translation_limit_m if axis < 3 else gains.rotation_limit_rad
        damping = gains.translational_damping if axis < 3 else gains.rotational_damping
        label = "xyzabc"[axis]
        spring = _tcp_actuator(s, f"spring_{label}", gear, bias=(0.0, -k, 0.0))
        spring.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        spring.forcerange = [-k * limit, k * limit]
        _tcp_actuator(s, f"damper_{label}", gear, bias=(0.0, 0.0, -damping))

    for kind, name in (
        (mujoco.mjtSensor.mjSENS_FORCE, "ft_force"),
        (mujoco.mjtSensor.mjSENS_TORQUE, "ft_torque"),
    ):
        sensor = s.add_sensor()
        sensor.name = name
        sensor.type = kind
        sensor.objtype = mujoco.mjtObj.mjOBJ_SITE
        sensor.objname = "ft_sensor"
    return s


def _checker_material(s: mujoco.MjSpec, rgba_a, rgba_b) -> str:
    """A checkerboard material for the task board (a visual domain of paper 001)."""
    texture = s.add_texture()
    texture.name = "board_checker"
    texture.type = mujoco.mjtTexture.mjTEXTURE_2D
    texture.builtin = mujoco.mjtBuiltin.mjBUILTIN_CHECKER
    texture.rgb1, texture.rgb2 = list(rgba_a[:3]), list(rgba_b[:3])
    texture.width = texture.height = 64
    material = s.add_material()
    material.name = "board_checker"
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "board_checker"
    material.texrepeat = [8, 8]
    return material.name


def _tcp_actuator(s: mujoco.MjSpec, name: str, gear: np.ndarray, bias: tuple[float, float, float]):
    """An actuator on the TCP site, measured in the reference site's frame, whose force is the
    affine bias b0 + b1 * length + b2 * velocity (no control input: the reference moves)."""
    actuator = s.add_actuator()
    actuator.name = name
    actuator.trntype = mujoco.mjtTrn.mjTRN_SITE
    actuator.target = "tcp"
    actuator.refsite = "reference"
    actuator.gear = gear
    actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    actuator.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    actuator.gainprm[0] = 0.0
    actuator.biasprm[:3] = bias
    return actuator


def _look_quat(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera quaternion looking from `eye` at `target` (MuJoCo cameras look along -z)."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    cam_up = np.cross(back, right)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([right, cam_up, back], axis=1).ravel())
    return quat


def build_model(
    spec: ConnectorSpec,
    config: SceneConfig = SceneConfig(),
    board_sockets: tuple[BoardSocket, ...] = (),
) -> mujoco.MjModel:
    """The compiled cell; same-coloured boxes of a body are drawn as one mesh
    (`envs.rendering.merge_visual_boxes`: physics unchanged, fewer draw calls per frame), and
    contact springs, if any, tuned (`tune_contact_springs`)."""
    model_spec = build_spec(spec, config, board_sockets)
    merge_visual_boxes(model_spec)
    model = model_spec.compile()
    if config.springs is not None:
        tune_contact_springs(model, spec, config.springs, config.timestep)
    return model
