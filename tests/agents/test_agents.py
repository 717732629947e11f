"""Every agent trains, saves, reloads and acts identically; configs fail clearly; residual RL adds
its base action; scripted baselines behave as specified.

Tasks are listed in ``TASKS``: the stand-in env (no MuJoCo) and the real InsertBench USB task,
each from state and from pixels.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the InsertBench tasks)
import tests.standin_env  # noqa: F401  (registers the stand-in)
from agents import Agent, Transition, agent_names, load_agent, make_agent
from benchmark.train import make_base_policy
from tests.agents.helpers import agent_kwargs, demo_dataset, online_steps

torch.set_num_threads(1)

STANDIN = "InsertBenchStandIn/PegPoint-v0"
#: (task ID, gym.make kwargs): state and pixel variants of each task.
TASKS = [
    (STANDIN, {"obs_mode": "state", "goal_noise_mm": 1.0}),
    (STANDIN, {"obs_mode": "state+pixels", "action_mode": "pose", "image_size": 32}),
    ("InsertBench/USB-v0", {"obs_mode": "state", "goal_noise_mm": 1.0}),
    ("InsertBench/USB-v0", {"obs_mode": "state+pixels", "action_mode": "pose", "image_size": 32,
                            "grayscale": True}),
    ("InsertBench/DSub-v0", {"obs_mode": "state", "goal_noise_mm": 1.0}),
    ("InsertBench/ModelE-v0", {"obs_mode": "state", "goal_noise_mm": 1.0}),
]
TASK_IDS = ["standin-state", "standin-pixels", "usb-state", "usb-pixels", "dsub-state",
            "modele-state"]
LEARNERS = ["sac", "td3", "td3_lfd", "residual_sac", "residual_td3", "bc"]
SCRIPTED = ["p_controller", "straight_down", "random_search", "spiral_search"]

SMALL = {"hidden": (32, 32), "batch_size": 16, "image_feature_dim": 8}
SMALL_CONFIGS = {
    "sac": SMALL | {"learning_starts": 40, "random_steps": 40},
    "residual_sac": SMALL | {"learning_starts": 40, "random_steps": 40},
    "td3": SMALL | {"learning_starts": 40, "random_steps": 40},
    "residual_td3": SMALL | {"learning_starts": 40, "random_steps": 40},
    "td3_lfd": SMALL | {"learning_starts": 40, "random_steps": 0, "demo_batch_size": 8,
                        "pretrain_steps": 20},
    "bc": SMALL | {"pretrain_steps": 50, "online_updates_per_step": 1},
}


def _probe_obs(env: gym.Env, n: int = 5) -> list[dict[str, np.ndarray]]:
    out = []
    for i in range(n):
        obs, _ = env.reset(seed=900 + i)
        obs, *_ = env.step(env.action_space.sample() * 0.5)
        out.append(obs)
    return out


def test_registry_lists_every_method_and_each_implements_the_protocol():
    assert set(LEARNERS + SCRIPTED) <= set(agent_names())
    env = gym.make(STANDIN, obs_mode="state+pixels", image_size=32)  # localize reads an image
    for name in agent_names():
        agent = make_agent(name, env.observation_space, env.action_space,
                           SMALL_CONFIGS.get(name), **agent_kwargs(name, env))
        assert isinstance(agent, Agent) and agent.name == name


def test_an_oversized_config_is_refused_before_its_memory_is_written(monkeypatch):
    """`train -c hidden=100000000` grew until the kernel killed it for memory: make_agent counts
    parameters and modules as they register (before initialisation) against a budget."""
    from agents import registry

    env = gym.make(STANDIN)
    monkeypatch.setattr(registry, "MAX_PARAMETERS", 10_000)  # a small budget, small tensors
    with pytest.raises(ValueError, match=r"agent 'sac': its config builds more than 10,000 "
                                         r"parameters \(at Linear.weight\); refused"):
        make_agent("sac", env.observation_space, env.action_space, {"hidden": [200, 200]})
    monkeypatch.setattr(registry, "MAX_PARAMETERS", 10**9)
    monkeypatch.setattr(registry, "MAX_MODULES", 20)
    with pytest.raises(ValueError, match="more than 20 modules"):
        make_agent("rlpd", env.observation_space, env.action_space, {"num_qs": 50})
    monkeypatch.setattr(registry, "MAX_MODULES", 100_000)
    make_agent("sac", env.observation_space, env.action_space, {"hidden": [200, 200]})


@pytest.mark.parametrize("task_id,env_kwargs", TASKS, ids=TASK_IDS)
@pytest.mark.parametrize("name", LEARNERS)
def test_learner_trains_saves_reloads_and_acts_identically(name, task_id, env_kwargs, tmp_path):
    torch.manual_seed(0)
    env = gym.make(task_id, **env_kwargs)
    env.action_space.seed(0)
    agent = make_agent(name, env.observation_space, env.action_space, SMALL_CONFIGS[name],
                       seed=0, **agent_kwargs(name, env))
    before = {k: v.clone() for k, v in agent._checkpoint_modules()[
        "policy" if name == "bc" else "actor"].state_dict().items()}
    if name in ("td3_lfd", "bc"):
        pre = agent.pretrain(demo_dataset(env))
        assert pre["pretrain/transitions"] > 0
    if name == "bc":  # BC learns from interventions online: mark a few as such
        agent.observe(Transition(*_one_step(env), intervened=True))
    metrics = online_steps(env, agent, 200)
    learned = [m for m in metrics if m]
    assert len(learned) >= 150, f"only {len(learned)} of 200 env steps ran gradient steps"
    assert all(np.isfinite(v) for m in learned for v in m.values())
    after = agent._checkpoint_modules()["policy" if name == "bc" else "actor"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "policy did not change"

    agent.save(tmp_path / "ckpt", include_replay=True)
    restored = load_agent(tmp_path / "ckpt", **agent_kwargs(name, env))
    assert type(restored) is type(agent)
    for obs in _probe_obs(env):
        np.testing.assert_array_equal(agent.act(obs, deterministic=True),
                                      restored.act(obs, deterministic=True))


def _one_step(env: gym.Env):
    obs, _ = env.reset(seed=3)
    action = env.action_space.sample()
    nxt, reward, term, trunc, info = env.step(action)
    return obs, action, reward, nxt, term, trunc, info


@pytest.mark.parametrize("name", ["sac", "td3_lfd"])
def test_reloaded_agent_continues_exactly(name, tmp_path):
    """Optimizer moments, counters, rng and replay are restored: the next update is identical."""
    env = gym.make(STANDIN)
    agent = make_agent(name, env.observation_space, env.action_space, SMALL_CONFIGS[name], seed=1)
    if name == "td3_lfd":
        agent.pretrain(demo_dataset(env, 1))
    online_steps(env, agent, 60)
    agent.save(tmp_path / "a", include_replay=True)
    restored = load_agent(tmp_path / "a")
    for a in (agent, restored):
        torch.manual_seed(7)
        for _ in range(3):
            a.update()
    for key, module in agent._checkpoint_modules().items():
        other = restored._checkpoint_modules()[key].state_dict()
        for k, v in module.state_dict().items():
            assert torch.equal(v, other[k]), f"{key}.{k} diverged after reload"


@pytest.mark.parametrize("name", SCRIPTED)
def test_scripted_agents_act_save_and_reload(name, tmp_path):
    env = gym.make(STANDIN)
    agent = make_agent(name, env.observation_space, env.action_space, None,
                       **agent_kwargs(name, env))
    assert all(m == {} for m in online_steps(env, agent, 60))
    agent.save(tmp_path / "s")
    restored = load_agent(tmp_path / "s", **agent_kwargs(name, env))
    obs, _ = env.reset(seed=0)
    agent.reset(seed=0)
    restored.reset(seed=0)
    for _ in range(30):
        a, b = agent.act(obs, deterministic=True), restored.act(obs, deterministic=True)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)


def _success_rate(env: gym.Env, agent, episodes: int) -> float:
    wins = 0
    for i in range(episodes):
        agent.reset(seed=i)
        obs, _ = env.reset(seed=i)
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(agent.act(obs, deterministic=True))
            done = term or trunc
        wins += info["is_success"]
    return wins / episodes


@pytest.mark.parametrize(
    "task_id,offset_mm",
    [(STANDIN, (2.0, 2.5)), ("InsertBench/USB-v0", (1.0, 2.0))],  # beyond the clearance
)
def test_spiral_search_finds_a_hole_that_straight_down_misses(task_id, offset_mm):
    env = gym.make(task_id, init_offset_mm=offset_mm)
    make = lambda n: make_agent(n, env.observation_space, env.action_space)  # noqa: E731
    assert _success_rate(env, make("straight_down"), 5) == 0.0
    assert _success_rate(env, make("spiral_search"), 5) >= 0.8


def test_random_search_pattern_is_reproducible_per_episode_seed():
    env = gym.make(STANDIN)
    agent = make_agent("random_search", env.observation_space, env.action_space)
    agent.reset(seed=5)
    first = agent._targets.copy()
    agent.reset(seed=6)
    assert not np.array_equal(first, agent._targets)
    agent.reset(seed=5)
    np.testing.assert_array_equal(first, agent._targets)
    assert np.all(np.linalg.norm(first, axis=1) <= agent.config.search_radius_m)


# ---------------------------------------------------------------------------- residual RL
def _constant_policy(value: float, dim: int = 3):
    return lambda obs: np.full(dim, value, dtype=np.float32)


@pytest.mark.parametrize("name", ["residual_sac", "residual_td3"])
def test_residual_adds_base_action_and_stores_the_residual(name):
    env = gym.make(STANDIN)
    cfg = SMALL_CONFIGS[name] | {"random_steps": 0}
    agent = make_agent(name, env.observation_space, env.action_space, cfg,
                       base_policy=_constant_policy(0.25))
    obs, _ = env.reset(seed=0)
    residual = agent.policy_unit_action(obs, deterministic=True)
    np.testing.assert_allclose(agent.act(obs, deterministic=True),
                               np.clip(0.25 + residual, -1, 1), rtol=0, atol=1e-6)

    # The buffer holds the residual that was sampled, even where the sum was clipped.
    saturating = make_agent(name, env.observation_space, env.action_space, cfg | {
        "random_steps": 10}, base_policy=_constant_policy(0.95))
    executed = saturating.act(obs, deterministic=False)
    sampled = saturating._last[1]
    nxt, reward, term, trunc, info = env.step(executed)
    saturating.observe(Transition(obs, executed, reward, nxt, term, trunc, info))
    np.testing.assert_array_equal(saturating.buffer.action[0], sampled)
    assert np.all(executed <= 1.0)

    # A human intervention stores executed - base as the residual.
    human = np.array([0.5, 0.2, 0.0], dtype=np.float32)
    saturating.observe(Transition(nxt, human, 0.0, nxt, False, False, {}, intervened=True))
    np.testing.assert_allclose(saturating.buffer.action[1], human - 0.95, atol=1e-6)


@pytest.mark.parametrize("task_id", [STANDIN, "InsertBench/USB-v0"])
@pytest.mark.parametrize("name", ["residual_sac", "residual_td3"])
def test_a_fresh_residual_agent_acts_as_the_base_controller(task_id, name):
    env = gym.make(task_id)
    base = make_base_policy(env)
    agent = make_agent(name, env.observation_space, env.action_space, SMALL_CONFIGS[name],
                       base_policy=base)
    unzeroed = make_agent(name, env.observation_space, env.action_space,
                          SMALL_CONFIGS[name] | {"zero_init_residual": False}, base_policy=base)
    obs, _ = env.reset(seed=4)
    np.testing.assert_allclose(agent.act(obs, deterministic=True), base(obs), atol=1e-7)
    assert not np.allclose(unzeroed.act(obs, deterministic=True), base(obs), atol=1e-3)


# ---------------------------------------------------------------------------- configs
def _spaces():
    env = gym.make(STANDIN)
    return env.observation_space, env.action_space


def test_unknown_config_key_names_field_and_allowed_fields():
    with pytest.raises(ValueError, match=r"unknown SACConfig field\(s\) \['gama'\].*'gamma'"):
        make_agent("sac", *_spaces(), {"gama": 0.9})


@pytest.mark.parametrize(
    "name,config,pattern",
    [
        ("sac", {"gamma": 1.5}, r"SACConfig.gamma must be in \(0, 1\], got 1.5"),
        ("td3", {"batch_size": "many"}, r"TD3Config.batch_size must be of type int"),
        ("td3", {"batch_size": 0}, r"TD3Config.batch_size must be > 0"),
        ("sac", {"hidden": ()}, r"SACConfig.hidden must be a non-empty tuple"),
        ("straight_down", {"down_sign": 2}, r"SearchConfig.down_sign must be one of \[-1, 1\]"),
        # adv41: numpy's "Unable to allocate 2.13 PiB", exit 1, naming no field
        ("sac", {"buffer_size": 10**14}, r"SACConfig.buffer_size must be at most 100,000,000 "
                                         r"transitions, got 100,000,000,000,000"),
        ("rlpd", {"demo_buffer_size": 10**9}, r"RLPDConfig.demo_buffer_size must be at most"),
        # adv41: failed inside the run as "Unable to allocate 7.28 TiB"
        ("sac", {"batch_size": 10**12}, r"SACConfig.batch_size must be at most 100,000 rows"),
        ("td3_lfd", {"demo_batch_size": 10**6}, r"TD3LfDConfig.demo_batch_size must be at most"),
        # adv41: finite but absurd search settings passed
        ("spiral_search", {"kp_xy": 1e308}, r"SearchConfig.kp_xy must be in \(0, 1e5\] per m"),
        ("spiral_search", {"spiral_pitch_m": 1e308},
         r"SearchConfig.spiral_pitch_m must be in \(0, 0.1\] m"),
        ("random_search", {"steps_per_target": 10**11},
         r"SearchConfig.steps_per_target must be in \[1, 100000\]"),
        ("td3_lfd", {"bc_weight": -1}, r"TD3LfDConfig.bc_weight must be >= 0"),
        ("residual_sac", {"residual_scale": 0}, r"ResidualSACConfig.residual_scale must be > 0"),
        ("sac", {"critic_layer_norm": "maybe"}, r"critic_layer_norm must be of type bool"),
        # adv30: a 0-wide layer trained a constant classifier, -1 ended in a torch error
        ("vice", {"vice_hidden": "0"}, r"VICEConfig.vice_hidden must be a non-empty tuple"),
        ("vice", {"vice_hidden": "256,-1"}, r"VICEConfig.vice_hidden must be a non-empty tuple"),
        ("localize", {"hidden": "0"}, r"LocalizeConfig.hidden must be a non-empty tuple"),
        # agents review: the allocator's "can't allocate 40000000000 bytes", naming no field;
        # 1e20 a C++ stack dump; ODA's rows per step "Unable to allocate 44.7 GiB" in pretrain
        ("sac", {"hidden": "100000,100000"},
         r"SACConfig.hidden must be at most 16,384 units, got \(100000, 100000\)"),
        ("sac", {"hidden": (10**20,)}, r"SACConfig.hidden must be at most 16,384 units"),
        ("sac", {"image_shift_px": 10**20}, r"SACConfig.image_shift_px must be at most 64 pixels"),
        ("oda", {"latent_dim": 10**20}, r"ODAConfig.latent_dim must be at most 16,384 units"),
        ("oda", {"context_size": 2 * 10**9}, r"ODAConfig.context_size must be at most 100,000"),
        ("oda", {"batch_per_task": 2 * 10**9}, r"ODAConfig.batch_per_task must be at most 100,000"),
        ("sac", {"utd_ratio": 10**8}, r"SACConfig.utd_ratio must be at most 1,000 updates per "),
        ("sac", {"random_steps": 10**20}, r"SACConfig.random_steps must be at most 1,000,000,000"),
        ("state_iql", {"hidden": ""}, r"StateIQLConfig.hidden must be a non-empty tuple"),
        # agents27: an entropy no policy on [-1, 1]^A reaches grew alpha to 2e5
        ("sac", {"target_entropy": 10}, r"target_entropy 10.0 nats is not below \d\.\d{3}, the "
                                        r"most a tanh-squashed Gaussian policy on \d action "
                                        r"dimensions can have"),
        ("rlpd", {"target_entropy": 10}, r"target_entropy 10.0 nats is not below"),
        ("hil_serl", {"target_entropy": 10}, r"target_entropy 10.0 nats is not below"),
    ],
)
def test_bad_config_values_raise_clear_errors(name, config, pattern):
    env = gym.make(STANDIN)
    with pytest.raises(ValueError, match=pattern):
        make_agent(name, env.observation_space, env.action_space, config, **agent_kwargs(name, env))


def test_a_config_object_is_checked_as_a_dict_is():
    """A config instance skipped the per-field type checks: SACConfig(obs_norm="no") kept
    normalisation on, TD3Config(policy_delay=2.5) updated the actor every 5th step."""
    from agents.config import build_config
    from agents.sac import SACConfig
    from agents.td3 import TD3Config

    assert build_config(SACConfig, SACConfig(obs_norm="no")).obs_norm is False
    for cls, field, value in ((TD3Config, "policy_delay", 2.5), (SACConfig, "batch_size", True),
                              (SACConfig, "hidden", (64.5,))):
        with pytest.raises(ValueError, match=f"{cls.__name__}.{field} must be of type"):
            build_config(cls, cls(**{field: value}))


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [("bc", "lr", "inf"), ("iql", "beta", "inf"), ("awac", "actor_lr", float("inf")),
     ("oda", "kl_weight", "inf"), ("vice", "vice_lr", "inf"), ("rlpd", "actor_lr", "inf"),
     ("hil_serl", "operator_action_noise", "inf"), ("hg_dagger", "lr", "-inf"),
     ("iql", "exploration_std", "inf"), ("straight_down", "search_force_n", "inf")],
)
def test_non_finite_config_values_are_refused(name, field, value):
    """An infinite learning rate passed every `> 0` range check and trained NaN weights (bc
    failed only at its first env step, after pretraining: "action contains NaN")."""
    from agents import agent_spec
    from agents.config import build_config

    with pytest.raises(ValueError, match=rf"\.{field} must be a finite number, got "):
        build_config(agent_spec(name).config_cls, {field: value})


@pytest.mark.parametrize(
    ("name", "field", "value", "pattern"),
    [("sac", "init_temperature", 1e300, "at most 1e\\+06 in magnitude"),
     ("iql", "beta", "1e10", "at most 1e\\+06 in magnitude"),
     ("rlpd", "actor_lr", "1e300", "at most 1e\\+06 in magnitude"),
     ("bc", "lr", 2.0, "at most 1 \\(a learning rate\\)"),
     ("sac", "critic_layer_norm", 2, "of type bool, got 2"),
     ("rlpd", "critic_layer_norm", -1, "of type bool, got -1")],
)
def test_overflowing_config_values_are_refused(name, field, value, pattern):
    """Finite values that overflow float32 arithmetic (init_temperature=1e300 trained NaN), a
    learning rate above 1, and an int other than 0 or 1 for a bool (2 became True)."""
    from agents import agent_spec
    from agents.config import build_config

    with pytest.raises(ValueError, match=rf"\.{field} must be {pattern}"):
        build_config(agent_spec(name).config_cls, {field: value})


def test_cli_strings_convert_to_typed_fields():
    agent = make_agent("sac", *_spaces(), {"hidden": "64,64", "gamma": "0.9",
                                           "critic_layer_norm": "true", "target_entropy": "none"})
    assert agent.config.hidden == (64, 64)
    assert agent.config.gamma == 0.9 and agent.config.critic_layer_norm is True
    assert agent.config.target_entropy is None
    assert isinstance(agent.critic.heads[0][1], torch.nn.LayerNorm)


def test_unknown_agent_and_missing_base_policy_are_clear():
    with pytest.raises(ValueError, match=r"unknown agent 'ppo'; registered agents: \["):
        make_agent("ppo", *_spaces())
    with pytest.raises(ValueError, match="needs base_policy="):
        make_agent("residual_sac", *_spaces())
    with pytest.raises(ValueError, match="obs_keys"):
        make_agent("sac", *_spaces(), {"obs_keys": ("tcp_pose", "camera")})


def test_checkpoint_is_not_a_pickle(tmp_path):
    agent = make_agent("sac", *_spaces(), SMALL_CONFIGS["sac"])
    agent.save(tmp_path / "c", include_replay=True)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["agent.json", "replay_online.npz", "weights.safetensors"]


def test_bc_pretraining_reduces_the_imitation_loss():
    torch.manual_seed(0)
    env = gym.make(STANDIN)
    agent = make_agent("bc", env.observation_space, env.action_space,
                       SMALL_CONFIGS["bc"] | {"pretrain_steps": 1})
    first = agent.pretrain(demo_dataset(env, 3))["loss/bc"]
    for _ in range(300):
        last = agent._step()["loss/bc"]
    assert last < 0.5 * first


def test_td3_lfd_and_bc_treat_interventions_as_demonstrations():
    env = gym.make(STANDIN)
    for name in ("td3_lfd", "bc"):
        agent = make_agent(name, env.observation_space, env.action_space, SMALL_CONFIGS[name])
        step = _one_step(env)
        agent.observe(Transition(*step))
        assert len(agent.demo_buffer) == 0
        agent.observe(Transition(*step, intervened=True))
        assert len(agent.demo_buffer) == 1


@pytest.mark.parametrize("name", ["td3_lfd", "bc", "hg_dagger"])
def test_imitating_learners_leave_recorded_failures_out_of_their_demos(name):
    """A vice run's demos.npz (given again with --demos) carries the operator's recorded
    failures as ``failure_demo`` rows; td3_lfd, bc and hg_dagger cloned them as demonstrations
    (rlpd already left them out)."""
    env = gym.make(STANDIN)
    demos, failures = demo_dataset(env, 1), demo_dataset(env, 1)
    failures["action"] = -failures["action"]
    demos["failure_demo"] = np.zeros(len(demos["action"]), bool)
    failures["failure_demo"] = np.ones(len(failures["action"]), bool)
    dataset = {k: ({kk: np.concatenate([v[kk], failures[k][kk]]) for kk in v}
                   if isinstance(v, dict) else np.concatenate([v, failures[k]]))
               for k, v in demos.items()}
    config = SMALL_CONFIGS.get(name, SMALL_CONFIGS["bc"]) | {"pretrain_steps": 0}
    agent = make_agent(name, env.observation_space, env.action_space, config,
                       **agent_kwargs(name, env))
    agent.pretrain(dataset)
    n = len(demos["action"])
    assert len(agent.demo_buffer) == n
    np.testing.assert_allclose(agent.demo_buffer.action[:n],
                               agent.scaler.to_unit(demos["action"]))


@pytest.mark.parametrize("shape", [(32, 32, 1), (64, 64, 3)])
def test_obs_encoder_handles_both_image_sizes(shape):
    from agents.networks import ObsEncoder

    space = gym.spaces.Dict({"tcp_pose": gym.spaces.Box(-1, 1, (6,), np.float32),
                             "wrist": gym.spaces.Box(0, 255, shape, np.uint8)})
    encoder = ObsEncoder(space, image_feature_dim=12)
    batch = {"tcp_pose": torch.zeros(4, 6),
             "wrist": torch.randint(0, 256, (4, *shape), dtype=torch.uint8)}
    assert encoder(batch).shape == (4, 6 + 12) == (4, encoder.out_dim)
    assert encoder.image_keys == ["wrist"] and encoder.vector_keys == ["tcp_pose"]


def test_class_load_and_config_object(tmp_path):
    from agents.sac import SACAgent, SACConfig
    from agents.td3 import TD3Config

    obs_space, act_space = _spaces()
    agent = make_agent("sac", obs_space, act_space, SACConfig(hidden=(16,), batch_size=8))
    agent.save(tmp_path / "s")
    assert SACAgent.load(tmp_path / "s").config == agent.config
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)
    (tmp_path / "s").rename(tmp_path / "run" / "checkpoint" / "agent")
    assert load_agent(tmp_path / "run").config == agent.config  # a run directory works too
    with pytest.raises(FileNotFoundError, match="no agent checkpoint under"):
        load_agent(tmp_path)
    with pytest.raises(ValueError, match="must be a SACConfig or a dict, got TD3Config"):
        make_agent("sac", obs_space, act_space, TD3Config())


def test_obs_normalizer_matches_numpy_statistics():
    from agents.networks import ObsNormalizer

    space = gym.spaces.Dict({"tcp_pose": gym.spaces.Box(-1, 1, (6,), np.float32),
                             "wrist": gym.spaces.Box(0, 255, (8, 8, 1), np.uint8)})
    rng = np.random.default_rng(0)
    data = rng.normal(0.01, 0.003, size=(50, 6))
    one, batched = ObsNormalizer(space), ObsNormalizer(space)
    for row in data[:20]:
        one.update({"tcp_pose": row})
    one.update({"tcp_pose": data[20:]}, batched=True)
    batched.update({"tcp_pose": data}, batched=True)
    for norm in (one, batched):
        np.testing.assert_allclose(norm.tcp_pose_mean.numpy(), data.mean(0), rtol=1e-10)
    x = torch.as_tensor(data[:3], dtype=torch.float32)
    image = torch.zeros(3, 8, 8, 1, dtype=torch.uint8)
    out = one({"tcp_pose": x, "wrist": image})
    expected = (data[:3] - data.mean(0)) / (data.std(0) + 1e-6)
    np.testing.assert_allclose(out["tcp_pose"].numpy(), expected, rtol=1e-4, atol=1e-4)
    assert out["wrist"] is image


def _usb(**kwargs):
    env = gym.make("InsertBench/USB-v1", **kwargs)
    obs, _ = env.reset(seed=0)
    return env, obs


def test_a_bad_transition_is_refused_and_stores_nothing():
    """One NaN reward, action or observation was stored and made every later update and action
    NaN (a NaN observation at once, through the normaliser); a wrong shape was numpy's
    broadcast error."""
    env, obs = _usb()
    agent = make_agent("sac", env.observation_space, env.action_space,
                       {"hidden": (16, 16), "batch_size": 8, "learning_starts": 0,
                        "random_steps": 0})
    zero = np.zeros(3, np.float32)
    nan_obs = {k: np.full_like(v, np.nan) for k, v in obs.items()}
    for transition, message in (
        (Transition(obs, zero, float("nan"), obs, False, False), "reward is not finite"),
        (Transition(obs, zero, float("inf"), obs, False, False), "reward is not finite"),
        (Transition(obs, np.full(3, np.nan, np.float32), 0.0, obs, False, False),
         "action is not finite"),
        (Transition(nan_obs, zero, 0.0, obs, False, False), r"obs\['tcp_pose'\] is not finite"),
        (Transition(obs, zero, 0.0, nan_obs, False, False), "next_obs.* is not finite"),
        (Transition(obs, np.zeros(7, np.float32), 0.0, obs, False, False),
         r"action has shape \(7,\), the action space has \(3,\)"),
        (Transition({k: v for k, v in obs.items() if k != "wrench"}, zero, 0.0, obs, False,
                    False), "transition obs has no 'wrench'"),
    ):
        with pytest.raises(ValueError, match=message):
            agent.observe(transition)
    assert len(agent.buffer) == 0 and agent.env_steps == 0
    for _ in range(8):
        agent.observe(Transition(obs, zero, 0.0, obs, False, False))
    agent.update()
    assert np.all(np.isfinite(agent.act(obs, deterministic=True)))
    # An observation to act that does not fit the space: one error naming the entry, not a NaN
    # action outside the space or a shape error from inside torch.
    for bad, message in (
        (nan_obs, r"observation\['tcp_pose'\] is not finite"),
        ({**obs, "wrench": np.zeros(5, np.float32)},
         r"observation\['wrench'\] has shape \(5,\), expected \(6,\)"),
        ({k: v for k, v in obs.items() if k != "wrench"}, "observation has no 'wrench'"),
        ({**obs, "wrench": np.array(["a"] * 6)}, r"observation\['wrench'\] must be real numbers"),
        ({**obs, "wrench": np.ones(6) * 1j}, r"observation\['wrench'\] must be real numbers"),
        (np.zeros(3), "observation must be a dict of arrays, got ndarray"),
    ):
        with pytest.raises(ValueError, match=message):
            agent.act(bad, deterministic=True)


def test_an_image_that_is_not_uint8_is_refused():
    """An int image was wrapped into the uint8 buffer (1000 -> 232, -1 -> 255), a float one in
    0..1 stored as black."""
    env, obs = _usb(obs_mode="pixels", image_size=32)
    agent = make_agent("sac", env.observation_space, env.action_space,
                       {"hidden": (16, 16), "image_channels": 4, "image_feature_dim": 8})
    for image in (np.full((32, 32, 3), 1000, np.int64), np.full((32, 32, 3), 0.9, np.float32)):
        with pytest.raises(ValueError, match=r"obs\['wrist'\] must be a uint8 image"):
            agent.observe(Transition({**obs, "wrist": image}, env.action_space.sample(), 0.0,
                                     obs, False, False))
    assert len(agent.buffer) == 0
    # ... and in a dataset: float images in [0, 1] were stored as black frames (data21)
    from agents import transitions_to_dataset
    from benchmark.train import check_dataset_fits

    dataset = transitions_to_dataset([Transition(obs, env.action_space.sample(), 0.0, obs,
                                                 False, False)] * 2)
    dataset["obs"]["wrist"] = dataset["obs"]["wrist"].astype(np.float32) / 255
    for check in (lambda: agent.buffer.add_dataset(dataset),
                  lambda: check_dataset_fits(dataset, env, "demos.npz")):
        with pytest.raises(ValueError, match=r"obs\['wrist'\] holds float32 images, where the "
                                             r"env's are uint8 \(0-255\)"):
            check()
    assert len(agent.buffer) == 0


def test_an_agent_trained_on_a_gpu_is_evaluated_on_the_cpu(tmp_path):
    """A checkpoint whose config says cuda failed to load on a CPU machine (torch's
    AssertionError), in eval and in leaderboard verification alike. Evaluation now loads on
    the CPU; resuming keeps the saved device and says why it cannot."""
    import json

    from leaderboards.ledger import policy_content
    from leaderboards.policy import load_policy

    env, obs = _usb()
    agent = make_agent("sac", env.observation_space, env.action_space, {"hidden": (16, 16)})
    agent.save(tmp_path / "a")
    trained_on_cpu = policy_content("agent", {"all": tmp_path / "a"})
    meta_file = tmp_path / "a" / "agent.json"
    meta = json.loads(meta_file.read_text())
    meta["config"]["device"] = "cuda:0"
    meta_file.write_text(json.dumps(meta))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda:0': this torch sees no CUDA device"):
            load_agent(tmp_path / "a")
    # A config names a device; where it runs is the machine's business (a matrix checks its
    # cells' configs on a driver that may have no GPU).
    from agents import agent_spec
    from agents.config import build_config

    assert build_config(agent_spec("sac").config_cls, {"device": "cuda:1"}).device == "cuda:1"
    loaded = load_agent(tmp_path / "a", allow_policy_only=True, device="cpu")
    assert loaded.config.device == "cpu"
    expected = agent.act(obs, deterministic=True)
    np.testing.assert_array_equal(loaded.act(obs, deterministic=True), expected)
    np.testing.assert_array_equal(load_policy("agent", tmp_path / "a", env)(obs), expected)
    # One policy, wherever it was trained: a leaderboard enters it once.
    assert policy_content("agent", {"all": tmp_path / "a"}) == trained_on_cpu


def test_export_policy_refuses_to_write_over_its_source_and_datasets_must_be_even(tmp_path):
    """export_policy(src, src) replaced the full checkpoint with the policy alone; a dataset with
    a short column was cut to the action's rows or failed with an IndexError."""
    from agents import export_policy, transitions_to_dataset

    env, obs = _usb()
    agent = make_agent("sac", env.observation_space, env.action_space, {"hidden": (16, 16)})
    agent.save(tmp_path / "ck")
    with pytest.raises(ValueError, match="would write over its source"):
        export_policy(tmp_path / "ck", tmp_path / "ck")
    load_agent(tmp_path / "ck")  # still the full checkpoint
    # Into another run's checkpoint it replaced that agent (its replay left beside the policy);
    # over an earlier export it still writes.
    other = make_agent("td3", env.observation_space, env.action_space, {"hidden": (16, 16)})
    other.save(tmp_path / "td3", include_replay=True)
    with pytest.raises(ValueError, match=r"td3 holds other files \(.*\), not an exported "
                                         r"policy; give a new or empty folder"):
        export_policy(tmp_path / "ck", tmp_path / "td3")
    assert load_agent(tmp_path / "td3").name == "td3"
    export_policy(tmp_path / "ck", tmp_path / "policy")
    export_policy(tmp_path / "ck", tmp_path / "policy")
    zero = np.zeros(3, np.float32)
    dataset = transitions_to_dataset([Transition(obs, zero, 0.0, obs, False, False)] * 10)
    with pytest.raises(ValueError, match=r"action has 10 rows, \{'reward': 3\}"):
        agent.pretrain({**dataset, "reward": dataset["reward"][:3]})


def test_tuple_fields_take_the_json_form_the_env_flags_take():
    """`-c 'obs_keys=["wrist"]'` (as `-e` takes lists) was refused as obs_keys ['"wrist"']."""
    from agents import agent_spec
    from agents.config import build_config
    from benchmark.train_cli import parse_config_overrides

    cls = agent_spec("sac").config_cls
    for text in ('["wrist", "side"]', "wrist,side", "(wrist,side)", "[wrist,side]"):
        assert build_config(cls, {"obs_keys": text}).obs_keys == ("wrist", "side")
        # ... as typed on the command line: `train` stripped the brackets first, and the JSON
        # form kept its quotes in the names (obs_keys ['"tcp_pose"', '"wrench"'])
        overrides = parse_config_overrides([f"obs_keys={text}", "hidden=[16,16]"])
        assert build_config(cls, overrides).obs_keys == ("wrist", "side")
        assert build_config(cls, overrides).hidden == (16, 16)
    env, _ = _usb()
    with pytest.raises(ValueError, match=r"obs_keys names \['tcp_pose'\] more than once"):
        make_agent("sac", env.observation_space, env.action_space,
                   {"obs_keys": "tcp_pose,tcp_pose", "hidden": (16, 16)})


def test_bc_without_online_updates_keeps_its_input_scaling_under_corrections():
    """With no online updates (the default) each human correction moved BC's observation
    normaliser, and with it the untrained policy's actions (agents19)."""
    env = gym.make(STANDIN)
    agent = make_agent("bc", env.observation_space, env.action_space,
                       {"pretrain_steps": 5, "batch_size": 16, "hidden": (16,)}, seed=0)
    agent.pretrain(demo_dataset(env))
    obs, _ = env.reset(seed=1)
    before = agent.act(obs, deterministic=True)
    far = {k: (v + 5.0).astype(v.dtype) for k, v in obs.items()}
    for _ in range(5):
        agent.observe(Transition(far, env.action_space.sample(), 0.0, far, False, False, {},
                                 intervened=True))
        agent.update()
    assert agent.gradient_steps == 5 and len(agent.demo_buffer) > 5
    np.testing.assert_array_equal(agent.act(obs, deterministic=True), before)


@pytest.mark.parametrize("name", ["straight_down", "random_search", "spiral_search"])
def test_a_search_without_tcp_pose_is_refused_when_made(name):
    """On obs_mode="pixels" the searches made the run folder, then stopped on
    "KeyError: 'tcp_pose'" (agents21)."""
    env = gym.make("InsertBench/USB-v1", obs_mode="pixels", image_size=32)
    with pytest.raises(ValueError, match=f"{name} steers by the observation entry 'tcp_pose'; "
                                         r"the space has \['side', 'wrist'\]"):
        make_agent(name, env.observation_space, env.action_space, {})


def test_numpy_scalars_in_a_config_are_plain_values(tmp_path):
    """np.int64 for a Literal field was kept, and save failed on its JSON; np.bool_ was refused
    for a bool field (agents21)."""
    env = gym.make(STANDIN)
    agent = make_agent("straight_down", env.observation_space, env.action_space,
                       {"down_sign": np.int64(-1)})
    assert type(agent.config.down_sign) is int
    agent.save(tmp_path / "search")
    assert load_agent(tmp_path / "search").config.down_sign == -1
    sac = make_agent("sac", env.observation_space, env.action_space,
                     {"critic_layer_norm": np.bool_(True), "hidden": (8,)})
    assert sac.config.critic_layer_norm is True


def test_the_entropy_ceiling_is_the_tanh_squashed_gaussians():
    """diff35: the ceiling was the uniform's ln 2 a dimension, which a tanh-squashed Gaussian
    never reaches: targets in between still grew alpha without bound."""
    from agents.networks import TANH_GAUSSIAN_MAX_ENTROPY, entropy_target

    x = np.random.default_rng(0).standard_normal(2_000_000)

    def entropy(std: float) -> float:  # H(N(0, std)) + E[log |d tanh(u)/du|]
        u = std * x
        log_det = 2 * (np.log(2) - u - np.logaddexp(0, -2 * u))
        return 0.5 * np.log(2 * np.pi * np.e * std**2) + float(log_det.mean())

    assert entropy(0.875) == pytest.approx(TANH_GAUSSIAN_MAX_ENTROPY, abs=2e-3)
    assert max(entropy(0.7), entropy(1.05)) < TANH_GAUSSIAN_MAX_ENTROPY
    with pytest.raises(ValueError, match="not below 2.051"):
        entropy_target(3 * 0.69, 3, default=-3.0)  # below 3 ln 2, above the ceiling
    with pytest.raises(ValueError, match="target_entropy nan"):
        entropy_target(float("nan"), 3, default=-3.0)
    assert entropy_target(2.0, 3, default=-3.0) == 2.0 and entropy_target(None, 3, -3.0) == -3.0
