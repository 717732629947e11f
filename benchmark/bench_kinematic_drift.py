"""How far a genuine TCP reading drifts from the nominal kinematics over the safety workspace.

The safety layer checks each TCP pose reading against the joint readings through the arm's
*nominal* Denavit-Hartenberg kinematics (`real.kinematics`): the flange-to-TCP transform the two
imply must stay within `SafetyConfig.max_kinematic_drift_m` / `_rad` of what it was at the
session's first reading. A real controller reports the pose through its factory-calibrated
kinematics, which differ from the nominal ones, so the implied transform moves a little with
the joint angles even when every reading is right. This script measures how much.

Per model and calibration error size it draws `--arms` arms whose true kinematics are the
nominal ones with every d and a off by N(0, sigma_m), every alpha and joint zero off by
N(0, sigma_rad), and poses the TCP (127 mm past the flange, the USB task's) at `--poses` random
targets in the default workspace box (+-30 mm sideways, 100 mm up, 3 mm down from the seat)
and tilt cone (0.25 rad) around a tool-down seat (`envs.ur5e_constants.HOME_QPOS`). Printed:
the largest drift of the implied transform from the seat's [mm, mrad] over all arms and poses.

    python -m benchmark.bench_kinematic_drift
    python -m benchmark.bench_kinematic_drift --sigma-mm 5 --sigma-mrad 5
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmark.script_args import doc_summary, non_negative_int, positive_float, positive_int
from envs.ur5e_constants import HOME_QPOS
from real.config import SafetyConfig
from real.kinematics import UR_DH, flange_pose, tool_in_flange
from real.poses import mat_to_rotvec, rotation_angle, rotvec_to_mat

TOOL_Z_M = 0.127
BOX_LO_M, BOX_HI_M = np.array([-0.03, -0.03, -0.1]), np.array([0.03, 0.03, 0.003])


def tcp_pose(q, dh, zero: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """TCP position and rotation for joint angles q [rad] through `dh`, joints offset by `zero`."""
    pos, mat = flange_pose(np.asarray(q) + zero, dh)
    return pos + mat[:, 2] * TOOL_Z_M, mat


def solve_ik(target_pos, target_mat, q, dh, iterations: int = 50) -> np.ndarray:
    """Joint angles putting the nominal TCP at the target (damped least squares from q)."""
    q = np.array(q, dtype=np.float64)
    for _ in range(iterations):
        pos, mat = tcp_pose(q, dh)
        rot_err = mat @ mat_to_rotvec(mat.T @ target_mat)
        err = np.concatenate([target_pos - pos, rot_err])
        if np.linalg.norm(err) < 1e-10:
            break
        jac = np.empty((6, 6))
        for j in range(6):
            dq = np.zeros(6)
            dq[j] = 1e-7
            p2, m2 = tcp_pose(q + dq, dh)
            jac[:, j] = np.concatenate([(p2 - pos), mat @ mat_to_rotvec(mat.T @ m2)]) / 1e-7
        q += np.linalg.solve(jac.T @ jac + 1e-9 * np.eye(6), jac.T @ err)
    return q


def worst_drift(model: str, sigma_m: float, sigma_rad: float, arms: int, poses: int,
                rng: np.random.Generator) -> tuple[float, float]:
    """Largest drift [m, rad] of the implied flange-to-TCP transform from the seat's."""
    nominal = UR_DH[model]
    seat_pos, seat_mat = tcp_pose(HOME_QPOS, nominal)
    targets = []
    for _ in range(poses):
        local = rng.uniform(BOX_LO_M, BOX_HI_M)
        axis = rng.normal(size=3)
        tilt = rotvec_to_mat(axis / np.linalg.norm(axis) * rng.uniform(0, 0.25))
        targets.append((seat_pos + seat_mat @ local, seat_mat @ tilt))
    joint_sets = [solve_ik(pos, mat, HOME_QPOS, nominal) for pos, mat in targets]
    worst_m = worst_rad = 0.0
    for _ in range(arms):
        true_dh = tuple((d + rng.normal(0, sigma_m), a + rng.normal(0, sigma_m),
                         alpha + rng.normal(0, sigma_rad)) for d, a, alpha in nominal)
        zero = rng.normal(0, sigma_rad, size=6)

        def implied(q, true_dh=true_dh, zero=zero):  # from what the controller reports
            return tool_in_flange(*tcp_pose(q, true_dh, zero), q, nominal)

        ref_pos, ref_mat = implied(HOME_QPOS)
        for q in joint_sets:
            pos, mat = implied(q)
            worst_m = max(worst_m, float(np.linalg.norm(pos - ref_pos)))
            worst_rad = max(worst_rad, rotation_angle(ref_mat.T @ mat))
    return worst_m, worst_rad


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument("--sigma-mm", type=positive_float, default=None,
                        help="calibration error of each length [mm] (default: 1 and 3)")
    parser.add_argument("--sigma-mrad", type=positive_float, default=None,
                        help="calibration error of each angle [mrad] (default: as --sigma-mm)")
    parser.add_argument("--arms", type=positive_int, default=20,
                        help="miscalibrated arms drawn per error size")
    parser.add_argument("--poses", type=positive_int, default=100,
                        help="workspace poses per arm")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the calibration errors and poses")
    args = parser.parse_args(argv)
    sigmas = (1.0, 3.0) if args.sigma_mm is None else (args.sigma_mm,)
    limit = SafetyConfig()
    print(f"limit: {limit.max_kinematic_drift_m * 1e3:g} mm, "
          f"{limit.max_kinematic_drift_rad * 1e3:g} mrad")
    print("model  sigma [mm, mrad]  worst drift [mm]  [mrad]")
    rng = np.random.default_rng(args.seed)
    for model in UR_DH:
        for sigma in sigmas:
            sigma_rad = (args.sigma_mrad if args.sigma_mrad is not None else sigma) * 1e-3
            drift_m, drift_rad = worst_drift(model, sigma * 1e-3, sigma_rad, args.arms,
                                             args.poses, rng)
            print(f"{model:6} {sigma:5.1f}, {sigma_rad * 1e3:4.1f}       {drift_m * 1e3:8.3f}"
                  f"         {drift_rad * 1e3:7.3f}")


if __name__ == "__main__":
    main()
