"""Convex primitives that socket and plug bodies are assembled from.

MuJoCo collides a mesh as its convex hull, so every concave part (a cavity, a perforated
insulator, a keyed wall) is decomposed here into boxes and capsules. All builders take and
return sizes in metres, in the frame of the part they belong to (socket frame: origin at the
centre of the cavity mouth, z up out of the board; plug frame: origin at the centre of the
plug's mating face, z up towards the gripper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Height of a chamfered cavity's rim above the top edge of its bevel [m]. It must exceed the
#: contact penetration of an impact (soft contacts stop the plug over ~2 physics steps: about
#: 0.1 mm at 5 cm/s and a 2 ms step). The step it leaves sits at the bevel's outer edge, where a
#: plug jams anyway, so it changes no outcome of the real geometry.
RIM_PROUD = 2.5e-4


@dataclass(frozen=True)
class Piece:
    """One convex collision primitive.

    kind: "box" (size = half extents), "capsule" (size = (radius, half length)), or
    "cylinder" (size = (radius, half length)). `spring_axis`, when set, makes the piece a
    spring-loaded tab (a retention spring of the connector) that can be pushed back along this
    unit vector (pointing out of the cavity, into the wall).
    """

    kind: str
    size: tuple[float, ...]
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    spring_axis: tuple[float, float, float] | None = None
    name: str = ""


def quat_z(angle: float) -> np.ndarray:
    """Quaternion (w, x, y, z) for a rotation of `angle` rad about z."""
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def box(center, half, angle_z: float = 0.0, **kw) -> Piece:
    q = quat_z(angle_z)
    return Piece(
        "box",
        tuple(float(h) for h in half),
        tuple(float(c) for c in center),
        tuple(float(v) for v in q),
        **kw,
    )


@dataclass(frozen=True)
class Interval:
    """A span [lo, hi] along a cavity edge, measured from the edge's first vertex [m]."""

    lo: float
    hi: float


@dataclass
class Groove:
    """A keying groove cut outward into one cavity wall (matches a rib on the plug).

    edge: index of the polygon edge; centre: distance along the edge from its midpoint [m];
    width: along the edge [m]; depth: outward into the wall [m].
    """

    edge: int
    centre: float
    width: float
    depth: float


def _split(length: float, cuts: list[Interval]) -> list[Interval]:
    """The parts of [0, length] not covered by `cuts`."""
    spans, start = [], 0.0
    for cut in sorted(cuts, key=lambda c: c.lo):
        if cut.lo > start:
            spans.append(Interval(start, cut.lo))
        start = max(start, cut.hi)
    if start < length:
        spans.append(Interval(start, length))
    return spans


def polygon_cavity(
    vertices: np.ndarray,
    depth: float,
    chamfer: float,
    wall: float,
    grooves: list[Groove] | None = None,
    corner_extension: float | None = None,
) -> list[Piece]:
    """Walls, chamfer bevels and floor of a prismatic cavity with a convex polygon outline.

    vertices: (N, 2) counter-clockwise outline of the opening [m]. Each edge gets a wall box
    below the bevel, a rim box beside it, and a box turned 45 degrees about the edge whose face is
    the 45-degree lead-in chamfer of width `chamfer`. The floor closes the cavity at -depth.
    corner_extension: how far walls reach past a free corner [m] (default `wall`); many-sided
    outlines use 0 so that a wall does not run across the groove of a short neighbouring edge
    (the wedge left behind the corner is outside the cavity and harmless).
    """
    extension = wall if corner_extension is None else corner_extension
    pieces: list[Piece] = []
    grooves = list(grooves or [])
    n = len(vertices)
    for i in range(n):
        p0, p1 = vertices[i], vertices[(i + 1) % n]
        edge = p1 - p0
        length = float(np.linalg.norm(edge))
        tangent = edge / length
        outward = np.array([tangent[1], -tangent[0]])  # right of a CCW edge points out
        angle = float(np.arctan2(tangent[1], tangent[0]))
        cuts, pockets = [], []
        for g in grooves:
            if g.edge == i:
                mid = length / 2 + g.centre
                cuts.append(Interval(mid - g.width / 2, mid + g.width / 2))
                pockets.append((mid, g))
        c = chamfer
        wall_h = depth - c
        for span in _split(length, cuts):
            # Walls of convex cavities are lengthened by `wall` at free corners so that
            # neighbouring walls overlap instead of leaving a crack.
            lo = span.lo - (extension if span.lo == 0.0 else 0.0)
            hi = span.hi + (extension if span.hi == length else 0.0)
            mid_t = (lo + hi) / 2
            half_len = (hi - lo) / 2
            base = p0 + tangent * mid_t
            centre = base + outward * (wall / 2)
            pieces.append(box((*centre, -c - wall_h / 2), (half_len, wall / 2, wall_h / 2), angle))
            if c > 0:
                # The rim stands RIM_PROUD above the bevel's top edge: were they coplanar, a plug
                # landing on the rim right beside the bevel would also reach the bar's edge, and
                # box-box collision may resolve that along the 45-degree face, shoving the plug
                # into the cavity although it should jam.
                rim = base + outward * (c + (wall - c) / 2)
                pieces.append(
                    box(
                        (*rim, (RIM_PROUD - c) / 2),
                        (half_len, (wall - c) / 2, (c + RIM_PROUD) / 2),
                        angle,
                    )
                )
                # The bevel: a square bar of side c*sqrt(2) centred on (edge + c, -c), turned 45
                # degrees about the edge; its inner upper face runs from the wall top to the rim.
                bar_len = (span.hi - span.lo) / 2
                bar_c = p0 + tangent * ((span.lo + span.hi) / 2) + outward * c
                qz = quat_z(angle)
                qx = np.array([np.cos(np.pi / 8), np.sin(np.pi / 8), 0.0, 0.0])
                q = quat_mul(qz, qx)
                half = c / np.sqrt(2)
                pieces.append(
                    Piece("box", (bar_len, half, half), (*bar_c, -c), tuple(float(v) for v in q))
                )
        for mid, g in pockets:
            back = p0 + tangent * mid + outward * (g.depth + wall / 2)
            pieces.append(
                box((*back, -depth / 2), (g.width / 2 + wall / 2, wall / 2, depth / 2), angle)
            )
    lo, hi = vertices.min(axis=0) - wall, vertices.max(axis=0) + wall
    floor_c = (lo + hi) / 2
    pieces.append(box((*floor_c, -depth - wall / 2), (*((hi - lo) / 2), wall / 2)))
    return pieces


def perforated_block(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    z_range: tuple[float, float],
    holes: list[tuple[float, float, float, float]],
) -> list[Piece]:
    """A block with through-holes, as boxes: holes (cx, cy, w, h) must lie in rows of equal cy/h.

    Used for connector insulators into which pins must fit.
    """
    rows: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for cx, cy, w, h in holes:
        rows.setdefault((round(cy, 9), round(h, 9)), []).append((cx, w))
    z_c, z_h = (z_range[0] + z_range[1]) / 2, (z_range[1] - z_range[0]) / 2
    pieces: list[Piece] = []
    y = y_range[0]
    bands = sorted(rows.items(), key=lambda kv: kv[0][0])
    for (cy, h), row in bands + [((y_range[1] + 0.0, 0.0), [])]:
        top = cy - h / 2 if row else y_range[1]
        if top > y:
            pieces.append(
                box(
                    ((x_range[0] + x_range[1]) / 2, (y + top) / 2, z_c),
                    ((x_range[1] - x_range[0]) / 2, (top - y) / 2, z_h),
                )
            )
        if not row:
            break
        cuts = [Interval(cx - w / 2 - x_range[0], cx + w / 2 - x_range[0]) for cx, w in row]
        for span in _split(x_range[1] - x_range[0], cuts):
            pieces.append(
                box(
                    (x_range[0] + (span.lo + span.hi) / 2, cy, z_c),
                    ((span.hi - span.lo) / 2, h / 2, z_h),
                )
            )
        y = cy + h / 2
    return pieces


def rectangle(width: float, height: float) -> np.ndarray:
    """CCW outline of a width x height rectangle centred at the origin [m]."""
    w, h = width / 2, height / 2
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]])


def trapezoid(wide: float, narrow: float, height: float) -> np.ndarray:
    """CCW outline of a D-sub style trapezoid: the wide side at +y [m]."""
    return np.array(
        [
            [-narrow / 2, -height / 2],
            [narrow / 2, -height / 2],
            [wide / 2, height / 2],
            [-wide / 2, height / 2],
        ]
    )


def regular_polygon(diameter: float, sides: int) -> np.ndarray:
    """CCW outline of a regular polygon whose inscribed circle has `diameter` [m]."""
    r = diameter / 2 / np.cos(np.pi / sides)
    angles = np.pi / sides + 2 * np.pi * np.arange(sides) / sides
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


def prism_pieces(outline: np.ndarray, z_lo: float, z_hi: float) -> list[Piece]:
    """A solid convex prism from boxes: a core box plus one box inside each slanted edge.

    Supports outlines whose non-slanted edges are horizontal (rectangles, D-sub trapezoids).
    Edge boxes have their outer face on the edge and are shortened so that no corner pokes out
    of the outline; the slivers this leaves at the acute corners act as small corner radii.
    """
    z_c, z_h = (z_lo + z_hi) / 2, (z_hi - z_lo) / 2
    xs, ys = outline[:, 0], outline[:, 1]
    n = len(outline)
    edges = [(outline[i], outline[(i + 1) % n]) for i in range(n)]
    slanted = [
        (p0, p1)
        for p0, p1 in edges
        if not np.isclose(p0[0], p1[0]) and not np.isclose(p0[1], p1[1])
    ]
    half_w = min(abs(x) for x in xs) if slanted else (xs.max() - xs.min()) / 2
    pieces = [
        box(
            ((0.0 if slanted else (xs.min() + xs.max()) / 2), (ys.min() + ys.max()) / 2, z_c),
            (half_w, (ys.max() - ys.min()) / 2, z_h),
        )
    ]
    for p0, p1 in slanted:
        length = float(np.linalg.norm(p1 - p0))
        tangent = (p1 - p0) / length
        inward = np.array([-tangent[1], tangent[0]])
        thick = max(abs(p0[0]), abs(p1[0])) - half_w + 1e-4
        shorten = thick * abs(inward[1]) / abs(tangent[1])
        centre = (p0 + p1) / 2 + inward * thick / 2
        pieces.append(
            box(
                (*centre, z_c),
                (length / 2 - shorten, thick / 2, z_h),
                float(np.arctan2(tangent[1], tangent[0])),
            )
        )
    return pieces


def plate_with_holes(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    z_range: tuple[float, float],
    holes: list[tuple[float, float, float, float]],
) -> list[Piece]:
    """A block with axis-aligned rectangular through-holes (x_lo, x_hi, y_lo, y_hi), as boxes.

    Grid decomposition: the hole edges cut the plate into cells; free cells are merged into
    runs along x, and runs with equal x spans into rectangles along y. Holes may overlap and be
    anywhere in the plate, unlike `perforated_block`.
    """
    xs = sorted({x_range[0], x_range[1], *(v for h in holes for v in h[:2])})
    ys = sorted({y_range[0], y_range[1], *(v for h in holes for v in h[2:])})
    xs = [x for x in xs if x_range[0] <= x <= x_range[1]]
    ys = [y for y in ys if y_range[0] <= y <= y_range[1]]

    def free(x: float, y: float) -> bool:
        return not any(h[0] < x < h[1] and h[2] < y < h[3] for h in holes)

    rows: list[tuple[float, float, list[tuple[float, float]]]] = []
    for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
        runs: list[tuple[float, float]] = []
        for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
            if free((x0 + x1) / 2, (y0 + y1) / 2):
                if runs and np.isclose(runs[-1][1], x0):
                    runs[-1] = (runs[-1][0], x1)
                else:
                    runs.append((x0, x1))
        if rows and rows[-1][2] == runs:
            rows[-1] = (rows[-1][0], y1, runs)
        else:
            rows.append((y0, y1, runs))
    z_c, z_h = (z_range[0] + z_range[1]) / 2, (z_range[1] - z_range[0]) / 2
    return [
        box(((x0 + x1) / 2, (y0 + y1) / 2, z_c), ((x1 - x0) / 2, (y1 - y0) / 2, z_h))
        for y0, y1, runs in rows
        for x0, x1 in runs
    ]


def slotted_plate(
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    z_range: tuple[float, float],
    slots: list[tuple[float, float, float, float]],
    chamfer: float,
) -> list[Piece]:
    """A socket face plate (top at z_range[1]) with rectangular slots (x_lo, x_hi, y_lo, y_hi),
    each with a 45-degree lead-in of width `chamfer` at its mouth, like `polygon_cavity` [m].

    Below the bevel the slots have their nominal size; above it they are grown by the chamfer,
    and a square bar turned 45 degrees about each slot edge forms the bevel face.
    """
    z_lo, z_top = z_range
    if chamfer <= 0:
        return plate_with_holes(x_range, y_range, z_range, slots)
    grown = [(a - chamfer, b + chamfer, c - chamfer, d + chamfer) for a, b, c, d in slots]
    pieces = plate_with_holes(x_range, y_range, (z_lo, z_top - chamfer), slots)
    # The rim stands RIM_PROUD above the bevels, as in `polygon_cavity` (and for its reason).
    pieces += plate_with_holes(x_range, y_range, (z_top - chamfer, z_top + RIM_PROUD), grown)
    qx = np.array([np.cos(np.pi / 8), np.sin(np.pi / 8), 0.0, 0.0])
    half = chamfer / np.sqrt(2)
    for x0, x1, y0, y1 in slots:
        outline = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        for i in range(4):
            p0, p1 = outline[i], outline[(i + 1) % 4]
            tangent = (p1 - p0) / np.linalg.norm(p1 - p0)
            outward = np.array([tangent[1], -tangent[0]])
            centre = (p0 + p1) / 2 + outward * chamfer
            q = quat_mul(quat_z(float(np.arctan2(tangent[1], tangent[0]))), qx)
            pieces.append(
                Piece(
                    "box",
                    (float(np.linalg.norm(p1 - p0)) / 2, half, half),
                    (float(centre[0]), float(centre[1]), z_top - chamfer),
                    tuple(float(v) for v in q),
                )
            )
    return pieces


def regular_prism_pieces(diameter: float, sides: int, z_lo: float, z_hi: float) -> list[Piece]:
    """A solid regular prism (a round peg's facetted body) as `sides / 2` boxes [m].

    The outline is `regular_polygon(diameter, sides)`; each box spans one pair of opposite
    edges (its faces on them), and their union is the polygon. Boxes, not a cylinder, because
    MuJoCo's generic convex collider gives a cylinder's flat face normal at its rim, so a round
    rim would rest on a spring tab instead of pushing it aside.
    """
    if sides % 2:
        raise ValueError(f"sides must be even, got {sides}")
    r = diameter / 2
    half_edge = r * np.tan(np.pi / sides)
    z_c, z_h = (z_lo + z_hi) / 2, (z_hi - z_lo) / 2
    return [
        box((0.0, 0.0, z_c), (half_edge, r, z_h), 2 * np.pi * k / sides + np.pi / 2)
        for k in range(sides // 2)
    ]
