"""The connector catalog: named plug/socket pairs of papers 001 and 004, as `ConnectorSpec` data.

Every entry cites where its dimensions come from in `spec.source`. Dimensions taken from a
standard or datasheet say so; where a paper only shows a photograph (paper 004's metal pegs and
car plugs, paper 001's Megablock) or a detail is not public, the value is our estimate and the
source says "estimate". Simplifications shared by all entries:
- contacts that in reality sit in the socket (male receptacles, e.g. XLR, Deutsch DT04) are
  modelled as pins on the plug entering holes in the socket, which is the same contact problem
  seen from the other side;
- bayonets, latches and coding ribs are `Key` ribs on the plug running in socket grooves;
- blades are straight prisms of one length (`mating_length_mm`); L- and U-shaped blades are
  modelled by their main leg.

Splits (`CatalogEntry.split`) follow the papers: paper 004's 11 training pairs ("train"), its 9
test pairs ("test") and 3 challenge tasks ("challenge"); paper 001's four held-out test
connectors are "test", the other connectors it and the brief name (RJ45, BNC, USB-C, M12) are
"train". Paper 004's text names only one of its training pairs ("E-Model-10p"; the others are
shown in its Fig. 2 only): the other ten training entries are common industrial and consumer
connectors of the same kind, chosen by us.

Each entry also carries a visual domain (plug, housing, board and table colours, and a board
pattern) so that image-based domain generalisation (paper 001's DAIB) has domains to tell apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from envs.connectors import DSUB_DE9, USB_A, Blade, ConnectorSpec, Key, Tongue

SPLITS = ("train", "test", "challenge")

RGBA = tuple[float, float, float, float]


@dataclass(frozen=True)
class CatalogEntry:
    """name: the ID part (InsertBench/Connector-<name>-v0); split: "train", "test" or
    "challenge"; paper: where the connector appears; family: a coarse group (paper 001 groups
    connectors, e.g. NEMA or Deutsch DT, which share features)."""

    name: str
    spec: ConnectorSpec
    split: str
    paper: str
    family: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"{self.name}: split must be one of {SPLITS}, got {self.split!r}")
        if not self.name.isalnum():
            raise ValueError(f"{self.name}: catalog names are letters and digits only")


# Visual domains: boards and tables of distinct colours (some with a checker pattern), picked
# per entry by index so that neighbouring entries differ.
_BOARDS: tuple[RGBA, ...] = (
    (0.32, 0.33, 0.36, 1.0),
    (0.12, 0.30, 0.18, 1.0),
    (0.55, 0.52, 0.45, 1.0),
    (0.20, 0.22, 0.40, 1.0),
    (0.45, 0.18, 0.15, 1.0),
    (0.70, 0.70, 0.72, 1.0),
    (0.08, 0.08, 0.09, 1.0),
    (0.40, 0.30, 0.15, 1.0),
)
_TABLES: tuple[RGBA, ...] = (
    (0.55, 0.45, 0.35, 1.0),
    (0.80, 0.80, 0.78, 1.0),
    (0.25, 0.25, 0.28, 1.0),
    (0.35, 0.45, 0.55, 1.0),
    (0.60, 0.55, 0.40, 1.0),
)

WHITE: RGBA = (0.92, 0.92, 0.90, 1.0)
BLACK: RGBA = (0.08, 0.08, 0.09, 1.0)
BRASS: RGBA = (0.78, 0.66, 0.30, 1.0)
STEEL: RGBA = (0.70, 0.72, 0.75, 1.0)


def _domain(index: int) -> dict:
    board = _BOARDS[index % len(_BOARDS)]
    checker = None
    if index % 3 == 2:
        checker = tuple(float(np.clip(c * 0.6 + 0.15, 0, 1)) for c in board[:3]) + (1.0,)
    return {
        "board_rgba": board,
        "table_rgba": _TABLES[(index * 3) % len(_TABLES)],
        "board_checker_rgba": checker,
    }


def _grid(nx: int, ny: int, pitch_x: float, pitch_y: float) -> tuple[tuple[float, float], ...]:
    """Contact positions [mm] on a centred nx x ny grid."""
    return tuple(
        ((i - (nx - 1) / 2) * pitch_x, (j - (ny - 1) / 2) * pitch_y)
        for j in range(ny)
        for i in range(nx)
    )


def _centred(blades: list[Blade]) -> tuple[tuple[Blade, ...], float, float]:
    """Blades shifted so their envelope is centred on the plug origin; and its size [mm]."""
    lo = np.min(
        [(b.x_mm - b.half_extent_mm()[0], b.y_mm - b.half_extent_mm()[1]) for b in blades], 0
    )
    hi = np.max(
        [(b.x_mm + b.half_extent_mm()[0], b.y_mm + b.half_extent_mm()[1]) for b in blades], 0
    )
    mid = (lo + hi) / 2
    moved = tuple(
        dataclasses.replace(b, x_mm=float(b.x_mm - mid[0]), y_mm=float(b.y_mm - mid[1]))
        for b in blades
    )
    return moved, float(hi[0] - lo[0]), float(hi[1] - lo[1])


def _blade_spec(name: str, source: str, blades: list[Blade], **kw) -> ConnectorSpec:
    moved, width, height = _centred(blades)
    return ConnectorSpec(
        name=name,
        source=source,
        profile="blades",
        width_mm=width,
        height_mm=height,
        blades=moved,
        **kw,
    )


_NEMA_SOURCE = (
    "ANSI/NEMA WD 6 configuration {cfg}: flat blades 6.35 x 1.52 mm (neutral 7.92 mm wide), "
    "12.7 mm apart{extra}; blade length 15.9 mm; slot clearance and retention are estimates"
)
_US_BLADES = [Blade(-6.35, 0.0, 1.52, 6.35), Blade(6.35, 0.0, 1.52, 7.92)]

_RAW: list[tuple[str, str, str, str, ConnectorSpec]] = [
    # ---- paper 004, training pairs (only E-Model-10p is named in its text) -----------------
    (
        "EModel10p",
        "train",
        "004 (Zhao et al.), Fig. 2 and section 5",
        "waterproof",
        ConnectorSpec(
            name="E-Model-10p",
            source="Paper 004 names 'E-Model-10p', a keyed 10-contact rectangular connector; "
            "housing 16 x 8 mm, 2 x 5 contacts of 0.8 mm at 2.5 mm pitch: estimate",
            profile="rect",
            width_mm=16.0,
            height_mm=8.0,
            mating_length_mm=8.0,
            clearance_mm=0.12,
            chamfer_mm=0.4,
            success_depth_mm=7.0,
            retention_force_n=5.0,
            friction=0.4,
            keys=(Key(edge=2, offset_mm=4.0, width_mm=2.0, height_mm=0.8),),
            key_clearance_mm=0.15,
            pins=_grid(5, 2, 2.5, 3.0),
            pin_diameter_mm=0.8,
            pin_length_mm=4.0,
            pin_clearance_mm=0.15,
            plug_rgba=BLACK,
            socket_rgba=(0.85, 0.85, 0.80, 1.0),
        ),
    ),
    (
        "USBA",
        "train",
        "000 and 004 (USB-A is the example of section 1)",
        "usb",
        dataclasses.replace(USB_A, plug_rgba=STEEL, socket_rgba=(0.15, 0.25, 0.65, 1.0)),
    ),
    (
        "DSubDE9",
        "train",
        "000 (D-sub on the NIST board)",
        "dsub",
        dataclasses.replace(DSUB_DE9, socket_rgba=(0.65, 0.65, 0.68, 1.0)),
    ),
    (
        "HDMI",
        "train",
        "004-style training pair (our choice)",
        "av",
        ConnectorSpec(
            name="HDMI Type A",
            source="HDMI 1.4 Type A: plug shell 13.9 x 4.45 mm, receptacle 14.0 x 4.55 mm; the "
            "two chamfered lower corners are modelled as a trapezoid (narrow side 11.3 mm, "
            "estimate); mating length 9.5 mm",
            profile="trapezoid",
            width_mm=13.9,
            narrow_mm=11.3,
            height_mm=4.45,
            mating_length_mm=9.5,
            clearance_mm=0.05,
            chamfer_mm=0.3,
            success_depth_mm=8.0,
            retention_force_n=3.0,
            plug_rgba=STEEL,
            socket_rgba=BLACK,
        ),
    ),
    (
        "DisplayPort",
        "train",
        "004-style training pair (our choice)",
        "av",
        ConnectorSpec(
            name="DisplayPort",
            source="VESA DisplayPort 1.2 standard plug: shell 16.1 x 4.76 mm (the single "
            "corner cut is omitted), mating length 9.0 mm; clearance 0.07 mm: estimate",
            profile="rect",
            width_mm=16.1,
            height_mm=4.76,
            mating_length_mm=9.0,
            clearance_mm=0.07,
            chamfer_mm=0.3,
            success_depth_mm=7.5,
            retention_force_n=4.0,
            plug_rgba=STEEL,
            socket_rgba=(0.1, 0.1, 0.35, 1.0),
        ),
    ),
    (
        "DCBarrel",
        "train",
        "004-style training pair (our choice)",
        "power",
        ConnectorSpec(
            name="DC barrel 5.5/2.1",
            source="EIAJ-style coaxial power plug: sleeve OD 5.5 mm, length 9.5 mm; jack bore "
            "clearance 0.1 mm: estimate (the jack's centre pin is omitted)",
            profile="round",
            width_mm=5.5,
            height_mm=5.5,
            mating_length_mm=9.5,
            clearance_mm=0.1,
            chamfer_mm=0.4,
            success_depth_mm=8.0,
            retention_force_n=3.0,
            spring_radius_mm=1.0,
            plug_rgba=STEEL,
            socket_rgba=BLACK,
        ),
    ),
    (
        "XLR3",
        "train",
        "004-style training pair (our choice)",
        "audio",
        ConnectorSpec(
            name="XLR 3-pin",
            source="IEC 61076-2-103 (XLR): 3 contacts of 1.6 mm; insert 16 mm, pin positions "
            "and key rib: estimate; modelled from the male side",
            profile="round",
            width_mm=16.0,
            height_mm=16.0,
            mating_length_mm=6.0,
            clearance_mm=0.15,
            chamfer_mm=0.5,
            success_depth_mm=5.0,
            retention_force_n=5.0,
            keys=(Key(edge=15, offset_mm=0.0, width_mm=2.0, height_mm=1.0),),
            key_clearance_mm=0.2,
            pins=((-4.0, 1.6), (4.0, 1.6), (0.0, -3.2)),
            pin_diameter_mm=1.6,
            pin_length_mm=8.0,
            pin_clearance_mm=0.2,
            plug_rgba=BLACK,
            socket_rgba=STEEL,
        ),
    ),
    (
        "IECC13",
        "train",
        "004-style training pair (our choice)",
        "power",
        ConnectorSpec(
            name="IEC 60320 C13",
            source="IEC 60320-1 sheet C13/C14: connector face 24.0 x 14.5 mm with bevelled "
            "lower corners (modelled as a trapezoid, narrow side 16 mm: estimate); the inlet's "
            "pins are omitted",
            profile="trapezoid",
            width_mm=24.0,
            narrow_mm=16.0,
            height_mm=14.5,
            mating_length_mm=12.0,
            clearance_mm=0.25,
            chamfer_mm=0.6,
            success_depth_mm=10.0,
            retention_force_n=8.0,
            plug_rgba=BLACK,
            socket_rgba=BLACK,
        ),
    ),
    (
        "MiniFitJr4",
        "train",
        "004-style training pair (our choice)",
        "wire-to-board",
        ConnectorSpec(
            name="Mini-Fit Jr 2x2",
            source="Molex Mini-Fit Jr (5557/5566), 4.20 mm pitch, 2 x 2 circuits: housing "
            "9.6 x 9.0 mm and latch rib: estimate from the 4.2 mm pitch; header pins omitted",
            profile="rect",
            width_mm=9.6,
            height_mm=9.0,
            mating_length_mm=9.0,
            clearance_mm=0.12,
            chamfer_mm=0.4,
            success_depth_mm=8.0,
            retention_force_n=6.0,
            keys=(Key(edge=2, offset_mm=0.0, width_mm=3.0, height_mm=1.2),),
            key_clearance_mm=0.15,
            plug_rgba=(0.9, 0.9, 0.85, 1.0),
            socket_rgba=(0.9, 0.9, 0.85, 1.0),
        ),
    ),
    (
        "XT60",
        "train",
        "004-style training pair (our choice)",
        "power",
        ConnectorSpec(
            name="XT60",
            source="AMASS XT60: two 3.5 mm bullet contacts 7.2 mm apart; D-shaped housing "
            "15.5 x 8.0 mm modelled as a trapezoid (narrow side 12 mm): estimate",
            profile="trapezoid",
            width_mm=15.5,
            narrow_mm=12.0,
            height_mm=8.0,
            mating_length_mm=7.0,
            clearance_mm=0.15,
            chamfer_mm=0.5,
            success_depth_mm=6.0,
            retention_force_n=6.0,
            pins=((-3.6, 0.0), (3.6, 0.0)),
            pin_diameter_mm=3.5,
            pin_length_mm=6.0,
            pin_clearance_mm=0.2,
            plug_rgba=(0.95, 0.8, 0.1, 1.0),
            socket_rgba=(0.95, 0.8, 0.1, 1.0),
        ),
    ),
    (
        "SDCard",
        "train",
        "004-style training pair (our choice)",
        "card",
        ConnectorSpec(
            name="SD card",
            source="SD Physical Layer Specification: card 24.0 x 2.1 mm; slot clearance 0.1 mm "
            "and insertion depth 10 mm to the contacts: estimate",
            profile="rect",
            width_mm=24.0,
            height_mm=2.1,
            mating_length_mm=10.0,
            clearance_mm=0.1,
            chamfer_mm=0.3,
            success_depth_mm=9.0,
            retention_force_n=1.5,
            spring_radius_mm=1.0,
            plug_rgba=(0.15, 0.3, 0.75, 1.0),
            socket_rgba=STEEL,
        ),
    ),
    # ---- paper 004, test pairs (Fig. 3) ------------------------------------------------------
    (
        "USACPlug",
        "test",
        "004 (Zhao et al.), Fig. 3: US-AC-plug",
        "nema",
        _blade_spec(
            "US AC plug (NEMA 1-15P)",
            _NEMA_SOURCE.format(cfg="1-15P (polarised, two-prong)", extra=""),
            _US_BLADES,
            mating_length_mm=15.9,
            clearance_mm=0.25,
            chamfer_mm=0.5,
            success_depth_mm=12.0,
            retention_force_n=5.0,
            plug_rgba=BRASS,
            socket_rgba=WHITE,
        ),
    ),
    (
        "NEMA1430P",
        "test",
        "004 (Zhao et al.), Fig. 3: NEMA14-30P",
        "nema",
        _blade_spec(
            "NEMA 14-30P",
            "ANSI/NEMA WD 6 configuration 14-30P: two hot blades, L-shaped neutral (modelled as "
            "its long leg), round ground pin 4.76 mm; blade 8.0 x 1.6 mm, 25.4 mm between hot "
            "blades, 19 mm long: estimate",
            [
                Blade(-12.7, 0.0, 1.6, 8.0),
                Blade(12.7, 0.0, 1.6, 8.0),
                Blade(0.0, 9.0, 1.6, 7.0),
                Blade(0.0, -9.5, 4.76, 4.76, round=True),
            ],
            mating_length_mm=19.0,
            clearance_mm=0.25,
            chamfer_mm=0.6,
            success_depth_mm=15.0,
            retention_force_n=8.0,
            plug_rgba=BRASS,
            socket_rgba=(0.25, 0.2, 0.15, 1.0),
        ),
    ),
    (
        "MetalPegRect",
        "test",
        "004 (Zhao et al.), Fig. 3: Metal-peg-rec",
        "peg",
        ConnectorSpec(
            name="Metal peg, rectangular",
            source="Paper 004 shows a machined rectangular metal peg: 20 x 10 mm, 0.1 mm "
            "clearance, 0.5 mm chamfer: estimate",
            profile="rect",
            width_mm=20.0,
            height_mm=10.0,
            mating_length_mm=20.0,
            clearance_mm=0.1,
            chamfer_mm=0.5,
            success_depth_mm=15.0,
            retention_force_n=0.5,
            friction=0.2,
            plug_rgba=STEEL,
            socket_rgba=(0.6, 0.62, 0.66, 1.0),
        ),
    ),
    (
        "MetalPegRound",
        "test",
        "004 (Zhao et al.), Fig. 3: Metal-peg-rd",
        "peg",
        ConnectorSpec(
            name="Metal peg, round",
            source="Paper 004 shows a machined round metal peg: 16 mm diameter, 0.1 mm "
            "clearance, 0.5 mm chamfer: estimate",
            profile="round",
            width_mm=16.0,
            height_mm=16.0,
            mating_length_mm=20.0,
            clearance_mm=0.1,
            chamfer_mm=0.5,
            success_depth_mm=15.0,
            retention_force_n=0.5,
            friction=0.2,
            plug_rgba=STEEL,
            socket_rgba=(0.6, 0.62, 0.66, 1.0),
        ),
    ),
    (
        "UKACPlug",
        "test",
        "004 (Zhao et al.), Fig. 3: UK-AC-plug",
        "mains",
        _blade_spec(
            "UK AC plug (BS 1363)",
            "BS 1363-1: line/neutral pins 6.35 x 4.0 mm, 17.7 mm long, 22.2 mm apart; earth "
            "pin 4.0 x 8.0 mm, 22.2 mm above them (modelled at the 17.7 mm length); shutters "
            "omitted; slot clearance and retention: estimate",
            [
                Blade(-11.1, 0.0, 6.35, 4.0),
                Blade(11.1, 0.0, 6.35, 4.0),
                Blade(0.0, 22.2, 4.0, 8.0),
            ],
            mating_length_mm=17.7,
            clearance_mm=0.25,
            chamfer_mm=0.6,
            success_depth_mm=14.0,
            retention_force_n=8.0,
            plug_rgba=BRASS,
            socket_rgba=WHITE,
        ),
    ),
    (
        "CarPlug4p",
        "test",
        "004 (Zhao et al.), Fig. 3: Car-plug-4p",
        "automotive",
        ConnectorSpec(
            name="Car plug, 4-pin",
            source="Paper 004 shows a sealed 4-way automotive connector: housing 22 x 9.5 mm, "
            "latch and polarisation ribs, 1.5 mm contacts at 3.5 mm pitch: estimate",
            profile="rect",
            width_mm=22.0,
            height_mm=9.5,
            mating_length_mm=10.0,
            clearance_mm=0.15,
            chamfer_mm=0.5,
            success_depth_mm=8.5,
            retention_force_n=8.0,
            friction=0.4,
            keys=(
                Key(edge=2, offset_mm=0.0, width_mm=4.0, height_mm=1.5),
                Key(edge=0, offset_mm=-6.0, width_mm=2.0, height_mm=1.0),
            ),
            key_clearance_mm=0.2,
            pins=_grid(4, 1, 3.5, 0.0),
            pin_diameter_mm=1.5,
            pin_length_mm=6.0,
            pin_clearance_mm=0.2,
            plug_rgba=(0.1, 0.1, 0.1, 1.0),
            socket_rgba=(0.3, 0.3, 0.32, 1.0),
        ),
    ),
    (
        "MetalPegSquare",
        "test",
        "004 (Zhao et al.), Fig. 3: Metal-peg-sq",
        "peg",
        ConnectorSpec(
            name="Metal peg, square",
            source="Paper 004 shows a machined square metal peg: 15 x 15 mm, 0.1 mm clearance, "
            "0.5 mm chamfer: estimate",
            profile="rect",
            width_mm=15.0,
            height_mm=15.0,
            mating_length_mm=20.0,
            clearance_mm=0.1,
            chamfer_mm=0.5,
            success_depth_mm=15.0,
            retention_force_n=0.5,
            friction=0.2,
            plug_rgba=STEEL,
            socket_rgba=(0.6, 0.62, 0.66, 1.0),
        ),
    ),
    (
        "CarPlug3p",
        "test",
        "004 (Zhao et al.), Fig. 3: Car-plug-3p",
        "automotive",
        ConnectorSpec(
            name="Car plug, 3-pin",
            source="Paper 004 shows a sealed 3-way automotive connector: housing 18 x 9.5 mm, "
            "latch and polarisation ribs, 1.5 mm contacts at 3.5 mm pitch: estimate",
            profile="rect",
            width_mm=18.0,
            height_mm=9.5,
            mating_length_mm=10.0,
            clearance_mm=0.15,
            chamfer_mm=0.5,
            success_depth_mm=8.5,
            retention_force_n=8.0,
            friction=0.4,
            keys=(
                Key(edge=2, offset_mm=0.0, width_mm=4.0, height_mm=1.5),
                Key(edge=0, offset_mm=5.0, width_mm=2.0, height_mm=1.0),
            ),
            key_clearance_mm=0.2,
            pins=_grid(3, 1, 3.5, 0.0),
            pin_diameter_mm=1.5,
            pin_length_mm=6.0,
            pin_clearance_mm=0.2,
            plug_rgba=(0.55, 0.1, 0.1, 1.0),
            socket_rgba=(0.1, 0.1, 0.1, 1.0),
        ),
    ),
    (
        "EUACPlug",
        "test",
        "004 (Zhao et al.), Fig. 3: EU-AC-plug",
        "mains",
        ConnectorSpec(
            name="EU AC plug (CEE 7/7)",
            source="IEC/TR 60083 CEE 7/7: pins 4.8 mm diameter, 19 mm long, 19 mm apart; round "
            "body entering the socket's recess (body 36 mm, recess clearance 0.5 mm, 15 mm "
            "deep: estimate); the side earthing clips are the retention springs",
            profile="round",
            width_mm=36.0,
            height_mm=36.0,
            mating_length_mm=15.0,
            clearance_mm=0.5,
            chamfer_mm=1.0,
            success_depth_mm=13.0,
            retention_force_n=8.0,
            pins=((-9.5, 0.0), (9.5, 0.0)),
            pin_diameter_mm=4.8,
            pin_length_mm=19.0,
            pin_clearance_mm=0.5,
            plug_rgba=BLACK,
            socket_rgba=WHITE,
        ),
    ),
    # ---- paper 004, challenge tasks (section 5) ----------------------------------------------
    (
        "RAMCard",
        "challenge",
        "004 (Zhao et al.), section 5: RAM insertion",
        "card",
        _blade_spec(
            "DDR4 DIMM",
            "JEDEC MO-309 DDR4 UDIMM: card 133.35 mm long, 1.2 mm thick at the edge, 288 "
            "contacts at 0.85 mm pitch, one key notch; notch 1.5 mm wide 4 mm off centre, "
            "slot clearance 0.1 mm and 4 mm insertion: estimate",
            [Blade(-31.3375, 0.0, 70.675, 1.2), Blade(36.0875, 0.0, 61.175, 1.2)],
            mating_length_mm=4.0,
            clearance_mm=0.1,
            chamfer_mm=0.2,
            success_depth_mm=3.5,
            retention_force_n=12.0,
            spring_radius_mm=1.0,
            plug_rgba=(0.1, 0.35, 0.15, 1.0),
            socket_rgba=BLACK,
        ),
    ),
    (
        "NetworkCard",
        "challenge",
        "004 (Zhao et al.), section 5: network card insertion",
        "card",
        _blade_spec(
            "PCIe x1 card",
            "PCI Express CEM: x1 card edge, 1.57 mm board, 18 contacts per side at 1.0 mm pitch "
            "in two segments (11 + 7) split by the key notch; segment lengths 11.65 and 8.45 "
            "mm, notch 1.9 mm, 5 mm insertion: estimate",
            [Blade(-5.175, 0.0, 11.65, 1.6), Blade(6.775, 0.0, 8.45, 1.6)],
            mating_length_mm=5.0,
            clearance_mm=0.1,
            chamfer_mm=0.2,
            success_depth_mm=4.5,
            retention_force_n=8.0,
            spring_radius_mm=1.0,
            plug_rgba=(0.1, 0.4, 0.2, 1.0),
            socket_rgba=BLACK,
        ),
    ),
    (
        "ComplexShape",
        "challenge",
        "004 (Zhao et al.), section 5: complex shape insertion",
        "peg",
        ConnectorSpec(
            name="Complex shape",
            source="Paper 004's 3D-printed complex shape: a 14 x 10 mm body with two offset "
            "2.5 mm ribs (an S outline), 0.05 mm clearance: estimate",
            profile="rect",
            width_mm=14.0,
            height_mm=10.0,
            mating_length_mm=15.0,
            clearance_mm=0.05,
            chamfer_mm=0.3,
            success_depth_mm=12.0,
            retention_force_n=0.5,
            keys=(
                Key(edge=0, offset_mm=3.0, width_mm=3.0, height_mm=2.5),
                Key(edge=2, offset_mm=3.0, width_mm=3.0, height_mm=2.5),
            ),
            key_clearance_mm=0.05,
            plug_rgba=(0.9, 0.45, 0.1, 1.0),
            socket_rgba=(0.85, 0.85, 0.85, 1.0),
        ),
    ),
    # ---- paper 001 ----------------------------------------------------------------------------
    (
        "DT12",
        "test",
        "001 (Nair et al.), Table I: Deutsch DT 12-way",
        "deutsch",
        ConnectorSpec(
            name="Deutsch DT 12-way",
            source="TE Deutsch DT06-12S / DT04-12P: 12 size-16 contacts (1.6 mm pins) in 2 "
            "rows of 6; housing 30.5 x 13 mm, 4.3 mm pitch, latch and polarisation ribs: "
            "estimate; contacts modelled as plug pins",
            profile="rect",
            width_mm=30.5,
            height_mm=13.0,
            mating_length_mm=12.0,
            clearance_mm=0.15,
            chamfer_mm=0.5,
            success_depth_mm=10.0,
            retention_force_n=10.0,
            friction=0.4,
            keys=(
                Key(edge=2, offset_mm=0.0, width_mm=6.0, height_mm=1.5),
                Key(edge=0, offset_mm=-9.0, width_mm=2.0, height_mm=1.0),
                Key(edge=0, offset_mm=9.0, width_mm=2.0, height_mm=1.0),
            ),
            key_clearance_mm=0.2,
            pins=_grid(6, 2, 4.3, 4.6),
            pin_diameter_mm=1.6,
            pin_length_mm=6.0,
            pin_clearance_mm=0.2,
            plug_rgba=(0.35, 0.35, 0.35, 1.0),
            socket_rgba=(0.35, 0.35, 0.35, 1.0),
        ),
    ),
    (
        "Megablock",
        "test",
        "001 (Nair et al.), Table I: Megablock",
        "power",
        ConnectorSpec(
            name="Megablock",
            source="Paper 001 names 'Megablock' only in its tables: modelled as a large keyed "
            "rectangular power housing, 24 x 12 mm, 2 x 4 contacts of 1.4 mm at 5 mm pitch; "
            "all dimensions estimate",
            profile="rect",
            width_mm=24.0,
            height_mm=12.0,
            mating_length_mm=10.0,
            clearance_mm=0.2,
            chamfer_mm=0.5,
            success_depth_mm=8.5,
            retention_force_n=8.0,
            keys=(Key(edge=2, offset_mm=-7.0, width_mm=3.0, height_mm=1.2),),
            key_clearance_mm=0.25,
            pins=_grid(4, 2, 5.0, 5.0),
            pin_diameter_mm=1.4,
            pin_length_mm=5.0,
            pin_clearance_mm=0.25,
            plug_rgba=(0.9, 0.9, 0.88, 1.0),
            socket_rgba=(0.2, 0.45, 0.2, 1.0),
        ),
    ),
    (
        "NEMA15",
        "test",
        "001 (Nair et al.), Table I: NEMA 15 (NEMA 5-15)",
        "nema",
        _blade_spec(
            "NEMA 5-15P",
            _NEMA_SOURCE.format(
                cfg="5-15P (grounded)",
                extra="; round ground pin 4.76 mm, its axis 11.9 mm below the blades (estimate)",
            ),
            [*_US_BLADES, Blade(0.0, -11.9, 4.76, 4.76, round=True)],
            mating_length_mm=15.9,
            clearance_mm=0.25,
            chamfer_mm=0.5,
            success_depth_mm=12.0,
            retention_force_n=6.0,
            plug_rgba=BRASS,
            socket_rgba=(0.75, 0.6, 0.45, 1.0),
        ),
    ),
    (
        "Europlug",
        "test",
        "001 (Nair et al.), Table I: Europlug",
        "mains",
        _blade_spec(
            "Europlug (CEE 7/16)",
            "IEC/TR 60083 CEE 7/16: two round pins 4.0 mm, 19 mm long, 19 mm apart (their "
            "slight convergence is omitted); socket hole clearance 0.3 mm: estimate",
            [Blade(-9.5, 0.0, 4.0, 4.0, round=True), Blade(9.5, 0.0, 4.0, 4.0, round=True)],
            mating_length_mm=19.0,
            clearance_mm=0.3,
            chamfer_mm=0.6,
            success_depth_mm=15.0,
            retention_force_n=5.0,
            plug_rgba=BRASS,
            socket_rgba=(0.95, 0.95, 0.95, 1.0),
        ),
    ),
    (
        "RJ45",
        "train",
        "001 (dataset connectors) and NIST task board #1",
        "data",
        ConnectorSpec(
            name="RJ45 (8P8C)",
            source="IEC 60603-7: 8P8C modular plug 11.68 mm wide; body height 6.6 mm, latch as "
            "a 5.2 x 1.4 mm rib, 10 mm insertion: estimate",
            profile="rect",
            width_mm=11.68,
            height_mm=6.6,
            mating_length_mm=10.0,
            clearance_mm=0.1,
            chamfer_mm=0.3,
            success_depth_mm=8.5,
            retention_force_n=5.0,
            keys=(Key(edge=2, offset_mm=0.0, width_mm=5.2, height_mm=1.4),),
            key_clearance_mm=0.15,
            plug_rgba=(0.85, 0.88, 0.9, 1.0),
            socket_rgba=(0.2, 0.2, 0.22, 1.0),
        ),
    ),
    (
        "BNC",
        "train",
        "001 (dataset connectors) and NIST task board #1",
        "rf",
        ConnectorSpec(
            name="BNC",
            source="IEC 61169-8 (BNC): 9.6 mm outer conductor, centre contact 1.4 mm, two "
            "bayonet studs (modelled as plug ribs); clearance and depth: estimate",
            profile="round",
            width_mm=9.6,
            height_mm=9.6,
            mating_length_mm=8.0,
            clearance_mm=0.1,
            chamfer_mm=0.4,
            success_depth_mm=7.0,
            retention_force_n=4.0,
            spring_radius_mm=1.0,
            keys=(
                Key(edge=15, offset_mm=0.0, width_mm=1.2, height_mm=1.0),
                Key(edge=7, offset_mm=0.0, width_mm=1.2, height_mm=1.0),
            ),
            key_clearance_mm=0.15,
            pins=((0.0, 0.0),),
            pin_diameter_mm=1.4,
            pin_length_mm=4.0,
            pin_clearance_mm=0.15,
            plug_rgba=STEEL,
            socket_rgba=BRASS,
        ),
    ),
    (
        "USBC",
        "train",
        "001 (dataset connectors); 004 section 1",
        "usb",
        ConnectorSpec(
            name="USB Type-C",
            source="USB Type-C Cable and Connector Specification R2.0: plug 8.25 x 2.4 mm, "
            "receptacle 8.34 x 2.56 mm, tongue 6.69 x 0.7 mm, mating length 6.65 mm; tongue "
            "recess and retention: estimate",
            profile="rect",
            width_mm=8.25,
            height_mm=2.4,
            mating_length_mm=6.65,
            clearance_mm=0.05,
            chamfer_mm=0.25,
            success_depth_mm=5.5,
            retention_force_n=6.0,
            spring_radius_mm=1.0,
            tongue=Tongue(
                width_mm=6.69,
                thickness_mm=0.7,
                centre_y_mm=0.0,
                top_below_mouth_mm=1.0,
                clearance_mm=0.2,
            ),
            plug_rgba=STEEL,
            socket_rgba=(0.15, 0.15, 0.17, 1.0),
        ),
    ),
    (
        "M12",
        "train",
        "001 (dataset connectors)",
        "sensor",
        ConnectorSpec(
            name="M12 A-coded 4-pin",
            source="IEC 61076-2-101 M12 A-coding: 4 contacts of 1.0 mm on a 5 mm circle and a "
            "coding key; 8 mm insert and 7 mm engagement: estimate; thread omitted",
            profile="round",
            width_mm=8.0,
            height_mm=8.0,
            mating_length_mm=7.0,
            clearance_mm=0.1,
            chamfer_mm=0.4,
            success_depth_mm=6.0,
            retention_force_n=3.0,
            spring_radius_mm=1.0,
            keys=(Key(edge=15, offset_mm=0.0, width_mm=1.1, height_mm=0.8),),
            key_clearance_mm=0.15,
            pins=tuple((2.5 * np.cos(a), 2.5 * np.sin(a)) for a in np.radians([45, 135, 225, 315])),
            pin_diameter_mm=1.0,
            pin_length_mm=4.0,
            pin_clearance_mm=0.15,
            plug_rgba=(0.1, 0.1, 0.1, 1.0),
            socket_rgba=(0.75, 0.75, 0.78, 1.0),
        ),
    ),
]


def _build() -> dict[str, CatalogEntry]:
    entries: dict[str, CatalogEntry] = {}
    for i, (name, split, paper, family, spec) in enumerate(_RAW):
        visual = _domain(i)
        entries[name] = CatalogEntry(
            name, dataclasses.replace(spec, **visual), split, paper, family
        )
    return entries


#: Every catalog connector by name (the <Name> of InsertBench/Connector-<Name>-v0).
CATALOG: dict[str, CatalogEntry] = _build()


def connector_names(split: str = "all", hold_out: str | None = None) -> list[str]:
    """Catalog names in a split ("train", "test", "challenge" or "all"), minus `hold_out`."""
    if split != "all" and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {split!r}")
    if hold_out is not None and hold_out not in CATALOG:
        raise ValueError(f"hold_out {hold_out!r} is not in the catalog; known: {sorted(CATALOG)}")
    return [n for n, e in CATALOG.items() if (split == "all" or e.split == split) and n != hold_out]
