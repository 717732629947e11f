"""Typed agent configs: build a config dataclass from a dict (or ``k=v`` strings) with clear errors.

Every agent has a ``@dataclass`` config whose fields carry type hints; ``Literal[...]`` fields list
their allowed values. ``build_config`` rejects unknown keys, converts CLI strings to the field's
type and calls the config's ``validate()`` for range checks, so a bad value fails before any
network is built, with a message naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

import numpy as np

C = TypeVar("C")


def build_config(cls: type[C], config: C | Mapping[str, Any] | None) -> C:
    """Return a validated ``cls`` instance from an instance, a mapping of overrides, or None."""
    if config is None:
        config = {}
    if isinstance(config, cls):  # checked field by field as a dict is: SACConfig(obs_norm="no")
        # kept normalisation on, TD3Config(policy_delay=2.5) trained a different algorithm
        config = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls) if f.init}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        raise ValueError(
            f"config must be a {cls.__name__} or a dict, got {type(config).__name__}"
        )
    elif isinstance(config, Mapping):
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; allowed fields: {sorted(fields)}"
            )
        kwargs = {k: _convert(cls.__name__, k, v, hints[k]) for k, v in config.items()}
        obj = cls(**kwargs)
    else:
        raise ValueError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(obj):
        _check_literal(cls.__name__, f.name, getattr(obj, f.name), hints[f.name])
        _check_finite(cls.__name__, f.name, getattr(obj, f.name))
    check_config_device(obj, available=False)  # where it runs: `make_agent`
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    for f in dataclasses.fields(obj):  # after validate, whose own bounds say more
        _check_capacity(cls.__name__, f.name, getattr(obj, f.name))
        _check_magnitude(cls.__name__, f.name, getattr(obj, f.name))
    return obj


def check_torch_device(text: str, available: bool = True) -> str:
    """``text`` if it names a torch device (cpu, cuda[:N] or mps) and, with ``available``, one
    this torch can use here; ValueError otherwise. A bad name or CUDA on a CPU build failed in
    torch, as a RuntimeError listing every device type torch knows, or an AssertionError. A
    config is checked without ``available``: a matrix checks its cells' configs on a machine
    that may not be the one they run on."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise ValueError(f"not a torch device: {text!r}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"must be cpu, cuda[:N] or mps, got {text!r}")
    if available and device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{text!r}: this torch sees no CUDA device")
    if available and device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{text!r}: this torch has no MPS device")
    return text


def check_config_device(config: Any, available: bool = True) -> None:
    """`check_torch_device` on a config's ``device`` field, if it has one (scripted agents
    have no networks); the error names the field."""
    if hasattr(config, "device"):
        try:
            check_torch_device(config.device, available)
        except ValueError as err:
            raise ValueError(f"{type(config).__name__}.device: {err}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)


def check(condition: bool, cls_name: str, field: str, requirement: str, value: Any) -> None:
    """Raise ``ValueError`` naming the field when ``condition`` is false."""
    if not condition:
        raise ValueError(f"{cls_name}.{field} must be {requirement}, got {value!r}")


def _check_literal(cls_name: str, name: str, value: Any, hint: Any) -> None:
    if get_origin(hint) is Literal and value not in get_args(hint):
        raise ValueError(
            f"{cls_name}.{name} must be one of {list(get_args(hint))}, got {value!r}"
        )


#: The largest magnitude of a float field. Networks compute in float32 (largest 3.4e38):
#: `init_temperature=1e300` passed every range check, and its log, exp and product with a
#: log-probability made NaN losses. No built-in default exceeds 100.
MAX_FLOAT_MAGNITUDE = 1e6
#: The largest learning rate (fields `lr`, `*_lr`): Adam moves each weight by about lr per step.
MAX_LEARNING_RATE = 1.0


def _floats(value: Any) -> list[float]:
    return [v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, float)]


def _check_finite(cls_name: str, name: str, value: Any) -> None:
    """Refuse inf / NaN in a float field (or a tuple of them): range checks such as ``> 0``
    let ``inf`` through, and an infinite learning rate or noise scale trains NaN weights."""
    if any(not math.isfinite(v) for v in _floats(value)):
        raise ValueError(f"{cls_name}.{name} must be a finite number, got {value!r}")


def _check_magnitude(cls_name: str, name: str, value: Any) -> None:
    """Refuse magnitudes beyond `MAX_FLOAT_MAGNITUDE` in a float field (or a tuple of them), and
    learning rates above `MAX_LEARNING_RATE`: finite, they still overflow float32 arithmetic or
    throw the weights out of range."""
    floats = _floats(value)
    if any(abs(v) > MAX_FLOAT_MAGNITUDE for v in floats):
        raise ValueError(f"{cls_name}.{name} must be at most {MAX_FLOAT_MAGNITUDE:g} in "
                         f"magnitude (float32 networks), got {value!r}")
    if (name == "lr" or name.endswith("_lr")) and any(v > MAX_LEARNING_RATE for v in floats):
        raise ValueError(f"{cls_name}.{name} must be at most {MAX_LEARNING_RATE:g} (a learning "
                         f"rate), got {value!r}")


#: The largest replay or demo buffer a config may ask for [transitions]: 115 days at the 10 Hz
#: policy rate. Buffers are allocated at full size (lazily: untouched rows cost nothing), so
#: `buffer_size=10**14` failed as numpy's "Unable to allocate 2.13 PiB".
MAX_BUFFER_TRANSITIONS = 10**8


#: The largest batch a config may ask for [rows per gradient step]: built-in agents use at most
#: 256; `batch_size=10**12` passed and failed inside the run as "Unable to allocate 7.28 TiB".
MAX_BATCH_ROWS = 100_000


#: The widest layer a config may ask for (`hidden`, `*_hidden`, `*_dim`, `*_channels`) [units]:
#: `hidden=100000,100000` failed in the allocator ("can't allocate 40000000000 bytes") before
#: the parameter budget of `agents.registry` could name the field.
MAX_WIDTH = 16_384
#: The largest image shift or padding (`*_px`, `augment_pad`) [pixels].
MAX_SHIFT_PX = 64
#: The largest image side a config may ask for (`*image_size`) [pixels].
MAX_IMAGE_SIZE = 4096  # as `envs.task_options.IMAGE_SIZE_RANGE`
#: The most gradient steps per env step (`utd_ratio`, `critic_actor_ratio`, `*_per_step`):
#: the papers use up to 20; 10^8 made the first update run for days.
MAX_UPDATES_PER_STEP = 1_000
#: Any other integer field: 1e20 ended in a C++ "Overflow when unpacking long long" dump.
MAX_INT_FIELD = 10**9


def _int_limit(name: str) -> tuple[int, str]:
    """The bound of integer field `name` and its unit."""
    if name == "buffer_size" or name.endswith("_buffer_size"):
        return MAX_BUFFER_TRANSITIONS, "transitions"
    if name in ("batch_size", "context_size", "batch_per_task", "meta_batch") \
            or name.endswith(("_batch_size", "_rows")):
        return MAX_BATCH_ROWS, "rows"
    if name == "hidden" or name.endswith(("_hidden", "_dim", "_channels")):
        return MAX_WIDTH, "units"
    if name.endswith("_px") or name == "augment_pad":
        return MAX_SHIFT_PX, "pixels"
    if name.endswith("image_size"):
        return MAX_IMAGE_SIZE, "pixels"
    if name in ("utd_ratio", "critic_actor_ratio") or name.endswith("_per_step"):
        return MAX_UPDATES_PER_STEP, "updates per step"
    return MAX_INT_FIELD, ""


def _check_capacity(cls_name: str, name: str, value: Any) -> None:
    """Bound every integer field of a config (or each of a tuple): buffer capacities, rows per
    gradient step, layer widths, pixel shifts, and any other count (`_int_limit`)."""
    ints = [v for v in (value if isinstance(value, tuple) else (value,))
            if isinstance(v, int) and not isinstance(v, bool)]
    limit, unit = _int_limit(name)
    if any(v > limit for v in ints):
        raise ValueError(f"{cls_name}.{name} must be at most {limit:,}{' ' + unit if unit else ''}"
                         f", got {value if isinstance(value, tuple) else f'{value:,}'}")


def _convert(cls_name: str, name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (possibly a CLI string) to the type ``hint``; errors name the field."""
    if isinstance(value, np.generic):  # np.int64(1) for a Literal field was kept, and its
        value = value.item()  # JSON failed at save (agents21); np.bool_ was refused
    origin = get_origin(hint)
    try:
        if origin is Literal:
            allowed = get_args(hint)
            if isinstance(value, str) and value not in allowed:
                for a in allowed:  # a Literal of ints given as a CLI string
                    if str(a) == value:
                        return a
            return value
        if origin in (types.UnionType, typing.Union):
            args = [a for a in get_args(hint) if a is not type(None)]
            # "null" as JSON writes it (`-c exploration_std=null` was refused, agents19)
            if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
                return None
            return _convert(cls_name, name, value, args[0])
        if origin is tuple:
            item = get_args(hint)[0]
            if isinstance(value, str) and value.lstrip().startswith("["):
                try:
                    value = json.loads(value)  # the JSON form `-e` takes: ["wrist", "side"]
                except ValueError:
                    value = value.strip().strip("[]")  # [wrist,side]: bare words
            if isinstance(value, str):
                value = [v.strip() for v in value.replace("(", "").replace(")", "").split(",")
                         if v.strip()]
            return tuple(_convert(cls_name, name, v, item) for v in value)
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if not isinstance(value, bool | int) or value not in (0, 1):  # 2 is no bool
                raise TypeError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError(value)
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError(value)
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError(value)
            return value
    except (TypeError, ValueError):
        type_name = getattr(hint, "__name__", str(hint))
        raise ValueError(f"{cls_name}.{name} must be of type {type_name}, got {value!r}") from None
    return value
