"""Cameras through pyrealsense2's software_device: sizes, grayscale, timeouts and retries."""

from __future__ import annotations

import numpy as np
import pytest

from envs.rendering import to_grayscale
from real.camera import FrameTimeoutError, center_crop, resize_area
from real.twin import DigitalTwinRobot, TwinCameraFeed
from tests.real.conftest import USB, assert_commands_safe


@pytest.fixture(scope="module")
def feed():
    twin = DigitalTwinRobot(USB)
    feed = TwinCameraFeed(twin, "wrist", width=160, height=120)
    yield feed
    feed.close()


def test_frames_arrive_through_the_library(feed):
    camera = feed.camera()
    raw = camera.read_raw()
    expected = feed.rig.render(feed.twin.sim.data, "wrist")
    assert raw.shape == (120, 160, 3) and raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, expected)  # what was injected is what came out


@pytest.mark.parametrize(
    ("size", "gray", "shape"),
    [((64, 64), False, (64, 64, 3)), ((32, 32), True, (32, 32, 1)), ((48, 64), False, (48, 64, 3))],
)
def test_observation_sizes_like_sim(feed, size, gray, shape):
    image = feed.camera().read(*size, grayscale=gray)
    assert image.shape == shape and image.dtype == np.uint8


@pytest.mark.parametrize("copy_camera", ["deepcopy", "pickle"])
def test_a_camera_refuses_to_be_copied_in_one_line(feed, copy_camera):
    """A twin env with cameras failed to copy with "cannot pickle 'pyrealsense2...syncer'"."""
    import copy
    import pickle

    camera = feed.camera()
    with pytest.raises(TypeError, match="camera 'wrist' cannot be copied or pickled"):
        copy.deepcopy(camera) if copy_camera == "deepcopy" else pickle.dumps(camera)


def test_timeouts_are_retried(feed):
    camera = feed.camera(timeout_ms=20, retries=3)
    feed.drop_next(2)
    assert camera.read(32, 32, grayscale=True).shape == (32, 32, 1)
    assert camera.timeouts == 2


def test_a_dead_camera_is_a_clear_error(feed):
    camera = feed.camera(timeout_ms=20, retries=3)
    feed.drop_next(3)
    with pytest.raises(FrameTimeoutError, match=r"camera 'wrist'.*3 tries of 20 ms.*USB"):
        camera.read_raw()


def test_resize_area_is_an_area_average():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    half = resize_area(image, 4, 6)
    blocks = image.reshape(4, 2, 6, 2, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(half, np.floor(blocks + 0.5).astype(np.uint8))
    flat = np.full((480, 640, 3), 77, np.uint8)
    assert np.all(resize_area(flat, 37, 53) == 77)


def test_center_crop_keeps_the_middle():
    image = np.arange(480 * 640).reshape(480, 640, 1)
    square = center_crop(image, 1.0)
    assert square.shape[:2] == (480, 480)
    assert square[0, 0, 0] == image[0, 80, 0]


def test_grayscale_is_the_sim_conversion():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_array_equal(to_grayscale(rgb)[..., 0], [[76, 150, 29]])


def test_a_camera_timeout_ends_the_episode_with_the_arm_stopped():
    """A step or reset whose camera delivered no frame raised FrameTimeoutError with the arm
    still servoing, and the next step ran on without a reset."""
    import real

    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist",),
                         obs_mode="state+pixels", image_size=32, start_height_mm=15.0)
    base = env.unwrapped
    twin = base.robot
    feed = base.camera_devices["wrist"].before_wait.__self__
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    for call in (lambda: env.step(policy(obs)), lambda: env.reset(seed=1)):
        feed.drop_next(3)
        with pytest.raises(FrameTimeoutError, match="wrist"):
            call()
        assert twin.commands[-1].name == "servoStop"
        with pytest.raises(RuntimeError, match="call reset"):
            env.step(policy(obs))
    obs, _ = env.reset(seed=2)  # a camera that delivers again: the next episode runs
    env.step(policy(obs))
    env.close()


def test_a_ctrl_c_while_a_camera_waits_ends_the_episode_with_the_arm_stopped(monkeypatch):
    """Only the motion was guarded: a Ctrl-C that landed in the camera read left the episode
    open, and the next step ran on with the interrupted step's observation lost (real22)."""
    import real

    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist",),
                         obs_mode="state+pixels", image_size=32, start_height_mm=15.0)
    base = env.unwrapped
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(base.camera_devices["wrist"], "read_raw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        env.step(policy(obs))
    assert base.robot.commands[-1].name == "servoStop"
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(policy(obs))
    # ... and at the end of a reset (real23)
    with pytest.raises(KeyboardInterrupt):
        env.reset(seed=1)
    assert base.robot.commands[-1].name == "servoStop"
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(policy(obs))
    env.close()


def test_a_reward_cameras_timeout_ends_the_episode_too():
    """With state observations and the goal-image reward, the reward read its camera itself:
    a timeout raised with the episode open (the next step ran on) and, with one try, the arm
    servoing."""
    import real
    from real.twin import DigitalTwinRobot, TwinCameraFeed

    twin = DigitalTwinRobot("InsertBench/USB-v0", seed=0)
    feed = TwinCameraFeed(twin, "wrist", 160, 120)
    env = real.make("InsertBench/USB-v0", robot=twin, cameras=[feed.camera(retries=1)],
                    socket_pose=twin.socket_pose(), obs_mode="state", reward="goal_image",
                    goal_images={"wrist": np.zeros((32, 32, 3), np.uint8)}, image_size=32,
                    start_height_mm=15.0, continuity_input=0)
    env.reset(seed=0)
    env.step(np.array([0, 0, 1], np.float32))
    feed.drop_next(1)
    with pytest.raises(FrameTimeoutError, match="wrist"):
        env.step(np.array([0, 0, 1], np.float32))
    assert twin.commands[-1].name == "servoStop"
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.array([0, 0, 1], np.float32))
    env.close()


def _drops_cost_time(camera, twin, late_retry_s: float = 0.0):
    """On the twin's clock, a wait for a dropped frame lasts its timeout and the retry's frame
    arrives `late_retry_s` into its wait; returns the camera's feed (`drop_next`)."""
    feed = camera.before_wait.__self__
    retrying = False

    def inject():
        nonlocal retrying
        dropped = feed._drop > 0
        feed.inject()
        if dropped:
            twin.stall(camera.timeout_ms / 1000 + 0.001)
        elif retrying:
            twin.stall(late_retry_s)
        retrying = dropped

    camera.before_wait = inject
    return feed


def test_a_camera_retry_stops_the_arm_and_keeps_the_rtde_watchdog_fed():
    """While a camera waits for a frame nothing commands the arm: it held its last servo
    target, its wrench unchecked, and nothing kicked the RTDE watchdog (5 Hz), so two 100 ms
    timeouts before a frame ended the controller's script and the next step was refused. The
    arm now stops between tries and the watchdog is kicked; a wait as long as the watchdog's
    period is refused when the env is made."""
    import real

    with pytest.raises(ValueError, match=r"camera 'wrist' waits up to 100 ms.*watchdog's period"):
        real.make_twin("InsertBench/USB-v0", cameras=("wrist",), obs_mode="state+pixels",
                       image_size=32, rtde_watchdog_hz=10.0)
    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist",),
                         obs_mode="state+pixels", image_size=32, start_height_mm=15.0)
    base = env.unwrapped
    twin = base.robot
    camera = base.camera_devices["wrist"]
    feed = _drops_cost_time(camera, twin)
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    feed.drop_next(2)
    start = len(twin.commands)
    obs, *_, info = env.step(policy(obs))  # the third try delivers
    assert info["safety_trip"] is None and camera.timeouts == 2
    after_compliance = [c.name for c in twin.commands[start:]][-2:]
    assert after_compliance == ["servoStop", "servoStop"]  # stopped before each retry
    obs, *_, info = env.step(policy(obs))
    assert info["safety_trip"] is None and not twin.watchdog_fired
    assert_commands_safe(env)
    env.close()


def test_two_cameras_retrying_in_one_step_keep_the_rtde_watchdog_fed():
    """The watchdog was kicked only between one camera's tries, so it saw the wrist's last
    wait and the side camera's first back to back: a retry arriving 99.5 ms late on each of
    two cameras (100 ms timeouts, accepted at the 5 Hz watchdog) fired it, and the next step
    was refused. It is now kicked before every camera's wait."""
    import real

    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist", "side"),
                         obs_mode="state+pixels", image_size=32)
    base = env.unwrapped
    twin = base.robot
    feeds = [_drops_cost_time(c, twin, late_retry_s=0.0995)
             for c in base.camera_devices.values()]
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    for feed in feeds:
        feed.drop_next(1)
    obs, *_, info = env.step(policy(obs))
    assert info["safety_trip"] is None and not twin.watchdog_fired
    obs, *_, info = env.step(policy(obs))
    assert info["safety_trip"] is None
    assert_commands_safe(env)
    env.close()


def test_the_step_after_a_camera_retry_starts_from_rest():
    """The stop before a retry left the admittance law's velocity pointing back at the last
    target: the next step's servo targets reversed at the 100 mm/s cap within 2 ms (about
    100 m/s^2) before turning forward again. The law now restarts at rest where the arm is."""
    import real

    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist",),
                         obs_mode="state+pixels", image_size=32)
    base = env.unwrapped
    twin = base.robot
    feed = _drops_cost_time(base.camera_devices["wrist"], twin)
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    for _ in range(3):  # descending at the speed cap
        obs, *_ = env.step(policy(obs))
    feed.drop_next(1)
    obs, *_ = env.step(policy(obs))  # this step's frame is retried: the arm stops
    start = len(twin.commands)
    obs, *_, info = env.step(policy(obs))

    def targets(commands):
        return np.array([c.args[0][:3] for c in commands if c.name == "servoL"])

    before = targets(twin.commands[:start])
    heading = (before[-1] - before[-2]) / np.linalg.norm(before[-1] - before[-2])
    along = np.diff(targets(twin.commands[start:]), axis=0) @ heading / base.servo_dt
    assert info["safety_trip"] is None
    assert along.min() > 0.0  # it was -100 mm/s
    assert_commands_safe(env)
    env.close()


def test_a_lost_link_while_a_camera_waits_ends_the_step_on_a_trip():
    """A kick of the RTDE watchdog that failed between a camera's tries latched a connection
    trip that the step did not report: it returned `safety_trip=None`, not terminated."""
    import real

    env = real.make_twin("InsertBench/USB-v0", seed=0, cameras=("wrist",),
                         obs_mode="state+pixels", image_size=32)
    twin = env.unwrapped.robot
    camera = env.unwrapped.camera_devices["wrist"]
    feed = _drops_cost_time(camera, twin)
    policy = real.p_controller(env)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(policy(obs))
    inject = camera.before_wait

    def lost():
        raise OSError("socket closed")

    def inject_then_lose_the_link():  # the link goes while the camera waits
        inject()
        twin.kickWatchdog = lost

    camera.before_wait = inject_then_lose_the_link
    feed.drop_next(1)
    _, _, terminated, _, info = env.step(policy(obs))
    assert terminated and info["safety_trip"] == "connection"
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(policy(obs))
    env.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"width": -5}, r"camera wrist: width must be an integer in \[1, 4,096\], got -5"),
    ({"timeout_ms": float("nan")}, "camera wrist: timeout_ms must be an integer"),
    ({"fps": 0}, "camera wrist: fps must be an integer"),
    ({"name": " "}, "a camera's name must be a non-empty string"),
])
def test_a_camera_config_refuses_what_no_camera_does(kwargs, message):
    """These reached the RealSense SDK (or a wait of NaN ms) before anything said no."""
    from real.config import CameraConfig

    with pytest.raises(ValueError, match=message):
        CameraConfig(**{"name": "wrist", **kwargs})


def test_a_frame_delivered_again_black_or_too_small_is_no_observation():
    """A stalled stream's repeated frame (same frame number), an all-black frame and a 1x1
    stream blown up to 32x32 all reached the policy (and goal images) without a word."""
    import itertools

    from real.camera import CameraError
    from real.twin import DigitalTwinRobot, TwinCameraFeed

    twin = DigitalTwinRobot("InsertBench/USB-v0", seed=0)
    feed = TwinCameraFeed(twin, "wrist", 160, 120)
    camera = feed.camera(timeout_ms=20, retries=2)
    assert camera.read(32, 32, False).any()
    feed._frame_numbers = itertools.repeat(7)  # the stream re-sends frame 7 from now on
    camera.read(32, 32, False)
    with pytest.raises(FrameTimeoutError, match="no new color frame .*frame 7 delivered again"):
        camera.read(32, 32, False)
    feed._frame_numbers = itertools.count(100)
    render = feed.rig.render
    feed.rig.render = lambda data, name: np.zeros_like(render(data, name))
    with pytest.raises(FrameTimeoutError, match="black in every pixel"):
        camera.read(32, 32, False)
    feed.rig.render = render
    assert camera.read(32, 32, False).any()  # a live stream again
    camera.close()
    small = TwinCameraFeed(twin, "wrist", 16, 12).camera()
    with pytest.raises(CameraError, match=r"delivers \(12, 16, 3\) frames.* 32x32"):
        small.read(32, 32, False)
    small.close()
    # A frame source of another dtype: floats in [0, 1] read as black, uint16 as white (real24)
    for frame in (np.full((120, 160, 3), 0.5), np.full((120, 160, 3), 30000, np.uint16)):
        camera.read_raw = lambda frame=frame: frame
        with pytest.raises(CameraError, match=f"delivers {frame.dtype} frames, not uint8 RGB"):
            camera.read(32, 32, False)


def test_a_missing_realsense_library_says_what_it_needs(monkeypatch):
    """Without the system's libusb, every camera path ended in "ImportError: libusb-1.0.so.0:
    cannot open shared object file", with no hint of what to install."""
    import sys

    from real.camera import import_realsense

    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # as an import that fails
    with pytest.raises(ImportError, match="it needs the system's libusb-1.0: run `bash "
                                          "scripts/system-deps.sh`"):
        import_realsense()
