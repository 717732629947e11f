"""Documented mating and unmating forces of every connector, and the retention springs that
reproduce them (task version 1 on).

Each `MatingForces` names its source. Only what could be checked is cited as documented; where
no public figure was found (most paper-004 parts are known from photographs only) the range is
an estimate and says why. Ranges are for a quasi-static, aligned, axial push or pull with any
latch released: a latch's holding force is not a withdrawal force a robot works against.

The retention model (`calibrated`): two spring-loaded tabs with a round profile stand
`spring_interference_mm` into the plug's path (see `connectors._springs`). A plug pushed past
them deflects them up a round ramp and then slides on them, so with tab stiffness k,
interference d, friction mu and ramp angle phi(x) at deflection x, the axial force is

    F(x) = 2 k x (tan phi + mu) / (1 - mu tan phi)       (ramp: the insertion peak)
    F    = 2 mu k d                                       (sliding: insertion plateau, withdrawal)

A slow pull meets only the sliding friction (the ramp's far side pushes the plug out), so the
plateau is set inside the withdrawal range and the ramp radius r, which sets phi, so that the
ramp peak lands inside the insertion range. The formula is a quasi-static estimate; the tests in
`tests/envs/test_mating_forces.py` measure the simulated peaks against the documented ranges.

Version 2 keeps the ranges and the plateau but makes each spring a rigid sphere whose contact
is the spring (`envs.scene.ContactSprings`): its deflection is the contact's penetration, along
the contact normal, so the ramp follows `contact_ramp_ratio` instead of `ramp_ratio`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from envs.connectors import ConnectorSpec, MatingForces

#: Smallest ramp radius [mm]: below it the ramp turns into a self-locking wedge.
MIN_SPRING_RADIUS_MM = 0.5
#: Ramp peak / sliding force aimed for when both ranges allow it (real connectors need more
#: force to mate than to unmate: the lead-in deflects the contacts).
PREFERRED_RAMP_RATIO = 1.4
#: The ramp must be passed this far [mm] before the contacts mate (the hump lies in the stroke).
RAMP_END_BEFORE_MATING_MM = 0.5

_EST = "estimate"


def _ranges(ins, wd, source):
    return MatingForces(insertion_n=ins, withdrawal_n=wd, source=source)


_USB_A = _ranges(
    (10.0, 35.0),
    (10.0, 30.0),
    "USB 2.0 Specification ch. 6 (Table 6-7, EIA-364-13): insertion 35 N max, extraction 10 N "
    "min, as recalled: the text could not be checked here, treat as documented-unverified; the "
    "10 N insertion floor and 30 N extraction ceiling are estimates (mating must overcome at "
    "least the extraction friction; a plug held by more than ~30 N is not hand-removable)",
)
_DSUB_9 = _ranges(
    (5.0, 30.0),
    (2.0, 15.0),
    "HARTING D-sub catalogue, technical characteristics: mating force 9-way < 30 N; the 5 N "
    "insertion floor and the 2-15 N withdrawal range (about 0.2-1.5 N per contact plus shell "
    "dimples) are estimates",
)
_SEALED_HOUSING = _ranges(
    (15.0, 40.0),
    (8.0, 25.0),
    "estimate: no datasheet for this part; sealed rectangular housings compress a radial seal "
    "and need 'significant downward force' (paper 000 on Model-E); 15-40 N to mate, 8-25 N to "
    "unmate with the latch released, typical of sealed wire-to-wire connectors",
)
_AC_2BLADE = _ranges(
    (15.0, 50.0),
    (10.0, 40.0),
    "estimate: outlet contacts grip each blade; outlet safety standards bound the withdrawal "
    "force from below (plug must not fall out) and above (hand-removable); 10-40 N to "
    "withdraw, 15-50 N to insert, not checked against UL 498 / IEC 60884-1 text",
)
_PEG = _ranges(
    (0.2, 3.0),
    (0.2, 3.0),
    "estimate: a machined or printed peg in a clearance-fit hole has no contact springs; only "
    "friction from slight misalignment resists it (0.2-3 N)",
)

#: Paper 000's three connectors by `ConnectorSpec.name`.
PAPER000 = {"USB-A": _USB_A, "D-sub DE-9": _DSUB_9, "Model-E": _SEALED_HOUSING}

#: Every catalog connector by catalog name (`envs.catalog.CATALOG`).
CATALOG_FORCES: dict[str, MatingForces] = {
    "EModel10p": _SEALED_HOUSING,
    "USBA": _USB_A,
    "DSubDE9": _DSUB_9,
    "HDMI": _ranges(
        (10.0, 44.0),
        (10.0, 39.0),
        "HDMI Type A receptacle datasheets commonly list insertion 44.1 N max and withdrawal "
        "9.8-39.2 N (recalled, not checked here); insertion floor 10 N: estimate",
    ),
    "DisplayPort": _ranges(
        (10.0, 40.0),
        (8.0, 30.0),
        f"{_EST}: like HDMI (similar shell and contact count), latch released",
    ),
    "DCBarrel": _ranges(
        (3.0, 20.0),
        (3.0, 20.0),
        f"{_EST}: DC jack datasheets typically give 3-20 N (0.3-2 kgf) for both directions; "
        "no specific datasheet checked",
    ),
    "XLR3": _ranges(
        (5.0, 25.0),
        (3.0, 20.0),
        f"{_EST}: three 1.6 mm sockets with spring sleeves, latch released",
    ),
    "IECC13": _ranges(
        (15.0, 50.0),
        (10.0, 40.0),
        f"{_EST}: IEC 60320-1 bounds the withdrawal force of C13 connectors from both sides; "
        "10-40 N withdrawal and 15-50 N insertion assumed, figures not checked",
    ),
    "MiniFitJr4": _ranges(
        (5.0, 30.0),
        (3.0, 20.0),
        f"{_EST}: four 4.2 mm-pitch crimp terminals (a few N each), latch released; Molex's "
        "product specification figures were not available here",
    ),
    "XT60": _ranges(
        (15.0, 40.0),
        (10.0, 30.0),
        f"{_EST}: two 3.5 mm split bullet contacts with high contact force (60 A rating)",
    ),
    "SDCard": _ranges(
        (3.0, 20.0),
        (1.5, 10.0),
        f"{_EST}: nine leaf contacts pressing on the card's pads; push-push ejector omitted",
    ),
    "USACPlug": _AC_2BLADE,
    "NEMA1430P": _ranges(
        (25.0, 60.0),
        (15.0, 50.0),
        f"{_EST}: 30 A receptacle contacts on four blades grip harder than 15 A ones",
    ),
    "MetalPegRect": _PEG,
    "MetalPegRound": _PEG,
    "UKACPlug": _ranges(
        (20.0, 60.0),
        (10.0, 50.0),
        f"{_EST}: three large pins and the earth pin opening the shutters; BS 1363 figures not "
        "checked",
    ),
    "CarPlug4p": _SEALED_HOUSING,
    "MetalPegSquare": _PEG,
    "CarPlug3p": _SEALED_HOUSING,
    "EUACPlug": _ranges(
        (10.0, 50.0),
        (5.0, 40.0),
        f"{_EST}: two 4.8 mm pins and the side earthing clips (CEE 7/7); IEC 60884-1 figures "
        "not checked",
    ),
    "RAMCard": _ranges(
        (30.0, 60.0),
        (15.0, 50.0),
        f"{_EST}: 288 contacts at roughly 0.5 N normal force and friction 0.3 give ~45 N; real "
        "DIMM sockets can need more, which this benchmark's 100 N controller limit caps",
    ),
    "NetworkCard": _ranges(
        (10.0, 40.0),
        (5.0, 30.0),
        f"{_EST}: 36 card-edge contacts (PCIe x1) at roughly 0.5 N normal force",
    ),
    "ComplexShape": _PEG,
    "DT12": _ranges(
        (20.0, 60.0),
        (10.0, 40.0),
        f"{_EST}: 12 size-16 contacts and a wedge-lock seal; TE's DT figures not checked",
    ),
    "Megablock": _SEALED_HOUSING,
    "NEMA15": _ranges(
        (20.0, 55.0),
        (10.0, 45.0),
        f"{_EST}: as the two-blade US plug plus the round ground pin's contact",
    ),
    "Europlug": _ranges(
        (5.0, 30.0),
        (3.0, 20.0),
        f"{_EST}: two 4 mm pins in socket sleeves, no earthing clips",
    ),
    "RJ45": _ranges(
        (5.0, 30.0),
        (4.0, 10.0),
        "vendor note on IEC 60512-13-1 (heathertechnologies.com, 'Keystone jack insertion "
        "force'): insertion 30 N max, withdrawal 4-10 N with the latch released; the 5 N "
        "insertion floor is an estimate",
    ),
    "BNC": _ranges(
        (5.0, 30.0),
        (3.0, 20.0),
        f"{_EST}: the push before the bayonet turn, slotted outer-contact fingers",
    ),
    "USBC": _ranges(
        (5.0, 20.0),
        (8.0, 20.0),
        "USB Type-C receptacle datasheets: insertion 5-20 N, withdrawal 6-20 N (quoted in issue "
        "17) or 8-20 N (public summary of the Type-C specification, github wiki "
        "dwilson2547/wiki_demo 'usbc'); the narrower 8-20 N is used",
    ),
    "M12": _ranges(
        (3.0, 20.0),
        (2.0, 15.0),
        f"{_EST}: the axial push before the coupling nut is threaded",
    ),
}


def ramp_ratio(radius_mm: float, interference_mm: float, friction: float) -> float:
    """Peak ramp force over sliding force for a round tab (see the module docstring).

    Infinite when the ramp is a self-locking wedge (mu tan phi >= 0.95 somewhere on it).
    """
    x = np.linspace(1e-6, interference_mm, 400)
    cos_phi = (radius_mm - interference_mm + x) / radius_mm
    tan_phi = np.sqrt(np.clip(1.0 - cos_phi**2, 0.0, None)) / cos_phi
    denominator = 1.0 - friction * tan_phi
    if np.any(denominator < 0.05):
        return float("inf")
    ramp = x * (tan_phi + friction) / denominator
    return float(ramp.max() / (friction * interference_mm))


def contact_ramp_ratio(radius_mm: float, interference_mm: float, friction: float) -> float:
    """`ramp_ratio` for contact springs (task version 2, `envs.scene.ContactSprings`): a rigid
    round spring whose penetration is its deflection.

    The plug's edge at height z above the spring's centre, which stands h = r - d from the
    plug's side, penetrates it by r - D (D = sqrt(h^2 + z^2)) along the normal at angle phi
    (sin phi = z / D), so F(z) = 2 k (r - D) (sin phi + mu cos phi); on the side F = 2 mu k d.
    Never self-locking: the normal force, not a slide joint, carries the deflection.
    """
    h = radius_mm - interference_mm
    z = np.linspace(0.0, np.sqrt(radius_mm**2 - h**2), 400)
    distance = np.hypot(h, z)
    ramp = (radius_mm - distance) * (z + friction * h) / distance
    return float(ramp.max() / (friction * interference_mm))


def max_spring_radius_mm(spec: ConnectorSpec) -> float:
    """Largest ramp radius whose ramp is passed `RAMP_END_BEFORE_MATING_MM` before mating: the
    tab centre sits min(chamfer + 2, stroke / 2) + r below the mouth (`connectors._springs`)."""
    top = min(spec.chamfer_mm + 2.0, spec.mating_length_mm / 2)
    return spec.success_depth_mm - RAMP_END_BEFORE_MATING_MM - top


def calibrated(
    spec: ConnectorSpec, forces: MatingForces, ramp: Callable[..., float] = ramp_ratio
) -> ConnectorSpec:
    """`spec` with retention springs whose sliding force lies in the withdrawal range and whose
    ramp peak lies in the insertion range (aimed at the insertion range's geometric middle).

    Sets `retention_force_n` (the sliding force, 2 mu k d) and `spring_radius_mm` (the ramp);
    `ramp` is the springs' ramp-peak ratio (`ramp_ratio`: v1's tabs; `contact_ramp_ratio`:
    v2's contact springs). Raises ValueError when the geometry cannot reach the ranges.
    """
    d, mu = spec.spring_interference_mm, spec.friction
    r_max = max_spring_radius_mm(spec)
    if r_max <= MIN_SPRING_RADIUS_MM:
        raise ValueError(f"{spec.name}: stroke too short for a retention ramp (r_max {r_max})")
    ratio_lo, ratio_hi = ramp(r_max, d, mu), ramp(MIN_SPRING_RADIUS_MM, d, mu)
    ins_lo, ins_hi = forces.insertion_n
    wd_lo, wd_hi = forces.withdrawal_n
    insertion = float(np.sqrt(ins_lo * ins_hi))
    sliding = float(np.clip(insertion / PREFERRED_RAMP_RATIO, wd_lo * 1.15, wd_hi / 1.15))
    ratio = float(np.clip(insertion / sliding, ratio_lo, min(ratio_hi, 3.0)))
    lo, hi = MIN_SPRING_RADIUS_MM, r_max  # ramp_ratio falls as the radius grows: bisect
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ramp(mid, d, mu) > ratio else (lo, mid)
    radius = (lo + hi) / 2
    predicted = sliding * ramp(radius, d, mu)
    if not ins_lo < predicted < ins_hi:
        raise ValueError(
            f"{spec.name}: cannot reach insertion {forces.insertion_n} N with withdrawal "
            f"{forces.withdrawal_n} N (best {predicted:.1f} N at radius {radius:.2f} mm)"
        )
    return dataclasses.replace(
        spec,
        retention_force_n=round(sliding, 3),
        spring_radius_mm=round(radius, 3),
        mating=forces,
    )


def measure_peaks(task, speed: float = 0.1) -> tuple[float, float]:
    """Peak axial forces [N] of a quasi-static aligned press and pull of `task`'s plug.

    The plug starts 6 mm above the mouth (its pins' tips, where it has pins), is pushed
    straight down at `speed` x the action scale (0.5 mm per 0.1 s step at the default 0.1)
    until it is past its mating depth, then pulled straight out at the same speed. Returns the
    peak press force while the face is between the mouth and 0.3 mm short of the mating depth
    (so the body bottoming out is not counted) and the peak pull force while it is still in the
    socket, both from the zeroed wrist F/T reading (noise off), as a force gauge on a
    mating-force tester reads them.
    """
    from envs.insertion_env import InsertionEnv  # the env imports this module's specs

    connector = task.connector
    start_mm = connector.lowest_start_mm + 5.0
    env = InsertionEnv(task, reward="dense", noiseless=True, start_height_mm=start_mm)
    down = np.array([0.0, 0.0, speed], np.float32)
    env.reset(seed=0)
    peak_in = peak_out = 0.0
    max_steps = int(4 * start_mm / (speed * env.action_scale_m / 1e-3))
    for _ in range(max_steps):
        obs, _, _, _, info = env.step(down)
        depth = info["insertion_depth_mm"]
        if 0.0 < depth < connector.success_depth_mm - 0.3:
            peak_in = max(peak_in, -float(obs["wrench"][2]))
        if depth >= min(connector.success_depth_mm + 0.3, connector.mating_length_mm - 0.2):
            break
    for _ in range(max_steps):
        obs, _, _, _, info = env.step(-down)
        if info["insertion_depth_mm"] <= 0.0:
            break
        peak_out = max(peak_out, float(obs["wrench"][2]))
    env.close()
    return peak_in, peak_out
