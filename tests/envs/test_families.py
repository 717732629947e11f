"""Connector families, the NIST board and the IDs they register: Gymnasium conformance,
determinism, sampling by split and hold-out, and `info["task_id"]`."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.catalog import CATALOG, connector_names
from envs.family import ConnectorFamilyEnv
from envs.insertion_env import p_controller
from envs.nist_board import NIST_PARTS, NISTBoardEnv
from tests.envs.helpers import FOUNDATION_IDS

CONNECTOR_IDS = sorted(f"InsertBench/Connector-{n}-v0" for n in CATALOG)
NIST_IDS = sorted(f"InsertBench/NISTBoard-{p}-v0" for p in NIST_PARTS)


@pytest.mark.parametrize(
    "env_id, kwargs",
    [(i, {}) for i in CONNECTOR_IDS + NIST_IDS]
    + [
        ("InsertBench/ConnectorFamily-v0", {}),
        ("InsertBench/ConnectorFamily-v0", {"split": "all", "hold_out": "DT12"}),
        ("InsertBench/ConnectorFamily-v0", {"split": "procedural", "procedural_count": 3}),
        ("InsertBench/NISTBoard-v0", {}),
        ("InsertBench/NISTBoard-v0", {"action_mode": "pose"}),
    ],
)
def test_check_env(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", FOUNDATION_IDS + ("InsertBench/Connector-USBC-v0",))
def test_info_names_the_task(env_id):
    env = gym.make(env_id)
    _, info = env.reset(seed=0)
    assert info["task_id"] == env_id
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["task_id"] == env_id


def _rollout(env: gym.Env, seed: int, episodes: int, steps: int) -> list[np.ndarray]:
    """Observations of a few episodes under a fixed action sequence."""
    actions = np.random.default_rng(123).uniform(-1, 1, (steps,) + env.action_space.shape)
    trace = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        trace.append(np.concatenate([v.ravel() for v in obs.values()]))
        trace.append(np.array([hash(info["task_id"])]))
        for a in actions:
            obs, *_ = env.step(a.astype(np.float32))
            trace.append(np.concatenate([v.ravel() for v in obs.values()]))
        obs, info = env.reset()
    return trace


def test_family_is_deterministic():
    a = _rollout(gym.make("InsertBench/ConnectorFamily-v0", split="all"), 5, 4, 6)
    b = _rollout(gym.make("InsertBench/ConnectorFamily-v0", split="all"), 5, 4, 6)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = _rollout(gym.make("InsertBench/ConnectorFamily-v0", split="all"), 6, 4, 6)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("split", ["train", "test", "challenge", "all"])
def test_family_samples_its_split(split):
    env = ConnectorFamilyEnv(split=split)
    assert set(env.connectors) == set(connector_names(split))
    seen = set()
    env.reset(seed=0)
    for _ in range(150):
        _, info = env.reset()
        seen.add(info["connector"])
        assert info["task_id"] == f"InsertBench/Connector-{info['connector']}-v0"
    assert seen <= set(connector_names(split))
    assert len(seen) >= min(len(env.connectors), 8)


def test_hold_one_out_never_draws_the_held_out_connector():
    env = ConnectorFamilyEnv(split="test", hold_out="Europlug")
    assert "Europlug" not in env.connectors
    env.reset(seed=1)
    assert all(env.reset()[1]["connector"] != "Europlug" for _ in range(100))
    with pytest.raises(ValueError, match="not in the catalog"):
        ConnectorFamilyEnv(hold_out="NoSuchPlug")


@pytest.mark.parametrize(("kwargs", "message"), [
    # Holding out a connector the split does not draw used to hold nothing out, silently.
    ({"split": "train", "hold_out": "DT12"}, "hold_out 'DT12' is not a connector of split"),
    ({"split": "procedural", "hold_out": "DT12"}, "hold_out 'DT12' is not a connector of split"),
    # 1.0 and True passed `version in (0, 1, 2)`, then failed on a KeyError for '-v1.0'.
    ({"version": 1.0}, r"version must be an integer in \[0, 3\], got 1.0"),
    ({"version": True}, r"version must be an integer in \[0, 3\], got True"),
    # True drew one connector; 2.5 was "'float' object cannot be interpreted as an integer".
    ({"split": "procedural", "procedural_count": True}, "procedural_count must be an integer"),
    ({"split": "procedural", "procedural_count": 2.5}, "procedural_count must be an integer"),
    # 3,000,000 spent 13 s drawing names before the first connector was built.
    ({"split": "procedural", "procedural_count": 3_000_000},
     r"procedural_count must be an integer in \[1, 100,000\], got 3000000"),
    # True drew connectors 1, 2, ...; "a" was "can only concatenate str (not "int") to str".
    ({"split": "procedural", "procedural_seed": True}, "procedural_seed must be an integer >= 0"),
    ({"split": "procedural", "procedural_seed": "a"}, "procedural_seed must be an integer >= 0"),
    # Ignored outside the procedural split: the train split was drawn without a word.
    ({"procedural_count": 5}, "apply only with split='procedural'"),
    ({"split": "test", "procedural_seed": 3}, "apply only with split='procedural'"),
    ({"split": "procedural", "connectors": ["DT12"], "procedural_count": 5},
     "apply only with split='procedural' and no connectors"),
    # Ignored beside connectors: hold_out='USBA' trained on USBA and still read as held out.
    ({"connectors": ["USBA"], "hold_out": "USBA"}, "split and hold_out apply only without it"),
    ({"connectors": ["USBA"], "split": "test"}, "split and hold_out apply only without it"),
    # "unhashable type: 'list'" without the kwarg; a string was read as its letters.
    ({"hold_out": ["RJ45"]}, r"hold_out must be one connector's name or None, got \['RJ45'\]"),
    ({"connectors": [["RJ45"]]},
     r"connectors must be a non-empty list of catalog names; unknown: \[\['RJ45"),
    ({"connectors": "RJ45"}, "connectors must be a list of catalog names, got 'RJ45'"),
    # 5 was "'int' object is not iterable", a dict read as its keys, a repeat drew RJ45 twice
    # as often as USBA.
    ({"connectors": 5}, "connectors must be a list of catalog names, got 5"),
    ({"connectors": {"RJ45": 1}}, r"connectors must be a list of catalog names, got \{'RJ45'"),
    ({"connectors": ["RJ45", "RJ45", "USBA"]}, r"connectors names \['RJ45'\] more than once"),
])
def test_family_kwargs_that_would_do_something_else_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConnectorFamilyEnv(**kwargs)


@pytest.mark.parametrize(("env_id", "kwargs", "message"), [
    ("InsertBench/ConnectorFamily-v1", {"splt": "test"},
     "InsertBench/ConnectorFamily-v1 got an unknown kwarg 'splt'; did you mean 'split'?"),
    ("InsertBench/NISTBoard-v0", {"steps_per_prt": 3},
     "InsertBench/NISTBoard-v0 got an unknown kwarg 'steps_per_prt'; did you mean "
     "'steps_per_part'?"),
    ("InsertBench/NISTBoard-USBA-v0", {"goal_noise": 1.0},
     "InsertBench/NISTBoard-USBA-v0 got an unknown kwarg 'goal_noise'; did you mean "
     "'goal_noise_mm'?"),
])
def test_a_misspelt_kwarg_is_named_with_a_suggestion(env_id, kwargs, message):
    """Families and the board passed it on: "InsertionEnv.__init__() got an unexpected keyword
    argument 'splt'", naming no kwarg of theirs and no close match."""
    with pytest.raises(TypeError, match=re.escape(message)):
        gym.make(env_id, **kwargs)


def test_numpy_integers_count_as_integers():
    # Counts read from an array were refused here and accepted by the vector envs.
    family = ConnectorFamilyEnv(split="procedural", procedural_count=np.int64(2),
                                procedural_seed=np.int32(5))
    assert family.connectors == ("Procedural5", "Procedural6")
    assert NISTBoardEnv(part="USBA", steps_per_part=np.int64(3)).steps_per_part == 3


def test_family_members_share_spaces_and_are_cached():
    env = ConnectorFamilyEnv(split="all", obs_mode="state", action_mode="pose")
    for name in env.connectors:
        member = env.member(name)
        assert member.observation_space == env.observation_space
        assert member.action_space == env.action_space
        assert env.member(name) is member
    _, info = env.reset(seed=0, options={"connector": "BNC"})
    assert info["connector"] == "BNC"


def test_a_procedural_familys_start_height_is_checked_without_drawing_every_connector(
        monkeypatch):
    """envs17: 100,000 procedural connectors were all drawn (30 s) to check start_height_mm;
    the generator's bound says it at once, and is a bound."""
    import envs.family as family
    from envs.procedural import LOWEST_START_MAX_MM, random_connector

    assert max(random_connector(i).lowest_start_mm for i in range(500)) <= LOWEST_START_MAX_MM
    drawn = []
    real_task = family.procedural_task
    monkeypatch.setattr(family, "procedural_task", lambda seed: drawn.append(seed)
                        or real_task(seed))
    ConnectorFamilyEnv(split="procedural", procedural_count=100_000, start_height_mm=40)
    assert drawn == [0]  # the first member, built to give the spaces
    with pytest.raises(ValueError, match="every plug must start out of its socket"):
        ConnectorFamilyEnv(split="procedural", procedural_count=50, start_height_mm=10)
    # A member named wrong listed all 100,000: a 1.9 MB error line (envs23)
    big = ConnectorFamilyEnv(split="procedural", procedural_count=100_000)
    with pytest.raises(ValueError) as wrong:
        big.reset(seed=0, options={"connector": "procedural5"})
    assert str(wrong.value) == ("'procedural5' is not in this family: 100,000 members, "
                                "Procedural0 ... Procedural99999; closest: ['Procedural5', "
                                "'Procedural95', 'Procedural85']")
    big.close()


def test_a_connector_named_by_option_replays_the_episode_its_seed_gives_it():
    """envs17: naming the connector skipped its draw, and the seed's episode of that connector
    (goal noise, start offset) was another one."""
    env = ConnectorFamilyEnv(split="all", goal_noise_mm=1.0, init_offset_mm=(0.0, 5.0))
    for seed in range(3):
        _, info = env.reset(seed=seed)
        natural = env.active.goal_noise_m.copy(), env.active.start_pos.copy()
        _, forced_info = env.reset(seed=seed, options={"connector": info["connector"]})
        assert forced_info["connector"] == info["connector"]
        np.testing.assert_array_equal(env.active.goal_noise_m, natural[0])
        np.testing.assert_array_equal(env.active.start_pos, natural[1])


def test_a_family_keeps_a_bounded_number_of_members_built(monkeypatch):
    """It kept every member it drew: a procedural family with cameras held 3.3 GB and 4,968
    memory maps after 300 resets. A member built again replays what the kept one would."""
    import envs.family as family

    def episodes(kept: int) -> tuple[list, ConnectorFamilyEnv]:
        monkeypatch.setattr(family, "MEMBERS_KEPT", kept)
        env = ConnectorFamilyEnv(split="procedural", procedural_count=6, obs_mode="state")
        seen = []
        for seed in range(12):
            obs, info = env.reset(seed=seed)
            obs, *_ = env.step(np.array([0.3, -0.2, -0.6], np.float32))
            seen.append((info["connector"], obs["tcp_pose"].tobytes(), obs["wrench"].tobytes()))
            assert len(env._envs) <= kept
        return seen, env

    few, env = episodes(2)
    assert len({name for name, *_ in few}) > 2  # members were dropped and built again
    assert few == episodes(64)[0]


def test_p_controller_follows_the_family():
    env = gym.make("InsertBench/ConnectorFamily-v0", split="test")
    expert = p_controller(env)
    obs, info = env.reset(seed=3)
    for _ in range(4):
        for _ in range(50):
            obs, _, terminated, truncated, info = env.step(expert(obs))
            if terminated or truncated:
                break
        assert info["is_success"], info
        obs, info = env.reset()


def test_nist_sequence_inserts_every_part_in_order():
    env = gym.make("InsertBench/NISTBoard-v0")
    expert = p_controller(env)
    obs, info = env.reset(seed=0)
    inserted = []
    for _ in range(50 * len(NIST_PARTS)):
        obs, reward, terminated, truncated, info = env.step(expert(obs))
        if info["part_success"]:
            assert reward == 1.0
            inserted.append(info["part"])
        if terminated or truncated:
            break
    assert terminated and info["is_success"]
    assert inserted == list(NIST_PARTS)


@pytest.mark.parametrize("reward", ["sparse", "dense"])
def test_a_nist_part_ends_at_its_success_only_with_the_sparse_reward(reward):
    """Under the dense reward a NIST part terminated at its success (step 12 here) while
    USB-v0 and the family's USB-A ran to their time limit: returns and bootstrapping targets of
    one kwarg differed between IDs. Now it runs on as InsertionEnv does."""
    env = gym.make("InsertBench/NISTBoard-USBA-v0", reward=reward)
    expert = p_controller(env)
    obs, _ = env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(expert(obs))
        steps += 1
    assert info["is_success"]
    if reward == "sparse":
        assert terminated and steps < 50
    else:
        assert truncated and not terminated and steps == 50


def test_nist_single_part_and_errors():
    env = NISTBoardEnv(part="RoundPeg8", steps_per_part=3)
    _, info = env.reset(seed=0)
    assert info["task_id"] == "InsertBench/NISTBoard-RoundPeg8-v0"
    for _ in range(3):
        *_, terminated, truncated, info = env.step(np.zeros(3, np.float32))
    assert truncated and not terminated and not info["is_success"]
    with pytest.raises(ValueError, match="RoundPeg8"):
        NISTBoardEnv(part="RoundPeg9")
    # A list of parts ended in "unhashable type: 'list'"; 2.5 steps truncated after 3.
    with pytest.raises(ValueError, match=r"part must be 'sequence' or .*got \['USBA', 'DSub'\]"):
        NISTBoardEnv(part=["USBA", "DSub"])
    for steps in (2.5, True, 0):
        with pytest.raises(ValueError, match="steps_per_part must be an integer >= 1"):
            NISTBoardEnv(part="USBA", steps_per_part=steps)
    # envs17: a time limit past the part's own ran 50-step episodes whose task identity said
    # 100; below it, or with steps_per_part to match, it is what it says.
    from envs.episode import task_identity

    with pytest.raises(ValueError, match=r"max_episode_steps=100 is never reached: InsertBench/"
                                         r"NISTBoard-USBA-v0 ends its part after steps_per_"
                                         r"part=50 steps itself; give steps_per_part=100"):
        task_identity(gym.make("InsertBench/NISTBoard-USBA-v0", max_episode_steps=100))
    for kwargs in ({"max_episode_steps": 30}, {"max_episode_steps": 100, "steps_per_part": 100}):
        task_identity(gym.make("InsertBench/NISTBoard-USBA-v0", **kwargs))
    task_identity(gym.make("InsertBench/NISTBoard-v0", max_episode_steps=300))  # the sequence
    # A sequence beside one part was ignored: the episode inserted the part alone.
    with pytest.raises(ValueError, match="sequence applies only with part='sequence'"):
        gym.make("InsertBench/NISTBoard-USBA-v0", sequence=["DSub", "RJ45"])
    assert NISTBoardEnv(part="USBA", sequence=list(envs.NIST_PARTS)).parts == ("USBA",)
    # A string was read as its letters: "unknown: ['U', 'S', 'B', 'A']".
    with pytest.raises(ValueError, match="sequence must be a list of NIST board part names, "
                                         "got 'USBA'"):
        NISTBoardEnv(sequence="USBA")
    # None was "'NoneType' object is not iterable"; a repeat inserted one part twice.
    with pytest.raises(ValueError, match="sequence must be a list of NIST board part names, "
                                         "got None"):
        gym.make("InsertBench/NISTBoard-v0", sequence=None)
    with pytest.raises(ValueError, match=r"sequence names \['USBA'\] more than once"):
        NISTBoardEnv(sequence=["USBA", "DSub", "USBA"])
    assert envs.NIST_PARTS["Waterproof"][0].name == "Model-E"


def test_a_start_height_one_member_refuses_is_refused_when_the_family_is_made():
    """Members are built on first use: a height XLR3 refuses failed a reset mid-run."""
    with pytest.raises(ValueError, match=r"start_height_mm must be in \[15, 150\] \(every plug "
                                         r"must start out of its socket: the XLR 3-pin's"):
        ConnectorFamilyEnv(split="train", start_height_mm=14.0)
    with pytest.raises(ValueError, match=r"start_height_mm must be in \[26, 150\]"):
        NISTBoardEnv(start_height_mm=20.0)
    assert NISTBoardEnv(part="USBA", start_height_mm=14.0).parts == ("USBA",)
