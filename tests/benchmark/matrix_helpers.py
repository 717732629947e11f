"""Shared helpers of the matrix tests: tiny presets for the synthetic test fixture."""

from __future__ import annotations

from pathlib import Path

from benchmark.preset import Preset, load_preset

SYNTHETIC = "benchmark.testing:synthetic_cell_for_tests"


def tiny_preset_toml(
    *, seeds: str = "[0, 1]", sleep_s: float = 0.0, eval_episodes: int = 6,
    fail_seed: int | None = None, crash_seed: int | None = None,
) -> str:
    """A 2-task x 2-agent preset over `seeds`, run with the synthetic cell function."""
    fail = "" if fail_seed is None else f", synthetic_fail_seed = {fail_seed}"
    if crash_seed is not None:
        fail += f", synthetic_crash_seed = {crash_seed}"
    return f"""
name = "tiny"
description = "matrix tests (synthetic cell function)"
tasks = ["InsertBench/A-v0", "InsertBench/B-v0"]
seeds = {seeds}
eval_episodes = {eval_episodes}
eval_seeds = {{ start = 500 }}
eval_every = 100

[axes]
goal_noise_mm = [0.0, 1.0]

[[agents]]
name = "scripted_fixture"
label = "Scripted"
budget_steps = 0
config = {{ synthetic_sleep_s = {sleep_s} }}

[[agents]]
name = "learner_fixture"
label = "Learner"
budget_steps = 400
config = {{ synthetic_sleep_s = {sleep_s}{fail} }}
"""


def write_tiny_preset(folder: Path, **kwargs: object) -> tuple[Path, Preset]:
    """Write the tiny preset to `folder/tiny.toml` and load it."""
    path = folder / "tiny.toml"
    path.write_text(tiny_preset_toml(**kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path, load_preset(path)
