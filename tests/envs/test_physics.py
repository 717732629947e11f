"""`envs.physics`: a control period through `mujoco.rollout` is the plain `mj_step` loop, to the
bit, and the F/T filter computed afterwards is the filter computed between the steps."""

import threading
import time

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import envs
from envs.physics import ControlPeriod, low_pass_wrench, peak_norm_sq

BALL = """
<mujoco>
  <option gravity="{gravity}" timestep="0.002"/>
  <worldbody>
    <geom type="plane" size="1 1 .1"/>
    <body name="ball" pos="0 0 .3">
      <freejoint/><geom type="sphere" size=".05"/><site name="s"/>
    </body>
  </worldbody>
  <sensor><framepos objtype="body" objname="ball"/><velocimeter site="s"/></sensor>
</mujoco>
"""


def _ball_model(gravity: str = "0 0 -9.81") -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(BALL.format(gravity=gravity))


def _plain_loop(model, data, nstep):
    rows = np.empty((nstep, model.nsensordata))
    for k in range(nstep):
        mujoco.mj_step(model, data)
        rows[k] = data.sensordata
    return rows


def _same_data(a: mujoco.MjData, b: mujoco.MjData) -> None:
    for field in ("time", "qpos", "qvel", "qacc", "qacc_warmstart", "sensordata", "xpos"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("blow_up", [False, True], ids=["bounce", "blow-up mid-period"])
def test_control_period_is_the_plain_step_loop(blow_up):
    """Also when MuJoCo resets a blown-up state mid-period (the rollout stops there, and the
    period finishes the steps in Python): same states, sensor rows and derived quantities."""
    model = _ball_model("-1e9 0 0" if blow_up else "0 0 -9.81")
    loop, rolled = mujoco.MjData(model), mujoco.MjData(model)
    if blow_up:  # sideways at 2e6 m/s more per step: past mjMAXVAL (1e10 m/s) at step 15
        loop.qvel[0] = rolled.qvel[0] = -1e10 + 2.9e7
    period = ControlPeriod(model, rolled, 40)
    for k in range(5):
        expected = _plain_loop(model, loop, 40)
        np.testing.assert_array_equal(period.run(), expected)
        _same_data(rolled, loop)
        if blow_up and k == 0:
            assert rolled.warning[mujoco.mjtWarning.mjWARN_BADQVEL].number == 1
            assert 0 < rolled.time < 39 * model.opt.timestep  # reset on the way


def _old_ft_loop(u) -> float:
    """The F/T sensor as InsertionEnv computed it before `envs.physics`: between the steps."""
    m, d = u.model, u.data
    raw = d.sensordata[u._wrench_adr : u._wrench_adr + 6]
    filtered, alpha, bias = u._ft_filtered, u._ft_alpha, u._wrench_bias[:3]
    contact_force = d.sensordata[u._contact_adr : u._contact_adr + 3]
    peak_sq = 0.0
    for _ in range(u.frame_skip):
        mujoco.mj_step(m, d)
        filtered += alpha * (-raw - filtered)
        force = filtered[:3] - bias if u._peak_from_ft else contact_force
        peak_sq = max(peak_sq, float(force @ force))
    return peak_sq**0.5


def _old_contact_loop(u) -> float:
    m, d = u.model, u.data
    contact_force = d.sensordata[u._contact_adr : u._contact_adr + 3]
    peak_sq = 0.0
    for n in u._physics_chunks:
        mujoco.mj_step(m, d, nstep=n)
        peak_sq = max(peak_sq, float(contact_force @ contact_force))
    return peak_sq**0.5


@pytest.mark.parametrize("env_id", ["InsertBench/USB-v1", "InsertBench/DSub-v0"])
def test_env_step_equals_the_per_step_loop(env_id):
    """P-controller episodes into contact: observations, rewards and the filtered wrench are
    bitwise those of the old per-physics-step loop; peak forces agree to 1 ulp (the old loop's
    `v @ v` is the BLAS dot, summed left to right on x86 OpenBLAS: then bitwise as well)."""
    made = [gym.make(env_id, reward="dense") for _ in range(2)]
    new, old = (env.unwrapped for env in made)
    old._step_physics = (
        (lambda: _old_ft_loop(old))
        if old._peak_from_ft or old._ft_alpha < 1.0
        else (lambda: _old_contact_loop(old))
    )
    controllers = [envs.p_controller(env) for env in made]
    peak_seen = 0.0
    for seed in (0, 1):
        obs = [env.reset(seed=seed)[0] for env in made]
        for _ in range(25):
            steps = [env.step(c(o)) for env, c, o in zip(made, controllers, obs, strict=True)]
            (obs_new, r_new, t_new, _, i_new), (obs_old, r_old, t_old, _, i_old) = steps
            for key in obs_new:
                np.testing.assert_array_equal(obs_new[key], obs_old[key], err_msg=key)
            assert (r_new, t_new) == (r_old, t_old)
            np.testing.assert_array_equal(new._ft_filtered, old._ft_filtered)
            np.testing.assert_array_max_ulp(
                [i_new["force_n"], i_new["max_force_n"]], [i_old["force_n"], i_old["max_force_n"]],
                maxulp=1,
            )
            peak_seen = max(peak_seen, i_new["max_force_n"])
            obs = [obs_new, obs_old]
            if t_new:
                break
    assert peak_seen > 5.0  # the episodes did press the plug into the socket
    for env in made:
        env.close()


def test_low_pass_wrench_is_the_per_step_recurrence():
    rng = np.random.default_rng(3)
    readings = rng.normal(0.0, 20.0, (50, 6))
    readings[7] = np.nan  # a NaN reading poisons the filter but never becomes the peak
    for alpha in (0.4665, 1.0):
        start = rng.normal(0.0, 5.0, 6)
        bias = rng.normal(0.0, 5.0, 3)
        filtered, expected, peak = start.copy(), start.copy(), 0.0
        for reading in readings[:7]:
            expected += alpha * (-reading - expected)
            g = expected[:3] - bias
            peak = max(peak, float(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]))
        assert low_pass_wrench(filtered, readings[:7], alpha, bias) == peak
        np.testing.assert_array_equal(filtered, expected)
        got = low_pass_wrench(filtered, readings[7:], alpha, bias)
        assert got == 0.0 and np.isnan(filtered).all()


def test_peak_norm_sq():
    vectors = np.array([[1.0, 2.0, 2.0], [np.nan, 0.0, 0.0], [0.1, 0.2, 0.3]])
    assert peak_norm_sq(vectors) == 9.0
    assert peak_norm_sq(vectors[:0]) == 0.0
    assert peak_norm_sq(vectors[1:2]) == 0.0


def test_control_period_lets_other_threads_run_python():
    """The vector env's speed rests on this: while one thread integrates a period, another
    keeps running Python (with the GIL held it would not iterate at all)."""
    model = _ball_model()
    period = ControlPeriod(model, mujoco.MjData(model), 20000)
    window: dict[str, float] = {}

    def integrate():
        window["start"] = time.perf_counter()
        period.run()
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=integrate)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inside = sum(window["start"] < t < window["end"] for t in ticks)
    assert inside > 100, f"only {inside} Python iterations during a period {window}"


def test_bad_nstep():
    model = _ball_model()
    with pytest.raises(ValueError, match="nstep must be >= 1"):
        ControlPeriod(model, mujoco.MjData(model), 0)


def test_reset_does_not_depend_on_earlier_resets():
    """The start-pose IK reuses one scratch MjData: a reset after others (other offsets, grasp
    noise, friction) is bitwise the same reset in a fresh env."""
    kwargs = dict(init_offset_mm=(0.0, 4.0), grasp_noise_mm=0.5, grasp_noise_deg=1.0)
    fresh, used = gym.make("InsertBench/USB-v1", **kwargs), gym.make("InsertBench/USB-v1", **kwargs)
    for seed in (1, 2, 3):
        used.reset(seed=seed)
        used.step(np.array([0.3, -0.2, -1.0], np.float32))
    obs_fresh, _ = fresh.reset(seed=9)
    obs_used, _ = used.reset(seed=9)
    for key in obs_fresh:
        np.testing.assert_array_equal(obs_fresh[key], obs_used[key], err_msg=key)
    np.testing.assert_array_equal(fresh.unwrapped.data.qpos, used.unwrapped.data.qpos)


def test_a_deep_copied_env_steps_like_the_original():
    import copy

    env = gym.make("InsertBench/USB-v1", noiseless=True).unwrapped
    env.reset(seed=4)
    twin = copy.deepcopy(env)
    assert twin._period.data is twin.data and twin._period.model is twin.model
    action = np.array([0.2, 0.1, -1.0], np.float32)
    for _ in range(3):
        obs, *_ = env.step(action)
        twin_obs, *_ = twin.step(action)
        for key in obs:
            np.testing.assert_array_equal(obs[key], twin_obs[key], err_msg=key)
