"""What the simulated and the real environment share about a task's kwargs, so they cannot drift.

- `check_options`: validates the kwargs both envs take; every error names the kwarg and its
  valid range (or choices). Ranges are physical: the plug must start out of the socket and
  within reach, noise must keep the plug in the gripper and the goal near the socket.
- `sample_start_offset_m`, `sample_goal_noise_m`: the seeded start offset and believed-goal
  noise, drawn in the same order from the env's generator on either side.
- `check_action`: shape, finiteness and range of a policy's action.
- `is_mated`: success is the plug between its contacts' mating depth and the bottom of its
  mating stroke; deeper is a plug through the socket's floor, not an insertion.
- `task_reward`: the reward by name from the quantities either env measures.

`envs.insertion_env` and `real.env` both use this module; it imports nothing from either.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from envs import rewards
from envs.connectors import MM, ConnectorSpec
from envs.controller import REFERENCE_MODES

ACTION_MODES = ("xyz", "pose")
OBS_MODES = ("state", "pixels", "state+pixels")
#: Origin of `tcp_pose`: the episode's start pose, or the nominal (offset-free) start pose.
OBS_FRAMES = ("start", "task")
REWARDS = ("sparse", "dense", "dense_printed", "goal_image")
CAMERAS = ("wrist", "side")
#: The keys `reset(options=...)` takes (families and the NIST board take theirs first).
RESET_OPTIONS = ("tcp_offset_mm",)

#: Largest believed-goal noise [mm] (paper 000 and 004 use +-1 mm).
GOAL_NOISE_MAX_MM = 20.0
#: Largest lateral start offset [mm] (paper 001 uses 10-20 mm).
INIT_OFFSET_MAX_MM = 30.0
#: Highest start above the seated pose [mm] (paper 000: 50 mm), within the arm's reach there.
START_HEIGHT_MAX_MM = 150.0
#: Largest grasp error [mm, degrees] that leaves the plug between the gripper's fingers.
GRASP_NOISE_MAX_MM = 5.0
GRASP_NOISE_MAX_DEG = 15.0
#: Friction scale factors outside this range are no longer a connector's materials.
FRICTION_SCALE_RANGE = (0.05, 5.0)
#: Largest policy step at action 1 [m, rad]; beyond it one step crosses the whole socket.
ACTION_SCALE_MAX_M = 0.02
ACTION_SCALE_MAX_RAD = 0.2
#: Policy rate [Hz] and physics step [s] ranges. The contact model is tuned for 0.5-2 ms (the
#: papers' impedance control runs at 1 kHz, ours at 500 Hz by default): its rigid contacts' time
#: constant is two steps, and at 4-5 ms a plug 1 mm off the socket axis (outside the 0.75 mm
#: capture window) mated on a fast push, with 145 um of penetration into 150-250 um clearances.
#: So no step above 2 ms.
CONTROL_HZ_RANGE = (1.0, 100.0)
TIMESTEP_RANGE_S = (1e-4, 0.002)
#: Most a simulated policy period (whole physics steps) may differ from 1 / control_hz; the
#: default 10 Hz is within 2.5% at every timestep, rates above 20 Hz need a fitting timestep.
CONTROL_PERIOD_TOLERANCE = 0.05
IMAGE_SIZE_RANGE = (8, 4096)
#: How far below the seated depth a plug can go before it meets the cavity's floor [mm]
#: (`ConnectorSpec.cavity_depth_mm` leaves 1 mm; pins stop it 0.5 mm below).
SEAT_OVERTRAVEL_MM = 1.0


@dataclass(frozen=True)
class TaskOptions:
    """The validated kwargs both environments take (units in the names)."""

    action_mode: str
    obs_mode: str
    reward: str
    goal_noise_mm: float
    init_offset_mm: tuple[float, float]
    image_shape: tuple[int, int, int]
    grayscale: bool
    start_height_mm: float
    action_scale_m: float
    action_scale_rad: float
    control_hz: float
    reference_mode: str


def check_options(
    connector: ConnectorSpec,
    *,
    action_mode: Any,
    obs_mode: Any,
    reward: Any,
    goal_noise_mm: Any,
    init_offset_mm: Any,
    image_size: Any,
    grayscale: Any,
    start_height_mm: Any,
    action_scale_m: Any,
    action_scale_rad: Any,
    control_hz: Any,
    reference_mode: Any,
) -> TaskOptions:
    """Validate the shared kwargs for `connector`; ValueError naming the kwarg otherwise."""
    check_choice("action_mode", action_mode, ACTION_MODES)
    check_choice("obs_mode", obs_mode, OBS_MODES)
    check_choice("reward", reward, REWARDS)
    check_choice("reference_mode", reference_mode, REFERENCE_MODES)
    check_bool("grayscale", grayscale)
    pins = (f" and its pins reach {connector.reach_mm:g} mm below its face"
            if connector.reach_mm else "")
    check_range(
        "start_height_mm",
        start_height_mm,
        connector.lowest_start_mm,
        START_HEIGHT_MAX_MM,
        f" (the plug must start out of the {connector.name} socket: its mating length is "
        f"{connector.mating_length_mm:g} mm{pins})",
    )
    lo, hi = check_pair("init_offset_mm", init_offset_mm, 0.0, INIT_OFFSET_MAX_MM)
    return TaskOptions(
        action_mode=action_mode,
        obs_mode=obs_mode,
        reward=reward,
        goal_noise_mm=check_range("goal_noise_mm", goal_noise_mm, 0.0, GOAL_NOISE_MAX_MM),
        init_offset_mm=(lo, hi),
        image_shape=(*check_image_size(image_size), 1 if grayscale else 3),
        grayscale=grayscale,
        start_height_mm=float(start_height_mm),
        action_scale_m=check_range(
            "action_scale_m", action_scale_m, 0.0, ACTION_SCALE_MAX_M, open_low=True
        ),
        action_scale_rad=check_range(
            "action_scale_rad", action_scale_rad, 0.0, ACTION_SCALE_MAX_RAD, open_low=True
        ),
        control_hz=check_range("control_hz", control_hz, *CONTROL_HZ_RANGE),
        reference_mode=reference_mode,
    )


def warn_past_reference_limits(env_id: str, gains: Any, action_mode: str, action_scale_m: float,
                               action_scale_rad: float) -> None:
    """Warn (at the env's maker) where an action of 1 asks more than the impedance reference
    may lead the TCP (`gains`: the task version's `ImpedanceGains`): the TCP moves or turns no
    further per step however large the action. Both engines (PyBullet said nothing: engines23)."""
    limit_m = gains.translation_limit_m
    if action_scale_m > limit_m:
        warnings.warn(
            f"action_scale_m={action_scale_m:g} exceeds {env_id}'s reference limit of "
            f"{limit_m:g} m: the TCP moves at most ~{limit_m * 1e3:g} mm per step however large "
            "the action (a later task version allows 0.02)", UserWarning, stacklevel=3)
    limit_rad = gains.rotation_limit_rad
    if action_mode == "pose" and action_scale_rad > limit_rad:  # as the position's (envs24)
        warnings.warn(
            f"action_scale_rad={action_scale_rad:g} exceeds {env_id}'s reference limit of "
            f"{limit_rad:g} rad: the TCP turns at most ~{limit_rad:g} rad per step however large "
            "the action", UserWarning, stacklevel=3)


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    if not any(isinstance(value, type(a)) and value == a for a in allowed):
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_range(
    name: str, value: Any, low: float, high: float, why: str = "", open_low: bool = False
) -> float:
    """`value` as a float in [low, high] ((low, high] with `open_low`)."""
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
    if isinstance(value, Real) and not isinstance(value, int | float | np.integer | np.floating) \
            or isinstance(value, np.floating) and np.finfo(value.dtype).bits > 64:
        # A Fraction or a long double passed the range check and was kept as given: object
        # arrays in the env's state, a spec `to_json` refused, a version key of its own (envs21)
        raise ValueError(f"{name} must be an int or a float in {interval}{why}, got {value!r} "
                         f"({type(value).__name__})")
    try:
        v = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int beyond a float's range
        v = math.nan
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number in {interval}{why}, got {value!r}")
    if isinstance(value, np.floating) and np.finfo(value.dtype).bits < 64:
        # A float32 sweep ending on a bound (np.float32(0.002) is 0.0020000000949...) means
        # the bound: compared in its own precision, then taken as the bound itself.
        rounded_low, rounded_high = value.dtype.type(low), value.dtype.type(high)
        if rounded_low <= value <= rounded_high:
            v = min(max(v, low), high)
    if v < low or v > high or (open_low and v == low):
        raise ValueError(f"{name} must be in {interval}{why}, got {v!r}")
    return v


def unknown_kwarg(owner: str, name: str, known: set[str]) -> TypeError:
    """The error for kwarg `name`, which `owner` (an env ID, "the cell's environment") does not
    take: with the closest of `known` and all of them."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TypeError(f"{owner} got an unknown kwarg {name!r}{hint} "
                     f"(known: {', '.join(sorted(known))})")


def control_steps(control_hz: float, timestep: float, step: str = "timestep") -> int:
    """Physics steps of `timestep` [s] per policy step at `control_hz` (both checked); ValueError
    naming control_hz if no whole number of steps comes within CONTROL_PERIOD_TOLERANCE of the
    period: 80 Hz at 0.005 s ran at 100 Hz without a word. `step` names the inner period in the
    message (the robot's is its servo period)."""
    exact = 1.0 / (control_hz * timestep)
    steps = max(1, round(exact))
    if abs(steps - exact) > CONTROL_PERIOD_TOLERANCE * exact:
        fits = sorted({1.0 / (n * timestep) for n in (math.floor(exact), math.ceil(exact)) if n})
        raise ValueError(
            f"control_hz must be a whole number of physics steps per policy step, within "
            f"{CONTROL_PERIOD_TOLERANCE:.0%}: {control_hz:g} Hz at {step} {timestep:g} s is "
            f"{exact:.2f} steps and would run at {1.0 / (steps * timestep):.4g} Hz; "
            f"{' or '.join(f'{f:.4g}' for f in fits)} Hz fit, or choose another {step}"
        )
    return steps


def check_workspace(workspace_mm: Any, init_offset_mm: tuple[float, float]) -> float | None:
    """SERL's safety box half-width [mm], or None (off); the box must hold every start offset."""
    if workspace_mm is None:
        return None
    if init_offset_mm[1] >= INIT_OFFSET_MAX_MM:  # no box can hold them: say why, not "(30, 30]"
        raise ValueError(
            f"workspace_mm needs every start offset inside the box, which is at most "
            f"{INIT_OFFSET_MAX_MM:g} mm: init_offset_mm's upper bound must be below "
            f"{INIT_OFFSET_MAX_MM:g} mm, got {init_offset_mm[1]:g}"
        )
    return check_range(
        "workspace_mm", workspace_mm, init_offset_mm[1], INIT_OFFSET_MAX_MM,
        " (the box must hold every start offset)", open_low=True,
    )


def check_start_height_for_all(connectors: Iterable[ConnectorSpec], env_kwargs: dict,
                               bound_mm: float | None = None) -> None:
    """A multi-connector env's ``start_height_mm`` kwarg against every connector it may build:
    they are built on first use, and one that refused the height failed a reset mid-run. With
    ``bound_mm`` (no connector's `lowest_start_mm` exceeds it), a valid height at or above it
    passes without a connector drawn (a procedural family's 100,000 took 30 s)."""
    if "start_height_mm" not in env_kwargs:
        return
    height = env_kwargs["start_height_mm"]
    if (bound_mm is not None and isinstance(height, int | float)
            and not isinstance(height, bool) and bound_mm <= height <= START_HEIGHT_MAX_MM):
        return
    highest = max(connectors, key=lambda c: c.lowest_start_mm)
    check_range("start_height_mm", env_kwargs["start_height_mm"], highest.lowest_start_mm,
                START_HEIGHT_MAX_MM, f" (every plug must start out of its socket: the "
                f"{highest.name}'s lowest start is {highest.lowest_start_mm:g} mm)")


def check_pair(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """`value` as (lo, hi) with low <= lo <= hi <= high."""
    try:
        if isinstance(value, Mapping | set | frozenset):  # its keys, in no stated order
            raise TypeError
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a pair (lo, hi) in [{low:g}, {high:g}], got {value!r}"
        ) from None
    lo = check_range(f"{name}[0]", lo, low, high)
    hi = check_range(f"{name}[1]", hi, low, high)
    if lo > hi:
        raise ValueError(f"{name} must satisfy lo <= hi, got {value!r}")
    return lo, hi


def check_names(name: str, value: Any, known: Any, what: str) -> tuple[str, ...]:
    """`value` as a non-empty tuple of distinct names in `known` (`what` says what they are);
    ValueError naming `name` otherwise. A list or tuple only: a string was read as its letters,
    a dict as its keys, and a set's order follows the string hash seed of each process."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list of {what}, got {value!r}")
    unknown = [v for v in value if not isinstance(v, str) or v not in known]
    if unknown or not value:
        raise ValueError(f"{name} must be a non-empty list of {what}; unknown: {unknown}; "
                         f"known: {sorted(known)}")
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ValueError(f"{name} names {repeated} more than once")
    return tuple(value)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]: numpy integers pass, bools and floats do not (True
    was 1 and 2.5 was cut or failed deep inside)."""
    if (isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low
            or (high is not None and value > high)):
        bound = f"in [{low:,}, {high:,}]" if high is not None else f">= {low:,}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


#: The longest episode a `max_episode_steps` kwarg may ask for: 28 hours at the 10 Hz policy rate.
MAX_EPISODE_STEPS = 1_000_000


def check_max_episode_steps(value: Any) -> int:
    """`gym.make`'s `max_episode_steps` kwarg (its TimeLimit takes True for 1 step)."""
    return check_int("max_episode_steps", value, 1, MAX_EPISODE_STEPS)


def check_time_limit(value: Any) -> int | None:
    """`max_episode_steps` as every entry path but a bare `gym.make` takes it: None (the
    task's own limit), -1 (no TimeLimit, as `gym.make` documents) or an integer in [1,
    1,000,000], as a Python int (Gymnasium's TimeLimit refuses NumPy integers)."""
    if value is None:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value == -1:
        return -1
    return check_max_episode_steps(value)


def check_cameras(value: Any) -> tuple[str, ...]:
    """`cameras`: a non-empty subset of `CAMERAS`, each named once (a repeated camera was
    rendered twice per step for one image under its name)."""
    if (isinstance(value, str) or not isinstance(value, list | tuple) or not value
            or any(c not in CAMERAS for c in value) or len(set(value)) < len(value)):
        raise ValueError(f"cameras must be a non-empty subset of {CAMERAS}, each named once, "
                         f"got {value!r}")
    return tuple(value)


def check_image_size(value: Any) -> tuple[int, int]:
    """`image_size` (pixels, square or (height, width)) as (height, width)."""
    low, high = IMAGE_SIZE_RANGE
    sizes = (value, value) if not isinstance(value, list | tuple) else tuple(value)
    if len(sizes) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and low <= v <= high
        for v in sizes
    ):
        raise ValueError(
            f"image_size must be an integer or a (height, width) pair of integers in "
            f"[{low}, {high}] pixels, got {value!r}"
        )
    return int(sizes[0]), int(sizes[1])


def sample_start_offset_m(
    rng: np.random.Generator, init_offset_mm: tuple[float, float]
) -> np.ndarray:
    """Lateral start offset [m] (x, y): uniform magnitude in `init_offset_mm`, uniform
    direction. Two draws from `rng`, always, so the stream does not depend on the range."""
    radius = rng.uniform(*init_offset_mm) * MM
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([radius * np.cos(angle), radius * np.sin(angle)])


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """A reset's `seed` as a Python int, or None; ValueError naming `name` otherwise. Numpy
    integers count (Gymnasium refused np.int64 with its own error, which the vector envs and
    the dm_env wrapper accepted); True does not (it seeded as 1)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"{name} must be None or an integer >= 0, got {seed!r}")
    return int(seed)


class EpisodeSeeds:
    """The seed a reset seeds the env's `np_random` with: the one given, or for an unseeded
    reset one drawn from a stream the last given seed started, which steps never touch. Steps
    draw their sensor noise from `np_random`: an unseeded reset that went on from it drew the
    next goal and start where the last episode's length had left it, so two policies met
    different episodes after one seed (envs24). A family's members get theirs the same way."""

    def __init__(self) -> None:
        self._stream: np.random.Generator | None = None

    def __call__(self, seed: int | None) -> int | None:
        if seed is None and self._stream is not None:
            return int(self._stream.integers(2**31 - 1))
        self._stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
        return seed


def reset_options(options: Any) -> dict:
    """A reset's `options` as a new dict ({} for None); TypeError for anything but a mapping
    (a string was read as its letters: "unknown reset option(s) ['a', 'b', 'c']")."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict or None, got {options!r}")
    return dict(options)


def requested_offset_mm(
    options: dict | None, workspace_mm: float | None = None, own: tuple[str, ...] = ()
) -> tuple[float, float] | None:
    """`options["tcp_offset_mm"]` as a checked (dx, dy) [mm], or None when not given; inside
    SERL's workspace box when the env has one (`workspace_mm`, half-width [mm]).
    ValueError for any other key but the env's `own` options (a family's ``connector``): a
    misspelt one (`tcp_offset`) used to be ignored, and the episode started from a random
    offset instead of the one asked for. Envs call it before a reset changes anything, so a
    refused option leaves the state as it was (the episode ends: `InsertionEnv.reset`)."""
    options = reset_options(options)
    takes = [*RESET_OPTIONS, *own]
    unknown = sorted(map(str, set(options) - set(takes)))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; this env's reset takes {takes}")
    if not options or "tcp_offset_mm" not in options:
        return None
    value = options["tcp_offset_mm"]
    limit = INIT_OFFSET_MAX_MM
    try:
        if isinstance(value, Mapping | set | frozenset):  # its keys, in no stated order
            raise TypeError
        dx, dy = value
    except (TypeError, ValueError):
        raise ValueError(
            f"options['tcp_offset_mm'] must be a pair (dx, dy) [mm], got {value!r}"
        ) from None
    dx = check_range("options['tcp_offset_mm'][0]", dx, -limit, limit)
    dy = check_range("options['tcp_offset_mm'][1]", dy, -limit, limit)
    if math.hypot(dx, dy) > limit:
        raise ValueError(
            f"options['tcp_offset_mm'] must be at most {limit:g} mm long, got {value!r}"
        )
    if workspace_mm is not None and max(abs(dx), abs(dy)) > workspace_mm:
        # Outside, the clipped reference yanked the arm ~12 mm into the box at the first step,
        # with a zero action.
        raise ValueError(
            f"options['tcp_offset_mm'] must lie in the workspace box (|dx|, |dy| <= "
            f"workspace_mm = {workspace_mm:g} mm), got {value!r}"
        )
    return dx, dy


def sample_goal_noise_m(rng: np.random.Generator, goal_noise_mm: float) -> np.ndarray:
    """Believed-goal error [m] (x, y, 0): uniform in +-`goal_noise_mm` on x and y."""
    return np.append(rng.uniform(-1, 1, 2) * goal_noise_mm * MM, 0.0)


def real_array(value: Any, dtype: Any) -> np.ndarray:
    """``value`` as an array of ``dtype``; TypeError or ValueError unless it holds real numbers
    (integers or floats). numpy would convert complex ones by dropping the imaginary part (with
    only a warning), bools to 0 and 1, and strings such as "1" to numbers."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"not real numbers: {value!r}")
    return array.astype(dtype, copy=False)


def check_action(action: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The action as float32 if it has `shape`, is finite and lies in [-1, 1]; ValueError
    saying which of these it is not otherwise."""
    try:
        a = real_array(action, np.float32)
    except (TypeError, ValueError):  # "could not convert string to float: 'abc'" named no action
        raise ValueError(f"action must be {shape[0]} real numbers, got {action!r}") from None
    if a.shape == shape and np.all(np.abs(a) <= 1.0 + 1e-6):
        return a  # the common case in one pass; NaN fails the comparison
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action contains NaN or inf: {a}; refused")
    raise ValueError(
        f"action {a} is outside the action space [-1, 1]; clip it or rescale your policy's output"
    )


def depth_in_socket_mm(face_mm: np.ndarray, connector: ConnectorSpec) -> float:
    """How far the plug's mating face is into the socket [mm], 0 when it is not over the
    opening: `face_mm` is the face's centre in the socket mouth's frame [mm] (x, y across the
    opening, z along the socket axis, out of the socket: -2 is 2 mm deep). Sim and real both
    measure depth with it."""
    inside = abs(face_mm[0]) < connector.width_mm / 2 and abs(face_mm[1]) < connector.height_mm / 2
    return max(0.0, -float(face_mm[2])) if inside else 0.0


def is_mated(depth_mm: float, connector: ConnectorSpec) -> bool:
    """The plug is seated within its mating stroke: at least `success_depth_mm` deep and no
    deeper than the cavity allows (`mating_length_mm` + SEAT_OVERTRAVEL_MM)."""
    return (
        connector.success_depth_mm
        <= depth_mm
        <= connector.mating_length_mm + SEAT_OVERTRAVEL_MM
    )


def task_reward(
    reward: str,
    inserted: bool,
    tcp_pos: np.ndarray,
    goal_pos: np.ndarray,
    press_n: float,
    image: Callable[[], np.ndarray],
    goal_image: np.ndarray | None,
    dense_form: str = "printed",
) -> float:
    """The reward `reward` (REWARDS): `tcp_pos`/`goal_pos` [m] in one frame, `press_n` the
    force pressing the plug along the socket axis [N], `image()` the first camera's view (only
    called for "goal_image"). `dense_form` is what "dense" means for the task's version
    ("printed" or "closeness", `envs.rewards.dense_reward`); "dense_printed" is always printed."""
    if reward == "sparse":
        return rewards.sparse_reward(inserted)
    if reward in ("dense", "dense_printed"):
        form = "printed" if reward == "dense_printed" else dense_form
        return rewards.dense_reward(tcp_pos, goal_pos, press_n, inserted, form=form)
    return rewards.goal_image_reward(image(), goal_image)


def plain_value(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists (tuples, lists and
    dicts walked; anything else kept)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return type(value)(plain_value(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    return value


class RefusesCopies:
    """Refuses `copy.deepcopy` and pickling with one TypeError saying why (`copy_refusal`),
    for an object that owns a process, thread, server or stream, which a copy would share or
    lose: it failed with the resource's own error ("cannot pickle 'select.poll' object"), or
    copied and then moved or disconnected the original."""

    copy_refusal = "this object cannot be copied or pickled"

    def __getstate__(self) -> None:
        raise TypeError(self.copy_refusal)

    def __deepcopy__(self, memo: dict) -> None:
        self.__getstate__()


class PlainSpec:
    """Keeps the `EnvSpec` that `gym.make` sets with its kwargs as plain Python values
    (`plain_value`): `gym.make(..., goal_noise_mm=np.float32(1))` or ``image_size=np.int64(32)``
    (a sweep over ``np.arange``) built, then `EnvSpec.to_json` (Minari's recorder) failed on the
    value, and ``init_offset_mm=np.array([0, 10])`` ended `run_episode`'s task version key in
    "can only convert an array of size 1". Put before `gym.Env` among the bases."""

    _plain_spec = None

    @property
    def spec(self):
        return self._plain_spec

    @spec.setter
    def spec(self, spec) -> None:
        if spec is not None:
            spec = dataclasses.replace(spec, kwargs=plain_value(dict(spec.kwargs)))
        self._plain_spec = spec
