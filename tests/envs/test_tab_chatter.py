"""The retention tabs' chatter on the sliding plateau (issue 17): the benchmark's instrument
tells a chattering tab from a resting one, the models the tasks are built from are the ones
every leaderboard entry was made on, and version 2's contact springs hold the plug steadily."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from benchmark.bench_tab_chatter import chatter_stats
from envs.insertion_env import InsertionEnv
from envs.tasks import TASKS

#: What decides the contact and tab dynamics in a compiled model: every geom's collision
#: settings, explicit pairs, joints' springs and dofs' inertia, and the solver options.
_MODEL_FIELDS = (
    "npair", "nexclude", "geom_contype", "geom_conaffinity", "geom_condim", "geom_priority",
    "geom_friction", "geom_solref", "geom_solimp", "geom_margin", "geom_gap", "geom_solmix",
    "pair_friction", "pair_solref", "pair_solreffriction", "jnt_stiffness", "jnt_solref",
    "dof_armature", "dof_damping", "dof_frictionloss",
)
_OPTIONS = ("timestep", "impratio", "noslip_iterations", "cone", "integrator")
#: Digests of those fields as main built them at fe1e51f. A change here changes task dynamics:
#: every leaderboard entry goes stale, so bump the task version rather than update a digest.
_DIGESTS = {
    "InsertBench/USB-v0": "1c6e2f50e4736d8f",
    "InsertBench/USB-v1": "91ffb867659b85d6",
    "InsertBench/DSub-v1": "58aa3e287e37fff9",
    "InsertBench/ModelE-v1": "9759d2e1788f8654",
    "InsertBench/Connector-USBC-v1": "42079e428cc1ea9d",
    "InsertBench/USB-v2": "e285982ada147894",  # added with version 2
}


def _dynamics_digest(model) -> str:
    h = hashlib.sha256()
    for name in _MODEL_FIELDS:
        h.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    for name in _OPTIONS:
        h.update(np.float64(getattr(model.opt, name)).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("env_id", sorted(_DIGESTS))
def test_task_models_keep_their_contact_and_tab_dynamics(env_id):
    model = InsertionEnv(TASKS[env_id], noiseless=True).model
    assert _dynamics_digest(model) == _DIGESTS[env_id]


def test_the_instrument_tells_a_chattering_tab_from_a_resting_one():
    """USB-v1, 0.25 mm per env step, noiseless: v1's tabs leave the plug in most plateau steps
    and the wrist reading dips by a fifth or more; with no tab friction (the push-off's cause)
    the tabs keep the plug and barely move."""
    task = TASKS["InsertBench/USB-v1"]
    v1 = chatter_stats(task, {})
    for phase in ("press", "pull"):
        p = v1[phase]
        assert p["n"] >= 10, p  # the plug slid at the commanded speed through the window
        assert p["min"] / p["mean"] < 0.8 and p["lost"] > 0.5 and p["vmax"] > 5.0, p
    frictionless = chatter_stats(task, {"tab_friction": 0.0})
    for phase in ("press", "pull"):
        p = frictionless[phase]
        assert p["lost"] == 0.0 and p["vmax"] < 1.0, p


@pytest.mark.parametrize("env_id", sorted(k for k in TASKS if k.endswith("-v2")))
def test_v2_contact_springs_hold_the_plug_on_a_steady_plateau(env_id):
    """0.25 mm per env step, noiseless: no spring leaves the plug on the sliding plateau and
    the wrist reading there stays within 5% of its mean, at the sliding force the spec was
    calibrated for; over the whole engagement (ramps included: the short-stroke connectors
    have no plateau window) at most 1% of env steps lose a contact (the RAM card's edge
    bounces once off its stiff springs at touch-down)."""
    task = TASKS[env_id]
    s = chatter_stats(task, {})
    lost, engaged = s["stroke"]
    assert engaged > 20 and lost <= 0.01 * engaged, s["stroke"]
    for phase in ("press", "pull"):
        p = s[phase]
        if p["n"] < 3:  # no plateau window (short stroke) or too few steps in it
            continue
        assert p["lost"] == 0.0, p
        assert p["min"] / p["mean"] > 0.95 and p["max"] / p["mean"] < 1.05, p
        assert p["mean"] == pytest.approx(task.connector.retention_force_n, rel=0.1, abs=0.1), p


def test_v2_contact_springs_keep_contact_at_1_mm_per_step():
    s = chatter_stats(TASKS["InsertBench/USB-v2"], {}, speed=0.2)
    assert s["stroke"][0] == 0 and s["pull"]["min"] / s["pull"]["mean"] > 0.9, s
