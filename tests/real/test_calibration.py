"""Calibration on the twin: touch-off and teach find the socket, the JSON round-trips."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import envs
import real
from real.calibration import Calibration, calibrate
from real.poses import pos_mat_to_pose, pose_to_pos_mat, rotation_angle
from real.safety import SafetyTrip
from real.twin import DigitalTwinRobot
from tests.real.conftest import USB, assert_commands_safe, run_episode

SPEC = envs.task_spec(USB)
#: Where a touch-off's operator holds the plug [m above the seated pose]: its face 3 mm above
#: the socket's mouth, as the prompt asks.
ABOVE = SPEC.seat_depth_mm * 1e-3 + 0.003


def operator(twin: DigitalTwinRobot, heights_m: list[float]):
    """At each prompt the twin's "operator" puts the plug this far above the seated pose."""
    pos, mat = pose_to_pos_mat(twin.socket_pose())
    targets = iter(heights_m)

    def prompt(message: str) -> None:
        twin.operator_move_to(pos_mat_to_pose(pos - mat[:, 2] * next(targets), mat))

    return prompt


def held_at(twin: DigitalTwinRobot, offset_m: tuple[float, float], height_m: float):
    """At the prompt the twin's "operator" holds the plug `offset_m` (x, y) beside the socket's
    axis and `height_m` above the seated pose [m]."""
    pos, mat = pose_to_pos_mat(twin.socket_pose())

    def prompt(message: str) -> None:
        twin.operator_move_to(pos_mat_to_pose(pos + mat @ np.array([*offset_m, -height_m]),
                                              mat))

    return prompt


def pose_error(a, b) -> tuple[float, float]:
    pa, ma = pose_to_pos_mat(a)
    pb, mb = pose_to_pos_mat(b)
    return float(np.linalg.norm(pa - pb)), rotation_angle(ma.T @ mb)


@pytest.mark.parametrize(("method", "heights"), [("touch", [ABOVE]), ("teach", [0.0, 0.02])])
def test_calibration_finds_the_socket(method, heights):
    twin = DigitalTwinRobot(USB)
    calib = calibrate(twin, SPEC, method, operator(twin, heights), "digital-twin")
    dist, angle = pose_error(calib.socket_pose, twin.socket_pose())
    assert dist < 0.5e-3 and angle < 0.01
    assert calib.method == method and calib.task == USB
    servos = [c for c in twin.commands if c.name == "servoL"]
    assert (len(servos) > 0) == (method == "touch")  # teach never commands motion


def test_a_touch_off_that_hangs_mid_descent_is_stopped_by_the_rtde_watchdog():
    """real17: nothing armed the watchdog in a calibration, and a touch-off killed mid-descent
    (kill -9, against serve-twin) left the controller servoing the plug 3.8 mm into the socket,
    pressing ~7 N, with no end. Armed after the operator's prompt, before the robot moves."""

    class HangsMidDescent(DigitalTwinRobot):
        servos = 0

        def servoL(self, *args):
            self.servos += 1
            if self.servos == 200:  # 0.4 s into the descent the process hangs
                self.stall(0.3)
            return super().servoL(*args)

    twin = HangsMidDescent(USB)
    with pytest.raises(SafetyTrip, match="refused a servoL command"):
        calibrate(twin, SPEC, "touch", operator(twin, [ABOVE]), "digital-twin")
    assert twin.watchdog_fired and not twin.program_running
    names = [c.name for c in twin.commands]
    assert names.index("endTeachMode") < names.index("setWatchdog") < names.index("servoL")
    assert twin.commands[names.index("setWatchdog")].args == (5.0,)


def test_round_trip_and_use(tmp_path):
    twin = DigitalTwinRobot(USB)
    calib = calibrate(twin, SPEC, "touch", operator(twin, [ABOVE]), "digital-twin")
    path = calib.save(tmp_path / "cell" / "usb.json")
    loaded = Calibration.load(path)
    assert loaded == calib
    assert json.loads(path.read_text())["socket_pose"] == list(calib.socket_pose)
    env = real.make(USB, robot=twin, calibration=path, clock=twin.clock)
    _, info = run_episode(env, real.p_controller(env))
    assert info["is_success"]
    assert_commands_safe(env)


def test_bad_calibration_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="real calibrate"):
        Calibration.load(tmp_path / "missing.json")
    good = Calibration(USB, (0.0,) * 6, (0.0,) * 6, "teach", "x", "2026-01-01T00:00:00+00:00")
    path = good.save(tmp_path / "c.json")
    data = json.loads(path.read_text())
    data["socket_pose"] = [0.0] * 5
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="socket_pose must be a list of 6"):
        Calibration.load(path)
    data["socket_pose"], data["format"] = [0.0] * 6, 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format"):
        Calibration.load(path)
    # Each used to end in a bare JSONDecodeError, AttributeError or TypeError without the file.
    for text, message in (("not json", "c.json is not a calibration file (not JSON"),
                          # real17: a RecursionError and an OverflowError, internal errors
                          ("[" * 100_000, "c.json is not a calibration file (not JSON"),
                          (json.dumps(good.__dict__).replace(
                              '"socket_pose": [', '"socket_pose": [' + "9" * 400 + ", "),
                           "c.json: socket_pose holds a number too large for a float"),
                          ("[1, 2]", "c.json has calibration format None"),
                          (json.dumps(good.__dict__ | {"socket_pose": ["x"] * 6}),
                           "socket_pose must be a list of 6 numbers"),
                          (json.dumps(good.__dict__ | {"extra": 1}), "unknown ['extra']"),
                          # In millimetres: refused by real.make only after connecting.
                          (json.dumps(good.__dict__ | {"socket_pose": [450, 130, 14, 0, 0, 0]}),
                           "c.json: socket_pose lies 468.611 m from the robot base"),
                          (json.dumps({k: v for k, v in good.__dict__.items() if k != "task"}),
                           "missing ['task']"),
                          # adv41: 1e12 N was taken, and offsets every wrench
                          (json.dumps(good.__dict__ | {"ft_bias": [1e12, 0, 0, 0, 0, 0]}),
                           "c.json: ft_bias reads 1e+12 N / 0 N m with the plug free, beyond "
                           "500 N / 50 N m"),
                          (json.dumps(good.__dict__ | {"socket_pose": [0, 0, 1e308, 0, 0, 0]}),
                           "c.json: socket_pose lies inf m from the robot base"),
                          # what the file says of itself was taken as it came
                          (json.dumps(good.__dict__ | {"method": "magic"}),
                           "c.json: method must be one of ['teach', 'touch'], got 'magic'"),
                          (json.dumps(good.__dict__ | {"robot": 123}),
                           "c.json: robot must be a string, got 123"),
                          (json.dumps(good.__dict__ | {"created_utc": None}),
                           "c.json: created_utc must be a string, got None")):
        path.write_text(text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # 1e308 m printed "overflow encountered in dot" first
            with pytest.raises(ValueError, match=re.escape(message)):
                Calibration.load(path)


def test_calibration_of_another_task_is_refused():
    twin = DigitalTwinRobot(USB)
    calib = Calibration(
        "InsertBench/DSub-v0", tuple(twin.socket_pose()), (0.0,) * 6, "teach", "x", "t"
    )
    with pytest.raises(ValueError, match="calibrate this task"):
        real.make(USB, robot=twin, calibration=calib)


@pytest.mark.parametrize(("offset_m", "height_m"), [((0.002, 0.0), ABOVE), ((0.0, 0.0), 0.004)])
def test_a_touch_off_that_stops_short_of_the_seat_is_refused(offset_m, height_m):
    """Held 2 mm off the axis, the plug landed on the socket's rim and that stop was saved as
    the seat, 12 mm above it: a plug resting on the board then scored a success. Held inside
    the socket (4 mm above the seat, as the twin's operator did), the seat could not be told
    from a rim either."""
    twin = DigitalTwinRobot(USB)
    prompt = held_at(twin, offset_m, height_m)
    with pytest.raises(RuntimeError, match=r"the plug stopped -?\d+\.\d mm below where it was "
                                           r"held, short of the 12 mm it goes into the socket: "
                                           r"it landed on the rim or the board"):
        calibrate(twin, SPEC, "touch", prompt, "digital-twin")


@pytest.mark.parametrize(("offset_m", "above_mouth_m"), [((0.0, 0.0035), 0.012),
                                                       ((0.006, 0.0), 0.016)])
def test_a_touch_off_that_lands_on_the_board_from_high_enough_is_refused(offset_m,
                                                                        above_mouth_m):
    """Held beside the opening higher above the board than the socket is deep, the plug went
    as far down before landing on the board, and that stop was saved as the seat: a plug 12 mm
    above the real seat then scored a success (real22). The socket holds a seated plug
    sideways; the board does not."""
    twin = DigitalTwinRobot(USB)
    prompt = held_at(twin, offset_m, SPEC.seat_depth_mm * 1e-3 + above_mouth_m)
    with pytest.raises(RuntimeError, match=r"the plug stopped 1\d\.\d mm below where it was "
                                           r"held, but moved 1\.\d mm sideways \([+-][xy]\) "
                                           r"without meeting a wall: it is not in the socket"):
        calibrate(twin, SPEC, "touch", prompt, "digital-twin")
    assert twin.commands[-1].name == "servoStop"  # and the arm went back up, stopped


def test_a_plug_not_lifted_clear_after_teach_is_refused():
    """Left seated after "lift the plug clear", the plug's contact gave an F/T bias of 23 N
    (-7 N free), saved without a word."""
    twin = DigitalTwinRobot(USB)
    with pytest.raises(RuntimeError, match=r"after 'lift the plug clear' its face is -?\d+\.\d mm "
                                           r"above the seat, less than the 14 mm that clears "
                                           r"the socket's mouth by 2 mm"):
        calibrate(twin, SPEC, "teach", operator(twin, [0.0, 0.0]), "digital-twin")


def test_a_touch_off_from_a_plug_pushed_home_by_hand_says_it_started_inside():
    """real28: the twin's hand went on pressing after teach mode ended, so the touch-off's bias
    took in ~30 N and it advised "no contact force above 15 N" for a seated plug."""
    twin = DigitalTwinRobot(USB)
    with pytest.raises(RuntimeError, match=r"the plug stopped -?0\.\d mm below where it was "
                                           r"held.*or started inside the socket"):
        calibrate(twin, SPEC, "touch", lambda _: twin.operator_move_to(twin.hand_target("seated")),
                  "digital-twin")


def test_touch_off_without_contact_is_an_error():
    twin = DigitalTwinRobot(USB)
    with pytest.raises(RuntimeError, match=r"no contact force above 15 N \(bottomed out\) "
                                           r"within 42 mm of descent: the TCP went 41\.\d mm "
                                           r"down and pressed at most \d N"):
        calibrate(twin, SPEC, "touch", operator(twin, [0.045]), "digital-twin")


def test_touch_off_that_cannot_press_hard_enough_says_what_it_reached(monkeypatch):
    """NEMA 5-15's threshold (1.5 x 55 N) is more than the twin's servoL presses on a seated
    plug with its target 5 mm past the seat: it said "raise max_travel_m", an option no command
    line has."""
    monkeypatch.setattr("real.calibration.TOUCH_TRAVEL_PAST_MOUTH_M", 0.008)
    task = "InsertBench/Connector-NEMA15-v1"
    twin = DigitalTwinRobot(task)
    spec = envs.task_spec(task)
    above = spec.seat_depth_mm * 1e-3 + 0.003
    with pytest.raises(RuntimeError) as err:
        calibrate(twin, spec, "touch", operator(twin, [above]), "digital-twin")
    found = re.search(r"no contact force above (\d+) N \(bottomed out\) within \d+ mm of descent: "
                      r"the TCP went ([\d.]+) mm down and pressed at most (\d+) N\. .* use "
                      r"--method teach", str(err.value))
    assert found, err.value
    # at the seated pose (within the touch-off's 1 mm), pressing more than half the threshold
    # (the servo target runs on past the seat, so the press grows as the descent goes on)
    assert float(found[2]) > above * 1e3 - 1.0
    assert 0.5 * int(found[1]) < int(found[3]) <= int(found[1])


@pytest.mark.parametrize(("method", "heights", "glitch_m"),
                         [("teach", [0.0, 0.02], -0.008), ("touch", [ABOVE], 0.015)])
def test_one_glitched_pose_reading_is_not_a_calibration(method, heights, glitch_m):
    """The taught pose was one reading: a glitch 8 mm into the board was recorded as the seat
    (every episode then pressed on the socket floor), and a touch-off's approach 15 mm off ran
    its descent beside the socket, pressing on its wall, until the whole force counted as
    bottoming out (recorded 3.7 mm short of the seat)."""

    class Glitch(DigitalTwinRobot):
        reads = 0

        def getActualTCPPose(self):
            pose = list(super().getActualTCPPose())
            if not self.in_teach_mode:
                self.reads += 1
                if self.reads == 3:  # one reading among those the pose is taken from
                    pose[2 if method == "teach" else 0] += glitch_m
            return pose

    twin = Glitch(USB)
    with pytest.raises(ValueError, match=r"the TCP pose readings of 10 control periods lie "
                                         r"(8\.00|14\.99|15\.00) mm / 0\.000\d rad apart"):
        calibrate(twin, SPEC, method, operator(twin, heights), "twin")


@pytest.mark.parametrize("glitch_m", [0.003, -0.003])
def test_a_glitched_pose_reading_at_the_touch_offs_stop_is_not_the_seat(monkeypatch, glitch_m):
    """real26: the seat was the one reading taken when the force passed the threshold; a 3 mm
    glitch there was saved (a plug 4.7 mm short then scored a success by depth)."""
    import real.calibration as calibration

    class Glitch(DigitalTwinRobot):
        armed = glitched = False

        def getActualTCPPose(self):
            pose = list(super().getActualTCPPose())
            if self.armed and not self.glitched:
                self.glitched = True
                pose[2] += glitch_m  # along the tool axis, which points down
            return pose

    twin = Glitch(USB)
    check_wrench = calibration.SafeRobot.check_wrench

    def arm_at_the_stop(self, wrench, *args):
        twin.armed = twin.armed or -float(wrench[2]) > 15.0  # USB's threshold
        return check_wrench(self, wrench, *args)

    monkeypatch.setattr(calibration.SafeRobot, "check_wrench", arm_at_the_stop)
    with pytest.raises(calibration.CalibrationError,
                       match=r"^at the stop, the TCP pose readings of 10 control periods lie "
                             r"[23]\.\d\d mm .*calibrate again$"):
        calibrate(twin, SPEC, "touch", operator(twin, [ABOVE]), "digital-twin")
    assert twin.glitched


@pytest.mark.parametrize("method", ["teach", "touch"])
def test_readings_frozen_by_a_lost_link_are_not_a_calibration(method):
    """Over a link lost at the freedrive prompt, ur_rtde's receive interface returned its last
    readings: ten identical poses agreed perfectly and the start pose, 50 mm above the seat,
    was written as the seat with exit status 0 (serve-twin killed with kill -9)."""

    class LostAtPrompt(DigitalTwinRobot):
        frozen = None

        def getTimestamp(self):
            return self.frozen if self.frozen is not None else super().getTimestamp()

    twin = LostAtPrompt(USB)
    prompt = operator(twin, [0.0, 0.02] if method == "teach" else [ABOVE])

    def lose_the_link(message: str) -> None:
        prompt(message)
        twin.frozen = twin.getTimestamp()

    with pytest.raises(ConnectionError, match=r"did not change over 10 control periods .*: the "
                                              r"link to the controller is lost or stalled"):
        calibrate(twin, SPEC, method, lose_the_link, "twin")


@pytest.mark.parametrize(("reading", "message"), [
    ("nan_force", "ft_bias must be finite"),
    ("huge_force", "ft_bias reads 10000 N / 0 N m with the plug free, beyond 500 N"),
    ("nan_pose", "the robot reads a TCP pose that is not six finite numbers"),
])
def test_calibration_refuses_implausible_readings_before_anything_is_written(reading, message):
    """They were calibrated and saved (a NaN bias as a bare NaN token, not JSON); only the next
    `validate` refused the file."""

    class Faulty(DigitalTwinRobot):
        def getActualTCPForce(self):
            wrench = super().getActualTCPForce()
            return {"nan_force": [np.nan] * 6, "huge_force": [1e4, 0, 0, 0, 0, 0]}.get(
                reading, wrench)

        def getActualTCPPose(self):
            pose = super().getActualTCPPose()
            return [np.nan] * 6 if reading == "nan_pose" and not self.in_teach_mode else pose

    twin = Faulty(USB)
    with pytest.raises(ValueError, match=re.escape(message)):
        calibrate(twin, SPEC, "teach", operator(twin, [0.0, 0.02]), "twin")


def test_a_calibration_format_of_true_is_refused(tmp_path):
    good = Calibration(USB, (0.0,) * 6, (0.0,) * 6, "teach", "x", "2026-01-01T00:00:00+00:00")
    path = good.save(tmp_path / "c.json")
    path.write_text(json.dumps(json.loads(path.read_text()) | {"format": True}))
    with pytest.raises(ValueError, match=r"has calibration format True, expected one of \[1, 2\]"):
        Calibration.load(path)


def test_a_calibration_in_degrees_is_refused_by_the_files_name(tmp_path):
    """A socket pose whose rotation vector was written in degrees loaded, and `validate` ended
    on an "implausible TCP orientation reading" that did not point at the file."""
    good = Calibration(USB, (0.4, 0.1, 0.2, 3.1416, 0.0, 0.0), (0.0,) * 6, "teach", "x",
                       "2026-01-01T00:00:00+00:00")
    path = good.save(tmp_path / "c.json")
    path.write_text(json.dumps(json.loads(path.read_text()) | {
        "socket_pose": [0.4, 0.1, 0.2, 179.99, 0.0, 0.014]}))
    with pytest.raises(ValueError, match=r"socket_pose's rotation vector .* turns 179.99 rad, "
                                         r"more than pi"):
        Calibration.load(path)
    with pytest.raises(ValueError, match="degrees given as radians"):
        real.make(USB, robot=real.URConfig(host="127.0.0.1"),
                  socket_pose=(0.4, 0.1, 0.2, 0.0, 180.0, 0.0))


def test_a_calibration_records_its_tcp_and_refuses_another(tmp_path):
    """The socket pose is where the calibrating TCP was: run under a TCP 10 mm longer, a plug
    2 mm in scored a success; 10 mm shorter, a seated plug pressed at 190 N all episode."""
    twin = DigitalTwinRobot(USB)
    tcp = (0.0, 0.0, 0.137, 0.0, 0.0, 0.0)
    twin.tcp_offset = tcp  # as URBackend records the TCP it set
    calibration = calibrate(twin, SPEC, "teach", operator(twin, [0.0, 0.02]), "twin")
    assert calibration.tcp_offset == tcp
    path = calibration.save(tmp_path / "c.json")
    assert Calibration.load(path).tcp_offset == tcp
    with pytest.raises(ValueError, match=r"measured the socket with TCP offset \[0.0, 0.0, "
                                         r"0.137, .*\], and this robot is set to \[0.0, 0.0, "
                                         r"0.127.*calibrate again with this TCP, or run with the "
                                         r"calibration's .*--tcp-offset 0,0,0.137,0,0,0\)"):
        real.make(USB, robot=real.URConfig(host="127.0.0.2"), calibration=path)
    # ... on any backend that says its TCP: a FaultInjector around a connected arm (the bench
    # test) was not checked.
    from real.faults import FaultInjector

    with pytest.raises(ValueError, match=r"measured the socket with TCP offset \[0.0, 0.0, "
                                         r"0.137, .*\], and this robot is set to \[0.0, 0.0, "
                                         r"0.127"):
        real.make(USB, robot=FaultInjector(DigitalTwinRobot(USB)), calibration=path)
    # A format 1 file (before the TCP was recorded) still reads, its TCP unknown.
    old = json.loads(path.read_text())
    del old["tcp_offset"]
    path.write_text(json.dumps(old | {"format": 1}))
    assert Calibration.load(path).tcp_offset is None
    Calibration.load(path).save(path)  # saved again: format 1 with a null TCP
    assert Calibration.load(path).tcp_offset is None
