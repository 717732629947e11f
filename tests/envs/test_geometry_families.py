"""The convex decompositions added for connector families: plates with holes, slotted face
plates, and facetted round pegs."""

from __future__ import annotations

import numpy as np

from envs import geometry as g


def _inside_box(piece: g.Piece, points: np.ndarray) -> np.ndarray:
    """Which (x, y) points lie inside a box piece turned about z only."""
    w, z = piece.quat[0], piece.quat[3]
    angle = 2 * np.arctan2(z, w)
    c, s = np.cos(angle), np.sin(angle)
    local = (points - np.array(piece.pos[:2])) @ np.array([[c, -s], [s, c]])
    return np.all(np.abs(local) <= np.array(piece.size[:2]) + 1e-12, axis=1)


def test_plate_with_holes_tiles_the_plate_exactly():
    holes = [
        (-0.01, -0.004, -0.002, 0.003),
        (0.002, 0.006, -0.005, 0.001),
        (0.0, 0.003, 0.0, 0.004),
    ]
    pieces = g.plate_with_holes((-0.02, 0.02), (-0.01, 0.01), (-0.005, 0.0), holes)
    rng = np.random.default_rng(0)
    points = rng.uniform([-0.02, -0.01], [0.02, 0.01], (4000, 2))
    covered = np.sum([_inside_box(p, points) for p in pieces], axis=0)
    in_hole = np.any([(points[:, 0] > a) & (points[:, 0] < b) & (points[:, 1] > c) &
                      (points[:, 1] < d) for a, b, c, d in holes], axis=0)  # fmt: skip
    assert np.all(covered[in_hole] == 0)
    assert np.all(covered[~in_hole] == 1)  # no gaps, no overlaps


def test_slotted_plate_has_a_bevel_per_slot_edge_and_a_proud_rim():
    slots = [(-0.005, -0.003, -0.004, 0.004), (0.003, 0.005, -0.004, 0.004)]
    pieces = g.slotted_plate((-0.01, 0.01), (-0.008, 0.008), (-0.01, 0.0), slots, 0.0005)
    bevels = [p for p in pieces if abs(p.quat[1]) > 1e-9 or abs(p.quat[2]) > 1e-9]
    assert len(bevels) == 4 * len(slots)
    tops = [p.pos[2] + p.size[2] for p in pieces if p not in bevels]
    assert np.isclose(max(tops), g.RIM_PROUD)


def test_regular_prism_is_its_polygon():
    diameter, sides = 0.012, 16
    pieces = g.regular_prism_pieces(diameter, sides, 0.0, 0.01)
    outline = g.regular_polygon(diameter, sides)
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.007, 0.007, (4000, 2))
    in_any = np.any([_inside_box(p, points) for p in pieces], axis=0)
    # Inside the polygon <=> on the inner side of every edge (CCW outline).
    edges = np.roll(outline, -1, axis=0) - outline
    cross = edges[:, 0][None] * (points[:, None, 1] - outline[None, :, 1]) - edges[:, 1][None] * (
        points[:, None, 0] - outline[None, :, 0]
    )
    in_polygon = np.all(cross >= -1e-12, axis=1)
    assert np.array_equal(in_any, in_polygon)
