"""Leaderboard tracks: which tasks, with which kwargs, evaluated how, under which rules.

Every track runs the current task version, ``TASK_VERSION`` (its IDs are built here from that
one constant: bumping it moves every track). ``TRACK_VERSION`` counts changes of the tracks'
definitions (version 1: the -v0 tasks; version 2: the -v1 tasks, paper 004's start
perturbation on families-test, per-connector force limits); it is shown on the site. The same
start perturbation on nist-board came later without a version bump: it changes only that
track's version key, so its earlier entries are stale by key. What makes
numbers comparable is the task version key of each task variant (`envs.version_key`: dynamics,
kwargs, episode length and the scorer), stored with every entry. An entry whose keys differ
from the track's current keys is stale: shown apart, never ranked with the rest.

Seeds: the public development seeds are ``DEV_SEED_BASE + i``, the same for every entry, so a
submitter can check their number before submitting. Hidden seeds (verification) are derived from
a secret salt and the entry's id (`hidden_seeds`) into [2^30, 2^31), above the training seeds of
`benchmark.train` (from 1e8, 1e5 per run seed) for run seeds below 9,000.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envs.catalog import CATALOG
from envs.version_key import task_version_key

#: The task version every track runs (InsertBench/<name>-v<TASK_VERSION>).
TASK_VERSION = 1
#: The version of the track definitions (see the module docstring).
TRACK_VERSION = 2
#: The NIST board has no version 1 yet (its parts document no mating forces): the nist-board
#: track stays on v0 until it has one.
NIST_BOARD_ID = "InsertBench/NISTBoard-v0"
#: The connector family zero-shot entries train on (with ``split="train"``).
FAMILY_ID = f"InsertBench/ConnectorFamily-v{TASK_VERSION}"
DEV_SEED_BASE = 7_000_000
HIDDEN_SEED_LOW = 2**30
#: Paper 004, section 5: "perturbation noise from a uniform distribution U[-1 mm, 1 mm] at the
#: beginning of each episode", which the policy does not observe. Applied as the env's start
#: offset (`init_offset_mm`: magnitude uniform in [0, 1] mm, direction uniform): the start is
#: off the socket by up to 1 mm in the TCP-relative frame the observations use.
#:
#: Observation frame: every track keeps the default ``obs_frame="start"`` (origin at the
#: episode's start pose). Paper 004 (section 5) expresses the TCP "in a relative coordinate
#: system, with its origin located at the TCP" and says the policy "does not have access to this
#: noise"; paper 001 says the connector's position relative to the socket "is not made available
#: to the agent" (it localises from images). ``obs_frame="task"`` would hand a state policy
#: exactly that position, and would also turn the start-relative scripted baselines (straight
#: down holds x, y = 0) into reach-the-socket controllers.
PAPER004_START_PERTURBATION_MM = (0.0, 1.0)


@dataclass(frozen=True)
class TrackTask:
    """One task variant of a track: a registered ID and its kwargs, under a short label."""

    label: str
    task_id: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def version_key(self) -> str:
        return task_version_key(self.task_id, self.env_kwargs)


@dataclass(frozen=True)
class Track:
    """A leaderboard track.

    Attributes:
        name: identifier used on the command line and in the ledger.
        description: one sentence for the site.
        tasks: the task variants; every entry is evaluated on all of them.
        episodes_per_task: evaluation episodes per task (dev and hidden alike).
        budget_rules: what training may use (shown on the site; checked by reviewers).
        training_task: zero-shot tracks: the budget rules as one task to train on (a connector
            family of the catalog's training split, the track's other kwargs). A matrix cell
            on it becomes one entry whose single policy runs every task of the track
            (`leaderboards.from_matrix`); its observation and action spaces are the tasks'.
    """

    name: str
    description: str
    tasks: tuple[TrackTask, ...]
    episodes_per_task: int
    budget_rules: str
    training_task: TrackTask | None = None

    def task(self, label: str) -> TrackTask:
        for t in self.tasks:
            if t.label == label:
                return t
        raise KeyError(f"track {self.name} has no task {label!r}; tasks: {self.labels()}")

    def labels(self) -> list[str]:
        return [t.label for t in self.tasks]

    def version_keys(self) -> dict[str, str]:
        """Current version key of every task variant, by label."""
        return {t.label: t.version_key() for t in self.tasks}

    def dev_seeds(self) -> list[int]:
        """The public development seeds (one list, used for every task)."""
        return [DEV_SEED_BASE + i for i in range(self.episodes_per_task)]


def hidden_seeds(salt: bytes, track: str, label: str, episodes: int,
                 entry_id: str | None = None) -> list[int]:
    """Verification seeds: HMAC-SHA256(salt, "track|entry_id|label|i") mapped into [2^30, 2^31).

    Keyed by the entry: a verified entry's episodes, seeds included, enter the public ledger
    while its salt round is still active, so seeds shared by every entry of the round would
    hand the next submitter that round's hidden seeds to tune a policy on. ``entry_id=None``:
    the round-wide seeds ("track|label|i") of entries verified before, whose hidden evaluation
    has no ``per_entry_seeds``; kept so they can still be recomputed.
    """
    key = f"{track}|{label}" if entry_id is None else f"{track}|{entry_id}|{label}"
    seeds = []
    for i in range(episodes):
        digest = hmac.new(salt, f"{key}|{i}".encode(), hashlib.sha256).digest()
        seeds.append(HIDDEN_SEED_LOW + int.from_bytes(digest[:8], "big") % HIDDEN_SEED_LOW)
    return seeds


def task_id(name: str) -> str:
    """The registered ID of task ``name`` (``USB``, ``Connector-DT12``) at ``TASK_VERSION``."""
    return f"InsertBench/{name}-v{TASK_VERSION}"


def _paper000(obs_mode: str) -> tuple[TrackTask, ...]:
    kwargs = {"reward": "sparse", "goal_noise_mm": 1.0, "obs_mode": obs_mode}
    return tuple(TrackTask(name, task_id(name), kwargs) for name in ("USB", "DSub", "ModelE"))


def _connectors(paper: str) -> list[str]:
    return [n for n, e in CATALOG.items() if e.split == "test" and e.paper.startswith(paper)]


_PAPER000_RULES = ("Any amount of interaction with the track's tasks on training seeds; "
                   "report env steps, demonstrations and intervention steps honestly.")
#: What the paper-000 protocol gives away, said on the track's page.
_PAPER000_PROTOCOL = (
    "Protocol fact: every episode starts directly above the true socket; the +-1 mm noise is on "
    "the believed goal only, which goal-seeking policies (the P-controller, residual policies "
    "on top of it) steer to. A policy that ignores the goal and pushes straight down therefore "
    "inserts every time: the Straight down baseline on this board shows it. Paper 000 perturbs "
    "the goal location only (its section 6.4); read scores against that baseline")

TRACKS: dict[str, Track] = {t.name: t for t in (
    Track("paper000", "Paper 000: USB, D-sub, Model-E; sparse reward, +-1 mm goal noise, state "
          f"observations. {_PAPER000_PROTOCOL}", _paper000("state"), 50, _PAPER000_RULES),
    Track("paper000-pixels", "Paper 000 from the two 64x64 cameras only (no robot state). "
          f"{_PAPER000_PROTOCOL}", _paper000("pixels"), 20, _PAPER000_RULES),
    Track("families-test", "Paper 004's 9 held-out plug-socket pairs, zero-shot, sparse reward. "
          "As in its section 5, every start is perturbed by up to 1 mm (offset magnitude "
          "uniform in [0, 1] mm, direction uniform), which the policy does not observe; "
          "entries whose actions go through the task's hand controller (the P-controller, "
          "residual policies on it) are given the socket and marked '(given the goal)'",
          tuple(TrackTask(n, task_id(f"Connector-{n}"),
                          {"reward": "sparse", "init_offset_mm": PAPER004_START_PERTURBATION_MM})
                for n in _connectors("004")), 20,
          f"Train only on the catalog's train split (InsertBench/ConnectorFamily-v{TASK_VERSION},"
          " split=train); no interaction with the test connectors before evaluation.",
          TrackTask("train split", FAMILY_ID, {"split": "train", "reward": "sparse",
                                               "init_offset_mm": PAPER004_START_PERTURBATION_MM})),
    Track("offsets", "Paper 001's 4 test connectors from 0-10 mm and 10-20 mm start offsets, "
          "20-step episodes. State observations in the start frame: the offset is not observed "
          "(paper 001: the connector's position relative to the socket is not made available to "
          "the agent, whose policy localises from its camera), so only the P-controller, which "
          "is given the socket, knows where to go", tuple(
              TrackTask(f"{n}@{lo}-{hi}mm", task_id(f"Connector-{n}"),
                        {"reward": "sparse", "init_offset_mm": (float(lo), float(hi)),
                         "start_height_mm": 25.0, "max_episode_steps": 20})
              for n in _connectors("001") for lo, hi in ((0, 10), (10, 20))), 20,
          "Train on anything but the 4 test connectors (paper 001's hold-out protocol).",
          TrackTask("train split", FAMILY_ID, {"split": "train", "reward": "sparse",
                                               "init_offset_mm": (0.0, 20.0),
                                               "start_height_mm": 25.0,
                                               "max_episode_steps": 20})),
    Track("nist-board", "NIST task board #1: the whole insertion sequence in one episode "
          "(InsertBench/NISTBoard-v0: the board has no version 1 yet). Every part's start is "
          "perturbed by up to 1 mm as on families-test (v0 has no sensor or robot variation, so "
          "without it every episode of a deterministic policy was the same trial)",
          (TrackTask("sequence", NIST_BOARD_ID,
                     {"reward": "sparse", "init_offset_mm": PAPER004_START_PERTURBATION_MM}),),
          10, _PAPER000_RULES),
)}


def get_track(name: str) -> Track:
    """The track called ``name``; KeyError with the known names otherwise."""
    try:
        return TRACKS[name]
    except KeyError:
        raise KeyError(f"unknown track {name!r}; tracks: {', '.join(TRACKS)}") from None
