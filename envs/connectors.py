"""Parametric connector specifications: a connector is data, turned into convex pieces here.

Every dimension is in millimetres and every force in newtons, as on a datasheet. `socket_pieces`
and `plug_pieces` convert a spec into `geometry.Piece`s in metres:
- socket frame: origin at the centre of the cavity mouth, z up (out of the board);
- plug frame: origin at the centre of the plug's mating face, z up (towards the gripper).
Insertion depth is how far the mating face travels below the mouth until the plug's body
bottoms out on the socket rim (the hard stop of a real connector).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs import geometry as g
from envs.version_key import ADDED_FIELD

MM = 1e-3


@dataclass(frozen=True)
class Key:
    """A keying rib on the plug and its matching groove in the socket wall.

    edge: outline edge it sits on (0 = -y side, then counter-clockwise); offset_mm: centre along
    that edge, from the edge's midpoint; width_mm along the edge; height_mm: how far it stands out.
    """

    edge: int
    offset_mm: float
    width_mm: float
    height_mm: float


@dataclass(frozen=True)
class Tongue:
    """A blade standing up inside the socket cavity that enters a slot in the plug (USB-A)."""

    width_mm: float
    thickness_mm: float
    centre_y_mm: float
    top_below_mouth_mm: float
    clearance_mm: float


@dataclass(frozen=True)
class Blade:
    """One contact blade or pin of a body-less plug (mains plugs, card edges), and its slot.

    x_mm, y_mm: centre in the plug/socket frame; size_x_mm, size_y_mm: cross-section of a
    rectangular blade. `round=True` makes a round pin of diameter size_x_mm with a rounded tip
    (size_y_mm is then ignored), entering a square slot. Every blade is `mating_length_mm` long.
    """

    x_mm: float
    y_mm: float
    size_x_mm: float
    size_y_mm: float
    round: bool = False

    def half_extent_mm(self) -> tuple[float, float]:
        """Half of the blade's axis-aligned cross-section [mm] (x, y)."""
        if self.round:
            return self.size_x_mm / 2, self.size_x_mm / 2
        return self.size_x_mm / 2, self.size_y_mm / 2


PROFILES = ("rect", "trapezoid", "round", "blades")


@dataclass(frozen=True)
class MatingForces:
    """Documented force ranges of a connector pair [N], as its standard or datasheet gives them.

    insertion_n: (min, max) force to mate (push the plug home, axial, quasi-static);
    withdrawal_n: (min, max) force to unmate (pull it out; latches released). A bound that no
    document gives is an estimate, and `source` says which bounds are documented, where, and why
    the others were chosen. `envs.mating_forces.calibrated` turns the ranges into retention
    springs whose simulated peaks fall inside them.
    """

    insertion_n: tuple[float, float]
    withdrawal_n: tuple[float, float]
    source: str

    def __post_init__(self) -> None:
        for name in ("insertion_n", "withdrawal_n"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f"{name} must be (min, max) with 0 < min < max, got {(lo, hi)}")


@dataclass(frozen=True)
class ConnectorSpec:
    """A plug/socket pair.

    profile: "rect", "trapezoid" (D-sub shell, wide side at +y, `narrow_mm` at -y), "round"
    (a peg of diameter `width_mm`, facetted as a regular `sides`-gon prism, in a cavity with the
    same outline grown by `clearance_mm`) or "blades" (no mating body: only `blades`, each in
    its own chamfered slot of a face plate, as mains plugs and card edges; `width_mm` x
    `height_mm` is then the envelope of the blades). clearance_mm: gap per side between plug
    body (or blade) and socket cavity (or slot). chamfer_mm: 45-degree lead-in at the cavity
    mouth. retention_force_n: the force the socket's contact springs (shell dimples, seal)
    resist insertion with, from interference on compliant contacts.
    success_depth_mm: depth at which the electrical contacts mate (paper 000's sparse reward).
    """

    name: str
    source: str
    profile: str
    width_mm: float
    height_mm: float
    mating_length_mm: float
    clearance_mm: float
    chamfer_mm: float
    success_depth_mm: float
    retention_force_n: float
    friction: float = 0.3
    spring_travel_mm: float = 1.0
    narrow_mm: float = 0.0
    keys: tuple[Key, ...] = ()
    key_clearance_mm: float = 0.1
    pins: tuple[tuple[float, float], ...] = ()
    pin_diameter_mm: float = 1.0
    pin_length_mm: float = 5.0
    pin_clearance_mm: float = 0.15
    tongue: Tongue | None = None
    spring_interference_mm: float = 0.2
    spring_radius_mm: float = 1.5
    body_margin_mm: float = 3.0
    body_length_mm: float = 20.0
    wall_mm: float = 3.0
    plug_rgba: tuple[float, float, float, float] = (0.75, 0.75, 0.78, 1.0)
    socket_rgba: tuple[float, float, float, float] = (0.15, 0.15, 0.17, 1.0)
    extra: dict = field(default_factory=dict)
    sides: int = 16
    blades: tuple[Blade, ...] = ()
    board_rgba: tuple[float, float, float, float] = (0.32, 0.33, 0.36, 1.0)
    table_rgba: tuple[float, float, float, float] = (0.55, 0.45, 0.35, 1.0)
    board_checker_rgba: tuple[float, float, float, float] | None = None
    mating: MatingForces | None = None
    exact_offset: bool = field(default=False, metadata=ADDED_FIELD)
    """sides: facets of a round profile. board_rgba, table_rgba, board_checker_rgba: the visual
    domain around the socket (a checker pattern on the board when the last is set). mating: the
    documented mating and unmating force ranges (task version 1 on); None in version 0, whose
    springs follow `retention_force_n` alone. exact_offset: a trapezoid's cavity is its outline
    moved out by the clearance along every edge's normal (task version 3 on); in versions 0-2
    its top and bottom edges grow by the slanted edges' sideways shift, which closes the slanted
    walls in (D-sub: 0.127 mm of its 0.15; README, "Known fidelity gaps")."""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.profile == "round" and (self.sides < 8 or self.sides % 4):
            raise ValueError(f"{self.name}: a round cavity needs sides >= 8, a multiple of 4")
        if self.profile == "round" and self.height_mm != self.width_mm:
            raise ValueError(f"{self.name}: a round plug has height_mm == width_mm (diameter)")
        if (self.profile == "blades") != bool(self.blades):
            raise ValueError(f"{self.name}: blades are given exactly when profile is 'blades'")
        if self.blades:
            _check_blades(self)
        if self.profile == "trapezoid" and any(k.edge in (0, 2) for k in self.keys):
            # Keys there move the retention tabs onto the slanted side walls, which they miss.
            raise ValueError(f"{self.name}: a trapezoid takes keys on its slanted edges only")
        if self.clearance_mm <= 0 or self.chamfer_mm < 0:
            raise ValueError(f"{self.name}: clearance_mm must be > 0 and chamfer_mm >= 0")
        if not 0 < self.success_depth_mm <= self.mating_length_mm:
            raise ValueError(f"{self.name}: success_depth_mm must be in (0, mating_length_mm]")
        # Secondary features must have more play than the body that guides them, or a plug that
        # the body legally lets sit off-centre jams on them (real connectors are designed so).
        for feature, play in (
            ("key", self.key_clearance_mm if self.keys else None),
            ("tongue", self.tongue.clearance_mm if self.tongue else None),
            ("pin", self.pin_clearance_mm if self.pins else None),
        ):
            if play is not None and play < self.clearance_mm:
                raise ValueError(
                    f"{self.name}: {feature} clearance {play} mm must be >= the body "
                    f"clearance {self.clearance_mm} mm"
                )

    def outline(self, grow_mm: float = 0.0) -> np.ndarray:
        """The plug body's cross-section, grown by `grow_mm` on every side [m] (for "blades":
        the blades' envelope)."""
        if self.profile == "round":
            return g.regular_polygon((self.width_mm + 2 * grow_mm) * MM, self.sides)
        if self.profile in ("rect", "blades"):
            return g.rectangle(
                (self.width_mm + 2 * grow_mm) * MM, (self.height_mm + 2 * grow_mm) * MM
            )
        slant = np.arctan2((self.width_mm - self.narrow_mm) / 2, self.height_mm)
        # A slanted edge moved out by grow_mm along its normal lies grow_mm / cos(slant) further
        # out sideways; the wide edge, moved up by grow_mm, meets it grow_mm tan(slant) further
        # out still, the narrow edge as much further in.
        shift = grow_mm / np.cos(slant)
        lean = grow_mm * np.tan(slant) if self.exact_offset else 0.0
        return g.trapezoid(
            (self.width_mm + 2 * (shift + lean)) * MM,
            (self.narrow_mm + 2 * (shift - lean)) * MM,
            (self.height_mm + 2 * grow_mm) * MM,
        )

    @property
    def reach_mm(self) -> float:
        """How far the plug reaches below its face [mm]: its pins (capsules down to
        `pin_length_mm` below the face), else nothing."""
        return self.pin_length_mm if self.pins else 0.0

    @property
    def cavity_depth_mm(self) -> float:
        """The cavity is deeper than the stroke so the plug seats on its body, not its face."""
        return self.mating_length_mm + 1.0 + self.reach_mm

    @property
    def lowest_start_mm(self) -> float:
        """The lowest start above the seated pose [mm]: the whole plug, pins included, 1 mm
        above the socket's mouth (pins in the mouth met its walls at a lateral start offset)."""
        return self.mating_length_mm + self.reach_mm + 1.0


def guide_window_mm(spec: ConnectorSpec) -> tuple[float, float]:
    """Bounds (certainly slides in below, certainly jams above) on the lateral offset that the
    first feature to engage still guides in [mm].

    For a body that is its clearance + chamfer, exactly. Blades engage together; a round pin's
    rounded tip adds a lead-in of up to its radius (how much of it works depends on friction
    and the arm's lateral stiffness). Pins longer than the body's stroke reach the insulator's
    unchamfered holes before the body reaches the mouth, and locate the plug first.
    """
    body = spec.clearance_mm + spec.chamfer_mm
    if spec.blades:
        tips = [b.size_x_mm / 2 if b.round else 0.0 for b in spec.blades]
        return body, body + min(tips)
    if spec.pins and spec.pin_length_mm > spec.mating_length_mm + 0.5:
        return spec.pin_clearance_mm, spec.pin_clearance_mm + spec.pin_diameter_mm / 2
    return body, body


def _check_blades(spec: ConnectorSpec) -> None:
    """Blades must lie in the envelope, and their slots (with chamfers) must not merge."""
    boxes = []
    for b in spec.blades:
        hx, hy = b.half_extent_mm()
        if (
            abs(b.x_mm) + hx > spec.width_mm / 2 + 1e-9
            or abs(b.y_mm) + hy > spec.height_mm / 2 + 1e-9
        ):
            raise ValueError(f"{spec.name}: blade at ({b.x_mm}, {b.y_mm}) leaves the envelope")
        boxes.append((b.x_mm - hx, b.x_mm + hx, b.y_mm - hy, b.y_mm + hy))
    # A slot's chamfer bevel reaches 2 chamfers out from the slot wall below the mouth.
    need = 2 * spec.clearance_mm + 4 * spec.chamfer_mm + 0.2
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            gap = max(b[0] - a[1], a[0] - b[1], b[2] - a[3], a[2] - b[3])
            if gap < need:
                raise ValueError(
                    f"{spec.name}: blades {gap:.2f} mm apart, need >= {need:.2f} mm "
                    "(2 x clearance + 4 x chamfer + 0.2) so their slots stay separate"
                )


def blade_slots(spec: ConnectorSpec, grow_mm: float) -> list[tuple[float, float, float, float]]:
    """Axis-aligned slots (x_lo, x_hi, y_lo, y_hi) [m]: each blade grown by `grow_mm`."""
    slots = []
    for b in spec.blades:
        hx, hy = b.half_extent_mm()
        slots.append(
            (
                (b.x_mm - hx - grow_mm) * MM,
                (b.x_mm + hx + grow_mm) * MM,
                (b.y_mm - hy - grow_mm) * MM,
                (b.y_mm + hy + grow_mm) * MM,
            )
        )
    return slots


def _blade_socket_pieces(spec: ConnectorSpec) -> list[g.Piece]:
    """A face plate with one chamfered slot per blade, and its floor [m]."""
    depth = spec.cavity_depth_mm * MM
    c, ch, wall = spec.clearance_mm, spec.chamfer_mm, spec.wall_mm * MM
    x_range = (-(spec.width_mm / 2 + c + ch) * MM - wall, (spec.width_mm / 2 + c + ch) * MM + wall)
    y_range = (
        -(spec.height_mm / 2 + c + ch) * MM - wall,
        (spec.height_mm / 2 + c + ch) * MM + wall,
    )
    pieces = g.slotted_plate(
        x_range, y_range, (-depth, 0.0), blade_slots(spec, c), spec.chamfer_mm * MM
    )
    pieces.append(
        g.box(
            ((x_range[0] + x_range[1]) / 2, (y_range[0] + y_range[1]) / 2, -depth - wall / 2),
            ((x_range[1] - x_range[0]) / 2, (y_range[1] - y_range[0]) / 2, wall / 2),
        )
    )
    return pieces + _springs(spec)


def socket_pieces(spec: ConnectorSpec) -> list[g.Piece]:
    """Walls, chamfers, grooves, insulator, tongue and contact springs of the socket [m]."""
    if spec.profile == "blades":
        return _blade_socket_pieces(spec)
    c = spec.clearance_mm
    outline = spec.outline(grow_mm=c)
    grooves = [
        g.Groove(
            k.edge,
            k.offset_mm * MM,
            (k.width_mm + 2 * spec.key_clearance_mm) * MM,
            (k.height_mm + spec.key_clearance_mm + c) * MM,
        )
        for k in spec.keys
    ]
    depth = spec.cavity_depth_mm * MM
    extension = 0.0 if spec.profile == "round" else None
    pieces = g.polygon_cavity(
        outline, depth, spec.chamfer_mm * MM, spec.wall_mm * MM, grooves, extension
    )
    if spec.pins:
        hole = (spec.pin_diameter_mm + 2 * spec.pin_clearance_mm) * MM
        lo, hi = outline.min(axis=0), outline.max(axis=0)
        top = -(spec.mating_length_mm + 0.5) * MM
        pieces += g.perforated_block(
            (lo[0], hi[0]),
            (lo[1], hi[1]),
            (-depth, top),
            [(x * MM, y * MM, hole, hole) for x, y in spec.pins],
        )
    if spec.tongue is not None:
        t = spec.tongue
        top = -t.top_below_mouth_mm * MM
        pieces.append(
            g.box(
                (0.0, t.centre_y_mm * MM, (top - depth) / 2),
                (t.width_mm / 2 * MM, t.thickness_mm / 2 * MM, (top + depth) / 2),
            )
        )
    pieces += _springs(spec)
    return pieces


def _springs(spec: ConnectorSpec) -> list[g.Piece]:
    """Retention springs: two horizontal capsules on opposite walls that carry no keys, standing
    into the plug's path by `spring_interference_mm`. Their round profile is the lead-in a real
    dimple or seal lip has; the radius sets how steep that ramp is (a small radius with a large
    interference is a self-locking wedge)."""
    radius = spec.spring_radius_mm * MM
    z = -min(spec.chamfer_mm + 2.0, spec.mating_length_mm / 2) * MM - radius
    if spec.profile == "blades":
        # The contact of a mains socket or card slot: a pair of leaves gripping the first blade
        # across its thin direction.
        b = spec.blades[0]
        hx, hy = b.half_extent_mm()
        across_x = b.round or hx <= hy
        half_across, half_along = (hx, hy) if across_x else (hy, hx)
        face = (half_across - spec.spring_interference_mm) * MM
        half_len = half_along / 2 * MM
        centre = np.array([b.x_mm, b.y_mm, 0.0]) * MM
        if across_x:
            quat = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0)  # capsule axis along y
            offsets = [(s * (face + radius), 0.0, z) for s in (-1.0, 1.0)]
            axes = [(s, 0.0, 0.0) for s in (-1.0, 1.0)]
        else:
            quat = (np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0)  # capsule axis along x
            offsets = [(0.0, s * (face + radius), z) for s in (-1.0, 1.0)]
            axes = [(0.0, s, 0.0) for s in (-1.0, 1.0)]
        centres = [tuple(centre + np.array(o)) for o in offsets]
    elif spec.profile != "round" and any(k.edge in (0, 2) for k in spec.keys):
        face = (spec.width_mm / 2 - spec.spring_interference_mm) * MM
        half_len = spec.height_mm / 4 * MM
        quat = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0)  # capsule axis along y
        centres = [(s * (face + radius), 0.0, z) for s in (-1.0, 1.0)]
        axes = [(s, 0.0, 0.0) for s in (-1.0, 1.0)]
    else:
        face = (spec.height_mm / 2 - spec.spring_interference_mm) * MM
        half_len = min(spec.width_mm, spec.narrow_mm or spec.width_mm) / 4 * MM
        quat = (np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0)  # capsule axis along x
        centres = [(0.0, s * (face + radius), z) for s in (-1.0, 1.0)]
        axes = [(0.0, s, 0.0) for s in (-1.0, 1.0)]
    return [
        g.Piece("capsule", (radius, half_len), c, quat, spring_axis=a, name=f"spring{i}")
        for i, (c, a) in enumerate(zip(centres, axes, strict=True))
    ]


def spring_rails(spec: ConnectorSpec, thickness_mm: float) -> list[g.Piece]:
    """The plug's rails for contact springs (`envs.scene.ContactSprings`) [m, plug frame]: per
    socket spring, a box `thickness_mm` deep whose outer face is flush with the plug's side
    under the spring, as wide as the spring's capsule is long, over the mating length. The
    spring touches only its rail, so it makes one contact with the plug however the plug's
    side is split into convex pieces; its bottom edge is where the plug's edge meets the spring.
    """
    length = spec.mating_length_mm * MM
    rails = []
    for p in _springs(spec):
        axis = np.array(p.spring_axis[:2])
        radius, half_len = p.size
        # The spring's inner surface stands `spring_interference_mm` into the plug's side.
        side = np.array(p.pos[:2]) - axis * (radius - spec.spring_interference_mm * MM)
        centre = side - axis * thickness_mm * MM / 2
        across = (thickness_mm * MM / 2, half_len)
        half = (*(across if abs(axis[0]) > 0.5 else across[::-1]), length / 2)
        rails.append(g.box((*centre, length / 2), half, name=f"rail{p.name[-1]}"))
    return rails


def plug_pieces(spec: ConnectorSpec) -> list[g.Piece]:
    """Mating body (with slot, ribs, pins) and the larger body that bottoms out [m]."""
    length = spec.mating_length_mm * MM
    outline = spec.outline()
    pieces: list[g.Piece] = []
    if spec.profile == "blades":
        pieces += _blades(spec, length)
    elif spec.profile == "round":
        pieces += g.regular_prism_pieces(spec.width_mm * MM, spec.sides, 0.0, length)
    elif spec.tongue is None:
        pieces += g.prism_pieces(outline, 0.0, length)
    else:
        pieces += _slotted_shell(spec, outline, length)
    for k in spec.keys:
        pieces.append(_rib(spec, outline, k, length))
    r = spec.pin_diameter_mm / 2 * MM
    pin_len = spec.pin_length_mm * MM
    for x, y in spec.pins:
        # A capsule spanning z in [-pin_len, r]: its round tip is the pin's lead-in.
        pieces.append(
            g.Piece("capsule", (r, (pin_len - r) / 2), (x * MM, y * MM, (r - pin_len) / 2))
        )
    m = spec.body_margin_mm * MM
    lo, hi = outline.min(axis=0) - m, outline.max(axis=0) + m
    body_len = spec.body_length_mm * MM
    pieces.append(
        g.box((*((lo + hi) / 2), length + body_len / 2), (*((hi - lo) / 2), body_len / 2))
    )
    return pieces


def _blades(spec: ConnectorSpec, length: float) -> list[g.Piece]:
    """Rectangular blades as boxes, round pins as capsules whose round tip is the lead-in."""
    pieces = []
    for b in spec.blades:
        if b.round:
            r = b.size_x_mm / 2 * MM
            pieces.append(
                g.Piece(
                    "capsule", (r, (length - r) / 2), (b.x_mm * MM, b.y_mm * MM, (length + r) / 2)
                )
            )
        else:
            pieces.append(
                g.box(
                    (b.x_mm * MM, b.y_mm * MM, length / 2),
                    (b.size_x_mm / 2 * MM, b.size_y_mm / 2 * MM, length / 2),
                )
            )
    return pieces


def _slotted_shell(spec: ConnectorSpec, outline: np.ndarray, length: float) -> list[g.Piece]:
    """A rectangular shell with a slot for the socket's tongue (USB-A plug)."""
    t = spec.tongue
    assert t is not None
    w, h = spec.width_mm / 2 * MM, spec.height_mm / 2 * MM
    slot_w = (t.width_mm / 2 + t.clearance_mm) * MM
    slot_lo = (t.centre_y_mm - t.thickness_mm / 2 - t.clearance_mm) * MM
    slot_hi = (t.centre_y_mm + t.thickness_mm / 2 + t.clearance_mm) * MM
    zc, zh = length / 2, length / 2
    return [
        g.box((0.0, (slot_hi + h) / 2, zc), (w, (h - slot_hi) / 2, zh)),
        g.box((0.0, (slot_lo - h) / 2, zc), (w, (slot_lo + h) / 2, zh)),
        g.box(
            (-(w + slot_w) / 2, (slot_lo + slot_hi) / 2, zc),
            ((w - slot_w) / 2, (slot_hi - slot_lo) / 2, zh),
        ),
        g.box(
            ((w + slot_w) / 2, (slot_lo + slot_hi) / 2, zc),
            ((w - slot_w) / 2, (slot_hi - slot_lo) / 2, zh),
        ),
    ]


def _rib(spec: ConnectorSpec, outline: np.ndarray, key: Key, length: float) -> g.Piece:
    p0, p1 = outline[key.edge], outline[(key.edge + 1) % len(outline)]
    tangent = (p1 - p0) / np.linalg.norm(p1 - p0)
    outward = np.array([tangent[1], -tangent[0]])
    centre = (p0 + p1) / 2 + tangent * key.offset_mm * MM + outward * key.height_mm / 2 * MM
    # The rib starts a chamfer-width above the face so the body is guided before the keys engage.
    z_lo = min(spec.chamfer_mm + 0.5, length / MM / 2) * MM
    return g.box(
        (*centre, (z_lo + length) / 2),
        (key.width_mm / 2 * MM, key.height_mm / 2 * MM, (length - z_lo) / 2),
        float(np.arctan2(tangent[1], tangent[0])),
    )


USB_A = ConnectorSpec(
    name="USB-A",
    source="USB 2.0 Specification, ch. 6: Type-A plug 12.0 x 4.5 mm, receptacle 12.5 x 5.12 mm",
    profile="rect",
    width_mm=12.0,
    height_mm=4.5,
    mating_length_mm=12.0,
    clearance_mm=0.25,
    chamfer_mm=0.5,
    success_depth_mm=10.0,
    retention_force_n=2.0,
    tongue=Tongue(
        width_mm=10.6, thickness_mm=1.84, centre_y_mm=0.95, top_below_mouth_mm=1.5, clearance_mm=0.3
    ),
    plug_rgba=(0.8, 0.8, 0.83, 1.0),
    socket_rgba=(0.55, 0.57, 0.6, 1.0),
)

#: DE-9 contact positions: 5 contacts on the wide side, 4 below, 2.77 mm pitch, rows 2.84 mm apart.
_DE9_PINS = tuple((i * 2.77, 1.42) for i in (-2, -1, 0, 1, 2)) + tuple(
    (i * 2.77, -1.42) for i in (-1.5, -0.5, 0.5, 1.5)
)

DSUB_DE9 = ConnectorSpec(
    name="D-sub DE-9",
    source="IEC 60807-3 / MIL-DTL-24308 shell size E: D shell 16.3 x 7.9 mm with 10-degree "
    "sides, contacts 1.0 mm at 2.77 mm pitch",
    profile="trapezoid",
    width_mm=16.3,
    narrow_mm=16.3 - 2 * 7.9 * np.tan(np.radians(10.0)),
    height_mm=7.9,
    mating_length_mm=6.0,
    clearance_mm=0.15,
    chamfer_mm=0.5,
    success_depth_mm=5.0,
    retention_force_n=4.0,
    pins=_DE9_PINS,
    pin_diameter_mm=1.0,
    pin_length_mm=5.0,
    pin_clearance_mm=0.15,
    plug_rgba=(0.7, 0.72, 0.75, 1.0),
    socket_rgba=(0.2, 0.35, 0.6, 1.0),
)

MODEL_E = ConnectorSpec(
    name="Model-E",
    source="Waterproof rectangular connector in the style of MISUMI's on the NIST task board #1 "
    "(IROS 2017 competition): keyed housing, radial seal; dimensions measured-class nominal",
    profile="rect",
    width_mm=14.0,
    height_mm=10.0,
    mating_length_mm=10.0,
    clearance_mm=0.15,
    chamfer_mm=0.4,
    success_depth_mm=8.5,
    retention_force_n=8.0,
    friction=0.4,
    keys=(
        Key(edge=2, offset_mm=-3.5, width_mm=2.0, height_mm=1.0),
        Key(edge=2, offset_mm=3.0, width_mm=3.0, height_mm=1.0),
    ),
    key_clearance_mm=0.2,
    plug_rgba=(0.12, 0.12, 0.12, 1.0),
    socket_rgba=(0.85, 0.85, 0.82, 1.0),
)
