"""The one episode runner and record (`envs.episode`) and task version keys."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.catalog import connector_names
from envs.episode import (
    FORCE_LIMIT_N,
    EpisodeRecord,
    PolicyError,
    force_limit_n,
    run_episode,
    summarize,
)
from envs.scene import SceneConfig
from envs.tasks import task_spec
from envs.version_key import task_version_key, version_data

USB = "InsertBench/USB-v0"


def test_scripted_episode_record_matches_what_the_env_reported():
    env = gym.make(USB, goal_noise_mm=1.0)
    infos = []

    def policy(obs):
        return controller(obs)

    controller = envs.p_controller(env)
    record = run_episode(env, policy, seed=3)
    # Replay the same seed by hand and recompute every metric from the env's own info.
    obs, info = env.reset(seed=3)
    positions, forces, total = [info["tcp_pos_m"]], [], 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(controller(obs))
        infos.append(info)
        positions.append(info["tcp_pos_m"])
        forces.append(info["force_n"])
        total += reward
        if terminated or truncated:
            break
    dt = env.unwrapped.dt
    p = np.array(positions)
    assert record.task_id == USB and record.seed == 3
    assert record.task_version_key == task_version_key(USB, {"goal_noise_mm": 1.0})
    assert record.steps == len(infos) and record.episode_return == pytest.approx(total)
    assert record.success == any(i["is_success"] for i in infos)
    assert record.peak_force_n == pytest.approx(max(forces))  # episode peak = max step peak
    assert record.time_above_force_limit_s == pytest.approx(
        dt * sum(f > FORCE_LIMIT_N for f in forces))
    assert record.path_length_m == pytest.approx(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    assert 0.04 < record.path_length_m < 0.2  # starts 50 mm above the socket
    jerk = (p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]) / dt**3
    assert record.jerk_rms_m_s3 == pytest.approx(np.sqrt((jerk**2).sum(axis=1).mean()))
    assert EpisodeRecord.from_dict(record.to_dict()) == record


def test_time_above_the_force_limit_uses_the_connectors_documented_insertion_force():
    env = gym.make("InsertBench/USB-v1", goal_noise_mm=1.0)
    controller = envs.p_controller(env)
    forces = []

    def policy(obs):
        return controller(obs)

    record = run_episode(env, policy, seed=5)
    obs, _ = env.reset(seed=5)
    while True:
        obs, _, terminated, truncated, info = env.step(controller(obs))
        forces.append(info["force_n"])
        if terminated or truncated:
            break
    mating = env.unwrapped.task.connector.mating
    assert mating.insertion_n[1] == 35.0  # USB-A, envs/mating_forces.py
    assert record.force_limit_n == force_limit_n(env.unwrapped.task.connector) == 52.5
    dt = env.unwrapped.dt
    assert record.time_above_force_limit_s == pytest.approx(dt * sum(f > 52.5 for f in forces))
    assert record.time_above_20n_s == pytest.approx(dt * sum(f > FORCE_LIMIT_N for f in forces))
    assert max(forces) > FORCE_LIMIT_N  # a normal v1 insertion crosses a flat 20 N
    v0 = run_episode(gym.make(USB), lambda obs: np.zeros(3, np.float32), seed=0)
    assert v0.force_limit_n == FORCE_LIMIT_N  # version 0 documents no mating forces


def test_a_nist_board_sequence_is_scored_with_its_parts_control_period():
    env = gym.make("InsertBench/NISTBoard-v0", sequence=("RoundPeg16", "RectPeg16x10"))
    record = run_episode(env, envs.p_controller(env), seed=0)
    assert record.success and record.time_to_success_s == pytest.approx(0.1 * record.steps)
    assert record.force_limit_n == FORCE_LIMIT_N  # board parts document no mating forces


class _Infos(gym.Wrapper):
    """Keeps every step's info."""

    def reset(self, **kwargs):
        self.infos = []
        obs, info = self.env.reset(**kwargs)
        self.infos.append(dict(info))
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self.infos.append(dict(out[4]))
        return out


def test_a_nist_sequence_is_scored_over_all_its_parts_and_within_each_parts_frame():
    """The record's peak force was the last part's (14.9 N where the first parts peaked at
    243 N), and its path and jerk ran across each hand-over: a ~48 mm jump between frames."""
    env = _Infos(gym.make("InsertBench/NISTBoard-v0",
                          sequence=("RoundPeg8", "RectPeg8x7", "Waterproof")))
    record = run_episode(env, envs.p_controller(env), seed=0)
    infos = env.infos
    assert record.success and sum("next_part" in i for i in infos) == 2
    assert record.peak_force_n == pytest.approx(max(i["force_n"] for i in infos[1:]))
    last = max(i["force_n"] for i in infos[1:] if i["part"] == "Waterproof")
    assert record.peak_force_n > 2 * last  # the pegs' peak, not the last part's
    # Within each part: a hand-over step's next_tcp_pos_m starts the next part's stretch.
    path, last = 0.0, np.asarray(infos[0]["tcp_pos_m"])
    for info in infos[1:]:
        path += float(np.linalg.norm(np.asarray(info["tcp_pos_m"]) - last))
        last = np.asarray(info.get("next_tcp_pos_m", info["tcp_pos_m"]))
    assert record.path_length_m == pytest.approx(path)
    jumps = [np.linalg.norm(np.asarray(a["next_tcp_pos_m"]) - np.asarray(a["tcp_pos_m"]))
             for a in infos if "next_tcp_pos_m" in a]
    assert min(jumps) > 0.005  # what the path no longer counts [m]


def test_a_constant_velocity_path_has_no_jerk():
    env = gym.make(USB)
    record = run_episode(env, lambda obs: np.array([0.0, 0.0, 0.0], np.float32), seed=0)
    assert record.path_length_m < 1e-4 and record.jerk_rms_m_s3 < 1e-3
    assert not record.success and record.time_to_success_s is None


@pytest.mark.parametrize("action,message", [
    (np.array([0.0, np.nan, 0.0], np.float32), "non-finite action"),
    (np.zeros(4, np.float32), r"shape \(4,\)"),
    ("down", "not an array"),
    (np.array(["0.5   ", "0", "1"]), "not an array of numbers: it holds text"),  # leader22
    (np.array(["0.5", 0.0, 0.0], dtype=object), "it holds text"),  # diff27
])
def test_a_bad_action_is_refused_with_the_step_number(action, message):
    env = gym.make(USB)
    with pytest.raises(PolicyError, match=f"step 0: .*{message}"):
        run_episode(env, lambda obs: action, seed=0)


def test_a_bad_actions_error_is_quoted_short():
    """numpy's message quoted the whole value: one line of 1 MB (leader22)."""
    class Garbage:
        def __array__(self, dtype=None, copy=None):
            raise ValueError("x" * 1_000_000)

    with pytest.raises(PolicyError) as refused:
        run_episode(gym.make(USB), lambda obs: Garbage(), seed=0)
    assert len(str(refused.value)) < 300 and str(refused.value).endswith("x...")


def test_policy_reset_is_called_with_the_episode_seed():
    env = gym.make(USB)
    seen = []

    class Policy:
        def reset(self, *, seed):
            seen.append(seed)

        def __call__(self, obs):
            return np.zeros(3, np.float32)

    run_episode(env, Policy(), seed=42)
    assert seen == [42]


def test_summary_leaves_unreported_quantities_out():
    base = EpisodeRecord("t", "k", 0, True, 5, 5, 0.5, 1.0, None, None, None, None)
    s = summarize([base, dataclasses.replace(base, seed=1, success=False, steps_to_success=None,
                                             time_to_success_s=None, peak_force_n=12.0)])
    assert s["peak_force_n_mean"] == 12.0 and np.isnan(s["jerk_rms_m_s3_mean"])
    assert s["cycle_time_s_mean"] == 0.5 and s["success_rate"] == 0.5
    # A NaN peak force is NaN in the max as in the mean, whatever the episodes' order (the
    # built-in max read [nan, 50] as nan and [50, nan] as 50).
    forces = [dataclasses.replace(base, seed=i, peak_force_n=f)
              for i, f in enumerate((math.nan, 50.0))]
    for records in (forces, forces[::-1]):
        assert np.isnan(summarize(records)["peak_force_n_max"])


def test_version_key_changes_with_dynamics_score_and_kwargs_but_not_render_mode():
    key = task_version_key(USB)
    assert len(key) == 64 and key == task_version_key(USB, {"render_mode": "rgb_array"})
    assert key == task_version_key(USB, {"goal_noise_mm": 0.0})  # the default, spelled out
    assert key != task_version_key(USB, {"goal_noise_mm": 1.0})
    assert task_version_key(USB, {"goal_noise_mm": 1}) == \
        task_version_key(USB, {"goal_noise_mm": 1.0})
    assert key == task_version_key(USB, {"init_offset_mm": [0, 0]})  # JSON/TOML spelling
    assert key != task_version_key("InsertBench/DSub-v0")
    assert key != task_version_key(USB, {"max_episode_steps": 20})
    short = gym.make(USB, max_episode_steps=20)
    assert run_episode(short, lambda obs: np.zeros(3, np.float32), seed=0).task_version_key == \
        task_version_key(USB, {"max_episode_steps": 20})
    data = version_data(USB)
    assert data["scene"]["contact"]["impratio"] == SceneConfig().contact.impratio
    assert data["kwargs"]["task"]["connector"]["clearance_mm"] == 0.25
    assert data["max_episode_steps"] == 50 and data["scorer"]["force_limit_n"] == FORCE_LIMIT_N


@pytest.mark.parametrize("task_id", [USB, "InsertBench/NISTBoard-v0",
                                     "InsertBench/ConnectorFamily-v0"])
def test_one_task_spelled_two_ways_has_one_key(task_id):
    key = task_version_key(task_id)
    # np.float32(0.002) is the env's 0.002 (the bound it snaps to), not 0.0020000000949; and
    # noiseless changes nothing on v0, where nothing is noisy (both were other keys, envs18).
    for same in ({"timestep": 0.002}, {"image_size": [64, 64]}, {"cameras": ["side"]},
                 {"image_size": 32, "grayscale": True},  # no camera is seen from state
                 {"timestep": np.float32(0.002)}, {"noiseless": True},
                 # Read by nothing here: no rotation is commanded in xyz mode, and obs_frame
                 # places tcp_pose alone; -0.0 is 0.0 (each was another key, envs20).
                 {"action_scale_rad": 0.1}, {"goal_noise_mm": -0.0},
                 {"init_offset_mm": (-0.0, 0.0)}):
        assert task_version_key(task_id, same) == key, same
    assert task_version_key(task_id, {"action_mode": "pose", "action_scale_rad": 0.1}) != \
        task_version_key(task_id, {"action_mode": "pose"})
    assert task_version_key(task_id, {"obs_frame": "task"}) != key
    v1 = task_id.replace("-v0", "-v1")
    if v1 in gym.registry:  # noisy: noiseless is another task
        assert task_version_key(v1, {"noiseless": True}) != task_version_key(v1)
    assert task_version_key(task_id, {"timestep": 0.001}) != key
    pixels = task_version_key(task_id, {"obs_mode": "pixels"})
    assert pixels != key
    assert task_version_key(task_id, {"obs_mode": "pixels", "image_size": (64, 64)}) == pixels
    assert task_version_key(task_id, {"obs_mode": "pixels", "obs_frame": "task"}) == pixels
    for other in ({"image_size": 32}, {"cameras": ["side"]}, {"grayscale": True},
                  {"image_size": (64, 32)}):
        assert task_version_key(task_id, {"obs_mode": "pixels"} | other) != pixels, other
    goal_image = task_version_key(task_id, {"reward": "goal_image"})  # renders for the reward
    assert task_version_key(task_id, {"reward": "goal_image", "cameras": ["side"]}) != goal_image


def test_version_key_takes_numpy_arrays_as_their_values():
    assert task_version_key(USB, {"init_offset_mm": np.array([0.0, 10.0])}) == \
        task_version_key(USB, {"init_offset_mm": (0, 10)})
    pixels = {"obs_mode": "pixels"}
    assert task_version_key(USB, pixels | {"image_size": np.array([64, 64])}) == \
        task_version_key(USB, pixels)


def test_version_key_refuses_what_no_env_takes():
    """A misspelt kwarg, which every env refuses, had a key of its own; NaN failed as JSON's
    "Out of range float values are not JSON compliant"; a NIST part's np.int64 steps_per_part
    skipped the check that its time limit is reached (envs19)."""
    with pytest.raises(TypeError, match="InsertBench/USB-v0 got an unknown kwarg "
                                        "'goal_noise_mmm'; did you mean 'goal_noise_mm'"):
        task_version_key("InsertBench/USB-v0", {"goal_noise_mmm": 1.0})
    with pytest.raises(TypeError, match="unknown kwarg 'conectors'; did you mean 'connectors'"):
        task_version_key("InsertBench/ConnectorFamily-v1", {"conectors": ["RJ45"]})
    for kwargs in ({"goal_noise_mm": float("nan")}, {"init_offset_mm": [0.0, np.inf]}):
        with pytest.raises(ValueError, match=rf"{next(iter(kwargs))} must be finite"):
            task_version_key("InsertBench/USB-v0", kwargs)
    with pytest.raises(ValueError, match="max_episode_steps=100 is never reached"):
        task_version_key("InsertBench/NISTBoard-USBA-v0",
                         {"max_episode_steps": 100, "steps_per_part": np.int64(50)})


def test_version_key_follows_the_connector_spec(monkeypatch):
    spec = gym.spec(USB)
    task = task_spec(spec.kwargs["task"])
    wider = dataclasses.replace(task, connector=dataclasses.replace(task.connector,
                                                                    clearance_mm=0.3))
    before = task_version_key(USB)
    monkeypatch.setitem(spec.kwargs, "task", wider)
    assert task_version_key(USB) != before


def test_only_a_nist_sequence_carries_the_sequence_scorer_in_its_key():
    from envs.episode import SEQUENCE_SCORER_VERSION

    sequence = version_data("InsertBench/NISTBoard-v0")["scorer"]
    part = version_data("InsertBench/NISTBoard-USBA-v0")["scorer"]
    assert sequence["sequence"] == SEQUENCE_SCORER_VERSION and "sequence" not in part
    assert "sequence" not in version_data("InsertBench/USB-v1")["scorer"]


def test_version_keys_of_board_and_family_cover_their_members():
    nist = version_data("InsertBench/NISTBoard-v0")
    assert len(nist["members"]) > 1 and "member_kwargs" in nist["kwargs"]
    family = version_data("InsertBench/ConnectorFamily-v0", {"split": "test"})
    assert [m["name"] for m in family["members"]] == \
        [f"Connector-{n}" for n in connector_names("test", None)]
    assert task_version_key("InsertBench/ConnectorFamily-v0", {"split": "test"}) != \
        task_version_key("InsertBench/ConnectorFamily-v0", {"split": "train"})
