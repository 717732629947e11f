"""Offscreen camera rendering for observations, goal images and videos.

MuJoCo's default offscreen path spends its time on the 4096^2 shadow map and multisampling, not
on the scene; `envs.scene` turns both off in the model (`visual.quality`). What is left, on a
software rasteriser (llvmpipe) as on a GPU, is a fixed cost per render call (scene upload, a
pipeline flush, a read-back) plus a cost per drawn geom (state changes and draw calls: about
7-20 us each on llvmpipe), nearly independent of the image size. Three things cut it:

- `CameraRig` renders the cameras of a step in one OpenGL context whose offscreen buffer is one
  image: each camera is drawn over the whole buffer and read back in turn, into a buffer
  allocated once. A whole buffer is what llvmpipe clears fast: MuJoCo clears the viewport
  under a scissor, which for a tile of a larger buffer llvmpipe does by drawing a quad; and
  the buffer's depth has no stencil (MuJoCo's would, for reflections), whose keeping made the
  depth clear a per-pixel read-modify-write. Together ~17% less CPU a pass than tiles of one
  buffer with one read-back (paired runs, 2 cameras 64x64), and every image is bitwise a bare
  `mujoco.Renderer`'s (tested), where a tile off the buffer's corner differed from it by 1 in
  up to ~1% of its pixels (the shading interpolated at other window coordinates).
- `merge_visual_boxes` (applied by `envs.scene.build_model`) draws each body's same-coloured
  boxes as one mesh: the socket's walls and the plug's shell are one draw call each. The boxes
  still collide; only their drawing moves to a hidden geom group.
- `FrustumCull` leaves out of each camera's image the geoms wholly outside its view (the arm,
  which neither camera sees: 8-9 of the 14 drawn geoms), pixel-exact (tested). Its test is one
  batched oriented-box-against-planes check for all cameras (~20-30 us a pass); an earlier
  per-camera test on bounding spheres culled less and cost about what it saved, and one batched
  sphere test (`geom_rbound`) is ~10 us cheaper but keeps ~7% of the culled geoms (~1 a pass).

`python -m benchmark.bench_env` prints frames/s beside a bare `mujoco.Renderer` on the same scene.

llvmpipe rasterises in the calling thread (`LP_NUM_THREADS=0`, set by `envs` unless the user
chose): its default pool of rasteriser threads per context costs more in hand-offs than it
saves on 64x64 images.

Where a pass of 2 cameras at 64x64 goes (USB-v0, thread CPU, llvmpipe, rig alone): per camera
~11 us fixed (scene update, MuJoCo's GL set-up, the clear, the flush, a 5 us read-back), then
per drawn geom the board 21 us, the table 15, the socket mesh 20, each spring capsule 12 (3 draw
calls), the fingers 7, the plug 10: ~3.5 us a draw call in MuJoCo and Mesa, the rest
rasterising; the frustum test ~25 us. In the env a pass costs ~30% more and the step's physics
and Python ~35 us more than without cameras: Mesa's code and the step's evict each other from
the caches (both back to their standalone cost when the rig is stubbed out). MuJoCo issues the
same GL calls whatever the rig does, so what is left to cut changes pixels:
`visual.quality.numquads` 1 instead of 4 (-14% a pass, 5,733 of 8,192 pixels change: the spot
light's shading across the board and table), numslices/numstacks 6/2 (-10%, the springs' edges).

Measured and not kept: drawing what the fixed side camera sees of the world-fixed geoms (board,
table, socket) once and composing it with the moving ones by depth each pass (bitwise exact; 12%
fewer instructions under callgrind, but no less CPU time natively: the extra depth read and the
numpy compositing cost what the skipped draws saved; measured again on tiles: -46 us of GL, +8 us
to read the depth, >= 20 us to compose 3-byte pixels in numpy); building the geometry once per pass
and only moving the camera between viewports (`mjv_updateCamera` + `mjv_makeLights`): no faster (a
scene update is ~1 us); reading RGBA (no per-pixel repacking in Mesa) and dropping alpha in numpy:
the strided copy costs more than the repacking saves; rendering on a thread of its own (its caches
kept warm): no less CPU, and worse pinned to the other core on a shared machine; `MESA_NO_ERROR`,
`LP_NATIVE_VECTOR_WIDTH=128`, OSMesa instead of EGL, a colour buffer without alpha: within noise;
24- or 16-bit depth: no faster, and other pixels; MuJoCo's side-by-side stereo (both cameras in one
`mjr_render`): its headlight would follow the average of the two cameras. Leaving out the
socket's two spring tabs (in the env each costs ~20-35 us a camera, ~8% of a 2-camera pass):
they are not hidden inside the housing but show in up to 6 (USB), 14 (D-sub) and 7 (Model-E)
pixels of a 64x64 frame over noisy P-controller episodes, so no occlusion rule leaves them out
pixel-exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import mujoco
import numpy as np
from mujoco.rendering.classic import gl_context

#: Geom group of geoms drawn by a merged mesh instead (MjvOption draws groups 0-2 by default).
MERGED_GROUP = 3
#: Corners of the unit box and its faces as corner quads (counter-clockwise seen from outside)
#: with their outward normals.
_BOX_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
_BOX_FACES = (
    ((0, 1, 3, 2), (-1, 0, 0)), ((4, 6, 7, 5), (1, 0, 0)), ((0, 4, 5, 1), (0, -1, 0)),
    ((2, 3, 7, 6), (0, 1, 0)), ((0, 2, 6, 4), (0, 0, -1)), ((1, 5, 7, 3), (0, 0, 1)),
)
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


def merge_visual_boxes(spec: mujoco.MjSpec) -> int:
    """Draw each body's opaque, untextured, same-coloured visible boxes as one mesh geom.

    The boxes keep colliding, with their mass, but move to geom group `MERGED_GROUP`, which
    cameras do not draw; the added mesh geom (named ``visual_<body>_<k>``) neither collides nor
    has mass, so the compiled physics is unchanged (tested). Flat face normals are given
    explicitly, so the mesh is shaded as the boxes were. Returns the number of meshes added.
    """
    added = 0
    for body in spec.bodies:  # the world body included
        by_colour: dict[tuple[float, ...], list] = {}
        for geom in body.geoms:
            if (geom.type == mujoco.mjtGeom.mjGEOM_BOX and geom.group == 0
                    and geom.rgba[3] == 1.0 and not geom.material
                    and geom.alt.type == mujoco.mjtOrientation.mjORIENTATION_QUAT
                    and np.isnan(geom.fromto[0])):
                by_colour.setdefault(tuple(float(c) for c in geom.rgba), []).append(geom)
        for colour, boxes in by_colour.items():
            if len(boxes) < 2:
                continue
            vertices, normals, faces, face_normals = [], [], [], []
            for box in boxes:
                rotation = np.zeros(9)
                quat = np.asarray(box.quat, float)
                mujoco.mju_quat2Mat(rotation, quat / np.linalg.norm(quat))
                rotation = rotation.reshape(3, 3)
                first = len(vertices)
                vertices.extend(rotation @ (c * np.asarray(box.size)) + np.asarray(box.pos)
                                for c in _BOX_CORNERS)
                for quad, normal in _BOX_FACES:
                    a, b, c, d = (first + i for i in quad)
                    faces += [a, b, c, a, c, d]
                    face_normals += [len(normals)] * 6
                    normals.append(rotation @ np.asarray(normal, float))
                box.group = MERGED_GROUP
            name = f"visual_{body.name or 'world'}_{added}"
            mesh = spec.add_mesh()
            mesh.name = name
            mesh.uservert = np.ravel(vertices).tolist()
            mesh.usernormal = np.ravel(normals).tolist()
            mesh.userface = faces
            mesh.userfacenormal = face_normals
            mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL  # boxes may overlap
            geom = body.add_geom()
            geom.name, geom.type, geom.meshname = name, mujoco.mjtGeom.mjGEOM_MESH, name
            geom.rgba = list(colour)
            geom.contype = geom.conaffinity = 0
            geom.mass = geom.density = 0.0
            added += 1
    return added

#: Geom group a frustum-culled geom spends its camera's scene update in (not drawn).
_CULLED_GROUP = 5
#: The frustum test's slack: the field of view widened by 2% and every plane moved out by
#: 1 mm, so float32 rasterising never lights a pixel of a geom the test calls unseen.
_CULL_WIDEN, _CULL_MARGIN_M = 1.02, 1e-3
_BOX_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)


class FrustumCull:
    """The drawn geoms a camera cannot see: their oriented bounding box (`geom_aabb` in the
    geom frame, posed by `geom_xpos`/`geom_xmat`) lies wholly outside one plane of the
    camera's view frustum (near plane and four sides, for an image of `aspect` = width/height).

    Leaving such geoms out changes no pixel while no drawn geom depends on another: no
    shadows (`visual.quality.shadowsize` 0) and no reflective materials; otherwise, and for
    cameras that are not plain perspective ones (orthographic, sensor intrinsics), nothing is
    culled (`active` False, or an empty answer).
    """

    def __init__(self, model: mujoco.MjModel, option: mujoco.MjvOption,
                 camera_ids: dict[str, int], aspect: float) -> None:
        groups = np.clip(model.geom_group, 0, len(option.geomgroup) - 1)
        bounded = (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE) & (
            model.geom_type != mujoco.mjtGeom.mjGEOM_HFIELD)
        self.drawn = np.flatnonzero(np.asarray(option.geomgroup)[groups].astype(bool) & bounded)
        self.active = (model.vis.quality.shadowsize == 0 and not np.any(model.mat_reflectance)
                       and self.drawn.size > 0)
        self._center = model.geom_aabb[self.drawn, :3]  # geom frame [m]
        self._half = model.geom_aabb[self.drawn, 3:]
        znear = model.vis.map.znear * model.stat.extent
        # Per camera: outward plane normals in the camera frame (x right, y up, looking along
        # -z) and offsets; a point q is outside a plane when n . q + offset > 0.
        names, ids, normals, offsets = [], [], [], []
        for name, cam in camera_ids.items():
            if (model.cam_projection[cam] != mujoco.mjtProjection.mjPROJ_PERSPECTIVE
                    or np.any(model.cam_sensorsize[cam])):
                continue
            tan_y = np.tan(np.deg2rad(model.cam_fovy[cam]) / 2) * _CULL_WIDEN
            tan_x = tan_y * aspect
            planes = np.array([[1.0, 0.0, tan_x], [-1.0, 0.0, tan_x], [0.0, 1.0, tan_y],
                               [0.0, -1.0, tan_y], [0.0, 0.0, 1.0]])
            names.append(name)
            ids.append(cam)
            normals.append(planes / np.linalg.norm(planes, axis=1, keepdims=True))
            offsets.append(np.array([0.0, 0.0, 0.0, 0.0, znear]) - _CULL_MARGIN_M)
        self._names, self._ids = names, np.array(ids, int)
        self._normals = np.array(normals).reshape(-1, 5, 3)
        self._offsets = np.array(offsets).reshape(-1, 5)

    def unseen(self, data: mujoco.MjData, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Geom ids each of `cameras` cannot see in this state (absent: none culled)."""
        if not self.active or not self._names:
            return {}
        # Every plane of every camera at once, in world coordinates: n_w = R_cam n.
        rotations = data.cam_xmat[self._ids].reshape(-1, 3, 3)
        normals = self._normals @ rotations.transpose(0, 2, 1)  # (cameras, 5, 3)
        offsets = self._offsets - (normals @ data.cam_xpos[self._ids][:, :, None])[:, :, 0]
        normals = normals.reshape(-1, 3)
        axes = data.geom_xmat[self.drawn].reshape(-1, 3, 3)  # columns: the geom's axes
        centers = data.geom_xpos[self.drawn] + (axes @ self._center[:, :, None])[:, :, 0]
        distance = centers @ normals.T + offsets.ravel()  # (geoms, planes)
        # How far each box reaches towards each plane: its half sizes on the projected axes.
        reach = (np.abs(normals @ axes) @ self._half[:, :, None])[:, :, 0]
        outside = (distance > reach).reshape(len(self.drawn), -1, 5).any(axis=2)
        return {name: self.drawn[outside[:, k]] for k, name in enumerate(self._names)
                if name in cameras}


class _EglBinding:
    """Binds and unbinds one EGL context in the calling thread through libEGL itself (~1.5 us
    a pair, where PyOpenGL's eglMakeCurrent alone costs ~5 us), so that a rig can leave its
    context unbound after every pass: a context bound in one thread cannot be bound in
    another (EGL_BAD_ACCESS), and a pixel env built or stepped in one thread failed in every
    other, `close()` included, even after the first thread had ended."""

    _BAD_ACCESS = 0x3002

    def __init__(self, display: Any, context: Any) -> None:
        import ctypes

        self._lib = ctypes.CDLL("libEGL.so.1")
        self._lib.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
        self._lib.eglMakeCurrent.restype = ctypes.c_uint
        self._lib.eglGetError.restype = ctypes.c_int
        self._display = ctypes.c_void_p(display.address)
        self._context = ctypes.c_void_p(context.address)

    @classmethod
    def of(cls, gl: Any) -> _EglBinding | None:
        """The binding of `gl` (a MuJoCo EGL context), or None for other backends (OSMesa
        binds a context in any thread)."""
        if type(gl).__module__ != "mujoco.egl":
            return None
        import mujoco.egl

        try:
            return cls(mujoco.egl.EGL_DISPLAY, gl._context)
        except (OSError, AttributeError):
            return None

    def bind(self) -> None:
        if not self._lib.eglMakeCurrent(self._display, None, None, self._context):
            error = self._lib.eglGetError()
            if error == self._BAD_ACCESS:
                raise RuntimeError("this env's cameras are rendering in another thread: use a "
                                   "pixel env from one thread at a time")
            raise RuntimeError(f"eglMakeCurrent failed (EGL error 0x{error:04x})")

    def unbind(self) -> None:
        self._lib.eglMakeCurrent(self._display, None, None, None)


def _drop_stencil(context: mujoco.MjrContext) -> int | None:
    """Attach to the offscreen buffer of `context` (current) a depth buffer of MuJoCo's depth
    format without its stencil, which only reflections use; returns the buffer's GL name, or
    None where nothing was swapped (a multisampled buffer, an unknown format)."""
    from OpenGL import GL

    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, context.offDepthStencil)
    mujoco_format = GL.glGetRenderbufferParameteriv(
        GL.GL_RENDERBUFFER, GL.GL_RENDERBUFFER_INTERNAL_FORMAT)
    depth_format = {GL.GL_DEPTH32F_STENCIL8: GL.GL_DEPTH_COMPONENT32F,
                    GL.GL_DEPTH24_STENCIL8: GL.GL_DEPTH_COMPONENT24}.get(int(mujoco_format))
    if depth_format is None or context.offSamples:
        return None
    depth = int(GL.glGenRenderbuffers(1))
    GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, depth)
    GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, depth_format, context.offWidth,
                             context.offHeight)
    GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, context.offFBO)
    GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_STENCIL_ATTACHMENT,
                                 GL.GL_RENDERBUFFER, 0)
    GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER,
                                 depth)
    if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) == GL.GL_FRAMEBUFFER_COMPLETE:
        return depth
    GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_STENCIL_ATTACHMENT,
                                 GL.GL_RENDERBUFFER, context.offDepthStencil)
    GL.glDeleteRenderbuffers(1, [depth])
    return None


class CameraRig:
    """Renders the model's named cameras at one size, as uint8 (H, W, 3) or (H, W, 1).

    The rig's offscreen buffer is exactly one image (`height` x `width`, at most the model's
    `visual.global.offwidth` x `offheight`, like `mujoco.Renderer`): each camera of a pass is
    drawn over all of it and read back in turn, into a buffer allocated once. So every image
    is bitwise what a bare `mujoco.Renderer` renders (tested). llvmpipe clears a whole buffer
    with a fast clear but a part of one (MuJoCo clears the viewport with a scissor) by drawing
    a quad, and clears the depth of a depth-stencil buffer pixel by pixel to keep the stencil:
    the buffer's depth therefore has no stencil (`_drop_stencil`), same format otherwise.

    The OpenGL context is bound in the calling thread for each pass and unbound after it, so
    any thread may render with the rig, one at a time (an EGL context is bound in at most one
    thread: a second thread rendering meanwhile gets a RuntimeError saying so).
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
        self.model = model
        self.height, self.width, self.grayscale = height, width, grayscale
        self._cameras: dict[str, mujoco.MjvCamera] = {}
        for name in cameras:
            camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if camera_id < 0:
                raise ValueError(f"the model has no camera named {name!r}")
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = camera_id
            self._cameras[name] = camera
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.empty((height, width, 3), np.uint8)  # rows bottom-up, as OpenGL's
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        self._option = mujoco.MjvOption()
        self.cull = FrustumCull(
            model, self._option, {n: c.fixedcamid for n, c in self._cameras.items()},
            width / height,
        )
        #: Leave out, camera by camera, the geoms outside its view (pixel-exact, `FrustumCull`).
        self.culling = True
        self._gl = None
        self._egl: _EglBinding | None = None
        self._context = None
        self._depth = None
        # MjrContext sizes its offscreen buffer from the model: a copy gives it the image's size.
        sized = copy.copy(model)
        sized.vis.global_.offheight, sized.vis.global_.offwidth = height, width
        try:
            self._gl = gl_context.GLContext(width, height)
            self._gl.make_current()
            self._context = mujoco.MjrContext(sized, mujoco.mjtFontScale.mjFONTSCALE_150)
        except (mujoco.FatalError, RuntimeError, ImportError, AttributeError) as error:
            self.close()
            raise RuntimeError(_GL_ERROR) from error
        if not np.any(model.mat_reflectance):  # reflections draw through the stencil
            self._depth = _drop_stencil(self._context)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._egl = _EglBinding.of(self._gl)
        self._unbind()  # whichever thread renders first may bind it

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self._cameras)

    def __getstate__(self) -> dict:
        # A GL context cannot be copied: a copy (copy.deepcopy or pickle of an env) opens one of
        # its own for the same model, image size and cameras.
        if self._context is None:
            raise TypeError("a closed camera rig cannot be copied (its env was closed)")
        return {"model": self.model, "height": self.height, "width": self.width,
                "grayscale": self.grayscale, "cameras": self.cameras, "culling": self.culling}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        culling = state.pop("culling")
        self.__init__(**state)
        self.culling = culling

    def render_all(self, data: mujoco.MjData, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """One image per camera of `cameras` (a subset of the rig's), in one pass.

        The images are new arrays (the rig's read-back buffer is reused by the next camera).
        """
        if self._context is None:
            raise RuntimeError("render_all cannot be called after close()")
        unknown = [c for c in cameras if c not in self._cameras]
        if unknown:
            raise ValueError(f"cameras {unknown} are not in this rig's {self.cameras}")
        self._bind()
        try:
            return self._render_bound(data, cameras)
        finally:
            self._unbind()

    def _render_bound(self, data: mujoco.MjData, cameras: tuple[str, ...]
                      ) -> dict[str, np.ndarray]:
        model, scene = self.model, self._scene
        unseen = self.cull.unseen(data, cameras) if self.culling else {}
        images = {}
        for name in cameras:
            hidden = unseen.get(name)
            if hidden is not None:
                groups = model.geom_group[hidden].copy()
                model.geom_group[hidden] = _CULLED_GROUP
            try:
                mujoco.mjv_updateScene(
                    model, data, self._option, None, self._cameras[name],
                    mujoco.mjtCatBit.mjCAT_ALL, scene,
                )
            finally:
                if hidden is not None:
                    model.geom_group[hidden] = groups
            mujoco.mjr_render(self._rect, scene, self._context)
            mujoco.mjr_readPixels(self._pixels, None, self._rect, self._context)
            image = self._pixels[::-1]
            images[name] = to_grayscale(image) if self.grayscale else image.copy()
        return images

    def _bind(self) -> None:
        """Bind the rig's context in this thread (unbound again after each pass, `_unbind`)."""
        if self._egl is not None:
            self._egl.bind()
        else:
            self._gl.make_current()

    def _unbind(self) -> None:
        if self._egl is not None:
            self._egl.unbind()

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """One camera's image (a pass of its own)."""
        return self.render_all(data, (camera,))[camera]

    def close(self) -> None:
        """Free the GL objects in this rig's own context (idempotent)."""
        if self._context is not None:
            self._bind()
            if self._depth is not None:
                from OpenGL import GL

                GL.glDeleteRenderbuffers(1, [self._depth])
                self._depth = None
            self._context.free()
            self._context = None
        if self._gl is not None:  # unbinds it where bound
            self._gl.free()
            self._gl = None

    def __del__(self) -> None:
        # An MjrContext left to the garbage collector frees its framebuffers by name in whatever
        # context is current then: another rig's, whose objects carry the same names.
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: GL may already be gone
            pass
