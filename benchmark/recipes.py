"""Dataset recipes: the offline data of papers 001 and 004, as labelled Minari collections.

A recipe is a list of parts, each one `benchmark.datasets.CollectConfig` on one catalog
connector (so each part is a resumable Minari dataset of its own under `<out>/<part>/`), plus a
`task_id` label (the connector's index in the recipe: paper 001's domain, paper 004's task) and
an `is_demo` flag. `collect_recipe` runs (or resumes) every part and writes `<out>/recipe.json`;
`load_recipe` flattens all parts into one agents' `Dataset` with `task_id` and `is_demo`
columns, which is what `iql` (DAIB, reward classifier) and `oda` need from `pretrain`.

Scales: "small" fits these 2-core machines (minutes); "full" is the papers' size:

- paper001 (Nair et al., section IV): on every training connector, noisy scripted insertions
  (random action with probability 0.2) of at most 20 steps from random offsets up to 20 mm,
  ending on success, sparse rewards, wrist-camera images (32x32 RGB here) and the TCP pose.
  Full: 70k trajectories over 50 connectors in the paper, i.e. 1400 per connector; small: 20.
  Rows of successful episodes carry ``socket_offset_m`` (see ``socket_offsets``).
- paper004 (Zhao et al., section 5): on each of the 11 training tasks, 20 demonstrations and
  ~500 episodes of RL data (the paper saves DDPGfD's replay buffers; we roll out the scripted
  expert with random actions at probability 0.3 instead, see README), from state, with a
  U(1 mm) start perturbation. Full: 20 demos + 500 episodes per task; small: 20 demos + 20.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.cells import MAX_EVAL_EPISODES
from benchmark.datasets import (
    GAVE_UP_TXT,
    CollectConfig,
    CollectionGaveUp,
    collect,
    finished,
    load_unaltered,
    read_collect_config,
)
from benchmark.folder_lock import run_lock
from envs.json_files import write_json
from envs.task_options import check_int
from envs.tasks import DYNAMICS, pinned_versions

RECIPE_JSON = "recipe.json"
SCALES = ("small", "full")
#: Task versions a recipe can be collected on (``envs`` registers Connector-<name>-v0 to -v3).
VERSIONS = tuple(f"v{v}" for v in DYNAMICS)

#: Paper 001's visual setting: wrist camera, 20-step episodes just above the socket. The TCP
#: pose is recorded too: it is the calibrated state that labels the localizer's training data
#: (the learned policies and reward read only the image, `obs_keys=("wrist",)`).
PAPER001_ENV = {"obs_mode": "state+pixels", "image_size": 32, "cameras": ["wrist"],
                "start_height_mm": 25.0, "init_offset_mm": [0.0, 20.0]}
#: Paper 004's setting: state observations, start pose perturbed by up to 1 mm (a disc of
#: radius 1 mm, `envs.task_options.sample_start_offset_m`, where section 5 draws U[-1, 1] mm per
#: axis). Actions are the default 3-D TCP translation where the paper commands a 6-D twist: these
#: starts are perturbed in position only, with no rotation to correct.
PAPER004_ENV = {"obs_mode": "state", "start_height_mm": 20.0, "init_offset_mm": [0.0, 1.0]}
PAPER001_STEPS = 20


def paper004_env(connector: str) -> dict[str, Any]:
    """``PAPER004_ENV`` for ``connector``, its start height raised where the plug is longer than
    that (the plug must start out of the socket; e.g. the 20 mm metal pegs)."""
    from envs.catalog import CATALOG

    lowest = CATALOG[connector].spec.lowest_start_mm
    return PAPER004_ENV | {"start_height_mm": max(PAPER004_ENV["start_height_mm"], lowest)}
PAPER004_STEPS = 40


@dataclass(frozen=True)
class RecipePart:
    """One collection of a recipe: a CollectConfig, its folder, its task label, demo or not."""

    folder: str
    connector: str
    task_id: int
    is_demo: bool
    collect: CollectConfig


def paper001_connectors() -> list[str]:
    """The training connectors of paper 001's setting: the catalog's "train" split."""
    from envs.catalog import connector_names

    return connector_names("train")


def paper004_connectors() -> list[str]:
    """Paper 004's 11 training tasks: the "train" split less the connectors only paper 001
    names (RJ45, BNC, USB-C, M12)."""
    from envs.catalog import CATALOG, connector_names

    return [n for n in connector_names("train") if not CATALOG[n].paper.startswith("001")]


def recipe_parts(name: str, scale: str = "small", seed: int = 0, episodes: int | None = None,
                 connectors: list[str] | None = None, version: str = "v1") -> list[RecipePart]:
    """The parts of recipe ``name`` ("paper001", "paper004") at ``scale`` on task ``version``;
    ``episodes`` overrides the per-connector episode count of the non-demo parts;
    ``connectors`` keeps a subset of the recipe's connectors (task labels stay those of the
    full recipe)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    if name not in ("paper001", "paper004"):
        raise ValueError(f"unknown recipe {name!r}; known: ['paper001', 'paper004']")
    if episodes is not None:  # 0 was falsy: the scale's 20 or 500 rollouts, recorded as 0
        check_int("episodes", episodes, 1, MAX_EVAL_EPISODES)
    names = paper001_connectors() if name == "paper001" else paper004_connectors()
    unknown = sorted(set(connectors or []) - set(names))
    if unknown:
        raise ValueError(f"connectors {unknown} are not in recipe {name}; it has {names}")
    parts: list[RecipePart] = []
    if name == "paper001":
        count = episodes if episodes is not None else 20 if scale == "small" else 1400
        for task, connector in enumerate(names):
            parts.append(RecipePart(connector, connector, task, False, CollectConfig(
                f"InsertBench/Connector-{connector}-{version}", episodes=count, noise=0.2,
                max_steps=PAPER001_STEPS, seed=seed + 1000 * task, env_kwargs=PAPER001_ENV)))
    elif name == "paper004":
        count = episodes if episodes is not None else 20 if scale == "small" else 500
        for task, connector in enumerate(names):
            task_id = f"InsertBench/Connector-{connector}-{version}"
            parts.append(RecipePart(f"{connector}-demos", connector, task, True, CollectConfig(
                task_id, episodes=20, noise=0.0, demos=True, max_steps=PAPER004_STEPS,
                seed=seed + 1000 * task, env_kwargs=paper004_env(connector))))
            parts.append(RecipePart(f"{connector}-rollouts", connector, task, False,
                                    CollectConfig(task_id, episodes=count, noise=0.3,
                                                  max_steps=PAPER004_STEPS,
                                                  seed=seed + 1000 * task + 500,
                                                  env_kwargs=paper004_env(connector))))
    return [p for p in parts if connectors is None or p.connector in connectors]


#: Held by a recipe collection for as long as it writes its folder.
RECIPE_LOCK = "recipe.lock"


def collect_recipe(name: str, out: Path, scale: str = "small", seed: int = 0,
                   episodes: int | None = None, connectors: list[str] | None = None,
                   progress: bool = True, version: str = "v1") -> dict[str, Any]:
    """Collect (or resume) every part under ``out`` and write ``out/recipe.json``."""
    out = Path(out).resolve()  # Minari's root must be absolute
    parts = recipe_parts(name, scale, seed, episodes, connectors, version)
    description = {
        "recipe": name, "scale": scale, "seed": seed, "episodes": episodes,
        "parts": [{"folder": p.folder, "connector": p.connector, "task_id": p.task_id,
                   "is_demo": p.is_demo, "collect": asdict(p.collect)} for p in parts],
    }
    path = out / RECIPE_JSON
    # Held from the check to the last part: two runs started together into one folder with
    # other connectors both checked recipe.json absent, and the last to write it left the
    # other's parts out of it, its user training on the wrong connectors (data17).
    with run_lock(out, RECIPE_LOCK, "recipe collection"):
        if path.is_file():
            differences = recipe_differences(read_description(out),
                                             json.loads(json.dumps(description)))
            if differences:
                raise ValueError(f"{out} holds a different recipe collection ({differences}); "
                                 "use another --out or delete it")
        write_json(path, description)  # whole: a killed run never leaves half a description
        with pinned_versions():  # the recipe's version is chosen (--version), not a stale ID
            for part in parts:
                try:
                    collect(part.collect, out / part.folder, progress=progress)
                except CollectionGaveUp as err:  # its advice named options a recipe lacks
                    raise CollectionGaveUp(f"part {part.folder}: {err.why}",
                                           RECIPE_GAVE_UP_ADVICE) from None
    return description


#: What a recipe whose part gave up can do: its noise and episode length are the recipe's.
RECIPE_GAVE_UP_ADVICE = ("rerunning gives up again; collect the recipe into another --out "
                         "on another --version or --seed, or without that part's connector "
                         "(--connector for each of the others)")


def recipe_differences(recorded: dict[str, Any], asked: dict[str, Any]) -> str:
    """What differs between two ``recipe.json`` descriptions, as the options that set it
    ("episodes 2 (asked: 3)"); empty if they are equal. The refusal used to say only "a
    different recipe collection", leaving the user to guess which option to change."""
    if recorded == asked:
        return ""
    differences = [f"{key} {recorded.get(key)!r} (asked: {asked.get(key)!r})"
                   for key in ("recipe", "scale", "seed", "episodes")
                   if recorded.get(key) != asked.get(key)]
    folders = [[p.get("folder") for p in d.get("parts", [])] for d in (recorded, asked)]
    if folders[0] != folders[1]:
        differences.append(f"parts {folders[0]} (asked: {folders[1]}; --connector)")
    if not differences:  # same parts, other settings: the task version or the code's recipe
        tasks = [sorted({p["collect"]["task_id"] for p in d.get("parts", [])})
                 for d in (recorded, asked)]
        differences.append(f"tasks {tasks[0]} (asked: {tasks[1]}; --version)"
                           if tasks[0] != tasks[1] else "the parts' collection settings")
    return "; ".join(differences)


def read_description(out: Path) -> dict[str, Any]:
    """The recipe.json of a recipe collection; ValueError naming the file when it is damaged
    (a bare "Expecting value: line 1 column 1" before) or not a recipe's description."""
    from agents.checkpoint import read_json

    path = Path(out) / RECIPE_JSON
    description = read_json(path, "recipe description")
    if not isinstance(description, dict) or not isinstance(description.get("parts"), list):
        raise ValueError(f"{path} is not a recipe's description (a damaged file?)")
    for i, part in enumerate(description["parts"]):
        problem = _part_problem(part)
        if problem:  # it ended in a TypeError, KeyError or OverflowError naming no file, and
            # an is_demo of "no" read as True (data22)
            raise ValueError(f"{path}: parts[{i}] {problem} (a damaged file?)")
    return description


def _part_problem(part: Any) -> str | None:
    """What is wrong with one part of a recipe.json (None: nothing)."""
    if not isinstance(part, dict) or not isinstance(part.get("collect"), dict):
        return "is not a table with a 'collect' table"
    folder = part.get("folder")
    if not isinstance(folder, str) or len(Path(folder).parts) != 1 or folder in (".", ".."):
        return f"folder {folder!r} is not a folder's name inside the recipe's"
    task_id = part.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < 2**31:
        return f"task_id {task_id!r} is not an integer in [0, 2**31)"
    if not isinstance(part.get("is_demo"), bool):
        return f"is_demo {part.get('is_demo')!r} is not true or false"
    if not isinstance(part.get("connector"), str):
        return f"connector {part.get('connector')!r} is not a connector's name"
    try:
        CollectConfig(**part["collect"])
    except (TypeError, ValueError) as err:
        return f"collect is no collection's settings ({err})"
    if not isinstance(part["collect"]["task_id"], str):  # CollectConfig takes any (diff31)
        return f"collect.task_id {part['collect']['task_id']!r} is not a task ID"
    return None


def is_recipe_dir(path: Path) -> bool:
    """True if ``path`` holds a recipe collection."""
    return (Path(path) / RECIPE_JSON).is_file()


def missing_parts(out: Path) -> list[str]:
    """Folders of the recipe's parts whose Minari dataset is not written yet: the collection
    was interrupted (``recipe.json`` is written before the first part). ValueError for a part
    folder that holds another collection than ``recipe.json`` lists: a v0 collection with
    other noise and episode count, put there by hand, loaded under the recipe's v1 label."""
    description = read_description(out)
    for part in description["parts"]:
        folder = Path(out) / part["folder"]
        if not (folder / "collect_config.json").is_file():
            continue  # not started: missing, below
        held = json.loads(json.dumps(asdict(read_collect_config(folder))))
        differ = sorted(k for k in part["collect"] if held.get(k) != part["collect"][k])
        if differ:
            raise ValueError(f"{folder} holds another collection than {RECIPE_JSON} lists "
                             f"(differs in {differ}); collect the recipe into a new --out")
    return [p["folder"] for p in description["parts"]
            if not finished(Path(out) / p["folder"], CollectConfig(**p["collect"]))]


def parts_made_otherwise(out: Path) -> list[str]:
    """One line per part of the recipe in `out` whose episodes another simulator or expert
    made (`benchmark.datasets.collection_dynamics_differ`): a recipe collected under an older
    commit trained and benchmarked offline methods without a word."""
    from benchmark.datasets import collection_dynamics_differ

    return [f"{part['folder']} was {other}" for part in read_description(out)["parts"]
            if (other := collection_dynamics_differ(Path(out) / part["folder"],
                                                    CollectConfig(**part["collect"])))]


def check_recipe(out: Path, recipe: str) -> None:
    """ValueError, naming `out` as ``--data``, unless it is a finished collection of `recipe`
    (``paper001`` / ``paper004``): the benchmarks check this before writing anything, where a
    wrong folder ended in a FileNotFoundError or KeyError traceback."""
    if not is_recipe_dir(out):
        raise ValueError(f"--data {out} is not an `insertbench dataset recipe` folder "
                         f"(no {RECIPE_JSON})")
    recorded = read_description(out).get("recipe")
    if recorded != recipe:
        raise ValueError(f"--data {out} holds the {recorded} recipe, not {recipe}'s")
    missing = missing_parts(out)
    if missing:
        raise ValueError(unfinished_message(out, missing))
    otherwise = parts_made_otherwise(out)
    if otherwise:
        raise ValueError(f"--data {out}: {otherwise[0]}" + (f" (and {len(otherwise) - 1} more "
                         "parts)" if len(otherwise) > 1 else "") + "; collect the recipe again "
                         "into a new --data")


def load_recipe(out: Path) -> dict[str, Any]:
    """All parts of a collected recipe as one Dataset with ``task_id`` and ``is_demo``;
    ValueError for an unfinished collection."""
    from benchmark.train import dataset_from_minari

    out = Path(out).resolve()  # Minari's root must be absolute
    description = read_description(out)
    if not description["parts"]:  # an IndexError (diff31)
        raise ValueError(f"{out / RECIPE_JSON} lists no parts (a damaged file?)")
    missing = missing_parts(out)
    if missing:  # Minari's own error spoke of download=True
        raise ValueError(unfinished_message(out, missing))
    datasets = []
    for part in description["parts"]:
        try:
            data = dict(dataset_from_minari(load_unaltered(
                CollectConfig(**part["collect"]), out / part["folder"], "dataset recipe")))
        except (OSError, KeyError, json.JSONDecodeError) as err:  # h5py's, Minari's: no file
            raise ValueError(f"{out / part['folder']} holds a Minari dataset that is not "
                             f"readable (damaged? {err}): rerunning the `insertbench dataset "
                             "recipe` that wrote it rebuilds it from its episode files") from None
        rows = len(data["action"])
        if "tcp_pose" in data["obs"]:
            data["socket_offset_m"] = socket_offsets(data)
        data["task_id"] = np.full(rows, part["task_id"], dtype=np.int64)
        data["is_demo"] = np.full(rows, part["is_demo"], dtype=bool)
        datasets.append(data)
    merged: dict[str, Any] = {}
    for key, value in datasets[0].items():
        if isinstance(value, dict):
            merged[key] = {k: np.concatenate([d[key][k] for d in datasets]) for k in value}
        else:
            merged[key] = np.concatenate([d[key] for d in datasets])
    return merged


def unfinished_message(out: Path, missing: list[str]) -> str:
    """One line for a recipe folder whose collection was interrupted, or gave up on a part
    (then "rerun it to finish" looped: diff21)."""
    gave_up = [name for name in missing if (Path(out) / name / GAVE_UP_TXT).is_file()]
    if gave_up:
        why = (Path(out) / gave_up[0] / GAVE_UP_TXT).read_text().split(";")[0].strip()
        return (f"{out} is an `insertbench dataset recipe` collection that gave up on part "
                f"{gave_up[0]} ({why}); {RECIPE_GAVE_UP_ADVICE}")
    return (f"{out} is an unfinished `insertbench dataset recipe` collection ({len(missing)} "
            f"parts not written, or written before images were stored losslessly, e.g. "
            f"{missing[0]}); rerun the command that made it to finish")


def socket_offsets(data: dict[str, Any]) -> np.ndarray:
    """Seated TCP position minus the row's TCP position, in the episode-start frame [m] (N, 3),
    for rows of successful episodes (NaN elsewhere): the socket position relative to the plug,
    as paper 001's calibration gives it on the training connectors (the Localize label).

    Rows are consecutive steps of episodes ending in ``terminated`` or ``truncated``; a
    successful episode's last ``next_obs`` is the seated pose."""
    offsets = np.full((len(data["action"]), 3), np.nan)
    ends = np.flatnonzero(np.asarray(data["terminated"]) | np.asarray(data["truncated"]))
    start = 0
    for end in ends:
        if data["is_success"][end]:
            seated = data["next_obs"]["tcp_pose"][end, :3].astype(np.float64)
            offsets[start : end + 1] = seated - data["obs"]["tcp_pose"][start : end + 1, :3]
        start = end + 1
    return offsets


def recipe_version(out: Path) -> str:
    """The task version ("v0" to "v3") a collected recipe was recorded on."""
    description = read_description(out)
    versions = {p["collect"]["task_id"].rsplit("-", 1)[1] for p in description["parts"]}
    if len(versions) != 1:
        raise ValueError(f"{out} mixes task versions {sorted(versions)}")
    return versions.pop()


def recipe_connectors(out: Path) -> list[str]:
    """Connector name of each task_id of a collected recipe (index = task_id)."""
    description = read_description(out)
    names: dict[int, str] = {p["task_id"]: p["connector"] for p in description["parts"]}
    return [names[i] for i in sorted(names)]
