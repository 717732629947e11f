"""Gymnasium entry points named by strings, so that every registered spec is plain data
(`EnvSpec.to_json`, Minari's `DataCollector`, `gym.make` of a spec read back from JSON).

``"envs.entry_points:InsertBench/USB-v0"`` is that ID's env entry point and
``"envs.entry_points:vector/InsertBench/USB-v0"`` its vector entry point: attributes of this
module looked up by name (PEP 562), added by `envs/__init__.py` as it registers each ID.
Importing this module imports `envs`, which registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VECTOR_PREFIX = "vector/"
_ENTRIES: dict[str, Callable[..., Any]] = {}


def add(env_id: str, entry: Callable[..., Any],
        vector_entry: Callable[..., Any]) -> tuple[str, str]:
    """Name `entry` and `vector_entry` after `env_id`; returns the two entry-point strings."""
    _ENTRIES[env_id] = entry
    _ENTRIES[VECTOR_PREFIX + env_id] = vector_entry
    return f"{__name__}:{env_id}", f"{__name__}:{VECTOR_PREFIX}{env_id}"


def __getattr__(name: str) -> Callable[..., Any]:
    try:
        return _ENTRIES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
