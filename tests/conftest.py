"""Shared test configuration: headless rendering and one CPU thread per test process."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def pytest_collection_modifyitems(config, items):
    """`warp` tests compile MuJoCo Warp's kernels (about a minute): they run only on request,
    `pytest -m warp`, never in the default suite."""
    import pytest

    if "warp" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="MuJoCo Warp parity: opt in with `pytest -m warp`")
    for item in items:
        if "warp" in item.keywords:
            item.add_marker(skip)
