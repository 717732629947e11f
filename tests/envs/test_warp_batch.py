"""MuJoCo Warp batch against the CPU env: same starts, same P-controller trajectories, same
successes. Opt-in (`pytest -m warp`): Warp compiles its kernels on first use (about a minute on
its CPU device); skipped when mujoco-warp is not installed. Never needs a GPU."""

import dataclasses
import re

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs.controller import limited_reference
from envs.insertion_env import p_controller_action
from envs.scene import SceneConfig
from envs.warp_batch import batched_limited_reference

ENV_ID = "InsertBench/USB-v0"


@pytest.mark.parametrize("per_axis", [True, False])
def test_batched_reference_equals_the_scalar_law(per_axis):
    """Runs without Warp: the vectorised reference limiting is `limited_reference` per world,
    with the limit per axis (v0-v2) or on the offset's length (v3)."""
    rng = np.random.default_rng(0)
    gains = dataclasses.replace(SceneConfig().gains, limit_per_axis=per_axis)
    n = 64
    tcp_pos = rng.normal(0, 0.01, (n, 3))
    angles = rng.normal(0, 0.3, (n, 3))  # some worlds beyond the rotation limit
    from scipy.spatial.transform import Rotation

    tcp_mat = Rotation.from_rotvec(angles).as_matrix()
    ref_pos = tcp_pos + rng.normal(0, 0.004, (n, 3))
    ref_quat = Rotation.from_rotvec(rng.normal(0, 0.05, (n, 3))).as_quat(scalar_first=True)
    delta = rng.uniform(-1, 1, (n, 3)) * 0.005
    pos, quat = batched_limited_reference(ref_pos, ref_quat, tcp_pos, tcp_mat, delta, gains,
                                          "accumulate")
    for i in range(n):
        want_pos, want_quat = limited_reference(ref_pos[i], ref_quat[i], tcp_pos[i], tcp_mat[i],
                                                delta[i], np.zeros(3), gains, "accumulate")
        np.testing.assert_allclose(pos[i], want_pos, atol=1e-12)
        np.testing.assert_allclose(quat[i], want_quat, atol=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"workspace_mm": 1.0}, "workspace_mm in (None,)"),
    ({"obs_frame": "task"}, "obs_frame in ('start',)"),
])
def test_warp_batch_refuses_kwargs_it_would_ignore(kwargs, message):
    """Runs without Warp: `workspace_mm` (the CPU env clips to its box) and `obs_frame="task"`
    (the observation's origin) were ignored without a word: another task than the CPU env's."""
    from envs.warp_batch import WarpInsertionBatch

    with pytest.raises(ValueError, match=re.escape(message)):
        WarpInsertionBatch(ENV_ID, 1, device="cpu", **kwargs)


@pytest.mark.parametrize(("env_id", "worlds", "kwargs", "error", "message"), [
    ("InsertBench/ConnectorFamily-v0", 1, {}, ValueError, "runs single-connector tasks"),
    ("InsertBench/NISTBoard-v0", 1, {}, ValueError, "runs single-connector tasks"),
    (ENV_ID, "4", {}, ValueError, "num_worlds must be an integer >= 1, got '4'"),
    (ENV_ID, 2.5, {}, ValueError, "num_worlds must be an integer >= 1, got 2.5"),
    (ENV_ID, 1, {"bogus": 1}, TypeError, "unknown kwarg 'bogus'"),
])
def test_warp_batch_names_a_mistake_with_or_without_warp(env_id, worlds, kwargs, error,
                                                         message):
    """Runs without Warp: each was "No module named 'mujoco_warp'" here, and with Warp a
    family or the board an AttributeError deep inside, "4" worlds a TypeError (engines17)."""
    from envs.warp_batch import WarpInsertionBatch

    with pytest.raises(error, match=re.escape(message)):
        WarpInsertionBatch(env_id, worlds, device="cpu", **kwargs)


def test_warp_batch_without_warp_says_how_to_install_it(monkeypatch):
    import builtins

    from envs.warp_batch import WarpInsertionBatch

    real_import = builtins.__import__

    def no_warp(name, *args, **kwargs):
        if name in ("mujoco_warp", "warp"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_warp)
    with pytest.raises(ImportError, match=re.escape("pip install 'insertbench[warp]'")):
        WarpInsertionBatch(ENV_ID, 1, device="cpu")


@pytest.mark.warp
def test_warp_batch_follows_the_cpu_env():
    pytest.importorskip("mujoco_warp")
    from envs.warp_batch import WarpInsertionBatch

    # The lowest legal start (USB-A: 12 mm mating length + 1 mm): the controller mates within
    # the few steps a CPU device affords.
    kwargs = dict(goal_noise_mm=0.5, init_offset_mm=(0.0, 1.0), start_height_mm=13.0)
    num_worlds, seed, steps = 2, 21, 14
    batch = WarpInsertionBatch(ENV_ID, num_worlds, device="cpu", **kwargs)
    obs, info = batch.reset(seed=seed)
    singles = [gym.make(ENV_ID, **kwargs) for _ in range(num_worlds)]
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    for i in range(num_worlds):  # the same start, to float32 precision
        for key in obs:
            np.testing.assert_allclose(obs[key][i], single_obs[i][key], atol=1e-6)
    u = singles[0].unwrapped
    worst_mm, successes = 0.0, []
    for _ in range(steps):
        goal = batch.believed_goal_start_frame()
        actions = np.stack([
            p_controller_action(obs["tcp_pose"][i], goal[i], u.action_scale_m,
                                u.action_scale_rad, "xyz") for i in range(num_worlds)
        ])
        single_actions = [envs.p_controller(env)(o) for env, o in zip(singles, single_obs,
                                                                         strict=True)]
        obs, reward, terminated, truncated, info = batch.step(actions)
        results = [env.step(a) for env, a in zip(singles, single_actions, strict=True)]
        single_obs = [r[0] for r in results]
        for i in range(num_worlds):
            gap_mm = 1e3 * np.abs(obs["tcp_pose"][i][:3] - single_obs[i]["tcp_pose"][:3]).max()
            worst_mm = max(worst_mm, gap_mm)
        successes.append((info["is_success"].tolist(), [r[4]["is_success"] for r in results]))
        if any(r[2] for r in results) or terminated.any():
            break
    # Warp integrates in float32 (CPU MuJoCo: float64): the trajectories agree to 0.05 mm,
    # well under the connector's clearance, and succeed on the same step.
    assert worst_mm < 0.05, worst_mm
    assert all(warp == cpu for warp, cpu in successes), successes
    assert any(any(cpu) for _, cpu in successes)  # the controller did insert
    batch.close()
