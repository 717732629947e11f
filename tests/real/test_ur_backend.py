"""URBackend against stand-ins for ur_rtde's two interfaces (no robot in CI): connecting sets
up the TCP and payload, and `real.make` arms the watchdog and uses the configured rates."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

import real
from envs.scene import tcp_offset_m
from envs.tasks import task_spec
from real.robot import URBackend
from real.safety import SafeRobot, SafetyConfig, SafetyTrip
from tests.real.conftest import USB


class FakeInterface:
    calls: list[tuple] = []

    def __init__(self, host: str, frequency: float) -> None:
        FakeInterface.calls.append((type(self).__name__, "__init__", host, frequency))

    def __getattr__(self, name: str):
        def method(*args):
            FakeInterface.calls.append((type(self).__name__, name, *args))
            return {"getActualTCPPose": [0.0] * 6}.get(name, True)

        return method


@pytest.fixture
def fake_rtde(monkeypatch):
    FakeInterface.calls = []
    control = types.ModuleType("rtde_control")
    receive = types.ModuleType("rtde_receive")
    control.RTDEControlInterface = type("RTDEControlInterface", (FakeInterface,), {})
    receive.RTDEReceiveInterface = type("RTDEReceiveInterface", (FakeInterface,), {})
    monkeypatch.setitem(sys.modules, "rtde_control", control)
    monkeypatch.setitem(sys.modules, "rtde_receive", receive)
    return FakeInterface.calls


def test_the_wrench_reference_is_the_models_unless_the_cell_says(fake_rtde):
    """real17/diff19: an e-Series reports its wrench torque about the flange, a CB3 about the
    TCP; an e-Series whose wrench comes from an external sensor (a URCap) about the TCP."""
    def reference(**kwargs):
        return URBackend(real.URConfig(host="10.0.0.2", **kwargs), [0.0] * 6).wrench_reference

    assert reference() == "flange"  # UR5e
    assert reference(model="UR5", frequency_hz=125.0) == "tcp"
    assert reference(wrench_reference="tcp") == "tcp"
    with pytest.raises(ValueError, match="wrench_reference must be 'flange', 'tcp' or None"):
        real.URConfig(host="10.0.0.2", wrench_reference="wrist")


def test_connect_sets_tcp_and_payload(fake_rtde):
    config = real.URConfig(
        host="10.0.0.2", frequency_hz=125.0, payload_kg=0.9, payload_cog_m=(0.0, 0.0, 0.05)
    )
    backend = URBackend(config, [0.0, 0.0, 0.2, 0.0, 0.0, 0.0])
    assert ("RTDEControlInterface", "__init__", "10.0.0.2", 125.0) in fake_rtde
    assert ("RTDEReceiveInterface", "__init__", "10.0.0.2", 125.0) in fake_rtde
    assert ("RTDEControlInterface", "setTcp", [0.0, 0.0, 0.2, 0.0, 0.0, 0.0]) in fake_rtde
    assert ("RTDEControlInterface", "setPayload", 0.9, [0.0, 0.0, 0.05]) in fake_rtde
    backend.servoL([0.1] * 6, 0.0, 0.0, 0.008, 0.1, 300.0)
    assert fake_rtde[-1] == (
        "RTDEControlInterface",
        "servoL",
        [0.1] * 6,
        0.0,
        0.0,
        0.008,
        0.1,
        300.0,
    )
    backend.getActualTCPForce()
    assert fake_rtde[-1][:2] == ("RTDEReceiveInterface", "getActualTCPForce")


def test_a_cb3_above_125_hz_is_refused(fake_rtde, capsys):
    """No CB3 runs RTDE above 125 Hz: a CB3 left at the 500 Hz default reached ur_rtde's
    output setup, to fail as if the arm were unreachable (real21)."""
    from benchmark.cli import app

    with pytest.raises(ValueError, match="a UR5 is a CB3 arm, whose RTDE runs at 125 Hz: "
                                         "frequency 500 Hz is for an e-Series"):
        real.URConfig(host="10.0.0.2", model="UR5")
    real.URConfig(host="10.0.0.2", model="UR5", frequency_hz=125.0)
    with pytest.raises(SystemExit) as exit_info:
        app(["real", "calibrate", "--task", USB, "--host", "10.0.0.2", "--model", "UR10"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "Invalid value for --frequency: a UR10 is a CB3 arm" in err and \
        "give --frequency 125" in err, err
    assert not fake_rtde  # refused before connecting


@pytest.mark.parametrize("refused", ["setTcp", "setPayload"])
def test_a_refused_tcp_or_payload_closes_the_connection(fake_rtde, monkeypatch, refused):
    """Refused after both interfaces had connected and the control script was uploaded, the
    backend raised a RuntimeError ("internal error" in the CLI) and left them open (real21)."""
    control = sys.modules["rtde_control"].RTDEControlInterface
    monkeypatch.setattr(control, refused, lambda self, *args: False, raising=False)
    config = real.URConfig(host="10.0.0.2", payload_kg=0.9)
    with pytest.raises(ConnectionError, match=rf"the controller at 10.0.0.2 refused {refused}\("):
        URBackend(config, [0.0, 0.0, 0.2, 0.0, 0.0, 0.0])
    ends = [c[:2] for c in fake_rtde if c[1] in ("stopScript", "disconnect")]
    assert ends == [("RTDEControlInterface", "stopScript"), ("RTDEControlInterface", "disconnect"),
                    ("RTDEReceiveInterface", "disconnect")]


def test_make_uses_the_sim_tcp_and_the_robot_rates(fake_rtde):
    config = real.URConfig(host="10.0.0.2", frequency_hz=125.0, continuity_input=2)
    env = real.make(USB, robot=config, socket_pose=np.zeros(6))
    base = env.unwrapped
    tcp = tcp_offset_m(task_spec(USB).connector)
    assert ("RTDEControlInterface", "setTcp", [0.0, 0.0, tcp, 0.0, 0.0, 0.0]) in fake_rtde
    assert base.servo_dt == pytest.approx(1 / 125) and base.cycles_per_step == 12
    assert base.continuity_input == 2 and base.rtde_watchdog_hz == config.rtde_watchdog_hz
    env.close()
    assert ("RTDEControlInterface", "disconnect") in fake_rtde
    assert ("RTDEReceiveInterface", "disconnect") in fake_rtde


def test_ur_config_validation():
    with pytest.raises(ValueError, match="500 .* or 125"):
        real.URConfig(host="x", frequency_hz=200.0)
    with pytest.raises(ValueError, match="servo_gain"):
        real.URConfig(host="x", servo_gain=50.0)


def test_kick_after_servol_is_skipped_and_a_dropped_link_stops_the_script(fake_rtde):
    # ur_rtde's kick writes 0 to the command register the servoL just set (see URBackend).
    backend = URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    backend.servoL([0.1] * 6, 0.0, 0.0, 0.002, 0.1, 300.0)
    assert backend.kickWatchdog()
    assert fake_rtde[-1][1] == "servoL"
    time.sleep(0.003)  # more than a 2 ms period without servoL: a real kick
    backend.kickWatchdog()
    assert fake_rtde[-1][1] == "kickWatchdog"
    assert backend.isProgramRunning()
    backend.receive.isConnected = lambda: False
    # A lost link, not a stopped script: it tripped "robot_refused", blaming the watchdog or
    # a stop, where the safety layer's "connection" sends the user to the cable.
    with pytest.raises(ConnectionError, match="the link to the robot at 10.0.0.2 is lost"):
        backend.isProgramRunning()
    safe = SafeRobot(backend, SafetyConfig(), np.array([0.45, 0.13, 0.01, np.pi, 0.0, 0.0]),
                     servo_dt=0.002)
    with pytest.raises(SafetyTrip) as trip:
        safe.call("isProgramRunning")  # as check_status reads it
    assert trip.value.kind == "connection", trip.value


def test_a_lost_link_sends_no_stop_that_would_wait_for_a_reconnect(fake_rtde):
    """ur_rtde's commands reconnect first on a lost link and waited for ever for a controller
    that had gone; the stops are skipped there, and the interfaces still let go."""
    backend = URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    backend.control.isConnected = lambda: False
    start = len(fake_rtde)
    assert backend.servoStop() is False
    backend.stopL()
    # The other commands alike (endTeachMode at a calibration prompt hung, deaf to Ctrl-C):
    # refused, not sent.
    for command, args in (("zeroFtSensor", ()), ("setPayload", (1.0, [0.0] * 3)),
                          ("setTcp", ([0.0] * 6,)), ("setWatchdog", (5.0,)), ("teachMode", ()),
                          ("endTeachMode", ())):
        with pytest.raises(ConnectionError, match=f"{command}: the link to the robot at "
                                                  "10.0.0.2 is lost"):
            getattr(backend, command)(*args)
    backend.disconnect()
    assert [c[:2] for c in fake_rtde[start:]] == [("RTDEControlInterface", "disconnect"),
                                                 ("RTDEReceiveInterface", "disconnect")]


def test_disconnect_lets_go_of_the_interfaces_at_once(fake_rtde):
    """A safety trip's traceback keeps the backend in a reference cycle; ur_rtde's interfaces
    were freed (about 1 s, holding the GIL) whenever the collector came by, in the next env's
    500 Hz loop. Disconnecting frees them there and then."""
    import gc
    import weakref

    backend = URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    control, receive = weakref.ref(backend.control), weakref.ref(backend.receive)
    cycle: list = [backend]
    cycle.append(cycle)  # held as a trip's traceback holds it
    gc.disable()
    try:
        backend.disconnect()
        assert control() is None and receive() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(("kwargs", "message"), [
    # 0 and -3 Hz reached setWatchdog on the arm; 0.001 Hz armed a 17-minute watchdog.
    ({"rtde_watchdog_hz": 0.0}, "rtde_watchdog_hz must be in"),
    ({"rtde_watchdog_hz": -3.0}, "rtde_watchdog_hz must be in"),
    ({"rtde_watchdog_hz": 0.001}, "rtde_watchdog_hz must be in"),
    ({"rtde_watchdog_hz": float("nan")}, "rtde_watchdog_hz must be a finite number"),
    # NaN reached setPayload; a centre of gravity without a mass was dropped without a word.
    ({"payload_kg": float("nan")}, "payload_kg must be a finite number"),
    ({"payload_kg": -1.0}, "payload_kg must be in"),
    ({"payload_cog_m": (0.0, 0.0, 0.05)}, "payload_cog_m needs payload_kg"),
    ({"payload_kg": 1.0, "payload_cog_m": (0.0, float("inf"), 0.05)}, "payload_cog_m must be 3"),
    # A TCP offset in millimetres went to setTcp as 150 m.
    ({"tcp_offset": (0.0, 0.0, 150.0, 0.0, 0.0, 0.0)}, "tcp_offset .* implausible"),
    ({"tcp_offset": (0.0, 0.0, 0.15)}, "tcp_offset must be 6 finite numbers"),
    # Degrees for radians: bounded were only the three positions.
    ({"tcp_offset": (0.0, 0.0, 0.127, 0.0, 0.0, 90.0)},
     r"tcp_offset's rotation vector \(0.0, 0.0, 90.0\) turns 90 rad, more than pi: "
     r"implausible \(degrees given as radians\?\)"),
    ({"continuity_input": 2.5}, "continuity_input must be an integer"),
    ({"continuity_input": True}, "continuity_input must be an integer"),
    ({"servo_gain": float("nan")}, "servo_gain must be a finite number"),
    ({"host": ""}, "host must be the controller's IP"),
    # adv41: these went to ur_rtde and failed there in two lines ("Host not found", ...)
    ({"host": "999.1.1.1"}, r"host must be the controller's IP address or name \(no port\)"),
    ({"host": "192.168.1.10:30004"}, r"\(no port\), got '192.168.1.10:30004'"),
    ({"host": "not a host"}, "host must be the controller's IP"),
    ({"host": "224.0.0.1"}, "not one controller's address"),
    ({"host": "255.255.255.255"}, "not one controller's address"),
    ({"host": "0.0.0.0"}, "not one controller's address"),
])
def test_ur_config_refuses_numbers_that_would_reach_the_arm(kwargs, message):
    with pytest.raises(ValueError, match=message):
        real.URConfig(**{"host": "10.0.0.2", **kwargs})


@pytest.mark.parametrize("host", ["192.168.1.10", "10.0.0.2", "ur5e-cell.local", "robot",
                                  "fe80::1"])
def test_ur_config_takes_addresses_and_host_names(host):
    assert real.URConfig(host=host).host == host


@pytest.mark.parametrize(("kwarg", "value"), [
    ("servo_hz", 125.0), ("servo_gain", 5000.0), ("servo_lookahead_s", -1.0),
    ("continuity_input", 4), ("rtde_watchdog_hz", None),
])
def test_make_refuses_servo_kwargs_that_contradict_the_ur_config(fake_rtde, kwarg, value):
    """They used to win over the URConfig, unchecked: servo_gain=5000 reached servoL, servo_hz
    =125 ran the compliance loop at 125 Hz on a 500 Hz link, None switched the watchdog off."""
    with pytest.raises(ValueError, match=f"{kwarg}=.* contradicts the robot's URConfig"):
        real.make(USB, robot=real.URConfig(host="10.0.0.2"), socket_pose=np.zeros(6),
                  **{kwarg: value})
    assert fake_rtde == []  # refused before connecting


def test_make_refuses_what_the_cell_does_not_take_before_connecting(fake_rtde):
    """A simulation kwarg (noiseless) or a socket pose in millimetres used to be refused only
    after connecting and setting the TCP; a kwarg refused after connecting (a start height
    outside the safety workspace) left the connection open, its control script running."""
    config = real.URConfig(host="10.0.0.2")
    with pytest.raises(TypeError, match="'noiseless' is a kwarg of the simulated task only"):
        real.make(USB, robot=config, socket_pose=np.zeros(6), noiseless=True)
    with pytest.raises(TypeError, match="unknown kwarg 'goal_nosie_mm'; did you mean "
                                        "'goal_noise_mm'"):
        real.make(USB, robot=config, socket_pose=np.zeros(6), goal_nosie_mm=1.0)
    with pytest.raises(ValueError, match="socket_pose .* implausible"):
        real.make(USB, robot=config, socket_pose=[450.0, 130.0, 14.0, 3.14, 0.0, 0.0])
    assert fake_rtde == []
    with pytest.raises(ValueError, match="leave the safety workspace"):
        real.make(USB, robot=config, socket_pose=np.zeros(6), start_height_mm=150.0)
    assert fake_rtde[-2:] == [("RTDEControlInterface", "disconnect"),
                              ("RTDEReceiveInterface", "disconnect")]


def test_an_unreachable_robot_is_one_connection_error_and_nothing_else_on_stderr(capfd):
    """ur_rtde (the real client) printed its own "connect: Connection refused" before raising
    "Error: Could not connect to ...": two lines, the second an internal-error line."""
    from real.config import URConfig

    with pytest.raises(ConnectionError, match=r"cannot reach the robot at 127\.0\.0\.2: Could "
                                              r"not connect to: 127\.0\.0\.2 at 30004.*\(connect: "
                                              r"Connection refused\); is it on"):
        URBackend(URConfig(host="127.0.0.2"), [0.0] * 6)
    assert capfd.readouterr().err == ""


def test_a_stopped_arm_that_refuses_the_script_is_named_stopped(fake_rtde, monkeypatch):
    """A protective-stopped arm refuses ur_rtde's control script: "cannot reach the robot ...
    is it on this network?" after 5 s sent the user to the network (real20)."""
    def refuse(self, host, frequency):
        raise RuntimeError("ur_rtde: Failed to start control script, before timeout of 5 seconds")

    monkeypatch.setattr(sys.modules["rtde_control"].RTDEControlInterface, "__init__", refuse)
    receive = sys.modules["rtde_receive"].RTDEReceiveInterface
    monkeypatch.setattr(receive, "getSafetyMode", lambda self: 3, raising=False)
    with pytest.raises(ConnectionError, match=r"the robot at 10\.0\.0\.2 is in a protective "
                                              r"stop and refuses the control script"):
        URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    assert fake_rtde[-1][:2] == ("RTDEReceiveInterface", "disconnect")  # closed at once
    monkeypatch.setattr(receive, "getSafetyMode", lambda self: 1, raising=False)
    monkeypatch.setattr(receive, "getRobotMode", lambda self: 7, raising=False)  # running
    with pytest.raises(ConnectionError, match="cannot reach the robot at 10.0.0.2: ur_rtde: "
                                              "Failed to start control script"):
        URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    # real25: a powered-off arm (the usual state at the start of a day) and one whose registers
    # another session holds were "is it on this network?" too
    monkeypatch.setattr(receive, "getRobotMode", lambda self: 3, raising=False)
    with pytest.raises(ConnectionError, match=r"the robot at 10\.0\.0\.2 is not running \(robot "
                                              r"mode: power off\) .* power it on and release"):
        URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
    monkeypatch.setattr(receive, "getRobotMode", lambda self: 7, raising=False)

    def taken(self, host, frequency):
        raise RuntimeError("One of the RTDE input registers are already in use! Currently you "
                           "must disable the EtherNet/IP adapter, PROFINET or any MODBUS unit")

    monkeypatch.setattr(sys.modules["rtde_control"].RTDEControlInterface, "__init__", taken)
    with pytest.raises(ConnectionError, match=r"has its RTDE input registers in use: another "
                                              r"session \(insertbench, a ur_rtde script\)"):
        URBackend(real.URConfig(host="10.0.0.2"), [0.0] * 6)
