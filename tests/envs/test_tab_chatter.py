"""The retention tabs' chatter on the sliding plateau (issue 17) and the opt-in tab friction time
constant (`envs.scene.ContactParams.tab_friction_timeconst_s`): off by default, and then the
model every task version is built from is the one it was before the option existed."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from benchmark.bench_tab_chatter import chatter_stats
from envs.insertion_env import InsertionEnv
from envs.mating_forces import measure_peaks
from envs.scene import ContactParams
from envs.tasks import PAPER000_TASKS_V1, TASKS

#: What decides the contact and tab dynamics in a compiled model: every geom's collision
#: settings, explicit pairs, joints' springs and dofs' inertia, and the solver options.
_MODEL_FIELDS = (
    "npair", "nexclude", "geom_contype", "geom_conaffinity", "geom_condim", "geom_priority",
    "geom_friction", "geom_solref", "geom_solimp", "geom_margin", "geom_gap", "geom_solmix",
    "pair_friction", "pair_solref", "pair_solreffriction", "jnt_stiffness", "jnt_solref",
    "dof_armature", "dof_damping", "dof_frictionloss",
)
_OPTIONS = ("timestep", "impratio", "noslip_iterations", "cone", "integrator")
#: Digests of those fields as main built them at fe1e51f, before the option existed. A change
#: here changes task dynamics: every leaderboard entry goes stale (bump the task version).
_DIGESTS_BEFORE_THE_OPTION = {
    "InsertBench/USB-v0": "1c6e2f50e4736d8f",
    "InsertBench/USB-v1": "91ffb867659b85d6",
    "InsertBench/DSub-v1": "58aa3e287e37fff9",
    "InsertBench/ModelE-v1": "9759d2e1788f8654",
    "InsertBench/Connector-USBC-v1": "42079e428cc1ea9d",
}


def _opt_in(task, timeconst_s: float = 0.1):
    contact = dataclasses.replace(task.dynamics.contact, tab_friction_timeconst_s=timeconst_s)
    return dataclasses.replace(task, dynamics=dataclasses.replace(task.dynamics, contact=contact))


def _dynamics_digest(model) -> str:
    h = hashlib.sha256()
    for name in _MODEL_FIELDS:
        h.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    for name in _OPTIONS:
        h.update(np.float64(getattr(model.opt, name)).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("env_id", sorted(_DIGESTS_BEFORE_THE_OPTION))
def test_default_builds_the_model_it_built_before_the_option(env_id):
    default = InsertionEnv(TASKS[env_id], noiseless=True).model
    assert default.npair == 0
    assert _dynamics_digest(default) == _DIGESTS_BEFORE_THE_OPTION[env_id]
    opted = InsertionEnv(_opt_in(TASKS[env_id]), noiseless=True).model  # the digest sees it
    assert opted.npair > 0 and _dynamics_digest(opted) != _DIGESTS_BEFORE_THE_OPTION[env_id]


def test_v1_chatters_and_the_opt_in_slides_steadily_on_a_slow_usb_press_and_pull():
    """0.25 mm per env step, noiseless: v1's plateau dips by a third with the tabs leaving the
    plug in every step; with a 0.1 s tab friction time constant the press and pull plateaus
    stay within 10% of their mean and the tabs keep the plug."""
    task = TASKS["InsertBench/USB-v1"]
    v1 = chatter_stats(task, {})
    for phase in ("press", "pull"):
        p = v1[phase]
        assert p["min"] / p["mean"] < 0.8 and p["lost"] > 0.5 and p["vmax"] > 5.0, p
    steady = chatter_stats(_opt_in(task), {})
    for phase in ("press", "pull"):
        p = steady[phase]
        assert p["n"] >= 10, p  # the plug slid at the press speed through the window
        assert p["min"] / p["mean"] >= 0.9 and p["lost"] == 0.0 and p["vmax"] < 1.0, p


@pytest.mark.parametrize("env_id", PAPER000_TASKS_V1)
def test_opt_in_keeps_press_and_pull_peaks_inside_documented_ranges(env_id):
    task = _opt_in(TASKS[env_id])
    peak_in, peak_out = measure_peaks(task, speed=0.2)
    ins, out = task.connector.mating.insertion_n, task.connector.mating.withdrawal_n
    assert ins[0] < peak_in < ins[1], (peak_in, ins)
    assert out[0] < peak_out < out[1], (peak_out, out)


def test_opt_in_pairs_follow_the_friction_randomisation():
    env = InsertionEnv(_opt_in(TASKS["InsertBench/USB-v1"]), friction_scale=(1.5, 1.5))
    mu = TASKS["InsertBench/USB-v1"].connector.friction
    env.reset(seed=0)
    np.testing.assert_allclose(env.model.pair_friction[:, :2], 1.5 * mu)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf"), 11.0])
def test_tab_friction_timeconst_must_be_plausible(bad):
    with pytest.raises(ValueError, match="tab_friction_timeconst_s"):
        ContactParams(tab_friction_timeconst_s=bad)
