"""Experiments: runner, evaluation protocol, matrix presets, metrics, store, reports and CLI."""

import os

#: The process that started this one, read before the second of imports below: `insertbench
#: real serve-twin` ties itself to it (`benchmark.entry`), and a parent killed during those
#: imports left a server that took init for its parent, holding the controller's ports.
PARENT_PID = os.getppid()

# Importing envs first sets the headless rendering default (MUJOCO_GL) before any module here
# imports MuJoCo, which binds its OpenGL backend on first import.
import envs  # noqa: E402, F401
