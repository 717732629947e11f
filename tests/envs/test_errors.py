"""Bad input gets a clear error; a physics blow-up is reported, never returned as data."""

import copy
import dataclasses
import pickle
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the task IDs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(reward="shaped"), "reward must be one of"),
        (dict(obs_mode="rgb"), "obs_mode must be one of"),
        (dict(action_mode="joint"), "action_mode must be one of"),
        (dict(goal_noise_mm=-1.0), r"goal_noise_mm must be in \[0, 20\]"),
        (dict(init_offset_mm=(5.0, 1.0)), "init_offset_mm must satisfy lo <= hi"),
        (dict(init_offset_mm=3.0), "init_offset_mm must be a pair"),
        (dict(init_offset_mm={1: 2, 3: 4}), "init_offset_mm must be a pair"),  # read its keys
        (dict(friction_scale=(0.0, 1.0)), r"friction_scale\[0\] must be in \[0.05, 5\]"),
        (dict(cameras=("top",)), "cameras must be a non-empty subset"),
        (dict(cameras="wrist"), "cameras must be a non-empty subset"),
        # Rendered twice per step for one image.
        (dict(cameras=["wrist", "wrist"]), r"each named once, got \['wrist', 'wrist'\]"),
        (dict(image_size=4), r"image_size must be .* in \[8, 4096\] pixels"),
        (dict(image_size=2000), r"image_size must fit .* buffer, 480x640 \(height x width\), "
                                r"got 2000"),
        (dict(image_size=(481, 64)), r"image_size must fit .* got \(481, 64\)"),
        (dict(control_hz=1000.0), r"control_hz must be in \[1, 100\]"),
        # Ran at 100 Hz and 125 Hz without a word.
        (dict(control_hz=90.0, timestep=0.002),
         r"control_hz must be a whole number of physics steps per policy step, within 5%: 90 Hz "
         r"at timestep 0.002 s is 5.56 steps and would run at 83.33 Hz; 83.33 or 100 Hz fit"),
        (dict(control_hz=100.0, timestep=0.0018), r"control_hz .* would run at 92.59 Hz"),
        (dict(render_mode="depth_array"), "render_mode must be one of"),
        # The bad inputs of issue 9, each once physically impossible and silently accepted.
        (dict(start_height_mm=5.0), r"start_height_mm must be in \[13, 150\] \(the plug must"),
        (dict(start_height_mm=-20.0), r"start_height_mm must be in \[13, 150\]"),
        (dict(timestep=0.5), r"timestep must be in \[0.0001, 0.002\] s"),
        # Accepted to 5 ms, where the contacts soften: a plug 1 mm off the axis mated.
        (dict(timestep=0.004), r"timestep must be in \[0.0001, 0.002\] s, got 0.004"),
        (dict(grayscale="no"), "grayscale must be True or False, got 'no'"),
        (dict(grasp_noise_mm=1e4), r"grasp_noise_mm must be in \[0, 5\]"),
        (dict(goal_noise_mm="1"), "goal_noise_mm must be a finite number"),
        (dict(goal_noise_mm=float("nan")), "goal_noise_mm must be a finite number"),
        # An int beyond a float's range raised a bare OverflowError naming no kwarg.
        (dict(goal_noise_mm=10**400), "goal_noise_mm must be a finite number"),
    ],
)
def test_bad_kwargs(kwargs, message):
    if kwargs.get("image_size") in (2000, (481, 64)):
        kwargs = dict(kwargs, obs_mode="pixels")
    with pytest.raises(ValueError, match=message):
        gym.make("InsertBench/USB-v0", **kwargs)


def test_gymnasiums_render_mode_fallbacks_apply_to_registered_ids():
    """gym.make reads the registered creator's render modes to add RenderCollection
    (rgb_array_list) or HumanRendering (human); the bare partial registered had none, and both
    were refused as modes the env lacks (review)."""
    env = gym.make("InsertBench/USB-v3", render_mode="rgb_array_list")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frames = env.render()
    assert len(frames) == 2 and frames[0].shape == (480, 640, 3)
    env.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert type(gym.make("InsertBench/USB-v3", render_mode="human")).__name__ == \
            "HumanRendering"


def test_a_family_env_pickles_and_its_copy_goes_on_alike():
    """It held lambdas: pickle raised "Can't pickle local object" for every split (review)."""
    for version, kwargs in ((1, {}), (0, {"split": "procedural", "procedural_count": 2})):
        env = gym.make(f"InsertBench/ConnectorFamily-v{version}", **kwargs)
        env.reset(seed=0)
        restored = pickle.loads(pickle.dumps(env))
        assert restored.reset(seed=3)[1]["connector"] == env.reset(seed=3)[1]["connector"]


def test_a_float32_value_on_a_bound_is_the_bound():
    """np.float32(0.002) is 0.0020000000949...: a float32 sweep ending on the documented
    maximum was refused, with a message that printed 0.002."""
    env = gym.make("InsertBench/USB-v1", timestep=np.float32(0.002),
                   action_scale_rad=np.float32(0.2))
    assert env.unwrapped.model.opt.timestep == 0.002
    assert env.unwrapped.frame_skip == gym.make("InsertBench/USB-v1").unwrapped.frame_skip
    with pytest.raises(ValueError, match=r"timestep must be in \[0.0001, 0.002\] s, got "
                                         r"0.0020099999"):
        gym.make("InsertBench/USB-v1", timestep=np.float32(0.00201))


def test_a_fraction_or_long_double_is_refused():
    """They passed the range check and were kept as given: object arrays in the env's state, a
    spec whose to_json raised, a version key of their own for the same physics (envs21)."""
    from fractions import Fraction

    with pytest.raises(ValueError, match=r"goal_noise_mm must be an int or a float in .* got "
                                         r"Fraction\(1, 2\) \(Fraction\)"):
        gym.make("InsertBench/USB-v1", goal_noise_mm=Fraction(1, 2))
    if np.finfo(np.longdouble).bits > 64:  # a platform's long double may be a double
        with pytest.raises(ValueError, match="start_height_mm must be an int or a float"):
            gym.make("InsertBench/USB-v1", start_height_mm=np.longdouble(50))
    env = gym.make("InsertBench/USB-v1", goal_noise_mm=np.float32(0.5), start_height_mm=50)
    env.reset(seed=0)
    assert env.unwrapped.believed_goal_pos.dtype == np.float64
    assert "goal_noise_mm" in env.spec.to_json()


def test_a_control_rate_near_whole_physics_steps_is_kept():
    """Within 5% of the asked period the nearest whole number of physics steps is used."""
    assert gym.make("InsertBench/USB-v1", control_hz=30.0).unwrapped.frame_skip == 17
    assert gym.make("InsertBench/USB-v1", timestep=0.0015).unwrapped.frame_skip == 67


def test_unknown_kwarg_and_task():
    with pytest.raises(TypeError, match="unknown kwarg 'goal_noise'; did you mean 'goal_noise_mm'"):
        gym.make("InsertBench/USB-v0", goal_noise=1.0)
    # gym.make's own time limit was missing from the names offered (newuser22)
    with pytest.raises(TypeError, match="did you mean 'max_episode_steps'"):
        gym.make("InsertBench/USB-v0", max_episode_step=40)
    with pytest.raises(gym.error.Error):
        gym.make("InsertBench/HDMI-v0")
    # An ID given to the class read `.connector` off the str (envs27)
    with pytest.raises(TypeError, match="task must be a TaskSpec"):
        envs.InsertionEnv("InsertBench/USB-v0")


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("InsertBench/USB-v0", dict(task="InsertBench/DSub-v0"),
         "USB-v0 is task='InsertBench/USB-v0': task='InsertBench/DSub-v0' would run another task "
         "under its name; make InsertBench/DSub-v0 instead"),
        ("InsertBench/USB-v1", dict(task=envs.TASKS["InsertBench/USB-v0"]),
         "make InsertBench/USB-v0 instead"),
        ("InsertBench/USB-v0", dict(task=dataclasses.replace(envs.TASKS["InsertBench/USB-v0"],
                                                             max_episode_steps=7)),
         "USB-v0 is task='InsertBench/USB-v0': a TaskSpec of InsertBench/USB-v0 with other "
         "values would run another task under its name"),  # ran, keyed as the registered one
        ("InsertBench/NISTBoard-USBA-v0", dict(part="DSub"), "make InsertBench/NISTBoard-DSub-v0"),
        ("InsertBench/ConnectorFamily-v1", dict(version=2), "make InsertBench/ConnectorFamily-v2"),
        ("InsertBench/ConnectorFamily-v0", dict(version=1), "make InsertBench/ConnectorFamily-v1"),
    ],
)
def test_a_kwarg_cannot_change_the_task_an_id_names(env_id, kwargs, message):
    # Before: each of these made the other task under env_id's name, and its episodes were
    # recorded with env_id as their task.
    with pytest.raises(ValueError, match=re.escape(message)):
        gym.make(env_id, **kwargs)


def test_the_ids_own_identity_kwargs_are_accepted():
    assert gym.make("InsertBench/USB-v1", task="InsertBench/USB-v1").unwrapped.task.env_id == \
        "InsertBench/USB-v1"
    assert gym.make("InsertBench/USB-v1", task=envs.TASKS["InsertBench/USB-v1"]).unwrapped \
        .task.env_id == "InsertBench/USB-v1"
    assert gym.make("InsertBench/NISTBoard-v0", part="DSub").unwrapped.parts == ("DSub",)
    assert gym.make("InsertBench/ConnectorFamily-v2", version=2).spec.id == \
        "InsertBench/ConnectorFamily-v2"
    # The same version as a numpy integer was "would run another task under its name".
    family = gym.make("InsertBench/ConnectorFamily-v1", version=np.int64(1), split="test")
    assert family.reset(seed=0)[1]["task_id"].endswith("-v1")
    # True is no version: no "make InsertBench/ConnectorFamily-vTrue instead".
    with pytest.raises(ValueError, match=r"version=True would run another task under its name$"):
        gym.make("InsertBench/ConnectorFamily-v1", version=True)
    env = gym.make("InsertBench/USB-v1", noiseless=np.True_)  # refused, as grayscale was not
    assert env.unwrapped.sensor.noiseless is True


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ([np.nan, 0.0, 0.0], "NaN or inf"),
        ([0.0, np.inf, 0.0], "NaN or inf"),
        ([0.0, 0.0, 1.5], "outside the action space"),
        ([0.0, 0.0], "must have shape"),
        ("abc", "action must be 3 real numbers, got 'abc'"),  # "could not convert string to float"
        ([0.0, "x", 0.0], r"action must be 3 real numbers, got \[0.0, 'x', 0.0\]"),
        # numpy dropped the imaginary part (a ComplexWarning only) and stepped [0.5, 0, 0]
        (np.array([0.5 + 7j, 0.0, -0.5j]), "action must be 3 real numbers"),
        ([True, False, False], "action must be 3 real numbers"),  # moved 5 mm as [1, 0, 0]
        (np.array(["1", "0", "0"]), "action must be 3 real numbers"),
    ],
)
def test_bad_actions_are_refused_and_not_stepped(action, message):
    env = gym.make("InsertBench/USB-v0")
    env.reset(seed=0)
    time_before = env.unwrapped.data.time
    with pytest.raises(ValueError, match=message):
        env.unwrapped.step(action)
    assert env.unwrapped.data.time == time_before


def test_an_unknown_reset_option_is_refused():
    """A misspelt option was ignored: the episode started from a random offset."""
    env = gym.make("InsertBench/USB-v0", init_offset_mm=(5.0, 10.0))
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['tcp_offset'\]"):
        env.reset(seed=0, options={"tcp_offset": (0.0, 0.0)})
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['connector'\]"):
        env.reset(seed=0, options={"connector": "DT12"})  # a family's option, not a task's
    env.reset(seed=0, options={"tcp_offset_mm": (0.0, 0.0)})
    family = gym.make("InsertBench/ConnectorFamily-v0", split="test")
    _, info = family.reset(seed=0, options={"connector": "DT12"})
    assert info["connector"] == "DT12"
    # The family's own option is named too (it was left out: "takes ['tcp_offset_mm']").
    with pytest.raises(ValueError, match=re.escape(
            "unknown reset option(s) ['conector']; this env's reset takes "
            "['tcp_offset_mm', 'connector']")):
        family.reset(seed=0, options={"conector": "DT12"})


@pytest.mark.parametrize("offset", [{-3.0, 5.0}, {5.0: "x", -3.0: "y"}, frozenset((1.0, 2.0))])
def test_a_start_offset_in_no_stated_order_is_refused(offset):
    """A set or dict was unpacked as its keys: equal sets {-3, 5} and {5, -3} started the plug
    at (5, -3) and (-3, 5) mm, so one seed and equal options gave two episodes."""
    env = gym.make("InsertBench/USB-v3")
    with pytest.raises(ValueError, match=re.escape("options['tcp_offset_mm'] must be a pair")):
        env.reset(seed=0, options={"tcp_offset_mm": offset})


def test_a_workspace_that_cannot_hold_the_start_offsets_says_why():
    """With start offsets up to 30 mm no box fits; the message named the empty range (30, 30]."""
    with pytest.raises(ValueError, match="init_offset_mm's upper bound must be below 30 mm"):
        gym.make("InsertBench/USB-v3", workspace_mm=30, init_offset_mm=(0, 30))


@pytest.mark.parametrize(
    "env_id",
    ["InsertBench/USB-v1", "InsertBench/ConnectorFamily-v1", "InsertBench/NISTBoard-USBA-v0"],
)
def test_a_refused_reset_changes_no_state_and_ends_the_episode(env_id):
    """A reset refused for its options used to run halfway first: the arm was left at MuJoCo's
    qpos0, 1.3 m from the socket, and step() went on from there without a word. The state is
    left as it was, but the episode ends: Gymnasium's TimeLimit restarts its count before the
    env's reset, and an episode stepped on past a refused reset ran 95 steps under a limit of
    50 (envs18)."""
    push = np.array([0.0, 0.0, 0.5], np.float32)
    env, reference = gym.make(env_id), gym.make(env_id)
    for e in (env, reference):
        e.reset(seed=0)
        e.step(push)
    inner, ref_inner = (e.unwrapped.active if hasattr(e.unwrapped, "active") else e.unwrapped
                        for e in (env, reference))
    bad = [
        (ValueError, {"tcp_offset": (0.0, 0.0)}),
        (ValueError, {"tcp_offset_mm": (100.0, 0.0)}),
        (TypeError, "tcp_offset_mm"),
    ]
    if "Family" in env_id:
        bad.append((ValueError, {"connector": ["RJ45"]}))
    for error, options in bad:
        with pytest.raises(error, match="options must be a dict|reset option|tcp_offset_mm|"
                                        "not in this family"):
            env.reset(seed=1, options=options)
        np.testing.assert_array_equal(inner.data.qpos, ref_inner.data.qpos)
        np.testing.assert_array_equal(inner.data.mocap_pos, ref_inner.data.mocap_pos)
        with pytest.raises(RuntimeError, match=r"the last reset was refused \(.*\); call "
                                               r"reset\(\) before step\(\)"):
            env.step(push)
    for e in (env, reference):
        e.reset(seed=1)
    for _ in range(2):
        obs, *_, info = env.step(push)
        ref_obs, *_, ref_info = reference.step(push)
        assert info["distance_to_goal_mm"] == ref_info["distance_to_goal_mm"]
        for key, value in obs.items():
            np.testing.assert_array_equal(value, ref_obs[key])


@pytest.mark.parametrize(
    "env_id",
    ["InsertBench/USB-v1", "InsertBench/ConnectorFamily-v1", "InsertBench/NISTBoard-USBA-v0"],
)
def test_a_refused_first_reset_leaves_the_env_usable(env_id):
    """Gymnasium's env checker counted a first reset that raised as checked, and the first step
    after the next good reset failed with "cannot unpack non-iterable NoneType object"."""
    env = gym.make(env_id)
    for bad in ({"options": {"tcp_offset": (1.0, 2.0)}}, {"seed": -1}):
        with pytest.raises(ValueError):
            env.reset(**bad)
    obs, _ = env.reset(seed=0)
    assert env.step(np.zeros(env.action_space.shape, np.float32))[0].keys() == obs.keys()
    again = gym.make(env.spec)  # the checker once, not Gymnasium's over ours
    assert "PassiveEnvChecker" not in str(again) and "EnvChecker" in str(again)


@pytest.mark.parametrize(
    "env_id",
    ["InsertBench/USB-v1", "InsertBench/ConnectorFamily-v1", "InsertBench/NISTBoard-USBA-v0"],
)
def test_seeds_are_checked_as_the_vector_envs_check_them(env_id):
    """A numpy integer seeded the vector envs and the dm_env wrapper, but a single env refused
    it with Gymnasium's own error class; True seeded it as 1."""
    env = gym.make(env_id, init_offset_mm=(0.0, 5.0), obs_frame="task")
    first = env.reset(seed=np.int64(3))[0]
    np.testing.assert_array_equal(env.reset(seed=3)[0]["tcp_pose"], first["tcp_pose"])
    for bad in (-1, 1.5, "3", True, [3]):
        with pytest.raises(ValueError, match=re.escape(f"seed must be None or an integer >= 0, "
                                                       f"got {bad!r}")):
            env.reset(seed=bad)


def test_step_before_reset():
    env = gym.make("InsertBench/USB-v0").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, np.float32))


def test_a_pixel_env_used_after_close_is_one_clear_error():
    """It used to step the physics, then fail on a bare `assert self.rig is not None`."""
    env = gym.make("InsertBench/USB-v1", obs_mode="pixels", image_size=16).unwrapped
    env.reset(seed=0)
    env.close()
    time_before = env.data.time
    for call in (lambda: env.step(np.zeros(3, np.float32)), lambda: env.reset(seed=1)):
        with pytest.raises(RuntimeError, match="this env is closed: close\\(\\) released its"):
            call()
    assert env.data.time == time_before
    env.close()  # twice is fine


@pytest.mark.parametrize("env_id", ["InsertBench/USB-v1", "InsertBench/ConnectorFamily-v1",
                                    "InsertBench/NISTBoard-USBA-v0"])
def test_render_after_close_is_one_clear_error(env_id):
    """It built a new 480x640 GL context that nothing released."""
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (480, 640, 3)
    env.close()
    with pytest.raises(RuntimeError, match="this env is closed"):
        env.render()


def test_a_closed_board_or_family_refuses_rather_than_building_its_parts_again():
    """Their close() dropped the parts, and the next reset built every one again (new models,
    new GL contexts that only a second close() released)."""
    board = gym.make("InsertBench/NISTBoard-v0", obs_mode="pixels", image_size=16).unwrapped
    board.reset(seed=0)
    board.close()
    with pytest.raises(RuntimeError, match="this env is closed"):
        board.reset(seed=1)
    family = gym.make("InsertBench/ConnectorFamily-v1", obs_mode="pixels",
                      image_size=16).unwrapped
    family.close()
    state = family.np_random.bit_generator.state
    with pytest.raises(RuntimeError, match="this env is closed"):  # a built part or not
        family.reset(seed=0, options={"connector": family.connectors[0]})
    with pytest.raises(RuntimeError, match="this env is closed"):
        family.reset(seed=0, options={"connector": family.connectors[-1]})
    assert list(family._envs) == [family.connectors[0]]
    assert family.np_random.bit_generator.state == state  # refused before reseeding


@pytest.mark.parametrize("env_id", ["InsertBench/ConnectorFamily-v1", "InsertBench/NISTBoard-v0"])
def test_a_closed_state_board_or_family_goes_on_on_every_seed(env_id):
    """A state family refused the resets that picked a member it had not built yet (seeds 1, 4
    and 5 of 0-5), saying close() had released cameras it never had; a closed state env
    goes on (nothing to release but render's viewer)."""
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    env.close()
    for seed in range(6):
        env.reset(seed=seed)
        env.step(np.zeros(3, np.float32))
        with pytest.raises(RuntimeError, match="this env is closed"):  # no new GL context
            env.render()


@pytest.mark.parametrize("env_id", ["InsertBench/USB-v1", "InsertBench/NISTBoard-v0",
                                    "InsertBench/ConnectorFamily-v1"])
def test_render_fps_follows_the_control_rate(env_id):
    """It was 10 at any control_hz: a 50 Hz env's RecordVideo played 5x slow."""
    for hz in (10.0, 50.0):
        env = gym.make(env_id, control_hz=hz)
        assert env.metadata["render_fps"] == hz
        env.close()


def test_physics_blow_up_is_reported_and_truncates_the_episode(tmp_path, monkeypatch):
    """It ended the episode as terminated with reward 0: an absorbing state worth more than any
    step of the negative dense reward, so a learner was paid to blow the simulation up."""
    monkeypatch.chdir(tmp_path)  # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    env = gym.make("InsertBench/USB-v0", reward="dense")
    env.reset(seed=0)
    obs_before, reward_before, *_, before = env.step(np.zeros(3, np.float32))
    assert reward_before < 0
    env.unwrapped.data.qvel[:] = 1e12  # an exploded state
    obs, reward, terminated, truncated, info = env.step(np.zeros(3, np.float32))
    assert truncated and not terminated and reward == reward_before
    assert "physics_error" in info and not info["is_success"]
    for key, value in obs.items():
        assert np.all(np.isfinite(value))
        np.testing.assert_array_equal(value, obs_before[key])
        assert value is not obs_before[key]  # a learner's in-place change would reach both
    # The pose is the last step's too: the reset state's (the TCP 1.3 m away) went into the
    # episode's record, its final distance and path length (envs18).
    np.testing.assert_array_equal(info["tcp_pos_m"], before["tcp_pos_m"])
    assert info["tcp_pos_m"] is not before["tcp_pos_m"]  # infos share no object (Gymnasium)
    assert info["distance_to_goal_mm"] == before["distance_to_goal_mm"] < 100.0
    with pytest.raises(RuntimeError, match="ended in a physics error .* call reset"):
        env.step(np.zeros(3, np.float32))  # it went on from MuJoCo's reset state
    env.reset(seed=0)
    *_, truncated, info = env.step(np.zeros(3, np.float32))
    assert not truncated and "physics_error" not in info


def test_a_reset_that_fails_midway_leaves_no_episode_to_step_on(monkeypatch):
    """Only the up-front checks ended the episode: a reset that failed after MuJoCo's reset
    (IK, a goal image, a Ctrl-C) left the arm at qpos0, 1.3 m away, and step() went on from
    there (diff20)."""
    env = gym.make("InsertBench/USB-v0")
    env.reset(seed=0)
    env.step(np.zeros(3, np.float32))

    def no_ik(*_):
        raise RuntimeError("IK did not converge (simulated)")

    monkeypatch.setattr(env.unwrapped, "_solve_start_qpos", no_ik)
    with pytest.raises(RuntimeError, match="IK did not converge"):
        env.reset(seed=1)
    with pytest.raises(RuntimeError, match=r"the last reset did not finish; call reset\(\)"):
        env.step(np.zeros(3, np.float32))
    monkeypatch.undo()
    env.reset(seed=1)
    *_, info = env.step(np.zeros(3, np.float32))
    assert info["distance_to_goal_mm"] < 100.0


@pytest.mark.parametrize("env_id", ["InsertBench/ConnectorFamily-v0", "InsertBench/NISTBoard-v0"])
def test_a_reset_that_fails_building_a_member_leaves_no_episode(env_id, monkeypatch):
    """A family's reset to a connector not built yet (the board's to its next part) can fail
    in the member's build (a Ctrl-C while it compiles): the last member's episode stepped on
    past it, 8 steps under a limit of 5 (diff21)."""
    import envs.insertion_env

    env = gym.make(env_id, max_episode_steps=5)
    env.reset(seed=0)
    env.step(np.zeros(3, np.float32))
    base = env.unwrapped
    if hasattr(base, "connectors"):
        options = {"connector": next(n for n in base.connectors if n not in base._envs)}
    else:  # the board's first part is built: drop it, so the reset builds it again
        options = None
        base._envs.pop(base.parts[0])

    def interrupted(*_, **__):
        raise KeyboardInterrupt

    monkeypatch.setattr(envs.insertion_env.InsertionEnv, "__init__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        env.reset(seed=1, options=options)
    with pytest.raises(RuntimeError, match=r"did not finish; call reset\(\)"):
        env.step(np.zeros(3, np.float32))
    monkeypatch.undo()
    env.reset(seed=1, options=options)
    env.step(np.zeros(3, np.float32))


def test_a_blown_up_steps_force_is_no_peak_force_of_the_episode(monkeypatch):
    """The step's contact force counted into max_force_n before the blow-up was found: an
    episode stored a peak of 3e12 N, which the store then refused to read back, failing every
    report on the matrix."""
    env = gym.make("InsertBench/USB-v0")
    env.reset(seed=0)
    *_, info = env.step(np.zeros(3, np.float32))
    peak = info["max_force_n"]
    inner = env.unwrapped
    monkeypatch.setattr(inner, "_step_physics", lambda: 3e12)
    monkeypatch.setattr(inner, "_physics_error", lambda: "unstable")
    *_, truncated, info = env.step(np.zeros(3, np.float32))
    assert truncated and info["max_force_n"] == peak
    assert info["force_n"] == 0.0  # nor is it time above the force limit (run_episode)


@pytest.mark.parametrize("copy_env", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_env_reports_a_blow_up_too(tmp_path, monkeypatch, copy_env):
    """A deep copy watched the original's warning counters (views kept at construction): it
    stepped on from MuJoCo's reset state with no physics_error; pickling refused outright."""
    monkeypatch.chdir(tmp_path)  # MUJOCO_LOG.TXT
    env = gym.make("InsertBench/USB-v0")
    env.reset(seed=0)
    twin = copy_env(env)
    twin.unwrapped.data.qvel[:] = 1e12
    *_, truncated, info = twin.step(np.zeros(3, np.float32))
    assert truncated and "physics_error" in info
    *_, truncated, info = env.step(np.zeros(3, np.float32))  # the original is untouched
    assert not truncated and "physics_error" not in info


@pytest.mark.parametrize("copy_env", [copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))],
                         ids=["deepcopy", "pickle"])
def test_a_pixel_env_copies_with_cameras_of_its_own(copy_env):
    """Copying refused with ctypes' or MjvCamera's error and a stray GLContext traceback."""
    env = gym.make("InsertBench/USB-v1", obs_mode="state+pixels", image_size=16)
    env.reset(seed=2)
    twin = copy_env(env)
    assert twin.unwrapped.rig is not env.unwrapped.rig
    action = np.array([0.4, -0.3, -0.8], np.float32)
    for _ in range(2):
        obs, *_ = env.step(action)
        twin_obs, *_ = twin.step(action)
        for key in obs:
            np.testing.assert_array_equal(obs[key], twin_obs[key], err_msg=key)
    twin.close()
    obs_after, *_ = env.step(action)  # closing the copy left the original's cameras alone
    assert obs_after["wrist"].any()
    rig = env.unwrapped.rig
    env.close()
    with pytest.raises(RuntimeError, match="closed"):  # a closed env's copy is closed
        copy_env(env).step(action)
    with pytest.raises(TypeError, match="closed camera rig cannot be copied"):
        copy_env(rig)


def test_a_file_that_cannot_be_written_whole_is_named(tmp_path, monkeypatch):
    """A write's OSError (a full disk) names no file; the error says which one it was."""
    import errno
    import os
    from pathlib import Path

    from envs.json_files import write_json

    def disk_full(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left on device") as caught:
        write_json(tmp_path / "evaluations.json", {"a": 1})
    assert caught.value.filename == str(tmp_path / "evaluations.json")
    assert caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # nor a temporary file left behind


@pytest.mark.parametrize("env_id", ["InsertBench/USB-v1", "InsertBench/NISTBoard-USBA-v0",
                                    "InsertBench/ConnectorFamily-v1"])
def test_numpy_kwargs_give_the_spec_and_key_of_plain_ones(env_id):
    """`goal_noise_mm=np.float32(1)` and `init_offset_mm=np.array([0, 5])` built, then
    `env.spec.to_json()` (Minari's recorder) failed ("Object of type float32 is not JSON
    serializable") and the task version key ("can only convert an array of size 1")."""
    from envs.episode import task_identity

    values = {"goal_noise_mm": 1.0, "init_offset_mm": (0.0, 5.0)}
    plain = gym.make(env_id, **values)
    numpy = gym.make(env_id, goal_noise_mm=np.float32(1), init_offset_mm=np.array([0.0, 5.0]))
    assert task_identity(numpy) == task_identity(plain)
    spec = gym.envs.registration.EnvSpec.from_json(numpy.spec.to_json())
    assert spec.kwargs["goal_noise_mm"] == 1.0 and type(spec.kwargs["goal_noise_mm"]) is float
    plain.close()
    numpy.close()
