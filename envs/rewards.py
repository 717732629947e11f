"""Reward functions of paper 000 (section 3.2): sparse, dense (eq. 2) and goal image."""

from __future__ import annotations

import numpy as np

#: Paper 000, eq. 2 hyper-parameters.
DENSE_ALPHA = 100.0
DENSE_BETA = 0.002
DENSE_PHI = 0.1
DENSE_EPSILON = 1e-3


def sparse_reward(inserted: bool) -> float:
    """1 when the connector is mated (paper 000 eq. 1, the "electrical connection")."""
    return 1.0 if inserted else 0.0


def dense_reward(
    tcp_pos_m: np.ndarray, goal_pos_m: np.ndarray, press_force_n: float, inserted: bool
) -> float:
    """Paper 000 eq. 2, exactly as printed:

    r = -alpha * ||x - x*||_1 - beta / (||x - x*||_2 + eps) - phi * f_z

    with x in metres, f_z the force [N] the tool presses into the socket with (calibrated to zero
    at the start of each rollout), and phi = +0.1 before and -0.1 after insertion so that pressing
    down is rewarded once inserted. Note that the beta term as printed is negative and grows in
    magnitude near the goal; we keep the paper's sign rather than guess an erratum.
    """
    error = tcp_pos_m - goal_pos_m
    phi = -DENSE_PHI if inserted else DENSE_PHI
    return float(
        -DENSE_ALPHA * np.abs(error).sum()
        - DENSE_BETA / (np.linalg.norm(error) + DENSE_EPSILON)
        - phi * press_force_n
    )


def goal_image_reward(image: np.ndarray, goal: np.ndarray) -> float:
    """Negative pixel-wise L1 distance to the goal image, as a mean over pixels in [0, 1] units
    so that the value does not depend on the image size."""
    return -float(np.abs(image.astype(np.float32) - goal.astype(np.float32)).mean() / 255.0)
