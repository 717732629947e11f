"""Goal images for `reward="goal_image"` on the cell: what each camera sees with the plug seated.

Paper 000's goal-image reward is the negative mean pixel L1 distance between a camera image and
a picture of the connector mated. In simulation the env renders that picture at the goal pose;
on the cell it has to be photographed. `record` seats the plug with paper 000's P-controller
towards the calibrated socket pose (exact goal, no start offset) and keeps each camera's image
from the first step at which the plug is mated and the TCP within `SEATED_TOLERANCE_MM` of the
calibrated seated pose. `save` and `load` keep the images in one `.npz` (no pickles) with the
task ID, so `insertbench real validate --goal-images` refuses another task's pictures; the
env refuses another image size or colour mode.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import gymnasium as gym
import numpy as np

#: How close [mm] the TCP must be to the calibrated seated pose for the picture (on the twin the
#: P-controller gets within ~0.05 mm; a plug that mates but stops short would look unseated).
SEATED_TOLERANCE_MM = 0.5
_TASK_KEY = "task"
#: Where the images were taken: "twin" (rendered) or "robot" (the cell's cameras). A twin's,
#: at the path the README's robot session reads, became a robot's reward and goal observations
#: without a word (real24).
_RECORDED_ON_KEY = "recorded_on"


def record(env: gym.Env, seed: int = 0) -> dict[str, np.ndarray]:
    """Seat the plug in `env` (a `real.make` env with cameras, `goal_noise_mm=0`,
    `init_offset_mm=(0, 0)` and a reward that does not end the episode at mating, e.g.
    "dense") and return {camera name: image as the env observes it}.

    Raises RuntimeError, after the episode, if the plug did not seat within the task's time
    limit or the safety layer tripped; the caller then recalibrates or checks the grasp."""
    from real.env import RealInsertionEnv, p_controller

    base = env.unwrapped
    if not isinstance(base, RealInsertionEnv) or not base.cameras:
        raise ValueError("goal images are recorded on a real.make env with cameras")
    if base.goal_noise_mm != 0 or base.init_offset_mm != (0.0, 0.0) or base.reward_type in (
        "sparse", "goal_image"
    ):
        raise ValueError("record goal images with goal_noise_mm=0, init_offset_mm=(0, 0) and a "
                         "reward that does not stop at mating (dense)")
    act = p_controller(env)
    obs, info = env.reset(seed=seed)
    closest, done = float("inf"), False
    while not (info["is_success"] and info["distance_to_goal_mm"] <= SEATED_TOLERANCE_MM):
        closest = min(closest, float(info["distance_to_goal_mm"]))
        if done and closest <= SEATED_TOLERANCE_MM:  # the pose was reached, the mating not
            raise RuntimeError(
                f"the plug came within {closest:.2f} mm of the calibrated seated pose but was "
                f"never read as mated"
                + (f" (continuity input {base.continuity_input} stayed open: check its wiring)"
                   if base.continuity_input is not None else "")
            )
        if done:
            raise RuntimeError(
                f"the P-controller did not seat the plug within the time limit (closest "
                f"{closest:.2f} mm to the calibrated seated pose, need <= "
                f"{SEATED_TOLERANCE_MM} mm): recalibrate, or check the grasp"
            )
        obs, _, terminated, truncated, info = env.step(act(obs))
        if info["safety_trip"]:
            raise RuntimeError(f"the safety layer tripped while seating the plug: "
                               f"{info['safety_message']}")
        done = terminated or truncated
    return {cam: np.array(obs[cam]) for cam in base.cameras}


def save(path: str | Path, task: str, images: dict[str, np.ndarray], *,
         on_twin: bool = False) -> Path:
    """Write `images` (camera name -> uint8 (H, W, C)), the task ID and whether the digital
    twin rendered them (`on_twin`) to `path` (.npz)."""
    for key in (_TASK_KEY, _RECORDED_ON_KEY):
        if key in images:
            raise ValueError(f"{key!r} is not a camera name")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **{_TASK_KEY: np.array(task),
                       _RECORDED_ON_KEY: np.array("twin" if on_twin else "robot")}, **images)
    return path


def load(path: str | Path, task: str, *, for_robot: bool = False) -> dict[str, np.ndarray]:
    """The goal images in `path` for `task`; ValueError for another task's file, one that is
    not a goal-image file, or, `for_robot`, one the digital twin rendered."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no goal-image file {path} (record one with `insertbench real "
                         f"record-goal`)")
    if not zipfile.is_zipfile(path):  # numpy's message for a JSON file advised allow_pickle
        raise ValueError(f"{path} is not a goal-image file (not an .npz archive; record one "
                         "with `insertbench real record-goal`)")
    try:  # a damaged archive is a BadZipFile (a cut-off file) or a zlib.error, when opened or
        # when an image is read (a bad CRC): both were internal errors naming no file
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz")
        with data:
            contents = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path} is not a goal-image file ({err})") from None
    recorded = contents.pop(_TASK_KEY, None)
    recorded_on = contents.pop(_RECORDED_ON_KEY, None)
    if recorded is None or not contents:
        raise ValueError(f"{path} is not a goal-image file (record one with `insertbench real "
                         f"record-goal`)")
    if str(recorded) != task:
        raise ValueError(f"{path} holds goal images of {recorded}, not {task}")
    if for_robot and recorded_on is not None and str(recorded_on) == "twin":
        raise ValueError(f"{path} holds goal images the digital twin rendered, not the cell's "
                         "cameras' pictures: record them on the robot (`insertbench real "
                         "record-goal --host ...`)")
    for cam, image in contents.items():
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"{path}: goal image {cam!r} is not a uint8 (H, W, C) image")
    return contents
