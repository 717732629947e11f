"""Experiments: runner, evaluation protocol, matrix presets, metrics, store, reports and CLI."""

# Importing envs first sets the headless rendering default (MUJOCO_GL) before any module here
# imports MuJoCo, which binds its OpenGL backend on first import.
import envs  # noqa: F401
