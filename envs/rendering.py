"""Offscreen camera rendering for observations, goal images and videos.

MuJoCo's default offscreen path spends its time on the 4096^2 shadow map and multisampling, not
on the scene; `envs.scene` turns both off in the model (`visual.quality`), which is what makes
pixel observations cheap. What is left is a fixed cost per render call (scene upload, a
pipeline flush and a read-back from the GPU or llvmpipe), nearly independent of the image size.
`CameraRig` therefore renders every camera of a step in one pass: the cameras are tiled
viewports of one offscreen buffer in one OpenGL context, and one `mjr_readPixels` brings all
images back into a buffer allocated once; `python -m benchmark.bench_env` prints frames/s beside
a bare `mujoco.Renderer`. (Building the geometry once per pass and only moving the camera
between viewports, with `mjv_updateCamera` + `mjv_makeLights`, measured no faster.)
"""

from __future__ import annotations

import mujoco
import numpy as np
from mujoco.rendering.classic import gl_context

#: ITU-R BT.601 luma weights for the grayscale images of paper 000.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GL_ERROR = (
    "MuJoCo could not create an OpenGL context. Without a display, set MUJOCO_GL=egl (or "
    "osmesa) before anything imports mujoco (importing envs first does that); on Debian, "
    "scripts/system-deps.sh installs the libraries."
)


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB to uint8 (H, W, 1) luma, rounded; also used for real camera images."""
    gray = rgb.astype(np.float32) @ _LUMA
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[..., None]


class CameraRig:
    """Renders the model's named cameras at one size, as uint8 (H, W, 3) or (H, W, 1).

    Every camera in `cameras` (default: all named cameras of the model) owns a fixed tile of
    the model's offscreen buffer (`visual.global.offwidth` x `offheight`), so all of them fit
    in one pass; the constructor raises ValueError when they do not.

    The OpenGL context is made current in the calling thread on every pass; a rig must be used
    by one thread at a time (EGL contexts are current in at most one thread).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        height: int,
        width: int,
        grayscale: bool,
        cameras: tuple[str, ...] | None = None,
    ) -> None:
        buffer_height, buffer_width = model.vis.global_.offheight, model.vis.global_.offwidth
        if height > buffer_height or width > buffer_width:
            raise ValueError(
                f"image size {height}x{width} exceeds the offscreen buffer "
                f"{buffer_height}x{buffer_width}"
            )
        if cameras is None:
            cameras = tuple(model.camera(i).name for i in range(model.ncam))
        columns = buffer_width // width
        rows = -(-len(cameras) // columns)
        if rows * height > buffer_height:
            raise ValueError(
                f"{len(cameras)} cameras of {height}x{width} do not fit in the offscreen buffer "
                f"{buffer_height}x{buffer_width}; enlarge visual.global.offwidth/offheight"
            )
        self.model = model
        self.height, self.width, self.grayscale = height, width, grayscale
        self._cameras: dict[str, mujoco.MjvCamera] = {}
        self._tiles: dict[str, tuple[mujoco.MjrRect, tuple[slice, slice]]] = {}
        for index, name in enumerate(cameras):
            camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if camera_id < 0:
                raise ValueError(f"the model has no camera named {name!r}")
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = camera_id
            self._cameras[name] = camera
            row, column = divmod(index, columns)
            x, y = column * width, row * height  # OpenGL: origin bottom-left
            # Rows come back bottom-up: the tile's image is its slice read upside down.
            rows_slice = slice(y + height - 1, y - 1 if y else None, -1)
            self._tiles[name] = (
                mujoco.MjrRect(x, y, width, height),
                (rows_slice, slice(x, x + width)),
            )
        used_width = min(len(cameras), columns) * width
        self._read_rect = mujoco.MjrRect(0, 0, used_width, rows * height)
        self._pixels = np.empty((rows * height, used_width, 3), np.uint8)
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        self._option = mujoco.MjvOption()
        self._gl = None
        self._context = None
        try:
            self._gl = gl_context.GLContext(buffer_width, buffer_height)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        except (mujoco.FatalError, RuntimeError, ImportError, AttributeError) as error:
            self.close()
            raise RuntimeError(_GL_ERROR) from error
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self._cameras)

    def render_all(self, data: mujoco.MjData, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """One image per camera of `cameras` (a subset of the rig's), all in one render pass.

        The images are new arrays (the rig's read-back buffer is reused by the next pass).
        """
        if self._context is None:
            raise RuntimeError("render_all cannot be called after close()")
        unknown = [c for c in cameras if c not in self._cameras]
        if unknown:
            raise ValueError(f"cameras {unknown} are not in this rig's {self.cameras}")
        self._gl.make_current()
        model, scene = self.model, self._scene
        for name in cameras:
            mujoco.mjv_updateScene(
                model, data, self._option, None, self._cameras[name], mujoco.mjtCatBit.mjCAT_ALL,
                scene,
            )
            mujoco.mjr_render(self._tiles[name][0], scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._read_rect, self._context)
        images = {}
        for name in cameras:
            tile = self._pixels[self._tiles[name][1]]
            images[name] = to_grayscale(tile) if self.grayscale else tile.copy()
        return images

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """One camera's image (a pass of its own)."""
        return self.render_all(data, (camera,))[camera]

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None
