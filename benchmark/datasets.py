"""Offline datasets from the P-controller, written as Minari datasets (papers 001-004).

Paper 001 (section IV) collects its offline data with a predefined policy moving to the socket,
executing a random action instead with probability 0.2, in trajectories of at most 20 steps
that end early on success, with sparse rewards. Papers 002/003 start from 20 successful
demonstrations. `collect` does both: the expert is paper 000's P-controller
(`envs.p_controller`, through `envs.p_controller` so families work too), each action is
replaced by a uniform random one with probability `noise`, and `demos=True` keeps only
successful episodes until `episodes` are kept.

Resumable and deterministic: attempt i is seeded from (seed, i) alone and written atomically to
`<out>/episodes/attempt_<i>.npz` as soon as it ends, so a rerun skips finished attempts and the
final dataset is the same whether or not the collection was interrupted. The Minari dataset is
then (re)built from those files under `<out>/minari` (MINARI_DATASETS_PATH), without network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.cells import MAX_EVAL_EPISODES
from benchmark.folder_lock import run_lock
from envs.json_files import write_json
from envs.task_options import MAX_EPISODE_STEPS, check_int, check_range

#: Numeric `info` entries kept per step (T + 1 values: the reset's and every step's).
INFO_KEYS = ("is_success", "insertion_depth_mm", "distance_to_goal_mm", "max_force_n")
#: ... and those kept where the task gives them: a NIST board's `part_success` (a sequence's
#: rewarded hand-over steps had `is_success` 0 and nothing else to tell them by; data20).
OPTIONAL_INFO_KEYS = ("part_success",)


#: Minari's dataset ID form (minari's DATASET_ID_RE) with the version required: (ns/)name-vN.
_MINARI_ID = re.compile(r"(?:[-\w][-\w/]*[-\w]+/)?[-\w]+?-v\d+")


@dataclass(frozen=True)
class CollectConfig:
    """What to collect. Two collections with equal configs produce identical datasets.

    task_id: a registered InsertBench ID; episodes: episodes to keep; noise: probability of a
    random action per step; demos: keep only successful episodes; max_steps: steps per episode
    (paper 001: 20); seed: base seed; env_kwargs: passed to `gym.make`; dataset_id: Minari ID
    (default derived from the task); max_attempts_per_demo: give up on `demos` after this many
    attempts per kept episode.
    """

    task_id: str
    episodes: int
    noise: float = 0.2
    demos: bool = False
    max_steps: int = 20
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset_id: str | None = None
    max_attempts_per_demo: int = 20

    def __post_init__(self) -> None:
        # Integers and a finite probability: episodes=nan collected nothing and 2.5 collected
        # 3, also from an edited collect_config.json (JSON reads NaN); a negative seed failed
        # in NumPy's seed sequences after the env was built.
        check_int("episodes", self.episodes, 1, MAX_EVAL_EPISODES)  # 10^11 ran, 130,000 h
        check_range("noise", self.noise, 0.0, 1.0, " (a probability)")
        check_int("max_steps", self.max_steps, 1, MAX_EPISODE_STEPS)  # 10^11 was taken
        check_int("seed", self.seed, 0)
        check_int("max_attempts_per_demo", self.max_attempts_per_demo, 1)
        if not isinstance(self.env_kwargs, dict):
            raise ValueError(f"env_kwargs must be a dict of gym.make kwargs, got "
                             f"{self.env_kwargs!r}")
        if self.dataset_id is not None and not _MINARI_ID.fullmatch(self.dataset_id):
            # Minari itself refuses a bad ID only when writing, after the whole collection
            # (one without "-vN" as a TypeError from int(None)).
            raise ValueError(f"dataset_id must look like namespace/name-v0 (Minari's "
                             f"(namespace/)name-vN), got {self.dataset_id!r}")

    @property
    def minari_id(self) -> str:
        """The Minari dataset ID: `insertbench/<task>-<expert|demos>-v0` unless given."""
        if self.dataset_id:
            return self.dataset_id
        task = self.task_id.split("/")[-1].rsplit("-v", 1)[0].lower()
        return f"insertbench/{task}-{'demos' if self.demos else 'expert'}-v0"


@contextlib.contextmanager
def minari_root(path: Path) -> Iterator[None]:
    """Point Minari at a local dataset root for the duration of the block."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def attempt_seeds(seed: int, index: int) -> tuple[int, np.random.Generator]:
    """The environment seed and the action-noise generator of attempt `index`."""
    env_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    return env_seed, np.random.default_rng([seed, index, 1])


def run_episode(
    env: gym.Env,
    expert: Callable[[dict[str, np.ndarray]], np.ndarray],
    env_seed: int,
    rng: np.random.Generator,
    noise: float,
) -> dict[str, np.ndarray]:
    """One episode of the noisy expert, as flat arrays (observations `obs/<key>` have T + 1
    rows, actions/rewards/terminations/truncations T, infos `info/<key>` T + 1)."""
    obs, info = env.reset(seed=env_seed)
    observations = {k: [v] for k, v in obs.items()}
    info_keys = INFO_KEYS + tuple(k for k in OPTIONAL_INFO_KEYS if k in info)
    infos = {k: [float(info[k])] for k in info_keys}
    parts = [info.get("part")]
    actions, rewards, terminations, truncations = [], [], [], []
    space = env.action_space
    while True:
        action = expert(obs)
        # Both draws happen every step, so the noise pattern does not depend on the state.
        replace, random_action = rng.random() < noise, rng.uniform(-1.0, 1.0, space.shape)
        if replace:
            action = random_action.astype(space.dtype)
        obs, reward, terminated, truncated, info = env.step(action)
        for k, v in obs.items():
            observations[k].append(v)
        for k in info_keys:
            infos[k].append(float(info[k]))
        # The part this observation shows: after a board's hand-over, the next one.
        parts.append(info.get("next_part", info.get("part")))
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        if terminated or truncated:
            break
    if info.get("physics_error"):  # its reward and observation are stand-ins: no step to keep
        for rows in (*observations.values(), *infos.values(), parts, actions, rewards,
                     terminations, truncations):
            rows.pop()
        if not actions:  # one line, as a collection that gives up (an internal error: diff32)
            raise CollectionGaveUp(
                f"{env.spec.id if env.spec else 'the env'} blew up on the first step of the "
                f"episode at seed {env_seed} ({info['physics_error']}): no episode to record",
                "collect with other env kwargs (this attempt's seed is fixed: a rerun blows up "
                "again)")
        truncations[-1] = True
    episode = {f"obs/{k}": np.stack(v) for k, v in observations.items()}
    episode.update({f"info/{k}": np.asarray(v) for k, v in infos.items()})
    if "connector" in info:  # a family's member, drawn at reset: each step names it (bytes,
        # which Minari's HDF5 stores), or the domains of paper 001/004 could not be told apart
        episode["info/connector"] = np.full(len(actions) + 1, str(info["connector"]).encode())
    if parts[0] is not None:  # a NIST board's: which part each observation is of
        episode["info/part"] = np.asarray([str(p).encode() for p in parts])
    episode.update(
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, np.float64),
        terminations=np.asarray(terminations, bool),
        truncations=np.asarray(truncations, bool),
        success=np.asarray(bool(info["is_success"])),
        seed=np.asarray(env_seed),
    )
    return episode


def read_collect_config(out: Path) -> CollectConfig:
    """The settings of the collection written to `out` (its collect_config.json); ValueError
    naming the file when it is not one (damaged by a kill, or another file)."""
    path = Path(out) / "collect_config.json"
    try:
        return CollectConfig(**json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a collection's settings ({err}): collect again into "
                         "an empty --out") from None


#: Written once the collection's Minari dataset is complete (Minari writes its metadata.json
#: first, so that is no sign of it), naming how images are stored: as rendered. Minari
#: JPEG-encodes image observations of 32x32 and larger by default, and collections built that
#: way (before this file) had every such frame changed (mean 6 of 255 per pixel, up to 199):
#: they read as unfinished, and rerunning their command rebuilds them from the episode files,
#: losslessly.
BUILT_JSON = "minari_built.json"
#: Written where a --demos collection gave up: why, for every later reader of the folder.
GAVE_UP_TXT = "gave_up.txt"
#: Held by a collection for as long as it writes its folder (`benchmark.folder_lock`).
COLLECT_LOCK = "collect.lock"


class NotEnoughSpace(RuntimeError):
    """The disk of a collection's folder lacks the room to write an episode or build the
    dataset (h5py crashed the process on a full disk, exit 139; data20). The episodes kept so
    far stay: the same command goes on once there is room."""


#: The room building the Minari dataset takes: its arrays as they are in memory (the HDF5
#: file stores them uncompressed; the compressed episode files were 2.4x (pixels) to 6.6x
#: (state) smaller, and a check on their size let h5py crash on a full disk; data21) times this
#: margin, plus `BUILD_ROOM_PER_EPISODE` for each episode's HDF5 groups and metadata.
BUILD_ROOM_MARGIN = 1.25
BUILD_ROOM_PER_EPISODE = 64 * 1024  # [bytes] (measured ~30 KB per state episode)


def _array_bytes(value: Any) -> int:
    """Bytes of the arrays in `value` (an array, or dicts / lists / tuples of them)."""
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, list | tuple) and value and not np.isscalar(value[0]):
        return sum(_array_bytes(v) for v in value)
    return np.asarray(value).nbytes


def _check_room(folder: Path, needed: int, what: str) -> None:
    """NotEnoughSpace unless `folder`'s disk has `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NotEnoughSpace(f"{folder} has {free / 2**20:,.1f} MB free, {what} needs about "
                             f"{needed / 2**20:,.1f} MB: free some and run the command again "
                             "(the episodes kept so far stay)")


class CollectionGaveUp(RuntimeError):
    """The expert succeeded too rarely to fill a --demos collection (not a bad value: the
    same settings give up again, from the episodes already kept). `why`: what happened,
    without `insertbench dataset collect`'s advice (a recipe has none of its options)."""

    def __init__(self, why: str, advice: str) -> None:
        super().__init__(f"{why}; {advice}")
        self.why = why


def _built_marker(config: CollectConfig) -> dict[str, str]:
    return {"minari_id": config.minari_id, "images": "lossless"}


def _read_marker(out: Path) -> dict[str, Any]:
    """`BUILT_JSON` of the collection in `out` ({} where there is none, or a damaged one)."""
    try:
        marker = json.loads((Path(out) / BUILT_JSON).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return marker if isinstance(marker, dict) else {}


def finished(out: Path, config: CollectConfig) -> bool:
    """Whether the Minari dataset of the collection in `out` is completely written, images
    lossless (`BUILT_JSON`; its `data_sha256` is `unaltered`'s)."""
    marker = _read_marker(out)
    marker.pop("data_sha256", None)
    marker.pop("config_sha256", None)
    return marker == _built_marker(config)


def dataset_sha256(out: Path, config: CollectConfig) -> str:
    """SHA-256 of the Minari dataset's files (names and bytes) in `out`."""
    folder = Path(out).resolve() / "minari" / config.minari_id
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def config_sha256(config: CollectConfig) -> str:
    """SHA-256 of the collection's settings, as collect_config.json holds them."""
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()


def unaltered(out: Path, config: CollectConfig) -> bool:
    """Whether the finished dataset's files, and the settings read from collect_config.json,
    are as its build recorded them (a marker from before a hash was recorded: taken as they
    are). A NaN reward, a cut column or a flipped byte written into a dataset that still
    opened was kept by every rerun (data22); noise edited to 0 in the settings of a noisy
    collection passed it to BC as demonstrations, without the warning (data24)."""
    marker = _read_marker(out)
    recorded, settings = marker.get("data_sha256"), marker.get("config_sha256")
    return ((recorded is None or recorded == dataset_sha256(out, config))
            and (settings is None or settings == config_sha256(config)))


def read_finished_collection(out: Path) -> CollectConfig:
    """`read_collect_config`, and a ValueError saying how to finish a collection whose Minari
    dataset is not written yet (Minari's own error advised ``download=True``)."""
    config = read_collect_config(out)
    if finished(out, config):
        return config
    gave_up = Path(out) / GAVE_UP_TXT
    if gave_up.is_file():  # "rerun it to finish it" looped
        raise ValueError(f"{out} holds a collection that gave up: {gave_up.read_text().strip()}")
    raise ValueError(f"{out} holds an unfinished collection (no complete Minari dataset "
                     f"{config.minari_id} with lossless images yet): rerun the "
                     "`insertbench dataset collect` that wrote it to finish it")


def _check_config(out: Path, config: CollectConfig) -> None:
    """A rerun must continue the same collection; refuse to mix two configs in one folder.

    Only `episodes` may change: attempt k's seeds depend on k alone, so N episodes are the
    first N of any larger collection, and a rerun with more extends the folder (with fewer,
    its dataset is the first ones) exactly as one run of that size would collect."""
    path = out / "collect_config.json"
    wanted = json.loads(json.dumps(asdict(config)))
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            found = err
        if not isinstance(found, dict):  # a run killed while writing it, or another file
            raise ValueError(f"{path} is not a collection's settings ({found}); use another "
                             f"--out or delete {out}")
        differ = ", ".join(f"{k} {found.get(k)!r} (asked: {wanted.get(k)!r})"
                           for k in sorted({*found, *wanted})
                           if k != "episodes" and found.get(k) != wanted.get(k))
        if differ:
            raise ValueError(
                f"{out} holds a collection made with other settings: {differ}; use another "
                f"--out or delete it"
            )
        # Before anything changes: a rerun refused for other dynamics left a finished
        # collection "unfinished" (its built marker deleted below).
        _check_dynamics(out, config)
        if found != wanted:  # another episode count: the dataset built for the old one is not
            (out / BUILT_JSON).unlink(missing_ok=True)  # this one's (a killed extension kept it)
        if isinstance(found.get("episodes"), int) and found["episodes"] > config.episodes:
            warnings.warn(f"{out} held {found['episodes']} episodes: its dataset is rebuilt from "
                          f"the first {config.episodes} (the others stay in {out}/episodes; "
                          f"--episodes {found['episodes']} builds them in again)",
                          UserWarning, stacklevel=3)
    else:  # before the settings: refused, a collection of another task left them (diff24);
        # killed between the two, its dynamics.json does not count as other files (data19)
        _check_dynamics(out, config)
    write_json(path, wanted)  # whole: a killed run never leaves half the settings


#: The task version key (and suite commit) a collection's episodes were simulated under.
DYNAMICS_JSON = "dynamics.json"


def _check_dynamics(out: Path, config: CollectConfig) -> None:
    """Refuse to extend a collection whose episodes another simulator made (a changed timestep,
    clearance or gain changes the task's version key): a resume after such a change mixed
    two simulators' episodes in one dataset. A collection from before this file is not
    checked; its key is recorded from now on."""
    from benchmark.store import suite_commit

    other = collection_dynamics_differ(out, config)
    if other is not None:
        raise ValueError(f"{out} was {other}: collect into another --out")
    if not (out / DYNAMICS_JSON).exists() and (key := _dynamics_key(config)) is not None:
        write_json(out / DYNAMICS_JSON,
                   {"task_version_key": key, "expert": _expert(),
                    "commit": suite_commit(mark_dirty=True)})


def _expert() -> dict[str, Any]:
    """What the collection's scripted expert acts by beyond the task: paper 000's P-controller
    gains (`envs.insertion_env.P_CONTROLLER_KP`)."""
    from envs.insertion_env import P_CONTROLLER_KP

    return {"p_controller_kp": [float(k) for k in P_CONTROLLER_KP]}


def _dynamics_key(config: CollectConfig) -> str | None:
    """The task version key of the collection's task and kwargs (None: a task it cannot key,
    such as a test's stand-in)."""
    from envs.version_key import task_version_key_if_any

    return task_version_key_if_any(config.task_id, config.env_kwargs)


def _description(out: Path, config: CollectConfig) -> str:
    """The Minari dataset's description: the task and collection settings, and what its
    episodes were made under (`DYNAMICS_JSON`: task version key, expert gains, commit), which
    lay only beside the Minari tree: two experts' datasets of one task differed in nothing
    but their step count and `minari.combine_datasets` merged them."""
    text = f"{config.task_id}: {json.dumps(asdict(config))}"
    path = Path(out) / DYNAMICS_JSON
    if path.is_file():
        text += f"; made under {json.dumps(json.loads(path.read_text()), sort_keys=True)}"
    return text


def collection_dynamics_differ(out: Path, config: CollectConfig) -> str | None:
    """Why the collection in `out` was simulated or acted otherwise than this InsertBench would
    (None: the same, or not recorded): another task version key (a changed timestep,
    clearance or gain: its dynamics changed) or another expert (its P-controller gains, no part
    of the task: a resume under changed ones mixed two experts' episodes in one dataset);
    ValueError for a damaged record."""
    path = Path(out) / DYNAMICS_JSON
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text())
        found, expert = recorded.get("task_version_key"), recorded.get("expert")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise ValueError(f"{path} is damaged ({err}); use another --out") from None
    key = _dynamics_key(config)
    if key is not None and found != key:
        return (f"collected under task version key {str(found)[:12]}, where this InsertBench's "
                f"{config.task_id} is {key[:12]} (another task's, or its dynamics changed)")
    if expert is not None and expert != _expert():
        return f"collected by another expert ({expert}; now {_expert()})"
    return None


def collect_episodes(config: CollectConfig, out: Path, progress: bool = True) -> list[Path]:
    """Run (or resume) the collection; returns the files of the kept episodes, in order."""
    from tqdm import tqdm

    import envs  # noqa: F401  (registers the InsertBench IDs)
    from envs import p_controller

    out = Path(out)
    # The env first: a bad task ID or env kwarg must not leave a collect_config.json that
    # refuses the corrected rerun ("holds a collection made with other settings").
    # So is its expert: CartPole-v1, registered but no insertion env, left a folder behind.
    env = gym.make(config.task_id, max_episode_steps=config.max_steps, **config.env_kwargs)
    key = _dynamics_key(config)
    try:
        expert = p_controller(env)
        _check_config(out, config)
    except (TypeError, ValueError):
        env.close()
        raise
    episode_dir = out / "episodes"
    for folder in (episode_dir, out / "minari", out / "minari.building"):
        if folder.exists() and not folder.is_dir():  # FileExistsError, NotADirectoryError:
            env.close()  # internal errors, and `minari` looped with train's advice (data23)
            raise ValueError(f"{folder} is a file where the collection's folder belongs; "
                             "remove it, then run the command again")
    episode_dir.mkdir(exist_ok=True)
    kept: list[Path] = []
    attempts = 0
    limit = config.episodes * (config.max_attempts_per_demo if config.demos else 1)
    with tqdm(total=config.episodes, disable=not progress, desc=config.task_id) as bar:
        while len(kept) < config.episodes:
            if attempts >= limit:
                env.close()
                gave_up = CollectionGaveUp(
                    f"only {len(kept)} successful episodes in {attempts} attempts on "
                    f"{config.task_id}: the expert fails too often for --demos (noise "
                    f"{config.noise:g}, {config.max_steps} step"
                    f"{'' if config.max_steps == 1 else 's'} an episode)",
                    "collect into another --out with a lower --noise or more --max-steps")
                (out / GAVE_UP_TXT).write_text(f"{gave_up}\n")
                raise gave_up
            path = episode_dir / f"attempt_{attempts:06d}.npz"
            if path.exists():
                success = _read_episode(path, lambda stored: bool(stored["success"]))
            else:
                env_seed, rng = attempt_seeds(config.seed, attempts)
                episode = run_episode(env, expert, env_seed, rng, config.noise)
                # Which task and settings it is an episode of: another collection's, copied
                # in, is named (its seed alone is every collection's at the default --seed).
                episode["task_version_key"] = np.asarray(key or "")
                episode["noise"] = np.asarray(config.noise)
                episode["max_steps"] = np.asarray(config.max_steps)
                tmp = path.with_suffix(".tmp.npz")
                try:
                    np.savez_compressed(tmp, **episode)  # pixels: a third smaller
                except OSError as err:  # a full disk: "[Errno 28] ..." naming no folder, and
                    tmp.unlink(missing_ok=True)  # half a file left taking room (data20)
                    env.close()
                    raise NotEnoughSpace(f"{episode_dir}: writing an episode failed ({err}); "
                                         "free some room and run the command again (the "
                                         "episodes kept so far stay)") from None
                os.replace(tmp, path)  # atomic: a killed run never leaves half an episode
                success = bool(episode["success"])
            attempts += 1
            if success or not config.demos:
                kept.append(path)
                bar.update(1)
    env.close()
    return kept


def _read_episode(path: Path, read: Callable[[Any], Any]) -> Any:
    """`read` applied to the kept episode file `path` (an open npz); ValueError naming the file
    if it is damaged (it used to end a resumed run with a bare BadZipFile or KeyError, and a
    header declaring 10^13 rows in "MemoryError: Unable to allocate 72.8 TiB"; data22)."""
    try:
        with np.load(path) as stored:
            return read(stored)
    except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is damaged ({err}); delete it and rerun to collect that "
                         "episode again") from None


#: What an episode file records of its collection beside its seed (files from before
#: 2026-12-07 record none of it).
_COLLECTED_WITH = ("task_version_key", "noise", "max_steps")


def _check_ours(path: Path, episode: Any, config: CollectConfig,
                observation_space: gym.spaces.Dict, action_space: gym.spaces.Box,
                key: str | None, stored: dict[str, Any]) -> None:
    """ValueError unless the episode file `path` holds this collection's attempt: its seed the
    one `attempt_seeds` gives its attempt number, its observations the env's entries and
    shapes, and the task version key, noise and episode length it records (`stored`) the
    collection's (`key`, `config`). Another collection's file copied in was built into the
    dataset (under this one's task and seed), and a pixel one into a state collection broke
    every reader (data19); every collection at the default --seed shares the seeds, so only
    the task and settings tell them apart (diff24, diff25)."""
    attempt = int(path.stem.rsplit("_", 1)[-1])
    shapes = {k: tuple(np.shape(v))[1:] for k, v in episode.observations.items()}
    wanted = {k: space.shape for k, space in observation_space.spaces.items()}
    ours = {"task_version_key": key or "", "noise": config.noise, "max_steps": config.max_steps}
    if (episode.seed != attempt_seeds(config.seed, attempt)[0] or shapes != wanted
            or any(stored[k] != ours[k] for k in stored if k in ours
                   and not (k == "task_version_key" and (not key or not stored[k])))):
        raise ValueError(f"{path} is not an episode of this collection (its seed, its "
                         "observations, its task or its noise or episode length are another "
                         "collection's: copied in?); delete it and rerun to collect that "
                         "episode again")
    problem = _episode_problem(episode, action_space) or _recorded_problem(
        episode, observation_space, config.max_steps, stored.get("success"))
    if problem:  # an edited file was built as it was (data21): a 4-wide action broke train
        raise ValueError(f"{path} is damaged ({problem}); delete it and rerun to collect that "
                         "episode again")


def _episode_problem(episode: Any, action_space: gym.spaces.Box) -> str | None:
    """What is wrong with an episode's arrays (None: nothing): T actions of the space's shape,
    finite and within it; T finite rewards and T flags with the episode's one end at its last
    step; T + 1 observations and infos."""
    actions = np.asarray(episode.actions)
    steps = len(actions)
    columns = {"rewards": episode.rewards, "terminations": episode.terminations,
               "truncations": episode.truncations}
    lengths = {name: len(v) for name, v in columns.items() if len(v) != steps}
    lengths |= {f"obs/{k}": len(v) for k, v in episode.observations.items()
                if len(v) != steps + 1}
    lengths |= {f"info/{k}": len(v) for k, v in episode.infos.items() if len(v) != steps + 1}
    if steps == 0 or lengths:
        return f"{steps} actions, and {lengths or 'no step'} where T or T + 1 rows belong"
    if actions.shape[1:] != action_space.shape or actions.dtype.kind != "f":
        return f"actions of shape {actions.shape[1:]} and dtype {actions.dtype}"
    if not (np.all(np.isfinite(actions)) and np.all(actions >= action_space.low - 1e-6)
            and np.all(actions <= action_space.high + 1e-6)):
        return "actions not finite or outside the action space"
    rewards = np.asarray(episode.rewards)
    if rewards.dtype.kind not in "biuf" or not np.all(np.isfinite(rewards)):
        return "rewards not finite numbers"
    ends = np.asarray(episode.terminations, bool) | np.asarray(episode.truncations, bool)
    if not ends[-1] or ends[:-1].any():
        return "its end flags are not set at its last step alone"
    return None


def _recorded_problem(episode: Any, observation_space: gym.spaces.Dict, max_steps: int,
                      success: Any) -> str | None:
    """What is wrong with what an episode recorded beside its actions (None: nothing): each
    observation of its space's dtype, finite and within its bounds; finite infos; at most
    `max_steps` steps; its `success` the last `is_success`. Edited files were built into the
    dataset as they were: float64 poses, float images in [0, 1], a NaN wrench, an inf peak
    force, 25 steps of a 20-step collection, a flipped success (data22)."""
    for key, space in observation_space.spaces.items():
        rows = np.asarray(episode.observations[key])
        if rows.dtype != space.dtype:
            return f"obs/{key} of dtype {rows.dtype}, the observation space's {space.dtype}"
        if rows.dtype.kind == "f" and not np.all(np.isfinite(rows)):
            return f"obs/{key} not finite"
        if not (np.all(rows >= space.low) and np.all(rows <= space.high)):
            return f"obs/{key} outside the observation space"
    for key, rows in episode.infos.items():
        rows = np.asarray(rows)
        if rows.dtype.kind in "biuf" and not np.all(np.isfinite(rows)):
            return f"info/{key} not finite"
    if len(episode.actions) > max_steps:
        return f"{len(episode.actions)} steps, more than the collection's {max_steps}"
    if "is_success" in episode.infos and success is not None and \
            bool(success) != bool(episode.infos["is_success"][-1]):
        return f"success {bool(success)}, where its last step's is_success says otherwise"
    return None


def _env_spec(config: CollectConfig) -> gym.envs.registration.EnvSpec:
    """The collection's env as its registered spec with the collection's kwargs and episode
    length, so that `dataset.recover_environment()` builds it as `gym.make` does (the task's
    identity check and `envs.env_checker`); registered specs are plain data (JSON)."""
    registered = gym.spec(config.task_id)
    return replace(
        registered,
        kwargs={**registered.kwargs, **config.env_kwargs},
        max_episode_steps=config.max_steps,
    )


def build_dataset(config: CollectConfig, out: Path, episode_files: list[Path]):
    """Write the kept episodes as the Minari dataset `config.minari_id` under `<out>/minari`."""
    import minari
    from minari.data_collector import EpisodeBuffer

    import envs  # noqa: F401

    buffers = []
    for i, path in enumerate(episode_files):
        buffers.append(_read_episode(path, lambda ep, i=i: EpisodeBuffer(
            id=i,
            seed=int(ep["seed"]),
            observations={k[4:]: ep[k] for k in ep.files if k.startswith("obs/")},
            actions=ep["actions"],
            rewards=list(ep["rewards"]),
            terminations=list(ep["terminations"]),
            truncations=list(ep["truncations"]),
            infos={k[5:]: ep[k] for k in ep.files if k.startswith("info/")},
        )))
    env = gym.make(config.task_id, max_episode_steps=config.max_steps, **config.env_kwargs)
    key = _dynamics_key(config)
    for path, buffer in zip(episode_files, buffers, strict=True):
        stored = _read_episode(path, lambda ep: {k: ep[k].item() for k in (*_COLLECTED_WITH,
                                                                            "success")
                                                 if k in ep.files})
        _check_ours(path, buffer, config, env.observation_space, env.action_space, key,
                    stored)
    # The info entries every episode has: a family collection extended past this code's
    # `info/connector` holds episodes without it, and Minari needs one set of keys.
    common = set.intersection(*(set(b.infos) for b in buffers)) if buffers else set()
    # Sorted: a set's order followed PYTHONHASHSEED, and so did the bytes of the HDF5 file
    # (its content did not; data17).
    buffers = [replace(b, infos={k: b.infos[k] for k in sorted(common)}) for b in buffers]
    root = Path(out).resolve() / "minari"
    # Built beside the dataset, then moved in: built in place, a rebuild killed midway left a
    # dataset that minari.load_dataset read as 0 episodes, after deleting the good one.
    building = Path(out).resolve() / "minari.building"
    shutil.rmtree(building, ignore_errors=True)  # a killed build's, before the room is measured
    arrays = sum(_array_bytes([b.observations, b.actions, b.rewards, b.terminations,
                               b.truncations, b.infos]) for b in buffers)
    _check_room(Path(out), int(BUILD_ROOM_MARGIN * arrays
                               + BUILD_ROOM_PER_EPISODE * len(buffers)), "building the dataset")
    (out / BUILT_JSON).unlink(missing_ok=True)  # unfinished until the new one is in place
    with minari_root(building), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*author_email.*")
        minari.create_dataset_from_buffers(
            dataset_id=config.minari_id,
            buffer=buffers,
            env=_env_spec(config),
            eval_env=_env_spec(config),
            action_space=env.action_space,
            observation_space=env.observation_space,
            algorithm_name=(
                "scripted P-controller (paper 000 eq. 5)"
                + (", successful episodes only" if config.demos else "")
                + f", random action with probability {config.noise}"
            ),
            author="InsertBench",
            code_permalink="benchmark/datasets.py",
            description=_description(out, config),
            jpeg_encoding=False,  # agents must train on the images the env renders
        )
    env.close()
    target, old = root / config.minari_id, building / f"{config.minari_id}.old"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rename(old)
    (building / config.minari_id).rename(target)  # same file system: atomic
    for namespace in Path(config.minari_id).parents:  # Minari's namespace_metadata.json
        made, kept = building / namespace / "namespace_metadata.json", root / namespace
        if namespace != Path(".") and made.is_file() and not (kept / made.name).exists():
            made.rename(kept / made.name)
    shutil.rmtree(building)
    write_json(out / BUILT_JSON, _built_marker(config)
               | {"data_sha256": dataset_sha256(out, config),
                  "config_sha256": config_sha256(config)})
    return load(config, out)


def collect(config: CollectConfig, out: Path, progress: bool = True):
    """Collect (resuming if `out` holds a partial run) and write the Minari dataset; one
    collection at a time in `out` (`RunInProgress` for a second)."""
    with run_lock(Path(out), COLLECT_LOCK, "collection"):
        files = collect_episodes(config, Path(out), progress)
        # A finished collection's rerun (bench_offline --preset reruns every recipe) rebuilt
        # the dataset, and every reader meanwhile was refused it as "unfinished". It is read
        # whole first: a damaged one is built again, as the error of its readers advises, and
        # so is one whose files changed since.
        if finished(out, config) and unaltered(out, config):
            try:
                built = load(config, out)
                if built.total_episodes == len(files):
                    for _ in built.iterate_episodes():
                        pass
                    return built
            except Exception:  # noqa: BLE001 - h5py and Minari raise many kinds for damage
                pass
        return build_dataset(config, Path(out), files)


def load(config: CollectConfig, out: Path):
    """`minari.load_dataset` of a collection written to `out`."""
    import minari

    with minari_root(Path(out).resolve() / "minari"):
        return minari.load_dataset(config.minari_id)


def load_unaltered(config: CollectConfig, out: Path, rerun: str = "dataset collect"):
    """`load`, for a reader: ValueError when the dataset's files are not those its build
    recorded (`unaltered`), advising to rerun `insertbench {rerun}`, which rebuilds it from the
    episode files. Another collection's Minari dataset copied in was trained on under this
    one's settings and labels (a recipe's rollouts as paper 004's demonstrations; data23)."""
    if not unaltered(out, config):
        raise ValueError(f"{out}: its Minari dataset {config.minari_id} or its "
                         f"collect_config.json changed since it was built (their SHA-256 is not "
                         f"the one {BUILT_JSON} records): "
                         f"rerun the `insertbench {rerun}` that wrote it to rebuild it from its "
                         "episode files")
    return load(config, out)
