"""RealSense cameras through pyrealsense2: frames in, observation images out (sim sizes).

A `Camera` reads color frames from a `FrameSource` (anything with pyrealsense2's
`wait_for_frames(timeout_ms)`: a `pipeline` on hardware, a `syncer` behind a `software_device`
in tests), retries timeouts, aligns depth to color when the stream has depth, crops the center
to the observation's aspect ratio and area-averages down to the simulated image size, in RGB or
in the same BT.601 grayscale as `envs.rendering` (paper 000's 32x32 gray).
pyrealsense2 is imported when a camera is opened, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from envs.rendering import to_grayscale
from envs.task_options import RefusesCopies, check_int
from real.config import CameraConfig


def import_realsense():
    """The `pyrealsense2` module, or an ImportError that says what it needs: without the
    system's libusb it failed with "libusb-1.0.so.0: cannot open shared object file" alone."""
    try:
        import pyrealsense2
    except ImportError as err:
        raise ImportError(f"pyrealsense2 cannot be loaded ({err}); it needs the system's "
                          "libusb-1.0: run `bash scripts/system-deps.sh` (Debian/Ubuntu: "
                          "apt install libusb-1.0-0)") from err
    return pyrealsense2


class CameraError(RuntimeError):
    """A camera cannot give the observation its image (the robot env ends the episode)."""


class FrameTimeoutError(CameraError):
    """A camera delivered no new frame within its timeout and retries."""


class FrameSource(Protocol):
    def wait_for_frames(self, timeout_ms: int) -> Any: ...


class Camera(RefusesCopies):
    """One named camera: `read(height, width, grayscale)` returns a uint8 observation image.

    `before_wait`, if given, runs before each wait (the software device injects its frame
    there); `between_tries`, after a failed try when another follows (the robot env
    stops the arm there). `close` releases the source.
    """

    @property
    def copy_refusal(self) -> str:  # its stream: "cannot pickle 'pyrealsense2...syncer'"
        return (f"camera {self.name!r} cannot be copied or pickled: it owns a RealSense stream; "
                "open another")

    def __init__(
        self,
        name: str,
        source: FrameSource,
        *,
        timeout_ms: int = 100,
        retries: int = 3,
        before_wait: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
        describe: str = "",
    ) -> None:
        rs = import_realsense()

        self.name = name
        self.source = source
        # librealsense takes whole milliseconds; NaN had passed a `< 1` check
        self.timeout_ms = check_int("timeout_ms", timeout_ms, 1)
        self.retries = check_int("retries", retries, 1)
        self.before_wait = before_wait
        self.on_close = on_close
        self.describe = describe or name
        self._align = rs.align(rs.stream.color)
        self.timeouts = 0
        self.between_tries: Callable[[], None] | None = None
        self._last_frame_number: int | None = None

    def read_raw(self) -> np.ndarray:
        """The latest color frame at its native size, uint8 (H, W, 3) RGB. A frame delivered
        again (its frame number the last one's: a stalled stream re-sends it) or black in every
        pixel (a sensor not streaming) counts as no frame: they went through to the policy,
        and to goal images, with the arm moving on."""
        errors: list[str] = []
        for attempt in range(self.retries):
            if attempt and self.between_tries is not None:
                self.between_tries()
            if self.before_wait is not None:
                self.before_wait()
            try:
                frames = self.source.wait_for_frames(self.timeout_ms)
            except RuntimeError as e:  # pyrealsense2 raises RuntimeError on a timeout
                self.timeouts += 1
                errors.append(str(e))
                continue
            if frames.get_depth_frame():
                frames = self._align.process(frames)
            color = frames.get_color_frame()
            if not color:
                errors.append("frameset without a color frame")
                continue
            number = color.get_frame_number()
            if number == self._last_frame_number:
                errors.append(f"frame {number} delivered again")
                continue
            image = np.asanyarray(color.get_data())
            if not image.any():
                errors.append(f"frame {number} is black in every pixel")
                continue
            self._last_frame_number = number
            return image.copy()
        raise FrameTimeoutError(
            f"camera {self.name!r} ({self.describe}) delivered no new color frame in "
            f"{self.retries} tries of {self.timeout_ms} ms (last error: {errors[-1]}); check its "
            f"USB 3 cable and that no other process holds the camera"
        )

    def read(self, height: int, width: int, grayscale: bool) -> np.ndarray:
        """The observation image: uint8 (height, width, 3) or (height, width, 1)."""
        raw = self.read_raw()
        if raw.ndim != 3 or raw.shape[2] != 3 or raw.shape[0] < height or raw.shape[1] < width:
            raise CameraError(  # a 1x1 stream was blown up to the observation's size
                f"camera {self.name!r} ({self.describe}) delivers {raw.shape} frames, not RGB "
                f"frames of at least the observation's {height}x{width}; check its stream")
        if raw.dtype != np.uint8:  # floats in [0, 1] read as black, uint16 as white (real24)
            raise CameraError(f"camera {self.name!r} ({self.describe}) delivers {raw.dtype} "
                              "frames, not uint8 RGB (rgb8); check its stream")
        image = resize_area(center_crop(raw, height / width), height, width)
        return to_grayscale(image) if grayscale else image

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()


class CameraStartError(CameraError):
    """A RealSense camera could not be started (not connected, a wrong serial, a mode it does
    not stream)."""


def open_realsense(config: CameraConfig) -> Camera:
    """Start a RealSense color stream (the device with `config.serial`) as a Camera."""
    rs = import_realsense()

    pipeline = rs.pipeline()
    rs_config = rs.config()
    if config.serial is not None:
        rs_config.enable_device(config.serial)
    rs_config.enable_stream(
        rs.stream.color, config.width, config.height, rs.format.rgb8, config.fps
    )
    try:
        pipeline.start(rs_config)
    except RuntimeError as e:
        raise CameraStartError(
            f"could not start RealSense camera {config.name!r} (serial {config.serial}, "
            f"{config.width}x{config.height} @ {config.fps} Hz): {e}"
        ) from e
    return Camera(
        config.name,
        pipeline,
        timeout_ms=config.timeout_ms,
        retries=config.retries,
        on_close=pipeline.stop,
        describe=f"RealSense serial {config.serial}",
    )


def center_crop(image: np.ndarray, aspect: float) -> np.ndarray:
    """The largest centered crop with height / width = aspect."""
    h, w = image.shape[:2]
    if h / w > aspect:
        new_h = max(1, round(w * aspect))
        top = (h - new_h) // 2
        return image[top : top + new_h]
    new_w = max(1, round(h / aspect))
    left = (w - new_w) // 2
    return image[:, left : left + new_w]


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 (H, W, C) by area averaging (exact pixel-overlap weights), rounded."""
    rows = _area_weights(image.shape[0], height)
    cols = _area_weights(image.shape[1], width)
    tall = np.tensordot(rows, image.astype(np.float32), axes=(1, 0))  # (height, W, C)
    out = np.tensordot(tall, cols, axes=(1, 1)).transpose(0, 2, 1)  # (height, width, C)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix: each output pixel's share of every input pixel, rows sum to 1."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
