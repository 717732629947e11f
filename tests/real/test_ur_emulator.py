"""The controller stand-in without sockets: ur_rtde's register handshake as its control script
runs it, the watchdog, the TCP, programs; and the RTDE wire format and recipes."""

from __future__ import annotations

import socket
import struct
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark import twin_process
from benchmark.cli import app
from envs.scene import tcp_offset_m
from envs.tasks import task_spec
from real import rtde_protocol as rp
from real.poses import pose_to_pos_mat
from real.serve_twin import Ports, TwinServer, _Client
from real.twin import DigitalTwinRobot
from real.ur_emulator import (
    CMD_SERVOL,
    CMD_SET_TCP,
    CMD_SET_WATCHDOG,
    CMD_ZERO_FT_SENSOR,
    DONE_WITH_CMD,
    READY_FOR_CMD,
    RUNTIME_PLAYING,
    RUNTIME_STOPPED,
    EmulatedController,
)
from tests.real.conftest import USB

SCRIPT = "def rtde_control():\n# HEADER_BEGIN\n    global reg_offset_int = {offset}\n end\nend\n"


@pytest.fixture
def twin():
    return DigitalTwinRobot(USB)


@pytest.fixture
def controller(twin):
    ctl = EmulatedController(twin)
    ctl.run_program(SCRIPT.format(offset=0))
    assert ctl.runtime_state() == RUNTIME_PLAYING
    return ctl


def send(ctl: EmulatedController, cmd: int, doubles=(), reg: int = 0) -> None:
    names = [f"input_int_register_{reg}"]
    names += [f"input_double_register_{reg + i}" for i in range(len(doubles))]
    ctl.apply_inputs(names, [cmd, *doubles])


def servo_args(ctl: EmulatedController) -> list[float]:
    return [*ctl.actual_tcp_pose(), 0.0, 0.0, 0.002, 0.1, 300.0]


def test_a_regular_command_runs_once_and_waits_for_the_client_to_clear(controller, twin):
    start = len(twin.commands)
    send(controller, CMD_ZERO_FT_SENSOR)
    for _ in range(3):
        controller.tick()
        assert controller.out_int[0] == DONE_WITH_CMD
    assert [c.name for c in twin.commands[start:]] == ["zeroFtSensor"]
    send(controller, 0)  # ur_rtde's clear command
    controller.tick()
    assert controller.out_int[0] == READY_FOR_CMD


def test_servol_is_realtime_and_a_kick_in_the_same_cycle_replaces_it(controller, twin):
    start = len(twin.commands)
    send(controller, CMD_SERVOL, servo_args(controller))
    controller.tick()
    assert controller.out_int[0] == READY_FOR_CMD  # executed and ready within the cycle
    assert [c.name for c in twin.commands[start:]] == ["servoL"]
    start = len(twin.commands)
    send(controller, CMD_SERVOL, servo_args(controller))
    send(controller, 0)  # kickWatchdog: recipe 11 writes 0 to the command register
    controller.tick()
    assert "servoL" not in [c.name for c in twin.commands[start:]]


def test_the_watchdog_stops_the_program_when_inputs_stop(controller):
    send(controller, CMD_SET_WATCHDOG, [10.0])
    controller.tick()
    send(controller, 0)
    for _ in range(40):  # inputs keep coming: 80 ms
        controller.tick()
        send(controller, 0)
    assert controller.runtime_state() == RUNTIME_PLAYING
    for _ in range(60):  # 120 ms without an input package > 1 / 10 Hz
        controller.tick()
    assert controller.runtime_state() == RUNTIME_STOPPED
    assert "RTDE watchdog" in controller.log.lines[-1][1]


def test_set_tcp_moves_the_reported_pose_and_servo_targets_with_it(controller, twin):
    flange = controller.actual_tcp_pose()  # a fresh controller's TCP is the flange
    offset = tcp_offset_m(task_spec(USB).connector)
    send(controller, CMD_SET_TCP, [0.0, 0.0, offset, 0.0, 0.0, 0.0])
    controller.tick()
    tcp = controller.actual_tcp_pose()
    assert tcp == pytest.approx(twin.getActualTCPPose(), abs=1e-6)
    # The tool z axis points down: the TCP lies `offset` below the flange.
    assert flange[2] - tcp[2] == pytest.approx(offset, abs=1e-3)
    send(controller, 0)
    controller.tick()
    target = servo_args(controller)
    send(controller, CMD_SERVOL, target)
    controller.tick()
    assert twin.commands[-1].args[0] == pytest.approx(target[:6], abs=1e-9)


def test_the_wrench_is_reported_about_the_flange_whatever_tcp_a_client_set(controller, twin,
                                                                             monkeypatch):
    """The twin is a UR5e: an e-Series reports actual_TCP_force's torque about the flange,
    whatever TCP a client set (real17; it served the torque about the set TCP, as a CB3
    reports it: 0.73 N m off for a 10 N sideways push on a TCP 0.073 m further down)."""
    monkeypatch.setattr(twin, "getActualTCPForce", lambda: [10.0, 0.0, 0.0, 0.0, 0.2, 0.0])
    offset = tcp_offset_m(task_spec(USB).connector)
    for z in (offset, 0.2):
        controller.set_tcp([0.0, 0.0, z, 0.0, 0.0, 0.0])
        served = controller.outputs()["actual_TCP_force"]()
        assert served == [10.0, 0.0, 0.0, 0.0, 0.2, 0.0]


def test_unemulated_commands_end_the_program_instead_of_pretending(controller):
    send(controller, 1, [0.0] * 8)  # moveJ: not a call real/ makes
    controller.tick()
    assert controller.runtime_state() == RUNTIME_STOPPED
    assert "not emulated" in controller.log.lines[-1][1]


def test_only_the_rtde_control_script_runs_and_its_register_offset_is_used(twin):
    ctl = EmulatedController(twin)
    ctl.run_program("def my_program():\n  movej([0, 0, 0, 0, 0, 0])\nend\n")
    assert ctl.runtime_state() == RUNTIME_STOPPED
    assert "cannot run URScript program 'my_program'" in ctl.log.lines[-1][1]
    ctl.run_program(SCRIPT.format(offset=1000))  # ended the server in an IndexError
    assert ctl.runtime_state() == RUNTIME_STOPPED
    assert "register offset 1000; ur_rtde uses 0 or 24" in ctl.log.lines[-1][1]
    ctl.run_program(SCRIPT.format(offset=24))  # ur_rtde's upper register range
    assert ctl.out_int[24] == READY_FOR_CMD and ctl.out_int[0] == 0
    start = len(twin.commands)
    send(ctl, CMD_ZERO_FT_SENSOR, reg=24)
    ctl.tick()
    assert [c.name for c in twin.commands[start:]] == ["zeroFtSensor"]


def test_stops_end_the_program_and_the_dashboard_reports_them(twin):
    ctl = EmulatedController(twin)
    ctl.run_program(SCRIPT.format(offset=0))
    ctl.protective_stop()
    assert ctl.runtime_state() == RUNTIME_STOPPED
    assert ctl.dashboard("safetymode") == "Safetymode: PROTECTIVE_STOP"
    assert ctl.dashboard("unlock protective stop") == "Protective stop releasing"
    ctl.emergency_stop()
    assert ctl.dashboard("robotmode") == "Robotmode: POWER_OFF"
    ctl.run_program(SCRIPT.format(offset=0))
    assert ctl.runtime_state() == RUNTIME_STOPPED  # no program on an e-stopped arm
    ctl.release_emergency_stop()
    assert ctl.dashboard("power on") == "Powering on"
    assert ctl.dashboard("brake release") == "Brake releasing"
    ctl.run_program(SCRIPT.format(offset=0))
    assert ctl.runtime_state() == RUNTIME_PLAYING


def test_rtde_messages_round_trip_and_split_on_boundaries():
    types = ["DOUBLE", "VECTOR6D", "UINT64", "INT32"]
    fmt = rp.record_format(types)
    values = [1.5, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0), 2**40, -3]
    data = rp.pack_values(fmt, values)
    assert rp.unpack_values(fmt, types, data) == values
    stream = bytearray(rp.message(rp.DATA_PACKAGE, b"\x01" + data) + rp.message(ord("S"))[:2])
    messages = rp.split_messages(stream)
    assert [k for k, _ in messages] == [rp.DATA_PACKAGE] and len(stream) == 2
    with pytest.raises(rp.ProtocolError):
        rp.unpack_values(fmt, types, data[:-1])


def test_recipes_report_types_unknown_names_and_registers_in_use(twin):
    server = TwinServer(EmulatedController(twin))
    pairs = [socket.socketpair() for _ in range(2)]
    first, second = (_Client(a, "rtde") for a, _ in pairs)
    server.clients = {first.sock: first, second.sock: second}
    try:
        server._rtde(first, rp.CONTROL_PACKAGE_SETUP_INPUTS, b"input_int_register_0,")
        server._rtde(second, rp.CONTROL_PACKAGE_SETUP_INPUTS, b"input_int_register_0,")
        server._rtde(
            first, rp.CONTROL_PACKAGE_SETUP_OUTPUTS, struct.pack(">d", 500.0) + b"no_such,"
        )
        replies = [rp.split_messages(bytearray(c.outbox)) for c in (first, second)]
        assert replies[0][0][1] == b"\x01INT32"  # recipe 1
        assert replies[1][0][1] == b"\x00IN_USE"  # another client owns the register
        assert replies[0][1][1] == b"\x00NOT_FOUND"
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_a_256th_input_recipe_is_refused_not_a_crash(twin):
    """Recipe ids are one byte: the 256th setup ended the server in `bytes([256])`."""
    server = TwinServer(EmulatedController(twin))
    ours, theirs = socket.socketpair()
    client = _Client(ours, "rtde")
    server.clients = {ours: client}
    try:
        for i in range(256):
            server._rtde(client, rp.CONTROL_PACKAGE_SETUP_INPUTS,
                         f"input_double_register_{i % 24},".encode())
        replies = rp.split_messages(bytearray(client.outbox))
        assert [r[1][0] for r in replies] == [*range(1, 256), 0]
    finally:
        ours.close()
        theirs.close()


def test_operator_input_without_line_ends_is_dropped_not_kept(twin):
    """`serve-twin < /dev/zero` grew the operator buffer to gigabytes (MemoryError)."""
    import io
    import os

    from real.serve_twin import MAX_UNREAD

    reply = io.StringIO()
    server = TwinServer(EmulatedController(twin), reply=reply)
    read_end, write_end = os.pipe()
    control = open(read_end, "rb", buffering=0)  # noqa: SIM115 - closed below
    server.selector.register(control, 1, ("control", False))
    try:
        for _ in range(MAX_UNREAD // 4096 + 2):
            os.write(write_end, b"\0" * 4096)
            server._ready(server.selector.get_key(control))
        assert len(server._control_inbox) <= MAX_UNREAD
        assert "error: dropped" in reply.getvalue() and "without a line end" in reply.getvalue()
        os.write(write_end, b"status\n")
        server._ready(server.selector.get_key(control))
        assert server._control_inbox == b""  # a later line is read as usual
    finally:
        control.close()
        os.close(write_end)


def test_serve_twin_refuses_other_hosts_and_unknown_tasks():
    runner = CliRunner()
    result = runner.invoke(app, ["real", "serve-twin", "--task", USB, "--host", "10.0.0.2"])
    assert result.exit_code != 0 and "127.0.0.1 or localhost only" in result.output
    result = runner.invoke(app, ["real", "serve-twin", "--task", "InsertBench/Nope-v0"])
    assert result.exit_code != 0 and "unknown task" in result.output
    assert "Traceback" not in result.output


def test_an_injected_watchdog_expiry_needs_an_armed_watchdog(controller):
    assert not controller.expire_watchdog()  # none armed: nothing to fire
    send(controller, CMD_SET_WATCHDOG, [5.0])
    controller.tick()
    assert controller.expire_watchdog()
    send(controller, CMD_SET_WATCHDOG, [5.0])  # a servoing client's next package fed it again
    controller.tick()
    assert controller.runtime_state() == RUNTIME_STOPPED
    assert "RTDE watchdog" in controller.log.lines[-1][1]


def test_the_operator_hand_guides_the_plug_in_teach_mode_only(controller, twin):
    with pytest.raises(ValueError, match="teach mode"):
        controller.hand_guide("above")
    twin.teachMode()
    controller.hand_guide("above")
    for _ in range(len(controller._hand_path)):
        controller.tick()
    pos, mat = pose_to_pos_mat(twin.socket_pose())
    tcp = np.asarray(twin.getActualTCPPose()[:3])
    # 3 mm above the socket's mouth, along the socket axis (socket z points into the socket).
    above = twin.sim.task.seat_depth_mm * 1e-3 + 0.003
    assert mat.T @ (tcp - pos) == pytest.approx([0.0, 0.0, -above], abs=5e-4)
    # Freedrive ends with the program: it outlived a client killed at a calibration prompt,
    # and the next session's servo commands moved nothing.
    controller.stop_program("client gone")
    assert not twin.in_teach_mode


def test_a_malformed_rtde_message_drops_only_that_client(twin):
    server = TwinServer(EmulatedController(twin))
    ours, theirs = socket.socketpair()
    client = _Client(ours, "rtde")
    server.clients = {ours: client}
    server.selector.register(ours, 1, ("client", "rtde"))
    try:
        theirs.sendall(rp.message(rp.REQUEST_PROTOCOL_VERSION, b"\x02"))  # 1 byte, not 2
        key = server.selector.get_key(ours)
        server._ready(key)
        assert ours not in server.clients
        assert "dropping a rtde client" in server.controller.log.lines[-1][1]
    finally:
        theirs.close()


def test_clients_past_the_limit_or_the_file_descriptors_are_refused_not_the_end(
        twin, monkeypatch):
    """real26: the 1,016th connection of a script leaking them ended the server (EMFILE from
    accept), and every connected client lost its link."""
    import errno
    import selectors

    import real.serve_twin as serve_twin

    server = TwinServer(EmulatedController(twin))

    waiting = socket.socketpair()

    class OutOfDescriptors:  # until the spare descriptor is freed (diff30: a busy loop)
        calls = 0

        def accept(self):
            self.calls += 1
            if self.calls == 1:
                raise OSError(errno.EMFILE, "Too many open files")
            return waiting[0], None

    listener = OutOfDescriptors()
    server._ready(selectors.SelectorKey(listener, 0, 1, ("listen", "dashboard")))
    assert server.controller.log.lines[-1][1] == ("refused a dashboard client: [Errno 24] Too "
                                                   "many open files")
    assert listener.calls == 2 and waiting[0].fileno() == -1  # taken off the queue, closed
    waiting[1].close()
    monkeypatch.setattr(serve_twin, "MAX_CLIENTS", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    key = selectors.SelectorKey(listener, listener.fileno(), 1, ("listen", "dashboard"))
    first = socket.create_connection(listener.getsockname())
    second = socket.create_connection(listener.getsockname())
    try:
        server._ready(key)
        server._ready(key)
        assert len(server.clients) == 1
        assert server.controller.log.lines[-1][1] == ("refused a dashboard client: 1 clients "
                                                       "are connected")
        second.settimeout(5.0)
        assert second.recv(100) == b""  # closed, not left waiting
    finally:
        for sock in (first, second, listener, *server.clients):
            sock.close()


@pytest.mark.parametrize("frequency, names", [
    (1e-310, b"timestamp"),  # one cycle in inf: OverflowError
    (5e-324, b"timestamp"),  # ZeroDivisionError
    (float("nan"), b"timestamp"),
    (500.0, b"actual_q," * 1400),  # a 67,201-byte package: the header's size is 16 bits
    (500.0, b"a," * 32_000),  # a 320 kB reply of types: the client was dropped (diff21)
])
def test_an_output_recipe_the_controller_cannot_send_is_refused(twin, frequency, names):
    """Each of these was accepted, and the server ended at once or on its next cycle (real18)."""
    server = TwinServer(EmulatedController(twin))
    ours, theirs = socket.socketpair()
    client = _Client(ours, "rtde")
    server.clients = {ours: client}
    try:
        server._rtde(client, rp.CONTROL_PACKAGE_SETUP_OUTPUTS,
                     struct.pack(">d", frequency) + names)
        server._rtde(client, rp.CONTROL_PACKAGE_START, b"")
        replies = rp.split_messages(bytearray(client.outbox))
        assert [r[1][:1] for r in replies] == [b"\x00", b"\x00"]  # refused, not started
        server._rtde(client, rp.CONTROL_PACKAGE_SETUP_INPUTS, names)
        assert rp.split_messages(bytearray(client.outbox))[-1][1][:1] == b"\x00"
        server._cycle(0.0)
        client.outbox.clear()
        server._rtde(client, rp.CONTROL_PACKAGE_SETUP_OUTPUTS,  # the client goes on
                     struct.pack(">d", 500.0) + b"timestamp")
        assert rp.split_messages(bytearray(client.outbox))[0][1] == b"\x01DOUBLE"
    finally:
        ours.close()
        theirs.close()


def test_lines_outside_a_program_are_logged_and_dropped_one_pass(twin):
    """Each stray line made the script port call itself once more: 3,000 lines of plain
    commands ended the server in a RecursionError (real18). Programs around them still run."""
    server = TwinServer(EmulatedController(twin))
    ours, theirs = socket.socketpair()
    client = _Client(ours, "script")
    server.clients = {ours: client}
    ran: list[str] = []
    server.controller.run_program = ran.append
    try:
        client.inbox += b"x\n" * 3000 + b"def p():\n  sync()\nend\n\nstray\ndef q():\n  sy"
        server._script(client)
        assert ran == ["def p():\n  sync()\nend\n"]
        assert bytes(client.inbox) == b"def q():\n  sy"  # the program still arriving
        ignored = [line for _, line in server.controller.log.lines if "ignored" in line]
        assert len(ignored) == 3001 and ignored[-1].endswith("'stray'")
        client.inbox += b"nc()\nend\n"
        server._script(client)
        assert ran[-1] == "def q():\n  sync()\nend\n" and not client.inbox
    finally:
        ours.close()
        theirs.close()


def test_a_twin_server_that_does_not_start_in_time_is_stopped(monkeypatch):
    """TwinProcess gave up after 60 s with a bare TimeoutError and left the server starting:
    it then held the controller's ports for SERVER_MAX_S (600 s), and every later server on
    this machine was refused ("port 30004 ... is taken")."""
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def no_reply(self, timeout_s: float = 10.0) -> str:
        raise TimeoutError(f"no reply from the twin server within {timeout_s} s")

    monkeypatch.setattr(twin_process.subprocess, "Popen", recording_popen)
    monkeypatch.setattr(twin_process.TwinProcess, "_readline", no_reply)
    try:
        with pytest.raises(RuntimeError, match="did not start: \"no 'ready' line within 60 s\""):
            twin_process.TwinProcess("InsertBench/USB-v0")
        assert len(started) == 1 and started[0].poll() is not None
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("kind", ["dashboard", "script"])
def test_a_client_that_never_ends_its_line_or_program_is_dropped(twin, kind):
    """A dashboard line without a newline, or a program without its `end`, used to grow in the
    server's memory without bound (the script ports decoding all of it on every read)."""
    server = TwinServer(EmulatedController(twin))
    ours, theirs = socket.socketpair()
    client = _Client(ours, kind)
    server.clients = {ours: client}
    server.selector.register(ours, 1, ("client", kind))
    chunk = (b"def p():\n" if kind == "script" else b"") + b"x" * 65536
    try:
        for _ in range(40):  # 2.5 MiB in all, read as it arrives
            theirs.sendall(chunk)
            chunk = b"x" * 65536
            server._ready(server.selector.get_key(ours))
            if ours not in server.clients:
                break
        assert ours not in server.clients
        assert f"dropping a {kind} client" in server.controller.log.lines[-1][1]
    finally:
        theirs.close()


def test_a_twin_process_started_in_a_thread_outlives_the_thread():
    """Linux sends the parent-death signal when the *thread* that started a process exits: a
    TwinProcess made in a worker thread was killed as soon as that thread ended. It is tied
    to its parent by its stdin pipe instead (--exit-on-eof), which the parent's death closes."""
    import threading
    import time

    taken = twin_process.ports_taken()
    if taken:
        pytest.skip(f"ports {taken} on 127.0.0.1 are in use (a URSim or another twin?)")
    made: list[twin_process.TwinProcess] = []
    thread = threading.Thread(target=lambda: made.append(twin_process.TwinProcess(USB)))
    thread.start()
    thread.join()
    server = made[0]
    try:
        time.sleep(0.5)
        assert server.proc.poll() is None
        assert server.state()["safety_mode"] == 1
    finally:
        server.close()


def test_the_twins_command_log_keeps_the_most_recent_numbered_from_the_first():
    """A serve-twin kept every command (500 servoL a second: ~850 MB an hour, real18); the log
    keeps the last ones and still answers as the whole list would for those."""
    from real.twin import CommandLog, TwinCommand

    log = CommandLog(keep=3)
    for i in range(5):
        log.append(TwinCommand("servoL" if i % 2 else "zeroFtSensor", (i,), float(i), None))
    assert len(log) == 5 and log.counts == {"zeroFtSensor": 3, "servoL": 2}
    assert [c.args for c in log] == [(2,), (3,), (4,)]
    assert [c.args for c in log[3:]] == [(3,), (4,)] and log[-1].args == (4,)
    assert log[5:] == [] and log[2].args == (2,)
    assert [c.args for c in log[4:1:-1]] == [(4,), (3,), (2,)]
    assert [c.args for c in log[2::2]] == [(2,), (4,)]
    with pytest.raises(IndexError, match="before #2 were dropped"):
        log[1:]
    with pytest.raises(IndexError, match="before #2 were dropped"):
        log[::-1]  # down to #0 (it was islice's ValueError)
    with pytest.raises(IndexError, match="no command #0 kept"):
        log[0]


def test_a_server_opened_again_keeps_a_spare_descriptor(twin):
    """close() gave up the descriptor held for running out of them and open() did not take
    one again: a server reopened after a close busy-looped on its refusals (diff30's loop)."""
    free = []
    for _ in range(4):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(probe.getsockname()[1])
    server = TwinServer(EmulatedController(twin), ports=Ports(*free))
    server.open()
    server.close()
    assert server._spare is None
    server.open()
    try:
        assert server._spare is not None and not server._spare.closed
    finally:
        server.close()
