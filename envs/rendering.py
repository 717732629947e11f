"""Offscreen camera rendering for observations, goal images and videos.

MuJoCo's default offscreen path spends its time on the 4096^2 shadow map and multisampling, not
on the scene; `envs.scene` turns both off in the model (`visual.quality`), which is what makes
pixel observations cheap (see benchmark/bench_env.py for the measured frame rates).
"""

from __future__ import annotations

import mujoco
import numpy as np

#: ITU-R BT.601 luma weights for the grayscale images of paper 000.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB to uint8 (H, W, 1) luma, rounded; also used for real camera images."""
    gray = rgb.astype(np.float32) @ _LUMA
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[..., None]


class CameraRig:
    """Renders the model's named cameras at one size, as uint8 (H, W, 3) or (H, W, 1)."""

    def __init__(self, model: mujoco.MjModel, height: int, width: int, grayscale: bool) -> None:
        if height > model.vis.global_.offheight or width > model.vis.global_.offwidth:
            raise ValueError(
                f"image size {height}x{width} exceeds the offscreen buffer "
                f"{model.vis.global_.offheight}x{model.vis.global_.offwidth}"
            )
        try:
            self.renderer = mujoco.Renderer(model, height, width)
        except mujoco.FatalError as error:
            raise RuntimeError(
                "MuJoCo could not create an OpenGL context. Without a display, set "
                "MUJOCO_GL=egl (or osmesa) before anything imports mujoco (importing envs first "
                "does that); on Debian, scripts/system-deps.sh installs the libraries."
            ) from error
        self.grayscale = grayscale

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        self.renderer.update_scene(data, camera=camera)
        rgb = self.renderer.render()
        return to_grayscale(rgb) if self.grayscale else rgb

    def render_all(self, data: mujoco.MjData, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {cam: self.render(data, cam) for cam in cameras}

    def close(self) -> None:
        self.renderer.close()
