"""The convex decomposition of sockets and plugs: no cracks, no material in the cavity."""

import numpy as np
import pytest

from envs import geometry as g
from envs.connectors import DSUB_DE9, MM, MODEL_E, USB_A, ConnectorSpec, plug_pieces, socket_pieces


def _inside(piece: g.Piece, point: np.ndarray, tol: float = 0.0) -> bool:
    w, x, y, z = piece.quat
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    local = rot.T @ (point - np.array(piece.pos))
    if piece.kind == "box":
        return bool(np.all(np.abs(local) <= np.array(piece.size) + tol))
    radius, half = piece.size[:2]
    return np.hypot(local[0], local[1]) <= radius + tol and abs(local[2]) <= half + radius + tol


def _covered(pieces, point, tol=0.0) -> bool:
    return any(_inside(p, point, tol) for p in pieces if p.spring_axis is None)


@pytest.mark.parametrize("spec", [USB_A, DSUB_DE9, MODEL_E], ids=lambda s: s.name)
def test_socket_cavity_is_free_and_walls_have_no_cracks(spec: ConnectorSpec):
    pieces = socket_pieces(spec)
    cavity = spec.outline(grow_mm=spec.clearance_mm)
    rng = np.random.default_rng(0)
    lo, hi = cavity.min(axis=0), cavity.max(axis=0)
    depth = spec.mating_length_mm * MM
    free, walls = 0, 0
    for _ in range(3000):
        xy = rng.uniform(lo - 4 * MM, hi + 4 * MM)
        z = -rng.uniform(spec.chamfer_mm * MM + 1e-5, depth)
        point = np.array([*xy, z])
        in_plug_path = _point_in_polygon(spec.outline(grow_mm=-0.01), xy)
        # The wall's first millimetre is what holds the plug; the housing's outer corners are
        # not part of the fit.
        in_wall = not _point_in_polygon(
            spec.outline(grow_mm=spec.clearance_mm + 0.01), xy
        ) and _point_in_polygon(spec.outline(grow_mm=spec.clearance_mm + 1.0), xy)
        if in_plug_path and not (spec.tongue or spec.pins):
            free += 1
            assert not _covered(pieces, point), f"material inside the cavity at {point / MM} mm"
        if in_wall and not _near_groove(spec, xy):
            walls += 1
            assert _covered(pieces, point, tol=1e-9), f"crack in the wall at {point / MM} mm"
    assert walls > 100


def _near_groove(spec, xy) -> bool:
    return bool(spec.keys) and xy[1] > spec.height_mm / 2 * MM


def _point_in_polygon(poly: np.ndarray, xy: np.ndarray) -> bool:
    n = len(poly)
    for i in range(n):
        p0, p1 = poly[i], poly[(i + 1) % n]
        edge, rel = p1 - p0, xy - p0
        if edge[0] * rel[1] - edge[1] * rel[0] < 0:  # right of a CCW edge: outside
            return False
    return True


@pytest.mark.parametrize("spec", [USB_A, DSUB_DE9, MODEL_E], ids=lambda s: s.name)
def test_plug_fills_its_outline_and_stays_inside_it(spec: ConnectorSpec):
    pieces = [p for p in plug_pieces(spec) if p.pos[2] < spec.mating_length_mm * MM]
    outline = spec.outline()
    rng = np.random.default_rng(1)
    z = 0.5 * spec.mating_length_mm * MM
    for _ in range(2000):
        xy = rng.uniform(outline.min(axis=0) - 1 * MM, outline.max(axis=0) + 1 * MM)
        point = np.array([*xy, z])
        covered = _covered([p for p in pieces if p.kind == "box"], point)
        if not _point_in_polygon(spec.outline(grow_mm=0.001), xy):
            on_rib = any(abs(xy[0] + k.offset_mm * MM) <= k.width_mm / 2 * MM for k in spec.keys)
            assert not covered or on_rib, f"plug material outside its outline at {xy / MM} mm"


def test_specs_reject_a_key_tighter_than_the_body():
    with pytest.raises(ValueError, match="key clearance"):
        ConnectorSpec(**{**MODEL_E.__dict__, "key_clearance_mm": 0.05})
