"""NIST assembly task board #1: its pegs and connectors at their places on one board.

Parts (NIST ATB1, IROS 2017 competition; paper 000 uses its USB, D-sub and waterproof parts):
round pegs of 4, 8, 12, 16 mm, rectangular pegs 4 x 4, 8 x 7, 12 x 8, 16 x 10 mm, USB-A, D-sub
DE-9, RJ45, BNC and the waterproof connector (`connectors.MODEL_E`). Peg clearances follow
IndustReal's NIST-board assets in spirit (0.1 to 0.25 mm per side, growing with size). The
layout (a 50 mm grid, pegs in the top rows, connectors below) is our estimate of the board's,
not a copy of its drawing.

Every part is a task whose socket is at the world origin and whose neighbours are the other
parts' sockets (`TaskSpec.board_sockets`): static obstacles and visual context. The cell is thus
re-centred on the part being inserted; the robot base keeps its x, y pose relative to that
hole. Heights follow the active part only (found 2026-12-05, not changed in v0): the board's top
lies below its mouth by the part's cavity depth and wall (-29 mm for pegs, -14 to -16 mm for
connectors), the base 10 mm below that, and the neighbours' housings sit at the mouth's height,
so with a peg active the connector housings stand 13-15 mm proud of the board and with a
connector active the peg housings sink into it. The housings are static and no start pose
touches them; the camera images show it.

`part="sequence"` is a multi-stage task: the parts are inserted one after the other. Regrasping
is out of scope: after a successful insertion the next part appears pre-grasped, the arm back at
that part's start pose (as if a tool changer had handed it over), and the episode goes on. Parts
already inserted are not drawn in later stages. `reset(options={"tcp_offset_mm": ...})` sets the
first part's start offset; later parts draw theirs from `init_offset_mm`. `info["max_force_n"]`
is the episode's peak over all parts, and a hand-over step's `info["next_tcp_pos_m"]` is where
the next part starts in its own frame (`envs.episode.SEQUENCE_SCORER_VERSION` 2; until
2026-12-05 a record's peak was the last part's, 14.9 N where earlier parts peaked at 243 N,
and its path and jerk counted each hand-over as a ~48 mm jump between two parts' frames).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from envs.catalog import CATALOG
from envs.connectors import DSUB_DE9, MM, MODEL_E, USB_A, ConnectorSpec
from envs.insertion_env import InsertionEnv, check_env_kwargs, check_open
from envs.task_options import (
    EpisodeSeeds,
    PlainSpec,
    check_int,
    check_names,
    check_start_height_for_all,
    requested_offset_mm,
)
from envs.tasks import TaskSpec

_BOARD = {
    "board_rgba": (0.74, 0.75, 0.77, 1.0),
    "table_rgba": (0.30, 0.30, 0.33, 1.0),
    "board_checker_rgba": None,
}
_ALU = (0.80, 0.80, 0.82, 1.0)
_HOLE = (0.25, 0.25, 0.28, 1.0)


def _peg(profile: str, width: float, height: float, clearance: float) -> ConnectorSpec:
    """A board peg (round: width = height = diameter); chamfer and spring size follow its
    smaller side."""
    shape = f"round peg {width:g} mm" if profile == "round" else (
        f"rectangular peg {width:g} x {height:g} mm")
    return ConnectorSpec(
        name=f"NIST {shape}",
        source=f"NIST assembly task board #1: {shape}; clearance {clearance} mm per side and "
        "25 mm insertion: estimate (IndustReal-like)",
        profile=profile,
        width_mm=width,
        height_mm=height,
        mating_length_mm=25.0,
        clearance_mm=clearance,
        chamfer_mm=0.3 if height < 6 else 0.5,
        success_depth_mm=20.0,
        retention_force_n=0.5,
        friction=0.2,
        spring_radius_mm=1.0 if height < 10 else 1.5,
        plug_rgba=_ALU,
        socket_rgba=_HOLE,
        **_BOARD,
    )


def _round_peg(diameter: float, clearance: float) -> ConnectorSpec:
    return _peg("round", diameter, diameter, clearance)


def _rect_peg(width: float, height: float, clearance: float) -> ConnectorSpec:
    return _peg("rect", width, height, clearance)


#: Part name -> (connector, socket mouth centre (x, y) on the board [mm]).
NIST_PARTS: dict[str, tuple[ConnectorSpec, tuple[float, float]]] = {
    "RoundPeg4": (_round_peg(4.0, 0.1), (-75.0, 75.0)),
    "RoundPeg8": (_round_peg(8.0, 0.15), (-25.0, 75.0)),
    "RoundPeg12": (_round_peg(12.0, 0.2), (25.0, 75.0)),
    "RoundPeg16": (_round_peg(16.0, 0.25), (75.0, 75.0)),
    "RectPeg4x4": (_rect_peg(4.0, 4.0, 0.1), (-75.0, 25.0)),
    "RectPeg8x7": (_rect_peg(8.0, 7.0, 0.15), (-25.0, 25.0)),
    "RectPeg12x8": (_rect_peg(12.0, 8.0, 0.2), (25.0, 25.0)),
    "RectPeg16x10": (_rect_peg(16.0, 10.0, 0.25), (75.0, 25.0)),
    "USBA": (dataclasses.replace(USB_A, **_BOARD), (-75.0, -25.0)),
    "DSub": (dataclasses.replace(DSUB_DE9, **_BOARD), (-25.0, -25.0)),
    "RJ45": (dataclasses.replace(CATALOG["RJ45"].spec, **_BOARD), (25.0, -25.0)),
    "BNC": (dataclasses.replace(CATALOG["BNC"].spec, **_BOARD), (75.0, -25.0)),
    "Waterproof": (dataclasses.replace(MODEL_E, **_BOARD), (0.0, -75.0)),
}

#: The default insertion order of `part="sequence"`: pegs small to large, then connectors.
DEFAULT_SEQUENCE: tuple[str, ...] = tuple(NIST_PARTS)


def nist_task(part: str) -> TaskSpec:
    """The task of one board part, with every other part's socket around it."""
    if part not in NIST_PARTS:
        raise ValueError(f"unknown NIST board part {part!r}; parts: {list(NIST_PARTS)}")
    spec, (x0, y0) = NIST_PARTS[part]
    others = tuple(
        (other, ((x - x0) * MM, (y - y0) * MM))
        for name, (other, (x, y)) in NIST_PARTS.items()
        if name != part
    )
    return TaskSpec(
        f"NISTBoard-{part}",
        spec,
        paper="000 (Schoettler et al. 2019) and NIST assembly task board #1",
        board_sockets=others,
    )


class NISTBoardEnv(PlainSpec, gym.Env):
    """Insert one part, or a sequence of parts, of NIST assembly task board #1.

    ## Description
    A part is an `InsertionEnv` whose neighbours on the board are the other parts' sockets. With
    `part="sequence"` the parts in `sequence` are inserted in order; a success moves on to the
    next part, pre-grasped at its start pose (see the module docstring for this simplification).

    ## Action Space, Observation Space
    Those of `InsertionEnv` with the given keyword arguments, identical for every part. After a
    stage change `tcp_pose` is relative to the new part's start frame.

    ## Rewards
    The part's reward (`reward=` of `InsertionEnv`); with "sparse", 1 for each inserted part.

    ## Episode End
    Terminates when the last part is inserted, with the sparse reward (the others run on, as
    `InsertionEnv`'s do: a dense-reward part ended at its success while `USB-v0` ran to its
    time limit). Truncated when a part takes more than `steps_per_part` steps, or on a physics
    error. `info["is_success"]` is true when every part of the sequence is in;
    `info["part_success"]` when the current part is.

    ## Arguments
    | kwarg | default | meaning |
    |---|---|---|
    | part | "sequence" | a name of `NIST_PARTS` or "sequence" |
    | sequence | all parts | the parts of the sequence, in order |
    | steps_per_part | 50 | policy steps allowed per part (1/`control_hz` each: 5 s at 10 Hz) |
    | **env_kwargs | | passed to every part's `InsertionEnv` |

    ## Version History
    v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        part: str = "sequence",
        sequence: Sequence[str] = DEFAULT_SEQUENCE,
        steps_per_part: int = 50,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        # Only a name: a list (`--env part=["USBA","DSub"]`) was "unhashable type: 'list'".
        if not isinstance(part, str) or part != "sequence" and part not in NIST_PARTS:
            raise ValueError(f"part must be 'sequence' or one of {list(NIST_PARTS)}, "
                             f"got {part!r}")
        sequence = check_names("sequence", sequence, NIST_PARTS, "NIST board part names")
        if part != "sequence" and sequence != DEFAULT_SEQUENCE:
            # It was ignored: the episode inserted `part` alone.
            raise ValueError(f"sequence applies only with part='sequence', got part={part!r} "
                             f"and sequence={list(sequence)!r}")
        parts = sequence if part == "sequence" else (part,)
        check_env_kwargs(nist_task(part).env_id if part != "sequence" else
                         "InsertBench/NISTBoard-v0", env_kwargs,
                         NISTBoardEnv.__init__)
        # 2.5 used to truncate each part after 3 steps
        steps_per_part = check_int("steps_per_part", steps_per_part, 1)
        check_start_height_for_all((nist_task(p).connector for p in parts), env_kwargs)
        self.parts = parts
        self.steps_per_part = steps_per_part
        self.render_mode = render_mode
        self.env_kwargs = env_kwargs
        self._envs: dict[str, InsertionEnv] = {}
        self._closed = False
        # Each part's seed is drawn when the policy reaches it: an unseeded reset that went on
        # from there drew the next episode by how many parts the last one inserted (diff30).
        self._episode_seeds = EpisodeSeeds()
        self.active = self._member(parts[0])
        self.action_space = self.active.action_space
        self.metadata = {**type(self).metadata, "render_fps": self.active.metadata["render_fps"]}
        self.observation_space = self.active.observation_space
        self.stage = 0
        self._stage_steps = 0
        self._peak_n = 0.0  # the episode's peak contact force over all its parts [N]

    def _member(self, part: str) -> InsertionEnv:
        if part not in self._envs:
            check_open(self._closed and self.active._needs_cameras)
            self._envs[part] = InsertionEnv(
                nist_task(part), render_mode=self.render_mode, **self.env_kwargs
            )
            if self._closed:  # a state board goes on after close(), as a closed state env does
                self._envs[part].close()
        return self._envs[part]

    def check_reset_options(self, options: dict | None) -> None:
        """ValueError or TypeError for `options` that `reset` would refuse, changing nothing
        (vectors ask one world before any resets)."""
        requested_offset_mm(options, self.active.workspace_mm)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Before anything changes: a refused option changes no state.
        seed, _ = self.active.checked_reset_args(self.check_reset_options, seed, options)
        check_open(self._closed and self.active._needs_cameras)
        super().reset(seed=self._episode_seeds(seed))
        self.stage = 0
        self._peak_n = 0.0
        obs, info = self._start_stage(options)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.active.step(action)
        self._stage_steps += 1
        # The episode's peak over every part: each part's env starts its own at its reset.
        self._peak_n = max(self._peak_n, float(info["max_force_n"]))
        info["max_force_n"] = self._peak_n
        part_success = bool(info["is_success"])
        info = self._tag(info, part_success)  # describes the part this step acted on
        if part_success and self.stage + 1 < len(self.parts) and "physics_error" not in info:
            self.stage += 1
            obs, start = self._start_stage(None)
            info["next_part"] = self.parts[self.stage]
            # Where the next part starts, in its own frame: the scorer's path does not jump
            # across frames (`envs.episode`).
            info["next_tcp_pos_m"] = start["tcp_pos_m"]
            terminated = False
        else:  # the last part: its env's own end (with the sparse reward, at its success)
            terminated = terminated or (part_success and self.active.reward_type == "sparse")
        truncated = truncated or (not terminated and self._stage_steps >= self.steps_per_part)
        return obs, reward, terminated, truncated, info

    def render(self):
        return self.active.render()

    def close(self) -> None:
        # The members stay, closed (a pixel member refuses to go on): cleared, they were built
        # again by the next reset, with new models and GL contexts.
        for env in self._envs.values():
            env.close()
        self._closed = True

    def _start_stage(self, options: dict | None):
        # As the family's reset: a part's env built here may fail before its reset.
        self.active.end_episode("the last reset or part change did not finish")
        self.active = self._member(self.parts[self.stage])
        self._stage_steps = 0
        obs, info = self.active.reset(seed=int(self.np_random.integers(2**31 - 1)), options=options)
        return obs, self._tag(info, False)

    def _tag(self, info: dict[str, Any], part_success: bool) -> dict[str, Any]:
        done = self.stage + int(part_success)
        info.update(
            part=self.parts[self.stage],
            stage=self.stage,
            parts_inserted=done,
            part_success=part_success,
            is_success=done == len(self.parts),
        )
        return info
