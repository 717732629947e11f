"""Presets: TOML files that expand into a product of cells.

A preset names tasks, training seeds, agents and env-kwarg axes; the matrix is their product.
Shipped presets live in ``benchmark/presets/<name>.toml``; any other TOML file can be given by
path. The format (every key is checked; unknown keys are errors)::

    name = "quick"
    description = "what the preset is for"
    tasks = ["InsertBench/USB-v0"]          # Gymnasium IDs
    seeds = [0, 1]                          # training seeds
    eval_episodes = 25                      # episodes per evaluation (default 25)
    eval_seeds = { start = 1000000 }        # or an explicit list of eval_episodes ints
    eval_every = 1000                       # env steps between learning-curve evaluations

    [env_kwargs]                            # fixed kwargs for every task
    max_episode_steps = 100

    [axes]                                  # each a non-empty list; the matrix takes the product
    reward = ["sparse", "dense"]

    [[rules]]                               # kwargs implied by axis values
    when = { reward = "goal_image" }
    set = { obs_mode = "pixels", image_size = 32, grayscale = true }
    agent_config = { sac = { image_shift_px = 0 } }  # and agent config, by agent name

    [[agents]]
    name = "sac"                            # agent registry name
    label = "SAC"                           # column name in reports (default: name)
    budget_steps = 20000                    # 0 for scripted agents
    config = { batch_size = 256 }           # agent config overrides
    num_envs = 4                            # worlds trained on at once (default 1)
    env_kwargs = { reward = "vice" }        # this agent's own env kwargs, over the preset's
                                            # (not an axis: a report row keeps its task label)

    [paper_reference]                       # optional: the paper's numbers beside ours
    source = "..."
    [[paper_reference.entries]]
    task = "InsertBench/USB-v0"
    env_kwargs = { reward = "sparse" }      # must match the cell's task variant
    agent = "sac"                           # the agent label
    successes = 20
    trials = 25
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from benchmark.cells import (
    MAX_EVAL_EPISODES,
    MAX_TRAIN_STEPS,
    SCRIPTED_AGENTS,
    Cell,
    canonical_json,
    cells_by_hash,
    first_unwritable,
)

DEFAULT_EVAL_EPISODES = 25

_TOP_KEYS = {
    "name", "description", "tasks", "seeds", "eval_episodes", "eval_seeds", "eval_every",
    "env_kwargs", "axes", "rules", "agents", "paper_reference",
}
_AGENT_KEYS = {"name", "label", "budget_steps", "config", "eval_every", "num_envs",
               "env_kwargs"}
_RULE_KEYS = {"when", "set", "agent_config"}
_REFERENCE_KEYS = {"source", "note", "entries"}
_ENTRY_KEYS = {"task", "env_kwargs", "agent", "successes", "trials", "note"}
_TASK_VERSION = re.compile(r"-v(\d+)$")
#: A preset's name names its default store and report (runs/<name>.sqlite): one file name.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class PresetError(ValueError):
    """A preset file is malformed; the message says where and what to change."""


class OfflinePresetGiven(PresetError):
    """An offline preset given to a matrix command: the message names the command that runs it
    (no command's --help says more)."""


@dataclass(frozen=True)
class ReferenceEntry:
    """One number reported by a paper: successes out of trials for a method on a task variant."""

    task: str
    env_kwargs: Mapping[str, Any]
    agent: str
    successes: int
    trials: int
    note: str = ""


@dataclass
class Preset:
    """A parsed preset: its cells in a stable order plus report metadata."""

    name: str
    description: str
    cells: list[Cell]
    axes: dict[str, list[Any]]
    eval_seeds: tuple[int, ...]
    seeds: tuple[int, ...]
    source: str
    reference_source: str = ""
    reference_note: str = ""
    reference: list[ReferenceEntry] = field(default_factory=list)


#: How a TOML value's Python type reads in a message ("<class 'int'>" did not).
_KIND_WORDS = {"int": "an integer", "str": "a string", "list": "an array", "dict": "a table",
               "float": "a number", "bool": "true or false"}


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PresetError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _require(where: str, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise PresetError(f"{where}: missing required key {key!r}")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise PresetError(f"{where}: {key!r} must be {_KIND_WORDS.get(names, names)}, got "
                          f"{value!r}")
    return value


def _int_list(where: str, value: Any) -> list[int]:
    from agents.registry import SEED_LIMIT  # here: importing agents loads torch

    if not isinstance(value, list) or not value:
        raise PresetError(f"{where} must be a non-empty list of integers, got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise PresetError(f"{where} must contain only integers, got {value!r}")
    if not all(0 <= v < SEED_LIMIT for v in value):
        raise PresetError(f"{where} must contain only seeds in [0, 2**63), got {value!r}")
    if len(set(value)) != len(value):
        raise PresetError(f"{where} has duplicates: {value!r}")
    return value


def _short_task(task_id: str) -> str:
    return task_id.split("/", 1)[-1]


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ",".join(_format_value(v) for v in value) + ")"
    return str(value)


def task_label(task_id: str, axis_values: Mapping[str, Any]) -> str:
    """Report label of a task variant: short task name plus its axis values."""
    parts = [_short_task(task_id)] + [f"{k}={_format_value(v)}" for k, v in axis_values.items()]
    return " ".join(parts)


def parse_preset(data: Mapping[str, Any], source: str = "<memory>") -> Preset:
    """Validate a preset's TOML data and expand it into cells."""
    where = f"preset {source}"
    _check_keys(where, data, _TOP_KEYS)
    name = _require(where, data, "name", str)
    if not _NAME.fullmatch(name):  # "../../x" put the store two folders above runs/, "" hid it
        raise PresetError(f"{where}: 'name' names the store runs/<name>.sqlite: letters, digits, "
                          f"'.', '_' and '-', starting with a letter or digit; got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise PresetError(f"{where}: 'description' must be a string, got {description!r}")
    tasks = _require(where, data, "tasks", list)
    if not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise PresetError(f"{where}: 'tasks' must be a non-empty list of task IDs, got {tasks!r}")
    # Gymnasium ran "InsertBench/USB" as the latest version, under an identity that moves with
    # each new version, and the report could not name its version (matrix21).
    unversioned = [t for t in tasks if not _TASK_VERSION.search(t)]
    if unversioned:
        raise PresetError(f"{where}: task IDs must name their version (-vN, e.g. "
                          f"InsertBench/USB-v1): {unversioned}")
    # "envs:X" (Gymnasium's module:ID) beside "X" ran one task twice under one label.
    if len({t.rpartition(":")[2] for t in tasks}) != len(tasks):
        raise PresetError(f"{where}: 'tasks' has duplicates: {tasks!r}")
    seeds = _int_list(f"{where}: 'seeds'", data.get("seeds"))
    eval_episodes = data.get("eval_episodes", DEFAULT_EVAL_EPISODES)
    if (not isinstance(eval_episodes, int) or isinstance(eval_episodes, bool)
            or not 1 <= eval_episodes <= MAX_EVAL_EPISODES):
        raise PresetError(f"{where}: 'eval_episodes' must be an integer in "
                          f"[1, {MAX_EVAL_EPISODES}], got {eval_episodes!r}")
    eval_seeds = _parse_eval_seeds(where, data.get("eval_seeds"), eval_episodes)
    # The rule `train` applies, before any cell runs: a run's training episodes reset from
    # seeds of its own range (`train_episode_seed`), not from the run seeds themselves (the
    # check compared those, passing a clash that failed every cell, refusing none).
    from benchmark.train import seed_clash

    for seed in seeds:
        clash = seed_clash(seed, eval_seeds)
        if clash:
            raise PresetError(f"{where}: {clash}")
    eval_every = data.get("eval_every", 0)
    if not isinstance(eval_every, int) or isinstance(eval_every, bool) or eval_every < 0:
        raise PresetError(f"{where}: 'eval_every' must be an integer >= 0, got {eval_every!r}")

    fixed_kwargs = data.get("env_kwargs", {})
    if not isinstance(fixed_kwargs, dict):
        raise PresetError(f"{where}: [env_kwargs] must be a table")
    axes = data.get("axes", {})
    if not isinstance(axes, dict):
        raise PresetError(f"{where}: [axes] must be a table of lists")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise PresetError(f"{where}: axis {key!r} must be a non-empty list, got {values!r}")
        if key in fixed_kwargs:
            raise PresetError(f"{where}: {key!r} is both an axis and a fixed env kwarg")
        # [0, 0.0] made two cells of one task, each weighted in the aggregates.
        repeated = [v for i, v in enumerate(values) if any(
            v == w and isinstance(v, bool) == isinstance(w, bool) for w in values[:i])]
        if repeated:
            raise PresetError(f"{where}: axis {key!r} has identical values {values!r} (equal "
                              "numbers are one task): remove the duplicate axis value")
    agents = _parse_agents(where, data.get("agents"), eval_every)
    rules = _parse_rules(where, data.get("rules", []), axes, fixed_kwargs,
                         {a["name"] for a in agents}, [a["env_kwargs"] for a in agents])
    _check_finite(f"{where}: [env_kwargs]", fixed_kwargs)
    _check_finite(f"{where}: [axes]", axes)
    not_task_settings = sorted({"render_mode", "disable_env_checker"} & {
        *fixed_kwargs, *axes, *(k for a in agents for k in a["env_kwargs"])})
    if not_task_settings:  # render_mode=0 failed in every cell, any string checked nothing
        raise PresetError(f"{where}: {not_task_settings} are gym.make's, not task settings: "
                          "leave them out")
    for i, agent in enumerate(agents):
        _check_finite(f"{where}: agents[{i}].config", agent["config"])
        _check_finite(f"{where}: agents[{i}].env_kwargs", agent["env_kwargs"])
        on_axes = sorted(set(agent["env_kwargs"]) & set(axes))
        if on_axes:
            raise PresetError(f"{where}: agents[{i}].env_kwargs sets the axis {on_axes}: an "
                              "axis value would then label cells that do not have it")

    cells: list[Cell] = []
    axis_names = list(axes)
    kept: set[tuple[int, str, str]] = set()  # (rule, "set" or an agent name, key) in some cell
    applied_somewhere: set[int] = set()  # rules that apply to some cell
    applied_to: set[tuple[int, str]] = set()  # (rule, agent name): to some cell of the agent
    for task_id in tasks:
        for combo in itertools.product(*(axes[k] for k in axis_names)):
            axis_values = dict(zip(axis_names, combo, strict=True))
            label = task_label(task_id, axis_values)
            for agent in agents:
                # A rule's `when` reads the agent's cells' settings, its own env_kwargs
                # included: a sparse-only rule set its goal noise in a dense agent's cells of a
                # sparse preset (matrix22). The agent's env_kwargs still win over a rule's set.
                env_kwargs = {**fixed_kwargs, **axis_values}
                final = {**env_kwargs, **agent["env_kwargs"]}
                final_config: dict[str, Any] = {}
                applied = []
                for i, (when, implied, configs) in enumerate(rules):
                    if all(final.get(k) == v for k, v in when.items()):
                        applied.append(i)
                        env_kwargs.update(implied)
                        final = {**env_kwargs, **agent["env_kwargs"]}
                        final_config.update(configs.get(agent["name"], {}))
                applied_somewhere.update(applied)
                applied_to.update((i, agent["name"]) for i in applied)
                for i in applied:
                    kept.update((i, "set", k) for k, v in rules[i][1].items()
                                if _same(final.get(k), v))
                    kept.update((i, agent["name"], k)
                                for k, v in rules[i][2].get(agent["name"], {}).items()
                                if _same(final_config.get(k), v))
                for seed in seeds:
                    cells.append(
                        Cell(
                            task_id=task_id,
                            env_kwargs=dict(final),
                            agent=agent["name"],
                            agent_config={**agent["config"], **final_config},
                            seed=seed,
                            budget_steps=agent["budget_steps"],
                            eval_every=agent["eval_every"],
                            eval_episodes=eval_episodes,
                            eval_seeds=tuple(eval_seeds),
                            method=agent["label"],
                            task_label=label,
                            num_envs=agent["num_envs"],
                        )
                    )
    # A later rule or an agent's env_kwargs setting a key otherwise wherever the rule applies
    # left the rule's value in no cell, without a word (matrix21).
    for i, (when, implied, configs) in enumerate(rules):
        if i not in applied_somewhere:  # its keys never hold together (diff27)
            raise PresetError(f"{where}: rules[{i}] applies to no cell: no cell has "
                              f"{' and '.join(f'{k} = {v!r}' for k, v in when.items())}")
        for owner, table in (("set", implied), *configs.items()):
            for key, value in table.items():
                if (i, owner, key) not in kept:
                    what, who = ((owner, "a later rule or the agents' env_kwargs") if
                                 owner == "set" else (f"agent_config.{owner}", "a later rule"))
                    why = (f"{who} set it otherwise wherever the rule applies"
                           if owner == "set" or (i, owner) in applied_to else
                           f"the rule applies to none of {owner}'s cells (its env_kwargs)")
                    raise PresetError(
                        f"{where}: rules[{i}].{what} sets {key} = {value!r}, which no cell "
                        f"keeps: {why}")
    try:
        cells_by_hash(cells)
    except (ValueError, TypeError) as err:  # TypeError: a TOML date as a value (matrix19)
        raise PresetError(f"{where}: {err}") from None
    reference_source, reference_note, reference = _parse_reference(
        where, data.get("paper_reference"), tasks, {a["label"] for a in agents}, cells
    )
    return Preset(
        name=name,
        description=description,
        cells=cells,
        axes={k: list(v) for k, v in axes.items()},
        eval_seeds=tuple(eval_seeds),
        seeds=tuple(seeds),
        source=source,
        reference_source=reference_source,
        reference_note=reference_note,
        reference=reference,
    )


def _same(a: Any, b: Any) -> bool:
    """Equal as preset values: True is not 1."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _check_finite(where: str, value: Any) -> None:
    """Refuse TOML's nan, inf and dates anywhere in `value`, naming the key (no cell can hash
    them: a date failed in the JSON library's words, naming nothing; matrix23)."""
    found = first_unwritable(value)
    if found is not None:
        key, bad = found
        if isinstance(bad, float):
            raise PresetError(f"{where}: {key or 'a value'} must be a finite number, got {bad}")
        raise PresetError(f"{where}: {key or 'a value'} is a TOML date or time ({bad}); write "
                          "a number, or a string in quotes")


def _parse_eval_seeds(where: str, value: Any, eval_episodes: int) -> list[int]:
    if value is None:
        raise PresetError(
            f"{where}: 'eval_seeds' is required (a list or {{ start = N }}) so that evaluation "
            "seeds are fixed per preset"
        )
    if isinstance(value, dict):
        _check_keys(f"{where}: eval_seeds", value, {"start"})
        start = _require(f"{where}: eval_seeds", value, "start", int)
        from agents.registry import SEED_LIMIT  # here: importing agents loads torch

        if not 0 <= start <= SEED_LIMIT - eval_episodes:
            raise PresetError(f"{where}: eval_seeds.start must put every seed in [0, 2**63), "
                              f"got {start}")
        return list(range(start, start + eval_episodes))
    seeds = _int_list(f"{where}: 'eval_seeds'", value)
    if len(seeds) != eval_episodes:
        raise PresetError(
            f"{where}: 'eval_seeds' has {len(seeds)} seeds but eval_episodes = {eval_episodes}"
        )
    return seeds


def _parse_rules(
    where: str, rules: Any, axes: Mapping[str, Any], fixed: Mapping[str, Any],
    agent_names: set[str], agent_kwargs: Sequence[Mapping[str, Any]] = (),
) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]]:
    """(when, env kwargs set, agent config set per agent name) of each rule."""
    if not isinstance(rules, list):
        raise PresetError(f"{where}: [[rules]] must be an array of tables")
    parsed = []
    # A fixed kwarg's values in some cell: its own, an agent's env_kwargs' (a rule reads each
    # agent's cells: diff29), and each earlier rule's `set` (the rules apply in order, so a
    # later one may test what an earlier one sets: diff23).
    possible = {key: [value] for key, value in fixed.items()}
    for kwargs in agent_kwargs:
        for key, value in kwargs.items():
            possible.setdefault(key, []).append(value)
    for i, rule in enumerate(rules):
        here = f"{where}: rules[{i}]"
        if not isinstance(rule, dict):
            raise PresetError(f"{here} must be a table")
        _check_keys(here, rule, _RULE_KEYS)
        when = _require(here, rule, "when", dict)
        implied = rule.get("set", {})
        configs = rule.get("agent_config", {})
        if not isinstance(implied, dict) or not isinstance(configs, dict) or not all(
                isinstance(c, dict) for c in configs.values()):
            raise PresetError(f"{here}: 'set' must be a table of env kwargs and 'agent_config' "
                              "a table of agent names, each a table of config fields")
        if not when or not (implied or any(configs.values())):
            raise PresetError(f"{here}: 'when' must be non-empty, and 'set' or 'agent_config' "
                              "too")
        unknown = sorted(set(configs) - agent_names)
        if unknown:
            raise PresetError(f"{here}: 'agent_config' names {unknown}, not agents of this "
                              f"preset ({sorted(agent_names)})")
        _check_finite(f"{here}.set", implied)  # -inf there failed naming no rule (matrix23)
        _check_finite(f"{here}.agent_config", configs)
        for key, value in when.items():
            if key in axes and value not in axes[key]:
                raise PresetError(f"{here}: {key}={value!r} is not a value of axis {key!r}")
            if key not in axes and key not in possible:  # an earlier rule's `set` counts
                raise PresetError(f"{here}: 'when' key {key!r} is neither an axis nor an env "
                                  "kwarg (fixed, an agent's, or set by an earlier rule)")
            if key not in axes and value not in possible.get(key, []):  # matched no cell
                raise PresetError(f"{here}: {key}={value!r} is never the preset's {key} "
                                  f"({' or '.join(map(repr, possible.get(key, [])))}), so the "
                                  "rule applies to no cell")
        clash = sorted(set(implied) & set(axes))
        if clash:
            raise PresetError(f"{here}: 'set' must not override axes {clash}")
        for key, value in implied.items():
            possible.setdefault(key, []).append(value)
        parsed.append((dict(when), dict(implied), {k: dict(v) for k, v in configs.items()}))
    return parsed


def _parse_agents(where: str, agents: Any, eval_every: int) -> list[dict[str, Any]]:
    if not isinstance(agents, list) or not agents:
        raise PresetError(f"{where}: at least one [[agents]] table is required")
    parsed: list[dict[str, Any]] = []
    for i, agent in enumerate(agents):
        here = f"{where}: agents[{i}]"
        if not isinstance(agent, dict):
            raise PresetError(f"{here} must be a table")
        _check_keys(here, agent, _AGENT_KEYS)
        name = _require(here, agent, "name", str)
        budget = _require(here, agent, "budget_steps", int)
        if not 0 <= budget <= MAX_TRAIN_STEPS:
            raise PresetError(f"{here}: budget_steps must be in [0, {MAX_TRAIN_STEPS:,}], got "
                              f"{budget}")
        if name in SCRIPTED_AGENTS and budget != 0:
            raise PresetError(
                f"{here}: {name!r} is a scripted agent and is evaluated only; set budget_steps = 0"
            )
        every = agent.get("eval_every", eval_every)
        # True passed as 1 here (evaluating after every episode, another cell than 1: matrix19)
        if budget > 0 and (not isinstance(every, int) or isinstance(every, bool) or every <= 0):
            raise PresetError(
                f"{here}: a trained agent needs eval_every > 0 (here or at top level) for its "
                "learning curve"
            )
        config = agent.get("config", {})
        if not isinstance(config, dict):
            raise PresetError(f"{here}: 'config' must be a table")
        agent_kwargs = agent.get("env_kwargs", {})
        if not isinstance(agent_kwargs, dict):
            raise PresetError(f"{here}: 'env_kwargs' must be a table")
        num_envs = agent.get("num_envs", 1)
        from envs.vector import check_num_envs

        try:
            check_num_envs(num_envs)
        except ValueError as err:
            raise PresetError(f"{here}: {err}") from None
        if budget % num_envs:
            raise PresetError(f"{here}: budget_steps ({budget}) must be a multiple of "
                              f"num_envs ({num_envs})")
        label = agent.get("label", name)
        if not isinstance(label, str) or not label.strip():
            raise PresetError(f"{here}: 'label' must be a non-empty string, got {label!r}")
        parsed.append({
            "name": name,
            "label": label,
            "budget_steps": budget,
            "config": config,
            "eval_every": every if budget > 0 else 0,
            "num_envs": num_envs,
            "env_kwargs": agent_kwargs,
        })
    labels = [a["label"] for a in parsed]
    names = {a["name"] for a in parsed}
    for i, agent in enumerate(parsed):  # `--agent td3` ran SAC labelled "td3" too (matrix21)
        if agent["label"] != agent["name"] and agent["label"] in names:
            raise PresetError(f"{where}: agents[{i}]'s label {agent['label']!r} names another "
                              "agent of the preset (`--agent` selects by both); choose another")
    # As a report shows them: "P " and "P" were two columns no reader could tell apart.
    if len({" ".join(label.split()) for label in labels}) != len(labels):
        raise PresetError(f"{where}: agent labels must be unique (spaces aside), got {labels}; "
                          "set 'label'")
    return parsed


def _parse_reference(
    where: str, table: Any, tasks: list[str], labels: set[str], cells: list[Cell]
) -> tuple[str, str, list[ReferenceEntry]]:
    if table is None:
        return "", "", []
    here = f"{where}: paper_reference"
    if not isinstance(table, dict):
        raise PresetError(f"{here} must be a table")
    _check_keys(here, table, _REFERENCE_KEYS)
    source = _require(here, table, "source", str)
    listed = table.get("entries", [])
    if not isinstance(listed, list):  # `entries = 5` was "TypeError: 'int' object is not iterable"
        raise PresetError(f"{here}: 'entries' must be a list of tables "
                          f"([[paper_reference.entries]]), got {listed!r}")
    entries = []
    for i, entry in enumerate(listed):
        at = f"{here}.entries[{i}]"
        if not isinstance(entry, dict):
            raise PresetError(f"{at} must be a table, got {entry!r}")
        _check_keys(at, entry, _ENTRY_KEYS)
        task = _require(at, entry, "task", str)
        agent = _require(at, entry, "agent", str)
        if task not in tasks:
            raise PresetError(f"{at}: task {task!r} is not in the preset's tasks")
        if agent not in labels:
            raise PresetError(f"{at}: agent {agent!r} is not an agent label of the preset")
        successes = _require(at, entry, "successes", int)
        trials = _require(at, entry, "trials", int)
        if not 0 <= successes <= trials or not 1 <= trials <= MAX_EVAL_EPISODES:
            raise PresetError(f"{at}: need 0 <= successes <= trials, trials in "
                              f"[1, {MAX_EVAL_EPISODES:,}]")
        env_kwargs = entry.get("env_kwargs", {})
        if not isinstance(env_kwargs, dict):  # "abc" was a ValueError from dict()
            raise PresetError(f"{at}: 'env_kwargs' must be a table, got {env_kwargs!r}")
        _check_finite(f"{at}.env_kwargs", env_kwargs)  # NaN dropped the entry without a word
        # The report pools the cells an entry picks: two variants (goal_noise_mm = 0 and 1)
        # were one row under the first one's label.
        variants = sorted({c.task_label for c in cells if c.task_id == task and c.method == agent
                           and all(c.env_kwargs.get(k) == v for k, v in env_kwargs.items())})
        if len(variants) != 1:
            raise PresetError(
                f"{at}: env_kwargs {env_kwargs} pick {len(variants)} task variants of {task} "
                f"for {agent}" + (f" ({', '.join(variants)})" if variants else "")
                + "; a paper's figure is one variant: give env_kwargs that pick exactly one")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise PresetError(f"{at}: 'note' must be a string, got {note!r}")
        entries.append(ReferenceEntry(task, dict(env_kwargs), agent, successes, trials, note))
    note = table.get("note", "")
    if not isinstance(note, str):
        raise PresetError(f"{here}: 'note' must be a string, got {note!r}")
    return source, note, entries


def _spelled_out_twins(cells: list[Cell], full: Mapping[tuple[str, str], dict[str, Any]],
                       tasks: Mapping[tuple[str, str], str]) -> list[str]:
    """One line per two agents whose cells are the same once each config is written out in
    full (`full`: (agent, config as spelled) -> the config `check_runnable` built) and each
    task variant is known by its version key (`tasks`: (task ID, env kwargs as spelled) -> the
    key, which fills in the env's defaults); a cell either could not build is left out. Apart
    only by a default spelled out, they ran every cell twice and were reported as two methods
    with identical numbers (matrix23, matrix24). Spelled alike, loading refuses them."""
    seen: dict[str, Cell] = {}
    twins: dict[tuple[str, str], None] = {}
    for cell in cells:
        config = full.get((cell.agent, canonical_json(dict(cell.agent_config))))
        key = tasks.get((cell.task_id, canonical_json(dict(cell.env_kwargs))))
        if config is None or key is None:
            continue
        same = replace(cell, agent_config=config, env_kwargs={"task_version_key": key})
        other = seen.setdefault(same.config_hash, cell)
        if other.method != cell.method:
            twins[(other.method, cell.method)] = None
    return [f"agents {a!r} and {b!r} are one agent with one config and budget on the same "
            "tasks once their configs and env kwargs are written out in full (one spells out "
            "defaults); remove one" for a, b in twins]


def _variant_key(task_id: str, env_kwargs: Mapping[str, Any]) -> str | None:
    """What tells two task variants apart for `_spelled_out_twins`: the task version key of
    the env a cell makes and scores (`evaluated_task_kwargs`: under a learned reward, the task
    it wraps, cameras on, whose key a state env's leaves out: VICE at 32 and 64 px were
    "twins", diff32), with a learned reward's own kwargs as spelled; None where it has none."""
    from benchmark.learned_reward import evaluated_task_kwargs
    from envs.version_key import task_version_key_if_any

    evaluated = evaluated_task_kwargs(task_id, env_kwargs)
    key = None if evaluated is None else task_version_key_if_any(task_id, evaluated)
    if key is None or env_kwargs.get("reward") not in ("classifier", "vice"):
        return key
    wrapper = {k: v for k, v in env_kwargs.items()
               if k in ("reward", "goal_hold_steps", "reward_classifier")}
    return f"{key} {canonical_json(wrapper)}"


def _unknown_obs_keys(cells: list[Cell], full: Mapping[tuple[str, str], dict[str, Any]],
                      spaces: Mapping[tuple[str, str], Any]) -> list[str]:
    """One line per agent config and task variant whose observation entries (``obs_keys``,
    ``classifier_obs_keys``) the variant's observation space lacks: checked only when the
    networks were built, each of the agent's cells failed in turn (matrix24)."""
    from agents.networks import check_obs_keys

    problems: dict[str, None] = {}
    for cell in cells:
        config = full.get((cell.agent, canonical_json(dict(cell.agent_config))))
        space = spaces.get((cell.task_id, canonical_json(dict(cell.env_kwargs))))
        if config is None or space is None:
            continue
        for name in ("obs_keys", "classifier_obs_keys"):
            try:
                if config.get(name):
                    check_obs_keys(space, config[name], name)
            except ValueError as err:
                problems[f"agent {cell.method or cell.agent} on {cell.task_label or cell.task_id}"
                         f": {err}"] = None
    return list(problems)


def check_runnable(cells: list[Cell]) -> None:
    """Build each task variant and agent config of `cells` once, before any cell runs.

    Every unknown task ID, env kwarg or out-of-range value, unknown agent, unknown agent config
    field or bad config value is collected, and all of them are raised together as one
    PresetError, so a typo costs seconds, not the cells before it.
    """
    import agents  # noqa: F401  (registers the agents)
    from agents.config import build_config, config_to_dict
    from agents.registry import agent_spec
    from benchmark.cli_options import innermost_message
    from benchmark.train import (
        DEFAULT_DEMO_EPISODES,
        check_agent_frame,
        demo_seed_clash,
        make_env,
    )
    from benchmark.vector_train import check_vector_training
    from envs.insertion_env import active_insertion_env
    from envs.tasks import pinned_versions

    problems: list[str] = []
    variants = {(c.task_id, canonical_json(dict(c.env_kwargs))): c for c in cells}
    keys: dict[tuple[str, str], str] = {}  # (task, env kwargs as spelled) -> its version key
    spaces: dict[tuple[str, str], Any] = {}  # -> its observation space
    for variant, cell in variants.items():
        try:
            with pinned_versions():  # a preset pins its task versions
                env = make_env(cell.task_id, cell.env_kwargs)
                keys[variant] = _variant_key(cell.task_id, cell.env_kwargs) or \
                    f"as spelled: {variant}"
            spaces[variant] = env.observation_space
            try:  # CartPole-v1 failed every cell, "not an InsertBench insertion environment"
                active_insertion_env(env)
            finally:
                env.close()
        except Exception as err:  # noqa: BLE001 - gym raises several kinds; report them all
            problems.append(f"task {cell.task_id} with {dict(cell.env_kwargs)}: "
                            f"{innermost_message(err)}")
    # The kwargs the checks below read, as text: a list given as `reward` was a TypeError
    # ("unhashable type") that hid the message the loop above collected for it (matrix21).
    configs = {(c.agent, canonical_json(dict(c.agent_config)), c.num_envs, c.budget_steps,
                canonical_json([c.env_kwargs.get("reward"), c.env_kwargs.get("obs_frame")])): c
               for c in cells}
    full: dict[tuple[str, str], dict[str, Any]] = {}  # (agent, config as spelled) -> in full
    for cell in configs.values():
        try:
            spec = agent_spec(cell.agent)
            config = config_to_dict(build_config(spec.config_cls, dict(cell.agent_config)))
            full[(cell.agent, canonical_json(dict(cell.agent_config)))] = config
            # The demonstrations a cell collects (train's default count) reset from their own
            # seeds: evaluation seeds there failed every such cell at run time.
            # ODA records as many of the target task to infer it from (train's check too).
            clash = demo_seed_clash(cell.eval_seeds, DEFAULT_DEMO_EPISODES
                                    if spec.needs_demos or spec.needs_context else 0,
                                    config.get("vice_failure_episodes", 0))
            if clash:
                raise ValueError(clash)
            check_agent_frame(spec, cell.env_kwargs)
            if cell.budget_steps > 0:
                check_vector_training(spec, cell.num_envs, cell.budget_steps, config,
                                      env_kwargs=cell.env_kwargs)
        except ValueError as err:
            problems.append(f"agent {cell.method or cell.agent}: {err}")
    problems += _unknown_obs_keys(cells, full, spaces)
    problems += _spelled_out_twins(cells, full, keys)
    if problems:
        raise PresetError(
            f"the preset cannot run ({len(problems)} problem(s), no cell started): "
            + "; ".join(problems)
        )


def available_presets() -> list[str]:
    """Names of the presets shipped in ``benchmark/presets``."""
    folder = resources.files("benchmark") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def check_task_versions(versions: Sequence[int]) -> None:
    """Raise PresetError unless `versions` are one or more distinct integers >= 0."""
    if not versions or len(set(versions)) != len(versions) or min(versions) < 0:
        raise PresetError(f"task versions must be distinct integers >= 0, got {list(versions)}")


def at_task_versions(data: Mapping[str, Any], versions: Sequence[int]) -> dict[str, Any]:
    """A preset's TOML data with every task at each of `versions` instead of its own.

    Tasks expand version-minor (USB-v1, USB-v2, DSub-v1, ...) so a report shows each task's
    versions side by side on the same seeds; paper reference entries follow every version (a
    paper's number does not depend on our task version). The name gets the versions appended
    (``paper000-state-v1-v2``, in ascending order whatever order they were given in, so
    ``--task-version 2 --task-version 1`` finds the same default store), so the default store
    and report are not the preset's own.
    """
    check_task_versions(versions)
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise PresetError(f"'tasks' must be a list of task IDs, got {tasks!r}")
    unversioned = [t for t in tasks if not _TASK_VERSION.search(t)]
    if unversioned:
        raise PresetError(f"task IDs {unversioned} end in no -vN, so no version can replace it")

    def at(task_id: str) -> list[str]:
        return [_TASK_VERSION.sub(f"-v{v}", task_id) for v in versions]

    def entry_at(entry: Any) -> list[Any]:
        task = entry.get("task") if isinstance(entry, dict) else None
        if not isinstance(task, str) or not _TASK_VERSION.search(task):
            return [entry]  # parse_preset says what is wrong with it
        return [{**entry, "task": t} for t in at(task)]

    out = dict(data)
    out["name"] = f"{data.get('name')}-" + "-".join(f"v{v}" for v in sorted(versions))
    out["tasks"] = [t for task_id in tasks for t in at(task_id)]
    reference = data.get("paper_reference")
    if isinstance(reference, dict) and isinstance(reference.get("entries"), list):
        entries = [e for entry in reference["entries"] for e in entry_at(entry)]
        out["paper_reference"] = {**reference, "entries": entries}
    return out


def load_preset(name_or_path: str | Path, task_versions: Sequence[int] = ()) -> Preset:
    """Load a shipped preset by name, or any preset TOML file by path.

    `task_versions`, if given, runs the preset's tasks at those versions (`at_task_versions`).
    """
    path = Path(name_or_path)
    # A bare shipped name is the shipped preset even where the working folder holds a file or
    # folder of that name (`./quick` hid `quick`: "preset file quick is a folder").
    shipped = (path.suffix == "" and len(path.parts) == 1
               and (resources.files("benchmark") / "presets" / f"{path}.toml").is_file())
    if not shipped and (path.suffix == ".toml" or path.exists()):
        if not path.is_file():
            raise PresetError(f"preset file {path} "
                              f"{'is a folder' if path.is_dir() else 'does not exist'}")
        try:
            # utf-8-sig: an editor's BOM read as "Invalid statement (at line 1, column 1)"
            text, source = path.read_text(encoding="utf-8-sig"), str(path)
        except UnicodeDecodeError:  # was "UnicodeDecodeError: 'utf-8' codec can't decode ..."
            hint = (" (a matrix store: give the preset's name and --store FILE)"
                    if path.suffix in (".sqlite", ".db") else "")
            raise PresetError(f"preset file {path} is not a TOML text file{hint}") from None
    else:
        resource = resources.files("benchmark") / "presets" / f"{name_or_path}.toml"
        offline = resources.files("benchmark") / "presets" / "offline" / f"{name_or_path}.toml"
        if not resource.is_file() and offline.is_file():
            raise OfflinePresetGiven(
                f"preset {str(name_or_path)!r} pretrains offline methods on a recipe's data, "
                "which matrix cells do not model; run it with `python -m "
                f"benchmark.bench_offline --preset {name_or_path} --out DIR`"
            )
        if not resource.is_file():
            raise PresetError(
                f"unknown preset {str(name_or_path)!r}; shipped presets: {available_presets()} "
                "(or give a path to a .toml file)"
            )
        text, source = resource.read_text(encoding="utf-8"), f"{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"preset {source} is not valid TOML: {err}") from None
    if task_versions:
        data = at_task_versions(data, task_versions)
        source += " at task version(s) " + ", ".join(str(v) for v in task_versions)
    return parse_preset(data, source)


#: The keys of an offline preset (`python -m benchmark.bench_offline --preset`), by table.
OFFLINE_PRESET_KEYS = {"name", "description", "paper", "recipe", "bench"}
OFFLINE_RECIPE_KEYS = {"scale", "episodes", "version", "seed"}
OFFLINE_BENCH_KEYS = {"pretrain_steps", "batch_size", "eval_episodes", "finetune_steps",
                      "online_trials", "classifier_episodes", "tasks", "seed"}


def load_offline_preset(name_or_path: str) -> dict[str, Any]:
    """An offline preset: ``benchmark/presets/offline/<name>.toml`` or a TOML path (keys:
    name, description, paper, [recipe] for `insertbench dataset recipe`, [bench] for the
    arguments of `python -m benchmark.bench_offline`); unknown keys are errors."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = Path(str(resources.files("benchmark") / "presets" / "offline" /
                        f"{name_or_path}.toml"))
    if not path.is_file():
        raise ValueError(f"unknown offline preset {name_or_path!r}; shipped: "
                         f"{offline_presets()} (or give a path to a .toml file)")
    preset = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    for table in ("recipe", "bench"):  # recipe = "small" was checked as its letters
        if not isinstance(preset.get(table, {}), dict):
            raise ValueError(f"{path}: {table} must be a table ([{table}]), got "
                             f"{preset[table]!r}")
    for where, table, allowed in (("", preset, OFFLINE_PRESET_KEYS),
                                  ("[recipe] ", preset.get("recipe", {}), OFFLINE_RECIPE_KEYS),
                                  ("[bench] ", preset.get("bench", {}), OFFLINE_BENCH_KEYS)):
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ValueError(f"{path}: unknown {where}keys {unknown}; allowed: {sorted(allowed)}")
    if preset.get("paper") not in ("paper001", "paper004"):
        raise ValueError(f"{path}: paper must be 'paper001' or 'paper004'")
    # Set as argparse defaults and recipe kwargs, a value of another type went unchecked:
    # tasks = "USACPlug" was read as its letters, [recipe] episodes = 0 as no count.
    for key, value in preset.get("recipe", {}).items():
        text = key in ("scale", "version")
        if not (isinstance(value, str) if text else _is_int(value)) or (
                key == "episodes" and value < 1):
            raise ValueError(f"{path}: [recipe] {key} must be "
                             f"{'a string' if text else 'an integer'}"
                             f"{' >= 1' if key == 'episodes' else ''}, got {value!r}")
    for key, value in preset.get("bench", {}).items():
        if key == "tasks" and not (isinstance(value, list) and value
                                   and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{path}: [bench] tasks must be a non-empty list of task names, "
                             f"got {value!r}")
        if key != "tasks" and not _is_int(value):
            raise ValueError(f"{path}: [bench] {key} must be an integer, got {value!r}")
    return preset


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def offline_presets() -> list[str]:
    """Names of the shipped offline presets (benchmark/presets/offline)."""
    folder = resources.files("benchmark") / "presets" / "offline"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))
