"""Human interventions (HIL-SERL): a teleoperation device takes over the policy's action.

`InterventionWrapper` works on any InsertBench env, simulated or real: on each step it polls a
`Teleop`; when the human is acting, the human's action is executed instead of the policy's and
the transition records `info["intervened"] = True` with `info["action"]`, the action actually
executed (what a learner must store), and `info["policy_action"]`. Devices load their drivers
when opened, never at import time: `SpaceMouseTeleop` needs the optional `pyspacemouse`
package, `KeyboardTeleop` reads a terminal.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from envs.task_options import check_action, check_range


class Teleop(Protocol):
    """A human input device: `poll()` returns None while the human is not acting, else a
    6-D action [-1, 1]^6 (x, y, z, rx, ry, rz in the TCP frame, the env's action units)."""

    def poll(self) -> np.ndarray | None: ...


#: The largest magnitude a device's action may have before it is a fault, not a command: the
#: protocol's full scale is 1, and a device may overshoot it (clipped); 1e6 is no human's.
MAX_HUMAN_ACTION = 10.0


def human_action(human: np.ndarray, space: gym.spaces.Box) -> np.ndarray:
    """A device's 6-D action cut to the env's action size (the translation for "xyz" tasks)
    and clipped to its action space. ValueError for anything but 6 finite numbers of magnitude
    at most `MAX_HUMAN_ACTION`: a device fault is refused, not clipped into a command (inf, or
    1e30, became a full-speed step stored as a demonstration)."""
    try:
        values = np.asarray(human, dtype=np.float32)
    except (TypeError, ValueError):
        values = None
    if values is None or values.shape != (6,) or not np.all(np.isfinite(values)) \
            or np.max(np.abs(values)) > MAX_HUMAN_ACTION:
        raise ValueError(f"the teleop device sent {human!r}; a human action is 6 finite "
                         f"numbers (x, y, z, rx, ry, rz) of magnitude at most "
                         f"{MAX_HUMAN_ACTION:g}; refused, nothing executed")
    return np.clip(values[: space.shape[0]], space.low, space.high)


def check_teleop(teleop: Any) -> Teleop:
    """`teleop` if it has a `poll()` method; TypeError now rather than at the first step."""
    if not callable(getattr(teleop, "poll", None)):
        raise TypeError(f"teleop must be a device with a poll() method, got {teleop!r}")
    return teleop


class TeleopHook:
    """A device as the runner's intervention hook (``benchmark.train``'s ``intervene``, what
    ``insertbench train --teleop`` passes): ``hook(obs, policy_action)`` is the human's action
    when they act, else None. Same semantics as `InterventionWrapper`, which suits an env that
    other code steps; the hook suits a runner that records the executed action itself."""

    def __init__(self, teleop: Teleop, action_space: gym.spaces.Box) -> None:
        self.teleop = check_teleop(teleop)
        self.action_space = action_space

    def __call__(self, obs: Any, policy_action: np.ndarray) -> np.ndarray | None:
        human = self.teleop.poll()
        return None if human is None else human_action(human, self.action_space)


def open_teleop(name: str) -> Teleop:
    """The device called ``name`` ("spacemouse" or "keyboard"), opened."""
    devices = {"spacemouse": SpaceMouseTeleop, "keyboard": KeyboardTeleop}
    if name not in devices:
        raise ValueError(f"unknown teleop device {name!r}; choose one of {sorted(devices)}")
    return devices[name]()


class InterventionWrapper(gym.Wrapper):
    """Executes the human's action whenever `teleop.poll()` returns one; see the module doc.

    The 6-D human action goes through `human_action`.
    """

    def __init__(self, env: gym.Env, teleop: Teleop) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise TypeError(f"interventions need a Box action space, got {env.action_space}")
        self.teleop = check_teleop(teleop)
        self.interventions = 0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        info["intervened"] = False
        return obs, info

    def step(self, action):
        # Checked first: a policy's "abc" was numpy's "could not convert string to float".
        policy_action = check_action(action, self.env.action_space.shape)
        human = self.teleop.poll()
        if human is None:
            executed = policy_action
        else:
            executed = human_action(human, self.env.action_space)
            self.interventions += 1
        obs, reward, terminated, truncated, info = self.env.step(executed)
        info["intervened"] = human is not None
        info["action"] = executed
        info["policy_action"] = policy_action
        return obs, reward, terminated, truncated, info


class ScriptedTeleop:
    """Replays a fixed sequence of human inputs (None = hands off), then stays hands off.
    For tests and for replaying recorded interventions."""

    def __init__(self, inputs: Iterable[np.ndarray | None]) -> None:
        self._inputs = iter(list(inputs))

    def poll(self) -> np.ndarray | None:
        return next(self._inputs, None)


#: The SpaceMouse's axes to the TCP frame's, for an operator facing the robot base's +y
#: (`SpaceMouseTeleop`): x as the base's, y and z against the TCP's (which point the base's -y
#: and down), and so the turns about them.
SPACEMOUSE_SIGNS = (1.0, -1.0, -1.0, 1.0, -1.0, -1.0)


class SpaceMouseTeleop:
    """A 3Dconnexion SpaceMouse through `pyspacemouse` (pip install pyspacemouse; its 1.x API,
    module-level `open()` and `read()`, and 2.x's, `open()` returning the device).

    The human acts while any axis is beyond `deadzone` (of full scale, in [0, 1]) or a button
    is held; the device's axes (pyspacemouse's x, y, z, roll, pitch, yaw: x right, y away from
    the operator, z up) times `signs` are the action's (x, y, z, roll, pitch, yaw) in the TCP
    frame, scaled by `gain` (in (0, 10]) and clipped to [-1, 1]. A reading that is not finite
    or beyond 1.5 x full scale is a device fault (ValueError), never a command. The turns (pose
    mode) are not checked on a device: pyspacemouse's default axis convention is said to swap
    roll and pitch against the cap's axes and to turn yaw's sign, which signs cannot undo; try
    them on the cell, slowly, before intervening with them.

    The TCP frame of a tool pointing down is the base frame turned half a turn about x: its z
    points down into the socket, its y against the base's. The default `SPACEMOUSE_SIGNS` is
    for an operator facing the base's +y: the cap pulled up lifts the plug, pushed away moves
    it along the base's +y (the raw axes pressed a plug the operator lifted 20 mm toward the
    board; serl22). Another stance is another `signs` (each +1 or -1).
    """

    def __init__(self, deadzone: float = 0.05, gain: float = 1.0,
                 signs: Iterable[float] = SPACEMOUSE_SIGNS) -> None:
        # NaN or -1 made an idle device intervene every step with a zero action; 5 never.
        deadzone = check_range("deadzone", deadzone, 0.0, 1.0)
        self.gain = check_range("gain", gain, 0.0, 10.0, open_low=True)
        values = list(signs)
        self.signs = np.array(values, dtype=np.float64)
        if self.signs.shape != (6,) or not np.all(np.abs(self.signs) == 1.0):
            raise ValueError(f"signs must be six values of +1 or -1, got {values}")
        try:
            import pyspacemouse
        except ImportError as e:
            raise ImportError(
                "SpaceMouseTeleop needs the optional package pyspacemouse "
                "(pip install pyspacemouse) and the hidapi system library"
            ) from e
        try:
            opened = pyspacemouse.open()
        except (RuntimeError, OSError):  # 2.x raises where 1.x returned False
            opened = None
        if not opened:
            raise RuntimeError("no SpaceMouse found (is it plugged in, with udev permissions?)")
        # 2.x's open() returns the device, whose read() it is (the module has none); 1.x True.
        self._device = opened if callable(getattr(opened, "read", None)) else pyspacemouse
        self.deadzone = deadzone

    def poll(self) -> np.ndarray | None:
        s = self._device.read()
        axes = np.array([s.x, s.y, s.z, s.roll, s.pitch, s.yaw], dtype=np.float64)
        if not np.all(np.isfinite(axes)) or np.max(np.abs(axes)) > 1.5:
            raise ValueError(f"the SpaceMouse read axes {axes.tolist()}, beyond its full scale "
                             "of 1: a device fault; refused, nothing executed")
        if np.max(np.abs(axes)) < self.deadzone and not any(s.buttons):
            return None
        return np.clip(axes * self.signs * self.gain, -1.0, 1.0).astype(np.float32)


class KeyboardTeleop:
    """Keys in the terminal running the episode, TCP frame: w/s +-x, a/d +-y, r/f up/down
    (-z/+z), at `magnitude` of full scale. A key press is an intervention for that step only.
    Needs a TTY (sets it to cbreak mode; `close()` restores it)."""

    KEYS = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, -1), "f": (2, 1)}

    def __init__(self, magnitude: float = 0.5) -> None:
        import termios
        import tty

        # A negative one reversed every key; above 1 every press failed as the device's fault
        magnitude = check_range("magnitude", magnitude, 0.0, 1.0, " of full scale",
                                open_low=True)
        if not sys.stdin.isatty():
            raise RuntimeError("KeyboardTeleop needs an interactive terminal on stdin")
        self._fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self.magnitude = magnitude

    def poll(self) -> np.ndarray | None:
        action = np.zeros(6, dtype=np.float32)
        pressed = False
        # The descriptor, not the buffered sys.stdin: its read(1) took every waiting byte into
        # Python's buffer, where select no longer saw them, and those keys came out steps
        # later, with the next key pressed (serl20).
        while select.select([self._fd], [], [], 0.0)[0]:
            typed = os.read(self._fd, 1024)
            if not typed:  # end of file: the terminal went away (it spun here at 100% CPU)
                raise OSError("the keyboard teleop's terminal closed: no human can intervene")
            for key in typed.decode("utf-8", errors="ignore").lower():
                if key in self.KEYS:
                    axis, sign = self.KEYS[key]
                    action[axis] = sign * self.magnitude
                    pressed = True
        return action if pressed else None

    def close(self) -> None:
        import termios

        try:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        except termios.error:  # the terminal is gone: nothing left to restore
            pass
