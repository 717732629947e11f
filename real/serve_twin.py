"""`insertbench real serve-twin`: the digital twin behind a UR controller's network interfaces.

A rehearsal robot on the loopback interface: RTDE on port 30004, the dashboard server on 29999
and the script ports 30002/30003 (where `RTDEControlInterface` uploads its control script),
with `real.ur_emulator.EmulatedController` as the controller and the MuJoCo task as the arm.
The unmodified ur_rtde client (`rtde_control`, `rtde_receive`, `dashboard_client`) connects
to 127.0.0.1 as to a robot. The script ports accept programs but, unlike a real controller,
stream no robot state (ur_rtde never reads them).

One thread runs everything: a `selectors` loop that serves the sockets between the 2 ms
control cycles, steps the twin in each cycle and sends every started RTDE client its data
package at its recipe's rate. If the machine is too slow for a cycle the loop catches up by up
to `MAX_CATCHUP` cycles, then skips ahead (counted in `overruns`).

Operator and fault injection: one command per line on stdin, one reply line on stdout
(`ok ...` or `error ...`); the controller's log goes to stderr. Commands:
  estop | release-estop | protective-stop | unlock | hand-guide seated|above|lifted | watchdog
  | drop | late SECONDS | pendant DASHBOARD-COMMAND | state | quit
`hand-guide`: in teach mode, the operator moves the plug by hand to the seated pose, or its face
3 mm or 8 mm above the socket's mouth, as a calibration asks. `watchdog`: the armed RTDE
watchdog fires as if the inputs had stopped. `drop`: every client connection is closed. `late
S`: data packages are held back S seconds, then sent in a burst. `pendant power on` (any
dashboard command): what the operator does on the teach pendant. `state`: a JSON line with the
twin's state. Commands from a file (`< ops.txt`) run at once, before the first cycle.
The server stops after `max_seconds`, on `quit`, on SIGINT/SIGTERM, when its parent process
dies, and with `exit_on_eof` when stdin closes.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import itertools
import json
import math
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from envs.tether import die_with_parent
from real import rtde_protocol as rp
from real.ur_emulator import CONTROLLER_VERSION, CYCLE_S, EmulatedController

#: Cycles the loop may run late back to back before it skips ahead.
MAX_CATCHUP = 10
#: A client that leaves this many bytes unread is dropped [bytes].
MAX_UNSENT = 1 << 20
#: A client whose unfinished line (dashboard) or program (script ports) grows past this is
#: dropped [bytes]; ur_rtde's control script is a few tens of kB.
MAX_UNREAD = 1 << 20
#: Clients served at once; one more is closed at once (ur_rtde opens three: RTDE in, RTDE out
#: and the dashboard; a script leaking connections ran the server out of file descriptors).
MAX_CLIENTS = 64
LOOPBACK = ("127.0.0.1", "localhost")
DASHBOARD_GREETING = "Connected: Universal Robots Dashboard Server\n"


def _types_fit(types: list[str]) -> bool:
    """Whether a setup reply naming `types` fits the header's 16-bit size: ~32,000 short
    unknown names (in a request that fits) made a reply of 320 kB, and the client was dropped
    on struct.error instead of refused (diff21)."""
    return rp.HEADER.size + 1 + len(",".join(types)) <= rp.MAX_MESSAGE_SIZE


def _setup_reply(kind: int, answer: int, types: list[str]) -> bytes:
    """A setup request's reply: `answer` (accepted, or the recipe id; 0 refused) and the
    names' types, or TOO_MANY_NAMES where they do not fit one message."""
    text = ",".join(types) if _types_fit(types) else "TOO_MANY_NAMES"
    return rp.message(kind, bytes([answer]) + text.encode())


class PortInUse(RuntimeError):
    """Another process (a URSim, another twin) listens on one of the controller's ports."""


@dataclass(frozen=True)
class Ports:
    """The controller's TCP ports (a physical robot's defaults)."""

    rtde: int = 30004
    dashboard: int = 29999
    primary: int = 30002
    realtime: int = 30003


@dataclass
class _Client:
    sock: socket.socket
    kind: str  # "rtde", "dashboard" or "script"
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    # RTDE only
    output_names: list[str] = field(default_factory=list)
    output_format: struct.Struct | None = None
    output_every: int = 1
    inputs: dict[int, tuple[list[str], list[str], struct.Struct]] = field(default_factory=dict)
    started: bool = False


class TwinServer:
    """The sockets and the control cycle around an `EmulatedController`; see the module
    docstring. `host` must be a loopback address."""

    def __init__(
        self,
        controller: EmulatedController,
        host: str = "127.0.0.1",
        ports: Ports | None = None,
        reply: TextIO = sys.stdout,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the rehearsal robot serves on loopback only (127.0.0.1), not {host}")
        self.controller = controller
        self.host = host
        self.ports = ports or Ports()
        self.reply = reply
        self.selector = selectors.DefaultSelector()
        self.clients: dict[socket.socket, _Client] = {}
        self.listeners: dict[socket.socket, str] = {}
        self.cycles = 0
        self.overruns = 0
        self.hold_until = 0.0
        self.held: list[tuple[_Client, bytes]] = []
        self.stopping = False
        self._outputs = controller.outputs()
        self._control_inbox = bytearray()
        self._control_open = False
        #: A descriptor held in reserve: out of them, it is freed to take the waiting client
        #: off the queue and close it (left queued, the listener stayed readable and its
        #: refusal was logged 366,000 times a second; diff30).
        self._spare: Any = open(os.devnull, "rb")  # noqa: SIM115 - held until close()

    # ----------------------------------------------------------------------------------------
    # Lifetime

    def open(self) -> None:
        """Listen on every port, or raise PortInUse naming the port that is taken."""
        if self._spare is None:  # close() gave it up: a server opened again keeps one too
            self._spare = open(os.devnull, "rb")  # noqa: SIM115 - see __init__
        for port, kind in (
            (self.ports.rtde, "rtde"),
            (self.ports.dashboard, "dashboard"),
            (self.ports.primary, "script"),
            (self.ports.realtime, "script"),
        ):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, port))
            except OSError as e:
                sock.close()
                self.close()
                raise PortInUse(f"port {port} on {self.host} is taken ({e.strerror})") from e
            sock.listen(8)
            sock.setblocking(False)
            self.listeners[sock] = kind
            self.selector.register(sock, selectors.EVENT_READ, ("listen", kind))

    def close(self) -> None:
        for sock in list(self.clients):
            self._drop(sock)
        for sock in list(self.listeners):
            self.selector.unregister(sock)
            sock.close()
        self.listeners.clear()
        if self._spare is not None:
            self._spare.close()
            self._spare = None

    def serve(
        self,
        max_seconds: float,
        control: TextIO | None = None,
        exit_on_eof: bool = False,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Run the control cycle until `max_seconds` have passed, `quit`, or `alive()` turns
        False (checked every second); `control` is the operator's command stream."""
        if control is not None:
            try:
                self.selector.register(control, selectors.EVENT_READ, ("control", exit_on_eof))
                self._control_open = True
            except (PermissionError, ValueError):
                # A regular file or /dev/null, which epoll cannot wait on: its commands were
                # ignored, and so was its end with exit_on_eof (it served to --max-seconds).
                self._run_control_file(control, exit_on_eof)
        deadline = time.monotonic() + max_seconds
        next_cycle = time.monotonic()
        next_check = next_cycle + 1.0
        try:
            while not self.stopping:
                timeout = max(0.0, next_cycle - time.monotonic())
                for key, _ in self.selector.select(timeout):
                    self._ready(key)
                now = time.monotonic()
                if now >= next_cycle:
                    late = int((now - next_cycle) / CYCLE_S)
                    if late > MAX_CATCHUP:
                        self.overruns += late
                        next_cycle += late * CYCLE_S
                    self._cycle(now)
                    next_cycle += CYCLE_S
                if now >= next_check:
                    next_check = now + 1.0
                    if now >= deadline or not alive():
                        self.stopping = True
        finally:
            if self._control_open:
                self.selector.unregister(control)
            self.close()

    def _run_control_file(self, control: TextIO, exit_on_eof: bool) -> None:
        """Operator commands from a file: run at once, in order, before the first cycle; the
        file's end is the stream's end. Read a line at a time, each at most `MAX_UNREAD`
        characters: `< /dev/zero` (no line end, never an end) was read whole, until memory ran
        out (real25); a longer line ends the reading."""
        for line in iter(lambda: control.readline(MAX_UNREAD + 1), ""):
            if len(line) > MAX_UNREAD:
                self._answer(f"error: operator input has a line over {MAX_UNREAD} characters; "
                             "the rest of it is not read")
                return
            self._answer(self.control(line.rstrip("\n")))
            if self.stopping:
                return
        if exit_on_eof:
            self.stopping = True

    # ----------------------------------------------------------------------------------------
    # The control cycle

    def _cycle(self, now: float) -> None:
        self.controller.tick()
        self.cycles += 1
        cache: dict[str, Any] = {}
        for client in list(self.clients.values()):
            if client.kind != "rtde" or not client.started or self.cycles % client.output_every:
                continue
            values = []
            for name in client.output_names:
                if name not in cache:
                    cache[name] = self._outputs[name]()
                values.append(cache[name])
            data = rp.message(
                rp.DATA_PACKAGE, b"\x01" + rp.pack_values(client.output_format, values)
            )
            if now < self.hold_until:
                self.held.append((client, data))
            else:
                self._send(client, data)
        if self.held and now >= self.hold_until:
            held, self.held = self.held, []
            for client, data in held:
                if client.sock in self.clients:
                    self._send(client, data)
        for client in list(self.clients.values()):
            self._flush(client)

    # ----------------------------------------------------------------------------------------
    # Sockets

    def _ready(self, key: selectors.SelectorKey) -> None:
        role, detail = key.data
        if role == "listen":
            try:
                conn, _ = key.fileobj.accept()
            except OSError as err:  # out of file descriptors: it ended the server (real26)
                self.controller.log.add(self.controller.time_s, f"refused a {detail} client: {err}")
                if self._spare is not None and err.errno in (errno.EMFILE, errno.ENFILE):
                    self._spare.close()
                    with contextlib.suppress(OSError):
                        key.fileobj.accept()[0].close()
                    try:
                        self._spare = open(os.devnull, "rb")  # noqa: SIM115 - see __init__
                    except OSError:
                        self._spare = None
                return
            if len(self.clients) >= MAX_CLIENTS:
                self.controller.log.add(self.controller.time_s, f"refused a {detail} client: "
                                        f"{MAX_CLIENTS} clients are connected")
                conn.close()
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(conn, detail)
            self.clients[conn] = client
            self.selector.register(conn, selectors.EVENT_READ, ("client", detail))
            if detail == "dashboard":
                self._send(client, DASHBOARD_GREETING.encode())
            return
        if role == "control":
            data = os.read(key.fileobj.fileno(), 4096)
            if not data:
                self.selector.unregister(key.fileobj)
                self._control_open = False
                if detail:  # exit_on_eof
                    self.stopping = True
                return
            self._control_inbox += data
            while b"\n" in self._control_inbox:
                line, _, rest = bytes(self._control_inbox).partition(b"\n")
                self._control_inbox[:] = rest
                self._answer(self.control(line.decode(errors="replace")))
            if len(self._control_inbox) > MAX_UNREAD:  # `< /dev/zero` ran out of memory
                self._answer(f"error: dropped {len(self._control_inbox)} bytes of operator "
                             "input without a line end")
                self._control_inbox.clear()
            return
        sock = key.fileobj
        client = self.clients.get(sock)
        if client is None:
            return
        try:
            data = sock.recv(65536)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self._drop(sock)
            return
        client.inbox += data
        if len(client.inbox) > MAX_UNREAD:
            # A line or program without its end used to grow without bound (memory), and the
            # script ports decoded all of it again on every read.
            self.controller.log.add(
                self.controller.time_s,
                f"dropping a {client.kind} client: {len(client.inbox)} bytes without the end "
                f"of a {'program' if client.kind == 'script' else 'line'}",
            )
            self._drop(sock)
            return
        try:
            if client.kind == "rtde":
                for kind, payload in rp.split_messages(client.inbox):
                    self._rtde(client, kind, payload)
            elif client.kind == "dashboard":
                self._dashboard(client)
            else:
                self._script(client)
        except (rp.ProtocolError, UnicodeDecodeError, struct.error, ArithmeticError) as e:
            self.controller.log.add(self.controller.time_s, f"dropping a {client.kind} client: {e}")
            self._drop(sock)
        if sock in self.clients:
            self._flush(client)

    def _send(self, client: _Client, data: bytes) -> None:
        client.outbox += data
        if len(client.outbox) > MAX_UNSENT:
            self.controller.log.add(
                self.controller.time_s, f"a {client.kind} client stopped reading"
            )
            self._drop(client.sock)

    def _flush(self, client: _Client) -> None:
        if not client.outbox or client.sock not in self.clients:
            return
        try:
            sent = client.sock.send(client.outbox)
            del client.outbox[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(client.sock)

    def _drop(self, sock: socket.socket) -> None:
        if self.clients.pop(sock, None) is None:
            return
        self.selector.unregister(sock)
        sock.close()

    # ----------------------------------------------------------------------------------------
    # RTDE (port 30004)

    def _rtde(self, client: _Client, kind: int, payload: bytes) -> None:
        if kind == rp.REQUEST_PROTOCOL_VERSION:
            (version,) = struct.unpack(">H", payload[:2])
            accepted = version == rp.PROTOCOL_VERSION
            self._send(client, rp.message(kind, bytes([accepted])))
        elif kind == rp.GET_URCONTROL_VERSION:
            self._send(client, rp.message(kind, struct.pack(">IIII", *CONTROLLER_VERSION)))
        elif kind == rp.CONTROL_PACKAGE_SETUP_OUTPUTS:
            (frequency,) = struct.unpack(">d", payload[:8])
            names = rp.parse_names(payload[8:])
            types = [rp.OUTPUT_TYPES.get(n, "NOT_FOUND") for n in names]
            # 1 Hz at least, as the controller asks: 1e-310 Hz made the cycle's divisor inf.
            ok = ("NOT_FOUND" not in types and 1.0 <= frequency <= 1 / CYCLE_S and names
                  and _types_fit(types))
            fmt = rp.record_format(types) if ok else None
            # A package must fit the header's 16-bit size (1,400 actual_q ended the server).
            ok = ok and rp.HEADER.size + 1 + fmt.size <= rp.MAX_MESSAGE_SIZE
            if ok:
                client.output_names = names
                client.output_format = fmt
                client.output_every = max(1, round(1 / (CYCLE_S * frequency)))
            self._send(client, _setup_reply(kind, 1 if ok else 0, types))
        elif kind == rp.CONTROL_PACKAGE_SETUP_INPUTS:
            names = rp.parse_names(payload)
            owned = {
                n
                for other in self.clients.values()
                if other is not client
                for theirs, _, _ in other.inputs.values()
                for n in theirs
            }
            types = ["IN_USE" if n in owned else rp.INPUT_TYPES.get(n, "NOT_FOUND") for n in names]
            recipe = 0  # refused; ids are one byte, so 255 recipes at most
            if (all(t in rp.TYPE_FORMATS for t in types) and names and len(client.inputs) < 255
                    and _types_fit(types)):
                recipe = len(client.inputs) + 1
                client.inputs[recipe] = (names, types, rp.record_format(types))
            self._send(client, _setup_reply(kind, recipe, types))
        elif kind == rp.CONTROL_PACKAGE_START:
            client.started = client.output_format is not None
            self._send(client, rp.message(kind, bytes([client.started])))
        elif kind == rp.CONTROL_PACKAGE_PAUSE:
            client.started = False
            self._send(client, rp.message(kind, b"\x01"))
        elif kind == rp.DATA_PACKAGE:
            recipe = client.inputs.get(payload[0]) if payload else None
            if recipe is None:
                self._send(
                    client, rp.text_message(f"unknown input recipe {payload[:1]!r}", level=1)
                )
                return
            names, types, fmt = recipe
            self.controller.apply_inputs(names, rp.unpack_values(fmt, types, payload[1:]))
        else:
            raise rp.ProtocolError(f"unknown RTDE message type {kind}")

    # ----------------------------------------------------------------------------------------
    # Dashboard (29999) and script ports (30002, 30003)

    def _dashboard(self, client: _Client) -> None:
        while b"\n" in client.inbox:
            raw, _, rest = bytes(client.inbox).partition(b"\n")
            client.inbox[:] = rest
            line = raw.decode().strip()
            if line.lower() == "quit":
                self._send(client, b"Disconnected\n")
                self._flush(client)
                self._drop(client.sock)
                return
            self._send(client, (self.controller.dashboard(line) + "\n").encode())

    def _script(self, client: _Client) -> None:
        """Programs arrive as text: 'def name():' ... a line 'end' at column 0; a line outside
        a program is logged and dropped. One pass over what arrived (it called itself for each
        program or stray line: ~1,000 lines of plain commands ended the server, real18)."""
        text = client.inbox.decode()
        start = None  # where the program being read begins
        consumed = 0  # characters dealt with
        position = 0
        for line in text.split("\n")[:-1]:
            line_start, position = position, position + len(line) + 1
            if start is None and (line.startswith("def ") or line.startswith("sec ")):
                start = line_start
            elif start is not None and line.rstrip() == "end":
                self.controller.run_program(text[start:position])
                start, consumed = None, position
            elif start is None:
                if line.strip():
                    self.controller.log.add(
                        self.controller.time_s,
                        f"ignored a script line outside a program: {line!r}")
                consumed = position
        del client.inbox[: len(text[:consumed].encode())]

    # ----------------------------------------------------------------------------------------
    # Operator commands

    def control(self, line: str) -> str:
        """Execute one operator command (see the module docstring); returns the reply line."""
        words = line.split()
        if not words:
            return "error empty command"
        cmd, args = words[0].lower(), words[1:]
        ctl = self.controller
        if cmd == "estop":
            ctl.emergency_stop()
        elif cmd == "release-estop":
            ctl.release_emergency_stop()
        elif cmd == "protective-stop":
            ctl.protective_stop()
        elif cmd == "unlock":
            return "ok " + ctl.dashboard("unlock protective stop")
        elif cmd == "pendant":
            return "ok " + ctl.dashboard(" ".join(args))
        elif cmd == "hand-guide":
            try:
                ctl.hand_guide(args[0] if args else "")
            except ValueError as e:
                return f"error {e}"
        elif cmd == "watchdog":
            if not ctl.expire_watchdog():
                return "error no RTDE watchdog is armed"
        elif cmd == "drop":
            n = sum(1 for c in self.clients.values())
            for sock in list(self.clients):
                self._drop(sock)
            return f"ok dropped {n} connections"
        elif cmd == "late":
            try:
                seconds = float(args[0])
            except (IndexError, ValueError):
                return "error usage: late SECONDS"
            if not (math.isfinite(seconds) and 0 < seconds <= 10):
                return "error late SECONDS must be in (0, 10]"
            self.hold_until = time.monotonic() + seconds
        elif cmd == "state":
            return "ok " + json.dumps(self.state())
        elif cmd == "quit":
            self.stopping = True
        else:
            return f"error unknown command {cmd!r}"
        return "ok"

    def state(self) -> dict[str, Any]:
        ctl, twin = self.controller, self.controller.twin
        sim = twin.sim
        return {
            "time_s": ctl.time_s,
            "cycles": self.cycles,
            "overruns": self.overruns,
            "program": ctl.program.name if ctl.program is not None else None,
            "teach_mode": twin.in_teach_mode,
            "safety_mode": twin.getSafetyMode(),
            "robot_mode": ctl.robot_mode(),
            "tcp_pose": ctl.actual_tcp_pose(),
            "tcp_offset": ctl.tcp_offset,
            "socket_pose": [float(v) for v in twin.socket_pose()],
            "payload_kg": ctl.payload_kg,
            "insertion_depth_mm": float(sim.insertion_depth_mm()),
            "mated": bool(sim.insertion_depth_mm() >= sim.task.connector.success_depth_mm),
            "peak_contact_force_n": twin.peak_contact_force_n,
            "clients": sorted(c.kind for c in self.clients.values()),
            "commands": list(itertools.islice(
                (c.name for c in reversed(twin.commands) if c.name != "servoL"), 200))[::-1],
            "servol_count": twin.commands.counts["servoL"],
        }

    def _answer(self, text: str) -> None:
        try:
            self.reply.write(text + "\n")
            self.reply.flush()
        except (BrokenPipeError, ValueError):  # the operator went away
            pass


DEFAULT_PORTS = Ports()


def run(
    task: str,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    ports: Ports = DEFAULT_PORTS,
    max_seconds: float = 3600.0,
    exit_on_eof: bool = False,
    verbose: bool = True,
) -> str | None:
    """Build the twin for `task`, serve it, and stop as the module docstring says; returns
    "terminated" or "interrupted" where a SIGTERM or Ctrl-C stopped it, else None."""
    # Before the twin is built (a second): a parent killed meanwhile left the server orphaned,
    # holding the controller's ports for `max_seconds`. A program that drives the server over
    # a pipe (`benchmark.twin_process.TwinProcess`, `exit_on_eof`) ends it by closing the pipe, as
    # its death does, and may have started it from a thread, whose end Linux's death signal
    # follows (`envs.tether.die_with_parent`).
    parent = os.getppid()
    die_with_parent(parent, death_signal=not exit_on_eof)

    def alive() -> bool:
        return os.getppid() == parent

    from real.twin import DigitalTwinRobot
    from real.ur_emulator import ControllerLog

    log = ControllerLog(echo=(lambda s: print(s, file=sys.stderr, flush=True)) if verbose else None)
    controller = EmulatedController(DigitalTwinRobot(task, seed=seed), log)
    server = TwinServer(controller, host, ports)
    server.open()  # PortInUse when a port is taken
    if not alive():
        return None
    stopped_by: list[str] = []  # "terminated" or "interrupted": the caller's exit status

    def on_sigterm(*_: object) -> None:
        stopped_by.append("terminated")
        server.stopping = True

    signal.signal(signal.SIGTERM, on_sigterm)
    # The start-up's objects (MuJoCo bindings, the twin, Typer) move out of the collector's
    # reach: a full collection over them took 50-180 ms, 25-90 missed 2 ms cycles.
    gc.collect()
    gc.freeze()
    server._answer(
        f"ready {task} on {host}: rtde {ports.rtde}, dashboard {ports.dashboard}, "
        f"script {ports.primary}/{ports.realtime}"
    )
    try:
        server.serve(max_seconds, sys.stdin, exit_on_eof, alive)
    except KeyboardInterrupt:
        stopped_by.append("interrupted")
    server._answer(f"stopped after {server.cycles} cycles, {server.overruns} overruns")
    return stopped_by[0] if stopped_by else None
