"""A seeded generator of plausible new connectors, for unlimited held-out variants.

`random_connector(seed)` draws a profile (rectangular, D-shaped, round or bladed) and sizes from
ranges that bracket the catalog's real connectors (envs.catalog): bodies 5-30 mm (a bladed
plug's up to ~43 mm across its blades: 3.6% of 20,000 seeds exceed 30 mm), clearances
0.05-0.3 mm per side, 0.2-0.8 mm chamfers, optional keying ribs and contact pins, 0.5-8 N of
retention and a random visual domain. The same seed always gives the same connector. Draws that
violate a `ConnectorSpec` rule are redrawn from the same generator, so this stays deterministic.
"""

from __future__ import annotations

import numpy as np

from envs.connectors import Blade, ConnectorSpec, Key
from envs.tasks import TaskSpec

PROFILE_WEIGHTS = {"rect": 0.35, "trapezoid": 0.2, "round": 0.25, "blades": 0.2}
#: Ranges [mm] of the drawn mating length and pin length.
MATING_MM = (5.0, 20.0)
PIN_LENGTH_MM = (3.0, 6.0)
#: No procedural connector's `lowest_start_mm` exceeds this: the longest stroke, the longest
#: pins and the 1 mm above the mouth (a family checks a start height against it without
#: drawing 100,000 connectors first).
LOWEST_START_MAX_MM = MATING_MM[1] + PIN_LENGTH_MM[1] + 1.0


def _rgba(rng: np.random.Generator) -> tuple[float, float, float, float]:
    return (*(float(v) for v in rng.uniform(0.05, 0.95, 3)), 1.0)


def _draw(rng: np.random.Generator, seed: int) -> ConnectorSpec:
    profile = str(rng.choice(list(PROFILE_WEIGHTS), p=list(PROFILE_WEIGHTS.values())))
    clearance = float(rng.uniform(0.05, 0.3))
    chamfer = float(rng.uniform(0.2, 0.8))
    mating = float(rng.uniform(*MATING_MM))
    kw: dict = {}
    if profile == "blades":
        n = int(rng.integers(2, 4))
        if rng.random() < 0.3:  # round pins (Europlug-like)
            thick = wide = float(rng.uniform(2.0, 5.0))
            round_pins = True
        else:  # flat blades standing across x (NEMA-like)
            thick, wide = float(rng.uniform(1.0, 4.0)), float(rng.uniform(3.0, 9.0))
            round_pins = False
        pitch = thick + float(rng.uniform(5.0, 14.0))
        blades = tuple(
            Blade((i - (n - 1) / 2) * pitch, 0.0, thick, wide, round_pins) for i in range(n)
        )
        half_x = max(abs(b.x_mm) + b.half_extent_mm()[0] for b in blades)
        half_y = max(b.half_extent_mm()[1] for b in blades)
        width, height = 2 * half_x, 2 * half_y
        kw["blades"] = blades
    elif profile == "round":
        width = height = float(rng.uniform(5.0, 25.0))
        if width > 10 and rng.random() < 0.5:
            kw["keys"] = (Key(edge=15, offset_mm=0.0, width_mm=width * 0.1, height_mm=1.0),)
            kw["key_clearance_mm"] = clearance + 0.05
    else:
        width = float(rng.uniform(6.0, 30.0))
        height = float(rng.uniform(2.0, min(width, 15.0)))
        if profile == "trapezoid":
            slant = np.tan(np.radians(rng.uniform(5.0, 20.0)))
            kw["narrow_mm"] = float(max(width - 2 * height * slant, 0.6 * width))
        if profile == "rect" and rng.random() < 0.5:
            kw["keys"] = (
                Key(
                    edge=2,
                    offset_mm=float(rng.uniform(-0.25, 0.25) * width),
                    width_mm=float(rng.uniform(1.0, 0.2 * width)),
                    height_mm=float(rng.uniform(0.5, 1.5)),
                ),
            )
            kw["key_clearance_mm"] = clearance + 0.05
    if profile in ("rect", "trapezoid") and height >= 5 and rng.random() < 0.5:
        nx = int(rng.integers(1, max(2, int(width // 5))))
        pitch = min(5.0, (min(width, kw.get("narrow_mm", width)) - 3) / max(nx, 1))
        kw.update(
            pins=tuple(((i - (nx - 1) / 2) * pitch, 0.0) for i in range(nx)),
            pin_diameter_mm=float(min(1.6, pitch / 2)),
            pin_length_mm=float(rng.uniform(*PIN_LENGTH_MM)),
            pin_clearance_mm=clearance + 0.05,
        )
    return ConnectorSpec(
        name=f"Procedural {seed}",
        source=f"envs.procedural.random_connector(seed={seed}): synthetic, not a real part",
        profile=profile,
        width_mm=width,
        height_mm=height,
        mating_length_mm=mating,
        clearance_mm=clearance,
        chamfer_mm=min(chamfer, 0.5 * mating),
        success_depth_mm=0.85 * mating,
        retention_force_n=float(rng.uniform(0.5, 8.0)),
        friction=float(rng.uniform(0.2, 0.5)),
        spring_radius_mm=1.0 if min(width, height) < 6 else 1.5,
        plug_rgba=_rgba(rng),
        socket_rgba=_rgba(rng),
        board_rgba=_rgba(rng),
        table_rgba=_rgba(rng),
        board_checker_rgba=_rgba(rng) if rng.random() < 0.3 else None,
        **kw,
    )


def random_connector(seed: int) -> ConnectorSpec:
    """A plausible synthetic connector, a pure function of `seed` (>= 0)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng([seed, 0x1A5E7])
    for _ in range(100):
        try:
            return _draw(rng, seed)
        except ValueError:
            continue
    raise RuntimeError(f"no valid connector drawn for seed {seed}; report this bug")


def procedural_task(seed: int) -> TaskSpec:
    """The task of `random_connector(seed)`; its ID (not registered) names the seed."""
    return TaskSpec(
        f"ConnectorProcedural{seed}",
        random_connector(seed),
        paper="procedural variant (envs.procedural)",
    )
