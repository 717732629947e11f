"""The one-pass camera rig renders what a bare `mujoco.Renderer` renders, camera by camera."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs  # registers the tasks, selects headless GL
from envs.rendering import CameraRig, to_grayscale


@pytest.fixture(scope="module")
def usb_midway():
    env = gym.make("InsertBench/USB-v0", obs_mode="state+pixels", image_size=48)
    env.reset(seed=3)
    for _ in range(4):
        env.step(np.array([0.5, -0.3, -1.0], np.float32))
    yield env.unwrapped
    env.close()


def _bare_renderer_images(model, data, size, cameras):
    renderer = mujoco.Renderer(model, size, size)
    images = {}
    for cam in cameras:
        renderer.update_scene(data, camera=cam)
        images[cam] = renderer.render()
    renderer.close()
    return images


def test_one_pass_matches_bare_renderer(usb_midway):
    u = usb_midway
    expected = _bare_renderer_images(u.model, u.data, 48, ("wrist", "side"))
    for order in (("wrist", "side"), ("side", "wrist")):
        images = u.rig.render_all(u.data, order)
        for cam in order:
            assert images[cam].shape == (48, 48, 3) and images[cam].dtype == np.uint8
            # Bitwise: each camera fills the rig's image-sized buffer from its corner, as the
            # bare renderer's viewport does (tiles off the corner moved a few edge pixels).
            np.testing.assert_array_equal(images[cam], expected[cam], err_msg=f"{cam} {order}")
            assert images[cam].std() > 5  # a real picture, not a cleared buffer


def test_images_survive_the_next_pass(usb_midway):
    u = usb_midway
    first = u.rig.render_all(u.data, ("wrist", "side"))
    kept = {k: v.copy() for k, v in first.items()}
    scratch = mujoco.MjData(u.model)
    mujoco.mj_forward(u.model, scratch)  # the arm elsewhere: other pictures
    u.rig.render_all(scratch, ("wrist", "side"))
    for cam in kept:
        np.testing.assert_array_equal(first[cam], kept[cam])


def test_grayscale_rig_is_luma_of_rgb(usb_midway):
    u = usb_midway
    gray_rig = CameraRig(u.model, 32, 32, grayscale=True, cameras=("wrist", "side"))
    rgb_rig = CameraRig(u.model, 32, 32, grayscale=False, cameras=("wrist", "side"))
    gray, rgb = gray_rig.render_all(u.data, ("wrist", "side")), rgb_rig.render(u.data, "side")
    gray_rig.close()
    rgb_rig.close()
    assert gray["side"].shape == (32, 32, 1)
    np.testing.assert_array_equal(gray["side"], to_grayscale(rgb))


def test_rig_refuses_what_does_not_fit_or_exist(usb_midway):
    u = usb_midway
    with pytest.raises(ValueError, match="exceeds the offscreen buffer 480x640"):
        CameraRig(u.model, 481, 640, grayscale=False, cameras=("wrist",))
    with pytest.raises(ValueError, match="no camera named 'top'"):
        CameraRig(u.model, 32, 32, grayscale=False, cameras=("top",))
    with pytest.raises(ValueError, match="not in this rig"):
        u.rig.render_all(u.data, ("top",))


def _copy_randomisation(source: mujoco.MjModel, target: mujoco.MjModel) -> None:
    """The reset's grasp pose and friction draw, onto a model with other geom ids."""
    for i in range(target.ngeom):
        name = target.geom(i).name
        if name:
            target.geom_friction[i] = source.geom(name).friction
    plug_s, plug_t = source.body("plug").id, target.body("plug").id
    target.body_pos[plug_t], target.body_quat[plug_t] = (source.body_pos[plug_s],
                                                         source.body_quat[plug_s])


def test_merged_visual_meshes_leave_physics_bitwise_unchanged_and_look_the_same():
    """The env's model (boxes drawn as one mesh per body and colour) against the same cell
    compiled without merging: a P-controller insertion, contacts included, steps identically,
    and the images differ only along a few edges."""
    from envs.scene import build_spec

    env = gym.make("InsertBench/USB-v0", obs_mode="state+pixels", goal_noise_mm=0.5)
    u = env.unwrapped
    obs, _ = env.reset(seed=11)
    assert [u.model.geom(i).name for i in range(u.model.ngeom)
            if u.model.geom_type[i] == mujoco.mjtGeom.mjGEOM_MESH] == [
        "visual_socket_0", "visual_gripper_1", "visual_plug_2"]
    plain = build_spec(u.task.connector, u.scene_config, u.task.board_sockets).compile()
    assert plain.ngeom == u.model.ngeom - 3
    _copy_randomisation(u.model, plain)
    data = mujoco.MjData(plain)
    state_kind = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, state_kind))
    mujoco.mj_getState(u.model, u.data, state, state_kind)
    mujoco.mj_setState(plain, data, state, state_kind)
    controller = envs.p_controller(env)
    rig = CameraRig(plain, 64, 64, grayscale=False)
    contacts = 0
    try:
        for _ in range(40):
            obs, _, terminated, truncated, _ = env.step(controller(obs))
            data.ctrl[:], data.mocap_pos[:], data.mocap_quat[:] = (
                u.data.ctrl, u.data.mocap_pos, u.data.mocap_quat)
            mujoco.mj_step(plain, data, nstep=u.frame_skip)
            for field in ("qpos", "qvel", "qacc_warmstart"):
                np.testing.assert_array_equal(getattr(data, field), getattr(u.data, field))
            contacts += data.ncon
            if terminated or truncated:
                break
        assert contacts > 0
        boxes = rig.render_all(data, ("wrist", "side"))
        for cam in boxes:
            diff = np.abs(boxes[cam].astype(int) - obs[cam].astype(int)).max(axis=-1)
            assert np.mean(diff > 8) < 0.01 and np.mean(diff) < 1.0, cam
    finally:
        rig.close()
        env.close()


def test_frustum_culling_changes_no_pixel():
    """Geoms a camera cannot see are left out of its tile (the arm, mostly): the images are
    bitwise those of the same rig drawing everything, along insertions and in random arm poses
    where the arm is partly in view."""
    env = gym.make("InsertBench/USB-v1", obs_mode="pixels", init_offset_mm=(0.0, 5.0))
    u = env.unwrapped
    rig, cameras = u.rig, u.cameras
    rng = np.random.default_rng(0)
    controller = envs.p_controller(env)
    scratch = mujoco.MjData(u.model)

    def states():
        obs, _ = env.reset(seed=1)
        for _ in range(10):
            yield u.data
            obs, *_ = env.step(controller(obs))
        for _ in range(30):
            scratch.qpos[:] = u.data.qpos
            scratch.qpos[u._arm_qpos] = u._q_home + rng.normal(0.0, 0.6, 6)
            mujoco.mj_forward(u.model, scratch)
            yield scratch

    culled, partly = 0, 0
    arm = {u.model.body(f"link{k}").id for k in range(1, 7)}
    for data in states():
        unseen = rig.cull.unseen(data, cameras)
        culled += sum(len(ids) for ids in unseen.values())
        partly += any(0 < len(arm & set(u.model.geom_bodyid[ids])) < len(arm)
                      for ids in unseen.values())
        rig.culling = True
        kept = rig.render_all(data, cameras)
        rig.culling = False
        drawn = rig.render_all(data, cameras)
        for cam in cameras:
            np.testing.assert_array_equal(kept[cam], drawn[cam], err_msg=cam)
    assert culled > 100 and partly > 0  # the test did cull, the arm wholly and in part
    env.close()


def _stencil_bits(rig: CameraRig) -> int:
    from OpenGL import GL

    rig._bind()
    try:
        return int(GL.glGetIntegerv(GL.GL_STENCIL_BITS))
    finally:
        rig._unbind()


def test_rig_buffer_is_one_image_without_stencil_unless_a_material_reflects(usb_midway):
    """The rig's offscreen buffer is one image (llvmpipe clears a whole buffer fast, a scissored
    part by drawing a quad) and, without reflective materials, its depth has no stencil (then
    cleared at once, not around the stencil); a mirror needs MuJoCo's stencil and keeps it, and
    both render a bare renderer's pixels, the mirror's reflection included."""
    rig = usb_midway.rig
    assert (rig._context.offWidth, rig._context.offHeight) == (48, 48)
    assert _stencil_bits(rig) == 0
    mirror = mujoco.MjModel.from_xml_string("""
    <mujoco>
      <visual><quality shadowsize="0" offsamples="0"/></visual>
      <asset><material name="mirror" reflectance="0.6"/></asset>
      <worldbody>
        <light pos="0 0 2"/>
        <geom type="plane" size="0.12 0.12 0.1" material="mirror"/>
        <geom type="box" pos="0 0 0.25" size="0.1 0.1 0.1" rgba="1 0.2 0.2 1"/>
        <camera name="low" pos="0 -0.8 0.3" xyaxes="1 0 0 0 0.3 1"/>
      </worldbody>
    </mujoco>""")
    data = mujoco.MjData(mirror)
    mujoco.mj_forward(mirror, data)
    rig = CameraRig(mirror, 48, 48, grayscale=False)
    try:
        assert _stencil_bits(rig) > 0
        image = rig.render(data, "low")
    finally:
        rig.close()
    np.testing.assert_array_equal(image, _bare_renderer_images(mirror, data, 48, ("low",))["low"])


def test_no_culling_with_shadows_or_reflections(usb_midway):
    from envs.rendering import FrustumCull

    model = usb_midway.model
    cameras = {"wrist": model.camera("wrist").id}
    assert FrustumCull(model, mujoco.MjvOption(), cameras, 1.0).active
    shadowsize = model.vis.quality.shadowsize
    model.vis.quality.shadowsize = 1024
    try:
        cull = FrustumCull(model, mujoco.MjvOption(), cameras, 1.0)
        assert not cull.active and cull.unseen(usb_midway.data, ("wrist",)) == {}
    finally:
        model.vis.quality.shadowsize = shadowsize


def test_a_dropped_rig_leaves_the_next_ones_framebuffer_alone():
    """An env dropped without close() frees its GL objects in its own context: the next env's
    images are those of a fresh process' first env."""
    images, env = [], None
    for _ in range(2):
        made = gym.make("InsertBench/USB-v0", obs_mode="pixels", image_size=32)
        env = made  # the previous env is dropped here, after the new one made its context
        obs, _ = env.reset(seed=0)
        images.append(obs["side"])
    env.close()
    np.testing.assert_array_equal(images[0], images[1])


def test_llvmpipe_in_the_calling_thread_renders_the_same_pixels():
    """`envs` asks llvmpipe to rasterise in the calling thread unless the user chose a thread
    count; a process rasterising on two threads renders the same bytes."""
    import hashlib
    import os
    import subprocess
    import sys

    script = (
        "import hashlib, os, gymnasium as gym, envs\n"
        "env = gym.make('InsertBench/USB-v0', obs_mode='pixels')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(os.environ['LP_NUM_THREADS'],"
        " hashlib.sha1(obs['wrist'].tobytes() + obs['side'].tobytes()).hexdigest())\n"
    )
    outputs = []
    for threads in (None, "2"):
        environ = {k: v for k, v in os.environ.items() if k != "LP_NUM_THREADS"}
        if threads:
            environ["LP_NUM_THREADS"] = threads
        done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True,
                              text=True, timeout=120, check=True)
        outputs.append(done.stdout.split())
    (calling, first), (pool, second) = outputs
    assert (calling, pool) == ("0", "2") and first == second
    env = gym.make("InsertBench/USB-v0", obs_mode="pixels")
    obs, _ = env.reset(seed=0)
    env.close()
    assert hashlib.sha1(obs["wrist"].tobytes() + obs["side"].tobytes()).hexdigest() == first


def test_rigs_taking_turns_in_one_thread_each_render_their_own_pictures(usb_midway):
    """A rig skips making its context current only when it already is: rigs of two models
    (their GL objects carry the same names in their own contexts) rendering by turns each
    give a bare renderer's pictures of their own model."""
    u = usb_midway
    other = gym.make("InsertBench/DSub-v0", obs_mode="state+pixels", image_size=48)
    other.reset(seed=0)
    o = other.unwrapped
    cams = ("wrist", "side")
    try:
        expected = [_bare_renderer_images(w.model, w.data, 48, cams) for w in (u, o)]
        for _ in range(2):
            for w, reference in zip((u, o), expected, strict=True):
                images = w.rig.render_all(w.data, cams)
                for cam in cams:
                    np.testing.assert_array_equal(images[cam], reference[cam],
                                                  err_msg=f"{cam} {w.task.env_id}")
    finally:
        other.close()


def test_a_pixel_env_renders_and_closes_in_any_thread_one_at_a_time():
    """Its GL context stayed bound in the thread that built (and reset) it: every other thread
    got EGL_BAD_ACCESS on step, reset and close(), even after that thread had ended."""
    import threading

    made = {}

    def build():
        made["env"] = gym.make("InsertBench/USB-v1", obs_mode="pixels", image_size=16)
        made["obs"] = made["env"].reset(seed=0)[0]

    worker = threading.Thread(target=build)
    worker.start()
    worker.join()
    env = made["env"]
    obs, *_ = env.reset(seed=0)  # the same episode, rendered in this thread
    np.testing.assert_array_equal(obs["wrist"], made["obs"]["wrist"])
    rig = env.unwrapped.rig
    if rig._egl is not None:  # EGL: a context is bound in one thread at a time
        bound, release = threading.Event(), threading.Event()

        def hold():
            rig._egl.bind()
            bound.set()
            release.wait()
            rig._egl.unbind()

        holder = threading.Thread(target=hold)
        holder.start()
        bound.wait()
        with pytest.raises(RuntimeError, match="rendering in another thread"):
            env.step(np.zeros(3, np.float32))
        release.set()
        holder.join()
    env.step(np.zeros(3, np.float32))
    env.close()
    assert env.unwrapped.rig is None
