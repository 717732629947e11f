"""The wire format of Universal Robots' RTDE interface (protocol version 2), server side.

Every message is a header (uint16 total size in bytes, uint8 type) and a payload, big-endian.
A client negotiates the protocol version ('V'), asks the controller version ('v'), sets up
one output recipe ('O': double frequency [Hz] + comma-separated variable names; the reply is
the recipe id + their types) and input recipes ('I': names; the reply is the recipe id + types,
"IN_USE" for a register another client owns), then starts ('S') the synchronisation: the
controller streams data packages ('U': recipe id + the values) at the recipe's frequency and
applies the input packages the client sends. Reference: Universal Robots, "Real-Time Data
Exchange (RTDE) Guide" (the variable names and types below are the guide's).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

PROTOCOL_VERSION = 2
HEADER = struct.Struct(">HB")
#: A message's largest size, header included [bytes]: the header's 16-bit size field.
MAX_MESSAGE_SIZE = 0xFFFF

REQUEST_PROTOCOL_VERSION = ord("V")
GET_URCONTROL_VERSION = ord("v")
TEXT_MESSAGE = ord("M")
DATA_PACKAGE = ord("U")
CONTROL_PACKAGE_SETUP_OUTPUTS = ord("O")
CONTROL_PACKAGE_SETUP_INPUTS = ord("I")
CONTROL_PACKAGE_START = ord("S")
CONTROL_PACKAGE_PAUSE = ord("P")

#: struct codes of the RTDE data types.
TYPE_FORMATS = {
    "BOOL": "?",
    "UINT8": "B",
    "UINT32": "I",
    "UINT64": "Q",
    "INT32": "i",
    "DOUBLE": "d",
    "VECTOR3D": "3d",
    "VECTOR6D": "6d",
    "VECTOR6INT32": "6i",
    "VECTOR6UINT32": "6I",
}

#: Controller outputs the twin serves (RTDE guide, e-Series).
OUTPUT_TYPES: dict[str, str] = {
    "timestamp": "DOUBLE",
    "target_q": "VECTOR6D",
    "target_qd": "VECTOR6D",
    "target_qdd": "VECTOR6D",
    "target_current": "VECTOR6D",
    "target_moment": "VECTOR6D",
    "actual_q": "VECTOR6D",
    "actual_qd": "VECTOR6D",
    "actual_current": "VECTOR6D",
    "joint_control_output": "VECTOR6D",
    "actual_TCP_pose": "VECTOR6D",
    "actual_TCP_speed": "VECTOR6D",
    "actual_TCP_force": "VECTOR6D",
    "target_TCP_pose": "VECTOR6D",
    "target_TCP_speed": "VECTOR6D",
    "actual_digital_input_bits": "UINT64",
    "joint_temperatures": "VECTOR6D",
    "actual_execution_time": "DOUBLE",
    "robot_mode": "INT32",
    "joint_mode": "VECTOR6INT32",
    "safety_mode": "INT32",
    "actual_tool_accelerometer": "VECTOR3D",
    "speed_scaling": "DOUBLE",
    "target_speed_fraction": "DOUBLE",
    "actual_momentum": "DOUBLE",
    "actual_main_voltage": "DOUBLE",
    "actual_robot_voltage": "DOUBLE",
    "actual_robot_current": "DOUBLE",
    "actual_joint_voltage": "VECTOR6D",
    "actual_digital_output_bits": "UINT64",
    "runtime_state": "UINT32",
    "standard_analog_input0": "DOUBLE",
    "standard_analog_input1": "DOUBLE",
    "standard_analog_output0": "DOUBLE",
    "standard_analog_output1": "DOUBLE",
    "robot_status_bits": "UINT32",
    "safety_status_bits": "UINT32",
    "ft_raw_wrench": "VECTOR6D",
    "payload": "DOUBLE",
    "payload_cog": "VECTOR3D",
    "payload_inertia": "VECTOR6D",
    **{f"output_int_register_{i}": "INT32" for i in range(48)},
    **{f"output_double_register_{i}": "DOUBLE" for i in range(48)},
}

#: Controller inputs the twin accepts.
INPUT_TYPES: dict[str, str] = {
    **{f"input_int_register_{i}": "INT32" for i in range(48)},
    **{f"input_double_register_{i}": "DOUBLE" for i in range(48)},
    "external_force_torque": "VECTOR6D",
}


class ProtocolError(ValueError):
    """A message that does not follow the RTDE protocol."""


def message(kind: int, payload: bytes = b"") -> bytes:
    """One RTDE message: header + payload."""
    return HEADER.pack(HEADER.size + len(payload), kind) + payload


def split_messages(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Remove and return the complete messages at the front of `buffer` as (type, payload)."""
    out = []
    while len(buffer) >= HEADER.size:
        size, kind = HEADER.unpack_from(buffer)
        if size < HEADER.size:
            raise ProtocolError(f"RTDE message size {size} is smaller than its header")
        if len(buffer) < size:
            break
        out.append((kind, bytes(buffer[HEADER.size : size])))
        del buffer[:size]
    return out


def text_message(text: str, source: str = "twin", level: int = 3) -> bytes:
    """A text message ('M', protocol 2): level 0 exception, 1 error, 2 warning, 3 info."""
    body, src = text.encode()[:255], source.encode()[:255]
    payload = bytes([len(body)]) + body + bytes([len(src)]) + src + bytes([level])
    return message(TEXT_MESSAGE, payload)


def parse_names(payload: bytes) -> list[str]:
    """Comma-separated variable names (ur_rtde ends the list with a comma)."""
    return [n for n in payload.decode("ascii", errors="replace").split(",") if n]


def record_format(types: Sequence[str]) -> struct.Struct:
    """The struct of a data package's values for these RTDE types."""
    return struct.Struct(">" + "".join(TYPE_FORMATS[t] for t in types))


def pack_values(fmt: struct.Struct, values: Sequence) -> bytes:
    """Flatten vectors and pack them."""
    flat: list = []
    for v in values:
        if isinstance(v, (list, tuple)):
            flat.extend(v)
        else:
            flat.append(v)
    return fmt.pack(*flat)


def unpack_values(fmt: struct.Struct, types: Sequence[str], data: bytes) -> list:
    """The values of a data package, vectors as tuples, in recipe order."""
    if len(data) != fmt.size:
        raise ProtocolError(f"an input package carries {len(data)} bytes, its recipe {fmt.size}")
    flat = fmt.unpack(data)
    out, i = [], 0
    for t in types:
        n = int(TYPE_FORMATS[t][0]) if TYPE_FORMATS[t][0].isdigit() else 1
        out.append(flat[i] if n == 1 else tuple(flat[i : i + n]))
        i += n
    return out
