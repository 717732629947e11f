"""The compliance controller of the real arm: an admittance law on the measured wrench.

A UR arm is a stiff position-controlled robot, so the simulated Cartesian impedance (spring and
damper between the TCP and the reference, `envs.scene.ImpedanceGains`) is rendered the other way
round: the servo target x_c obeys

    M x_c'' + D x_c' + K (x_c - x_ref) = F_ext

at the control rate (500 Hz e-Series, 125 Hz CB3), where F_ext is the zeroed wrench of the
environment on the tool and K, D are the simulation's stiffness and damping. Without contact x_c
settles on the reference; in contact it yields until K (x_c - x_ref) balances the contact force,
so with the reference limited to |x_ref - x| <= translation_limit_m (the sim's limiting math,
`envs.controller.limited_reference`) the push is capped at K x limit, as in simulation.
All vectors are in the robot base frame; rotations integrate on SO(3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.scene import ImpedanceGains
from real.poses import mat_to_rotvec, rotvec_to_mat


@dataclass(frozen=True)
class AdmittanceParams:
    """Virtual inertia of the servo target and the wrench deadband.

    mass_kg / inertia_kgm2: with the default gains (5000 N/m, 100 N m/rad) the law's natural
    frequencies are 50 and 45 rad/s, over-damped, well below the 500 Hz loop and stable with
    semi-implicit Euler at CB3's 125 Hz too (`check_compliance`; there a = 0.16, b = 1.0).
    deadband_n / deadband_nm: wrench below these is sensor noise, ignored.
    """

    mass_kg: float = 2.0
    inertia_kgm2: float = 0.05
    deadband_n: float = 1.0
    deadband_nm: float = 0.05


def check_compliance(gains: ImpedanceGains, params: AdmittanceParams, dt: float) -> None:
    """ValueError unless the admittance law is well posed and stable at the control period
    `dt` [s]: every gain and parameter finite; stiffness, damping, inertia and reference limits
    above 0, deadbands 0 or more; and the integrator stable. `update`'s semi-implicit Euler step
    maps (x - x_ref, dt x') by a matrix with trace 2 - a - b and determinant 1 - b, where
    a = K dt^2 / M and b = D dt / M: its eigenvalues lie inside the unit circle iff 0 < b < 2
    and a + 2 b < 4 (Jury's test). A NaN or zero mass used to pass and fail mid-episode as a
    non-finite servo target; a negative one ran unstable."""
    for name, value, low, inclusive in (
        ("gains.translational_stiffness", gains.translational_stiffness, 0.0, False),
        ("gains.rotational_stiffness", gains.rotational_stiffness, 0.0, False),
        ("gains.translational_damping", gains.translational_damping, 0.0, False),
        ("gains.rotational_damping", gains.rotational_damping, 0.0, False),
        ("gains.translation_limit_m", gains.translation_limit_m, 0.0, False),
        ("gains.rotation_limit_rad", gains.rotation_limit_rad, 0.0, False),
        ("admittance.mass_kg", params.mass_kg, 0.0, False),
        ("admittance.inertia_kgm2", params.inertia_kgm2, 0.0, False),
        ("admittance.deadband_n", params.deadband_n, 0.0, True),
        ("admittance.deadband_nm", params.deadband_nm, 0.0, True),
    ):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not np.isfinite(value) or not (value >= low if inclusive else value > low):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    for what, stiffness, damping, inertia in (
        ("translational", gains.translational_stiffness, gains.translational_damping,
         params.mass_kg),
        ("rotational", gains.rotational_stiffness, gains.rotational_damping,
         params.inertia_kgm2),
    ):
        a, b = stiffness * dt**2 / inertia, damping * dt / inertia
        if not (b < 2.0 and a + 2.0 * b < 4.0):
            raise ValueError(
                f"the {what} admittance law is unstable at {1 / dt:g} Hz: stiffness x dt^2 / "
                f"inertia = {a:.3g} and damping x dt / inertia = {b:.3g} need b < 2 and "
                f"a + 2 b < 4; raise the inertia or lower the gains"
            )


class AdmittanceController:
    """Integrates the admittance law one control period at a time (see the module docstring)."""

    def __init__(
        self, gains: ImpedanceGains, params: AdmittanceParams = AdmittanceParams()
    ) -> None:
        self.gains = gains
        self.params = params
        self.pos = np.zeros(3)
        self.mat = np.eye(3)
        self.vel = np.zeros(3)
        self.omega = np.zeros(3)

    def reset(self, pos: np.ndarray, mat: np.ndarray) -> None:
        """Start at rest at a measured pose (base frame)."""
        self.pos, self.mat = pos.copy(), mat.copy()
        self.vel, self.omega = np.zeros(3), np.zeros(3)

    def update(
        self, ref_pos: np.ndarray, ref_mat: np.ndarray, wrench_base: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance by dt [s] towards the reference under the wrench [N, N m] (base frame);
        returns the new servo target (position [m], rotation matrix)."""
        g, p = self.gains, self.params
        force = _deadband(wrench_base[:3], p.deadband_n)
        torque = _deadband(wrench_base[3:], p.deadband_nm)
        acc = (
            force
            - g.translational_stiffness * (self.pos - ref_pos)
            - g.translational_damping * self.vel
        ) / p.mass_kg
        rot_err = mat_to_rotvec(self.mat @ ref_mat.T)
        ang_acc = (
            torque - g.rotational_stiffness * rot_err - g.rotational_damping * self.omega
        ) / p.inertia_kgm2
        self.vel = self.vel + acc * dt
        self.omega = self.omega + ang_acc * dt
        return self.pos + self.vel * dt, rotvec_to_mat(self.omega * dt) @ self.mat

    def commit(self, pos: np.ndarray, mat: np.ndarray, dt: float) -> None:
        """Accept the pose actually sent (after the safety layer's clamps) as the new state, so
        clamping never winds the law up."""
        self.vel = (pos - self.pos) / dt
        self.omega = mat_to_rotvec(mat @ self.mat.T) / dt
        self.pos, self.mat = pos.copy(), mat.copy()


def _deadband(v: np.ndarray, width: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return np.zeros(3) if norm <= width else v * (1.0 - width / norm)
