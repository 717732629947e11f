"""The admittance law and the reference limiting shared with the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from envs.controller import ImpedanceReference, limited_reference, mat_to_quat, quat_to_rotvec
from envs.scene import ImpedanceGains
from real.compliance import AdmittanceController, AdmittanceParams, check_compliance
from real.poses import mat_to_rotvec, rotation_angle, rotvec_to_mat

GAINS = ImpedanceGains()


def settle(ctrl: AdmittanceController, ref_pos, ref_mat, wrench, dt=0.002, steps=3000):
    for _ in range(steps):
        pos, mat = ctrl.update(ref_pos, ref_mat, wrench, dt)
        ctrl.commit(pos, mat, dt)
    return ctrl.pos, ctrl.mat


@pytest.mark.parametrize("dt", [0.002, 0.008])  # e-Series 500 Hz and CB3 125 Hz
def test_free_motion_converges_to_the_reference(dt):
    ctrl = AdmittanceController(GAINS)
    ctrl.reset(np.zeros(3), np.eye(3))
    ref_mat = rotvec_to_mat([0.0, 0.05, 0.0])
    pos, mat = settle(ctrl, np.array([0.01, 0, 0]), ref_mat, np.zeros(6), dt=dt)
    np.testing.assert_allclose(pos, [0.01, 0, 0], atol=1e-7)
    np.testing.assert_allclose(mat_to_rotvec(mat), [0, 0.05, 0], atol=1e-7)


def test_contact_force_balances_the_spring():
    ctrl = AdmittanceController(GAINS)
    ctrl.reset(np.zeros(3), np.eye(3))
    force = np.array([0.0, 0.0, 20.0, 0.0, 0.0, 0.0])
    pos, _ = settle(ctrl, np.zeros(3), np.eye(3), force)
    deadband = ctrl.params.deadband_n
    assert pos[2] == pytest.approx((20.0 - deadband) / GAINS.translational_stiffness, rel=1e-6)


def test_small_wrench_is_ignored():
    ctrl = AdmittanceController(GAINS)
    ctrl.reset(np.zeros(3), np.eye(3))
    pos, _ = settle(ctrl, np.zeros(3), np.eye(3), np.array([0.5, 0, 0, 0.01, 0, 0]), steps=100)
    np.testing.assert_allclose(pos, 0.0)


def test_limited_reference_is_what_the_simulation_uses():
    """ImpedanceReference.move (sim) and limited_reference (real) give the same reference."""
    rng = np.random.default_rng(0)
    for mode in ("accumulate", "measured"):
        data = type("D", (), {})()
        data.mocap_pos, data.mocap_quat = np.zeros((1, 3)), np.zeros((1, 4))
        ref = ImpedanceReference(GAINS, 0, mode)
        tcp_pos, tcp_mat = rng.normal(size=3) * 0.01, rotvec_to_mat(rng.normal(size=3) * 0.1)
        ref.reset(data, tcp_pos, mat_to_quat(tcp_mat))
        pos, quat = ref.pos.copy(), ref.quat.copy()
        for _ in range(5):
            d_pos, d_rot = rng.uniform(-0.01, 0.01, 3), rng.uniform(-0.05, 0.05, 3)
            ref.move(data, tcp_pos, tcp_mat, d_pos, d_rot)
            pos, quat = limited_reference(pos, quat, tcp_pos, tcp_mat, d_pos, d_rot, GAINS, mode)
            np.testing.assert_array_equal(ref.pos, pos)
            np.testing.assert_array_equal(ref.quat, quat)
            assert np.all(np.abs(pos - tcp_pos) <= GAINS.translation_limit_m + 1e-12)
            turn = rotation_angle(tcp_mat.T @ rotvec_to_mat(quat_to_rotvec(quat)))
            assert turn <= GAINS.rotation_limit_rad + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"admittance": AdmittanceParams(mass_kg=0.0)}, r"admittance.mass_kg must be .* > 0"),
     ({"admittance": AdmittanceParams(mass_kg=-1.0)}, r"admittance.mass_kg must be .* > 0"),
     ({"admittance": AdmittanceParams(deadband_n=float("nan"))}, "deadband_n must be a finite"),
     ({"gains": ImpedanceGains(translation_limit_m=float("nan"))}, "translation_limit_m"),
     ({"gains": ImpedanceGains(translational_stiffness=float("inf"))}, "stiffness must be"),
     ({"gains": ImpedanceGains(rotational_damping=-1.0)}, "rotational_damping must be"),
     ({"admittance": AdmittanceParams(mass_kg=0.1)}, "translational admittance .* unstable at "
                                                     "500 Hz"),
     # damping x dt / inertia = 1 passes, but a = 2.24 with b = 1 diverges (a + 2b = 4.24)
     ({"gains": ImpedanceGains(translational_stiffness=70000.0), "servo_hz": 125.0},
      "unstable at 125 Hz")],
)
def test_an_ill_posed_admittance_law_is_refused_when_the_env_is_made(kwargs, message):
    """These were accepted, then failed mid-servo-loop as a non-finite servo target with the
    arm not stopped (a zero or NaN mass or limit), or ran unstable (a negative mass)."""
    import real

    with pytest.raises(ValueError, match=message):
        real.make_twin("InsertBench/USB-v0", **kwargs)


@pytest.mark.parametrize(("stiffness", "damping", "mass", "dt"), [
    (70000.0, 250.0, 2.0, 0.008), (5000.0, 250.0, 0.1, 0.002), (2.1e6, 1e-3, 2.0, 0.002),
    (5000.0, 400.0, 2.0, 0.008), (5000.0, 250.0, 2.0, 0.008), (5000.0, 250.0, 2.0, 0.002)])
def test_the_stability_check_is_the_integrators(stiffness, damping, mass, dt):
    """`check_compliance` accepts exactly the gains whose free response decays under
    `AdmittanceController.update` (it used to test damping x dt / inertia <= 1 alone, which
    passed a diverging law and refused a settling one: damping 400 at 125 Hz)."""
    gains = ImpedanceGains(translational_stiffness=stiffness, translational_damping=damping,
                           rotational_stiffness=1.0, rotational_damping=1.0)
    params = AdmittanceParams(mass_kg=mass)
    law = AdmittanceController(gains, params)
    law.reset(np.array([0.01, 0.0, 0.0]), np.eye(3))
    with np.errstate(all="ignore"):  # the unstable ones overflow
        for _ in range(3000):
            law.commit(*law.update(np.zeros(3), np.eye(3), np.zeros(6), dt), dt)
        settles = bool(np.linalg.norm(law.pos) < 1e-6)
    try:
        check_compliance(gains, params, dt)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == settles
