"""A connector family as one environment: a connector is drawn per episode (papers 001 and 004).

`ConnectorFamilyEnv` keeps one `InsertionEnv` per connector, built on first use and cached, and
delegates every call to the episode's connector. All members are built with the same keyword
arguments, so their observation and action spaces are identical; the family checks this.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from envs.catalog import CATALOG, connector_names
from envs.insertion_env import InsertionEnv, check_env_kwargs, check_open
from envs.procedural import LOWEST_START_MAX_MM, procedural_task
from envs.task_options import (
    PlainSpec,
    check_int,
    check_names,
    check_start_height_for_all,
    requested_offset_mm,
    reset_options,
)
from envs.tasks import DYNAMICS, TASKS, TaskSpec

FAMILY_SPLITS = ("train", "test", "challenge", "all", "procedural")
#: Most connectors of a procedural family: their names are drawn up front (3,000,000 took 13 s).
PROCEDURAL_COUNT_MAX = 100_000
#: Members a family keeps built (a catalog family has at most 31: all stay). Past it the least
#: recently used is closed and dropped, and built again if drawn again: a procedural family kept
#: every member it drew (~10 MB and a GL context each with cameras: 3.3 GB after 300 resets).
MEMBERS_KEPT = 64
#: The procedural split's defaults: connectors 0 .. 99 of the generator.
PROCEDURAL_COUNT, PROCEDURAL_SEED = 100, 0


def connector_task(name: str, version: int = 0) -> TaskSpec:
    """The task of catalog connector `name` (InsertBench/Connector-<name>-v<version>)."""
    return TASKS[f"InsertBench/Connector-{name}-v{version}"]


class ConnectorFamilyEnv(PlainSpec, gym.Env):
    """Insert a connector drawn per episode from a split of the catalog.

    ## Description
    Each `reset` draws a connector uniformly from the family (or takes
    `options={"connector": name}`) and resets that connector's `InsertionEnv` with a seed drawn
    from the family's generator, so a seeded family is reproducible episode by episode.

    ## Action Space, Observation Space, Rewards, Starting State, Episode End
    Those of `InsertionEnv` with the given keyword arguments (identical for every member).
    `info["task_id"]` is the member's ID (InsertBench/Connector-<Name>-vN at the family's version;
    InsertBench/ConnectorProcedural<N>-v0 on the procedural split) and
    `info["connector"]` its catalog name, so a learner can tell domains apart (paper 001's DAIB
    domain labels, paper 004's task identity).

    ## Arguments
    | kwarg | default | meaning |
    |---|---|---|
    | split | "train" | "train", "test", "challenge", "all" (catalog) or "procedural" |
    | hold_out | None | a connector of the split left out (paper 001's hold-one-out) |
    | connectors | None | explicit catalog names, instead of split and hold_out |
    | procedural_count | 100 | procedural split: members seed .. seed + count - 1 (<= 100,000) |
    | procedural_seed | 0 | procedural split: the first member (an offset: 0 and 1 share 99) |
    | version | 0 | members' task version (the registered ID's -vN; "procedural" is v0 only) |
    | **env_kwargs | | passed to every member's `InsertionEnv` |

    ## Version History
    v0: initial release.
    v1: members are the catalog's -v1 tasks (datasheet mating forces, real-world variation; see
    `InsertionEnv`).
    v2: members are the catalog's -v2 tasks (v1 with contact springs for retention, a steady
    sliding plateau; `envs.tasks.DYNAMICS_V2`).
    v3: members are the catalog's -v3 tasks (v2 with the fidelity gaps of v0-v2 closed;
    `envs.tasks.DYNAMICS_V3`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        split: str = "train",
        hold_out: str | None = None,
        connectors: Sequence[str] | None = None,
        procedural_count: int = PROCEDURAL_COUNT,
        procedural_seed: int = PROCEDURAL_SEED,
        version: int = 0,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if split not in FAMILY_SPLITS:
            raise ValueError(f"split must be one of {FAMILY_SPLITS}, got {split!r}")
        # 1.0 and True equal 1 but named no task: 'InsertBench/Connector-X-v1.0' was a KeyError.
        version = check_int("version", version, 0, max(DYNAMICS))
        if version >= 1 and split == "procedural" and connectors is None:
            raise ValueError(
                "procedural connectors have no documented mating forces and exist in version 0 "
                "only: use InsertBench/ConnectorFamily-v0 for split='procedural'"
            )
        if (split != "procedural" or connectors is not None) and (
            procedural_count != PROCEDURAL_COUNT or procedural_seed != PROCEDURAL_SEED
        ):  # were ignored without a word: split='train' drew the train split
            raise ValueError(
                f"procedural_count and procedural_seed apply only with split='procedural' and no "
                f"connectors, got procedural_count={procedural_count!r}, "
                f"procedural_seed={procedural_seed!r} with split={split!r}"
            )
        check_env_kwargs(f"InsertBench/ConnectorFamily-v{version}", env_kwargs,
                         ConnectorFamilyEnv.__init__)
        self._tasks: dict[str, Callable[[], TaskSpec]] = {}
        if hold_out is not None and not isinstance(hold_out, str):  # a list: "unhashable type"
            raise ValueError(f"hold_out must be one connector's name or None, got {hold_out!r}")
        if connectors is not None and (hold_out is not None or split != "train"):
            # were ignored without a word: connectors=['USBA'], hold_out='USBA' trained on USBA
            raise ValueError(
                f"connectors names the family's members itself; split and hold_out apply only "
                f"without it, got split={split!r}, hold_out={hold_out!r} with "
                f"connectors={connectors!r}"
            )
        if connectors is not None:
            names = list(check_names("connectors", connectors, CATALOG, "catalog names"))
        elif split == "procedural":
            procedural_count = check_int("procedural_count", procedural_count, 1,
                                         PROCEDURAL_COUNT_MAX)
            procedural_seed = check_int("procedural_seed", procedural_seed, 0)
            names = [f"Procedural{procedural_seed + i}" for i in range(procedural_count)]
            # Partials, not lambdas: an env holding lambdas could not be pickled.
            for i, name in enumerate(names):
                self._tasks[name] = functools.partial(procedural_task, procedural_seed + i)
        else:
            names = connector_names(split, hold_out)
        # A hold-out outside the drawn connectors used to be ignored: nothing was held out.
        if hold_out is not None and connectors is None and (
            split == "procedural" or hold_out not in connector_names(split)
        ):
            raise ValueError(f"hold_out {hold_out!r} is not a connector of split {split!r}: "
                             "it would hold nothing out")
        for name in names:
            self._tasks.setdefault(name, functools.partial(connector_task, name, version))
        check_start_height_for_all((self._tasks[n]().connector for n in names), env_kwargs,
                                   LOWEST_START_MAX_MM if split == "procedural" else None)
        self.connectors: tuple[str, ...] = tuple(names)
        self.split, self.hold_out = split, hold_out
        self.render_mode = render_mode
        self.env_kwargs = env_kwargs
        self._envs: dict[str, InsertionEnv] = {}
        self._closed = False
        first = self.member(self.connectors[0])
        self.action_space = first.action_space
        self.metadata = {**type(self).metadata, "render_fps": first.metadata["render_fps"]}
        self.observation_space = first.observation_space
        self.active: InsertionEnv = first
        self.active_name: str = self.connectors[0]

    def member(self, name: str) -> InsertionEnv:
        """The cached `InsertionEnv` of connector `name`, built on first use (`MEMBERS_KEPT`)."""
        self._check_member(name)
        if name in self._envs:
            self._envs[name] = self._envs.pop(name)  # the most recently used last
        else:
            check_open(self._closed and self.active._needs_cameras)
            env = InsertionEnv(self._tasks[name](), render_mode=self.render_mode, **self.env_kwargs)
            if self._closed:  # a state family goes on after close(), as a closed state env does
                env.close()
            if self._envs and (
                env.observation_space != self.observation_space
                or env.action_space != self.action_space
            ):
                raise RuntimeError(f"{name}: spaces differ from the family's; report this bug")
            self._envs[name] = env
            while len(self._envs) > MEMBERS_KEPT:
                self._envs.pop(next(iter(self._envs))).close()
        return self._envs[name]

    def _check_member(self, name: Any) -> None:
        if not isinstance(name, str) or name not in self._tasks:  # a list was "unhashable"
            members = list(self.connectors)
            # A 100,000-member procedural family listed them all: a 1.9 MB line (envs23)
            close = difflib.get_close_matches(name, members, n=3) if isinstance(name, str) else []
            shown = (f"{members}" if len(members) <= 40 else
                     f"{len(members):,} members, {members[0]} ... {members[-1]}"
                     + (f"; closest: {close}" if close else ""))
            raise ValueError(f"{name!r} is not in this family: {shown}")

    def check_reset_options(self, options: dict | None) -> None:
        """ValueError or TypeError for `options` that `reset` would refuse, changing nothing
        (vectors ask one world before any resets)."""
        options = reset_options(options)
        requested_offset_mm(options, self.active.workspace_mm, own=("connector",))
        if "connector" in options:
            self._check_member(options["connector"])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Checked before anything changes: a refused option left the family on the asked
        # connector, its generator reseeded, and that member's arm at MuJoCo's qpos0.
        seed, _ = self.active.checked_reset_args(self.check_reset_options, seed, options)
        # Building a new member (a compile a Ctrl-C may stop) can fail before its reset: the
        # last member's episode stepped on past it, TimeLimit's count restarted (diff21).
        self.active.end_episode("the last reset did not finish")
        options = reset_options(options)
        name = options.pop("connector", None)
        check_open(self._closed and self.active._needs_cameras)
        super().reset(seed=seed)
        # Drawn whether or not the option names one: a forced connector drew its episode's
        # sub-seed first, so "BNC, seed s" was not the episode seed s gives BNC unasked.
        drawn = self.connectors[int(self.np_random.integers(len(self.connectors)))]
        name = drawn if name is None else name
        sub_seed = int(self.np_random.integers(2**31 - 1))
        self.active, self.active_name = self.member(name), name
        obs, info = self.active.reset(seed=sub_seed, options=options or None)
        return obs, self._tag(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.active.step(action)
        return obs, reward, terminated, truncated, self._tag(info)

    def render(self):
        return self.active.render()

    def close(self) -> None:
        # The members stay, closed (a pixel member refuses to go on): cleared, they were built
        # again by the next reset, with new models and GL contexts.
        for env in self._envs.values():
            env.close()
        self._closed = True

    def _tag(self, info: dict[str, Any]) -> dict[str, Any]:
        info["connector"] = self.active_name
        return info
