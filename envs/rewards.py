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


DENSE_FORMS = ("printed", "closeness")


def dense_reward(
    tcp_pos_m: np.ndarray,
    goal_pos_m: np.ndarray,
    press_force_n: float,
    inserted: bool,
    form: str = "printed",
) -> float:
    """Paper 000 eq. 2. `form="printed"`: exactly as printed,

    r = -alpha * ||x - x*||_1 - beta / (||x - x*||_2 + eps) - phi * f_z

    `form="closeness"`: the same with +beta, so that the shaping "based on the distance to the
    target location" (paper 000, section 3.2.3) grows as the distance shrinks:

    r = -alpha * ||x - x*||_1 + beta / (||x - x*||_2 + eps) - phi * f_z

    with x in metres, f_z the force [N] the tool presses into the socket with (calibrated to zero
    at the start of each rollout), and phi = +0.1 before and -0.1 after insertion so that pressing
    down is rewarded once inserted. As printed, the beta term penalises closeness: along one axis
    the reward peaks sqrt(beta / alpha) - eps = 3.5 mm short of the goal, and SAC trained on it
    settles above the socket; the closeness form peaks at the goal (tests/envs/test_rewards.py).
    """
    if form not in DENSE_FORMS:
        raise ValueError(f"form must be one of {DENSE_FORMS}, got {form!r}")
    error = tcp_pos_m - goal_pos_m
    phi = -DENSE_PHI if inserted else DENSE_PHI
    sign = -1.0 if form == "printed" else 1.0
    return float(
        -DENSE_ALPHA * np.abs(error).sum()
        + sign * DENSE_BETA / (np.linalg.norm(error) + DENSE_EPSILON)
        - phi * press_force_n
    )


def goal_image_reward(image: np.ndarray, goal: np.ndarray) -> float:
    """Negative pixel-wise L1 distance to the goal image, as a mean over pixels in [0, 1] units
    so that the value does not depend on the image size."""
    return -float(np.abs(image.astype(np.float32) - goal.astype(np.float32)).mean() / 255.0)
